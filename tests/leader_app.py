"""An app whose first computation of ``/slow`` never ends: ``tests/test_flight.py`` kills the
worker running it and times how long the other worker's requests wait for its lock.

Served by uvicorn with two workers over the suite's Redis (``ASGI_CACHE_URL``).  ``/slow``
counts its runs in Redis, and the first run records its worker's pid there and hangs.
"""

from __future__ import annotations

import asyncio
import os

import redis.asyncio as redis
from fastapi import FastAPI

from asgi_cache import Cache, CacheMiddleware, cached

URL = os.environ["ASGI_CACHE_URL"]
RUNS_KEY = "leader-app:runs"
LEADER_KEY = "leader-app:leader-pid"

cache = Cache.from_url(URL, prefix="leader-app:v1")
app = FastAPI()
app.add_middleware(CacheMiddleware, cache=cache)

_db: redis.Redis | None = None


def db() -> redis.Redis:
    """This worker's client for its bookkeeping, created on first use."""
    global _db
    if _db is None:
        _db = redis.Redis.from_url(URL)
    return _db


@app.get("/slow")
@cached(ttl=60)
async def slow() -> dict[str, int]:
    runs = int(await db().incr(RUNS_KEY))
    if runs == 1:
        await db().set(LEADER_KEY, os.getpid())
        await asyncio.sleep(60)  # the test kills this worker meanwhile
    return {"runs": runs, "pid": os.getpid()}
