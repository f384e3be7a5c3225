"""A small FastAPI app that ``tests/test_uvicorn.py`` serves with a real uvicorn.

The cache is the middleware's default (``ASGI_CACHE_URL``, else in memory).  Every
endpoint reports how many times it ran, so a test over the socket can tell a hit
(nothing ran) from a miss.
"""

from __future__ import annotations

from collections import Counter

from fastapi import FastAPI, Request

from asgi_cache import CacheMiddleware, cached, invalidates

calls: Counter[str] = Counter()
products: dict[int, str] = {1: "apple", 2: "pear", 3: "fig"}

app = FastAPI()
app.add_middleware(CacheMiddleware)


@app.get("/products/{pid}")
@cached(ttl=60, tags=("product:{pid}", "products"))
async def get_product(pid: int) -> dict[str, object]:
    calls[f"product{pid}"] += 1
    return {"pid": pid, "name": products.get(pid), "executions": calls[f"product{pid}"]}


@app.put("/products/{pid}")
@invalidates("product:{pid}", "products")
async def put_product(pid: int, name: str) -> dict[str, object]:
    products[pid] = name
    return {"pid": pid, "name": name}


@app.get("/counted")
@cached(ttl=60)
async def counted(request: Request) -> dict[str, object]:
    calls["counted"] += 1
    return {"executions": calls["counted"], "query_length": len(request.url.query)}


@app.get("/calls")
async def get_calls() -> dict[str, int]:
    return dict(calls)
