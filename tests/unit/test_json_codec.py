"""The fast JSON codec gives what the standard library gives, where it matters."""

from __future__ import annotations

import json
import math
import re
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from realgeeks_sync.app.core import json_codec
from realgeeks_sync.app.streaming import table_codec

# JSON values as the standard library reads them: integers of any size included.
values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=20,
)


@given(values)
def test_loads_reads_every_value_as_the_standard_library_does(value: Any) -> None:
    text = json.dumps(value, ensure_ascii=False)
    try:
        raw = text.encode("utf-8")
    except UnicodeEncodeError:  # lone surrogates exist only in text
        raw = None
    assert json_codec.loads(text) == json.loads(text)
    if raw is not None:
        assert json_codec.loads(raw) == json.loads(raw)


@given(values)
def test_dumps_round_trips_and_sorted_is_canonical(value: Any) -> None:
    try:
        expected = json.dumps(value, separators=(",", ":"), ensure_ascii=False, sort_keys=True)
        expected_bytes = expected.encode("utf-8")
    except UnicodeEncodeError:
        with pytest.raises(ValueError):
            json_codec.dumps(value)
        return
    assert json.loads(json_codec.dumps(value)) == value
    assert json.loads(json_codec.dumps_sorted(value)) == value
    # Sorted and compact as before; only a float may be spelled otherwise (0.00001, 1e-05).
    ours = json_codec.dumps_sorted(value)
    respelled = json.dumps(
        json.loads(ours), separators=(",", ":"), ensure_ascii=False, sort_keys=True
    ).encode("utf-8")
    assert respelled == expected_bytes
    if "e-" not in expected and "." not in expected:
        assert ours == expected_bytes


# A run of 19 digits where a JSON number's digits may start: what sends decoding to json.
_NUMBER_RUN = re.compile(r"(?:^|[ \t\n\r\[,:+\-.eE])[0-9]{19}")

# Values where orjson and json could part: long digit runs in numbers and in strings.
digit_heavy = st.recursive(
    st.integers(min_value=-(2**80), max_value=2**80)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.from_regex(r"[a-f0\- .:,\[e]{0,3}[0-9]{15,25}[a-f]{0,3}", fullmatch=True),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=4), children, max_size=3)
    ),
    max_leaves=8,
)


@given(digit_heavy, st.sampled_from([(",", ":"), (", ", ": ")]))
def test_loads_keeps_every_type_where_digits_run_long(value: Any, separators: Any) -> None:
    # Zero-padded ids stay on orjson; a long number goes to json: either way the same
    # values of the same types (repr: 10**20 and 1e20 compare equal, their reprs do not).
    text = json.dumps(value, separators=separators)
    assert repr(json_codec.loads(text)) == repr(json.loads(text))
    assert repr(json_codec.loads(text.encode())) == repr(json.loads(text))


@pytest.mark.parametrize(
    "text",
    [
        "12345678901234567890123",
        "[1,-12345678901234567890123]",
        "1.12345678901234567890123",
        "[1E+12345678901234567890]",
        '{"a":\n12345678901234567890123}',
        "\t12345678901234567890",
    ],
)
def test_a_long_number_in_any_position_goes_to_json(text: str) -> None:
    assert json_codec._has_long_digits(text.encode())


_PIECES = st.one_of(
    st.sampled_from([*' \t\n\r[]{},:+-.eEa"xé\u2003']),
    st.from_regex(r"[0-9]{1,25}", fullmatch=True),
)


@given(st.lists(_PIECES, max_size=8).map("".join))
def test_the_long_number_scan_is_the_plain_regex(text: str) -> None:
    # The masked bytes.find scan says what this (slow) regex says.
    expected = _NUMBER_RUN.search(text) is not None
    assert json_codec._has_long_digits(text.encode()) is expected


def test_a_zero_padded_id_stays_on_the_fast_path() -> None:
    text = '["000000000000000000000000000f4240","b00000000000000000000000000000007"]'
    assert not json_codec._has_long_digits(text.encode())
    assert json_codec.loads(text.encode()) == json.loads(text)


def test_integers_beyond_64_bits_stay_exact() -> None:
    big = 123456789012345678901234567890
    assert json_codec.loads(b'{"id": 123456789012345678901234567890}') == {"id": big}
    assert json_codec.loads(json_codec.dumps({"id": -big})) == {"id": -big}


@given(
    st.lists(
        st.text("0123456789", min_size=15, max_size=22) | st.sampled_from(["٣", "x", "\ud800", " "])
    ).map("".join)
)
def test_the_long_number_check_finds_what_a_regex_finds(text: str) -> None:
    # Only ASCII digits count; the Arabic-Indic three and lone surrogates must not, nor a
    # run that follows a letter (inside a string, never a number).
    expected = _NUMBER_RUN.search(text) is not None
    assert json_codec._has_long_digits(text.encode("utf-8", "surrogatepass")) is expected
    if "\ud800" not in text:
        assert json_codec._has_long_digits(bytearray(text.encode())) is expected


def test_what_orjson_refuses_is_decided_by_the_standard_library() -> None:
    assert math.isnan(json_codec.loads(b"NaN"))
    assert json_codec.loads(b'"\\ud800"') == "\ud800"
    assert json_codec.loads('"x"'.encode("utf-16")) == "x"
    assert json_codec.dumps({1: "a"}) == b'{"1":"a"}'
    with pytest.raises(ValueError):
        json_codec.loads(b"{not json")
    with pytest.raises(ValueError):
        json_codec.dumps("\ud800")


@given(st.text())
def test_table_keys_keep_the_standard_library_bytes(key: str) -> None:
    # A key's bytes are the key: data written before orjson must still be found.
    assert json_codec.dumps_ascii(key) == json.dumps(key).encode("ascii")


def test_table_codecs_are_registered_and_round_trip() -> None:
    from faust.serializers import codecs

    table_codec.install()
    key = "site|email|josé@example.com"
    assert codecs.dumps(table_codec.KEY_SERIALIZER, key) == json.dumps(key).encode()
    value = {"lead_id": "a", "n": 2**70, "s": "é"}
    encoded = codecs.dumps(table_codec.VALUE_SERIALIZER, value)
    assert codecs.loads(table_codec.VALUE_SERIALIZER, encoded) == value
    # What Faust's stdlib "json" codec wrote before reads back the same.
    legacy = json.dumps(value, separators=(",", ":")).encode()
    assert codecs.loads(table_codec.VALUE_SERIALIZER, legacy) == value


def test_every_table_writes_with_the_named_codecs(tmp_path: Any) -> None:
    from realgeeks_sync.app.core.settings import Settings
    from realgeeks_sync.app.streaming.faust_app import build_tables, create_app

    settings = Settings.from_env(
        {"RGSYNC_REALGEEKS_SECRETS": "x", "RGSYNC_DATA_DIR": str(tmp_path)}
    )
    app = create_app(settings)
    tables = build_tables(app, settings)
    for table in vars(tables).values():
        assert table.key_serializer == table_codec.KEY_SERIALIZER
        assert table.value_serializer == table_codec.VALUE_SERIALIZER
        assert table.data.key_serializer == table_codec.KEY_SERIALIZER
        assert table.data.value_serializer == table_codec.VALUE_SERIALIZER
        topic = table.changelog_topic
        assert (topic.key_serializer, topic.value_serializer) == (
            table_codec.KEY_SERIALIZER,
            table_codec.VALUE_SERIALIZER,
        )


_KEYS = st.text() | st.sampled_from(["site|email|josé@example.com", "a\u2028b", 'q"\\'])


@settings(max_examples=200, deadline=None)
@given(key=_KEYS, value=values)
def test_table_stores_encode_as_faust_would_without_its_registry(
    tmp_path_factory: Any, key: str, value: Any
) -> None:
    # TableView and TableBatch call the named codecs directly (table_codec.store_codec):
    # the bytes must be those Faust's serializer registry gives, both ways.
    store = _lead_snapshots_store(tmp_path_factory)
    codec = table_codec.store_codec(store)
    assert codec.encode_key is not store._encode_key  # the direct path is taken
    assert codec.encode_key(key) == store._encode_key(key)
    raw = codec.encode_value(value)
    assert raw == store._encode_value(value)
    assert codec.decode_value(raw) == store._decode_value(raw)


def test_a_stored_value_that_cannot_be_read_raises_fausts_error(tmp_path_factory: Any) -> None:
    from faust.exceptions import ValueDecodeError

    codec = table_codec.store_codec(_lead_snapshots_store(tmp_path_factory))
    with pytest.raises(ValueDecodeError):
        codec.decode_value(b"{not json")


_STORES: dict[str, Any] = {}


def _lead_snapshots_store(tmp_path_factory: Any) -> Any:
    if "store" not in _STORES:
        from realgeeks_sync.app.core.settings import Settings
        from realgeeks_sync.app.streaming.faust_app import build_tables, create_app

        data_dir = tmp_path_factory.mktemp("codec")
        settings = Settings.from_env(
            {"RGSYNC_REALGEEKS_SECRETS": "x", "RGSYNC_DATA_DIR": str(data_dir)}
        )
        _STORES["store"] = build_tables(create_app(settings), settings).lead_snapshots.data
    return _STORES["store"]


def test_standby_replicas_come_from_the_setting(tmp_path: Any) -> None:
    # Each standby copy applies every table write once more (README, capacity planning).
    from realgeeks_sync.app.core.settings import Settings
    from realgeeks_sync.app.streaming.faust_app import create_app

    base = {"RGSYNC_REALGEEKS_SECRETS": "x", "RGSYNC_DATA_DIR": str(tmp_path)}
    assert create_app(Settings.from_env(base)).conf.table_standby_replicas == 1
    none = Settings.from_env({**base, "RGSYNC_TABLE_STANDBY_REPLICAS": "0"})
    assert create_app(none).conf.table_standby_replicas == 0
