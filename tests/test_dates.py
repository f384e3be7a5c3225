"""HTTP-date parsing (RFC 9110 §5.6.7): exactly the three accepted forms."""

from __future__ import annotations

import calendar

import pytest

from asgi_cache.dates import field_date, parse_http_date

#: Sun, 06 Nov 1994 08:49:37 GMT, the example of RFC 9110 §5.6.7.
EXAMPLE = float(calendar.timegm((1994, 11, 6, 8, 49, 37, 0, 0, 0)))
#: 2023-11-14: the clock the two-digit years are read against.
NOW = 1_700_000_000.0


@pytest.mark.parametrize(
    "value",
    [
        b"Sun, 06 Nov 1994 08:49:37 GMT",
        b"Sunday, 06-Nov-94 08:49:37 GMT",
        b"Sun Nov  6 08:49:37 1994",
    ],
)
def test_the_three_forms_of_the_rfc_example_read_the_same_instant(value: bytes) -> None:
    assert parse_http_date(value, NOW) == EXAMPLE


def test_an_asctime_day_may_have_two_digits() -> None:
    assert parse_http_date(b"Sun Nov 06 08:49:37 1994", NOW) == EXAMPLE


def test_whitespace_around_the_value_is_not_part_of_it() -> None:
    assert parse_http_date(b" \tSun, 06 Nov 1994 08:49:37 GMT ", NOW) == EXAMPLE


def test_a_leap_second_is_accepted() -> None:
    assert parse_http_date(b"Wed, 31 Dec 2016 23:59:60 GMT", NOW) == calendar.timegm(
        (2017, 1, 1, 0, 0, 0, 0, 0, 0)
    )


def test_the_29th_of_february_of_a_leap_year_is_accepted() -> None:
    assert parse_http_date(b"Thu, 29 Feb 2024 00:00:00 GMT", NOW) is not None


def test_the_weekday_is_not_checked_against_the_calendar() -> None:
    assert parse_http_date(b"Mon, 06 Nov 1994 08:49:37 GMT", NOW) == EXAMPLE


def test_a_two_digit_year_more_than_50_years_ahead_is_in_the_past() -> None:
    # 2023: "73" is 2073 (50 years ahead), "74" is 1974.
    assert parse_http_date(b"Monday, 06-Nov-73 08:49:37 GMT", NOW) == calendar.timegm(
        (2073, 11, 6, 8, 49, 37, 0, 0, 0)
    )
    assert parse_http_date(b"Tuesday, 06-Nov-74 08:49:37 GMT", NOW) == calendar.timegm(
        (1974, 11, 6, 8, 49, 37, 0, 0, 0)
    )


def test_a_two_digit_year_is_read_in_the_century_after_a_late_clock() -> None:
    late = float(calendar.timegm((2090, 1, 1, 0, 0, 0, 0, 0, 0)))
    assert parse_http_date(b"Friday, 06-Nov-05 08:49:37 GMT", late) == calendar.timegm(
        (2105, 11, 6, 8, 49, 37, 0, 0, 0)
    )


@pytest.mark.parametrize(
    "value",
    [
        b"",
        b"0",
        b"-1",
        b"yesterday",
        b"Sun 06 Nov 1994 08:49:37 GMT",  # missing comma
        b"Sun,  06 Nov 1994 08:49:37 GMT",  # extra space
        b"Sun, 06  Nov 1994 08:49:37 GMT",
        b"Sun,06 Nov 1994 08:49:37 GMT",  # missing space
        b"Sun, 06 Nov 1994 08:49:37GMT",
        b"Sun, 6 Nov 1994 08:49:37 GMT",  # one-digit day
        b"sun, 06 Nov 1994 08:49:37 GMT",  # lower-case names
        b"Sun, 06 nov 1994 08:49:37 GMT",
        b"SUN, 06 NOV 1994 08:49:37 GMT",
        b"Sun, 06 Nov 1994 08:49:37 gmt",
        b"Sun, 06 Nov 1994 08:49:37 UTC",  # another zone
        b"Sun, 06 Nov 1994 08:49:37 +0000",
        b"Sun, 06 Nov 1994 08:49:37",
        b"Sun, 06 Nov 94 08:49:37 GMT",  # two-digit year outside rfc850
        b"Sun, 06-Nov-94 08:49:37 GMT",  # rfc850 with a short day name
        b"Sunday, 06 Nov 1994 08:49:37 GMT",  # IMF with a long day name
        b"Sunday, 06-Nov-1994 08:49:37 GMT",  # rfc850 with four digits
        b"Sunday, 06-Nov-94 08:49:37 UTC",
        b"Sun Nov 6 08:49:37 1994",  # asctime with one space before a one-digit day
        b"Sun Nov  6 08:49:37 94",
        b"Sun Nov  6 08:49:37 1994 GMT",
        b"Sun, 06 Nov 1994 8:49:37 GMT",  # one-digit hour
        b"Sun, 06 Nov 1994 08:49 GMT",
        b"Sun, 32 Nov 1994 08:49:37 GMT",  # out of range
        b"Sun, 00 Nov 1994 08:49:37 GMT",
        b"Sun, 31 Nov 1994 08:49:37 GMT",
        b"Sun, 29 Feb 2023 08:49:37 GMT",
        b"Sun, 06 Nov 1994 24:00:00 GMT",
        b"Sun, 06 Nov 1994 08:60:00 GMT",
        b"Sun, 06 Nov 1994 08:49:61 GMT",
        b"Sun, 06 Nov 0000 08:49:37 GMT",
        b"Sun, 06 Nov 1994 08:49:37 GMT, Mon, 07 Nov 1994 08:49:37 GMT",  # a list
        b"Sun, \xd9\xa0\xd9\xa6 Nov 1994 08:49:37 GMT",  # non-ASCII digits
        b"Sun, 06 Nov 1994 08:49:37 GMT\n",
    ],
)
def test_anything_else_is_not_a_date(value: bytes) -> None:
    assert parse_http_date(value, NOW) is None


def test_a_field_date_is_read_whatever_the_name_case() -> None:
    headers = [(b"Expires", b"Sun, 06 Nov 1994 08:49:37 GMT")]
    assert field_date(headers, b"expires", NOW) == EXAMPLE


def test_a_field_sent_on_two_lines_is_not_a_date() -> None:
    headers = [
        (b"expires", b"Sun, 06 Nov 1994 08:49:37 GMT"),
        (b"expires", b"Sun, 06 Nov 1994 08:49:37 GMT"),
    ]
    assert field_date(headers, b"expires", NOW) is None


def test_an_absent_field_is_not_a_date() -> None:
    assert field_date([(b"date", b"Sun, 06 Nov 1994 08:49:37 GMT")], b"expires", NOW) is None
