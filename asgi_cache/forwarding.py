"""Requests the cache hands to the application without storing the answer.

A bypassed request (the cache is off, the store is down, the key function
failed) and a looked-up request that may not be stored (a HEAD, a request
``no-store``) still reach the application untouched but for one thing each:
a ``Cache-Status`` saying why, and the ``Vary`` / ``private`` a cache
downstream needs, so a page computed for one user is never shared by a cache
further down the line (RFC 9111 §4.1, §5.2.2.7).  The cache's own ``504`` for
``only-if-cached`` lives here too: it is the one answer that never reaches the
application.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from asgi_cache.cache import Cache
from asgi_cache.keys import path_tag, tag_key
from asgi_cache.lookup import Lookup
from asgi_cache.routes import ReadRoute, route_path
from asgi_cache.status import CACHE_STATUS, Detail, Forward, forwarded, unanswered, with_status
from asgi_cache.variants import downstream

__all__ = ["bypass", "for_downstream", "forward", "send_only_if_cached", "send_text"]

logger = logging.getLogger("asgi_cache")

Headers = list[tuple[bytes, bytes]]


async def forward(
    app: ASGIApp,
    status: bytes,
    scope: Scope,
    receive: Receive,
    send: Send,
    headers: Callable[[Headers], Headers] | None = None,
) -> None:
    """Run ``app`` untouched but for a ``Cache-Status: status`` (and what
    ``headers`` makes of the response's headers)."""
    logger.debug("asgi-cache: %s %s", status.decode("latin-1"), scope["path"])

    async def send_with_status(message: Message) -> None:
        if message["type"] == "http.response.start":
            if headers is not None:
                message = {**message, "headers": headers(list(message.get("headers", ())))}
            message = with_status(message, status)
        await send(message)

    await app(scope, receive, send_with_status)


async def bypass(
    app: ASGIApp,
    cache: Cache,
    reason: Detail | str,
    scope: Scope,
    receive: Receive,
    send: Send,
    route: ReadRoute,
) -> None:
    """Run ``app`` without looking anything up, counted by ``reason``.

    The response still names the route's selecting headers and is private on
    a ``key=`` route: a cache downstream must not hand a page computed for one
    user (a failing store, a failing key function) to another.
    """
    cache.counters.bypasses[reason.value if isinstance(reason, Detail) else reason] += 1
    front = route.front
    tags = None if front is None else _static_tags(route, route_path(scope), cache.prefix)

    def headers_of(headers: Headers) -> Headers:
        headers = downstream(headers, route.vary_names, (), route.private)
        return headers if front is None else front.headers(headers, tags)

    await forward(app, forwarded(Forward.BYPASS, reason), scope, receive, send, headers_of)


def for_downstream(lookup: Lookup, prefix: str) -> Callable[[Headers], Headers]:
    """What a response forwarded for ``lookup`` must say to caches downstream: its
    selecting headers in ``Vary``, ``private`` on a ``key=`` route, and what the
    cache in front gets (:mod:`asgi_cache.front`)."""
    route = lookup.route
    front = route.front
    if front is None:
        return lambda headers: downstream(headers, route.vary_names, lookup.varied, route.private)
    tags = None if route.rule.tag_function is not None else lookup.tags(prefix)

    def headers_of(headers: Headers) -> Headers:
        headers = downstream(headers, route.vary_names, lookup.varied, route.private)
        return front.headers(headers, tags)

    return headers_of


def _static_tags(route: ReadRoute, path: str, prefix: str) -> list[str] | None:
    """The store tags of a response of ``route`` at ``path`` known without running
    anything of the request's (``None`` when a ``tags=`` or ``key=`` callable
    fills them): those of a request that bypassed the cache."""
    if route.rule.tag_function is not None or route.rule.key is not None:
        return None
    paths = dict.fromkeys([route.canonical_path(path), path])
    return [tag_key(prefix, tag) for tag in route.tags(path)] + [path_tag(prefix, p) for p in paths]


async def send_only_if_cached(send: Send) -> None:
    """Answer a request that forbade going to the application when nothing stored may answer it.

    RFC 9111 §5.2.1.7: ``only-if-cached`` is answered from the cache or with
    ``504 Gateway Timeout``; this response is the cache's own and not stored.
    """
    await send_text(
        send,
        504,
        b"No stored response satisfies this request (only-if-cached).\n",
        [(b"cache-control", b"no-store"), (CACHE_STATUS, unanswered(Detail.ONLY_IF_CACHED))],
    )


async def send_text(send: Send, status: int, body: bytes, headers: Headers) -> None:
    """Send one of the cache's own short plain-text answers: ``status``, ``body``
    and ``headers`` after its ``Content-Type`` and ``Content-Length``."""
    start = [
        (b"content-type", b"text/plain; charset=utf-8"),
        (b"content-length", b"%d" % len(body)),
        *headers,
    ]
    await send({"type": "http.response.start", "status": status, "headers": start})
    await send({"type": "http.response.body", "body": body})
