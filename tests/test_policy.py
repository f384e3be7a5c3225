"""HTTP caching rules (RFC 9111): what may be stored, for how long, and request directives."""

from __future__ import annotations

import pytest

from asgi_cache.policy import (
    DEFAULT_STATUSES,
    freshness_lifetime,
    request_directive,
    unstorable_reason,
)

Headers = list[tuple[bytes, bytes]]

JSON: Headers = [(b"content-type", b"application/json")]


def reason(
    headers: Headers = JSON,
    status: int = 200,
    statuses: frozenset[int] = DEFAULT_STATUSES,
    key_headers: frozenset[str] = frozenset(),
) -> str | None:
    return unstorable_reason(status, headers, statuses, key_headers)


# unstorable_reason


def test_a_plain_200_may_be_stored() -> None:
    assert reason() is None


@pytest.mark.parametrize("status", sorted(DEFAULT_STATUSES))
def test_every_default_status_may_be_stored(status: int) -> None:
    assert reason(status=status) is None


@pytest.mark.parametrize("status", [201, 206, 302, 304, 400, 401, 403, 405, 429])
def test_a_status_outside_the_set_is_refused(status: int) -> None:
    assert reason(status=status) == "status"


def test_a_route_may_widen_the_statuses() -> None:
    assert reason(status=302, statuses=frozenset({200, 302})) is None


def test_a_route_may_narrow_the_statuses() -> None:
    assert reason(status=404, statuses=frozenset({200})) == "status"


@pytest.mark.parametrize("status", [500, 502, 503, 504, 599])
def test_a_5xx_is_refused_even_when_listed(status: int) -> None:
    assert reason(status=status, statuses=frozenset({200, status})) == "status"


@pytest.mark.parametrize("name", [b"set-cookie", b"Set-Cookie", b"SET-COOKIE", b"sEt-CoOkIe"])
def test_a_set_cookie_in_any_case_is_refused(name: bytes) -> None:
    assert reason([*JSON, (name, b"session=1")]) == "set-cookie"


@pytest.mark.parametrize(
    ("cache_control", "expected"),
    [
        (b"no-store", "no-store"),
        (b"No-Store", "no-store"),
        (b"public, max-age=60, no-store", "no-store"),
        (b"private", "private"),
        (b'private="x-user"', "private"),
        (b'private="set-cookie, x-user"', "private"),
        (b"no-cache", "no-cache"),
        (b'no-cache="x-token"', "no-cache"),
    ],
)
def test_a_directive_forbidding_shared_storage_is_refused(
    cache_control: bytes, expected: str
) -> None:
    assert reason([*JSON, (b"cache-control", cache_control)]) == expected


def test_a_forbidding_directive_on_a_second_cache_control_line_is_refused() -> None:
    headers = [(b"cache-control", b"public"), (b"Cache-Control", b"private")]
    assert reason(headers) == "private"


@pytest.mark.parametrize(
    "cache_control", [b"public", b"max-age=60", b"s-maxage=5, must-revalidate", b"immutable"]
)
def test_other_cache_control_directives_may_be_stored(cache_control: bytes) -> None:
    assert reason([*JSON, (b"cache-control", cache_control)]) is None


@pytest.mark.parametrize("vary", [b"*", b"accept-encoding, *"])
def test_vary_star_is_refused(vary: bytes) -> None:
    assert reason([(b"vary", vary)], key_headers=frozenset({"accept-language"})) == "vary"


def test_vary_on_a_header_outside_the_key_is_refused() -> None:
    assert reason([(b"vary", b"accept-language")]) == "vary"


def test_vary_on_one_key_header_and_one_other_is_refused() -> None:
    headers = [(b"vary", b"accept-language, user-agent")]
    assert reason(headers, key_headers=frozenset({"accept-language"})) == "vary"


@pytest.mark.parametrize("vary", [b"accept-encoding", b"Accept-Encoding", b" ACCEPT-ENCODING "])
def test_vary_on_accept_encoding_may_be_stored_when_codings_are_keyed(vary: bytes) -> None:
    assert reason([(b"vary", vary)], key_headers=frozenset({"accept-encoding"})) is None


def test_vary_on_accept_encoding_is_refused_when_codings_are_not_keyed() -> None:
    assert reason([(b"vary", b"accept-encoding")]) == "vary"


@pytest.mark.parametrize(
    "headers",
    [
        [(b"vary", b"Accept-Language")],
        [(b"Vary", b"accept-language, accept-encoding")],
        [(b"vary", b"accept-encoding"), (b"vary", b"x-tenant")],
    ],
)
def test_vary_on_key_headers_may_be_stored(headers: Headers) -> None:
    key_headers = frozenset({"accept-language", "x-tenant", "accept-encoding"})
    assert reason(headers, key_headers=key_headers) is None


# freshness_lifetime


def test_an_explicit_ttl_wins_over_the_response_directives() -> None:
    headers = [(b"cache-control", b"s-maxage=10, max-age=20")]
    assert freshness_lifetime(5.0, headers, default_ttl=60.0) == 5.0


def test_s_maxage_comes_before_max_age() -> None:
    headers = [(b"cache-control", b"max-age=20, s-maxage=10")]
    assert freshness_lifetime(None, headers, default_ttl=60.0) == 10.0


def test_max_age_is_used_without_s_maxage() -> None:
    assert freshness_lifetime(None, [(b"Cache-Control", b"max-age=20")], 60.0) == 20.0


def test_a_quoted_max_age_is_read() -> None:
    assert freshness_lifetime(None, [(b"cache-control", b'max-age="20"')], 60.0) == 20.0


def test_directives_on_separate_lines_are_read() -> None:
    headers = [(b"cache-control", b"public"), (b"cache-control", b"max-age=20")]
    assert freshness_lifetime(None, headers, 60.0) == 20.0


@pytest.mark.parametrize(
    "headers",
    [[], JSON, [(b"cache-control", b"public")], [(b"cache-control", b"must-revalidate")]],
)
def test_the_default_applies_without_a_lifetime_directive(headers: Headers) -> None:
    assert freshness_lifetime(None, headers, default_ttl=60.0) == 60.0


@pytest.mark.parametrize(
    "value",
    [b"max-age=abc", b"max-age=", b"max-age=1.5", b"max-age=-5", b"s-maxage=x, max-age=20"],
)
def test_an_invalid_lifetime_means_stale(value: bytes) -> None:
    assert freshness_lifetime(None, [(b"cache-control", value)], 60.0) == 0.0


@pytest.mark.parametrize("value", [b"max-age=+5", b"max-age=1_0", b'max-age=" 5"'])
def test_a_lifetime_that_is_not_plain_digits_means_stale(value: bytes) -> None:
    # RFC 9111 §1.2.2: delta-seconds = 1*DIGIT
    assert freshness_lifetime(None, [(b"cache-control", value)], 60.0) == 0.0


def test_max_age_0_means_stale() -> None:
    assert freshness_lifetime(None, [(b"cache-control", b"max-age=0")], 60.0) == 0.0


# request_directive


@pytest.mark.parametrize(
    ("cache_control", "expected"),
    [
        ([b"no-store"], "no-store"),
        ([b"No-Store, no-cache"], "no-store"),
        ([b"no-cache"], "no-cache"),
        ([b"NO-CACHE"], "no-cache"),
        ([b"max-age=0"], "no-cache"),
        ([b'max-age="0"'], "no-cache"),
        ([b"max-stale=10", b"no-cache"], "no-cache"),
        ([b"max-age=10"], None),
        ([b"only-if-cached"], None),
    ],
)
def test_request_cache_control(cache_control: list[bytes], expected: str | None) -> None:
    assert request_directive(cache_control, None) == expected


@pytest.mark.parametrize("pragma", [[b"no-cache"], [b"No-Cache"]])
def test_pragma_no_cache_counts_without_cache_control(pragma: list[bytes]) -> None:
    assert request_directive(None, pragma) == "no-cache"


def test_pragma_is_ignored_when_cache_control_is_present() -> None:
    assert request_directive([b"max-age=10"], [b"no-cache"]) is None


def test_other_pragma_values_are_ignored() -> None:
    assert request_directive(None, [b"x-debug"]) is None


@pytest.mark.parametrize(("cache_control", "pragma"), [(None, None), ([], []), ([], None)])
def test_no_request_directives_give_none(
    cache_control: list[bytes] | None, pragma: list[bytes] | None
) -> None:
    assert request_directive(cache_control, pragma) is None
