"""What the cache costs besides a hit: misses, many routes, memory, a full store.

Run from the repository root::

    python -m benchmarks.overheads [--n 5000] [--rounds 7] [--entries 1000000]

Four ratios, each measured side by side in one run (in-process ASGI calls, as in
:mod:`benchmarks.hit_path`, whose applications and helpers this reuses), with the
target each is held to:

- **miss overhead**: an uncacheable response (``Cache-Control: no-store``) of a
  ``@cached`` route through ``CacheMiddleware``, and an unmarked route, against the
  same application without the middleware (target: at most 5 % more);
- **routes**: a memory hit on a static path and on a path with a parameter, after 500
  other routes against after 5 (target: at most 1.1x); the parameter case cycles
  through more paths than the routing memo holds, so each request matches the
  compiled expression;
- **memory**: bytes the memory store takes per entry (traced by ``tracemalloc``)
  for two body sizes, fitted as ``slope x body + constant`` (target: slope at most
  1.2);
- **a full store**: a memory hit with ``--entries`` other entries in the store
  against an empty one (target: no change).

Rounds are interleaved across the cases of a comparison, so drifting background load
affects them alike, and timed in the thread's CPU time (``--wall``: elapsed time), so
time spent preempted by other processes on a shared machine does not count; the ratios
use the minimum over rounds (the least disturbed) and the median is printed beside it.
Compare rows of one run only.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import os
import platform
import statistics
import sys
import time
import tracemalloc
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from fastapi import FastAPI
from fastapi.responses import JSONResponse

from asgi_cache import Cache, CacheMiddleware, cached
from asgi_cache.entry import Entry, encode
from asgi_cache.stores.memory import MemoryStore
from benchmarks.hit_path import ITEMS, SCOPE, TTL, Client, fastapi_app, header, lifespan

Call = Callable[[], Awaitable[None]]

#: What times a round: the thread's CPU time (the default: every case is in-process and
#: CPU-bound, and time spent preempted by other processes is not the code's), or, with
#: ``--wall``, ``time.perf_counter_ns``.
CLOCK: list[Callable[[], int]] = [time.thread_time_ns]


@dataclass
class Timed:
    name: str
    call: Call
    n: int
    samples: list[float] = field(default_factory=list)  # microseconds per call, per round

    async def round(self) -> None:
        call, clock = self.call, CLOCK[0]
        gc.collect()
        start = clock()
        for _ in range(self.n):
            await call()
        self.samples.append((clock() - start) / self.n / 1000)

    @property
    def best(self) -> float:
        return min(self.samples)


async def interleaved(cases: list[Timed], rounds: int) -> None:
    for case in cases:  # warm up
        await case.call()
    for _ in range(rounds):
        for case in cases:
            await case.round()


def caller(app: FastAPI, scope: dict[str, object], expect: bytes | None = None) -> Call:
    """One request of ``scope`` to ``app``; the first one's ``Cache-Status`` is checked."""
    client = Client()

    async def call() -> None:
        client.messages.clear()
        await app(dict(scope), client.receive, client.send)

    async def checked() -> None:
        await call()
        status, headers, _ = client.response()
        cache_status = header(headers, b"cache-status") or b""
        if status != 200 or (expect is not None and expect not in cache_status):
            raise SystemExit(f"{scope['path']}: {status}, cache-status {cache_status!r}")

    calls = [checked]

    async def first_checked() -> None:
        if expect == b"hit" and calls[0] is checked:
            await call()  # the miss that stores the entry
        await calls[0]()
        calls[0] = call

    return first_checked


def report(title: str, target: str, rows: list[Timed], base: Timed) -> None:
    print(f"\n{title} (target: {target})")
    for row in rows:
        median = statistics.median(row.samples)
        ratio = row.best / base.best
        print(f"  {row.name:<58} {median:>8.2f} {row.best:>8.2f} us   x{ratio:.3f}")


# --- miss overhead ------------------------------------------------------------------------------


def uncacheable_app(cache: Cache | None) -> FastAPI:
    """``/fresh`` answers ``no-store`` (``@cached`` when ``cache``); ``/plain`` is unmarked."""
    app = FastAPI()

    async def fresh() -> JSONResponse:
        return JSONResponse(ITEMS, headers={"cache-control": "no-store"})

    async def plain() -> JSONResponse:
        return JSONResponse(ITEMS)

    if cache is not None:
        fresh = cached(ttl=TTL)(fresh)
        app.add_middleware(CacheMiddleware, cache=cache)
    app.add_api_route("/fresh", fresh)
    app.add_api_route("/plain", plain)
    return app


async def miss_overhead(stack: contextlib.AsyncExitStack, n: int, rounds: int) -> None:
    bare, through = uncacheable_app(None), uncacheable_app(Cache())
    for app in (bare, through):
        await stack.enter_async_context(lifespan(app))
    fresh = {**SCOPE, "path": "/fresh", "raw_path": b"/fresh"}
    plain = {**SCOPE, "path": "/plain", "raw_path": b"/plain"}
    rows = [
        Timed("no-store response of a @cached route, no middleware", caller(bare, fresh), n),
        Timed("the same through CacheMiddleware", caller(through, fresh, b"no-store"), n),
        Timed("unmarked route, no middleware", caller(bare, plain), n),
        Timed("the same through CacheMiddleware", caller(through, plain), n),
    ]
    await interleaved(rows, rounds)
    report("Miss overhead, per request", "at most x1.05", rows[:2], rows[0])
    report("Unmarked route, per request", "at most x1.05", rows[2:], rows[2])


# --- many routes --------------------------------------------------------------------------------


def parameter_app(routes_before: int) -> FastAPI:
    """``/products/{pid}`` cached, after ``routes_before`` other routes (half with parameters)."""
    app = fastapi_app(routes_before=routes_before).app

    async def product(pid: int) -> dict[str, int]:
        return {"id": pid}

    app.add_api_route("/products/{pid}", cached(ttl=TTL)(product))
    app.add_middleware(CacheMiddleware, cache=Cache())
    return app


async def many_routes(stack: contextlib.AsyncExitStack, n: int, rounds: int) -> None:
    few, many = (
        fastapi_app(cache=Cache(), routes_before=5),
        fastapi_app(cache=Cache(), routes_before=500),
    )
    few_p, many_p = parameter_app(5), parameter_app(500)
    for app in (few.app, many.app, few_p, many_p):
        await stack.enter_async_context(lifespan(app))
    # More distinct paths than RouteTable.MEMO_SIZE: each request runs the expression.
    paths = [f"/products/{i}" for i in range(5000)]

    def cycling(app: FastAPI) -> Call:
        client = Client()
        turn = iter(range(sys.maxsize))

        async def call() -> None:
            path = paths[next(turn) % len(paths)]
            client.messages.clear()
            await app(
                {**SCOPE, "path": path, "raw_path": path.encode()}, client.receive, client.send
            )

        return call

    for app in (few_p, many_p):  # store every product page before timing
        fill = cycling(app)
        for _ in paths:
            await fill()
    rows = [
        Timed("memory hit, static path, 5 routes before", caller(few.app, SCOPE, b"hit"), n),
        Timed("memory hit, static path, 500 routes before", caller(many.app, SCOPE, b"hit"), n),
        Timed("memory hit, /products/{pid}, 5 routes before", cycling(few_p), n),
        Timed("memory hit, /products/{pid}, 500 routes before", cycling(many_p), n),
    ]
    await interleaved(rows, rounds)
    report("Routes: static path", "at most x1.1", rows[:2], rows[0])
    report("Routes: path parameter, past the routing memo", "at most x1.1", rows[2:], rows[2])


# --- memory -------------------------------------------------------------------------------------


async def traced_bytes(body_size: int, count: int) -> tuple[int, int]:
    """Traced bytes held per entry by a memory store of ``count`` entries, and the store's
    own estimate (``bytes_used``), each divided by ``count``."""
    body = b"x" * body_size
    headers = [(b"content-type", b"application/json"), (b"content-length", b"%d" % body_size)]
    store = MemoryStore(max_bytes=2**40)
    gc.collect()
    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    for i in range(count):
        value = encode(Entry(200, headers, body, time.time(), TTL))
        await store.set(f"asgi-cache:page:{i:032x}", value, TTL, [f"asgi-cache:path:/items/{i}"])
        del value
    gc.collect()
    grown = tracemalloc.get_traced_memory()[0] - before
    tracemalloc.stop()
    return grown // count, store.bytes_used // count


async def memory_cost(count: int) -> None:
    small, large = 1024, 16 * 1024
    small_traced, small_estimate = await traced_bytes(small, count)
    large_traced, large_estimate = await traced_bytes(large, count)
    slope = (large_traced - small_traced) / (large - small)
    constant = small_traced - slope * small
    print(f"\nMemory store, bytes per entry ({count} entries, one path tag each; target: slope")
    print("  at most 1.2 per body byte, plus a constant per entry)")
    print(f"  {'body':>8} {'traced':>10} {'bytes_used':>12}")
    print(f"  {small:>8} {small_traced:>10} {small_estimate:>12}")
    print(f"  {large:>8} {large_traced:>10} {large_estimate:>12}")
    print(f"  fit: {slope:.3f} x body + {constant:.0f} bytes per entry")


# --- a full store -------------------------------------------------------------------------------


async def full_store(stack: contextlib.AsyncExitStack, n: int, rounds: int, entries: int) -> None:
    empty, full = Cache(MemoryStore()), Cache(MemoryStore(max_bytes=2**40))
    empty_app, full_app = fastapi_app(cache=empty).app, fastapi_app(cache=full).app
    for app in (empty_app, full_app):
        await stack.enter_async_context(lifespan(app))
    started = time.perf_counter()
    value = encode(
        Entry(200, [(b"content-type", b"application/json")], b"x" * 100, time.time(), TTL)
    )
    store = full.store
    for i in range(entries):
        await store.set(f"asgi-cache:page:{i:032x}", value, TTL, [f"asgi-cache:path:/p/{i}"])
    filled = time.perf_counter() - started
    rows = [
        Timed("memory hit, empty store", caller(empty_app, SCOPE, b"hit"), n),
        Timed(f"memory hit, {entries:,} other entries", caller(full_app, SCOPE, b"hit"), n),
    ]
    await interleaved(rows, rounds)
    print(f"\n(filled {entries:,} entries in {filled:.1f} s)")
    report("A full memory store", "no change", rows, rows[0])


async def main(args: argparse.Namespace) -> None:
    if args.wall:
        CLOCK[0] = time.perf_counter_ns
    print(
        f"asgi-cache overheads: Python {platform.python_version()}, {os.cpu_count()} CPUs, "
        f"load average {os.getloadavg()[0]:.2f}; {args.rounds} interleaved rounds, "
        f"{'elapsed' if args.wall else 'CPU'} time; columns: median, minimum, ratio of minimums"
    )
    only = set(args.only or ("misses", "routes", "memory", "full"))
    async with contextlib.AsyncExitStack() as stack:
        if "misses" in only:
            await miss_overhead(stack, args.n // 10, args.rounds)
        if "routes" in only:
            await many_routes(stack, args.n, args.rounds)
        if "memory" in only:
            await memory_cost(args.memory_entries)
        if "full" in only:
            await full_store(stack, args.n, args.rounds, args.entries)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.overheads", description=__doc__)
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    parser.add_argument("--n", type=int, default=5_000, help="hits per round (misses: N / 10)")
    parser.add_argument("--rounds", type=int, default=7, help="rounds per case (7)")
    parser.add_argument("--entries", type=int, default=1_000_000, help="the full store (1e6)")
    parser.add_argument("--memory-entries", type=int, default=5_000, help="memory fit (5000)")
    parser.add_argument("--wall", action="store_true", help="elapsed time, not CPU time")
    parser.add_argument(
        "--only",
        choices=("misses", "routes", "memory", "full"),
        action="append",
        help="these parts",
    )
    return parser.parse_args(argv)


if __name__ == "__main__":
    asyncio.run(main(parse_args()))
