"""``cache.sync``: the cache from code that is not ``async``.

Sync ``def`` endpoints (run in a worker thread), job runners' threads (Celery,
RQ, a scheduler), management commands and scripts invalidate too, and the
tutorials do exactly that after a write.  Each call blocks until done and
runs where it is safe:

* in any thread while the application is serving (a ``def`` endpoint's
  worker thread, a job runner's thread): on the application's event loop (the
  one the middleware started on), since the store's connections, its pending
  invalidations and a :class:`~asgi_cache.MemoryStore` belong to it;
* with no application running (a script, a job process): on a loop of its own
  (``asyncio.run``); a Redis store opens a client for it.

Calling it from ``async`` code is a mistake (it would block the loop) and
raises ``RuntimeError``: ``await cache.invalidate(...)`` there.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Callable, Coroutine, Iterable
from typing import Any, Protocol, TypeVar

from asgi_cache.stores.base import Store

__all__ = ["SyncCache"]

T = TypeVar("T")


class _Cache(Protocol):
    """What of :class:`~asgi_cache.Cache` this module uses (it cannot import it back)."""

    home_loop: asyncio.AbstractEventLoop | None
    store: Store

    async def invalidate(self, *tags: str) -> int: ...
    async def invalidate_path(self, path: str) -> int: ...
    async def clear(self) -> int: ...
    async def delete_memoized(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> int: ...
    async def get(self, key: str, default: Any = None) -> Any: ...
    async def set(
        self, key: str, value: Any, ttl: float | None = None, tags: Iterable[str] = ()
    ) -> bool: ...
    async def delete(self, key: str) -> bool: ...


class SyncCache:
    """Blocking versions of the :class:`~asgi_cache.Cache` methods that change or read it."""

    __slots__ = ("_cache",)

    def __init__(self, cache: _Cache) -> None:
        self._cache = cache

    def invalidate(self, *tags: str) -> int:
        """See :meth:`Cache.invalidate <asgi_cache.Cache.invalidate>`."""
        return self._run(self._cache.invalidate, *tags)

    def invalidate_path(self, path: str) -> int:
        """See :meth:`Cache.invalidate_path <asgi_cache.Cache.invalidate_path>`."""
        return self._run(self._cache.invalidate_path, path)

    def clear(self) -> int:
        """See :meth:`Cache.clear <asgi_cache.Cache.clear>`."""
        return self._run(self._cache.clear)

    def delete_memoized(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> int:
        """See :meth:`Cache.delete_memoized <asgi_cache.Cache.delete_memoized>`."""
        return self._run(self._cache.delete_memoized, fn, *args, **kwargs)

    def get(self, key: str, default: Any = None) -> Any:
        """See :meth:`Cache.get <asgi_cache.Cache.get>`."""
        return self._run(self._cache.get, key, default)

    def set(self, key: str, value: Any, ttl: float | None = None, tags: Iterable[str] = ()) -> bool:
        """See :meth:`Cache.set <asgi_cache.Cache.set>`."""
        return self._run(self._cache.set, key, value, ttl, tags)

    def delete(self, key: str) -> bool:
        """See :meth:`Cache.delete <asgi_cache.Cache.delete>`."""
        return self._run(self._cache.delete, key)

    def _run(self, method: Callable[..., Coroutine[Any, Any, T]], *args: Any, **kwargs: Any) -> T:
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            pass
        else:
            name = getattr(method, "__name__", "call")
            raise RuntimeError(
                f"cache.sync.{name}() blocks, and this thread runs an event loop: "
                f"use await cache.{name}(...) here"
            )
        call = functools.partial(method, *args, **kwargs)
        home = self._cache.home_loop
        if home is not None and home.is_running():
            return asyncio.run_coroutine_threadsafe(call(), home).result()
        return asyncio.run(self._on_own_loop(call))

    async def _on_own_loop(self, call: Callable[[], Coroutine[Any, Any, T]]) -> T:
        try:
            return await call()
        finally:
            await self._cache.store.detach()  # this loop ends here
