"""OpenTelemetry export: counters as metrics, each cached request's span marked.

Real SDK providers read back through the SDK's in-memory span exporter and
metric reader; the server spans come from opentelemetry-instrumentation-asgi,
outside the cache middleware as in an instrumented deployment.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from fastapi import FastAPI, Response
from opentelemetry.instrumentation.asgi import OpenTelemetryMiddleware
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind
from starlette.testclient import TestClient

from asgi_cache import Cache, CacheMiddleware, MemoryStore, cached
from asgi_cache.otel import CACHE_STATUS_ATTRIBUTE, instrument, outcome, span_attributes
from asgi_cache.purgers import Purge, Purger
from asgi_cache.status import Detail, Forward, forwarded, hit, parse, stood_in, unanswered
from tests.helpers import Calls, Clock, import_error_without, python_output
from tests.near_support import copy_held, fresh_prefix, near_store
from tests.redis_servers import RedisServer

Attributes = dict[str, Any]


@dataclass
class Telemetry:
    spans: InMemorySpanExporter
    tracer_provider: TracerProvider
    reader: InMemoryMetricReader
    meter_provider: MeterProvider

    def server_spans(self) -> list[Attributes]:
        """The attributes of the server spans finished since the last call."""
        found = [
            dict(span.attributes or {})
            for span in self.spans.get_finished_spans()
            if span.kind is SpanKind.SERVER
        ]
        self.spans.clear()
        return found

    def metrics(self) -> dict[str, list[tuple[Attributes, float]]]:
        """Every data point collected now, by instrument name."""
        data = self.reader.get_metrics_data()
        points: dict[str, list[tuple[Attributes, float]]] = {}
        for resource in [] if data is None else data.resource_metrics:
            for scope in resource.scope_metrics:
                for metric in scope.metrics:
                    for point in metric.data.data_points:
                        value = point.value  # type: ignore[union-attr]
                        points.setdefault(metric.name, []).append((dict(point.attributes), value))
        return points


@pytest.fixture
def telemetry() -> Iterator[Telemetry]:
    spans = InMemorySpanExporter()
    tracer_provider = TracerProvider()
    tracer_provider.add_span_processor(SimpleSpanProcessor(spans))
    reader = InMemoryMetricReader()
    meter_provider = MeterProvider(metric_readers=[reader])
    yield Telemetry(spans, tracer_provider, reader, meter_provider)
    meter_provider.shutdown()
    tracer_provider.shutdown()


class Origin:
    """What the application answers: ``failing`` makes ``/flaky`` answer 503."""

    def __init__(self) -> None:
        self.calls = Calls()
        self.failing = False


def build(
    cache: Cache, telemetry: Telemetry, origin: Origin | None = None, **traced: Any
) -> TestClient:
    """A FastAPI app behind the cache, behind OpenTelemetry's ASGI middleware."""
    origin = origin or Origin()
    app = FastAPI()
    app.add_middleware(CacheMiddleware, cache=cache)

    @app.get("/page/{n}")
    @cached(ttl=10, stale_while_revalidate=30)
    async def page(n: int) -> dict[str, int]:
        origin.calls["page"] += 1
        return {"n": n}

    @app.get("/flaky")
    @cached(ttl=10, stale_if_error=60)
    async def flaky() -> Response:
        origin.calls["flaky"] += 1
        return Response("down" if origin.failing else "up", 503 if origin.failing else 200)

    @app.get("/plain")
    async def plain() -> dict[str, bool]:
        return {"cached": False}

    return TestClient(
        OpenTelemetryMiddleware(app, tracer_provider=telemetry.tracer_provider, **traced)
    )


def cache_attributes(span: Attributes) -> Attributes:
    """The attributes the cache set on a span."""
    return {
        name: value
        for name, value in span.items()
        if name.startswith("asgi_cache.") or name == CACHE_STATUS_ATTRIBUTE
    }


# --- spans ----------------------------------------------------------------------------------------


def test_a_miss_then_a_hit_mark_their_server_spans(telemetry: Telemetry) -> None:
    cache = Cache(MemoryStore(), clock=Clock())
    instrument(cache, meter_provider=telemetry.meter_provider)
    with build(cache, telemetry) as client:
        first = client.get("/page/1")
        second = client.get("/page/1")
    miss, hit_span = telemetry.server_spans()
    assert cache_attributes(miss) == {
        CACHE_STATUS_ATTRIBUTE: (first.headers["cache-status"],),
        "asgi_cache.outcome": "miss",
        "asgi_cache.fwd": "uri-miss",
        "asgi_cache.stored": True,
    }
    assert cache_attributes(hit_span) == {
        CACHE_STATUS_ATTRIBUTE: (second.headers["cache-status"],),
        "asgi_cache.outcome": "hit",
        "asgi_cache.ttl": 10,
    }


def test_the_header_attribute_is_the_one_the_asgi_instrumentation_captures(
    telemetry: Telemetry,
) -> None:
    captured = Cache(MemoryStore(), prefix="captured")
    with build(captured, telemetry, http_capture_headers_server_response=["cache-status"]) as c:
        c.get("/page/1")
    ours = Cache(MemoryStore(), prefix="ours")
    instrument(ours, meter_provider=telemetry.meter_provider)
    with build(ours, telemetry) as client:
        client.get("/page/1")
    by_instrumentation, by_cache = telemetry.server_spans()
    assert by_instrumentation[CACHE_STATUS_ATTRIBUTE] == by_cache[CACHE_STATUS_ATTRIBUTE]


def test_a_bypass_marks_the_span_with_its_reason(telemetry: Telemetry) -> None:
    cache = Cache(MemoryStore())
    instrument(cache, meter_provider=telemetry.meter_provider)
    with build(cache, telemetry) as client:
        client.get("/page/1", headers={"authorization": "Bearer x"})
    (span,) = telemetry.server_spans()
    assert span["asgi_cache.outcome"] == "bypass"
    assert span["asgi_cache.fwd"] == "bypass"
    assert span["asgi_cache.detail"] == "authorization"
    assert span["asgi_cache.stored"] is False


def test_a_stale_while_revalidate_hit_marks_the_span_stale(telemetry: Telemetry) -> None:
    clock = Clock()
    cache = Cache(MemoryStore(), clock=clock)
    instrument(cache, meter_provider=telemetry.meter_provider)
    with build(cache, telemetry) as client:
        client.get("/page/1")
        clock.advance(15)
        stale = client.get("/page/1")
    assert parse(stale.headers["cache-status"]) is not None
    span = telemetry.server_spans()[1]
    assert span["asgi_cache.outcome"] == "stale"
    assert span["asgi_cache.detail"] == Detail.STALE_WHILE_REVALIDATE.value
    assert span["asgi_cache.ttl"] == -5


def test_a_stale_entry_standing_in_for_a_failing_application_marks_the_span_stale(
    telemetry: Telemetry,
) -> None:
    clock, origin = Clock(), Origin()
    cache = Cache(MemoryStore(), clock=clock)
    instrument(cache, meter_provider=telemetry.meter_provider)
    with build(cache, telemetry, origin) as client:
        client.get("/flaky")
        clock.advance(20)
        origin.failing = True
        answer = client.get("/flaky")
    assert (answer.status_code, answer.text) == (200, "up")
    span = telemetry.server_spans()[1]
    assert span["asgi_cache.outcome"] == "stale"
    assert span["asgi_cache.detail"] == Detail.STALE_IF_ERROR.value
    assert span["asgi_cache.fwd"] == "stale"


def test_a_disabled_cache_marks_its_spans_as_bypassed(telemetry: Telemetry) -> None:
    cache = Cache(MemoryStore(), enabled=False)
    instrument(cache, meter_provider=telemetry.meter_provider)
    with build(cache, telemetry) as client:
        client.get("/page/1")
    (span,) = telemetry.server_spans()
    assert (span["asgi_cache.outcome"], span["asgi_cache.detail"]) == ("bypass", "disabled")


def test_a_route_that_is_not_cached_leaves_its_span_alone(telemetry: Telemetry) -> None:
    cache = Cache(MemoryStore())
    instrument(cache, meter_provider=telemetry.meter_provider)
    with build(cache, telemetry) as client:
        assert client.get("/plain").status_code == 200
    (span,) = telemetry.server_spans()
    assert cache_attributes(span) == {}


def test_the_store_key_reaches_a_span_only_when_clients_are_shown_it(
    telemetry: Telemetry,
) -> None:
    hidden = Cache(MemoryStore(), prefix="hidden")
    shown = Cache(MemoryStore(), prefix="shown", cache_status_key=True)
    for cache in (hidden, shown):
        instrument(cache, meter_provider=telemetry.meter_provider)
        with build(cache, telemetry) as client:
            client.get("/page/1")
    without_key, with_key = telemetry.server_spans()
    assert not any("key=" in value for value in without_key[CACHE_STATUS_ATTRIBUTE])
    assert parse(with_key[CACHE_STATUS_ATTRIBUTE][0]).key.startswith("shown:")  # type: ignore[union-attr]


def test_spans_false_marks_no_span(telemetry: Telemetry) -> None:
    cache = Cache(MemoryStore())
    instrument(cache, meter_provider=telemetry.meter_provider, spans=False)
    assert cache.observers == []
    with build(cache, telemetry) as client:
        assert client.get("/page/1").status_code == 200
    (span,) = telemetry.server_spans()
    assert cache_attributes(span) == {}


def test_without_a_server_span_requests_are_served_as_usual() -> None:
    cache = Cache(MemoryStore())
    instrument(cache, meter_provider=MeterProvider())
    app = FastAPI()
    app.add_middleware(CacheMiddleware, cache=cache)

    @app.get("/page")
    @cached(ttl=10)
    async def page() -> dict[str, int]:
        return {"n": 1}

    with TestClient(app) as client:
        statuses = [parse(client.get("/page").headers["cache-status"]) for _ in range(2)]
    assert [(s.hit, s.stored) for s in statuses if s is not None] == [(False, True), (True, False)]


def test_close_stops_marking_spans_and_reporting_metrics(telemetry: Telemetry) -> None:
    cache = Cache(MemoryStore(), prefix="closed")
    instrumentation = instrument(cache, meter_provider=telemetry.meter_provider)
    instrumentation.close()
    assert cache.observers == []
    with build(cache, telemetry) as client:
        client.get("/page/1")
    (span,) = telemetry.server_spans()
    assert cache_attributes(span) == {}
    assert "asgi_cache.hits" not in telemetry.metrics()


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (hit(42), "hit"),
        (hit(-5, Detail.STALE_WHILE_REVALIDATE), "stale"),
        (hit(-30, Detail.MAX_STALE), "stale"),
        (stood_in(-20, 503), "stale"),
        (forwarded(Forward.URI_MISS, stored=True), "miss"),
        (forwarded(Forward.VARY_MISS, stored=True), "miss"),
        (forwarded(Forward.STALE, stored=True, fwd_status=304), "miss"),
        (forwarded(Forward.REQUEST, stored=True), "miss"),
        (forwarded(Forward.URI_MISS, Detail.SET_COOKIE), "miss"),
        (forwarded(Forward.URI_MISS, collapsed=True), "collapsed"),
        (forwarded(Forward.BYPASS, "cookie"), "bypass"),
        (unanswered(Detail.ONLY_IF_CACHED), "miss"),
    ],
)
def test_every_cache_status_has_one_outcome(value: bytes, expected: str) -> None:
    status = parse(value)
    assert status is not None
    assert outcome(status) == expected


def test_other_caches_members_are_kept_but_not_read_as_ours() -> None:
    cdn = b"ExampleCDN; fwd=uri-miss; stored"
    assert span_attributes([cdn]) == {CACHE_STATUS_ATTRIBUTE: (cdn.decode(),)}
    ours = span_attributes([hit(3), cdn])
    assert ours["asgi_cache.outcome"] == "hit"


# --- metrics --------------------------------------------------------------------------------------

#: Cache.stats() key -> instrument name
NAMES = {
    "hits": "asgi_cache.hits",
    "misses": "asgi_cache.misses",
    "stores": "asgi_cache.stores",
    "not_stored": "asgi_cache.not_stored",
    "collapsed": "asgi_cache.collapsed",
    "stale_served": "asgi_cache.stale_served",
    "refreshes": "asgi_cache.refreshes",
    "invalidations": "asgi_cache.invalidations",
    "invalidations_failed": "asgi_cache.invalidations_failed",
    "invalidations_pending": "asgi_cache.invalidations_pending",
    "store_errors": "asgi_cache.store.errors",
    "bytes": "asgi_cache.store.size",
    "entries": "asgi_cache.store.entries",
    "evictions": "asgi_cache.store.evictions",
}


def test_every_figure_of_stats_is_exported_with_its_value(telemetry: Telemetry) -> None:
    clock = Clock()
    cache = Cache(MemoryStore(max_entries=2), prefix="shop", clock=clock)
    instrument(cache, meter_provider=telemetry.meter_provider)
    with build(cache, telemetry) as client:
        for path in ("/page/1", "/page/1", "/page/2", "/page/3", "/page/3"):
            client.get(path)
        client.get("/page/1", headers={"cookie": "session=1"})
        clock.advance(15)
        client.get("/page/3")  # stale, refreshed in the background
        client.get("/flaky")
        client.get("/page/4", headers={"authorization": "Bearer x"})
    stats = cache.stats()
    points = telemetry.metrics()
    assert set(NAMES) | {"bypasses"} == set(stats)
    for stat, name in NAMES.items():
        assert points[name] == [({"asgi_cache.prefix": "shop"}, stats[stat])], name
    assert sorted(points["asgi_cache.bypasses"], key=lambda p: str(p[0])) == [
        ({"asgi_cache.prefix": "shop", "asgi_cache.bypass.reason": "authorization"}, 1),
        ({"asgi_cache.prefix": "shop", "asgi_cache.bypass.reason": "cookie"}, 1),
    ]
    assert stats["hits"] == 2 and stats["evictions"] == 2 and stats["stale_served"] == 1


def test_values_are_read_when_the_provider_collects(telemetry: Telemetry) -> None:
    cache = Cache(MemoryStore(), prefix="live")
    instrument(cache, meter_provider=telemetry.meter_provider)
    with build(cache, telemetry) as client:
        client.get("/page/1")
        before = telemetry.metrics()["asgi_cache.hits"]
        client.get("/page/1")
        client.get("/page/1")
    after = telemetry.metrics()["asgi_cache.hits"]
    assert (before, after) == (
        [({"asgi_cache.prefix": "live"}, 0)],
        [({"asgi_cache.prefix": "live"}, 2)],
    )


def test_instruments_carry_units_and_the_right_kinds(telemetry: Telemetry) -> None:
    instrument(Cache(MemoryStore()), meter_provider=telemetry.meter_provider)
    data = telemetry.reader.get_metrics_data()
    assert data is not None
    metrics = {
        metric.name: metric
        for resource in data.resource_metrics
        for scope in resource.scope_metrics
        for metric in scope.metrics
    }
    assert metrics["asgi_cache.hits"].unit == "{request}"
    assert metrics["asgi_cache.store.size"].unit == "By"
    kinds = {name: type(metric.data).__name__ for name, metric in metrics.items()}
    assert kinds["asgi_cache.hits"] == "Sum"
    assert metrics["asgi_cache.hits"].data.is_monotonic  # type: ignore[union-attr]
    assert metrics["asgi_cache.invalidations_pending"].data.is_monotonic is False  # type: ignore[union-attr]
    assert kinds["asgi_cache.store.entries"] == "Gauge"


def test_several_caches_report_through_one_provider(telemetry: Telemetry) -> None:
    first, second = Cache(MemoryStore(), prefix="a"), Cache(MemoryStore(), prefix="b")
    instrument(first, meter_provider=telemetry.meter_provider)
    instrument(second, meter_provider=telemetry.meter_provider)
    with build(first, telemetry) as client:
        client.get("/page/1")
        client.get("/page/1")
    assert sorted(telemetry.metrics()["asgi_cache.hits"], key=lambda p: str(p[0])) == [
        ({"asgi_cache.prefix": "a"}, 1),
        ({"asgi_cache.prefix": "b"}, 0),
    ]


GLOBAL_PROVIDER = """
from opentelemetry import metrics
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from asgi_cache import Cache
from asgi_cache.otel import instrument

instrument(Cache(prefix="before"))
reader = InMemoryMetricReader()
metrics.set_meter_provider(MeterProvider(metric_readers=[reader]))
instrument(Cache(prefix="after"))
for resource in reader.get_metrics_data().resource_metrics:
    for scope in resource.scope_metrics:
        for metric in scope.metrics:
            if metric.name == "asgi_cache.hits":
                for point in metric.data.data_points:
                    print(point.attributes["asgi_cache.prefix"])
"""


def test_the_global_provider_reports_caches_instrumented_before_and_after_it_is_set() -> None:
    # In a fresh interpreter: the global provider can be set once per process.
    printed = python_output(GLOBAL_PROVIDER)
    assert sorted(printed.split()) == ["after", "before"]


def test_caches_with_one_prefix_cannot_share_a_provider(telemetry: Telemetry) -> None:
    instrument(Cache(prefix="same"), meter_provider=telemetry.meter_provider)
    with pytest.raises(ValueError, match="distinct prefixes"):
        instrument(Cache(prefix="same"), meter_provider=telemetry.meter_provider)


def test_instrument_takes_caches_only() -> None:
    with pytest.raises(TypeError, match="Cache objects"):
        instrument()
    with pytest.raises(TypeError, match="Cache objects"):
        instrument("redis://localhost")  # type: ignore[arg-type]


def test_without_opentelemetry_the_import_error_says_what_to_install() -> None:
    message = import_error_without("opentelemetry", "asgi_cache.otel")
    assert 'pip install "asgi-cache[otel]"' in message


class Applied(Purger):
    """A purger of the application's own that applies every purge at once."""

    name = "applied"

    async def purge(self, purge: Purge) -> None:
        return None


@pytest.mark.anyio
async def test_purges_are_exported_when_the_cache_has_purgers(telemetry: Telemetry) -> None:
    cache = Cache(MemoryStore(), prefix="front", purgers=[Applied()], purge_wait=1)
    instrument(cache, meter_provider=telemetry.meter_provider)
    await cache.invalidate("sale")
    points = telemetry.metrics()
    label = {"asgi_cache.prefix": "front"}
    assert points["asgi_cache.purges"] == [(label, 1)]
    assert points["asgi_cache.purges_failed"] == [(label, 0)]
    assert points["asgi_cache.purges_pending"] == [(label, 0)]


def test_without_purgers_or_a_near_cache_their_figures_are_not_observed(
    telemetry: Telemetry,
) -> None:
    instrument(Cache(MemoryStore()), meter_provider=telemetry.meter_provider)
    names = set(telemetry.metrics())
    assert "asgi_cache.hits" in names
    assert not {n for n in names if n.startswith(("asgi_cache.near", "asgi_cache.purges"))}


@pytest.mark.anyio
async def test_a_near_cache_exports_its_figures(
    telemetry: Telemetry, redis_server: RedisServer
) -> None:
    prefix = fresh_prefix()
    store = near_store(redis_server.url, prefix)
    cache = Cache(store, prefix=prefix)
    instrument(cache, meter_provider=telemetry.meter_provider)
    try:
        await store.set(f"{prefix}:page:1", b"x" * 100, 60, [], None)
        await copy_held(store, f"{prefix}:page:1")  # a copy is kept, and served
        stats = cache.stats()
        points = telemetry.metrics()
        label = {"asgi_cache.prefix": prefix}
        assert stats["near_hits"] >= 1
        assert points["asgi_cache.near.hits"] == [(label, stats["near_hits"])]
        assert points["asgi_cache.near.entries"] == [(label, stats["near_entries"])]
        assert points["asgi_cache.near.size"] == [(label, stats["near_bytes"])]
        assert points["asgi_cache.near.tracking"] == [(label, 1)]
    finally:
        await store.aclose()
