"""Varnish in front of asgi-cache: one declaration of tags drives both tiers.

Each cached response names its tags in ``Surrogate-Key`` (Varnish indexes them
with vmod xkey, see ``default.vcl``) and tells Varnish how long to keep it in
``CDN-Cache-Control``, apart from what browsers get.  A write invalidates the
application's cache, then purges Varnish by the same tags, before its
response goes out; if Varnish does not answer, the purge is retried until it
does.  ``examples/varnish/README.md`` has the commands to run both and try them.

``VARNISH_URLS`` lists the Varnish instances to purge (comma-separated;
``http://127.0.0.1:6081`` by default), ``PURGE_WAIT`` how long a write waits
for them (seconds).  The "database" is a dict of this process: run one worker.
"""

from __future__ import annotations

import os
from collections import Counter

from fastapi import FastAPI, Request, Response

from asgi_cache import Cache, CacheMiddleware, cached, get_cache, invalidates
from asgi_cache.purgers import VarnishPurger

VARNISH_URLS = os.environ.get("VARNISH_URLS", "http://127.0.0.1:6081").split(",")

cache = Cache(
    prefix="shop",
    surrogate_keys=True,  # Surrogate-Key: shop product:1 /products/1
    surrogate_keys_for="surrogate-capability",  # only Varnish sees them (the VCL sets it)
    cdn_cache_control="max-age=3600",  # Varnish keeps pages an hour: purges keep them right
    purgers=[VarnishPurger(VARNISH_URLS)],
    purge_wait=float(os.environ.get("PURGE_WAIT", "1")),
)
app = FastAPI(title="asgi-cache behind Varnish")
app.add_middleware(CacheMiddleware, cache=cache)

NAMES: dict[int, str] = {1: "apple", 2: "fig", 3: "plum"}
ABOUT = ["a shop"]
#: How often each endpoint ran in this process (what neither cache answered).
EXECUTIONS: Counter[str] = Counter()


@app.get("/products/{pid}")
@cached(ttl=600, tags=("product:{pid}",))
async def product(pid: int) -> dict[str, object]:
    EXECUTIONS["product"] += 1
    return {"id": pid, "name": NAMES.get(pid)}


@app.get("/products")
@cached(ttl=600, tags=("products",))
async def products() -> dict[str, object]:
    EXECUTIONS["products"] += 1
    return {"products": [{"id": pid, "name": name} for pid, name in sorted(NAMES.items())]}


@app.put("/products/{pid}")
@invalidates("product:{pid}", "products")
async def rename(pid: int, name: str) -> dict[str, object]:
    NAMES[pid] = name
    return {"id": pid, "name": name}


@app.get("/about")
async def about(response: Response) -> dict[str, object]:
    """Not cached here: Varnish keeps it an hour (``Surrogate-Control``), browsers
    not at all; a write to it bans its URL from Varnish."""
    EXECUTIONS["about"] += 1
    response.headers["surrogate-control"] = "max-age=3600"
    response.headers["cache-control"] = "no-store"
    return {"about": ABOUT[0]}


@app.put("/about")
async def edit_about(text: str) -> dict[str, object]:
    ABOUT[0] = text
    return {"about": text}


@app.get("/me")
@cached(ttl=60, key=lambda request: request.headers.get("x-user", ""))
async def me(request: Request) -> dict[str, object]:
    """Per user (keyed by ``key=``): private, never stored by Varnish."""
    EXECUTIONS["me"] += 1
    return {"user": request.headers.get("x-user")}


@app.get("/account")
@cached(ttl=60, vary=("authorization",))
async def account(request: Request) -> dict[str, object]:
    """Per user (keyed on a credential): Varnish passes requests carrying one."""
    EXECUTIONS["account"] += 1
    return {"authorization": request.headers.get("authorization")}


@app.get("/stats")
async def stats(request: Request, response: Response) -> dict[str, object]:
    """The cache's counters (``purges``, ``purges_pending``...) and the executions."""
    response.headers["cache-control"] = "no-store"
    return {"cache": get_cache(request).stats(), "executions": dict(EXECUTIONS)}
