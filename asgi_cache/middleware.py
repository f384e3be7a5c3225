"""``CacheMiddleware``: answers hits before routing, stores what may be stored.

A pure ASGI middleware.  For a GET or HEAD of a ``@cached`` route it builds the
key from the raw request, asks the store once, and on a hit sends the stored
response itself: no routing, no dependency, no serialisation runs.  On a miss
it runs the application through a :class:`~asgi_cache.responder.Responder` that
watches the response go by and stores it once it is complete and storable;
concurrent misses on one key are coalesced so only one reaches the application.
A successful unsafe request (POST, PUT, PATCH, DELETE) invalidates its path and
``@invalidates`` tags before its response start reaches the client.

The store is never trusted to be up: a failing or slow store turns into a
bypass, never into an error page.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import os
from collections.abc import Callable, Coroutine
from typing import Any

import anyio
from anyio.abc import TaskGroup
from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from asgi_cache.cache import SCOPE_KEY, Cache
from asgi_cache.entry import CorruptEntry, Entry, decode
from asgi_cache.flight import Coalescer, Flight, Leadership
from asgi_cache.headers import accepted_codings
from asgi_cache.keys import canonical_query, entry_key, path_tag, tag_key
from asgi_cache.policy import UNSAFE_METHODS, request_directive
from asgi_cache.replay import CACHE_STATUS, send_entry
from asgi_cache.responder import Responder, store_failed, with_header
from asgi_cache.routes import ReadRoute, RouteTable, compile_routes, find_routes
from asgi_cache.stores.base import Fence

__all__ = ["CacheMiddleware"]

logger = logging.getLogger("asgi_cache")

_MISS = b"asgi-cache; fwd=uri-miss"
_BYPASS = b"asgi-cache; fwd=bypass"
_COLLAPSED = b"asgi-cache; fwd=uri-miss; collapsed"
_STALE = b"asgi-cache; hit; ttl=%d; detail=%s"


def _route_path(scope: Scope) -> str:
    """The path the router matches: ``path`` without the ``root_path``."""
    path: str = scope["path"]
    root_path: str = scope.get("root_path", "")
    if root_path and path.startswith(root_path):
        rest = path[len(root_path) :]
        if not rest or rest[0] == "/":
            return rest
    return path


class _Lookup:
    """What the hit path learnt about one request, for the miss path."""

    __slots__ = ("codings", "fwd", "if_none_match", "key", "route", "route_path")

    def __init__(
        self,
        route: ReadRoute,
        route_path: str,
        key: str,
        codings: bytes,
        if_none_match: bytes | None,
        fwd: bytes,
    ) -> None:
        self.route = route
        self.route_path = route_path
        self.key = key
        self.codings = codings
        self.if_none_match = if_none_match
        self.fwd = fwd


class CacheMiddleware:
    """Cache whole responses of ``@cached`` routes; answer hits before routing.

    :param app: the ASGI application (``app.add_middleware(CacheMiddleware)``).
    :param cache: the :class:`Cache` to use.  Omitted, one is built from the
        ``ASGI_CACHE_URL`` environment variable (``memory://`` by default).

    The routing table is compiled when the application's lifespan startup
    completes (a marker that does not fit its route fails startup, naming it),
    or at the first request for servers that run no lifespan.  Background
    refreshes (``stale_while_revalidate``) belong to the lifespan and are
    cancelled at shutdown, when the cache's store is closed too.
    """

    def __init__(self, app: ASGIApp, *, cache: Cache | None = None) -> None:
        self.app = app
        if cache is None:
            cache = Cache.from_url(os.environ.get("ASGI_CACHE_URL", "memory://"))
        self.cache = cache
        self._table: RouteTable | None = None
        self._coalescer = Coalescer()
        self._decode = _Decoded()
        self._tasks: TaskGroup | None = None
        self._orphans: set[asyncio.Task[None]] = set()  # refreshes run without a lifespan

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
                self._tasks = None
                tasks.cancel_scope.cancel()  # background refreshes end here
                with anyio.CancelScope(shield=True):  # ... but this task finishes its job
                    await self.cache.aclose()
                    await send(message)
                return
            await send(message)

        # The application's own failure is raised as itself, after the task
        # group: a server or test expects its exception, not an ExceptionGroup.
        error: Exception | None = None
        async with anyio.create_task_group() as tasks:
            self._tasks = tasks
            try:
                await self.app(scope, receive, lifespan_send)
            except Exception as exc:
                error = exc
            finally:
                self._tasks = None
                tasks.cancel_scope.cancel()
        if error is not None:
            raise error

    async def _read(
        self, route: ReadRoute, route_path: str, scope: Scope, receive: Receive, send: Send
    ) -> None:
        """The hit path: key the request, ask the store once, answer if fresh."""
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
                await self._forward(scope, receive, send, name.decode("latin-1"))
                return
            elif name == b"cache-control":
                request_cc = [*(request_cc or ()), value]
            elif name == b"pragma":
                pragma = [*(pragma or ()), value]

        fwd = _MISS
        if cache.honor_request_cache_control and (request_cc or pragma):
            directive = request_directive(request_cc, pragma)
            if directive == "no-store":
                await self._forward(scope, receive, send, "request-no-store")
                return
            if directive == "no-cache":
                fwd = b"asgi-cache; fwd=request"

        custom = b""
        if route.rule.key is not None:
            try:
                part = route.rule.key(Request(scope, receive))
                if inspect.isawaitable(part):
                    part = await part
                custom = str(part).encode("utf-8", "surrogatepass")
            except Exception:
                logger.warning("asgi-cache: key function of %s failed", route.label, exc_info=True)
                await self._forward(scope, receive, send, "key-error")
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
        stale = None
        if fwd is _MISS:
            try:
                data = await cache.store.get(key)
            except Exception as exc:
                store_failed(cache, "get", exc)
                await self._forward(scope, receive, send, "store-unavailable")
                return
            entry = self._decode(data, key) if data is not None else None
            if entry is not None:
                now = cache.clock()
                if entry.is_fresh(now):
                    cache.counters.hits += 1
                    logger.debug("asgi-cache: hit %s %s", route.label, key)
                    head = scope["method"] == "HEAD"
                    await send_entry(entry, now, send, head=head, if_none_match=if_none_match)
                    return
                stale_for = entry.age(now) - entry.fresh_for
                if stale_for < entry.stale_while_revalidate:
                    lookup = _Lookup(route, route_path, key, codings, if_none_match, fwd)
                    await self._serve_stale(
                        entry, now, lookup, scope, "stale-while-revalidate", send
                    )
                    self._refresh(lookup, scope)
                    return
                if stale_for < entry.stale_if_error:
                    stale = entry
        lookup = _Lookup(route, route_path, key, codings, if_none_match, fwd)
        await self._miss(lookup, stale, scope, receive, send)

    async def _miss(
        self,
        lookup: _Lookup,
        stale: Entry | None,
        scope: Scope,
        receive: Receive,
        send: Send,
    ) -> None:
        """Run the application once for this key (coalesced) and store its answer."""
        cache = self.cache
        if scope["method"] == "HEAD":  # a HEAD has no body to store
            await self._forward(scope, receive, send, "head", fwd=_MISS)
            return
        leadership: Leadership | None = None
        if cache.coalesce:
            joined = await self._coalescer.join(cache.store, lookup.key, cache.coalesce_wait)
            if isinstance(joined, Leadership):
                leadership = joined
            elif await self._answer_collapsed(lookup, joined, scope, send):
                return
        try:
            cache.counters.misses += 1
            logger.debug("asgi-cache: miss %s %s", lookup.route.label, lookup.key)
            if stale is None:
                await self._fill(lookup, scope, receive, send, leadership)
            else:
                await self._fill_or_stale(lookup, stale, scope, receive, send, leadership)
        finally:
            if leadership is not None:
                with anyio.CancelScope(shield=True):
                    await leadership.release()

    async def _answer_collapsed(
        self, lookup: _Lookup, flight: Flight, scope: Scope, send: Send
    ) -> bool:
        """After waiting for another request's response: answer from it if
        there is one, handed over in this process or stored by another."""
        cache = self.cache
        entry = flight.result
        if not isinstance(entry, Entry):
            try:
                data = await cache.store.get(lookup.key)
            except Exception as exc:
                store_failed(cache, "get", exc)
                return False
            entry = self._decode(data, lookup.key) if data is not None else None
        now = cache.clock()
        if entry is None or not entry.is_fresh(now):
            return False
        cache.counters.collapsed += 1
        head = scope["method"] == "HEAD"
        await send_entry(
            entry, now, send, head=head, if_none_match=lookup.if_none_match, status_line=_COLLAPSED
        )
        return True

    async def _responder(
        self,
        lookup: _Lookup,
        receive: Receive,
        send: Send,
        leadership: Leadership | None,
        *,
        stale: Entry | None = None,
        timer: anyio.CancelScope | None = None,
    ) -> Responder:
        """A responder fenced on the route's tags.  When the store cannot give a
        fence, the response is not stored, but still handed to followers."""
        cache = self.cache
        tags = [tag_key(cache.prefix, tag) for tag in lookup.route.tags(lookup.route_path)]
        tags.append(path_tag(cache.prefix, lookup.route_path))
        persist = True
        try:
            fence: Fence | None = await cache.store.fence(tags)
        except Exception as exc:
            store_failed(cache, "fence", exc)
            fence, persist = None, False
        return Responder(
            cache,
            lookup.route,
            lookup.key,
            tags,
            fence,
            lookup.fwd,
            lookup.codings,
            receive,
            send,
            leadership=leadership,
            persist=persist,
            stale=stale,
            timer=timer,
        )

    async def _fill(
        self,
        lookup: _Lookup,
        scope: Scope,
        receive: Receive,
        send: Send,
        leadership: Leadership | None,
    ) -> None:
        responder = await self._responder(lookup, receive, send, leadership)
        await self.app(scope, responder.receive, responder.send)

    async def _fill_or_stale(
        self,
        lookup: _Lookup,
        stale: Entry,
        scope: Scope,
        receive: Receive,
        send: Send,
        leadership: Leadership | None,
    ) -> None:
        """Like :meth:`_fill`, but a failing, erroring or (with ``origin_timeout``)
        slow application is answered for by the stale entry (``stale-if-error``)."""
        timeout = self.cache.origin_timeout
        with anyio.CancelScope() as timer:
            if timeout is not None:
                timer.deadline = anyio.current_time() + timeout
            responder = await self._responder(
                lookup, receive, send, leadership, stale=stale, timer=timer
            )
            try:
                await self.app(scope, responder.receive, responder.send)
            except Exception:
                if responder.started:
                    raise
                logger.warning(
                    "asgi-cache: %s raised; serving a stale entry",
                    lookup.route.label,
                    exc_info=True,
                )
                responder.use_stale = True
        if responder.use_stale or (timer.cancelled_caught and not responder.started):
            await self._serve_stale(
                stale, self.cache.clock(), lookup, scope, "stale-if-error", send
            )

    async def _serve_stale(
        self, entry: Entry, now: float, lookup: _Lookup, scope: Scope, why: str, send: Send
    ) -> None:
        self.cache.counters.stale_served += 1
        status_line = _STALE % (entry.fresh_for - entry.age(now), why.encode())
        head = scope["method"] == "HEAD"
        await send_entry(
            entry, now, send, head=head, if_none_match=lookup.if_none_match, status_line=status_line
        )

    def _refresh(self, lookup: _Lookup, scope: Scope) -> None:
        """Start one background revalidation of ``lookup``'s entry (coalesced)."""
        if self._coalescer.busy(lookup.key):
            return
        # A copy of the request's scope: the refresh outlives the request.
        refresh_scope = {**scope, "headers": list(scope["headers"])}
        self._spawn(lambda: self._revalidate(lookup, refresh_scope))

    async def _revalidate(self, lookup: _Lookup, scope: Scope) -> None:
        cache = self.cache
        leadership = await self._coalescer.lead(cache.store, lookup.key, cache.coalesce_wait)
        if leadership is None:
            return  # another request, here or in another process, refreshes it
        requested = False

        async def receive() -> Message:
            nonlocal requested
            if requested:
                await anyio.sleep_forever()
            requested = True
            return {"type": "http.request", "body": b"", "more_body": False}

        async def discard(message: Message) -> None:
            return None

        try:
            responder = await self._responder(lookup, receive, discard, leadership)
            await self.app(scope, responder.receive, responder.send)
            cache.counters.refreshes += 1
        except Exception:
            logger.warning(
                "asgi-cache: background refresh of %s failed", lookup.route.label, exc_info=True
            )
        finally:
            await leadership.release()

    def _spawn(self, work: Callable[[], Coroutine[Any, Any, None]]) -> None:
        """Run ``work`` in the lifespan's task group, or as a tracked asyncio
        task when the server runs no lifespan."""
        if self._tasks is not None:
            self._tasks.start_soon(work)
            return
        task: asyncio.Task[None] = asyncio.get_running_loop().create_task(work())
        self._orphans.add(task)
        task.add_done_callback(self._orphans.discard)

    async def _forward(
        self, scope: Scope, receive: Receive, send: Send, reason: str, fwd: bytes = _BYPASS
    ) -> None:
        """Run the application untouched but for a ``Cache-Status`` saying why."""
        if fwd is _BYPASS:
            self.cache.counters.bypasses[reason] += 1
        status = fwd + b"; detail=" + reason.encode()
        logger.debug("asgi-cache: %s %s", status.decode("latin-1"), scope["path"])

        async def send_with_status(message: Message) -> None:
            if message["type"] == "http.response.start":
                message = with_header(message, CACHE_STATUS, status)
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
                    cache.counters.invalidations += removed
                    logger.debug("asgi-cache: %s invalidated %d entries", scope["path"], removed)
                except Exception as exc:  # stale entries may remain: always worth a warning
                    cache.counters.store_errors += 1
                    logger.warning("asgi-cache: invalidation of %s failed: %s", tags, exc)
            await send(message)

        await self.app(scope, receive, send_after_invalidating)


class _Decoded:
    """Recently decoded entries, by their exact stored bytes.

    Decoding is the largest cost of a memory hit; a hot entry comes back as the
    very same bytes object (the memory store) or equal bytes (Redis), whose
    hash CPython caches, so a small map skips it.  Bounded in count and in
    entry size, so it holds a few megabytes at most.
    """

    MAX_ENTRIES = 256
    MAX_BYTES = 64 * 1024

    def __init__(self) -> None:
        self._entries: dict[bytes, Entry] = {}

    def __call__(self, data: bytes, key: str) -> Entry | None:
        """``data`` as an entry; a corrupt or foreign value is a miss."""
        entry = self._entries.get(data)
        if entry is not None:
            return entry
        try:
            entry = decode(data)
        except CorruptEntry:
            logger.warning("asgi-cache: unreadable entry under %s, treated as a miss", key)
            return None
        if len(data) <= self.MAX_BYTES:
            entries = self._entries
            if len(entries) >= self.MAX_ENTRIES:
                del entries[next(iter(entries))]
            entries[data] = entry
        return entry
