"""The Redis examples under a real uvicorn, on the suite's own Redis and Redis Cluster.

Each server runs as its docstring says (``python -m uvicorn examples.<name>:app``), with
``ASGI_CACHE_URL`` pointing at the suite's servers, never at 6379, and the examples'
sleeps set to zero: a hit is told by ``Cache-Status`` and by the run counts in the bodies,
never by timing.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Iterator

import httpx
import pytest

from asgi_cache import Cache
from tests.helpers import is_hit
from tests.redis_servers import RedisCluster, RedisServer
from tests.servers import ROOT, running_uvicorn

STARTUP_TIMEOUT = 15.0
TOKEN = "example-token"


@pytest.fixture(
    scope="module", params=["redis", pytest.param("cluster", marks=pytest.mark.cluster)]
)
def redis_url(request: pytest.FixtureRequest) -> str:
    """The URL of the suite's Redis, or of its Cluster (``?cluster=true``)."""
    if request.param == "redis":
        server: RedisServer = request.getfixturevalue("redis_server")
        return server.url
    cluster: RedisCluster = request.getfixturevalue("redis_cluster")
    return f"{cluster.url}?cluster=true"


def empty(url: str, prefix: str) -> None:
    """Remove what an earlier run left under ``prefix``."""

    async def clear() -> None:
        cache = Cache.from_url(url, prefix=prefix)
        try:
            await cache.clear()
        finally:
            await cache.aclose()

    asyncio.run(clear())


def serve(
    app: str, prefix: str, url: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[httpx.Client]:
    """Run ``app`` under uvicorn on ``url``, its prefix emptied before and after, and
    yield a client to it.  No warm-up request: the lifespan startup connects the store
    (on a Cluster: discovers the slots), so the first request is served from it."""
    empty(url, prefix)
    log = tmp_path_factory.mktemp("uvicorn-example") / "output.log"
    env = {
        **os.environ,
        "ASGI_CACHE_URL": url,
        "EXAMPLE_DELAY": "0",
        "CACHE_PURGE_TOKEN": TOKEN,
        "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])),
    }
    try:
        with (
            running_uvicorn(app, env=env, log=log, startup_timeout=STARTUP_TIMEOUT) as base,
            httpx.Client(base_url=base, timeout=10) as client,
        ):
            yield client
    finally:
        empty(url, prefix)


@pytest.fixture(scope="module")
def slow_redis(redis_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[httpx.Client]:
    yield from serve("examples.slow_redis:app", "fastapi-cache", redis_url, tmp_path_factory)


@pytest.fixture(scope="module")
def products(redis_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[httpx.Client]:
    yield from serve("examples.products_app:app", "products", redis_url, tmp_path_factory)


def purge(client: httpx.Client, namespace: str) -> httpx.Response:
    return client.delete(
        "/cache/clear",
        params={"namespace": namespace},
        headers={"authorization": f"Bearer {TOKEN}"},
    )


# -- examples/slow_redis.py: fastapi-cache2's Redis app -------------------------------------


def test_slow_redis_second_call_is_a_hit_with_the_same_payload(slow_redis: httpx.Client) -> None:
    first = slow_redis.get("/slow", params={"q": 101})
    second = slow_redis.get("/slow", params={"q": 101})
    assert not is_hit(first)
    assert is_hit(second)
    assert second.json() == first.json()


def test_slow_redis_namespace_clear_recomputes_that_namespace(slow_redis: httpx.Client) -> None:
    first = slow_redis.get("/slow", params={"q": 102})
    cleared = purge(slow_redis, "v1")
    again = slow_redis.get("/slow", params={"q": 102})
    assert cleared.status_code == 200
    assert cleared.json()["removed"] >= 1
    assert not is_hit(again)
    assert again.json()["run"] > first.json()["run"]


def test_slow_redis_namespace_clear_keeps_other_namespaces(slow_redis: httpx.Client) -> None:
    report = slow_redis.get("/report")
    purge(slow_redis, "v1")
    after = slow_redis.get("/report")
    assert is_hit(after)
    assert after.json() == report.json()


def test_slow_redis_clear_without_the_token_is_refused(slow_redis: httpx.Client) -> None:
    slow_redis.get("/slow", params={"q": 103})
    refused = slow_redis.delete("/cache/clear", params={"namespace": "v1"})
    still = slow_redis.get("/slow", params={"q": 103})
    assert refused.status_code == 403
    assert is_hit(still)


# -- examples/products_app.py: Flask-Caching's complete Redis example ----------------------


def test_product_second_read_comes_from_the_memoized_value(products: httpx.Client) -> None:
    first = products.get("/products/1")
    second = products.get("/products/1")
    assert first.json() == {"id": 1, "name": "Product 1", "load": 1}
    assert second.json() == first.json()


def test_product_put_makes_the_next_get_fresh(products: httpx.Client) -> None:
    before = products.get("/products/2")
    update = products.put("/products/2", params={"name": "pear"})
    after = products.get("/products/2")
    assert update.json() == {"status": "updated", "id": 2}
    assert after.json() == {"id": 2, "name": "pear", "load": before.json()["load"] + 1}


def test_product_put_leaves_other_products_memoized(products: httpx.Client) -> None:
    other = products.get("/products/3")
    products.put("/products/4", params={"name": "plum"})
    again = products.get("/products/3")
    assert again.json() == other.json()
