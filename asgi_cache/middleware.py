"""``CacheMiddleware``: answers hits before routing, stores what may be stored.

A pure ASGI middleware.  For a GET or HEAD of a ``@cached`` route it builds the
key from the raw request, asks the store once, and on a hit sends the stored
response itself: no routing, no dependency, no serialisation runs.  On a miss
it runs the application through a :class:`_Responder` that watches the response
go by and stores it once it is complete and storable.  A successful unsafe
request (POST, PUT, PATCH, DELETE) invalidates its path and ``@invalidates``
tags before its response start reaches the client.

The store is never trusted to be up: a failing or slow store turns into a
bypass, never into an error page.
"""

from __future__ import annotations

import inspect
import logging
import os
from hashlib import blake2b

from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from asgi_cache.cache import SCOPE_KEY, Cache
from asgi_cache.entry import CorruptEntry, Entry, decode, encode
from asgi_cache.headers import accepted_codings, etag_matches
from asgi_cache.keys import canonical_query, entry_key, path_tag, tag_key
from asgi_cache.policy import (
    UNSAFE_METHODS,
    freshness_lifetime,
    request_directive,
    unstorable_reason,
)
from asgi_cache.routes import ReadRoute, RouteTable, compile_routes, find_routes
from asgi_cache.stores.base import Fence, StoreError

__all__ = ["CacheMiddleware"]

logger = logging.getLogger("asgi_cache")

Headers = list[tuple[bytes, bytes]]

_STATUS = b"cache-status"
_HIT = b"asgi-cache; hit; ttl=%d"
_MISS = b"asgi-cache; fwd=uri-miss"
# RFC 9110 §15.4.5: the fields a 304 carries from the full response.
_NOT_MODIFIED_FIELDS = frozenset(
    {b"cache-control", b"content-location", b"date", b"etag", b"expires", b"vary"}
)


def _store_failed(operation: str, exc: Exception) -> None:
    """Log a store failure: a :class:`StoreError` was already reported by its
    store (once per outage, not per request), anything else is unexpected."""
    if isinstance(exc, StoreError):
        logger.debug("asgi-cache: store %s failed: %s", operation, exc)
    else:
        logger.warning("asgi-cache: store %s failed: %r", operation, exc, exc_info=exc)


def _route_path(scope: Scope) -> str:
    """The path the router matches: ``path`` without the ``root_path``."""
    path: str = scope["path"]
    root_path: str = scope.get("root_path", "")
    if root_path and path.startswith(root_path):
        rest = path[len(root_path) :]
        if not rest or rest[0] == "/":
            return rest
    return path


def _with_header(message: Message, name: bytes, value: bytes) -> Message:
    return {**message, "headers": [*message.get("headers", ()), (name, value)]}


class CacheMiddleware:
    """Cache whole responses of ``@cached`` routes; answer hits before routing.

    :param app: the ASGI application (``app.add_middleware(CacheMiddleware)``).
    :param cache: the :class:`Cache` to use.  Omitted, one is built from the
        ``ASGI_CACHE_URL`` environment variable (``memory://`` by default).

    The routing table is compiled when the application's lifespan startup
    completes (a marker that does not fit its route fails startup, naming it),
    or at the first request for servers that run no lifespan.  The cache's store
    is closed at lifespan shutdown.
    """

    def __init__(self, app: ASGIApp, *, cache: Cache | None = None) -> None:
        self.app = app
        if cache is None:
            cache = Cache.from_url(os.environ.get("ASGI_CACHE_URL", "memory://"))
        self.cache = cache
        self._table: RouteTable | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if kind != "http":
            if kind == "lifespan":
                await self._lifespan(scope, receive, send)
            else:
                await self.app(scope, receive, send)
            return
        scope[SCOPE_KEY] = self.cache
        table = self._table or self._compile(scope)
        method = scope["method"]
        if method == "GET" or method == "HEAD":
            route_path = _route_path(scope)
            route = table.for_read(route_path)
            if route is not None:
                await self._read(route, route_path, scope, receive, send)
                return
        elif method in UNSAFE_METHODS:
            await self._write(table, scope, receive, send)
            return
        await self.app(scope, receive, send)

    def _compile(self, scope: Scope) -> RouteTable:
        routes, compressed = find_routes(self.app)
        if routes is None:
            routes, _ = find_routes(scope.get("app"))
        if routes is None:
            logger.warning("asgi-cache: no routing table found below the middleware")
        self._table = compile_routes(routes or [], self.cache, compressed=compressed)
        return self._table

    async def _lifespan(self, scope: Scope, receive: Receive, send: Send) -> None:
        async def lifespan_send(message: Message) -> None:
            if message["type"] == "lifespan.startup.complete":
                # Raised into the application's lifespan, which reports the
                # failure to the server (Starlette sends startup.failed).
                self._compile(scope)
            elif message["type"] == "lifespan.shutdown.complete":
                await self.cache.aclose()
            await send(message)

        await self.app(scope, receive, lifespan_send)

    async def _read(
        self, route: ReadRoute, route_path: str, scope: Scope, receive: Receive, send: Send
    ) -> None:
        cache = self.cache
        key_headers = route.key_headers
        values: list[list[bytes] | None] = [None] * len(key_headers)
        if_none_match = accept_encoding = None
        request_cc: list[bytes] | None = None
        pragma: list[bytes] | None = None
        for name, value in scope["headers"]:
            if name in key_headers:
                index = key_headers.index(name)
                found = values[index]
                if found is None:
                    values[index] = [value]
                else:
                    found.append(value)
            if name == b"if-none-match":
                if_none_match = value
            elif name == b"accept-encoding":
                accept_encoding = value
            elif name in route.bypass_headers:
                await self._forward(scope, receive, send, b"detail=" + name)
                return
            elif name == b"cache-control":
                request_cc = [*(request_cc or ()), value]
            elif name == b"pragma":
                pragma = [*(pragma or ()), value]

        forced = None
        if cache.honor_request_cache_control and (request_cc or pragma):
            forced = request_directive(request_cc, pragma)
            if forced == "no-store":
                await self._forward(scope, receive, send, b"detail=request-no-store")
                return

        custom = b""
        if route.rule.key is not None:
            try:
                part = route.rule.key(Request(scope, receive))
                if inspect.isawaitable(part):
                    part = await part
                custom = str(part).encode("utf-8", "surrogatepass")
            except Exception:
                logger.warning("asgi-cache: key function of %s failed", route.label, exc_info=True)
                await self._forward(scope, receive, send, b"detail=key-error")
                return

        codings = accepted_codings(accept_encoding) if route.key_codings else b""
        parts = (
            scope.get("root_path", "").encode("utf-8", "surrogatepass"),
            route_path.encode("utf-8", "surrogatepass"),
            canonical_query(scope.get("query_string", b"")),
            codings,
            custom,
        )
        key = entry_key(cache.prefix, parts, values)
        store = cache.store
        if forced is None:
            try:
                data = await store.get(key)
            except Exception as exc:
                _store_failed("get", exc)
                await self._forward(scope, receive, send, b"detail=store-unavailable")
                return
            if data is not None:
                try:
                    entry = decode(data)
                except CorruptEntry:
                    logger.warning("asgi-cache: unreadable entry under %s, treated as a miss", key)
                else:
                    now = cache.clock()
                    if entry.is_fresh(now):
                        logger.debug("asgi-cache: hit %s %s", route.label, key)
                        await _send_hit(entry, now, scope["method"], if_none_match, send)
                        return

        if scope["method"] == "HEAD":  # a HEAD has no body to store
            await self._forward(scope, receive, send, b"detail=head", fwd=_MISS)
            return
        tags = [tag_key(cache.prefix, tag) for tag in route.tags(route_path)]
        tags.append(path_tag(cache.prefix, route_path))
        try:
            fence: Fence | None = await store.fence(tags)
        except Exception as exc:
            _store_failed("fence", exc)
            await self._forward(scope, receive, send, b"detail=store-unavailable", fwd=_MISS)
            return
        fwd = _MISS if forced is None else b"asgi-cache; fwd=request"
        responder = _Responder(self.cache, route, key, tags, fence, fwd, codings, receive, send)
        logger.debug("asgi-cache: miss %s %s", route.label, key)
        await self.app(scope, responder.receive, responder.send)

    async def _forward(
        self,
        scope: Scope,
        receive: Receive,
        send: Send,
        detail: bytes,
        fwd: bytes = b"asgi-cache; fwd=bypass",
    ) -> None:
        """Run the application untouched but for a ``Cache-Status`` saying why."""
        status = fwd + b"; " + detail
        logger.debug("asgi-cache: %s %s", status.decode("latin-1"), scope["path"])

        async def send_with_status(message: Message) -> None:
            if message["type"] == "http.response.start":
                message = _with_header(message, _STATUS, status)
            await send(message)

        await self.app(scope, receive, send_with_status)

    async def _write(self, table: RouteTable, scope: Scope, receive: Receive, send: Send) -> None:
        cache = self.cache
        route_path = _route_path(scope)
        route = table.for_write(scope["method"], route_path)
        tags = [] if route is None else [tag_key(cache.prefix, t) for t in route.tags(route_path)]
        tags.append(path_tag(cache.prefix, route_path))

        async def send_after_invalidating(message: Message) -> None:
            if message["type"] == "http.response.start" and 200 <= message["status"] < 400:
                try:
                    removed = await cache.store.invalidate(tags)
                    logger.debug("asgi-cache: %s invalidated %d entries", scope["path"], removed)
                except Exception as exc:  # stale entries may remain: always worth a warning
                    logger.warning("asgi-cache: invalidation of %s failed: %s", tags, exc)
            await send(message)

        await self.app(scope, receive, send_after_invalidating)


async def _send_hit(
    entry: Entry, now: float, method: str, if_none_match: bytes | None, send: Send
) -> None:
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
    headers = [
        *headers,
        (b"age", b"%d" % age),
        (_STATUS, _HIT % max(0, entry.fresh_for - age)),
    ]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": b"" if method == "HEAD" else body})


class _Responder:
    """Watches one miss's response go by and stores it when complete.

    The response start is held back until the first body message: when that
    message is the whole body (the common case), the entry is stored *before*
    the client sees anything, so ``Cache-Status`` says truthfully whether it was
    stored and the ``ETag`` is already there.  A streamed body is forwarded
    chunk by chunk as it comes and buffered only up to ``max_body_size``; it is
    stored when its last chunk arrives, unless the client disconnected.
    """

    __slots__ = (
        "buffer",
        "buffered",
        "cache",
        "codings",
        "fence",
        "fwd",
        "held",
        "key",
        "receive_",
        "route",
        "send_",
        "start",
        "storing",
        "tags",
    )

    def __init__(
        self,
        cache: Cache,
        route: ReadRoute,
        key: str,
        tags: list[str],
        fence: Fence | None,
        fwd: bytes,
        codings: bytes,
        receive: Receive,
        send: Send,
    ) -> None:
        self.cache = cache
        self.codings = codings
        self.route = route
        self.key = key
        self.tags = tags
        self.fence = fence
        self.fwd = fwd
        self.receive_ = receive
        self.send_ = send
        self.held: Message | None = None  # the response start, until the first body
        self.start: Message = {}  # the response start as it will be stored
        self.storing = True
        self.buffer: list[bytes] = []
        self.buffered = 0

    async def receive(self) -> Message:
        message = await self.receive_()
        if message["type"] == "http.disconnect":
            self.storing = False
        return message

    async def _release(self, status: bytes) -> None:
        """Send the held response start with its ``Cache-Status``."""
        held, self.held = self.held, None
        assert held is not None
        await self.send_(_with_header(held, _STATUS, status))

    async def send(self, message: Message) -> None:
        kind = message["type"]
        if kind == "http.response.start":
            headers: Headers = list(message.get("headers", ()))
            route = self.route
            reason = unstorable_reason(
                message["status"], headers, route.statuses, route.key_header_names
            ) or _unaccepted_coding(headers, self.codings)
            if reason is not None:
                self.storing = False
                await self.send_(
                    _with_header(message, _STATUS, self.fwd + b"; detail=" + reason.encode())
                )
                return
            if route.cache_control is not None:
                headers = [(n, v) for n, v in headers if n.lower() != b"cache-control"]
                headers.append((b"cache-control", route.cache_control))
            self.held = self.start = {**message, "headers": headers}
            return
        if kind != "http.response.body" or not self.storing:
            self.storing = False
            if self.held is not None:
                await self._release(self.fwd + b"; detail=not-stored")
            await self.send_(message)
            return

        body: bytes = message.get("body", b"")
        more: bool = message.get("more_body", False)
        if self.held is not None and not more:  # the whole body in one message
            if len(body) > self.route.max_body_size:
                self.storing = False
                await self._release(self.fwd + b"; detail=too-large")
            else:
                self.held["headers"] = _with_etag(self.held["headers"], body)
                stored = await self._store(body)
                await self._release(self.fwd + (b"; stored" if stored else b"; detail=not-stored"))
            await self.send_(message)
            return
        if self.held is not None:  # a streamed body: forward as it comes
            await self._release(self.fwd)
        self.buffered += len(body)
        if self.buffered > self.route.max_body_size:
            self.storing = False
            self.buffer = []
        else:
            self.buffer.append(body)
            if not more:
                await self._store(b"".join(self.buffer))
        await self.send_(message)

    async def _store(self, body: bytes) -> bool:
        """Store the finished response; a store failure only costs the entry."""
        cache = self.cache
        headers = [(n, v) for n, v in _with_etag(self.start["headers"], body) if n != b"age"]
        ttl = freshness_lifetime(self.route.rule.ttl, headers, cache.default_ttl)
        if ttl <= 0:
            return False
        entry = Entry(self.start["status"], headers, body, cache.clock(), ttl)
        try:
            return await cache.store.set(self.key, encode(entry), ttl, self.tags, self.fence)
        except Exception as exc:
            _store_failed("set", exc)
            return False


def _unaccepted_coding(headers: Headers, codings: bytes) -> str | None:
    """Refuse a body encoded in a coding the key says the client does not accept.

    The key holds only the accepted *known* codings; a compressor that encodes
    anyway (Starlette's gzip ignores ``q=0``) must not fill the entry that
    clients without that coding share.
    """
    for name, value in headers:
        if name.lower() == b"content-encoding":
            for coding in value.lower().split(b","):
                coding = coding.strip()
                if coding != b"identity" and coding not in codings.split(b","):
                    return "content-encoding"
    return None


def _with_etag(headers: Headers, body: bytes) -> Headers:
    """``headers`` with a strong ``ETag`` (a digest of the body) unless they have one."""
    if any(name.lower() == b"etag" for name, _ in headers):
        return headers
    digest = blake2b(body, digest_size=16).hexdigest().encode()
    return [*headers, (b"etag", b'"' + digest + b'"')]
