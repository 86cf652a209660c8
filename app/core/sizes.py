"""How large a Kafka record can get, derived from the webhook body limit.

One figure, ``max_message_bytes``, is given to every producer (librdkafka's
message.max.bytes, aiokafka's max_request_size inside Faust) and every topic
(max.message.bytes, the tables' changelogs included), so a body the ingress accepts is
published, processed and, if it fails, dead-lettered. Kafka's defaults (about 1 MB for
producers and topics) are smaller than a 1 MiB body in its envelope: such a webhook was
answered 503 forever.

How a body of B bytes grows on its way:
- the raw record: the body escaped into the envelope's JSON string (at most 2B: only
  quotes, backslashes and JSON whitespace need escaping, each to two bytes), the kept
  headers (at most ENVELOPE_HEADERS_BYTES) and a key taken from the body (at most B);
- an output event carries the body's fields, escaped again (about 2B);
- the processed-messages table keeps all outputs of a message at once (lead event,
  activities and call context: several times 2B);
- a dead letter holds the raw record's text as a JSON string (at most twice the record).
Sixteen times the body plus a MiB covers every one of these with room to spare.
"""

from __future__ import annotations

__all__ = [
    "ENVELOPE_HEADERS_BYTES",
    "MAX_BODY_BYTES_LIMIT",
    "MAX_KEPT_HEADERS",
    "MAX_KEPT_HEADER_CHARS",
    "max_message_bytes",
]

MAX_KEPT_HEADERS = 16
MAX_KEPT_HEADER_CHARS = 2048
# Names and values of the kept headers, escaped (each character at most 6 bytes as \\uXXXX).
ENVELOPE_HEADERS_BYTES = MAX_KEPT_HEADERS * (128 + MAX_KEPT_HEADER_CHARS) * 6

_FACTOR = 16
_MARGIN = 1024 * 1024
# Kafka brokers refuse requests over socket.request.max.bytes (100 MiB by default).
MAX_BODY_BYTES_LIMIT = 4 * 1024 * 1024


def max_message_bytes(max_body_bytes: int) -> int:
    """The largest record any client may write or any topic must take, in bytes."""
    return _FACTOR * max_body_bytes + _MARGIN
