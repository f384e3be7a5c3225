"""A FastAPI app cached by asgi-cache on the in-memory default.

Run it with ``.venv/bin/python -m uvicorn examples.quickstart:app`` and try::

    curl -i "http://127.0.0.1:8000/slow?q=42"    # ~1 s, Cache-Status: fwd=uri-miss; stored
    curl -i "http://127.0.0.1:8000/slow?q=42"    # instant, Cache-Status: hit, Age: ...
    curl -i "http://127.0.0.1:8000/products/1"
    curl -i -X PUT "http://127.0.0.1:8000/products/1?name=pear"   # invalidates product 1
    curl -i "http://127.0.0.1:8000/products/1"   # fresh data
    curl -i -H "Authorization: Bearer alice" http://127.0.0.1:8000/me   # cached per user
"""

from __future__ import annotations

import asyncio
import time

from fastapi import FastAPI, Request

from asgi_cache import CacheMiddleware, cached, invalidates

app = FastAPI(title="asgi-cache quickstart")
app.add_middleware(CacheMiddleware)  # in-memory default; set ASGI_CACHE_URL=redis://... to share

PRODUCTS: dict[int, str] = {1: "apple", 2: "cherry"}


@app.get("/slow")
@cached(ttl=10)  # keyed on the query string: ?q=1 and ?q=2 are two entries
async def slow(q: int = 1) -> dict[str, object]:
    await asyncio.sleep(1)  # an expensive query
    return {"q": q, "computed_at": time.time()}


@app.get("/products")
@cached(ttl=60, tags=("products",))
async def list_products() -> dict[int, str]:
    return PRODUCTS


@app.get("/products/{pid}")
@cached(ttl=120, tags=("product:{pid}",))
async def get_product(pid: int) -> dict[str, object]:
    return {"id": pid, "name": PRODUCTS.get(pid), "computed_at": time.time()}


@app.put("/products/{pid}")
@invalidates("product:{pid}", "products")  # runs before the response reaches the client
async def update_product(pid: int, name: str) -> dict[str, object]:
    PRODUCTS[pid] = name
    return {"status": "updated", "id": pid}


@app.get("/me")
@cached(ttl=30, vary=("authorization",))  # one entry per Authorization value
async def me(request: Request) -> dict[str, object]:
    return {"user": request.headers.get("authorization", "anonymous"), "at": time.time()}
