"""Parsing of Cache-Control, Vary, If-None-Match and Accept-Encoding on raw bytes."""

from __future__ import annotations

import random

import pytest
from starlette.applications import Starlette
from starlette.middleware.gzip import GZipMiddleware
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import Route
from starlette.testclient import TestClient

from asgi_cache import Cache, CacheMiddleware, MemoryStore, cached
from asgi_cache.headers import (
    accepted_codings,
    etag_matches,
    is_token,
    parse_cache_control,
    parse_vary,
)

# parse_cache_control


def test_directives_without_argument_map_to_an_empty_string() -> None:
    assert parse_cache_control([b"no-store, public"]) == {"no-store": "", "public": ""}


def test_directive_names_are_lower_cased() -> None:
    assert parse_cache_control([b"No-Store, MAX-AGE=5"]) == {"no-store": "", "max-age": "5"}


def test_token_arguments_are_kept_as_they_are() -> None:
    assert parse_cache_control([b"max-age=60, s-maxage=120"]) == {
        "max-age": "60",
        "s-maxage": "120",
    }


def test_a_quoted_argument_loses_its_quotes() -> None:
    assert parse_cache_control([b'max-age="30"']) == {"max-age": "30"}


def test_a_quoted_argument_may_hold_commas() -> None:
    assert parse_cache_control([b'private="set-cookie, x-user", max-age=5']) == {
        "private": "set-cookie, x-user",
        "max-age": "5",
    }


def test_a_quoted_argument_keeps_its_case() -> None:
    assert parse_cache_control([b'no-cache="X-Token"']) == {"no-cache": "X-Token"}


def test_an_escaped_quote_inside_a_quoted_argument_is_unescaped() -> None:
    assert parse_cache_control([rb'ext="a\"b", max-age=1']) == {"ext": 'a"b', "max-age": "1"}


def test_an_escaped_backslash_inside_a_quoted_argument_is_one_backslash() -> None:
    # RFC 9110 §5.6.4: quoted-pair = "\" ( HTAB / SP / VCHAR / obs-text )
    assert parse_cache_control([rb'ext="a\\b"']) == {"ext": "a\\b"}


def test_a_parse_is_the_callers_own_to_change() -> None:
    first = parse_cache_control([b"max-age=60, public"])
    first["private"] = ""
    del first["max-age"]
    assert parse_cache_control([b"max-age=60, public"]) == {"max-age": "60", "public": ""}


def test_long_and_many_distinct_values_parse_alike() -> None:
    long = b"max-age=60, " + b", ".join(b"x-%d" % i for i in range(100))
    assert parse_cache_control([long])["max-age"] == "60"
    assert parse_cache_control([long])["x-99"] == ""
    for age in range(2000):
        assert parse_cache_control([b"max-age=%d" % age]) == {"max-age": str(age)}
    assert parse_cache_control([b"max-age=7"]) == {"max-age": "7"}


def test_whitespace_around_directives_and_arguments_is_ignored() -> None:
    assert parse_cache_control([b"  max-age = 5 ,  public  "]) == {"max-age": "5", "public": ""}


def test_directives_of_several_field_lines_are_merged() -> None:
    assert parse_cache_control([b"public", b"max-age=5"]) == {"public": "", "max-age": "5"}


def test_the_first_occurrence_of_a_directive_wins() -> None:
    assert parse_cache_control([b"max-age=5, max-age=10"]) == {"max-age": "5"}


def test_no_values_give_no_directives() -> None:
    assert parse_cache_control([]) == {}


def test_empty_list_elements_are_skipped() -> None:
    assert parse_cache_control([b",, no-store ,,"]) == {"no-store": ""}


@pytest.mark.parametrize(
    "value",
    [
        b"",
        b",",
        b"=",
        b"=5",
        b'"',
        b'max-age="5',
        b'a="\\',
        b"max-age=5 junk",
        b"\x00\xff\x80",
        b"no-store;max-age=1",
        b"a" * 10_000,
        b'"' * 1000,
        b"=,=,=",
    ],
)
def test_junk_does_not_raise(value: bytes) -> None:
    assert isinstance(parse_cache_control([value]), dict)


def test_random_bytes_never_raise() -> None:
    rng = random.Random(9111)
    alphabet = b' \t,="\\;abcnostreprivm-0123456789\xff'
    for _ in range(500):
        value = bytes(rng.choice(alphabet) for _ in range(rng.randrange(40)))
        assert isinstance(parse_cache_control([value]), dict)


def test_junk_next_to_a_directive_does_not_hide_a_later_directive() -> None:
    assert "no-store" in parse_cache_control([b"@@@ ###, no-store"])


# parse_vary


def test_vary_names_are_lower_cased_and_stripped() -> None:
    assert parse_vary([b" Accept-Encoding ,USER-AGENT"]) == {"accept-encoding", "user-agent"}


def test_vary_names_of_several_field_lines_are_merged() -> None:
    assert parse_vary([b"accept-encoding", b"accept-language"]) == {
        "accept-encoding",
        "accept-language",
    }


def test_vary_star_is_kept() -> None:
    assert parse_vary([b"*"]) == {"*"}


def test_empty_vary_elements_are_skipped() -> None:
    assert parse_vary([b", ,", b""]) == frozenset()


# etag_matches


def test_the_same_strong_etag_matches() -> None:
    assert etag_matches(b'"abc"', b'"abc"')


def test_a_different_etag_does_not_match() -> None:
    assert not etag_matches(b'"abc"', b'"abd"')


@pytest.mark.parametrize(
    ("if_none_match", "etag"),
    [(b'W/"abc"', b'"abc"'), (b'"abc"', b'W/"abc"'), (b'W/"abc"', b'W/"abc"')],
)
def test_weak_comparison_ignores_the_weak_marker(if_none_match: bytes, etag: bytes) -> None:
    assert etag_matches(if_none_match, etag)


@pytest.mark.parametrize("if_none_match", [b"*", b" * "])
def test_star_matches_any_etag(if_none_match: bytes) -> None:
    assert etag_matches(if_none_match, b'"anything"')


@pytest.mark.parametrize("if_none_match", [b'"x", "abc"', b'"x","abc","y"', b' "x" , W/"abc" '])
def test_any_etag_of_a_list_may_match(if_none_match: bytes) -> None:
    assert etag_matches(if_none_match, b'"abc"')


def test_a_list_without_the_etag_does_not_match() -> None:
    assert not etag_matches(b'"x", "y", W/"z"', b'"abc"')


def test_an_unquoted_value_does_not_match_a_quoted_etag() -> None:
    assert not etag_matches(b"abc", b'"abc"')


# accepted_codings


@pytest.mark.parametrize("value", [None, b""])
def test_no_accept_encoding_accepts_no_coding(value: bytes | None) -> None:
    assert accepted_codings(value) == b""


def test_unknown_codings_are_dropped() -> None:
    assert accepted_codings(b"identity, compress, exi") == b""


@pytest.mark.parametrize(
    "value",
    [
        b"gzip, br",
        b"br, gzip",
        b"br,gzip",
        b"  gzip ,   br  ",
        b"GZIP, BR",
        b"br;q=0.5, gzip;q=1.0",
        b"gzip;q=1, br; q=0.1",
        b"gzip, br, gzip",
    ],
)
def test_order_case_whitespace_and_nonzero_q_do_not_change_the_codings(value: bytes) -> None:
    assert accepted_codings(value) == accepted_codings(b"br, gzip")


def test_all_known_codings_are_listed() -> None:
    assert accepted_codings(b"zstd, gzip, deflate, br") == b"br,deflate,gzip,zstd"


@pytest.mark.parametrize(
    "value", [b"gzip;q=0, br", b"gzip; q=0.0, br;q=1", b"br, gzip;Q=0.000", b"gzip ; q = 0 , br"]
)
def test_a_coding_with_q_0_is_not_accepted(value: bytes) -> None:
    assert accepted_codings(value) == b"br"


def test_a_small_nonzero_q_still_accepts_the_coding() -> None:
    assert accepted_codings(b"gzip;q=0.001") == b"gzip"


@pytest.mark.parametrize("value", [b"*", b"*;q=0.5", b"identity, *"])
def test_a_wildcard_accepts_every_known_coding(value: bytes) -> None:
    assert accepted_codings(value) == b"br,deflate,gzip,zstd"


def test_a_wildcard_accepts_the_codings_not_refused_by_name() -> None:
    assert accepted_codings(b"*, gzip;q=0") == b"br,deflate,zstd"


@pytest.mark.parametrize("value", [b"*;q=0", b"*;q=0, identity"])
def test_a_refused_wildcard_accepts_nothing_unlisted(value: bytes) -> None:
    assert accepted_codings(value) == b""


def test_a_refused_wildcard_leaves_listed_codings_accepted() -> None:
    assert accepted_codings(b"gzip, *;q=0") == b"gzip"


def test_a_coding_both_accepted_and_refused_is_refused() -> None:
    assert accepted_codings(b"gzip;q=1, gzip;q=0") == b""


# Accept-Encoding keyed as a compressing middleware below the cache reads it


def gzip_app() -> Starlette:
    @cached(ttl=60)
    async def page(request: Request) -> PlainTextResponse:
        return PlainTextResponse("x" * 2000)

    app = Starlette(routes=[Route("/page", page)])
    app.add_middleware(GZipMiddleware)
    app.add_middleware(CacheMiddleware, cache=Cache(MemoryStore()))
    return app


def test_a_client_without_gzip_is_not_served_a_gzip_body_stored_for_another() -> None:
    with TestClient(gzip_app()) as client:
        first = client.get("/page", headers={"accept-encoding": "gzip"})
        assert first.headers["content-encoding"] == "gzip"
        second = client.get("/page", headers={"accept-encoding": "identity"})
    assert "content-encoding" not in second.headers


def test_a_gzip_body_stored_for_gzip_q_0_is_not_served_to_a_client_without_gzip() -> None:
    # Starlette's GZipMiddleware compresses whenever "gzip" appears in Accept-Encoding, q=0 or
    # not, so a response stored for "gzip;q=0" is gzip-encoded.
    with TestClient(gzip_app()) as client:
        first = client.get("/page", headers={"accept-encoding": "gzip;q=0"})
        assert first.headers["content-encoding"] == "gzip"
        second = client.get("/page", headers={"accept-encoding": "identity"})
    assert "content-encoding" not in second.headers


# is_token


@pytest.mark.parametrize(
    "name", ["authorization", "x-api-key", "Accept-Language", "a!#$%&'*+.^_`|~"]
)
def test_field_names_made_of_token_characters_are_tokens(name: str) -> None:
    assert is_token(name)


@pytest.mark.parametrize("name", ["", "a b", "x:y", "x-user\n", "x-user\r\n", "\nx-user", "é"])
def test_anything_else_is_not_a_token(name: str) -> None:
    assert not is_token(name)
