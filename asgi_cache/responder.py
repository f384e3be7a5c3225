"""One miss: runs the application, forwards its response, stores it.

The response start is held back until the first body message: when that
message is the whole body (the common case) the entry is stored *before* the
client sees anything, so ``Cache-Status`` says truthfully whether it was stored
and the generated ``ETag`` is already there.  A streamed body is forwarded chunk
by chunk as it comes and buffered only up to ``max_body_size``; it is stored
when its last chunk arrives, unless the client disconnected.  A body that never
completes (the application raised, the client left) is never stored.

With a stale entry to stand in for a failing application (``stale-if-error``),
a 5xx response start is swallowed, an exception raised before the response
started is caught, and an application slower than ``origin_timeout`` to start
is cancelled: :meth:`Responder.run` then says :attr:`Outcome.STAND_IN` and the
caller answers with the stale entry.

The responder owns the request's coalescing leadership: it hands the entry to
the followers once stored, lets them go to the application as soon as the
response turns out not to be storable, and releases it when the run ends.
"""

from __future__ import annotations

import enum
import logging
import math

import anyio
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from asgi_cache.cache import Cache
from asgi_cache.entry import Entry, VaryRecord, encode, encode_record
from asgi_cache.flight import Leadership
from asgi_cache.keys import variant_key
from asgi_cache.lookup import Lookup
from asgi_cache.policy import (
    coding_refused,
    entry_times,
    is_error,
    retention,
    stale_windows,
    unstorable_reason,
    with_etag,
)
from asgi_cache.status import Detail, forwarded, with_key, with_status
from asgi_cache.stores.base import Fence
from asgi_cache.targeted import cache_view
from asgi_cache.variants import downstream, normalised, request_values, selecting_names

__all__ = ["Outcome", "Responder"]

logger = logging.getLogger("asgi_cache")

Headers = list[tuple[bytes, bytes]]


class Outcome(enum.Enum):
    """How a :meth:`Responder.run` ended."""

    #: The application's response went to the client (or was discarded, for a
    #: background refresh).
    SENT = "sent"
    #: Nothing reached the client and the application failed: answer with the
    #: stale entry.
    STAND_IN = "stand-in"


class Responder:
    """Watches one miss's response go by and stores it when complete."""

    __slots__ = (
        "buffer",
        "buffered",
        "cache",
        "failed",
        "fence",
        "held",
        "leadership",
        "lookup",
        "origin_status",
        "persist",
        "receive_",
        "received_at",
        "request_headers",
        "requested_at",
        "selecting",
        "send_",
        "stand_in",
        "start",
        "started",
        "storing",
        "tags",
        "timer",
    )

    def __init__(
        self,
        cache: Cache,
        lookup: Lookup,
        receive: Receive,
        send: Send,
        leadership: Leadership | None = None,
        *,
        stand_in: bool = False,
    ) -> None:
        self.cache = cache
        self.lookup = lookup
        self.receive_ = receive
        self.send_ = send
        self.leadership = leadership
        self.stand_in = stand_in  # a stale entry waits to answer if the application fails
        self.tags: list[str] = []
        self.fence: Fence | None = None
        self.persist = True  # False: the store failed (Cache-Status says store-unavailable)
        self.timer: anyio.CancelScope | None = None  # cuts off a slow application
        self.held: Message | None = None  # the response start, until the first body
        self.start: Message = {}  # the response start as it will be stored
        self.started = False  # whether anything reached the client
        self.failed = False  # the application failed before starting: stand in for it
        #: what the application answered when the stale entry stood in for it
        #: (its 5xx; 500 when it raised, 504 when it was cut off)
        self.origin_status = 504
        self.storing = True
        self.buffer: list[bytes] = []
        self.buffered = 0
        self.requested_at = self.received_at = cache.clock()  # RFC 9111 §4.2.3
        self.request_headers: list[tuple[bytes, bytes]] = []
        # The request headers beyond the key that select the response (RFC 9111
        # §4.1): non-empty, it is stored as a variant under a vary record.
        self.selecting: tuple[bytes, ...] = ()

    async def run(self, app: ASGIApp, scope: Scope) -> Outcome:
        """Run ``app`` for this miss; the leadership is released however it ends."""
        self.request_headers = scope["headers"]
        try:
            await self._take_fence()
            if not self.stand_in:
                await app(scope, self.receive, self.send)
                return Outcome.SENT
            return await self._run_with_stand_in(app, scope)
        finally:
            if self.leadership is not None:
                with anyio.CancelScope(shield=True):
                    await self.leadership.release()

    async def _take_fence(self) -> None:
        """Fence the store on the entry's tags, so that an invalidation while the
        application computes prevents storing.  When the store cannot give a
        fence, the response is neither stored nor handed to followers."""
        cache = self.cache
        self.tags = self.lookup.tags(cache.prefix)
        try:
            self.fence = await cache.store.fence(self.tags)
        except Exception as exc:
            cache.counters.store_failed("fence", exc)
            self.persist = False

    async def _run_with_stand_in(self, app: ASGIApp, scope: Scope) -> Outcome:
        timeout = self.cache.origin_timeout
        with anyio.CancelScope() as timer:
            self.timer = timer
            if timeout is not None:
                timer.deadline = anyio.current_time() + timeout
            try:
                await app(scope, self.receive, self.send)
            except Exception:
                if self.started:
                    raise
                logger.warning(
                    "asgi-cache: %s raised; serving a stale entry",
                    self.lookup.route.label,
                    exc_info=True,
                )
                self.failed = True
                self.origin_status = 500
        if self.failed or (timer.cancelled_caught and not self.started):
            return Outcome.STAND_IN
        return Outcome.SENT

    async def receive(self) -> Message:
        message = await self.receive_()
        if message["type"] == "http.disconnect":
            self.storing = False
        return message

    async def _forward(self, message: Message) -> None:
        self.started = True
        await self.send_(message)

    async def _release(self, status: bytes) -> None:
        """Send the held response start with its ``Cache-Status``."""
        held, self.held = self.held, None
        assert held is not None
        await self._forward(with_status(held, self._keyed(status)))

    def _keyed(self, status: bytes) -> bytes:
        """``status`` with the entry's key when the cache is set to show it."""
        return with_key(status, self.lookup.key) if self.cache.cache_status_key else status

    async def _not_storing(self, reason: str) -> None:
        self.storing = False
        self.cache.counters.not_stored += 1
        if self.leadership is not None:
            await self.leadership.release()  # waiters go to the application
        logger.debug("asgi-cache: not stored (%s) %s", reason, self.lookup.route.label)

    async def send(self, message: Message) -> None:
        if self.failed:
            return  # the stale entry answers instead
        kind = message["type"]
        if kind == "http.response.start":
            await self._start(message)
            return
        fwd = self.lookup.fwd
        if kind != "http.response.body" or not self.storing:
            if self.storing:
                await self._not_storing(Detail.NOT_STORED.value)
            if self.held is not None:
                await self._release(forwarded(fwd, Detail.NOT_STORED))
            await self._forward(message)
            return

        body: bytes = message.get("body", b"")
        more: bool = message.get("more_body", False)
        if self.held is not None and not more:  # the whole body in one message
            if len(body) > self.lookup.route.max_body_size:
                await self._not_storing(Detail.TOO_LARGE.value)
                await self._release(forwarded(fwd, Detail.TOO_LARGE))
            else:
                self.held["headers"] = with_etag(self.held["headers"], body)
                if await self._store(body):
                    status = forwarded(fwd, stored=True)
                elif not self.persist:
                    status = forwarded(fwd, Detail.STORE_UNAVAILABLE)
                else:
                    status = forwarded(fwd, Detail.NOT_STORED)
                await self._release(status)
            await self._forward(message)
            return
        if self.held is not None:  # a streamed body: forward as it comes
            await self._release(forwarded(fwd))
        self.buffered += len(body)
        if self.buffered > self.lookup.route.max_body_size:
            self.buffer = []
            await self._not_storing(Detail.TOO_LARGE.value)
        else:
            self.buffer.append(body)
            if not more:
                await self._store(b"".join(self.buffer))
        await self._forward(message)

    async def _start(self, message: Message) -> None:
        """Decide on the response start: hold it back, or forward it unstored."""
        if self.timer is not None:
            self.timer.deadline = math.inf  # the response has begun: no cut-off
        self.received_at = self.cache.clock()
        status = message["status"]
        if self.stand_in and is_error(status):
            self.failed = True
            self.origin_status = status
            return
        headers: Headers = list(message.get("headers", ()))
        route = self.lookup.route
        view = cache_view(headers, route.targets)
        reason = unstorable_reason(status, view, route.statuses)
        selecting = self.lookup.varied
        if reason is None:
            found = selecting_names(headers, route.key_header_names, selecting)
            if found is None:
                reason = Detail.VARY
            elif coding_refused(headers, self._codings()):
                reason = Detail.CONTENT_ENCODING
            else:
                selecting = found
        if reason is not None:
            await self._not_storing(reason.value)
            message = {**message, "headers": self._downstream(headers, selecting)}
            status = self._keyed(forwarded(self.lookup.fwd, reason))
            await self._forward(with_status(message, status))
            return
        if route.cache_control is not None:
            headers = [(n, v) for n, v in headers if n.lower() != b"cache-control"]
            headers.append((b"cache-control", route.cache_control))
        self.selecting = selecting
        self.held = self.start = {**message, "headers": self._downstream(headers, selecting)}

    def _codings(self) -> bytes:
        """The known content codings the request accepts (RFC 9110 §12.5.3), as keyed."""
        if self.lookup.route.key_codings:
            return self.lookup.codings
        values = [v for n, v in self.request_headers if n.lower() == b"accept-encoding"]
        return normalised(b"accept-encoding", values or None) or b""

    def _downstream(self, headers: Headers, selecting: tuple[bytes, ...]) -> Headers:
        route = self.lookup.route
        return downstream(headers, route.vary_names, selecting, route.private)

    async def _store(self, body: bytes) -> bool:
        """Store the finished response; a store failure only costs the entry."""
        cache = self.cache
        route = self.lookup.route
        received = self.start["headers"]
        status = self.start["status"]
        view = cache_view(received, route.targets)
        stored_at, fresh_for = entry_times(
            route.ttl,
            view,
            route.default_ttl,
            status=status,
            requested_at=self.requested_at,
            received_at=self.received_at,
        )
        swr, sie = stale_windows(
            route.stale_while_revalidate,
            route.stale_if_error,
            view,
            route.stale_defaults,
            ttl=route.ttl,
        )
        # A hit sends its own Age (RFC 9111 §5.1): the one received is in stored_at.
        headers = [(n, v) for n, v in with_etag(received, body) if n.lower() != b"age"]
        entry = Entry(status, headers, body, stored_at, fresh_for, swr, sie)
        keep_for = retention(entry, cache.clock())
        if keep_for <= 0:
            await self._not_storing("no lifetime")
            return False
        stored = False
        key = self.lookup.key
        if self.persist:
            try:
                if self.selecting:
                    key = await self._record(keep_for)
                stored = await cache.store.set(key, encode(entry), keep_for, self.tags, self.fence)
            except Exception as exc:
                cache.counters.store_failed("set", exc)
                self.persist = False
        if stored:
            cache.counters.stores += 1
        elif self.persist:  # refused: an invalidation raced this response
            await self._not_storing("refused")
            return False
        if self.leadership is not None:
            # Followers in this process get the entry itself once it is stored.
            # Unstored (the store failed, or refused it), it may predate a write
            # another process acknowledged meanwhile, which only the store's
            # fence could have told: the followers go to the application.
            # A variant of other headers than the followers were keyed on may
            # not be theirs: they go to the application.
            await self.leadership.release(entry if stored and key == self.lookup.key else None)
        return stored

    async def _record(self, ttl: float) -> str:
        """Store the vary record under the page key; return the variant's key.

        RFC 9111 §4.1: the record names the headers that select among the
        page's stored responses; it carries the entry's tags, so any
        invalidation of the variant removes the record too, and lives as long
        as the newest variant (an older one outliving it is only read again
        once a response stores the record anew).
        """
        lookup = self.lookup
        names = self.selecting
        record = encode_record(VaryRecord(names))
        await self.cache.store.set(lookup.primary, record, ttl, self.tags, self.fence)
        return variant_key(lookup.primary, names, request_values(self.request_headers, names))
