"""Chaos runs: two uvicorn workers on a Redis store, readers and writers, one fault each.

Long form, one documented command (``tox -e chaos`` runs the same)::

    python -m tests.chaos                       # every fault, 30 s each, fault at 10 s
    python -m tests.chaos --seconds 8 --fault-at 3 sigstop oom

``tests/test_chaos.py`` is the quick form the test suite runs.  Everything is
loopback: a redis-server (or a 3-master Cluster) and ``uvicorn --workers 2``
serving ``tests/chaos_app.py`` that the run starts itself, on free ports.

Readers ask for hot products (and random query strings, misses that fill the
store); writers ``PUT`` increasing versions.  A **stale read** is a GET that
started after a write of a higher version had been answered 2xx, and still
returned the older version.  Stale reads are split by when their write was
answered: while the fault lasted (``during``: the store was unreachable or
refusing) or outside it (``reachable``).
"""

from __future__ import annotations

import argparse
import asyncio
import bisect
import itertools
import os
import random
import signal
import sqlite3
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import redis

from tests.fixtures_redis import TEST_SERVER_ARGS
from tests.redis_servers import RedisCluster, RedisServer
from tests.servers import running_uvicorn

#: A request slower than this is "slow": the store timeout (50 ms) plus the
#: application's own few milliseconds, with room for a loaded 2-core machine.
SLOW = 0.5
PRODUCTS = 5


@dataclass
class Read:
    pid: int
    started: float
    version: int
    hit: bool


@dataclass
class Figures:
    """What one run measured."""

    fault: str
    requests: int = 0
    errors: int = 0  # 5xx and transport errors
    slow: int = 0
    stale_reachable: int = 0
    stale_during: int = 0
    recovery: float | None = None  # seconds from the fault's end to the next hit
    hits: int = 0
    failures: list[str] = field(default_factory=list)  # the first few errors, to look at

    def row(self) -> str:
        recovery = "-" if self.recovery is None else f"{self.recovery:.2f}"
        return (
            f"| {self.fault} | {self.requests} | {self.errors} | {self.slow} | "
            f"{self.stale_reachable} | {self.stale_during} | {recovery} | {self.hits} |"
        )


HEADER = (
    "| fault | requests | 5xx | slow (>0.5 s) | stale, store reachable | stale, during fault "
    "| recovery to first hit (s) | hits |\n|---|---|---|---|---|---|---|---|"
)


@dataclass
class Target:
    """The servers under test, and how a fault reaches them."""

    url: str
    servers: list[RedisServer]
    cluster: bool
    base: str = ""
    windows: list[tuple[float, float]] = field(default_factory=list)

    def client(self, server: RedisServer | None = None) -> redis.Redis:
        node = server or self.servers[0]
        return redis.Redis(host=node.host, port=node.port, socket_timeout=5)


Fault = Callable[[Target, float], Awaitable[None]]


async def _none(target: Target, seconds: float) -> None:
    return None


def _killing(node: int) -> Fault:
    """SIGKILL the ``node``-th server for the fault's duration, then start it again (empty)."""

    async def kill(target: Target, seconds: float) -> None:
        server = target.servers[node]
        popen = server._process.popen
        assert popen is not None
        os.kill(popen.pid, signal.SIGKILL)
        popen.wait()
        await asyncio.sleep(seconds)
        await asyncio.to_thread(server.start)

    return kill


async def _sigstop(target: Target, seconds: float) -> None:
    with target.servers[0].paused():
        await asyncio.sleep(seconds)


async def _client_kill(target: Target, seconds: float) -> None:
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        await asyncio.to_thread(target.client().client_kill_filter, _type="normal")
        await asyncio.sleep(0.2)


async def _debug_sleep(target: Target, seconds: float) -> None:
    client = target.client()
    await asyncio.to_thread(client.execute_command, "DEBUG", "SLEEP", str(seconds))


async def _oom(target: Target, seconds: float) -> None:
    client = target.client()
    used = client.info("memory")["used_memory"]
    client.config_set("maxmemory-policy", "noeviction")
    client.config_set("maxmemory", str(used))
    await asyncio.sleep(seconds)
    client.config_set("maxmemory", "0")


async def _garbage(target: Target, seconds: float) -> None:
    """Garbage of every kind under entry keys and every kind of bookkeeping key."""
    client = target.client()
    for number, key in enumerate(client.scan_iter(match="chaos:*", count=1000)):
        kind = number % 4
        client.delete(key)
        if kind == 0:
            client.set(key, b"\x00garbage\xff")
        elif kind == 1:
            client.rpush(key, b"x")
        elif kind == 2:
            client.hset(key, "x", "y")
        else:
            client.set(key, b"99999999999999999999999999")
    await asyncio.sleep(seconds)


async def _loop_stall(target: Target, seconds: float) -> None:
    end = time.monotonic() + seconds
    async with httpx.AsyncClient(base_url=target.base, timeout=5) as client:
        while time.monotonic() < end:
            await client.post("/stall", params={"ms": 200})
            await asyncio.sleep(0.05)


FAULTS: dict[str, tuple[Fault, float, bool]] = {
    # name: (fault, default duration, on a cluster)
    "none": (_none, 0.0, False),
    "sigkill": (_killing(0), 1.0, False),
    "sigstop": (_sigstop, 3.0, False),
    "client-kill": (_client_kill, 1.0, False),
    "debug-sleep": (_debug_sleep, 1.0, False),
    "oom": (_oom, 3.0, False),
    "garbage": (_garbage, 0.0, False),
    "loop-stall": (_loop_stall, 3.0, False),
    "cluster-node-kill": (_killing(1), 14.0, True),
}


def create(path: str, products: int) -> None:
    """A fresh database for ``tests/chaos_app.py``: ``products`` products at version 0."""
    with sqlite3.connect(path, isolation_level=None) as conn:
        conn.execute("pragma journal_mode=wal")
        conn.execute("create table products (pid integer primary key, version integer)")
        conn.executemany("insert into products values (?, 0)", [(p,) for p in range(products)])


@contextmanager
def _servers(cluster: bool) -> Iterator[tuple[str, list[RedisServer]]]:
    if cluster:
        # The live masters keep answering for their own slots while one is down.
        coverage = ("--cluster-require-full-coverage", "no")
        with RedisCluster(extra_args=(*TEST_SERVER_ARGS, *coverage)) as nodes:
            yield nodes.url + "?cluster=true", nodes.nodes
    else:
        with RedisServer(*TEST_SERVER_ARGS) as server:
            yield server.url, [server]


async def run(
    name: str, *, seconds: float, fault_at: float, duration: float | None, readers: int
) -> Figures:
    """One run of ``seconds`` with the fault ``name`` at ``fault_at``."""
    fault, default, cluster = FAULTS[name]
    lasts = default if duration is None else duration
    figures = Figures(name)
    with (
        tempfile.TemporaryDirectory(prefix="asgi-cache-chaos-") as directory,
        _servers(cluster) as (url, servers),
    ):
        database = str(Path(directory) / "products.db")
        create(database, PRODUCTS)
        env = {**os.environ, "CHAOS_DB": database, "CHAOS_CACHE_URL": url}
        with running_uvicorn(
            "tests.chaos_app:app",
            "--workers",
            "2",
            "--log-level",
            "warning",
            # Longer than a run: a connection the server closes for idleness just as the
            # client reuses it fails the request, which says nothing about the cache.
            "--timeout-keep-alive",
            "120",
            env=env,
            log=Path(directory) / "uvicorn.log",
            startup_timeout=20,
        ) as base:
            target = Target(url, servers, cluster, base)
            await _load(target, figures, fault, lasts, seconds, fault_at, readers)
        if figures.errors:  # what the server said about them
            lines = (Path(directory) / "uvicorn.log").read_text(errors="replace").splitlines()
            figures.failures.extend(f"server log: {line}" for line in lines[-40:])
    return figures


async def _load(
    target: Target,
    figures: Figures,
    fault: Fault,
    lasts: float,
    seconds: float,
    fault_at: float,
    readers: int,
) -> None:
    start = time.monotonic()
    end = start + seconds
    acked: dict[int, list[tuple[float, int]]] = {pid: [] for pid in range(PRODUCTS)}
    reads: list[Read] = []
    versions = itertools.count(1)
    window: list[float] = []
    limits = httpx.Limits(max_connections=readers + 8, max_keepalive_connections=readers + 8)

    async with httpx.AsyncClient(base_url=target.base, timeout=5, limits=limits) as client:

        async def request(method: str, path: str, **params: object) -> httpx.Response | None:
            began = time.monotonic()
            try:
                response = await client.request(method, path, params=params)
            except httpx.HTTPError as exc:
                figures.requests += 1
                figures.errors += 1
                figures.failures[5:] = []
                figures.failures.append(f"{method} {path}: {exc!r}")
                return None
            figures.requests += 1
            if time.monotonic() - began > SLOW:
                figures.slow += 1
            if response.status_code >= 500:
                figures.errors += 1
                figures.failures[5:] = []
                figures.failures.append(
                    f"{method} {path}: {response.status_code} {response.text[:200]}"
                )
                return None
            return response

        async def reader(seed: int) -> None:
            rng = random.Random(seed)
            while time.monotonic() < end:
                if rng.random() < 0.2:
                    await request("GET", "/search", q=str(rng.getrandbits(48)))
                    continue
                pid = rng.randrange(PRODUCTS)
                began = time.monotonic()
                response = await request("GET", f"/products/{pid}")
                if response is not None:
                    hit = "; hit" in response.headers.get("cache-status", "")
                    reads.append(Read(pid, began, response.json()["version"], hit))

        async def writer(seed: int) -> None:
            rng = random.Random(seed)
            while time.monotonic() < end:
                pid = rng.randrange(PRODUCTS)
                version = next(versions)
                response = await request("PUT", f"/products/{pid}", version=version)
                if response is not None and response.status_code < 300:
                    acked[pid].append((time.monotonic(), version))
                await asyncio.sleep(0.02)

        async def chaos() -> None:
            await asyncio.sleep(fault_at)
            window.append(time.monotonic())
            await fault(target, lasts)
            window.append(time.monotonic())

        await asyncio.gather(
            *(reader(seed) for seed in range(readers)),
            writer(1001),
            writer(1002),
            chaos(),
        )

    began, ended = window
    for pid in acked:
        acked[pid].sort()
    for read in reads:
        figures.hits += read.hit
        writes = acked[read.pid]
        done = bisect.bisect_left(writes, (read.started, -1))
        newer = [(at, version) for at, version in writes[:done] if version > read.version]
        if newer:
            at = newer[0][0]
            if began <= at <= ended + 1.0:
                figures.stale_during += 1
            else:
                figures.stale_reachable += 1
    after = sorted(read.started for read in reads if read.hit and read.started > ended)
    figures.recovery = after[0] - ended if after else None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.chaos", description="Chaos runs.")
    parser.add_argument("faults", nargs="*", metavar="FAULT", help=f"any of {', '.join(FAULTS)}")
    parser.add_argument("--seconds", type=float, default=30.0, help="length of each run")
    parser.add_argument("--fault-at", type=float, default=10.0, help="when the fault starts")
    parser.add_argument("--duration", type=float, default=None, help="how long it lasts")
    parser.add_argument("--readers", type=int, default=40)
    args = parser.parse_args(argv)
    unknown = [name for name in args.faults if name not in FAULTS]
    if unknown:
        parser.error(f"unknown fault {unknown[0]!r}; choose from {', '.join(FAULTS)}")
    print(HEADER)
    for name in args.faults or list(FAULTS):
        figures = asyncio.run(
            run(
                name,
                seconds=args.seconds,
                fault_at=args.fault_at,
                duration=args.duration,
                readers=args.readers,
            )
        )
        print(figures.row(), flush=True)
        for failure in figures.failures:
            print(f"  {name}: {failure}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
