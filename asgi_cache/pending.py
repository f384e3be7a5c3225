"""Invalidations the store could not take, kept until it does.

An invalidation that fails (Redis unreachable, out of memory, its circuit
breaker open) must not be dropped: the old entries would be served again as
soon as the store answers, until their TTL.  So a :class:`~asgi_cache.Cache`
keeps what it could not invalidate (the store tags, or "everything" for a failed
``clear``) and

* retries it in the background every 50 ms until the store takes it (a
  store's circuit breaker does not hold an invalidation back: ``RedisStore``
  tries it anyway, bounded by its timeout);
* applies it before this process answers from the store again: while anything
  is pending, a request of a cached route first tries to apply it, and bypasses
  the cache while that fails (``Cache-Status: ...; detail=invalidation-pending``).

Other processes cannot know what this one failed to invalidate.  If the store
was down for them too, they bypassed it as well; once it answers, they may
serve an entry this process meant to remove until its next retry reaches the
store: about the retry interval (50 ms) after the store is back.

Bounded: past :attr:`PendingInvalidations.MAX_TAGS` tags, what is pending
becomes one ``clear`` of the cache's prefix (more than it must remove, never
less).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable

from asgi_cache.stores.base import Store, StoreError

__all__ = ["InvalidationPending", "PendingInvalidations"]

logger = logging.getLogger("asgi_cache")

#: Seconds between two retries of what is pending.
RETRY_INTERVAL = 0.05


class InvalidationPending(StoreError):
    """The store could not take an invalidation; the cache keeps it and retries.

    Raised by :meth:`~asgi_cache.Cache.invalidate`, ``invalidate_path``,
    ``clear`` and ``delete_memoized`` when the store fails.  Nothing needs
    redoing: the cache applies the invalidation as soon as the store answers,
    and serves nothing from the store before it has.
    """


class PendingInvalidations:
    """The invalidations one cache still owes its store."""

    MAX_TAGS = 10_000

    def __init__(self, store: Store, namespace: str) -> None:
        self._store = store
        self._namespace = namespace  # what a pending clear removes
        self._tags: dict[str, None] = {}  # an ordered set
        self._clear = False
        self._clears = 0  # clears kept so far
        #: Whether anything is pending: a plain attribute, read on every request.
        self.waiting = False
        self._retrying: asyncio.Task[None] | None = None
        self._applying = False

    def __len__(self) -> int:
        """How many tags are pending (a pending clear counts as one)."""
        return len(self._tags) + self._clear

    def keep(self, tags: Iterable[str]) -> None:
        """Owe the invalidation of ``tags``, and start retrying it."""
        if not self._clear:
            self._tags.update(dict.fromkeys(tags))
            if len(self._tags) > self.MAX_TAGS:
                self.keep_clear()
                return
        self.waiting = True
        self._retry_soon()

    def keep_clear(self) -> None:
        """Owe a ``clear`` of the whole namespace (it covers every pending tag)."""
        self._clear = True
        self._clears += 1
        self._tags.clear()
        self.waiting = True
        self._retry_soon()

    async def apply(self) -> int:
        """Send what is pending to the store; return how many entries it removed.

        Raises what the store raised, keeping what it did not take; tags kept
        while this runs stay pending.
        """
        removed = 0
        if self._clear:
            clears = self._clears
            removed += await self._store.clear(self._namespace)
            if self._clears == clears:  # no clear was kept while this one ran
                self._clear = False
        tags = list(self._tags)
        if tags:
            removed += await self._store.invalidate(tags)
            for tag in tags:
                self._tags.pop(tag, None)
        self.waiting = bool(self._tags) or self._clear
        if not self.waiting:
            logger.warning("asgi-cache: pending invalidations applied; the cache is back")
        return removed

    async def try_apply(self) -> bool:
        """Apply what is pending unless another request already is; whether
        nothing is pending any more.  Never raises."""
        if self._applying:
            return False
        self._applying = True
        try:
            await self.apply()
        except Exception as exc:
            logger.debug("asgi-cache: pending invalidations still refused: %s", exc)
        finally:
            self._applying = False
        return not self.waiting

    def _retry_soon(self) -> None:
        if self._retrying is not None and not self._retrying.done():
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:  # no asyncio loop: the next request applies it
            return
        self._retrying = loop.create_task(self._retry())

    async def _retry(self) -> None:
        while self.waiting:
            await asyncio.sleep(RETRY_INTERVAL)
            await self.try_apply()

    async def aclose(self) -> None:
        """Stop retrying (what is pending is lost with the process, as the cache is)."""
        task, self._retrying = self._retrying, None
        if task is None or task.done():
            return
        if task.get_loop() is not asyncio.get_running_loop():  # started on another loop
            if not task.get_loop().is_closed():
                task.get_loop().call_soon_threadsafe(task.cancel)
            return
        task.cancel()
        try:
            await task
        except asyncio.CancelledError:
            pass
