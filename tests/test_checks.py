"""Argument checks: what each accepts, and refusals that name their owner."""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from typing import Any

import pytest

from asgi_cache import Cache
from asgi_cache.checks import (
    check_body_size,
    check_data_key,
    check_header_names,
    check_seconds,
    check_statuses,
    check_tags,
    check_ttl,
    tag_fields,
)


def untyped(value: object) -> Any:
    """``value`` typed as ``Any``, to hand a check an argument of the wrong type."""
    return value


def test_a_ttl_becomes_float_seconds_and_none_stays_none() -> None:
    assert check_ttl("owner", 5) == 5.0
    assert isinstance(check_ttl("owner", 5), float)
    assert check_ttl("owner", None) is None


def test_a_cache_default_ttl_becomes_float_seconds() -> None:
    assert Cache(default_ttl=60).default_ttl == 60.0
    assert isinstance(Cache(default_ttl=60).default_ttl, float)


def test_a_window_of_zero_seconds_is_accepted_unchanged() -> None:
    assert check_seconds("owner", "stale_if_error", 0) == 0


def test_tag_fields_are_the_placeholders_in_order() -> None:
    assert tag_fields("shop:{shop}:product:{pid}") == ("shop", "pid")


def test_header_names_are_lower_cased_in_order() -> None:
    assert check_header_names("owner", "vary", ("X-B", "Accept")) == ("x-b", "accept")


def test_repeated_header_names_are_merged_into_the_first() -> None:
    assert check_header_names("Cache", "vary", ("Cookie", "x-a", "cookie")) == ("cookie", "x-a")


def test_statuses_become_a_set() -> None:
    assert check_statuses("owner", [200, 404, 200]) == frozenset({200, 404})
    assert Cache(statuses=[200, 301]).statuses == frozenset({200, 301})


def test_a_data_key_is_returned_as_given() -> None:
    assert check_data_key("Cache.get", "greeting") == "greeting"


@pytest.mark.parametrize(
    ("check", "error", "message"),
    [
        (lambda: check_ttl("@cached on f", untyped("60")), TypeError, "ttl must be a number"),
        (lambda: check_ttl("@cached on f", True), TypeError, "ttl must be a number"),
        (lambda: check_ttl("@cached on f", 0), ValueError, "ttl must be a positive, finite"),
        (lambda: check_ttl("@cached on f", math.inf), ValueError, "ttl must be a positive"),
        (lambda: check_ttl("Cache", untyped("60"), "default_ttl"), TypeError, "default_ttl must"),
        (lambda: check_ttl("Cache", math.nan, "default_ttl"), ValueError, "default_ttl must be"),
        (lambda: check_seconds("Cache", "coalesce_wait", -1), ValueError, "coalesce_wait must"),
        (lambda: check_seconds("Cache", "coalesce_wait", True), ValueError, ">= 0"),
        (lambda: check_tags("memoize f", untyped("stats")), TypeError, "not one string"),
        (lambda: check_tags("memoize f", ("",)), ValueError, "non-empty string"),
        (lambda: check_tags("memoize f", ("{x}",), placeholders=False), ValueError, "not supp"),
        (lambda: check_tags("@cached on f", ("{x.y}",)), ValueError, "bare path parameter"),
        (lambda: check_header_names("@cached on f", "vary", untyped("x")), TypeError, "one str"),
        (lambda: check_header_names("@cached on f", "vary", untyped([1])), TypeError, "got 1"),
        (lambda: check_header_names("@cached on f", "vary", ("a b",)), ValueError, "entry 'a b'"),
        (lambda: check_header_names("Cache", "vary", ("x-user\n",)), ValueError, "not an HTTP"),
        (lambda: check_statuses("@cached on f", (200, 500)), ValueError, "status 500"),
        (lambda: check_statuses("@cached on f", untyped((True,))), ValueError, "status True"),
        (lambda: check_statuses("Cache", (503,)), ValueError, "1xx-4xx codes"),
        (lambda: check_statuses("Cache", (600,)), ValueError, "status 600"),
        (lambda: check_body_size("@cached on f", 0), ValueError, "positive int of bytes, got 0"),
        (lambda: check_body_size("@cached on f", True), ValueError, "bytes, got True"),
        (lambda: check_body_size("Cache", -1), ValueError, "positive int of bytes, got -1"),
        (lambda: check_data_key("Cache.get", untyped(1)), TypeError, "key must be a str"),
        (lambda: check_data_key("Cache.get", ""), ValueError, "key must not be empty"),
    ],
)
def test_a_refusal_names_its_owner_and_what_is_wrong(
    check: Callable[[], object], error: type[Exception], message: str
) -> None:
    with pytest.raises(error, match=re.escape(message)) as raised:
        check()
    assert str(raised.value).split(":")[0] in {"@cached on f", "memoize f", "Cache", "Cache.get"}


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        ({"default_ttl": 0}, "Cache: default_ttl must be a positive, finite number of seconds"),
        ({"default_ttl": "60"}, "Cache: default_ttl must be a number of seconds, got '60'"),
        ({"default_ttl": None}, "Cache: default_ttl must be a number of seconds, got None"),
        ({"vary": ("a b",)}, "Cache: vary entry 'a b' is not an HTTP header name"),
        ({"vary": (1,)}, "Cache: vary entries must be header names, got 1"),
        ({"credential_headers": "cookie"}, "Cache: credential_headers must be a tuple of header"),
        ({"credential_headers": ("authorization\n",)}, r"entry 'authorization\n' is not an"),
        ({"statuses": (200, 500)}, "Cache: status 500 cannot be cached: statuses must be 1xx-4xx"),
        ({"max_body_size": 0}, "Cache: max_body_size must be a positive int of bytes, got 0"),
        ({"max_body_size": True}, "Cache: max_body_size must be a positive int of bytes, got True"),
        ({"coalesce_wait": -1}, "Cache: coalesce_wait must be a finite number of seconds >= 0"),
        ({"origin_timeout": math.inf}, "Cache: origin_timeout must be a finite number of seconds"),
    ],
)
def test_a_bad_cache_argument_fails_at_construction(
    arguments: dict[str, Any], message: str
) -> None:
    with pytest.raises((TypeError, ValueError), match=re.escape(message)):
        Cache(**arguments)


@pytest.mark.parametrize(
    ("arguments", "error", "message"),
    [
        ({"heuristic_freshness": "no"}, TypeError, "Cache: heuristic_freshness must be True or"),
        ({"targeted_cache_control": "cdn-cache-control"}, TypeError, "targeted_cache_control must"),
        ({"targeted_cache_control": ("a b",)}, ValueError, "targeted_cache_control entry 'a b'"),
        ({"statuses": (200, 206)}, ValueError, "Cache: status 206 is never stored"),
        ({"statuses": (304,)}, ValueError, "Cache: status 304 is never stored"),
    ],
)
def test_a_bad_freshness_setting_fails_at_construction(
    arguments: dict[str, Any], error: type[Exception], message: str
) -> None:
    with pytest.raises(error, match=re.escape(message)):
        Cache(**arguments)


def test_targeted_field_names_are_lower_cased() -> None:
    assert Cache(targeted_cache_control=("CDN-Cache-Control",)).targeted_cache_control == (
        "cdn-cache-control",
    )
