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

With a stored entry to validate (RFC 9111 §4.3), the application gets the
request with the entry's validators added; a ``304`` answer updates the
entry's headers and stores it again (fenced like any store), and the client
gets the stored body with the updated headers (or a ``304`` of its own, when
its ``If-None-Match`` matches).  Any full response replaces the entry as on a
miss.

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
from asgi_cache.forwarding import send_text
from asgi_cache.keys import tag_key, variant_key
from asgi_cache.lookup import Lookup, request_tags
from asgi_cache.policy import (
    coding_refused,
    is_error,
    unstorable_reason,
    with_etag,
)
from asgi_cache.replay import send_entry
from asgi_cache.revalidation import (
    conditional_headers,
    selects,
    validators,
)
from asgi_cache.status import CACHE_STATUS, Detail, Forward, forwarded, with_key, with_status
from asgi_cache.stores.base import Fence
from asgi_cache.storing import entry_for, route_headers, validated
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
        "answered",
        "buffer",
        "buffered",
        "cache",
        "failed",
        "fence",
        "fwd",
        "fwd_status",
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
        "unpersisted",
        "validating",
        "validators",
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
        validating: Entry | None = None,
    ) -> None:
        self.cache = cache
        self.lookup = lookup
        self.receive_ = receive
        self.send_ = send
        self.leadership = leadership
        self.stand_in = stand_in  # a stale entry waits to answer if the application fails
        #: the entry's store tags (``None`` until named, see :meth:`_tags`)
        self.tags: list[str] | None = []
        self.fence: Fence | None = None
        self.persist = True  # False: not stored, for the reason in unpersisted
        self.unpersisted = Detail.STORE_UNAVAILABLE  # a tags function failing: KEY_ERROR
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
        self.validating = validating  # the stored entry this request validates, if any
        self.validators = (
            [] if validating is None else validators(validating.headers, validating.body)
        )
        # A validation forwards a stale entry, or one the request refused as it was.
        stale = self.validators and lookup.fwd is not Forward.REQUEST
        self.fwd = Forward.STALE if stale else lookup.fwd
        self.fwd_status: int | None = None  # the application's status, for fwd=stale
        self.answered = False  # the client got its answer from the validated entry

    async def run(self, app: ASGIApp, scope: Scope) -> Outcome:
        """Run ``app`` for this miss; the leadership is released however it ends."""
        self.request_headers = scope["headers"]
        try:
            await self._take_fence(scope)
            if self.validators:  # RFC 9111 §4.3.1: ask whether the entry is still good
                scope = {**scope, "headers": conditional_headers(scope["headers"], self.validators)}
            if not self.stand_in:
                await app(scope, self.receive, self.send)
                return Outcome.SENT
            return await self._run_with_stand_in(app, scope)
        finally:
            leadership = self.leadership
            if leadership is not None:
                if leadership.holds_lock:  # a store call: not to be cut short
                    with anyio.CancelScope(shield=True):
                        await leadership.release()
                else:  # nothing to await: cancellation cannot interrupt it
                    await leadership.release()

    async def _take_fence(self, scope: Scope) -> None:
        """Fence the store on the entry's tags, so that an invalidation while the
        application computes prevents storing.  When the store cannot give a
        fence, or the route's tags function fails, the response is neither
        stored nor handed to followers."""
        cache = self.cache
        store = cache.store
        route = self.lookup.route
        if route.rule.tag_function is None and not store.fence_reads_tags:
            self.tags = None  # named when needed: see _tags
            tags: list[str] = []
        else:
            tags = self.tags = self.lookup.tags(cache.prefix)
        if route.rule.tag_function is not None:
            found = await request_tags(route, scope)
            if found is None:
                self.persist = False
                self.unpersisted = Detail.KEY_ERROR
                return
            tags += [tag_key(cache.prefix, tag) for tag in found]
        try:
            self.fence = await store.fence(tags)
        except Exception as exc:
            cache.counters.store_failed("fence", exc)
            self.persist = False

    def _tags(self) -> list[str]:
        """The entry's store tags, named now if the fence did not need them."""
        tags = self.tags
        if tags is None:
            tags = self.tags = self.lookup.tags(self.cache.prefix)
        return tags

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

    def _status(self, detail: Detail | None = None, *, stored: bool = False) -> bytes:
        """This response's ``Cache-Status``: why it was forwarded, and what came of it."""
        return forwarded(self.fwd, detail, stored=stored, fwd_status=self.fwd_status)

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
        if logger.isEnabledFor(logging.DEBUG):  # the common case skips the call
            logger.debug("asgi-cache: not stored (%s) %s", reason, self.lookup.route.label)

    async def send(self, message: Message) -> None:
        if self.failed or self.answered:
            return  # the stale or the validated entry answers instead
        kind = message["type"]
        if kind == "http.response.start":
            await self._start(message)
            return
        if kind != "http.response.body" or not self.storing:
            if self.storing:
                await self._not_storing(Detail.NOT_STORED.value)
            if self.held is not None:
                await self._release(self._status(Detail.NOT_STORED))
            await self._forward(message)
            return

        body: bytes = message.get("body", b"")
        more: bool = message.get("more_body", False)
        if self.held is not None and not more:  # the whole body in one message
            if len(body) > self.lookup.route.max_body_size:
                await self._not_storing(Detail.TOO_LARGE.value)
                await self._release(self._status(Detail.TOO_LARGE))
            else:
                self.held["headers"] = with_etag(self.held["headers"], body)
                refused = await self._store(body)
                if refused is None:
                    status = self._status(stored=True)
                elif not self.persist:
                    status = self._status(self.unpersisted)
                else:
                    status = self._status(refused)
                await self._release(status)
            await self._forward(message)
            return
        if self.held is not None:  # a streamed body: forward as it comes
            await self._release(self._status())
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
        if self.validators:
            self.fwd_status = status
        if self.stand_in and is_error(status):
            self.failed = True
            self.origin_status = status
            return
        headers: Headers = list(message.get("headers", ()))
        if status == 304 and self.validating is not None and self.validators:
            await self._validated(self.validating, headers)
            return
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
            headers = self._downstream(headers, selecting)
            status_line = self._keyed(self._status(reason))
            await self._forward({**message, "headers": [*headers, (CACHE_STATUS, status_line)]})
            return
        self.selecting = selecting
        headers = route_headers(route.cache_control, headers)
        self.held = self.start = {**message, "headers": self._downstream(headers, selecting)}

    def _codings(self) -> bytes:
        """The known content codings the request accepts (RFC 9110 §12.5.3), as keyed."""
        if self.lookup.route.key_codings:
            return self.lookup.codings
        values = [v for n, v in self.request_headers if n.lower() == b"accept-encoding"]
        return normalised(b"accept-encoding", values or None) or b""

    def _downstream(self, headers: Headers, selecting: tuple[bytes, ...]) -> Headers:
        route = self.lookup.route
        return self._for_front(downstream(headers, route.vary_names, selecting, route.private))

    def _for_front(self, headers: Headers) -> Headers:
        """``headers`` with what the cache in front gets (:mod:`asgi_cache.front`)."""
        front = self.lookup.route.front
        if front is None:
            return headers
        # The tags are known once the tags= callable ran, if the route has one.
        known = self.unpersisted is not Detail.KEY_ERROR
        return front.headers(headers, self._tags() if known else None)

    async def _validated(self, stored: Entry, not_modified: Headers) -> None:
        """The application answered the validation ``304``: update, store, answer.

        RFC 9111 §4.3.4: the 304's fields replace the stored ones, the entry's
        freshness is computed anew from them, and it is stored again (under
        the fence taken before the application ran: an invalidation meanwhile
        refuses it).  A 304 that is not about the stored response cannot
        update it: the stale entry stands in when it may, else the client gets
        ``502 Bad Gateway`` (RFC 9110 §15.6.3), never a body-less 200.
        """
        self.answered = True  # the application's (empty) body goes nowhere
        route = self.lookup.route
        if not selects(stored.headers, not_modified):
            logger.warning(
                "asgi-cache: %s answered a validation with a 304 for another entity tag",
                route.label,
            )
            if self.stand_in:
                self.answered, self.failed = False, True
                return
            await self._not_storing(Detail.NOT_STORED.value)
            await _send_bad_gateway(self._forward, self._keyed(self._status(Detail.NOT_STORED)))
            return
        headers, reason = validated(route, stored, not_modified, self.lookup.varied)
        headers = self._for_front(headers)
        made = self._entry(stored.status, headers, stored.body)
        if reason is None and not isinstance(made, Detail):
            entry, keep = made
            reason = await self._put(entry, keep)
        else:
            reason = reason or (made if isinstance(made, Detail) else Detail.NOT_STORED)
            await self._not_storing(reason.value)
            # Not kept, but validated for this request all the same.
            headers = [(n, v) for n, v in headers if n.lower() != b"age"]
            entry = Entry(stored.status, headers, stored.body, self.cache.clock(), 0.0)
        if reason is None:
            status = self._status(stored=True)
        elif not self.persist:
            status = self._status(self.unpersisted)
        else:
            status = self._status(reason)
        lookup = self.lookup
        age = entry.age(self.cache.clock())  # the 304's own Age and Date count (§4.2.3)
        await send_entry(
            entry,
            age,
            self._keyed(status),
            self._forward,
            lookup.head,
            lookup.if_none_match,
            lookup.if_modified_since,
        )

    def _entry(self, status: int, received: Headers, body: bytes) -> tuple[Entry, float] | Detail:
        """The entry to store for this response and how long, or why not (see
        :func:`asgi_cache.storing.entry_for`)."""
        return entry_for(
            self.lookup.route,
            status,
            received,
            body,
            requested_at=self.requested_at,
            received_at=self.received_at,
            now=self.cache.clock(),
        )

    async def _store(self, body: bytes) -> Detail | None:
        """Store the finished response; ``None`` once stored, else why not."""
        made = self._entry(self.start["status"], self.start["headers"], body)
        if isinstance(made, Detail):
            await self._not_storing(made.value)
            return made
        return await self._put(*made)

    async def _put(self, entry: Entry, keep: float) -> Detail | None:
        """Store ``entry`` for ``keep`` seconds under the fence; a store failure
        only costs the entry."""
        cache = self.cache
        stored = False
        key = self.lookup.key
        if self.persist:
            try:
                if self.selecting:
                    key = await self._record(keep)
                stored = await cache.store.set(key, encode(entry), keep, self._tags(), self.fence)
            except Exception as exc:
                cache.counters.store_failed("set", exc)
                self.persist = False
        if stored:
            cache.counters.stores += 1
        elif self.persist:  # refused: an invalidation raced this response
            await self._not_storing("refused")
            self._raced()
            return Detail.NOT_STORED
        if self.leadership is not None:
            # Followers in this process get the entry itself once it is stored.
            # Unstored (the store failed, or refused it), it may predate a write
            # another process acknowledged meanwhile, which only the store's
            # fence could have told: the followers go to the application.
            # A variant of other headers than the followers were keyed on may
            # not be theirs: they go to the application.
            await self.leadership.release(entry if stored and key == self.lookup.key else None)
        return None if stored else Detail.NOT_STORED

    def _raced(self) -> None:
        """An invalidation came while the application computed this response,
        which may predate the write: the tier in front must not keep it either,
        since the write's purge may have reached it before this response does."""
        front = self.lookup.route.front
        if front is not None and self.held is not None:
            self.held["headers"] = front.headers(self.held["headers"], None, storable=False)

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
        await self.cache.store.set(lookup.primary, record, ttl, self._tags(), self.fence)
        return variant_key(lookup.primary, names, request_values(self.request_headers, names))


async def _send_bad_gateway(send: Send, status: bytes) -> None:
    """Answer for an application whose 304 did not validate the stored entry.

    RFC 9110 §15.6.3: 502 says the server upstream sent an invalid response.
    """
    await send_text(
        send,
        502,
        b"The application answered a validation with a 304 for another representation.\n",
        [(b"cache-control", b"no-store"), (b"cache-status", status)],
    )
