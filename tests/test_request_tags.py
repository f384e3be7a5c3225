"""Tags computed from the request: one user's page invalidated, the others' kept."""

from __future__ import annotations

import pytest
from fastapi import FastAPI, Request
from starlette.applications import Starlette
from starlette.responses import JSONResponse
from starlette.routing import Route

from asgi_cache import Cache, CacheMiddleware, cached
from asgi_cache.routes import CacheConfigError, compile_routes
from asgi_cache.status import Detail
from tests.helpers import Calls, MakeCache, client_for, is_hit, not_stored

pytestmark = pytest.mark.anyio


def user_of(request: Request) -> str:
    return request.headers.get("x-user-id", "anon")


def build(cache: Cache) -> tuple[FastAPI, Calls]:
    calls = Calls()
    app = FastAPI()
    app.add_middleware(CacheMiddleware, cache=cache)

    @app.get("/dashboard")
    @cached(ttl=60, key=user_of, tags=("dashboard", "dashboard:user:{key}"))
    async def dashboard(request: Request) -> dict[str, str]:
        calls[user_of(request)] += 1
        return {"hello": user_of(request)}

    @app.get("/teams/{team}/board")
    @cached(ttl=60, tags=lambda request: [f"board:user:{user_of(request)}"], vary=("x-user-id",))
    async def board(team: str, request: Request) -> dict[str, str]:
        calls[f"board:{user_of(request)}"] += 1
        return {"team": team, "user": user_of(request)}

    @app.get("/async-tags")
    @cached(ttl=60, tags=_async_tags)
    async def async_tagged() -> dict[str, int]:
        calls["async"] += 1
        return {"n": calls["async"]}

    @app.get("/bad-tags")
    @cached(ttl=60, tags=lambda request: "not-a-list")
    async def bad_tags() -> dict[str, int]:
        calls["bad"] += 1
        return {"n": calls["bad"]}

    @app.get("/failing-tags")
    @cached(ttl=60, tags=lambda request: [1 / 0])
    async def failing_tags() -> dict[str, int]:
        calls["failing"] += 1
        return {"n": calls["failing"]}

    return app, calls


async def _async_tags(request: Request) -> list[str]:
    return [f"async:{request.query_params.get('v', 'none')}"]


async def test_key_placeholder_invalidates_one_users_page(make_cache: MakeCache) -> None:
    cache = make_cache()
    app, calls = build(cache)
    async with client_for(app) as client:
        await client.get("/dashboard", headers={"x-user-id": "123"})
        await client.get("/dashboard", headers={"x-user-id": "456"})
        removed = await cache.invalidate("dashboard:user:123")
        again = await client.get("/dashboard", headers={"x-user-id": "123"})
    assert removed == 1
    assert not is_hit(again)
    assert again.json() == {"hello": "123"}
    assert calls["123"] == 2


async def test_key_placeholder_invalidation_keeps_other_users_pages(
    make_cache: MakeCache,
) -> None:
    cache = make_cache()
    app, calls = build(cache)
    async with client_for(app) as client:
        await client.get("/dashboard", headers={"x-user-id": "123"})
        await client.get("/dashboard", headers={"x-user-id": "456"})
        await cache.invalidate("dashboard:user:123")
        other = await client.get("/dashboard", headers={"x-user-id": "456"})
    assert is_hit(other)
    assert other.json() == {"hello": "456"}
    assert calls["456"] == 1


async def test_static_tag_of_a_keyed_route_still_invalidates_every_user(
    make_cache: MakeCache,
) -> None:
    cache = make_cache()
    app, _ = build(cache)
    async with client_for(app) as client:
        await client.get("/dashboard", headers={"x-user-id": "123"})
        await client.get("/dashboard", headers={"x-user-id": "456"})
        removed = await cache.invalidate("dashboard")
    assert removed == 2


async def test_tags_callable_invalidates_one_users_page(make_cache: MakeCache) -> None:
    cache = make_cache()
    app, calls = build(cache)
    async with client_for(app) as client:
        await client.get("/teams/a/board", headers={"x-user-id": "123"})
        await client.get("/teams/a/board", headers={"x-user-id": "456"})
        await cache.invalidate("board:user:123")
        mine = await client.get("/teams/a/board", headers={"x-user-id": "123"})
        theirs = await client.get("/teams/a/board", headers={"x-user-id": "456"})
    assert not is_hit(mine)
    assert is_hit(theirs)
    assert calls["board:123"] == 2
    assert calls["board:456"] == 1


async def test_async_tags_callable_is_awaited(make_cache: MakeCache) -> None:
    cache = make_cache()
    app, calls = build(cache)
    async with client_for(app) as client:
        await client.get("/async-tags", params={"v": "7"})
        removed = await cache.invalidate("async:7")
        again = await client.get("/async-tags", params={"v": "7"})
    assert removed == 1
    assert not is_hit(again)
    assert calls["async"] == 2


async def test_tags_callable_is_not_run_on_a_hit(make_cache: MakeCache) -> None:
    runs = Calls()
    app = Starlette()

    def tags(request: object) -> list[str]:
        runs["tags"] += 1
        return ["counted"]

    @cached(ttl=60, tags=tags)
    async def page(request: object) -> JSONResponse:
        return JSONResponse({"ok": True})

    app.router.routes.append(Route("/page", page))
    app.add_middleware(CacheMiddleware, cache=make_cache())
    async with client_for(app) as client:
        await client.get("/page")
        second = await client.get("/page")
    assert is_hit(second)
    assert runs["tags"] == 1


async def test_tags_callable_returning_one_string_forwards_unstored(
    make_cache: MakeCache,
) -> None:
    app, calls = build(make_cache())
    async with client_for(app) as client:
        first = await client.get("/bad-tags")
        second = await client.get("/bad-tags")
    assert first.status_code == second.status_code == 200
    assert second.headers["cache-status"] == not_stored(Detail.KEY_ERROR)
    assert calls["bad"] == 2


async def test_tags_callable_raising_forwards_unstored(make_cache: MakeCache) -> None:
    app, calls = build(make_cache())
    async with client_for(app) as client:
        first = await client.get("/failing-tags")
        second = await client.get("/failing-tags")
    assert first.status_code == second.status_code == 200
    assert second.headers["cache-status"] == not_stored(Detail.KEY_ERROR)
    assert calls["failing"] == 2


# -- startup checks --------------------------------------------------------------


async def _page(request: object) -> JSONResponse:
    return JSONResponse({})


def test_key_placeholder_without_key_function_fails_naming_the_route() -> None:
    endpoint = cached(ttl=1, tags=("user:{key}",))(_page)
    with pytest.raises(CacheConfigError, match=r"/page.*\{key\} needs @cached\(key=\.\.\.\)"):
        compile_routes([Route("/page", endpoint)], Cache())


def test_key_placeholder_on_a_path_parameter_named_key_fails_as_ambiguous() -> None:
    endpoint = cached(ttl=1, key=lambda request: "u", tags=("user:{key}",))(_page)
    with pytest.raises(CacheConfigError, match=r"/things/\{key\}.*both the path parameter"):
        compile_routes([Route("/things/{key}", endpoint)], Cache())


def test_key_placeholder_with_key_function_compiles() -> None:
    endpoint = cached(ttl=1, key=lambda request: "u", tags=("user:{key}",))(_page)
    table = compile_routes([Route("/page", endpoint)], Cache())
    route = table.for_read("/page")
    assert route is not None
    assert route.tags("/page", "42") == ["user:42"]
