"""Variant selection rules (RFC 9111 §4.1) as pure functions on raw headers."""

from __future__ import annotations

import pytest

from asgi_cache.variants import (
    normalised,
    request_values,
    selecting_names,
    with_private,
    with_vary,
)

Headers = list[tuple[bytes, bytes]]
TEXT = [(b"content-type", b"text/plain")]

# with_vary


def test_vary_is_added_when_the_response_has_none() -> None:
    assert with_vary(TEXT, (b"accept-language", b"cookie")) == [
        *TEXT,
        (b"vary", b"accept-language, cookie"),
    ]


def test_no_names_leave_the_headers_alone() -> None:
    assert with_vary(TEXT, ()) is TEXT


def test_the_apps_vary_is_extended_with_the_missing_names() -> None:
    headers = [(b"vary", b"Accept-Encoding")]
    assert with_vary(headers, (b"accept-encoding", b"cookie")) == [
        (b"vary", b"Accept-Encoding, cookie")
    ]


def test_names_the_app_lists_in_another_case_are_not_repeated() -> None:
    headers = [(b"Vary", b"ACCEPT-LANGUAGE, Cookie")]
    assert with_vary(headers, (b"accept-language", b"cookie")) is headers


def test_the_last_of_several_vary_lines_is_extended() -> None:
    headers = [(b"vary", b"x-a"), *TEXT, (b"vary", b"x-b")]
    assert with_vary(headers, (b"x-a", b"x-c")) == [
        (b"vary", b"x-a"),
        *TEXT,
        (b"vary", b"x-b, x-c"),
    ]


def test_an_empty_vary_line_is_filled() -> None:
    assert with_vary([(b"vary", b"")], (b"x-a",)) == [(b"vary", b"x-a")]


@pytest.mark.parametrize("value", [b"*", b"x-a, *"])
def test_vary_star_is_kept_as_it_is(value: bytes) -> None:
    headers = [(b"vary", value)]
    assert with_vary(headers, (b"cookie",)) is headers


# with_private


def test_private_creates_cache_control_when_there_is_none() -> None:
    assert with_private(TEXT) == [*TEXT, (b"cache-control", b"private")]


def test_private_is_added_to_the_apps_cache_control() -> None:
    assert with_private([(b"Cache-Control", b"public, max-age=60")]) == [
        (b"Cache-Control", b"public, max-age=60, private")
    ]


@pytest.mark.parametrize("value", [b"no-store", b"max-age=0, NO-STORE", b"private, max-age=5"])
def test_no_store_or_private_is_left_as_it_is(value: bytes) -> None:
    headers = [(b"cache-control", value)]
    assert with_private(headers) is headers


def test_private_is_added_to_each_targeted_field_too() -> None:
    headers = [(b"CDN-Cache-Control", b"max-age=60"), (b"cache-control", b"max-age=5")]
    assert with_private(headers) == [
        (b"CDN-Cache-Control", b"max-age=60, private"),
        (b"cache-control", b"max-age=5, private"),
    ]


def test_a_targeted_field_alone_still_gets_a_private_cache_control() -> None:
    assert with_private([(b"cdn-cache-control", b"max-age=60")]) == [
        (b"cdn-cache-control", b"max-age=60, private"),
        (b"cache-control", b"private"),
    ]


def test_a_targeted_no_store_is_left_as_it_is() -> None:
    assert with_private([(b"cdn-cache-control", b"no-store")]) == [
        (b"cdn-cache-control", b"no-store"),
        (b"cache-control", b"private"),
    ]


def test_a_private_limited_to_fields_still_gets_a_plain_private() -> None:
    assert with_private([(b"cache-control", b'private="x-user"')]) == [
        (b"cache-control", b'private="x-user", private')
    ]


# selecting_names

KEYED = frozenset({"accept-language"})


def test_a_response_without_vary_is_selected_by_the_key_alone() -> None:
    assert selecting_names(TEXT, KEYED, ()) == ()


def test_vary_names_outside_the_key_select_the_variant() -> None:
    headers = [(b"vary", b"Accept-Language, X-Tenant"), (b"vary", b"user-agent")]
    assert selecting_names(headers, KEYED, ()) == (b"user-agent", b"x-tenant")


def test_names_of_the_stored_record_keep_selecting() -> None:
    assert selecting_names([(b"vary", b"x-b")], KEYED, (b"x-a",)) == (b"x-a", b"x-b")


@pytest.mark.parametrize("coding", [b"gzip", b"BR", b"gzip, identity"])
def test_a_coded_body_is_selected_by_accept_encoding(coding: bytes) -> None:
    assert selecting_names([(b"content-encoding", coding)], KEYED, ()) == (b"accept-encoding",)


@pytest.mark.parametrize("coding", [b"identity", b" Identity ", b""])
def test_an_identity_body_is_not_selected_by_accept_encoding(coding: bytes) -> None:
    assert selecting_names([(b"content-encoding", coding)], KEYED, ()) == ()


def test_a_coded_body_needs_no_variant_where_the_key_holds_the_codings() -> None:
    keyed = frozenset({"accept-encoding"})
    assert selecting_names([(b"content-encoding", b"gzip")], keyed, ()) == ()


@pytest.mark.parametrize("value", [b"x a", b"x/y", b'"x"'])
def test_a_vary_naming_no_field_matches_nothing(value: bytes) -> None:
    assert selecting_names([(b"vary", value)], KEYED, ()) is None


# normalised


def test_an_absent_field_stays_absent() -> None:
    assert normalised(b"x-tenant", None) is None


def test_an_empty_field_is_not_absent() -> None:
    assert normalised(b"x-tenant", [b""]) == b""


@pytest.mark.parametrize(
    "values",
    [[b"en-US, fr;q=0.5"], [b"EN-us,fr; q=0.5"], [b" en-us ,", b"fr ;q=0.5 "]],
)
def test_accept_language_ignores_case_whitespace_and_field_lines(values: list[bytes]) -> None:
    assert normalised(b"accept-language", values) == b"en-us,fr;q=0.5"


def test_accept_language_keeps_the_order_of_preference() -> None:
    assert normalised(b"accept-language", [b"fr, en"]) != normalised(
        b"accept-language", [b"en, fr"]
    )


def test_accept_media_ranges_ignore_case_and_whitespace() -> None:
    assert normalised(b"accept", [b"Text/HTML , application/json ; q=0.9"]) == (
        b"text/html,application/json;q=0.9"
    )


def test_accept_encoding_is_the_set_of_accepted_codings() -> None:
    assert normalised(b"accept-encoding", [b"gzip;q=0.5", b"BR"]) == b"br,gzip"


def test_another_field_keeps_its_case_and_inner_whitespace() -> None:
    assert normalised(b"x-tenant", [b" Acme  Corp "]) == b"Acme  Corp"


def test_field_lines_of_another_field_are_combined() -> None:
    assert normalised(b"x-tenant", [b"a", b"b"]) == normalised(b"x-tenant", [b"a, b"])


# request_values


def test_request_values_follow_the_names_and_ignore_the_header_case() -> None:
    headers = [(b"X-B", b"2"), (b"x-a", b"1"), (b"x-b", b"3")]
    assert request_values(headers, (b"x-a", b"x-b", b"x-c")) == [b"1", b"2, 3", None]
