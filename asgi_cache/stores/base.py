"""The small async interface every store implements.

The middleware and :class:`~asgi_cache.Cache` talk only to this interface, so a
store never knows about HTTP and the middleware never knows which store it uses.
Keys, tags and values are opaque to a store: keys and tags are strings already
namespaced by the cache's prefix, values are bytes (an encoded entry).
"""

from __future__ import annotations

import abc
import logging
from collections.abc import Callable, Sequence
from typing import ClassVar

__all__ = ["Fence", "Store", "StoreError", "log_store_failure"]

logger = logging.getLogger("asgi_cache")

#: An opaque snapshot of tag generations, taken by :meth:`Store.fence` before a
#: response is generated and handed back to :meth:`Store.set`.  A store refuses
#: a ``set`` whose fence is older than an invalidation of one of its tags, so a
#: response computed from data that a concurrent write has since changed can
#: never survive that write's invalidation.
Fence = tuple[object, ...]


class StoreError(Exception):
    """A store could not answer (unreachable, too slow, or an unexpected reply).

    The middleware treats every store failure as a cache bypass: the request is
    answered by the application as if it were not cached.
    """


def log_store_failure(what: str, exc: Exception) -> None:
    """Log a failed store call: a :class:`StoreError` was already reported by
    its store (once per outage, not per request), anything else is a bug."""
    if isinstance(exc, StoreError):
        logger.debug("asgi-cache: %s failed: %s", what, exc)
    else:
        logger.warning("asgi-cache: %s failed: %r", what, exc, exc_info=exc)


class Store(abc.ABC):
    """A key/value store with per-entry TTLs and tag invalidation."""

    #: Whether :meth:`fence` reads its ``tags``.  A store whose fence is one
    #: store-wide counter says ``False``: a miss then fences it before the
    #: application runs, as always, but names the entry's tags only once it has
    #: a response to store.
    fence_reads_tags: ClassVar[bool] = True

    @abc.abstractmethod
    async def get(self, key: str) -> bytes | None:
        """Return the value stored under ``key``, or ``None`` if absent or expired."""

    @abc.abstractmethod
    async def fence(self, tags: Sequence[str]) -> Fence:
        """Snapshot the generations of ``tags``; pass the result to :meth:`set`."""

    @abc.abstractmethod
    async def set(
        self,
        key: str,
        value: bytes,
        ttl: float,
        tags: Sequence[str] = (),
        fence: Fence | None = None,
    ) -> bool:
        """Store ``value`` for ``ttl`` seconds under ``key``, indexed by ``tags``.

        Returns ``False`` without storing when ``fence`` (taken for the same
        ``tags``) shows that one of the tags was invalidated since, or when
        ``ttl`` is not positive.
        """

    @abc.abstractmethod
    async def delete(self, key: str) -> bool:
        """Remove ``key``; return whether it was present."""

    @abc.abstractmethod
    async def invalidate(self, tags: Sequence[str]) -> int:
        """Remove every entry stored under any of ``tags``; return how many.

        Also advances the tags' generations, so that a ``set`` fenced before
        this call is refused.
        """

    @abc.abstractmethod
    async def clear(self, prefix: str) -> int:
        """Remove every key that starts with ``prefix``; return how many."""

    async def scan(self, prefix: str, visit: Callable[[str, int], None]) -> None:
        """Call ``visit(key, size)`` for every stored value whose key starts with
        ``prefix`` (``size``: the value's length in bytes), its own bookkeeping aside.

        For operators (``python -m asgi_cache stats``), never for requests: it
        walks the whole prefix.  A store that cannot list its keys raises
        ``NotImplementedError``, the default.
        """
        raise NotImplementedError(f"{type(self).__qualname__} cannot list its keys")

    def stats(self) -> dict[str, int]:
        """What the store knows of itself (sizes, evictions); empty by default."""
        return {}

    async def acquire(self, name: str, token: str, ttl: float) -> bool:
        """Take the lock ``name`` for ``ttl`` seconds unless another holder has it.

        Locks let requests in *other processes* wait for one leader to compute
        a response (request coalescing).  A per-process store has no other
        processes to coordinate with, so the default always succeeds; the
        lock expires by itself, so a crashed holder blocks nobody for long.
        """
        return True

    async def release(self, name: str, token: str) -> None:  # noqa: B027 - optional hook
        """Release ``name`` if ``token`` still holds it (never someone else's)."""

    async def wait_released(self, name: str, timeout: float) -> None:  # noqa: B027
        """Return once ``name`` is free, or after ``timeout`` seconds."""

    async def check(self) -> None:  # noqa: B027 - optional hook, a no-op by default
        """Raise :class:`StoreError` if the store cannot answer now.

        Called once at the application's startup, so an unreachable store or a
        wrong password is reported when the server starts rather than
        discovered by the first requests.  It is also the place to open
        connections and fetch what the first requests would otherwise wait for,
        under a bound of the store's own rather than the one requests get
        (:class:`~asgi_cache.stores.redis.RedisStore` does).  A store in process
        memory always answers.
        """

    async def detach(self) -> None:  # noqa: B027 - optional hook, a no-op by default
        """Release what the store holds for the running event loop, which is about to end.

        A store whose connections belong to an event loop keeps one set per loop;
        ``cache.sync`` calls this at the end of a loop it ran itself.  The store
        stays usable from other loops.
        """

    async def aclose(self) -> None:  # noqa: B027 - optional hook, a no-op by default
        """Release connections or other resources; the store is unusable afterwards."""
