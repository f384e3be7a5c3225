"""Forwarding a cache's invalidations to its purgers, and retrying what fails.

Every invalidation of a :class:`~asgi_cache.Cache` (write routes,
``invalidate``, ``invalidate_path``, ``clear``, the admin app) goes to the
store first, then to every purger (:mod:`asgi_cache.purgers`), all at once.
A write's response start waits for them up to ``purge_wait`` seconds, so a
client that got its answer finds the tier in front purged too.  A purger
that fails or is slower than that is not waited for again:

* what it did not take is kept, merged with what follows, and retried in the
  background (every 0.1 s at first, backing off to every 2 s) until it
  answers: never dropped;
* while it is failing, new purges for it join what is kept without making
  a write wait;
* it is logged once when it starts failing (WARNING) and once when it
  takes what was kept (WARNING), and counted in ``Cache.stats()``
  (``purges``, ``purges_failed``, ``purges_pending``).

A failing purger never makes a write, an ``invalidate`` or the admin app
fail: the application's tier is invalidated either way.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable

import anyio

from asgi_cache.purgers.base import Purge, Purger

__all__ = ["Purging"]

logger = logging.getLogger("asgi_cache")

#: The first pause between two retries of a failing purger, and the longest.
RETRY_FIRST, RETRY_LONGEST = 0.1, 2.0


class Purging:
    """The purgers of one cache, with what each still owes."""

    def __init__(self, purgers: Iterable[Purger], wait: float) -> None:
        self.purgers = tuple(purgers)
        for purger in self.purgers:
            if not isinstance(purger, Purger):
                raise TypeError(
                    f"Cache: purgers must be Purger instances (VarnishPurger, HTTPPurger...), "
                    f"got {type(purger).__qualname__}"
                )
        self.wait = float(wait)
        self._owed: dict[int, Purge] = {}  # purger index -> what it has not taken
        self._retrying: asyncio.Task[None] | None = None
        self.sent = 0  #: purges a purger applied
        self.failed = 0  #: purges a purger did not apply at once (kept and retried)

    def stats(self) -> dict[str, object]:
        """``purges``, ``purges_failed`` and ``purges_pending`` (purgers owing one)."""
        return {
            "purges": self.sent,
            "purges_failed": self.failed,
            "purges_pending": len(self._owed),
        }

    async def send(self, purge: Purge) -> None:
        """Give ``purge`` to every purger, waiting at most :attr:`wait` for them.

        Never raises: what a purger does not take in time is kept and retried.
        """
        if not self.purgers or not purge:
            return
        waited = []
        retrying = self._retrying is not None and not self._retrying.done()
        for index in range(len(self.purgers)):
            owed = self._owed.get(index)
            if owed is not None and retrying:  # failing: no write waits for it
                self._owed[index] = owed.merged(purge)
            else:
                waited.append(index)
        if waited:
            async with anyio.create_task_group() as group:
                for index in waited:
                    group.start_soon(self._send_one, index, purge)
        if self._owed:
            self._retry_soon()

    async def _send_one(self, index: int, purge: Purge) -> None:
        purger = self.purgers[index]
        owed = self._owed.pop(index, None)  # no background retry (trio): sent along now
        if owed is not None:
            purge = owed.merged(purge)
        try:
            with anyio.fail_after(self.wait):
                await purger.purge(purge)
        except Exception as exc:
            self.failed += 1
            kept = self._owed.get(index)
            self._owed[index] = purge if kept is None else kept.merged(purge)
            if owed is None and kept is None:
                logger.warning(
                    "asgi-cache: purge to %s failed (%s); kept, and retried until it answers",
                    purger.name,
                    _describe(exc),
                )
            return
        self.sent += 1

    def _retry_soon(self) -> None:
        if self._retrying is not None and not self._retrying.done():
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:  # no asyncio loop (trio): the next purge sends it along
            return
        self._retrying = loop.create_task(self._retry())

    async def _retry(self) -> None:
        pause = RETRY_FIRST
        while self._owed:
            await asyncio.sleep(pause)
            pause = min(pause * 2, RETRY_LONGEST)
            for index, owed in list(self._owed.items()):
                purger = self.purgers[index]
                try:
                    with anyio.fail_after(max(self.wait, 1.0) * 5):
                        await purger.purge(owed)
                except Exception as exc:
                    logger.debug("asgi-cache: purge to %s still failing: %s", purger.name, exc)
                    continue
                # Purges kept while this one ran stay owed.
                current = self._owed.get(index)
                if current is owed:
                    del self._owed[index]
                elif current is not None:
                    remaining = _without(current, owed)
                    if remaining:
                        self._owed[index] = remaining
                    else:
                        del self._owed[index]
                self.sent += 1
                logger.warning("asgi-cache: purges kept for %s applied; it is back", purger.name)
                pause = RETRY_FIRST

    async def aclose(self) -> None:
        """Stop retrying and close the purgers (what is owed is lost with the process)."""
        task, self._retrying = self._retrying, None
        if task is not None and not task.done():
            if task.get_loop() is asyncio.get_running_loop():
                task.cancel()
                try:
                    await task
                except asyncio.CancelledError:
                    pass
            elif not task.get_loop().is_closed():
                task.get_loop().call_soon_threadsafe(task.cancel)
        for purger in self.purgers:
            try:
                await purger.aclose()
            except Exception as exc:  # closing must not stop the others
                logger.debug("asgi-cache: closing %s failed: %s", purger.name, exc)


def _without(current: Purge, applied: Purge) -> Purge:
    """What of ``current`` is still owed once ``applied`` went through."""
    return Purge(
        tuple(key for key in current.keys if key not in applied.keys),
        tuple(path for path in current.paths if path not in applied.paths),
        current.everything and not applied.everything,
    )


def _describe(exc: Exception) -> str:
    return str(exc) or type(exc).__name__
