"""Prometheus metrics for a :class:`~asgi_cache.Cache` (the ``prometheus`` extra).

::

    from asgi_cache.prometheus import register

    register(cache)  # on prometheus_client's default REGISTRY

A custom collector reads :meth:`Cache.stats` when Prometheus scrapes, so the
request path pays nothing for metrics.  Every sample carries a ``cache`` label
with the cache's prefix.

=========================================  =======  =========================================
metric                                     type     meaning
=========================================  =======  =========================================
``asgi_cache_hits_total``                  counter  answered from a fresh entry
``asgi_cache_misses_total``                counter  forwarded to fill an entry
``asgi_cache_stores_total``                counter  entries written
``asgi_cache_not_stored_total``            counter  misses whose response was not stored
``asgi_cache_collapsed_total``             counter  misses answered from another's response
``asgi_cache_stale_served_total``          counter  stale entries served
``asgi_cache_refreshes_total``             counter  background revalidations run
``asgi_cache_invalidations_total``         counter  entries removed by invalidation
``asgi_cache_store_errors_total``          counter  store calls that failed
``asgi_cache_invalidations_failed_total``  counter  invalidations the store refused (retried)
``asgi_cache_invalidations_pending``       gauge    tags whose invalidation is still owed
``asgi_cache_bypasses_total``              counter  requests not cached, by ``reason``
``asgi_cache_bytes``                       gauge    bytes the store holds (if it says)
``asgi_cache_entries``                     gauge    entries the store holds (if it says)
``asgi_cache_evictions_total``             counter  entries evicted (if the store says)
=========================================  =======  =========================================

The store's own figures describe the whole store: caches sharing one store
under different prefixes each report the same ``bytes`` and ``entries``.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Mapping

try:
    from prometheus_client import REGISTRY, CollectorRegistry
    from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
except ImportError as exc:  # pragma: no cover - exercised in a subprocess
    raise ImportError(
        'asgi_cache.prometheus needs prometheus_client: pip install "asgi-cache[prometheus]"'
    ) from exc

from asgi_cache.cache import Cache

__all__ = ["CacheCollector", "register"]

_COUNTERS = (
    ("hits", "Requests answered from a fresh cache entry."),
    ("misses", "Requests forwarded to the application to fill a cache entry."),
    ("stores", "Cache entries written."),
    ("not_stored", "Misses whose response could not be stored."),
    ("collapsed", "Misses answered from another request's response."),
    ("stale_served", "Stale entries served (while revalidating, or on error)."),
    ("refreshes", "Background revalidations run."),
    ("invalidations", "Cache entries removed by invalidation."),
    ("store_errors", "Store calls that failed (the request went on uncached)."),
    ("invalidations_failed", "Invalidations the store refused (kept and retried)."),
)
# Reported only when a near cache or purgers are configured.
_OPT_COUNTERS = (
    ("near_hits", "Hits served from the near cache (also counted in hits)."),
    ("near_evictions", "Near-cache copies evicted to make room."),
    ("near_flushes", "Times the near cache was emptied (tracking lost or re-established)."),
    ("purges", "Purges the caches in front applied."),
    ("purges_failed", "Purges a cache in front did not apply at once (kept and retried)."),
)
_OPT_GAUGES = (
    ("near_bytes", "Bytes the near cache holds."),
    ("near_entries", "Copies the near cache holds."),
    ("near_tracking", "1 while the near cache's invalidation tracking is established."),
    ("purges_pending", "Purgers that owe a purge."),
)
_BYPASSES = "Requests not served from nor stored into the cache, by reason."
_BY_REASON = ["cache", "reason"]
_GAUGES = (  # reported by the store, when it can
    ("bytes", "Bytes the cache store holds, as the store estimates them."),
    ("entries", "Entries the cache store holds."),
)
_PENDING = (("invalidations_pending", "Tags whose invalidation the store has not taken yet."),)
_EVICTIONS = "Entries the cache store evicted to make room."
_STORE_STATS = frozenset(
    {
        "bytes",
        "entries",
        "evictions",
        *(s for s, _ in _OPT_COUNTERS),
        *(s for s, _ in _OPT_GAUGES),
    }
)

_METRIC_NAME = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*")


class CacheCollector:
    """Reports the counters of ``caches`` whenever a registry collects.

    :func:`register` makes one for a single cache.  To export several caches on
    one registry, register one collector for all of them (their prefixes, the
    ``cache`` label, must differ): metric names are unique per registry.
    """

    def __init__(self, caches: Iterable[Cache], *, namespace: str = "asgi_cache") -> None:
        if not isinstance(namespace, str) or not _METRIC_NAME.fullmatch(namespace):
            raise ValueError(f"namespace must be a Prometheus metric name, not {namespace!r}")
        self.namespace = namespace
        self.caches = tuple(caches)
        prefixes = [cache.prefix for cache in self.caches]
        if len(set(prefixes)) != len(prefixes):
            raise ValueError(f"CacheCollector: caches need distinct prefixes, got {prefixes}")

    def describe(self) -> list[Metric]:
        """The metric families, without samples (so a registry can check for clashes)."""
        return [family for _, family in self._families()]

    def collect(self) -> Iterator[Metric]:
        """Read every cache's :meth:`Cache.stats` now and yield the families."""
        snapshots = [(cache.prefix, cache.stats()) for cache in self.caches]
        for stat, family in self._families():
            for prefix, values in snapshots:
                value = values.get(stat)
                if isinstance(value, Mapping):  # bypasses, by reason
                    for reason, count in sorted(value.items()):
                        family.add_metric([prefix, str(reason)], count)
                elif isinstance(value, (int, float)) and not isinstance(value, bool):
                    family.add_metric([prefix], value)
            if family.samples or stat not in _STORE_STATS:  # reported only when configured
                yield family

    def _families(self) -> list[tuple[str, CounterMetricFamily | GaugeMetricFamily]]:
        name = self.namespace
        cache = ["cache"]
        return [
            *((s, CounterMetricFamily(f"{name}_{s}", doc, labels=cache)) for s, doc in _COUNTERS),
            ("bypasses", CounterMetricFamily(f"{name}_bypasses", _BYPASSES, labels=_BY_REASON)),
            *((s, GaugeMetricFamily(f"{name}_{s}", doc, labels=cache)) for s, doc in _PENDING),
            *((s, GaugeMetricFamily(f"{name}_{s}", doc, labels=cache)) for s, doc in _GAUGES),
            ("evictions", CounterMetricFamily(f"{name}_evictions", _EVICTIONS, labels=cache)),
            *((s, CounterMetricFamily(f"{name}_{s}", d, labels=cache)) for s, d in _OPT_COUNTERS),
            *((s, GaugeMetricFamily(f"{name}_{s}", d, labels=cache)) for s, d in _OPT_GAUGES),
        ]


def register(
    cache: Cache,
    *,
    registry: CollectorRegistry | None = None,
    namespace: str = "asgi_cache",
) -> CacheCollector:
    """Export ``cache``'s counters to Prometheus through ``registry``.

    :param registry: where to register (prometheus_client's default ``REGISTRY``
        when omitted).
    :param namespace: the metric name prefix (``asgi_cache_hits_total``).
    :returns: the registered collector (``registry.unregister`` it to stop).
    :raises ValueError: when ``registry`` already has these metric names, for
        instance from another cache: give it another ``namespace``, or register
        one :class:`CacheCollector` for all the caches.
    """
    collector = CacheCollector([cache], namespace=namespace)
    (REGISTRY if registry is None else registry).register(collector)
    return collector
