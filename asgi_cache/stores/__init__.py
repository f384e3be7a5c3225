"""Stores: where entries live.  ``MemoryStore`` per process, ``RedisStore`` shared."""

from asgi_cache.stores.base import Fence, Store, StoreError
from asgi_cache.stores.memory import MemoryStore
from asgi_cache.stores.registry import Opener, open_url, register_scheme

__all__ = ["Fence", "MemoryStore", "Opener", "Store", "StoreError", "open_url", "register_scheme"]
