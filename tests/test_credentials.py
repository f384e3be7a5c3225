"""One user's page is never served to another; client directives can't force misses."""

from __future__ import annotations

import pytest
from fastapi import FastAPI, Request

from asgi_cache import Cache, CacheMiddleware, cached
from asgi_cache.status import Detail
from tests.helpers import (
    REQUEST_STORED,
    STORED,
    Calls,
    MakeCache,
    bypassed,
    client_for,
    is_hit,
    not_stored,
)

pytestmark = pytest.mark.anyio


def build(cache: Cache) -> tuple[FastAPI, Calls]:
    calls = Calls()
    app = FastAPI()
    app.add_middleware(CacheMiddleware, cache=cache)

    @app.get("/public")
    @cached(ttl=60)
    async def public(request: Request) -> dict[str, object]:
        calls["public"] += 1
        return {"user": request.headers.get("authorization"), "n": calls["public"]}

    @app.get("/me")
    @cached(ttl=60, vary=("authorization",))
    async def me(request: Request) -> dict[str, object]:
        calls["me"] += 1
        return {"user": request.headers.get("authorization")}

    @app.get("/dashboard")
    @cached(ttl=60, key=lambda request: request.headers.get("x-user-id", "anon"))
    async def dashboard(request: Request) -> dict[str, object]:
        calls["dashboard"] += 1
        return {"user": request.headers.get("x-user-id", "anon")}

    @app.get("/broken-key")
    @cached(ttl=60, key=lambda request: 1 / 0)
    async def broken_key() -> dict[str, int]:
        calls["broken"] += 1
        return {"n": calls["broken"]}

    return app, calls


@pytest.mark.parametrize(
    ("name", "value"), [("authorization", "Bearer alice"), ("cookie", "session=alice")]
)
async def test_requests_with_credentials_bypass_a_route_that_does_not_key_on_them(
    make_cache: MakeCache, name: str, value: str
) -> None:
    app, calls = build(make_cache())
    async with client_for(app) as client:
        await client.get("/public")  # an anonymous entry exists
        with_credentials = await client.get("/public", headers={name: value})
        again = await client.get("/public", headers={name: value})
    assert with_credentials.headers["cache-status"] == bypassed(name)
    assert again.json()["n"] == 3
    assert calls["public"] == 3


async def test_credentialed_response_is_not_stored_for_anonymous_users(
    make_cache: MakeCache,
) -> None:
    app, _ = build(make_cache())
    async with client_for(app) as client:
        await client.get("/public", headers={"authorization": "Bearer alice"})
        anonymous = await client.get("/public")
    assert anonymous.json()["user"] is None


async def test_route_varying_on_authorization_caches_per_user(make_cache: MakeCache) -> None:
    app, calls = build(make_cache())
    async with client_for(app) as client:
        alice = await client.get("/me", headers={"authorization": "Bearer alice"})
        bob = await client.get("/me", headers={"authorization": "Bearer bob"})
        alice_again = await client.get("/me", headers={"authorization": "Bearer alice"})
    assert alice.json() == alice_again.json() == {"user": "Bearer alice"}
    assert bob.json() == {"user": "Bearer bob"}
    assert is_hit(alice_again)
    assert calls["me"] == 2


async def test_cookie_still_bypasses_a_route_that_varies_only_on_authorization(
    make_cache: MakeCache,
) -> None:
    app, _ = build(make_cache())
    async with client_for(app) as client:
        response = await client.get(
            "/me", headers={"authorization": "Bearer a", "cookie": "session=x"}
        )
    assert response.headers["cache-status"] == bypassed("cookie")


async def test_key_function_separates_users(make_cache: MakeCache) -> None:
    app, calls = build(make_cache())
    async with client_for(app) as client:
        alice = await client.get("/dashboard", headers={"x-user-id": "alice", "cookie": "s=1"})
        bob = await client.get("/dashboard", headers={"x-user-id": "bob", "cookie": "s=2"})
        alice_again = await client.get(
            "/dashboard", headers={"x-user-id": "alice", "cookie": "s=1"}
        )
    assert alice.json() == alice_again.json() == {"user": "alice"}
    assert bob.json() == {"user": "bob"}
    assert is_hit(alice_again)
    assert calls["dashboard"] == 2


async def test_failing_key_function_bypasses_instead_of_erroring(make_cache: MakeCache) -> None:
    app, calls = build(make_cache())
    async with client_for(app) as client:
        response = await client.get("/broken-key")
    assert response.status_code == 200
    assert response.headers["cache-status"] == bypassed(Detail.KEY_ERROR)
    assert response.json() == {"n": 1}
    assert calls["broken"] == 1


async def test_credential_headers_are_configurable(make_cache: MakeCache) -> None:
    app, calls = build(make_cache(credential_headers=("authorization",)))
    async with client_for(app) as client:
        await client.get("/public", headers={"cookie": "theme=dark"})
        hit = await client.get("/public", headers={"cookie": "theme=light"})
    assert is_hit(hit)
    assert calls["public"] == 1


@pytest.mark.parametrize(
    "headers",
    [{"cache-control": "no-cache"}, {"cache-control": "no-store"}, {"pragma": "no-cache"}],
)
async def test_client_cache_directives_are_ignored_by_default(
    make_cache: MakeCache, headers: dict[str, str]
) -> None:
    app, calls = build(make_cache())
    async with client_for(app) as client:
        await client.get("/public")
        reload = await client.get("/public", headers=headers)
    assert is_hit(reload)
    assert calls["public"] == 1


async def test_honoured_no_cache_fetches_anew_and_stores(make_cache: MakeCache) -> None:
    app, calls = build(make_cache(honor_request_cache_control=True))
    async with client_for(app) as client:
        await client.get("/public")
        reload = await client.get("/public", headers={"cache-control": "no-cache"})
        after = await client.get("/public")
    assert reload.headers["cache-status"] == REQUEST_STORED
    assert after.json()["n"] == 2
    assert calls["public"] == 2


async def test_honoured_no_store_is_forwarded_and_not_stored(make_cache: MakeCache) -> None:
    app, calls = build(make_cache(honor_request_cache_control=True))
    async with client_for(app) as client:
        forwarded = await client.get("/public", headers={"cache-control": "no-store"})
        after = await client.get("/public")
    assert forwarded.headers["cache-status"] == not_stored(Detail.REQUEST_NO_STORE)
    assert after.headers["cache-status"] == STORED
    assert calls["public"] == 2
