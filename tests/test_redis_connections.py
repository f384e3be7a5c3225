"""A burst of requests opens a bounded number of Redis connections, and shutdown closes them.

Connections are counted from the server's side: ``CLIENT LIST`` over a raw
socket of its own (which is itself one of the clients listed, and subtracted).
So the count is only this run's if the server is this run's own: when another
run's redis-server took the port the suite picked, and the suite's own server
then exited ("Address already in use"), a readiness check that a mere ``PING``
satisfied left two runs on one server, and a burst counted the other run's
clients too (peaks of +80 and +99 on a loaded machine, where starting a
redis-server takes long enough to lose that race).  The last test here keeps
that from coming back.
The application runs its real lifespan, driven here message by message, so the
middleware's shutdown is what closes the store.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import anyio
import pytest
from fastapi import FastAPI
from starlette.types import ASGIApp, Message, Scope

from asgi_cache import Cache, CacheMiddleware, cached
from asgi_cache.stores.redis import RedisStore
from tests.helpers import Calls, client_for
from tests.redis_servers import RedisServer, RedisUnavailable, resp_command

pytestmark = pytest.mark.anyio

TASKS = 50
REQUESTS_PER_TASK = 20


def connected_clients(server: RedisServer) -> int:
    """Clients connected to ``server``, not counting the connection that asks."""
    listing = resp_command(server.host, server.port, "CLIENT", "LIST", timeout=2)
    assert isinstance(listing, bytes)
    return len(listing.splitlines()) - 1


def build(cache: Cache) -> tuple[FastAPI, Calls]:
    calls = Calls()
    app = FastAPI()
    app.add_middleware(CacheMiddleware, cache=cache)

    @app.get("/items/{n}")
    @cached(ttl=60, tags=("items", "item:{n}"))
    async def item(n: int) -> dict[str, int]:
        calls[f"item{n}"] += 1
        return {"n": n}

    return app, calls


@asynccontextmanager
async def lifespan(app: ASGIApp) -> AsyncIterator[None]:
    """Run ``app``'s lifespan: startup on entry, shutdown on exit, as a server does."""
    to_app, app_receives = anyio.create_memory_object_stream[Message](1)
    app_sends, from_app = anyio.create_memory_object_stream[Message](1)
    async with to_app, app_receives, app_sends, from_app, anyio.create_task_group() as group:
        scope: Scope = {"type": "lifespan", "asgi": {"version": "3.0"}, "state": {}}

        async def run() -> None:
            await app(scope, app_receives.receive, app_sends.send)

        group.start_soon(run)
        await to_app.send({"type": "lifespan.startup"})
        with anyio.fail_after(5):
            assert (await from_app.receive())["type"] == "lifespan.startup.complete"
        yield
        await to_app.send({"type": "lifespan.shutdown"})
        with anyio.fail_after(5):
            assert (await from_app.receive())["type"] == "lifespan.shutdown.complete"


async def burst(app: ASGIApp, tasks: int, requests_per_task: int) -> list[int]:
    """``tasks`` concurrent clients each sending ``requests_per_task`` GETs; their statuses."""
    statuses: list[int] = []

    async def client_loop(task: int) -> None:
        async with client_for(app) as client:
            for i in range(requests_per_task):
                with anyio.fail_after(10):
                    response = await client.get(f"/items/{(task + i) % tasks}")
                statuses.append(response.status_code)

    async with anyio.create_task_group() as group:
        for task in range(tasks):
            group.start_soon(client_loop, task)
    return statuses


async def wait_for_clients(server: RedisServer, expected: int, timeout: float = 2.0) -> int:
    """Poll ``CLIENT LIST`` until it shows at most ``expected`` clients (closing takes a moment)."""
    deadline = time.monotonic() + timeout
    while True:
        count = await anyio.to_thread.run_sync(connected_clients, server)
        if count <= expected or time.monotonic() > deadline:
            return count
        await anyio.sleep(0.02)


async def test_a_burst_of_1000_requests_keeps_the_connection_count_bounded(
    redis_server: RedisServer,
) -> None:
    baseline = connected_clients(redis_server)
    store = RedisStore.from_url(redis_server.url, timeout=2.0)
    pool_max = store.client.connection_pool.max_connections  # type: ignore[union-attr]
    cache = Cache(store, prefix="connections-burst")
    app, calls = build(cache)
    samples: list[int] = []
    done = anyio.Event()

    async def sample() -> None:
        while not done.is_set():
            samples.append(await anyio.to_thread.run_sync(connected_clients, redis_server))
            await anyio.sleep(0.01)

    async with lifespan(app):
        async with anyio.create_task_group() as group:
            group.start_soon(sample)
            statuses = await burst(app, TASKS, REQUESTS_PER_TASK)
            done.set()
        after_burst = connected_clients(redis_server)
        await cache.clear()

    peak = max(samples) - baseline
    print(
        f"\n{len(statuses)} requests, {sum(calls.values())} endpoint runs; Redis clients: "
        f"baseline {baseline}, peak +{peak} over {len(samples)} samples, after +"
        f"{after_burst - baseline}; pool max {pool_max}"
    )
    assert statuses == [200] * TASKS * REQUESTS_PER_TASK
    assert sum(calls.values()) < len(statuses)  # the cache served hits
    assert len(samples) >= 3, "the burst ended before connections could be sampled"
    # The bound the store keeps is its pool's.  About one connection per concurrent
    # request (+50 here) is what a run usually shows, and is printed above; one
    # full run on a quiet machine showed +98 (two per concurrent request), for a reason
    # not found yet, so that figure is reported, not asserted.
    assert 1 <= peak <= pool_max
    assert after_burst - baseline <= pool_max


async def test_lifespan_shutdown_closes_every_store_connection(
    redis_server: RedisServer,
) -> None:
    baseline = connected_clients(redis_server)
    cache = Cache(RedisStore.from_url(redis_server.url, timeout=2.0), prefix="connections-close")
    app, _ = build(cache)

    async with lifespan(app):
        await burst(app, TASKS, 2)  # many requests at once: many pooled connections
        opened = connected_clients(redis_server) - baseline
        await cache.clear()

    assert opened > 1
    assert await wait_for_clients(redis_server, baseline) <= baseline


def test_a_server_whose_port_another_server_holds_is_never_taken_for_it(
    redis_server: RedisServer,
) -> None:
    """Starting a server on a port that another redis-server already serves fails,
    rather than handing back the other server as if it were the new one."""
    with pytest.raises(RedisUnavailable, match="exited during startup"):
        RedisServer(port=redis_server.port)
    assert resp_command(redis_server.host, redis_server.port, "PING", timeout=2) == b"PONG"
