"""OpenTelemetry for a :class:`~asgi_cache.Cache` (the ``otel`` extra).

::

    from asgi_cache.otel import instrument

    instrument(cache)  # the global MeterProvider; each request's current span

Two things, each optional:

**Metrics.**  Observable instruments read :meth:`Cache.stats` when the meter
provider collects, so the request path pays nothing for them: the same
figures as :mod:`asgi_cache.prometheus`, named after OpenTelemetry's
guidance (dotted lower case, no ``_total``, the unit apart and annotated).
Every observation carries ``asgi_cache.prefix``, the cache's prefix.

====================================  =======  ==============  ================================
instrument                            kind     unit            meaning
====================================  =======  ==============  ================================
``asgi_cache.hits``                   counter  {request}       answered from a fresh entry
``asgi_cache.misses``                 counter  {request}       forwarded to fill an entry
``asgi_cache.stores``                 counter  {entry}         entries written
``asgi_cache.not_stored``             counter  {response}      misses not stored
``asgi_cache.collapsed``              counter  {request}       answered from another's response
``asgi_cache.stale_served``           counter  {response}      stale entries served
``asgi_cache.refreshes``              counter  {refresh}       background revalidations run
``asgi_cache.invalidations``          counter  {entry}         entries removed by invalidation
``asgi_cache.invalidations_failed``   counter  {invalidation}  refused by the store (retried)
``asgi_cache.invalidations_pending``  up-down  {tag}           tags whose invalidation is owed
``asgi_cache.bypasses``               counter  {request}       not cached, by reason
``asgi_cache.store.errors``           counter  {error}         store calls that failed
``asgi_cache.store.size``             gauge    By              bytes the store holds
``asgi_cache.store.entries``          gauge    {entry}         entries the store holds
``asgi_cache.store.evictions``        counter  {entry}         entries the store evicted
``asgi_cache.near.hits``              counter  {request}       hits from the near cache
``asgi_cache.near.size``              gauge    By              bytes the near cache holds
``asgi_cache.near.entries``           gauge    {entry}         copies the near cache holds
``asgi_cache.near.evictions``         counter  {entry}         near-cache copies evicted
``asgi_cache.near.flushes``           counter  {flush}         times the near cache was emptied
``asgi_cache.near.tracking``          gauge    1               1 while tracking is up
``asgi_cache.purges``                 counter  {purge}         purges the caches in front applied
``asgi_cache.purges_failed``          counter  {purge}         purges not applied at once
``asgi_cache.purges_pending``         gauge    {purger}        purgers that owe a purge
====================================  =======  ==============  ================================

The ``near`` figures are reported with a near cache in front of Redis
(:class:`~asgi_cache.stores.near.NearCache`), the ``purges`` figures with
purgers (:mod:`asgi_cache.purgers`); without them there is no observation.

The reason of a bypass is in the attribute ``asgi_cache.bypass.reason`` (``cookie``,
``store-unavailable``...: the ``Cache-Status`` detail).

The ``asgi_cache.store.*`` figures other than errors describe the whole store,
as far as it reports them (a memory store does, Redis does not): caches
sharing one store report the same values, which is why size and entries are
gauges (summing them over caches or processes means nothing).

**Spans.**  Each request of a cached route marks the span current when it
reaches the middleware: the server span of ``opentelemetry-instrumentation-asgi``
(or of the FastAPI / Starlette instrumentations), which must be outside the
cache middleware.  The middleware makes no span of its own: a hit is the
whole of its server span, and a second span per request would only double
the volume.  Without a recording span, nothing is marked and the request's
``send`` is not even wrapped.  The attributes:

* ``http.response.header.cache_status``: the ``Cache-Status`` field values
  (RFC 9211), under the name OpenTelemetry's HTTP conventions give a captured
  response header.  They hold the store key only when the cache is set to
  show it to clients (``Cache(cache_status_key=True)``): keys never reach a
  span otherwise.
* ``asgi_cache.outcome``: ``hit``, ``stale`` (a stale entry served), ``miss``
  (forwarded to the application, or nothing stored to answer
  ``only-if-cached``), ``collapsed`` (answered from a concurrent request's
  response) or ``bypass``.  OpenTelemetry has no convention for a cache's
  outcome, so these are namespaced.
* ``asgi_cache.fwd`` (why it was forwarded, RFC 9211 §2.2), ``asgi_cache.stored``
  (whether the response was stored), ``asgi_cache.ttl`` (seconds of freshness
  left, negative when stale) and ``asgi_cache.detail``, each when
  ``Cache-Status`` has it.
"""

from __future__ import annotations

import functools
import weakref
from collections.abc import Callable, Iterable, Mapping, Sequence
from types import MappingProxyType

try:
    from opentelemetry import metrics as otel_metrics
    from opentelemetry import trace
    from opentelemetry.metrics import CallbackOptions, Meter, MeterProvider, Observation
    from opentelemetry.util.types import AttributeValue
except ImportError as exc:  # pragma: no cover - exercised in a subprocess
    raise ImportError(
        'asgi_cache.otel needs opentelemetry-api: pip install "asgi-cache[otel]"'
    ) from exc

from starlette.types import Scope

from asgi_cache import __version__
from asgi_cache.cache import Cache
from asgi_cache.observers import OnResponse
from asgi_cache.status import CacheStatus, Detail, Forward, parse

__all__ = ["Instrumentation", "instrument", "span_attributes"]

#: The span attribute holding the ``Cache-Status`` values (semantic conventions'
#: ``http.response.header.<key>``, the header name lower case with ``_`` for ``-``).
CACHE_STATUS_ATTRIBUTE = "http.response.header.cache_status"
PREFIX = "asgi_cache.prefix"
REASON = "asgi_cache.bypass.reason"

# stat in Cache.stats() -> instrument name, unit, description
_COUNTERS = (
    ("hits", "asgi_cache.hits", "{request}", "Requests answered from a fresh cache entry."),
    ("misses", "asgi_cache.misses", "{request}", "Requests forwarded to fill a cache entry."),
    ("stores", "asgi_cache.stores", "{entry}", "Cache entries written."),
    ("not_stored", "asgi_cache.not_stored", "{response}", "Misses whose response was not stored."),
    ("collapsed", "asgi_cache.collapsed", "{request}", "Misses answered from another's response."),
    ("stale_served", "asgi_cache.stale_served", "{response}", "Stale cache entries served."),
    ("refreshes", "asgi_cache.refreshes", "{refresh}", "Background revalidations run."),
    ("invalidations", "asgi_cache.invalidations", "{entry}", "Entries removed by invalidation."),
    (
        "invalidations_failed",
        "asgi_cache.invalidations_failed",
        "{invalidation}",
        "Invalidations the store refused (kept and retried).",
    ),
    ("store_errors", "asgi_cache.store.errors", "{error}", "Store calls that failed."),
    ("evictions", "asgi_cache.store.evictions", "{entry}", "Entries the store evicted."),
    # Reported only when a near cache or purgers are configured.
    ("near_hits", "asgi_cache.near.hits", "{request}", "Hits served from the near cache."),
    ("near_evictions", "asgi_cache.near.evictions", "{entry}", "Near-cache copies evicted."),
    ("near_flushes", "asgi_cache.near.flushes", "{flush}", "Times the near cache was emptied."),
    ("purges", "asgi_cache.purges", "{purge}", "Purges the caches in front applied."),
    (
        "purges_failed",
        "asgi_cache.purges_failed",
        "{purge}",
        "Purges a cache in front did not apply at once (kept and retried).",
    ),
)
_BYPASSES = ("bypasses", "asgi_cache.bypasses", "{request}", "Requests not cached, by reason.")
_PENDING = (
    "invalidations_pending",
    "asgi_cache.invalidations_pending",
    "{tag}",
    "Tags whose invalidation the store has not taken yet.",
)
_GAUGES = (
    ("bytes", "asgi_cache.store.size", "By", "Bytes the cache store holds, as it estimates."),
    ("entries", "asgi_cache.store.entries", "{entry}", "Entries the cache store holds."),
    ("near_bytes", "asgi_cache.near.size", "By", "Bytes the near cache holds."),
    ("near_entries", "asgi_cache.near.entries", "{entry}", "Copies the near cache holds."),
    ("near_tracking", "asgi_cache.near.tracking", "1", "1 while near-cache tracking is up."),
    ("purges_pending", "asgi_cache.purges_pending", "{purger}", "Purgers that owe a purge."),
)

Callback = Callable[[CallbackOptions], Iterable[Observation]]


class _Exported:
    """The caches one meter provider reports on, and its instruments (made once).

    A meter hands back the instrument it already has for a name, dropping the
    new callback: so each provider gets one set of instruments, whose
    callbacks report on every cache instrumented with it.
    """

    def __init__(self, meter: Meter) -> None:
        self.caches: list[Cache] = []
        for stat, name, unit, doc in _COUNTERS:
            meter.create_observable_counter(name, [self._reader(stat)], unit, doc)
        stat, name, unit, doc = _BYPASSES
        meter.create_observable_counter(name, [self._bypasses], unit, doc)
        stat, name, unit, doc = _PENDING
        meter.create_observable_up_down_counter(name, [self._reader(stat)], unit, doc)
        for stat, name, unit, doc in _GAUGES:
            meter.create_observable_gauge(name, [self._reader(stat)], unit, doc)

    def add(self, caches: Sequence[Cache]) -> None:
        prefixes = [cache.prefix for cache in (*self.caches, *caches)]
        if len(set(prefixes)) != len(prefixes):
            raise ValueError(
                f"asgi_cache.otel: caches on one meter provider need distinct prefixes, "
                f"got {prefixes}"
            )
        self.caches += caches

    def remove(self, caches: Sequence[Cache]) -> None:
        self.caches = [cache for cache in self.caches if cache not in caches]

    def _reader(self, stat: str) -> Callback:
        def observe(options: CallbackOptions) -> Iterable[Observation]:
            for cache in self.caches:
                value = cache.stats().get(stat)
                if isinstance(value, (int, float)) and not isinstance(value, bool):
                    yield Observation(value, {PREFIX: cache.prefix})

        return observe

    def _bypasses(self, options: CallbackOptions) -> Iterable[Observation]:
        for cache in self.caches:
            by_reason = cache.stats().get("bypasses")
            if isinstance(by_reason, Mapping):
                for reason, count in sorted(by_reason.items()):
                    yield Observation(count, {PREFIX: cache.prefix, REASON: str(reason)})


class _Global:
    """Stands for the global meter provider, whichever it is at the moment."""


#: Instruments made through the global provider before the application sets
#: it move to the one it sets: so all of them share one entry, never two.
_GLOBAL = _Global()
_exported: weakref.WeakKeyDictionary[MeterProvider | _Global, _Exported] = (
    weakref.WeakKeyDictionary()
)


class Instrumentation:
    """What :func:`instrument` set up; :meth:`close` undoes it."""

    def __init__(self, caches: Sequence[Cache], exported: _Exported | None) -> None:
        self.caches = tuple(caches)
        self._exported = exported

    def close(self) -> None:
        """Stop marking spans and stop reporting these caches' metrics.

        The instruments stay with the meter provider (OpenTelemetry cannot
        take one back); they simply report nothing for these caches.
        """
        for cache in self.caches:
            if _mark_span in cache.observers:
                cache.observers.remove(_mark_span)
        if self._exported is not None:
            self._exported.remove(self.caches)
            self._exported = None


def instrument(
    *caches: Cache,
    meter_provider: MeterProvider | None = None,
    metrics: bool = True,
    spans: bool = True,
) -> Instrumentation:
    """Export ``caches``' counters as metrics and mark their requests' spans.

    :param meter_provider: where the instruments go (the global one,
        ``opentelemetry.metrics.get_meter_provider()``, when omitted; it may
        be set before or after this call).
    :param metrics: ``False``: no metrics, only spans.
    :param spans: ``False``: no span attributes, only metrics.
    :returns: an :class:`Instrumentation` (``close()`` it to stop).
    :raises ValueError: when a cache shares its prefix with another cache
        already reported through the same meter provider (the
        ``asgi_cache.prefix`` attribute would not tell them apart).
    """
    if not caches or not all(isinstance(cache, Cache) for cache in caches):
        raise TypeError(f"asgi_cache.otel.instrument takes Cache objects, got {caches!r}")
    exported = None
    if metrics:
        provider = otel_metrics.get_meter_provider()
        key: MeterProvider | _Global = _GLOBAL
        if meter_provider is not None and meter_provider is not provider:
            key = provider = meter_provider
        exported = _exported.get(key)
        if exported is None:
            meter = provider.get_meter("asgi_cache", __version__)
            exported = _exported[key] = _Exported(meter)
        exported.add(caches)
    if spans:
        for cache in caches:
            if _mark_span not in cache.observers:
                cache.observers.append(_mark_span)
    return Instrumentation(caches, exported)


def _mark_span(scope: Scope) -> OnResponse | None:
    """The request observer: mark the span current as the request arrives, if it records."""
    span = trace.get_current_span()
    if not span.is_recording():
        return None

    def mark(values: list[bytes]) -> None:
        span.set_attributes(span_attributes(values))

    return mark


def span_attributes(values: Sequence[bytes]) -> Mapping[str, AttributeValue]:
    """The span attributes for a response's ``Cache-Status`` field ``values``.

    Memoised (read-only mappings): the values a cache sends are few but for
    ``ttl``, so most requests find theirs already parsed.
    """
    return _attributes(tuple(values))


@functools.lru_cache(maxsize=1024)
def _attributes(values: tuple[bytes, ...]) -> Mapping[str, AttributeValue]:
    if not values:
        return MappingProxyType({})
    text = tuple(value.decode("latin-1") for value in values)
    attributes: dict[str, AttributeValue] = {CACHE_STATUS_ATTRIBUTE: text}
    status = parse(", ".join(text))
    if status is not None:  # else only other caches' members
        attributes["asgi_cache.outcome"] = outcome(status)
        if status.fwd is not None:
            attributes["asgi_cache.fwd"] = status.fwd.value
            attributes["asgi_cache.stored"] = status.stored
        if status.ttl is not None:
            attributes["asgi_cache.ttl"] = status.ttl
        if status.detail is not None:
            attributes["asgi_cache.detail"] = status.detail
    return MappingProxyType(attributes)


_STALE_DETAILS = frozenset(
    {Detail.STALE_WHILE_REVALIDATE.value, Detail.MAX_STALE.value, Detail.STALE_IF_ERROR.value}
)


def outcome(status: CacheStatus) -> str:
    """``hit``, ``stale``, ``miss``, ``collapsed`` or ``bypass``: what the cache did,
    in one word, the way :meth:`Cache.stats` counts it."""
    if status.detail in _STALE_DETAILS:  # a stale hit, or a stale entry standing in
        return "stale"
    if status.hit:
        return "hit"
    if status.fwd is Forward.BYPASS:
        return "bypass"
    if status.collapsed:
        return "collapsed"
    return "miss"
