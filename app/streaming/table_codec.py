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

from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from typing import Any

from faust.serializers import codecs

from realgeeks_sync.app.core import json_codec
from realgeeks_sync.tables import catalog

__all__ = ["KEY_SERIALIZER", "VALUE_SERIALIZER", "StoreCodec", "install", "store_codec"]

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


@dataclass(frozen=True)
class StoreCodec:
    """How a table's store turns keys and values into bytes and back."""

    encode_key: Callable[[Any], bytes]
    encode_value: Callable[[Any], bytes | None]
    decode_value: Callable[[bytes], Any]


def store_codec(store: Any) -> StoreCodec:
    """The store's encoders: this module's codecs called directly when the store uses
    them (the same bytes), else the store's own methods.

    Faust encodes through its serializer registry (model checks, a codec lookup by name,
    the codec's own wrapper) before it reaches ``dumps_ascii``: a yappi CPU profile of a
    worker at 150 webhooks/s put ``Store._encode_key`` at a tenth of its main thread.
    """
    cached: StoreCodec | None = getattr(store, "_rgsync_codec", None)
    if cached is not None:
        return cached
    codec = StoreCodec(store._encode_key, store._encode_value, store._decode_value)
    if (
        getattr(store, "key_serializer", None) == KEY_SERIALIZER
        and getattr(store, "key_type", None) in (str, None)
        and getattr(store, "value_serializer", None) == VALUE_SERIALIZER
        and getattr(store, "value_type", str) is None
    ):
        codec = StoreCodec(
            encode_key=partial(_encode_key, store._encode_key),
            encode_value=partial(_encode_value, store._encode_value),
            decode_value=partial(_decode_value, store._decode_value),
        )
    store._rgsync_codec = codec
    return codec


def _encode_key(fallback: Callable[[Any], bytes], key: Any) -> bytes:
    # Faust: a str key goes to the key codec, whose str branch is dumps_ascii.
    return json_codec.dumps_ascii(key) if type(key) is str else fallback(key)


def _encode_value(fallback: Callable[[Any], bytes | None], value: Any) -> bytes | None:
    # Faust: bytes pass as they are, anything else goes to the value codec.
    return fallback(value) if value is None or isinstance(value, bytes) else json_codec.dumps(value)


def _decode_value(fallback: Callable[[bytes], Any], raw: bytes) -> Any:
    try:
        return json_codec.loads(raw)
    except (ValueError, RecursionError):  # Faust raises its own error (ValueDecodeError)
        return fallback(raw)
