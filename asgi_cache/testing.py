"""Testing an application that uses asgi-cache: a pytest plugin and assertions.

Installed with the package and loaded by pytest on its own (the ``pytest11``
entry point), it provides, once a ``conftest.py`` says which :class:`Cache`
the application uses by overriding :func:`asgi_cache_instance`::

    @pytest.fixture
    def asgi_cache_instance() -> Cache:
        return myapp.cache

- ``asgi_cache_isolated``: that cache on a fresh, empty store for the test
  (:meth:`Cache.isolated`), so no test sees what another one stored;
- ``asgi_cache_disabled``: that cache switched off for the test
  (:meth:`Cache.disabled`), every request reaching the application.

The assertions read a response's ``Cache-Status`` (RFC 9211) with
:func:`asgi_cache.status.parse`, for any response with a ``headers`` mapping
(Starlette's ``TestClient``, httpx), and say what the header was when they fail.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Protocol

import pytest

from asgi_cache.cache import Cache
from asgi_cache.status import CacheStatus, Forward, parse

__all__ = [
    "asgi_cache_disabled",
    "asgi_cache_instance",
    "asgi_cache_isolated",
    "assert_bypassed",
    "assert_hit",
    "assert_miss",
    "assert_not_stored",
    "assert_stored",
    "cache_status",
]


class Response(Protocol):
    """What the assertions need of a response: its headers, case-insensitive."""

    @property
    def headers(self) -> Mapping[str, str]: ...


#: The ``fwd`` reasons of a request that found nothing stored to answer it.
_MISSES = frozenset({Forward.URI_MISS, Forward.VARY_MISS, Forward.MISS})


def cache_status(response: Response) -> CacheStatus:
    """This cache's member of ``response``'s ``Cache-Status``.

    ``AssertionError`` when there is none: the route is not cached, or the
    middleware is not in front of it.
    """
    value = response.headers.get("cache-status")
    status = None if value is None else parse(value)
    if status is None:
        raise AssertionError(
            f"expected a Cache-Status from asgi-cache, got {value!r}: is the route "
            "@cached and CacheMiddleware in front of it?"
        )
    return status


def assert_hit(response: Response) -> CacheStatus:
    """The response was answered from the cache (``hit``, stale ones included)."""
    status = cache_status(response)
    if not status.hit:
        raise AssertionError(f"expected a cache hit, got Cache-Status {_shown(response)}")
    return status


def assert_miss(response: Response) -> CacheStatus:
    """Nothing stored answered: the request went to the application (``fwd=uri-miss``,
    ``vary-miss`` or ``miss``), whether its response was then stored or not."""
    status = cache_status(response)
    if status.fwd not in _MISSES:
        raise AssertionError(f"expected a cache miss, got Cache-Status {_shown(response)}")
    return status


def assert_stored(response: Response) -> CacheStatus:
    """The application's response was stored (``stored``): the next request may hit."""
    status = cache_status(response)
    if not status.stored:
        raise AssertionError(f"expected a stored response, got Cache-Status {_shown(response)}")
    return status


def assert_not_stored(response: Response, detail: str | None = None) -> CacheStatus:
    """The response went to the application and was not stored; for ``detail``
    (``"set-cookie"``, ``"no-store"``...) when given."""
    status = cache_status(response)
    if status.hit or status.stored or (detail is not None and status.detail != detail):
        wanted = "" if detail is None else f" for {detail!r}"
        raise AssertionError(
            f"expected a response not stored{wanted}, got Cache-Status {_shown(response)}"
        )
    return status


def assert_bypassed(response: Response, detail: str | None = None) -> CacheStatus:
    """The cache was not consulted (``fwd=bypass``); for ``detail`` (``"disabled"``,
    ``"authorization"``...) when given."""
    status = cache_status(response)
    if status.fwd is not Forward.BYPASS or (detail is not None and status.detail != detail):
        wanted = "" if detail is None else f" for {detail!r}"
        raise AssertionError(
            f"expected the cache bypassed{wanted}, got Cache-Status {_shown(response)}"
        )
    return status


def _shown(response: Response) -> str:
    return repr(response.headers.get("cache-status"))


@pytest.fixture
def asgi_cache_instance() -> Cache:
    """The :class:`Cache` the application under test uses: override it in a ``conftest.py``.

    Without an override, the fixtures that need it fail the test, saying so.
    """
    raise pytest.UsageError(
        "asgi_cache_isolated / asgi_cache_disabled need to know the application's cache: "
        "define a fixture named asgi_cache_instance in conftest.py that returns it"
    )


@pytest.fixture
def asgi_cache_isolated(asgi_cache_instance: Cache) -> Iterator[Cache]:
    """The application's cache on a fresh memory store for this test (:meth:`Cache.isolated`)."""
    _check(asgi_cache_instance)
    with asgi_cache_instance.isolated():
        yield asgi_cache_instance


@pytest.fixture
def asgi_cache_disabled(asgi_cache_instance: Cache) -> Iterator[Cache]:
    """The application's cache switched off for this test (:meth:`Cache.disabled`)."""
    _check(asgi_cache_instance)
    with asgi_cache_instance.disabled():
        yield asgi_cache_instance


def _check(cache: object) -> None:
    if not isinstance(cache, Cache):
        raise pytest.UsageError(
            f"the asgi_cache_instance fixture must return an asgi_cache.Cache, "
            f"got {type(cache).__qualname__}"
        )
