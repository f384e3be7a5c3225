"""What a cached route's responses say to the cache in front (a CDN, Varnish).

Two things, both off unless asked for:

* **its keys** (:mod:`asgi_cache.surrogate`), so that a purge of a tag reaches
  every page the tier in front stored under it;
* **its freshness**, in a field of its own (RFC 9213 ``CDN-Cache-Control``, or
  the Edge Architecture ``Surrogate-Control`` Fastly and Varnish read), apart
  from the ``Cache-Control`` browsers get.  The server-side ``ttl`` is never
  written into either: what the tier in front may keep is said only where the
  route or the cache says it (``cdn_cache_control=``).

A per-user route (keyed on a credential header or by a ``key=`` callable) is
never made shareable: it gets neither keys nor freshness for the tier in front
(a ``key=`` route's targeted fields say ``private`` already, see
:func:`asgi_cache.variants.with_private`).  A response whose keys are not known
(its ``tags=`` callable was not run, or they do not fit the header) is marked
``no-store`` for the tier in front, since no purge could reach it there.
"""

from __future__ import annotations

from dataclasses import dataclass

from asgi_cache.checks import check_header_names
from asgi_cache.surrogate import KeyFormat, key_field

__all__ = ["FRONT_FIELDS", "Front", "check_directives", "check_front_field"]

Headers = list[tuple[bytes, bytes]]

#: The freshness fields a cache in front reads apart from ``Cache-Control``.
FRONT_FIELDS = ("cdn-cache-control", "surrogate-control")

_NO_STORE = b"no-store"


def check_front_field(owner: str, name: object) -> bytes:
    """``cdn_field=``: ``CDN-Cache-Control``, ``Surrogate-Control``, or another
    targeted field of RFC 9213 (``*-Cache-Control``), lower-cased."""
    if not isinstance(name, str):
        raise TypeError(f"{owner}: cdn_field must be a header name, got {name!r}")
    (lower,) = check_header_names(owner, "cdn_field", (name,))
    if lower not in FRONT_FIELDS and not lower.endswith("-cache-control"):
        raise ValueError(
            f"{owner}: cdn_field must be 'CDN-Cache-Control', 'Surrogate-Control' or "
            f"another targeted '*-Cache-Control' field, got {name!r}"
        )
    return lower.encode("ascii")


def check_directives(owner: str, value: object) -> bytes | None:
    """``cdn_cache_control=``: a field value (``"max-age=600"``) or ``None``."""
    if value is None:
        return None
    if not isinstance(value, str) or not value.strip():
        raise TypeError(f"{owner}: cdn_cache_control must be a non-empty string, got {value!r}")
    if not (value.isascii() and value.isprintable()):
        raise ValueError(f"{owner}: cdn_cache_control must be printable ASCII, got {value!r}")
    return value.strip().encode("ascii")


@dataclass(frozen=True, slots=True)
class Front:
    """One route's word to the cache in front; see the module docstring."""

    prefix: str
    keys: KeyFormat | None
    field: bytes
    directives: bytes | None
    per_user: bool

    def headers(
        self, headers: Headers, store_tags: list[str] | None, *, storable: bool = True
    ) -> Headers:
        """``headers`` with this route's keys and freshness for the tier in front.

        ``store_tags``: the response's store-level tags, ``None`` when they
        are not known (then, with keys to send, the tier in front gets
        ``no-store``); ``storable=False``: it gets ``no-store`` whatever the
        tags.  The application's own key field and, when the route sets
        freshness, its own freshness field are replaced.
        """
        if self.per_user:
            return headers
        value = None
        if storable and self.keys is not None:
            value = None if store_tags is None else key_field(self.prefix, store_tags, self.keys)
            storable = value is not None
        drop = {self.keys.header} if self.keys is not None else set()
        directives = self.directives if storable else _NO_STORE
        if directives is not None:
            drop.add(self.field)
        out = [(n, v) for n, v in headers if n.lower() not in drop]
        if directives is not None:
            out.append((self.field, directives))
        if value is not None and self.keys is not None:
            out.append((self.keys.header, value))
        return out
