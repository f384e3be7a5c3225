"""What a cache hit costs: microseconds per request, calling the ASGI app in-process.

Run from the repository root::

    python -m benchmarks.hit_path [--n 20000] [--rounds 7] [--redis-url redis://HOST:PORT/DB]
    python -m benchmarks.hit_path --profile     # also cProfile the memory hit (case d)

No network and no server: every case is an ASGI application called directly with
the same GET request (a fresh shallow copy of one scope per call, as a server
builds one per request) and trivial ``receive`` / ``send`` callables that collect
the response messages.  FastAPI applications run their lifespan startup first, so
their middleware stack is built and ``CacheMiddleware`` has compiled its routing
table before anything is timed.  Each case is checked once before timing (status,
body, ``Cache-Status``) and its endpoint call count after (a hit runs nothing).

Rounds of ``--n`` calls are interleaved across cases, so background load drifting
during the run affects every case alike; ``gc.collect()`` runs before each round,
the collector stays enabled while timing.  The table gives the median and the
minimum over rounds of the mean time per call.  Numbers depend on the machine;
compare rows of one run, not runs on different machines.

``--redis-url`` adds the Redis rows; pass a server you started yourself (a
throwaway one: the keys written live under a random prefix and are removed at the
end).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import cProfile
import gc
import json
import os
import platform
import pstats
import statistics
import sys
import time
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field

from fastapi import FastAPI
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from asgi_cache import Cache, CacheMiddleware, cached
from asgi_cache.entry import Entry, encode

Headers = list[tuple[bytes, bytes]]

ITEMS = [{"id": i, "sku": f"SKU-{i:04d}", "price": 4.75 + i * 1.5} for i in range(25)]
# What Starlette's JSONResponse renders for ITEMS: rows a, b and c send the same bytes.
BODY = json.dumps(ITEMS, ensure_ascii=False, separators=(",", ":")).encode()
BODY_HEADERS: Headers = [
    (b"content-length", b"%d" % len(BODY)),
    (b"content-type", b"application/json"),
]
TTL = 3600  # longer than any run: no entry expires while it is timed

PATH = "/items"
SCOPE: Scope = {
    "type": "http",
    "asgi": {"version": "3.0", "spec_version": "2.4"},
    "http_version": "1.1",
    "server": ("127.0.0.1", 8000),
    "client": ("127.0.0.1", 50000),
    "scheme": "http",
    "method": "GET",
    "root_path": "",
    "path": PATH,
    "raw_path": PATH.encode(),
    "query_string": b"",
    "headers": [
        (b"host", b"127.0.0.1:8000"),
        (b"user-agent", b"python-httpx/0.28.1"),
        (b"accept", b"*/*"),
        (b"accept-encoding", b"gzip, deflate, br"),
        (b"connection", b"keep-alive"),
    ],
    "state": {},
}
REQUEST: Message = {"type": "http.request", "body": b"", "more_body": False}


class Client:
    """The server side of one connection: the same request, the messages sent back."""

    def __init__(self) -> None:
        self.messages: list[Message] = []

    async def receive(self) -> Message:
        return REQUEST

    async def send(self, message: Message) -> None:
        self.messages.append(message)

    def response(self) -> tuple[int, Headers, bytes]:
        """Status, headers and whole body of the last response."""
        start, *rest = self.messages
        if start["type"] != "http.response.start":
            raise RuntimeError(f"response began with {start['type']!r}")
        body = b"".join(m.get("body", b"") for m in rest if m["type"] == "http.response.body")
        return start["status"], list(start.get("headers", ())), body


def header(headers: Headers, name: bytes) -> bytes | None:
    return next((value for key, value in headers if key.lower() == name), None)


# --- the applications -------------------------------------------------------------------------


async def raw_app(scope: Scope, receive: Receive, send: Send) -> None:
    """The floor: a raw ASGI app sending the constant response."""
    await send({"type": "http.response.start", "status": 200, "headers": BODY_HEADERS})
    await send({"type": "http.response.body", "body": BODY})


class AnswerItself:
    """A pure ASGI middleware that answers every HTTP request with the constant response."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        await raw_app(scope, receive, send)


@dataclass
class Built:
    app: FastAPI
    calls: list[int]  # how many times the /items endpoint ran


def fastapi_app(
    *, cache: Cache | None = None, routes_before: int = 0, answer_itself: bool = False
) -> Built:
    """A FastAPI app serving ITEMS at /items, after ``routes_before`` other GET routes."""
    app = FastAPI()
    calls = [0]

    async def thing(thing_id: int) -> dict[str, int]:
        return {"id": thing_id}

    async def things() -> list[int]:
        return []

    for i in range(routes_before):  # half static paths, half with a path parameter
        if i % 2:
            app.add_api_route(f"/api/v1/things{i}/{{thing_id}}", thing)
        else:
            app.add_api_route(f"/api/v1/things{i}", things)

    async def items():  # no return annotation, so FastAPI uses no response model
        calls[0] += 1
        return ITEMS

    if cache is not None:
        items = cached(ttl=TTL)(items)
        app.add_middleware(CacheMiddleware, cache=cache)
    app.add_api_route(PATH, items)
    if answer_itself:
        app.add_middleware(AnswerItself)
    return Built(app, calls)


@contextlib.asynccontextmanager
async def lifespan(app: ASGIApp) -> AsyncIterator[None]:
    """Run ``app``'s lifespan startup, as a server does before the first request."""
    started: asyncio.Future[None] = asyncio.get_running_loop().create_future()
    stopping = asyncio.Event()
    pending = [{"type": "lifespan.startup"}]

    async def receive() -> Message:
        if pending:
            return pending.pop()
        await stopping.wait()
        return {"type": "lifespan.shutdown"}

    async def send(message: Message) -> None:
        if message["type"] == "lifespan.startup.complete":
            started.set_result(None)
        elif message["type"] == "lifespan.startup.failed":
            started.set_exception(RuntimeError(message.get("message", "startup failed")))

    scope = {"type": "lifespan", "asgi": {"version": "3.0"}, "state": {}}
    task = asyncio.create_task(app(scope, receive, send))
    await asyncio.wait({started, task}, return_when=asyncio.FIRST_COMPLETED)
    if not started.done():
        task.result()  # raises what the app raised, if anything
        raise RuntimeError("lifespan ended before startup completed")
    started.result()
    try:
        yield
    finally:
        stopping.set()
        await task


# --- cases --------------------------------------------------------------------------------------


@dataclass
class Case:
    name: str
    what: str
    app: ASGIApp
    n: int
    scope: Scope = field(default_factory=lambda: SCOPE)
    check: Callable[[int, Headers, bytes], str | None] | None = None  # -> what is wrong
    calls: list[int] | None = None  # endpoint runs, which must not grow once warm
    client: Client = field(default_factory=Client)
    samples: list[float] = field(default_factory=list)  # microseconds per call, per round

    async def call(self) -> tuple[int, Headers, bytes]:
        self.client.messages.clear()
        await self.app(dict(self.scope), self.client.receive, self.client.send)
        return self.client.response()

    async def verify(self) -> None:
        status, headers, body = await self.call()
        problem = (self.check or ok_body)(status, headers, body)
        if problem:
            raise SystemExit(f"case {self.name} ({self.what}): {problem}")

    async def round(self, n: int) -> float:
        """Mean microseconds per call over ``n`` calls."""
        app, scope, client = self.app, self.scope, self.client
        messages, receive, send = client.messages, client.receive, client.send
        start = time.perf_counter_ns()
        for _ in range(n):
            messages.clear()
            await app(dict(scope), receive, send)
        return (time.perf_counter_ns() - start) / n / 1000


def ok_body(status: int, headers: Headers, body: bytes) -> str | None:
    if status != 200 or body != BODY:
        return f"expected 200 with the {len(BODY)}-byte body, got {status} ({len(body)} bytes)"
    return None


def ok_hit(status: int, headers: Headers, body: bytes) -> str | None:
    cache_status = header(headers, b"cache-status") or b""
    if b"hit" not in cache_status:
        return f"not a hit: cache-status {cache_status!r}"
    return ok_body(status, headers, body)


def ok_not_modified(status: int, headers: Headers, body: bytes) -> str | None:
    cache_status = header(headers, b"cache-status") or b""
    if status != 304 or body or b"hit" not in cache_status:
        return f"expected a 304 hit, got {status} {cache_status!r} ({len(body)} bytes)"
    return None


async def hit_case(name: str, what: str, built: Built, n: int) -> Case:
    """A cached-route case, warmed: the first call stores, the second must hit."""
    case = Case(name, what, built.app, n, check=ok_hit, calls=built.calls)
    status, headers, _ = await case.call()  # the miss that stores the entry
    if status != 200 or b"stored" not in (header(headers, b"cache-status") or b""):
        raise SystemExit(f"case {name}: the warming request was not stored: {headers!r}")
    # A hit needs the compiled routing table, so from here on no call compiles it.
    await case.verify()
    return case


async def memory_cases(stack: contextlib.AsyncExitStack, n: int, slow_n: int) -> list[Case]:
    floor = Case("a", "raw ASGI app sending the constant response (floor)", raw_app, n)
    shell = fastapi_app(answer_itself=True)
    plain = fastapi_app()
    plain_300 = fastapi_app(routes_before=300)
    hit = fastapi_app(cache=Cache())
    hit_300 = fastapi_app(cache=Cache(), routes_before=300)
    for built in (shell, plain, plain_300, hit, hit_300):
        await stack.enter_async_context(lifespan(built.app))

    memory_hit = await hit_case("d", "CacheMiddleware memory hit", hit, n)
    _, headers, _ = await memory_hit.call()
    etag = header(headers, b"etag")
    if etag is None:
        raise SystemExit("case f: the cached response has no ETag")
    conditional = {**SCOPE, "headers": [*SCOPE["headers"], (b"if-none-match", etag)]}
    return [
        floor,
        Case("b", "FastAPI + pure-ASGI middleware answering itself", shell.app, n),
        # An uncached call costs a hundred hits or more: fewer calls keep a round short.
        Case("c", "FastAPI route, uncached", plain.app, slow_n),
        Case("c300", "FastAPI route, uncached, 300 routes before it", plain_300.app, slow_n),
        memory_hit,
        await hit_case("e", "CacheMiddleware memory hit, 300 routes before", hit_300, n),
        Case(
            "f",
            "CacheMiddleware memory hit, If-None-Match -> 304",
            hit.app,
            n,
            scope=conditional,
            check=ok_not_modified,
            calls=hit.calls,
        ),
    ]


async def redis_cases(stack: contextlib.AsyncExitStack, url: str, n: int) -> list[Case]:
    """The Redis hit next to its floor: a raw ASGI app doing one GET of an equal-sized entry."""
    try:
        import redis.asyncio as redis

        from asgi_cache.stores.redis import RedisStore
    except ImportError as exc:
        print(f"g: skipped, cannot import the Redis store: {exc}", file=sys.stderr)
        return []

    prefix = f"asgi-cache-bench-{uuid.uuid4().hex[:8]}"
    cache = Cache(RedisStore.from_url(url), prefix=prefix)
    built = fastapi_app(cache=cache)
    await stack.enter_async_context(lifespan(built.app))  # its shutdown closes the store
    stack.push_async_callback(cache.clear)  # runs first: removes every key written here
    hit = await hit_case("g", "CacheMiddleware RedisStore hit", built, n)

    # The floor reads an entry of the same size: the hit's headers as stored, and its body.
    status, headers, body = await hit.call()
    stored = [(k, v) for k, v in headers if k not in (b"age", b"cache-status")]
    value = encode(Entry(status, stored, body, time.time(), TTL))
    client = redis.Redis.from_url(url)
    stack.push_async_callback(client.aclose)
    floor_key = f"{prefix}:floor"
    await client.set(floor_key, value, ex=TTL)

    async def get_then_answer(scope: Scope, receive: Receive, send: Send) -> None:
        if len(await client.get(floor_key) or b"") != len(value):
            raise RuntimeError("the floor key lost its value")
        await raw_app(scope, receive, send)

    what = f"raw ASGI app: redis.asyncio GET ({len(value)} B), then constant response"
    return [Case("g0", what, get_then_answer, n), hit]


# --- running ------------------------------------------------------------------------------------


async def profile(case: Case, n: int, limit: int) -> None:
    profiler = cProfile.Profile()
    gc.collect()
    profiler.enable()
    await case.round(n)
    profiler.disable()
    print(f"\ncProfile of case {case.name} ({case.what}), {n} calls")
    print("\nInside asgi_cache, by cumulative time:")
    own = pstats.Stats(profiler, stream=sys.stdout).sort_stats("cumulative")
    own.print_stats(f"asgi_cache{os.sep}", limit)
    print("Everything, by own time:")
    pstats.Stats(profiler, stream=sys.stdout).strip_dirs().sort_stats("tottime").print_stats(limit)


def print_table(cases: list[Case], rounds: int) -> None:
    print(
        f"\nasgi-cache hit path: microseconds per request, in-process ASGI calls\n"
        f"Python {platform.python_version()}, {os.cpu_count()} CPUs, "
        f"{rounds} rounds of N calls per case (interleaved), {len(BODY)}-byte JSON body\n"
    )
    width = max(len(case.what) for case in cases)
    print(f"{'case':<5} {'what':<{width}} {'N':>6} {'median':>8} {'min':>8}")
    for case in cases:
        median = statistics.median(case.samples)
        print(
            f"{case.name:<5} {case.what:<{width}} {case.n:>6} "
            f"{median:>8.2f} {min(case.samples):>8.2f}"
        )


async def main(args: argparse.Namespace) -> None:
    async with contextlib.AsyncExitStack() as stack:
        cases = await memory_cases(stack, args.n, args.slow_n or max(1, args.n // 10))
        if args.redis_url:
            cases += await redis_cases(stack, args.redis_url, args.redis_n or args.n // 10)
        for case in cases:
            await case.verify()
            await case.round(max(1, case.n // 10))  # warm up the interpreter's caches
        for _ in range(args.rounds):
            for case in cases:
                gc.collect()  # outside the timing; the collector stays on while timing
                case.samples.append(await case.round(case.n))
        for case in cases:
            await case.verify()
            if case.calls is not None and case.calls[0] != 1:
                raise SystemExit(f"case {case.name}: the endpoint ran {case.calls[0]} times")
        print_table(cases, args.rounds)
        if args.profile:
            await profile(next(c for c in cases if c.name == "d"), args.n, args.profile_limit)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.hit_path", description=__doc__)
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    parser.add_argument("--n", type=int, default=20_000, help="calls per round (20000)")
    parser.add_argument("--rounds", type=int, default=7, help="rounds per case (7)")
    parser.add_argument("--slow-n", type=int, help="calls per round, uncached cases (N / 10)")
    parser.add_argument("--redis-url", help="add the Redis rows, on this server (yours)")
    parser.add_argument("--redis-n", type=int, help="calls per round for Redis (N / 10)")
    parser.add_argument("--profile", action="store_true", help="cProfile case d afterwards")
    parser.add_argument("--profile-limit", type=int, default=25, help="profile rows (25)")
    return parser.parse_args(argv)


if __name__ == "__main__":
    asyncio.run(main(parse_args()))
