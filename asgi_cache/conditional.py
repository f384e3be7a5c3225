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

from asgi_cache.dates import field_date, parse_http_date
from asgi_cache.headers import etag_matches

__all__ = ["ORIGIN_PRECONDITIONS", "is_not_modified", "last_modified"]

Headers = list[tuple[bytes, bytes]]

#: Request fields the cache never evaluates: the application does (RFC 9111
#: §4.3.2; RFC 9110 §13.1.1, §13.1.4, §13.1.5).
ORIGIN_PRECONDITIONS = frozenset({b"if-match", b"if-unmodified-since", b"if-range"})


def last_modified(headers: Headers, stored_at: float, now: float) -> float:
    """When the stored response last changed, to compare ``If-Modified-Since`` with.

    RFC 9111 §4.3.2: its ``Last-Modified``; without one (or with one that is
    not a single HTTP-date, :func:`asgi_cache.dates.field_date`) its
    ``Date``; without that, when it was stored.
    """
    modified = field_date(headers, b"last-modified", now)
    if modified is not None:
        return modified
    date = field_date(headers, b"date", now)
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
    since = parse_http_date(if_modified_since, now)
    if since is None:
        return False
    return last_modified(headers, stored_at, now) <= since
