"""``CacheMiddleware``: answers hits before routing, stores what may be stored.

A pure ASGI middleware.  For a GET or HEAD of a ``@cached`` route it builds the
key from the raw request, asks the store once (twice when the response varies
on headers outside the key, see :mod:`asgi_cache.variants`), and on a hit
sends the stored response itself: no routing, no dependency, no serialisation
runs.  On a miss it runs the application through a
:class:`~asgi_cache.responder.Responder` that watches the response go by and
stores it once it is complete and storable;
concurrent misses on one key are coalesced so only one reaches the application.
A successful request of any method but GET, HEAD, OPTIONS and TRACE (an
unknown one too) invalidates its path, the same-origin paths its response names
in ``Location`` / ``Content-Location``, and its ``@invalidates`` tags before
its response start reaches the client.

What a stored entry may be used for is decided by
:func:`asgi_cache.policy.reuse`; this module only carries the decision out.
An entry that needs validating goes to the application as a conditional
request (coalesced like a miss), and the responder handles its ``304``; a
HEAD that finds one is forwarded as it is, since a HEAD's answer is never
stored.
The store is never trusted to be up: a failing or slow store turns into a
bypass, never into an error page.
"""

from __future__ import annotations

import asyncio
import logging
import math
import os
import sys
from collections.abc import Callable
from typing import Final

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from asgi_cache.background import Background, refresh_scope, revalidate
from asgi_cache.cache import SCOPE_KEY, Cache
from asgi_cache.entry import DecodedEntries, Entry, VaryRecord
from asgi_cache.flight import Coalescer, Flight, Leadership
from asgi_cache.invalidation import (
    SAFE_METHODS,
    invalidates,
    related_paths,
    request_authority,
    request_target,
)
from asgi_cache.keys import path_tag, tag_key
from asgi_cache.lookup import Lookup, look_up
from asgi_cache.openapi import document
from asgi_cache.pending import InvalidationPending
from asgi_cache.policy import Requested, Reuse, requested, reuse
from asgi_cache.presence import Downstream
from asgi_cache.replay import send_entry
from asgi_cache.responder import Outcome, Responder
from asgi_cache.revalidation import validators
from asgi_cache.routes import ReadRoute, RouteTable, compile_routes, find_routes
from asgi_cache.status import (
    CACHE_STATUS,
    Detail,
    Forward,
    forwarded,
    hit,
    stood_in,
    unanswered,
    with_key,
    with_status,
)
from asgi_cache.variants import downstream

if sys.version_info >= (3, 11):
    from typing import assert_never
else:  # pragma: no cover
    from typing_extensions import assert_never

__all__ = ["CacheMiddleware"]

logger = logging.getLogger("asgi_cache")

# Enum members read on the hit path, bound once (a module global is read
# several times faster than an enum class attribute).
_FRESH: Final = Reuse.FRESH
_URI_MISS: Final = Forward.URI_MISS

Headers = list[tuple[bytes, bytes]]


def _route_path(scope: Scope) -> str:
    """The path the router matches: ``path`` without the ``root_path``."""
    path: str = scope["path"]
    root_path: str = scope.get("root_path", "")
    if root_path and path.startswith(root_path):
        rest = path[len(root_path) :]
        if not rest or rest[0] == "/":
            return rest
    return path


class CacheMiddleware:
    """Cache whole responses of ``@cached`` routes; answer hits before routing.

    :param app: the ASGI application (``app.add_middleware(CacheMiddleware)``).
    :param cache: the :class:`Cache` to use.  Omitted, one is built from the
        ``ASGI_CACHE_URL`` environment variable (``memory://`` by default).
    :param openapi: describe the ``@cached`` routes of a FastAPI application in
        its OpenAPI document (an ``x-cache`` extension and a ``Cached: ...``
        line in each description; see :mod:`asgi_cache.openapi`).  ``False``
        leaves the document as FastAPI generates it.

    The routing table is compiled when the application's lifespan startup
    completes (a marker that does not fit its route fails startup, naming it),
    or at the first request for servers that run no lifespan.  Background
    refreshes (``stale_while_revalidate``) belong to the lifespan and are
    cancelled at shutdown, when the cache's store is closed too.
    """

    def __init__(self, app: ASGIApp, *, cache: Cache | None = None, openapi: bool = True) -> None:
        if not isinstance(openapi, bool):
            raise TypeError(f"CacheMiddleware: openapi must be True or False, got {openapi!r}")
        self.app = app
        #: What requests are handed to: ``app``, telling marked endpoints they are served.
        self._downstream = Downstream(app)
        self._openapi = openapi
        if cache is None:
            cache = Cache.from_url(os.environ.get("ASGI_CACHE_URL", "memory://"))
        self.cache = cache
        self._table: RouteTable | None = None
        self._coalescer = Coalescer()
        self._decoded = DecodedEntries()
        self._background = Background()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if kind != "http":
            if kind == "lifespan":
                await self._background.lifespan(
                    self.app,
                    scope,
                    receive,
                    send,
                    on_startup=lambda: self._start(scope),
                    on_shutdown=self.cache.aclose,
                )
            else:
                await self._downstream(scope, receive, send)
            return
        scope[SCOPE_KEY] = self.cache
        table = self._table or self._compile(scope)
        method = scope["method"]
        if method == "GET" or method == "HEAD":
            route_path = _route_path(scope) if scope.get("root_path") else scope["path"]
            route = table.for_read(route_path)
            if route is not None:
                if self.cache.enabled:
                    await self._read(route, route_path, scope, receive, send)
                else:
                    await self._bypass(Detail.DISABLED, scope, receive, send, route)
                return
        elif method not in SAFE_METHODS and self.cache.enabled:  # RFC 9111 §4.4: unknown too
            await self._write(table, scope, receive, send)
            return
        await self._downstream(scope, receive, send)

    async def _start(self, scope: Scope) -> None:
        """Lifespan startup: compile the routes, then see that the store answers."""
        self._compile(scope)
        await self.cache.check_store()

    def _compile(self, scope: Scope) -> RouteTable:
        """Compile the routing table (at each lifespan startup, or the first request)."""
        try:
            self.cache.home_loop = asyncio.get_running_loop()  # for cache.sync
        except RuntimeError:  # another event loop library: cache.sync runs its own
            self.cache.home_loop = None
        routes, compressed = find_routes(self.app)
        if routes is None:
            routes, _ = find_routes(scope.get("app"))
        if routes is None:
            logger.warning("asgi-cache: no routing table found below the middleware")
        table = self._table = compile_routes(routes or [], self.cache, compressed=compressed)
        self.cache.canonical_paths = lambda path: table.canonical_paths(path, None)
        if self._openapi and not document(self.app, table.documented):
            document(scope.get("app"), table.documented)
        return table

    async def _read(
        self, route: ReadRoute, route_path: str, scope: Scope, receive: Receive, send: Send
    ) -> None:
        """The hit path: key the request, ask the store once (a vary record: once
        more, for the variant), answer if fresh."""
        cache = self.cache
        lookup = await look_up(
            route, route_path, scope, receive, cache.prefix, cache.honor_request_cache_control
        )
        if not isinstance(lookup, Lookup):
            if lookup is Detail.ONLY_IF_CACHED:
                await _send_only_if_cached(send)
            else:
                await self._bypass(lookup, scope, receive, send, route)
            return
        if cache.pending.waiting and not await cache.pending.try_apply():
            # An invalidation the store has not taken yet: nothing it may
            # concern can be served from the store.
            await self._unavailable(lookup, Detail.INVALIDATION_PENDING, scope, receive, send)
            return
        try:
            entry = await self._stored(lookup, scope)
        except Exception as exc:
            cache.counters.store_failed("get", exc)
            await self._unavailable(lookup, Detail.STORE_UNAVAILABLE, scope, receive, send)
            return
        if entry is None:
            await self._miss(lookup, None, scope, receive, send)
            return
        now = cache.clock()
        usable = reuse(entry, now)
        if lookup.directives is not None:
            usable = self._as_requested(lookup, entry, usable, now)
        if usable is _FRESH:
            cache.counters.hits += 1
            logger.debug("asgi-cache: hit %s %s", route.label, lookup.key)
            age = entry.age(now)
            status_line = hit(entry.fresh_for - age)
            if cache.cache_status_key:
                status_line = with_key(status_line, lookup.key)
            await send_entry(
                entry,
                age,
                status_line,
                send,
                lookup.head,
                lookup.if_none_match,
                lookup.if_modified_since,
            )
        else:
            await self._not_fresh(usable, entry, now, lookup, scope, receive, send)

    async def _stored(self, lookup: Lookup, scope: Scope) -> Entry | None:
        """The entry stored for ``lookup``: under its key, or the variant its
        vary record selects (``fwd=vary-miss`` when that one is missing)."""
        data = await self.cache.store.get(lookup.key)
        decoded = self._decoded
        entry = None if data is None else decoded.get(data) or decoded.decode(data, lookup.key)
        if isinstance(entry, VaryRecord):  # the response varies on headers outside the key
            entry = await self._variant(lookup, entry, scope)
            if entry is None and lookup.fwd is _URI_MISS:
                lookup.fwd = Forward.VARY_MISS  # RFC 9211 §2.2
        return entry

    def _as_requested(self, lookup: Lookup, entry: Entry, usable: Reuse, now: float) -> Reuse:
        """What the request's own directives leave of ``usable`` (RFC 9111 §5.2.1)."""
        assert lookup.directives is not None
        wanted = requested(lookup.directives, entry, usable, now)
        if wanted is Requested.REFUSED:
            # §5.2.1.4, §4.3: validated when it can be, else fetched anew.
            lookup.fwd = Forward.REQUEST if usable is _FRESH else Forward.STALE
            return Reuse.REVALIDATE if validators(entry.headers, entry.body) else Reuse.UNUSABLE
        if wanted is Requested.STALE:
            return Reuse.MAX_STALE
        return usable

    async def _not_fresh(
        self,
        usable: Reuse,
        entry: Entry,
        now: float,
        lookup: Lookup,
        scope: Scope,
        receive: Receive,
        send: Send,
    ) -> None:
        """Carry out what may be done with an entry that is not fresh (RFC 9111 §4.2.4,
        §4.3; RFC 5861)."""
        if usable is Reuse.MAX_STALE:
            await self._serve_stale(entry, now, lookup, Detail.MAX_STALE, send)
        elif usable is Reuse.STALE_WHILE_REVALIDATE:
            await self._serve_stale(entry, now, lookup, Detail.STALE_WHILE_REVALIDATE, send)
            self._refresh(lookup, entry, scope)
        elif usable is Reuse.STALE_IF_ERROR:
            if lookup.fwd is _URI_MISS:
                lookup.fwd = Forward.STALE
            await self._miss(lookup, entry, scope, receive, send)
        elif usable is Reuse.REVALIDATE:
            await self._miss(lookup, entry, scope, receive, send, stand_in=False)
        elif usable is Reuse.UNUSABLE:
            if lookup.fwd is _URI_MISS:
                lookup.fwd = Forward.STALE
            await self._miss(lookup, None, scope, receive, send)
        elif usable is _FRESH:
            raise AssertionError("a fresh entry is answered on the hit path")
        else:
            assert_never(usable)

    async def _variant(self, lookup: Lookup, record: VaryRecord, scope: Scope) -> Entry | None:
        """The stored variant of ``lookup``'s page that this request selects.

        RFC 9111 §4.1: the page key holds the names of the headers the
        response varies on beyond the key; their normalised values key the
        variant (:meth:`Lookup.select`), at the cost of a second store read.
        """
        lookup.select(record.names, scope["headers"])
        data = await self.cache.store.get(lookup.key)
        decoded = self._decoded
        found = None if data is None else decoded.get(data) or decoded.decode(data, lookup.key)
        return found if isinstance(found, Entry) else None

    async def _unavailable(
        self, lookup: Lookup, reason: Detail, scope: Scope, receive: Receive, send: Send
    ) -> None:
        """The store cannot be asked: bypass it, or answer ``504`` to ``only-if-cached``."""
        if lookup.directives is not None and lookup.directives.only_if_cached:
            await _send_only_if_cached(send)
        else:
            await self._bypass(reason, scope, receive, send, lookup.route)

    async def _miss(
        self,
        lookup: Lookup,
        stale: Entry | None,
        scope: Scope,
        receive: Receive,
        send: Send,
        *,
        stand_in: bool = True,
    ) -> None:
        """Run the application once for this key (coalesced) and store its answer.

        A ``stale`` entry is validated with a conditional request when it has
        a validator, and answers instead if the application fails, unless
        ``stand_in`` is false (it needed validation, past its windows)."""
        cache = self.cache
        directives = lookup.directives
        if directives is not None:
            if directives.only_if_cached:  # RFC 9111 §5.2.1.7: never the application
                await _send_only_if_cached(send)
                return
            if directives.no_store:  # §5.2.1.5: forwarded, and not stored
                status = self._keyed(lookup, Detail.REQUEST_NO_STORE)
                await self._forward(status, scope, receive, send, _downstream(lookup))
                return
        if lookup.head:  # a HEAD has no body to store
            status = self._keyed(lookup, Detail.HEAD)
            await self._forward(status, scope, receive, send, _downstream(lookup))
            return
        leadership: Leadership | None = None
        if cache.coalesce:
            since = cache.clock()
            joined = await self._coalescer.join(cache.store, lookup.key, cache.coalesce_wait)
            if isinstance(joined, Leadership):
                leadership = joined
            elif await self._answer_collapsed(lookup, joined, since, send):
                return
        cache.counters.misses += 1
        logger.debug("asgi-cache: miss %s %s", lookup.route.label, lookup.key)
        stand_in = stand_in and stale is not None
        responder = Responder(
            cache, lookup, receive, send, leadership, stand_in=stand_in, validating=stale
        )
        outcome = await responder.run(self._downstream, scope)
        if outcome is Outcome.STAND_IN and stale is not None:
            now = cache.clock()
            self.cache.counters.stale_served += 1
            age = stale.age(now)
            status_line = stood_in(stale.fresh_for - age, responder.origin_status)
            await self._answer(lookup, stale, age, status_line, send)

    def _keyed(self, lookup: Lookup, detail: Detail) -> bytes:
        """The ``Cache-Status`` of a looked-up request forwarded unstored for ``detail``."""
        status = forwarded(lookup.fwd, detail)
        return with_key(status, lookup.key) if self.cache.cache_status_key else status

    async def _answer_collapsed(
        self, lookup: Lookup, flight: Flight, since: float, send: Send
    ) -> bool:
        """After waiting for another request's response: answer from it if
        there is one, handed over in this process or stored by another.

        The entry the leader hands over, or one stored since this request
        began waiting, was fetched or validated while it waited (RFC 9211
        §2.6 ``collapsed``): it answers even when it must be validated on
        every reuse (``no-cache``).  An older one only while fresh."""
        cache = self.cache
        entry = flight.result
        since = -math.inf if isinstance(entry, Entry) else since
        if not isinstance(entry, Entry):
            try:
                data = await cache.store.get(lookup.key)
            except Exception as exc:
                cache.counters.store_failed("get", exc)
                return False
            decoded = self._decoded
            found = None if data is None else decoded.get(data) or decoded.decode(data, lookup.key)
            if not isinstance(found, Entry):  # none, or a vary record the leader just wrote
                return False
            entry = found
        now = cache.clock()
        if entry.stored_at <= since and reuse(entry, now) is not Reuse.FRESH:
            return False
        cache.counters.collapsed += 1
        await self._answer(
            lookup, entry, entry.age(now), forwarded(lookup.fwd, collapsed=True), send
        )
        return True

    async def _serve_stale(
        self, entry: Entry, now: float, lookup: Lookup, why: Detail, send: Send
    ) -> None:
        cache = self.cache
        cache.counters.stale_served += 1
        age = entry.age(now)
        await self._answer(lookup, entry, age, hit(entry.fresh_for - age, why), send)

    async def _answer(
        self, lookup: Lookup, entry: Entry, age: float, status_line: bytes, send: Send
    ) -> None:
        """Answer ``lookup`` from ``entry`` with ``Cache-Status: status_line`` (and the
        key, when shown).  The hit path spells this out: one call frame less."""
        if self.cache.cache_status_key:
            status_line = with_key(status_line, lookup.key)
        await send_entry(
            entry,
            age,
            status_line,
            send,
            lookup.head,
            lookup.if_none_match,
            lookup.if_modified_since,
        )

    def _refresh(self, lookup: Lookup, entry: Entry, scope: Scope) -> None:
        """Start one background revalidation of ``lookup``'s ``entry`` (coalesced)."""
        if self._coalescer.busy(lookup.key):
            return
        scope = refresh_scope(scope)
        self._background.spawn(
            lambda: revalidate(self._downstream, self.cache, self._coalescer, lookup, entry, scope)
        )

    async def _bypass(
        self, reason: str, scope: Scope, receive: Receive, send: Send, route: ReadRoute
    ) -> None:
        """Run the application without looking anything up, counted by ``reason``.

        The response still names the route's selecting headers and is private
        on a ``key=`` route: a cache downstream must not hand a page computed
        for one user (a failing store, a failing key function) to another.
        """
        self.cache.counters.bypasses[reason.value if isinstance(reason, Detail) else reason] += 1
        await self._forward(
            forwarded(Forward.BYPASS, reason),
            scope,
            receive,
            send,
            lambda headers: downstream(headers, route.vary_names, (), route.private),
        )

    async def _forward(
        self,
        status: bytes,
        scope: Scope,
        receive: Receive,
        send: Send,
        headers: Callable[[Headers], Headers] | None = None,
    ) -> None:
        """Run the application untouched but for a ``Cache-Status: status``
        (and what ``headers`` makes of the response's headers)."""
        logger.debug("asgi-cache: %s %s", status.decode("latin-1"), scope["path"])

        async def send_with_status(message: Message) -> None:
            if message["type"] == "http.response.start":
                if headers is not None:
                    message = {**message, "headers": headers(list(message.get("headers", ())))}
                message = with_status(message, status)
            await send(message)

        await self._downstream(scope, receive, send_with_status)

    async def _write(self, table: RouteTable, scope: Scope, receive: Receive, send: Send) -> None:
        """Run a request whose method is not safe; invalidate before its response
        start goes out, if it succeeded (RFC 9111 §4.4)."""
        cache = self.cache
        route_path = _route_path(scope)
        route = table.for_write(scope["method"], route_path)
        tags = [] if route is None else [tag_key(cache.prefix, t) for t in route.tags(route_path)]
        tags += [path_tag(cache.prefix, p) for p in table.canonical_paths(route_path, route)]

        failed = False

        async def send_after_invalidating(message: Message) -> None:
            nonlocal failed
            if failed:
                return  # the 503 went out instead
            if message["type"] == "http.response.start" and invalidates(
                scope["method"], message["status"]
            ):
                try:
                    await cache.invalidate_store_tags(tags + self._related(table, scope, message))
                except InvalidationPending:  # kept and retried; logged by the cache
                    if cache.invalidation_failure == "fail":
                        failed = True
                        await _send_invalidation_failed(send)
                        return
            await send(message)

        await self._downstream(scope, receive, send_after_invalidating)

    def _related(self, table: RouteTable, scope: Scope, start: Message) -> list[str]:
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
        prefix = self.cache.prefix
        return [path_tag(prefix, p) for path in paths for p in table.canonical_paths(path, None)]


async def _send_only_if_cached(send: Send) -> None:
    """Answer a request that forbade going to the application when nothing stored may answer it.

    RFC 9111 §5.2.1.7: ``only-if-cached`` is answered from the cache or with
    ``504 Gateway Timeout``; this response is the cache's own and not stored.
    """
    body = b"No stored response satisfies this request (only-if-cached).\n"
    headers = [
        (b"content-type", b"text/plain; charset=utf-8"),
        (b"content-length", b"%d" % len(body)),
        (b"cache-control", b"no-store"),
        (CACHE_STATUS, unanswered(Detail.ONLY_IF_CACHED)),
    ]
    await send({"type": "http.response.start", "status": 504, "headers": headers})
    await send({"type": "http.response.body", "body": body})


async def _send_invalidation_failed(send: Send) -> None:
    """Answer a write whose invalidation failed, under ``invalidation_failure="fail"``.

    RFC 9110 §15.6.4: 503 says the condition is temporary; ``Retry-After``
    (§10.2.3) when to try again: about when the kept invalidation is retried.
    """
    body = b"The change was made, but the cache could not be updated yet; retry shortly.\n"
    headers = [
        (b"content-type", b"text/plain; charset=utf-8"),
        (b"content-length", b"%d" % len(body)),
        (b"retry-after", b"1"),
        (b"cache-control", b"no-store"),
    ]
    await send({"type": "http.response.start", "status": 503, "headers": headers})
    await send({"type": "http.response.body", "body": body})


def _downstream(lookup: Lookup) -> Callable[[Headers], Headers]:
    """What a response forwarded for ``lookup`` must say to caches downstream: its
    selecting headers in ``Vary``, and ``private`` on a ``key=`` route."""
    route = lookup.route
    return lambda headers: downstream(headers, route.vary_names, lookup.varied, route.private)
