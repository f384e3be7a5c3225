"""What of a response is stored: pure rules the responder carries out.

:func:`entry_for` makes the entry of a complete response and says how long
the store keeps it; :func:`validated` makes the fields of a stored entry that
a ``304`` validated (RFC 9111 §4.3.4).  Both take the route's settings as
compiled and ``now``, and do no I/O, so the responder only watches messages
and talks to the store.
"""

from __future__ import annotations

from asgi_cache.entry import Entry
from asgi_cache.policy import (
    entry_times,
    retention,
    stale_windows,
    unstorable_reason,
    with_etag,
)
from asgi_cache.revalidation import updated_headers, validated_at_every_reuse, validators
from asgi_cache.routes import ReadRoute
from asgi_cache.status import Detail
from asgi_cache.targeted import cache_view
from asgi_cache.variants import downstream

__all__ = ["entry_for", "route_headers", "validated"]

Headers = list[tuple[bytes, bytes]]


def entry_for(
    route: ReadRoute,
    status: int,
    received: Headers,
    body: bytes,
    *,
    requested_at: float,
    received_at: float,
    now: float,
) -> tuple[Entry, float] | Detail:
    """The entry to store for a response received with headers ``received`` and
    how long to keep it (RFC 9111 §4.2.1, §4.2.3; RFC 5861), or why it is not
    worth storing."""
    view = cache_view(received, route.targets)
    stored_at, lifetime = entry_times(
        route.ttl,
        view,
        route.default_ttl,
        status=status,
        requested_at=requested_at,
        received_at=received_at,
    )
    swr, sie = stale_windows(
        route.stale_while_revalidate,
        route.stale_if_error,
        view,
        route.stale_defaults,
        ttl=route.ttl,
    )
    # A hit sends its own Age (RFC 9111 §5.1): the one received is in stored_at.
    headers = [(n, v) for n, v in with_etag(received, body) if n.lower() != b"age"]
    every_reuse = validated_at_every_reuse(view)
    fresh_for = 0.0 if every_reuse else lifetime
    entry = Entry(status, headers, body, stored_at, fresh_for, swr, sie)
    validatable = bool(validators(headers, body))
    keep_for = retention(entry, now, lifetime if validatable else 0.0)
    if keep_for <= 0:
        # A no-cache response without a validator of the application's
        # could never be reused: it is not stored, as before revalidation.
        return Detail.NO_CACHE if every_reuse else Detail.NOT_STORED
    return entry, keep_for


def validated(
    route: ReadRoute, stored: Entry, not_modified: Headers, varied: tuple[bytes, ...]
) -> tuple[Headers, Detail | None]:
    """The fields of ``stored`` after its validation by ``not_modified`` (a 304's
    fields), and why the result may not be stored again, if so.

    RFC 9111 §4.3.4: the 304's fields replace the stored ones; whether the
    result may be stored is decided on the merged fields, with the stored
    status counted as storable (it was stored).
    """
    merged = updated_headers(stored.headers, not_modified)
    statuses = route.statuses | {stored.status}
    reason = unstorable_reason(stored.status, cache_view(merged, route.targets), statuses)
    if reason is Detail.PRIVATE and route.private:
        # The private this cache adds for caches downstream of a key= route
        # is in the stored fields: only the 304's own can forbid storing.
        own = cache_view(not_modified, route.targets)
        if unstorable_reason(stored.status, own, statuses) is not Detail.PRIVATE:
            reason = None
    headers = route_headers(route.cache_control, merged)
    return downstream(headers, route.vary_names, varied, route.private), reason


def route_headers(cache_control: bytes | None, headers: Headers) -> Headers:
    """``headers`` with the route's own ``Cache-Control`` instead of the application's."""
    if cache_control is None:
        return headers
    headers = [(n, v) for n, v in headers if n.lower() != b"cache-control"]
    headers.append((b"cache-control", cache_control))
    return headers
