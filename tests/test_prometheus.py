"""Prometheus export: the cache's counters, read at scrape time."""

from __future__ import annotations

import pytest
from fastapi import FastAPI
from prometheus_client import REGISTRY, CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from asgi_cache import Cache, CacheMiddleware, MemoryStore, cached
from asgi_cache.prometheus import CacheCollector, register
from asgi_cache.purgers import Purge, Purger
from asgi_cache.stores.redis import RedisStore
from tests.helpers import MakeCache, client_for, import_error_without
from tests.near_support import copy_held, fresh_prefix, near_store
from tests.redis_servers import RedisServer

pytestmark = pytest.mark.anyio


def build(cache: Cache) -> FastAPI:
    app = FastAPI()
    app.add_middleware(CacheMiddleware, cache=cache)

    @app.get("/page/{n}")
    @cached(ttl=60)
    async def page(n: int) -> dict[str, int]:
        return {"n": n}

    return app


async def get(app: FastAPI, *paths: str, headers: dict[str, str] | None = None) -> None:
    async with client_for(app) as client:
        for path in paths:
            assert (await client.get(path, headers=headers)).status_code == 200


def scrape(registry: CollectorRegistry) -> str:
    return generate_latest(registry).decode()


async def test_hits_misses_and_stores_are_exported_under_the_cache_prefix(
    make_cache: MakeCache,
) -> None:
    cache = make_cache()
    registry = CollectorRegistry()
    register(cache, registry=registry)
    await get(build(cache), "/page/1", "/page/1", "/page/1", "/page/2")
    text = scrape(registry)
    label = f'{{cache="{cache.prefix}"}}'
    assert f"asgi_cache_hits_total{label} 2.0" in text
    assert f"asgi_cache_misses_total{label} 2.0" in text
    assert f"asgi_cache_stores_total{label} 2.0" in text
    assert f"asgi_cache_invalidations_total{label} 0.0" in text
    assert "# TYPE asgi_cache_hits_total counter" in text


async def test_every_counter_is_exported(make_cache: MakeCache) -> None:
    cache = make_cache()
    registry = CollectorRegistry()
    register(cache, registry=registry)
    names = {family.name for family in text_string_to_metric_families(scrape(registry))}
    expected = {
        f"asgi_cache_{stat}"
        for stat in (
            "hits",
            "misses",
            "stores",
            "not_stored",
            "collapsed",
            "stale_served",
            "refreshes",
            "invalidations",
            "store_errors",
            "invalidations_failed",
            "invalidations_pending",
            "bypasses",
        )
    }
    assert expected <= names


async def test_values_are_read_at_scrape_time() -> None:
    cache = Cache()
    registry = CollectorRegistry()
    register(cache, registry=registry)
    app = build(cache)
    await get(app, "/page/1")
    before = registry.get_sample_value("asgi_cache_hits_total", {"cache": cache.prefix})
    await get(app, "/page/1", "/page/1")
    after = registry.get_sample_value("asgi_cache_hits_total", {"cache": cache.prefix})
    assert (before, after) == (0.0, 2.0)


async def test_bypasses_are_labelled_by_reason() -> None:
    cache = Cache(prefix="shop")
    registry = CollectorRegistry()
    register(cache, registry=registry)
    await get(build(cache), "/page/1", "/page/1", headers={"cookie": "session=1"})
    assert 'asgi_cache_bypasses_total{cache="shop",reason="cookie"} 2.0' in scrape(registry)


async def test_a_memory_store_exports_bytes_entries_and_evictions() -> None:
    store = MemoryStore(max_entries=1)
    cache = Cache(store, prefix="mem")
    registry = CollectorRegistry()
    register(cache, registry=registry)
    await get(build(cache), "/page/1", "/page/2")
    labels = {"cache": "mem"}
    assert registry.get_sample_value("asgi_cache_entries", labels) == 1.0
    assert registry.get_sample_value("asgi_cache_evictions_total", labels) == 1.0
    assert registry.get_sample_value("asgi_cache_bytes", labels) == float(store.stats()["bytes"])
    assert "# TYPE asgi_cache_bytes gauge" in scrape(registry)


async def test_a_store_that_reports_no_sizes_exports_no_size_metrics(
    redis_store: RedisStore,
) -> None:
    registry = CollectorRegistry()
    register(Cache(redis_store), registry=registry)
    text = scrape(registry)
    assert "asgi_cache_hits_total" in text
    for name in ("asgi_cache_bytes", "asgi_cache_entries", "asgi_cache_evictions"):
        assert name not in text


def test_the_namespace_prefixes_every_metric_name() -> None:
    registry = CollectorRegistry()
    register(Cache(prefix="p"), registry=registry, namespace="shop_cache")
    text = scrape(registry)
    assert 'shop_cache_hits_total{cache="p"} 0.0' in text
    assert "asgi_cache_" not in text


@pytest.mark.parametrize("namespace", ["", "1st", "has-dash", "a b"])
def test_a_namespace_that_is_no_metric_name_is_refused(namespace: str) -> None:
    with pytest.raises(ValueError, match="namespace"):
        register(Cache(), registry=CollectorRegistry(), namespace=namespace)


def test_a_second_cache_under_the_same_names_is_refused() -> None:
    registry = CollectorRegistry()
    register(Cache(prefix="a"), registry=registry)
    with pytest.raises(ValueError, match="asgi_cache_hits"):
        register(Cache(prefix="b"), registry=registry)
    register(Cache(prefix="b"), registry=registry, namespace="other_cache")


async def test_one_collector_exports_several_caches() -> None:
    first, second = Cache(prefix="a"), Cache(prefix="b")
    registry = CollectorRegistry()
    registry.register(CacheCollector([first, second]))
    await get(build(first), "/page/1", "/page/1")
    text = scrape(registry)
    assert 'asgi_cache_hits_total{cache="a"} 1.0' in text
    assert 'asgi_cache_hits_total{cache="b"} 0.0' in text
    assert text.count("# TYPE asgi_cache_hits_total counter") == 1


def test_caches_with_the_same_prefix_cannot_share_a_collector() -> None:
    with pytest.raises(ValueError, match="distinct prefixes"):
        CacheCollector([Cache(prefix="a"), Cache(prefix="a")])


def test_unregistering_stops_the_export() -> None:
    registry = CollectorRegistry()
    collector = register(Cache(), registry=registry)
    registry.unregister(collector)
    assert "asgi_cache_" not in scrape(registry)


def test_the_default_registry_is_used_when_none_is_given() -> None:
    cache = Cache(prefix="default-registry")
    collector = register(cache)
    try:
        assert REGISTRY.get_sample_value("asgi_cache_hits_total", {"cache": cache.prefix}) == 0
    finally:
        REGISTRY.unregister(collector)


def test_the_export_parses_as_prometheus_text() -> None:
    registry = CollectorRegistry()
    register(Cache(MemoryStore(), prefix='quote"and\\slash'), registry=registry)
    families = list(text_string_to_metric_families(scrape(registry)))
    hits = next(family for family in families if family.name == "asgi_cache_hits")
    assert hits.samples[0].labels == {"cache": 'quote"and\\slash'}


def test_without_prometheus_client_the_import_error_says_what_to_install() -> None:
    message = import_error_without("prometheus_client", "asgi_cache.prometheus")
    assert 'pip install "asgi-cache[prometheus]"' in message


class Applied(Purger):
    """A purger of the application's own that applies every purge at once."""

    name = "applied"

    async def purge(self, purge: Purge) -> None:
        return None


class Refused(Purger):
    """A purger whose cache in front refuses every purge."""

    name = "refused"

    async def purge(self, purge: Purge) -> None:
        raise ConnectionError("the purge API is down")


def families(registry: CollectorRegistry) -> set[str]:
    return {family.name for family in text_string_to_metric_families(scrape(registry))}


async def test_purges_are_exported_when_the_cache_has_purgers() -> None:
    cache = Cache(MemoryStore(), purgers=[Applied()], purge_wait=1)
    registry = CollectorRegistry()
    register(cache, registry=registry)
    await cache.invalidate("sale")
    await cache.invalidate("products")
    text = scrape(registry)
    label = f'{{cache="{cache.prefix}"}}'
    assert f"asgi_cache_purges_total{label} 2.0" in text
    assert f"asgi_cache_purges_failed_total{label} 0.0" in text
    assert f"asgi_cache_purges_pending{label} 0.0" in text


async def test_a_failing_purger_shows_as_failed_and_pending() -> None:
    cache = Cache(MemoryStore(), purgers=[Refused()], purge_wait=1)
    registry = CollectorRegistry()
    register(cache, registry=registry)
    await cache.invalidate("sale")
    text = scrape(registry)
    label = f'{{cache="{cache.prefix}"}}'
    assert f"asgi_cache_purges_total{label} 0.0" in text
    assert f"asgi_cache_purges_failed_total{label} 1.0" in text
    assert f"asgi_cache_purges_pending{label} 1.0" in text
    await cache.aclose()


async def test_without_purgers_or_a_near_cache_their_figures_are_absent() -> None:
    registry = CollectorRegistry()
    register(Cache(MemoryStore()), registry=registry)
    names = families(registry)
    assert "asgi_cache_hits" in names
    assert not {n for n in names if n.startswith(("asgi_cache_near", "asgi_cache_purges"))}


async def test_a_near_cache_exports_its_figures(redis_server: RedisServer) -> None:
    prefix = fresh_prefix()
    store = near_store(redis_server.url, prefix)
    cache = Cache(store, prefix=prefix)
    registry = CollectorRegistry()
    register(cache, registry=registry)
    try:
        await store.set(f"{prefix}:page:1", b"x" * 100, 60, [], None)
        await copy_held(store, f"{prefix}:page:1")  # a copy is kept, and served
        stats = cache.stats()
        assert stats["near_hits"] >= 1
        text = scrape(registry)
        label = f'{{cache="{prefix}"}}'
        assert f"asgi_cache_near_hits_total{label} {float(stats['near_hits'])}" in text
        assert f"asgi_cache_near_entries{label} {float(stats['near_entries'])}" in text
        assert f"asgi_cache_near_bytes{label} {float(stats['near_bytes'])}" in text
        assert f"asgi_cache_near_tracking{label} 1.0" in text
    finally:
        await store.aclose()
