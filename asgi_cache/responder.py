"""The per-request ``send`` wrapper of a miss: forwards the response, stores it.

The response start is held back until the first body message: when that
message is the whole body (the common case) the entry is stored *before* the
client sees anything, so ``Cache-Status`` says truthfully whether it was stored
and the generated ``ETag`` is already there.  A streamed body is forwarded chunk
by chunk as it comes and buffered only up to ``max_body_size``; it is stored
when its last chunk arrives, unless the client disconnected.  A body that never
completes (the application raised, the client left) is never stored.

With a stale entry to fall back on (``stale-if-error``), a 5xx response start
is swallowed instead of forwarded, and the caller answers with the stale entry.
"""

from __future__ import annotations

import logging
import math
from hashlib import blake2b

import anyio
from starlette.types import Message, Receive, Send

from asgi_cache.cache import Cache
from asgi_cache.entry import Entry, encode
from asgi_cache.flight import Leadership
from asgi_cache.policy import freshness_lifetime, stale_windows, unstorable_reason
from asgi_cache.replay import CACHE_STATUS
from asgi_cache.routes import ReadRoute
from asgi_cache.stores.base import Fence, log_store_failure

__all__ = ["Responder", "store_failed"]

logger = logging.getLogger("asgi_cache")

Headers = list[tuple[bytes, bytes]]


def store_failed(cache: Cache, operation: str, exc: Exception) -> None:
    """Count and log (see :func:`log_store_failure`) a failed store call."""
    cache.counters.store_errors += 1
    log_store_failure(f"store {operation}", exc)


def with_header(message: Message, name: bytes, value: bytes) -> Message:
    return {**message, "headers": [*message.get("headers", ()), (name, value)]}


class Responder:
    """Watches one miss's response go by and stores it when complete."""

    __slots__ = (
        "buffer",
        "buffered",
        "cache",
        "codings",
        "fence",
        "fwd",
        "held",
        "key",
        "leadership",
        "persist",
        "receive_",
        "route",
        "send_",
        "stale",
        "start",
        "started",
        "storing",
        "tags",
        "timer",
        "use_stale",
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
        *,
        leadership: Leadership | None = None,
        stale: Entry | None = None,
        timer: anyio.CancelScope | None = None,
        persist: bool = True,
    ) -> None:
        self.cache = cache
        self.route = route
        self.key = key
        self.tags = tags
        self.fence = fence
        self.fwd = fwd
        self.codings = codings
        self.receive_ = receive
        self.send_ = send
        self.leadership = leadership
        self.persist = persist  # False: the store failed; followers still get the entry
        self.stale = stale  # an entry to answer with if the application fails
        self.timer = timer  # cancels a slow application while a stale entry waits
        self.held: Message | None = None  # the response start, until the first body
        self.start: Message = {}  # the response start as it will be stored
        self.started = False  # whether anything reached the client
        self.storing = True
        self.use_stale = False
        self.buffer: list[bytes] = []
        self.buffered = 0

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
        await self._forward(with_header(held, CACHE_STATUS, status))

    async def _not_storing(self, reason: str) -> None:
        self.storing = False
        self.cache.counters.not_stored += 1
        if self.leadership is not None:
            await self.leadership.release()  # waiters go to the application
        logger.debug("asgi-cache: not stored (%s) %s", reason, self.route.label)

    async def send(self, message: Message) -> None:
        if self.use_stale:
            return  # the caller answers with the stale entry instead
        kind = message["type"]
        if kind == "http.response.start":
            if self.timer is not None:
                self.timer.deadline = math.inf  # the response has begun: no cut-off
            status = message["status"]
            if self.stale is not None and status >= 500:
                self.use_stale = True
                return
            headers: Headers = list(message.get("headers", ()))
            route = self.route
            reason = unstorable_reason(
                status, headers, route.statuses, route.key_header_names
            ) or _unaccepted_coding(headers, self.codings)
            if reason is not None:
                await self._not_storing(reason)
                status_line = self.fwd + b"; detail=" + reason.encode()
                await self._forward(with_header(message, CACHE_STATUS, status_line))
                return
            if route.cache_control is not None:
                headers = [(n, v) for n, v in headers if n.lower() != b"cache-control"]
                headers.append((b"cache-control", route.cache_control))
            self.held = self.start = {**message, "headers": headers}
            return
        if kind != "http.response.body" or not self.storing:
            if self.storing:
                await self._not_storing("not-stored")
            if self.held is not None:
                await self._release(self.fwd + b"; detail=not-stored")
            await self._forward(message)
            return

        body: bytes = message.get("body", b"")
        more: bool = message.get("more_body", False)
        if self.held is not None and not more:  # the whole body in one message
            if len(body) > self.route.max_body_size:
                await self._not_storing("too-large")
                await self._release(self.fwd + b"; detail=too-large")
            else:
                self.held["headers"] = _with_etag(self.held["headers"], body)
                stored = await self._store(body)
                if stored:
                    detail = b"; stored"
                elif not self.persist:
                    detail = b"; detail=store-unavailable"
                else:
                    detail = b"; detail=not-stored"
                await self._release(self.fwd + detail)
            await self._forward(message)
            return
        if self.held is not None:  # a streamed body: forward as it comes
            await self._release(self.fwd)
        self.buffered += len(body)
        if self.buffered > self.route.max_body_size:
            self.buffer = []
            await self._not_storing("too-large")
        else:
            self.buffer.append(body)
            if not more:
                await self._store(b"".join(self.buffer))
        await self._forward(message)

    async def _store(self, body: bytes) -> bool:
        """Store the finished response; a store failure only costs the entry."""
        cache = self.cache
        route = self.route
        headers = [(n, v) for n, v in _with_etag(self.start["headers"], body) if n != b"age"]
        ttl = freshness_lifetime(route.rule.ttl, headers, cache.default_ttl)
        swr, sie = stale_windows(
            route.rule.stale_while_revalidate,
            route.rule.stale_if_error,
            headers,
            (cache.stale_while_revalidate, cache.stale_if_error),
        )
        if ttl <= 0:
            await self._not_storing("no lifetime")
            return False
        entry = Entry(self.start["status"], headers, body, cache.clock(), ttl, swr, sie)
        stored = False
        if self.persist:
            try:
                stored = await cache.store.set(
                    self.key, encode(entry), ttl + max(swr, sie), self.tags, self.fence
                )
            except Exception as exc:
                store_failed(cache, "set", exc)
                self.persist = False
        if stored:
            cache.counters.stores += 1
        elif self.persist:  # refused: an invalidation raced this response
            await self._not_storing("refused")
            return False
        if self.leadership is not None:
            # Followers in this process get the entry itself, even when the
            # store failed; a refused entry (see above) is never handed over.
            await self.leadership.release(entry)
        return stored


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
