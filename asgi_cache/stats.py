"""Counters of what the cache did, for ``Cache.stats()`` and metrics exporters.

Plain integer attributes bumped on the request path (an attribute increment
is the cheapest thing Python does), read as a snapshot by :meth:`snapshot`.
"""

from __future__ import annotations

from collections import Counter

from asgi_cache.stores.base import log_store_failure

__all__ = ["CacheStats"]


class CacheStats:
    """What one :class:`~asgi_cache.Cache` did since it was created."""

    __slots__ = (
        "bypasses",
        "collapsed",
        "hits",
        "invalidations",
        "invalidations_failed",
        "misses",
        "not_stored",
        "refreshes",
        "stale_served",
        "store_errors",
        "stores",
    )

    def __init__(self) -> None:
        self.hits = 0  #: answered from a fresh entry
        self.misses = 0  #: forwarded to the application to fill an entry
        self.stores = 0  #: entries written
        self.not_stored = 0  #: misses whose response could not be stored
        self.collapsed = 0  #: misses answered from another request's response
        self.stale_served = 0  #: stale entries served (while revalidating, or on error)
        self.refreshes = 0  #: background revalidations run
        self.invalidations = 0  #: entries removed by invalidation
        self.invalidations_failed = 0  #: invalidations the store refused (kept and retried)
        self.store_errors = 0  #: store calls that failed (the request went on uncached)
        self.bypasses: Counter[str] = Counter()  #: requests not cached, by reason

    def store_failed(self, operation: str, exc: Exception) -> None:
        """Count and log (see :func:`log_store_failure`) a failed store call."""
        self.store_errors += 1
        log_store_failure(f"store {operation}", exc)

    def snapshot(self) -> dict[str, object]:
        """The counters as a plain dict (``bypasses`` as a dict by reason)."""
        values: dict[str, object] = {
            name: getattr(self, name) for name in self.__slots__ if name != "bypasses"
        }
        values["bypasses"] = dict(self.bypasses)
        return values
