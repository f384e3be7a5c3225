"""Memoized values: results of expensive functions, and plain values, kept in the cache's store.

``@cache.memoize()`` stores a function's result under a key derived from its
qualified name and its arguments, so every worker sharing a Redis store shares
the result, and ``cache.get`` / ``cache.set`` / ``cache.delete`` keep plain
values next to it.  Both live under the cache's prefix::

    {prefix}:memo:{module}.{qualname}:{32 hex digits}    a memoized result
    {prefix}:data:{key}                                  a plain value

Keys
----
Spelled by :mod:`asgi_cache.keys`; the digest is :mod:`asgi_cache.arguments`':
arguments bound to the signature, encoded canonically (never by ``id()``,
``hash()`` or ``repr``), digested.

Values
------
Results are stored as JSON (orjson; pydantic models through ``model_dump``),
never pickled: a value read from a shared store must never be able to run code.
A hit therefore returns the JSON round trip of the result (tuples come back as
lists, datetimes as strings), except that a return annotation naming a
pydantic model or a dataclass (or ``Model | None``) rebuilds one.  A miss
returns what the function returned.  ``None`` is cached like any other value.
A result JSON cannot hold is returned uncached, with one WARNING per function.

Failures
--------
The store is never trusted to be up: when it fails, the function is computed
and its result returned, uncached.  Concurrent calls with the same arguments
are coalesced (across processes too, with a store that has locks, like Redis):
one computes, the others wait for its stored result.  The store is fenced
before computing, so an invalidation of the entry's tags during the
computation prevents storing the (possibly stale) result.

Forgetting
----------
Every result carries the function's tag (:func:`~asgi_cache.keys.memo_tag`)
and one of its own (:func:`~asgi_cache.keys.memo_call_tag`), so that
``delete_memoized`` forgets all of a function's results, or one argument set's,
by an invalidation: a call computing meanwhile cannot store its result
afterwards.  The price of the second tag, on Redis, is one more small member
set per stored result (it expires with the result), and one more counter read
and index script per store, in the pipelines that already run; hits pay nothing.
"""

from __future__ import annotations

import dataclasses
import functools
import inspect
import logging
import types
import typing
import weakref
from collections.abc import Awaitable, Callable, Coroutine, Iterable
from typing import Any, Generic, ParamSpec, Protocol, TypeVar, overload

import anyio
import anyio.to_thread
import orjson

from asgi_cache.arguments import function_name, pydantic_base
from asgi_cache.checks import check_data_key, check_tags, check_ttl
from asgi_cache.flight import Coalescer, Leadership
from asgi_cache.keys import data_key, memo_call_key, memo_call_tag, memo_key, memo_tag, tag_key
from asgi_cache.stores.base import Store, log_store_failure

__all__ = ["MemoCache", "Memoize", "Memoizer", "memo_key"]

logger = logging.getLogger("asgi_cache")

P = ParamSpec("P")
R = TypeVar("R")

#: The attribute of a memoizing wrapper that holds its :class:`_Memoized`.
MEMO_ATTR = "__asgi_cache_memo__"

_MISS: Any = object()  # a lookup that found nothing usable


class MemoCache(Protocol):
    """What a :class:`Memoizer` uses of the cache it belongs to.

    Described here rather than imported, so that this module does not depend
    on :mod:`asgi_cache.cache` (which depends on it).  Read on every call, so a
    memoizer always sees the cache's current store and settings.
    """

    @property
    def store(self) -> Store:
        """Where results and values live."""
        ...

    @property
    def prefix(self) -> str:
        """The namespace of every key (see :mod:`asgi_cache.keys`)."""
        ...

    @property
    def default_ttl(self) -> float:
        """Seconds a result or value lives when its caller gives no ``ttl``."""
        ...

    @property
    def coalesce(self) -> bool:
        """Whether concurrent calls with the same arguments compute once."""
        ...

    @property
    def coalesce_wait(self) -> float:
        """The longest a call waits for another one computing the same result."""
        ...

    async def invalidate(self, *tags: str) -> int:
        """Remove every entry stored under any of ``tags``; return how many."""
        ...


def _json_default(value: Any) -> Any:
    """orjson's hook for what it does not know: pydantic models, and nothing else."""
    base = pydantic_base()
    if base is not None and isinstance(value, base):
        return value.model_dump(mode="json")
    raise TypeError(f"{type(value).__qualname__} is not JSON serializable")


def _encode(value: object) -> bytes:
    """The stored form: ``{"v": value}``, so that a stored ``None`` is not a miss.

    Raises ``TypeError`` for a value JSON cannot hold.
    """
    try:
        return orjson.dumps({"v": value}, default=_json_default)
    except (TypeError, ValueError) as exc:  # JSONEncodeError is a TypeError
        raise TypeError(str(exc)) from None


def _decode(data: bytes) -> Any:
    """The value :func:`_encode` stored; ``ValueError`` for anything else."""
    envelope = orjson.loads(data)  # JSONDecodeError is a ValueError
    if not isinstance(envelope, dict) or envelope.keys() != {"v"}:
        raise ValueError("not a memoized value")
    return envelope["v"]


def _restorer(fn: Callable[..., Any]) -> Callable[[Any], Any] | None:
    """What rebuilds ``fn``'s declared return type from its JSON, or ``None``.

    Only pydantic models and dataclasses (possibly ``| None``) are rebuilt;
    an annotation that cannot be resolved is ignored.
    """
    try:
        hint = typing.get_type_hints(fn).get("return")
    except Exception:
        return None
    if typing.get_origin(hint) in (typing.Union, types.UnionType):
        members = [arg for arg in typing.get_args(hint) if arg is not type(None)]
        if len(members) != 1:
            return None
        hint = members[0]
    if not isinstance(hint, type) or isinstance(hint, types.GenericAlias):
        return None  # list[Model] and the like come back as JSON
    cls: type[Any] = hint
    base = pydantic_base()
    if base is not None and issubclass(cls, base):
        validate: Callable[[Any], Any] = cls.model_validate
        return validate
    if dataclasses.is_dataclass(cls):
        names = [field.name for field in dataclasses.fields(cls) if field.init]

        def build(value: Any) -> Any:
            if not isinstance(value, dict):
                raise TypeError(f"{cls.__qualname__} stored as {type(value).__qualname__}")
            return cls(**{name: value[name] for name in names if name in value})

        return build
    return None


def _is_async(fn: Callable[..., Any]) -> bool:
    return inspect.iscoroutinefunction(fn) or inspect.iscoroutinefunction(
        getattr(fn, "__call__", None)  # noqa: B004 - an object with an async __call__
    )


class _Memoized(Generic[R]):
    """One memoized function: its name, signature, lifetime and tags."""

    __slots__ = (
        "_resolved",
        "_restore",
        "fn",
        "is_async",
        "memoizer",
        "name",
        "signature",
        "tags",
        "ttl",
        "warned",
    )

    def __init__(
        self, memoizer: Memoizer, fn: Callable[..., Any], ttl: float | None, tags: Iterable[str]
    ) -> None:
        self.name = function_name(fn)
        owner = f"memoize {self.name}"
        self.ttl = check_ttl(owner, ttl)
        prefix = memoizer.cache.prefix
        self.tags = [
            tag_key(prefix, memo_tag(self.name)),
            *(tag_key(prefix, tag) for tag in check_tags(owner, tags, placeholders=False)),
        ]
        self.memoizer = memoizer
        self.fn = fn
        self.signature = inspect.signature(fn)
        self.is_async = _is_async(fn)
        self.warned = False  # about an unserialisable result
        self._restore: Callable[[Any], Any] | None = None
        self._resolved = False  # whether _restore was looked up

    def key(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> str:
        return memo_call_key(self.memoizer.cache.prefix, self.name, self.signature, args, kwargs)

    async def compute(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> R:
        if self.is_async:
            result: R = await self.fn(*args, **kwargs)
            return result
        return await anyio.to_thread.run_sync(functools.partial(self.fn, *args, **kwargs))

    def restore(self, data: bytes) -> Any:
        """The hit's value, rebuilt as the annotated model or dataclass; ``_MISS``
        for a value that is corrupt or no longer fits the annotation."""
        try:
            value = _decode(data)
        except ValueError:
            logger.warning("asgi-cache: memo %s: unreadable value, treated as a miss", self.name)
            return _MISS
        if not self._resolved:
            # Resolved at the first hit, not at decoration: the annotation may
            # name a class defined after the function.
            self._restore = _restorer(self.fn)
            self._resolved = True
        if value is None or self._restore is None:
            return value
        try:
            return self._restore(value)
        except Exception as exc:  # the model changed since it was stored, say
            logger.debug("asgi-cache: memo %s: stored value no longer fits: %s", self.name, exc)
            return _MISS


class Memoize:
    """The decorator ``cache.memoize(...)`` returns."""

    __slots__ = ("_memoizer", "_tags", "_ttl")

    def __init__(self, memoizer: Memoizer, ttl: float | None, tags: Iterable[str]) -> None:
        if callable(ttl):
            raise TypeError("memoize: write @cache.memoize() with parentheses")
        self._memoizer = memoizer
        self._ttl = ttl
        self._tags = tags if isinstance(tags, str) else tuple(tags)

    @overload
    def __call__(self, fn: Callable[P, Awaitable[R]]) -> Callable[P, Coroutine[Any, Any, R]]: ...

    @overload
    def __call__(self, fn: Callable[P, R]) -> Callable[P, Coroutine[Any, Any, R]]: ...

    def __call__(
        self, fn: Callable[P, Awaitable[R]] | Callable[P, R]
    ) -> Callable[P, Coroutine[Any, Any, R]]:
        """Return an ``async`` wrapper of ``fn`` (``functools.wraps``, with ``__wrapped__``)."""
        memo: _Memoized[R] = _Memoized(self._memoizer, fn, self._ttl, self._tags)
        memoizer = self._memoizer

        @functools.wraps(fn)
        async def memoized(*args: P.args, **kwargs: P.kwargs) -> R:
            result: R = await memoizer.call(memo, args, kwargs)
            return result

        setattr(memoized, MEMO_ATTR, memo)
        memoizer._functions[memo.name] = memoized
        return memoized


class Memoizer:
    """Memoized results and plain values of one :class:`~asgi_cache.Cache`.

    The ``Cache`` methods ``memoize``, ``delete_memoized``, ``get``, ``set`` and
    ``delete`` delegate here.  One memoizer per cache, so concurrent calls of a
    function with the same arguments are coalesced however many places call it.
    """

    def __init__(self, cache: MemoCache) -> None:
        self.cache = cache
        self._coalescer = Coalescer()
        # Weak: a function defined and memoized in a closure may go away.
        self._functions: weakref.WeakValueDictionary[str, Callable[..., Any]] = (
            weakref.WeakValueDictionary()
        )

    def memoize(self, ttl: float | None = None, *, tags: Iterable[str] = ()) -> Memoize:
        """See :meth:`asgi_cache.Cache.memoize`."""
        return Memoize(self, ttl, tags)

    async def call(self, memo: _Memoized[R], args: tuple[Any, ...], kwargs: dict[str, Any]) -> R:
        """Answer one call of a memoized function: from the store, or by computing it."""
        key = memo.key(args, kwargs)
        store = self.cache.store
        try:
            found = await self._lookup(memo, store, key)
        except Exception as exc:
            log_store_failure(f"memo {memo.name}: store get", exc)
            return await memo.compute(args, kwargs)
        if found is not _MISS:
            return typing.cast(R, found)
        if not self.cache.coalesce:
            return await self._fill(memo, store, key, args, kwargs)
        joined = await self._coalescer.join(store, key, self.cache.coalesce_wait)
        leadership = joined if isinstance(joined, Leadership) else None
        try:
            # A follower reads what the leader stored; a new leader checks the
            # store again, since a leader that just finished may have filled it.
            try:
                found = await self._lookup(memo, store, key)
            except Exception as exc:
                log_store_failure(f"memo {memo.name}: store get", exc)
                found = _MISS
            if found is not _MISS:
                return typing.cast(R, found)
            return await self._fill(memo, store, key, args, kwargs)
        finally:
            if leadership is not None:
                with anyio.CancelScope(shield=True):
                    await leadership.release()

    async def _lookup(self, memo: _Memoized[R], store: Store, key: str) -> Any:
        data = await store.get(key)
        return _MISS if data is None else memo.restore(data)

    async def _fill(
        self,
        memo: _Memoized[R],
        store: Store,
        key: str,
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
    ) -> R:
        """Compute and store, fenced so that an invalidation meanwhile wins."""
        tags = [*memo.tags, memo_call_tag(key)]
        try:
            fence = await store.fence(tags)
        except Exception as exc:
            log_store_failure(f"memo {memo.name}: store fence", exc)
            return await memo.compute(args, kwargs)
        result = await memo.compute(args, kwargs)
        try:
            data = _encode(result)
        except TypeError as exc:
            if not memo.warned:
                memo.warned = True
                logger.warning(
                    "asgi-cache: memo %s: result cannot be stored as JSON (%s); returned uncached",
                    memo.name,
                    exc,
                )
            return result
        ttl = self.cache.default_ttl if memo.ttl is None else memo.ttl
        try:
            stored = await store.set(key, data, ttl, tags, fence)
            logger.debug(
                "asgi-cache: memo %s: %s %s", memo.name, "stored" if stored else "not stored", key
            )
        except Exception as exc:
            log_store_failure(f"memo {memo.name}: store set", exc)
        return result

    def functions(self) -> dict[str, Callable[..., Any]]:
        """See :meth:`asgi_cache.Cache.memoized_functions`."""
        return dict(self._functions)

    async def delete_memoized(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> int:
        """See :meth:`asgi_cache.Cache.delete_memoized`."""
        memo = getattr(fn, MEMO_ATTR, None)
        if not isinstance(memo, _Memoized):
            raise TypeError(f"delete_memoized: {fn!r} is not decorated with @cache.memoize()")
        if memo.memoizer is not self:
            raise ValueError(f"delete_memoized: {memo.name} is memoized by another Cache")
        if not args and not kwargs:
            return await self.cache.invalidate(memo_tag(memo.name))
        key = memo.key(args, kwargs)
        removed = await self.cache.store.invalidate([memo_call_tag(key)])
        # A result stored without that tag (by an earlier version) goes too.
        return removed or int(await self.cache.store.delete(key))

    def _data_key(self, owner: str, key: str) -> str:
        return data_key(self.cache.prefix, check_data_key(owner, key))

    async def get(self, key: str, default: Any = None) -> Any:
        """See :meth:`asgi_cache.Cache.get`."""
        store_key = self._data_key("Cache.get", key)
        try:
            data = await self.cache.store.get(store_key)
        except Exception as exc:
            log_store_failure(f"memo {key!r}: store get", exc)
            return default
        if data is None:
            return default
        try:
            return _decode(data)
        except ValueError:
            logger.warning("asgi-cache: unreadable value under %s, treated as absent", store_key)
            return default

    async def set(
        self, key: str, value: Any, ttl: float | None = None, tags: Iterable[str] = ()
    ) -> bool:
        """See :meth:`asgi_cache.Cache.set`."""
        store_key = self._data_key("Cache.set", key)
        checked_ttl = check_ttl(f"Cache.set({key!r})", ttl)
        store_tags = [
            tag_key(self.cache.prefix, tag)
            for tag in check_tags(f"Cache.set({key!r})", tags, placeholders=False)
        ]
        try:
            data = _encode(value)
        except TypeError as exc:
            raise TypeError(
                f"Cache.set({key!r}): the value cannot be stored as JSON: {exc}"
            ) from None
        try:
            return await self.cache.store.set(
                store_key,
                data,
                self.cache.default_ttl if checked_ttl is None else checked_ttl,
                store_tags,
            )
        except Exception as exc:
            log_store_failure(f"memo {key!r}: store set", exc)
            return False

    async def delete(self, key: str) -> bool:
        """See :meth:`asgi_cache.Cache.delete`."""
        return await self.cache.store.delete(self._data_key("Cache.delete", key))
