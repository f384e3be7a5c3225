"""The Cache-Status vocabulary (RFC 9211): exact wire forms, and parsing them back."""

from __future__ import annotations

import pytest

from asgi_cache.status import (
    CACHE_STATUS,
    CacheStatus,
    Detail,
    Forward,
    forwarded,
    hit,
    parse,
    stood_in,
    unanswered,
    with_key,
    with_status,
)


def test_a_hit_says_how_long_it_stays_fresh() -> None:
    assert hit(42.7) == b"asgi-cache; hit; ttl=42"


def test_a_stale_hit_has_a_negative_ttl_and_says_why() -> None:
    assert hit(-5, Detail.STALE_WHILE_REVALIDATE) == (
        b"asgi-cache; hit; ttl=-5; detail=stale-while-revalidate"
    )


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (forwarded(Forward.URI_MISS), b"asgi-cache; fwd=uri-miss"),
        (forwarded(Forward.URI_MISS, stored=True), b"asgi-cache; fwd=uri-miss; stored"),
        (forwarded(Forward.URI_MISS, collapsed=True), b"asgi-cache; fwd=uri-miss; collapsed"),
        (forwarded(Forward.REQUEST, stored=True), b"asgi-cache; fwd=request; stored"),
        (
            forwarded(Forward.URI_MISS, Detail.SET_COOKIE),
            b"asgi-cache; fwd=uri-miss; detail=set-cookie",
        ),
        (
            forwarded(Forward.BYPASS, Detail.STORE_UNAVAILABLE),
            b"asgi-cache; fwd=bypass; detail=store-unavailable",
        ),
        (forwarded(Forward.BYPASS, "x-api-key"), b"asgi-cache; fwd=bypass; detail=x-api-key"),
        (
            forwarded(Forward.STALE, stored=True, fwd_status=304),
            b"asgi-cache; fwd=stale; fwd-status=304; stored",
        ),
        (
            forwarded(Forward.STALE, Detail.NOT_STORED, fwd_status=304),
            b"asgi-cache; fwd=stale; fwd-status=304; detail=not-stored",
        ),
    ],
)
def test_forwarded_values_have_their_rfc_9211_form(value: bytes, expected: bytes) -> None:
    assert value == expected


def test_every_detail_is_a_token() -> None:
    # RFC 9211 §2.8: detail is a token or a string; tokens need no quoting.
    for detail in Detail:
        assert detail.value.replace("-", "").isalpha(), detail


def test_with_status_adds_the_header_and_leaves_the_message_alone() -> None:
    message = {"type": "http.response.start", "status": 200, "headers": [(b"a", b"1")]}
    changed = with_status(message, b"asgi-cache; hit; ttl=1")
    assert changed["headers"] == [(b"a", b"1"), (CACHE_STATUS, b"asgi-cache; hit; ttl=1")]
    assert message["headers"] == [(b"a", b"1")]


def test_with_status_works_on_a_start_without_headers() -> None:
    changed = with_status({"type": "http.response.start", "status": 204}, b"x")
    assert changed["headers"] == [(CACHE_STATUS, b"x")]


def test_parse_reads_back_a_hit() -> None:
    assert parse(hit(-20, Detail.STALE_IF_ERROR)) == CacheStatus(
        hit=True, fwd=None, stored=False, collapsed=False, ttl=-20, detail="stale-if-error"
    )


def test_parse_reads_back_a_forwarded_response() -> None:
    parsed = parse("asgi-cache; fwd=uri-miss; detail=too-large")
    assert parsed == CacheStatus(
        hit=False, fwd=Forward.URI_MISS, stored=False, collapsed=False, ttl=None, detail="too-large"
    )


def test_parse_reads_back_the_status_the_application_answered_a_validation_with() -> None:
    parsed = parse(forwarded(Forward.STALE, stored=True, fwd_status=304))
    assert parsed is not None
    assert (parsed.fwd, parsed.fwd_status, parsed.stored) == (Forward.STALE, 304, True)


def test_parse_finds_this_caches_member_among_others() -> None:
    parsed = parse("asgi-cache; fwd=uri-miss; stored, ExampleCDN; hit; ttl=30")
    assert parsed is not None and parsed.stored and parsed.fwd is Forward.URI_MISS


def test_parse_without_this_caches_member_gives_none() -> None:
    assert parse("ExampleCDN; hit") is None


def test_a_stand_in_is_forwarded_stale_with_the_applications_status() -> None:
    assert stood_in(-20.5, 503) == (
        b"asgi-cache; fwd=stale; fwd-status=503; ttl=-20; detail=stale-if-error"
    )


def test_the_caches_own_answer_carries_only_its_detail() -> None:
    assert unanswered(Detail.ONLY_IF_CACHED) == b"asgi-cache; detail=only-if-cached"


def test_with_key_adds_the_key_as_an_rfc_8941_string() -> None:
    assert with_key(b"asgi-cache; hit; ttl=1", 'a"b\\c') == (
        b'asgi-cache; hit; ttl=1; key="a\\"b\\\\c"'
    )


def test_parse_reads_back_fwd_status_and_key() -> None:
    value = with_key(stood_in(-3, 500), 'p,;"x:page:00')
    parsed = parse(value + b", ExampleCDN; hit")
    assert parsed is not None
    assert parsed.fwd is Forward.STALE and parsed.fwd_status == 500 and parsed.ttl == -3
    assert parsed.key == 'p,;"x:page:00'


@pytest.mark.parametrize("fwd", list(Forward))
def test_parse_reads_every_forward_reason_of_rfc_9211(fwd: Forward) -> None:
    parsed = parse(f"asgi-cache; fwd={fwd.value}")
    assert parsed is not None and parsed.fwd is fwd


def test_the_forward_reasons_are_those_of_rfc_9211() -> None:
    assert {fwd.value for fwd in Forward} == {
        "bypass",
        "method",
        "uri-miss",
        "vary-miss",
        "miss",
        "request",
        "stale",
        "partial",
    }
