"""Coalescing locks under store faults: nobody waits for a leader that cannot release its lock.

Two caches, each with a store (connections, circuit breaker) of its own on one Redis, stand
for two processes.  The leader's process is cut off from Redis by revoking its ACL user
(``tests.redis_servers.RedisUser``), the whole server is stalled with ``DEBUG SLEEP``, and a
uvicorn worker computing a response is killed.  Every test gets a ``redis-server`` of its own.
"""

from __future__ import annotations

import os
import signal
import threading
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import anyio
import httpx
import pytest
import redis
import redis.asyncio
from fastapi import FastAPI

from asgi_cache import Cache, CacheMiddleware, cached
from asgi_cache.status import Detail
from asgi_cache.stores.redis import _LOCK_LEASE as LOCK_LEASE
from asgi_cache.stores.redis import RedisStore
from tests.fixtures_redis import FIXTURE_TIMEOUT, TEST_SERVER_ARGS
from tests.helpers import client_for, detail_of
from tests.redis_servers import RedisServer, RedisUser, resp_command
from tests.servers import ROOT, running_uvicorn

pytestmark = pytest.mark.anyio

PREFIX = "flight"
TIMEOUT = 0.05
#: How long ``/report`` computes.
ROUTE = 0.3


@pytest.fixture
def server() -> Iterator[RedisServer]:
    """A server of this test's own: the test stalls it or locks a client out."""
    with RedisServer(*TEST_SERVER_ARGS) as own:
        yield own


@dataclass
class Process:
    """One process of a deployment: its cache and app, and when ``/report`` ran there."""

    cache: Cache
    app: FastAPI
    route: float
    starts: list[float] = field(default_factory=list)
    ends: list[float] = field(default_factory=list)
    computing: anyio.Event = field(default_factory=anyio.Event)


def process(url: str, *, route: float = ROUTE, **store_options: float) -> Process:
    options = {"timeout": TIMEOUT, **store_options}
    store = RedisStore.from_url(url, **options)  # type: ignore[arg-type]
    cache = Cache(store, prefix=PREFIX)
    app = FastAPI()
    app.add_middleware(CacheMiddleware, cache=cache)
    proc = Process(cache, app, route)

    @app.get("/report")
    @cached(ttl=60)
    async def report() -> dict[str, int]:
        proc.starts.append(time.monotonic())
        proc.computing.set()
        await anyio.sleep(proc.route)
        proc.ends.append(time.monotonic())
        return {"run": len(proc.starts)}

    @app.get("/item")
    @cached(ttl=60)
    async def item() -> dict[str, int]:
        return {"item": 1}

    return proc


@pytest.fixture
async def closing() -> AsyncIterator[list[Process]]:
    """Processes to close after the test."""
    processes: list[Process] = []
    yield processes
    for proc in processes:
        await proc.cache.aclose()


async def test_a_leader_whose_breaker_opened_still_frees_the_followers_of_other_processes(
    server: RedisServer, closing: list[Process]
) -> None:
    user = RedisUser(server, "leader")
    a = process(user.url, failure_threshold=1, cooldown=60)
    b = process(server.url)
    closing += [a, b]
    async with client_for(a.app) as client_a, client_for(b.app) as client_b:
        async with anyio.create_task_group() as group:
            group.start_soon(client_a.get, "/report")
            await a.computing.wait()  # a leads, holding the lock
            group.start_soon(client_b.get, "/report")
            await anyio.sleep(0.05)  # b polls the lock
            user.revoke()  # a is cut off from Redis for a moment...
            assert detail_of(await client_a.get("/item")) == Detail.STORE_UNAVAILABLE
            user.restore()  # ...its breaker is open, and Redis answers it again
    waited = b.starts[0] - a.ends[0]
    print(f"\nfollower in another process started {waited:.3f} s after the leader finished")
    assert len(b.starts) == 1  # a could not store its response: b computed its own
    assert waited < 0.4  # a poll interval and a store timeout, not the lock's coalesce_wait


async def test_followers_of_a_leader_cut_off_from_redis_wait_no_longer_than_the_lock_lease(
    server: RedisServer, closing: list[Process]
) -> None:
    user = RedisUser(server, "leader")
    a = process(user.url)
    b = process(server.url)
    closing += [a, b]
    async with client_for(a.app) as client_a, client_for(b.app) as client_b:
        async with anyio.create_task_group() as group:
            group.start_soon(client_a.get, "/report")
            await a.computing.wait()  # a leads, holding the lock
            user.revoke()  # and loses Redis for good: it can neither renew nor release
            group.start_soon(client_b.get, "/report")
    waited = b.starts[0] - a.starts[0]
    print(f"\nfollower in another process started {waited:.3f} s after the cut-off leader")
    assert len(b.starts) == 1
    assert waited < LOCK_LEASE + 0.5  # the lease, not the lock's coalesce_wait


async def test_a_stalled_redis_costs_a_follower_in_another_process_about_the_store_timeout(
    server: RedisServer, closing: list[Process]
) -> None:
    a = process(server.url, route=1.0)
    b = process(server.url, route=0.0)
    closing += [a, b]
    blocker = redis.asyncio.Redis.from_url(server.url)
    stalled_at = 0.0
    try:
        async with client_for(a.app) as client_a, client_for(b.app) as client_b:
            async with anyio.create_task_group() as group:
                group.start_soon(client_a.get, "/report")
                await a.computing.wait()  # a leads, holding the lock
                group.start_soon(client_b.get, "/report")
                await anyio.sleep(0.3)  # b polls the lock, at its slowest pace by now
                stalled_at = time.monotonic()
                await blocker.execute_command("DEBUG", "SLEEP", "1.5")
    finally:
        await blocker.aclose()
    waited = b.starts[0] - stalled_at
    print(f"\nfollower in another process started {waited:.3f} s into a Redis stall")
    assert waited < 0.35  # its failed poll, a failed fence and a backoff step


async def test_a_miss_coalesced_across_two_processes_costs_redis_a_few_lock_commands(
    server: RedisServer, closing: list[Process]
) -> None:
    # A timeout for a loaded machine: this test counts commands, it does not time them.
    a = process(server.url, route=0.2, timeout=FIXTURE_TIMEOUT)  # under a third of the lease
    b = process(server.url, route=0.2, timeout=FIXTURE_TIMEOUT)
    closing += [a, b]
    async with client_for(a.app) as client_a, client_for(b.app) as client_b:
        await client_a.get("/item")  # Redis now knows the tag script: one EVALSHA from now on
        await client_b.get("/item")
        resp_command(server.host, server.port, "CONFIG", "RESETSTAT")
        began = time.monotonic()
        async with anyio.create_task_group() as group:
            group.start_soon(client_a.get, "/report")
            await a.computing.wait()
            for _ in range(50):
                group.start_soon(client_a.get, "/report")
                group.start_soon(client_b.get, "/report")
    held = time.monotonic() - began
    info = resp_command(server.host, server.port, "INFO", "commandstats")
    assert isinstance(info, bytes)
    calls = {
        line.split(":")[0].removeprefix("cmdstat_"): int(line.split("calls=")[1].split(",")[0])
        for line in info.decode().splitlines()
        if line.startswith("cmdstat_")
    }
    print(f"\nRedis commands for 101 concurrent misses in two processes: {calls}")
    assert len(a.starts) + len(b.starts) == 1
    assert calls.get("set", 0) == 3  # two lock attempts and the entry
    # The release, and a renewal per third of the lease the lock was held (a loaded
    # machine can stretch the 0.2 s route past the first one).
    assert 1 <= calls.get("eval", 0) <= 1 + int(held / (1.0 / 3))
    assert calls.get("pttl", 0) <= 12  # the one poller of the other process, with backoff


# -- a killed worker ------------------------------------------------------------------------

#: Where ``tests/leader_app.py`` counts its runs and names the worker of the first.
RUNS_KEY = "leader-app:runs"
LEADER_KEY = "leader-app:leader-pid"


@pytest.fixture
def workers(server: RedisServer, tmp_path: Path) -> Iterator[str]:
    """The base URL of ``tests.leader_app:app`` under ``uvicorn --workers 2``."""
    env = {**os.environ, "ASGI_CACHE_URL": server.url}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))
    with running_uvicorn(
        "tests.leader_app:app",
        "--workers",
        "2",
        env=env,
        log=tmp_path / "uvicorn.log",
        startup_timeout=15.0,
        workers=2,
    ) as url:
        yield url


def test_followers_of_a_killed_leader_process_wait_no_longer_than_the_lock_lease(
    server: RedisServer, workers: str
) -> None:
    def lead() -> None:
        with httpx.Client(base_url=workers, timeout=30) as client:
            try:
                client.get("/slow")
            except httpx.HTTPError:
                pass  # its worker is killed mid-request

    leader = threading.Thread(target=lead)
    leader.start()
    with redis.Redis.from_url(server.url) as data:
        deadline = time.monotonic() + 15
        while (pid := data.get(LEADER_KEY)) is None:
            assert time.monotonic() < deadline, "no worker started computing /slow"
            time.sleep(0.01)
        os.kill(int(pid), signal.SIGKILL)
        started = time.monotonic()
        with httpx.Client(base_url=workers, timeout=30) as client:
            response = client.get("/slow")
        waited = time.monotonic() - started
        runs = int(data.get(RUNS_KEY) or 0)
    leader.join(10)
    print(f"\na request after its leader's worker was killed took {waited:.3f} s")
    assert response.status_code == 200
    assert response.json() == {"runs": 2, "pid": response.json()["pid"]}
    assert response.json()["pid"] != int(pid)
    assert runs == 2
    assert waited < LOCK_LEASE + 1.0  # the lease, not the lock's coalesce_wait
