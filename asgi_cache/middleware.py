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
import os
from typing import Final

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from asgi_cache.background import Background
from asgi_cache.cache import SCOPE_KEY, Cache
from asgi_cache.entry import DecodedEntries, Entry, VaryRecord
from asgi_cache.flight import Coalescer
from asgi_cache.forwarding import bypass, send_only_if_cached
from asgi_cache.invalidation import SAFE_METHODS
from asgi_cache.lookup import Lookup, look_up
from asgi_cache.misses import Misses
from asgi_cache.observers import observed
from asgi_cache.openapi import document
from asgi_cache.policy import Requested, Reuse, requested, reuse
from asgi_cache.presence import Downstream
from asgi_cache.replay import send_entry
from asgi_cache.revalidation import validators
from asgi_cache.routes import ReadRoute, RouteTable, compile_routes, find_routes, route_path
from asgi_cache.status import Detail, Forward, hit, with_key
from asgi_cache.writes import run_write

__all__ = ["CacheMiddleware"]

logger = logging.getLogger("asgi_cache")

# Enum members read on the hit path, bound once (a module global is read
# several times faster than an enum class attribute).
_FRESH: Final = Reuse.FRESH
_URI_MISS: Final = Forward.URI_MISS


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
        self._misses = Misses(
            self._downstream, cache, self._decoded, self._coalescer, self._background
        )

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
            path = route_path(scope) if scope.get("root_path") else scope["path"]
            route = table.for_read(path)
            if route is not None:
                if self.cache.surrogate_keys_for is not None and route.front is not None:
                    send = _keys_for_front_only(self.cache, scope, send)
                if self.cache.observers:
                    send = observed(scope, send, self.cache.observers)
                if self.cache.enabled:
                    await self._read(route, path, scope, receive, send)
                else:
                    await bypass(
                        self._downstream, self.cache, Detail.DISABLED, scope, receive, send, route
                    )
                return
        elif method not in SAFE_METHODS and self.cache.enabled:  # RFC 9111 §4.4: unknown too
            await run_write(self._downstream, self.cache, table, scope, receive, send)
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
        self, route: ReadRoute, path: str, scope: Scope, receive: Receive, send: Send
    ) -> None:
        """The hit path: key the request, ask the store once (a vary record: once
        more, for the variant), answer if fresh."""
        cache = self.cache
        lookup = await look_up(
            route, path, scope, receive, cache.prefix, cache.honor_request_cache_control
        )
        if not isinstance(lookup, Lookup):
            if lookup is Detail.ONLY_IF_CACHED:
                await send_only_if_cached(send)
            else:
                await bypass(self._downstream, cache, lookup, scope, receive, send, route)
            return
        if cache.pending.waiting and not await cache.pending.try_apply():
            # An invalidation the store has not taken yet: nothing it may
            # concern can be served from the store.
            await self._unavailable(lookup, Detail.INVALIDATION_PENDING, scope, receive, send)
            return
        try:
            data = await cache.store.get(lookup.key)
            decoded = self._decoded
            entry = None if data is None else decoded.get(data) or decoded.decode(data, lookup.key)
            if isinstance(entry, VaryRecord):  # varies on headers outside the key
                entry = await self._variant(lookup, entry, scope)
        except Exception as exc:
            cache.counters.store_failed("get", exc)
            await self._unavailable(lookup, Detail.STORE_UNAVAILABLE, scope, receive, send)
            return
        if entry is None:
            await self._misses.miss(lookup, None, scope, receive, send)
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
            await self._misses.not_fresh(usable, entry, now, lookup, scope, receive, send)

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

    async def _variant(self, lookup: Lookup, record: VaryRecord, scope: Scope) -> Entry | None:
        """The stored variant of ``lookup``'s page that this request selects
        (``fwd=vary-miss`` when it is missing).

        RFC 9111 §4.1: the page key holds the names of the headers the
        response varies on beyond the key; their normalised values key the
        variant (:meth:`Lookup.select`), at the cost of a second store read.
        """
        lookup.select(record.names, scope["headers"])
        data = await self.cache.store.get(lookup.key)
        decoded = self._decoded
        found = None if data is None else decoded.get(data) or decoded.decode(data, lookup.key)
        if isinstance(found, Entry):
            return found
        if lookup.fwd is _URI_MISS:
            lookup.fwd = Forward.VARY_MISS  # RFC 9211 §2.2
        return None

    async def _unavailable(
        self, lookup: Lookup, reason: Detail, scope: Scope, receive: Receive, send: Send
    ) -> None:
        """The store cannot be asked: bypass it, or answer ``504`` to ``only-if-cached``."""
        if lookup.directives is not None and lookup.directives.only_if_cached:
            await send_only_if_cached(send)
        else:
            await bypass(self._downstream, self.cache, reason, scope, receive, send, lookup.route)


def _keys_for_front_only(cache: Cache, scope: Scope, send: Send) -> Send:
    """``send``, stripping the surrogate key header unless the request carries
    the header that marks the cache in front (``Cache(surrogate_keys_for=...)``)."""
    marker, fmt = cache.surrogate_keys_for, cache.surrogate_keys
    if fmt is None or any(name == marker for name, _ in scope["headers"]):
        return send
    field = fmt.header

    async def send_without_keys(message: Message) -> None:
        if message["type"] == "http.response.start":
            headers = [(n, v) for n, v in message.get("headers", ()) if n.lower() != field]
            message = {**message, "headers": headers}
        await send(message)

    return send_without_keys
