"""An app with a near cache in front of Redis, for ``tests/test_near_processes.py``.

Run by uvicorn, one process per instance: ``NEAR_APP_REDIS_URL`` names the Redis they
share and ``NEAR_APP_PREFIX`` the cache's prefix.  The products live in Redis too (outside
the cache's prefix), so a product written through one process is what every process
computes afterwards, and only the cache can answer an old name.
"""

from __future__ import annotations

import os

import redis.asyncio as redis
from fastapi import FastAPI

from asgi_cache import Cache, CacheMiddleware, RedisStore, cached, invalidates
from asgi_cache.stores.near import NearCache

URL = os.environ["NEAR_APP_REDIS_URL"]
PREFIX = os.environ["NEAR_APP_PREFIX"]

cache = Cache(
    RedisStore.from_url(URL, near_cache=NearCache(1 << 20, prefix=f"{PREFIX}:")),
    prefix=PREFIX,
)
data = redis.Redis.from_url(URL)

app = FastAPI()
app.add_middleware(CacheMiddleware, cache=cache)


def product_key(pid: int) -> str:
    return f"{PREFIX}-data:product:{pid}"


@app.get("/products/{pid}")
@cached(ttl=60, tags=("product:{pid}",))
async def get_product(pid: int) -> dict[str, object]:
    name = await data.get(product_key(pid))
    return {"pid": pid, "name": name.decode() if name else None, "computed_by": os.getpid()}


@app.put("/products/{pid}")
@invalidates("product:{pid}")
async def put_product(pid: int, name: str) -> dict[str, object]:
    await data.set(product_key(pid), name)
    return {"pid": pid, "name": name}


@app.get("/stats")
async def stats() -> dict[str, object]:
    return cache.stats()
