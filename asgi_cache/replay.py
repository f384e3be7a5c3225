"""Sending a stored entry to the client: a hit, a stale or a collapsed answer.

The stored headers go out as the application sent them, plus ``Age`` (RFC 9111
§5.1) and ``Cache-Status`` (RFC 9211); a request whose ``If-None-Match`` or
``If-Modified-Since`` says its copy is current gets a ``304`` without body
instead (see :func:`asgi_cache.policy.not_modified`).
"""

from __future__ import annotations

from starlette.types import Send

from asgi_cache.entry import Entry
from asgi_cache.policy import not_modified
from asgi_cache.status import CACHE_STATUS

__all__ = ["send_entry"]


async def send_entry(
    entry: Entry,
    age: float,
    status_line: bytes,
    send: Send,
    head: bool,
    if_none_match: bytes | None,
    if_modified_since: bytes | None = None,
) -> None:
    """Answer from ``entry``, ``age`` seconds old, with ``Cache-Status: status_line``."""
    status = entry.status
    headers = entry.headers
    body = entry.body
    if if_none_match is not None or if_modified_since is not None:
        validated = not_modified(
            headers,
            if_none_match,
            if_modified_since,
            status=status,
            stored_at=entry.stored_at,
            now=entry.stored_at + age,
        )
        if validated is not None:
            status, headers, body = 304, validated, b""
    headers = [*headers, (b"age", b"%d" % age), (CACHE_STATUS, status_line)]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": b"" if head else body})
