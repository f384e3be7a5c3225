"""Argument checks shared by the markers, ``memoize`` and :class:`~asgi_cache.Cache`.

A wrong argument is refused where it is written -- when a module defines a
route or a memoized function, when the cache is built -- rather than on the
first request that needs it.  Every check takes the ``owner`` its errors name
(``"@cached on list_products"``, ``"memoize app.stats"``, ``"Cache"``), so the
message points at the line to fix, and returns the checked value in the form
its caller keeps.

One check per kind of argument, whoever takes it: a ``ttl`` on a route, on a
memoized function or as the cache's ``default_ttl`` is refused by the same
rule, with the same exception type (``TypeError`` for a value of the wrong
type, ``ValueError`` for one out of range, as Python itself does).
"""

from __future__ import annotations

import math
import re
import string
from collections.abc import Iterable, Mapping
from typing import Any

from asgi_cache.headers import is_token
from asgi_cache.policy import NEVER_STORED

__all__ = [
    "FOREIGN_ARGUMENTS",
    "check_body_size",
    "check_data_key",
    "check_header_names",
    "check_seconds",
    "check_statuses",
    "check_tags",
    "check_ttl",
    "foreign_arguments",
    "key_failure_hint",
    "parse_duration",
    "refuse_bare_decorator",
    "tag_fields",
]


def _is_number(value: object) -> bool:
    """An ``int`` or ``float`` that is not a ``bool`` (``True`` seconds is a mistake)."""
    return not isinstance(value, bool) and isinstance(value, (int, float))


def _is_storable_status(status: object) -> bool:
    """1xx-4xx: a 5xx is the origin failing, never a response to replay."""
    return isinstance(status, int) and 100 <= status < 500


# -- lifetimes -----------------------------------------------------------------


_DURATION = re.compile(r"\s*(\d+(?:\.\d+)?)\s*([smhdw])\s*\Z", re.IGNORECASE)
_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def parse_duration(text: str) -> float | None:
    """Seconds in a duration string such as cashews' ``"1h"`` or ``"90s"``; ``None`` if not one.

    Used only to suggest the number to write: durations are given in seconds.
    """
    match = _DURATION.match(text)
    if match is None:
        return None
    return float(match.group(1)) * _UNIT_SECONDS[match.group(2).lower()]


def check_ttl(owner: str, ttl: float | None, name: str = "ttl") -> float | None:
    """``ttl`` (the argument ``name``) as float seconds (positive, finite) or ``None``.

    ``None`` defers to the response's ``max-age`` or the cache's default; a
    caller for which there is nothing to defer to refuses it itself.  A
    duration string (``"1h"``) is refused with the number it stands for, rather
    than read: one unit everywhere keeps a ``ttl`` unambiguous in review.
    """
    if ttl is None:
        return None
    if isinstance(ttl, str) and (seconds := parse_duration(ttl)) is not None:
        raise TypeError(
            f"{owner}: {name} is a number of seconds, not a duration string: "
            f"write {name}={seconds:g} for {ttl!r}"
        )
    if not _is_number(ttl):
        raise TypeError(f"{owner}: {name} must be a number of seconds, got {ttl!r}")
    if not 0 < ttl < math.inf:
        raise ValueError(
            f"{owner}: {name} must be a positive, finite number of seconds, got {ttl!r}"
        )
    return float(ttl)


def check_seconds(owner: str, name: str, seconds: float) -> float:
    """``seconds`` (the argument ``name``) unchanged if finite and ``>= 0``.

    For windows and waits (``stale_while_revalidate``, ``coalesce_wait``...),
    where zero means "not at all" rather than a mistake.
    """
    if not (_is_number(seconds) and 0 <= seconds < math.inf):
        raise ValueError(f"{owner}: {name} must be a finite number of seconds >= 0")
    return seconds


# -- tags ----------------------------------------------------------------------


def tag_fields(template: str) -> tuple[str, ...]:
    """Names of the ``{placeholders}`` of a tag template; ValueError if malformed.

    Only bare names are allowed, since they are filled from path parameters,
    never evaluated.
    """
    fields: list[str] = []
    for _, field, spec, conversion in string.Formatter().parse(template):
        if field is None:
            continue
        if not field.isidentifier() or spec or conversion:
            raise ValueError(f"placeholder {{{field}}} must be a bare path parameter name")
        fields.append(field)
    return tuple(fields)


def check_tags(owner: str, tags: Iterable[str], *, placeholders: bool = True) -> tuple[str, ...]:
    """``tags`` as a tuple of non-empty strings; errors name ``owner``.

    With ``placeholders`` the tags are templates filled from path parameters;
    without, braces are refused (they are kept free for that use).
    """
    if isinstance(tags, str):
        raise TypeError(f"{owner}: tags must be a tuple of strings, not one string")
    checked = tuple(tags)
    for tag in checked:
        if not isinstance(tag, str) or not tag:
            raise ValueError(f"{owner}: every tag must be a non-empty string, got {tag!r}")
        if not placeholders:
            if "{" in tag or "}" in tag:
                raise ValueError(f"{owner}: tag {tag!r}: placeholders are not supported here")
            continue
        try:
            tag_fields(tag)
        except ValueError as exc:
            raise ValueError(f"{owner}: tag {tag!r}: {exc}") from None
    return checked


# -- request headers -----------------------------------------------------------


def check_header_names(owner: str, what: str, names: Iterable[str]) -> tuple[str, ...]:
    """``names`` (the argument ``what``) lower-cased, duplicates merged, order kept.

    Each must be an HTTP field name; one string is refused rather than read as
    a tuple of its characters.
    """
    if isinstance(names, str):
        raise TypeError(f"{owner}: {what} must be a tuple of header names, not one string")
    checked = tuple(names)
    for name in checked:
        if not isinstance(name, str):
            raise TypeError(f"{owner}: {what} entries must be header names, got {name!r}")
        if not is_token(name):
            raise ValueError(f"{owner}: {what} entry {name!r} is not an HTTP header name")
    return tuple(dict.fromkeys(name.lower() for name in checked))


# -- responses -----------------------------------------------------------------


def check_statuses(owner: str, statuses: Iterable[int]) -> frozenset[int]:
    """Storable statuses as a set; each 1xx-4xx but 206 and 304 (errors name the status).

    A 206 is part of a response and a 304 a validation of a stored one
    (:data:`~asgi_cache.policy.NEVER_STORED`): listing one is a mistake to
    report, not a wish to honour.
    """
    checked = frozenset(statuses)
    for status in checked:
        if isinstance(status, bool) or not _is_storable_status(status):
            raise ValueError(
                f"{owner}: status {status!r} cannot be cached: statuses must be 1xx-4xx codes "
                "(5xx is never cached)"
            )
        if status in NEVER_STORED:
            raise ValueError(
                f"{owner}: status {status} is never stored (206 is part of a response, 304 "
                "validates a stored one); remove it from statuses"
            )
    return checked


def check_body_size(owner: str, size: int) -> int:
    """The largest stored body: a positive ``int`` of bytes."""
    if isinstance(size, bool) or not isinstance(size, int) or size <= 0:
        raise ValueError(f"{owner}: max_body_size must be a positive int of bytes, got {size!r}")
    return size


# -- stored values ---------------------------------------------------------------


def check_data_key(owner: str, key: str) -> str:
    """A ``Cache.get`` / ``set`` / ``delete`` key: a non-empty ``str``.

    An empty key would name the whole ``data`` namespace rather than one value.
    """
    if not isinstance(key, str):
        raise TypeError(f"{owner}: key must be a str, got {type(key).__qualname__}")
    if not key:
        raise ValueError(f"{owner}: key must not be empty")
    return key


# -- misuse ----------------------------------------------------------------------

#: Arguments of other caching libraries, and what to write here instead.  People
#: come from Flask-Caching, fastapi-cache2 and cashews with their spelling in
#: their fingers; a bare "unexpected keyword argument" does not say where to go.
FOREIGN_ARGUMENTS: Mapping[str, str] = {
    "expire": "asgi-cache calls it ttl= (seconds)",
    "timeout": "asgi-cache calls it ttl= (seconds)",
    "ttl_seconds": "asgi-cache calls it ttl= (seconds)",
    "key_builder": "asgi-cache calls it key= (a callable taking the request, returning a key part)",
    "make_cache_key": "asgi-cache calls it key= (a callable taking the request)",
    "key_prefix": "set a prefix once for the whole cache: Cache(prefix=...)",
    "namespace": "set a prefix once for the whole cache: Cache(prefix=...)",
    "prefix": "set a prefix once for the whole cache: Cache(prefix=...)",
    "coder": "entries are stored as the response's bytes: there is no coder to choose",
    "serializer": "entries are stored as the response's bytes: there is no serializer to choose",
    "query_string": "the canonical query string is always part of the key",
    "unless": "return Cache-Control: no-store from the endpoint to skip storing a response",
    "condition": "use statuses= to choose what is stored",
    "response_filter": "use statuses= to choose what is stored",
}


def foreign_arguments(owner: str, given: Mapping[str, Any], accepted: Iterable[str]) -> None:
    """Refuse keyword arguments ``owner`` does not take, with a hint where one helps.

    A ``TypeError``, as Python's own for an unexpected keyword, but naming the
    argument to write instead (``expire=`` is ``ttl=``) and the accepted ones.
    """
    if not given:
        return
    name = next(iter(given))
    hint = FOREIGN_ARGUMENTS.get(name)
    advice = f"; {hint}" if hint else ""
    raise TypeError(
        f"{owner}: unexpected keyword argument {name!r}{advice} (accepted: {', '.join(accepted)})"
    )


def refuse_bare_decorator(decorator: str, fn: object) -> None:
    """Refuse a marker used without parentheses (``@cached`` on ``fn``).

    Left alone, the function would become the marker's first argument and the
    route would be replaced by the marker's inner function, which FastAPI then
    reads as a route with a required ``fn`` query parameter (a 422 on every
    request).  Failing at import names the line to fix.
    """
    name = getattr(fn, "__qualname__", None) or getattr(fn, "__name__", None) or repr(fn)
    raise TypeError(
        f"@{decorator} on {name} is used without parentheses: write @{decorator}() "
        f"(or @{decorator}(...) with arguments)"
    )


#: What Starlette says when a request attribute's middleware is not in front of the
#: code reading it, and that middleware's name.
_MISSING_MIDDLEWARE = re.compile(r"(\w+Middleware) must be installed to access request\.(\w+)")


def key_failure_hint(exc: BaseException) -> str | None:
    """How to fix a ``key=`` function that failed for want of a middleware, or ``None``.

    A key function runs before routing, inside ``CacheMiddleware``: it sees only
    what the middlewares *outside* the cache put in the scope.  Starlette's
    ``request.session`` (``request.user``, ``request.auth``) then fails with an
    ``AssertionError`` on every request; the fix is the order of
    ``add_middleware`` calls, where the last added runs first.
    """
    match = _MISSING_MIDDLEWARE.search(str(exc))
    if match is None:
        return None
    middleware, attribute = match.groups()
    return (
        f"request.{attribute} needs {middleware} outside CacheMiddleware: call "
        f"app.add_middleware({middleware}, ...) after app.add_middleware(CacheMiddleware, ...) "
        f"(the last one added runs first)"
    )
