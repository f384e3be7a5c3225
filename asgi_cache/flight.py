"""Request coalescing ("single flight"): one leader computes, the others wait.

When a hot entry is missing, a thousand concurrent requests must not all reach
the database.  Within a process, followers wait on the leader's :class:`Flight`
and are handed its result directly (even when the store is failing); across
processes, the leader holds a short-lived store lock (``SET NX PX`` on Redis)
and one follower per process polls for its release, then followers re-read the
store.  Without a result (a private or failed response) each follower goes to
the application itself.  Waiting is bounded, so a leader that crashed or hangs
blocks nobody for long.
"""

from __future__ import annotations

import logging
import secrets
from typing import Any

import anyio

from asgi_cache.keys import lock_key
from asgi_cache.stores.base import Store

__all__ = ["Coalescer", "Flight", "Leadership"]

logger = logging.getLogger("asgi_cache")


class Flight:
    """One computation of a key in this process, as its followers see it."""

    __slots__ = ("done", "result")

    def __init__(self) -> None:
        self.done = anyio.Event()
        #: What the leader handed over for its followers (``None``: nothing,
        #: re-read the store or compute).
        self.result: Any = None


class Leadership:
    """The right, and duty, to compute ``key``; :meth:`release` when done."""

    __slots__ = ("_coalescer", "_flight", "_key", "_lock", "_store", "_token")

    def __init__(
        self, coalescer: Coalescer, store: Store, key: str, token: str | None, flight: Flight
    ) -> None:
        self._coalescer = coalescer
        self._store = store
        self._key = key
        self._lock = lock_key(key)
        self._token = token
        self._flight = flight

    async def release(self, result: Any = None) -> None:
        """Wake the followers, handing them ``result`` (idempotent)."""
        if self._flight.done.is_set():
            return
        self._flight.result = result
        self._coalescer._finish(self._key, self._flight)
        if self._token is not None:
            try:
                await self._store.release(self._lock, self._token)
            except Exception as exc:  # the store retries, or the lease runs out
                logger.debug("asgi-cache: lock release failed: %s", exc)


class Coalescer:
    """Tracks the keys being computed in this process."""

    def __init__(self) -> None:
        self._flights: dict[str, Flight] = {}

    def busy(self, key: str) -> bool:
        """Whether a request of this process is computing ``key`` now."""
        return key in self._flights

    async def join(self, store: Store, key: str, wait: float) -> Leadership | Flight:
        """Lead the computation of ``key``, or wait (at most ``wait`` seconds)
        for the current leader and return its :class:`Flight`."""
        flight = self._flights.get(key)
        if flight is not None:
            with anyio.move_on_after(wait):
                await flight.done.wait()
            return flight
        flight = self._flights[key] = Flight()
        leadership = await self._acquire(store, key, wait, flight)
        if leadership is not None:
            return leadership
        # Another process leads: this request polls for it, while the others
        # of this process wait on its flight.
        try:
            await store.wait_released(lock_key(key), wait)
        except Exception as exc:
            logger.debug("asgi-cache: waiting for a lock failed: %s", exc)
        finally:
            self._finish(key, flight)
        return flight

    async def lead(self, store: Store, key: str, ttl: float) -> Leadership | None:
        """Take the lead on ``key`` if nobody, here or elsewhere, has it."""
        if key in self._flights:
            return None
        flight = self._flights[key] = Flight()
        leadership = await self._acquire(store, key, ttl, flight)
        if leadership is None:
            self._finish(key, flight)
        return leadership

    async def _acquire(
        self, store: Store, key: str, ttl: float, flight: Flight
    ) -> Leadership | None:
        """Take the cross-process lock of ``key``; ``None`` if another holds it."""
        new_token = secrets.token_hex(8)
        token: str | None = new_token
        try:
            acquired = await store.acquire(lock_key(key), new_token, ttl)
        except Exception as exc:  # fail open: lead without a cross-process lock
            logger.debug("asgi-cache: lock acquire failed: %s", exc)
            acquired, token = True, None
        if not acquired:
            return None
        return Leadership(self, store, key, token, flight)

    def _finish(self, key: str, flight: Flight) -> None:
        if self._flights.get(key) is flight:
            del self._flights[key]
        flight.done.set()
