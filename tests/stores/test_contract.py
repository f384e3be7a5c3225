"""The Store contract: what every store must do, run over memory, Redis and Redis Cluster.

The middleware and :class:`~asgi_cache.Cache` rely on nothing else, so a new store is one file
plus one entry in the ``store_factory`` fixture (``tests/conftest.py``) to pass this suite.
Expiry uses short real TTLs with bounded polling, since a Redis cannot take an injected clock.
Every key and tag starts with a prefix of the test's own: the Redis kinds share one server.
"""

from __future__ import annotations

import math
import time
import uuid
from collections.abc import Awaitable, Callable

import anyio
import pytest

from asgi_cache.stores.base import Store
from tests.helpers import StoreFactory

pytestmark = pytest.mark.anyio

#: A TTL short enough to wait out, long enough to read an entry back before it elapses.
SHORT_TTL = 0.1
#: How long a test polls for something a short TTL promises before it fails.
PATIENCE = 3.0


@pytest.fixture
def store(store_factory: StoreFactory) -> Store:
    return store_factory()


@pytest.fixture
def p() -> str:
    """A prefix of the test's own for keys, tags and lock names."""
    return f"contract{uuid.uuid4().hex[:8]}:"


def locks(store: Store) -> bool:
    """Whether the store implements locks; the default ``acquire`` always succeeds."""
    return type(store).acquire is not Store.acquire


async def eventually(condition: Callable[[], Awaitable[bool]]) -> float:
    """Poll ``condition`` until it holds; return when it did (monotonic), fail after PATIENCE."""
    with anyio.fail_after(PATIENCE):
        while not await condition():
            await anyio.sleep(0.01)
    return time.monotonic()


# -- get and set --------------------------------------------------------------------------


@pytest.mark.parametrize(
    "value",
    [
        pytest.param(b"value", id="ascii"),
        pytest.param(bytes(range(256)), id="every-byte"),
        pytest.param(b"", id="empty"),
        pytest.param(b"\x00\xff" * 500_000, id="one-megabyte"),
    ],
)
async def test_get_returns_exactly_the_bytes_set(store: Store, p: str, value: bytes) -> None:
    assert await store.set(f"{p}k", value, 60) is True
    assert await store.get(f"{p}k") == value


async def test_get_of_a_missing_key_returns_none(store: Store, p: str) -> None:
    assert await store.get(f"{p}missing") is None


@pytest.mark.parametrize("ttl", [0, -1, -math.inf, math.nan])
async def test_set_with_a_ttl_that_is_not_positive_stores_nothing(
    store: Store, p: str, ttl: float
) -> None:
    assert await store.set(f"{p}k", b"v", ttl, [f"{p}tag"]) is False
    assert await store.get(f"{p}k") is None
    assert await store.invalidate([f"{p}tag"]) == 0


async def test_an_entry_is_gone_once_its_ttl_has_elapsed_and_not_before(
    store: Store, p: str
) -> None:
    start = time.monotonic()
    assert await store.set(f"{p}k", b"v", SHORT_TTL) is True
    gone_at = await eventually(lambda: _absent(store, f"{p}k"))
    assert gone_at - start >= SHORT_TTL - 0.005  # the store's clock may tick in milliseconds


async def test_set_replaces_the_value_of_a_key_and_indexes_it_by_the_new_tags(
    store: Store, p: str
) -> None:
    """Whether the old tags still reach the key is left to the store: removing too much is
    safe (RedisStore keeps the key in an old tag's member set), removing too little is not."""
    await store.set(f"{p}k", b"old", 60, [f"{p}old"])
    assert await store.set(f"{p}k", b"new", 60, [f"{p}new"]) is True
    assert await store.get(f"{p}k") == b"new"
    assert await store.invalidate([f"{p}new"]) == 1
    assert await store.get(f"{p}k") is None


# -- delete -------------------------------------------------------------------------------


async def test_delete_removes_the_key_and_returns_whether_it_was_present(
    store: Store, p: str
) -> None:
    await store.set(f"{p}k", b"v", 60, [f"{p}tag"])
    assert await store.delete(f"{p}k") is True
    assert await store.get(f"{p}k") is None
    assert await store.delete(f"{p}k") is False


async def test_delete_of_an_expired_entry_returns_false(store: Store, p: str) -> None:
    await store.set(f"{p}k", b"v", SHORT_TTL)
    await anyio.sleep(SHORT_TTL * 2)  # not polled: a read could drop the entry first
    assert await store.delete(f"{p}k") is False


# -- tags ---------------------------------------------------------------------------------


async def test_invalidate_removes_exactly_the_tagged_entries_and_counts_them(
    store: Store, p: str
) -> None:
    red, blue = f"{p}tag:red", f"{p}tag:blue"
    await store.set(f"{p}a", b"a", 60, [red])
    await store.set(f"{p}b", b"b", 60, [red, blue])
    await store.set(f"{p}c", b"c", 60, [blue])
    await store.set(f"{p}d", b"d", 60)

    assert await store.invalidate([red]) == 2

    assert [await store.get(f"{p}{key}") for key in "abcd"] == [None, None, b"c", b"d"]


async def test_invalidate_counts_an_entry_under_several_of_the_tags_once(
    store: Store, p: str
) -> None:
    tags = [f"{p}tag:{n}" for n in range(5)]
    await store.set(f"{p}k", b"v", 60, tags)
    assert await store.invalidate(tags) == 1


async def test_invalidate_does_not_count_entries_that_already_expired(store: Store, p: str) -> None:
    tag = f"{p}tag"
    await store.set(f"{p}gone", b"v", SHORT_TTL, [tag])
    await store.set(f"{p}live", b"v", 60, [tag])
    await anyio.sleep(SHORT_TTL * 2)  # not polled: a read could drop the entry first
    assert await store.invalidate([tag]) == 1


async def test_invalidate_of_an_unknown_tag_or_of_no_tags_removes_nothing(
    store: Store, p: str
) -> None:
    await store.set(f"{p}k", b"v", 60, [f"{p}tag:a"])
    assert await store.invalidate([f"{p}tag:b"]) == 0
    assert await store.invalidate([]) == 0
    assert await store.get(f"{p}k") == b"v"


async def test_an_unfenced_set_is_still_indexed_by_its_tags(store: Store, p: str) -> None:
    tag = f"{p}tag"
    assert await store.set(f"{p}k", b"v", 60, [tag]) is True
    assert await store.invalidate([tag]) == 1
    assert await store.get(f"{p}k") is None


async def test_invalidating_again_removes_nothing_more_and_keeps_earlier_fences_stale(
    store: Store, p: str
) -> None:
    tag = f"{p}tag"
    await store.set(f"{p}k", b"v", 60, [tag])
    fence = await store.fence([tag])
    assert await store.invalidate([tag]) == 1
    assert await store.invalidate([tag]) == 0
    assert await store.get(f"{p}k") is None
    assert await store.set(f"{p}k", b"stale", 60, [tag], fence) is False


@pytest.mark.parametrize("steps", range(8))
async def test_an_invalidation_cut_off_by_cancellation_is_completed_by_the_next_one(
    store: Store, p: str, steps: int
) -> None:
    """``steps`` event-loop turns before the cancellation land it anywhere in the call: before
    it reaches the store, while a store waits for a reply, between its round trips."""
    tag = f"{p}tag"
    keys = [f"{p}{n}" for n in range(20)]
    for key in keys:
        await store.set(key, b"v", 60, [tag])
    fence = await store.fence([tag])

    async with anyio.create_task_group() as group:
        group.start_soon(store.invalidate, [tag])
        for _ in range(steps):
            await anyio.sleep(0)
        group.cancel_scope.cancel()

    await store.invalidate([tag])
    assert [key for key in keys if await store.get(key) is not None] == []
    assert await store.set(f"{p}late", b"stale", 60, [tag], fence) is False


# -- fences -------------------------------------------------------------------------------


async def test_a_set_fenced_before_an_invalidation_of_its_tag_is_refused(
    store: Store, p: str
) -> None:
    tag = f"{p}tag"
    fence = await store.fence([tag])
    await store.invalidate([tag])
    assert await store.set(f"{p}k", b"stale", 60, [tag], fence) is False
    assert await store.get(f"{p}k") is None


async def test_a_set_fenced_after_an_invalidation_is_stored(store: Store, p: str) -> None:
    tag = f"{p}tag"
    await store.invalidate([tag])
    fence = await store.fence([tag])
    assert await store.set(f"{p}k", b"fresh", 60, [tag], fence) is True
    assert await store.get(f"{p}k") == b"fresh"


async def test_invalidating_other_tags_does_not_refuse_a_fenced_set(store: Store, p: str) -> None:
    tags = [f"{p}tag:a", f"{p}tag:b"]
    fence = await store.fence(tags)
    await store.invalidate([f"{p}tag:other"])
    assert await store.set(f"{p}k", b"v", 60, tags, fence) is True
    assert await store.get(f"{p}k") == b"v"


async def test_a_fenced_set_is_indexed_by_its_tags(store: Store, p: str) -> None:
    tag = f"{p}tag"
    assert await store.set(f"{p}k", b"v", 60, [tag], await store.fence([tag])) is True
    assert await store.invalidate([tag]) == 1
    assert await store.get(f"{p}k") is None


# -- clear --------------------------------------------------------------------------------


async def test_clear_removes_only_keys_with_the_prefix_and_counts_them(
    store: Store, p: str
) -> None:
    for key in ("app:a", "app:b", "other:a", "ap"):
        await store.set(f"{p}{key}", b"v", 60, [f"{p}tag"])
    assert await store.clear(f"{p}app:") == 2
    assert await store.get(f"{p}app:a") is None
    assert await store.get(f"{p}app:b") is None
    assert await store.get(f"{p}other:a") == b"v"
    assert await store.get(f"{p}ap") == b"v"
    assert await store.invalidate([f"{p}tag"]) == 2  # the cleared entries are not counted


async def test_clear_of_a_prefix_nothing_has_removes_nothing(store: Store, p: str) -> None:
    await store.set(f"{p}k", b"v", 60)
    assert await store.clear(f"{p}none:") == 0
    assert await store.get(f"{p}k") == b"v"


# -- locks --------------------------------------------------------------------------------


async def test_acquire_of_a_free_lock_succeeds(store: Store, p: str) -> None:
    assert await store.acquire(f"{p}lock", "a", 10) is True


async def test_a_held_lock_refuses_other_tokens_on_a_store_that_locks(store: Store, p: str) -> None:
    await store.acquire(f"{p}lock", "a", 10)
    # A store without locks (per process: nobody to coordinate with) admits everyone.
    assert await store.acquire(f"{p}lock", "b", 10) is not locks(store)


async def test_release_by_the_holder_frees_the_lock(store: Store, p: str) -> None:
    await store.acquire(f"{p}lock", "a", 10)
    await store.release(f"{p}lock", "a")
    assert await store.acquire(f"{p}lock", "b", 10) is True


async def test_release_by_another_token_never_frees_the_holders_lock(store: Store, p: str) -> None:
    await store.acquire(f"{p}lock", "a", 10)
    await store.release(f"{p}lock", "not-a")
    assert await store.acquire(f"{p}lock", "b", 10) is not locks(store)


async def test_a_lock_frees_itself_once_its_ttl_has_elapsed(store: Store, p: str) -> None:
    await store.acquire(f"{p}lock", "a", SHORT_TTL)
    await eventually(lambda: store.acquire(f"{p}lock", "b", 10))


async def test_wait_released_returns_within_its_timeout_while_the_lock_is_held(
    store: Store, p: str
) -> None:
    await store.acquire(f"{p}lock", "a", 10)
    start = time.monotonic()
    await store.wait_released(f"{p}lock", SHORT_TTL)
    assert time.monotonic() - start < SHORT_TTL + 0.5


async def test_wait_released_returns_soon_once_the_lock_is_released(store: Store, p: str) -> None:
    await store.acquire(f"{p}lock", "a", 10)
    start = time.monotonic()
    async with anyio.create_task_group() as group:

        async def release_later() -> None:
            await anyio.sleep(0.05)
            await store.release(f"{p}lock", "a")

        group.start_soon(release_later)
        await store.wait_released(f"{p}lock", 10)
    assert time.monotonic() - start < 1.0


async def test_wait_released_of_a_free_lock_returns_at_once(store: Store, p: str) -> None:
    start = time.monotonic()
    await store.wait_released(f"{p}lock", 10)
    assert time.monotonic() - start < 0.5


# -- stats and aclose ---------------------------------------------------------------------


async def test_stats_is_a_dict_of_names_to_ints(store: Store, p: str) -> None:
    await store.set(f"{p}k", b"v", 60, [f"{p}tag"])
    stats = store.stats()
    assert isinstance(stats, dict)
    assert all(isinstance(name, str) and type(value) is int for name, value in stats.items())


async def test_aclose_returns_and_may_be_repeated(store: Store, p: str) -> None:
    await store.set(f"{p}k", b"v", 60, [f"{p}tag"])
    with anyio.fail_after(PATIENCE):
        await store.aclose()
        await store.aclose()


async def _absent(store: Store, key: str) -> bool:
    return await store.get(key) is None
