"""Whether a marked endpoint runs under a ``CacheMiddleware``: a warning when it does not.

``@cached`` and ``@invalidates`` are read by the middleware; in an application
that never added it they do nothing, silently.  Nothing can tell at import time
(a marker does not know the app its function will be routed in), and FastAPI
and Starlette have no hook a marker could register on.  So the check happens
where it can: when the endpoint runs.

- The middleware hands every request to the application through
  :class:`Downstream`, which sets a context variable for the call.  A hit never
  reaches the application, so the hit path does not pay for it.
- A marker returns :func:`watch`'s wrapper of the endpoint, which reads that
  variable (one ``ContextVar.get`` per run) and, when it is not set, logs one
  WARNING per route.  Context variables follow the request into the worker
  thread of a ``def`` endpoint and into the tasks the middleware starts.

The wrapper is made with ``functools.wraps`` (``__wrapped__``, the name, the
annotations) and keeps the function's module globals, and it is a coroutine
function exactly when the endpoint is one, so FastAPI reads the very same
signature, dependencies, response model and OpenAPI operation from it.
"""

from __future__ import annotations

import functools
import inspect
import logging
import sys
import threading
import types
from collections.abc import Callable, Mapping
from contextvars import ContextVar
from typing import Any, TypeVar

from starlette.requests import HTTPConnection
from starlette.types import ASGIApp, Receive, Scope, Send

__all__ = ["Downstream", "watch"]

logger = logging.getLogger("asgi_cache")

F = TypeVar("F", bound=Callable[..., Any])

#: Set while a ``CacheMiddleware`` has handed a request to the application.
_UNDER_MIDDLEWARE: ContextVar[bool] = ContextVar("asgi_cache_under_middleware", default=False)

#: What a marker does that no middleware will do, for the warning.
_LOST = {
    "@cached": "its responses are not cached",
    "@invalidates": "its writes invalidate nothing",
}

#: How far up the stack to look for the request's scope (an ``async def`` endpoint
#: is awaited by the framework's request handler a few frames up).
_FRAMES = 40


class Downstream:
    """The application as the middleware calls it: marked endpoints see a middleware."""

    __slots__ = ("app",)

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        token = _UNDER_MIDDLEWARE.set(True)
        try:
            await self.app(scope, receive, send)
        finally:
            _UNDER_MIDDLEWARE.reset(token)


def watch(fn: F, marker: str) -> F:
    """``fn``, wrapped to warn once per route when it runs without a ``CacheMiddleware``.

    Only plain ``def`` and ``async def`` functions are wrapped; anything else (a
    class, a ``functools.partial``, a callable object, a generator function) is
    returned as it is.
    """
    if not inspect.isfunction(fn) or inspect.isgeneratorfunction(fn):
        return fn
    if inspect.isasyncgenfunction(fn):
        return fn
    served = _UNDER_MIDDLEWARE.get
    warn = _Warning(fn, marker)
    wrapper: Callable[..., Any]
    if inspect.iscoroutinefunction(fn):

        async def watched(*args: Any, **kwargs: Any) -> Any:
            if not served():
                warn(args, kwargs)
            return await fn(*args, **kwargs)

        wrapper = watched
    else:

        def watched_sync(*args: Any, **kwargs: Any) -> Any:
            if not served():
                warn(args, kwargs)
            return fn(*args, **kwargs)

        wrapper = watched_sync
    # The same code in the endpoint's module: frameworks that resolve string
    # annotations in the function's __globals__ find the endpoint's own names.
    rebound = types.FunctionType(
        wrapper.__code__, fn.__globals__, fn.__name__, None, wrapper.__closure__
    )
    return functools.update_wrapper(rebound, fn)  # type: ignore[return-value]


class _Warning:
    """The warning of one marked endpoint: once per route it runs on."""

    def __init__(self, fn: Callable[..., Any], marker: str) -> None:
        self._endpoint = f"{fn.__module__}.{fn.__qualname__}"
        self._marker = marker
        self._warned: set[str] = set()
        self._lock = threading.Lock()  # a def endpoint runs in worker threads

    def __call__(self, args: tuple[Any, ...], kwargs: Mapping[str, Any]) -> None:
        scope = _scope_of(args, kwargs)
        route = self._endpoint if scope is None else _route_name(scope)
        with self._lock:
            if route in self._warned:
                return
            self._warned.add(route)
        where = f"endpoint {route}" if scope is None else f"route {route} ({self._endpoint})"
        logger.warning(
            "asgi-cache: %s is marked %s but no CacheMiddleware is installed: %s; "
            "add app.add_middleware(CacheMiddleware)",
            where,
            self._marker,
            _LOST[self._marker],
        )


def _scope_of(args: tuple[Any, ...], kwargs: Mapping[str, Any]) -> Scope | None:
    """The HTTP scope of the request the endpoint serves, if it can be found.

    A Starlette endpoint (or an ``HTTPEndpoint`` method, or a FastAPI endpoint
    taking the ``Request``) has it in its arguments; an ``async def`` endpoint
    is awaited by the framework's request handler, whose frame holds it.  A
    FastAPI ``def`` endpoint without a ``Request`` runs in a worker thread,
    away from both: it is named by its function instead.
    """
    for value in (*args, *kwargs.values()):
        if isinstance(value, HTTPConnection):
            return value.scope
    frame: types.FrameType | None = sys._getframe(2)
    for _ in range(_FRAMES):
        if frame is None:
            return None
        scope = frame.f_locals.get("scope")
        if isinstance(scope, dict) and scope.get("type") == "http":
            return scope
        frame = frame.f_back
    return None


def _route_name(scope: Scope) -> str:
    """``GET /products/{pid}``: the method and the route's path template (else the path)."""
    method = scope.get("method", "?")
    template = getattr(scope.get("route"), "path", None)
    if isinstance(template, str):  # relative to the Mount the route is in, if any
        return f"{method} {scope.get('root_path', '')}{template}"
    return f"{method} {scope.get('path', '?')}"
