"""Request coalescing ("single flight"): one leader computes, the others wait.

When a hot entry is missing, a thousand concurrent requests must not all reach
the database.  Within a process, followers wait on the leader's :class:`Flight`
and are handed its result directly (even when the store is failing); across
processes, the leader holds a store lock (``SET NX PX`` on Redis) and one
follower per process polls for its release, then followers re-read the store.
Without a result (a private or failed response) each follower goes to the
application itself.  Waiting is bounded by ``coalesce_wait``.

A lock must never keep requests waiting for a leader that can no longer
release it, so the store side of it is built for failure:

* The lock is *leased*: the store sets it for a short lease and renews it
  while the leader computes, up to ``coalesce_wait`` (Redis: one ``PEXPIRE``
  through a compare-token script every third of a one-second lease).  A leader
  whose process died, or that lost the store, stops renewing, so its followers
  elsewhere are free within the lease, not after the whole ``coalesce_wait``.
  A long fixed expiry would block them for its full length; a short fixed one
  would let a slow leader lose the lock and the work be done twice.
* The release is attempted even when the store's circuit breaker is open (one
  try, bounded by the store's timeout), and retried in the background while the
  lock would live: the breaker protects requests from a dead store, but the
  release is what frees everybody else, and a store that just failed one call
  often answers the next.
* A follower stops waiting as soon as its own poll fails in what looks like an
  outage, and then leads its process's followers itself, without a lock: a
  dead or stalled store costs it one store timeout, and its process still
  computes once.

Lock traffic stays small: per coalesced miss the leader sends one ``SET`` and
one release script (plus one renewal per third of a lease beyond the first,
for computations that long), and each other process one ``SET`` and a few
``PTTL`` polls with backoff, however many requests wait.
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
    """One computation of a key in this process, as its followers see it.

    Most computations have no follower, so the event followers wait on is made by
    the first of them (an ``anyio.Event`` costs more than the rest of a lead).
    """

    __slots__ = ("_event", "finished", "result")

    def __init__(self) -> None:
        self._event: anyio.Event | None = None
        self.finished = False  #: the leader is done: followers no longer wait
        #: What the leader handed over for its followers (``None``: nothing,
        #: re-read the store or compute).
        self.result: Any = None

    async def wait(self) -> None:
        """Return once the leader is done (callers bound the wait)."""
        if self.finished:
            return
        if self._event is None:
            self._event = anyio.Event()
        await self._event.wait()

    def finish(self) -> None:
        self.finished = True
        if self._event is not None:
            self._event.set()


class Leadership:
    """The right, and duty, to compute ``key``; :meth:`release` when done."""

    __slots__ = ("_coalescer", "_flight", "_key", "_store", "_token")

    def __init__(
        self, coalescer: Coalescer, store: Store, key: str, token: str | None, flight: Flight
    ) -> None:
        self._coalescer = coalescer
        self._store = store
        self._key = key
        self._token = token  # None: no lock in the store (the lock key is made when there is)
        self._flight = flight

    @property
    def holds_lock(self) -> bool:
        """Whether releasing also frees a lock in the store (an awaited store call)."""
        return self._token is not None

    async def release(self, result: Any = None) -> None:
        """Wake the followers, handing them ``result`` (idempotent)."""
        if self._flight.finished:
            return
        self._flight.result = result
        self._coalescer._finish(self._key, self._flight)
        if self._token is not None:
            try:
                await self._store.release(lock_key(self._key), self._token)
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
        for the current leader and return its :class:`Flight`.

        A request waiting for another process's leader becomes this process's
        leader, without a lock, when the store fails while it waits.
        """
        flight = self._flights.get(key)
        if flight is not None:
            with anyio.move_on_after(wait):
                await flight.wait()
            return flight
        flight = self._flights[key] = Flight()
        if _lockless(store):  # no coroutine to await for the common case
            return Leadership(self, store, key, None, flight)
        leadership = await self._acquire(store, key, wait, flight)
        if leadership is not None:
            return leadership
        # Another process leads: this request polls for it, while the others
        # of this process wait on its flight.
        try:
            await store.wait_released(lock_key(key), wait)
        except Exception as exc:
            # The store is failing: the leader elsewhere may never be seen to
            # finish.  Lead this process's followers without a lock instead.
            logger.debug("asgi-cache: waiting for a lock failed: %s", exc)
            return Leadership(self, store, key, None, flight)
        except BaseException:
            self._finish(key, flight)
            raise
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
        """Take the cross-process lock of ``key``; ``None`` if another holds it.

        A store that keeps no locks (the default :meth:`Store.acquire`: one process
        only) is not asked, and its leader has no lock to release."""
        if _lockless(store):
            return Leadership(self, store, key, None, flight)
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
        flight.finish()


def _lockless(store: Store) -> bool:
    """Whether ``store`` keeps no locks (the default :meth:`Store.acquire`: one
    process only), so a leader need not ask it."""
    return type(store).acquire is Store.acquire
