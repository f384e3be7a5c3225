"""Cache keys: which stored response a request may be answered with.

A key is a digest over length-prefixed components (method class, root path,
path, canonical query string, the values of the key headers, the accepted
content codings and the route's custom key part), so no crafted path, query or
header value can make two different requests share a key.  Keys read
``{prefix}:page:{32 hex digits}`` for operators.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from hashlib import blake2b
from urllib.parse import unquote_to_bytes

__all__ = ["canonical_query", "entry_key", "path_tag", "tag_key"]

_ABSENT = b"\xff\xff\xff\xff"  # length marker of a header the request does not carry


def canonical_query(query: bytes) -> bytes:
    """The query string with parameters sorted by name, percent-encoding normalised.

    ``%41`` and ``A`` are the same character, ``+`` is a space like ``%20``
    (as the application's own parser sees them); the relative order of
    repeated names is kept (``?t=1&t=2`` differs from ``?t=2&t=1``), since an
    application reading a list depends on it.  Raw bytes are read as Latin-1
    before unquoting, like Starlette does, so a raw byte 0xFF and ``%FF`` (which
    the application sees as different strings) get different keys; nothing
    here can fail on non-UTF-8 input.
    """
    if not query:
        return b""
    pairs: list[tuple[bytes, bytes]] = []
    for part in query.split(b"&"):
        if not part:
            continue
        raw_name, _, raw_value = part.replace(b"+", b" ").decode("latin-1").partition("=")
        pairs.append((unquote_to_bytes(raw_name), unquote_to_bytes(raw_value)))
    pairs.sort(key=lambda pair: pair[0])
    out = bytearray()
    for name, value in pairs:
        out += len(name).to_bytes(4, "big")
        out += name
        out += len(value).to_bytes(4, "big")
        out += value
    return bytes(out)


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


def tag_key(prefix: str, tag: str) -> str:
    """The store-level name of a user tag: ``{prefix}:tag:{tag}``."""
    return f"{prefix}:tag:{tag}"


def path_tag(prefix: str, path: str) -> str:
    """The tag every stored variant of ``path`` carries (for path invalidation)."""
    return f"{prefix}:path:{path}"
