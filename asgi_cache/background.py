"""Work that outlives the request that started it: background refreshes.

A ``stale-while-revalidate`` answer leaves one refresh of its entry running
after the response went out.  Such work belongs to the application's lifespan:
it runs in a task group opened around the lifespan and is cancelled when the
lifespan shuts down, before the store is closed.  Servers that run no lifespan
get tracked asyncio tasks instead.

The lifespan itself passes through untouched: messages, state and errors are
the application's own, and an exception raised at startup or shutdown comes
out as itself, never wrapped in an ``ExceptionGroup`` by the task group.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any

import anyio
from anyio.abc import TaskGroup
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from asgi_cache.cache import Cache
from asgi_cache.entry import Entry
from asgi_cache.flight import Coalescer
from asgi_cache.lookup import Lookup
from asgi_cache.responder import Responder

__all__ = ["Background", "refresh_scope", "revalidate"]

logger = logging.getLogger("asgi_cache")


class Background:
    """Owns the background tasks of one middleware."""

    def __init__(self) -> None:
        self._tasks: TaskGroup | None = None
        self._orphans: set[asyncio.Task[None]] = set()  # spawned without a lifespan

    async def lifespan(
        self,
        app: ASGIApp,
        scope: Scope,
        receive: Receive,
        send: Send,
        *,
        on_startup: Callable[[], object],
        on_shutdown: Callable[[], Awaitable[None]],
    ) -> None:
        """Run ``app``'s lifespan, with background work inside it.

        ``on_startup`` runs (and is awaited, if it returns an awaitable) when the
        application reports its startup complete;
        an exception from it is raised into the application's lifespan, which
        reports the failure to the server (Starlette sends ``startup.failed``).
        When the application reports its shutdown complete, or failed, background
        work is cancelled and ``on_shutdown`` awaited before the server hears of
        it: a failed shutdown must not leave the store's connections open.
        """

        async def lifespan_send(message: Message) -> None:
            if message["type"] == "lifespan.startup.complete":
                started = on_startup()
                if inspect.isawaitable(started):
                    await started
            elif message["type"] in ("lifespan.shutdown.complete", "lifespan.shutdown.failed"):
                self._tasks = None
                tasks.cancel_scope.cancel()  # background refreshes end here
                with anyio.CancelScope(shield=True):  # ... but this task finishes its job
                    await on_shutdown()
                    await send(message)
                return
            await send(message)

        error: Exception | None = None
        async with anyio.create_task_group() as tasks:
            self._tasks = tasks
            try:
                await app(scope, receive, lifespan_send)
            except Exception as exc:  # re-raised below, outside the task group
                error = exc
            finally:
                self._tasks = None
                tasks.cancel_scope.cancel()
        if error is not None:
            raise error

    def spawn(self, work: Callable[[], Coroutine[Any, Any, None]]) -> None:
        """Run ``work`` in the lifespan's task group, or as a tracked asyncio
        task when the server runs no lifespan."""
        if self._tasks is not None:
            self._tasks.start_soon(work)
            return
        task: asyncio.Task[None] = asyncio.get_running_loop().create_task(work())
        self._orphans.add(task)
        task.add_done_callback(self._orphans.discard)


def refresh_scope(scope: Scope) -> Scope:
    """The scope of a background refresh of the request ``scope``'s entry.

    A copy, since the refresh outlives the request; always a GET, since the
    entry is the GET response even when a HEAD found it stale (an application
    may send no body to a HEAD, and that empty body must never be stored).
    """
    return {**scope, "method": "GET", "headers": list(scope["headers"])}


async def revalidate(
    app: ASGIApp, cache: Cache, coalescer: Coalescer, lookup: Lookup, entry: Entry, scope: Scope
) -> None:
    """Validate ``lookup``'s stale ``entry`` or compute it anew, and store the
    result; the response goes nowhere.

    RFC 5861 §3 asks for a revalidation: with a validator of the application's
    the request is conditional (RFC 9111 §4.3.1), and a 304 renews the entry
    without the application rendering it.  Coalesced like a miss: if another
    request, here or in another process, is computing the key already, this
    refresh does nothing.
    """
    leadership = await coalescer.lead(cache.store, lookup.key, cache.coalesce_wait)
    if leadership is None:
        return
    requested = False

    async def receive() -> Message:
        nonlocal requested
        if requested:
            await anyio.sleep_forever()
        requested = True
        return {"type": "http.request", "body": b"", "more_body": False}

    async def discard(message: Message) -> None:
        return None

    try:
        responder = Responder(cache, lookup, receive, discard, leadership, validating=entry)
        await responder.run(app, scope)
        cache.counters.refreshes += 1
    except Exception:
        logger.warning(
            "asgi-cache: background refresh of %s failed", lookup.route.label, exc_info=True
        )
