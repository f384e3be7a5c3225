"""Request observers: told each cached request's Cache-Status, never in the way."""

from __future__ import annotations

import logging

import pytest
from fastapi import FastAPI
from starlette.types import Scope

from asgi_cache import Cache, CacheMiddleware, MemoryStore, cached
from asgi_cache.observers import OnResponse
from tests.helpers import STORED, client_for

pytestmark = pytest.mark.anyio


def build(cache: Cache) -> FastAPI:
    app = FastAPI()
    app.add_middleware(CacheMiddleware, cache=cache)

    @app.get("/page")
    @cached(ttl=60)
    async def page() -> dict[str, int]:
        return {"n": 1}

    @app.get("/plain")
    async def plain() -> dict[str, int]:
        return {"n": 2}

    return app


async def test_an_observer_hears_the_cache_status_of_each_cached_request() -> None:
    cache = Cache(MemoryStore())
    heard: list[tuple[str, list[bytes]]] = []

    def observer(scope: Scope) -> OnResponse:
        return lambda values: heard.append((scope["path"], values))

    cache.observers.append(observer)
    async with client_for(build(cache)) as client:
        await client.get("/page")
        hit = await client.get("/page")
        await client.get("/plain")
    assert heard == [
        ("/page", [STORED.encode()]),
        ("/page", [hit.headers["cache-status"].encode()]),
    ]


async def test_an_observer_that_has_nothing_to_record_is_not_called_back() -> None:
    cache = Cache(MemoryStore())
    asked: list[str] = []

    def observer(scope: Scope) -> OnResponse | None:
        asked.append(scope["path"])
        return None

    cache.observers.append(observer)
    async with client_for(build(cache)) as client:
        assert (await client.get("/page")).status_code == 200
    assert asked == ["/page"]


@pytest.mark.parametrize("when", ["request", "response"])
async def test_a_failing_observer_is_logged_and_the_response_goes_out(
    when: str, caplog: pytest.LogCaptureFixture
) -> None:
    cache = Cache(MemoryStore())

    def fail(values: list[bytes]) -> None:
        raise RuntimeError("observer bug")

    def observer(scope: Scope) -> OnResponse:
        if when == "request":
            raise RuntimeError("observer bug")
        return fail

    cache.observers.append(observer)
    with caplog.at_level(logging.WARNING, logger="asgi_cache"):
        async with client_for(build(cache)) as client:
            response = await client.get("/page")
    assert (response.status_code, response.json()) == (200, {"n": 1})
    assert f"{when} observer" in caplog.text
    assert "observer bug" in caplog.text
