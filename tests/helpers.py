"""Small helpers shared by the HTTP-level tests."""

from __future__ import annotations

import base64
import subprocess
import sys
from collections import Counter
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, NoReturn, Protocol

import anyio
import httpx
from starlette.applications import Starlette
from starlette.testclient import TestClient
from starlette.types import ASGIApp, Message, Receive, Scope

from asgi_cache import Cache, CacheMiddleware, MemoryStore
from asgi_cache.status import CacheStatus, Detail, Forward, forwarded, hit, parse
from asgi_cache.stores.base import Fence, Store, StoreError

#: The ``make_cache`` fixture: a Cache over the parametrised store, under a prefix of its own.
MakeCache = Callable[..., Cache]
#: The ``store_factory`` fixture: a store of the parametrised kind.
StoreFactory = Callable[[], Store]


class Calls(Counter[str]):
    """Counts endpoint executions, to prove a hit ran nothing."""


@asynccontextmanager
async def client_for(app: ASGIApp, **kwargs: object) -> AsyncIterator[httpx.AsyncClient]:
    """An httpx client talking HTTP to ``app`` in-process, in the test's event loop."""
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(
        transport=transport,
        base_url="http://testserver",
        **kwargs,  # type: ignore[arg-type]
    ) as client:
        yield client


def sync_client_for(app: Starlette, cache: Cache | None = None, **kwargs: Any) -> TestClient:
    """A Starlette TestClient for ``app`` behind the cache middleware (in memory by default).

    Enter it (``with``) so the app's lifespan runs.
    """
    app.add_middleware(CacheMiddleware, cache=cache or Cache(MemoryStore()))
    return TestClient(app, **kwargs)


class _HasHeaders(Protocol):
    @property
    def headers(self) -> Mapping[str, str]: ...


class Clock:
    """An injectable wall clock for :class:`asgi_cache.Cache`."""

    def __init__(self, now: float = 1_700_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


class Recorded:
    """The ASGI messages an app sent for one request."""

    def __init__(self, messages: list[Message]) -> None:
        self.messages = messages
        start = messages[0]
        self.status: int = start["status"]
        self.headers: list[tuple[bytes, bytes]] = list(start.get("headers", []))
        self.body = b"".join(m.get("body", b"") for m in messages[1:])

    def header(self, name: bytes) -> bytes | None:
        return next((v for n, v in self.headers if n == name), None)


def cache_status(response: Recorded | _HasHeaders) -> CacheStatus | None:
    """The cache's ``Cache-Status`` member of ``response``, parsed; ``None`` without one."""
    if isinstance(response, Recorded):
        raw = response.header(b"cache-status")
        return None if raw is None else parse(raw)
    value = response.headers.get("cache-status")
    return None if value is None else parse(value)


def is_hit(response: Recorded | _HasHeaders) -> bool:
    """Whether the cache answered ``response``: its ``Cache-Status`` says ``hit``."""
    status = cache_status(response)
    return status is not None and status.hit


def detail_of(response: Recorded | _HasHeaders) -> str | None:
    """The ``detail`` of ``response``'s ``Cache-Status`` (why not stored, bypassed, stale)."""
    status = cache_status(response)
    return None if status is None else status.detail


# Whole Cache-Status values, in the package's own vocabulary (asgi_cache.status);
# tests/test_status.py pins their wire form once.
STORED = forwarded(Forward.URI_MISS, stored=True).decode()
COLLAPSED = forwarded(Forward.URI_MISS, collapsed=True).decode()
REQUEST_STORED = forwarded(Forward.REQUEST, stored=True).decode()
STALE_STORED = forwarded(Forward.STALE, stored=True).decode()
STREAMED = forwarded(Forward.URI_MISS).decode()


def hit_status(ttl: int, detail: Detail | None = None) -> str:
    """The ``Cache-Status`` of a hit with ``ttl`` seconds left (stale: negative, and why)."""
    return hit(ttl, detail).decode()


def not_stored(detail: Detail | str) -> str:
    """The ``Cache-Status`` of a miss whose response was not stored, for ``detail``."""
    return forwarded(Forward.URI_MISS, detail).decode()


def bypassed(detail: Detail | str) -> str:
    """The ``Cache-Status`` of a request that bypassed the cache, for ``detail``."""
    return forwarded(Forward.BYPASS, detail).decode()


async def asgi_request(
    app: ASGIApp,
    path: str,
    *,
    method: str = "GET",
    query_string: bytes = b"",
    headers: list[tuple[bytes, bytes]] | None = None,
    receive: Receive | None = None,
) -> Recorded:
    """Send one raw HTTP request to ``app``; bytes go through untouched."""
    scope: Scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": method,
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "root_path": "",
        "query_string": query_string,
        "headers": [(b"host", b"testserver"), *(headers or [])],
        "client": ("127.0.0.1", 1234),
        "server": ("testserver", 80),
    }
    messages: list[Message] = []
    requested = False

    async def no_body() -> Message:
        nonlocal requested
        if not requested:  # the empty request body, then nothing until the app is done
            requested = True
            return {"type": "http.request", "body": b"", "more_body": False}
        await anyio.sleep_forever()
        raise AssertionError("unreachable")

    async def send(message: Message) -> None:
        messages.append(message)

    await app(scope, receive or no_body, send)
    return Recorded(messages)


class BrokenStore(Store):
    """A store whose every call fails, like a Redis that went away."""

    def __init__(self, error: type[Exception] = StoreError) -> None:
        self.error = error

    def _fail(self) -> NoReturn:
        raise self.error("store down")

    async def get(self, key: str) -> bytes | None:
        self._fail()

    async def fence(self, tags: Sequence[str]) -> Fence:
        self._fail()

    async def set(
        self,
        key: str,
        value: bytes,
        ttl: float,
        tags: Sequence[str] = (),
        fence: Fence | None = None,
    ) -> bool:
        self._fail()

    async def delete(self, key: str) -> bool:
        self._fail()

    async def invalidate(self, tags: Sequence[str]) -> int:
        self._fail()

    async def clear(self, prefix: str) -> int:
        self._fail()

    async def acquire(self, name: str, token: str, ttl: float) -> bool:
        self._fail()

    async def release(self, name: str, token: str) -> None:
        self._fail()

    async def wait_released(self, name: str, timeout: float) -> None:
        self._fail()


# -- RFC 8941 Structured Field Values, List only (for Cache-Status, RFC 9211 §2) ------


class Token(str):
    """An sf-token (RFC 8941 §3.3.4), told apart from an sf-string."""


BareItem = int | float | str | bool | bytes
Parameters = dict[str, BareItem]

_KEY_START = "abcdefghijklmnopqrstuvwxyz*"
_KEY_CHARS = _KEY_START + "0123456789_-."
_TCHAR = "!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"


class _SfParser:
    """A strict parser after RFC 8941 §4.2: anything off the grammar raises ValueError."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.i = 0

    def peek(self) -> str:
        return self.text[self.i] if self.i < len(self.text) else ""

    def skip(self, chars: str) -> None:
        while self.peek() and self.peek() in chars:
            self.i += 1

    def list(self) -> list[tuple[BareItem | list[tuple[BareItem, Parameters]], Parameters]]:
        self.skip(" ")
        members: list[tuple[BareItem | list[tuple[BareItem, Parameters]], Parameters]] = []
        while self.i < len(self.text):
            if self.peek() == "(":
                inner = self.inner_list()
                members.append((inner, self.parameters()))
            else:
                item = self.bare_item()
                members.append((item, self.parameters()))
            self.skip(" \t")
            if self.i == len(self.text):
                return members
            if self.peek() != ",":
                raise ValueError(f"expected ',' at {self.i} in {self.text!r}")
            self.i += 1
            self.skip(" \t")
            if self.i == len(self.text):
                raise ValueError(f"trailing ',' in {self.text!r}")
        return members

    def inner_list(self) -> list[tuple[BareItem, Parameters]]:
        self.i += 1
        items: list[tuple[BareItem, Parameters]] = []
        while True:
            self.skip(" ")
            if self.peek() == ")":
                self.i += 1
                return items
            items.append((self.bare_item(), self.parameters()))
            if self.peek() not in " )":
                raise ValueError(f"bad inner list in {self.text!r}")

    def parameters(self) -> Parameters:
        params: Parameters = {}
        while self.peek() == ";":
            self.i += 1
            self.skip(" ")
            key = self.key()
            value: BareItem = True
            if self.peek() == "=":
                self.i += 1
                value = self.bare_item()
            params[key] = value
        return params

    def key(self) -> str:
        start = self.i
        if not self.peek() or self.peek() not in _KEY_START:
            raise ValueError(f"bad key at {self.i} in {self.text!r}")
        self.skip(_KEY_CHARS)
        return self.text[start : self.i]

    def bare_item(self) -> BareItem:
        char = self.peek()
        if char == "-" or char.isdigit():
            return self.number()
        if char == '"':
            return self.string()
        if char == ":":
            end = self.text.index(":", self.i + 1)
            raw, self.i = self.text[self.i + 1 : end], end + 1
            return base64.b64decode(raw, validate=True)
        if char == "?":
            value, self.i = self.text[self.i + 1 : self.i + 2], self.i + 2
            if value not in ("0", "1"):
                raise ValueError(f"bad boolean in {self.text!r}")
            return value == "1"
        if char and ((char.isalpha() and char.isascii()) or char == "*"):
            start = self.i
            self.skip(_TCHAR + ":/")
            return Token(self.text[start : self.i])
        raise ValueError(f"bad item at {self.i} in {self.text!r}")

    def number(self) -> int | float:
        start = self.i
        if self.peek() == "-":
            self.i += 1
        self.skip("0123456789")
        digits = self.text[start : self.i].lstrip("-")
        if not digits:
            raise ValueError(f"bad number in {self.text!r}")
        if self.peek() != ".":
            if len(digits) > 15:
                raise ValueError(f"integer too long in {self.text!r}")
            return int(self.text[start : self.i])
        self.i += 1
        frac_start = self.i
        self.skip("0123456789")
        if not 1 <= self.i - frac_start <= 3 or len(digits) > 12:
            raise ValueError(f"bad decimal in {self.text!r}")
        return float(self.text[start : self.i])

    def string(self) -> str:
        self.i += 1
        out: list[str] = []
        while True:
            char = self.peek()
            if not char:
                raise ValueError(f"unterminated string in {self.text!r}")
            self.i += 1
            if char == "\\":
                escaped = self.peek()
                if escaped not in ('"', "\\"):
                    raise ValueError(f"bad escape in {self.text!r}")
                out.append(escaped)
                self.i += 1
            elif char == '"':
                return "".join(out)
            elif not " " <= char <= "~":
                raise ValueError(f"non-printable character in {self.text!r}")
            else:
                out.append(char)


def parse_sf_list(
    text: str,
) -> list[tuple[BareItem | list[tuple[BareItem, Parameters]], Parameters]]:
    """An RFC 8941 List, parsed strictly; a value off its grammar raises ValueError."""
    return _SfParser(text).list()


def cache_status_member(response: _HasHeaders) -> Parameters:
    """The parameters of this cache's member of ``response``'s ``Cache-Status``,
    read with the strict RFC 8941 parser (exactly one member of this cache)."""
    members = [
        params
        for item, params in parse_sf_list(response.headers["cache-status"])
        if item == "asgi-cache"
    ]
    assert len(members) == 1, members
    return members[0]


def python_output(code: str) -> str:
    """What ``code`` prints, run by a fresh interpreter from the repository's root."""
    done = subprocess.run(
        [sys.executable, "-c", code],
        cwd=Path(__file__).parent.parent,  # -c puts the working directory on sys.path
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    return done.stdout


def import_error_without(dependency: str, module: str) -> str:
    """The ``ImportError`` message of importing ``module`` where ``dependency`` is
    missing (hidden in ``sys.modules`` of a fresh interpreter)."""
    return python_output(
        "import importlib, sys\n"
        f"sys.modules[{dependency!r}] = None\n"
        "try:\n"
        f"    importlib.import_module({module!r})\n"
        "except ImportError as exc:\n"
        "    print(exc)\n"
        "else:\n"
        "    raise SystemExit('imported')\n"
    )
