"""The RFC 9111 preset, on a catch-all route in front of an origin whose headers decide."""

from __future__ import annotations

import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from asgi_cache import Cache, CacheMiddleware, cached
from asgi_cache.presets import RFC9111
from asgi_cache.status import Detail
from tests.helpers import STORED, Calls, Clock, MakeCache, client_for, is_hit, not_stored

pytestmark = pytest.mark.anyio

NOW = "Tue, 01 Dec 2026 12:00:00 GMT"
IN_AN_HOUR = "Tue, 01 Dec 2026 13:00:00 GMT"
AN_HOUR_AGO = "Tue, 01 Dec 2026 11:00:00 GMT"


def origin(cache: Cache) -> tuple[Starlette, Calls]:
    """Answers ``/<anything>?status=N&h=name:value...`` with exactly that status and fields."""
    calls = Calls()

    @cached(ttl=None)
    async def proxy(request: Request) -> Response:
        calls[request.url.path] += 1
        headers = [tuple(h.split(":", 1)) for h in request.query_params.getlist("h")]
        response = Response(f"body of {request.url.path}", int(request.query_params["status"]))
        for name, value in headers:
            response.headers.append(name, value.strip())
        return response

    app = Starlette(routes=[Route("/{path:path}", proxy)])
    app.add_middleware(CacheMiddleware, cache=cache)
    return app, calls


def preset(make_cache: MakeCache, **overrides: object) -> Cache:
    # The clock reads the origin's Date, so that Expires means what it says.
    clock = Clock(1796126400.0)  # Tue, 01 Dec 2026 12:00:00 GMT
    return make_cache(**{**RFC9111, "clock": clock, **overrides})


async def twice(app: Starlette, url: str, **headers: str) -> tuple[str, str]:
    async with client_for(app) as client:
        first = await client.get(url, headers=headers)
        second = await client.get(url, headers=headers)
    return first.headers["cache-status"], second.headers["cache-status"]


async def test_a_201_with_explicit_freshness_is_stored_by_the_preset_only(
    make_cache: MakeCache,
) -> None:
    url = "/created?status=201&h=cache-control:max-age=60"
    app, _ = origin(preset(make_cache))
    first, second = await twice(app, url)
    assert first == STORED
    assert "; hit" in second
    default, _ = origin(make_cache())
    assert (await twice(default, url))[0] == not_stored(Detail.STATUS)


async def test_a_403_without_explicit_freshness_is_not_stored(make_cache: MakeCache) -> None:
    app, calls = origin(preset(make_cache))
    await twice(app, "/forbidden?status=403")
    assert calls["/forbidden"] == 2


async def test_a_403_with_explicit_freshness_is_stored(make_cache: MakeCache) -> None:
    app, calls = origin(preset(make_cache))
    await twice(app, "/forbidden?status=403&h=cache-control:max-age=60")
    assert calls["/forbidden"] == 1


async def test_expires_after_date_gives_the_lifetime(make_cache: MakeCache) -> None:
    app, _ = origin(preset(make_cache))
    url = f"/dated?status=200&h=date:{NOW}&h=expires:{IN_AN_HOUR}"
    async with client_for(app) as client:
        await client.get(url)
        hit = await client.get(url)
    assert is_hit(hit)
    assert hit.headers["cache-status"].endswith("ttl=3600")


async def test_an_expires_in_the_past_is_never_fresh(make_cache: MakeCache) -> None:
    app, calls = origin(preset(make_cache))
    await twice(app, f"/expired?status=200&h=date:{NOW}&h=expires:{AN_HOUR_AGO}")
    assert calls["/expired"] == 2


async def test_the_clients_max_age_is_obeyed(make_cache: MakeCache) -> None:
    url = "/page?status=200&h=cache-control:max-age=60"
    for cache, renders in ((preset(make_cache), 2), (make_cache(clock=Clock()), 1)):
        app, calls = origin(cache)
        async with client_for(app) as client:
            await client.get(url)
            cache.clock.advance(5)  # type: ignore[attr-defined]
            await client.get(url, headers={"cache-control": "max-age=1"})
        # The default ignores the client's directives; the preset does not.
        assert calls["/page"] == renders


async def test_only_if_cached_on_a_miss_is_a_504(make_cache: MakeCache) -> None:
    app, calls = origin(preset(make_cache))
    async with client_for(app) as client:
        answer = await client.get("/page?status=200", headers={"cache-control": "only-if-cached"})
    assert answer.status_code == 504
    assert calls["/page"] == 0


@pytest.mark.parametrize(
    "url",
    [
        "/error?status=503&h=cache-control:max-age=60",
        "/cookie?status=200&h=cache-control:max-age=60&h=set-cookie:a=b",
        "/auth?status=200&h=cache-control:max-age=60",
    ],
)
async def test_the_deliberate_deviations_stay(make_cache: MakeCache, url: str) -> None:
    app, calls = origin(preset(make_cache))
    headers = {"authorization": "Bearer x"} if url.startswith("/auth") else {}
    await twice(app, url, **headers)
    assert calls[url.split("?")[0]] == 2  # 5xx, Set-Cookie, credentials: never from the cache
