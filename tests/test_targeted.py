"""Targeted cache-control fields (RFC 9213) and their Dictionary syntax (RFC 8941)."""

from __future__ import annotations

import pytest

from asgi_cache.targeted import cache_view, parse_dictionary, targeted_directives

CDN = (b"cdn-cache-control",)
OWN = (b"asgi-cache-control", b"cdn-cache-control")


def test_a_dictionary_reads_booleans_integers_strings_and_tokens() -> None:
    assert parse_dictionary([b'max-age=60, no-store, private="x-a", a=tok/en']) == {
        "max-age": 60,
        "no-store": True,
        "private": "x-a",
        "a": "tok/en",
    }


def test_dictionary_lines_are_joined() -> None:
    assert parse_dictionary([b"max-age=60", b"no-cache"]) == {"max-age": 60, "no-cache": True}


def test_parameters_are_dropped() -> None:
    assert parse_dictionary([b"max-age=60;x=1, public;y"]) == {"max-age": 60, "public": True}


@pytest.mark.parametrize(
    "value",
    [
        b"Max-Age=60",  # keys are lower case
        b"max-age=60,",  # trailing comma
        b"max-age=60,,public",
        b"max-age=",
        b'private="unterminated',
        b'private="bad \\n escape"',
        b"max-age=1234567890123456",  # more than 15 digits
        b"max-age=60 public",
        b"max-age=?2",
        b"max-age=60; ",
        "max-age=6\u0660".encode(),
    ],
)
def test_a_value_that_is_not_a_dictionary_does_not_parse(value: bytes) -> None:
    assert parse_dictionary([value]) is None


def test_the_first_field_of_the_target_list_wins() -> None:
    headers = [(b"cdn-cache-control", b"max-age=60"), (b"Asgi-Cache-Control", b"max-age=5")]
    assert targeted_directives(headers, OWN) == b"max-age=5"


def test_an_invalid_targeted_field_is_as_if_absent() -> None:
    headers = [(b"asgi-cache-control", b"max-age=5,"), (b"cdn-cache-control", b"max-age=60")]
    assert targeted_directives(headers, OWN) == b"max-age=60"


def test_an_empty_targeted_field_is_as_if_absent() -> None:
    assert targeted_directives([(b"cdn-cache-control", b"")], CDN) is None


@pytest.mark.parametrize("value", [b"max-age=1.5", b"max-age=-1", b'max-age="60"', b"max-age=a"])
def test_a_lifetime_that_is_not_a_non_negative_integer_is_not_consumed(value: bytes) -> None:
    assert targeted_directives([(b"cdn-cache-control", value + b", public")], CDN) == b"public"


def test_a_false_boolean_is_not_consumed() -> None:
    assert targeted_directives([(b"cdn-cache-control", b"no-store=?0, max-age=9")], CDN) == (
        b"max-age=9"
    )


def test_a_string_is_quoted_again() -> None:
    headers = [(b"cdn-cache-control", b'no-cache="a, b"')]
    assert targeted_directives(headers, CDN) == b'no-cache="a, b"'


def test_the_view_replaces_cache_control_and_expires() -> None:
    headers = [
        (b"content-type", b"text/plain"),
        (b"cache-control", b"no-store"),
        (b"expires", b"0"),
        (b"cdn-cache-control", b"max-age=600"),
    ]
    assert cache_view(headers, CDN) == [
        (b"content-type", b"text/plain"),
        (b"cdn-cache-control", b"max-age=600"),
        (b"cache-control", b"max-age=600"),
    ]


def test_without_a_targeted_field_the_view_is_the_headers() -> None:
    headers = [(b"cache-control", b"no-store"), (b"expires", b"0")]
    assert cache_view(headers, CDN) is headers


def test_a_field_off_the_target_list_changes_nothing() -> None:
    headers = [(b"cache-control", b"no-store"), (b"cdn-cache-control", b"max-age=60")]
    assert cache_view(headers, (b"asgi-cache-control",)) is headers
