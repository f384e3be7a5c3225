"""Caching views and expensive functions in memory: the Flask-Caching starter, on FastAPI.

Run it with::

    .venv/bin/python -m uvicorn examples.memory_app:app

and try::

    curl -i http://127.0.0.1:8000/time                     # Cache-Status: fwd=uri-miss; stored
    curl -i http://127.0.0.1:8000/time                     # Cache-Status: hit, same server_time
    curl -i "http://127.0.0.1:8000/search?q=shoes&page=2"  # slow, then instant
    curl -i "http://127.0.0.1:8000/search?page=2&q=shoes"  # the same entry: a hit
    curl -i http://127.0.0.1:8000/users/123/stats          # slow once, then memoized
    curl -i -X POST http://127.0.0.1:8000/users/123        # forgets compute_stats(123)
    curl -i -X DELETE http://127.0.0.1:8000/stats          # forgets compute_stats entirely

Flask-Caching's ``SimpleCache`` becomes a :class:`~asgi_cache.MemoryStore`: private to one
process, so with several workers each keeps its own entries (use Redis then, see
``examples/products_app.py``).  ``CACHE_DEFAULT_TIMEOUT`` becomes ``default_ttl``.
``@cache.cached(query_string=True)`` needs no flag: the query string is always part of the
key, read as the application reads it, so ``?q=a&page=2`` and ``?page=2&q=a`` share one entry.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections import Counter

from fastapi import FastAPI

from asgi_cache import Cache, CacheMiddleware, MemoryStore, cached

#: Seconds each expensive call sleeps (the tutorial's 1 s and 2 s); ``EXAMPLE_DELAY=0`` in tests.
DELAY = float(os.environ.get("EXAMPLE_DELAY", "1"))

cache = Cache(MemoryStore(), prefix="demo", default_ttl=300)  # 5 minutes unless a route says
app = FastAPI(title="asgi-cache: views and functions in memory")
app.add_middleware(CacheMiddleware, cache=cache)

#: How often each expensive piece of code ran in this process: a hit runs none of it.
CALLS: Counter[str] = Counter()


@app.get("/time")
@cached(ttl=60)  # the whole response, 60 seconds
async def server_time() -> dict[str, float]:
    CALLS["time"] += 1
    return {"server_time": time.time()}


@app.get("/search")
@cached(ttl=120)  # one entry per query string (?q=, ?page=, ...)
async def search(q: str | None = None, page: int = 1) -> dict[str, object]:
    CALLS["search"] += 1
    await asyncio.sleep(DELAY)  # an expensive search
    return {"q": q, "page": page}


@cache.memoize(ttl=300)
async def compute_stats(user_id: int) -> dict[str, int]:
    """Heavy SQL or API calls, computed once per ``user_id`` for 5 minutes."""
    CALLS[f"stats:{user_id}"] += 1
    await asyncio.sleep(2 * DELAY)
    return {"user_id": user_id, "score": 42}


@app.get("/users/{user_id}/stats")
async def user_stats(user_id: int) -> dict[str, int]:
    return await compute_stats(user_id)


@app.post("/users/{user_id}")
async def update_user(user_id: int) -> dict[str, object]:
    """A write that changes the user's stats forgets them (and only them)."""
    # ... update the database ...
    removed = await cache.delete_memoized(compute_stats, user_id)
    return {"status": "updated", "id": user_id, "forgotten": removed}


@app.delete("/stats")
async def forget_all_stats() -> dict[str, int]:
    """``delete_memoized`` without arguments: every user's stats."""
    return {"forgotten": await cache.delete_memoized(compute_stats)}
