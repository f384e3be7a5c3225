"""A small FastAPI app that ``tests/test_servers.py`` serves with real ASGI servers.

The cache is the middleware's default (``ASGI_CACHE_URL``, else in memory), unless
``SERVED_PREFIX`` is set: then the same store under that prefix, with the store timeout
``SERVED_STORE_TIMEOUT`` if that is set too.  Every endpoint reports how many times it
ran, so a test over the socket can tell a hit (nothing ran) from a miss.

Its lifespan puts a value in the lifespan state, and when the server shuts it down,
``SERVED_MARKER`` (a file) gets a line at each step: ``app shutdown`` from the app's
lifespan, then ``store closed`` once the middleware has closed the store and reported
the shutdown complete.
"""

from __future__ import annotations

import asyncio
import os
from collections import Counter
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI, Request, Response
from fastapi.responses import StreamingResponse
from starlette.types import Message, Receive, Scope, Send

from asgi_cache import Cache, CacheMiddleware, cached, get_cache, invalidates

calls: Counter[str] = Counter()
products: dict[int, str] = {1: "apple", 2: "pear", 3: "fig"}

#: The chunks ``/stream`` sends, one ``http.response.body`` message each.
CHUNKS = tuple(f"chunk {n}: {'x' * 1000}\n" for n in range(5))


def mark(step: str) -> None:
    """Append ``step`` to the ``SERVED_MARKER`` file, if there is one."""
    marker = os.environ.get("SERVED_MARKER")
    if marker:
        with open(marker, "a") as file:
            file.write(step + "\n")


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[dict[str, Any]]:
    yield {"started_by": os.getpid()}
    mark("app shutdown")


def _cache() -> Cache | None:
    prefix = os.environ.get("SERVED_PREFIX")
    if prefix is None:
        return None  # the middleware's own default
    url = os.environ.get("ASGI_CACHE_URL", "memory://")
    timeout = os.environ.get("SERVED_STORE_TIMEOUT")
    options = {} if timeout is None else {"timeout": float(timeout)}
    return Cache.from_url(url, prefix=prefix, **options)


api = FastAPI(lifespan=lifespan)
api.add_middleware(CacheMiddleware, cache=_cache())


@api.get("/products/{pid}")
@cached(ttl=60, tags=("product:{pid}", "products"))
async def get_product(pid: int) -> dict[str, object]:
    calls[f"product{pid}"] += 1
    return {"pid": pid, "name": products.get(pid), "executions": calls[f"product{pid}"]}


@api.put("/products/{pid}")
@invalidates("product:{pid}", "products")
async def put_product(pid: int, name: str) -> dict[str, object]:
    products[pid] = name
    return {"pid": pid, "name": name}


@api.get("/counted")
@cached(ttl=60)
async def counted(request: Request) -> dict[str, object]:
    calls["counted"] += 1
    return {"executions": calls["counted"], "query_length": len(request.url.query)}


@api.get("/versioned")
@cached()
async def versioned(request: Request) -> Response:
    """Conditional GET done cheaply: a 304 on a matching ``If-None-Match``, before rendering."""
    calls["versioned_checked"] += 1
    headers = {"etag": '"v1"', "cache-control": "no-cache"}
    if request.headers.get("if-none-match") == '"v1"':
        return Response(status_code=304, headers=headers)
    calls["versioned_rendered"] += 1
    return Response("version 1 of the page", headers=headers)


@api.get("/calls")
async def get_calls() -> dict[str, int]:
    return dict(calls)


@api.get("/stream")
@cached(ttl=60)
async def stream() -> StreamingResponse:
    calls["stream"] += 1
    run = calls["stream"]

    async def chunks() -> AsyncIterator[str]:
        for chunk in CHUNKS:
            yield chunk
            await asyncio.sleep(0)
        yield f"run {run}\n"

    return StreamingResponse(chunks(), media_type="text/plain")


@api.get("/lifespan")
async def lifespan_state(request: Request) -> dict[str, object]:
    """What the lifespan left in the state, and what the cache saw of its store."""
    return {
        "started_by": getattr(request.state, "started_by", None),
        "pid": os.getpid(),
        "store_errors": get_cache(request).stats()["store_errors"],
    }


async def app(scope: Scope, receive: Receive, send: Send) -> None:
    """The FastAPI app, noting in the marker when its shutdown reached the server."""
    if scope["type"] != "lifespan":
        await api(scope, receive, send)
        return

    async def noting_send(message: Message) -> None:
        if message["type"] == "lifespan.shutdown.complete":
            mark("store closed")  # the middleware closes the store before it says complete
        await send(message)

    await api(scope, receive, noting_send)
