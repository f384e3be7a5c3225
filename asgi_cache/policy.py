"""HTTP caching rules as pure functions: no I/O, time passed in.

Each function names the section of RFC 9111 (HTTP Caching) it implements.  The
cache is a *shared* cache acting for the origin (a gateway cache), so it obeys
the directives that forbid storing, while the freshness lifetime of an entry is
what the route's marker says, falling back on the response's own directives,
``Expires`` and a heuristic.  Those directives are read from the headers as
:func:`asgi_cache.targeted.cache_view` gives them (RFC 9213).
"""

from __future__ import annotations

import enum
import math
from collections.abc import Collection
from typing import NamedTuple

from asgi_cache.conditional import is_not_modified
from asgi_cache.dates import field_date
from asgi_cache.entry import Entry
from asgi_cache.headers import parse_cache_control, parse_vary
from asgi_cache.revalidation import body_etag, validators
from asgi_cache.status import Detail

__all__ = [
    "DEFAULT_STATUSES",
    "HEURISTIC_FRACTION",
    "HEURISTIC_STATUSES",
    "NEVER_STORED",
    "UNDERSTOOD_STATUSES",
    "UNSAFE_METHODS",
    "RequestDirectives",
    "Requested",
    "Reuse",
    "age_value",
    "coding_refused",
    "entry_times",
    "freshness_lifetime",
    "initial_age",
    "is_error",
    "not_modified",
    "request_directive",
    "requested",
    "retention",
    "reuse",
    "stale_windows",
    "unstorable_reason",
    "with_etag",
]

#: Statuses stored unless a route says otherwise: those RFC 9110 §15.1 calls
#: heuristically cacheable, minus 206 (ranges are not assembled here) and 405
#: and 414 and 501 (answers about the request, not the resource).  5xx never.
DEFAULT_STATUSES = frozenset({200, 203, 204, 300, 301, 308, 404, 410})

#: RFC 9110 §15.1: the statuses a cache may give a heuristic lifetime.
HEURISTIC_STATUSES = frozenset({200, 203, 204, 206, 300, 301, 308, 404, 405, 410, 414, 501})

#: Never stored, whatever a configuration says: a 206 is part of a response
#: (RFC 9111 §3.3: this cache does not combine ranges) and a 304 has no body
#: of its own (§4.3.4 updates a stored response with it instead).
NEVER_STORED = frozenset({206, 304})

#: RFC 9111 §5.2.2.3: the statuses whose caching requirements this cache
#: understands: the final statuses RFC 9110 §15 defines, but 206 and 304.
UNDERSTOOD_STATUSES = frozenset(
    {200, 201, 202, 203, 204, 205, 300, 301, 302, 303, 305, 307, 308}
    | set(range(400, 418))
    | {421, 422, 426}
)

#: RFC 9111 §4.2.2: the fraction of the time since ``Last-Modified`` taken
#: as a heuristic lifetime ("a typical setting of this fraction might be 10%").
HEURISTIC_FRACTION = 0.1

#: The unsafe methods RFC 9110 §9.2.1 names: a route without a method list is
#: compiled as a write route for each.  Any method but the safe ones invalidates
#: (see :mod:`asgi_cache.invalidation`).
UNSAFE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})

Headers = list[tuple[bytes, bytes]]

#: RFC 9111 §1.2.2: a delta-seconds too large to hold is taken as 2**31.
MAX_LIFETIME = 2.0**31


#: The response directives that forbid a shared cache to store, by name, in the
#: order checked; ``must-understand`` lifts the first (RFC 9111 §5.2.2.3).
_FORBIDDING: tuple[tuple[str, Detail], ...] = (
    ("no-store", Detail.NO_STORE),
    ("private", Detail.PRIVATE),
)


def unstorable_reason(
    status: int,
    headers: Headers,
    statuses: Collection[int],
) -> Detail | None:
    """Why this response must not be stored, or ``None`` when it may be.

    RFC 9111 §3: a shared cache must not store a response with ``no-store`` or
    ``private`` (§5.2.2.5, §5.2.2.7).  ``no-cache`` (§5.2.2.4) is no reason:
    such a response is stored and validated on every reuse (see
    :mod:`asgi_cache.revalidation`).  ``Set-Cookie`` is never replayed to
    other clients.  ``Vary: *`` never matches (§4.1); a ``Vary`` naming
    headers is stored per variant (see :mod:`asgi_cache.variants`).
    ``must-understand`` (§5.2.2.3) limits storing to the statuses this cache
    understands (:data:`UNDERSTOOD_STATUSES`), and then lets it ignore
    ``no-store``.
    """
    if status not in statuses or status >= 500 or status in NEVER_STORED:
        return Detail.STATUS
    cache_control: list[bytes] = []
    vary: list[bytes] = []
    for name, value in headers:
        name = name.lower()
        if name == b"set-cookie":
            return Detail.SET_COOKIE
        if name == b"cache-control":
            cache_control.append(value)
        elif name == b"vary":
            vary.append(value)
    if cache_control:
        directives = parse_cache_control(cache_control)
        forbidding = _FORBIDDING
        if "must-understand" in directives:
            if status not in UNDERSTOOD_STATUSES:
                return Detail.STATUS
            forbidding = forbidding[1:]
        for forbidden, directive in forbidding:
            if forbidden in directives:
                return directive
    if vary and "*" in parse_vary(vary):
        return Detail.VARY
    return None


def freshness_lifetime(
    ttl: float | None,
    headers: Headers,
    default_ttl: float | None,
    *,
    status: int = 200,
    received_at: float | None = None,
) -> float:
    """Seconds a response is fresh, counted from its age zero (RFC 9111 §4.2.1).

    An explicit route ``ttl`` wins: the application's author configured this
    cache.  Otherwise the first of:

    - ``s-maxage``, then ``max-age`` (§5.2.2.10, §5.2.2.1); a value that is not
      plain digits makes the response stale (§1.2.2, §4.2.1);
    - ``Expires`` minus ``Date`` (§5.3), ``Date`` being the time received
      (``received_at``) when the response has no valid one (RFC 9110 §6.6.1).
      An ``Expires`` that is not one valid HTTP-date means already expired;
      without ``received_at`` and a ``Date`` it gives no lifetime either;
    - a heuristic lifetime (§4.2.2), unless ``default_ttl`` is ``None``
      (heuristic freshness off), only for a status heuristically cacheable
      (RFC 9110 §15.1) or a ``public`` response: 10% of the time between
      ``Last-Modified`` and ``Date`` (or the time received) capped at
      ``default_ttl``, or ``default_ttl`` itself without a valid
      ``Last-Modified``.  A ``Last-Modified`` later than ``Date`` says the
      resource is changing now: no lifetime.

    0 means stale: not worth storing without a stale window.
    """
    if ttl is not None:
        return ttl
    values = [value for name, value in headers if name.lower() == b"cache-control"]
    directives = parse_cache_control(values) if values else {}
    for name in ("s-maxage", "max-age"):
        raw = directives.get(name)
        if raw is not None:
            # RFC 9111 §1.2.2: delta-seconds is plain digits; anything else
            # is invalid and §4.2.1 treats the response as stale.
            if not (raw.isascii() and raw.isdigit()):
                return 0.0
            return min(float(raw), MAX_LIFETIME)
    now = 0.0 if received_at is None else received_at
    if any(name.lower() == b"expires" for name, _ in headers):
        expires = field_date(headers, b"expires", now)
        date = field_date(headers, b"date", now)
        if date is None:
            date = received_at
        if expires is None or date is None:
            return 0.0
        return min(max(0.0, expires - date), MAX_LIFETIME)
    if default_ttl is None or (status not in HEURISTIC_STATUSES and "public" not in directives):
        return 0.0
    last_modified = field_date(headers, b"last-modified", now)
    if last_modified is None:
        return default_ttl
    date = field_date(headers, b"date", now)
    if date is None:
        if received_at is None:
            return default_ttl
        date = received_at
    return min(max(0.0, date - last_modified) * HEURISTIC_FRACTION, default_ttl)


def age_value(headers: Headers) -> float:
    """The ``Age`` a response arrived with, in seconds (RFC 9111 §5.1).

    A list-based value counts by its first member; a value that is not a
    non-negative integer (letters, a sign, a decimal, a space inside) is
    ignored, i.e. 0; one too large to hold is 2**31 (§1.2.2).
    """
    for name, value in headers:
        if name.lower() == b"age":
            for member in value.split(b","):
                member = member.strip(b" \t")
                if member:
                    if not (member.isascii() and member.isdigit()):
                        return 0.0
                    return min(float(member), MAX_LIFETIME)
    return 0.0


def initial_age(headers: Headers, requested_at: float, received_at: float) -> float:
    """``corrected_initial_age`` of a response (RFC 9111 §4.2.3), in seconds.

    The larger of its apparent age (time received minus a valid ``Date``) and
    its ``Age`` plus the time the application took to answer
    (``received_at - requested_at``).  An entry's age on a hit is this plus
    the time it was resident.
    """
    date = field_date(headers, b"date", received_at)
    apparent_age = 0.0 if date is None else max(0.0, received_at - date)
    corrected_age_value = age_value(headers) + max(0.0, received_at - requested_at)
    return min(max(apparent_age, corrected_age_value), MAX_LIFETIME)


def entry_times(
    ttl: float | None,
    headers: Headers,
    default_ttl: float | None,
    *,
    status: int,
    requested_at: float,
    received_at: float,
) -> tuple[float, float]:
    """``(stored_at, fresh_for)`` of the entry of a response received at ``received_at``.

    ``stored_at`` is when the response's age was zero: ``received_at`` minus
    its :func:`initial_age` (RFC 9111 §4.2.3), so its current age at any time
    is that time minus ``stored_at`` (initial age plus resident time), which
    is what a hit sends as ``Age``; ``fresh_for`` is its
    :func:`freshness_lifetime`, fresh while the current age is below it
    (§4.2).  A route ``ttl`` counts from receipt instead: the application's
    author asked this cache to serve it that long, whatever age it came with.
    """
    age = initial_age(headers, requested_at, received_at)
    lifetime = freshness_lifetime(ttl, headers, default_ttl, status=status, received_at=received_at)
    if ttl is not None:
        lifetime = min(lifetime + age, MAX_LIFETIME)
    return received_at - age, lifetime


def retention(entry: Entry, now: float, validation_window: float = 0.0) -> float:
    """Seconds the store keeps ``entry`` from ``now``: until it is too stale to use.

    Past its lifetime and its longest stale window (RFC 5861) nothing can be
    answered with it; 0 or less means it is not worth storing at all (stale
    on arrival, RFC 9111 §4.2.3, with no window to serve it in).  An entry
    with a validator of the application's can still be renewed by a
    conditional request (§4.3.1) for ``validation_window`` seconds past its
    lifetime (the caller gives its freshness lifetime: an entry is worth
    keeping for validation about as long as it was worth keeping fresh).
    """
    window = max(entry.stale_while_revalidate, entry.stale_if_error, validation_window)
    return entry.stored_at + entry.fresh_for + window - now


def stale_windows(
    stale_while_revalidate: float | None,
    stale_if_error: float | None,
    headers: Headers,
    defaults: tuple[float, float],
    *,
    ttl: float | None = None,
) -> tuple[float, float]:
    """Seconds after expiry a stale entry may be served: (while revalidating, on error).

    RFC 5861 §3 and §4: the route's own setting wins, then the response's
    ``stale-while-revalidate`` / ``stale-if-error`` directives, then the
    cache's defaults.  The defaults do not apply to a response that forbids
    serving it stale unvalidated (RFC 9111 §4.2.4): one with ``no-cache``
    (§5.2.2.4), ``must-revalidate`` or ``proxy-revalidate`` (§5.2.2.2,
    §5.2.2.8), or whose lifetime comes from ``s-maxage`` (§5.2.2.10: it
    implies ``proxy-revalidate``), i.e. without a route ``ttl``.  The route's setting
    and the response's own directives still count: §4.2.4 lets the origin
    permit stale responses explicitly, and the route is the origin's.
    """
    if stale_while_revalidate is not None and stale_if_error is not None:
        return stale_while_revalidate, stale_if_error
    values = [value for name, value in headers if name.lower() == b"cache-control"]
    directives = parse_cache_control(values) if values else {}
    if (
        "no-cache" in directives
        or "must-revalidate" in directives
        or "proxy-revalidate" in directives
        or (ttl is None and "s-maxage" in directives)
    ):
        defaults = (0.0, 0.0)
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


class RequestDirectives(NamedTuple):
    """A client's request directives (RFC 9111 §5.2.1), parsed once per request.

    Seconds are ``None`` when the directive is absent or its value is not
    delta-seconds (§1.2.2: plain digits; anything else is ignored).  A bare
    ``max-stale`` accepts any staleness: ``math.inf``.
    """

    no_store: bool = False  #: §5.2.1.5: do not store the response to this request
    no_cache: bool = False  #: §5.2.1.4: do not answer from the cache without validation
    only_if_cached: bool = False  #: §5.2.1.7: answer from the cache or with 504
    max_age: float | None = None  #: §5.2.1.1: no entry older than this
    max_stale: float | None = None  #: §5.2.1.2: a stale entry up to this far past expiry
    min_fresh: float | None = None  #: §5.2.1.3: only an entry fresh this much longer


def _delta_seconds(raw: str | None) -> float | None:
    """RFC 9111 §1.2.2: delta-seconds, capped at 2**31; ``None`` when absent or invalid."""
    if raw is None or not (raw.isascii() and raw.isdigit()):
        return None
    return min(float(raw), MAX_LIFETIME)


def request_directive(
    cache_control: list[bytes] | None, pragma: list[bytes] | None
) -> RequestDirectives | None:
    """A client's request directives, or ``None`` when it sent none that count.

    Only consulted when the cache is configured to honour them (RFC 9111
    §5.2.1); ``Pragma: no-cache`` counts as ``Cache-Control: no-cache`` only
    without ``Cache-Control`` (§5.4).  Unknown directives are ignored (§5.2.3).
    """
    if cache_control:
        found = parse_cache_control(cache_control)
        max_stale = found.get("max-stale")
        directives = RequestDirectives(
            no_store="no-store" in found,
            no_cache="no-cache" in found,
            only_if_cached="only-if-cached" in found,
            max_age=_delta_seconds(found.get("max-age")),
            max_stale=math.inf if max_stale == "" else _delta_seconds(max_stale),
            min_fresh=_delta_seconds(found.get("min-fresh")),
        )
        return None if directives == _NONE else directives
    if pragma and any(b"no-cache" in value.lower() for value in pragma):
        return _PRAGMA_NO_CACHE
    return None


_NONE = RequestDirectives()
_PRAGMA_NO_CACHE = RequestDirectives(no_cache=True)


class Requested(enum.Enum):
    """What a request's directives make of a stored entry (RFC 9111 §5.2.1)."""

    #: The cache's own decision (:func:`reuse`) stands.
    AS_IS = "as-is"
    #: §5.2.1.2 ``max-stale``: answer with the stale entry as it is.
    STALE = "stale"
    #: §5.2.1.1 ``max-age`` or §5.2.1.3 ``min-fresh`` rule the entry out.
    REFUSED = "refused"


def requested(directives: RequestDirectives, entry: Entry, usable: Reuse, now: float) -> Requested:
    """How the request's ``directives`` change what ``entry`` (``usable`` for the cache) may do.

    §5.2.1.1: an entry older than ``max-age`` is refused; §5.2.1.3: so is one
    fresh for less than ``min-fresh`` more seconds (a stale one always is).
    §5.2.1.2: a stale entry no further past expiry than ``max-stale`` may be
    answered with (one the cache would serve stale anyway, under
    ``stale-while-revalidate``, keeps its background refresh).  §5.2.1.4:
    ``no-cache`` refuses any entry as it is (it may still be validated);
    ``no-store`` concerns storing only.
    """
    if directives.no_cache:
        return Requested.REFUSED
    age = entry.age(now)
    left = entry.fresh_for - age
    if directives.max_age is not None and age > directives.max_age:
        return Requested.REFUSED
    if directives.min_fresh is not None and left < directives.min_fresh:
        return Requested.REFUSED
    if usable is Reuse.FRESH or usable is Reuse.STALE_WHILE_REVALIDATE:
        return Requested.AS_IS
    if directives.max_stale is not None and -left <= directives.max_stale:
        return Requested.STALE
    return Requested.AS_IS


class Reuse(enum.Enum):
    """What a stored entry may be used for, now (RFC 9111 §4, RFC 5861)."""

    #: §4.2: fresh, answer with it.
    FRESH = "fresh"
    #: RFC 5861 §3: stale but within ``stale-while-revalidate``: answer with it
    #: at once and refresh it in the background.
    STALE_WHILE_REVALIDATE = "stale-while-revalidate"
    #: RFC 5861 §4: stale but within ``stale-if-error``: ask the application,
    #: and answer with the entry if the application fails.
    STALE_IF_ERROR = "stale-if-error"
    #: §4.3: not reusable as it is, but it has a validator: ask the application
    #: with a conditional request, and answer with the entry on a 304.
    REVALIDATE = "revalidate"
    #: §5.2.1.2: stale, but the request's ``max-stale`` accepts it as it is.
    MAX_STALE = "max-stale"
    #: §4: nothing to answer with: forward to the application.
    UNUSABLE = "unusable"


def reuse(entry: Entry, now: float) -> Reuse:
    """How the stored ``entry`` may be used at time ``now``.

    §4.2: an entry is fresh while its age is below its freshness lifetime;
    past it, the RFC 5861 windows count from the moment it expired.  The age
    never goes below zero (§4.2.3), whatever the skew between the clocks of
    the process that stored the entry and this one.

    Past them, validation is required (§4.2.4, §4.3): a stale entry with no
    usable stale window, and a ``no-cache`` one at every reuse (§5.2.2.4: it is
    stored fresh for no time).  ``no-cache``, ``must-revalidate`` and
    ``proxy-revalidate`` (§5.2.2.2, §5.2.2.8) took the cache's default windows
    away when it was stored (:func:`stale_windows`).  Only an entry with a
    validator of the application's can be validated; any other is unusable.
    The fresh case costs one subtraction and one comparison: it is every hit.
    """
    age = now - entry.stored_at
    if age < entry.fresh_for:
        return Reuse.FRESH
    stale_for = max(0.0, age) - entry.fresh_for
    if stale_for < entry.stale_while_revalidate:
        return Reuse.STALE_WHILE_REVALIDATE
    if stale_for < entry.stale_if_error:
        return Reuse.STALE_IF_ERROR
    if validators(entry.headers, entry.body):
        return Reuse.REVALIDATE
    return Reuse.UNUSABLE


def is_error(status: int) -> bool:
    """Whether a response status is an error a ``stale-if-error`` entry stands in for.

    RFC 5861 §4 names 500, 502, 503 and 504; any 5xx says the origin failed.
    """
    return status >= 500


#: RFC 9110 §15.4.5: the fields a 304 carries over from the full response.
NOT_MODIFIED_FIELDS = frozenset(
    {b"cache-control", b"content-location", b"date", b"etag", b"expires", b"vary"}
)


def not_modified(
    headers: Headers,
    if_none_match: bytes | None,
    if_modified_since: bytes | None = None,
    *,
    status: int = 200,
    stored_at: float = 0.0,
    now: float = 0.0,
) -> Headers | None:
    """The headers of a ``304`` answering the request's conditions, or ``None`` to send it all.

    RFC 9110 §13.1.2 and §13.1.3, in the order of §13.2.2 (see
    :func:`asgi_cache.conditional.is_not_modified`): a GET or HEAD whose
    ``If-None-Match`` matches the stored entity tag, or whose
    ``If-Modified-Since`` is not older than the stored response, is answered
    ``304 Not Modified``; §15.4.5: with only the fields that describe the
    selected representation.
    """
    if not is_not_modified(status, headers, stored_at, if_none_match, if_modified_since, now):
        return None
    return [(name, value) for name, value in headers if name in NOT_MODIFIED_FIELDS]


def coding_refused(headers: Headers, codings: bytes) -> bool:
    """Whether the body is in a content coding the key says the client does not accept.

    RFC 9110 §12.5.3: a coding the request's ``Accept-Encoding`` does not list
    is not acceptable to it.  The key holds only the accepted *known* codings
    (``codings``, comma-separated); a compressor that encodes anyway
    (Starlette's gzip ignores ``q=0``) must not fill the entry that clients
    without that coding share.
    """
    accepted = codings.split(b",")
    for name, value in headers:
        if name.lower() == b"content-encoding":
            for coding in value.lower().split(b","):
                coding = coding.strip()
                if coding != b"identity" and coding not in accepted:
                    return True
    return False


def with_etag(headers: Headers, body: bytes) -> Headers:
    """``headers`` with a strong ``ETag`` (a digest of the body) unless they have one.

    RFC 9110 §8.8.3: a strong validator changes with every change of the
    representation's bytes, which a digest of the body does; it lets clients
    revalidate a stored response with ``If-None-Match``.  An application's own
    ``ETag`` is kept as it is.
    """
    if any(name.lower() == b"etag" for name, _ in headers):
        return headers
    return [*headers, (b"etag", body_etag(body))]
