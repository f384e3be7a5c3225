"""The guard of the examples' purge routes: a bearer token from ``CACHE_PURGE_TOKEN``.

A purge endpoint open to everyone lets anyone push all traffic through to the database, so
the examples' ``DELETE /cache/clear`` answers ``403`` unless the request carries
``Authorization: Bearer $CACHE_PURGE_TOKEN``, and always when that variable is unset.
"""

from __future__ import annotations

import hmac
import os

from fastapi import HTTPException, Request


def require_purge_token(request: Request) -> None:
    """A FastAPI dependency: refuse the request unless it carries the purge token."""
    token = os.environ.get("CACHE_PURGE_TOKEN", "")
    given = request.headers.get("authorization", "").encode()
    if not token or not hmac.compare_digest(given, f"Bearer {token}".encode()):
        raise HTTPException(
            status_code=403, detail="set CACHE_PURGE_TOKEN and send it as a bearer token"
        )
