"""Shared fixtures: stores over memory and over a real redis-server the suite starts."""

from __future__ import annotations

import itertools
from collections.abc import AsyncIterator, Callable

import pytest

from asgi_cache import Cache, MemoryStore, Store

pytest_plugins = ["tests.fixtures_redis"]

_prefixes = itertools.count()

StoreFactory = Callable[[], Store]


@pytest.fixture(params=["memory", "redis"])
async def store_factory(request: pytest.FixtureRequest) -> AsyncIterator[StoreFactory]:
    """Builds fresh stores of each kind in the test's event loop; closes them after."""
    made: list[Store] = []
    if request.param == "memory":
        build: StoreFactory = MemoryStore
    else:
        from asgi_cache.stores.redis import RedisStore

        url = request.getfixturevalue("redis_server").url

        def build() -> Store:
            return RedisStore.from_url(url)

    def factory() -> Store:
        made.append(build())
        return made[-1]

    yield factory
    for store in made:
        await store.aclose()


@pytest.fixture
def make_cache(store_factory: StoreFactory) -> Callable[..., Cache]:
    """A Cache over the parametrised store, under a prefix of its own."""

    def make(**kwargs: object) -> Cache:
        kwargs.setdefault("prefix", f"test{next(_prefixes)}")
        return Cache(store_factory(), **kwargs)  # type: ignore[arg-type]

    return make
