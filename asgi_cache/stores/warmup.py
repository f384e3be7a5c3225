"""Startup warm-up of a redis-py asyncio client, with patience the requests do not get.

A :class:`~asgi_cache.stores.redis.RedisStore` bounds every call by its
``timeout`` (50 ms by default), and the client's socket timeouts are set to the
same, so a slow Redis costs a request little.  The first use of a client on an
event loop does much more than one command: it connects to each node (a TCP
connect and redis-py's handshake), a cluster client fetches the slot map and
the whole ``COMMAND`` table (0.1-0.3 s of parsing in pure Python), and each
node has yet to learn the store's Lua scripts.  Under those bounds, on a busy
machine, that first use fails, and the first requests after startup bypass the
cache.

:func:`warm_up` does all of it once at startup instead, bounded as a whole by a
startup bound, with the socket timeouts of the connections it opens raised to
that bound and put back afterwards: the connections stay open for the requests,
with the store's timeouts.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Iterator, MutableMapping
from contextlib import contextmanager
from typing import Any

__all__ = ["warm_up"]

#: The client settings that bound one connection's connect and reads.
_TIMEOUTS = ("socket_timeout", "socket_connect_timeout")


async def warm_up(client: Any, *, cluster: bool, scripts: Iterable[str], seconds: float) -> None:
    """Connect ``client`` to every primary and load ``scripts`` there, within ``seconds``.

    A cluster client discovers its slots first.  Connections opened meanwhile wait
    up to ``seconds`` for each connect and reply, then get the client's own socket
    timeouts back.  Raises what the client raises (or ``TimeoutError``), except an
    error reply to ``SCRIPT LOAD``: the scripts are then loaded by their first use.
    """
    from redis.exceptions import ResponseError

    sources = list(scripts)

    async def warm() -> None:
        primaries: dict[str, Any] = {}
        if cluster:
            await client.initialize()
            primaries["target_nodes"] = client.get_primaries()
        await client.execute_command("PING", **primaries)
        try:
            for source in sources:
                await client.execute_command("SCRIPT LOAD", source, **primaries)
        except ResponseError:  # an ACL refusing SCRIPT: the first calls load them, as before
            pass

    with _patient(client, cluster, seconds):
        await asyncio.wait_for(warm(), seconds)


@contextmanager
def _patient(client: Any, cluster: bool, seconds: float) -> Iterator[None]:
    """Raise the socket timeouts of the connections ``client`` makes to ``seconds``
    for the block; then put the client's own back, in its settings and on every
    connection made meanwhile (redis-py reads them at each connect and reply)."""
    settings = _settings(client, cluster)
    own = {name: settings[0].get(name) for name in _TIMEOUTS}
    for mapping in settings:
        mapping.update(dict.fromkeys(_TIMEOUTS, seconds))
    try:
        yield
    finally:
        for mapping in _settings(client, cluster):  # nodes discovered meanwhile too
            mapping.update(own)
        for connection in _connections(client, cluster):
            for name, value in own.items():
                setattr(connection, name, value)
                if hasattr(connection, f"orig_{name}"):  # redis-py's own copy of it
                    setattr(connection, f"orig_{name}", value)


def _settings(client: Any, cluster: bool) -> list[MutableMapping[str, Any]]:
    """The keyword dictionaries ``client`` makes its connections from (the first: the
    client's own)."""
    if not cluster:
        return [client.connection_pool.connection_kwargs]
    manager = client.nodes_manager
    nodes = {**manager.startup_nodes, **manager.nodes_cache}
    return [manager.connection_kwargs, *(node.connection_kwargs for node in nodes.values())]


def _connections(client: Any, cluster: bool) -> list[Any]:
    """Every connection ``client`` holds now (redis-py's private lists)."""
    if not cluster:
        pool = client.connection_pool
        available = getattr(pool, "_available_connections", ())
        return [*available, *getattr(pool, "_in_use_connections", ())]
    manager = client.nodes_manager
    nodes = {**manager.startup_nodes, **manager.nodes_cache}
    return [connection for node in nodes.values() for connection in node._connections]
