"""The near cache: how fast a write reaches another store's tier, and what a hit costs.

Run from the repository root, against a throwaway Redis you started yourself::

    python -m benchmarks.near_cache --redis-url redis://127.0.0.1:PORT/0 [--samples 2000]

Propagation: a writer store and a reader store (two processes' worth of state, in one
event loop here) share one Redis; while ``--load`` tasks keep both busy (reader hits and
misses, writer sets on other keys), each sample makes sure the reader holds a copy of a
key, overwrites the key through the writer, and records the time from just before the
write to the moment the reader's tier drops the copy (the write's round trip included).

Hit cost: the same cached GET answered in-process by CacheMiddleware over a MemoryStore,
over a RedisStore, and over a RedisStore with a near cache (mean microseconds per request).
Keys live under a random prefix, removed at the end.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time
import uuid
from collections.abc import Callable

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import Route
from starlette.types import Message

from asgi_cache import Cache, CacheMiddleware, MemoryStore, cached
from asgi_cache.stores.base import Store
from asgi_cache.stores.near import NearCache
from asgi_cache.stores.redis import RedisStore


async def _until(condition: Callable[[], bool]) -> None:
    while not condition():
        await asyncio.sleep(0.001)


async def propagation(url: str, samples: int, load: int) -> list[float]:
    prefix = f"bench-near-{uuid.uuid4().hex[:8]}:"
    writer = RedisStore.from_url(url, timeout=1.0)
    reader = RedisStore.from_url(url, timeout=1.0, near_cache=NearCache(prefix=prefix))
    near = reader.near_cache
    assert near is not None
    dropped: dict[str, float] = {}
    drop = near.drop

    def recording_drop(key: str) -> None:
        dropped.setdefault(key, time.perf_counter())
        drop(key)

    near.drop = recording_drop  # type: ignore[method-assign]
    while not near.active:
        await reader.get(prefix + "probe")
        await asyncio.sleep(0.01)
    stop = asyncio.Event()

    async def busy(i: int) -> None:
        while not stop.is_set():
            await reader.get(f"{prefix}hot{i % 20}")
            await writer.set(f"{prefix}load{i}", b"x" * 1000, 60)

    for i in range(20):
        await writer.set(f"{prefix}hot{i}", b"h" * 1000, 60)
    tasks = [asyncio.ensure_future(busy(i)) for i in range(load)]
    delays = []
    try:
        for n in range(samples):
            key = f"{prefix}k{n}"
            await writer.set(key, b"old", 60)
            hits = near.hits
            while near.hits == hits:  # the reader holds a copy
                await reader.get(key)
            dropped.pop(key, None)
            started = time.perf_counter()
            await writer.set(key, b"new", 60)
            await _until(lambda key=key: key in dropped)  # type: ignore[misc]
            delays.append(dropped[key] - started)
    finally:
        stop.set()
        await asyncio.gather(*tasks)
        await writer.clear(prefix)
        await writer.aclose()
        await reader.aclose()
    return delays


def _app(cache: Cache) -> Starlette:
    @cached(ttl=3600)
    async def page(request: Request) -> PlainTextResponse:
        return PlainTextResponse("x" * 1000)

    app = Starlette(routes=[Route("/page", page)])
    app.add_middleware(CacheMiddleware, cache=cache)
    return app


async def hit_cost(store: Store, n: int) -> float:
    app = _app(Cache(store, prefix=f"bench-hit-{uuid.uuid4().hex[:8]}"))
    scope = {
        "type": "http", "method": "GET", "path": "/page", "raw_path": b"/page",
        "query_string": b"", "headers": [(b"host", b"bench")], "scheme": "http",
        "server": ("bench", 80), "client": ("127.0.0.1", 1), "root_path": "",
        "http_version": "1.1", "asgi": {"version": "3.0"},
    }  # fmt: skip

    async def receive() -> Message:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: Message) -> None:
        pass

    for _ in range(50):  # the miss that stores, then the tier's copy (if any) is made
        await app(dict(scope), receive, send)
    started = time.perf_counter()
    for _ in range(n):
        await app(dict(scope), receive, send)
    return (time.perf_counter() - started) / n * 1e6


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--redis-url", required=True)
    parser.add_argument("--samples", type=int, default=2000)
    parser.add_argument("--load", type=int, default=8, help="concurrent background tasks")
    parser.add_argument("--n", type=int, default=5000, help="requests per hit-cost row")
    args = parser.parse_args()

    delays = sorted(await propagation(args.redis_url, args.samples, args.load))
    ms = [d * 1000 for d in delays]
    p99 = ms[min(len(ms) - 1, int(len(ms) * 0.99))]
    print(f"propagation, write in one store to drop in another, {len(ms)} samples, ")
    print(f"  {args.load} busy tasks: p50 {statistics.median(ms):.3f} ms, ", end="")
    print(f"p99 {p99:.3f} ms, max {ms[-1]:.3f} ms")

    near_store = RedisStore.from_url(args.redis_url, timeout=1.0, near_cache=NearCache())
    rows: list[tuple[str, Store]] = [
        ("memory hit", MemoryStore()),
        ("redis hit", RedisStore.from_url(args.redis_url, timeout=1.0)),
        ("near hit", near_store),
    ]
    print(f"hit cost, mean of {args.n} in-process requests:")
    for name, store in rows:
        print(f"  {name:<11} {await hit_cost(store, args.n):8.1f} us/request")
        await store.aclose()


if __name__ == "__main__":
    asyncio.run(main())
