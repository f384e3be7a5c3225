"""On a route nothing marks, the middleware is invisible: byte for byte, message for message.

A representative Starlette app and a representative FastAPI app are served three
ways: bare, with ``add_middleware(CacheMiddleware)``, and wrapped as
``CacheMiddleware(app)``.  Every exchange is driven with raw ASGI calls (nothing
buffers) and recorded whole: each message the app sent, each message its
``receive`` returned, the exception that escaped, the lifespan's own messages
and what background tasks did.  On unmarked routes, and on every unsafe request
(which passes the middleware's invalidation path), the records must be equal.
A few ``@cached`` routes in the same apps show marked routes still cache
alongside; only those may differ (``Cache-Status``, ``Age``).
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import anyio
import pytest
from fastapi import APIRouter, BackgroundTasks, FastAPI, HTTPException
from pydantic import BaseModel
from starlette.applications import Starlette
from starlette.background import BackgroundTask
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.middleware import Middleware
from starlette.middleware.gzip import GZipMiddleware
from starlette.requests import Request
from starlette.responses import (
    JSONResponse,
    PlainTextResponse,
    RedirectResponse,
    Response,
    StreamingResponse,
)
from starlette.routing import Mount, Route, WebSocketRoute
from starlette.staticfiles import StaticFiles
from starlette.testclient import TestClient
from starlette.types import ASGIApp, Message, Scope
from starlette.websockets import WebSocket

from asgi_cache import Cache, CacheMiddleware, MemoryStore, cached, invalidates
from asgi_cache.openapi import EXTENSION
from asgi_cache.status import parse
from tests.helpers import STORED

pytestmark = pytest.mark.anyio


@pytest.fixture(params=["asyncio", "trio"])
def anyio_backend(request: pytest.FixtureRequest) -> str:
    """The apps run on either event loop; only the memory store is used here."""
    return str(request.param)


STATIC_BODY = b"0123456789 static bytes\n" * 4000  # more than one chunk


@pytest.fixture
def static_dir(tmp_path: Path) -> Path:
    (tmp_path / "data.txt").write_bytes(STATIC_BODY)
    (tmp_path / "index.html").write_text("<h1>static index</h1>")
    return tmp_path


class Teapot(Exception):
    """An application exception with a handler of its own."""


@dataclass
class Built:
    """An app as built by a factory, and the side effects its background tasks leave."""

    app: ASGIApp
    events: list[str] = field(default_factory=list)


def greeting_lifespan(phase: str | None = None) -> Any:
    """A lifespan yielding state; with ``phase``, it fails there."""

    @asynccontextmanager
    async def lifespan(app: object) -> AsyncIterator[dict[str, str]]:
        if phase == "startup":
            raise RuntimeError("startup failed")
        yield {"greeting": "from the lifespan"}
        if phase == "shutdown":
            raise RuntimeError("shutdown failed")

    return lifespan


def starlette_app(static: Path, fail: str | None = None) -> Built:
    events: list[str] = []

    async def plain(request: Request) -> Response:
        return PlainTextResponse(f"plain {request.query_params}")

    async def stream(request: Request) -> Response:
        async def chunks() -> AsyncIterator[bytes]:
            for i in range(4):
                yield b"chunk %d\n" % i

        return StreamingResponse(chunks(), media_type="text/plain")

    async def background(request: Request) -> Response:
        task = BackgroundTask(events.append, f"background {request.method}")
        return PlainTextResponse("queued", background=task)

    async def missing(request: Request) -> Response:
        raise StarletteHTTPException(404, "no such thing", headers={"x-why": "gone"})

    async def teapot(request: Request) -> Response:
        raise Teapot("short and stout")

    async def teapot_handler(request: Request, exc: Exception) -> Response:
        return PlainTextResponse(str(exc), status_code=418)

    async def boom(request: Request) -> Response:
        raise RuntimeError("boom")

    async def moved(request: Request) -> Response:
        return RedirectResponse("/plain", status_code=301)

    async def echo(request: Request) -> Response:
        body = b"".join([chunk async for chunk in request.stream()])
        headers = [("set-cookie", "a=1"), ("set-cookie", "b=2"), ("link", "</x>")]
        response = Response(body, media_type="application/octet-stream")
        response.raw_headers.extend((k.encode(), v.encode()) for k, v in headers)
        return response

    async def greeting(request: Request) -> Response:
        return PlainTextResponse(request.state.greeting)

    async def post(request: Request) -> Response:
        return JSONResponse(request.path_params)

    async def ws(websocket: WebSocket) -> None:
        await websocket.accept()
        text = await websocket.receive_text()
        await websocket.send_text(f"echo {text}")
        await websocket.close()

    @cached(60, tags=("page:{n}",))
    async def page(request: Request) -> Response:
        return PlainTextResponse(f"page {request.path_params['n']}")

    @invalidates("page:{n}")
    async def edit_page(request: Request) -> Response:
        return PlainTextResponse("edited", status_code=200)

    sub = Starlette(
        routes=[Route("/inner", plain), Route("/inner-stream", stream)],
        middleware=[Middleware(GZipMiddleware, minimum_size=10)],
    )
    write = ["GET", "POST", "PUT", "PATCH", "DELETE"]
    app = Starlette(
        routes=[
            Route("/plain", plain),
            Route("/stream", stream),
            Route("/background", background, methods=write),
            Route("/missing", missing),
            Route("/teapot", teapot),
            Route("/boom", boom, methods=write),
            Route("/moved", moved),
            Route("/echo", echo, methods=write),
            Route("/greeting", greeting),
            Route("/slash", plain),
            Route("/page/{n}", page),
            Route("/page/{n}", edit_page, methods=["PUT"]),
            WebSocketRoute("/ws", ws),
            Mount("/static", app=StaticFiles(directory=static, html=True)),
            Mount("/sub", app=sub),
            Mount("/users/{id}", routes=[Route("/posts/{id}", post)]),
        ],
        exception_handlers={Teapot: teapot_handler},
        lifespan=greeting_lifespan(fail),
    )
    return Built(app, events)


class Item(BaseModel):
    name: str
    price: float


def fastapi_app(static: Path, fail: str | None = None) -> Built:
    events: list[str] = []
    app = FastAPI(lifespan=greeting_lifespan(fail))

    @app.exception_handler(Teapot)
    async def teapot_handler(request: Request, exc: Teapot) -> Response:
        return JSONResponse({"teapot": str(exc)}, status_code=418)

    @app.get("/items/{item_id}")
    async def read_item(item_id: int, q: str | None = None) -> dict[str, object]:
        return {"item_id": item_id, "q": q}

    @app.post("/items", status_code=201)
    async def create_item(item: Item, tasks: BackgroundTasks) -> Item:
        tasks.add_task(events.append, f"created {item.name}")
        return item

    @app.put("/items/{item_id}")
    async def replace_item(item_id: int, item: Item) -> dict[str, object]:
        return {"item_id": item_id, **item.model_dump()}

    @app.delete("/items/{item_id}", status_code=204)
    async def delete_item(item_id: int) -> None:
        events.append(f"deleted {item_id}")

    @app.get("/missing")
    async def missing() -> None:
        raise HTTPException(404, "no such thing", headers={"x-why": "gone"})

    @app.get("/teapot")
    async def teapot() -> None:
        raise Teapot("short and stout")

    @app.get("/boom")
    async def boom() -> None:
        raise RuntimeError("boom")

    @app.post("/boom")
    async def post_boom() -> None:
        raise RuntimeError("boom")

    @app.get("/stream")
    async def stream() -> StreamingResponse:
        async def chunks() -> AsyncIterator[bytes]:
            for i in range(4):
                yield b'{"chunk": %d}\n' % i

        return StreamingResponse(chunks(), media_type="application/x-ndjson")

    @app.get("/moved")
    async def moved() -> RedirectResponse:
        return RedirectResponse("/items/1")

    @app.get("/greeting")
    async def greeting(request: Request) -> dict[str, str]:
        return {"greeting": request.state.greeting}

    @app.websocket("/ws")
    async def ws(websocket: WebSocket) -> None:
        await websocket.accept()
        text = await websocket.receive_text()
        await websocket.send_json({"echo": text})
        await websocket.close()

    @app.get("/page/{n}")
    @cached(60, tags=("page:{n}",))
    async def page(n: int) -> dict[str, int]:
        return {"page": n}

    @app.put("/page/{n}")
    @invalidates("page:{n}")
    async def edit_page(n: int) -> dict[str, str]:
        return {"edited": str(n)}

    router = APIRouter(prefix="/api")

    @router.get("/plain")
    async def api_plain() -> PlainTextResponse:
        return PlainTextResponse("api plain")

    app.include_router(router)
    sub = FastAPI()

    @sub.get("/inner")
    async def inner() -> dict[str, str]:
        return {"inner": "sub app"}

    app.mount("/v2", sub)
    app.mount("/static", StaticFiles(directory=static, html=True))
    app.mount("/users/{id}", Starlette(routes=[Route("/posts/{id}", posts_of_user)]))
    return Built(app, events)


async def posts_of_user(request: Request) -> Response:
    return JSONResponse(request.path_params)


@dataclass(frozen=True)
class Call:
    """One request as a server would make it."""

    method: str
    path: str
    headers: tuple[tuple[bytes, bytes], ...] = ()
    body: tuple[bytes, ...] = (b"",)  # the chunks receive returns, in order
    query: bytes = b""
    websocket: tuple[Message, ...] = ()  # a websocket's incoming messages
    extensions: tuple[tuple[str, Any], ...] = ()
    spec_version: str = "2.3"


def get(path: str, *headers: tuple[bytes, bytes], **options: Any) -> Call:
    return Call("GET", path, headers, **options)


JSON = (b"content-type", b"application/json")
FUTURE = b"Fri, 01 Jan 2100 00:00:00 GMT"
WEBSOCKET = (
    {"type": "websocket.connect"},
    {"type": "websocket.receive", "text": "hello"},
    {"type": "websocket.disconnect", "code": 1000},
)

SHARED_CALLS: dict[str, Call] = {
    "not found": get("/nowhere"),
    "slash redirect": get("/greeting/"),
    "greeting from lifespan state": get("/greeting"),
    "stream": get("/stream"),
    "stream on spec 2.4": get("/stream", spec_version="2.4"),
    "head of stream": Call("HEAD", "/stream"),
    "missing": get("/missing"),
    "teapot": get("/teapot"),
    "boom": get("/boom"),
    "post boom": Call("POST", "/boom"),
    "moved": get("/moved"),
    "static file": get("/static/data.txt"),
    "static head": Call("HEAD", "/static/data.txt"),
    "static gzip asked": get("/static/data.txt", (b"accept-encoding", b"gzip")),
    "static not modified": get("/static/data.txt", (b"if-modified-since", FUTURE)),
    "static range": get("/static/data.txt", (b"range", b"bytes=5-24")),
    "static suffix range": get("/static/data.txt", (b"range", b"bytes=-10")),
    "static bad range": get("/static/data.txt", (b"range", b"bytes=99999-")),
    "static pathsend": get(
        "/static/data.txt", extensions=(("http.response.pathsend", {}),), spec_version="2.4"
    ),
    "static index": get("/static/"),
    "static missing": get("/static/none.txt"),
    "static post": Call("POST", "/static/data.txt"),
    "a parameter named at two levels": get("/users/1/posts/2"),
    "websocket": Call("WEBSOCKET", "/ws", websocket=WEBSOCKET),
    "put on a marked route invalidates": Call("PUT", "/page/1"),
    "a cached route's path with a slash": get("/page/1/"),
    "a write to nowhere": Call("DELETE", "/nowhere"),
}

STARLETTE_CALLS: dict[str, Call] = {
    **SHARED_CALLS,
    "plain with query": get("/plain", query=b"b=2&a=1"),
    "head of plain": Call("HEAD", "/plain"),
    "background get": get("/background"),
    "background post": Call("POST", "/background", body=(b"x",)),
    "background delete": Call("DELETE", "/background"),
    "post echo in chunks": Call("POST", "/echo", body=(b"first ", b"second ", b"last")),
    "put echo": Call("PUT", "/echo", body=(b"put body",)),
    "patch echo": Call("PATCH", "/echo", body=(b"patch body",)),
    "delete echo": Call("DELETE", "/echo"),
    "sub app": get("/sub/inner"),
    "sub app gzip stream": get("/sub/inner-stream", (b"accept-encoding", b"gzip")),
}

FASTAPI_CALLS: dict[str, Call] = {
    **SHARED_CALLS,
    "item": get("/items/3", query=b"q=x"),
    "head of item": Call("HEAD", "/items/3"),
    "invalid item": get("/items/abc"),
    "create item": Call("POST", "/items", (JSON,), (b'{"name": "hat", ', b'"price": 9.5}')),
    "create invalid item": Call("POST", "/items", (JSON,), (b'{"name": 1}',)),
    "replace item": Call("PUT", "/items/3", (JSON,), (b'{"name": "cap", "price": 2}',)),
    "delete item": Call("DELETE", "/items/3"),
    "method not allowed": Call("PATCH", "/items/3"),
    "api router": get("/api/plain"),
    "sub app": get("/v2/inner"),
    "sub app docs": get("/v2/docs"),
    "openapi": get("/openapi.json"),
}

MARKED = ("GET", "/page/1")


def scope_for(call: Call, state: dict[str, Any]) -> Scope:
    scope: Scope = {
        "type": "websocket" if call.websocket else "http",
        "asgi": {"version": "3.0", "spec_version": call.spec_version},
        "http_version": "1.1",
        "scheme": "ws" if call.websocket else "http",
        "path": call.path,
        "raw_path": call.path.encode(),
        "root_path": "",
        "query_string": call.query,
        "headers": [(b"host", b"testserver"), *call.headers],
        "client": ("127.0.0.1", 1234),
        "server": ("testserver", 80),
        "state": dict(state),  # each request gets a shallow copy, as servers do
        "extensions": dict(call.extensions),
    }
    if not call.websocket:
        scope["method"] = call.method
    return scope


@dataclass
class Exchange:
    """Everything observable about one call."""

    sent: list[Message] = field(default_factory=list)
    received: list[Message] = field(default_factory=list)
    raised: str | None = None


async def exchange(app: ASGIApp, call: Call, state: dict[str, Any]) -> Exchange:
    record = Exchange()
    incoming: list[Message] = list(call.websocket) or [
        {"type": "http.request", "body": chunk, "more_body": i < len(call.body) - 1}
        for i, chunk in enumerate(call.body)
    ]

    async def receive() -> Message:
        if not incoming:  # the client waits, connected, for as long as the app runs
            await anyio.sleep_forever()
        message = incoming.pop(0)
        record.received.append(message)
        return message

    async def send(message: Message) -> None:
        record.sent.append(message)

    try:
        await app(scope_for(call, state), receive, send)
    except Exception as exc:
        record.raised = repr(exc)
    return record


@dataclass
class Served:
    """A whole run: the lifespan's messages, each call's exchange, background effects."""

    lifespan: list[Message]
    lifespan_raised: str | None
    exchanges: dict[str, Exchange]
    marked: list[Exchange]
    events: list[str]


async def serve(built: Built, calls: dict[str, Call]) -> Served:
    """Run the lifespan, then every call in order (the marked GET twice among them)."""
    app = built.app
    state: dict[str, Any] = {}
    to_app_in, to_app_out = anyio.create_memory_object_stream[Message](4)
    from_app_in, from_app_out = anyio.create_memory_object_stream[Message | None](4)
    lifespan: list[Message] = []
    raised: list[str] = []

    async def receive() -> Message:
        return await to_app_out.receive()

    async def send(message: Message) -> None:
        lifespan.append(message)
        await from_app_in.send(message)

    async def run_lifespan() -> None:
        scope = {"type": "lifespan", "asgi": {"version": "3.0"}, "state": state}
        try:
            await app(scope, receive, send)
        except Exception as exc:
            raised.append(repr(exc))
        await from_app_in.send(None)

    exchanges: dict[str, Exchange] = {}
    marked: list[Exchange] = []
    async with (
        to_app_in,
        to_app_out,
        from_app_in,
        from_app_out,
        anyio.create_task_group() as tasks,
    ):
        tasks.start_soon(run_lifespan)
        await to_app_in.send({"type": "lifespan.startup"})
        started = await from_app_out.receive()
        if started is not None and started["type"] == "lifespan.startup.complete":
            names = list(calls)
            for i, name in enumerate(names):
                if i in (1, len(names) // 2):  # marked calls among the others
                    marked.append(await exchange(app, get(MARKED[1]), state))
                exchanges[name] = await exchange(app, calls[name], state)
            marked.append(await exchange(app, get(MARKED[1]), state))
            await to_app_in.send({"type": "lifespan.shutdown"})
        while await from_app_out.receive() is not None:
            pass
    return Served(lifespan, raised[0] if raised else None, exchanges, marked, built.events)


Factory = Callable[[Path], Built]
APPS: list[tuple[str, Factory, dict[str, Call]]] = [
    ("starlette", starlette_app, STARLETTE_CALLS),
    ("fastapi", fastapi_app, FASTAPI_CALLS),
]


def add_middleware(built: Built) -> Built:
    built.app.add_middleware(CacheMiddleware, cache=Cache(MemoryStore()))  # type: ignore[attr-defined]
    return built


def wrap(built: Built) -> Built:
    built.app = CacheMiddleware(built.app, cache=Cache(MemoryStore()))
    return built


WAYS = {"add_middleware": add_middleware, "CacheMiddleware(app)": wrap}

apps = pytest.mark.parametrize(
    ("factory", "calls"), [(f, c) for _, f, c in APPS], ids=[name for name, _, _ in APPS]
)
ways = pytest.mark.parametrize("way", list(WAYS))


@apps
@ways
async def test_every_unmarked_exchange_is_identical_with_and_without_the_middleware(
    factory: Factory, calls: dict[str, Call], way: str, static_dir: Path
) -> None:
    bare = await serve(factory(static_dir), calls)
    cached_ = await serve(WAYS[way](factory(static_dir)), calls)
    assert cached_.lifespan == bare.lifespan
    assert cached_.lifespan_raised == bare.lifespan_raised is None
    for name in calls:
        if name == "openapi":  # it describes the marked routes too: see below
            assert_same_document(cached_.exchanges[name], bare.exchanges[name])
        else:
            assert cached_.exchanges[name] == bare.exchanges[name], name
    assert cached_.events == bare.events


def assert_same_document(cached_: Exchange, bare: Exchange) -> None:
    """The OpenAPI document is the bare one plus the notes on ``@cached`` operations."""
    assert [m["type"] for m in cached_.sent] == [m["type"] for m in bare.sent]
    assert cached_.sent[0]["status"] == bare.sent[0]["status"] == 200
    assert cached_.received == bare.received
    documents = [
        json.loads(b"".join(m.get("body", b"") for m in e.sent[1:])) for e in (cached_, bare)
    ]
    operations = [
        op for item in documents[0]["paths"].values() for op in item.values() if EXTENSION in op
    ]
    assert operations  # the FastAPI app has marked routes
    for op in operations:
        del op[EXTENSION]
        kept = op["description"].rsplit("\n\nCached: ", 1)
        if len(kept) == 2:
            op["description"] = kept[0]
        else:
            del op["description"]
    assert documents[0] == documents[1]


@ways
async def test_the_openapi_document_is_identical_with_openapi_off(
    way: str, static_dir: Path
) -> None:
    calls = {"openapi": FASTAPI_CALLS["openapi"]}
    bare = await serve(fastapi_app(static_dir), calls)
    built = fastapi_app(static_dir)
    if way == "add_middleware":
        built.app.add_middleware(CacheMiddleware, cache=Cache(MemoryStore()), openapi=False)  # type: ignore[attr-defined]
    else:
        built.app = CacheMiddleware(built.app, cache=Cache(MemoryStore()), openapi=False)
    cached_ = await serve(built, calls)
    assert cached_.exchanges["openapi"] == bare.exchanges["openapi"]


@apps
async def test_the_recorded_exchanges_cover_what_they_claim(
    factory: Factory, calls: dict[str, Call], static_dir: Path
) -> None:
    """Guards the comparison above against comparing empty or trivial records."""
    served = await serve(factory(static_dir), calls)
    status = {name: record.sent[0].get("status") for name, record in served.exchanges.items()}
    assert status["static range"] == 206
    assert status["static bad range"] == 416
    assert status["static not modified"] == 304
    assert status["static pathsend"] == 200
    assert served.exchanges["static pathsend"].sent[1]["type"] == "http.response.pathsend"
    assert status["slash redirect"] in (307, 308)
    assert status["teapot"] == 418
    assert status["missing"] == 404
    assert status["boom"] == status["post boom"] == 500
    assert served.exchanges["boom"].raised == "RuntimeError('boom')"
    assert {name for name, record in served.exchanges.items() if record.raised} == {
        "boom",
        "post boom",
    }
    assert len(served.exchanges["static file"].sent) >= 3  # the file goes in chunks
    assert status["a parameter named at two levels"] == 200
    assert served.exchanges["a parameter named at two levels"].sent[1]["body"] == b'{"id":"2"}'
    assert len(served.exchanges["stream"].sent) >= 5  # the start and each chunk apart
    assert served.exchanges["websocket"].sent[1]["text"] in ("echo hello", '{"echo":"hello"}')
    assert b"from the lifespan" in served.exchanges["greeting from lifespan state"].sent[1]["body"]
    assert [m["type"] for m in served.lifespan] == [
        "lifespan.startup.complete",
        "lifespan.shutdown.complete",
    ]
    assert served.events  # background tasks ran


def status_of(record: Exchange) -> bytes | None:
    headers = record.sent[0].get("headers", [])
    return next((value for name, value in headers if name == b"cache-status"), None)


def body_of(record: Exchange) -> bytes:
    return b"".join(message.get("body", b"") for message in record.sent[1:])


@apps
@ways
async def test_marked_routes_alongside_are_cached_and_invalidated(
    factory: Factory, calls: dict[str, Call], way: str, static_dir: Path
) -> None:
    bare = await serve(factory(static_dir), calls)
    cached_ = await serve(WAYS[way](factory(static_dir)), calls)
    assert [status_of(r) for r in bare.marked] == [None, None, None]
    statuses = [status_of(r) or b"" for r in cached_.marked]
    assert statuses[0] == STORED.encode()
    assert parse(statuses[1]).hit  # type: ignore[union-attr]
    # the PUT between the second and third invalidated the entry
    assert list(calls).index("put on a marked route invalidates") >= len(calls) // 2
    assert statuses[2] == STORED.encode()
    assert [body_of(r) for r in cached_.marked] == [body_of(r) for r in bare.marked]


@apps
@ways
@pytest.mark.parametrize("phase", ["startup", "shutdown"])
async def test_a_failing_lifespan_is_reported_and_raised_identically(
    factory: Callable[..., Built],
    calls: dict[str, Call],
    way: str,
    phase: str,
    static_dir: Path,
) -> None:
    few = {name: calls[name] for name in ("stream", "websocket")}
    bare = await serve(factory(static_dir, phase), few)
    cached_ = await serve(WAYS[way](factory(static_dir, phase)), few)
    assert bare.lifespan[-1]["type"] == f"lifespan.{phase}.failed"
    assert bare.lifespan_raised == f"RuntimeError('{phase} failed')"
    assert cached_.lifespan == bare.lifespan
    assert cached_.lifespan_raised == bare.lifespan_raised
    assert cached_.exchanges == bare.exchanges


def raising_app() -> Starlette:
    async def boom(request: Request) -> Response:
        raise RuntimeError("boom")

    return Starlette(routes=[Route("/boom", boom, methods=["GET", "POST"])])


@ways
@pytest.mark.parametrize(
    ("raise_server_exceptions", "expected"),
    [(True, ("RuntimeError('boom')",)), (False, (500, "Internal Server Error"))],
)
@pytest.mark.parametrize("method", ["GET", "POST"])
def test_a_raising_endpoint_looks_the_same_through_the_test_client(
    way: str, raise_server_exceptions: bool, expected: tuple[object, ...], method: str
) -> None:
    outcomes: list[tuple[object, ...]] = []
    for app in (raising_app(), WAYS[way](Built(raising_app())).app):
        client = TestClient(app, raise_server_exceptions=raise_server_exceptions)
        try:
            response = client.request(method, "/boom")
            outcomes.append((response.status_code, response.text, response.headers.raw))
        except RuntimeError as exc:
            outcomes.append((repr(exc),))
    bare, with_cache = outcomes
    assert with_cache == bare
    assert bare[:2] == expected
