"""Store URLs: which store a URL's scheme opens, so a new store needs no change here.

:meth:`Cache.from_url <asgi_cache.Cache.from_url>` and ``ASGI_CACHE_URL`` go through
:func:`open_url`.  A store makes its scheme known once, at import time of the module that
defines it::

    register_scheme("memcached", MemcachedStore.from_url)

The built-in schemes are ``memory`` and, for :class:`~asgi_cache.RedisStore`, ``redis``,
``rediss`` and ``unix``.  Their openers import their store only when called, so importing
asgi_cache never imports redis.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from asgi_cache.stores.base import Store
from asgi_cache.stores.urls import redact_url

__all__ = [
    "MEMORY_OPTIONS",
    "REDIS_OPTIONS",
    "Opener",
    "open_url",
    "register_scheme",
]

#: Builds a store from the whole URL (``"redis://host:6379/0?cluster=true"``), and the
#: store options given as keyword arguments to ``Cache.from_url``, if any.
Opener = Callable[..., Store]

#: What ``Cache.from_url("memory://", ...)`` passes on to :class:`MemoryStore`.
MEMORY_OPTIONS = ("max_bytes", "max_entries", "clock", "clear_on_close")

#: What ``Cache.from_url("redis://...", ...)`` passes on: the store's own settings, then
#: the redis-py client options that make sense next to a URL.  A closed list, because
#: redis-py accepts any keyword and fails on the first connection instead.
REDIS_OPTIONS = (
    "cluster",
    "timeout",
    "failure_threshold",
    "cooldown",
    "username",
    "password",
    "db",
    "client_name",
    "max_connections",
    "socket_timeout",
    "socket_connect_timeout",
    "socket_keepalive",
    "health_check_interval",
    "retry_on_timeout",
    "ssl_ca_certs",
    "ssl_certfile",
    "ssl_keyfile",
    "ssl_cert_reqs",
    "ssl_check_hostname",
)

# RFC 3986, section 3.1: a letter, then letters, digits, "+", "-" or ".".
_SCHEME = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*\Z")


def _check_options(url: str, options: Mapping[str, Any], accepted: Iterable[str]) -> None:
    accepted = tuple(accepted)
    for name in options:
        if name not in accepted:
            raise TypeError(
                f"Cache.from_url({redact_url(url)!r}): unexpected keyword argument {name!r}; "
                f"this store accepts {', '.join(accepted)}, besides the arguments of Cache"
            )


def _open_memory(url: str, **options: Any) -> Store:
    from asgi_cache.stores.memory import MemoryStore

    _check_options(url, options, MEMORY_OPTIONS)
    return MemoryStore(**options)


def _open_redis(url: str, **options: Any) -> Store:
    from asgi_cache.stores.redis import RedisStore

    _check_options(url, options, REDIS_OPTIONS)
    return RedisStore.from_url(url, **options)


_openers: dict[str, Opener] = {
    "memory": _open_memory,
    "redis": _open_redis,
    "rediss": _open_redis,
    "unix": _open_redis,
}


def register_scheme(scheme: str, opener: Opener) -> None:
    """Make :func:`open_url` (and so ``Cache.from_url``) open ``scheme://...`` URLs with
    ``opener(url)``.

    Schemes are case-insensitive; registering one again replaces its opener, built-ins
    included (to open ``redis://`` with other options, say).  A malformed scheme raises
    ``ValueError`` and an opener that is not callable ``TypeError``, here rather than when
    the first URL is opened.
    """
    if not isinstance(scheme, str) or not _SCHEME.match(scheme):
        raise ValueError(
            f"register_scheme: {scheme!r} is not a URL scheme: it must start with a letter "
            f"and hold only letters, digits, '+', '-' and '.' (give 'redis', not 'redis://')"
        )
    if not callable(opener):
        raise TypeError(
            f"register_scheme: the opener for {scheme!r} must be callable as opener(url) -> "
            f"Store, not {opener!r}"
        )
    _openers[scheme.lower()] = opener


def open_url(url: str, **options: Any) -> Store:
    """Open the store ``url`` names, with the opener registered for its scheme.

    ``options`` (a password, a timeout...) go to the opener as keyword arguments; the
    built-in openers refuse one they do not know with a ``TypeError`` listing those they
    accept.  An unknown scheme raises ``ValueError`` naming it, the URL (without its
    password) and the known schemes; an opener that returns something other than a
    :class:`Store` raises ``TypeError``.
    """
    if not isinstance(url, str):
        raise TypeError(f"a store URL must be a str, got {type(url).__qualname__}")
    scheme = url.partition("://")[0].lower()
    opener = _openers.get(scheme)
    if opener is None:
        raise ValueError(
            f"unsupported URL scheme {scheme!r} in {redact_url(url)!r}; known schemes: "
            f"{', '.join(sorted(_openers))} (a store adds its own with register_scheme)"
        )
    store = opener(url, **options) if options else opener(url)
    if not isinstance(store, Store):
        raise TypeError(f"the opener for {scheme!r} returned {store!r}, not a Store")
    return store
