"""Request observers: how instrumentation learns what the cache did with a request.

A :class:`~asgi_cache.Cache` keeps a list of observers, empty unless something
(:mod:`asgi_cache.otel`) adds one.  The middleware looks at the list once per
request of a cached route; while it is empty, nothing else happens, so the
hit path pays one attribute test for the feature.

An observer is called as the request arrives, before the cache looks anything
up, in the request's own context (where the server instrumentation's span is
current).  It returns what to call with the response's ``Cache-Status`` field
values when the response starts, or ``None`` when it has nothing to record
(no span records this request, say): only then is ``send`` wrapped at all.
``Cache-Status`` is the one vocabulary of outcomes (:mod:`asgi_cache.status`),
so an observer learns exactly what the client is told.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence

from starlette.types import Message, Scope, Send

from asgi_cache.status import CACHE_STATUS

__all__ = ["OnResponse", "RequestObserver", "observed"]

logger = logging.getLogger("asgi_cache")

#: Called with the response's ``Cache-Status`` field values as the response starts.
OnResponse = Callable[[list[bytes]], None]
#: Called as a cached route's request arrives; what to call at its response start, if anything.
RequestObserver = Callable[[Scope], OnResponse | None]


def observed(scope: Scope, send: Send, observers: Sequence[RequestObserver]) -> Send:
    """``send``, wrapped to tell ``observers`` the response's ``Cache-Status``.

    An observer that raises is logged and skipped: instrumentation never
    costs a request its response.
    """
    callbacks: list[OnResponse] = []
    for observer in observers:
        try:
            callback = observer(scope)
        except Exception:
            logger.warning("asgi-cache: request observer %r failed", observer, exc_info=True)
            continue
        if callback is not None:
            callbacks.append(callback)
    if not callbacks:
        return send

    async def send_observed(message: Message) -> None:
        if message["type"] == "http.response.start":
            values = [v for n, v in message.get("headers", ()) if n.lower() == CACHE_STATUS]
            for callback in callbacks:
                try:
                    callback(values)
                except Exception:
                    logger.warning(
                        "asgi-cache: response observer %r failed", callback, exc_info=True
                    )
        await send(message)

    return send_observed
