"""Pytest fixtures for Redis-backed tests: servers the suite starts itself, and stores on them.

The suite never touches a Redis it did not start.  The single server starts with
the first test that needs it; the three-node cluster only if a test asks for it.
If ``redis-server`` is not installed the fixtures fail with an explanation: a
Redis test must not pass by being skipped.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import pytest

from asgi_cache.stores.redis import RedisStore
from tests.redis_servers import RedisCluster, RedisServer, resp_command

__all__ = ["anyio_backend", "cluster_store", "redis_cluster", "redis_server", "redis_store"]

#: Stores in fixtures are for behaviour tests, not for timing ones: a generous
#: timeout keeps a loaded CI machine from turning them into fail-open tests.
FIXTURE_TIMEOUT = 2.0

#: DEBUG SLEEP (used to simulate a slow server) is disabled by default since Redis 7.
TEST_SERVER_ARGS = ("--enable-debug-command", "local")


@pytest.fixture(scope="session")
def anyio_backend() -> str:
    """redis-py's asyncio client needs asyncio."""
    return "asyncio"


@pytest.fixture(scope="session")
def redis_server() -> Iterator[RedisServer]:
    with RedisServer(*TEST_SERVER_ARGS) as server:
        yield server


@pytest.fixture(scope="session")
def redis_cluster() -> Iterator[RedisCluster]:
    with RedisCluster(extra_args=TEST_SERVER_ARGS) as cluster:
        yield cluster


@pytest.fixture
async def redis_store(redis_server: RedisServer) -> AsyncIterator[RedisStore]:
    """A store over a fresh client to the suite's single server, emptied afterwards."""
    store = RedisStore.from_url(redis_server.url, timeout=FIXTURE_TIMEOUT)
    try:
        yield store
    finally:
        await store.aclose()
        resp_command(redis_server.host, redis_server.port, "FLUSHALL")


@pytest.fixture
async def cluster_store(redis_cluster: RedisCluster) -> AsyncIterator[RedisStore]:
    """A store over a fresh cluster client to the suite's cluster, emptied afterwards."""
    store = RedisStore.from_url(redis_cluster.url, cluster=True, timeout=FIXTURE_TIMEOUT)
    try:
        yield store
    finally:
        await store.aclose()
        for node in redis_cluster.nodes:
            resp_command(node.host, node.port, "FLUSHALL")
