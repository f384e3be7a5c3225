"""The purger interface, and what one purge carries."""

from __future__ import annotations

import abc
import asyncio
from dataclasses import dataclass
from typing import Any

__all__ = ["HTTPClient", "Purge", "Purger"]


@dataclass(frozen=True, slots=True)
class Purge:
    """What one invalidation removes, as the cache in front knows it.

    ``keys`` are surrogate keys spelled as the responses carried them
    (:mod:`asgi_cache.surrogate`): a tag's, a path's, or the cache's prefix key
    for a ``clear``; ``paths`` the paths invalidated, as the routes see them
    (without the ``root_path``), for a purger that bans by URL;
    ``everything``: the invalidation was a :meth:`~asgi_cache.Cache.clear`.
    """

    keys: tuple[str, ...] = ()
    paths: tuple[str, ...] = ()
    everything: bool = False

    def __bool__(self) -> bool:
        return bool(self.keys or self.paths or self.everything)

    def merged(self, other: Purge) -> Purge:
        """One purge removing what both remove (what a retry sends)."""
        return Purge(
            tuple(dict.fromkeys((*self.keys, *other.keys))),
            tuple(dict.fromkeys((*self.paths, *other.paths))),
            self.everything or other.everything,
        )


class Purger(abc.ABC):
    """Sends purges to one cache in front of the application.

    :meth:`purge` raises when the purge was not applied (an unreachable
    server, a refusal, a timeout): the cache keeps it and calls again later
    with it merged into what followed, so it must be safe to repeat.
    """

    #: How the cache names this purger in its logs.
    name: str = "purger"

    @abc.abstractmethod
    async def purge(self, purge: Purge) -> None:
        """Apply ``purge``; raise if it was not applied."""

    async def aclose(self) -> None:  # noqa: B027 - optional for subclasses
        """Release connections (the cache does it at shutdown)."""


class HTTPClient:
    """An ``httpx.AsyncClient`` per event loop, for a purger's requests.

    httpx is imported when the purger is made (``ImportError`` naming the
    extra when it is missing), so the first purge does not pay for it; a
    client is made on the first request of each event loop, since a
    connection pool cannot outlive its loop.
    """

    def __init__(self, timeout: float) -> None:
        try:
            import httpx
        except ImportError as exc:  # pragma: no cover - depends on the environment
            raise ImportError(
                "asgi-cache purgers send HTTP requests with httpx: pip install 'asgi-cache[purge]'"
            ) from exc
        self._httpx = httpx
        self.timeout = timeout
        self._client: Any = None
        self._loop: object = None

    def get(self) -> Any:
        """The client of the running event loop."""
        loop = _running_loop()
        if self._client is None or self._loop is not loop:
            self._client = self._httpx.AsyncClient(timeout=self.timeout)
            self._loop = loop
        return self._client

    async def aclose(self) -> None:
        client, self._client = self._client, None
        if client is not None and self._loop is _running_loop():
            await client.aclose()


def _running_loop() -> object:
    """The running event loop, or trio's token: what a connection pool belongs to."""
    try:
        return asyncio.get_running_loop()
    except RuntimeError:  # anyio's other backend
        import trio

        return trio.lowlevel.current_trio_token()
