"""The stored response and its compact binary form.

An entry is the final HTTP response exactly as the application sent it: status,
raw header list (order and repeats kept) and body bytes, plus when it was stored
and for how long it is fresh.  The binary form is a fixed ``struct`` header
followed by length-prefixed fields, so decoding can never run code (unlike
pickle) and a truncated, foreign or corrupt value raises :class:`CorruptEntry`,
which callers treat as a miss.
"""

from __future__ import annotations

import logging
import math
import struct
from typing import NamedTuple

__all__ = ["CorruptEntry", "DecodedEntries", "Entry", "decode", "encode"]

logger = logging.getLogger("asgi_cache")

_MAGIC = b"AC\x01"
# magic, status, stored_at (unix seconds), fresh_for, stale_while_revalidate,
# stale_if_error (seconds), header count, body length
_HEAD = struct.Struct("!3sHddddHI")
_FIELD = struct.Struct("!HI")  # one header: name length, value length

Headers = list[tuple[bytes, bytes]]


class CorruptEntry(ValueError):
    """The bytes are not an entry written by this version of the package."""


class Entry(NamedTuple):
    """A complete stored response.

    ``stored_at`` is the wall-clock time (``time.time()``) at which the
    response's age was zero: when it was received, minus the age it arrived
    with (RFC 9111 §4.2.3).  Any process, on any machine sharing the store,
    computes the current ``Age`` of an entry another one stored as ``now -
    stored_at``, and it is fresh while that is below ``fresh_for``.  (A named
    tuple: it is built on every hit, and cheaply.)
    """

    status: int
    headers: Headers
    body: bytes
    stored_at: float
    fresh_for: float
    stale_while_revalidate: float = 0.0  #: seconds after expiry it may be served while refreshed
    stale_if_error: float = 0.0  #: seconds after expiry it may stand in for a failing app

    def age(self, now: float) -> float:
        """The entry's current age in seconds (never negative, despite clock skew)."""
        age = now - self.stored_at
        return age if age > 0.0 else 0.0  # not max(): this runs on every hit

    def is_fresh(self, now: float) -> bool:
        return now - self.stored_at < self.fresh_for


def encode(entry: Entry) -> bytes:
    parts = [
        _HEAD.pack(
            _MAGIC,
            entry.status,
            entry.stored_at,
            entry.fresh_for,
            entry.stale_while_revalidate,
            entry.stale_if_error,
            len(entry.headers),
            len(entry.body),
        )
    ]
    for name, value in entry.headers:
        parts.append(_FIELD.pack(len(name), len(value)))
        parts.append(name)
        parts.append(value)
    parts.append(entry.body)
    return b"".join(parts)


def decode(data: bytes) -> Entry:
    """Parse :func:`encode`'s output; raise :class:`CorruptEntry` on anything else."""
    try:
        magic, status, stored_at, fresh_for, swr, sie, count, body_len = _HEAD.unpack_from(data)
    except (struct.error, TypeError) as exc:
        raise CorruptEntry("entry header is truncated or not bytes") from exc
    if magic != _MAGIC:
        raise CorruptEntry("not an asgi-cache entry")
    offset = _HEAD.size
    headers: Headers = []
    unpack_field = _FIELD.unpack_from
    field_size = _FIELD.size
    size = len(data)
    try:
        for _ in range(count):
            name_len, value_len = unpack_field(data, offset)
            offset += field_size
            end = offset + name_len
            value_end = end + value_len
            if value_end > size:
                raise CorruptEntry("header runs past the end of the entry")
            headers.append((data[offset:end], data[end:value_end]))
            offset = value_end
    except struct.error as exc:
        raise CorruptEntry("header table is truncated") from exc
    if (
        not 100 <= status <= 599
        or not math.isfinite(stored_at)
        or not all(0.0 <= seconds < math.inf for seconds in (fresh_for, swr, sie))
    ):
        raise CorruptEntry("entry fields are out of range")
    if size - offset != body_len:
        raise CorruptEntry("body length does not match")
    return Entry(status, headers, data[offset:], stored_at, fresh_for, swr, sie)


class DecodedEntries(dict[bytes, Entry]):
    """Recently decoded entries, by their exact stored bytes.

    Decoding is the largest cost of a memory hit; a hot entry comes back as the
    very same bytes object (the memory store) or equal bytes (Redis), whose
    hash CPython caches, so a dict skips it: ``entries.get(data) or
    entries.decode(data, key)`` costs one dict lookup on the hit path.  Bounded
    in count and in entry size, so it holds a few megabytes at most.
    """

    MAX_ENTRIES = 256
    MAX_BYTES = 64 * 1024

    def decode(self, data: bytes, key: str) -> Entry | None:
        """``data`` (stored under ``key``) as an entry; a corrupt or foreign value is a miss."""
        try:
            entry = decode(data)
        except CorruptEntry:
            logger.warning("asgi-cache: unreadable entry under %s, treated as a miss", key)
            return None
        if len(data) <= self.MAX_BYTES:
            if len(self) >= self.MAX_ENTRIES:
                del self[next(iter(self))]
            self[data] = entry
        return entry
