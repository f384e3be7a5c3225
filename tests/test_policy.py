"""HTTP caching rules (RFC 9111): what may be stored, for how long, and request directives."""

from __future__ import annotations

import math
from email.utils import formatdate

import pytest

from asgi_cache.entry import Entry
from asgi_cache.policy import (
    DEFAULT_STATUSES,
    MAX_LIFETIME,
    RequestDirectives,
    Requested,
    Reuse,
    age_value,
    coding_refused,
    entry_times,
    freshness_lifetime,
    initial_age,
    is_error,
    not_modified,
    request_directive,
    requested,
    retention,
    reuse,
    stale_windows,
    unstorable_reason,
    with_etag,
)

Headers = list[tuple[bytes, bytes]]

JSON: Headers = [(b"content-type", b"application/json")]


def reason(
    headers: Headers = JSON,
    status: int = 200,
    statuses: frozenset[int] = DEFAULT_STATUSES,
) -> str | None:
    return unstorable_reason(status, headers, statuses)


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
    ],
)
def test_a_directive_forbidding_shared_storage_is_refused(
    cache_control: bytes, expected: str
) -> None:
    assert reason([*JSON, (b"cache-control", cache_control)]) == expected


@pytest.mark.parametrize("cache_control", [b"no-cache", b'no-cache="x-token"'])
def test_a_no_cache_response_may_be_stored_to_be_validated(cache_control: bytes) -> None:
    assert reason([*JSON, (b"cache-control", cache_control)]) is None


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
    assert reason([(b"vary", vary)]) == "vary"


@pytest.mark.parametrize(
    "headers",
    [
        [(b"vary", b"Accept-Language")],
        [(b"Vary", b"accept-language, user-agent")],
        [(b"vary", b"accept-encoding"), (b"vary", b"x-tenant")],
    ],
)
def test_vary_naming_headers_may_be_stored(headers: Headers) -> None:
    assert reason(headers) is None


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
        ([b"no-store"], RequestDirectives(no_store=True)),
        ([b"No-Store, no-cache"], RequestDirectives(no_store=True, no_cache=True)),
        ([b"no-cache"], RequestDirectives(no_cache=True)),
        ([b"NO-CACHE"], RequestDirectives(no_cache=True)),
        ([b"max-age=0"], RequestDirectives(max_age=0.0)),
        ([b'max-age="0"'], RequestDirectives(max_age=0.0)),
        ([b"max-stale=10", b"no-cache"], RequestDirectives(no_cache=True, max_stale=10.0)),
        ([b"max-stale"], RequestDirectives(max_stale=math.inf)),
        ([b"min-fresh=5"], RequestDirectives(min_fresh=5.0)),
        ([b"only-if-cached"], RequestDirectives(only_if_cached=True)),
        ([b"max-age=99999999999"], RequestDirectives(max_age=2.0**31)),
    ],
)
def test_request_cache_control_is_parsed(
    cache_control: list[bytes], expected: RequestDirectives
) -> None:
    assert request_directive(cache_control, None) == expected


@pytest.mark.parametrize(
    "cache_control", [[b"max-age=-1"], [b"max-age=1.5"], [b"min-fresh=x"], [b"max-stale=1e3"]]
)
def test_request_directives_with_invalid_seconds_are_ignored(cache_control: list[bytes]) -> None:
    # RFC 9111 §1.2.2: delta-seconds is digits only; an invalid one is ignored.
    assert request_directive(cache_control, None) is None


def test_unknown_request_directives_give_none() -> None:
    assert request_directive([b"x-trace, private"], None) is None


@pytest.mark.parametrize("pragma", [[b"no-cache"], [b"No-Cache"]])
def test_pragma_no_cache_counts_without_cache_control(pragma: list[bytes]) -> None:
    assert request_directive(None, pragma) == RequestDirectives(no_cache=True)


def test_pragma_is_ignored_when_cache_control_is_present() -> None:
    assert request_directive([b"max-age=10"], [b"no-cache"]) == RequestDirectives(max_age=10.0)


def test_other_pragma_values_are_ignored() -> None:
    assert request_directive(None, [b"x-debug"]) is None


@pytest.mark.parametrize(("cache_control", "pragma"), [(None, None), ([], []), ([], None)])
def test_no_request_directives_give_none(
    cache_control: list[bytes] | None, pragma: list[bytes] | None
) -> None:
    assert request_directive(cache_control, pragma) is None


# requested

NOW = 1_700_000_000.0


def entry_aged(age: float, fresh_for: float = 60.0) -> Entry:
    return Entry(200, [], b"", NOW - age, fresh_for, 30.0, 30.0)


def decide(directives: RequestDirectives, age: float) -> Requested:
    entry = entry_aged(age)
    return requested(directives, entry, reuse(entry, NOW), NOW)


def test_an_entry_younger_than_max_age_stands() -> None:
    assert decide(RequestDirectives(max_age=10.0), age=10.0) is Requested.AS_IS


def test_an_entry_older_than_max_age_is_refused() -> None:
    assert decide(RequestDirectives(max_age=10.0), age=10.5) is Requested.REFUSED


def test_an_entry_fresh_for_less_than_min_fresh_is_refused() -> None:
    assert decide(RequestDirectives(min_fresh=20.0), age=45.0) is Requested.REFUSED


def test_an_entry_fresh_for_min_fresh_stands() -> None:
    assert decide(RequestDirectives(min_fresh=20.0), age=40.0) is Requested.AS_IS


def test_a_stale_entry_never_meets_min_fresh() -> None:
    directives = RequestDirectives(min_fresh=0.0, max_stale=math.inf)
    assert decide(directives, age=70.0) is Requested.REFUSED


def test_max_stale_accepts_an_entry_within_it() -> None:
    assert decide(RequestDirectives(max_stale=30.0), age=90.0) is Requested.STALE


def test_max_stale_refuses_nothing_it_does_not_cover() -> None:
    assert decide(RequestDirectives(max_stale=5.0), age=100.0) is Requested.AS_IS


def test_a_bare_max_stale_accepts_any_staleness() -> None:
    assert decide(RequestDirectives(max_stale=math.inf), age=10_000.0) is Requested.STALE


def test_max_stale_leaves_a_stale_while_revalidate_entry_to_the_cache() -> None:
    entry = Entry(200, [], b"", NOW - 70.0, 60.0, 30.0, 0.0)
    usable = reuse(entry, NOW)
    assert usable is Reuse.STALE_WHILE_REVALIDATE
    assert requested(RequestDirectives(max_stale=60.0), entry, usable, NOW) is Requested.AS_IS


def test_max_age_limits_what_max_stale_accepts() -> None:
    directives = RequestDirectives(max_age=80.0, max_stale=math.inf)
    assert decide(directives, age=90.0) is Requested.REFUSED


# reuse


def entry_at(
    stored_at: float = 100.0, fresh_for: float = 10.0, swr: float = 0.0, sie: float = 0.0
) -> Entry:
    return Entry(200, [], b"body", stored_at, fresh_for, swr, sie)


def test_an_entry_is_fresh_until_its_lifetime_has_passed() -> None:
    assert reuse(entry_at(), 109.999) is Reuse.FRESH
    assert reuse(entry_at(), 110.0) is Reuse.UNUSABLE


def test_an_entry_stored_in_the_future_by_a_skewed_clock_is_fresh() -> None:
    assert reuse(entry_at(stored_at=200.0), 100.0) is Reuse.FRESH


def test_a_stale_entry_is_served_while_revalidating_within_its_window() -> None:
    entry = entry_at(swr=30.0)
    assert reuse(entry, 110.0) is Reuse.STALE_WHILE_REVALIDATE
    assert reuse(entry, 139.999) is Reuse.STALE_WHILE_REVALIDATE
    assert reuse(entry, 140.0) is Reuse.UNUSABLE


def test_a_stale_entry_stands_by_for_errors_within_its_window() -> None:
    entry = entry_at(sie=60.0)
    assert reuse(entry, 110.0) is Reuse.STALE_IF_ERROR
    assert reuse(entry, 169.999) is Reuse.STALE_IF_ERROR
    assert reuse(entry, 170.0) is Reuse.UNUSABLE


def test_revalidating_wins_over_standing_by_while_both_windows_are_open() -> None:
    entry = entry_at(swr=30.0, sie=60.0)
    assert reuse(entry, 120.0) is Reuse.STALE_WHILE_REVALIDATE
    assert reuse(entry, 150.0) is Reuse.STALE_IF_ERROR


def test_past_its_windows_an_entry_with_an_etag_of_the_application_needs_validation() -> None:
    entry = Entry(200, [(b"etag", b'"v1"')], b"body", 100.0, 10.0, 30.0, 0.0)
    assert reuse(entry, 139.999) is Reuse.STALE_WHILE_REVALIDATE
    assert reuse(entry, 140.0) is Reuse.REVALIDATE


def test_an_expired_entry_with_a_last_modified_needs_validation() -> None:
    entry = Entry(200, [(b"last-modified", b"Tue, 01 Dec 2026 10:00:00 GMT")], b"b", 100.0, 10.0)
    assert reuse(entry, 110.0) is Reuse.REVALIDATE


def test_an_entry_fresh_for_no_time_needs_validation_at_once() -> None:
    entry = Entry(200, [(b"etag", b'"v1"')], b"body", 100.0, 0.0)
    assert reuse(entry, 100.0) is Reuse.REVALIDATE


def test_an_expired_entry_with_only_the_generated_etag_is_unusable() -> None:
    entry = Entry(200, with_etag([], b"body"), b"body", 100.0, 10.0)
    assert reuse(entry, 110.0) is Reuse.UNUSABLE


# is_error


@pytest.mark.parametrize(
    ("status", "expected"),
    [(200, False), (404, False), (499, False), (500, True), (503, True), (504, True)],
)
def test_only_5xx_counts_as_an_origin_error(status: int, expected: bool) -> None:
    assert is_error(status) is expected


# not_modified

STORED: Headers = [
    (b"content-type", b"application/json"),
    (b"content-length", b"4"),
    (b"etag", b'"v1"'),
    (b"cache-control", b"max-age=60"),
    (b"vary", b"accept-language"),
    (b"x-custom", b"1"),
]


@pytest.mark.parametrize("if_none_match", [b'"v1"', b'W/"v1"', b'"v0", "v1"', b"*"])
def test_a_matching_if_none_match_gives_the_304_fields_only(if_none_match: bytes) -> None:
    assert not_modified(STORED, if_none_match) == [
        (b"etag", b'"v1"'),
        (b"cache-control", b"max-age=60"),
        (b"vary", b"accept-language"),
    ]


def test_a_different_etag_gives_the_full_response() -> None:
    assert not_modified(STORED, b'"v2"') is None


def test_no_if_none_match_gives_the_full_response() -> None:
    assert not_modified(STORED, None) is None


def test_a_stored_response_without_etag_is_never_not_modified() -> None:
    assert not_modified([(b"content-type", b"text/plain")], b"*") is None


# coding_refused


@pytest.mark.parametrize(
    ("headers", "codings", "expected"),
    [
        ([], b"", False),
        ([(b"content-encoding", b"identity")], b"", False),
        ([(b"content-encoding", b"gzip")], b"gzip", False),
        ([(b"Content-Encoding", b"GZIP")], b"br,gzip", False),
        ([(b"content-encoding", b"gzip")], b"", True),
        ([(b"content-encoding", b"gzip")], b"br", True),
        ([(b"content-encoding", b"gzip, br")], b"gzip", True),
    ],
)
def test_a_body_in_a_coding_the_key_does_not_accept_is_refused(
    headers: Headers, codings: bytes, expected: bool
) -> None:
    assert coding_refused(headers, codings) is expected


# with_etag


def test_a_strong_etag_is_added_from_the_body() -> None:
    headers = with_etag([(b"content-type", b"text/plain")], b"hello")
    etag = dict(headers)[b"etag"]
    assert etag.startswith(b'"') and etag.endswith(b'"') and not etag.startswith(b"W/")
    assert with_etag([], b"hello") == [(b"etag", etag)]


def test_different_bodies_get_different_etags() -> None:
    assert with_etag([], b"v1") != with_etag([], b"v2")


@pytest.mark.parametrize("name", [b"etag", b"ETag"])
def test_the_applications_own_etag_is_kept(name: bytes) -> None:
    headers = [(name, b'W/"mine"')]
    assert with_etag(headers, b"body") is headers


# Freshness from the response (RFC 9111 §4.2, §5.1, §5.3)

NOW = 1_700_000_000.0


def date(seconds: float) -> bytes:
    return formatdate(seconds, usegmt=True).encode()


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        ([(b"age", b"60")], 60.0),
        ([(b"Age", b"60")], 60.0),
        ([(b"age", b" 60 ")], 60.0),
        ([(b"age", b"60, 5")], 60.0),
        ([(b"age", b"60"), (b"age", b"5")], 60.0),
        ([(b"age", b", 7")], 7.0),
        ([(b"age", b"99999999999999999999")], MAX_LIFETIME),
        ([], 0.0),
    ],
)
def test_age_is_the_first_member_of_its_value(headers: Headers, expected: float) -> None:
    assert age_value(headers) == expected


@pytest.mark.parametrize("value", [b"abc", b"-5", b"1.5", b"1 0", b"+5", b"\xd9\xa1", b"0x10"])
def test_an_invalid_age_is_ignored(value: bytes) -> None:
    assert age_value([(b"age", value)]) == 0.0


def test_the_initial_age_adds_the_time_the_app_took_to_the_age_received() -> None:
    assert initial_age([(b"age", b"10")], requested_at=NOW - 2, received_at=NOW) == 12.0


def test_the_initial_age_is_at_least_the_apparent_age() -> None:
    headers = [(b"date", date(NOW - 30)), (b"age", b"10")]
    assert initial_age(headers, requested_at=NOW, received_at=NOW) == 30.0


def test_a_date_in_the_future_gives_no_apparent_age() -> None:
    assert initial_age([(b"date", date(NOW + 30))], requested_at=NOW, received_at=NOW) == 0.0


def test_an_invalid_date_gives_no_apparent_age() -> None:
    assert initial_age([(b"date", b"yesterday")], requested_at=NOW, received_at=NOW) == 0.0


def lifetime(headers: Headers, status: int = 200, default_ttl: float | None = 60.0) -> float:
    return freshness_lifetime(None, headers, default_ttl, status=status, received_at=NOW)


def test_expires_minus_date_is_the_lifetime() -> None:
    assert lifetime([(b"date", date(NOW - 100)), (b"expires", date(NOW + 200))]) == 300.0


def test_expires_without_date_counts_from_the_time_received() -> None:
    assert lifetime([(b"expires", date(NOW + 200))]) == 200.0


def test_expires_with_an_invalid_date_counts_from_the_time_received() -> None:
    assert lifetime([(b"date", b"now"), (b"expires", date(NOW + 200))]) == 200.0


def test_expires_in_the_past_means_stale() -> None:
    assert lifetime([(b"expires", date(NOW - 200))]) == 0.0


@pytest.mark.parametrize("value", [b"0", b"-1", b"never", b"Sun, 06 Nov 2094 08:49:37 UTC"])
def test_an_invalid_expires_means_stale(value: bytes) -> None:
    assert lifetime([(b"expires", value)]) == 0.0


def test_several_expires_lines_mean_stale() -> None:
    assert lifetime([(b"expires", date(NOW + 200)), (b"expires", date(NOW + 200))]) == 0.0


def test_expires_without_a_time_received_or_date_gives_no_lifetime() -> None:
    assert freshness_lifetime(None, [(b"expires", date(NOW + 200))], 60.0) == 0.0


@pytest.mark.parametrize("directive", [b"max-age=20", b"s-maxage=20"])
def test_a_lifetime_directive_beats_expires(directive: bytes) -> None:
    assert lifetime([(b"expires", date(NOW + 200)), (b"cache-control", directive)]) == 20.0


def test_an_explicit_ttl_beats_expires() -> None:
    assert freshness_lifetime(5.0, [(b"expires", b"0")], 60.0, received_at=NOW) == 5.0


def test_last_modified_gives_a_tenth_of_the_time_since() -> None:
    headers = [(b"date", date(NOW)), (b"last-modified", date(NOW - 300))]
    assert lifetime(headers) == 30.0


def test_last_modified_is_measured_from_the_time_received_without_date() -> None:
    assert lifetime([(b"last-modified", date(NOW - 300))]) == 30.0


def test_the_last_modified_heuristic_is_capped_by_the_default_ttl() -> None:
    assert lifetime([(b"last-modified", date(NOW - 10_000))]) == 60.0


def test_a_last_modified_after_date_gives_no_lifetime() -> None:
    headers = [(b"date", date(NOW)), (b"last-modified", date(NOW + 300))]
    assert lifetime(headers) == 0.0


def test_an_invalid_last_modified_gives_the_default_ttl() -> None:
    assert lifetime([(b"last-modified", b"recently")]) == 60.0


@pytest.mark.parametrize("status", [201, 202, 302, 307, 403, 418])
def test_a_status_not_heuristically_cacheable_gets_no_heuristic_lifetime(status: int) -> None:
    assert lifetime([], status=status) == 0.0


@pytest.mark.parametrize("status", [200, 203, 204, 300, 301, 308, 404, 405, 410, 414])
def test_a_heuristically_cacheable_status_gets_the_default_ttl(status: int) -> None:
    assert lifetime([], status=status) == 60.0


def test_public_allows_a_heuristic_lifetime_for_any_status() -> None:
    assert lifetime([(b"cache-control", b"public")], status=403) == 60.0


def test_an_explicit_lifetime_counts_for_any_status() -> None:
    assert lifetime([(b"cache-control", b"max-age=9")], status=403) == 9.0


def test_without_heuristic_freshness_there_is_no_default_lifetime() -> None:
    assert lifetime([(b"last-modified", date(NOW - 300))], default_ttl=None) == 0.0


def test_an_entry_is_dated_from_its_age_zero() -> None:
    headers = [(b"age", b"100"), (b"cache-control", b"max-age=3600")]
    times = entry_times(None, headers, 60.0, status=200, requested_at=NOW, received_at=NOW)
    assert times == (NOW - 100, 3600.0)


def test_a_route_ttl_counts_from_receipt() -> None:
    times = entry_times(
        30.0, [(b"age", b"100")], 60.0, status=200, requested_at=NOW, received_at=NOW
    )
    assert times == (NOW - 100, 130.0)


def test_an_entry_stale_on_arrival_without_a_window_is_not_worth_keeping() -> None:
    assert retention(Entry(200, [], b"", NOW - 7200, 3600.0), NOW) <= 0


def test_an_entry_stale_on_arrival_is_kept_for_its_stale_window() -> None:
    assert retention(Entry(200, [], b"", NOW - 7200, 3600.0, 0.0, 4000.0), NOW) == 400.0


def test_a_fresh_entry_is_kept_for_its_remaining_lifetime_and_window() -> None:
    assert retention(Entry(200, [], b"", NOW - 100, 3600.0, 50.0, 0.0), NOW) == 3550.0


def test_an_entry_with_a_validator_is_kept_a_validation_window_past_its_lifetime() -> None:
    entry = Entry(200, [(b"etag", b'"v1"')], b"", NOW - 100, 3600.0, 50.0, 0.0)
    assert retention(entry, NOW, 3600.0) == 7100.0


def test_a_validation_window_shorter_than_the_stale_windows_changes_nothing() -> None:
    entry = Entry(200, [(b"etag", b'"v1"')], b"", NOW, 60.0, 300.0, 0.0)
    assert retention(entry, NOW, 60.0) == 360.0


def test_a_no_cache_entry_is_kept_for_its_validation_window() -> None:
    assert retention(Entry(200, [(b"etag", b'"v1"')], b"", NOW, 0.0), NOW, 60.0) == 60.0


# Serving stale (RFC 9111 §4.2.4)

DEFAULTS = (30.0, 60.0)


def windows(cache_control: bytes, ttl: float | None = None) -> tuple[float, float]:
    return stale_windows(None, None, [(b"cache-control", cache_control)], DEFAULTS, ttl=ttl)


def test_the_cache_defaults_apply_to_a_max_age_response() -> None:
    assert windows(b"max-age=10") == DEFAULTS


@pytest.mark.parametrize(
    "cache_control",
    [b"s-maxage=10", b"max-age=10, must-revalidate", b"proxy-revalidate", b"no-cache"],
)
def test_the_cache_defaults_do_not_apply_where_revalidation_is_required(
    cache_control: bytes,
) -> None:
    assert windows(cache_control) == (0.0, 0.0)


def test_an_s_maxage_response_keeps_its_own_stale_directives() -> None:
    assert windows(b"s-maxage=10, stale-while-revalidate=5, stale-if-error=7") == (5.0, 7.0)


def test_s_maxage_does_not_matter_under_a_route_ttl() -> None:
    assert windows(b"s-maxage=10", ttl=20.0) == DEFAULTS


def test_a_route_window_counts_despite_s_maxage() -> None:
    headers = [(b"cache-control", b"s-maxage=10")]
    assert stale_windows(15.0, None, headers, DEFAULTS) == (15.0, 0.0)


# must-understand (RFC 9111 §5.2.2.3) and statuses never stored


def test_must_understand_ignores_no_store_for_an_understood_status() -> None:
    assert reason([(b"cache-control", b"must-understand, no-store")]) is None


def test_must_understand_still_obeys_private() -> None:
    assert reason([(b"cache-control", b"must-understand, no-store, private")]) == "private"


def test_must_understand_refuses_a_status_it_does_not_know() -> None:
    headers = [(b"cache-control", b"must-understand, max-age=60")]
    assert reason(headers, status=299, statuses=frozenset({299})) == "status"


def test_no_store_without_must_understand_is_refused() -> None:
    assert reason([(b"cache-control", b"no-store")]) == "no-store"


@pytest.mark.parametrize("status", [206, 304])
def test_a_partial_or_not_modified_response_is_never_stored(status: int) -> None:
    assert reason(status=status, statuses=frozenset({200, status})) == "status"
