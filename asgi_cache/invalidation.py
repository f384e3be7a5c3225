"""Which stored responses an unsafe request invalidates (RFC 9111 §4.4).

A request whose method is not known to be safe may change the resource it
targets: once the application answers it without error, the cache drops what
it stored for that URI, and for the URIs the response names in ``Location`` and
``Content-Location`` when they belong to the same origin.  Pure functions: the
middleware turns the paths into path tags and invalidates them on the write
path, under its usual failure rules.
"""

from __future__ import annotations

from urllib.parse import quote, unquote, urljoin, urlsplit

__all__ = [
    "SAFE_METHODS",
    "invalidates",
    "related_paths",
    "request_authority",
    "request_target",
]

Headers = list[tuple[bytes, bytes]]

#: RFC 9110 §9.2.1: the methods defined as safe.  Any other method, an unknown
#: one included, is treated as unsafe (RFC 9111 §4.4).
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "TRACE"})

_DEFAULT_PORTS = {"http": 80, "https": 443}


def invalidates(method: str, status: int) -> bool:
    """Whether a response to ``method`` with ``status`` invalidates its target URI.

    RFC 9111 §4.4: a non-error status (2xx, 3xx) to a method that is not
    safe (RFC 9110 §9.2.1), including methods whose safety is unknown.
    """
    return method not in SAFE_METHODS and 200 <= status < 400


def _origin(scheme: str, authority: str) -> tuple[str, str, int | None] | None:
    """``(scheme, host, port)`` with the scheme's default port filled in (RFC 9110 §4.3.1)."""
    try:
        parts = urlsplit(f"{scheme}://{authority}")
        port = parts.port
    except ValueError:  # an unclosed IPv6 literal, a port out of range
        return None
    scheme = scheme.lower()
    return scheme, (parts.hostname or "").lower(), port or _DEFAULT_PORTS.get(scheme)


def related_paths(
    response_headers: Headers,
    scheme: str,
    authority: str,
    raw_path: bytes,
    root_path: str,
) -> list[str]:
    """The paths (as the routes see them) of the response's ``Location`` and
    ``Content-Location`` that belong to the request's origin.

    RFC 9111 §4.4: those URIs are candidates for invalidation, but never one
    whose origin (scheme, host, port; RFC 9110 §4.3.1) differs from the target
    URI's, which would let one site evict another's pages.  A relative
    reference is resolved against the request URI (RFC 3986 §5); the query is
    dropped, since path invalidation covers every query of a path; a path
    outside the application's ``root_path`` is not this application's.  A
    value that is not a URI reference is ignored.
    """
    origin = _origin(scheme, authority)
    if origin is None:
        return []
    base = f"{origin[0]}://{authority}{raw_path.decode('latin-1')}"
    paths: list[str] = []
    for name, value in response_headers:
        name = name.lower()
        if name != b"location" and name != b"content-location":
            continue
        try:
            target = urlsplit(urljoin(base, value.decode("latin-1").strip()))
            port = target.port
        except ValueError:
            continue
        target_scheme = target.scheme.lower()
        target_origin = (
            target_scheme,
            (target.hostname or "").lower(),
            port or _DEFAULT_PORTS.get(target_scheme),
        )
        if target_origin != origin:
            continue
        path = unquote(target.path) or "/"
        if root_path:  # as the middleware strips it from a request's path
            if not path.startswith(root_path):
                continue
            path = path[len(root_path) :]
            if path and path[0] != "/":
                continue
        if path not in paths:
            paths.append(path)
    return paths


def request_target(path: str, raw_path: bytes | None) -> bytes:
    """The request's path as it was sent (ASGI's ``raw_path``, optional), to resolve
    references against."""
    return raw_path if raw_path else quote(path).encode("latin-1")


def request_authority(headers: Headers, server: tuple[str, int | None] | None) -> str:
    """The request's authority: its ``Host`` (RFC 9110 §7.2), else the server's address."""
    for name, value in headers:
        if name == b"host":
            return value.decode("latin-1").strip()
    if server is None:
        return ""
    host, port = server
    return host if port is None else f"{host}:{port}"
