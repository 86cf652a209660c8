"""The serializers of every table's keys and values (registered with Faust by name).

Faust's own "json" codec switches to orjson by itself once orjson is installed, which
would change the bytes of keys with non-ASCII characters (orjson writes them raw, the
standard library escapes them) and turn integers beyond 64 bits into floats. A key's
bytes are the key: a lead filed under ``"jos\\u00e9"`` would no longer be found under
``"josé"``. So tables name their codecs explicitly:

- ``rgsync-key``: the standard library's bytes, exactly (app/core/json_codec.dumps_ascii);
- ``rgsync-json``: values as compact JSON through app/core/json_codec (orjson where it
  gives the same values); any JSON earlier releases wrote reads back the same.
"""

from __future__ import annotations

from typing import Any

from faust.serializers import codecs

from realgeeks_sync.app.core import json_codec
from realgeeks_sync.tables import catalog

__all__ = ["KEY_SERIALIZER", "VALUE_SERIALIZER", "install"]

KEY_SERIALIZER = catalog.KEY_SERIALIZER
VALUE_SERIALIZER = catalog.VALUE_SERIALIZER


class _KeyCodec(codecs.Codec):
    """Table keys: strings as the standard library's JSON bytes."""

    def _dumps(self, s: Any) -> bytes:
        if isinstance(s, str):
            return json_codec.dumps_ascii(s)
        return json_codec.dumps(s)

    def _loads(self, s: bytes) -> Any:
        return json_codec.loads(s)


class _ValueCodec(codecs.Codec):
    """Table values: compact JSON, orjson where it is exact."""

    def _dumps(self, s: Any) -> bytes:
        return json_codec.dumps(s)

    def _loads(self, s: bytes) -> Any:
        return json_codec.loads(s)


def install() -> None:
    """Register both codecs with Faust (idempotent; before the tables are built)."""
    codecs.register(KEY_SERIALIZER, _KeyCodec())
    codecs.register(VALUE_SERIALIZER, _ValueCodec())
