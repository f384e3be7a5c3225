"""The near cache against a real redis-server and a real 3-master Redis Cluster.

Two RedisStore instances stand for two processes: each has its own near tier and its
own tracking connections, and they share nothing but Redis.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass

import pytest

from asgi_cache.stores.base import StoreError
from asgi_cache.stores.redis import RedisStore
from tests.fixtures_redis import TEST_SERVER_ARGS
from tests.near_support import (
    DelayingProxy,
    copy_held,
    eventually,
    fresh_prefix,
    near_of,
    near_store,
    tracking,
)
from tests.redis_servers import RedisServer, resp_command

pytestmark = pytest.mark.anyio


@dataclass
class Target:
    url: str
    cluster: bool
    nodes: list[tuple[str, int]]


@pytest.fixture(params=["redis", pytest.param("cluster", marks=pytest.mark.cluster)])
def target(request: pytest.FixtureRequest) -> Target:
    if request.param == "redis":
        server: RedisServer = request.getfixturevalue("redis_server")
        return Target(server.url, False, [(server.host, server.port)])
    cluster = request.getfixturevalue("redis_cluster")
    return Target(cluster.url, True, [(node.host, node.port) for node in cluster.nodes])


@pytest.fixture
async def pair(target: Target) -> AsyncIterator[tuple[RedisStore, RedisStore, str]]:
    """Two processes' worth of stores on one Redis, both with a near tier for one prefix."""
    prefix = fresh_prefix()
    first = near_store(target.url, prefix, cluster=target.cluster)
    second = near_store(target.url, prefix, cluster=target.cluster)
    for store in (first, second):
        if target.cluster:
            await store.client.initialize()  # type: ignore[union-attr]
        await tracking(store)
    yield first, second, prefix
    await first.aclose()
    await second.aclose()


@pytest.fixture
def own_server() -> Iterator[RedisServer]:
    """A server of the test's own, for faults the shared one must not suffer."""
    with RedisServer(*TEST_SERVER_ARGS) as server:
        yield server


async def test_a_second_read_is_served_from_the_near_tier(
    pair: tuple[RedisStore, RedisStore, str],
) -> None:
    writer, reader, prefix = pair
    await writer.set(prefix + "k", b"v", 60)
    await copy_held(reader, prefix + "k")
    assert await reader.get(prefix + "k") == b"v"
    assert reader.stats()["near_entries"] == 1


async def test_another_stores_overwrite_drops_the_copy(
    pair: tuple[RedisStore, RedisStore, str],
) -> None:
    writer, reader, prefix = pair
    await writer.set(prefix + "k", b"old", 60)
    await copy_held(reader, prefix + "k")
    await writer.set(prefix + "k", b"new", 60)
    await eventually(lambda: _reads(reader, prefix + "k", b"new"), "the new value read")


async def test_another_stores_delete_drops_the_copy(
    pair: tuple[RedisStore, RedisStore, str],
) -> None:
    writer, reader, prefix = pair
    await writer.set(prefix + "k", b"v", 60)
    await copy_held(reader, prefix + "k")
    await writer.delete(prefix + "k")
    await eventually(lambda: _reads(reader, prefix + "k", None), "the deletion seen")


async def test_another_stores_tag_invalidation_drops_the_copy(
    pair: tuple[RedisStore, RedisStore, str],
) -> None:
    writer, reader, prefix = pair
    await writer.set(prefix + "k", b"v", 60, tags=[prefix + "tag:t"])
    await copy_held(reader, prefix + "k")
    assert await writer.invalidate([prefix + "tag:t"]) == 1
    await eventually(lambda: _reads(reader, prefix + "k", None), "the invalidation seen")


async def test_another_stores_clear_drops_the_copy(
    pair: tuple[RedisStore, RedisStore, str],
) -> None:
    writer, reader, prefix = pair
    await writer.set(prefix + "k", b"v", 60)
    await copy_held(reader, prefix + "k")
    await writer.clear(prefix)
    await eventually(lambda: _reads(reader, prefix + "k", None), "the clear seen")


async def test_expiry_in_redis_drops_the_copy(pair: tuple[RedisStore, RedisStore, str]) -> None:
    writer, reader, prefix = pair
    await writer.set(prefix + "k", b"v", 0.3)
    await copy_held(reader, prefix + "k")
    await eventually(lambda: _reads(reader, prefix + "k", None), "the expiry seen")


@pytest.mark.parametrize("write", ["set", "delete", "invalidate", "clear"])
async def test_the_writing_store_never_serves_what_its_own_write_superseded(
    pair: tuple[RedisStore, RedisStore, str], write: str
) -> None:
    store, _, prefix = pair
    key = prefix + "k"
    await store.set(key, b"old", 60, tags=[prefix + "tag:t"])
    await copy_held(store, key)
    if write == "set":
        await store.set(key, b"new", 60)
    elif write == "delete":
        await store.delete(key)
    elif write == "invalidate":
        await store.invalidate([prefix + "tag:t"])
    else:
        await store.clear(prefix)
    assert await store.get(key) == (b"new" if write == "set" else None)


async def test_kept_copies_never_outlive_their_redis_ttl(target: Target) -> None:
    prefix = fresh_prefix()
    now = [0.0]
    store = near_store(target.url, prefix, cluster=target.cluster)
    near_of(store).clock = lambda: now[0]
    try:
        await store.set(prefix + "k", b"v", 5)
        await copy_held(store, prefix + "k")
        hits = near_of(store).hits
        now[0] += 5.0  # by the tier's clock the key has expired; Redis still holds it
        assert await store.get(prefix + "k") == b"v"
        assert near_of(store).hits == hits
    finally:
        await store.aclose()


async def test_losing_the_tracking_connection_empties_the_tier(target: Target) -> None:
    prefix = fresh_prefix()
    store = near_store(target.url, prefix, cluster=target.cluster)
    try:
        await store.set(prefix + "k", b"v", 60)
        await copy_held(store, prefix + "k")
        flushes = near_of(store).flushes
        for host, port in target.nodes:
            resp_command(host, port, "CLIENT", "KILL", "TYPE", "pubsub")
        await eventually(lambda: near_of(store).flushes > flushes, "the tier flushed")
        assert store.stats()["near_entries"] == 0
        await tracking(store)  # and it comes back
        await copy_held(store, prefix + "k")
    finally:
        await store.aclose()


async def test_a_restarted_redis_is_read_directly_until_tracking_is_back(
    own_server: RedisServer,
) -> None:
    prefix = fresh_prefix()
    store = near_store(own_server.url, prefix, timeout=0.2, cooldown=0.0)
    try:
        await store.set(prefix + "k", b"v", 60)
        await copy_held(store, prefix + "k")
        own_server.stop()
        await eventually(lambda: not near_of(store).active, "tracking lost")
        with pytest.raises(StoreError):  # no copy served while nobody listens
            await store.get(prefix + "k")
        own_server.start()
        await tracking(store)
        assert await store.get(prefix + "k") is None  # the restart lost the data
    finally:
        await store.aclose()


async def test_a_silent_redis_empties_and_bypasses_the_tier(own_server: RedisServer) -> None:
    prefix = fresh_prefix()
    store = near_store(own_server.url, prefix, health_check=0.1, timeout=0.2, cooldown=0.0)
    try:
        await store.set(prefix + "k", b"v", 60)
        await copy_held(store, prefix + "k")
        with own_server.paused():  # answers nothing, keeps its connections: a network cut
            await eventually(lambda: not near_of(store).active, "tracking lost")
            assert store.stats()["near_entries"] == 0
            with pytest.raises(StoreError):
                await store.get(prefix + "k")
        await copy_held(store, prefix + "k")
    finally:
        await store.aclose()


async def test_eviction_in_redis_drops_the_copy(own_server: RedisServer) -> None:
    prefix = fresh_prefix()
    writer = near_store(own_server.url, prefix)
    reader = near_store(own_server.url, prefix)
    try:
        await writer.set(prefix + "k", b"v" * 1000, 60)
        await copy_held(reader, prefix + "k")
        host, port = own_server.host, own_server.port
        resp_command(host, port, "CONFIG", "SET", "maxmemory-policy", "allkeys-random")
        resp_command(host, port, "CONFIG", "SET", "maxmemory", "1")
        with pytest.raises(StoreError):  # the write that makes Redis evict everything
            await writer.set(prefix + "other", b"x", 60)
        resp_command(host, port, "CONFIG", "SET", "maxmemory", "0")
        await eventually(lambda: _reads(reader, prefix + "k", None), "the eviction seen")
    finally:
        await writer.aclose()
        await reader.aclose()


async def test_a_reply_overtaken_by_its_keys_invalidation_is_not_kept(
    redis_server: RedisServer,
) -> None:
    proxy = DelayingProxy(redis_server.port)
    await proxy.start()
    prefix = fresh_prefix()
    writer = RedisStore.from_url(redis_server.url, timeout=2.0)
    reader = near_store(proxy.url, prefix, timeout=5.0)
    try:
        await writer.set(prefix + "k", b"old", 60)
        await tracking(reader)
        proxy.delay = 0.5  # the reader's replies now come late; invalidations do not
        read = asyncio.ensure_future(reader.get(prefix + "k"))
        await asyncio.sleep(0.1)  # the read has reached Redis
        await writer.set(prefix + "k", b"new", 60)
        assert await read == b"old"  # read before the write, answered after its invalidation
        proxy.delay = 0.0
        assert await reader.get(prefix + "k") == b"new"
    finally:
        await writer.aclose()
        await reader.aclose()
        await proxy.close()


async def test_keys_outside_the_prefix_are_never_kept(
    pair: tuple[RedisStore, RedisStore, str],
) -> None:
    writer, reader, prefix = pair
    await writer.set("elsewhere:" + prefix, b"v", 60)
    for _ in range(3):
        assert await reader.get("elsewhere:" + prefix) == b"v"
    assert reader.stats()["near_hits"] == 0
    await writer.delete("elsewhere:" + prefix)


async def _reads(store: RedisStore, key: str, expected: bytes | None) -> bool:
    return await store.get(key) == expected
