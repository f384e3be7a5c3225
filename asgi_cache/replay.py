"""Sending a stored entry to the client: a hit, a stale or a collapsed answer.

The stored headers go out as the application sent them, plus ``Age`` (RFC 9111
§5.1) and ``Cache-Status`` (RFC 9211); a matching ``If-None-Match`` turns the
answer into a ``304`` without body (RFC 9110 §13.1.2, §15.4.5).
"""

from __future__ import annotations

from starlette.types import Send

from asgi_cache.entry import Entry
from asgi_cache.headers import etag_matches

__all__ = ["CACHE_STATUS", "send_entry"]

CACHE_STATUS = b"cache-status"
_HIT = b"asgi-cache; hit; ttl=%d"
# RFC 9110 §15.4.5: the fields a 304 carries from the full response.
_NOT_MODIFIED_FIELDS = frozenset(
    {b"cache-control", b"content-location", b"date", b"etag", b"expires", b"vary"}
)


async def send_entry(
    entry: Entry,
    now: float,
    send: Send,
    *,
    head: bool,
    if_none_match: bytes | None,
    status_line: bytes | None = None,
) -> None:
    """Answer from ``entry``; ``status_line`` replaces the default ``hit`` one.

    A stale entry reports a negative ``ttl`` (RFC 9211 §2.5), saying how long
    ago it expired.
    """
    status = entry.status
    headers = entry.headers
    body = entry.body
    if if_none_match is not None:
        etag = next((value for name, value in headers if name == b"etag"), None)
        if etag is not None and etag_matches(if_none_match, etag):
            status = 304
            headers = [(n, v) for n, v in headers if n in _NOT_MODIFIED_FIELDS]
            body = b""
    age = entry.age(now)
    if status_line is None:
        status_line = _HIT % (entry.fresh_for - age)
    headers = [*headers, (b"age", b"%d" % age), (CACHE_STATUS, status_line)]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": b"" if head else body})
