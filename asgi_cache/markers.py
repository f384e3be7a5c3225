"""``@cached`` and ``@invalidates``: route markers.

A marker sets an attribute on the endpoint, which the middleware reads once,
when it compiles the routing table; so it works above or below ``@app.get``,
on ``def`` and ``async def`` endpoints and on ``HTTPEndpoint`` methods.  It
returns the endpoint wrapped by :func:`asgi_cache.presence.watch`, which
FastAPI reads as the endpoint itself and which warns once per route when the
endpoint runs in an application without a ``CacheMiddleware`` (written below
``@app.get``, the usual order; above it, the route keeps the bare function and
nothing warns).  Arguments are checked here, at import time, with errors that
name the endpoint.
"""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from typing import Any, TypeVar

from starlette.requests import Request

from asgi_cache.checks import (
    check_body_size,
    check_header_names,
    check_seconds,
    check_statuses,
    check_tags,
    check_ttl,
    foreign_arguments,
    refuse_bare_decorator,
)
from asgi_cache.front import check_directives
from asgi_cache.headers import parse_cache_control
from asgi_cache.presence import watch

__all__ = ["CacheRule", "InvalidationRule", "cached", "invalidates"]

F = TypeVar("F", bound=Callable[..., Any])

#: Returns the part of the key the route computes itself (a user id, a tenant).
KeyFunction = Callable[[Request], Any]

#: Returns the tags of the response a request is about to get (sync or async).
TagFunction = Callable[[Request], Iterable[str] | Awaitable[Iterable[str]]]

CACHED_ATTR = "__asgi_cache__"
INVALIDATES_ATTR = "__asgi_cache_invalidates__"


@dataclass(frozen=True, slots=True)
class CacheRule:
    """What ``@cached`` said about a route."""

    ttl: float | None
    tags: tuple[str, ...]
    vary: tuple[str, ...]
    key: KeyFunction | None
    statuses: frozenset[int] | None
    cache_control: str | None
    max_body_size: int | None
    stale_while_revalidate: float | None = None
    stale_if_error: float | None = None
    shared: bool = False
    #: ``tags=`` given as a callable: the request's own tags, read on a miss.
    tag_function: TagFunction | None = None
    #: What the cache in front gets as its freshness (``None``: the cache's).
    cdn_cache_control: bytes | None = None


@dataclass(frozen=True, slots=True)
class InvalidationRule:
    """What ``@invalidates`` said about a write route."""

    tags: tuple[str, ...]


def _name(fn: Any) -> str:
    return str(getattr(fn, "__qualname__", None) or getattr(fn, "__name__", None) or repr(fn))


def cached(
    ttl: float | None = None,
    *,
    tags: Iterable[str] | TagFunction = (),
    vary: Iterable[str] = (),
    key: KeyFunction | None = None,
    statuses: Iterable[int] | None = None,
    cache_control: str | None = None,
    max_body_size: int | None = None,
    stale_while_revalidate: float | None = None,
    stale_if_error: float | None = None,
    shared: bool = False,
    cdn_cache_control: str | None = None,
    **unknown: Any,
) -> Callable[[F], F]:
    """Mark a GET route as cached.

    Always with parentheses (``@cached()``): used bare, it raises ``TypeError``
    at import instead of silently replacing the endpoint.  Arguments of other
    caching libraries (``expire=``, ``key_builder=``...) raise ``TypeError``
    naming what to write here.

    :param ttl: seconds a stored response stays fresh, counted from when it
        is received, whatever its status or directives say about freshness.
        ``None`` takes the response's own ``s-maxage`` / ``max-age`` /
        ``Expires``, else the cache's heuristic (see :class:`~asgi_cache.Cache`).
    :param tags: invalidation tags; ``{name}`` placeholders are filled from the
        route's path parameters (``"product:{pid}"``), and ``{key}`` from the
        ``key`` function's result (``"dashboard:user:{key}"``), so that one
        user's page can be invalidated without the others'.  Or a callable,
        ``tags(request) -> tags`` (sync or async), called on a miss with the
        request (its body unreadable): its strings are the tags, as they are.
        If it raises or returns something else than strings, the response is
        forwarded unstored (``detail=key-error``).
    :param vary: request header names added to the key (on top of the cache's
        own), e.g. ``("accept-language",)`` or ``("authorization",)`` for
        per-user pages.  Naming a credential header here allows requests that
        carry it to be cached, each user under their own key.  Responses name
        these headers in ``Vary``, so caches downstream keep them apart too.
        An application's own ``Vary`` needs no declaration: the headers it
        names select variants (RFC 9111 §4.1), at one more store read per hit.
    :param key: ``key(request) -> value``: a custom key part (a session's user
        id).  Its result is added to the key with ``str()``.  A route with a
        ``key`` is cached even for requests carrying credentials: the function
        is responsible for separating users.  Its responses get
        ``Cache-Control: private`` unless ``shared=True``.
    :param statuses: response statuses that may be stored (default:
        :data:`asgi_cache.policy.DEFAULT_STATUSES`); 5xx, 206 and 304 are
        refused.  A status that is not heuristically cacheable (RFC 9110
        §15.1: 201, 403...) is stored only with explicit freshness or a ``ttl``.
    :param cache_control: replaces the ``Cache-Control`` that clients and CDNs
        receive on stored responses (``"public, max-age=30"``).  Unset, the
        application's own header passes through unchanged.
    :param max_body_size: largest body stored, in bytes (default: the cache's).
    :param stale_while_revalidate: seconds after expiry during which the stale
        entry is served at once while one background request refreshes it.
        ``None``: the response's ``Cache-Control: stale-while-revalidate=N``,
        else the cache's default (RFC 5861).
    :param stale_if_error: seconds after expiry during which the stale entry
        is served if the application raises, answers 5xx or times out.
        ``None``: the response's ``stale-if-error=N``, else the cache's default.
    :param shared: only with ``key``: say that what the key function reads
        does not make the response private, so a cache downstream may store it
        (selected by the ``Vary`` the cache adds).  Without it the responses of
        a ``key`` route carry ``Cache-Control: private``, since no ``Vary`` can
        name a session or a token's claim (RFC 9111 §5.2.2.7).
    :param cdn_cache_control: what the cache in front (a CDN, Varnish) gets as
        its freshness, in the cache's ``cdn_field`` (``CDN-Cache-Control`` by
        default): ``"max-age=600"``.  Unset, the cache's own
        ``cdn_cache_control``; the server-side ``ttl`` is never sent.  Ignored
        (nothing is added) on a per-user route (``key=``, or keyed on a
        credential header).  See "Behind a CDN or Varnish" in the README.
    """
    if callable(ttl):
        refuse_bare_decorator("cached", ttl)
    foreign_arguments("@cached", unknown, _CACHED_ARGUMENTS)

    def mark(fn: F) -> F:
        setattr(
            fn,
            CACHED_ATTR,
            _cache_rule(
                f"@cached on {_name(fn)}",
                ttl,
                tags,
                vary,
                key,
                statuses,
                cache_control,
                max_body_size,
                stale_while_revalidate,
                stale_if_error,
                shared,
                cdn_cache_control,
            ),
        )
        return watch(fn, "@cached")

    return mark


#: What ``@cached`` takes, as its error for an unknown argument lists it.
_CACHED_ARGUMENTS = tuple(
    name for name in inspect.signature(cached).parameters if name != "unknown"
)


def _cache_rule(
    owner: str,
    ttl: float | None,
    tags: Iterable[str] | TagFunction,
    vary: Iterable[str],
    key: KeyFunction | None,
    statuses: Iterable[int] | None,
    cache_control: str | None,
    max_body_size: int | None,
    stale_while_revalidate: float | None = None,
    stale_if_error: float | None = None,
    shared: bool = False,
    cdn_cache_control: str | None = None,
) -> CacheRule:
    """Check ``@cached``'s arguments; errors name the decorated function."""
    checked_ttl = check_ttl(owner, ttl)
    vary_names = check_header_names(owner, "vary", vary)
    if key is not None and not callable(key):
        raise TypeError(f"{owner}: key must be a callable taking the request")
    status_set = None if statuses is None else check_statuses(owner, statuses)
    if cache_control is not None and (
        not isinstance(cache_control, str) or "\r" in cache_control or "\n" in cache_control
    ):
        raise ValueError(f"{owner}: cache_control must be a one-line header value")
    if max_body_size is not None:
        check_body_size(owner, max_body_size)
    for name, window in (
        ("stale_while_revalidate", stale_while_revalidate),
        ("stale_if_error", stale_if_error),
    ):
        if window is not None:
            check_seconds(owner, name, window)
    _check_shared(owner, key, shared, cache_control)
    tag_function: TagFunction | None = None
    if callable(tags):
        tag_function, tags = tags, ()
    return CacheRule(
        ttl=checked_ttl,
        tags=check_tags(owner, tags),
        vary=vary_names,
        key=key,
        statuses=status_set,
        cache_control=cache_control,
        max_body_size=max_body_size,
        stale_while_revalidate=stale_while_revalidate,
        stale_if_error=stale_if_error,
        shared=shared,
        tag_function=tag_function,
        cdn_cache_control=check_directives(owner, cdn_cache_control),
    )


def _check_shared(
    owner: str, key: KeyFunction | None, shared: object, cache_control: str | None
) -> None:
    """``shared`` is a ``bool`` meant for ``key`` routes, and a ``key`` route that
    tells shared caches to store (``public``, ``s-maxage``) must say ``shared=True``:
    otherwise its responses would say both ``public`` and ``private``."""
    if not isinstance(shared, bool):
        raise TypeError(f"{owner}: shared must be True or False, got {shared!r}")
    if shared and key is None:
        raise ValueError(
            f"{owner}: shared=True only applies to a route with key= "
            "(other routes are selected by the Vary the cache adds)"
        )
    if key is not None and not shared and cache_control is not None:
        directives = parse_cache_control([cache_control.encode("latin-1", "replace")])
        for directive in ("public", "s-maxage"):
            if directive in directives:
                raise ValueError(
                    f"{owner}: cache_control {cache_control!r} lets shared caches store a "
                    f"page selected by key=, whose responses are private; pass shared=True "
                    f"if every user may get it from a shared cache"
                )


def invalidates(*tags: str) -> Callable[[F], F]:
    """Mark a write route: after a 2xx/3xx response, invalidate these tags.

    Runs before the response start reaches the client, so a client that got its
    write's answer and reads again gets fresh data.  Placeholders are filled
    from the route's path parameters (``"product:{pid}"``).  The request's own
    path is invalidated after any successful unsafe request, marked or not.
    """

    if len(tags) == 1 and callable(tags[0]):
        refuse_bare_decorator("invalidates", tags[0])

    def mark(fn: F) -> F:
        rule = InvalidationRule(tags=check_tags(f"@invalidates on {_name(fn)}", tags))
        setattr(fn, INVALIDATES_ATTR, rule)
        return watch(fn, "@invalidates")

    return mark


def cache_rule(endpoint: Any, method: str) -> CacheRule | None:
    """The ``@cached`` rule of ``endpoint`` for ``method`` (HTTPEndpoint aware)."""
    return _rule(endpoint, method, CACHED_ATTR)  # type: ignore[no-any-return]


def cached_method(endpoint: Any, methods: Iterable[str] | None) -> str | None:
    """The method whose handler carries ``@cached`` on a route serving no GET, if any.

    Only GET (and HEAD, answered from it) is ever cached, so such a marker would be
    ignored: the startup check reports it rather than leave the route uncached
    without a word.  ``methods`` ``None`` is a route taking any method.  On an
    ``HTTPEndpoint`` a marked ``post`` / ``put`` / ``patch`` / ``delete`` handler
    is such a marker too.
    """
    if isinstance(endpoint, type):
        for method in ("DELETE", "PATCH", "POST", "PUT"):
            if hasattr(getattr(endpoint, method.lower(), None), CACHED_ATTR):
                return method
        return None
    if methods is None or "GET" in methods:
        return None
    for method in sorted(methods):
        if _rule(endpoint, method, CACHED_ATTR) is not None:
            return method
    return None


def invalidation_rule(endpoint: Any, method: str) -> InvalidationRule | None:
    """The ``@invalidates`` rule of ``endpoint`` for ``method``."""
    return _rule(endpoint, method, INVALIDATES_ATTR)  # type: ignore[no-any-return]


def _rule(endpoint: Any, method: str, attr: str) -> Any:
    while hasattr(endpoint, "func") and not hasattr(endpoint, attr):  # functools.partial
        endpoint = endpoint.func
    if isinstance(endpoint, type):  # HTTPEndpoint: the method's handler, else the class
        handler = getattr(endpoint, method.lower(), None)
        rule = getattr(handler, attr, None)
        if rule is not None:
            return rule
    return getattr(endpoint, attr, None)
