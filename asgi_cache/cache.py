"""``Cache``: one store, one key prefix, and the defaults every route shares.

It is also the handle for invalidation from outside a request (a job, an admin
route) and, through :func:`get_cache`, from inside any route.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from typing import Any

import anyio
from starlette.requests import HTTPConnection

from asgi_cache.checks import (
    check_body_size,
    check_header_names,
    check_seconds,
    check_statuses,
    check_ttl,
)
from asgi_cache.front import check_directives, check_front_field
from asgi_cache.keys import namespace, path_tag, tag_key
from asgi_cache.memo import Memoize, Memoizer
from asgi_cache.observers import RequestObserver
from asgi_cache.pending import InvalidationPending, PendingInvalidations
from asgi_cache.policy import DEFAULT_STATUSES
from asgi_cache.purgers.base import Purge, Purger
from asgi_cache.purging import Purging
from asgi_cache.stats import CacheStats
from asgi_cache.stores.base import Store
from asgi_cache.stores.memory import MemoryStore
from asgi_cache.surrogate import FORMATS, key_format, keys_of_tags, surrogate_key
from asgi_cache.sync import SyncCache

__all__ = ["INVALIDATION_FAILURES", "Cache", "get_cache"]

logger = logging.getLogger("asgi_cache")

#: Seconds between two tries of an invalidation the store timed out on.
_RETRY_PAUSE = 0.02

#: What a write route's response becomes when its invalidation fails.
INVALIDATION_FAILURES = ("retry", "fail")

#: The ASGI scope key under which the middleware exposes its :class:`Cache`.
SCOPE_KEY = "asgi_cache"


class Cache:
    """A response cache: where entries live and how requests are keyed.

    :param store: where entries live; a per-process :class:`MemoryStore` when
        omitted.  Share one store (Redis) between workers to share the cache.
    :param prefix: namespaces every key, so several apps or versions can share
        one store (``"shop:v1"``); :meth:`clear` removes only this prefix.
    :param default_ttl: the heuristic lifetime (RFC 9111 §4.2.2): seconds a
        response stays fresh when its route gives no ``ttl`` and the response
        no ``s-maxage``, ``max-age`` or ``Expires``, for a heuristically
        cacheable status (RFC 9110 §15.1) or a ``public`` response; with a
        ``Last-Modified``, 10% of its age capped at ``default_ttl``.
    :param heuristic_freshness: give such responses a heuristic lifetime at
        all.  ``False``: a response is stored only with explicit freshness
        (its directives, ``Expires``) or its route's ``ttl``.
    :param targeted_cache_control: the target list of RFC 9213: response
        fields whose directives are this cache's own, most specific first
        (``("asgi-cache-control", "cdn-cache-control")``).  The first present
        with a valid value is obeyed instead of ``Cache-Control`` and
        ``Expires``; all are forwarded as they are.  ``()``: none.
    :param vary: request header names that are part of every route's key
        (``("accept-language",)``), and named in the ``Vary`` of every cached
        route's responses (RFC 9111 §4.1).
    :param credential_headers: request headers that identify a user.  A request
        carrying one is neither served from nor stored into the cache unless the
        route keys on it (``vary=`` or ``key=``), so one user's page is never
        served to another.  Since their presence decides what a request gets,
        cached routes name them in ``Vary`` too.  Narrow it for apps whose
        cookies are not credentials.
    :param statuses: response statuses stored by default (never 5xx).
    :param max_body_size: largest body stored, in bytes; larger responses are
        passed through untouched.
    :param honor_request_cache_control: obey a client's request directives,
        as RFC 9111 §5.2.1 describes: ``no-cache`` (fetch anew and store),
        ``no-store`` (do not store the response), ``max-age``, ``min-fresh``,
        ``max-stale`` and ``only-if-cached`` (``504`` when nothing stored may
        answer; the application is never called).  Off by default, like
        Varnish: a browser reload must not be able to push load through to
        the database.
    :param cache_status_key: add the entry's store key to ``Cache-Status``
        (RFC 9211 §2.7 ``key``), to find an entry from a response while
        debugging.  Off by default: it tells clients how pages are keyed.
    :param coalesce: when several requests miss on the same key at once, let
        one reach the application and answer the others from its response
        (across processes too, with a store that supports locks, like Redis).
    :param coalesce_wait: the longest a request waits for another one's
        response before going to the application itself (a leader that crashed
        or hangs blocks nobody for longer).
    :param stale_while_revalidate: seconds after expiry during which a stale
        entry is served at once while one background request refreshes it
        (RFC 5861); a route's marker or the response's own ``Cache-Control``
        can set it per route.
    :param stale_if_error: seconds after expiry during which a stale entry is
        served when the application raises, answers 5xx or exceeds
        ``origin_timeout`` (RFC 5861).
    :param origin_timeout: with a stale entry to fall back on, how long the
        application may take to start its response before the stale entry is
        served instead (``None``: no limit).
    :param invalidation_failure: what a write route's client gets when the
        store cannot take its invalidation.  ``"retry"``: the application's
        own response (the write happened); the invalidation is kept and
        retried, and nothing is served from the store before it is applied.
        ``"fail"``: the same, but the client gets ``503`` with ``Retry-After``
        instead, so it knows the cache may still answer with the old data
        elsewhere for a moment.
    :param invalidation_wait: how long an invalidation the store timed out on
        is tried again before it is kept for later: a write's response waits
        that long at most, so that a stall shorter than this (a slow command, a
        busy moment) never lets another process serve the old page after the
        write was answered.  A store that refuses or is unreachable is not
        waited for.
    :param enabled: ``False`` switches the cache off (see :meth:`disabled`):
        every request of a cached route goes to the application, its response
        untouched but for ``Cache-Status: asgi-cache; fwd=bypass;
        detail=disabled``, and invalidations do nothing.  For an
        application's own tests, or to rule the cache out while debugging.
    :param surrogate_keys: name the tags of each cached response (its
        route's filled tags, its path, the cache's ``prefix``) in a header
        the cache in front indexes by, on misses and hits alike: ``True`` for
        ``Surrogate-Key`` (Fastly, and Varnish through the shipped VCL), or
        ``"Cache-Tag"`` (Cloudflare), ``"Edge-Cache-Tag"`` (Akamai),
        ``"xkey"`` (Varnish with vmod xkey as it is); see
        :mod:`asgi_cache.surrogate` for the spelling and the size limits.
        Per-user routes carry none.
    :param surrogate_keys_for: a request header only the cache in front sends
        (``"surrogate-capability"``): when set, the key header goes only to
        requests carrying it, and is stripped for every other client.
    :param cdn_cache_control: the freshness the cache in front gets
        (``"max-age=600"``), in ``cdn_field``, apart from the ``Cache-Control``
        browsers get; a route's ``@cached(cdn_cache_control=...)`` overrides
        it.  Unset, nothing is added: the server-side ``ttl`` is never sent
        downstream.  Never on a per-user route.
    :param cdn_field: the field ``cdn_cache_control`` goes out in:
        ``"CDN-Cache-Control"`` (RFC 9213) or ``"Surrogate-Control"``.
    :param purgers: where every invalidation goes after the store
        (:class:`~asgi_cache.purgers.VarnishPurger`,
        :class:`~asgi_cache.purgers.HTTPPurger`); see :mod:`asgi_cache.purging`.
    :param purge_wait: how long a write's response start waits for the
        purgers; one slower than this, or failing, is retried in the
        background and not waited for again until it answers.
    :param clock: wall-clock time in seconds; injectable for tests.
    """

    def __init__(
        self,
        store: Store | None = None,
        *,
        prefix: str = "asgi-cache",
        default_ttl: float = 60.0,
        heuristic_freshness: bool = True,
        targeted_cache_control: Iterable[str] = ("cdn-cache-control",),
        vary: Iterable[str] = (),
        credential_headers: Iterable[str] = ("authorization", "cookie"),
        statuses: Iterable[int] = DEFAULT_STATUSES,
        max_body_size: int = 1024 * 1024,
        honor_request_cache_control: bool = False,
        cache_status_key: bool = False,
        coalesce: bool = True,
        coalesce_wait: float = 5.0,
        stale_while_revalidate: float = 0.0,
        stale_if_error: float = 0.0,
        origin_timeout: float | None = None,
        invalidation_failure: str = "retry",
        invalidation_wait: float = 1.0,
        enabled: bool = True,
        surrogate_keys: bool | str = False,
        surrogate_keys_for: str | None = None,
        cdn_cache_control: str | None = None,
        cdn_field: str = "CDN-Cache-Control",
        purgers: Iterable[Purger] = (),
        purge_wait: float = 1.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if not isinstance(prefix, str) or not prefix:
            raise ValueError("Cache: prefix must be a non-empty string")
        if cache_status_key and not (prefix.isascii() and prefix.isprintable()):
            # RFC 8941 §3.3.3: the key goes out as a String, printable ASCII only.
            raise ValueError(
                f"Cache: cache_status_key needs a printable ASCII prefix, got {prefix!r}"
            )
        if invalidation_failure not in INVALIDATION_FAILURES:
            raise ValueError(
                f"Cache: invalidation_failure must be one of {INVALIDATION_FAILURES}, "
                f"got {invalidation_failure!r}"
            )
        if not isinstance(enabled, bool):
            raise TypeError(f"Cache: enabled must be True or False, got {enabled!r}")
        #: Whether the cache is consulted at all; read once per request, so it
        #: may be flipped at any time (:meth:`disabled` does it for a block).
        self.enabled = enabled
        self.invalidation_failure = invalidation_failure
        self.invalidation_wait = float(invalidation_wait)
        checked_ttl = check_ttl("Cache", default_ttl, "default_ttl")
        if checked_ttl is None:  # what every other lifetime falls back on
            raise TypeError("Cache: default_ttl must be a number of seconds, got None")
        self.default_ttl = checked_ttl
        if not isinstance(heuristic_freshness, bool):
            raise TypeError(
                f"Cache: heuristic_freshness must be True or False, got {heuristic_freshness!r}"
            )
        self.heuristic_freshness = heuristic_freshness
        self.targeted_cache_control = check_header_names(
            "Cache", "targeted_cache_control", targeted_cache_control
        )
        self.vary = check_header_names("Cache", "vary", vary)
        self.credential_headers = check_header_names(
            "Cache", "credential_headers", credential_headers
        )
        self.statuses = check_statuses("Cache", statuses)
        self.max_body_size = check_body_size("Cache", max_body_size)
        for name, seconds in (
            ("coalesce_wait", coalesce_wait),
            ("stale_while_revalidate", stale_while_revalidate),
            ("stale_if_error", stale_if_error),
            ("origin_timeout", 1.0 if origin_timeout is None else origin_timeout),
            ("invalidation_wait", invalidation_wait),
            ("purge_wait", purge_wait),
        ):
            check_seconds("Cache", name, seconds)
        #: The header surrogate keys go out in (:mod:`asgi_cache.surrogate`), if any.
        self.surrogate_keys = key_format("Cache", surrogate_keys)
        self.surrogate_keys_for: bytes | None = None
        if surrogate_keys_for is not None:
            (marker,) = check_header_names("Cache", "surrogate_keys_for", (surrogate_keys_for,))
            self.surrogate_keys_for = marker.encode("latin-1")
        self.cdn_cache_control = check_directives("Cache", cdn_cache_control)
        self.cdn_field = check_front_field("Cache", cdn_field)
        #: The purgers, and the purges they still owe (:mod:`asgi_cache.purging`).
        self.purging = Purging(purgers, purge_wait)
        self.store: Store = _checked_store(store, clock)
        self.prefix = prefix
        self.honor_request_cache_control = honor_request_cache_control
        self.cache_status_key = bool(cache_status_key)
        self.coalesce = coalesce
        self.coalesce_wait = float(coalesce_wait)
        self.stale_while_revalidate = float(stale_while_revalidate)
        self.stale_if_error = float(stale_if_error)
        self.origin_timeout = origin_timeout
        self.clock = clock
        self.counters = CacheStats()
        #: Invalidations the store could not take yet (see :mod:`asgi_cache.pending`).
        self.pending = PendingInvalidations(self.store, namespace(prefix))
        #: The event loop the application serves on, once the middleware has
        #: started there: where :attr:`sync` runs calls made from other threads.
        self.home_loop: asyncio.AbstractEventLoop | None = None
        #: A path's canonical spellings under the compiled routes (set by the
        #: middleware; until then a path is its own).
        self.canonical_paths: Callable[[str], list[str]] = _itself
        #: Told what the cache did with each request of a cached route (see
        #: :mod:`asgi_cache.observers`); empty, they cost the hit path nothing
        #: but the test that it is.  :mod:`asgi_cache.otel` adds one.
        self.observers: list[RequestObserver] = []

    @classmethod
    def from_url(cls, url: str, **kwargs: Any) -> Cache:
        """A cache on the store a URL names: ``memory://`` or ``redis://...``.

        ``rediss://`` (TLS) and ``unix://`` work too; ``?cluster=true`` makes it
        a Redis Cluster client.  Other stores add their schemes with
        :func:`~asgi_cache.register_scheme`.  Keyword arguments that
        :class:`Cache` takes go to it; the others go to the store: for Redis
        the store's ``timeout`` / ``failure_threshold`` / ``cooldown`` /
        ``cluster`` and the client's ``password``, ``username``, ``db``, socket
        timeouts, ``ssl_*`` files... (:data:`~asgi_cache.stores.registry.REDIS_OPTIONS`),
        for memory ``max_bytes``, ``max_entries``, ``clock``, ``clear_on_close``.
        One neither takes raises ``TypeError`` listing what is accepted.
        """
        from asgi_cache.stores.registry import open_url

        own = {name: value for name, value in kwargs.items() if name in _CACHE_ARGUMENTS}
        options = {name: value for name, value in kwargs.items() if name not in own}
        return cls(open_url(url, **options), **own)

    @contextmanager
    def disabled(self) -> Iterator[Cache]:
        """Switch the cache off for the ``with`` block (``enabled=False``), then back.

        Within it the application answers every request as if there were no
        cache, and :meth:`invalidate`, :meth:`invalidate_path`, :meth:`clear`
        and the invalidations of write requests do nothing (they return ``0``):
        what is stored stays as it was, for when the block ends.  Memoized
        values and :meth:`get` / :meth:`set` still use the store; isolate
        those with :meth:`isolated`.  A plain ``with``, so it serves in
        ``def`` and ``async def`` tests alike.
        """
        before = self.enabled
        self.enabled = False
        try:
            yield self
        finally:
            self.enabled = before

    @contextmanager
    def isolated(self, store: Store | None = None) -> Iterator[Cache]:
        """Give the cache a fresh, empty store for the ``with`` block, then its own back.

        ``store``: the store to use meanwhile; a new :class:`MemoryStore` on
        this cache's clock when omitted.  Counters (:meth:`stats`) and
        invalidations still pending start afresh too, so what a test observes
        is only its own doing, and nothing it stores is left behind for the
        next: the usual store is never touched, whatever it is (a Redis a
        developer also runs the app against, for one).  No purge goes to the
        cache's purgers meanwhile: a test's writes never purge a real CDN.
        Not for a running production app: requests under way when the block
        begins or ends may read one store and write the other.
        """
        saved = (self.store, self.pending, self.counters, self.purging)
        self.store = _checked_store(store, self.clock)
        self.pending = PendingInvalidations(self.store, namespace(self.prefix))
        self.counters = CacheStats()
        self.purging = Purging((), self.purging.wait)
        try:
            yield self
        finally:
            self.store, self.pending, self.counters, self.purging = saved

    async def invalidate(self, *tags: str) -> int:
        """Remove every entry stored under any of ``tags``; return how many.

        When the store fails, the invalidation is kept and retried until the
        store takes it, and :class:`InvalidationPending` is raised (see
        "Consistency" in the README); so for every method that invalidates.
        """
        if not tags or not self.enabled:
            return 0
        return await self.invalidate_store_tags([tag_key(self.prefix, tag) for tag in tags])

    async def invalidate_path(self, path: str) -> int:
        """Remove every stored variant (query strings, headers) of ``path``.

        ``path`` is the path the routes see (without the ``root_path``).  Once
        the middleware has compiled the routes, every spelling the route reads
        as the same resource goes too (``/products/1`` removes ``/products/01``
        for an ``int`` parameter), as after a write.
        """
        if not self.enabled:
            return 0
        paths = dict.fromkeys([path, *self.canonical_paths(path)])
        return await self.invalidate_store_tags([path_tag(self.prefix, p) for p in paths])

    async def clear(self) -> int:
        """Remove everything under this cache's prefix, and nothing else."""
        if not self.enabled:
            return 0
        try:
            return await self.store.clear(namespace(self.prefix))
        except Exception as exc:
            self.pending.keep_clear()
            raise self._invalidation_failed("clear", exc) from exc
        finally:
            if self.purging.purgers:
                fmt = self.surrogate_keys or FORMATS["surrogate-key"]
                await self.purging.send(Purge((surrogate_key(self.prefix, fmt),), everything=True))

    async def invalidate_store_tags(self, tags: list[str]) -> int:
        """Invalidate store-level ``tags`` (from :mod:`asgi_cache.keys`): the one
        way every invalidation of this cache reaches its store.

        Whatever is still pending from an earlier failure goes first.  A store
        that timed out is asked again for up to :attr:`invalidation_wait`
        seconds (a stalled Redis may still run it, but only a reply proves it
        did), and a lost connection once at once; then the invalidation is kept.
        """
        try:
            return await self._invalidate_store(tags)
        finally:
            if self.purging.purgers:
                await self.purging.send(self._purge_of(tags))

    def _purge_of(self, tags: list[str]) -> Purge:
        """What the tier in front must purge for store-level ``tags``."""
        fmt = self.surrogate_keys or FORMATS["surrogate-key"]
        path_start = f"{self.prefix}:path:"
        paths = [tag[len(path_start) :] for tag in tags if tag.startswith(path_start)]
        return Purge(tuple(keys_of_tags(self.prefix, tags, fmt)), tuple(dict.fromkeys(paths)))

    async def _invalidate_store(self, tags: list[str]) -> int:
        give_up = time.monotonic() + self.invalidation_wait
        reconnected = False
        while True:
            try:
                if self.pending.waiting:
                    await self.pending.apply()
                removed = await self.store.invalidate(tags)
                break
            except Exception as exc:
                cause = type(exc.__cause__).__name__
                if cause == "TimeoutError" and time.monotonic() < give_up:
                    await anyio.sleep(_RETRY_PAUSE)
                    continue
                if cause == "ConnectionError" and not reconnected:
                    reconnected = True
                    continue
                self.pending.keep(tags)
                raise self._invalidation_failed(f"invalidation of {tags}", exc) from exc
        self.counters.invalidations += removed
        logger.debug("asgi-cache: invalidated %s (%d entries)", tags, removed)
        return removed

    def _invalidation_failed(self, what: str, exc: Exception) -> InvalidationPending:
        """Count and log a failed invalidation, kept in :attr:`pending`; the error to raise."""
        self.counters.store_errors += 1
        self.counters.invalidations_failed += 1
        logger.warning(
            "asgi-cache: %s failed (%s); kept, and retried until the store takes it", what, exc
        )
        return InvalidationPending(f"{what} failed ({exc}); it is kept and retried")

    def stats(self) -> dict[str, object]:
        """Counters since start: hits, misses, stores, bypasses by reason,
        collapsed, stale served, invalidations, store errors, invalidations the
        store refused and how many tags are still pending, plus what the store
        reports of itself (bytes, entries and evictions for memory)."""
        return {
            **self.counters.snapshot(),
            "invalidations_pending": len(self.pending),
            **(self.purging.stats() if self.purging.purgers else {}),
            **self.store.stats(),
        }

    async def check_store(self) -> bool:
        """Ask the store whether it answers (the middleware does it at startup); log
        one WARNING if not.

        The warning is the outage's one: the store's breaker is open from then
        on, so the requests that follow bypass the store quietly until it is
        back (which the store logs).  Never raises: an app whose cache is down
        still starts and serves, uncached.
        """
        try:
            await self.store.check()
        except Exception as exc:
            self.counters.store_errors += 1
            logger.warning(
                "asgi-cache: the store does not answer at startup (%s); requests bypass "
                "the cache until it does",
                exc,
            )
            return False
        return True

    async def aclose(self) -> None:
        """Release the store's connections (the middleware does it at shutdown)."""
        await self.pending.aclose()
        await self.purging.aclose()
        await self.store.aclose()

    @property
    def sync(self) -> SyncCache:
        """Blocking ``invalidate``, ``invalidate_path``, ``clear``, ``delete_memoized``,
        ``get``, ``set`` and ``delete``, for code that is not ``async`` (a ``def``
        endpoint, a job runner, a script); see :mod:`asgi_cache.sync`."""
        return SyncCache(self)

    # -- memoized values (asgi_cache.memo) -------------------------------------

    def memoize(self, ttl: float | None = None, *, tags: Iterable[str] = ()) -> Memoize:
        """Decorate a function (``async def`` or ``def``) to keep its results in this cache.

        Results are keyed by the function's ``module.qualname`` and its bound
        arguments (positional, keyword and defaulted forms share an entry) and
        live ``ttl`` seconds (``None``: :attr:`default_ttl`).  The wrapper is
        always ``async``; a ``def`` runs in a worker thread so it cannot block
        the event loop.  Concurrent calls with the same arguments run the
        function once.  ``tags`` let :meth:`invalidate` drop results along with
        the pages that show them.  A hit returns the result's JSON round trip,
        rebuilt as a pydantic model or dataclass when the return annotation
        names one; see :mod:`asgi_cache.memo` for what arguments may be.
        """
        return self._memoizer().memoize(ttl, tags=tags)

    async def delete_memoized(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> int:
        """Forget ``fn``'s memoized results: all of them, or only those of
        ``fn(*args, **kwargs)`` when arguments are given; return how many.

        Either is a tag invalidation (every result also carries a tag of its
        own), so a call computing meanwhile cannot store its (possibly stale)
        result afterwards.  Arguments follow the same keying rules as calls.
        """
        return await self._memoizer().delete_memoized(fn, *args, **kwargs)

    def memoized_functions(self) -> dict[str, Callable[..., Any]]:
        """The functions memoized by this cache, by ``module.qualname`` (a snapshot).

        Lets an admin endpoint purge a function by name, with
        :meth:`delete_memoized`.  Functions defined in one scope under one name
        share entries; the last one decorated stands for them.
        """
        return self._memoizer().functions()

    async def get(self, key: str, default: Any = None) -> Any:
        """The value :meth:`set` stored under ``key``, or ``default``.

        A stored ``None`` is returned as ``None``; an absent, expired or
        unreadable value, or a failing store, gives ``default``.
        """
        return await self._memoizer().get(key, default)

    async def set(
        self, key: str, value: Any, ttl: float | None = None, tags: Iterable[str] = ()
    ) -> bool:
        """Store ``value`` (anything JSON can hold, pydantic models included) under ``key``.

        It lives ``ttl`` seconds (``None``: :attr:`default_ttl`) unless
        :meth:`invalidate` names one of ``tags`` first.  Returns whether it was
        stored: a failing store costs the value, not an exception.  A value JSON
        cannot hold raises ``TypeError``.
        """
        return await self._memoizer().set(key, value, ttl, tags)

    async def delete(self, key: str) -> bool:
        """Remove the value under ``key``; return whether one was there.

        Unlike :meth:`get` and :meth:`set`, a failing store raises: a removal
        that silently failed would leave stale data in place.
        """
        return await self._memoizer().delete(key)

    def _memoizer(self) -> Memoizer:
        """The one :class:`~asgi_cache.memo.Memoizer` of this cache, made on first use."""
        memoizer: Memoizer | None = self.__dict__.get("_memo")
        if memoizer is None:
            memoizer = self.__dict__["_memo"] = Memoizer(self)
        return memoizer


def _checked_store(store: object, clock: Callable[[], float]) -> Store:
    """``store``, refused early unless it is a :class:`Store`; a memory store keeps
    to the cache's ``clock`` unless it was given its own.

    Accepted blindly, a URL or a bare Redis client would fail on every request
    (each logging a traceback) and again at shutdown.
    """
    if store is None:
        return MemoryStore(clock=clock)
    if isinstance(store, str):
        from asgi_cache.stores.urls import redact_url

        raise TypeError(
            f"Cache: store must be a Store, not a URL; open one with "
            f"Cache.from_url({redact_url(store)!r}, ...)"
        )
    if not isinstance(store, Store):
        hint = ""
        if type(store).__module__.startswith("redis"):
            hint = "; wrap a redis client in RedisStore(client)"
        raise TypeError(
            f"Cache: store must be a Store (MemoryStore, RedisStore or your own), "
            f"got {type(store).__qualname__}{hint}"
        )
    if isinstance(store, MemoryStore):
        store.follow_clock(clock)
    return store


def _itself(path: str) -> list[str]:
    return [path]


#: The keyword arguments of :class:`Cache`, which ``from_url`` keeps for the cache.
_CACHE_ARGUMENTS = frozenset(inspect.signature(Cache.__init__).parameters) - {"self", "store"}


def get_cache(request: HTTPConnection) -> Cache:
    """The :class:`Cache` serving this request, to invalidate from inside a route.

    ``LookupError`` naming the fix when the request did not pass through
    :class:`~asgi_cache.CacheMiddleware` (it is what puts the cache in the scope).
    """
    cache = request.scope.get(SCOPE_KEY)
    if not isinstance(cache, Cache):
        raise LookupError(
            "get_cache: this request did not pass through CacheMiddleware; add it with "
            "app.add_middleware(CacheMiddleware, cache=...) (it must wrap the routes "
            "that call get_cache, so not only a sub-application's)"
        )
    return cache
