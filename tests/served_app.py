"""A small FastAPI app that ``tests/test_uvicorn.py`` serves with a real uvicorn.

The cache is the middleware's default (``ASGI_CACHE_URL``, else in memory).  Every
endpoint reports how many times it ran, so a test over the socket can tell a hit
(nothing ran) from a miss.
"""

from __future__ import annotations

from collections import Counter

from fastapi import FastAPI, Request, Response

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


@app.get("/versioned")
@cached()
async def versioned(request: Request) -> Response:
    """Conditional GET done cheaply: a 304 on a matching ``If-None-Match``, before rendering."""
    calls["versioned_checked"] += 1
    headers = {"etag": '"v1"', "cache-control": "no-cache"}
    if request.headers.get("if-none-match") == '"v1"':
        return Response(status_code=304, headers=headers)
    calls["versioned_rendered"] += 1
    return Response("version 1 of the page", headers=headers)


@app.get("/calls")
async def get_calls() -> dict[str, int]:
    return dict(calls)
