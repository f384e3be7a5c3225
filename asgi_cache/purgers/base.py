"""The purger interface, and what one purge carries."""

from __future__ import annotations

import abc
from dataclasses import dataclass
from typing import Any

__all__ = ["Purge", "Purger", "http_client"]


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


def http_client(timeout: float) -> Any:
    """An ``httpx.AsyncClient`` for purge requests; ``ImportError`` naming the
    extra when httpx is not installed."""
    try:
        import httpx
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise ImportError(
            "asgi-cache purgers send HTTP requests with httpx: pip install 'asgi-cache[purge]'"
        ) from exc
    return httpx.AsyncClient(timeout=timeout)
