"""Stale-while-revalidate and stale-if-error (RFC 5861)."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from pathlib import Path

import anyio
import pytest
from fastapi import FastAPI, Response
from fastapi.responses import FileResponse
from starlette.testclient import TestClient

from asgi_cache import Cache, CacheMiddleware, MemoryStore, cached
from asgi_cache.status import Detail, stood_in
from tests.helpers import (
    STALE_STORED,
    Calls,
    Clock,
    MakeCache,
    client_for,
    detail_of,
    hit_status,
    is_hit,
)

pytestmark = pytest.mark.anyio


class Origin:
    """The application's behaviour, switched by the tests."""

    def __init__(self) -> None:
        self.mode = "ok"
        self.version = 1
        self.gate = anyio.Event()
        self.cancelled = False


def build(cache: Cache, origin: Origin) -> tuple[FastAPI, Calls]:
    calls = Calls()
    app = FastAPI()
    app.add_middleware(CacheMiddleware, cache=cache)

    async def answer(name: str) -> Response:
        calls[name] += 1
        if origin.mode == "raise":
            raise RuntimeError("the database is down")
        if origin.mode == "503":
            return Response("down", status_code=503)
        if origin.mode == "slow":
            await anyio.sleep(5)
        if origin.mode == "hang":
            try:
                await origin.gate.wait()
            except anyio.get_cancelled_exc_class():
                origin.cancelled = True
                raise
        return Response(f"v{origin.version}", headers={"x-name": name})

    @app.get("/swr")
    @cached(ttl=10, stale_while_revalidate=30)
    async def swr() -> Response:
        return await answer("swr")

    @app.get("/sie")
    @cached(ttl=10, stale_if_error=60)
    async def sie() -> Response:
        return await answer("sie")

    @app.get("/directives")
    @cached()
    async def directives() -> Response:
        response = await answer("directives")
        response.headers["cache-control"] = "max-age=10, stale-while-revalidate=30"
        return response

    return app, calls


async def wait_for(condition: Callable[[], bool]) -> None:
    with anyio.fail_after(5):
        while not condition():
            await anyio.sleep(0.01)


async def test_stale_entry_is_served_at_once_and_refreshed_in_the_background(
    make_cache: MakeCache,
) -> None:
    clock, origin = Clock(), Origin()
    app, calls = build(make_cache(clock=clock), origin)
    async with client_for(app) as client:
        await client.get("/swr")
        origin.version = 2
        clock.advance(15)
        stale = await client.get("/swr")
        await wait_for(lambda: calls["swr"] == 2)
        await anyio.sleep(0.05)
        fresh = await client.get("/swr")
    assert stale.text == "v1"
    assert stale.headers["cache-status"] == (hit_status(-5, Detail.STALE_WHILE_REVALIDATE))
    assert stale.headers["age"] == "15"
    assert fresh.text == "v2"
    assert is_hit(fresh) and detail_of(fresh) is None


async def test_many_stale_hits_start_one_refresh(make_cache: MakeCache) -> None:
    clock, origin = Clock(), Origin()
    app, calls = build(make_cache(clock=clock), origin)
    async with client_for(app) as client:
        await client.get("/swr")
        origin.mode = "hang"
        clock.advance(15)
        async with anyio.create_task_group() as tasks:
            for _ in range(20):
                tasks.start_soon(client.get, "/swr")
        await wait_for(lambda: calls["swr"] == 2)
        await anyio.sleep(0.1)
        assert calls["swr"] == 2
        origin.mode = "ok"
        origin.gate.set()


async def test_response_directives_set_the_stale_window(make_cache: MakeCache) -> None:
    clock, origin = Clock(), Origin()
    app, _ = build(make_cache(clock=clock), origin)
    async with client_for(app) as client:
        await client.get("/directives")
        clock.advance(35)
        within = await client.get("/directives")
        clock.advance(10)
        beyond = await client.get("/directives")
    assert detail_of(within) == Detail.STALE_WHILE_REVALIDATE
    assert detail_of(beyond) not in (Detail.STALE_WHILE_REVALIDATE, Detail.STALE_IF_ERROR)


async def test_past_the_window_a_stale_entry_is_not_served(make_cache: MakeCache) -> None:
    clock, origin = Clock(), Origin()
    app, calls = build(make_cache(clock=clock), origin)
    async with client_for(app) as client:
        await client.get("/swr")
        origin.version = 2
        clock.advance(41)
        late = await client.get("/swr")
    assert late.text == "v2"
    assert calls["swr"] == 2


async def test_a_failing_refresh_is_logged_and_the_stale_entry_stays(
    make_cache: MakeCache, caplog: pytest.LogCaptureFixture
) -> None:
    clock, origin = Clock(), Origin()
    app, calls = build(make_cache(clock=clock), origin)
    async with client_for(app) as client:
        await client.get("/swr")
        origin.mode = "raise"
        clock.advance(15)
        with caplog.at_level(logging.WARNING, logger="asgi_cache"):
            await client.get("/swr")
            await wait_for(lambda: calls["swr"] == 2)
            await wait_for(lambda: "background refresh" in caplog.text)
        again = await client.get("/swr")
    assert again.text == "v1"
    assert detail_of(again) == Detail.STALE_WHILE_REVALIDATE


@pytest.mark.parametrize(("mode", "fwd_status"), [("raise", 500), ("503", 503)])
async def test_stale_entry_stands_in_for_a_failing_application(
    make_cache: MakeCache, mode: str, fwd_status: int
) -> None:
    clock, origin = Clock(), Origin()
    app, _ = build(make_cache(clock=clock), origin)
    async with client_for(app) as client:
        await client.get("/sie")
        origin.mode = mode
        clock.advance(30)
        rescued = await client.get("/sie")
    assert rescued.status_code == 200
    assert rescued.text == "v1"
    assert rescued.headers["cache-status"] == stood_in(-20, fwd_status).decode()


async def test_stale_if_error_does_not_hide_errors_past_its_window(
    make_cache: MakeCache,
) -> None:
    clock, origin = Clock(), Origin()
    app, _ = build(make_cache(clock=clock), origin)
    async with client_for(app) as client:
        await client.get("/sie")
        origin.mode = "503"
        clock.advance(75)
        failed = await client.get("/sie")
    assert failed.status_code == 503


async def test_healthy_application_replaces_a_stale_if_error_entry(make_cache: MakeCache) -> None:
    clock, origin = Clock(), Origin()
    app, _ = build(make_cache(clock=clock), origin)
    async with client_for(app) as client:
        await client.get("/sie")
        origin.version = 2
        clock.advance(30)
        renewed = await client.get("/sie")
    assert renewed.text == "v2"
    assert renewed.headers["cache-status"] == STALE_STORED


async def test_slow_application_is_answered_for_by_the_stale_entry(make_cache: MakeCache) -> None:
    clock, origin = Clock(), Origin()
    app, _ = build(make_cache(clock=clock, origin_timeout=0.2), origin)
    async with client_for(app) as client:
        await client.get("/sie")
        origin.mode = "slow"
        clock.advance(30)
        with anyio.fail_after(2):
            rescued = await client.get("/sie")
    assert rescued.text == "v1"
    assert detail_of(rescued) == Detail.STALE_IF_ERROR


def test_background_refreshes_are_cancelled_at_shutdown() -> None:
    clock, origin = Clock(), Origin()
    app, calls = build(Cache(MemoryStore(), clock=clock), origin)
    outcome: list[str] = []

    def serve_then_shut_down() -> None:
        with TestClient(app) as client:
            client.get("/swr")
            origin.mode = "hang"  # the refresh will never finish by itself
            clock.advance(15)
            outcome.append(client.get("/swr").headers["cache-status"])
            for _ in range(500):
                if calls["swr"] == 2:
                    break
                time.sleep(0.01)
        outcome.append("shut down")

    worker = threading.Thread(target=serve_then_shut_down, daemon=True)
    worker.start()
    worker.join(timeout=10)
    assert not worker.is_alive(), "shutdown waited for a hanging background refresh"
    assert outcome == [hit_status(-5, Detail.STALE_WHILE_REVALIDATE), "shut down"]
    assert calls["swr"] == 2
    assert origin.cancelled


async def test_a_refresh_started_by_a_head_stores_the_full_get_response(
    make_cache: MakeCache, tmp_path: Path
) -> None:
    # FileResponse sends no body to a HEAD: a refresh made as a HEAD would
    # store an empty page for every later GET.
    page = tmp_path / "page.txt"
    page.write_text("v1")
    clock, calls = Clock(), Calls()
    app = FastAPI()
    app.add_middleware(CacheMiddleware, cache=make_cache(clock=clock))

    @app.get("/file")
    @cached(ttl=10, stale_while_revalidate=30)
    async def file() -> FileResponse:
        calls["file"] += 1
        return FileResponse(page)

    async with client_for(app) as client:
        await client.get("/file")
        page.write_text("v2")
        clock.advance(15)
        head = await client.head("/file")
        await wait_for(lambda: calls["file"] == 2)
        await anyio.sleep(0.05)
        refreshed = await client.get("/file")
    assert detail_of(head) == Detail.STALE_WHILE_REVALIDATE
    assert head.content == b""
    assert is_hit(refreshed)
    assert refreshed.text == "v2"
