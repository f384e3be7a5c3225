"""RedisStore against real redis-server processes the suite starts: one server and a cluster.

What every store does is in ``test_contract.py``; this file holds what is Redis's own: one
``GET`` per read, the key layout, slots, scripts, clients, the breaker and outages.  Behaviour
tests run on both (``store`` is parametrised); outage and slowness tests use servers of their
own, so stopping or blocking them cannot disturb other tests.
"""

from __future__ import annotations

import logging
import random
import re
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass
from typing import TypeVar

import anyio
import pytest
import redis.asyncio
from fastapi import FastAPI
from redis.asyncio.cluster import RedisCluster as ClusterClient
from redis.crc import key_slot

from asgi_cache import Cache, CacheMiddleware, cached, invalidates
from asgi_cache.keys import tag_key
from asgi_cache.stores.base import StoreError
from asgi_cache.stores.redis import _LOCK_LEASE as LOCK_LEASE
from asgi_cache.stores.redis import _SCRIPTS, RedisStore
from tests.fixtures_redis import TEST_SERVER_ARGS
from tests.helpers import STORED, Calls, client_for, is_hit
from tests.redis_servers import RedisCluster, RedisServer, RedisUser, resp_command

pytestmark = pytest.mark.anyio

T = TypeVar("T")

#: Tags chosen to trip up a naive hash-tag layout: empty, lone or empty braces, a
#: brace pair of their own, glob characters and non-ASCII text.
#: The store's Lua scripts, by their SHA1.
SCRIPT_SHAS = sorted(_SCRIPTS.values())

AWKWARD_TAGS = ["", "{", "}", "{}", "a{}b", "}{", "{x}", "x{y", "{}{x}", "a*b?[c]\\", "ü:🙂"]


class FakeClock:
    """A clock that only moves when a test says so (for the circuit breaker)."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture(
    params=["redis_store", pytest.param("cluster_store", marks=pytest.mark.cluster)],
)
def store(request: pytest.FixtureRequest) -> RedisStore:
    """A store over the suite's single server, then over its three-node cluster."""
    result: RedisStore = request.getfixturevalue(request.param)
    return result


@pytest.fixture
def prefix() -> str:
    return f"t{uuid.uuid4().hex[:8]}:"


@pytest.fixture
def server() -> Iterator[RedisServer]:
    """A server of the test's own, free to be stopped or blocked."""
    with RedisServer(*TEST_SERVER_ARGS) as own:
        yield own


async def elapsed(call: Callable[[], Awaitable[object]]) -> float:
    """Seconds ``call`` took to raise StoreError (it must raise)."""
    start = time.perf_counter()
    with pytest.raises(StoreError) as info:
        await call()
    assert info.value.__cause__ is not None or "circuit breaker" in str(info.value)
    return time.perf_counter() - start


async def until_served(clock: FakeClock, call: Callable[[], Awaitable[T]]) -> T:
    """``call``'s result once the store serves it, a cooldown later at each failure.

    Between tries the loop is left to a rediscovery under way (it parses the server's
    whole command table, slowly on a loaded machine); a bound of 20 s, not a target.
    """
    with anyio.fail_after(20):
        while True:
            clock.now += 1.0
            try:
                return await call()
            except StoreError:
                await anyio.sleep(0.25)


def owner_of(cluster: RedisCluster, key: str) -> RedisServer:
    """The node serving ``key``: the others answer with a MOVED redirection."""
    for node in cluster.nodes:
        try:
            resp_command(node.host, node.port, "EXISTS", key)
        except RuntimeError:
            continue
        return node
    raise AssertionError(f"no node serves {key!r}")


def client_count(server: RedisServer) -> int:
    """Connections the server has, not counting the one asking."""
    reply = resp_command(server.host, server.port, "CLIENT", "LIST")
    assert isinstance(reply, bytes)
    return len(reply.splitlines()) - 1


# -- round trips and expiry ---------------------------------------------------------------


async def test_entries_expire_by_redis_px_without_a_sweeper(store: RedisStore, prefix: str) -> None:
    await store.set(f"{prefix}k", b"v", 0.2)
    assert 0 < await store.client.pttl(f"{prefix}k") <= 200
    await anyio.sleep(0.4)
    assert await store.get(f"{prefix}k") is None


async def test_a_foreign_value_is_returned_as_bytes_for_the_caller_to_reject(
    store: RedisStore, prefix: str
) -> None:
    await store.client.set(f"{prefix}foreign", b"\x80not an entry")
    assert await store.get(f"{prefix}foreign") == b"\x80not an entry"


async def test_a_key_of_another_type_raises_store_error(store: RedisStore, prefix: str) -> None:
    await store.client.rpush(f"{prefix}list", b"x")
    with pytest.raises(StoreError, match="WRONGTYPE"):
        await store.get(f"{prefix}list")


async def test_get_is_a_single_get_command(
    redis_store: RedisStore, redis_server: RedisServer
) -> None:
    await redis_store.set("k", b"v", 60)
    await redis_store.get("k")  # the connection is open and pooled from here on
    resp_command(redis_server.host, redis_server.port, "CONFIG", "RESETSTAT")
    assert await redis_store.get("k") == b"v"
    stats = resp_command(redis_server.host, redis_server.port, "INFO", "commandstats")
    assert isinstance(stats, bytes)
    commands = [line.split(b":")[0] for line in stats.splitlines() if b"calls=" in line]
    assert [c for c in commands if not c.startswith(b"cmdstat_config")] == [b"cmdstat_get"]
    assert b"cmdstat_get:calls=1," in stats


# -- tags and fences ----------------------------------------------------------------------


async def test_tag_bookkeeping_keys_expire_on_their_own(store: RedisStore, prefix: str) -> None:
    tag = f"{prefix}tag"
    members, generation = RedisStore.tag_keys(tag)
    await store.set(f"{prefix}long", b"v", 100, [tag])
    await store.set(f"{prefix}short", b"v", 1, [tag])  # must not shorten the set's life
    assert 100_000 <= await store.client.pttl(members) <= 102_000

    await store.invalidate([tag])
    assert 0 < await store.client.pttl(generation) <= 24 * 3600 * 1000
    await store.set(f"{prefix}again", b"v", 5, [tag], await store.fence([tag]))
    assert 0 < await store.client.pttl(members) <= 7_000


async def test_a_fence_for_other_tags_is_a_programming_error(
    store: RedisStore, prefix: str
) -> None:
    fence = await store.fence([f"{prefix}tag:a"])
    with pytest.raises(ValueError, match="fence"):
        await store.set(f"{prefix}k", b"v", 60, [f"{prefix}tag:a", f"{prefix}tag:b"], fence)


async def test_scripts_lost_by_redis_are_sent_again(store: RedisStore, prefix: str) -> None:
    tag = f"{prefix}tag"
    await store.set(f"{prefix}a", b"v", 60, [tag])
    await store.client.script_flush()  # as after a restart or a failover
    assert await store.set(f"{prefix}b", b"v", 60, [tag], await store.fence([tag])) is True
    await store.client.script_flush()
    assert await store.invalidate([tag]) == 2


@pytest.mark.parametrize("suffix", AWKWARD_TAGS)
async def test_any_tag_string_works_even_on_a_cluster(
    store: RedisStore, prefix: str, suffix: str
) -> None:
    tag = f"{prefix}{suffix}"
    fence = await store.fence([tag])
    assert await store.set(f"{prefix}k", b"v", 60, [tag], fence) is True
    assert await store.invalidate([tag]) == 1
    assert await store.set(f"{prefix}k", b"v", 60, [tag], fence) is False


@pytest.mark.parametrize("tag", [*AWKWARD_TAGS, "shop:v1:tag:product:42", "{shop}:tag:x"])
async def test_both_bookkeeping_keys_of_a_tag_hash_to_one_slot(tag: str) -> None:
    members, generation = RedisStore.tag_keys(tag)
    assert key_slot(members.encode()) == key_slot(generation.encode())


async def test_bookkeeping_keys_stay_readable() -> None:
    members, generation = RedisStore.tag_keys("shop:v1:tag:product:42")
    assert members.startswith("shop:v1:tag:product:42:{") and members.endswith("}:m")
    assert generation == members[:-1] + "g"


async def race_one_invalidation(
    store: RedisStore, tag: str, key_prefix: str, rng: random.Random
) -> list[tuple[str, object, bool]]:
    """Run 40 fenced sets against one invalidation of their tag.

    Returns each set's key, the generation its fence saw, and whether it stored.
    The invalidation starts once five sets have stored, so others are still
    between fence and set; ten more writers only start fencing as it starts.
    """
    results: list[tuple[str, object, bool]] = []
    now, some_stored, invalidating = anyio.Event(), anyio.Event(), anyio.Event()
    now.set()

    async def writer(key: str, start: anyio.Event, delay: float, pause: float) -> None:
        await start.wait()
        await anyio.sleep(delay)
        fence = await store.fence([tag])
        await anyio.sleep(pause)  # the response is being computed
        results.append((key, fence[0], await store.set(key, b"v", 60, [tag], fence)))
        if len(results) == 5:
            some_stored.set()

    async def invalidator() -> None:
        await some_stored.wait()
        invalidating.set()
        await store.invalidate([tag])

    async with anyio.create_task_group() as group:
        for n in range(40):
            start = now if n < 30 else invalidating
            delay, pause = rng.random() * 0.005, rng.random() * 0.01
            group.start_soon(writer, f"{key_prefix}{n}", start, delay, pause)
        group.start_soon(invalidator)
    return results


async def test_racing_sets_never_outlive_an_invalidation_they_were_fenced_before(
    store: RedisStore, prefix: str
) -> None:
    tag = f"{prefix}tag"
    rng = random.Random(7)
    outcomes = {"stored, then invalidated": 0, "refused": 0, "fenced after": 0}
    for round_ in range(8):
        (before,) = await store.fence([tag])
        for key, fenced, stored in await race_one_invalidation(
            store, tag, f"{prefix}{round_}:", rng
        ):
            present = await store.get(key) is not None
            if fenced == before:
                assert not present, f"{key} survived an invalidation it was fenced before"
                outcomes["stored, then invalidated" if stored else "refused"] += 1
            else:
                assert stored and present, f"{key} was fenced after the invalidation"
                outcomes["fenced after"] += 1
    assert all(outcomes.values()), f"the race was not exercised: {outcomes}"


# -- invalidations cut off ---------------------------------------------------------------


@dataclass
class Quick:
    """A store with a production timeout, and the server that holds a given key."""

    store: RedisStore
    node_of: Callable[[str], RedisServer]


@pytest.fixture(params=["redis", pytest.param("cluster", marks=pytest.mark.cluster)])
async def quick(request: pytest.FixtureRequest) -> AsyncIterator[Quick]:
    """A store timing out after 50 ms, on a server of the test's own or on the suite's cluster."""
    if request.param == "redis":
        server: RedisServer = request.getfixturevalue("server")
        nodes = [server]
        store = RedisStore.from_url(server.url, timeout=0.05, failure_threshold=1000)
        yield Quick(store, lambda key: server)
    else:
        cluster: RedisCluster = request.getfixturevalue("redis_cluster")
        nodes = cluster.nodes
        store = RedisStore.from_url(cluster.url, cluster=True, timeout=0.05, failure_threshold=1000)
        assert isinstance(store.client, ClusterClient)
        await store.client.initialize()  # discovery takes longer than this store's timeout
        yield Quick(store, lambda key: owner_of(cluster, key))
    await store.aclose()
    for node in nodes:
        resp_command(node.host, node.port, "FLUSHALL")


async def retried(call: Callable[[], Awaitable[T]]) -> T:
    """What ``call`` returns once it succeeds, as a caller retrying a failed call would see it.

    After a timeout a cluster client rediscovers the cluster, and calls fail until it is done.
    """
    with anyio.fail_after(5):
        while True:
            try:
                return await call()
            except StoreError:
                await anyio.sleep(0.05)


async def tagged(store: RedisStore, prefix: str, tag: str, count: int = 20) -> list[str]:
    """Store ``count`` entries under ``tag``, once the tag's node has cached the scripts (a
    script it had to be sent again would not run while the caller has given up)."""
    await store.invalidate([tag])
    keys = [f"{prefix}entry:{n}" for n in range(count)]
    for key in keys:
        assert await retried(lambda key=key: store.set(key, b"v", 100, [tag])) is True
    return keys


async def readable(store: RedisStore, keys: list[str]) -> list[str]:
    return [key for key in keys if await retried(lambda key=key: store.get(key)) is not None]


async def cut_off_by_a_busy_event_loop(quick: Quick, tag: str) -> bool:
    """Invalidate ``tag`` while the event loop is held for 100 ms, twice the store's timeout,
    and Redis answers during that time: the reply waits in the socket past the deadline.

    Redis holds the script for 30 ms (``CLIENT PAUSE``, less than the timeout; ``hz 100``
    ends a pause within 10 ms of its time) so that its reply lands while the loop is busy:
    a reply read in the same loop turn as the stall would be read before the deadline is
    checked.  Returns whether the call was cut off after its script ran; on a slow machine
    the reply may come before the stall or the pause outlast it, and then it was not.
    """
    generation = RedisStore.tag_keys(tag)[1]
    node = quick.node_of(generation)
    before = resp_command(node.host, node.port, "GET", generation)

    async def hog_the_loop() -> None:
        with anyio.fail_after(5):
            while b"blocked_clients:0" in resp_command(node.host, node.port, "INFO", "clients"):
                await anyio.sleep(0)  # the invalidation has not sent its script yet
        time.sleep(0.1)  # other requests' CPU work: nothing else runs meanwhile

    info = resp_command(node.host, node.port, "INFO", "server")
    assert isinstance(info, bytes)
    hz = re.search(rb"configured_hz:(\d+)", info)
    assert hz is not None
    resp_command(node.host, node.port, "CONFIG", "SET", "hz", "100")
    try:
        resp_command(node.host, node.port, "CLIENT", "PAUSE", "30", "WRITE")
        async with anyio.create_task_group() as group:
            group.start_soon(hog_the_loop)
            try:
                await quick.store.invalidate([tag])
            except StoreError as exc:
                assert "longer than" in str(exc)
            else:
                return False
    finally:
        resp_command(node.host, node.port, "CONFIG", "SET", "hz", hz[1].decode())
    with anyio.fail_after(5):  # a pause outlasting the stall: the script may still be queued
        while b"blocked_clients:0" not in resp_command(node.host, node.port, "INFO", "clients"):
            await anyio.sleep(0.01)
    return resp_command(node.host, node.port, "GET", generation) != before


async def until_cut_off(attempt: Callable[[], Awaitable[bool]]) -> None:
    """Run ``attempt`` (which stores afresh, then cuts invalidations off) until it succeeds."""
    for _ in range(20):
        if await attempt():
            return
    pytest.fail("a busy event loop never cut an invalidation off in 20 attempts")


async def test_an_invalidation_timed_out_by_a_slow_redis_is_completed_by_the_next_one(
    quick: Quick, prefix: str
) -> None:
    store, tag = quick.store, f"{prefix}tag"
    keys = await tagged(store, prefix, tag)
    node = quick.node_of(RedisStore.tag_keys(tag)[0])
    blocker = redis.asyncio.Redis.from_url(node.url)
    try:
        async with anyio.create_task_group() as group:
            group.start_soon(blocker.execute_command, "DEBUG", "SLEEP", "0.3")
            await anyio.sleep(0.05)  # asleep: the script runs after the call has given up
            with pytest.raises(StoreError, match="longer than"):
                await store.invalidate([tag])
    finally:
        await blocker.aclose()

    # One Redis: the script that ran after the call gave up removed them itself.
    left = len(keys) if isinstance(store.client, ClusterClient) else 0
    assert await retried(lambda: store.invalidate([tag])) == left
    assert await readable(store, keys) == []


async def test_an_invalidation_timed_out_by_a_busy_event_loop_is_completed_by_the_next_one(
    quick: Quick, prefix: str
) -> None:
    store, tag = quick.store, f"{prefix}tag"
    keys: list[str] = []

    async def attempt() -> bool:
        keys[:] = await tagged(store, prefix, tag)  # also finishes what an attempt left
        return await cut_off_by_a_busy_event_loop(quick, tag)

    await until_cut_off(attempt)
    left = len(keys) if isinstance(store.client, ClusterClient) else 0
    assert await retried(lambda: store.invalidate([tag])) == left
    assert await readable(store, keys) == []


async def test_entries_left_by_cut_off_invalidations_stay_reachable_as_long_as_they_live(
    quick: Quick, prefix: str
) -> None:
    store, tag = quick.store, f"{prefix}tag"
    keys: list[str] = []
    longer = f"{prefix}longer"

    async def attempt() -> bool:
        keys[:] = await tagged(store, prefix, tag)  # also finishes what an attempt left
        if not await cut_off_by_a_busy_event_loop(quick, tag):
            return False
        assert await retried(lambda: store.set(longer, b"v", 300, [tag])) is True
        # merges into what the first one left
        return await cut_off_by_a_busy_event_loop(quick, tag)

    await until_cut_off(attempt)

    if not isinstance(store.client, ClusterClient):  # one Redis: nothing is left pending
        assert await readable(store, [*keys, longer]) == []
        return
    pending_ttl = await retried(lambda: store.client.pttl(RedisStore.pending_key(tag)))
    assert pending_ttl >= await retried(lambda: store.client.pttl(longer)) > 200_000
    assert await retried(lambda: store.invalidate([tag])) == len(keys) + 1


# -- garbage in the bookkeeping ----------------------------------------------------------

#: A tag's bookkeeping key, by what it is, and how to find it.
BOOKKEEPING: dict[str, Callable[[str], str]] = {
    "members": lambda tag: RedisStore.tag_keys(tag)[0],
    "generation": lambda tag: RedisStore.tag_keys(tag)[1],
    "pending": RedisStore.pending_key,
}

#: Values another program (or a bug, or a hand at redis-cli) might leave under such a key.
GARBAGE: dict[str, Callable[[redis.asyncio.Redis | ClusterClient, str], Awaitable[object]]] = {
    "text": lambda client, key: client.set(key, b"\x00not a number\xff"),
    "huge": lambda client, key: client.set(key, b"99999999999999999999"),
    "hash": lambda client, key: client.hset(key, b"field", b"value"),
    "list": lambda client, key: client.rpush(key, b"item"),
    "set": lambda client, key: client.sadd(key, b"member"),
}

#: Every kind of garbage under every kind of key, but a set where a set belongs.
SPOILED = [
    pytest.param(kind, garbage, id=f"{kind}-{garbage}")
    for kind in BOOKKEEPING
    for garbage in GARBAGE
    if not (garbage == "set" and kind != "generation")
]


async def spoil(store: RedisStore, tag: str, kind: str, garbage: str) -> None:
    key = BOOKKEEPING[kind](tag)
    await store.client.delete(key)
    await GARBAGE[garbage](store.client, key)


@pytest.mark.parametrize(("kind", "garbage"), SPOILED)
async def test_garbage_under_one_tags_bookkeeping_does_not_stop_the_other_tags_invalidation(
    store: RedisStore, prefix: str, kind: str, garbage: str
) -> None:
    spoiled, other = f"{prefix}spoiled", f"{prefix}other"
    await store.set(f"{prefix}a", b"v", 60, [spoiled])
    await store.set(f"{prefix}b", b"v", 60, [other])
    await spoil(store, spoiled, kind, garbage)

    await store.invalidate([spoiled, other])
    assert await store.get(f"{prefix}b") is None


@pytest.mark.parametrize(("kind", "garbage"), [p for p in SPOILED if not p.values[0] == "members"])
async def test_garbage_beside_a_member_set_leaves_its_entries_reachable(
    store: RedisStore, prefix: str, kind: str, garbage: str
) -> None:
    tag = f"{prefix}tag"
    await store.set(f"{prefix}a", b"v", 60, [tag])
    await store.set(f"{prefix}b", b"v", 60, [tag])
    await spoil(store, tag, kind, garbage)

    assert await store.invalidate([tag]) == 2
    assert await store.get(f"{prefix}a") is None


@pytest.mark.parametrize(("kind", "garbage"), SPOILED)
async def test_garbage_in_the_bookkeeping_is_overwritten_and_the_tag_works_again(
    store: RedisStore, prefix: str, kind: str, garbage: str
) -> None:
    tag = f"{prefix}tag"
    await spoil(store, tag, kind, garbage)
    await store.invalidate([tag])

    assert await store.set(f"{prefix}k", b"v", 60, [tag], await store.fence([tag])) is True
    assert await store.invalidate([tag]) == 1
    assert await store.get(f"{prefix}k") is None


@pytest.mark.parametrize(("kind", "garbage"), SPOILED)
async def test_garbage_in_the_bookkeeping_is_no_store_failure(
    store: RedisStore, prefix: str, kind: str, garbage: str
) -> None:
    tag = f"{prefix}tag"
    await spoil(store, tag, kind, garbage)
    fence = await store.fence([tag])
    await store.set(f"{prefix}k", b"v", 60, [tag], fence)
    await spoil(store, tag, kind, garbage)
    await store.set(f"{prefix}k", b"v", 60, [tag])
    await spoil(store, tag, kind, garbage)
    await store.invalidate([tag])
    assert store._breaker.failures == 0


@pytest.mark.parametrize(("kind", "garbage"), SPOILED)
async def test_a_set_fenced_before_garbage_reached_the_bookkeeping_is_refused(
    store: RedisStore, prefix: str, kind: str, garbage: str
) -> None:
    tag = f"{prefix}tag"
    await store.invalidate([tag])  # a counter to fence
    fence = await store.fence([tag])
    await spoil(store, tag, kind, garbage)  # what it indexed is lost: as good as invalidated

    assert await store.set(f"{prefix}k", b"v", 60, [tag], fence) is False
    assert await store.get(f"{prefix}k") is None


@pytest.mark.parametrize("garbage", GARBAGE)
async def test_a_set_fenced_over_a_garbage_counter_is_refused(
    store: RedisStore, prefix: str, garbage: str
) -> None:
    tag = f"{prefix}tag"
    await spoil(store, tag, "generation", garbage)
    fence = await store.fence([tag])

    assert await store.set(f"{prefix}k", b"v", 60, [tag], fence) is False
    assert await store.get(f"{prefix}k") is None


@pytest.mark.parametrize(("kind", "garbage"), SPOILED)
async def test_an_unfenced_set_over_garbage_is_stored_where_the_next_invalidation_finds_it(
    store: RedisStore, prefix: str, kind: str, garbage: str
) -> None:
    tag = f"{prefix}tag"
    await spoil(store, tag, kind, garbage)

    assert await store.set(f"{prefix}k", b"v", 60, [tag]) is True
    assert await store.invalidate([tag]) == 1
    assert await store.get(f"{prefix}k") is None


@pytest.mark.parametrize(("kind", "garbage"), SPOILED)
async def test_a_write_route_invalidates_over_garbage_and_the_cache_keeps_hitting(
    store: RedisStore, prefix: str, kind: str, garbage: str
) -> None:
    store._breaker.threshold = 1  # one failure would open it
    cache = Cache(store, prefix=prefix.rstrip(":"))
    calls = Calls()
    app = FastAPI()
    app.add_middleware(CacheMiddleware, cache=cache)

    @app.get("/item")
    @cached(ttl=60, tags=["items"])
    async def item() -> dict[str, int]:
        calls["item"] += 1
        return {"version": calls["item"]}

    @app.post("/item")
    @invalidates("items")
    async def write() -> dict[str, bool]:
        return {"ok": True}

    async with client_for(app) as client:
        assert (await client.get("/item")).headers["cache-status"] == STORED
        await spoil(store, tag_key(cache.prefix, "items"), kind, garbage)
        assert (await client.post("/item")).status_code == 200
        after = await client.get("/item")
        again = await client.get("/item")

    assert after.json() == {"version": 2}
    assert after.headers["cache-status"] == STORED
    assert is_hit(again)
    assert store._breaker.opened_at is None


# -- clear --------------------------------------------------------------------------------


async def test_clear_removes_only_keys_under_the_prefix(store: RedisStore, prefix: str) -> None:
    # Every glob metacharacter, so an unescaped SCAN MATCH would also hit the decoy.
    cleared = f"{prefix}[a]*?\\:"
    decoy = f"{prefix}axyz:1"
    other = f"{prefix}other:1"
    tag = f"{cleared}tag"
    for n in range(30):
        await store.set(f"{cleared}{n}", b"v", 60, [tag])
    await store.set(decoy, b"d", 60)
    await store.set(other, b"o", 60, [f"{prefix}other:tag"])
    await store.invalidate([tag])
    await store.set(f"{cleared}late", b"v", 60, [tag], await store.fence([tag]))
    await store.set(f"{cleared}plain", b"v", 60)

    assert await store.clear(cleared) == 2  # entries only, not bookkeeping keys

    assert await store.get(f"{cleared}late") is None
    assert await store.get(f"{cleared}plain") is None
    assert await store.get(decoy) == b"d"
    assert await store.get(other) == b"o"
    members, generation = RedisStore.tag_keys(tag)
    assert await store.client.exists(members) == 0
    # The counter stays, so a fence taken before the earlier invalidation stays stale.
    assert await store.client.exists(generation) == 1
    assert await store.invalidate([f"{prefix}other:tag"]) == 1


async def test_clear_walks_past_one_scan_batch(store: RedisStore, prefix: str) -> None:
    pipe = store.client.pipeline(transaction=False)
    for n in range(2500):
        pipe.set(f"{prefix}bulk:{n}", b"v", px=60_000)
    await pipe.execute()
    assert await store.clear(f"{prefix}bulk:") == 2500
    assert await store.get(f"{prefix}bulk:0") is None


# -- clients ------------------------------------------------------------------------------


async def test_a_callers_client_stays_open_after_aclose(redis_server: RedisServer) -> None:
    client = redis.asyncio.Redis.from_url(redis_server.url)
    try:
        store = RedisStore(client)
        await store.set("k", b"v", 60)
        await store.aclose()
        assert await client.get("k") == b"v"
    finally:
        await client.aclose()


async def test_a_cluster_is_chosen_by_the_url(redis_cluster: RedisCluster) -> None:
    store = RedisStore.from_url(f"{redis_cluster.url}?cluster=true", timeout=2)
    try:
        assert isinstance(store.client, ClusterClient)
        assert await store.set("k", b"v", 60) is True
    finally:
        await store.aclose()
        for node in redis_cluster.nodes:
            resp_command(node.host, node.port, "FLUSHALL")


@pytest.mark.parametrize("cluster", [False, pytest.param(True, marks=pytest.mark.cluster)])
async def test_a_client_decoding_responses_is_refused(
    cluster: bool, redis_server: RedisServer
) -> None:
    client: redis.asyncio.Redis | ClusterClient
    if cluster:  # not connected: construction alone must refuse it
        client = ClusterClient(host="127.0.0.1", port=1, decode_responses=True)
    else:
        client = redis.asyncio.Redis.from_url(redis_server.url, decode_responses=True)
    with pytest.raises(ValueError, match="decode_responses"):
        RedisStore(client)


async def test_without_redis_installed_the_package_imports_and_the_store_explains() -> None:
    code = (
        "import sys; sys.modules['redis'] = None\n"
        "import asgi_cache, asgi_cache.stores.redis as r\n"
        "try:\n    r.RedisStore(None)\n"
        "except ImportError as exc:\n    print(exc)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=30
    )
    assert 'pip install "asgi-cache[redis]"' in result.stdout


@pytest.mark.cluster
async def test_a_cluster_spreads_entries_over_its_nodes(
    cluster_store: RedisStore, redis_cluster: RedisCluster
) -> None:
    for n in range(50):
        await cluster_store.set(f"spread:{n}", b"v", 60, [f"spread:tag:{n % 5}"])
    sizes = [resp_command(node.host, node.port, "DBSIZE") for node in redis_cluster.nodes]
    assert sum(1 for size in sizes if isinstance(size, int) and size > 0) > 1
    assert await cluster_store.clear("spread:") == 50
    assert await cluster_store.invalidate([f"spread:tag:{n}" for n in range(5)]) == 0


async def test_connections_stay_bounded_and_close_with_an_owned_store(server: RedisServer) -> None:
    store = RedisStore.from_url(server.url, timeout=2)
    await store.set("k", b"v", 60)

    async def get() -> None:
        assert await store.get("k") == b"v"

    for _ in range(20):
        async with anyio.create_task_group() as group:
            for _ in range(50):
                group.start_soon(get)
    assert 1 <= client_count(server) <= 50 + 2

    await store.aclose()
    with anyio.fail_after(2):
        while client_count(server) > 0:
            await anyio.sleep(0.01)


# -- failing open -------------------------------------------------------------------------


async def test_every_operation_fails_quickly_with_store_error_when_redis_is_down(
    server: RedisServer,
) -> None:
    store = RedisStore.from_url(server.url, timeout=0.05, failure_threshold=1000)
    try:
        await store.set("k", b"v", 60, ["tag"])
        server.stop()
        operations: list[Callable[[], Awaitable[object]]] = [
            lambda: store.get("k"),
            lambda: store.fence(["tag"]),
            lambda: store.set("k", b"v", 60, ["tag"], (None,)),
            lambda: store.set("k", b"v", 60),
            lambda: store.delete("k"),
            lambda: store.invalidate(["tag"]),
            lambda: store.clear("k"),
        ]
        for operation in operations:
            assert await elapsed(operation) < 0.5
    finally:
        await store.aclose()


async def test_the_breaker_opens_after_the_threshold_and_then_fails_without_io(
    server: RedisServer, caplog: pytest.LogCaptureFixture
) -> None:
    clock = FakeClock()
    store = RedisStore.from_url(server.url, timeout=0.05, failure_threshold=3, clock=clock)
    caplog.set_level(logging.WARNING, logger="asgi_cache")
    try:
        server.stop()
        for _ in range(3):
            await elapsed(lambda: store.get("k"))
        assert sum("breaker open" in r.getMessage() for r in caplog.records) == 1
        logged = len(caplog.records)

        server.start()  # Redis is back, but the open breaker must not even try it
        start = time.perf_counter()
        for _ in range(100):
            with pytest.raises(StoreError, match="circuit breaker is open"):
                await store.get("k")
        assert (time.perf_counter() - start) / 100 < 0.001
        assert len(caplog.records) == logged  # no WARNING per request while open

        clock.now += 1.0  # the cooldown has passed: one trial call goes through
        assert await store.get("k") is None
        assert await store.set("k", b"v", 60) is True
        assert [r.getMessage() for r in caplog.records[logged:]] == [
            "Redis store recovered; circuit breaker closed"
        ]
    finally:
        await store.aclose()


async def test_a_failed_trial_call_keeps_the_breaker_open_for_another_cooldown(
    server: RedisServer,
) -> None:
    clock = FakeClock()
    store = RedisStore.from_url(server.url, timeout=0.05, failure_threshold=2, clock=clock)
    try:
        server.stop()
        for _ in range(2):
            await elapsed(lambda: store.get("k"))
        clock.now += 1.0
        with pytest.raises(StoreError, match="failed"):  # the trial reaches Redis, and fails
            await store.get("k")
        server.start()
        with pytest.raises(StoreError, match="circuit breaker is open"):
            await store.get("k")
        clock.now += 1.0
        assert await store.get("k") is None
    finally:
        await store.aclose()


async def test_a_slow_redis_times_out_and_stale_replies_are_never_read(
    server: RedisServer,
) -> None:
    store = RedisStore.from_url(server.url, timeout=0.05, failure_threshold=1000)
    blocker = redis.asyncio.Redis.from_url(server.url)
    try:
        for n in range(3):
            await store.set(f"k{n}", f"v{n}".encode(), 60)

        async def expect_timeout(key: str) -> None:
            assert await elapsed(lambda: store.get(key)) < 0.05 + 0.1

        async with anyio.create_task_group() as group:
            group.start_soon(blocker.execute_command, "DEBUG", "SLEEP", "0.3")
            await anyio.sleep(0.05)  # the server is now asleep
            for n in range(3):  # several connections with a request in flight
                group.start_soon(expect_timeout, f"k{n}")
        # The server has answered the abandoned GETs by now; a reused connection would
        # hand those replies to the next commands.
        for n in reversed(range(3)):
            assert await store.get(f"k{n}") == f"v{n}".encode()
        assert await store.set("k0", b"new", 60) is True
        assert await store.get("k0") == b"new"
    finally:
        await blocker.aclose()
        await store.aclose()


@pytest.mark.cluster
async def test_a_slow_cluster_node_times_out_and_stale_replies_are_never_read(
    redis_cluster: RedisCluster,
) -> None:
    store = RedisStore.from_url(redis_cluster.url, cluster=True, timeout=0.05)
    try:
        assert isinstance(store.client, ClusterClient)
        await store.client.initialize()  # discovery takes longer than this store's timeout
        await store.set("slow", b"v", 60)
        await store.set("slow:other", b"w", 60)
        blocker = redis.asyncio.Redis.from_url(owner_of(redis_cluster, "slow").url)
        try:
            async with anyio.create_task_group() as group:
                group.start_soon(blocker.execute_command, "DEBUG", "SLEEP", "0.3")
                await anyio.sleep(0.05)
                assert await elapsed(lambda: store.get("slow")) < 0.05 + 0.1
        finally:
            await blocker.aclose()
        assert await store.get("slow:other") == b"w"
        assert await store.get("slow") == b"v"
    finally:
        await store.aclose()
        for each in redis_cluster.nodes:
            resp_command(each.host, each.port, "FLUSHALL")


@pytest.mark.cluster
async def test_a_cluster_node_outage_fails_open_and_the_store_recovers() -> None:
    clock = FakeClock()
    with RedisCluster(extra_args=TEST_SERVER_ARGS) as cluster:
        store = RedisStore.from_url(
            cluster.url, cluster=True, timeout=0.05, failure_threshold=2, clock=clock
        )
        try:
            assert isinstance(store.client, ClusterClient)
            await store.client.initialize()  # discovery takes longer than this store's timeout
            await store.set("k", b"v", 60)
            node = owner_of(cluster, "k")
            node.stop()
            for _ in range(2):
                assert await elapsed(lambda: store.get("k")) < 0.5
            with pytest.raises(StoreError, match="circuit breaker is open"):
                await store.get("k")

            node.start()
            cluster.wait_until_ok()
            # The client rediscovers the cluster in the background, which can take longer
            # than one trial call may wait, and its parsing holds the event loop for
            # longer than this store's timeout: recovery may take a further cooldown or two.
            assert await until_served(clock, lambda: store.get("k")) is None  # a miss
            assert await until_served(clock, lambda: store.set("k", b"again", 60)) is True
            assert await until_served(clock, lambda: store.get("k")) == b"again"
        finally:
            await store.aclose()


PARTIAL_COVERAGE = (*TEST_SERVER_ARGS, "--cluster-require-full-coverage", "no")


async def keys_on(cluster: RedisCluster, store: RedisStore) -> tuple[str, str]:
    """A key owned by the first node and one owned by another, both stored."""
    first = cluster.nodes[0]
    dead = next(f"d{i}" for i in range(1000) if owner_of(cluster, f"d{i}") is first)
    live = next(f"l{i}" for i in range(1000) if owner_of(cluster, f"l{i}") is not first)
    assert await store.set(dead, b"dead", 60) is True
    assert await store.set(live, b"live", 60) is True
    return dead, live


def tag_on(cluster: RedisCluster, dead: bool, name: str) -> str:
    """A tag whose bookkeeping lives on the first node (``dead``) or on another one."""
    first = cluster.nodes[0]
    return next(
        f"{name}{i}"
        for i in range(1000)
        if (owner_of(cluster, RedisStore.tag_keys(f"{name}{i}")[1]) is first) is dead
    )


@pytest.mark.cluster
async def test_a_dead_cluster_primary_turns_off_only_the_tags_it_owns() -> None:
    clock = FakeClock()
    with RedisCluster(extra_args=PARTIAL_COVERAGE) as cluster:
        store = RedisStore.from_url(cluster.url, cluster=True, timeout=0.05, clock=clock)
        try:
            assert isinstance(store.client, ClusterClient)
            await store.client.initialize()
            dead_key, live_key = await keys_on(cluster, store)
            dead_tag, live_tag = tag_on(cluster, True, "dead"), tag_on(cluster, False, "live")
            assert await store.set(live_key, b"live", 60, [live_tag]) is True
            cluster.nodes[0].stop()
            for _ in range(3):
                for _ in range(10):  # twice the failure threshold in a row, each kind
                    assert await elapsed(lambda: store.fence([dead_tag])) < 0.5
                    assert await elapsed(lambda: store.set(live_key, b"x", 60, [dead_tag])) < 0.5
                    assert await elapsed(lambda: store.set(dead_key, b"x", 60, [live_tag])) < 0.5
                    assert await elapsed(lambda: store.invalidate([dead_tag])) < 0.5
                # Tags and entries on the live primaries work all along.
                fence = await store.fence([live_tag])
                assert await store.set(live_key, b"fresh", 60, [live_tag], fence) is True
                assert await store.get(live_key) == b"fresh"
            # Invalidating tags on both: the live one's entries go, the call still fails.
            assert await store.set(live_key, b"fresh", 60, [live_tag]) is True
            with pytest.raises(StoreError):
                await store.invalidate([live_tag, dead_tag])
            assert await store.get(live_key) is None

            cluster.nodes[0].start()
            cluster.wait_until_ok()
            assert await until_served(clock, lambda: store.invalidate([dead_tag])) == 0
            fence = await until_served(clock, lambda: store.fence([dead_tag]))
            assert await until_served(
                clock, lambda: store.set(dead_key, b"back", 60, [dead_tag], fence)
            )
            assert await store.get(dead_key) == b"back"
            assert await store.invalidate([dead_tag]) == 1
            assert await store.get(dead_key) is None
        finally:
            await store.aclose()


@pytest.mark.cluster
async def test_a_dead_cluster_primary_turns_off_only_the_keys_it_owns() -> None:
    with RedisCluster(extra_args=PARTIAL_COVERAGE) as cluster:
        store = RedisStore.from_url(cluster.url, cluster=True, timeout=0.05)
        try:
            assert isinstance(store.client, ClusterClient)
            await store.client.initialize()
            dead, live = await keys_on(cluster, store)
            cluster.nodes[0].stop()
            for _ in range(3):
                for _ in range(10):  # twice the failure threshold in a row
                    with pytest.raises(StoreError):
                        await store.get(dead)
                assert await store.get(live) == b"live"
        finally:
            await store.aclose()


@pytest.mark.cluster
async def test_keys_of_a_dead_cluster_primary_bypass_the_store_within_its_timeout() -> None:
    with RedisCluster(extra_args=PARTIAL_COVERAGE) as cluster:
        store = RedisStore.from_url(cluster.url, cluster=True, timeout=0.05)
        try:
            assert isinstance(store.client, ClusterClient)
            await store.client.initialize()
            dead, _ = await keys_on(cluster, store)
            cluster.nodes[0].stop()
            started = time.monotonic()
            for _ in range(5):
                with pytest.raises(StoreError):
                    await store.get(dead)
            assert time.monotonic() - started < 0.05
        finally:
            await store.aclose()


async def node_keys(node: RedisServer) -> set[bytes]:
    direct = redis.asyncio.Redis(host=node.host, port=node.port)
    try:
        return set(await direct.keys("*"))
    finally:
        await direct.aclose()


@pytest.mark.cluster
async def test_pages_on_live_cluster_primaries_stay_hits_while_another_primary_is_dead() -> None:
    with RedisCluster(extra_args=PARTIAL_COVERAGE) as cluster:
        store = RedisStore.from_url(cluster.url, cluster=True, timeout=0.05)
        cache = Cache(store, prefix="partial")
        calls = Calls()
        app = FastAPI()
        app.add_middleware(CacheMiddleware, cache=cache)

        @app.get("/item/{number}")
        @cached(ttl=60)
        async def item(number: int) -> dict[str, int]:
            calls[str(number)] += 1
            return {"number": number}

        first = cluster.nodes[0]
        try:
            assert isinstance(store.client, ClusterClient)
            await store.client.initialize()
            on_live: list[int] = []
            async with client_for(app) as client:
                for number in range(12):
                    before = await node_keys(first)
                    assert (await client.get(f"/item/{number}")).status_code == 200
                    if await node_keys(first) == before:
                        on_live.append(number)
                assert 0 < len(on_live) < 12  # some pages live on the node to be stopped
                first.stop()
                for _ in range(3):
                    for number in range(12):  # each of the dead node's pages a few times in a row
                        for _ in range(1 if number in on_live else 3):
                            response = await client.get(f"/item/{number}")
                            assert response.status_code == 200
                            if number in on_live:
                                assert is_hit(response)
            assert all(calls[str(number)] == 1 for number in on_live)
        finally:
            await cache.aclose()


# -- locks under faults ---------------------------------------------------------------------


async def test_a_held_lock_is_renewed_beyond_its_lease_but_never_beyond_its_ttl(
    store: RedisStore, prefix: str
) -> None:
    lock = f"{prefix}lock"
    assert await store.acquire(lock, "a", LOCK_LEASE + 0.6)
    await anyio.sleep(LOCK_LEASE + 0.2)  # past the first lease: the holder kept it
    assert await store.acquire(lock, "b", 10) is False
    await anyio.sleep(0.8)  # past the ttl asked for
    assert await store.acquire(lock, "b", 10) is True
    await store.release(lock, "b")


async def test_a_lock_key_holding_garbage_frees_itself_within_a_lease(
    store: RedisStore, prefix: str
) -> None:
    """A lock key with a value and no expiry (another program's, a hand at ``redis-cli``)
    is no lock of the store's and nobody will release it: a waiter gives it a lease, so
    it frees itself within that lease, and the next miss takes the lock at once, rather
    than every miss of the key waiting its whole wait for it forever."""
    lock = f"{prefix}lock"
    await store.client.set(lock, b"\x00garbage\xff")
    began = time.monotonic()
    await store.wait_released(lock, 10)
    waited = time.monotonic() - began
    print(f"\na garbage lock freed itself after {waited:.3f} s")
    assert waited < LOCK_LEASE + 2  # the lease, with room for a loaded machine; not the 10 s
    assert await store.acquire(lock, "a", 10) is True
    await store.release(lock, "a")


async def test_a_release_is_tried_even_while_the_breaker_is_open(server: RedisServer) -> None:
    clock = FakeClock()  # the cooldown never ends by itself
    store = RedisStore.from_url(server.url, timeout=0.05, failure_threshold=2, clock=clock)
    blocker = redis.asyncio.Redis.from_url(server.url)
    try:
        assert await store.acquire("lock", "a", 10)
        async with anyio.create_task_group() as group:  # real failures open the breaker
            group.start_soon(blocker.execute_command, "DEBUG", "SLEEP", "0.2")
            await anyio.sleep(0.05)
            for _ in range(2):
                await elapsed(lambda: store.get("k"))
        with pytest.raises(StoreError, match="circuit breaker is open"):
            await store.get("k")
        # Redis answers again: the release goes through the open breaker.  The first
        # commands after a stall can still time out on a fresh connection; a holder
        # retries its release, and so does this test (the breaker's clock stands still).
        await retried(lambda: store.release("lock", "a"))
        assert await blocker.exists("lock") == 0
    finally:
        await blocker.aclose()
        await store.aclose()


async def test_a_release_that_failed_takes_effect_once_redis_answers_again(
    server: RedisServer,
) -> None:
    user = RedisUser(server, "leader")
    store = RedisStore.from_url(user.url, timeout=0.05)
    watcher = redis.asyncio.Redis.from_url(server.url)
    try:
        acquired = time.monotonic()
        assert await store.acquire("lock", "a", 10)
        user.revoke()  # the holder is cut off from Redis for a moment
        with pytest.raises(StoreError):
            await store.release("lock", "a")
        user.restore()
        while await watcher.exists("lock"):
            assert time.monotonic() - acquired < 3, "the lock outlived its holder's failed release"
            await anyio.sleep(0.01)
        freed = time.monotonic() - acquired
        print(f"\nlock freed {freed:.3f} s after its acquisition (its release failed)")
        assert freed < LOCK_LEASE - 0.2  # by the retried release, before the lease runs out
    finally:
        await watcher.aclose()
        await store.aclose()


async def test_waiting_for_a_lock_stops_at_the_first_poll_that_fails_in_a_stall(
    server: RedisServer,
) -> None:
    holder = RedisStore.from_url(server.url, timeout=0.05)
    waiter = RedisStore.from_url(server.url, timeout=0.05)
    blocker = redis.asyncio.Redis.from_url(server.url)
    stalled_at = 0.0
    try:
        assert await holder.acquire("lock", "a", 10)
        async with anyio.create_task_group() as group:

            async def stall() -> None:
                nonlocal stalled_at
                await anyio.sleep(0.3)  # the waiter polls at its slowest pace by then
                stalled_at = time.monotonic()
                await blocker.execute_command("DEBUG", "SLEEP", "1.5")

            group.start_soon(stall)
            with pytest.raises(StoreError):
                await waiter.wait_released("lock", 10)
            waited = time.monotonic() - stalled_at
        print(f"\nwaiting for a lock stopped {waited:.3f} s into a stall (timeout 0.05 s)")
        assert waited < 0.3  # one poll's timeout and one backoff step, not a breaker's worth
    finally:
        await blocker.aclose()
        await waiter.aclose()
        await holder.aclose()


# -- the startup check --------------------------------------------------------------------


@pytest.fixture(params=["redis", pytest.param("cluster", marks=pytest.mark.cluster)])
def nodes_and_url(request: pytest.FixtureRequest) -> tuple[list[RedisServer], str]:
    """The primaries and the URL of the suite's single server, then of its cluster."""
    if request.param == "redis":
        server: RedisServer = request.getfixturevalue("redis_server")
        return [server], server.url
    cluster: RedisCluster = request.getfixturevalue("redis_cluster")
    return cluster.nodes, f"{cluster.url}?cluster=true"


async def test_check_connects_to_every_primary_and_loads_the_scripts_there(
    nodes_and_url: tuple[list[RedisServer], str],
) -> None:
    nodes, url = nodes_and_url
    for node in nodes:
        resp_command(node.host, node.port, "SCRIPT", "FLUSH")
    before = [client_count(node) for node in nodes]
    store = RedisStore.from_url(url)
    try:
        await store.check()
        after = [client_count(node) for node in nodes]
    finally:
        await store.aclose()
    assert all(now > then for now, then in zip(after, before, strict=True))
    for node in nodes:
        async with redis.asyncio.Redis(host=node.host, port=node.port) as direct:
            assert await direct.script_exists(*SCRIPT_SHAS) == [True] * len(SCRIPT_SHAS)


async def test_check_leaves_the_request_timeouts_on_the_connections_it_opened(
    nodes_and_url: tuple[list[RedisServer], str],
) -> None:
    """The startup bound is the check's alone: the requests after it keep ``timeout``."""
    _, url = nodes_and_url
    store = RedisStore.from_url(url, timeout=0.05)
    try:
        await store.check()
        client = store.client
        if isinstance(client, ClusterClient):
            nodes = client.get_nodes()
            settings = [client.nodes_manager.connection_kwargs]
            settings += [node.connection_kwargs for node in nodes]
            connections = [c for node in nodes for c in node._connections]
        else:
            settings = [client.connection_pool.connection_kwargs]
            connections = list(client.connection_pool._available_connections)
        assert connections
        for timeouts in settings:
            assert timeouts["socket_timeout"] == timeouts["socket_connect_timeout"] == 0.05
        for connection in connections:
            assert connection.socket_timeout == connection.socket_connect_timeout == 0.05
    finally:
        await store.aclose()
