"""asgi-cache: an HTTP response cache for Starlette and FastAPI, as a pure ASGI middleware.

Whole responses (status, headers, body) of ``@cached`` routes are stored and a
hit is answered before routing, so no endpoint, dependency or serialiser runs.
"""

from asgi_cache.cache import Cache, get_cache
from asgi_cache.markers import cached, invalidates
from asgi_cache.middleware import CacheMiddleware
from asgi_cache.routes import CacheConfigError
from asgi_cache.stores.base import Store, StoreError
from asgi_cache.stores.memory import MemoryStore

__version__ = "0.1.0"

__all__ = [
    "Cache",
    "CacheConfigError",
    "CacheMiddleware",
    "MemoryStore",
    "Store",
    "StoreError",
    "cached",
    "get_cache",
    "invalidates",
]
