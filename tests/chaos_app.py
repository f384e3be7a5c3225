"""The application the chaos runs put under load: products whose versions only grow.

Its data lives in an SQLite file shared by both workers (``CHAOS_DB``), never in
the Redis the runs break; the cache is on ``CHAOS_CACHE_URL`` with the default
50 ms store timeout.  A write stores the version it is given unless a higher one
is already there, so a reader can tell an old page from a new one.
"""

from __future__ import annotations

import os
import sqlite3
import time

from fastapi import FastAPI

from asgi_cache import Cache, CacheMiddleware, cached, invalidates

cache = Cache.from_url(os.environ["CHAOS_CACHE_URL"], prefix="chaos")
app = FastAPI()
app.add_middleware(CacheMiddleware, cache=cache)

_db: sqlite3.Connection | None = None


def db() -> sqlite3.Connection:
    """This process's connection (endpoints are ``async``: one thread per process)."""
    global _db
    if _db is None:
        _db = sqlite3.connect(os.environ["CHAOS_DB"], timeout=5, isolation_level=None)
    return _db


@app.get("/products/{pid}")
@cached(ttl=60, tags=("product:{pid}",))
async def read(pid: int) -> dict[str, int]:
    row = db().execute("select version from products where pid = ?", (pid,)).fetchone()
    return {"pid": pid, "version": row[0]}


@app.put("/products/{pid}")
@invalidates("product:{pid}")
async def write(pid: int, version: int) -> dict[str, int]:
    db().execute("update products set version = max(version, ?) where pid = ?", (version, pid))
    return {"pid": pid, "version": version}


@app.get("/search")
@cached(ttl=60)
async def search(q: str) -> dict[str, str]:
    """A query-string keyed page: random queries are misses that fill the store."""
    return {"q": q}


@app.post("/stall")
async def stall(ms: int) -> dict[str, int]:
    """Block this worker's event loop, as a CPU-bound request or a long GC pause would."""
    time.sleep(ms / 1000)
    return {"stalled_ms": ms}
