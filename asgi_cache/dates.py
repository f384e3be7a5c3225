"""HTTP-date (RFC 9110 §5.6.7), read strictly, on raw ``bytes``.

``Expires``, ``Date`` and ``Last-Modified`` decide how long a response is
fresh, so a date is accepted only when it is spelled exactly as one of the
three forms RFC 9110 §5.6.7 requires recipients to accept::

    Sun, 06 Nov 1994 08:49:37 GMT    ; IMF-fixdate
    Sunday, 06-Nov-94 08:49:37 GMT   ; obsolete RFC 850 format
    Sun Nov  6 08:49:37 1994         ; ANSI C's asctime() format

Anything else (a missing comma, an extra or missing space, a lower-case or
unknown name, a zone other than ``GMT``, a two-digit year outside the RFC 850
form, a field out of range, several field lines) is not a date, and callers
treat it as RFC 9111 tells them to for an invalid value.  The weekday is
checked against the grammar only, not against the calendar: §5.6.7 does not
make a mismatch invalid, and the date itself is unambiguous.
"""

from __future__ import annotations

import calendar
import re
import time

__all__ = ["field_date", "parse_http_date"]

Headers = list[tuple[bytes, bytes]]

_DAY = rb"(?:Mon|Tue|Wed|Thu|Fri|Sat|Sun)"
_DAY_LONG = rb"(?:Monday|Tuesday|Wednesday|Thursday|Friday|Saturday|Sunday)"
_MONTH = rb"(Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec)"
_TIME = rb"([0-9]{2}):([0-9]{2}):([0-9]{2})"
# Each form captures: day, month, year, hour, minute, second (asctime reorders).
_IMF_FIXDATE = re.compile(_DAY + rb", ([0-9]{2}) " + _MONTH + rb" ([0-9]{4}) " + _TIME + rb" GMT")
_RFC850 = re.compile(_DAY_LONG + rb", ([0-9]{2})-" + _MONTH + rb"-([0-9]{2}) " + _TIME + rb" GMT")
_ASCTIME = re.compile(_DAY + rb" " + _MONTH + rb" ([0-9]{2}| [0-9]) " + _TIME + rb" ([0-9]{4})")
_MONTHS = {
    name: number
    for number, name in enumerate(b"Jan Feb Mar Apr May Jun Jul Aug Sep Oct Nov Dec".split(), 1)
}
# RFC 9110 §5.5: a field value does not include leading or trailing whitespace.
_OWS = b" \t"


def parse_http_date(value: bytes, now: float) -> float | None:
    """``value`` as Unix seconds, or ``None`` when it is not an HTTP-date.

    RFC 9110 §5.6.7: recipients accept IMF-fixdate and the two obsolete
    forms.  A two-digit RFC 850 year is read as the year with those digits
    that is at most 50 years after ``now`` (the most recent such year in the
    past when the nearest one would be further ahead).  Seconds may be
    ``60`` (a leap second, which the grammar admits).
    """
    value = value.strip(_OWS)
    match = _IMF_FIXDATE.fullmatch(value)
    if match is not None:
        day, month, year, hour, minute, second = match.groups()
        return _timestamp(int(year), _MONTHS[month], int(day), hour, minute, second)
    match = _RFC850.fullmatch(value)
    if match is not None:
        day, month, short_year, hour, minute, second = match.groups()
        year = _rfc850_year(int(short_year), now)
        return _timestamp(year, _MONTHS[month], int(day), hour, minute, second)
    match = _ASCTIME.fullmatch(value)
    if match is not None:
        month, day, hour, minute, second, year = match.groups()
        return _timestamp(int(year), _MONTHS[month], int(day.lstrip()), hour, minute, second)
    return None


def field_date(headers: Headers, name: bytes, now: float) -> float | None:
    """The HTTP-date of the field ``name`` (lower case), or ``None``.

    ``None`` when the field is absent, invalid, or sent on several lines:
    these fields are singletons (RFC 9110 §5.5), and two dates do not say
    which one the sender meant.
    """
    found: bytes | None = None
    for field, value in headers:
        if field.lower() == name:
            if found is not None:
                return None
            found = value
    return None if found is None else parse_http_date(found, now)


def _rfc850_year(short_year: int, now: float) -> int:
    """RFC 9110 §5.6.7: a two-digit year more than 50 years ahead is in the past."""
    this_year = time.gmtime(now).tm_year
    year = this_year - this_year % 100 + short_year
    if year > this_year + 50:
        year -= 100
    elif year <= this_year - 50:
        year += 100
    return year


def _timestamp(
    year: int, month: int, day: int, hour: bytes, minute: bytes, second: bytes
) -> float | None:
    """Seconds since the epoch, or ``None`` for a field out of range (30 Feb, 24:00)."""
    h, m, s = int(hour), int(minute), int(second)
    if year < 1 or not 1 <= day <= calendar.monthrange(year, month)[1]:
        return None
    if h > 23 or m > 59 or s > 60:
        return None
    return float(calendar.timegm((year, month, day, h, m, s, 0, 0, 0)))
