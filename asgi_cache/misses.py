"""What the cache does when the stored entry cannot answer as it is.

The hit path (:meth:`CacheMiddleware._read <asgi_cache.middleware.CacheMiddleware>`)
answers a fresh entry itself and hands everything else here, with the reuse
decision :func:`asgi_cache.policy.reuse` made:

- no entry, or one past every window: a miss.  Concurrent misses on one key
  are coalesced, so only one request runs the application; the others are
  answered from its response (RFC 9211 §2.6 ``collapsed``);
- stale within ``stale-while-revalidate``: answered stale, and one background
  refresh started (RFC 5861 §3);
- stale within ``stale-if-error``: a miss with the entry standing in if the
  application fails (RFC 5861 §4);
- needs validating: a conditional request to the application (RFC 9111
  §4.3), coalesced like a miss; the responder handles its ``304``;
- stale by the request's own ``max-stale``: answered stale (§5.2.1.2).
"""

from __future__ import annotations

import logging
import math
import sys

from starlette.types import ASGIApp, Receive, Scope, Send

from asgi_cache.background import Background, refresh_scope, revalidate
from asgi_cache.cache import Cache
from asgi_cache.entry import DecodedEntries, Entry
from asgi_cache.flight import Coalescer, Flight, Leadership
from asgi_cache.forwarding import for_downstream, forward, send_only_if_cached
from asgi_cache.lookup import Lookup
from asgi_cache.policy import Reuse, reuse
from asgi_cache.replay import send_entry
from asgi_cache.responder import Outcome, Responder
from asgi_cache.status import Detail, Forward, forwarded, hit, stood_in, with_key

if sys.version_info >= (3, 11):
    from typing import assert_never
else:  # pragma: no cover
    from typing_extensions import assert_never

__all__ = ["Misses"]

logger = logging.getLogger("asgi_cache")


class Misses:
    """The miss, stale and validation paths of one middleware."""

    def __init__(
        self,
        app: ASGIApp,
        cache: Cache,
        decoded: DecodedEntries,
        coalescer: Coalescer,
        background: Background,
    ) -> None:
        self.app = app
        self.cache = cache
        self._decoded = decoded
        self._coalescer = coalescer
        self._background = background

    async def not_fresh(
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
            if lookup.fwd is Forward.URI_MISS:
                lookup.fwd = Forward.STALE
            await self.miss(lookup, entry, scope, receive, send)
        elif usable is Reuse.REVALIDATE:
            await self.miss(lookup, entry, scope, receive, send, stand_in=False)
        elif usable is Reuse.UNUSABLE:
            if lookup.fwd is Forward.URI_MISS:
                lookup.fwd = Forward.STALE
            await self.miss(lookup, None, scope, receive, send)
        elif usable is Reuse.FRESH:
            raise AssertionError("a fresh entry is answered on the hit path")
        else:
            assert_never(usable)

    async def miss(
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
                await send_only_if_cached(send)
                return
            if directives.no_store:  # §5.2.1.5: forwarded, and not stored
                status = self._keyed(lookup, Detail.REQUEST_NO_STORE)
                headers = for_downstream(lookup, cache.prefix)
                await forward(self.app, status, scope, receive, send, headers)
                return
        if lookup.head:  # a HEAD has no body to store
            status = self._keyed(lookup, Detail.HEAD)
            headers = for_downstream(lookup, cache.prefix)
            await forward(self.app, status, scope, receive, send, headers)
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
        if logger.isEnabledFor(logging.DEBUG):  # the common case skips the call
            logger.debug("asgi-cache: miss %s %s", lookup.route.label, lookup.key)
        stand_in = stand_in and stale is not None
        responder = Responder(
            cache, lookup, receive, send, leadership, stand_in=stand_in, validating=stale
        )
        outcome = await responder.run(self.app, scope)
        if outcome is Outcome.STAND_IN and stale is not None:
            now = cache.clock()
            cache.counters.stale_served += 1
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
        self.cache.counters.stale_served += 1
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
            lambda: revalidate(self.app, self.cache, self._coalescer, lookup, entry, scope)
        )
