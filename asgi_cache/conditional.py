"""Conditional requests answered from a stored response (RFC 9110 §13, RFC 9111 §4.3.2).

A client holding a copy of a page asks "has it changed?" with ``If-None-Match``
(entity tags) or ``If-Modified-Since`` (a date).  The cache answers that from
the stored response itself: ``304 Not Modified`` without body when the copy is
still current, the full stored response otherwise.  Pure functions: no I/O,
the time passed in.

``If-Match`` and ``If-Unmodified-Since`` "are not applicable to a cache"
(RFC 9111 §4.3.2): they guard changes the origin makes, so a request carrying
one is left to the application (see :data:`ORIGIN_PRECONDITIONS`), as is
``If-Range``: the cache does not assemble ranges, the application does.
"""

from __future__ import annotations

import calendar
import re
import time

from asgi_cache.headers import etag_matches

__all__ = ["ORIGIN_PRECONDITIONS", "is_not_modified", "last_modified"]

Headers = list[tuple[bytes, bytes]]

#: Request fields the cache never evaluates: the application does (RFC 9111
#: §4.3.2; RFC 9110 §13.1.1, §13.1.4, §13.1.5).
ORIGIN_PRECONDITIONS = frozenset({b"if-match", b"if-unmodified-since", b"if-range"})

_MONTHS = {
    name: number
    for number, name in enumerate(
        b"Jan Feb Mar Apr May Jun Jul Aug Sep Oct Nov Dec".split(),
        start=1,
    )
}
_DAY = rb"(?:Mon|Tue|Wed|Thu|Fri|Sat|Sun)"
_DAY_LONG = rb"(?:Monday|Tuesday|Wednesday|Thursday|Friday|Saturday|Sunday)"
_MONTH = rb"(Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec)"
_TIME = rb"(\d\d):(\d\d):(\d\d)"
# RFC 9110 §5.6.7: IMF-fixdate, and the two obsolete forms a recipient must accept.
_IMF_FIXDATE = re.compile(_DAY + rb", (\d\d) " + _MONTH + rb" (\d{4}) " + _TIME + rb" GMT")
_RFC850 = re.compile(_DAY_LONG + rb", (\d\d)-" + _MONTH + rb"-(\d\d) " + _TIME + rb" GMT")
_ASCTIME = re.compile(_DAY + rb" " + _MONTH + rb" ([ \d]\d) " + _TIME + rb" (\d{4})")


def _http_date(value: bytes, now: float) -> float | None:
    """The Unix time of an HTTP-date (RFC 9110 §5.6.7), or ``None`` when it is not one.

    IMF-fixdate, and the obsolete RFC 850 and asctime forms recipients must
    accept; nothing else (HTTP-date is case-sensitive).  An RFC 850 two-digit
    year that would be more than 50 years after ``now`` is the latest past year
    with those digits, as §5.6.7 requires.
    """
    value = value.strip()
    if match := _IMF_FIXDATE.fullmatch(value):
        day, month, year, hour, minute, second = match.groups()
    elif match := _RFC850.fullmatch(value):
        day, month, short, hour, minute, second = match.groups()
        this_year = time.gmtime(now).tm_year
        year_number = this_year - this_year % 100 + int(short)
        if year_number > this_year + 50:
            year_number -= 100
        year = b"%d" % year_number
    elif match := _ASCTIME.fullmatch(value):
        month, day, hour, minute, second, year = match.groups()
    else:
        return None
    numbers = (int(year), _MONTHS[month], int(day), int(hour), int(minute), int(second))
    y, m, d, hh, mm, ss = numbers
    if not 1 <= d <= calendar.monthrange(y, m)[1] or hh > 23 or mm > 59 or ss > 60:
        return None
    return float(calendar.timegm((y, m, d, hh, mm, ss, 0, 0, 0)))


def last_modified(headers: Headers, stored_at: float, now: float) -> float:
    """When the stored response last changed, to compare ``If-Modified-Since`` with.

    RFC 9111 §4.3.2: its ``Last-Modified``; without one (or with one that is
    not an HTTP-date) its ``Date``; without that, when it was stored.
    """
    modified = date = None
    for name, value in headers:
        if name == b"last-modified" and modified is None:
            modified = _http_date(value, now)
        elif name == b"date" and date is None:
            date = _http_date(value, now)
    if modified is not None:
        return modified
    return date if date is not None else stored_at


def is_not_modified(
    status: int,
    headers: Headers,
    stored_at: float,
    if_none_match: bytes | None,
    if_modified_since: bytes | None,
    now: float,
) -> bool:
    """Whether a GET or HEAD's conditions say the client's copy of the stored response is current.

    RFC 9110 §13.2.1: preconditions count only where the response would be 2xx
    (a stored ``404`` is sent as it is).  §13.2.2: ``If-None-Match`` wins, with
    weak comparison (§13.1.2); only without it is ``If-Modified-Since`` read
    (§13.1.3), and then ignored unless it is exactly one valid HTTP-date: the
    copy is current when the stored response was last modified (see
    :func:`last_modified`) at or before that date.
    """
    if not 200 <= status < 300:
        return False
    if if_none_match is not None:
        for name, value in headers:
            if name == b"etag":
                return etag_matches(if_none_match, value)
        return False
    if if_modified_since is None:
        return False
    since = _http_date(if_modified_since, now)
    if since is None:
        return False
    return last_modified(headers, stored_at, now) <= since
