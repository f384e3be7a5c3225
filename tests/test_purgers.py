"""Every invalidation reaches the purgers; a purger that fails is retried, never waited
on twice, and never fails a write.  HTTP purgers talk to a real purge API under uvicorn."""

from __future__ import annotations

import json
import logging
import os
import re
import time
from collections.abc import Iterator
from pathlib import Path

import anyio
import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Mount, Route

from asgi_cache import (
    Cache,
    CacheMiddleware,
    InvalidationPending,
    MemoryStore,
    cached,
    invalidates,
)
from asgi_cache.admin import admin_app
from asgi_cache.purgers import HTTPPurger, Purge, Purger, VarnishPurger, cloudflare, fastly
from asgi_cache.purgers.varnish import ban_expression
from tests.helpers import BrokenStore, client_for
from tests.servers import ROOT, free_port, running_uvicorn

pytestmark = pytest.mark.anyio

TOKEN = "s3cret-admin-token-0123456789"


class KeptPurges(Purger):
    """A purger of the application's own: it keeps what it is given, after
    ``delay`` seconds on its first call (a slow CDN API)."""

    name = "kept"

    def __init__(self, delay: float = 0.0) -> None:
        self.purges: list[Purge] = []
        self.delay = delay

    async def purge(self, purge: Purge) -> None:
        delay, self.delay = self.delay, 0.0
        await anyio.sleep(delay)
        self.purges.append(purge)


@cached(ttl=60, tags=("product:{pid}",))
async def product(request: Request) -> JSONResponse:
    return JSONResponse({})


@invalidates("product:{pid}", "products")
async def rename(request: Request) -> JSONResponse:
    return JSONResponse({"ok": True})


def shop(cache: Cache) -> Starlette:
    app = Starlette(
        routes=[
            Route("/products/{pid:int}", product),
            Route("/products/{pid:int}", rename, methods=["PUT"]),
            Mount("/_cache", admin_app(cache, token=TOKEN)),
        ]
    )
    app.add_middleware(CacheMiddleware, cache=cache)
    return app


WRITE = Purge(("product:1", "products", "/products/1"), ("/products/1",))


async def test_a_write_is_answered_after_its_purge() -> None:
    purger = KeptPurges(delay=0.2)
    cache = Cache(MemoryStore(), prefix="shop", purgers=[purger])
    async with client_for(shop(cache)) as client:
        response = await client.put("/products/1")
    assert response.status_code == 200
    assert purger.purges == [WRITE]
    assert cache.stats()["purges"] == 1


async def test_every_way_of_invalidating_reaches_the_purgers() -> None:
    purger = KeptPurges()
    cache = Cache(MemoryStore(), prefix="shop", purgers=[purger])
    async with client_for(shop(cache)) as client:
        await cache.invalidate("sale")
        await cache.invalidate_path("/products/2")
        await cache.clear()
        admin = await client.post(
            "/_cache/purge",
            json={"tags": ["product:3"]},
            headers={"authorization": f"Bearer {TOKEN}"},
        )
    assert admin.status_code == 200
    assert purger.purges == [
        Purge(("sale",)),
        Purge(("/products/2",), ("/products/2",)),
        Purge(("shop",), everything=True),
        Purge(("product:3",)),
        # The admin's POST is a write too: its own path goes, as for any write.
        Purge(("/_cache/purge",), ("/_cache/purge",)),
    ]


async def test_the_cache_in_front_is_purged_even_when_the_store_is_down() -> None:
    purger = KeptPurges()
    cache = Cache(BrokenStore(), prefix="shop", purgers=[purger])
    with pytest.raises(InvalidationPending):
        await cache.invalidate("sale")
    await cache.aclose()
    assert purger.purges == [Purge(("sale",))]


async def test_a_disabled_or_isolated_cache_purges_nothing() -> None:
    purger = KeptPurges()
    cache = Cache(MemoryStore(), purgers=[purger])
    with cache.disabled():
        await cache.invalidate("sale")
    with cache.isolated():
        await cache.invalidate("sale")
        await cache.clear()
    assert purger.purges == []
    await cache.invalidate("sale")
    assert purger.purges == [Purge(("sale",))]


async def test_a_purger_slower_than_purge_wait_is_not_waited_for_but_applied_later() -> None:
    purger = KeptPurges(delay=1.0)
    cache = Cache(MemoryStore(), prefix="shop", purgers=[purger], purge_wait=0.1)
    async with client_for(shop(cache)) as client:
        started = time.monotonic()
        response = await client.put("/products/1")
        assert time.monotonic() - started < 0.9
        assert response.status_code == 200
        assert cache.stats()["purges_pending"] == 1
        with anyio.fail_after(10):
            while cache.stats()["purges_pending"]:
                await anyio.sleep(0.05)
    assert purger.purges == [WRITE]
    assert cache.stats()["purges_failed"] == 1


# -- HTTP purgers, against a real purge API ---------------------------------------


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    return env


@pytest.fixture
def api_port() -> int:
    return free_port()


def serving(port: int, log: Path) -> Iterator[str]:
    return running_uvicorn(  # type: ignore[return-value]
        "tests.purge_api_app:app", env=_env(), log=log, startup_timeout=30, port=port
    )


def received(url: str) -> list[dict[str, object]]:
    found: list[dict[str, object]] = httpx.get(url + "/received", timeout=10).json()
    return found


async def test_a_purge_api_that_is_down_gets_what_it_missed_once_it_is_up(
    api_port: int, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    purger = HTTPPurger(f"http://127.0.0.1:{api_port}/purge", headers={"x-keys": "$keys"})
    cache = Cache(MemoryStore(), prefix="shop", purgers=[purger], purge_wait=0.5)
    caplog.set_level(logging.WARNING, "asgi_cache")
    async with client_for(shop(cache)) as client:
        first = await client.put("/products/1")
        started = time.monotonic()
        second = await client.put("/products/2")
        assert time.monotonic() - started < 0.4  # a failing purger is not waited for again
        assert (first.status_code, second.status_code) == (200, 200)
        assert cache.stats()["purges_failed"] == 1
        assert cache.stats()["purges_pending"] == 1
        with serving(api_port, tmp_path / "api.log") as url:
            with anyio.fail_after(20):
                while cache.stats()["purges_pending"]:
                    await anyio.sleep(0.05)
            got = received(url)
    await cache.aclose()
    assert [r["headers"] for r in got] == [
        {"x-keys": "product:1 products /products/1 product:2 /products/2"}
    ]
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len([w for w in warnings if "purge to POST" in w]) == 1  # once per outage
    assert len([w for w in warnings if "applied; it is back" in w]) == 1


@pytest.mark.parametrize("anyio_backend", ["trio"])
async def test_on_trio_what_was_kept_goes_along_with_the_next_purge(
    anyio_backend: str, api_port: int, tmp_path: Path
) -> None:
    purger = HTTPPurger(f"http://127.0.0.1:{api_port}/purge", headers={"x-keys": "$keys"})
    cache = Cache(MemoryStore(), prefix="shop", purgers=[purger], purge_wait=2)
    await cache.invalidate("first")  # nothing listens yet: kept
    assert cache.stats()["purges_pending"] == 1
    with serving(api_port, tmp_path / "api.log") as url:
        await cache.invalidate("second")
        got = received(url)
    await cache.aclose()
    assert [r["headers"] for r in got] == [{"x-keys": "first second"}]
    assert cache.stats()["purges_pending"] == 0


async def test_an_api_that_refuses_is_a_failure_kept_for_later(
    api_port: int, tmp_path: Path
) -> None:
    with serving(api_port, tmp_path / "api.log") as url:
        cache = Cache(MemoryStore(), purgers=[HTTPPurger(url + "/refuse")], purge_wait=2)
        await cache.invalidate("sale")
        assert cache.stats()["purges_failed"] == 1
        assert cache.stats()["purges_pending"] == 1
        await cache.aclose()


async def test_templates_fill_keys_and_the_token_from_the_environment(
    api_port: int, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PURGE_TOKEN", "t0ken")
    with serving(api_port, tmp_path / "api.log") as url:
        purger = HTTPPurger(
            url + "/zones/z1/purge_cache",
            headers={"authorization": "Bearer $token", "x-keys-csv": "$keys_csv"},
            body='{"tags": $keys_json}',
            token_env="PURGE_TOKEN",
            batch=2,
        )
        cache = Cache(MemoryStore(), prefix="shop", purgers=[purger], purge_wait=5)
        await cache.invalidate("a", "b", "c")
        got = received(url)
        await cache.aclose()
    assert [(r["path"], r["headers"], json.loads(str(r["body"]))) for r in got] == [
        (
            "/zones/z1/purge_cache",
            {"authorization": "Bearer t0ken", "x-keys-csv": "a,b"},
            {"tags": ["a", "b"]},
        ),
        (
            "/zones/z1/purge_cache",
            {"authorization": "Bearer t0ken", "x-keys-csv": "c"},
            {"tags": ["c"]},
        ),
    ]


async def test_a_missing_token_fails_the_purge_naming_the_variable(
    caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("NO_SUCH_TOKEN", raising=False)
    purger = HTTPPurger("http://127.0.0.1:9/purge", token_env="NO_SUCH_TOKEN")
    cache = Cache(MemoryStore(), purgers=[purger])
    await cache.invalidate("sale")
    assert "NO_SUCH_TOKEN is not set" in caplog.text
    await cache.aclose()


def test_fastly_and_cloudflare_are_configurations_of_the_http_purger() -> None:
    assert fastly("svc").url.template == "https://api.fastly.com/service/svc/purge"
    assert cloudflare("zone").url.template == (
        "https://api.cloudflare.com/client/v4/zones/zone/purge_cache"
    )


def test_varnish_bans_match_the_encoded_paths_with_any_query() -> None:
    expression = ban_expression(["/products/1", "/a b"], root_path="/shop")
    assert expression == r"^(/shop/products/1|/shop/a%20b)([?]|$)"
    assert re.match(expression, "/shop/products/1?page=2")
    assert not re.match(expression, "/shop/products/12")


def test_purgers_refuse_misuse() -> None:
    with pytest.raises(ValueError, match="http"):
        VarnishPurger(["127.0.0.1:6081"])
    with pytest.raises(ValueError, match="at least one"):
        VarnishPurger([])
    with pytest.raises(ValueError, match="batch"):
        HTTPPurger("https://example.com", batch=0)
    with pytest.raises(TypeError, match="Purger"):
        Cache(purgers=["http://127.0.0.1:6081"])  # type: ignore[list-item]
