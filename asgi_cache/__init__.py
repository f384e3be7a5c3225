"""asgi-cache: an HTTP response cache for Starlette and FastAPI, as a pure ASGI middleware.

Whole responses (status, headers, body) of ``@cached`` routes are stored and a
hit is answered before routing, so no endpoint, dependency or serialiser runs.
"""

import typing as _typing

from asgi_cache.cache import Cache, get_cache
from asgi_cache.markers import cached, invalidates
from asgi_cache.middleware import CacheMiddleware
from asgi_cache.pending import InvalidationPending
from asgi_cache.routes import CacheConfigError
from asgi_cache.stores.base import Store, StoreError
from asgi_cache.stores.memory import MemoryStore
from asgi_cache.stores.registry import register_scheme

__version__ = "0.1.0"

__all__ = [
    "Cache",
    "CacheConfigError",
    "CacheMiddleware",
    "InvalidationPending",
    "MemoryStore",
    "RedisStore",
    "Store",
    "StoreError",
    "cached",
    "get_cache",
    "invalidates",
    "register_scheme",
]

if _typing.TYPE_CHECKING:
    from asgi_cache.stores.redis import RedisStore


def __getattr__(name: str) -> _typing.Any:
    # RedisStore needs the optional ``redis`` extra: imported on first use only.
    if name == "RedisStore":
        from asgi_cache.stores.redis import RedisStore

        return RedisStore
    raise AttributeError(f"module 'asgi_cache' has no attribute {name!r}")
