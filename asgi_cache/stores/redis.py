"""A store shared by every process that talks to the same Redis or Redis Cluster.

Key layout
----------
Keys and tags arrive already namespaced by the cache (``shop:v1:page:<hash>``,
``shop:v1:tag:product:42``); the store treats both as opaque strings.

* An entry lives under its key, as a plain string value with a Redis ``PX``
  expiry, so expired entries disappear without a sweeper and ``get`` is a
  single ``GET``.
* Each tag has three bookkeeping keys: a *member set* (the keys stored under
  the tag), a *generation counter* (bumped by every invalidation) and a
  *pending set* (the keys an invalidation took over and has yet to remove)::

      shop:v1:tag:product:42:{1f0c9a4be2d37a65}:m    member set (SET)
      shop:v1:tag:product:42:{1f0c9a4be2d37a65}:g    generation counter (STRING)
      shop:v1:tag:product:42:{1f0c9a4be2d37a65}:p    pending set (SET)

  The braces hold the first 8 bytes of the tag's BLAKE2b digest, in hex.  Redis
  Cluster hashes only the text inside the *first* ``{...}`` of a key, so the
  keys of a tag always share a hash slot (a Lua script may touch all three) while
  different tags spread over the cluster.  A tag that itself contains ``{``
  could pair that brace with ours (or form an empty ``{}``, which Redis
  ignores), so for such tags the digest goes first instead:
  ``{1f0c9a4be2d37a65}:<tag>:m``.  Either way the hashed text is exactly the
  digest.

Invalidation protocol
---------------------
Entry keys and tag keys may live on different cluster nodes, so no MULTI or Lua
script can span them.  Instead each tag carries a generation counter:

* ``fence(tags)`` reads the counters (missing = never invalidated; a counter
  only ever moves forward while it exists).
* ``set(key, value, ttl, tags, fence)``:

  1. per tag, a script on the tag's slot adds ``key`` to the member set only if
     the counter still equals the fenced value (and extends the set's TTL so it
     outlives the entry); a refusal means ``set`` stores nothing;
  2. ``SET key value PX ttl``;
  3. re-read the counters; if one moved, ``DEL key`` and report failure.

* ``invalidate(tags)``: per tag, one script increments the counter, moves the
  member set's keys into the pending set (deleting the member set) and returns
  the pending set, atomically; then the returned keys are unlinked, and only
  then removed from the pending set.

Why an entry fenced before an invalidation cannot survive it: the invalidation's
script is atomic on the tag's slot, so it runs either before or after step 1
of a racing ``set``.  If before, step 1 sees the new generation and refuses.
If after, ``key`` is in the pending set the script returns, and it stays there
until an invalidation has unlinked it, so the invalidation deletes ``key`` --
unless step 2 lands after that delete, but then step 3 (which follows step 2)
sees the new generation and deletes ``key`` itself.  Moving the member set in
the same script as the increment matters: a separate later delete of the set
could drop a member added, legitimately, by a ``set`` fenced *after* the
increment, and the next invalidation would miss that entry.  Such a member goes
to the new member set, never to the pending set, which only the invalidations
themselves fill.

An invalidation cut off after its script (a timeout, a cancellation, a lost
connection, a stalled process) leaves its keys in the pending set, and every
later invalidation of the tag returns them along with its own: a retry, or the
tag's next invalidation, finishes the work.  The pending set keeps the longer
expiry of the two sets merged into it, so it outlives every entry it lists.

The remaining gap is a ``set`` that dies between steps 2 and 3 (process crash,
or cancellation by the caller) while an invalidation races it: that entry
survives until its TTL.  When ``set`` fails with an error instead, it makes a
best-effort ``DEL key`` before raising.

Garbage in the bookkeeping
--------------------------
A bookkeeping key of the wrong type, or a counter that is not a positive
integer INCR can advance (another program's value, a hand at ``redis-cli``),
is no store failure.  Both scripts check each key's ``TYPE`` first, delete what
is not theirs and count the tag as invalidated: whatever the key indexed is
lost, so the counter moves on -- to the server's time in microseconds, never
back to a value an in-flight fence might have read -- and a fenced ``set`` is
refused, while an unfenced one is indexed afresh.  ``fence`` reads a counter of
the wrong type as a value that is no generation; such a fence never matches,
so its ``set`` stores nothing.  One tag's garbage never stops the other tags of
the same ``invalidate``.

Failing open
------------
Every operation raises :class:`~asgi_cache.stores.base.StoreError` when Redis is
unreachable, slower than ``timeout`` or replies unexpectedly, and a circuit
breaker stops talking to a failing Redis for ``cooldown`` seconds, so a Redis
outage costs requests nothing but the cache.  On a cluster, the commands on one
key (``get``, an untagged ``set``, ``delete`` and the locks) go straight to the
primary owning the key's slot and count against that primary's breaker: a dead
primary turns off caching for its own keys only, and they come back as soon as
it answers a trial call again.  Commands that span nodes count for the store.
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
from asgi_cache.stores.near import NearCache
from asgi_cache.stores.tracking import Endpoint, track
from asgi_cache.stores.urls import redact_url
from asgi_cache.stores.warmup import warm_up

if sys.version_info >= (3, 11):
    from asyncio import timeout as _timeout
else:  # pragma: no cover - redis-py depends on async-timeout on these versions
    try:
        from async_timeout import timeout as _timeout
    except ImportError:  # no redis either: RedisStore refuses to start, importing must work
        pass

try:
    import redis.asyncio as _redis
    from redis.asyncio.cluster import PipelineCommand as _PipelineCommand
    from redis.asyncio.cluster import RedisCluster as _RedisCluster
    from redis.crc import key_slot as _key_slot
    from redis.exceptions import AskError as _AskError
    from redis.exceptions import ConnectionError as _RedisConnectionError
    from redis.exceptions import MovedError as _MovedError
    from redis.exceptions import NoScriptError as _NoScriptError
    from redis.exceptions import OutOfMemoryError as _OutOfMemoryError
    from redis.exceptions import ResponseError as _ResponseError
    from redis.exceptions import TimeoutError as _RedisTimeoutError
    from redis.exceptions import TryAgainError as _TryAgainError

    #: Replies saying a command went to the wrong node: it runs again, redirected.
    _REDIRECTED = (_MovedError, _AskError, _TryAgainError)
    #: Replies saying the node's connection was lost: the whole batch failed.
    _LOST = (_RedisConnectionError, _RedisTimeoutError, OSError, asyncio.TimeoutError)
except ImportError:  # pragma: no cover - exercised only without the extra installed
    _redis = None  # type: ignore[assignment]

if TYPE_CHECKING:
    from redis.asyncio import Redis
    from redis.asyncio.cluster import RedisCluster

    Client = Redis | RedisCluster

__all__ = ["RedisStore"]

logger = logging.getLogger("asgi_cache")

T = TypeVar("T")
_Loop = asyncio.AbstractEventLoop

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

#: How long :meth:`RedisStore.check` (at lifespan startup) may take to connect, discover
#: a cluster and load the scripts: long enough for a busy machine, short enough not to
#: hold a deployment up when Redis is unreachable.
STARTUP_TIMEOUT = 5.0

#: How long ``invalidate`` and ``clear`` wait for a cluster client's discovery
#: (a new event loop's client has to discover the cluster first).
_DISCOVERY_WAIT = 5.0

#: Where a command sent through ``_pipeline`` has its (first) key.
_KEY_AT = {"EVAL": 3, "EVALSHA": 3}

#: What a fence holds for a counter of the wrong type: like any value that is no
#: generation, it never matches a counter, so the fenced ``set`` is refused.
_GARBAGE = b"garbage"


#: A script to run: its source, its keys (all in one slot) and its arguments.
_ScriptCall = tuple[str, tuple[str, ...], tuple[object, ...]]

# What both scripts know about a tag's bookkeeping.  A key of the wrong type, or
# a counter that is not a positive integer small enough for INCR (garbage, or
# another program's value), is deleted: whatever it indexed is lost, so the tag
# counts as invalidated.  Its fresh generation is the server's time in
# microseconds, never an old value: a counter restarted at 1 could climb back to
# a value an in-flight fence read before the garbage, and admit that set again.
# A value counted up from an earlier fresh one stays below the clock, since one
# tag cannot be invalidated more than once per microsecond.
_BOOKKEEPING = """\
local function usable_set(key)
  local kind = redis.call('TYPE', key)['ok']
  if kind == 'set' or kind == 'none' then return true end
  redis.call('DEL', key)
  return false
end
local function is_generation(value)
  return string.match(value, '^[1-9][0-9]*$') ~= nil and #value <= 18
end
local function generation(key)
  local kind = redis.call('TYPE', key)['ok']
  if kind == 'none' then return false end
  if kind == 'string' then
    local value = redis.call('GET', key)
    if is_generation(value) then return value end
  end
  redis.call('DEL', key)
  return nil
end
local function advance(key, current, ttl)
  if current == nil then
    local now = redis.call('TIME')
    redis.call('SET', key, now[1] .. string.format('%06d', tonumber(now[2])), 'PX', ttl)
  else
    redis.call('INCR', key)
    redis.call('PEXPIRE', key, ttl)
  end
end
"""

# KEYS: member set, generation counter, pending set.
# ARGV: entry key, member TTL (ms), "1" to check the fence, fenced generation
# ("" = none), generation TTL (ms).  Garbage in the bookkeeping advances the
# generation, so only an unfenced set goes on; a fence that read garbage never
# matches, since the counter it is compared with is always a valid one.
_INDEX_SCRIPT = (
    _BOOKKEEPING
    + """\
local current = generation(KEYS[2])
local members_ok = usable_set(KEYS[1])
local pending_ok = usable_set(KEYS[3])
if current == nil or not members_ok or not pending_ok then
  advance(KEYS[2], current, ARGV[5])
  if ARGV[3] == '1' then return 0 end
elseif ARGV[3] == '1' and (current or '') ~= ARGV[4] then
  return 0
end
redis.call('SADD', KEYS[1], ARGV[1])
local ttl = tonumber(ARGV[2])
if redis.call('PTTL', KEYS[1]) < ttl then
  redis.call('PEXPIRE', KEYS[1], ttl)
end
return 1
"""
)

# KEYS: member set, generation counter, pending set.  ARGV: generation TTL (ms),
# "1" to unlink the entries too (one Redis: they live on the same server).
# Returns the pending members for the caller to unlink, or how many it unlinked.
# The pending set keeps the TTL of whichever of the two sets lives longer, so it
# outlives every entry moved into it; a set without expiry gets the counter's.
_INVALIDATE_SCRIPT = (
    _BOOKKEEPING
    + """\
advance(KEYS[2], generation(KEYS[2]), ARGV[1])
usable_set(KEYS[1])
usable_set(KEYS[3])
if redis.call('EXISTS', KEYS[1]) == 1 then
  if redis.call('EXISTS', KEYS[3]) == 0 then
    redis.call('RENAME', KEYS[1], KEYS[3])
  else
    local moved, kept = redis.call('PTTL', KEYS[1]), redis.call('PTTL', KEYS[3])
    redis.call('SUNIONSTORE', KEYS[3], KEYS[3], KEYS[1])
    redis.call('UNLINK', KEYS[1])
    if moved > 0 and kept > 0 then redis.call('PEXPIRE', KEYS[3], math.max(moved, kept)) end
  end
end
if redis.call('PTTL', KEYS[3]) == -1 then redis.call('PEXPIRE', KEYS[3], ARGV[1]) end
local members = redis.call('SMEMBERS', KEYS[3])
if ARGV[2] ~= '1' then return members end
-- One Redis: the entries are here too, so they go in this same atomic step.
local removed = 0
for first = 1, #members, 500 do
  removed = removed + redis.call('UNLINK', unpack(members, first, math.min(first + 499, #members)))
end
redis.call('UNLINK', KEYS[3])
return removed
"""
)

# KEYS: an entry.  Its value and PTTL, for a near cache copy that must not outlive it.
_NEAR_GET_SCRIPT = """\
local value = redis.call('GET', KEYS[1])
if not value then return false end
return {value, redis.call('PTTL', KEYS[1])}
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
    rb"\A(?:\{(?P<lead>[0-9a-f]{16})\}:(?P<tag1>.*)|(?P<tag2>.*):\{(?P<tail>[0-9a-f]{16})\}):[mgp]\Z",
    re.DOTALL,
)
_GLOB_SPECIAL = re.compile(r"([\\*?\[\]])")


def _digest(tag: bytes) -> str:
    return hashlib.blake2b(tag, digest_size=8).hexdigest()


def _tag_base(tag: str) -> str:
    """The name every bookkeeping key of ``tag`` starts with, its slot's hash tag included."""
    digest = _digest(tag.encode())
    return f"{{{digest}}}:{tag}" if "{" in tag else f"{tag}:{{{digest}}}"


def _is_bookkeeping(key: bytes) -> bool:
    """Whether ``key`` is one of a tag's bookkeeping keys (its digest matches its tag)."""
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

    On a cluster, each primary has a breaker of its own: a command goes to the
    primary owning its key's slot (in the client's slot map) and counts there,
    and the work on tags sends each primary its part in one round trip bounded
    by ``timeout`` (so a tagged ``set`` bounds each of its three steps), so a dead
    primary turns off only what it owns.  The store-wide breaker counts what no
    primary accounts for (no slot map yet, ``clear``).

    A cluster client discovers the cluster on first use and after node errors,
    which with redis-py 8 takes 0.1-0.3 s (it parses the server's whole
    ``COMMAND`` table).  The store lets that finish in the background while
    calls fail, so recovery can take an extra ``cooldown``; to avoid failing
    the first requests, ``await store.client.initialize()`` at startup.

    ``near_cache`` (off by default) keeps copies of entries in process memory,
    dropped whenever Redis reports their key changed; see
    :mod:`asgi_cache.stores.near`.
    """

    def __init__(
        self,
        client: Client,
        *,
        timeout: float = 0.05,
        failure_threshold: int = 5,
        cooldown: float = 1.0,
        clock: Callable[[], float] = time.monotonic,
        near_cache: NearCache | None = None,
    ) -> None:
        _require_redis()
        if near_cache is not None and not isinstance(near_cache, NearCache):
            raise ValueError(f"near_cache must be a NearCache, not {near_cache!r}")
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
        self._given = client
        self._cluster = isinstance(client, _RedisCluster)
        self._timeout = timeout
        self._reading: dict[
            tuple[asyncio.AbstractEventLoop, str], asyncio.Future[bytes | None]
        ] = {}
        self._breaker = Breaker(failure_threshold, cooldown, clock)
        # On a cluster, one breaker per primary for the commands on one key: a dead
        # primary turns off caching for the keys it owns only (see _route).
        self._node_breakers: dict[str, Breaker] = {}
        self._discovered_at: dict[_Loop, float] = {}
        self._owns_client = False
        self._discovery: dict[_Loop, asyncio.Future[Any]] = {}
        # With a client made by from_url: one per event loop (see _client).
        self._new_client: Callable[[], Client] | None = None
        self._clients: dict[_Loop, Client] = {}
        self._given_taken = False
        self._locks: dict[tuple[str, str], _Held] = {}
        self._near = near_cache
        self._tracking: asyncio.Task[None] | None = None
        self._url: str | None = None

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
        near_cache: NearCache | None = None,
        **client_kwargs: Any,
    ) -> RedisStore:
        """Create a store with its own client; :meth:`aclose` closes that client.

        The client is a ``RedisCluster`` when ``cluster=True`` or the URL has a
        ``cluster=true`` query parameter, a plain ``Redis`` otherwise.
        ``client_kwargs`` go to the client's ``from_url`` (``max_connections``,
        ``password``, ...).  A ``near_cache_bytes=<n>`` query parameter turns on
        a near cache of ``n`` bytes (``near_cache`` wins over it).
        """
        _require_redis()
        url, url_cluster = _pop_cluster_flag(url)
        url, near_bytes = _pop_near_bytes(url)
        if near_cache is None and near_bytes is not None:
            near_cache = NearCache(near_bytes)
        # The client's own read and connect timeouts back the store's timeout
        # up where a cancellation cannot reach (see ``_within``).
        client_kwargs.setdefault("socket_timeout", timeout)
        client_kwargs.setdefault("socket_connect_timeout", timeout)
        is_cluster = url_cluster if cluster is None else cluster

        def new_client() -> Client:
            if is_cluster:
                return _RedisCluster.from_url(url, **client_kwargs)
            return _redis.Redis.from_url(url, **client_kwargs)

        # If the constructor refuses the client, nothing has connected yet: there is
        # nothing to close, and redis-py does not warn about unconnected clients.
        store = cls(
            new_client(),
            timeout=timeout,
            failure_threshold=failure_threshold,
            cooldown=cooldown,
            clock=clock,
            near_cache=near_cache,
        )
        store._owns_client = True
        store._new_client = new_client
        store._url = redact_url(url)
        return store

    @property
    def url(self) -> str:
        """Where this store's Redis is, without the password (for logs and errors)."""
        if self._url is None:
            kwargs = self._given.get_connection_kwargs()
            host, port = kwargs.get("host", "?"), kwargs.get("port", "?")
            self._url = f"redis://{host}:{port}/{kwargs.get('db', 0)}"
        return self._url

    async def check(self) -> None:
        """See that Redis answers, and warm the running loop's client up for requests.

        Connects to Redis (to every primary of a cluster, after discovering its
        slots and reading its command table) and loads the store's scripts there,
        bounded as a whole by :data:`STARTUP_TIMEOUT` rather than by ``timeout``,
        which applies to requests (see :mod:`asgi_cache.stores.warmup`).  The
        middleware calls it at lifespan startup, so the first request finds the
        connections open and is served from the store even on a busy machine.

        On failure the circuit breaker opens at once, so the first requests skip
        Redis rather than each wait for it, and the :class:`StoreError` names the
        URL without its password; the recovery is logged when Redis answers.
        """
        client = self._client
        started = self._breaker.clock()
        try:
            await warm_up(client, cluster=self._cluster, scripts=_SCRIPTS, seconds=STARTUP_TIMEOUT)
        except Exception as exc:
            self._breaker.failed(started)
            self._breaker.trip()
            raise StoreError(f"Redis at {self.url} does not answer: {_describe(exc)}") from exc
        self._breaker.succeeded()

    @staticmethod
    def tag_keys(tag: str) -> tuple[str, str]:
        """Return the (member set, generation counter) keys of ``tag``; see the module docs."""
        base = _tag_base(tag)
        return f"{base}:m", f"{base}:g"

    @staticmethod
    def pending_key(tag: str) -> str:
        """Return the key of ``tag``'s pending set (entries an invalidation has yet to remove)."""
        return f"{_tag_base(tag)}:p"

    @property
    def near_cache(self) -> NearCache | None:
        """The in-process tier in front of Redis, if one was configured."""
        return self._near

    def stats(self) -> dict[str, int]:
        """The near cache's counters (see :meth:`NearCache.stats`), if there is one."""
        return {} if self._near is None else self._near.stats()

    @property
    def client(self) -> Client:
        """The redis-py client this store talks through (in the running event loop)."""
        return self._client

    @property
    def _client(self) -> Client:
        """The client for the running event loop.

        A redis-py asyncio client's connections belong to the event loop that
        opened them, and a cache is used from several: the server's, a
        ``TestClient``'s, a job's ``asyncio.run``, another thread's.  A store
        made by :meth:`from_url` therefore keeps one client per loop, made on
        first use there and dropped once that loop is closed; a client the
        caller passed in is the caller's, for the loop the caller uses it on.
        """
        if self._new_client is None:
            return self._given
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:  # no loop: the client made first (what startup code sets up)
            return self._given
        client = self._clients.get(loop)
        if client is None:
            client = self._client_for(loop)
        return client

    def _client_for(self, loop: _Loop) -> Client:
        for old in [old for old in self._clients if old.is_closed()]:
            del self._clients[old]  # its connections died with it
            self._discovery.pop(old, None)
            self._discovered_at.pop(old, None)
        if not self._given_taken:
            client = self._given  # the first loop gets the client made by from_url
            self._given_taken = True
        else:
            assert self._new_client is not None
            client = self._new_client()
        self._clients[loop] = client
        return client

    # -- the Store interface -------------------------------------------------

    async def get(self, key: str) -> bytes | None:
        """One ``GET``; concurrent gets of one key share it.

        A burst of requests for a hot key (or a cold one: everybody misses at
        once) then costs Redis one round trip per process, not one per request.
        """
        loop = asyncio.get_running_loop()
        near = self._near
        if near is not None:
            near = self._near_on(loop, near)
            if near is not None and (copy := near.lookup(key)) is not None:
                return copy
        reading = (loop, key)  # a future belongs to one loop
        pending = self._reading.get(reading)
        if pending is not None:
            return await asyncio.shield(pending)  # a waiter's cancellation stays its own
        shared = self._reading[reading] = loop.create_future()

        breaker, node = self._route(key)

        async def call() -> bytes | None:
            if node is None:
                reply = await self._client.get(key)
            else:
                reply = await self._on_node(node, "GET", key)
            return _expect(reply, (bytes, type(None)), "GET")

        async def call_near() -> bytes | None:
            assert near is not None
            started = near.reading(key)
            try:
                args = (_NEAR_GET_SCRIPT, 1, key)
                if node is None:
                    reply = await self._client.eval(*args)
                else:
                    reply = await self._on_node(node, "EVAL", *args)
                if reply is None:
                    near.abandon(key)
                    return None
                value, ttl_ms = _expect(reply, list, "GET with PTTL")
                value = _expect(value, bytes, "GET")
                ttl_ms = _expect(ttl_ms, int, "PTTL")
            except BaseException:
                near.abandon(key)
                raise
            if self._cluster and not self._tracked_owner(key, near):
                near.abandon(key)
                self._track_anew(near)
                return value
            near.insert(key, value, ttl_ms, started)
            return value

        try:
            keep = near is not None and near.admits(key)
            result = await self._guard("get", call_near if keep else call, breaker, node)
        except BaseException as exc:
            error = exc if isinstance(exc, Exception) else StoreError("Redis get abandoned")
            shared.set_exception(error)
            shared.exception()  # retrieved: the waiters, if any, report it
            raise
        else:
            shared.set_result(result)
            return result
        finally:
            del self._reading[reading]

    async def fence(self, tags: Sequence[str]) -> Fence:
        if not tags:
            return ()

        async def call() -> Fence:
            return tuple(await self._generations(tags))

        return await self._guard("fence", call, spanning=True)

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
        # Tags reach other nodes: on a cluster each node's part counts for that
        # node (see _pipeline), so a dead tag node never opens the entry's breaker.
        breaker, node = (self._breaker, None) if tags else self._route(key)

        async def call() -> bool:
            nonlocal written
            if tags and not await self._index(key, ttl_ms, tags, fence):
                return False
            written = True
            if node is not None:
                reply = await self._on_node(node, "SET", key, value, "PX", ttl_ms)
            elif self._cluster:
                reply = (await self._pipeline([("SET", key, value, "PX", ttl_ms)]))[0]
            else:
                reply = await self._client.set(key, value, px=ttl_ms)
            _expect(reply, bool, "SET")
            if fence and list(fence) != await self._generations(tags):
                await self._unlink(key)
                return False
            return True

        try:
            return await self._guard("set", call, breaker, node, spanning=bool(tags))
        except StoreError:
            if written:
                await self._forget(key)
            raise
        finally:
            if self._near is not None:
                self._near.drop(key)  # never serve what this call superseded

    async def delete(self, key: str) -> bool:
        breaker, node = self._route(key)

        async def call() -> bool:
            if node is None:
                reply = await self._client.unlink(key)
            else:
                reply = await self._on_node(node, "UNLINK", key)
            return _expect(reply, int, "UNLINK") > 0

        try:
            return await self._guard("delete", call, breaker, node)
        finally:
            if self._near is not None:
                self._near.drop(key)

    async def invalidate(self, tags: Sequence[str]) -> int:
        """Remove the entries stored under ``tags`` and refuse sets fenced before this call.

        Each tag's generation is advanced and its member set moved into its
        pending set in one atomic script, which returns what is pending; those
        entries are then unlinked and, only after that, taken off the pending
        set.  An invalidation cut off anywhere (timeout, cancellation, a lost
        connection) can therefore be retried, and the next invalidation of the
        same tag finishes its work in any case.

        Returns how many entries this call removed (members that already expired
        are not counted), so a retry reports only what was still left to remove.
        """
        if not tags:
            return 0
        unique = list(dict.fromkeys(tags))

        # On one Redis the script also unlinks the entries, so an invalidation that
        # reached Redis is complete even if its caller stopped waiting for the reply;
        # a cluster keeps entries on other nodes, which the client unlinks.
        inline = "0" if self._cluster else "1"

        async def call() -> int:
            commands: list[_ScriptCall] = []
            for tag in unique:
                members_key, generation_key = self.tag_keys(tag)
                keys = (members_key, generation_key, self.pending_key(tag))
                commands.append((_INVALIDATE_SCRIPT, keys, (_GENERATION_TTL_MS, inline)))
            replies = await self._bounded(self._run_scripts(commands, force=True))
            pending: list[tuple[str, list[bytes]]] = []
            failures: list[Exception] = []
            out_of_memory: list[str] = []
            removed_inline = 0
            for tag, reply in zip(unique, replies, strict=True):
                if isinstance(reply, int):  # one Redis: the script removed them itself
                    removed_inline += reply
                    continue
                try:
                    members: list[bytes] | set[bytes] = _expect(
                        reply, (list, set), "invalidate script"
                    )
                except Exception as exc:  # the other tags' entries must still go
                    failures.append(exc)
                    if isinstance(reply, _OutOfMemoryError):
                        out_of_memory.append(tag)
                else:
                    if members:
                        pending.append((self.pending_key(tag), sorted(members)))
            removed = removed_inline + await self._remove_pending(pending)
            if out_of_memory:
                removed += await self._unlink_members(out_of_memory)
            if failures:
                raise failures[0]
            return removed

        # Even with the breaker open: an invalidation is what stops every other
        # process from serving the old entries, and it is rare (writes, retries).
        try:
            return await self._guard(
                "invalidate", call, per_round_trip=True, force=True, spanning=True
            )
        finally:
            # The keys a tag listed are not known here on one Redis (the script
            # removed them itself): every copy goes, invalidations are rare.
            if self._near is not None:
                self._near.flush()

    async def clear(self, prefix: str) -> int:
        """Remove every entry whose key starts with ``prefix``; return how many.

        Keys are found with ``SCAN MATCH`` (on a cluster redis-py scans every
        primary) and removed with ``UNLINK`` in batches; never ``KEYS`` or
        ``FLUSHDB``.  Member and pending sets under the prefix go too, but generation
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

        try:
            return await self._guard("clear", call, per_round_trip=True)
        finally:
            if self._near is not None:
                self._near.flush()

    async def scan(self, prefix: str, visit: Callable[[str, int], None]) -> None:
        """Visit every key under ``prefix`` but the tags' bookkeeping, with its ``STRLEN``.

        Keys are found with ``SCAN MATCH`` (every primary, on a cluster), never
        ``KEYS``, and sized with one pipelined ``STRLEN`` per batch; each round trip is
        bounded by ``timeout``.  A key that expired between the two reads counts 0 bytes.
        """
        pattern = _GLOB_SPECIAL.sub(r"\\\1", prefix) + "*"

        async def sized(batch: list[bytes]) -> None:
            pipe = self._client.pipeline(transaction=False)
            for key in batch:
                pipe.strlen(key)
            sizes = await self._bounded(pipe.execute(raise_on_error=False))
            for key, size in zip(batch, sizes, strict=True):
                visit(key.decode("utf-8", "surrogateescape"), size if isinstance(size, int) else 0)

        async def call() -> None:
            pending: list[bytes] = []
            keys = self._client.scan_iter(match=pattern, count=1000)
            try:
                while True:
                    key = await self._bounded(anext(keys, None))
                    if key is not None and not _is_bookkeeping(_expect(key, bytes, "SCAN")):
                        pending.append(key)
                    if pending and (key is None or len(pending) >= _BATCH):
                        await sized(pending)
                        pending = []
                    if key is None:
                        return
            finally:
                aclose = getattr(keys, "aclose", None)
                if aclose is not None:
                    await aclose()

        await self._guard("scan", call, per_round_trip=True)

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

        breaker, node = self._route(name)

        async def call() -> bool:
            if node is None:
                return bool(await self._client.set(name, token, nx=True, px=_milliseconds(lease)))
            return bool(
                await self._on_node(node, "SET", name, token, "NX", "PX", _milliseconds(lease))
            )

        if not await self._guard("acquire", call, breaker, node):
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
            await self._unlock(name, token)
        except StoreError:
            if held is not None:
                self._locks[name, token] = held
                held.task = asyncio.ensure_future(self._release_later(name, token, held))
            raise

    async def wait_released(self, name: str, timeout: float) -> None:
        """Poll ``PTTL name`` with a backoff from 5 ms to 100 ms, at most ``timeout``.

        Only one request per process polls for a given lock (the others wait
        on it in-process), so this costs Redis a handful of cheap commands per
        coalesced miss, not one per waiting request.  A lock key without an
        expiry is no lock of this store's (they are always leased) but garbage
        that no holder will ever release: it gets a lease (``PEXPIRE ... NX``,
        which leaves a real lock's expiry alone), so it frees itself as a dead
        holder's lock does, and misses of its key do not each wait the whole
        ``timeout`` for it forever after.  Raises ``StoreError`` as
        soon as a poll fails in what looks like an outage (the breaker is
        open, or no other call succeeded while the poll was in flight): the
        holder is then likely unable to release the lock either, and waiting
        on would only delay the request.  A poll that fails while other calls
        succeed (a busy event loop) is retried.
        """
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        delay = 0.005

        breaker, node = self._route(name)

        async def command(*args: str | int) -> Any:
            if node is None:
                return await self._client.execute_command(*args)
            return await self._on_node(node, *args)

        async def call() -> bool:
            ttl = _expect(await command("PTTL", name), int, "PTTL")
            if ttl == -1:  # garbage: lease it, as an abandoned lock of ours would be
                await command("PEXPIRE", name, _milliseconds(_LOCK_LEASE), "NX")
            return ttl != -2

        while True:
            started = breaker.clock()
            try:
                if not await self._guard("wait", call, breaker, node):
                    return
            except StoreError:
                if breaker.outage(started):
                    raise
            remaining = deadline - loop.time()
            if remaining <= 0:
                return
            await asyncio.sleep(min(delay, remaining))
            delay = min(delay * 2, 0.1)

    async def _unlock(self, name: str, token: str) -> None:
        """Run the release script once, even while the breaker is open."""
        breaker, node = self._route(name)

        async def call() -> None:
            if node is None:
                await self._client.eval(_RELEASE_SCRIPT, 1, name, token)
            else:
                await self._on_node(node, "EVAL", _RELEASE_SCRIPT, 1, name, token)

        await self._guard("release", call, breaker, node, force=True)

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

                breaker, node = self._route(name)
                args = (_RENEW_SCRIPT, 1, name, token, _milliseconds(lease))

                async def call(node: Any = node, args: tuple[Any, ...] = args) -> bool:
                    if node is None:
                        return bool(await self._client.eval(*args))
                    return bool(await self._on_node(node, "EVAL", *args))

                try:
                    if not await self._guard("renew", call, breaker, node):
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
                    await self._unlock(name, token)
                except StoreError:
                    delay = min(delay * 2, 0.2)
                else:
                    logger.debug("Redis store released %r after a failed attempt", name)
                    return
        finally:
            self._forget_lock(name, token, held)

    async def detach(self) -> None:
        """Close the running loop's client, for a loop about to end.

        ``cache.sync`` does it for the loops it runs; code that runs
        ``asyncio.run(cache.invalidate(...))`` itself should ``await
        cache.store.detach()`` before its loop ends, or its connections are
        left to the garbage collector.  The store stays usable.
        """
        await self._stop_tracking(asyncio.get_running_loop())
        if self._new_client is None:
            return
        loop = asyncio.get_running_loop()
        client = self._clients.pop(loop, None)
        self._discovery.pop(loop, None)
        self._discovered_at.pop(loop, None)
        if client is not None:
            await _close(client)

    async def aclose(self) -> None:
        """Close the clients :meth:`from_url` created; a caller's client stays open.

        The running loop's client is closed here, one of a loop running in
        another thread is closed there, one of a closed loop is already gone;
        one of a loop that is neither (idle, like a test runner's between two
        tests) stays until an ``aclose`` on that loop.
        """
        await self._stop_tracking(None)
        tasks = [*self._discovery.values(), *(held.task for held in self._locks.values())]
        for task in tasks:  # discoveries, lock renewals and retried releases
            if task is not None and not task.done() and not task.get_loop().is_closed():
                task.get_loop().call_soon_threadsafe(task.cancel)
        self._discovery.clear()
        if not self._owns_client:
            return
        if not self._given_taken:  # never used: nothing is connected, close it anyway
            self._given_taken = True
            await _close(self._given)
        here = asyncio.get_running_loop()
        for loop, client in list(self._clients.items()):
            if loop is here:
                await _close(client)
            elif loop.is_running():
                asyncio.run_coroutine_threadsafe(_close(client), loop)
            elif not loop.is_closed():
                continue
            del self._clients[loop]

    # -- the near cache ------------------------------------------------------

    def _near_on(self, loop: _Loop, near: NearCache) -> NearCache | None:
        """``near`` if it serves ``loop``, starting its tracking there if no live loop has it."""
        task = self._tracking
        if task is not None and not task.done():
            if task.get_loop() is loop:
                return near
            if task.get_loop().is_running():
                return None  # another loop's tier: this loop reads Redis
        near.active = False
        near.flush()
        topology = self._cluster_primaries if self._cluster else None
        self._tracking = loop.create_task(track(near, self._tracking_endpoints, topology))
        return near

    async def _tracking_endpoints(self) -> list[Endpoint]:
        """The nodes whose changes the near cache must hear of: the server, or each primary
        of the cluster, those owning no slot yet included (a slot may move there)."""
        client: Any = self._client
        if not self._cluster:
            pool = client.connection_pool
            return [(pool.connection_class, dict(pool.connection_kwargs))]
        if not self._knows_slots() or getattr(client, "_initialize", False):
            await client.initialize()
        known = {node.name: node for node in client.get_primaries()}
        base = next(iter(known.values()))
        endpoints = []
        for name in sorted(await self._cluster_primaries()):
            node = known.get(name)
            if node is not None:
                endpoints.append((node.connection_class, dict(node.connection_kwargs)))
            else:
                host, _, port = name.rpartition(":")
                kwargs = {**base.connection_kwargs, "host": host, "port": int(port)}
                endpoints.append((base.connection_class, kwargs))
        return endpoints

    async def _cluster_primaries(self) -> frozenset[str]:
        """The ``host:port`` of every primary the cluster lists (``CLUSTER NODES``), but
        those it has failed, whether or not they own slots."""
        client: Any = self._client
        reply = await client.execute_command("CLUSTER NODES")
        if isinstance(reply, dict):  # redis-py parses the reply into {address: fields}
            nodes = [(address, str(fields["flags"])) for address, fields in reply.items()]
        else:
            text = reply.decode() if isinstance(reply, bytes) else str(reply)
            nodes = [(f[1], f[2]) for f in map(str.split, text.splitlines()) if len(f) > 2]
        return frozenset(
            address.split("@")[0]
            for address, flags in nodes
            if "master" in flags.split(",") and not _UNUSABLE_NODE & set(flags.split(","))
        )

    def _tracked_owner(self, key: str, near: NearCache) -> bool:
        """Whether ``key``'s slot is owned by a node the near cache tracks (a cluster's
        slot map, as the read just left it: a ``MOVED`` reply updates it)."""
        owner = self._owner(key)
        return owner is not None and owner.name in near.nodes

    def _track_anew(self, near: NearCache) -> None:
        """Flush and bypass the tier, and subscribe to the cluster's primaries anew: a
        read was answered by a primary that tracking does not cover."""
        near.active = False
        near.flush()
        task = self._tracking
        if task is not None and not task.done():
            task.cancel()  # the next get starts it again, once this one is done

    async def _stop_tracking(self, loop: _Loop | None) -> None:
        """Stop the near cache's tracking if it runs on ``loop`` (None: on any loop)."""
        task = self._tracking
        if task is None or task.done() or (loop is not None and task.get_loop() is not loop):
            return
        self._tracking = None
        if task.get_loop() is asyncio.get_running_loop():
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
        elif not task.get_loop().is_closed():
            task.get_loop().call_soon_threadsafe(task.cancel)

    # -- helpers -------------------------------------------------------------

    async def _guard(
        self,
        operation: str,
        call: Callable[[], Awaitable[T]],
        breaker: Breaker | None = None,
        node: object = None,
        *,
        per_round_trip: bool = False,
        force: bool = False,
        spanning: bool = False,
    ) -> T:
        """Run ``call`` through the breaker, turning every failure into ``StoreError``.

        Any ``Exception`` counts: besides ``RedisError``, redis-py raises plain
        ``RedisClusterException``, ``OSError`` and others on some failure paths,
        and a cache must never fail a request because its store did.  ``call``
        is bounded by ``timeout`` as a whole unless ``per_round_trip`` says it
        bounds each of its round trips itself (with :meth:`_bounded`).  With
        ``force``, ``call`` runs even while the breaker is open; its failure
        then does not push the breaker's cooldown back, its success closes it.

        ``breaker`` and ``node`` come from :meth:`_route` for a command on one
        key; such a call does not wait for a rediscovery while a slot map is
        known (see :meth:`_ready`).  A ``spanning`` call reaches keys on several
        nodes through :meth:`_pipeline`: on a cluster each node's round trip is
        bounded and counted by that node's breaker, and this store-wide one
        counts only failures no node accounts for.
        """
        if breaker is None:
            breaker = self._breaker
        by_node = spanning and self._cluster and self._knows_slots()
        wait = node is None and not by_node
        allowed = breaker.allow()
        if not allowed and not force:
            raise StoreError(f"Redis {operation} skipped: the circuit breaker is open")
        started = breaker.clock()
        try:
            if per_round_trip or by_node:
                # Invalidations are rare and must not fail for want of a topology:
                # a loop's first one waits for the cluster's discovery.
                waits = _DISCOVERY_WAIT if per_round_trip else self._timeout
                await _within(max(self._timeout, waits), self._ready(wait))
                result = await call()
            else:

                async def ready_then_call() -> T:
                    await self._ready(wait)
                    return await call()

                result = await _within(self._timeout, ready_then_call())
        except _NodeFailure as failure:
            if allowed:
                breaker.abandoned()  # its node's breaker counted it
            if failure.cause is None:
                raise StoreError(
                    f"Redis {operation} skipped: the circuit breaker of {failure.node.name} is open"
                ) from None
            raise self._store_error(operation, failure.cause, failure.node) from failure.cause
        except Exception as exc:
            if allowed:
                self._record_failure(operation, exc, started, breaker, node)
            raise self._store_error(operation, exc, node) from exc
        except BaseException:
            if allowed:
                breaker.abandoned()
            raise
        _succeeded(breaker, node)
        return result

    def _store_error(self, operation: str, exc: Exception, node: object) -> StoreError:
        if isinstance(exc, asyncio.TimeoutError):
            return StoreError(f"Redis {operation} took longer than {self._timeout:g}s{_on(node)}")
        return StoreError(f"Redis {operation} failed{_on(node)}: {_describe(exc)}")

    def _record_failure(
        self, operation: str, exc: Exception, started: float, breaker: Breaker, node: object
    ) -> None:
        transition = breaker.failed(started)
        if transition == "opened":
            logger.warning(
                "Redis store %s failed (%s); %d consecutive failures, circuit breaker "
                "open: bypassing Redis%s for %gs",
                operation,
                _describe(exc),
                breaker.failures,
                _on(node),
                breaker.cooldown,
            )
        elif transition == "reopened":
            logger.debug(
                "Redis store trial %s failed (%s); breaker stays open", operation, _describe(exc)
            )
        else:
            # Below the threshold: the opening, if this is an outage, says it once.
            logger.debug("Redis store %s failed: %s", operation, _describe(exc))

    def _route(self, key: str) -> tuple[Breaker, Any]:
        """The breaker and the cluster node for a command on ``key`` alone.

        On a cluster that is the breaker of the primary owning the key's slot
        in the client's slot map, so failures of one dead primary turn off only
        the keys it owns; one Redis, or a cluster whose topology this loop's
        client does not know yet, has the store's breaker and no node.
        """
        node = self._owner(key) if self._cluster else None
        if node is None:
            return self._breaker, None
        return self._node_breaker(node), node

    def _owner(self, key: str | bytes) -> Any:
        """The primary owning ``key``'s slot in this loop's slot map, or None."""
        client: Any = self._client
        owners = client.nodes_manager.slots_cache.get(
            _key_slot(key.encode() if isinstance(key, str) else key)
        )
        return owners[0] if owners else None

    def _knows_slots(self) -> bool:
        client: Any = self._client
        return bool(client.nodes_manager.slots_cache)

    def _node_breaker(self, node: Any) -> Breaker:
        breaker = self._node_breakers.get(node.name)
        if breaker is None:
            breaker = self._breaker
            breaker = Breaker(breaker.threshold, breaker.cooldown, breaker.clock)
            self._node_breakers[node.name] = breaker
        return breaker

    async def _on_node(self, node: Any, *args: Any) -> Any:
        """Send one command to ``node``, following MOVED and ASK redirections.

        Unlike the client's ``execute_command``, this neither retries nor waits
        for a rediscovery: a dead primary's error comes back at once, and the
        other primaries' keys never wait behind the discovery it triggers.
        (``_execute_command`` is redis-py's private per-node step.)
        """
        client: Any = self._client
        return await client._execute_command(node, *args)

    async def _ready(self, wait: bool = True) -> None:
        """Wait (within the caller's timeout) for a cluster client to know the cluster.

        A redis-py cluster client discovers the topology on first use and again
        after a node error, and each time also fetches and parses the whole
        ``COMMAND`` table: 0.1-0.3 s in pure Python, longer than a request
        should wait, and redis-py drops all node connections when that is
        cancelled.  So it runs in a task of its own that outlives the timeouts
        of the calls waiting for it; they fail (and count as failures) until it
        is done.  ``_initialize`` is redis-py's private "needs discovery" flag;
        without it, discovery simply happens inside the calls, as before.

        Without ``wait`` (a command on one key, with the slot map known) the
        call goes on with the known map: a dead primary sets the flag after
        each of its errors, and waiting would turn off every key for its sake.
        Such calls start a discovery at most once per ``cooldown``.
        """
        if not self._cluster or not getattr(self._client, "_initialize", False):
            return
        loop = asyncio.get_running_loop()
        task = self._discovery.get(loop)
        if task is None or task.done():
            now = self._breaker.clock()
            if not wait and now - self._discovered_at.get(loop, -math.inf) < self._breaker.cooldown:
                return
            self._discovered_at[loop] = now
            task = self._discovery[loop] = asyncio.ensure_future(self._client.initialize())
            task.add_done_callback(_retrieve_exception)
        if wait:
            await asyncio.shield(task)

    async def _bounded(self, awaitable: Awaitable[T]) -> T:
        return await _within(self._timeout, awaitable)

    async def _generations(self, tags: Sequence[str]) -> list[bytes | None]:
        """The tags' counters; one of the wrong type reads as ``_GARBAGE``.

        Garbage is no failure: the scripts delete it and advance the tag, and
        a fence holding it (or any other value that is no generation) can never
        match a counter again, so its ``set`` is refused.
        """
        replies = await self._pipeline(("GET", self.tag_keys(tag)[1]) for tag in tags)
        return [
            _GARBAGE
            if isinstance(reply, _ResponseError) and str(reply).startswith("WRONGTYPE")
            else _expect(reply, (bytes, type(None)), "GET generation")
            for reply in replies
        ]

    async def _index(self, key: str, ttl_ms: int, tags: Sequence[str], fence: Fence | None) -> bool:
        member_ttl = ttl_ms + _MEMBER_SLACK_MS
        commands: list[_ScriptCall] = []
        for i, tag in enumerate(tags):
            members_key, generation_key = self.tag_keys(tag)
            fenced = fence[i] if fence is not None else None
            commands.append(
                (
                    _INDEX_SCRIPT,
                    (members_key, generation_key, self.pending_key(tag)),
                    (
                        key,
                        member_ttl,
                        "0" if fence is None else "1",
                        fenced if isinstance(fenced, bytes) else b"",
                        _GENERATION_TTL_MS,
                    ),
                )
            )
        replies = await self._run_scripts(commands)
        return all(_expect(reply, int, "index script") == 1 for reply in replies)

    async def _run_scripts(
        self, commands: Sequence[_ScriptCall], *, force: bool = False
    ) -> list[Any]:
        """Run scripts in one pipeline with EVALSHA, retrying unknown ones with EVAL.

        redis-py's ``Script`` helper cannot be used in a cluster pipeline, and a
        node may have lost its script cache (restart, failover), so a
        ``NoScriptError`` reply is answered by sending the source for just
        those scripts; nothing ran for them, so re-running is safe.
        """
        replies = await self._pipeline(
            (
                ("EVALSHA", _SCRIPTS[script], len(keys), *keys, *args)
                for script, keys, args in commands
            ),
            force=force,
        )
        missing = [i for i, reply in enumerate(replies) if isinstance(reply, _NoScriptError)]
        if missing:
            retried = await self._pipeline(
                (
                    ("EVAL", commands[i][0], len(commands[i][1]), *commands[i][1], *commands[i][2])
                    for i in missing
                ),
                force=force,
            )
            for i, reply in zip(missing, retried, strict=True):
                replies[i] = reply
        return replies

    async def _pipeline(
        self, commands: Iterable[tuple[Any, ...]], *, force: bool = False
    ) -> list[Any]:
        """Send ``commands`` in one round trip per node; replies in order, errors as values.

        A node's batch that failed has a ``_NodeFailure`` as each reply, which
        ``_expect`` raises and :meth:`_guard` reports without touching the
        store-wide breaker (the node's breaker counted it).

        On a cluster whose slot map this loop knows, each node's batch goes
        straight to that node, bounded by ``timeout`` and counted by the node's
        breaker (``force`` runs it even while that breaker is open): a dead
        primary fails its batch at once, and neither delays nor turns off the
        others.  redis-py's own cluster pipeline would retry a dead node's
        commands and wait for a rediscovery first.  Redirected commands (a slot
        that moved) are sent again through it, which follows the redirection.
        """
        commands = list(commands)
        groups = self._by_node(commands) if self._cluster else None
        if groups is None:
            pipe = self._client.pipeline(transaction=False)
            for command in commands:
                pipe.execute_command(*command)
            execute = pipe.execute(raise_on_error=False)
            replies: list[Any] = await (
                _within(self._timeout, execute) if self._cluster else execute
            )
            return replies
        replies = [None] * len(commands)
        batches = [self._node_batch(node, commands, at, replies, force) for node, at in groups]
        if len(batches) == 1:
            await batches[0]
        else:
            await asyncio.gather(*batches)
        moved = [i for i, reply in enumerate(replies) if isinstance(reply, _REDIRECTED)]
        if moved:
            pipe = self._client.pipeline(transaction=False)
            for i in moved:
                pipe.execute_command(*commands[i])
            again = await _within(self._timeout, pipe.execute(raise_on_error=False))
            for i, reply in zip(moved, again, strict=True):
                replies[i] = reply
        return replies

    def _by_node(self, commands: Sequence[tuple[Any, ...]]) -> list[tuple[Any, list[int]]] | None:
        """The commands' positions grouped by owning node; None if a slot has no known owner."""
        groups: dict[str, tuple[Any, list[int]]] = {}
        for i, command in enumerate(commands):
            node = self._owner(command[_KEY_AT.get(command[0], 1)])
            if node is None:
                return None
            groups.setdefault(node.name, (node, []))[1].append(i)
        return list(groups.values())

    async def _node_batch(
        self,
        node: Any,
        commands: Sequence[tuple[Any, ...]],
        at: Sequence[int],
        replies: list[Any],
        force: bool,
    ) -> None:
        """Run ``commands[i] for i in at`` on ``node``, under its breaker, into ``replies``.

        A failed or skipped batch leaves a ``_NodeFailure`` as each of its replies:
        the other nodes' replies stand, so one dead tag node does not stop the
        other tags of an invalidation.
        """
        breaker = self._node_breaker(node)
        allowed = breaker.allow()
        if not allowed and not force:
            for i in at:
                replies[i] = _NodeFailure(node, None)
            return
        started = breaker.clock()
        stack = [_PipelineCommand(i, *commands[i]) for i in at]
        try:
            # ClusterNode.execute_pipeline is redis-py's per-node step of its pipeline.
            await _within(self._timeout, node.execute_pipeline(stack))
            for command in stack:
                if isinstance(command.result, _LOST):
                    raise command.result
        except Exception as exc:
            if allowed:
                self._record_failure("batch", exc, started, breaker, node)
            if isinstance(exc, _LOST):
                client: Any = self._client
                client._initialize = True  # a failover may have moved its slots
            failure = _NodeFailure(node, exc)
            for i in at:
                replies[i] = failure
            return
        except BaseException:
            if allowed:
                breaker.abandoned()
            raise
        _succeeded(breaker, node)
        for command in stack:
            replies[command.position] = command.result

    async def _unlink(self, key: str) -> None:
        if self._cluster:
            _expect((await self._pipeline([("UNLINK", key)]))[0], int, "UNLINK")
        else:
            await self._client.unlink(key)

    async def _remove_pending(self, pending: Sequence[tuple[str, list[bytes]]]) -> int:
        """Unlink the entries the invalidate scripts returned, then take them off pending.

        Taking a member off its pending set before its entry is surely gone could
        lose it for good, so the ``SREM`` must follow the ``UNLINK``.  On one
        Redis a single pipeline guarantees that: one connection's commands run in
        the order sent, and a pipeline cut off midway runs a prefix of them.  On
        a cluster the entries live on other nodes, so the ``SREM`` waits for
        every ``UNLINK`` to be acknowledged.
        """
        entries = sorted({member for _, members in pending for member in members})
        if not entries:
            return 0
        unlinks = [("UNLINK", *batch) for batch in self._by_slot(entries)]
        srems = [("SREM", key, *batch) for key, members in pending for batch in _batches(members)]
        if self._cluster:
            replies = await self._bounded(self._pipeline(unlinks, force=True))
        else:
            replies = (await self._bounded(self._pipeline([*unlinks, *srems])))[: len(unlinks)]
        removed = sum(_expect(reply, int, "UNLINK") for reply in replies)
        if self._cluster:
            for reply in await self._bounded(self._pipeline(srems, force=True)):
                _expect(reply, int, "SREM pending")
        return removed

    async def _unlink_members(self, tags: Sequence[str]) -> int:
        """Unlink the entries of ``tags`` without writing anything else.

        A Redis out of memory with ``noeviction`` refuses the invalidate script
        (it writes) but still reads and deletes.  The generations cannot advance,
        so the invalidation still fails and is retried, but every process stops
        serving the old entries now rather than once memory is freed; no entry
        can be stored meanwhile (``SET`` is refused too).
        """
        reads: list[tuple[Any, ...]] = []
        for tag in tags:
            reads.append(("SMEMBERS", self.tag_keys(tag)[0]))
            reads.append(("SMEMBERS", self.pending_key(tag)))
        members: set[bytes] = set()
        for reply in await self._bounded(self._pipeline(reads, force=True)):
            if isinstance(reply, (list, set)):  # a key of another type holds no members
                members.update(member for member in reply if isinstance(member, bytes))
        if not members:
            return 0
        unlinks = [("UNLINK", *batch) for batch in self._by_slot(sorted(members))]
        replies = await self._bounded(self._pipeline(unlinks, force=True))
        return sum(reply for reply in replies if isinstance(reply, int))

    def _by_slot(self, keys: list[bytes]) -> Iterable[list[bytes]]:
        """``keys`` in batches that a single command may carry (one slot each on a cluster)."""
        if not self._cluster:
            yield from _batches(keys)
            return
        slots: dict[int, list[bytes]] = {}
        for key in keys:
            slots.setdefault(_key_slot(key), []).append(key)
        for same_slot in slots.values():
            yield from _batches(same_slot)

    async def _unlink_entries(self, keys: list[bytes]) -> int:
        """Unlink entries (counted), member and pending sets (not counted); keep counters."""
        entries: list[bytes] = []
        member_sets: list[bytes] = []
        for key in keys:
            if not _is_bookkeeping(key):
                entries.append(key)
            elif not key.endswith(b":g"):
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
            await self._bounded(self._unlink(key))
        except Exception as exc:
            logger.debug(
                "Redis store could not remove %r after a failed set: %s", key, _describe(exc)
            )


class _NodeFailure(Exception):
    """A cluster node's batch failed (``cause``) or was skipped (None): its breaker knows."""

    def __init__(self, node: Any, cause: Exception | None) -> None:
        super().__init__(node.name, cause)
        self.node = node
        self.cause = cause


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


async def _close(client: Client) -> None:
    """Close ``client``, also a cluster client a node error left flagged for discovery.

    redis-py's cluster ``aclose`` does nothing while that flag is set, which
    would leave every node's connections open once a primary has failed.
    """
    if isinstance(client, _RedisCluster):
        flagged: Any = client
        flagged._initialize = False
    await client.aclose()


def _succeeded(breaker: Breaker, node: Any) -> None:
    """Record a success; closing an open breaker is logged, as its opening was."""
    if breaker.succeeded():
        logger.warning("Redis store recovered%s; circuit breaker closed", _on(node))


def _on(node: Any) -> str:
    return "" if node is None else f" on {node.name}"


def _describe(exc: BaseException) -> str:
    """``Type: message``; redis-py 8's exception repr leaves the message out."""
    message = str(exc)
    return f"{type(exc).__name__}: {message}" if message else type(exc).__name__


def _batches(keys: list[bytes]) -> Iterable[list[bytes]]:
    for start in range(0, len(keys), _BATCH):
        yield keys[start : start + _BATCH]


#: ``CLUSTER NODES`` flags of a primary not to track: failed by the cluster's consensus (its
#: slots go to a replica), or not a member yet.  A primary only suspected (``fail?``) may
#: still take writes, so it stays tracked: while it does not answer, the tier is bypassed.
_UNUSABLE_NODE = frozenset({"fail", "handshake", "noaddr"})


def _pop_near_bytes(url: str) -> tuple[str, int | None]:
    """Remove a ``near_cache_bytes=<n>`` query parameter (redis-py would reject it)."""
    parts = urllib.parse.urlsplit(url)
    query = urllib.parse.parse_qsl(parts.query, keep_blank_values=True)
    values = [value for name, value in query if name == "near_cache_bytes"]
    if not values:
        return url, None
    if not values[-1].isdigit() or int(values[-1]) <= 0:
        raise ValueError(f"near_cache_bytes={values[-1]!r} in the Redis URL is not a positive int")
    rest = urllib.parse.urlencode([(name, v) for name, v in query if name != "near_cache_bytes"])
    return urllib.parse.urlunsplit(parts._replace(query=rest)), int(values[-1])


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
