"""Streamed bodies flow through as they come; incomplete ones are never stored."""

from __future__ import annotations

from collections.abc import AsyncIterator

import anyio
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import StreamingResponse
from starlette.routing import Route
from starlette.types import Message

from asgi_cache import Cache, CacheMiddleware, cached
from tests.helpers import STREAMED, Calls, MakeCache, asgi_request, is_hit

pytestmark = pytest.mark.anyio


def build(cache: Cache, gate: anyio.Event | None = None) -> tuple[Starlette, Calls]:
    calls = Calls()

    @cached(ttl=60)
    async def stream(request: Request) -> StreamingResponse:
        calls["stream"] += 1
        mode = request.query_params.get("mode", "ok")

        async def chunks() -> AsyncIterator[bytes]:
            yield b"first;"
            if gate is not None:
                await gate.wait()
            if mode == "raise":
                raise RuntimeError("the database went away mid-stream")
            if mode == "big":
                for _ in range(100):
                    yield b"y" * 1000
            yield b"last"

        return StreamingResponse(chunks(), media_type="text/plain")

    app = Starlette(routes=[Route("/stream", stream)])
    app.add_middleware(CacheMiddleware, cache=cache)
    return app, calls


async def test_chunks_reach_the_client_before_the_body_is_complete(make_cache: MakeCache) -> None:
    gate = anyio.Event()
    app, _ = build(make_cache(max_body_size=10_000), gate)
    received: list[bytes] = []

    async def send(message: Message) -> None:
        if message["type"] == "http.response.body":
            received.append(message.get("body", b""))
            gate.set()  # the app may only finish once the first chunk arrived

    async def receive() -> Message:
        await anyio.sleep_forever()
        raise AssertionError

    scope = {
        "type": "http",
        "method": "GET",
        "path": "/stream",
        "query_string": b"",
        "headers": [],
        "root_path": "",
        "asgi": {"version": "3.0", "spec_version": "2.4"},
    }
    with anyio.fail_after(5):
        await app(scope, receive, send)
    assert received[0] == b"first;"
    assert b"".join(received) == b"first;last"


async def test_complete_stream_is_stored_and_replayed_whole(make_cache: MakeCache) -> None:
    app, calls = build(make_cache())
    miss = await asgi_request(app, "/stream")
    hit = await asgi_request(app, "/stream")
    assert miss.header(b"cache-status") == STREAMED.encode()
    assert hit.body == miss.body == b"first;last"
    assert is_hit(hit)
    assert hit.header(b"etag") is not None
    assert calls["stream"] == 1


async def test_stream_whose_app_raised_is_not_stored(make_cache: MakeCache) -> None:
    app, calls = build(make_cache())
    with pytest.raises(RuntimeError):
        await asgi_request(app, "/stream", query_string=b"mode=raise")
    with pytest.raises(RuntimeError):
        await asgi_request(app, "/stream", query_string=b"mode=raise")
    assert calls["stream"] == 2


async def test_stream_over_the_size_limit_passes_through_unstored(make_cache: MakeCache) -> None:
    app, calls = build(make_cache(max_body_size=50_000))
    first = await asgi_request(app, "/stream", query_string=b"mode=big")
    second = await asgi_request(app, "/stream", query_string=b"mode=big")
    assert len(first.body) == len(second.body) == 6 + 100_000 + 4
    assert calls["stream"] == 2


async def test_stream_cut_by_a_client_disconnect_is_not_stored(make_cache: MakeCache) -> None:
    gate = anyio.Event()
    app, calls = build(make_cache(), gate)
    sent_first = anyio.Event()
    messages: list[Message] = []

    async def send(message: Message) -> None:
        messages.append(message)
        if message["type"] == "http.response.body":
            sent_first.set()

    async def receive() -> Message:
        await sent_first.wait()
        return {"type": "http.disconnect"}

    scope = {
        "type": "http",
        "method": "GET",
        "path": "/stream",
        "query_string": b"",
        "headers": [],
        "root_path": "",
        "asgi": {"version": "3.0"},
    }
    with anyio.fail_after(5):
        await app(scope, receive, send)
    gate.set()
    assert not any(m.get("body") == b"last" for m in messages)
    again = await asgi_request(app, "/stream")
    assert not is_hit(again)
    assert calls["stream"] == 2
