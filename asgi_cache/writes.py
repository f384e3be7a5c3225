"""A request whose method is not safe: run it, and invalidate what it changed.

RFC 9111 §4.4: a successful response to an unsafe request (any method but
GET, HEAD, OPTIONS and TRACE, an unknown one too) invalidates its target URI
and the same-origin URIs in its ``Location`` / ``Content-Location``.  Here
that is the path tags of every canonical spelling of those paths, plus the
``@invalidates`` tags of the write route.  The invalidation is done before the
response start reaches the client, so a client that saw its write succeed
never reads the old page afterwards.  One the store cannot take is kept and
retried (:mod:`asgi_cache.pending`); with ``invalidation_failure="fail"`` the
write is answered ``503`` instead of the application's response.
"""

from __future__ import annotations

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from asgi_cache.cache import Cache
from asgi_cache.forwarding import send_text
from asgi_cache.invalidation import invalidates, related_paths, request_authority, request_target
from asgi_cache.keys import path_tag, tag_key
from asgi_cache.pending import InvalidationPending
from asgi_cache.routes import RouteTable, route_path

__all__ = ["run_write"]


async def run_write(
    app: ASGIApp, cache: Cache, table: RouteTable, scope: Scope, receive: Receive, send: Send
) -> None:
    """Run ``app`` for an unsafe request; invalidate before its response start
    goes out, if it succeeded."""
    path = route_path(scope)
    route = table.for_write(scope["method"], path)
    tags = [] if route is None else [tag_key(cache.prefix, t) for t in route.tags(path)]
    tags += [path_tag(cache.prefix, p) for p in table.canonical_paths(path, route)]

    failed = False

    async def send_after_invalidating(message: Message) -> None:
        nonlocal failed
        if failed:
            return  # the 503 went out instead
        if message["type"] == "http.response.start" and invalidates(
            scope["method"], message["status"]
        ):
            try:
                await cache.invalidate_store_tags(tags + _related(cache, table, scope, message))
            except InvalidationPending:  # kept and retried; logged by the cache
                if cache.invalidation_failure == "fail":
                    failed = True
                    await _send_invalidation_failed(send)
                    return
        await send(message)

    await app(scope, receive, send_after_invalidating)


def _related(cache: Cache, table: RouteTable, scope: Scope, start: Message) -> list[str]:
    """The path tags of the same-origin ``Location`` / ``Content-Location`` of a
    write's response start (see :func:`asgi_cache.invalidation.related_paths`)."""
    headers = start.get("headers") or []
    if not any(n.lower() in (b"location", b"content-location") for n, _ in headers):
        return []
    paths = related_paths(
        list(headers),
        scope.get("scheme", "http"),
        request_authority(scope.get("headers", []), scope.get("server")),
        request_target(scope["path"], scope.get("raw_path")),
        scope.get("root_path", ""),
    )
    prefix = cache.prefix
    return [path_tag(prefix, p) for path in paths for p in table.canonical_paths(path, None)]


async def _send_invalidation_failed(send: Send) -> None:
    """Answer a write whose invalidation failed, under ``invalidation_failure="fail"``.

    RFC 9110 §15.6.4: 503 says the condition is temporary; ``Retry-After``
    (§10.2.3) when to try again: about when the kept invalidation is retried.
    """
    await send_text(
        send,
        503,
        b"The change was made, but the cache could not be updated yet; retry shortly.\n",
        [(b"retry-after", b"1"), (b"cache-control", b"no-store")],
    )
