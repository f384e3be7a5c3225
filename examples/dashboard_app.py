"""Per-user pages and query-keyed lists, with one user's page invalidated on its own.

Run it with::

    .venv/bin/python -m uvicorn examples.dashboard_app:app

and try::

    curl -i -H "Authorization: Bearer 123" http://127.0.0.1:8000/dashboard   # user 123's page
    curl -i -H "Authorization: Bearer 456" http://127.0.0.1:8000/dashboard   # user 456's page
    curl -i http://127.0.0.1:8000/dashboard                                  # the anonymous page
    curl -i -X POST http://127.0.0.1:8000/users/123/refresh   # drops 123's page, keeps 456's
    curl -i "http://127.0.0.1:8000/items?page=2&size=10"     # stored
    curl -i "http://127.0.0.1:8000/items?size=10&page=2"     # the same entry: a hit

Flask-Caching's ``key_prefix=lambda: f"dashboard:{current_user.id}"`` becomes
``key=current_user``: its result joins the key (digested with the path and the query), and
fills ``{key}`` in the route's tags, so ``cache.invalidate("dashboard:user:123")`` does what
``cache.delete("dashboard:123")`` did there.  A ``key=`` route is cached even for requests
carrying ``Authorization``, and its responses say ``Cache-Control: private`` so that no cache
downstream hands one user's page to another.

The tutorial's ``qs_key`` (a hash of the raw query string) needs no code here: the query is
always keyed, in a canonical form, so reordered parameters share an entry.

The bearer token *is* the user id, to keep the example short; a real application checks it.
"""

from __future__ import annotations

from collections import Counter

from fastapi import FastAPI, Request

from asgi_cache import Cache, CacheMiddleware, MemoryStore, cached

cache = Cache(MemoryStore(), prefix="demo")
app = FastAPI(title="asgi-cache: per-user pages")
app.add_middleware(CacheMiddleware, cache=cache)

#: How often each page was computed in this process: a hit computes nothing.
CALLS: Counter[str] = Counter()


def current_user(request: Request) -> str:
    """The user a request speaks for: its bearer token, else ``anon``."""
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    return token if scheme.lower() == "bearer" and token else "anon"


@app.get("/dashboard")
@cached(ttl=120, key=current_user, tags=("dashboard", "dashboard:user:{key}"))
async def dashboard(request: Request) -> dict[str, str]:
    user = current_user(request)
    CALLS[f"dashboard:{user}"] += 1
    return {"hello": user}


@app.post("/users/{user_id}/refresh")
async def refresh_dashboard(user_id: str) -> dict[str, object]:
    """After a write to one user, forget that user's dashboard only."""
    removed = await cache.invalidate(f"dashboard:user:{user_id}")
    return {"user": user_id, "removed": removed}


@app.get("/items")
@cached(ttl=120, tags=("items",))  # keyed on the canonical query: filters, page, size
async def list_items(page: int = 1, size: int = 3) -> dict[str, object]:
    CALLS["items"] += 1
    start = (page - 1) * size
    return {"page": page, "items": list(range(start + 1, start + size + 1))}
