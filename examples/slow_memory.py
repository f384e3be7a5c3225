"""A slow route cached in memory, and a purge by namespace: fastapi-cache2's starter, ported.

Run it with::

    CACHE_PURGE_TOKEN=secret .venv/bin/python -m uvicorn examples.slow_memory:app

and try (``computed_at`` does not change for 10 seconds)::

    curl -i "http://127.0.0.1:8000/slow?q=42"   # ~2 s, Cache-Status: fwd=uri-miss; stored
    curl -i "http://127.0.0.1:8000/slow?q=42"   # instant, Cache-Status: hit, same payload
    curl -i -X DELETE -H "Authorization: Bearer secret" http://127.0.0.1:8000/cache/clear
    curl -i "http://127.0.0.1:8000/slow?q=42"   # slow again: the cache was emptied

``FastAPICache.init(InMemoryBackend(), prefix=...)`` becomes ``Cache(MemoryStore(),
prefix=...)`` handed to the middleware; nothing needs a lifespan.  ``@cache(expire=10)``
becomes ``@cached(ttl=10)``.  The key holds the path and the query string, as fastapi-cache2's
default does; headers join it only when named in ``vary=`` (or read by ``key=``).  A
namespace is a tag: ``@cached(tags=("v1",))`` then ``cache.invalidate("v1")``, as
``FastAPICache.clear(namespace="v1")``; without one, ``cache.clear()`` empties the prefix.
"""

from __future__ import annotations

import asyncio
import os
from collections import Counter
from datetime import UTC, datetime

from fastapi import Depends, FastAPI

from asgi_cache import Cache, CacheMiddleware, MemoryStore, cached
from examples.purge import require_purge_token

#: Seconds the slow route sleeps (the tutorial's 2 s); ``EXAMPLE_DELAY=0`` in tests.
DELAY = float(os.environ.get("EXAMPLE_DELAY", "2"))

cache = Cache(MemoryStore(), prefix="fastapi-cache")
app = FastAPI(title="asgi-cache: a slow route in memory")
app.add_middleware(CacheMiddleware, cache=cache)

#: How often ``/slow`` ran in this process: a hit does not run it.
CALLS: Counter[str] = Counter()


@app.get("/")
async def root() -> dict[str, str]:
    return {"service": "demo-cache", "backend": "memory"}


@app.get("/slow")
@cached(ttl=10)  # stored 10 seconds, one entry per query string
async def slow_endpoint(q: int = 1) -> dict[str, object]:
    CALLS["slow"] += 1
    await asyncio.sleep(DELAY)  # an expensive piece of work
    return {"q": q, "computed_at": datetime.now(UTC).isoformat(timespec="seconds")}


@app.delete("/cache/clear", dependencies=[Depends(require_purge_token)])
async def clear_cache(namespace: str | None = None) -> dict[str, object]:
    """Empty one namespace (a tag), or the whole cache without one."""
    if namespace:
        removed = await cache.invalidate(namespace)
    else:
        removed = await cache.clear()
    return {"cleared": True, "namespace": namespace, "removed": removed}
