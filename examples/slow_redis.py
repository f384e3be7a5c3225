"""A slow route cached in Redis, in namespace ``v1``, purged by namespace: fastapi-cache2's
Redis app, ported.

Run it (a Redis on 127.0.0.1:6379, or point ``ASGI_CACHE_URL`` elsewhere) with::

    CACHE_PURGE_TOKEN=secret .venv/bin/python -m uvicorn examples.slow_redis:app

and try::

    curl -i "http://127.0.0.1:8000/slow?q=1"   # slow, stored in Redis
    curl -i "http://127.0.0.1:8000/slow?q=1"   # instant (<15 s), same payload, Cache-Status: hit
    curl -i "http://127.0.0.1:8000/report"     # stored in namespace v2
    curl -i -X DELETE -H "Authorization: Bearer secret" \\
         "http://127.0.0.1:8000/cache/clear?namespace=v1"
    curl -i "http://127.0.0.1:8000/slow?q=1"   # slow again: v1 was emptied
    curl -i "http://127.0.0.1:8000/report"     # still a hit: v2 was not

``FastAPICache.init(RedisBackend(client), prefix=...)`` becomes ``Cache.from_url(url,
prefix=...)``: the cache opens its own connections (one client per event loop) and the
middleware closes them at shutdown, so the tutorial's lifespan has nothing left to do.
``@cache(expire=15, namespace="v1")`` becomes ``@cached(ttl=15, tags=("v1",))``, and
``FastAPICache.clear(namespace="v1")`` becomes ``cache.invalidate("v1")``.
"""

from __future__ import annotations

import asyncio
import os
from collections import Counter
from datetime import UTC, datetime

from fastapi import Depends, FastAPI

from asgi_cache import Cache, CacheMiddleware, cached
from examples.purge import require_purge_token

URL = os.environ.get("ASGI_CACHE_URL", "redis://127.0.0.1:6379/0")
#: Seconds the slow route sleeps (the tutorial's 2 s); ``EXAMPLE_DELAY=0`` in tests.
DELAY = float(os.environ.get("EXAMPLE_DELAY", "2"))

cache = Cache.from_url(URL, prefix="fastapi-cache")
app = FastAPI(title="asgi-cache: a slow route in Redis")
app.add_middleware(CacheMiddleware, cache=cache)

#: How often each route ran in this process: ``run`` in a body is its count when computed.
CALLS: Counter[str] = Counter()


@app.get("/")
async def root() -> dict[str, str]:
    return {"service": "demo-cache", "backend": "redis"}


@app.get("/slow")
@cached(ttl=15, tags=("v1",))  # 15 s, in namespace v1
async def slow_endpoint(q: int = 1) -> dict[str, object]:
    CALLS["slow"] += 1
    await asyncio.sleep(DELAY)
    return {
        "q": q,
        "computed_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "run": CALLS["slow"],
    }


@app.get("/report")
@cached(ttl=15, tags=("v2",))  # another namespace, which a purge of v1 leaves alone
async def report() -> dict[str, object]:
    CALLS["report"] += 1
    return {"report": "weekly", "run": CALLS["report"]}


@app.delete("/cache/clear", dependencies=[Depends(require_purge_token)])
async def clear_cache(namespace: str | None = None) -> dict[str, object]:
    """Empty one namespace (a tag), or everything under the prefix without one."""
    if namespace:
        removed = await cache.invalidate(namespace)
    else:
        removed = await cache.clear()
    return {"cleared": True, "namespace": namespace, "removed": removed}
