"""Cached routes, described in FastAPI's generated OpenAPI document.

A client reading ``/docs`` should learn that a route's answer may come from a
cache, for how long, and what selects it, without reading the server's code.
So each ``@cached`` operation gets an ``x-cache`` extension (OpenAPI 3.1 §4.9,
"Specification Extensions") and one line at the end of its description.

Nothing of FastAPI is patched: the application's own ``openapi`` (FastAPI's
method, or the function an application assigned to ``app.openapi``) is wrapped
on that one application when the middleware compiles its routes, and its
result annotated in place.  Only the description and the extension change;
response models, parameters and components are left exactly as generated.
Starlette applications have no ``openapi`` and are left alone.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Sequence
from typing import Any

from asgi_cache.routes import ReadRoute

__all__ = ["EXTENSION", "annotate", "describe", "document", "summary"]

#: The operation's field holding what the cache does with it.
EXTENSION = "x-cache"

#: What a value decided per response (by its own directives) is documented as.
FROM_RESPONSE = "from the response"

_WRAPPED = "__asgi_cache_openapi__"

Operations = Sequence[tuple[str, ReadRoute]]


def _name(fn: object) -> str:
    return str(getattr(fn, "__qualname__", None) or getattr(fn, "__name__", None) or repr(fn))


def _window(own: float | None, default: float) -> float | str:
    """A stale window as the route fixes it, else where it comes from (RFC 5861 §3, §4:
    the response's ``stale-while-revalidate`` / ``stale-if-error``, else the cache's default)."""
    if own is not None:
        return own
    return FROM_RESPONSE if not default else f"{FROM_RESPONSE}, else {default:g}"


def describe(route: ReadRoute) -> dict[str, Any]:
    """The ``x-cache`` extension of ``route``'s GET operation.

    Numbers are what the route fixes (seconds, statuses); a string says where a
    value comes from when each response decides it.  ``ttl`` is the route's own
    lifetime, else the response's freshness (RFC 9111 §4.2.1) or the heuristic
    (§4.2.2); ``key_headers`` are the request headers that select the stored
    response, which its ``Vary`` names (§4.1).
    """
    rule = route.rule
    key_headers = sorted(
        {name.decode("latin-1") for name in route.key_headers}
        | ({"accept-encoding"} if route.key_codings else set())
    )
    described: dict[str, Any] = {
        "ttl": FROM_RESPONSE if route.ttl is None else route.ttl,
        "tags": list(route.tag_templates)
        if rule.tag_function is None
        else f"from {_name(rule.tag_function)}(request)",
        "key_headers": key_headers,
    }
    if rule.key is not None:
        described["key"] = _name(rule.key)
        described["private"] = route.private
    described["stale_while_revalidate"] = _window(
        route.stale_while_revalidate, route.stale_defaults[0]
    )
    described["stale_if_error"] = _window(route.stale_if_error, route.stale_defaults[1])
    described["statuses"] = sorted(route.statuses)
    return described


def summary(extension: dict[str, Any]) -> str:
    """The line appended to a cached operation's description, from its extension."""
    ttl = extension["ttl"]
    parts = [f"Cached: {ttl:g} s" if isinstance(ttl, (int, float)) else f"Cached: ttl {ttl}"]
    tags = extension["tags"]
    if tags:
        parts.append("tags " + (", ".join(tags) if isinstance(tags, list) else tags))
    if extension["key_headers"]:
        parts.append("keyed on " + ", ".join(extension["key_headers"]))
    if "key" in extension:
        parts.append(f"key {extension['key']}()")
    for name, label in (
        ("stale_while_revalidate", "stale-while-revalidate"),
        ("stale_if_error", "stale-if-error"),
    ):
        window = extension[name]
        if isinstance(window, (int, float)) and window:
            parts.append(f"{label} {window:g} s")
    parts.append("statuses " + " ".join(str(status) for status in extension["statuses"]))
    return "; ".join(parts) + "."


def annotate(schema: dict[str, Any], operations: Operations) -> dict[str, Any]:
    """Add the extension and the description line to each cached GET operation.

    In place and idempotent, since FastAPI hands out the same cached document
    on every call; an operation the document lacks (``include_in_schema=False``)
    is skipped.  Returns ``schema``.
    """
    paths = schema.get("paths")
    if not isinstance(paths, dict):
        return schema
    for path, route in operations:
        item = paths.get(path)
        operation = item.get("get") if isinstance(item, dict) else None
        if not isinstance(operation, dict):
            continue
        extension = describe(route)
        operation[EXTENSION] = extension
        line = summary(extension)
        description = operation.get("description")
        if not isinstance(description, str) or not description:
            operation["description"] = line
        elif not description.endswith(line):
            operation["description"] = f"{description}\n\n{line}"
    return schema


def document(app: object, operations: Operations) -> bool:
    """Have ``app.openapi()`` describe ``operations``, if ``app`` is a FastAPI app.

    Wraps the application's current ``openapi`` once; compiling again (each
    lifespan startup) only replaces the operations.  Returns whether ``app``
    documents them.
    """
    fastapi = sys.modules.get("fastapi")
    if fastapi is None or not isinstance(app, fastapi.FastAPI):
        return False
    current: Callable[[], dict[str, Any]] = app.openapi
    holder: list[Operations] | None = getattr(current, _WRAPPED, None)
    if holder is not None:
        holder[0] = operations
        return True
    holder = [operations]

    def openapi() -> dict[str, Any]:
        return annotate(current(), holder[0])

    setattr(openapi, _WRAPPED, holder)
    openapi.__doc__ = getattr(current, "__doc__", None)
    app.openapi = openapi
    return True
