"""The ``Cache-Status`` response header (RFC 9211): its one vocabulary.

Every response of a cached route says what the cache did with it, as one
list member for this cache::

    asgi-cache; hit; ttl=42
    asgi-cache; hit; ttl=-5; detail=stale-while-revalidate
    asgi-cache; hit; ttl=-30; detail=max-stale
    asgi-cache; fwd=uri-miss; stored
    asgi-cache; fwd=uri-miss; collapsed
    asgi-cache; fwd=stale; fwd-status=304; stored
    asgi-cache; fwd=uri-miss; detail=set-cookie
    asgi-cache; fwd=stale; stored
    asgi-cache; fwd=stale; fwd-status=503; ttl=-20; detail=stale-if-error
    asgi-cache; fwd=request; stored
    asgi-cache; fwd=bypass; detail=authorization
    asgi-cache; fwd=bypass; detail=disabled  (``Cache(enabled=False)``, ``cache.disabled()``)
    asgi-cache; detail=only-if-cached
    asgi-cache; hit; ttl=42; key="shop:v1:page:5f0c..."  (``Cache(cache_status_key=True)``)

The header name, the forward reasons (§2.2), the details (§2.8) and the way the
value is added to a response start live here only: the middleware, the
responder, the counters and the tests all use these names.  The values a
request can get are few, so each is built once and kept as bytes.
"""

from __future__ import annotations

import enum
import functools
import re
from typing import NamedTuple

from starlette.types import Message

__all__ = [
    "CACHE_STATUS",
    "CacheStatus",
    "Detail",
    "Forward",
    "forwarded",
    "hit",
    "parse",
    "stood_in",
    "unanswered",
    "with_key",
    "with_status",
]

#: The response header's name, as ASGI spells it (lower case).
CACHE_STATUS = b"cache-status"
#: The cache's name in the header: the first item of its list member.
NAME = "asgi-cache"


class Forward(str, enum.Enum):
    """Why the request went to the application (RFC 9211 §2.2 ``fwd``).

    All the values §2.2 defines, so that :func:`parse` reads any of them; this
    cache sends ``uri-miss``, ``stale``, ``request`` and ``bypass``.
    """

    #: nothing stored for this key
    URI_MISS = "uri-miss"
    #: §2.2: a stored response for the URI, none for the request's varying headers
    VARY_MISS = "vary-miss"
    #: §2.2: nothing usable, when uri-miss and vary-miss cannot be told apart
    MISS = "miss"
    #: an entry was stored, but too stale to use; validated with the application
    #: when it has a validator (RFC 9111 §4.3.1), ``fwd-status`` saying its answer
    STALE = "stale"
    #: §2.2: a stored response could serve part of the request (ranges)
    PARTIAL = "partial"
    #: the cache was not consulted (credentials, a failing store, ...)
    BYPASS = "bypass"
    #: §2.2: the method is not one the cache handles
    METHOD = "method"
    #: the client's request directives ruled the entry out (``honor_request_cache_control``)
    REQUEST = "request"


class Detail(str, enum.Enum):
    """Why a response was not stored or not looked up, or why stale was served.

    A request bypassed for carrying a credential header gets that header's
    name as its detail instead (``authorization``, ``cookie`` or whatever
    ``credential_headers`` lists), so these are not all the details there are.
    """

    # The response could not be stored (RFC 9111 §3).
    STATUS = "status"
    SET_COOKIE = "set-cookie"
    NO_STORE = "no-store"
    PRIVATE = "private"
    NO_CACHE = "no-cache"
    VARY = "vary"
    TOO_LARGE = "too-large"
    CONTENT_ENCODING = "content-encoding"
    HEAD = "head"
    NOT_STORED = "not-stored"
    # The cache was not consulted.
    KEY_ERROR = "key-error"
    STORE_UNAVAILABLE = "store-unavailable"
    REQUEST_NO_STORE = "request-no-store"
    INVALIDATION_PENDING = "invalidation-pending"
    PRECONDITION = "precondition"  # If-Match & co.: the application evaluates them
    DISABLED = "disabled"  # Cache(enabled=False), cache.disabled()
    # The client forbade going to the application and nothing stored answers (504).
    ONLY_IF_CACHED = "only-if-cached"
    # A stale entry was served (RFC 5861, or the request's max-stale).
    STALE_WHILE_REVALIDATE = "stale-while-revalidate"
    STALE_IF_ERROR = "stale-if-error"
    MAX_STALE = "max-stale"


def hit(ttl: float, detail: Detail | None = None) -> bytes:
    """A hit with ``ttl`` seconds of freshness left (negative: expired that long ago).

    RFC 9211 §2.5: ``ttl`` may be negative for a stale response.
    """
    if detail is None:
        return b"asgi-cache; hit; ttl=%d" % ttl
    return b"asgi-cache; hit; ttl=%d; detail=%s" % (ttl, detail.value.encode())


def stood_in(ttl: float, fwd_status: int) -> bytes:
    """A stale entry answered for an application that failed (``stale-if-error``).

    The request did go forward, for a stale entry (§2.2 ``fwd=stale``); the
    application's answer, which the client never sees, is ``fwd-status``
    (§2.3): its 5xx, or the 500 / 504 a server would have sent for an
    exception / for not answering within ``origin_timeout``.
    """
    return b"asgi-cache; fwd=stale; fwd-status=%d; ttl=%d; detail=stale-if-error" % (
        fwd_status,
        ttl,
    )


def unanswered(detail: Detail) -> bytes:
    """A response the cache made itself, neither from an entry nor forwarded (the 504
    answering ``only-if-cached``): no ``hit``, no ``fwd``, only why."""
    return b"asgi-cache; detail=%s" % detail.value.encode()


def with_key(value: bytes, key: str) -> bytes:
    """``value`` with the entry's cache key (RFC 9211 §2.7 ``key``, a String).

    The key is printable ASCII (a checked prefix, then hex digits), so it only
    needs ``\\`` and ``"`` escaped (RFC 8941 §3.3.3).
    """
    quoted = key.replace("\\", "\\\\").replace('"', '\\"')
    return b'%s; key="%s"' % (value, quoted.encode("ascii"))


@functools.cache
def forwarded(
    fwd: Forward,
    detail: Detail | str | None = None,
    *,
    stored: bool = False,
    collapsed: bool = False,
    fwd_status: int | None = None,
) -> bytes:
    """A response that went to the application (or waited for one that did).

    ``stored``: it was stored (§2.7); ``collapsed``: it was answered from a
    concurrent request's response (§2.6); ``fwd_status``: the status the
    application answered the forwarded request with (§2.3), given when it can
    differ from the client's (a validation's 304).  Memoised: the
    combinations are few (credential details are header names from the
    configuration).
    """
    value = f"{NAME}; fwd={fwd.value}"
    if fwd_status is not None:
        value += f"; fwd-status={fwd_status}"
    if stored:
        value += "; stored"
    if collapsed:
        value += "; collapsed"
    if detail is not None:
        value += f"; detail={detail.value if isinstance(detail, Detail) else detail}"
    return value.encode("latin-1")


def with_status(message: Message, value: bytes) -> Message:
    """A copy of the response start ``message`` with ``Cache-Status: value`` added."""
    return {**message, "headers": [*message.get("headers", ()), (CACHE_STATUS, value)]}


class CacheStatus(NamedTuple):
    """This cache's member of a ``Cache-Status`` value, parsed (for tests and tools)."""

    hit: bool
    fwd: Forward | None
    stored: bool
    collapsed: bool
    ttl: int | None
    detail: str | None
    fwd_status: int | None = None
    key: str | None = None


def parse(value: str | bytes) -> CacheStatus | None:
    """This cache's member of a ``Cache-Status`` field value, or ``None`` without one.

    Members of other caches (a CDN's, listed after ours) are skipped: RFC 9211
    §2 lists one member per cache, the origin's nearest first.
    """
    text = value.decode("latin-1") if isinstance(value, bytes) else value
    for member in _QUOTED.sub(_hide_separators, text).split(","):
        name, *params = (item.strip() for item in member.split(";"))
        if name != NAME:
            continue
        fields: dict[str, str] = {}
        for param in params:
            field, _, raw = param.partition("=")
            fields[field] = raw
        fwd = fields.get("fwd")
        ttl = fields.get("ttl")
        fwd_status = fields.get("fwd-status")
        cache_key = fields.get("key")
        return CacheStatus(
            hit="hit" in fields,
            fwd=Forward(fwd) if fwd is not None else None,
            stored="stored" in fields,
            collapsed="collapsed" in fields,
            ttl=int(ttl) if ttl is not None else None,
            detail=fields.get("detail"),
            fwd_status=int(fwd_status) if fwd_status is not None else None,
            key=_unquoted(cache_key) if cache_key is not None else None,
        )
    return None


_QUOTED = re.compile(r'"(?:[^"\\]|\\.)*"')


def _hide_separators(match: re.Match[str]) -> str:
    """A quoted string with its ``,`` and ``;`` as NUL and SOH, which no field value
    holds (RFC 9110 §5.5), so that splitting on them skips it."""
    return match.group(0).replace(",", "\0").replace(";", "\1")


def _unquoted(raw: str) -> str:
    """An RFC 8941 String's content (or a token as is), after :func:`_hide_separators`."""
    raw = raw.replace("\0", ",").replace("\1", ";")
    if raw[:1] != '"':
        return raw
    return re.sub(r"\\(.)", r"\1", raw[1:-1])
