"""The same cache on a Starlette application, without FastAPI.

Run it with::

    .venv/bin/python -m uvicorn examples.starlette_app:app

and try::

    curl -i http://127.0.0.1:8000/time                          # stored, then hits for 60 s
    curl -i http://127.0.0.1:8000/products/1                    # stored under product:1
    curl -i -X PUT "http://127.0.0.1:8000/products/1?name=pear" # invalidates product:1
    curl -i http://127.0.0.1:8000/products/1                    # fresh: "pear"
    curl -i http://127.0.0.1:8000/api/status                    # an HTTPEndpoint, under a Mount

The markers are the same on plain endpoints, ``HTTPEndpoint`` methods and routes under a
``Mount``; Starlette's ``{pid:int}`` convertor fills the tag placeholder with the value the
endpoint receives, so ``/products/01`` and ``/products/1`` are invalidated together.
"""

from __future__ import annotations

import time
from collections import Counter

from starlette.applications import Starlette
from starlette.endpoints import HTTPEndpoint
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Mount, Route

from asgi_cache import Cache, CacheMiddleware, MemoryStore, cached, invalidates

cache = Cache(MemoryStore(), prefix="demo")

#: How often each endpoint ran in this process: a hit runs none.
CALLS: Counter[str] = Counter()
NAMES: dict[int, str] = {1: "apple", 2: "cherry"}


@cached(ttl=60)
async def server_time(request: Request) -> JSONResponse:
    CALLS["time"] += 1
    return JSONResponse({"server_time": time.time()})


@cached(ttl=120, tags=("product:{pid}",))
async def get_product(request: Request) -> JSONResponse:
    pid: int = request.path_params["pid"]
    CALLS[f"product:{pid}"] += 1
    return JSONResponse({"id": pid, "name": NAMES.get(pid)})


@invalidates("product:{pid}")  # before the response reaches the client
async def update_product(request: Request) -> JSONResponse:
    pid: int = request.path_params["pid"]
    NAMES[pid] = request.query_params.get("name", NAMES.get(pid, ""))
    return JSONResponse({"status": "updated", "id": pid})


class Status(HTTPEndpoint):
    @cached(ttl=30)
    async def get(self, request: Request) -> JSONResponse:
        CALLS["status"] += 1
        return JSONResponse({"status": "ok"})


app = Starlette(
    routes=[
        Route("/time", server_time),
        Route("/products/{pid:int}", get_product, methods=["GET"]),
        Route("/products/{pid:int}", update_product, methods=["PUT"]),
        Mount("/api", routes=[Route("/status", Status)]),
    ],
    middleware=[Middleware(CacheMiddleware, cache=cache)],
)
