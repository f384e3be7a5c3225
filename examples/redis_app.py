"""The product API of a caching tutorial, cached in Redis and shared by every worker.

Run it with two workers::

    ASGI_CACHE_URL=redis://127.0.0.1:6379/0 \\
        .venv/bin/python -m uvicorn examples.redis_app:app --workers 2

and try::

    curl -i http://127.0.0.1:8000/products/1    # Cache-Status: fwd=uri-miss; stored
    curl -i http://127.0.0.1:8000/products/1    # Cache-Status: hit, from either worker
    curl -i -X PUT "http://127.0.0.1:8000/products/1?name=pear"   # invalidates on every worker
    curl -i http://127.0.0.1:8000/products/1    # "pear", whichever worker answers
    curl -i http://127.0.0.1:8000/whoami        # which worker answered (never cached)
    curl -i http://127.0.0.1:8000/report        # slow; concurrent misses compute it once

Every worker is its own process, so an in-memory dict "database" would differ
between them and a write seen by one worker would be invisible to the other.
The products therefore live in Redis too (under ``shop:data:``, outside the
cache's ``shop:v1:`` prefix, so ``cache.clear()`` never deletes them), read
through a plain ``redis.asyncio`` client that each process creates on first use
and closes at shutdown.

``served_by`` in a product's body is the pid of the worker that *computed* it;
a hit repeats the stored body, so it keeps that pid.  The ``x-worker-pid``
response header, added outside the cache, is the pid of the worker that
*answered*: a hit whose two pids differ was stored by one worker and served by
the other.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import redis.asyncio as redis
from fastapi import FastAPI
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from asgi_cache import Cache, CacheMiddleware, cached, invalidates

URL = os.environ.get("ASGI_CACHE_URL", "redis://127.0.0.1:6379/0")
PRODUCTS_KEY = "shop:data:products"  # a hash: product id -> name
REPORT_RUNS_KEY = "shop:data:report-runs"  # how often /report was computed
SEED: dict[int, str] = {1: "apple", 2: "cherry"}

#: The store's bound on each Redis call (50 ms by default); ``ASGI_CACHE_TIMEOUT``
#: raises it for a machine too busy to answer within that.
TIMEOUT = float(os.environ.get("ASGI_CACHE_TIMEOUT", "0.05"))

cache = Cache.from_url(URL, prefix="shop:v1", timeout=TIMEOUT)

_db: redis.Redis | None = None


def db() -> redis.Redis:
    """This process's client for the product data, created on first use."""
    global _db
    if _db is None:
        _db = redis.Redis.from_url(URL, decode_responses=True)
    return _db


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    global _db
    yield
    if _db is not None:
        client, _db = _db, None
        await client.aclose()
    # The cache's own connections are closed by CacheMiddleware at shutdown.


async def all_products() -> dict[int, str]:
    stored = await db().hgetall(PRODUCTS_KEY)
    return {**SEED, **{int(pid): str(name) for pid, name in stored.items()}}


class WorkerPidMiddleware:
    """Adds ``x-worker-pid: <pid>`` to every response, hits included.

    It sits outside :class:`CacheMiddleware`, so it also sees the hits that the
    cache answers without running the application: it shows which worker
    answered, whereas ``served_by`` in a body shows which one computed it.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self.pid = str(os.getpid()).encode()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_pid(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = [*message.get("headers", ()), (b"x-worker-pid", self.pid)]
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, send_with_pid)


app = FastAPI(title="asgi-cache on Redis", lifespan=lifespan)
app.add_middleware(CacheMiddleware, cache=cache)
app.add_middleware(WorkerPidMiddleware)  # added last = outermost: it sees hits too


@app.get("/products")
@cached(ttl=60, tags=("products",))
async def list_products() -> dict[str, object]:
    return {"products": await all_products(), "served_by": os.getpid()}


@app.get("/products/{pid}")
@cached(ttl=120, tags=("product:{pid}", "products"))
async def get_product(pid: int) -> dict[str, object]:
    products = await all_products()
    return {"id": pid, "name": products.get(pid), "served_by": os.getpid()}


@app.put("/products/{pid}")
@invalidates("product:{pid}", "products")  # runs before the response reaches the client
async def update_product(pid: int, name: str) -> dict[str, object]:
    await db().hset(PRODUCTS_KEY, str(pid), name)
    return {"status": "updated", "id": pid, "name": name}


@app.get("/report")
@cached(ttl=60)
async def report() -> dict[str, object]:
    """An expensive report: concurrent misses, on any worker, compute it once."""
    runs = await db().incr(REPORT_RUNS_KEY)
    await asyncio.sleep(0.5)  # the slow query
    return {"runs": runs, "served_by": os.getpid()}


@app.get("/whoami")
async def whoami() -> dict[str, int]:
    return {"pid": os.getpid()}
