"""An app whose marker does not fit its route: uvicorn must refuse to start it.

The tag names ``{sku}``, which is not a path parameter of ``/misconfigured/{pid}``;
the marker itself is well formed, so only compiling the routing table at lifespan
startup can catch it.
"""

from __future__ import annotations

from fastapi import FastAPI

from asgi_cache import CacheMiddleware, cached

app = FastAPI()
app.add_middleware(CacheMiddleware)


@app.get("/misconfigured/{pid}")
@cached(ttl=60, tags=("product:{sku}",))
async def misconfigured(pid: int) -> dict[str, int]:
    return {"pid": pid}
