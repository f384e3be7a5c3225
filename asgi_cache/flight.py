"""Request coalescing ("single flight"): one leader computes, the others wait.

When a hot entry is missing, a thousand concurrent requests must not all reach
the database.  Within a process, followers wait on the leader's event; across
processes, the leader holds a short-lived store lock (``SET NX PX`` on Redis)
and one follower per process polls for its release.  Then followers re-read
the store: if the leader stored a response they are answered from it,
otherwise (a private or failed response) each goes to the application itself.
Waiting is bounded, so a leader that crashed or hangs blocks nobody for long.
"""

from __future__ import annotations

import logging
import secrets

import anyio

from asgi_cache.stores.base import Store

__all__ = ["Coalescer", "Leadership"]

logger = logging.getLogger("asgi_cache")


class Leadership:
    """The right, and duty, to compute ``key``; :meth:`release` when done."""

    __slots__ = ("_coalescer", "_event", "_key", "_lock", "_store", "_token")

    def __init__(
        self,
        coalescer: Coalescer,
        store: Store,
        key: str,
        token: str | None,
        event: anyio.Event,
    ) -> None:
        self._coalescer = coalescer
        self._store = store
        self._key = key
        self._lock = key + ":lock"
        self._token = token
        self._event = event

    async def release(self) -> None:
        """Wake the followers (idempotent); they re-read the store."""
        if self._event.is_set():
            return
        self._coalescer._finish(self._key, self._event)
        if self._token is not None:
            try:
                await self._store.release(self._lock, self._token)
            except Exception as exc:  # the lock expires by itself
                logger.debug("asgi-cache: lock release failed: %s", exc)


class Coalescer:
    """Tracks the keys being computed in this process."""

    def __init__(self) -> None:
        self._flights: dict[str, anyio.Event] = {}

    def busy(self, key: str) -> bool:
        """Whether a request of this process is computing ``key`` now."""
        return key in self._flights

    async def join(self, store: Store, key: str, wait: float) -> Leadership | None:
        """Lead the computation of ``key``, or wait (at most ``wait`` seconds)
        for the current leader and return ``None``: then re-read the store."""
        event = self._flights.get(key)
        if event is not None:
            with anyio.move_on_after(wait):
                await event.wait()
            return None
        leadership = await self.lead(store, key, wait)
        if leadership is not None:
            return leadership
        # Another process leads: one request per process polls for it, the
        # others of this process wait on this one's event.
        event = self._flights.setdefault(key, anyio.Event())
        try:
            await store.wait_released(key + ":lock", wait)
        except Exception as exc:
            logger.debug("asgi-cache: waiting for a lock failed: %s", exc)
        finally:
            self._finish(key, event)
        return None

    async def lead(self, store: Store, key: str, ttl: float) -> Leadership | None:
        """Take the lead on ``key`` if nobody, here or elsewhere, has it."""
        if key in self._flights:
            return None
        event = self._flights[key] = anyio.Event()
        new_token = secrets.token_hex(8)
        token: str | None = new_token
        try:
            acquired = await store.acquire(key + ":lock", new_token, ttl)
        except Exception as exc:  # fail open: lead without a cross-process lock
            logger.debug("asgi-cache: lock acquire failed: %s", exc)
            acquired, token = True, None
        if not acquired:
            self._finish(key, event)
            return None
        return Leadership(self, store, key, token, event)

    def _finish(self, key: str, event: anyio.Event) -> None:
        if self._flights.get(key) is event:
            del self._flights[key]
        event.set()
