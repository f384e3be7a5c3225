"""A memoized product loader on Redis, forgotten by the write that changes it: the
Flask-Caching production example, ported.

Run it (a Redis on 127.0.0.1:6379, or point ``ASGI_CACHE_URL`` elsewhere) with::

    .venv/bin/python -m uvicorn examples.products_app:app --port 5000

and try::

    curl -i http://127.0.0.1:5000/products/1                    # slow: loaded, then memoized
    curl -i http://127.0.0.1:5000/products/1                    # instant: from Redis
    curl -i -X PUT "http://127.0.0.1:5000/products/1?name=pear" # forgets get_product(1)
    curl -i http://127.0.0.1:5000/products/1                    # loaded again: "pear"

``CACHE_TYPE="RedisCache"`` and its host, port, db and password become one URL,
``redis://:password@host:6379/0``; every worker and machine using it shares the entries.
``@cache.memoize(timeout=120)`` becomes ``@cache.memoize(ttl=120)``, awaited, its value
stored as JSON (never pickled); ``cache.delete_memoized(get_product, pid)`` is awaited too
and holds for every worker before the PUT's response goes out.

The "database" is a dict of this process, so run one worker; ``examples/redis_app.py`` keeps
its data in Redis for several.
"""

from __future__ import annotations

import asyncio
import os

from fastapi import FastAPI

from asgi_cache import Cache, CacheMiddleware

URL = os.environ.get("ASGI_CACHE_URL", "redis://127.0.0.1:6379/0")
#: Seconds a product load sleeps (the tutorial's 1 s); ``EXAMPLE_DELAY=0`` in tests.
DELAY = float(os.environ.get("EXAMPLE_DELAY", "1"))

cache = Cache.from_url(URL, prefix="products", default_ttl=300)
app = FastAPI(title="asgi-cache: memoized products on Redis")
app.add_middleware(CacheMiddleware, cache=cache)  # closes the cache's connections at shutdown

NAMES: dict[int, str] = {}
#: How often each product was loaded from the "database" by this process.
LOADS: dict[int, int] = {}


@cache.memoize(ttl=120)
async def get_product(pid: int) -> dict[str, object]:
    """A heavy database read, done once per product for 2 minutes."""
    LOADS[pid] = LOADS.get(pid, 0) + 1
    await asyncio.sleep(DELAY)
    return {"id": pid, "name": NAMES.get(pid, f"Product {pid}"), "load": LOADS[pid]}


@app.get("/products/{pid}")
async def product(pid: int) -> dict[str, object]:
    return await get_product(pid)


@app.put("/products/{pid}")
async def update_product(pid: int, name: str | None = None) -> dict[str, object]:
    if name is not None:
        NAMES[pid] = name  # ... update the database ...
    await cache.delete_memoized(get_product, pid)  # forget this product's cached read
    return {"status": "updated", "id": pid}
