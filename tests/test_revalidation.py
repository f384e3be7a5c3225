"""Revalidation rules (RFC 9111 §4.3) as pure functions: validators, 304 merging, lifetimes."""

from __future__ import annotations

import pytest

from asgi_cache.policy import with_etag
from asgi_cache.revalidation import (
    body_etag,
    conditional_headers,
    selects,
    updated_headers,
    validated_at_every_reuse,
    validators,
)

Headers = list[tuple[bytes, bytes]]

DATE = b"Tue, 01 Dec 2026 10:00:00 GMT"


# validators (§4.3.1)


def test_the_applications_etag_becomes_if_none_match() -> None:
    assert validators([(b"etag", b'W/"v1"')], b"body") == [(b"if-none-match", b'W/"v1"')]


def test_last_modified_becomes_if_modified_since() -> None:
    assert validators([(b"Last-Modified", DATE)], b"body") == [(b"if-modified-since", DATE)]


def test_both_validators_are_sent_together() -> None:
    headers = [(b"etag", b'"v1"'), (b"last-modified", DATE)]
    assert validators(headers, b"body") == [
        (b"if-none-match", b'"v1"'),
        (b"if-modified-since", DATE),
    ]


def test_the_etag_the_cache_generated_is_no_validator() -> None:
    assert validators(with_etag([(b"last-modified", DATE)], b"body"), b"body") == [
        (b"if-modified-since", DATE)
    ]


def test_a_response_without_validators_has_none() -> None:
    assert validators([(b"content-type", b"text/plain")], b"body") == []


def test_an_etag_equal_to_another_bodys_digest_is_the_applications() -> None:
    assert validators([(b"etag", body_etag(b"other"))], b"body") == [
        (b"if-none-match", body_etag(b"other"))
    ]


# conditional_headers (§4.3.1, §4.3.2)


def test_the_validators_are_added_to_the_clients_request() -> None:
    request = [(b"host", b"example.com"), (b"accept", b"text/html")]
    assert conditional_headers(request, [(b"if-none-match", b'"v1"')]) == [
        *request,
        (b"if-none-match", b'"v1"'),
    ]


def test_the_clients_own_conditionals_are_replaced_by_the_caches() -> None:
    request = [
        (b"host", b"example.com"),
        (b"If-None-Match", b'"old"'),
        (b"if-modified-since", DATE),
    ]
    assert conditional_headers(request, [(b"if-none-match", b'"v1"')]) == [
        (b"host", b"example.com"),
        (b"if-none-match", b'"v1"'),
    ]


def test_other_preconditions_of_the_client_are_kept() -> None:
    request = [(b"if-match", b'"v1"'), (b"if-unmodified-since", DATE)]
    assert conditional_headers(request, []) == request


# selects (§4.3.4)


def test_a_304_with_the_stored_etag_selects_the_entry() -> None:
    assert selects([(b"etag", b'"v1"')], [(b"etag", b'"v1"')])


def test_a_weak_etag_matches_its_strong_form() -> None:
    assert selects([(b"etag", b'"v1"')], [(b"ETag", b'W/"v1"')])


def test_a_304_with_another_etag_does_not_select_the_entry() -> None:
    assert not selects([(b"etag", b'"v1"')], [(b"etag", b'"v2"')])


def test_a_304_without_an_etag_selects_the_entry_validated() -> None:
    assert selects([(b"etag", b'"v1"')], [(b"cache-control", b"max-age=60")])


def test_a_304_with_an_etag_for_an_entry_without_one_does_not_select_it() -> None:
    assert not selects([(b"last-modified", DATE)], [(b"etag", b'"v1"')])


# updated_headers (§4.3.4, §3.2)


def test_the_304s_fields_replace_the_stored_ones_and_the_rest_stays() -> None:
    stored = [
        (b"content-type", b"text/html"),
        (b"cache-control", b"max-age=10"),
        (b"link", b"</a.css>; rel=preload"),
        (b"link", b"</b.js>; rel=preload"),
    ]
    assert updated_headers(stored, [(b"Cache-Control", b"max-age=60")]) == [
        (b"content-type", b"text/html"),
        (b"link", b"</a.css>; rel=preload"),
        (b"link", b"</b.js>; rel=preload"),
        (b"cache-control", b"max-age=60"),
    ]


def test_repeated_fields_of_the_304_replace_all_stored_ones_of_that_name() -> None:
    stored = [(b"link", b"<a>"), (b"link", b"<b>")]
    assert updated_headers(stored, [(b"link", b"<c>"), (b"link", b"<d>")]) == [
        (b"link", b"<c>"),
        (b"link", b"<d>"),
    ]


@pytest.mark.parametrize(
    "name",
    [b"content-length", b"content-encoding", b"transfer-encoding", b"connection", b"cache-status"],
)
def test_fields_that_describe_the_stored_bytes_or_the_hop_are_not_updated(name: bytes) -> None:
    stored = [(b"content-length", b"4"), (b"content-encoding", b"gzip")]
    assert updated_headers(stored, [(name, b"0")]) == stored


def test_the_304s_age_is_taken_for_the_updated_entrys_age() -> None:
    assert updated_headers([(b"etag", b'"v1"')], [(b"age", b"5")]) == [
        (b"etag", b'"v1"'),
        (b"age", b"5"),
    ]


def test_a_304_without_fields_leaves_the_headers_as_they_were() -> None:
    stored = [(b"content-type", b"text/html"), (b"etag", b'"v1"')]
    assert updated_headers(stored, []) == stored


# validated_at_every_reuse (§5.2.2.4)


@pytest.mark.parametrize(
    ("cache_control", "expected"),
    [
        (b"max-age=60", False),
        (b"no-cache", True),
        (b"No-Cache, max-age=60", True),
        (b'no-cache="set-cookie"', True),
        (b"max-age=60, must-revalidate", False),
        (b"proxy-revalidate", False),
    ],
)
def test_only_no_cache_requires_validation_at_every_reuse(
    cache_control: bytes, expected: bool
) -> None:
    assert validated_at_every_reuse([(b"cache-control", cache_control)]) is expected


def test_without_cache_control_no_validation_is_required_while_fresh() -> None:
    assert validated_at_every_reuse([]) is False
