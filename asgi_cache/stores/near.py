"""The near cache: an in-process tier of entries in front of :class:`~asgi_cache.RedisStore`.

A hit served from process memory costs no round trip.  What makes it safe to share Redis with
other processes is that every copy is dropped as soon as Redis says its key changed (see
:mod:`asgi_cache.stores.tracking`), and that the tier serves nothing while it cannot hear Redis:

* a copy keeps the expiry Redis gave its key, and is never served past it;
* an invalidation message from Redis drops the copies of its keys (``None``: all of them);
* the store's own ``set`` and ``delete`` drop the key's copy, its own ``invalidate`` and
  ``clear`` every copy, before they return;
* a read is inserted only if no invalidation of its key (and no flush) arrived while it
  was in flight (:meth:`NearCache.reading`), so a reply that was overtaken by its key's
  invalidation is answered but never kept;
* while tracking is down (a lost subscriber connection, a restarted Redis) the tier is empty
  and bypassed.

Only entries go through the tier; locks, fences and tag bookkeeping always read Redis.
"""

from __future__ import annotations

import math
import sys
import time
from collections import OrderedDict
from collections.abc import Callable

__all__ = ["NearCache"]

#: What a copy costs beyond sys.getsizeof of its key and value: the tuple holding value and
#: expiry, the float, the OrderedDict slot and node (CPython 3.11, 64-bit, rounded up).
COPY_OVERHEAD = 160


class NearCache:
    """An LRU of at most ``max_bytes`` of entry copies, coherent through Redis tracking.

    Pass one to :class:`~asgi_cache.RedisStore` (``near_cache=NearCache(...)``), or add
    ``near_cache_bytes=<n>`` to the Redis URL.  Only keys starting with ``prefix`` are kept
    (and tracked); give it the cache's prefix so that Redis tells this process about those
    keys only.  ``health_check`` is how long the tracking connection may stay silent before
    it is pinged, and then again before it counts as lost (a network cut, a frozen server).

    One store's tier serves the event loop that started its tracking (the server's); calls
    from another loop (a job's ``asyncio.run``) read Redis directly until that loop ends.
    """

    def __init__(
        self,
        max_bytes: int = 64 * 2**20,
        *,
        prefix: str = "",
        health_check: float = 1.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if isinstance(max_bytes, bool) or not isinstance(max_bytes, int) or max_bytes <= 0:
            raise ValueError(f"near cache max_bytes must be a positive int, not {max_bytes!r}")
        if not isinstance(prefix, str):
            raise ValueError(f"near cache prefix must be a str, not {prefix!r}")
        if not health_check > 0:
            raise ValueError(f"near cache health_check must be positive, not {health_check!r}")
        self.max_bytes = max_bytes
        self.prefix = prefix
        self.health_check = health_check
        self.clock = clock
        self._copies: OrderedDict[str, tuple[bytes, float, int]] = OrderedDict()
        self._bytes = 0
        # Keys being read from Redis -> whether a drop or flush came since the read began.
        self._reading: dict[str, bool] = {}
        #: Whether tracking is established; the tier is empty and bypassed while it is not.
        self.active = False
        #: The ``host:port`` of each node tracked (set when tracking is established).
        self.nodes: frozenset[str] = frozenset()
        self.hits = 0
        self.evictions = 0
        self.flushes = 0

    def lookup(self, key: str) -> bytes | None:
        """The copy of ``key`` if the tier is active and the copy has not expired."""
        copy = self._copies.get(key)
        if copy is None:
            return None
        if copy[1] <= self.clock():
            self._remove(key)
            return None
        self._copies.move_to_end(key)
        self.hits += 1
        return copy[0]

    def admits(self, key: str) -> bool:
        """Whether a read of ``key`` may be kept: tracking is up and covers ``key``."""
        return self.active and key.startswith(self.prefix)

    def reading(self, key: str) -> float:
        """Note that ``key`` is about to be read from Redis; return when (by :attr:`clock`).

        Only the store's one read in flight per key calls this (concurrent gets of a key
        share a read), and then :meth:`insert` or :meth:`abandon`.  A drop of ``key`` or a
        flush meanwhile spoils the read: per key, so writes to other keys never do.
        """
        self._reading[key] = False
        return self.clock()

    def abandon(self, key: str) -> None:
        """The read of ``key`` noted by :meth:`reading` failed: forget it."""
        self._reading.pop(key, None)

    def insert(self, key: str, value: bytes, ttl_ms: int, started: float) -> None:
        """Keep ``value`` until ``ttl_ms`` after ``started`` (when the read was sent), unless
        the read was spoiled (see :meth:`reading`) or tracking is down.

        ``ttl_ms`` is Redis's ``PTTL``: counting it from before the read was sent ends the
        copy no later than the key.  A key without expiry (``-1``) is kept until dropped.
        """
        spoiled = self._reading.pop(key, True)
        if spoiled or not self.active or ttl_ms == 0 or ttl_ms < -1:
            return
        size = sys.getsizeof(key) + sys.getsizeof(value) + COPY_OVERHEAD
        if size > self.max_bytes:
            return
        if key in self._copies:
            self._remove(key)
        while self._bytes + size > self.max_bytes:
            oldest = next(iter(self._copies))
            self._remove(oldest)
            self.evictions += 1
        expires = math.inf if ttl_ms == -1 else started + ttl_ms / 1000
        self._copies[key] = (value, expires, size)
        self._bytes += size

    def drop(self, key: str) -> None:
        """Forget ``key``'s copy; a read of it in flight is not kept either."""
        if key in self._reading:
            self._reading[key] = True
        if key in self._copies:
            self._remove(key)

    def flush(self) -> None:
        """Forget every copy; reads in flight are not kept either."""
        for key in self._reading:
            self._reading[key] = True
        self.flushes += 1
        self._copies.clear()
        self._bytes = 0

    def stats(self) -> dict[str, int]:
        """``near_hits``, ``near_bytes``, ``near_entries``, ``near_evictions``,
        ``near_flushes`` and ``near_tracking`` (1 while tracking is established)."""
        return {
            "near_hits": self.hits,
            "near_bytes": self._bytes,
            "near_entries": len(self._copies),
            "near_evictions": self.evictions,
            "near_flushes": self.flushes,
            "near_tracking": int(self.active),
        }

    def _remove(self, key: str) -> None:
        self._bytes -= self._copies.pop(key)[2]
