"""Cache keys: every name the cache gives the store, spelled in one place.

Every key lives under the cache's prefix, so several apps or versions can
share one store and ``clear`` removes one cache's keys only::

    {prefix}:page:{32 hex digits}                   a stored response
    {prefix}:page:{32 hex digits}:lock              a miss being computed (coalescing)
    {prefix}:page:{32 hex digits}:vary:{32 hex}     one variant of a page whose Vary names
                                                    headers outside the key (the page key
                                                    then holds the vary record)
    {prefix}:tag:{tag}                              a tag (the store keeps its members)
    {prefix}:path:{path}                            the tag of a path's variants
    {prefix}:memo:{module}.{qualname}:{32 hex}      a memoized result (``:lock`` too)
    {prefix}:memo:{module}.{qualname}:{32 hex}:call the tag of that one result
    {prefix}:data:{key}                             a value set with ``Cache.set``

A page key is a digest over length-prefixed components (method class, root
path, path, canonical query string, the values of the key headers, the accepted
content codings and the route's custom key part), so no crafted path, query or
header value can make two different requests share a key.  A memo key digests
the function's bound arguments (see :mod:`asgi_cache.arguments`).  How a store
keeps a tag's members is the store's business (see
:mod:`asgi_cache.stores.redis`).
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Iterable, Sequence
from hashlib import blake2b
from operator import itemgetter
from typing import Any
from urllib.parse import unquote, unquote_to_bytes

from asgi_cache.arguments import argument_digest, function_name
from asgi_cache.headers import accepted_codings

__all__ = [
    "canonical_query",
    "data_key",
    "entry_key",
    "key_kind",
    "lock_key",
    "memo_call_key",
    "memo_call_tag",
    "memo_key",
    "memo_tag",
    "namespace",
    "page_key",
    "path_tag",
    "tag_key",
    "variant_key",
]

_ABSENT = b"\xff\xff\xff\xff"  # length marker of a header the request does not carry


def canonical_query(query: bytes) -> bytes:
    """The query string as the application reads it, parameters sorted by name.

    Parsed exactly as Starlette's ``QueryParams`` parses it (``urllib.parse.parse_qsl``
    with blank values kept): the raw bytes read as Latin-1, pairs split on ``&`` only
    (a ``;`` is an ordinary character), empty pairs dropped, a name without ``=`` an
    empty value, ``+`` a space, and each run of escapes decoded as UTF-8 (RFC 3986
    §2.1, §3.4).  Two requests get one key exactly when the application sees the same
    values under each name in the same order: ``%41`` is ``A``, ``+`` is ``%20``, a
    raw byte 0xFF (``ÿ``) is not ``%FF`` (U+FFFD), and ``?t=1&t=2`` is not
    ``?t=2&t=1``.  The sort is by decoded name and stable, so names that decode alike
    (``%FF`` and ``%FE``, both U+FFFD) keep their values in request order, and values
    that decode alike share the key (``q=%FF`` and ``q=%FE``: the application cannot
    tell them apart).
    Nothing here can fail on any input.
    """
    if not query:
        return b""
    pairs: list[tuple[str, str]] = []
    for part in query.decode("latin-1").split("&"):
        if part:
            name, _, value = part.partition("=")
            if "%" in part or "+" in part:
                pairs.append((_decoded(name), _decoded(value)))
            else:
                pairs.append((name, value))
    pairs.sort(key=_name)
    out: list[bytes] = []
    append = out.append
    for name, value in pairs:
        encoded = name.encode("utf-8", "surrogatepass")
        append(len(encoded).to_bytes(4, "big"))
        append(encoded)
        encoded = value.encode("utf-8", "surrogatepass")
        append(len(encoded).to_bytes(4, "big"))
        append(encoded)
    return b"".join(out)


_name = itemgetter(0)


def _decoded(raw: str) -> str:
    """``raw`` as ``urllib.parse.unquote_plus`` reads it (invalid UTF-8 becomes U+FFFD)."""
    if "+" in raw:
        raw = raw.replace("+", " ")
    if "%" not in raw:
        return raw
    if raw.isascii():  # one run of escapes: decode it without unquote's splitting
        return unquote_to_bytes(raw).decode("utf-8", "replace")
    return unquote(raw)


def entry_key(
    prefix: str, parts: Iterable[bytes], headers: Sequence[Sequence[bytes] | None]
) -> str:
    """Digest ``parts`` and the key headers' values into ``{prefix}:page:{hex}``.

    ``headers`` holds, per key header name (in the route's fixed order), the
    list of that field's values, or ``None`` when the request lacks it, so that
    an absent header and an empty one never share a key.
    """
    digest = blake2b(digest_size=16)
    update = digest.update
    for part in parts:
        update(len(part).to_bytes(4, "big"))
        update(part)
    for values in headers:
        if values is None:
            update(_ABSENT)
            continue
        update(len(values).to_bytes(4, "big"))
        for value in values:
            update(len(value).to_bytes(4, "big"))
            update(value)
    return f"{prefix}:page:{digest.hexdigest()}"


def page_key(
    prefix: str,
    path: str,
    query: bytes = b"",
    headers: Sequence[tuple[bytes, bytes]] = (),
    root_path: str = "",
) -> str:
    """The page key of a GET of ``path`` with ``query``, as the middleware computes it
    for a route keyed on exactly the names in ``headers`` (``vary=``, no ``key=``).

    Built from the same parts, in the same order, as :func:`asgi_cache.lookup.look_up`
    builds them: the key headers are the names sorted and lower-cased with each
    field's values in request order, and ``accept-encoding`` is keyed as the codings
    it accepts (RFC 9110 §12.5.3), not as a key header.  For operators and tools
    (``python -m asgi_cache inspect``); the hit path keys in one pass of its own.
    """
    fields: dict[bytes, list[bytes]] = {}
    for name, value in headers:
        fields.setdefault(name.lower(), []).append(value)
    coding_values = fields.pop(b"accept-encoding", None)
    # Like the hit path, the last Accept-Encoding line is the one keyed.
    codings = accepted_codings(coding_values[-1]) if coding_values else b""
    parts = (
        root_path.encode("utf-8", "surrogatepass"),
        path.encode("utf-8", "surrogatepass"),
        canonical_query(query),
        codings,
        b"",
    )
    return entry_key(prefix, parts, [fields[name] for name in sorted(fields)])


def key_kind(prefix: str, key: str) -> str | None:
    """What a store key of the cache with ``prefix`` holds, by the layout above:
    ``"page"``, ``"variant"``, ``"lock"``, ``"memo"``, ``"data"`` or ``"other"``
    (a tag's own keys, say); ``None`` for a key outside the prefix."""
    space = namespace(prefix)
    if not key.startswith(space):
        return None
    kind, _, rest = key[len(space) :].partition(":")
    if key.endswith(":lock"):
        return "lock"
    if kind == "page":
        return "variant" if ":vary:" in rest else "page"
    return kind if kind in ("memo", "data") else "other"


def variant_key(key: str, names: Sequence[bytes], values: Sequence[bytes | None]) -> str:
    """Where the variant of page ``key`` selected by ``names`` = ``values`` lives.

    ``{key}:vary:{32 hex digits}``: under the page key, so every prefix scan
    (``clear``) finds it, digesting the names with their normalised values
    length-prefixed (an absent header apart from an empty one), so no crafted
    header value can make two variants share a key.
    """
    digest = blake2b(digest_size=16)
    update = digest.update
    for name, value in zip(names, values, strict=True):
        update(len(name).to_bytes(4, "big"))
        update(name)
        if value is None:
            update(_ABSENT)
        else:
            update(len(value).to_bytes(4, "big"))
            update(value)
    return f"{key}:vary:{digest.hexdigest()}"


def tag_key(prefix: str, tag: str) -> str:
    """The store-level name of a user tag: ``{prefix}:tag:{tag}``."""
    return f"{prefix}:tag:{tag}"


def path_tag(prefix: str, path: str) -> str:
    """The tag every stored variant of ``path`` carries (for path invalidation)."""
    return f"{prefix}:path:{path}"


def lock_key(key: str) -> str:
    """The lock held while one process computes ``key`` (a page or memo key): ``{key}:lock``.

    Derived from the key it guards, so every key has its own lock, and an
    operator scanning the prefix sees a lock next to the key it guards.
    """
    return f"{key}:lock"


def memo_key(prefix: str, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> str:
    """The store key under which ``fn(*args, **kwargs)`` is memoized by a cache with ``prefix``.

    ``fn`` may be the memoized wrapper or the function it wraps; the key is the
    same in every process.  Raises ``TypeError`` like the call would.
    """
    name = function_name(fn)
    return memo_call_key(prefix, name, inspect.signature(fn), args, kwargs)


def memo_call_key(
    prefix: str,
    name: str,
    signature: inspect.Signature,
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
) -> str:
    """:func:`memo_key` for a function already named and inspected:
    ``{prefix}:memo:{name}:{32 hex digits}``.

    A memoized function computes its name and signature once, at decoration,
    rather than on every call.
    """
    return f"{prefix}:memo:{name}:{argument_digest(name, signature, args, kwargs)}"


def memo_call_tag(key: str) -> str:
    """The tag only the memoized result stored under ``key`` carries: ``{key}:call``.

    A store-level tag, like :func:`path_tag`: forgetting one argument set is
    then an invalidation, which a call computing that result meanwhile cannot
    outlive.
    """
    return f"{key}:call"


def memo_tag(name: str) -> str:
    """The tag every result of the memoized function ``name`` carries: ``memo:{name}``.

    A user-level tag (pass it through :func:`tag_key`), so forgetting all of a
    function's results is an invalidation, which a call computing meanwhile
    cannot outlive.
    """
    return f"memo:{name}"


def data_key(prefix: str, key: str) -> str:
    """Where ``Cache.set`` keeps the value of ``key``: ``{prefix}:data:{key}``.

    Its own namespace, so no user key can collide with a page or a memoized result.
    """
    return f"{prefix}:data:{key}"


def namespace(prefix: str) -> str:
    """What every key of a cache with ``prefix`` starts with: ``{prefix}:``.

    The separator is part of it, so clearing the cache ``shop`` leaves the
    keys of ``shop2`` alone.
    """
    return f"{prefix}:"
