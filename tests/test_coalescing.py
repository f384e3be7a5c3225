"""Concurrent misses on one key reach the application once."""

from __future__ import annotations

import anyio
import pytest
from fastapi import FastAPI, Response

from asgi_cache import Cache, CacheMiddleware, cached
from tests.helpers import COLLAPSED, STORED, Calls, MakeCache, client_for

pytestmark = pytest.mark.anyio


def build(cache: Cache, gate: anyio.Event | None = None) -> tuple[FastAPI, Calls]:
    calls = Calls()
    app = FastAPI()
    app.add_middleware(CacheMiddleware, cache=cache)

    @app.get("/report")
    @cached(ttl=60)
    async def report() -> dict[str, int]:
        calls["report"] += 1
        n = calls["report"]
        await anyio.sleep(0.2)  # an expensive query: everybody else arrives meanwhile
        return {"n": n}

    @app.get("/private")
    @cached(ttl=60)
    async def private() -> Response:
        calls["private"] += 1
        n = calls["private"]
        await anyio.sleep(0.1)
        return Response(f"user {n}", headers={"set-cookie": f"session={n}"})

    @app.get("/hangs")
    @cached(ttl=60)
    async def hangs() -> dict[str, int]:
        calls["hangs"] += 1
        n = calls["hangs"]
        if n == 1 and gate is not None:
            await gate.wait()  # the first request's computation never ends in time
        return {"n": n}

    return app, calls


async def test_a_hundred_concurrent_misses_run_the_endpoint_once(make_cache: MakeCache) -> None:
    app, calls = build(make_cache())
    responses = []
    async with client_for(app) as client:

        async def get() -> None:
            responses.append(await client.get("/report"))

        with anyio.fail_after(10):
            async with anyio.create_task_group() as tasks:
                for _ in range(100):
                    tasks.start_soon(get)
    assert calls["report"] == 1
    assert {r.json()["n"] for r in responses} == {1}
    statuses = [r.headers["cache-status"] for r in responses]
    assert statuses.count(STORED) == 1
    assert statuses.count(COLLAPSED) == 99


async def test_waiters_of_an_unstorable_response_each_go_to_the_application(
    make_cache: MakeCache,
) -> None:
    app, calls = build(make_cache())
    bodies = []
    async with client_for(app) as client:

        async def get() -> None:
            response = await client.get("/private")
            bodies.append((response.text, response.headers["set-cookie"]))

        with anyio.fail_after(10):
            async with anyio.create_task_group() as tasks:
                for _ in range(10):
                    tasks.start_soon(get)
    assert calls["private"] == 10
    # nobody got somebody else's private response
    assert all(text == f"user {cookie.split('=')[1]}" for text, cookie in bodies)
    assert len({text for text, _ in bodies}) == 10


async def test_a_hanging_leader_blocks_waiters_no_longer_than_the_wait_bound(
    make_cache: MakeCache,
) -> None:
    gate = anyio.Event()
    app, calls = build(make_cache(coalesce_wait=0.3), gate)
    async with client_for(app) as client, anyio.create_task_group() as tasks:
        tasks.start_soon(client.get, "/hangs")
        await anyio.sleep(0.05)  # the leader is now stuck in the endpoint
        with anyio.fail_after(2):
            started = anyio.current_time()
            waiter = await client.get("/hangs")
            waited = anyio.current_time() - started
        gate.set()
    assert waiter.status_code == 200
    assert 0.25 < waited < 1.5
    assert calls["hangs"] == 2


async def test_coalescing_can_be_turned_off(make_cache: MakeCache) -> None:
    app, calls = build(make_cache(coalesce=False))
    async with client_for(app) as client:
        with anyio.fail_after(10):
            async with anyio.create_task_group() as tasks:
                for _ in range(5):
                    tasks.start_soon(client.get, "/report")
    assert calls["report"] == 5
