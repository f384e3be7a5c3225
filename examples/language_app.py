"""One entry per user and per language: fastapi-cache2's ``key_builder``, ported.

Run it with::

    .venv/bin/python -m uvicorn examples.language_app:app

and try::

    curl -i -H "x-user-id: 7" -H "accept-language: fr" http://127.0.0.1:8000/greeting
    curl -i -H "x-user-id: 7" -H "accept-language: fr" http://127.0.0.1:8000/greeting  # hit
    curl -i -H "x-user-id: 7" -H "accept-language: en" http://127.0.0.1:8000/greeting  # miss
    curl -i -H "x-user-id: 8" -H "accept-language: fr" http://127.0.0.1:8000/greeting  # miss

fastapi-cache2's ``user_lang_key_builder`` appended ``Accept-Language`` and ``x-user-id`` to
the default key.  Here a header the response depends on goes in ``vary=`` (and into the
response's ``Vary``, so browsers and CDNs keep the languages apart too), and what identifies a
user goes in ``key=``, whose result also fills ``{key}`` in the tags:
``cache.invalidate("greeting:user:7")`` forgets user 7's greetings in every language.  No
``coder`` is needed: the stored value is the response's own bytes.
"""

from __future__ import annotations

from collections import Counter

from fastapi import FastAPI, Request

from asgi_cache import Cache, CacheMiddleware, MemoryStore, cached

cache = Cache(MemoryStore(), prefix="demo")
app = FastAPI(title="asgi-cache: per user and language")
app.add_middleware(CacheMiddleware, cache=cache)

#: How often the greeting was computed in this process: a hit computes nothing.
CALLS: Counter[str] = Counter()

GREETINGS = {"fr": "Bonjour", "en": "Hello", "de": "Hallo"}


def user_id(request: Request) -> str:
    """The (made-up) user of a request: its ``x-user-id`` header, else ``anon``."""
    return request.headers.get("x-user-id", "anon")


@app.get("/greeting")
@cached(ttl=60, vary=("accept-language",), key=user_id, tags=("v1", "greeting:user:{key}"))
async def greeting(request: Request) -> dict[str, str]:
    user = user_id(request)
    language = request.headers.get("accept-language", "en")[:2].lower()
    CALLS[f"{user}:{language}"] += 1
    return {"user": user, "greeting": GREETINGS.get(language, GREETINGS["en"])}
