"""The in-process store: a bounded LRU with per-entry TTLs and tag invalidation.

Entries live in one process, so each worker has its own cache; use a shared store (Redis) when
workers must agree.  Every method is ``async`` only to fit :class:`Store`: none awaits, so under
asyncio each call runs to completion before another coroutine can observe the store.
"""

from __future__ import annotations

import sys
import time
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from asgi_cache.stores.base import Fence, Store

__all__ = ["MemoryStore"]

# What the store holds beyond sys.getsizeof of each key and value (and tag name), in bytes.
# Measured with tracemalloc on CPython 3.11, 64-bit: store N = 500..5000 entries (32-char keys,
# 100-byte values) whose keys and values the caller then drops, subtract their getsizeof from the
# growth of traced memory and divide by N; once without tags, once with one of three shared tags
# (adds a membership), once with a fresh tag each (adds a membership and a tag).  Hash tables
# grow in steps, so a membership really costs 80 to 150 bytes; the values below, fitted to those
# runs, keep bytes_used within 6 % of traced memory for 1 KiB and 100-byte entries, tagged or not.
ENTRY_OVERHEAD = 195  # _Entry, its expiry float and tags tuple, the OrderedDict slot and node
MEMBERSHIP_OVERHEAD = 85  # the key's slot in a tag's set, the _Tag's slot in the entry's tuple
TAG_OVERHEAD = 235  # _Tag, its set, its slot in the tag index

#: How many invalidated tags keep their own generation; older ones fold into a single floor.
MAX_REMEMBERED_INVALIDATIONS = 10_000


@dataclass(slots=True, eq=False)
class _Tag:
    name: str
    keys: set[str]  # the entries indexed under this tag; never empty while the tag is indexed


@dataclass(slots=True, eq=False)
class _Entry:
    value: bytes
    expires: float
    tags: tuple[_Tag, ...]
    size: int  # what this entry adds to bytes_used, tag index entries aside


def _tag_size(name: str) -> int:
    return sys.getsizeof(name) + TAG_OVERHEAD


class MemoryStore(Store):
    """Hold at most ``max_bytes`` (and ``max_entries``) of entries, dropping least recently used.

    ``bytes_used`` estimates the memory the store holds (keys, values, bookkeeping, tag index) to
    within about 20 %; a value that could not fit even in an empty store is refused.  An entry
    whose TTL has elapsed by ``clock`` is never returned.  It is dropped when read, or when it
    reaches the least recently used end; until then it still counts in ``bytes_used`` and
    ``entries``, which keeps get and set O(1) (amortised) with no background task or sweep.

    Fences use one store-wide generation counter, bumped by each ``invalidate``.  A fence is the
    counter's value when taken; a ``set`` is refused when one of its tags was invalidated at a
    later generation.  Only the last ``MAX_REMEMBERED_INVALIDATIONS`` invalidated tags keep their
    generation, so memory stays bounded however many tags are ever invalidated; forgetting older
    ones raises a floor, and a fence taken below the floor is refused whatever its tags.  That
    errs the safe way: the worst case is a response not cached, never a stale one kept.

    ``clock`` (seconds) decides expiry.  Without one the store keeps to the clock of the
    :class:`~asgi_cache.Cache` it is given to (``time.monotonic`` until then), so a test
    that moves the cache's clock moves the store's too.

    :meth:`aclose` (the app's lifespan shutdown) keeps the entries: a store lives as long as
    its object, so entries written in one ``with TestClient(app):`` block are still there in
    the next, as they would be in a Redis store.  ``clear_on_close=True`` empties it instead.
    """

    def __init__(
        self,
        max_bytes: int = 64 * 2**20,
        max_entries: int | None = None,
        *,
        clock: Callable[[], float] | None = None,
        clear_on_close: bool = False,
    ) -> None:
        if isinstance(max_bytes, bool) or not isinstance(max_bytes, int) or max_bytes <= 0:
            raise ValueError(f"max_bytes must be a positive int, not {max_bytes!r}")
        if max_entries is not None and (
            isinstance(max_entries, bool) or not isinstance(max_entries, int) or max_entries <= 0
        ):
            raise ValueError(f"max_entries must be a positive int or None, not {max_entries!r}")
        self._max_bytes = max_bytes
        if not isinstance(clear_on_close, bool):
            raise TypeError(f"clear_on_close must be True or False, not {clear_on_close!r}")
        self._max_entries = max_entries
        self._own_clock = clock is not None
        self._clock = clock or time.monotonic
        self._clear_on_close = clear_on_close
        self._entries: OrderedDict[str, _Entry] = OrderedDict()  # least recently used first
        self._tags: dict[str, _Tag] = {}
        self._bytes = 0
        self._evictions = 0
        self._generation = 0
        self._invalidated: OrderedDict[str, int] = OrderedDict()  # tag -> generation, oldest first
        self._floor = 0

    def follow_clock(self, clock: Callable[[], float]) -> None:
        """Use ``clock`` for expiry, unless the store was given a clock of its own."""
        if not self._own_clock:
            self._clock = clock

    @property
    def bytes_used(self) -> int:
        """Estimated bytes held by entries and the tag index, never more than ``max_bytes``."""
        return self._bytes

    @property
    def entries(self) -> int:
        """How many entries are held, including expired ones not yet dropped."""
        return len(self._entries)

    @property
    def evictions(self) -> int:
        """How many unexpired entries were dropped to make room."""
        return self._evictions

    def stats(self) -> dict[str, int]:
        """``bytes`` (estimated, see :attr:`bytes_used`), ``entries`` and ``evictions``."""
        return {"bytes": self._bytes, "entries": self.entries, "evictions": self.evictions}

    async def get(self, key: str) -> bytes | None:
        entry = self._entries.get(key)
        if entry is None:
            return None
        if entry.expires <= self._clock():
            self._remove(key)
            return None
        self._entries.move_to_end(key)
        return entry.value

    fence_reads_tags = False  # the fence is the store-wide generation

    async def fence(self, tags: Sequence[str]) -> Fence:
        return (self._generation,)

    async def set(
        self,
        key: str,
        value: bytes,
        ttl: float,
        tags: Sequence[str] = (),
        fence: Fence | None = None,
    ) -> bool:
        """Store ``value``, replacing any entry under ``key``; see :meth:`Store.set`.

        A value too large for the store also removes the entry it would have replaced, so the
        caller never keeps reading a response it has superseded.
        """
        if not ttl > 0 or (fence is not None and self._is_stale(fence, tags)):
            return False
        names = tuple(dict.fromkeys(tags))
        size = sys.getsizeof(key) + sys.getsizeof(value)
        size += ENTRY_OVERHEAD + MEMBERSHIP_OVERHEAD * len(names)
        if key in self._entries:
            self._remove(key)
        if size + sum(map(_tag_size, names)) > self._max_bytes:
            return False
        now = self._clock()
        self._make_room(size, names, now)
        entry = _Entry(value, now + ttl, tuple(map(self._tag, names)), size)
        for tag in entry.tags:
            tag.keys.add(key)
        self._entries[key] = entry
        self._bytes += size
        return True

    async def delete(self, key: str) -> bool:
        return key in self._entries and self._remove(key).expires > self._clock()

    async def invalidate(self, tags: Sequence[str]) -> int:
        self._generation += 1
        keys: list[str] = []
        for name in tags:
            self._invalidated[name] = self._generation
            self._invalidated.move_to_end(name)
            tag = self._tags.get(name)
            if tag is not None:
                keys.extend(tag.keys)
        while len(self._invalidated) > MAX_REMEMBERED_INVALIDATIONS:
            _, self._floor = self._invalidated.popitem(last=False)
        return self._remove_live(keys)

    async def scan(self, prefix: str, visit: Callable[[str, int], None]) -> None:
        """Visit the unexpired entries under ``prefix`` (a snapshot: ``visit`` may not await)."""
        now = self._clock()
        for key, entry in list(self._entries.items()):
            if key.startswith(prefix) and entry.expires > now:
                visit(key, len(entry.value))

    async def clear(self, prefix: str) -> int:
        return self._remove_live([key for key in self._entries if key.startswith(prefix)])

    async def aclose(self) -> None:
        """Refuse the sets of fences taken before; empty the store if ``clear_on_close``."""
        self._generation += 1
        self._floor = self._generation  # fences taken before closing are stale
        if self._clear_on_close:
            self._entries.clear()
            self._tags.clear()
            self._bytes = 0
            self._invalidated.clear()

    def _is_stale(self, fence: Fence, tags: Sequence[str]) -> bool:
        match fence:
            case (int() as taken,):
                if taken < self._floor:
                    return True
                return any(self._invalidated.get(tag, 0) > taken for tag in tags)
            case _:
                raise ValueError(f"not a fence from a MemoryStore: {fence!r}")

    def _make_room(self, size: int, names: tuple[str, ...], now: float) -> None:
        """Drop expired entries, then least recently used ones, until ``size`` more bytes fit."""
        while self._entries:
            key, oldest = next(iter(self._entries.items()))
            if oldest.expires > now:
                new_tags = sum(_tag_size(name) for name in names if name not in self._tags)
                if self._bytes + size + new_tags <= self._max_bytes and (
                    self._max_entries is None or len(self._entries) < self._max_entries
                ):
                    return
                self._evictions += 1
            self._remove(key)

    def _tag(self, name: str) -> _Tag:
        tag = self._tags.get(name)
        if tag is None:
            tag = self._tags[name] = _Tag(name, set())
            self._bytes += _tag_size(name)
        return tag

    def _remove(self, key: str) -> _Entry:
        entry = self._entries.pop(key)
        self._bytes -= entry.size
        for tag in entry.tags:
            tag.keys.discard(key)
            if not tag.keys:
                del self._tags[tag.name]
                self._bytes -= _tag_size(tag.name)
        return entry

    def _remove_live(self, keys: list[str]) -> int:
        """Remove ``keys`` (each once); count those that had not expired."""
        now = self._clock()
        removed = 0
        for key in keys:
            if key in self._entries and self._remove(key).expires > now:
                removed += 1
        return removed
