"""The stored response and its binary form: exact round trips, and CorruptEntry for the rest."""

from __future__ import annotations

import json
import math
import random
import struct

import pytest

from asgi_cache.entry import (
    CorruptEntry,
    DecodedEntries,
    Entry,
    VaryRecord,
    decode,
    decode_record,
    encode,
    encode_record,
)

HEADERS = [
    (b"content-type", b"text/html; charset=utf-8"),
    (b"link", b"</a.css>; rel=preload"),
    (b"x-trace", b"1"),
    (b"link", b"</b.js>; rel=preload"),
    (b"Content-Language", b"en"),
    (b"link", b"</c.woff2>; rel=preload"),
]

ENTRY = Entry(200, HEADERS, b"<html>\x00\xff\r\n</html>", 1_700_000_000.25, 60.0)


def test_a_round_trip_gives_an_equal_entry() -> None:
    assert decode(encode(ENTRY)) == ENTRY


def test_repeated_headers_keep_their_order() -> None:
    links = [value for name, value in decode(encode(ENTRY)).headers if name == b"link"]
    assert links == [b"</a.css>; rel=preload", b"</b.js>; rel=preload", b"</c.woff2>; rel=preload"]


def test_header_names_keep_their_case() -> None:
    assert (b"Content-Language", b"en") in decode(encode(ENTRY)).headers


def test_every_byte_value_survives_in_headers_and_body() -> None:
    every_byte = bytes(range(256))
    entry = Entry(200, [(every_byte, every_byte)], every_byte * 3, 0.0, 1.0)
    assert decode(encode(entry)) == entry


def test_an_empty_body_and_no_headers_survive() -> None:
    entry = Entry(204, [], b"", 1.0, 2.0)
    assert decode(encode(entry)) == entry


def test_empty_header_names_and_values_survive() -> None:
    entry = Entry(200, [(b"", b""), (b"x", b""), (b"", b"y")], b"body", 1.0, 2.0)
    assert decode(encode(entry)) == entry


def test_a_large_body_and_a_long_header_survive() -> None:
    entry = Entry(200, [(b"x-long", b"v" * 70_000)], b"b" * 2_000_000, 1.0, 2.0)
    assert decode(encode(entry)) == entry


def test_times_survive_exactly() -> None:
    entry = Entry(200, [], b"", 1_700_000_000.123456, 0.1 + 0.2)
    decoded = decode(encode(entry))
    assert (decoded.stored_at, decoded.fresh_for) == (entry.stored_at, entry.fresh_for)


@pytest.mark.parametrize("status", [100, 200, 304, 404, 599])
def test_statuses_in_range_survive(status: int) -> None:
    assert decode(encode(Entry(status, [], b"", 0.0, 1.0))).status == status


def test_the_decoded_body_is_bytes() -> None:
    assert type(decode(encode(ENTRY)).body) is bytes


# CorruptEntry

#: The entry header as these tests build it by hand: magic, status, stored_at, fresh_for,
#: stale_while_revalidate, stale_if_error, header count, body length.
HEAD = struct.Struct("!3sHddddHI")
FIELD = struct.Struct("!HI")  # one header: name length, value length
TRUNCATED = "entry header is truncated or not bytes"
FOREIGN = "not an asgi-cache entry"
OUT_OF_RANGE = "entry fields are out of range"


def head(
    status: int = 200,
    stored_at: float = 0.0,
    fresh_for: float = 1.0,
    stale_while_revalidate: float = 0.0,
    stale_if_error: float = 0.0,
    count: int = 0,
    body_len: int = 0,
) -> bytes:
    """A header built by hand, bypassing any check ``Entry`` or ``encode`` might make."""
    return HEAD.pack(
        b"AC\x01",
        status,
        stored_at,
        fresh_for,
        stale_while_revalidate,
        stale_if_error,
        count,
        body_len,
    )


def test_the_hand_built_header_is_the_one_encode_writes() -> None:
    """Keeps the tests below honest: a stale layout would fail them all for the wrong reason."""
    entry = Entry(201, [(b"a", b"bc")], b"body", 1.5, 2.5, 3.5, 4.5)
    expected = head(201, 1.5, 2.5, 3.5, 4.5, 1, 4) + FIELD.pack(1, 2) + b"abc" + b"body"
    assert encode(entry) == expected
    assert decode(expected) == entry


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        pytest.param(b"", TRUNCATED, id="empty"),
        pytest.param(b"A", TRUNCATED, id="one-byte"),
        pytest.param(b"AC\x01", TRUNCATED, id="magic-only"),
        pytest.param(b"XX\x01" + encode(ENTRY)[3:], FOREIGN, id="wrong-magic"),
        pytest.param(b"AC\x02" + encode(ENTRY)[3:], FOREIGN, id="other-version"),
        pytest.param(
            json.dumps({"status": 200, "headers": [], "body": "x" * 40}).encode(),
            FOREIGN,
            id="json-bytes",
        ),
        pytest.param(json.dumps({"status": 200, "body": "x"}), TRUNCATED, id="json-str"),
        pytest.param("AC\x01" + "x" * 40, TRUNCATED, id="str-with-magic"),
        pytest.param(b"\x80\x04\x95" + b"\x00" * 40, FOREIGN, id="pickle-like"),
        pytest.param(None, TRUNCATED, id="none"),
        pytest.param(12, TRUNCATED, id="int"),
    ],
)
def test_foreign_values_raise_corrupt_entry(data: object, reason: str) -> None:
    with pytest.raises(CorruptEntry, match=reason):
        decode(data)  # type: ignore[arg-type]


@pytest.mark.parametrize("status", [0, 99, 600, 999, 65535])
def test_an_out_of_range_status_raises_corrupt_entry(status: int) -> None:
    with pytest.raises(CorruptEntry, match=OUT_OF_RANGE):
        decode(head(status=status))


@pytest.mark.parametrize("fresh_for", [-1.0, -math.inf, math.inf, math.nan])
def test_a_negative_infinite_or_nan_lifetime_raises_corrupt_entry(fresh_for: float) -> None:
    with pytest.raises(CorruptEntry, match=OUT_OF_RANGE):
        decode(head(fresh_for=fresh_for))


@pytest.mark.parametrize("field", ["stale_while_revalidate", "stale_if_error"])
@pytest.mark.parametrize("seconds", [-1.0, math.inf, math.nan])
def test_a_negative_infinite_or_nan_stale_window_raises_corrupt_entry(
    field: str, seconds: float
) -> None:
    with pytest.raises(CorruptEntry, match=OUT_OF_RANGE):
        decode(head(**{field: seconds}))  # type: ignore[arg-type]


@pytest.mark.parametrize("stored_at", [math.nan, math.inf, -math.inf])
def test_a_nan_or_infinite_storage_time_raises_corrupt_entry(stored_at: float) -> None:
    with pytest.raises(CorruptEntry, match=OUT_OF_RANGE):
        decode(head(stored_at=stored_at))


def test_a_header_count_beyond_the_data_raises_corrupt_entry() -> None:
    data = head(count=3) + FIELD.pack(1, 1) + b"ab"
    with pytest.raises(CorruptEntry, match="header table is truncated"):
        decode(data)


def test_a_header_length_beyond_the_data_raises_corrupt_entry() -> None:
    data = head(count=1) + FIELD.pack(1, 2**32 - 1) + b"abc"
    with pytest.raises(CorruptEntry, match="header runs past the end of the entry"):
        decode(data)


@pytest.mark.parametrize("body_len", [3, 5])
def test_a_body_length_other_than_the_rest_of_the_data_raises_corrupt_entry(
    body_len: int,
) -> None:
    with pytest.raises(CorruptEntry, match="body length does not match"):
        decode(head(body_len=body_len) + b"body")


def test_every_truncation_of_a_valid_entry_raises_corrupt_entry() -> None:
    data = encode(ENTRY)
    survived = []
    for length in range(len(data)):
        try:
            decode(data[:length])
        except CorruptEntry:
            continue
        survived.append(length)
    assert survived == [], f"truncated to these lengths of {len(data)}, decode still succeeded"


def test_random_bytes_raise_corrupt_entry() -> None:
    rng = random.Random(3)
    for _ in range(500):
        data = rng.randbytes(rng.randrange(200))
        with pytest.raises(CorruptEntry):
            decode(data)


def test_random_bytes_after_a_valid_magic_decode_or_raise_corrupt_entry() -> None:
    rng = random.Random(4)
    for _ in range(2000):
        data = b"AC\x01" + rng.randbytes(rng.randrange(200))
        try:
            entry = decode(data)
        except CorruptEntry:
            continue
        assert 100 <= entry.status <= 599
        assert entry.fresh_for >= 0.0


def test_a_flipped_byte_raises_corrupt_entry_or_decodes_to_exactly_those_bytes() -> None:
    """Whatever decode accepts, it read whole: encoding it again gives the very same bytes."""
    data = encode(ENTRY)
    accepted = 0
    for index in range(len(data)):
        for flip in (0x01, 0x80, 0xFF):
            corrupted = bytearray(data)
            corrupted[index] ^= flip
            try:
                entry = decode(bytes(corrupted))
            except CorruptEntry:
                continue
            accepted += 1
            assert encode(entry) == bytes(corrupted), f"byte {index} ^ {flip:#x}"
    assert accepted > 0  # flips in header values and the body are data, not corruption


# Entry times


def test_age_is_the_time_since_storage() -> None:
    assert Entry(200, [], b"", 100.0, 10.0).age(now=104.5) == 4.5


def test_age_is_never_negative_despite_clock_skew() -> None:
    assert Entry(200, [], b"", 100.0, 10.0).age(now=90.0) == 0.0


def test_an_entry_is_fresh_until_its_lifetime_has_passed() -> None:
    entry = Entry(200, [], b"", 100.0, 10.0)
    assert entry.is_fresh(109.999)
    assert not entry.is_fresh(110.0)


# VaryRecord


def test_a_vary_record_round_trips() -> None:
    record = VaryRecord((b"accept-encoding", b"x-tenant"))
    assert decode_record(encode_record(record)) == record


@pytest.mark.parametrize(
    "data",
    [
        pytest.param(b"AV\x01", id="no-names"),
        pytest.param(b"AV\x01x-b,x-a", id="unsorted"),
        pytest.param(b"AV\x01X-A", id="upper-case"),
        pytest.param(b"AV\x01x a", id="not-a-field-name"),
        pytest.param(b"AC\x01x-a", id="entry-magic"),
    ],
)
def test_a_malformed_vary_record_is_corrupt(data: bytes) -> None:
    with pytest.raises(CorruptEntry):
        decode_record(data)


def test_decoded_entries_tell_a_vary_record_from_an_entry() -> None:
    decoded = DecodedEntries()
    assert decoded.decode(encode_record(VaryRecord((b"x-a",))), "k") == VaryRecord((b"x-a",))
    assert decoded.decode(encode(ENTRY), "k") == ENTRY
