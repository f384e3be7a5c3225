"""A store shared by every process that talks to the same Redis or Redis Cluster.

Key layout
----------
Keys and tags arrive already namespaced by the cache (``shop:v1:page:<hash>``,
``shop:v1:tag:product:42``); the store treats both as opaque strings.

* An entry lives under its key, as a plain string value with a Redis ``PX``
  expiry, so expired entries disappear without a sweeper and ``get`` is a
  single ``GET``.
* Each tag has two bookkeeping keys: a *member set* (the keys stored under the
  tag) and a *generation counter* (bumped by every invalidation)::

      shop:v1:tag:product:42:{1f0c9a4be2d37a65}:m    member set (SET)
      shop:v1:tag:product:42:{1f0c9a4be2d37a65}:g    generation counter (STRING)

  The braces hold the first 8 bytes of the tag's BLAKE2b digest, in hex.  Redis
  Cluster hashes only the text inside the *first* ``{...}`` of a key, so both
  keys of a tag always share a hash slot (a Lua script may touch both) while
  different tags spread over the cluster.  A tag that itself contains ``{``
  could pair that brace with ours (or form an empty ``{}``, which Redis
  ignores), so for such tags the digest goes first instead:
  ``{1f0c9a4be2d37a65}:<tag>:m``.  Either way the hashed text is exactly the
  digest.

Invalidation protocol
---------------------
Entry keys and tag keys may live on different cluster nodes, so no MULTI or Lua
script can span them.  Instead each tag carries a generation counter:

* ``fence(tags)`` reads the counters (missing = never invalidated).
* ``set(key, value, ttl, tags, fence)``:

  1. per tag, a script on the tag's slot adds ``key`` to the member set only if
     the counter still equals the fenced value (and extends the set's TTL so it
     outlives the entry); a refusal means ``set`` stores nothing;
  2. ``SET key value PX ttl``;
  3. re-read the counters; if one moved, ``DEL key`` and report failure.

* ``invalidate(tags)``: per tag, one script increments the counter, reads the
  member set and deletes it, atomically; then the members are unlinked.

Why an entry fenced before an invalidation cannot survive it: the invalidation's
script is atomic on the tag's slot, so it runs either before or after step 1
of a racing ``set``.  If before, step 1 sees the new generation and refuses.
If after, ``key`` is in the member set the script returns, so the invalidation
deletes ``key`` -- unless step 2 lands after that delete, but then step 3 (which
follows step 2) sees the new generation and deletes ``key`` itself.  Reading and
deleting the member set in the same script as the increment matters: a separate
later delete of the set could drop a member added, legitimately, by a ``set``
fenced *after* the increment, and the next invalidation would miss that entry.

The remaining gap is a ``set`` that dies between steps 2 and 3 (process crash,
or cancellation by the caller) while an invalidation races it: that entry
survives until its TTL.  When ``set`` fails with an error instead, it makes a
best-effort ``DEL key`` before raising.

Failing open
------------
Every operation raises :class:`~asgi_cache.stores.base.StoreError` when Redis is
unreachable, slower than ``timeout`` or replies unexpectedly, and a circuit
breaker stops talking to a failing Redis for ``cooldown`` seconds, so a Redis
outage costs requests nothing but the cache.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import math
import re
import sys
import time
import urllib.parse
from collections.abc import Awaitable, Callable, Iterable, Sequence
from typing import TYPE_CHECKING, Any, TypeVar

from asgi_cache.stores.base import Fence, Store, StoreError
from asgi_cache.stores.breaker import Breaker

if sys.version_info >= (3, 11):
    from asyncio import timeout as _timeout
else:  # pragma: no cover - redis-py depends on async-timeout on these versions
    try:
        from async_timeout import timeout as _timeout
    except ImportError:  # no redis either: RedisStore refuses to start, importing must work
        pass

try:
    import redis.asyncio as _redis
    from redis.asyncio.cluster import RedisCluster as _RedisCluster
    from redis.exceptions import NoScriptError as _NoScriptError
except ImportError:  # pragma: no cover - exercised only without the extra installed
    _redis = None  # type: ignore[assignment]

if TYPE_CHECKING:
    from redis.asyncio import Redis
    from redis.asyncio.cluster import RedisCluster

    Client = Redis | RedisCluster

__all__ = ["RedisStore"]

logger = logging.getLogger("asgi_cache")

T = TypeVar("T")

#: Generation counters live this long after their last invalidation.  They only
#: matter while a ``set`` is between its fence and its last step, so a day is
#: plenty; the expiry keeps counters of tags nobody invalidates any more from
#: piling up.
_GENERATION_TTL_MS = 24 * 60 * 60 * 1000

#: Member sets outlive their newest member by this much: the entry is written
#: after the set is extended, so without slack the set could expire a moment
#: before the entry and an invalidation in that moment would miss it.
_MEMBER_SLACK_MS = 1000

_BATCH = 500


#: A script to run: its source, its keys (all in one slot) and its arguments.
_ScriptCall = tuple[str, tuple[str, ...], tuple[object, ...]]

# KEYS: member set, generation counter.
# ARGV: entry key, member TTL (ms), "1" to check the fence, fenced generation ("" = none).
_INDEX_SCRIPT = """\
if ARGV[3] == '1' and (redis.call('GET', KEYS[2]) or '') ~= ARGV[4] then
  return 0
end
redis.call('SADD', KEYS[1], ARGV[1])
local ttl = tonumber(ARGV[2])
if redis.call('PTTL', KEYS[1]) < ttl then
  redis.call('PEXPIRE', KEYS[1], ttl)
end
return 1
"""

# KEYS: member set, generation counter.  ARGV: generation TTL (ms).
_INVALIDATE_SCRIPT = """\
redis.call('INCR', KEYS[2])
redis.call('PEXPIRE', KEYS[2], ARGV[1])
local members = redis.call('SMEMBERS', KEYS[1])
redis.call('UNLINK', KEYS[1])
return members
"""

_RELEASE_SCRIPT = """\
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""

# KEYS: the lock.  ARGV: the holder's token, the new expiry (ms).
_RENEW_SCRIPT = """\
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
return 0
"""

#: A held lock lives this long unless its holder renews it (every third of
#: it), so a holder that died or lost Redis frees the lock this soon,
#: whatever ``ttl`` it asked for.
_LOCK_LEASE = 1.0

_SCRIPTS = {
    script: hashlib.sha1(script.encode()).hexdigest()
    for script in (_INDEX_SCRIPT, _INVALIDATE_SCRIPT)
}

_BOOKKEEPING_KEY = re.compile(
    rb"\A(?:\{(?P<lead>[0-9a-f]{16})\}:(?P<tag1>.*)|(?P<tag2>.*):\{(?P<tail>[0-9a-f]{16})\}):[mg]\Z",
    re.DOTALL,
)
_GLOB_SPECIAL = re.compile(r"([\\*?\[\]])")


def _digest(tag: bytes) -> str:
    return hashlib.blake2b(tag, digest_size=8).hexdigest()


def _is_bookkeeping(key: bytes) -> bool:
    """Whether ``key`` is a tag's member set or counter (its digest matches its tag)."""
    match = _BOOKKEEPING_KEY.match(key)
    if match is None:
        return False
    if match["lead"] is not None:
        return _digest(match["tag1"]) == match["lead"].decode()
    return _digest(match["tag2"]) == match["tail"].decode()


class _UnexpectedReply(Exception):
    pass


def _expect(reply: object, kind: type[T] | tuple[type, ...], what: str) -> T:
    if isinstance(reply, Exception):
        raise reply
    if not isinstance(reply, kind):
        raise _UnexpectedReply(f"{what}: unexpected reply {reply!r}")
    return reply  # type: ignore[return-value]


class RedisStore(Store):
    """A :class:`~asgi_cache.stores.base.Store` on Redis or Redis Cluster.

    ``client`` is a redis-py asyncio client the caller owns and keeps owning:
    ``redis.asyncio.Redis`` (also as returned by Sentinel's ``master_for``) or
    ``redis.asyncio.cluster.RedisCluster``.  :meth:`aclose` leaves it open; use
    :meth:`from_url` to have the store create and close its own client.  The
    client must return bytes: clients made with ``decode_responses=True`` are
    refused with ``ValueError``, because entries are binary.

    Every operation raises :class:`~asgi_cache.stores.base.StoreError` on any
    failure, never a redis-py exception.  ``get``, ``fence``, ``set`` and
    ``delete`` each complete or fail within ``timeout`` seconds (a failed ``set``
    may spend another ``timeout`` removing what it wrote; on Python < 3.12 a
    cancellation redis-py swallows leaves the wait to the client's
    ``socket_timeout``, which :meth:`from_url` sets to ``timeout``: give a
    client you pass in one too); ``invalidate`` and
    ``clear`` do work proportional to the data, so ``timeout`` bounds each of
    their round trips instead.  After ``failure_threshold`` consecutive
    failures (one counts only if no other call succeeded while it was in
    flight: a busy event loop is not an outage) the store fails immediately,
    without touching Redis, for ``cooldown`` seconds (measured with
    ``clock``); then one call is let through
    and its success closes the breaker again.  Opening and closing are logged
    at WARNING on the ``asgi_cache`` logger; failures while open are not.

    A cluster client discovers the cluster on first use and after node errors,
    which with redis-py 8 takes 0.1-0.3 s (it parses the server's whole
    ``COMMAND`` table).  The store lets that finish in the background while
    calls fail, so recovery can take an extra ``cooldown``; to avoid failing
    the first requests, ``await store.client.initialize()`` at startup.
    """

    def __init__(
        self,
        client: Client,
        *,
        timeout: float = 0.05,
        failure_threshold: int = 5,
        cooldown: float = 1.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        _require_redis()
        if not timeout > 0:
            raise ValueError(f"timeout must be positive, not {timeout!r}")
        if failure_threshold < 1:
            raise ValueError(f"failure_threshold must be at least 1, not {failure_threshold!r}")
        if not cooldown >= 0:
            raise ValueError(f"cooldown must not be negative, not {cooldown!r}")
        if client.get_connection_kwargs().get("decode_responses"):
            raise ValueError(
                "RedisStore needs a client that returns bytes; create it without "
                "decode_responses=True (entries are binary)"
            )
        self._client = client
        self._cluster = isinstance(client, _RedisCluster)
        self._timeout = timeout
        self._reading: dict[str, asyncio.Future[bytes | None]] = {}
        self._breaker = Breaker(failure_threshold, cooldown, clock)
        self._owns_client = False
        self._discovery: asyncio.Future[Any] | None = None
        self._locks: dict[tuple[str, str], _Held] = {}

    @classmethod
    def from_url(
        cls,
        url: str,
        *,
        cluster: bool | None = None,
        timeout: float = 0.05,
        failure_threshold: int = 5,
        cooldown: float = 1.0,
        clock: Callable[[], float] = time.monotonic,
        **client_kwargs: Any,
    ) -> RedisStore:
        """Create a store with its own client; :meth:`aclose` closes that client.

        The client is a ``RedisCluster`` when ``cluster=True`` or the URL has a
        ``cluster=true`` query parameter, a plain ``Redis`` otherwise.
        ``client_kwargs`` go to the client's ``from_url`` (``max_connections``,
        ``password``, ...).
        """
        _require_redis()
        url, url_cluster = _pop_cluster_flag(url)
        # The client's own read and connect timeouts back the store's timeout
        # up where a cancellation cannot reach (see ``_within``).
        client_kwargs.setdefault("socket_timeout", timeout)
        client_kwargs.setdefault("socket_connect_timeout", timeout)
        client: Client
        if url_cluster if cluster is None else cluster:
            client = _RedisCluster.from_url(url, **client_kwargs)
        else:
            client = _redis.Redis.from_url(url, **client_kwargs)
        # If the constructor refuses the client, nothing has connected yet: there is
        # nothing to close, and redis-py does not warn about unconnected clients.
        store = cls(
            client,
            timeout=timeout,
            failure_threshold=failure_threshold,
            cooldown=cooldown,
            clock=clock,
        )
        store._owns_client = True
        return store

    @staticmethod
    def tag_keys(tag: str) -> tuple[str, str]:
        """Return the (member set, generation counter) keys of ``tag``; see the module docs."""
        digest = _digest(tag.encode())
        base = f"{{{digest}}}:{tag}" if "{" in tag else f"{tag}:{{{digest}}}"
        return f"{base}:m", f"{base}:g"

    @property
    def client(self) -> Client:
        """The redis-py client this store talks through."""
        return self._client

    # -- the Store interface -------------------------------------------------

    async def get(self, key: str) -> bytes | None:
        """One ``GET``; concurrent gets of one key share it.

        A burst of requests for a hot key (or a cold one: everybody misses at
        once) then costs Redis one round trip per process, not one per request.
        """
        pending = self._reading.get(key)
        if pending is not None:
            return await asyncio.shield(pending)  # a waiter's cancellation stays its own
        shared = self._reading[key] = asyncio.get_running_loop().create_future()

        async def call() -> bytes | None:
            reply = await self._client.get(key)
            return _expect(reply, (bytes, type(None)), "GET")

        try:
            result = await self._guard("get", call)
        except BaseException as exc:
            error = exc if isinstance(exc, Exception) else StoreError("Redis get abandoned")
            shared.set_exception(error)
            shared.exception()  # retrieved: the waiters, if any, report it
            raise
        else:
            shared.set_result(result)
            return result
        finally:
            del self._reading[key]

    async def fence(self, tags: Sequence[str]) -> Fence:
        if not tags:
            return ()

        async def call() -> Fence:
            return tuple(await self._generations(tags))

        return await self._guard("fence", call)

    async def set(
        self,
        key: str,
        value: bytes,
        ttl: float,
        tags: Sequence[str] = (),
        fence: Fence | None = None,
    ) -> bool:
        """Store ``value`` under ``key`` unless ``fence`` shows a tag was invalidated since.

        See the module docstring for the three steps and why they make tag
        invalidation atomic with respect to concurrent calls, also on a cluster.
        """
        if not ttl > 0:
            return False
        if fence is not None:
            if len(fence) != len(tags):
                raise ValueError("fence was not taken for these tags")
            if not all(generation is None or isinstance(generation, bytes) for generation in fence):
                raise ValueError("fence did not come from RedisStore.fence")
        ttl_ms = max(1, math.ceil(ttl * 1000))
        written = False

        async def call() -> bool:
            nonlocal written
            if tags and not await self._index(key, ttl_ms, tags, fence):
                return False
            written = True
            _expect(await self._client.set(key, value, px=ttl_ms), bool, "SET")
            if fence and list(fence) != await self._generations(tags):
                await self._client.unlink(key)
                return False
            return True

        try:
            return await self._guard("set", call)
        except StoreError:
            if written:
                await self._forget(key)
            raise

    async def delete(self, key: str) -> bool:
        async def call() -> bool:
            return _expect(await self._client.unlink(key), int, "UNLINK") > 0

        return await self._guard("delete", call)

    async def invalidate(self, tags: Sequence[str]) -> int:
        """Remove the entries stored under ``tags`` and refuse sets fenced before this call.

        Each tag's generation is advanced and its member set read and deleted in
        one atomic script; the members are then unlinked in batches (on a
        cluster, redis-py splits each batch by slot).  Returns how many entries
        were actually removed (members that already expired are not counted).
        """
        if not tags:
            return 0

        async def call() -> int:
            commands: list[_ScriptCall] = []
            for tag in dict.fromkeys(tags):
                members_key, generation_key = self.tag_keys(tag)
                commands.append(
                    (_INVALIDATE_SCRIPT, (members_key, generation_key), (_GENERATION_TTL_MS,))
                )
            members: set[bytes] = set()
            for reply in await self._bounded(self._run_scripts(commands)):
                members.update(_expect(reply, (list, set), "invalidate script"))
            removed = 0
            for batch in _batches(sorted(members)):
                removed += _expect(await self._bounded(self._client.unlink(*batch)), int, "UNLINK")
            return removed

        return await self._guard("invalidate", call, per_round_trip=True)

    async def clear(self, prefix: str) -> int:
        """Remove every entry whose key starts with ``prefix``; return how many.

        Keys are found with ``SCAN MATCH`` (on a cluster redis-py scans every
        primary) and removed with ``UNLINK`` in batches; never ``KEYS`` or
        ``FLUSHDB``.  Member sets under the prefix go too, but generation
        counters are kept: deleting one would reset it, and a ``set`` fenced
        before an earlier invalidation could then match again.  They expire on
        their own.  The count excludes bookkeeping keys.
        """
        pattern = _GLOB_SPECIAL.sub(r"\\\1", prefix) + "*"

        async def call() -> int:
            removed = 0
            pending: list[bytes] = []
            keys = self._client.scan_iter(match=pattern, count=1000)
            try:
                while True:
                    key = await self._bounded(anext(keys, None))
                    if key is not None:
                        pending.append(_expect(key, bytes, "SCAN"))
                    if pending and (key is None or len(pending) >= _BATCH):
                        removed += await self._unlink_entries(pending)
                        pending = []
                    if key is None:
                        return removed
            finally:
                # scan_iter is an async generator: close it if we stop early.
                aclose = getattr(keys, "aclose", None)
                if aclose is not None:
                    await aclose()

        return await self._guard("clear", call, per_round_trip=True)

    async def acquire(self, name: str, token: str, ttl: float) -> bool:
        """``SET name token NX PX lease``, renewed while held: one round trip.

        The lock is set for a short lease (at most a second) and a background
        task renews it every third of that, up to ``ttl`` after this call, until
        :meth:`release`.  A holder that dies, hangs without its event loop, or
        loses Redis stops renewing, and the lock frees itself within the lease
        rather than after the whole ``ttl``.  A computation shorter than a third
        of the lease costs no renewal at all.
        """
        loop = asyncio.get_running_loop()
        started = loop.time()
        lease = min(ttl, _LOCK_LEASE)

        async def call() -> bool:
            return bool(await self._client.set(name, token, nx=True, px=_milliseconds(lease)))

        if not await self._guard("acquire", call):
            return False
        held = self._locks[name, token] = _Held(started + ttl, started + lease)
        held.task = asyncio.ensure_future(self._keep(name, token, held))
        return True

    async def release(self, name: str, token: str) -> None:
        """Delete ``name`` only if ``token`` still holds it (an atomic script).

        Tried once, within ``timeout``, even while the circuit breaker is open:
        the breaker spares requests a dead store, but a release is what frees
        every other process's waiters, and the store may well answer (the
        failures that opened the breaker may be over).  When that try fails,
        the release is retried in the background until it succeeds or the
        lock has expired by itself; this call still raises ``StoreError``.
        """
        held = self._locks.pop((name, token), None)
        if held is not None and held.task is not None:
            held.task.cancel()  # stop renewing
        try:
            await self._guard("release", lambda: self._unlock(name, token), force=True)
        except StoreError:
            if held is not None:
                self._locks[name, token] = held
                held.task = asyncio.ensure_future(self._release_later(name, token, held))
            raise

    async def wait_released(self, name: str, timeout: float) -> None:
        """Poll ``EXISTS name`` with a backoff from 5 ms to 100 ms, at most ``timeout``.

        Only one request per process polls for a given lock (the others wait
        on it in-process), so this costs Redis a handful of cheap commands per
        coalesced miss, not one per waiting request.  Raises ``StoreError`` as
        soon as a poll fails in what looks like an outage (the breaker is
        open, or no other call succeeded while the poll was in flight): the
        holder is then likely unable to release the lock either, and waiting
        on would only delay the request.  A poll that fails while other calls
        succeed (a busy event loop) is retried.
        """
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        delay = 0.005

        async def call() -> bool:
            return bool(await self._client.exists(name))

        while True:
            started = self._breaker.clock()
            try:
                if not await self._guard("wait", call):
                    return
            except StoreError:
                if self._breaker.outage(started):
                    raise
            remaining = deadline - loop.time()
            if remaining <= 0:
                return
            await asyncio.sleep(min(delay, remaining))
            delay = min(delay * 2, 0.1)

    async def _unlock(self, name: str, token: str) -> None:
        await self._client.eval(_RELEASE_SCRIPT, 1, name, token)

    async def _keep(self, name: str, token: str, held: _Held) -> None:
        """Renew the lock every third of its lease until ``held.deadline``;
        stop when the lock turns out lost, and forget it once it expires."""
        loop = asyncio.get_running_loop()
        try:
            while held.expires < held.deadline:
                await asyncio.sleep(_LOCK_LEASE / 3)
                now = loop.time()
                if now >= held.expires:
                    return  # renewals failed for a whole lease: the lock is gone
                lease = min(_LOCK_LEASE, held.deadline - now)
                if lease <= 0:
                    break

                async def call(lease: float = lease) -> bool:
                    reply = await self._client.eval(
                        _RENEW_SCRIPT, 1, name, token, _milliseconds(lease)
                    )
                    return bool(reply)

                try:
                    if not await self._guard("renew", call):
                        return  # lost: expired meanwhile (a stall), maybe taken by another
                except StoreError:
                    continue  # the next renewal may still come in time
                held.expires = now + lease
            await asyncio.sleep(max(0.0, held.expires - loop.time()))
        finally:
            self._forget_lock(name, token, held)

    def _forget_lock(self, name: str, token: str, held: _Held) -> None:
        """Called by ``held``'s task as it ends: forget the lock unless another task took over."""
        if self._locks.get((name, token)) is held and held.task is asyncio.current_task():
            del self._locks[name, token]

    async def _release_later(self, name: str, token: str, held: _Held) -> None:
        """Retry a failed release, with a backoff from 50 ms to 200 ms, until it
        succeeds or the lock would have expired by itself."""
        loop = asyncio.get_running_loop()
        delay = 0.05
        try:
            while True:
                await asyncio.sleep(min(delay, max(0.0, held.expires - loop.time())))
                if loop.time() >= held.expires:
                    return
                try:
                    await self._guard("release", lambda: self._unlock(name, token), force=True)
                except StoreError:
                    delay = min(delay * 2, 0.2)
                else:
                    logger.debug("Redis store released %r after a failed attempt", name)
                    return
        finally:
            self._forget_lock(name, token, held)

    async def aclose(self) -> None:
        """Close the client if :meth:`from_url` created it; a caller's client stays open."""
        if self._discovery is not None and not self._discovery.done():
            self._discovery.cancel()
        for held in self._locks.values():
            if held.task is not None:
                held.task.cancel()
        if self._owns_client:
            self._owns_client = False
            await self._client.aclose()

    # -- helpers -------------------------------------------------------------

    async def _guard(
        self,
        operation: str,
        call: Callable[[], Awaitable[T]],
        *,
        per_round_trip: bool = False,
        force: bool = False,
    ) -> T:
        """Run ``call`` through the breaker, turning every failure into ``StoreError``.

        Any ``Exception`` counts: besides ``RedisError``, redis-py raises plain
        ``RedisClusterException``, ``OSError`` and others on some failure paths,
        and a cache must never fail a request because its store did.  ``call``
        is bounded by ``timeout`` as a whole unless ``per_round_trip`` says it
        bounds each of its round trips itself (with :meth:`_bounded`).  With
        ``force``, ``call`` runs even while the breaker is open; its failure
        then does not push the breaker's cooldown back, its success closes it.
        """
        breaker = self._breaker
        allowed = breaker.allow()
        if not allowed and not force:
            raise StoreError(f"Redis {operation} skipped: the circuit breaker is open")
        started = breaker.clock()
        try:
            if per_round_trip:
                await self._bounded(self._ready())
                result = await call()
            else:

                async def ready_then_call() -> T:
                    await self._ready()
                    return await call()

                result = await _within(self._timeout, ready_then_call())
        except Exception as exc:
            if allowed:
                self._record_failure(operation, exc, started)
            if isinstance(exc, asyncio.TimeoutError):
                raise StoreError(f"Redis {operation} took longer than {self._timeout:g}s") from exc
            raise StoreError(f"Redis {operation} failed: {_describe(exc)}") from exc
        except BaseException:
            if allowed:
                breaker.abandoned()
            raise
        if breaker.succeeded():
            logger.warning("Redis store recovered; circuit breaker closed")
        return result

    def _record_failure(self, operation: str, exc: Exception, started: float) -> None:
        transition = self._breaker.failed(started)
        if transition == "opened":
            logger.warning(
                "Redis store %s failed (%s); %d consecutive failures, circuit breaker "
                "open: bypassing Redis for %gs",
                operation,
                _describe(exc),
                self._breaker.failures,
                self._breaker.cooldown,
            )
        elif transition == "reopened":
            logger.debug(
                "Redis store trial %s failed (%s); breaker stays open", operation, _describe(exc)
            )
        else:
            logger.warning("Redis store %s failed: %s", operation, _describe(exc))

    async def _ready(self) -> None:
        """Wait (within the caller's timeout) for a cluster client to know the cluster.

        A redis-py cluster client discovers the topology on first use and again
        after a node error, and each time also fetches and parses the whole
        ``COMMAND`` table: 0.1-0.3 s in pure Python, longer than a request
        should wait, and redis-py drops all node connections when that is
        cancelled.  So it runs in a task of its own that outlives the timeouts
        of the calls waiting for it; they fail (and count as failures) until it
        is done.  ``_initialize`` is redis-py's private "needs discovery" flag;
        without it, discovery simply happens inside the calls, as before.
        """
        if not self._cluster or not getattr(self._client, "_initialize", False):
            return
        task = self._discovery
        if task is None or task.done():
            task = self._discovery = asyncio.ensure_future(self._client.initialize())
            task.add_done_callback(_retrieve_exception)
        await asyncio.shield(task)

    async def _bounded(self, awaitable: Awaitable[T]) -> T:
        return await _within(self._timeout, awaitable)

    async def _generations(self, tags: Sequence[str]) -> list[bytes | None]:
        pipe = self._client.pipeline(transaction=False)
        for tag in tags:
            pipe.execute_command("GET", self.tag_keys(tag)[1])
        replies = await pipe.execute(raise_on_error=False)
        return [_expect(reply, (bytes, type(None)), "GET generation") for reply in replies]

    async def _index(self, key: str, ttl_ms: int, tags: Sequence[str], fence: Fence | None) -> bool:
        member_ttl = ttl_ms + _MEMBER_SLACK_MS
        commands: list[_ScriptCall] = []
        for i, tag in enumerate(tags):
            members_key, generation_key = self.tag_keys(tag)
            fenced = fence[i] if fence is not None else None
            commands.append(
                (
                    _INDEX_SCRIPT,
                    (members_key, generation_key),
                    (
                        key,
                        member_ttl,
                        "0" if fence is None else "1",
                        fenced if isinstance(fenced, bytes) else b"",
                    ),
                )
            )
        replies = await self._run_scripts(commands)
        return all(_expect(reply, int, "index script") == 1 for reply in replies)

    async def _run_scripts(self, commands: Sequence[_ScriptCall]) -> list[Any]:
        """Run scripts in one pipeline with EVALSHA, retrying unknown ones with EVAL.

        redis-py's ``Script`` helper cannot be used in a cluster pipeline, and a
        node may have lost its script cache (restart, failover), so a
        ``NoScriptError`` reply is answered by sending the source for just
        those scripts; nothing ran for them, so re-running is safe.
        """
        replies = await self._pipeline(
            ("EVALSHA", _SCRIPTS[script], len(keys), *keys, *args)
            for script, keys, args in commands
        )
        missing = [i for i, reply in enumerate(replies) if isinstance(reply, _NoScriptError)]
        if missing:
            retried = await self._pipeline(
                ("EVAL", commands[i][0], len(commands[i][1]), *commands[i][1], *commands[i][2])
                for i in missing
            )
            for i, reply in zip(missing, retried, strict=True):
                replies[i] = reply
        return replies

    async def _pipeline(self, commands: Iterable[tuple[Any, ...]]) -> list[Any]:
        pipe = self._client.pipeline(transaction=False)
        for command in commands:
            pipe.execute_command(*command)
        replies: list[Any] = await pipe.execute(raise_on_error=False)
        return replies

    async def _unlink_entries(self, keys: list[bytes]) -> int:
        """Unlink entries (counted) and member sets (not counted); keep generation counters."""
        entries: list[bytes] = []
        member_sets: list[bytes] = []
        for key in keys:
            if not _is_bookkeeping(key):
                entries.append(key)
            elif key.endswith(b":m"):
                member_sets.append(key)
        removed = 0
        if entries:
            removed = _expect(await self._bounded(self._client.unlink(*entries)), int, "UNLINK")
        if member_sets:
            await self._bounded(self._client.unlink(*member_sets))
        return removed

    async def _forget(self, key: str) -> None:
        """Best effort: remove what a failed ``set`` may have written."""
        try:
            await self._bounded(self._client.unlink(key))
        except Exception as exc:
            logger.debug(
                "Redis store could not remove %r after a failed set: %s", key, _describe(exc)
            )


class _Held:
    """A lock this store holds: until when it may, until when Redis keeps it
    without a renewal (both on the event loop's clock), and the task that
    renews it or retries its release."""

    __slots__ = ("deadline", "expires", "task")

    def __init__(self, deadline: float, expires: float) -> None:
        self.deadline = deadline
        self.expires = expires
        self.task: asyncio.Future[None] | None = None


def _milliseconds(seconds: float) -> int:
    return max(1, int(seconds * 1000))


def _require_redis() -> None:
    if _redis is None:
        raise ImportError('RedisStore needs the redis package: pip install "asgi-cache[redis]"')


async def _within(seconds: float, awaitable: Awaitable[T]) -> T:
    """Await ``awaitable`` for at most ``seconds`` (raises ``TimeoutError``).

    Inline, without a task of its own: a hit pays for no extra event-loop
    turn.  redis-py awaits some writes through ``asyncio.wait_for``, which
    before Python 3.12 can swallow a cancellation that lands as the write
    completes (CPython gh-86296); the read that follows is then bounded by the
    client's own ``socket_timeout``, which :meth:`RedisStore.from_url` sets to
    the store's timeout.
    """
    async with _timeout(seconds):
        return await awaitable


def _retrieve_exception(task: asyncio.Future[Any]) -> None:
    """Mark a background failure as seen: the calls waiting for it report it."""
    if not task.cancelled():
        task.exception()


def _describe(exc: BaseException) -> str:
    """``Type: message``; redis-py 8's exception repr leaves the message out."""
    message = str(exc)
    return f"{type(exc).__name__}: {message}" if message else type(exc).__name__


def _batches(keys: list[bytes]) -> Iterable[list[bytes]]:
    for start in range(0, len(keys), _BATCH):
        yield keys[start : start + _BATCH]


def _pop_cluster_flag(url: str) -> tuple[str, bool]:
    """Remove a ``cluster=<bool>`` query parameter (redis-py would reject it)."""
    parts = urllib.parse.urlsplit(url)
    query = urllib.parse.parse_qsl(parts.query, keep_blank_values=True)
    flags = [value for name, value in query if name == "cluster"]
    if not flags:
        return url, False
    value = flags[-1].lower()
    if value not in ("1", "true", "yes", "on", "0", "false", "no", "off"):
        raise ValueError(f"cluster={flags[-1]!r} in the Redis URL is not a boolean")
    rest = urllib.parse.urlencode([(name, v) for name, v in query if name != "cluster"])
    return urllib.parse.urlunsplit(parts._replace(query=rest)), value in ("1", "true", "yes", "on")
