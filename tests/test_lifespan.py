"""The application's lifespan through the middleware: its failures reach the server as themselves.

The middleware runs the lifespan inside a task group of its own (background
refreshes belong to it), yet a server, a test client or a ``pytest.raises`` must
see exactly the exception the application raised, not an ``ExceptionGroup``
around it, on asyncio as on trio.  These are the scenarios Starlette's and
FastAPI's own test suites exercise, with the middleware added.
"""

from __future__ import annotations

import contextlib
import traceback
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import pytest
from fastapi import FastAPI
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.responses import PlainTextResponse
from starlette.routing import Mount, Route, Router
from starlette.testclient import TestClient
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from asgi_cache import Cache, CacheConfigError, CacheMiddleware, MemoryStore, cached


@pytest.fixture(params=["asyncio", "trio"])
def backend(request: pytest.FixtureRequest) -> str:
    """The event loop the test client runs the application on."""
    return str(request.param)


def with_cache(app: ASGIApp) -> CacheMiddleware:
    return CacheMiddleware(app, cache=Cache(MemoryStore()))


class Failure(RuntimeError):
    """The application's own exception, distinct from anything a library raises."""


def failing_lifespan(phase: str, error: BaseException) -> Any:
    @asynccontextmanager
    async def lifespan(app: object) -> AsyncIterator[None]:
        if phase == "startup":
            raise error
        yield
        raise error

    return lifespan


@pytest.mark.parametrize("phase", ["startup", "shutdown"])
def test_a_lifespan_error_comes_out_as_the_very_exception_raised(backend: str, phase: str) -> None:
    error = Failure(f"{phase} failed")
    app = Starlette(lifespan=failing_lifespan(phase, error))
    app.add_middleware(CacheMiddleware, cache=Cache(MemoryStore()))
    with pytest.raises(Failure) as raised:
        with TestClient(app, backend=backend):
            pass
    assert raised.value is error
    assert type(raised.value) is Failure


@pytest.mark.parametrize("phase", ["startup", "shutdown"])
def test_a_fastapi_lifespan_error_still_propagates(backend: str, phase: str) -> None:
    app = FastAPI(lifespan=failing_lifespan(phase, RuntimeError(phase)))
    app.add_middleware(CacheMiddleware, cache=Cache(MemoryStore()))
    with pytest.raises(RuntimeError, match=phase):
        with TestClient(app, backend=backend):
            pass


def test_a_lifespan_error_keeps_its_cause_and_the_frame_that_raised_it(backend: str) -> None:
    @asynccontextmanager
    async def lifespan(app: object) -> AsyncIterator[None]:
        try:
            {}["setting"]
        except KeyError as missing:
            raise Failure("no setting") from missing
        yield

    app = Starlette(lifespan=lifespan)
    app.add_middleware(CacheMiddleware, cache=Cache(MemoryStore()))
    with pytest.raises(Failure) as raised:
        with TestClient(app, backend=backend):
            pass
    assert isinstance(raised.value.__cause__, KeyError)
    assert raised.value.__context__ is raised.value.__cause__
    innermost = traceback.extract_tb(raised.value.__traceback__)[-1]
    assert innermost.name == "lifespan"
    assert innermost.line == 'raise Failure("no setting") from missing'


def test_an_exception_in_a_middleware_below_comes_out_as_itself(backend: str) -> None:
    class MiddlewareException(Exception):
        pass

    class BrokenMiddleware:
        def __init__(self, app: ASGIApp) -> None:
            self.app = app

        async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
            raise MiddlewareException()

    app = Starlette(middleware=[Middleware(BrokenMiddleware)])
    app.add_middleware(CacheMiddleware, cache=Cache(MemoryStore()))
    with pytest.raises(MiddlewareException):
        with TestClient(app, backend=backend):
            pass


def test_a_failed_startup_is_reported_to_the_server_and_raised(backend: str) -> None:
    router = Router(lifespan=failing_lifespan("startup", Failure("startup")))
    sent: list[str] = []

    async def server_side(scope: Scope, receive: Receive, send: Send) -> None:
        async def record(message: Message) -> None:
            sent.append(message["type"])
            await send(message)

        await with_cache(router)(scope, receive, record)

    with pytest.raises(Failure):
        with TestClient(server_side, backend=backend):
            pass
    assert sent == ["lifespan.startup.failed"]


def test_a_server_without_lifespan_state_gets_starlettes_own_error(backend: str) -> None:
    @asynccontextmanager
    async def lifespan(app: object) -> AsyncIterator[dict[str, str]]:
        yield {"foo": "bar"}

    app = with_cache(
        Router(lifespan=lifespan, routes=[Mount("/", PlainTextResponse("hello, world"))])
    )

    async def no_state(scope: Scope, receive: Receive, send: Send) -> None:
        del scope["state"]
        await app(scope, receive, send)

    with pytest.raises(RuntimeError, match='The server does not support "state"'):
        with TestClient(no_state, backend=backend):
            pass


def test_a_misplaced_marker_fails_startup_with_a_config_error_naming_the_route(
    backend: str,
) -> None:
    @cached(ttl=60, tags=("product:{sku}",))
    async def product(request: object) -> PlainTextResponse:
        return PlainTextResponse("product")

    app = Starlette(routes=[Route("/products/{pid}", product)])
    app.add_middleware(CacheMiddleware, cache=Cache(MemoryStore()))
    with pytest.raises(CacheConfigError, match=r"/products/\{pid\}"):
        with TestClient(app, backend=backend):
            pass


@pytest.mark.parametrize("fails", [True, False])
def test_the_store_is_closed_at_shutdown_even_when_the_application_fails_it(
    backend: str, fails: bool
) -> None:
    store = MemoryStore(clear_on_close=True)
    lifespan = failing_lifespan("shutdown", Failure("shutdown failed")) if fails else None
    app = Starlette(lifespan=lifespan)

    @cached(ttl=60)
    async def page(request: object) -> PlainTextResponse:
        return PlainTextResponse("page")

    app.router.routes.append(Route("/page", page))
    app.add_middleware(CacheMiddleware, cache=Cache(store))
    with contextlib.suppress(Failure), TestClient(app, backend=backend) as client:
        client.get("/page")
        assert store.entries == 1
    assert store.entries == 0  # MemoryStore(clear_on_close=True).aclose drops everything
