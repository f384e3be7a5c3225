"""Surrogate keys: a cached route's tags as the header a CDN or Varnish indexes by.

A cache in front of the application (Fastly, Cloudflare, Akamai, Varnish with
vmod xkey) can purge every response carrying a key with one request, if the
response named its keys in the header that cache reads.  asgi-cache knows the
tags of every response it stores, so it names them there, and a purge sends
the same keys (see :mod:`asgi_cache.purgers`).

Each response carries, in order: the cache's *prefix key* (the cache's
``prefix``: :meth:`~asgi_cache.Cache.clear` purges it), the filled tags of its
route, and its path (``/products/1``: :meth:`~asgi_cache.Cache.invalidate_path`
and writes purge it).  A key is the tag's text with the characters the header
cannot carry percent-encoded, so the same tag always gives the same key; a
key longer than the header allows is replaced by a digest of it.

The limits are those the CDNs document:

=================  ==========  =========  ========  ===========================
header             separator   per key    keys      whole header
=================  ==========  =========  ========  ===========================
``Surrogate-Key``  space       1024 B     --        16,384 B (Fastly)
``Cache-Tag``      comma       120 B      1000      16 KB (Cloudflare)
``Edge-Cache-Tag`` comma       128 chars  128       8,192 B of reply headers
                                                    (Akamai; token characters)
``xkey``           space       --         --        8 KB: Varnish's default
                                                    ``http_resp_hdr_len``
=================  ==========  =========  ========  ===========================

A response whose keys do not fit is not keyed at all: it goes out marked
``no-store`` for the tier in front (see :mod:`asgi_cache.front`), since a
stored response that a purge cannot reach would be served stale.
"""

from __future__ import annotations

import string
from collections.abc import Iterable
from dataclasses import dataclass
from hashlib import blake2b
from urllib.parse import quote

__all__ = ["FORMATS", "KeyFormat", "key_field", "key_format", "keys_of_tags", "surrogate_key"]


@dataclass(frozen=True, slots=True)
class KeyFormat:
    """How one CDN's header spells a list of keys, and how much of it it reads."""

    #: The response field, lower-case.
    header: bytes
    #: What separates two keys.
    separator: str
    #: Longest key, in bytes; a longer one is replaced by its digest.
    max_key: int
    #: Most keys one response may carry.
    max_keys: int
    #: Longest value of the field, in bytes.
    max_header: int
    #: Characters a key keeps as they are; any other is percent-encoded (UTF-8).
    safe: str


# Visible ASCII (RFC 9110 §5.5 field-vchar) but for the separators and "%",
# which starts an escape.
_VISIBLE = "".join(chr(c) for c in range(0x21, 0x7F) if chr(c) not in ",%")
# Akamai's documented token characters, "%" excepted (it starts an escape).
_AKAMAI = string.ascii_letters + string.digits + "&'^-$!`#.+~_|"

#: The headers a key list may go out in, by lower-case name.
FORMATS: dict[str, KeyFormat] = {
    "surrogate-key": KeyFormat(b"surrogate-key", " ", 1024, 10_000, 16_384, _VISIBLE),
    "cache-tag": KeyFormat(b"cache-tag", ",", 120, 1000, 16_384, _VISIBLE),
    "edge-cache-tag": KeyFormat(b"edge-cache-tag", ",", 128, 128, 8192, _AKAMAI),
    "xkey": KeyFormat(b"xkey", " ", 1024, 10_000, 8192, _VISIBLE),
}


def key_format(owner: str, value: object) -> KeyFormat | None:
    """The format ``surrogate_keys=`` names: ``True`` is ``Surrogate-Key``, a
    header name one of :data:`FORMATS`, ``False`` / ``None`` none.  Misuse
    raises naming ``owner`` and the choices."""
    if value is False or value is None:
        return None
    if value is True:
        return FORMATS["surrogate-key"]
    if isinstance(value, str) and value.lower() in FORMATS:
        return FORMATS[value.lower()]
    choices = ", ".join(repr(name) for name in FORMATS)
    raise ValueError(
        f"{owner}: surrogate_keys must be True, False or one of {choices}, got {value!r}"
    )


def surrogate_key(text: str, fmt: KeyFormat) -> str:
    """``text`` as one key of ``fmt``: what the header cannot carry
    percent-encoded, and a digest (``h-`` and 32 hex digits) when too long."""
    key = quote(text, safe=fmt.safe)
    if not key:
        return "%00"  # an empty tag still needs a key of its own
    if len(key) > fmt.max_key:
        return "h-" + blake2b(text.encode(), digest_size=16).hexdigest()
    return key


def keys_of_tags(prefix: str, store_tags: Iterable[str], fmt: KeyFormat) -> list[str]:
    """The keys of store-level tags (:func:`asgi_cache.keys.tag_key`,
    :func:`~asgi_cache.keys.path_tag`): a user tag's text, a path; others
    (a memoized function's own tag, say) have none.  Repeats are dropped."""
    tag_start, path_start = f"{prefix}:tag:", f"{prefix}:path:"
    keys: dict[str, None] = {}
    for tag in store_tags:
        if tag.startswith(tag_start):
            keys[surrogate_key(tag[len(tag_start) :], fmt)] = None
        elif tag.startswith(path_start):
            keys[surrogate_key(tag[len(path_start) :], fmt)] = None
    return list(keys)


def key_field(prefix: str, store_tags: Iterable[str], fmt: KeyFormat) -> bytes | None:
    """The value of ``fmt``'s header for a response stored under ``store_tags``:
    the prefix key first, then the tags' keys; ``None`` when they do not fit."""
    keys = dict.fromkeys([surrogate_key(prefix, fmt), *keys_of_tags(prefix, store_tags, fmt)])
    if len(keys) > fmt.max_keys:
        return None
    value = fmt.separator.join(keys).encode("ascii")
    return None if len(value) > fmt.max_header else value
