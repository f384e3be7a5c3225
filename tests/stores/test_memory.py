"""MemoryStore: a bounded LRU with TTLs and tag invalidation, accounted in bytes.

What every store does is in ``test_contract.py``; this file holds what is the memory store's
own: LRU order, eviction, bytes accounting, an injectable clock and per-instance state.
"""

from __future__ import annotations

import gc
import os
import random
import tracemalloc
from collections.abc import Sequence

import anyio
import pytest

from asgi_cache.stores.memory import MAX_REMEMBERED_INVALIDATIONS, MemoryStore

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


class FakeClock:
    """A clock that only moves when a test says so."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


async def size_of(key: str, value: bytes, tags: Sequence[str] = ()) -> int:
    """What one entry adds to ``bytes_used``, learnt from a store holding only that entry."""
    store = MemoryStore()
    assert await store.set(key, value, 60, tags)
    return store.bytes_used


async def test_entry_is_served_until_its_ttl_elapses_and_gone_from_then_on() -> None:
    clock = FakeClock()
    store = MemoryStore(clock=clock)
    await store.set("k", b"v", 10)
    clock.now += 9.999
    assert await store.get("k") == b"v"
    clock.now += 0.001
    assert await store.get("k") is None
    assert store.entries == 0
    assert store.bytes_used == 0


async def test_least_recently_used_entry_is_evicted_first_when_bytes_run_out() -> None:
    store = MemoryStore(max_bytes=3 * await size_of("a", b"x" * 100))
    for key in "abc":
        await store.set(key, b"x" * 100, 60)
    await store.get("a")
    await store.set("d", b"x" * 100, 60)
    assert [await store.get(key) is not None for key in "abcd"] == [True, False, True, True]
    assert store.evictions == 1


async def test_least_recently_used_entry_is_evicted_first_when_entries_run_out() -> None:
    store = MemoryStore(max_entries=3)
    for key in "abc":
        await store.set(key, b"v", 60)
    await store.get("a")
    await store.set("d", b"v", 60)
    assert [await store.get(key) is not None for key in "abcd"] == [True, False, True, True]
    assert store.evictions == 1


async def test_expired_entries_make_room_before_live_ones_are_evicted() -> None:
    clock = FakeClock()
    store = MemoryStore(max_entries=2, clock=clock)
    await store.set("short", b"v", 1)
    await store.set("long", b"v", 60)
    clock.now += 1
    await store.set("new", b"v", 60)
    assert await store.get("long") == b"v"
    assert store.evictions == 0


async def test_value_larger_than_max_bytes_is_refused() -> None:
    store = MemoryStore(max_bytes=1000)
    assert await store.set("k", b"x" * 1000, 60) is False
    assert await store.get("k") is None
    assert store.bytes_used == 0


async def test_refused_oversize_value_removes_the_entry_it_would_replace() -> None:
    store = MemoryStore(max_bytes=1000)
    await store.set("k", b"old", 60)
    assert await store.set("k", b"x" * 1000, 60) is False
    assert await store.get("k") is None


async def test_replacing_a_key_accounts_for_the_new_value_only() -> None:
    store = MemoryStore()
    await store.set("k", b"x" * 10, 60, ["a"])
    await store.set("k", b"x" * 5000, 60, ["b"])
    assert store.bytes_used == await size_of("k", b"x" * 5000, ["b"])
    assert store.entries == 1


async def test_replacing_a_key_replaces_its_tags() -> None:
    store = MemoryStore()
    await store.set("k", b"v", 60, ["old"])
    await store.set("k", b"v", 60, ["new"])
    assert await store.invalidate(["old"]) == 0
    assert await store.get("k") == b"v"


async def test_bytes_used_never_exceeds_max_bytes() -> None:
    store = MemoryStore(max_bytes=20_000)
    rng = random.Random(0)
    for i in range(200):
        await store.set(f"key{i}", os.urandom(rng.randrange(1, 2000)), 60, [f"t{i % 7}"])
        assert store.bytes_used <= 20_000
    assert store.evictions > 0


async def test_a_set_refused_by_its_fence_adds_no_bytes() -> None:
    store = MemoryStore()
    fence = await store.fence(["red"])
    await store.invalidate(["red"])
    assert await store.set("k", b"stale", 60, ["red"], fence) is False
    assert store.bytes_used == 0


async def test_fence_older_than_the_remembered_invalidations_is_refused() -> None:
    store = MemoryStore()
    fence = await store.fence(["red"])
    for i in range(MAX_REMEMBERED_INVALIDATIONS + 1):
        await store.invalidate([f"other{i}"])
    assert await store.set("k", b"v", 60, ["red"], fence) is False


async def test_expired_entry_leaves_no_tag_index_behind() -> None:
    clock = FakeClock()
    store = MemoryStore(clock=clock)
    await store.set("k", b"v", 10, ["red", "blue"])
    clock.now += 10
    assert await store.get("k") is None
    assert store.bytes_used == 0
    assert await store.invalidate(["red", "blue"]) == 0


async def test_evicted_entry_leaves_no_tag_index_behind() -> None:
    store = MemoryStore(max_entries=1)
    await store.set("old", b"v", 60, ["red"])
    await store.set("new", b"v", 60, ["blue"])
    assert await store.invalidate(["red"]) == 0
    assert store.bytes_used == await size_of("new", b"v", ["blue"])
    await store.delete("new")
    assert store.bytes_used == 0


async def test_clear_releases_the_bytes_of_the_cleared_entries_and_their_tags() -> None:
    store = MemoryStore()
    await store.set("app:a", b"v", 60, ["red"])
    await store.set("other:a", b"v", 60, ["blue"])
    assert await store.clear("app:") == 1
    assert store.bytes_used == await size_of("other:a", b"v", ["blue"])


async def test_aclose_drops_everything_when_told_to_clear_on_close() -> None:
    store = MemoryStore(clear_on_close=True)
    await store.set("k", b"v", 60, ["red"])
    await store.aclose()
    assert store.entries == 0
    assert store.bytes_used == 0


async def test_aclose_keeps_the_entries_by_default() -> None:
    store = MemoryStore()
    await store.set("k", b"v", 60, ["red"])
    await store.aclose()
    assert await store.get("k") == b"v"


async def test_a_fence_taken_before_aclose_is_stale_after_it() -> None:
    store = MemoryStore()
    fence = await store.fence(["red"])
    await store.aclose()
    assert await store.set("k", b"v", 60, ["red"], fence) is False


async def test_two_instances_do_not_share_state() -> None:
    first, second = MemoryStore(), MemoryStore()
    await first.set("k", b"v", 60, ["red"])
    fence = await second.fence(["red"])
    await first.invalidate(["red"])
    assert await second.get("k") is None
    assert second.bytes_used == 0
    assert await second.set("k", b"v", 60, ["red"], fence) is True


async def test_concurrent_tasks_leave_consistent_accounting() -> None:
    store = MemoryStore(max_bytes=200_000)

    def tags_of(key: str) -> list[str]:
        return [f"t{int(key) % 5}", f"u{int(key) % 3}"]

    async def worker(seed: int) -> None:
        rng = random.Random(seed)
        for _ in range(20):
            key = str(rng.randrange(300))
            action = rng.random()
            if action < 0.6:
                fence = await store.fence(tags_of(key))
                await anyio.sleep(0)
                await store.set(key, os.urandom(rng.randrange(1, 3000)), 60, tags_of(key), fence)
            elif action < 0.9:
                await store.get(key)
            else:
                await store.invalidate(tags_of(key)[:1])
            await anyio.sleep(0)

    async with anyio.create_task_group() as tg:
        for seed in range(200):
            tg.start_soon(worker, seed)

    replay = MemoryStore()
    for i in range(300):
        value = await store.get(str(i))
        if value is not None:
            await replay.set(str(i), value, 60, tags_of(str(i)))
    assert store.entries == replay.entries
    assert store.bytes_used == replay.bytes_used
    await store.clear("")
    assert store.bytes_used == 0


@pytest.mark.parametrize(
    ("count", "value_size", "tagged"),
    [(500, 1024, True), (2000, 100, True), (2000, 100, False)],
)
async def test_bytes_used_is_within_20_percent_of_traced_memory(
    count: int, value_size: int, tagged: bool
) -> None:
    gc.collect()
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        store = MemoryStore()
        for i in range(count):
            tags = [f"user:{i % 50}", f"page:{i}"] if tagged else []
            await store.set(os.urandom(16).hex(), os.urandom(value_size), 60, tags)
        gc.collect()
        traced = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    ratio = store.bytes_used / traced
    assert 0.8 <= ratio <= 1.2, ratio


@pytest.mark.parametrize(
    "kwargs",
    [
        {"max_bytes": 0},
        {"max_bytes": -1},
        {"max_bytes": 1.5},
        {"max_bytes": True},
        {"max_entries": 0},
        {"max_entries": -3},
        {"max_entries": 2.0},
    ],
)
def test_invalid_limits_raise_value_error(kwargs: dict[str, object]) -> None:
    with pytest.raises(ValueError, match="must be a positive int"):
        MemoryStore(**kwargs)  # type: ignore[arg-type]
