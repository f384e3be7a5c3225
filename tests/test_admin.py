"""The admin app: purge and stats over HTTP, never without the token."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Sequence

import pytest
from fastapi import FastAPI

from asgi_cache import Cache, CacheMiddleware, MemoryStore, StoreError, cached
from asgi_cache.admin import admin_app
from tests.helpers import Calls, MakeCache, client_for, is_hit

pytestmark = pytest.mark.anyio

TOKEN = "s3cret-admin-token-0123456789"
AUTH = {"authorization": f"Bearer {TOKEN}"}


def build(cache: Cache, token: str | None = TOKEN) -> tuple[FastAPI, Calls]:
    calls = Calls()
    app = FastAPI()
    app.add_middleware(CacheMiddleware, cache=cache)

    @app.get("/products")
    @cached(ttl=60, tags=("products",))
    async def list_products() -> list[int]:
        calls["list"] += 1
        return [1, 2]

    @app.get("/products/{pid}")
    @cached(ttl=60, tags=("product:{pid}",))
    async def get_product(pid: int) -> dict[str, int]:
        calls[f"get{pid}"] += 1
        return {"pid": pid}

    app.mount("/_cache", admin_app(cache, token=token))
    return app, calls


async def purge(app: FastAPI, body: object) -> tuple[int, object]:
    async with client_for(app) as client:
        response = await client.post("/_cache/purge", json=body, headers=AUTH)
    return response.status_code, response.json()


async def warm(app: FastAPI, *paths: str) -> None:
    async with client_for(app) as client:
        for path in paths:
            assert (await client.get(path)).status_code == 200


# --- construction ---------------------------------------------------------


def test_refuses_to_start_without_a_token(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("ASGI_CACHE_ADMIN_TOKEN", raising=False)
    with pytest.raises(ValueError, match="ASGI_CACHE_ADMIN_TOKEN"):
        admin_app(Cache())


@pytest.mark.parametrize("token", ["", "too-short", "has a space in it, sixteen+"])
def test_refuses_an_empty_short_or_unsendable_token(
    token: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("ASGI_CACHE_ADMIN_TOKEN", raising=False)
    with pytest.raises(ValueError, match="refuses to start"):
        admin_app(Cache(), token=token)


def test_refuses_a_short_token_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ASGI_CACHE_ADMIN_TOKEN", "short")
    with pytest.raises(ValueError, match="too short"):
        admin_app(Cache())


async def test_reads_the_token_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ASGI_CACHE_ADMIN_TOKEN", TOKEN)
    app, _ = build(Cache(), token=None)
    async with client_for(app) as client:
        accepted = await client.get("/_cache/stats", headers=AUTH)
        refused = await client.get("/_cache/stats", headers={"authorization": "Bearer nope"})
    assert accepted.status_code == 200
    assert refused.status_code == 403


async def test_a_token_argument_wins_over_the_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("ASGI_CACHE_ADMIN_TOKEN", "the-environment-token-xyz")
    app, _ = build(Cache())
    async with client_for(app) as client:
        ours = await client.get("/_cache/stats", headers=AUTH)
        env = await client.get(
            "/_cache/stats", headers={"authorization": "Bearer the-environment-token-xyz"}
        )
    assert (ours.status_code, env.status_code) == (200, 403)


# --- authentication ---------------------------------------------------------


async def test_a_request_without_authorization_gets_401_and_a_bearer_challenge() -> None:
    app, _ = build(Cache())
    async with client_for(app) as client:
        response = await client.get("/_cache/stats")
    assert response.status_code == 401
    assert response.headers["www-authenticate"].startswith("Bearer")
    assert "missing" in response.json()["detail"]


@pytest.mark.parametrize(
    "value",
    [f"Basic {TOKEN}", "Bearer", "Bearer   ", TOKEN, f"Token {TOKEN}"],
    ids=["basic", "no-token", "blank-token", "no-scheme", "other-scheme"],
)
async def test_a_malformed_authorization_gets_401(value: str) -> None:
    app, _ = build(Cache())
    async with client_for(app) as client:
        response = await client.get("/_cache/stats", headers={"authorization": value})
    assert response.status_code == 401
    assert response.headers["www-authenticate"].startswith("Bearer")


async def test_two_authorization_headers_get_401() -> None:
    app, _ = build(Cache())
    async with client_for(app) as client:
        response = await client.get(
            "/_cache/stats",
            headers=[("authorization", f"Bearer {TOKEN}"), ("authorization", "Bearer x")],
        )
    assert response.status_code == 401


@pytest.mark.parametrize("wrong", [TOKEN[:-1], TOKEN + "x", TOKEN.upper(), "x" * 64])
async def test_a_wrong_token_gets_403(wrong: str) -> None:
    app, _ = build(Cache())
    async with client_for(app) as client:
        response = await client.get("/_cache/stats", headers={"authorization": f"Bearer {wrong}"})
    assert response.status_code == 403
    assert "www-authenticate" not in response.headers


async def test_the_right_token_gets_200_whatever_the_scheme_case() -> None:
    app, _ = build(Cache())
    async with client_for(app) as client:
        plain = await client.get("/_cache/stats", headers=AUTH)
        lower = await client.get("/_cache/stats", headers={"authorization": f"bearer {TOKEN}"})
    assert (plain.status_code, lower.status_code) == (200, 200)


async def test_authentication_comes_before_routing() -> None:
    app, _ = build(Cache())
    async with client_for(app) as client:
        unknown_path = await client.get("/_cache/anything")
        wrong_method = await client.delete("/_cache/purge")
    assert unknown_path.status_code == wrong_method.status_code == 401


async def test_a_purge_without_the_token_removes_nothing() -> None:
    app, calls = build(Cache())
    await warm(app, "/products")
    async with client_for(app) as client:
        refused = await client.post(
            "/_cache/purge", json={"all": True}, headers={"authorization": "Bearer wrong"}
        )
        again = await client.get("/products")
    assert refused.status_code == 403
    assert is_hit(again)
    assert calls["list"] == 1


async def test_no_answer_echoes_the_token() -> None:
    app, _ = build(Cache())
    async with client_for(app) as client:
        answers = [
            await client.get("/_cache/stats", headers={"authorization": f"Basic {TOKEN}"}),
            await client.get("/_cache/stats", headers={"authorization": f"Bearer {TOKEN}x"}),
            await client.post("/_cache/purge", content=b"{", headers=AUTH),
            await client.put("/_cache/purge", headers=AUTH),
        ]
    for answer in answers:
        assert TOKEN not in answer.text
        assert all(TOKEN not in value for value in answer.headers.values())


# --- routing ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "path"), [("GET", "/purge"), ("PUT", "/purge"), ("POST", "/stats")]
)
async def test_other_methods_get_405(method: str, path: str) -> None:
    app, _ = build(Cache())
    async with client_for(app) as client:
        response = await client.request(method, "/_cache" + path, headers=AUTH)
    assert response.status_code == 405
    assert "detail" in response.json()


# --- purge --------------------------------------------------------------------


async def test_purge_by_tags_removes_those_entries_only(make_cache: MakeCache) -> None:
    app, calls = build(make_cache())
    await warm(app, "/products", "/products/1", "/products/2")
    status, body = await purge(app, {"tags": ["products", "product:1"]})
    await warm(app, "/products", "/products/1", "/products/2")
    assert (status, body) == (200, {"removed": {"tags": 2, "paths": 0, "memoized": 0, "all": 0}})
    assert calls == {"list": 2, "get1": 2, "get2": 1}


async def test_purge_by_paths_removes_every_variant(make_cache: MakeCache) -> None:
    app, calls = build(make_cache())
    await warm(app, "/products/1?a=1", "/products/1?a=2", "/products/2")
    status, body = await purge(app, {"paths": ["/products/1", "/products/3"]})
    await warm(app, "/products/1?a=1", "/products/2")
    assert (status, body) == (200, {"removed": {"tags": 0, "paths": 2, "memoized": 0, "all": 0}})
    assert calls == {"get1": 3, "get2": 1}


async def test_purge_all_clears_the_cache(make_cache: MakeCache) -> None:
    app, calls = build(make_cache())
    await warm(app, "/products", "/products/1")
    status, body = await purge(app, {"all": True})
    await warm(app, "/products", "/products/1")
    assert (status, body) == (200, {"removed": {"tags": 0, "paths": 0, "memoized": 0, "all": 2}})
    assert calls == {"list": 2, "get1": 2}


async def test_purge_all_false_and_empty_lists_remove_nothing(make_cache: MakeCache) -> None:
    app, calls = build(make_cache())
    await warm(app, "/products")
    status, body = await purge(app, {"tags": [], "all": False})
    await warm(app, "/products")
    assert (status, body) == (200, {"removed": {"tags": 0, "paths": 0, "memoized": 0, "all": 0}})
    assert calls == {"list": 1}


async def test_purge_memoized_functions_by_name(make_cache: MakeCache) -> None:
    cache = make_cache()
    app, _ = build(cache)
    runs = Calls()

    @cache.memoize(ttl=60)
    async def score(user: int) -> int:
        runs[f"score{user}"] += 1
        return user * 2

    name = f"{score.__module__}.{score.__qualname__}"
    assert (await score(1), await score(2), await score(1)) == (2, 4, 2)
    status, body = await purge(app, {"memoized": [name]})
    assert (await score(1), await score(2)) == (2, 4)
    assert (status, body) == (200, {"removed": {"tags": 0, "paths": 0, "memoized": 2, "all": 0}})
    assert runs == {"score1": 2, "score2": 2}


async def test_an_unknown_memoized_name_gets_422_and_purges_nothing(
    make_cache: MakeCache,
) -> None:
    app, calls = build(make_cache())
    await warm(app, "/products")
    status, body = await purge(app, {"tags": ["products"], "memoized": ["no.such.function"]})
    await warm(app, "/products")
    assert status == 422
    assert "no.such.function" in json.dumps(body)
    assert calls == {"list": 1}


@pytest.mark.parametrize(
    "body",
    [
        b"{",
        b"",
        b"   ",
        b"{}",
        b"[]",
        b"null",
        b'"tags"',
        b'{"tags": "products"}',
        b'{"tags": [1]}',
        b'{"tags": [""]}',
        b'{"tags": [null]}',
        b'{"paths": "/products"}',
        b'{"paths": ["products/1"]}',
        b'{"memoized": {"a": 1}}',
        b'{"all": "yes"}',
        b'{"all": 1}',
        b'{"all": null}',
        b'{"tag": ["products"]}',
        b'{"tags": ["products"], "everything": true}',
        b'{"tags": ["products"]} trailing',
        b"\xff\xfe",
    ],
)
async def test_an_invalid_body_gets_422_and_purges_nothing(body: bytes) -> None:
    app, calls = build(Cache())
    await warm(app, "/products")
    async with client_for(app) as client:
        response = await client.post("/_cache/purge", content=body, headers=AUTH)
        again = await client.get("/products")
    assert response.status_code == 422
    assert set(response.json()) == {"detail"}
    assert is_hit(again)
    assert calls == {"list": 1}


async def test_an_unknown_field_is_named() -> None:
    app, _ = build(Cache())
    status, body = await purge(app, {"tag": ["products"]})
    assert status == 422
    assert "'tag'" in json.dumps(body)


async def test_a_body_over_64_kib_gets_413() -> None:
    app, _ = build(Cache())
    await warm(app, "/products")
    big = {"tags": ["products"] + ["x" * 1000] * 70}
    async with client_for(app) as client:
        response = await client.post("/_cache/purge", json=big, headers=AUTH)
        again = await client.get("/products")
    assert response.status_code == 413
    assert is_hit(again)


async def test_a_streamed_body_over_64_kib_gets_413_without_content_length() -> None:
    app, _ = build(Cache())

    async def chunks() -> AsyncIterator[bytes]:
        yield b'{"tags": ["'
        for _ in range(70):
            yield b"x" * 1024
        yield b'"]}'

    async with client_for(app) as client:
        response = await client.post("/_cache/purge", content=chunks(), headers=AUTH)
    assert "content-length" not in response.request.headers
    assert response.status_code == 413


async def test_a_body_of_exactly_64_kib_is_read() -> None:
    app, _ = build(Cache())
    head, tail = b'{"tags": ["', b'"]}'
    body = head + b"x" * (64 * 1024 - len(head) - len(tail)) + tail
    async with client_for(app) as client:
        response = await client.post("/_cache/purge", content=body, headers=AUTH)
    assert response.status_code == 200


class _UnreachableStore(MemoryStore):
    """A memory store whose invalidations fail, as a Redis store's do in an outage."""

    async def invalidate(self, tags: Sequence[str]) -> int:
        raise StoreError("Redis invalidate failed: connection refused")


async def test_a_store_failure_gets_503() -> None:
    app, _ = build(Cache(_UnreachableStore()))
    status, body = await purge(app, {"tags": ["products"]})
    assert status == 503
    assert "unavailable" in json.dumps(body)


# --- stats and caching ----------------------------------------------------------


async def test_stats_returns_the_counters(make_cache: MakeCache) -> None:
    cache = make_cache()
    app, _ = build(cache)
    await warm(app, "/products", "/products", "/products/1")
    async with client_for(app) as client:
        response = await client.get("/_cache/stats", headers=AUTH)
    stats = response.json()
    assert response.status_code == 200
    assert (stats["hits"], stats["misses"], stats["stores"]) == (1, 2, 2)
    assert stats == json.loads(json.dumps(cache.stats()))


async def test_admin_routes_are_never_cached(make_cache: MakeCache) -> None:
    app, _ = build(make_cache())
    await warm(app, "/products")
    async with client_for(app) as client:
        first = await client.get("/_cache/stats", headers=AUTH)
        await client.get("/products")
        second = await client.get("/_cache/stats", headers=AUTH)
        purged = await client.post("/_cache/purge", json={"all": True}, headers=AUTH)
    for response in (first, second, purged):
        assert "cache-status" not in response.headers
        assert response.headers["cache-control"] == "no-store"
    assert (first.json()["hits"], second.json()["hits"]) == (0, 1)
