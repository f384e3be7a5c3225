"""Variants: which request headers select a stored response (RFC 9111 §4.1).

A stored response may only be reused for a request whose headers named by the
response's ``Vary`` match those of the request it answered.  Pure functions,
no I/O, on raw header lists:

* what the cache itself keys on (the route's and the cache's ``vary``, the
  accepted content codings, the credential headers that decide a bypass) is
  named in the ``Vary`` the client and any cache downstream receive
  (:func:`with_vary`), so no CDN serves one user's or one language's page to
  everyone;
* a route keyed by a ``key=`` callable selects its variant by something no
  header names: its responses are marked ``private`` (:func:`with_private`)
  unless the route says ``shared=True``;
* headers the application's ``Vary`` names beyond the route's key select a
  variant stored under a secondary key (:func:`selecting_names`,
  :func:`normalised`); a body in a content coding is selected by
  ``Accept-Encoding`` even when its ``Vary`` forgets to say so (RFC 9110
  §12.5.3, §8.4).
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Sequence

from asgi_cache.headers import accepted_codings, is_token, parse_cache_control, parse_vary

__all__ = [
    "downstream",
    "normalised",
    "request_values",
    "selecting_names",
    "with_private",
    "with_vary",
]

Headers = list[tuple[bytes, bytes]]

#: List-valued request fields whose members are case-insensitive tokens or media
#: ranges (RFC 9110 §12.5.1, §12.5.4, and the obsolete Accept-Charset): their
#: whitespace and case carry no meaning.
_CASELESS_LISTS = frozenset({b"accept", b"accept-charset", b"accept-language"})


def downstream(
    headers: Headers, names: Sequence[bytes], selecting: Sequence[bytes], private: bool
) -> Headers:
    """A cached route's response as clients and caches downstream get it.

    Its ``Vary`` names the route's selecting headers (``names``) and those of
    its variant (``selecting``), see :func:`with_vary`; a ``private`` route's
    ``Cache-Control`` says so, see :func:`with_private`.
    """
    if selecting:
        names = sorted({*names, *selecting})
    headers = with_vary(headers, names)
    return with_private(headers) if private else headers


def with_vary(headers: Headers, names: Sequence[bytes]) -> Headers:
    """``headers`` whose ``Vary`` also lists ``names`` (lower-case field names).

    RFC 9111 §4.1: a response selected by request headers must say which, or a
    cache downstream reuses it for requests the origin would have answered
    differently.  The application's own ``Vary`` is kept and extended, names
    compared case-insensitively and never repeated; ``Vary: *`` (§4.1: never
    matches) already says everything and is left as it is.  Without a ``Vary``
    one is added.
    """
    if not names:
        return headers
    last = -1
    listed: set[str] = set()
    for index, (name, value) in enumerate(headers):
        if name.lower() == b"vary":
            last = index
            listed.update(parse_vary((value,)))
    if last < 0:  # the common case: no Vary of the application's own
        return [*headers, (b"vary", b", ".join(names))]
    if "*" in listed:
        return headers
    missing = [name for name in names if name.decode("latin-1") not in listed]
    if not missing:
        return headers
    added = b", ".join(missing)
    name, value = headers[last]
    joined = value + b", " + added if value.strip() else added
    return [*headers[:last], (name, joined), *headers[last + 1 :]]


def with_private(headers: Headers) -> Headers:
    """``headers`` whose cache-control fields forbid shared caches to store them.

    RFC 9111 §5.2.2.7: ``private`` lets the client's own cache keep the
    response but no shared one.  For a route keyed by a ``key=`` callable (a
    session, a claim of a token, a user id in a cookie) no ``Vary`` can name
    what selected the response, so a CDN must not reuse it.  The directive is
    added to the application's ``Cache-Control`` (after ``public``, which it
    overrides for shared caches), or makes one when there is none; and to
    every targeted field (RFC 9213 §2.2: ``CDN-Cache-Control`` and the like,
    which a CDN obeys *instead of* ``Cache-Control``).  A field that says
    ``no-store`` (§5.2.2.5) or ``private`` already is left as it is.
    """
    fields: dict[bytes, tuple[int, list[bytes]]] = {}
    for index, (name, value) in enumerate(headers):
        lower = name.lower()
        if lower == b"cache-control" or lower.endswith(b"-cache-control"):
            found = fields.get(lower)
            fields[lower] = (index, [*found[1], value] if found else [value])
    if b"cache-control" not in fields:
        headers = [*headers, (b"cache-control", b"private")]
    for last, values in fields.values():
        directives = parse_cache_control(values)
        if "no-store" in directives or ("private" in directives and not directives["private"]):
            continue
        name, value = headers[last]
        joined = value + b", private" if value.strip() else b"private"
        headers = [*headers[:last], (name, joined), *headers[last + 1 :]]
    return headers


def selecting_names(
    headers: Headers, keyed: Collection[str], selected: Iterable[bytes]
) -> tuple[bytes, ...] | None:
    """The request headers beyond the key that select this response, sorted.

    RFC 9111 §4.1: every header the response's ``Vary`` names that the route
    does not key on (``keyed``) selects a variant, and so does each of
    ``selected``, the names the stored vary record already lists for the URI
    (a variant stored under them must stay selected by them).  A body in a
    content coding (RFC 9110 §8.4) is acceptable only to requests whose
    ``Accept-Encoding`` allows it (§12.5.3): ``accept-encoding`` joins the
    names whatever ``Vary`` says, unless the key holds the codings already.

    ``None`` when a name is not a field name (a malformed ``Vary``): no request
    can be matched against it, so the response is treated like ``Vary: *``.
    """
    names = set(selected)
    coded = False
    for name, value in headers:
        lower = name.lower()
        if lower == b"vary":
            for field in parse_vary((value,)):
                if not is_token(field):
                    return None
                if field not in keyed:
                    names.add(field.encode("latin-1"))
        elif lower == b"content-encoding" and value.strip().lower() not in (b"", b"identity"):
            coded = True
    if coded and "accept-encoding" not in keyed:
        names.add(b"accept-encoding")
    return tuple(sorted(names))


def request_values(
    headers: Iterable[tuple[bytes, bytes]], names: Sequence[bytes]
) -> list[bytes | None]:
    """Per name of ``names``, the request's normalised value (``None``: absent).

    One pass over the request's headers; see :func:`normalised`.
    """
    found: dict[bytes, list[bytes]] = {}
    wanted = frozenset(names)
    for name, value in headers:
        lower = name.lower()
        if lower in wanted:
            found.setdefault(lower, []).append(value)
    return [normalised(name, found.get(name)) for name in names]


def normalised(name: bytes, values: list[bytes] | None) -> bytes | None:
    """The value of request field ``name`` as variant selection compares it.

    RFC 9111 §4.1: the field lines are combined and normalised "per the
    field's definition"; a field absent from one request matches only its
    absence.  What is normalised here:

    * ``Accept-Encoding``: the set of known content codings it accepts, as the
      key holds it (:func:`asgi_cache.headers.accepted_codings`: order, case,
      whitespace and non-zero weights make no difference; ``q=0`` refuses);
    * ``Accept``, ``Accept-Language``, ``Accept-Charset``: lower-cased, with
      the whitespace around list commas and parameter semicolons removed and
      empty list members dropped;
    * any other field: its lines joined with ``", "``, each stripped of the
      surrounding whitespace RFC 9110 §5.5 says is not part of the value; case
      and inner whitespace are kept, since the field's definition is unknown.
    """
    if values is None:
        return None
    if name == b"accept-encoding":
        return accepted_codings(b", ".join(values))
    if name in _CASELESS_LISTS:
        members = (
            b";".join(part.strip() for part in member.split(b";"))
            for line in values
            for member in line.lower().split(b",")
        )
        return b",".join(member for member in members if member)
    return b", ".join(value.strip() for value in values)
