"""Stores: where entries live.  ``MemoryStore`` per process, ``RedisStore`` shared."""

from asgi_cache.stores.base import Fence, Store, StoreError
from asgi_cache.stores.memory import MemoryStore

__all__ = ["Fence", "MemoryStore", "Store", "StoreError"]
