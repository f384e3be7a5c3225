"""``@cache.memoize``, ``delete_memoized`` and ``get`` / ``set`` / ``delete``: memoized values."""

from __future__ import annotations

import dataclasses
import enum
import inspect
import logging
import os
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Awaitable, Callable, Sequence
from datetime import date, datetime, timezone
from decimal import Decimal
from pathlib import Path

import anyio
import pytest
from fastapi import FastAPI
from pydantic import BaseModel

from asgi_cache import Cache, CacheMiddleware, MemoryStore, StoreError
from asgi_cache.memo import memo_key
from tests.helpers import BrokenStore, Calls, Clock, MakeCache, StoreFactory, client_for

pytestmark = pytest.mark.anyio

#: A lifetime short enough for tests that wait for Redis to expire an entry.
SHORT_TTL = 0.2


class Stats(BaseModel):
    user_id: int
    score: float
    updated: datetime


@dataclasses.dataclass
class Point:
    x: int
    y: int
    label: str = "origin"


class Color(enum.Enum):
    RED = "red"


async def keyed(
    user_id: int, options: dict[str, object] | None = None, *, flag: bool = False
) -> int:
    """A module-level function, importable by another process to compute its keys."""
    return user_id


#: Arguments whose encoding must not depend on the process (a set's iteration
#: order changes with the hash seed, a dict's with insertion order).
KEYED_ARGS = "7, options={'tags': {'a', 'b', 'c', 'd'}, 'at': None, 'ratio': 0.5}, flag=True"


# -- memoize: hits, misses, keys --------------------------------------------


async def test_an_async_function_runs_once_then_hits(make_cache: MakeCache) -> None:
    cache = make_cache()
    calls = Calls()

    @cache.memoize(ttl=300, tags=("stats",))
    async def compute_stats(user_id: int) -> dict[str, int]:
        calls["stats"] += 1
        return {"user_id": user_id, "score": 42}

    first = await compute_stats(1)
    second = await compute_stats(1)
    assert first == second == {"user_id": 1, "score": 42}
    assert calls["stats"] == 1


async def test_a_sync_function_runs_in_a_worker_thread_and_is_memoized(
    make_cache: MakeCache,
) -> None:
    cache = make_cache()
    threads: list[int] = []

    @cache.memoize()
    def double(x: int) -> int:
        threads.append(threading.get_ident())
        return x * 2

    assert await double(21) == 42
    assert await double(21) == 42
    assert len(threads) == 1
    assert threads[0] != threading.get_ident()


async def test_different_arguments_are_different_entries(make_cache: MakeCache) -> None:
    cache = make_cache()
    calls = Calls()

    @cache.memoize()
    async def square(x: int) -> int:
        calls[str(x)] += 1
        return x * x

    assert [await square(x) for x in (2, 3, 2, 3)] == [4, 9, 4, 9]
    assert calls == {"2": 1, "3": 1}


async def test_positional_keyword_and_defaulted_arguments_share_an_entry(
    make_cache: MakeCache,
) -> None:
    cache = make_cache()
    calls = Calls()

    @cache.memoize()
    async def page(category: str, number: int = 1, *, size: int = 20) -> list[object]:
        calls["page"] += 1
        return [category, number, size]

    await page("fruit")
    await page(category="fruit")
    await page("fruit", 1)
    await page("fruit", number=1, size=20)
    assert calls["page"] == 1
    await page("fruit", 2)
    assert calls["page"] == 2


async def test_the_key_names_the_prefix_and_the_function(make_cache: MakeCache) -> None:
    cache = make_cache()
    memoized = cache.memoize()(keyed)
    await memoized(7, flag=True)
    key = memo_key(cache.prefix, keyed, 7, flag=True)
    head, digest = key.rsplit(":", 1)
    assert head == f"{cache.prefix}:memo:tests.test_memo.keyed"
    assert len(digest) == 32 and int(digest, 16) >= 0
    assert key == memo_key(cache.prefix, memoized, 7, None, flag=True)
    assert await cache.store.get(key) is not None


def test_keys_are_the_same_in_another_process() -> None:
    here = memo_key(
        "shop",
        keyed,
        7,
        options={"tags": {"d", "c", "b", "a"}, "ratio": 0.5, "at": None},
        flag=True,
    )
    code = (
        "from asgi_cache.memo import memo_key\n"
        "from tests.test_memo import keyed\n"
        f"print(memo_key('shop', keyed, {KEYED_ARGS}))\n"
    )
    root = Path(__file__).resolve().parents[1]
    elsewhere = set()
    for seed in ("1", "2"):
        result = subprocess.run(
            [sys.executable, "-c", code],
            cwd=root,
            env={**os.environ, "PYTHONHASHSEED": seed},
            capture_output=True,
            text=True,
            check=True,
            timeout=60,
        )
        elsewhere.add(result.stdout.strip())
    assert elsewhere == {here}


def test_equal_arguments_share_a_key_and_different_types_do_not() -> None:
    def f(value: object) -> None:
        return None

    assert memo_key("p", f, {"a": 1, "b": [1, 2]}) == memo_key("p", f, {"b": [1, 2], "a": 1})
    assert memo_key("p", f, {"x", "y", "z"}) == memo_key("p", f, frozenset("zyx"))
    assert memo_key("p", f, Point(1, 2)) == memo_key("p", f, Point(x=1, y=2, label="origin"))
    when = datetime(2024, 5, 1, 12, tzinfo=timezone.utc)
    assert memo_key("p", f, Stats(user_id=1, score=2, updated=when)) == memo_key(
        "p", f, Stats(user_id=1, score=2.0, updated=when)
    )
    distinct: Sequence[object] = [
        1, 1.0, True, "1", b"1", None, float("nan"), float("inf"), 2**70, str(2**70),
        [1], (1,), {1}, {"a": 1}, ["dict", {"a": 1}], b"\x00", "00", Color.RED, "red",
        date(2024, 5, 1), "2024-05-01", when, uuid.UUID(int=1), Decimal("1.5"), 1.5,
        Point(1, 2), {"x": 1, "y": 2, "label": "origin"},
        Stats(user_id=1, score=2, updated=when),
    ]  # fmt: skip
    keys = {memo_key("p", f, value) for value in distinct}
    assert len(keys) == len(distinct)


@pytest.mark.parametrize(
    ("argument", "reason"),
    [
        (object(), "object values have no stable key"),
        (lambda: None, "function values have no stable key"),
        ({1: "a"}, "dict key 1 is not a str"),
        ([threading.Lock()], "lock values have no stable key"),
    ],
    ids=["object", "lambda", "int-dict-key", "nested-lock"],
)
async def test_an_unkeyable_argument_raises_type_error_at_call_time(
    make_cache: MakeCache, argument: object, reason: str
) -> None:
    cache = make_cache()
    calls = Calls()

    @cache.memoize()
    async def lookup(user_id: int, context: object) -> int:
        calls["lookup"] += 1
        return user_id

    with pytest.raises(TypeError) as raised:
        await lookup(1, context=argument)
    message = str(raised.value)
    assert "test_an_unkeyable_argument_raises_type_error_at_call_time.<locals>.lookup" in message
    assert "'context'" in message
    assert reason in message
    assert calls["lookup"] == 0


async def test_a_list_that_contains_itself_is_refused_not_recursed(make_cache: MakeCache) -> None:
    cache = make_cache()

    @cache.memoize()
    async def total(values: list[object]) -> int:
        return len(values)

    loop: list[object] = []
    loop.append(loop)
    with pytest.raises(TypeError, match="nested more than"):
        await total(loop)


async def test_wrong_arguments_raise_type_error_naming_the_function(make_cache: MakeCache) -> None:
    cache = make_cache()

    @cache.memoize()
    async def one(x: int) -> int:
        return x

    with pytest.raises(TypeError, match=r"one\(\): missing a required argument"):
        await one()  # type: ignore[call-arg]


# -- invalidation --------------------------------------------------------------


async def test_delete_memoized_without_arguments_forgets_every_entry_of_that_function(
    make_cache: MakeCache,
) -> None:
    cache = make_cache()
    calls = Calls()

    @cache.memoize()
    async def compute_stats(user_id: int) -> int:
        calls[f"stats{user_id}"] += 1
        return user_id

    @cache.memoize()
    async def other(user_id: int) -> int:
        calls["other"] += 1
        return user_id

    for user_id in (1, 2, 3):
        await compute_stats(user_id)
    await other(1)
    assert await cache.delete_memoized(compute_stats) == 3
    for user_id in (1, 2, 3):
        await compute_stats(user_id)
    await other(1)
    assert calls == {"stats1": 2, "stats2": 2, "stats3": 2, "other": 1}


async def test_delete_memoized_with_arguments_forgets_exactly_that_entry(
    make_cache: MakeCache,
) -> None:
    cache = make_cache()
    calls = Calls()

    @cache.memoize()
    async def compute_stats(user_id: int, detailed: bool = False) -> int:
        calls[str(user_id)] += 1
        return user_id

    await compute_stats(123)
    await compute_stats(456)
    assert await cache.delete_memoized(compute_stats, user_id=123, detailed=False) == 1
    assert await cache.delete_memoized(compute_stats, 123) == 0
    await compute_stats(123)
    await compute_stats(456)
    assert calls == {"123": 2, "456": 1}


async def test_delete_memoized_with_arguments_keeps_out_the_result_of_a_call_running_meanwhile(
    make_cache: MakeCache,
) -> None:
    cache = make_cache()
    computing = anyio.Event()
    proceed = anyio.Event()
    runs: list[int] = []

    @cache.memoize()
    async def load_product(pid: int) -> dict[str, int]:
        runs.append(pid)
        if len(runs) == 1:
            computing.set()
            await proceed.wait()  # reads the database before the write below
        return {"pid": pid, "run": len(runs)}

    with anyio.fail_after(10):
        async with anyio.create_task_group() as group:
            group.start_soon(load_product, 1)
            await computing.wait()
            assert await cache.delete_memoized(load_product, 1) == 0  # nothing stored yet
            proceed.set()  # the first call returns its (stale) result, and must not store it
        assert await load_product(1) == {"pid": 1, "run": 2}
        assert await load_product(1) == {"pid": 1, "run": 2}


async def test_delete_memoized_with_arguments_forgets_a_result_stored_without_its_own_tag(
    make_cache: MakeCache,
) -> None:
    """As an earlier version stored them: under the function's tag only."""
    cache = make_cache()

    @cache.memoize()
    async def compute_stats(user_id: int) -> int:
        return user_id

    key = memo_key(cache.prefix, compute_stats, 7)
    assert await cache.store.set(key, b'{"v": 70}', 60, [f"{cache.prefix}:tag:memo:x"])
    assert await compute_stats(7) == 70
    assert await cache.delete_memoized(compute_stats, 7) == 1
    assert await compute_stats(7) == 7


async def test_invalidating_a_user_tag_drops_memoized_results(make_cache: MakeCache) -> None:
    cache = make_cache()
    calls = Calls()

    @cache.memoize(tags=("stats",))
    async def tagged(user_id: int) -> int:
        calls["tagged"] += 1
        return user_id

    @cache.memoize(tags=("other",))
    async def untouched(user_id: int) -> int:
        calls["untouched"] += 1
        return user_id

    await tagged(1)
    await tagged(2)
    await untouched(1)
    assert await cache.invalidate("stats") == 2
    await tagged(1)
    await untouched(1)
    assert calls == {"tagged": 3, "untouched": 1}


async def test_an_invalidation_during_the_computation_keeps_its_result_out(
    make_cache: MakeCache,
) -> None:
    cache = make_cache()
    calls = Calls()

    @cache.memoize(tags=("stats",))
    async def compute_stats(user_id: int) -> int:
        calls["stats"] += 1
        if calls["stats"] == 1:  # a write lands while the first result is computed
            await cache.invalidate("stats")
        return calls["stats"]

    assert await compute_stats(1) == 1
    assert await compute_stats(1) == 2  # the first result was not stored
    assert await compute_stats(1) == 2


async def test_delete_memoized_refuses_functions_this_cache_did_not_memoize(
    make_cache: MakeCache,
) -> None:
    cache = make_cache()
    other_cache = make_cache()

    async def plain(x: int) -> int:
        return x

    with pytest.raises(TypeError, match=r"not decorated with @cache\.memoize"):
        await cache.delete_memoized(plain)
    with pytest.raises(ValueError, match="memoized by another Cache"):
        await cache.delete_memoized(other_cache.memoize()(plain))


# -- lifetimes -----------------------------------------------------------------


def short_lived(
    store_factory: StoreFactory, **kwargs: object
) -> tuple[Cache, Callable[[], Awaitable[None]]]:
    """A cache, and a coroutine that lets ``SHORT_TTL`` pass for its store.

    A memory store runs on an injected clock; Redis expires keys on its own
    clock, so for Redis the lifetime really passes.
    """
    store = store_factory()
    prefix = f"short-{uuid.uuid4().hex}"
    if isinstance(store, MemoryStore):
        clock = Clock(0.0)

        async def advance() -> None:
            clock.advance(SHORT_TTL + 0.01)

        memory = Cache(MemoryStore(clock=clock), prefix=prefix, **kwargs)  # type: ignore[arg-type]
        return memory, advance

    async def wait() -> None:
        await anyio.sleep(SHORT_TTL + 0.15)

    return Cache(store, prefix=prefix, **kwargs), wait  # type: ignore[arg-type]


async def test_results_expire_after_their_ttl(store_factory: StoreFactory) -> None:
    cache, elapse = short_lived(store_factory)
    calls = Calls()

    @cache.memoize(ttl=SHORT_TTL)
    async def brief(x: int) -> int:
        calls["brief"] += 1
        return x

    await brief(1)
    await brief(1)
    await elapse()
    await brief(1)
    assert calls["brief"] == 2


async def test_without_a_ttl_results_live_the_caches_default_ttl(
    store_factory: StoreFactory,
) -> None:
    cache, elapse = short_lived(store_factory, default_ttl=SHORT_TTL)
    calls = Calls()

    @cache.memoize()
    async def brief(x: int) -> int:
        calls["brief"] += 1
        return x

    await brief(1)
    await brief(1)
    await elapse()
    await brief(1)
    assert calls["brief"] == 2


async def test_set_values_expire_after_their_ttl(store_factory: StoreFactory) -> None:
    cache, elapse = short_lived(store_factory)
    assert await cache.set("greeting", "hello", ttl=SHORT_TTL)
    assert await cache.get("greeting") == "hello"
    await elapse()
    assert await cache.get("greeting", default="gone") == "gone"


# -- values --------------------------------------------------------------------


async def test_a_none_result_is_cached(make_cache: MakeCache) -> None:
    cache = make_cache()
    calls = Calls()

    @cache.memoize()
    async def find(user_id: int) -> dict[str, int] | None:
        calls["find"] += 1
        return None

    assert await find(1) is None
    assert await find(1) is None
    assert calls["find"] == 1


async def test_a_pydantic_result_comes_back_as_a_model_on_a_hit(make_cache: MakeCache) -> None:
    cache = make_cache()
    when = datetime(2024, 5, 1, 12, tzinfo=timezone.utc)

    @cache.memoize()
    async def compute_stats(user_id: int) -> Stats:
        return Stats(user_id=user_id, score=4.5, updated=when)

    @cache.memoize()
    def maybe_stats(user_id: int) -> Stats | None:
        return Stats(user_id=user_id, score=1, updated=when) if user_id else None

    miss = await compute_stats(1)
    hit = await compute_stats(1)
    assert isinstance(hit, Stats)
    assert hit == miss
    await maybe_stats(1)
    await maybe_stats(0)
    assert await maybe_stats(1) == Stats(user_id=1, score=1, updated=when)
    assert await maybe_stats(0) is None


async def test_a_dataclass_result_comes_back_as_a_dataclass_on_a_hit(
    make_cache: MakeCache,
) -> None:
    cache = make_cache()

    @cache.memoize()
    async def locate(name: str) -> Point:
        return Point(3, 4, label=name)

    assert await locate("home") == Point(3, 4, "home")
    hit = await locate("home")
    assert isinstance(hit, Point)
    assert hit == Point(3, 4, "home")


async def test_other_results_come_back_as_their_json_round_trip(make_cache: MakeCache) -> None:
    cache = make_cache()
    when = datetime(2024, 5, 1, 12, tzinfo=timezone.utc)

    @cache.memoize()
    async def snapshot() -> dict[str, object]:
        return {"pair": (1, 2), "at": when, "id": uuid.UUID(int=1)}

    assert await snapshot() == {"pair": (1, 2), "at": when, "id": uuid.UUID(int=1)}
    assert await snapshot() == {
        "pair": [1, 2],
        "at": "2024-05-01T12:00:00+00:00",
        "id": "00000000-0000-0000-0000-000000000001",
    }


async def test_an_unserialisable_result_is_returned_uncached_with_one_warning(
    make_cache: MakeCache, caplog: pytest.LogCaptureFixture
) -> None:
    cache = make_cache()
    calls = Calls()
    marker = object()

    @cache.memoize()
    async def opaque(x: int) -> object:
        calls["opaque"] += 1
        return {"handle": marker}

    with caplog.at_level(logging.WARNING, logger="asgi_cache"):
        assert await opaque(1) == {"handle": marker}
        assert await opaque(1) == {"handle": marker}
        assert await opaque(2) == {"handle": marker}
    assert calls["opaque"] == 3
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1
    assert "opaque" in warnings[0].getMessage()
    assert "returned uncached" in warnings[0].getMessage()


async def test_a_corrupt_stored_value_is_a_miss(make_cache: MakeCache) -> None:
    cache = make_cache()
    calls = Calls()

    @cache.memoize()
    async def square(x: int) -> int:
        calls["square"] += 1
        return x * x

    await cache.store.set(memo_key(cache.prefix, square, 3), b"\x00not json", 60)
    assert await square(3) == 9
    assert await square(3) == 9
    assert calls["square"] == 1


async def test_a_stored_value_that_no_longer_fits_the_model_is_a_miss(
    make_cache: MakeCache,
) -> None:
    cache = make_cache()
    calls = Calls()

    @cache.memoize()
    async def locate(name: str) -> Point:
        calls["locate"] += 1
        return Point(1, 2, label=name)

    await cache.store.set(memo_key(cache.prefix, locate, "a"), b'{"v":{"lat":1}}', 60)
    assert await locate("a") == Point(1, 2, "a")
    assert calls["locate"] == 1


async def test_an_exception_is_raised_and_not_cached(make_cache: MakeCache) -> None:
    cache = make_cache()
    calls = Calls()

    @cache.memoize()
    async def flaky(x: int) -> int:
        calls["flaky"] += 1
        if calls["flaky"] == 1:
            raise RuntimeError("database away")
        return x

    with pytest.raises(RuntimeError, match="database away"):
        await flaky(1)
    assert await flaky(1) == 1
    assert await flaky(1) == 1
    assert calls["flaky"] == 2


# -- coalescing and failures ---------------------------------------------------


@pytest.mark.parametrize("kind", ["async", "sync"])
async def test_concurrent_calls_with_the_same_arguments_run_the_function_once(
    make_cache: MakeCache, kind: str
) -> None:
    cache = make_cache()
    calls = Calls()

    if kind == "async":

        @cache.memoize()
        async def report(day: str) -> dict[str, object]:
            calls["report"] += 1
            await anyio.sleep(0.2)
            return {"day": day, "run": calls["report"]}
    else:

        @cache.memoize()
        def report(day: str) -> dict[str, object]:
            calls["report"] += 1
            time.sleep(0.2)
            return {"day": day, "run": calls["report"]}

    results: list[dict[str, object]] = []

    async def call() -> None:
        results.append(await report("mon"))

    async with anyio.create_task_group() as group:
        for _ in range(100):
            group.start_soon(call)
    assert calls["report"] == 1
    assert results == [{"day": "mon", "run": 1}] * 100


async def test_a_failing_store_still_computes_and_returns() -> None:
    cache = Cache(BrokenStore(StoreError))
    calls = Calls()

    @cache.memoize()
    async def compute_stats(user_id: int) -> dict[str, int]:
        calls["stats"] += 1
        return {"user_id": user_id}

    @cache.memoize()
    def sync_stats(user_id: int) -> int:
        calls["sync"] += 1
        return user_id

    assert await compute_stats(1) == {"user_id": 1}
    assert await compute_stats(1) == {"user_id": 1}
    assert await sync_stats(2) == 2
    assert calls == {"stats": 2, "sync": 1}
    assert await cache.get("k", default="fallback") == "fallback"
    assert await cache.set("k", 1) is False


async def test_removals_on_a_failing_store_raise() -> None:
    cache = Cache(BrokenStore(StoreError))

    @cache.memoize()
    async def compute_stats(user_id: int) -> int:
        return user_id

    with pytest.raises(StoreError):
        await cache.delete_memoized(compute_stats)
    with pytest.raises(StoreError):
        await cache.delete_memoized(compute_stats, 1)
    with pytest.raises(StoreError):
        await cache.delete("k")


# -- get / set / delete --------------------------------------------------------


async def test_get_set_and_delete_keep_json_values(make_cache: MakeCache) -> None:
    cache = make_cache()
    assert await cache.get("config") is None
    assert await cache.get("config", default={"fresh": True}) == {"fresh": True}
    assert await cache.set("config", {"theme": "dark", "sizes": [1, 2]}, ttl=60)
    assert await cache.get("config") == {"theme": "dark", "sizes": [1, 2]}
    assert await cache.set("nothing", None)
    assert await cache.get("nothing", default="absent") is None
    assert await cache.delete("config") is True
    assert await cache.delete("config") is False
    assert await cache.get("config", default="gone") == "gone"
    assert await cache.store.get(f"{cache.prefix}:data:nothing") is not None


async def test_set_values_are_dropped_by_their_tags(make_cache: MakeCache) -> None:
    cache = make_cache()
    await cache.set("a", 1, tags=("stats",))
    await cache.set("b", 2)
    assert await cache.invalidate("stats") == 1
    assert await cache.get("a") is None
    assert await cache.get("b") == 2


async def test_set_stores_models_and_dataclasses_as_json(make_cache: MakeCache) -> None:
    cache = make_cache()
    when = datetime(2024, 5, 1, 12, tzinfo=timezone.utc)
    await cache.set("stats", Stats(user_id=1, score=2, updated=when))
    await cache.set("point", Point(1, 2))
    assert await cache.get("stats") == {
        "user_id": 1,
        "score": 2.0,
        "updated": "2024-05-01T12:00:00Z",
    }
    assert await cache.get("point") == {"x": 1, "y": 2, "label": "origin"}


async def test_set_refuses_bad_keys_lifetimes_and_values(make_cache: MakeCache) -> None:
    cache = make_cache()
    with pytest.raises(ValueError, match="key must not be empty"):
        await cache.set("", 1)
    with pytest.raises(TypeError, match="key must be a str"):
        await cache.get(b"k")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="ttl"):
        await cache.set("k", 1, ttl=0)
    with pytest.raises(TypeError, match="tags must be a tuple"):
        await cache.set("k", 1, tags="stats")
    with pytest.raises(TypeError, match="cannot be stored as JSON"):
        await cache.set("k", object())
    assert await cache.get("k", default="unset") == "unset"


# -- the decorator -------------------------------------------------------------


@pytest.mark.parametrize(
    ("ttl", "tags", "error", "message"),
    [
        (0, (), ValueError, "ttl must be a positive"),
        (-1, (), ValueError, "ttl must be a positive"),
        (float("inf"), (), ValueError, "ttl must be a positive"),
        (float("nan"), (), ValueError, "ttl must be a positive"),
        (True, (), TypeError, "ttl must be a number"),
        ("60", (), TypeError, "ttl must be a number"),
        (None, "stats", TypeError, "tags must be a tuple"),
        (None, ("",), ValueError, "non-empty string"),
        (None, ("user:{user_id}",), ValueError, "placeholders are not supported"),
    ],
)
def test_decoration_checks_ttl_and_tags_naming_the_function(
    ttl: object, tags: object, error: type[Exception], message: str
) -> None:
    cache = Cache()

    async def compute_stats(user_id: int) -> int:
        return user_id

    with pytest.raises(error, match=message) as raised:
        cache.memoize(ttl, tags=tags)(compute_stats)  # type: ignore[arg-type]
    assert "compute_stats" in str(raised.value)


def test_memoize_without_parentheses_and_lambdas_are_refused() -> None:
    cache = Cache()

    async def compute_stats(user_id: int) -> int:
        return user_id

    with pytest.raises(TypeError, match="with parentheses"):
        cache.memoize(compute_stats)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="lambda"):
        cache.memoize()(lambda x: x)


async def test_the_wrapper_keeps_the_functions_metadata() -> None:
    cache = Cache()

    def compute_stats(user_id: int, detailed: bool = False) -> int:
        """Heavy SQL."""
        return user_id

    memoized = cache.memoize()(compute_stats)
    assert memoized.__name__ == "compute_stats"
    assert memoized.__doc__ == "Heavy SQL."
    assert memoized.__wrapped__ is compute_stats  # type: ignore[attr-defined]
    assert inspect.iscoroutinefunction(memoized)
    assert str(inspect.signature(memoized)) == str(inspect.signature(compute_stats))
    assert await memoized(5) == 5


async def test_without_coalescing_concurrent_calls_each_run(make_cache: MakeCache) -> None:
    cache = make_cache(coalesce=False)
    calls = Calls()

    @cache.memoize()
    async def report(day: str) -> str:
        calls["report"] += 1
        await anyio.sleep(0.05)
        return day

    async with anyio.create_task_group() as group:
        for _ in range(5):
            group.start_soon(report, "mon")
    assert calls["report"] == 5
    assert await report("mon") == "mon"
    assert calls["report"] == 5


def test_memoized_functions_lists_them_by_qualified_name() -> None:
    cache = Cache()
    memoized = cache.memoize()(keyed)
    assert cache.memoized_functions() == {"tests.test_memo.keyed": memoized}
    assert Cache().memoized_functions() == {}


async def test_a_write_route_drops_the_memoized_value_a_read_route_uses(
    make_cache: MakeCache,
) -> None:
    """The tutorial's product API: GET uses a memoized loader, PUT deletes its entry."""
    cache = make_cache()
    database = {1: "apple", 2: "pear"}
    loads = Calls()

    @cache.memoize(ttl=120)
    async def load_product(pid: int) -> dict[str, object]:
        loads[str(pid)] += 1
        return {"id": pid, "name": database[pid]}

    app = FastAPI()
    app.add_middleware(CacheMiddleware, cache=cache)

    @app.get("/products/{pid}")
    async def product(pid: int) -> dict[str, object]:
        return await load_product(pid)

    @app.put("/products/{pid}")
    async def update_product(pid: int, name: str) -> dict[str, object]:
        database[pid] = name
        await cache.delete_memoized(load_product, pid)
        return {"status": "updated", "id": pid}

    async with client_for(app) as client:
        await client.get("/products/1")
        await client.get("/products/2")
        cached_read = await client.get("/products/1")
        await client.put("/products/1", params={"name": "cherry"})
        fresh = await client.get("/products/1")
        other = await client.get("/products/2")
    assert cached_read.json() == {"id": 1, "name": "apple"}
    assert fresh.json() == {"id": 1, "name": "cherry"}
    assert other.json() == {"id": 2, "name": "pear"}
    assert loads == {"1": 2, "2": 1}
