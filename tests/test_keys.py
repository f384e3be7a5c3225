"""Cache keys: the canonical query string, the digest of a request's key components, and the
layout of every other key (as the README's "Key layout" table shows it)."""

from __future__ import annotations

import inspect
import random
import re

import pytest
from starlette.datastructures import QueryParams

from asgi_cache.keys import (
    canonical_query,
    data_key,
    entry_key,
    lock_key,
    memo_call_key,
    memo_key,
    memo_tag,
    namespace,
    path_tag,
    tag_key,
    variant_key,
)

# canonical_query


def test_an_empty_query_is_empty() -> None:
    assert canonical_query(b"") == b""


def test_parameters_are_sorted_by_name() -> None:
    assert canonical_query(b"b=2&a=1&c=3") == canonical_query(b"a=1&b=2&c=3")


def test_repeated_names_keep_their_relative_order() -> None:
    assert canonical_query(b"t=1&t=2") != canonical_query(b"t=2&t=1")


def test_repeated_names_keep_their_order_when_other_names_sort_between_them() -> None:
    assert canonical_query(b"t=1&a=0&t=2") == canonical_query(b"a=0&t=1&t=2")
    assert canonical_query(b"t=1&a=0&t=2") != canonical_query(b"a=0&t=2&t=1")


def test_a_percent_escape_equals_the_character_it_encodes() -> None:
    assert canonical_query(b"%41=%42") == canonical_query(b"A=B")


def test_percent_escapes_are_case_insensitive() -> None:
    assert canonical_query(b"q=%c3%a9") == canonical_query(b"q=%C3%A9")


def test_a_plus_is_a_space_like_percent_20() -> None:
    assert canonical_query(b"q=a+b") == canonical_query(b"q=a%20b")


def test_an_encoded_plus_is_not_a_space() -> None:
    assert canonical_query(b"q=a%2Bb") != canonical_query(b"q=a+b")


def test_a_name_without_value_equals_a_name_with_an_empty_value() -> None:
    assert canonical_query(b"a") == canonical_query(b"a=")


def test_a_name_with_a_value_differs_from_the_bare_name() -> None:
    assert canonical_query(b"a=1") != canonical_query(b"a")


@pytest.mark.parametrize("query", [b"&a=1&&b=2&", b"a=1&&&b=2", b"&&a=1&b=2"])
def test_empty_segments_are_ignored(query: bytes) -> None:
    assert canonical_query(query) == canonical_query(b"a=1&b=2")


def test_a_query_of_only_separators_equals_no_query() -> None:
    assert canonical_query(b"&&&") == canonical_query(b"")


def test_an_encoded_ampersand_stays_inside_its_value() -> None:
    assert canonical_query(b"a=1%262") != canonical_query(b"a=1&2")


def test_an_encoded_equals_sign_stays_inside_its_name() -> None:
    assert canonical_query(b"a%3Db=c") != canonical_query(b"a=b%3Dc")


@pytest.mark.parametrize(
    "query",
    [b"q=%FF", b"q=\xff", b"%FF=%FE", b"\xff\xfe=\xfd", b"q=%", b"q=%G1", b"q=%E2%82"],
)
def test_non_utf8_and_malformed_escapes_never_raise(query: bytes) -> None:
    assert isinstance(canonical_query(query), bytes)


def test_invalid_utf8_escapes_the_application_reads_alike_share_a_key() -> None:
    # Starlette reads both as "\ufffd": the application cannot answer them differently.
    assert canonical_query(b"q=%FF") == canonical_query(b"q=%FE")


@pytest.mark.parametrize(("raw", "escaped"), [(b"q=\xff", b"q=%FF"), (b"q=\xc3\xbf", b"q=%C3%BF")])
def test_a_raw_non_ascii_byte_is_keyed_apart_from_its_percent_escape(
    raw: bytes, escaped: bytes
) -> None:
    # Starlette decodes a raw byte as latin-1 but a %-escape as UTF-8: b"q=\xff" reads "ÿ" while
    # b"q=%FF" reads "\ufffd", so the two requests must not share a stored response.
    assert canonical_query(raw) != canonical_query(escaped)


def test_names_that_decode_alike_keep_their_values_in_request_order() -> None:
    # Both names read U+FFFD: the application sees ["1", "2"] against ["2", "1"].
    assert canonical_query(b"%FF=1&%FE=2") != canonical_query(b"%FE=2&%FF=1")


def test_a_raw_latin_1_byte_equals_the_utf_8_escape_of_its_character() -> None:
    # Starlette reads raw b"\xe9" as Latin-1 and %C3%A9 as UTF-8: both are "é".
    assert canonical_query(b"q=\xe9") == canonical_query(b"q=%C3%A9")


def test_escapes_are_decoded_per_run_around_raw_bytes_as_starlette_does() -> None:
    # "%C3" + raw b"\xa9" reads "\ufffd©" in Starlette, never "é" (C3 A9 joined).
    assert canonical_query(b"q=%C3\xa9") != canonical_query(b"q=%C3%A9")


def test_a_semicolon_is_part_of_a_value_not_a_separator() -> None:
    assert canonical_query(b"a=1;b=2") != canonical_query(b"a=1&b=2")


def test_a_100_kb_query_string_is_canonicalised() -> None:
    query = b"&".join(b"p%d=%d" % (i, i) for i in range(12_000))
    assert len(query) > 100_000
    shuffled = b"&".join(reversed(query.split(b"&")))
    assert canonical_query(shuffled) == canonical_query(query)


def test_a_single_100_kb_value_is_canonicalised() -> None:
    assert canonical_query(b"q=" + b"x" * 100_000) != canonical_query(b"q=" + b"x" * 99_999)


# entry_key

KEY = re.compile(r"^(?P<prefix>.+):page:[0-9a-f]{32}$")


def key(parts: tuple[bytes, ...] = (), headers: tuple[list[bytes] | None, ...] = ()) -> str:
    return entry_key("asgi-cache", parts, headers)


def test_a_key_reads_prefix_page_and_32_hex_digits() -> None:
    match = KEY.match(entry_key("shop:v1", (b"/products",), [[b"en"]]))
    assert match is not None
    assert match["prefix"] == "shop:v1"


def test_the_same_components_give_the_same_key() -> None:
    assert key((b"/a", b"q"), ([b"en"],)) == key((b"/a", b"q"), ([b"en"],))


def test_the_prefix_is_part_of_the_key() -> None:
    assert entry_key("one", (b"/a",), ()) != entry_key("two", (b"/a",), ())


@pytest.mark.parametrize(
    ("first", "second"),
    [
        pytest.param((b"ab", b"c"), (b"a", b"bc"), id="boundary-moved"),
        pytest.param((b"abc", b""), (b"", b"abc"), id="empty-part-moved"),
        pytest.param((b"a", b""), (b"a",), id="trailing-empty-part"),
        pytest.param((b"\x00\x00\x00\x01a",), (b"", b"a"), id="part-mimics-a-length-prefix"),
        pytest.param(
            (b"/p", canonical_query(b"a=b%26c%3Dd")),
            (b"/p", canonical_query(b"a=b&c=d")),
            id="query-value-mimics-a-second-pair",
        ),
        pytest.param(
            (b"/p", canonical_query(b"a=%00%00%00%01b%00%00%00%00")),
            (b"/p", canonical_query(b"a=&b=")),
            id="query-value-mimics-length-prefixed-pairs",
        ),
    ],
)
def test_crafted_parts_cannot_collide(first: tuple[bytes, ...], second: tuple[bytes, ...]) -> None:
    assert key(first) != key(second)


@pytest.mark.parametrize(
    ("first", "second"),
    [
        pytest.param(None, [b""], id="absent-vs-empty"),
        pytest.param(None, [], id="absent-vs-no-values"),
        pytest.param([], [b""], id="no-values-vs-one-empty"),
        pytest.param([b"a", b"b"], [b"a, b"], id="two-values-vs-joined-with-comma-space"),
        pytest.param([b"a", b"b"], [b"a,b"], id="two-values-vs-joined-with-comma"),
        pytest.param([b"a", b"b"], [b"ab"], id="two-values-vs-concatenated"),
        pytest.param([b"a", b""], [b"a"], id="trailing-empty-value"),
        pytest.param([b"\xff\xff\xff\xff"], None, id="value-mimics-the-absent-marker"),
    ],
)
def test_crafted_header_values_cannot_collide(
    first: list[bytes] | None, second: list[bytes] | None
) -> None:
    assert key((b"/p",), (first,)) != key((b"/p",), (second,))


def test_which_key_header_holds_a_value_is_part_of_the_key() -> None:
    assert key((b"/p",), (None, [b"x"])) != key((b"/p",), ([b"x"], None))


def test_a_header_value_cannot_pass_for_a_part() -> None:
    assert key((b"/p", b"en"), ()) != key((b"/p",), ([b"en"],))


def test_many_crafted_requests_all_get_distinct_keys() -> None:
    requests = [
        ((b"/a", b""), (None,)),
        ((b"/a", b""), ([b""],)),
        ((b"/a", b""), ([b"", b""],)),
        ((b"/a", b""), ([b"x"],)),
        ((b"/a", b"x"), (None,)),
        ((b"/ax", b""), (None,)),
        ((b"/", b"ax"), (None,)),
        ((b"/a", canonical_query(b"x")), (None,)),
        ((b"/a", canonical_query(b"x=")), ([b""],)),
        ((b"/a", canonical_query(b"x=1&y=2")), (None,)),
        ((b"/a", canonical_query(b"x=1%26y%3D2")), (None,)),
        ((b"/a", canonical_query(b"x%3D1=y")), (None,)),
    ]
    keys = {key(parts, headers) for parts, headers in requests}
    assert len(keys) == len(requests)


# the other keys, as the README's "Key layout" table shows them for the prefix "shop:v1"

PAGE = entry_key("shop:v1", (b"/products/42",), ())


def lookup(product_id: int, currency: str = "EUR") -> None:
    """A function to memoize, by name."""


def test_a_tag_key_reads_prefix_tag_and_the_tag() -> None:
    assert tag_key("shop:v1", "product:42") == "shop:v1:tag:product:42"


def test_a_path_tag_reads_prefix_path_and_the_path() -> None:
    assert path_tag("shop:v1", "/products/42") == "shop:v1:path:/products/42"


def test_a_lock_key_is_the_page_key_it_guards_plus_lock() -> None:
    assert lock_key(PAGE) == PAGE + ":lock"
    assert re.fullmatch(r"shop:v1:page:[0-9a-f]{32}:lock", lock_key(PAGE))


def test_each_page_key_has_its_own_lock() -> None:
    other = entry_key("shop:v1", (b"/products/43",), ())
    assert lock_key(PAGE) != lock_key(other)


def test_a_memo_key_reads_prefix_memo_the_function_and_32_hex_digits() -> None:
    assert re.fullmatch(
        r"shop:v1:memo:tests\.test_keys\.lookup:[0-9a-f]{32}", memo_key("shop:v1", lookup, 42)
    )


def test_a_memo_key_is_the_same_for_equal_arguments() -> None:
    assert memo_key("shop:v1", lookup, 42) == memo_key("shop:v1", lookup, 42)
    assert memo_key("shop:v1", lookup, 42) == memo_key("shop:v1", lookup, product_id=42)
    assert memo_key("shop:v1", lookup, 42) == memo_key("shop:v1", lookup, 42, "EUR")


def test_a_memo_key_differs_for_different_arguments() -> None:
    assert memo_key("shop:v1", lookup, 42) != memo_key("shop:v1", lookup, 43)
    assert memo_key("shop:v1", lookup, 42) != memo_key("shop:v1", lookup, 42, "USD")


def test_a_memo_call_key_equals_the_memo_key_of_the_same_call() -> None:
    signature = inspect.signature(lookup)
    name = "tests.test_keys.lookup"
    assert memo_call_key("shop:v1", name, signature, (42,), {}) == memo_key("shop:v1", lookup, 42)


def test_a_memo_key_has_its_own_lock() -> None:
    key = memo_key("shop:v1", lookup, 42)
    assert lock_key(key) == key + ":lock"


def test_a_memo_tag_names_the_function() -> None:
    assert memo_tag("tests.test_keys.lookup") == "memo:tests.test_keys.lookup"
    assert tag_key("shop:v1", memo_tag("m.f")) == "shop:v1:tag:memo:m.f"


def test_a_data_key_reads_prefix_data_and_the_key() -> None:
    assert data_key("shop:v1", "greeting") == "shop:v1:data:greeting"


def test_the_namespace_is_the_prefix_and_its_separator() -> None:
    assert namespace("shop:v1") == "shop:v1:"


@pytest.mark.parametrize(
    "made",
    [
        PAGE,
        lock_key(PAGE),
        tag_key("shop:v1", "product:42"),
        path_tag("shop:v1", "/products/42"),
        memo_key("shop:v1", lookup, 42),
        data_key("shop:v1", "greeting"),
    ],
)
def test_every_key_lives_in_its_cache_s_namespace(made: str) -> None:
    assert made.startswith(namespace("shop:v1"))


def test_a_longer_prefix_is_outside_the_namespace() -> None:
    assert not data_key("shop2", "greeting").startswith(namespace("shop"))


# canonical_query against Starlette's own parsing, over generated query strings

# Pieces with several spellings of one reading ("é" raw and escaped, "+" and "%20", "a" and
# "%61"), invalid and overlong UTF-8, raw high bytes, and every separator Starlette might use.
_PIECES = [
    b"a", b"b", b"%61", b"%41", b"A", b"1", b"+", b"%20", b" ", b"%2B", b"%2b",
    b"\xe9", b"%C3%A9", b"%c3%a9", b"%C3", b"%A9", b"\xc3", b"\xa9", b"\xff", b"%FF", b"%FE",
    b"%C0%80", b"%E2%82", b"%ED%A0%80", b"%EF%BF%BD", b"%F4%90%80%80", b"%", b"%G1", b"%0",
    b"=", b"=", b"&", b"&", b"&", b";", b"%26", b"%3D", b"%3B",
]  # fmt: skip


def _query(rng: random.Random) -> bytes:
    return b"".join(rng.choice(_PIECES) for _ in range(rng.randrange(0, 9)))


def _respelled(query: bytes, rng: random.Random) -> bytes:
    """``query`` with its pairs shuffled and empty pairs added: often read alike, not always."""
    parts = query.split(b"&")
    rng.shuffle(parts)
    if rng.random() < 0.5:
        parts.insert(rng.randrange(len(parts) + 1), b"")
    return b"&".join(parts)


def _seen(query: bytes) -> tuple[tuple[str, tuple[str, ...]], ...]:
    """What the application reads: each name's values, in order (Starlette's QueryParams)."""
    params = QueryParams(query)
    return tuple(sorted((name, tuple(params.getlist(name))) for name in params))


def test_requests_read_differently_never_share_a_key() -> None:
    rng = random.Random(9110)
    seen_by_key: dict[bytes, set[tuple[tuple[str, tuple[str, ...]], ...]]] = {}
    for _ in range(3000):
        query = _query(rng)
        for spelling in (query, _respelled(query, rng)):
            seen_by_key.setdefault(canonical_query(spelling), set()).add(_seen(spelling))
    assert {key: seen for key, seen in seen_by_key.items() if len(seen) > 1} == {}
    assert len(seen_by_key) > 1000  # the generator reaches many different readings


def test_requests_read_alike_share_one_key() -> None:
    rng = random.Random(3986)
    keys_by_seen: dict[tuple[tuple[str, tuple[str, ...]], ...], set[bytes]] = {}
    spellings = 0
    for _ in range(3000):
        query = _query(rng)
        for spelling in (query, _respelled(query, rng)):
            keys_by_seen.setdefault(_seen(spelling), set()).add(canonical_query(spelling))
            spellings += 1
    assert {seen: keys for seen, keys in keys_by_seen.items() if len(keys) > 1} == {}
    assert spellings > 2 * len(keys_by_seen)  # most readings come in several spellings


# variant_key

VARIED = "shop:page:" + "0" * 32


def test_a_variant_lives_under_its_page_key() -> None:
    assert re.fullmatch(rf"{VARIED}:vary:[0-9a-f]{{32}}", variant_key(VARIED, (b"x-a",), (b"1",)))


def test_the_same_values_give_the_same_variant() -> None:
    assert variant_key(VARIED, (b"x-a",), (b"1",)) == variant_key(VARIED, (b"x-a",), (b"1",))


@pytest.mark.parametrize(
    ("first", "second"),
    [
        pytest.param(((b"x-a",), (None,)), ((b"x-a",), (b"",)), id="absent-vs-empty"),
        pytest.param(((b"x-a",), (b"1",)), ((b"x-a",), (b"2",)), id="other-value"),
        pytest.param(((b"x-a",), (b"1",)), ((b"x-b",), (b"1",)), id="other-name"),
        pytest.param(
            ((b"x-a", b"x-b"), (b"1,", b"2")), ((b"x-a", b"x-b"), (b"1", b",2")), id="boundary"
        ),
    ],
)
def test_different_selections_give_different_variants(
    first: tuple[tuple[bytes, ...], tuple[bytes | None, ...]],
    second: tuple[tuple[bytes, ...], tuple[bytes | None, ...]],
) -> None:
    assert variant_key(VARIED, *first) != variant_key(VARIED, *second)
