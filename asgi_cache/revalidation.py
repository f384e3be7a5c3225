"""Revalidation: conditional requests to the application, and the 304s answering them.

Pure functions, no I/O (RFC 9111 §4.3).  A stored entry the cache may not
reuse as it is, but that carries a validator the application gave it (an
``ETag`` or a ``Last-Modified``), is not thrown away: the request goes to the
application with ``If-None-Match`` / ``If-Modified-Since`` added (§4.3.1), and
a ``304 Not Modified`` answer updates the stored headers (§4.3.4) so the stored
body is served and kept again without the application rendering it.

The ``ETag`` the cache generates itself (:func:`body_etag`, see
:func:`asgi_cache.policy.with_etag`) is not a validator of the application's:
it never reaches the application, which could not match it, and which could
then ignore an ``If-Modified-Since`` beside it (RFC 9110 §13.2.2).
"""

from __future__ import annotations

from hashlib import blake2b

from asgi_cache.headers import etag_matches, parse_cache_control

__all__ = [
    "body_etag",
    "conditional_headers",
    "selects",
    "updated_headers",
    "validated_at_every_reuse",
    "validators",
]

Headers = list[tuple[bytes, bytes]]

#: The request fields the cache sets when it validates (RFC 9111 §4.3.1).
_CONDITIONALS = frozenset({b"if-none-match", b"if-modified-since"})

#: Fields a 304 never replaces in the stored response (RFC 9111 §3.2): the
#: ``Content-Length`` of a body-less 304; the content metadata the stored bytes
#: depend on (``Content-Encoding``, ``Content-Range``, ``Transfer-Encoding``);
#: the hop-by-hop and proxy fields excepted from storage (§3.1);
#: ``Cache-Status``, which the cache writes itself on every answer.  The 304's
#: ``Age`` is taken: it counts in the updated entry's age (§4.2.3), and is
#: then dropped like any received ``Age``.
_NOT_UPDATED = frozenset(
    {
        b"content-length",
        b"content-encoding",
        b"content-range",
        b"transfer-encoding",
        b"connection",
        b"keep-alive",
        b"proxy-connection",
        b"te",
        b"trailer",
        b"upgrade",
        b"proxy-authenticate",
        b"proxy-authentication-info",
        b"proxy-authorization",
        b"cache-status",
    }
)


def body_etag(body: bytes) -> bytes:
    """The strong ``ETag`` the cache generates for a body: a digest of its bytes."""
    return b'"' + blake2b(body, digest_size=16).hexdigest().encode() + b'"'


def validators(headers: Headers, body: bytes) -> Headers:
    """The conditional request fields that validate a stored response (RFC 9111 §4.3.1).

    ``If-None-Match`` with the stored ``ETag`` (unless the cache generated
    it), ``If-Modified-Since`` with the stored ``Last-Modified``; empty when
    the application gave neither: such an entry is fetched anew instead.
    """
    found: Headers = []
    for name, value in headers:
        name = name.lower()
        if name == b"etag" and value != body_etag(body):
            found.append((b"if-none-match", value))
        elif name == b"last-modified":
            found.append((b"if-modified-since", value))
    return found


def conditional_headers(request: Headers, validating: Headers) -> Headers:
    """The request headers the application sees when the cache validates an entry.

    RFC 9111 §4.3.1: the client's request with the stored validators added.
    The client's own ``If-None-Match`` / ``If-Modified-Since`` are replaced,
    not forwarded or merged: a 304 must refer to the *stored* response, or
    the cache would have nothing to serve and store with it; the client's
    conditional is then evaluated against the validated entry (§4.3.2).
    """
    kept = [(name, value) for name, value in request if name.lower() not in _CONDITIONALS]
    return [*kept, *validating]


def selects(stored: Headers, not_modified: Headers) -> bool:
    """Whether a 304 is about the stored response (RFC 9111 §4.3.4).

    A 304 carrying an entity tag selects the stored response with the same
    one (weak comparison: the cache sent a single tag, its own); a 304
    without one selects the only response the cache sent validators for.
    """
    tag = next((value for name, value in not_modified if name.lower() == b"etag"), None)
    if tag is None:
        return True
    ours = next((value for name, value in stored if name.lower() == b"etag"), None)
    return ours is not None and etag_matches(ours, tag)


def updated_headers(stored: Headers, not_modified: Headers) -> Headers:
    """The stored headers updated from a 304 (RFC 9111 §4.3.4, §3.2).

    Every field the 304 carries replaces all stored fields of that name;
    fields it does not carry are kept, in their order; the fields listed in
    ``_NOT_UPDATED`` are never taken from it.
    """
    fresh = [(name.lower(), value) for name, value in not_modified]
    fresh = [(name, value) for name, value in fresh if name not in _NOT_UPDATED]
    replaced = {name for name, _ in fresh}
    kept = [(name, value) for name, value in stored if name.lower() not in replaced]
    return [*kept, *fresh]


def validated_at_every_reuse(headers: Headers) -> bool:
    """Whether the response says ``no-cache``: stored, but validated at every reuse.

    RFC 9111 §5.2.2.4: ``no-cache`` lets a cache store the response but not
    reuse it without a successful validation; the entry is stored fresh for
    no time.  ``no-cache="field"`` only forbids sending the named fields
    without validation; it is taken as the unqualified form, the stricter
    one, since this cache sends whole responses.  (``must-revalidate`` and
    ``proxy-revalidate`` only forbid serving it *stale* unvalidated:
    :func:`asgi_cache.policy.stale_windows`.)
    """
    values = [value for name, value in headers if name.lower() == b"cache-control"]
    return bool(values) and "no-cache" in parse_cache_control(values)
