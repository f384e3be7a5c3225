"""Low-level values: ``cache.set`` and ``cache.get`` of JSON, outside any route.

Run it with::

    .venv/bin/python -m examples.json_values

(in memory; ``ASGI_CACHE_URL=redis://127.0.0.1:6379/0`` for Redis).  It prints
``{'x': 1}`` then ``None``.

Flask-Caching's ``cache.set("key", json.dumps({"x": 1}), timeout=60)`` and
``json.loads(cache.get("key") or "null")`` need no ``json`` here: values go through orjson
on the way in and out (dicts, lists, strings, numbers, dataclasses, pydantic models), never
pickle, so what a store holds can never run code when read.  A missing or expired key reads
as ``None`` (or the ``default`` given).
"""

from __future__ import annotations

import asyncio
import os

from asgi_cache import Cache


async def main(cache: Cache) -> tuple[object, object]:
    """Store ``{"x": 1}`` for 60 s, read it back, then read a key never set."""
    await cache.set("key", {"x": 1}, ttl=60)
    value = await cache.get("key")
    missing = await cache.get("never-set")
    return value, missing


if __name__ == "__main__":

    async def run() -> None:
        cache = Cache.from_url(os.environ.get("ASGI_CACHE_URL", "memory://"), prefix="demo")
        try:
            for result in await main(cache):
                print(result)
        finally:
            await cache.aclose()

    asyncio.run(run())
