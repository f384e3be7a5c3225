"""Named sets of :class:`~asgi_cache.Cache` settings.

``RFC9111`` makes the cache behave as the shared cache RFC 9111 describes, for
a catch-all route in front of another origin (``@cached(ttl=None)``: the
responses' own headers decide) or for applications that want the letter of
the RFC rather than this package's defaults::

    from asgi_cache import Cache
    from asgi_cache.presets import RFC9111

    cache = Cache(store, **RFC9111)
    cache = Cache(store, **{**RFC9111, "default_ttl": 300})  # one setting changed

What it changes, and what stays (the deviations kept on purpose: credential
bypass, ``Set-Cookie`` and 5xx never stored), is listed section by section in
the README's "HTTP semantics".
"""

from __future__ import annotations

from typing import Final, TypedDict

from asgi_cache.policy import UNDERSTOOD_STATUSES

__all__ = ["RFC9111", "SharedCacheSettings"]


class SharedCacheSettings(TypedDict):
    """The settings :data:`RFC9111` sets: ``Cache(store, **RFC9111)`` type-checks."""

    honor_request_cache_control: bool
    heuristic_freshness: bool
    statuses: frozenset[int]
    targeted_cache_control: tuple[str, ...]
    stale_while_revalidate: float
    stale_if_error: float


RFC9111: Final[SharedCacheSettings] = {
    # §5.2.1: a client's request directives are obeyed (the default ignores them,
    # so that a browser reload cannot push load through to the application).
    "honor_request_cache_control": True,
    # §4.2.2: heuristic freshness where the RFC allows it, capped at default_ttl.
    "heuristic_freshness": True,
    # §3: any final status whose semantics the cache understands may be stored;
    # those RFC 9110 §15.1 does not call heuristically cacheable (201, 403, ...)
    # only with explicit freshness.  5xx never (a deviation, see the README).
    "statuses": frozenset(s for s in UNDERSTOOD_STATUSES if s < 500),
    # RFC 9213: CDN-Cache-Control addresses this cache ahead of Cache-Control.
    "targeted_cache_control": ("cdn-cache-control",),
    # §4.2.4: stale only when the response allows it (RFC 5861 directives).
    "stale_while_revalidate": 0.0,
    "stale_if_error": 0.0,
}
