"""Redis server-assisted client-side caching, for the near cache.

redis-py's asyncio client has no client-side caching, so this module does it on its own
connections: one per Redis node (per primary on a cluster), in RESP2, which

1. asks its own ``CLIENT ID``;
2. sends ``CLIENT TRACKING on REDIRECT <that id> BCAST PREFIX <prefix>``: in broadcasting
   mode the node reports every change of a key under the prefix, by whichever client, so no
   data connection needs any setup and no read can escape tracking;
3. ``SUBSCRIBE``\\ s to ``__redis__:invalidate``, where the node publishes the keys that
   changed (written, deleted, expired, evicted) or ``nil`` when it flushed everything.

Tracking counts as established once every node's connection has subscribed, and as lost as
soon as one of them fails, or stays silent for ``health_check`` seconds after a ``PING``.
Each transition flushes the tier (:meth:`~asgi_cache.stores.near.NearCache.flush`): what
happened while nobody was listening is unknown.  Then the connections are made again, with a
backoff, until tracking is back.

On a cluster the set of primaries can change under it (a node joins and takes slots, a
replica is promoted): a node outside the tracked set reports nothing to this process.  So
``topology`` is asked every ``health_check`` seconds for the current primaries, and any
difference from the tracked ones counts as a lost connection: the tier is flushed and every
primary subscribed to anew.
"""

from __future__ import annotations

import asyncio
import logging
import sys
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from asgi_cache.stores.near import NearCache

if sys.version_info >= (3, 11):
    from asyncio import timeout as _timeout
else:  # pragma: no cover - redis-py depends on async-timeout on these versions
    from async_timeout import timeout as _timeout

__all__ = ["Endpoint", "track"]

logger = logging.getLogger("asgi_cache")

#: A node to subscribe to: the connection class and keyword arguments of its data connections.
Endpoint = tuple[Any, dict[str, Any]]

_CHANNEL = "__redis__:invalidate"
_RETRY_FIRST = 0.05
_RETRY_MAX = 1.0


async def track(
    near: NearCache,
    endpoints: Callable[[], Awaitable[Sequence[Endpoint]]],
    topology: Callable[[], Awaitable[frozenset[str]]] | None = None,
) -> None:
    """Keep ``near`` coherent until cancelled; it is active only while every node listens.

    ``topology`` (a cluster's) gives the ``host:port`` names of the nodes that should be
    tracked now; tracking starts over when they differ from the ``endpoints`` tracked."""
    delay = _RETRY_FIRST
    while True:
        connections: list[Any] = []
        try:
            nodes = await endpoints()
            for connection_class, kwargs in nodes:
                connections.append(await _subscribe(near, connection_class, kwargs))
            near.flush()  # anything read before now was read without tracking
            near.nodes = frozenset(node_name(kwargs) for _, kwargs in nodes)
            near.active = True
            logger.debug("asgi-cache: near cache tracking %d node(s)", len(connections))
            delay = _RETRY_FIRST
            listeners = [asyncio.ensure_future(_listen(near, c)) for c in connections]
            if topology is not None:
                listeners.append(asyncio.ensure_future(_watch_topology(near, topology)))
            try:
                done, _ = await asyncio.wait(listeners, return_when=asyncio.FIRST_COMPLETED)
                for task in done:
                    task.result()
            finally:
                for task in listeners:
                    task.cancel()
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            if near.active:
                logger.warning("asgi-cache: near cache tracking lost (%s); bypassing it", exc)
            else:
                logger.debug("asgi-cache: near cache tracking not established: %s", exc)
        finally:
            if near.active:
                near.active = False
            near.flush()
            for connection in connections:
                await _disconnect(connection)
        await asyncio.sleep(delay)
        delay = min(delay * 2, _RETRY_MAX)


def node_name(kwargs: dict[str, Any]) -> str:
    """The ``host:port`` a node's connection arguments name, as a cluster client names it."""
    return f"{kwargs.get('host', 'localhost')}:{kwargs.get('port', 6379)}"


async def _watch_topology(
    near: NearCache, topology: Callable[[], Awaitable[frozenset[str]]]
) -> None:
    """Return (ending tracking, which then starts over) once the nodes to track change."""
    while True:
        await asyncio.sleep(near.health_check)
        async with _timeout(near.health_check):
            current = await topology()
        if current != near.nodes:
            logger.info(
                "asgi-cache: near cache: cluster primaries changed (%s -> %s); tracking anew",
                ", ".join(sorted(near.nodes)),
                ", ".join(sorted(current)),
            )
            return


async def _subscribe(near: NearCache, connection_class: Any, kwargs: dict[str, Any]) -> Any:
    # RESP2: RESP3 would deliver the messages as pushes, which redis-py's asyncio
    # connection hides.  Maintenance notifications (redis-py 7+) need RESP3: not here.
    options = {k: v for k, v in kwargs.items() if not k.startswith(("maint_", "orig_"))}
    options.update(protocol=2, socket_timeout=None)
    options.setdefault("socket_connect_timeout", near.health_check)
    connection = connection_class(**options)
    try:
        async with _timeout(near.health_check * 2):
            await connection.connect()
            client_id = await _call(connection, "CLIENT", "ID")
            prefix = ("PREFIX", near.prefix) if near.prefix else ()
            await _call(
                connection, "CLIENT", "TRACKING", "on", "REDIRECT", client_id, "BCAST", *prefix
            )
            reply = await _call(connection, "SUBSCRIBE", _CHANNEL)
            if not (isinstance(reply, list) and reply[:1] == [b"subscribe"]):
                raise ConnectionError(f"unexpected SUBSCRIBE reply {reply!r}")
    except BaseException:
        await _disconnect(connection)
        raise
    return connection


async def _call(connection: Any, *args: Any) -> Any:
    await connection.send_command(*args)
    reply = await connection.read_response()
    if isinstance(reply, Exception):
        raise reply
    return reply


async def _listen(near: NearCache, connection: Any) -> None:
    """Apply invalidation messages until the connection fails or goes silent.

    The read loop is tight: messages already received are applied without yielding to
    the event loop, so the tier keeps up with a stream of writes however busy the loop
    is.  The read is never cut short by a timeout (redis-py drops a connection whose read
    is cancelled, and its next command would silently open an untracked one): a
    watchdog pings a silent connection instead, and ends it if the ``PING`` goes
    unanswered.
    """
    heard = [asyncio.get_running_loop().time()]
    watchdog = asyncio.ensure_future(_watch(near, connection, heard))
    reading = asyncio.ensure_future(_read(near, connection, heard))
    try:
        done, _ = await asyncio.wait((watchdog, reading), return_when=asyncio.FIRST_COMPLETED)
        for task in done:
            task.result()
    finally:
        watchdog.cancel()
        reading.cancel()


async def _read(near: NearCache, connection: Any, heard: list[float]) -> None:
    loop = asyncio.get_running_loop()
    while True:
        message = await connection.read_response()
        heard[0] = loop.time()
        if isinstance(message, list) and len(message) == 3 and message[0] == b"message":
            keys = message[2]
            if keys is None:
                near.flush()
            else:
                for key in keys:
                    near.drop(key.decode() if isinstance(key, bytes) else str(key))
        elif isinstance(message, Exception):
            raise message


async def _watch(near: NearCache, connection: Any, heard: list[float]) -> None:
    """Return (ending the listener) once the connection stays silent after a ``PING``."""
    loop = asyncio.get_running_loop()
    pinged_at: float | None = None
    while True:
        await asyncio.sleep(near.health_check)
        if pinged_at is not None and heard[0] < pinged_at:
            raise ConnectionError(f"no reply to PING within {near.health_check:g}s")
        pinged_at = None
        if loop.time() - heard[0] >= near.health_check:
            if not connection.is_connected:
                raise ConnectionError("the tracking connection closed")
            pinged_at = loop.time()
            async with _timeout(near.health_check):
                await connection.send_command("PING", check_health=False)


async def _disconnect(connection: Any) -> None:
    try:
        await connection.disconnect(nowait=True)
    except Exception as exc:  # the connection is dead already
        logger.debug("asgi-cache: closing a tracking connection: %r", exc)
