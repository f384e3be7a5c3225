"""Shared fixtures: stores over memory, a real redis-server and a real Redis Cluster.

The Redis servers are started by the suite itself on free loopback ports (see
``tests/fixtures_redis.py``); nothing here touches a Redis it did not start.
"""

from __future__ import annotations

import itertools
from collections.abc import AsyncIterator

import pytest

from asgi_cache import Cache, MemoryStore
from tests.helpers import MakeCache, StoreFactory

pytest_plugins = ["tests.fixtures_redis"]

_prefixes = itertools.count()


@pytest.fixture(params=["memory", "redis", pytest.param("cluster", marks=pytest.mark.cluster)])
async def store_factory(request: pytest.FixtureRequest) -> AsyncIterator[StoreFactory]:
    """Stores of each kind, made in the test's event loop and closed after it.

    Memory stores are fresh per call; Redis kinds share one connected store per
    test (each cache gets its own prefix), so a cluster's slot discovery is
    done once, before the test starts.
    """
    if request.param == "memory":
        yield MemoryStore
        return
    from asgi_cache.stores.redis import RedisStore
    from tests.fixtures_redis import FIXTURE_TIMEOUT

    server = request.getfixturevalue(
        "redis_server" if request.param == "redis" else "redis_cluster"
    )
    cluster = request.param == "cluster"
    store = RedisStore.from_url(server.url, cluster=cluster, timeout=FIXTURE_TIMEOUT)
    if cluster:
        await store.client.initialize()  # type: ignore[union-attr]
    yield lambda: store
    await store.aclose()


@pytest.fixture
def make_cache(store_factory: StoreFactory) -> MakeCache:
    """A Cache over the parametrised store, under a prefix of its own."""

    def make(**kwargs: object) -> Cache:
        kwargs.setdefault("prefix", f"test{next(_prefixes)}")
        return Cache(store_factory(), **kwargs)  # type: ignore[arg-type]

    return make
