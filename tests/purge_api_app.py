"""A purge API for ``tests/test_purgers.py`` to purge, under a real uvicorn: it
records every request and shows them at ``GET /received``.

``POST /refuse`` answers 503, as an API that is up but refuses.
"""

from __future__ import annotations

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

received: list[dict[str, object]] = []


async def record(request: Request) -> Response:
    received.append(
        {
            "method": request.method,
            "path": request.url.path,
            "headers": {k: v for k, v in request.headers.items() if k.startswith(("x-", "auth"))},
            "body": (await request.body()).decode(),
        }
    )
    return JSONResponse({"ok": True})


async def refuse(request: Request) -> Response:
    return JSONResponse({"ok": False}, status_code=503)


async def show(request: Request) -> Response:
    return JSONResponse(received)


app = Starlette(
    routes=[
        Route("/received", show, methods=["GET"]),
        Route("/refuse", refuse, methods=["POST"]),
        Route("/{path:path}", record, methods=["POST", "PURGE", "BAN", "DELETE"]),
    ]
)
