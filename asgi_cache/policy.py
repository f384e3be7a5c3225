"""HTTP caching rules as pure functions: no I/O, time passed in.

Each function names the section of RFC 9111 (HTTP Caching) it implements.  The
cache is a *shared* cache acting for the origin (a gateway cache), so it obeys
the directives that forbid storing, while the freshness lifetime of an entry is
what the route's marker says, falling back on the response's own directives.
"""

from __future__ import annotations

from collections.abc import Collection

from asgi_cache.headers import parse_cache_control, parse_vary

__all__ = [
    "DEFAULT_STATUSES",
    "UNSAFE_METHODS",
    "freshness_lifetime",
    "request_directive",
    "stale_windows",
    "unstorable_reason",
]

#: Statuses stored unless a route says otherwise: those RFC 9110 §15.1 calls
#: heuristically cacheable, minus 206 (ranges are not assembled here) and 405
#: and 414 and 501 (answers about the request, not the resource).  5xx never.
DEFAULT_STATUSES = frozenset({200, 203, 204, 300, 301, 308, 404, 410})

#: Methods whose success invalidates the target URI (RFC 9111 §4.4).
UNSAFE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})

Headers = list[tuple[bytes, bytes]]

#: RFC 9111 §1.2.2: a delta-seconds too large to hold is taken as 2**31.
MAX_LIFETIME = 2.0**31


def unstorable_reason(
    status: int,
    headers: Headers,
    statuses: Collection[int],
    key_headers: Collection[str],
) -> str | None:
    """Why this response must not be stored, or ``None`` when it may be.

    RFC 9111 §3: a shared cache must not store a response with ``no-store`` or
    ``private`` (§5.2.2.5, §5.2.2.7); ``no-cache`` (§5.2.2.4) forbids reuse
    without revalidation, which this cache does not do, so it is not stored
    either.  ``Set-Cookie`` is never replayed to other clients.  ``Vary``
    (§4.1) may only name headers that are part of the key; ``Vary: *`` never
    matches.
    """
    if status not in statuses or status >= 500:
        return "status"
    cache_control: list[bytes] = []
    vary: list[bytes] = []
    for name, value in headers:
        name = name.lower()
        if name == b"set-cookie":
            return "set-cookie"
        if name == b"cache-control":
            cache_control.append(value)
        elif name == b"vary":
            vary.append(value)
    if cache_control:
        directives = parse_cache_control(cache_control)
        for directive in ("no-store", "private", "no-cache"):
            if directive in directives:
                return directive
    if vary:
        for field in parse_vary(vary):
            if field not in key_headers:
                return "vary"
    return None


def freshness_lifetime(ttl: float | None, headers: Headers, default_ttl: float) -> float:
    """Seconds an entry stays fresh (RFC 9111 §4.2.1).

    An explicit route ``ttl`` wins: the application's author configured this
    cache.  Otherwise ``s-maxage`` then ``max-age`` of the response, then the
    cache's default.
    """
    if ttl is not None:
        return ttl
    values = [value for name, value in headers if name.lower() == b"cache-control"]
    if values:
        directives = parse_cache_control(values)
        for name in ("s-maxage", "max-age"):
            raw = directives.get(name)
            if raw is not None:
                # RFC 9111 §1.2.2: delta-seconds is plain digits; anything else
                # is invalid and §4.2.1 treats the response as stale.
                if not (raw.isascii() and raw.isdigit()):
                    return 0.0
                return min(float(raw), MAX_LIFETIME)
    return default_ttl


def stale_windows(
    stale_while_revalidate: float | None,
    stale_if_error: float | None,
    headers: Headers,
    defaults: tuple[float, float],
) -> tuple[float, float]:
    """Seconds after expiry a stale entry may be served: (while revalidating, on error).

    RFC 5861 §3 and §4: the route's own setting wins, then the response's
    ``stale-while-revalidate`` / ``stale-if-error`` directives, then the
    cache's defaults.
    """
    if stale_while_revalidate is not None and stale_if_error is not None:
        return stale_while_revalidate, stale_if_error
    values = [value for name, value in headers if name.lower() == b"cache-control"]
    directives = parse_cache_control(values) if values else {}
    windows = []
    for chosen, name, default in (
        (stale_while_revalidate, "stale-while-revalidate", defaults[0]),
        (stale_if_error, "stale-if-error", defaults[1]),
    ):
        raw = directives.get(name)
        if chosen is not None:
            windows.append(chosen)
        elif raw is not None and raw.isascii() and raw.isdigit():
            windows.append(min(float(raw), MAX_LIFETIME))
        else:
            windows.append(default)
    return windows[0], windows[1]


def request_directive(cache_control: list[bytes] | None, pragma: list[bytes] | None) -> str | None:
    """``"no-store"``, ``"no-cache"`` or ``None`` for a client's request directives.

    Only consulted when the cache is configured to honour them (RFC 9111
    §5.2.1); ``Pragma: no-cache`` counts only without ``Cache-Control`` (§5.4).
    """
    if cache_control:
        directives = parse_cache_control(cache_control)
        if "no-store" in directives:
            return "no-store"
        if "no-cache" in directives or directives.get("max-age") == "0":
            return "no-cache"
        return None
    if pragma and any(b"no-cache" in value.lower() for value in pragma):
        return "no-cache"
    return None
