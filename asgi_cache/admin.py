"""An HTTP admin endpoint to purge the cache and read its counters.

A purge endpoint must never be open to everyone: whoever can call it can empty
the cache at will and push every request through to the database.  So
:func:`admin_app` refuses to start without a secret bearer token, and every
request must present it::

    from asgi_cache.admin import admin_app

    app.mount("/_cache", admin_app(cache))  # token from ASGI_CACHE_ADMIN_TOKEN

    # curl -X POST https://host/_cache/purge -H "Authorization: Bearer $TOKEN" \\
    #      -d '{"tags": ["products"], "paths": ["/products/1"]}'

Mount it with Starlette's or FastAPI's ``app.mount``.  Its routes carry no
``@cached`` marker, so :class:`~asgi_cache.CacheMiddleware` never caches them;
every answer also says ``Cache-Control: no-store`` for proxies and browsers.
"""

from __future__ import annotations

import functools
import hmac
import logging
import os
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

import orjson
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp, Receive, Scope, Send

from asgi_cache.cache import Cache
from asgi_cache.stores.base import StoreError

__all__ = ["MAX_BODY_SIZE", "MIN_TOKEN_LENGTH", "TOKEN_ENV", "admin_app"]

logger = logging.getLogger("asgi_cache")

#: The environment variable :func:`admin_app` reads its token from.
TOKEN_ENV = "ASGI_CACHE_ADMIN_TOKEN"
#: The shortest token accepted, in characters.
MIN_TOKEN_LENGTH = 16
#: The largest ``POST /purge`` body read, in bytes; larger ones get 413.
MAX_BODY_SIZE = 64 * 1024

_LIST_FIELDS = ("tags", "paths", "memoized")
_FIELDS = (*_LIST_FIELDS, "all")
_NO_STORE = {"cache-control": "no-store"}
_CHALLENGE = {**_NO_STORE, "www-authenticate": 'Bearer realm="asgi-cache"'}


def admin_app(cache: Cache, *, token: str | None = None) -> Starlette:
    """A small ASGI app that purges ``cache`` and reports its counters.

    :param cache: the cache to administer.
    :param token: the secret every request must present as ``Authorization:
        Bearer <token>``; read from ``ASGI_CACHE_ADMIN_TOKEN`` when omitted.
        At least 16 visible ASCII characters; generate one with
        ``python -c "import secrets; print(secrets.token_urlsafe(32))"``.
    :raises ValueError: without a token, or with one too short to be secret.

    Endpoints, each behind the token (a missing or malformed ``Authorization``
    gets 401 with ``WWW-Authenticate: Bearer``, a wrong token 403):

    ``POST /purge``
        A JSON object with any of ``"tags"``, ``"paths"`` (route paths, starting
        with ``/``), ``"memoized"`` (``"module.qualname"`` of memoized functions)
        as lists of strings and ``"all"`` (``true`` clears everything under the
        cache's prefix).  Answers ``{"removed": {"tags": n, "paths": n,
        "memoized": n, "all": n}}``.  An empty object, an unknown field, a wrong
        type or an unknown memoized function gets 422 and purges nothing; a body
        over 64 KiB gets 413; a store that fails gets 503 (what failed is kept and retried, see
        :class:`~asgi_cache.Cache`).
    ``GET /stats``
        :meth:`Cache.stats` as a JSON object.
    """
    secret = _check_token(token if token is not None else os.environ.get(TOKEN_ENV))

    async def purge(request: Request) -> Response:
        body = await _read_body(request)
        parsed = _parse_purge(body)
        if isinstance(parsed, Response):
            return parsed
        tags, paths, names, everything = parsed
        registry = cache.memoized_functions()
        unknown = [name for name in names if name not in registry]
        if unknown:
            return _error(422, f"unknown memoized function: {unknown[0][:200]}")
        removed = {"tags": 0, "paths": 0, "memoized": 0, "all": 0}
        purges: list[tuple[str, Callable[[], Awaitable[int]]]] = []
        if tags:
            purges.append(("tags", lambda: cache.invalidate(*tags)))
        purges += [("paths", functools.partial(cache.invalidate_path, path)) for path in paths]
        purges += [
            ("memoized", functools.partial(cache.delete_memoized, registry[name])) for name in names
        ]
        if everything:
            purges.append(("all", cache.clear))
        failed: StoreError | None = None
        for what, purge in purges:  # each one, even after a failure: it is kept, not lost
            try:
                removed[what] += await purge()
            except StoreError as exc:
                failed = exc
        if failed is not None:
            logger.warning("asgi-cache: admin purge failed: %s", failed)
            return _error(
                503, "the cache store is unavailable; the purge is kept and retried until it takes"
            )
        logger.info("asgi-cache: admin purge removed %s", removed)
        return JSONResponse({"removed": removed}, headers=_NO_STORE)

    async def stats(request: Request) -> Response:
        return JSONResponse(cache.stats(), headers=_NO_STORE)

    async def http_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, HTTPException)
        return _error(exc.status_code, exc.detail, exc.headers)

    return Starlette(
        routes=[
            Route("/purge", purge, methods=["POST"]),
            Route("/stats", stats, methods=["GET"]),
        ],
        middleware=[Middleware(_RequireBearer, token=secret)],
        exception_handlers={HTTPException: http_error},
    )


def _check_token(token: str | None) -> bytes:
    how = (
        f"pass token= or set {TOKEN_ENV} to a random secret of at least {MIN_TOKEN_LENGTH} "
        'characters, e.g. python -c "import secrets; print(secrets.token_urlsafe(32))"'
    )
    if not token:
        raise ValueError(f"admin_app refuses to start without a token: {how}")
    if not isinstance(token, str):
        raise TypeError("admin_app: token must be a string")
    if len(token) < MIN_TOKEN_LENGTH:
        raise ValueError(f"admin_app refuses to start: the token is too short; {how}")
    if not all("!" <= char <= "~" for char in token):
        raise ValueError(
            "admin_app refuses to start: the token must be visible ASCII characters "
            f"without spaces, so it fits an Authorization header; {how}"
        )
    return token.encode("ascii")


class _RequireBearer:
    """Answer 401 / 403 unless the request carries ``Authorization: Bearer <token>``.

    In front of the router, so unknown paths and methods are not revealed to a
    caller without the token.  The header is read raw and never echoed.
    """

    def __init__(self, app: ASGIApp, *, token: bytes) -> None:
        self.app = app
        self.token = token

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            values = [value for name, value in scope["headers"] if name == b"authorization"]
            scheme, _, presented = values[0].strip().partition(b" ") if values else (b"", b"", b"")
            presented = presented.strip()
            if len(values) != 1 or scheme.lower() != b"bearer" or not presented:
                what = "missing" if not values else "malformed"
                response = _error(401, f"{what} Authorization header: expected Bearer", _CHALLENGE)
                await response(scope, receive, send)
                return
            if not hmac.compare_digest(presented, self.token):
                logger.warning("asgi-cache: admin request with a wrong token from %s", _peer(scope))
                await _error(403, "invalid token")(scope, receive, send)
                return
        await self.app(scope, receive, send)


def _peer(scope: Scope) -> str:
    client = scope.get("client")
    return str(client[0]) if client else "?"


async def _read_body(request: Request) -> bytes:
    """The request body, or :class:`HTTPException` 413 past :data:`MAX_BODY_SIZE`."""
    length = request.headers.get("content-length")
    if length is not None and length.isdigit() and int(length) > MAX_BODY_SIZE:
        raise HTTPException(413, f"body larger than {MAX_BODY_SIZE} bytes")
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > MAX_BODY_SIZE:
            raise HTTPException(413, f"body larger than {MAX_BODY_SIZE} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


_Purge = tuple[list[str], list[str], list[str], bool]


def _parse_purge(body: bytes) -> _Purge | Response:
    """The validated purge request, or a 422 response saying what is wrong."""
    if not body.strip():
        return _error(422, 'empty body: expected a JSON object such as {"tags": ["..."]}')
    try:
        data: Any = orjson.loads(body)
    except orjson.JSONDecodeError:
        return _error(422, "malformed JSON")
    if not isinstance(data, dict):
        return _error(422, "expected a JSON object")
    unknown = [name for name in data if name not in _FIELDS]
    if unknown:
        return _error(422, f"unknown field {unknown[0][:100]!r}; expected {', '.join(_FIELDS)}")
    if not data:
        return _error(422, f"nothing to purge: give at least one of {', '.join(_FIELDS)}")
    lists: list[list[str]] = []
    for name in _LIST_FIELDS:
        value = data.get(name, [])
        if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
            return _error(422, f"{name!r} must be a list of non-empty strings")
        lists.append(list(dict.fromkeys(value)))
    tags, paths, names = lists
    if any(not path.startswith("/") for path in paths):
        return _error(422, "'paths' must be route paths starting with '/'")
    everything = data.get("all", False)
    if not isinstance(everything, bool):
        return _error(422, "'all' must be true or false")
    return tags, paths, names, everything


def _error(status: int, detail: str, headers: Mapping[str, str] | None = None) -> Response:
    return JSONResponse(
        {"detail": detail}, status_code=status, headers={**_NO_STORE, **(headers or {})}
    )
