"""Vary and content codings over HTTP (RFC 9111 §4.1, RFC 9110 §8.4, §12.5.3).

Every request header that selects a response is named in its ``Vary``; a
``key=`` route's responses are private; a pre-compressed body is served only to
clients that accept its coding; an application's own ``Vary`` selects variants,
which every invalidation removes.  On memory, Redis and Redis Cluster.
"""

from __future__ import annotations

import gzip

import anyio
import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from asgi_cache import Cache, CacheMiddleware, MemoryStore, cached, invalidates
from asgi_cache.status import Detail, Forward, forwarded
from tests.helpers import (
    STORED,
    BrokenStore,
    Calls,
    Clock,
    MakeCache,
    client_for,
    detail_of,
    is_hit,
    not_stored,
)

pytestmark = pytest.mark.anyio

BODY = b"the same text, compressed or not, " * 20


def echo_headers(request: Request, body: bytes = b"ok") -> Response:
    """A response carrying the headers the query string names (``?vary=X-A``)."""
    response = Response(body, media_type="text/plain")
    for name, value in request.query_params.multi_items():
        response.headers.append(name, value)
    return response


def accepts_gzip(request: Request) -> bool:
    value = request.headers.get("accept-encoding", "").replace(" ", "")
    return "gzip" in value and "gzip;q=0" not in value


def build(cache: Cache) -> tuple[Starlette, Calls]:
    calls = Calls()

    @cached(ttl=60, vary=("accept-language",))
    async def lang(request: Request) -> Response:
        calls["lang"] += 1
        language = request.headers.get("accept-language", "en")
        return echo_headers(request, f"page in {language}".encode())

    @cached(ttl=60)
    async def plain(request: Request) -> Response:
        calls["plain"] += 1
        return echo_headers(request)

    @cached(ttl=60, key=lambda request: request.headers.get("x-user", "anon"))
    async def user(request: Request) -> Response:
        calls["user"] += 1
        return echo_headers(request, request.headers.get("x-user", "anon").encode())

    @cached(ttl=60, key=lambda request: request.headers.get("x-region", "eu"), shared=True)
    async def region(request: Request) -> Response:
        calls["region"] += 1
        return echo_headers(request, request.headers.get("x-region", "eu").encode())

    @cached(ttl=60, tags=("tenants",))
    async def tenant(request: Request) -> Response:
        calls["tenant"] += 1
        name = request.headers.get("x-tenant", "none")
        return Response(f"tenant {name}", headers={"vary": "X-Tenant"})

    @cached(ttl=60, tags=("tenants",))
    async def language(request: Request) -> Response:
        calls["language"] += 1
        value = request.headers.get("accept-language", "none")
        return Response(f"language {value}", headers={"vary": "Accept-Language"})

    @cached(ttl=60)
    async def slow_tenant(request: Request) -> Response:
        calls["slow_tenant"] += 1
        await anyio.sleep(0.1)  # a slow page: the other requests arrive meanwhile
        name = request.headers.get("x-tenant", "none")
        return Response(f"tenant {name}", headers={"vary": "x-tenant"})

    @invalidates("tenants")
    async def edit_tenants(request: Request) -> Response:
        return Response("edited")

    @cached(ttl=60)
    async def negotiated(request: Request) -> Response:
        calls["negotiated"] += 1
        if accepts_gzip(request):
            return Response(gzip.compress(BODY), headers={"content-encoding": "gzip"})
        return Response(BODY)

    @cached(ttl=60)
    async def precompressed(request: Request) -> Response:
        calls["precompressed"] += 1
        return Response(gzip.compress(BODY), headers={"content-encoding": "gzip"})

    @cached(ttl=60, vary=("accept-encoding",))
    async def declared(request: Request) -> Response:
        calls["declared"] += 1
        if accepts_gzip(request):
            return Response(gzip.compress(BODY), headers={"content-encoding": "gzip"})
        return Response(BODY)

    @cached(ttl=10, stale_while_revalidate=30, vary=("accept-language",))
    async def swr(request: Request) -> Response:
        calls["swr"] += 1
        return Response("fresh")

    app = Starlette(
        routes=[
            Route("/lang", lang),
            Route("/plain", plain),
            Route("/user", user),
            Route("/region", region),
            Route("/tenant", tenant),
            Route("/tenant", edit_tenants, methods=["POST"]),
            Route("/language", language),
            Route("/slow-tenant", slow_tenant),
            Route("/negotiated", negotiated),
            Route("/precompressed", precompressed),
            Route("/declared", declared),
            Route("/swr", swr),
        ]
    )
    app.add_middleware(CacheMiddleware, cache=cache)
    return app, calls


class CountingStore(MemoryStore):
    """A memory store that counts its reads, to show what a hit costs."""

    def __init__(self) -> None:
        super().__init__()
        self.reads = 0

    async def get(self, key: str) -> bytes | None:
        self.reads += 1
        return await super().get(key)


def vary_of(response: httpx.Response) -> list[str]:
    """The field names ``response``'s ``Vary`` lists, lower-cased, in order, repeats kept."""
    return [
        name.strip().lower()
        for line in response.headers.get_list("vary")
        for name in line.split(",")
        if name.strip()
    ]


def directives_of(response: httpx.Response) -> list[str]:
    """The ``Cache-Control`` directives of ``response``, in order."""
    return [
        item.strip()
        for line in response.headers.get_list("cache-control")
        for item in line.split(",")
        if item.strip()
    ]


# Vary names every request header that selects the response


async def test_a_key_header_is_named_in_vary_on_a_miss_and_a_hit(make_cache: MakeCache) -> None:
    app, _ = build(make_cache())
    async with client_for(app) as client:
        miss = await client.get("/lang", headers={"accept-language": "fr"})
        hit = await client.get("/lang", headers={"accept-language": "fr"})
    assert miss.headers["cache-status"] == STORED
    assert is_hit(hit)
    assert "accept-language" in vary_of(miss)
    assert "accept-language" in vary_of(hit)


async def test_a_cache_level_vary_is_named_in_vary(make_cache: MakeCache) -> None:
    app, _ = build(make_cache(vary=("x-tenant",)))
    async with client_for(app) as client:
        await client.get("/plain")
        hit = await client.get("/plain")
    assert is_hit(hit)
    assert "x-tenant" in vary_of(hit)


async def test_the_credential_headers_that_decide_a_bypass_are_named_in_vary(
    make_cache: MakeCache,
) -> None:
    app, _ = build(make_cache())
    async with client_for(app) as client:
        await client.get("/plain")
        hit = await client.get("/plain")
    assert vary_of(hit) == ["authorization", "cookie"]


async def test_a_route_without_key_headers_or_credentials_adds_no_vary(
    make_cache: MakeCache,
) -> None:
    app, _ = build(make_cache(credential_headers=()))
    async with client_for(app) as client:
        await client.get("/plain")
        hit = await client.get("/plain")
    assert is_hit(hit)
    assert "vary" not in hit.headers


async def test_the_apps_vary_is_extended_case_insensitively_without_repeats(
    make_cache: MakeCache,
) -> None:
    app, _ = build(make_cache())
    async with client_for(app) as client:
        await client.get("/lang?vary=Accept-Language,%20Cookie", headers={"accept-language": "de"})
        hit = await client.get(
            "/lang?vary=Accept-Language,%20Cookie", headers={"accept-language": "de"}
        )
    assert is_hit(hit)
    assert sorted(vary_of(hit)) == ["accept-language", "authorization", "cookie"]


async def test_vary_star_is_passed_on_as_it_is(make_cache: MakeCache) -> None:
    app, _ = build(make_cache())
    async with client_for(app) as client:
        response = await client.get("/lang?vary=*")
    assert response.headers["cache-status"] == not_stored(Detail.VARY)
    assert response.headers.get_list("vary") == ["*"]


async def test_a_304_names_the_key_headers_in_vary(make_cache: MakeCache) -> None:
    app, _ = build(make_cache())
    async with client_for(app) as client:
        first = await client.get("/lang", headers={"accept-language": "fr"})
        revalidated = await client.get(
            "/lang", headers={"accept-language": "fr", "if-none-match": first.headers["etag"]}
        )
    assert revalidated.status_code == 304
    assert "accept-language" in vary_of(revalidated)


async def test_a_stale_answer_names_the_key_headers_in_vary(make_cache: MakeCache) -> None:
    clock = Clock()
    app, _ = build(make_cache(clock=clock))
    async with client_for(app) as client:
        await client.get("/swr", headers={"accept-language": "fr"})
        clock.advance(15)
        stale = await client.get("/swr", headers={"accept-language": "fr"})
    assert detail_of(stale) == Detail.STALE_WHILE_REVALIDATE.value
    assert "accept-language" in vary_of(stale)


async def test_a_response_that_is_not_stored_names_the_key_headers_too(
    make_cache: MakeCache,
) -> None:
    app, _ = build(make_cache())
    async with client_for(app) as client:
        response = await client.get("/lang?cache-control=no-store")
    assert response.headers["cache-status"] == not_stored(Detail.NO_STORE)
    assert "accept-language" in vary_of(response)


async def test_a_head_that_goes_to_the_application_names_the_key_headers(
    make_cache: MakeCache,
) -> None:
    app, _ = build(make_cache())
    async with client_for(app) as client:
        response = await client.head("/lang", headers={"accept-language": "fr"})
    assert response.headers["cache-status"] == not_stored(Detail.HEAD)
    assert "accept-language" in vary_of(response)


async def test_a_head_answered_from_the_entry_names_the_key_headers(
    make_cache: MakeCache,
) -> None:
    app, _ = build(make_cache())
    async with client_for(app) as client:
        await client.get("/lang", headers={"accept-language": "fr"})
        response = await client.head("/lang", headers={"accept-language": "fr"})
    assert is_hit(response)
    assert "accept-language" in vary_of(response)


# A route keyed by a key function is private downstream


async def test_a_key_route_is_private_on_a_miss_and_a_hit(make_cache: MakeCache) -> None:
    app, _ = build(make_cache())
    async with client_for(app) as client:
        miss = await client.get("/user", headers={"x-user": "alice"})
        hit = await client.get("/user", headers={"x-user": "alice"})
    assert is_hit(hit)
    assert directives_of(miss) == directives_of(hit) == ["private"]


async def test_a_key_route_adds_private_to_the_apps_cache_control(make_cache: MakeCache) -> None:
    app, _ = build(make_cache())
    async with client_for(app) as client:
        await client.get("/user?cache-control=public,%20max-age=30")
        hit = await client.get("/user?cache-control=public,%20max-age=30")
    assert is_hit(hit)
    assert directives_of(hit) == ["public", "max-age=30", "private"]


async def test_a_head_of_a_key_route_is_private(make_cache: MakeCache) -> None:
    app, _ = build(make_cache())
    async with client_for(app) as client:
        response = await client.head("/user", headers={"x-user": "alice"})
    assert directives_of(response) == ["private"]


async def test_a_key_route_answered_past_a_failing_store_is_private() -> None:
    app, _ = build(Cache(BrokenStore()))
    async with client_for(app) as client:
        response = await client.get("/user", headers={"x-user": "alice"})
    assert detail_of(response) == Detail.STORE_UNAVAILABLE.value
    assert directives_of(response) == ["private"]


async def test_a_request_bypassing_for_its_credentials_is_answered_with_vary(
    make_cache: MakeCache,
) -> None:
    app, _ = build(make_cache())
    async with client_for(app) as client:
        response = await client.get("/lang", headers={"cookie": "session=alice"})
    assert detail_of(response) == "cookie"
    assert sorted(vary_of(response)) == ["accept-language", "authorization", "cookie"]


async def test_a_key_route_adds_private_to_a_cdn_cache_control(make_cache: MakeCache) -> None:
    app, _ = build(make_cache())
    async with client_for(app) as client:
        await client.get("/user?cdn-cache-control=max-age=600")
        hit = await client.get("/user?cdn-cache-control=max-age=600")
    assert is_hit(hit)
    assert hit.headers["cdn-cache-control"] == "max-age=600, private"


async def test_a_key_route_keeps_the_apps_no_store_as_it_is(make_cache: MakeCache) -> None:
    app, _ = build(make_cache())
    async with client_for(app) as client:
        response = await client.get("/user?cache-control=no-store")
    assert directives_of(response) == ["no-store"]


async def test_a_shared_key_route_is_not_made_private(make_cache: MakeCache) -> None:
    app, _ = build(make_cache())
    async with client_for(app) as client:
        await client.get("/region", headers={"x-region": "us"})
        hit = await client.get("/region", headers={"x-region": "us"})
    assert is_hit(hit)
    assert hit.content == b"us"
    assert "cache-control" not in hit.headers


async def test_the_route_ttl_is_never_written_into_cache_control(make_cache: MakeCache) -> None:
    app, _ = build(make_cache())
    async with client_for(app) as client:
        await client.get("/lang")
        hit = await client.get("/lang")
    assert is_hit(hit)
    assert "cache-control" not in hit.headers


# Content codings


async def test_a_precompressed_body_is_stored_and_served_to_a_client_accepting_it(
    make_cache: MakeCache,
) -> None:
    app, calls = build(make_cache())
    async with client_for(app) as client:
        miss = await client.get("/precompressed", headers={"accept-encoding": "gzip"})
        hit = await client.get("/precompressed", headers={"accept-encoding": "GZIP;q=0.8"})
    assert miss.headers["cache-status"] == STORED
    assert is_hit(hit)
    assert hit.headers["content-encoding"] == "gzip"
    assert hit.content == BODY  # httpx decodes it
    assert calls["precompressed"] == 1


async def test_a_coded_response_names_accept_encoding_in_vary(make_cache: MakeCache) -> None:
    app, _ = build(make_cache())
    async with client_for(app) as client:
        await client.get("/precompressed", headers={"accept-encoding": "gzip"})
        hit = await client.get("/precompressed", headers={"accept-encoding": "gzip"})
    assert "accept-encoding" in vary_of(hit)


@pytest.mark.parametrize("refusing", ["identity", "gzip;q=0", "br", "*;q=0", ""])
async def test_a_client_that_does_not_accept_the_coding_goes_to_the_application(
    make_cache: MakeCache, refusing: str
) -> None:
    app, calls = build(make_cache())
    async with client_for(app) as client:
        await client.get("/precompressed", headers={"accept-encoding": "gzip"})
        refused = await client.get("/precompressed", headers={"accept-encoding": refusing})
    assert not is_hit(refused)
    # The page is stored, but not for this request's codings (RFC 9211 §2.2 vary-miss).
    expected = forwarded(Forward.VARY_MISS, Detail.CONTENT_ENCODING).decode()
    assert refused.headers["cache-status"] == expected
    assert calls["precompressed"] == 2


async def test_a_client_accepting_any_coding_is_served_the_stored_coding(
    make_cache: MakeCache,
) -> None:
    app, _ = build(make_cache())
    async with client_for(app) as client:
        await client.get("/precompressed", headers={"accept-encoding": "*"})
        hit = await client.get("/precompressed", headers={"accept-encoding": "*"})
    assert is_hit(hit)
    assert hit.headers["content-encoding"] == "gzip"


async def test_coded_and_identity_variants_are_each_served_to_their_clients(
    make_cache: MakeCache,
) -> None:
    app, calls = build(make_cache())
    async with client_for(app) as client:
        await client.get("/negotiated", headers={"accept-encoding": "gzip"})
        await client.get("/negotiated", headers={"accept-encoding": "identity"})
        coded = await client.get("/negotiated", headers={"accept-encoding": "gzip"})
        identity = await client.get("/negotiated", headers={"accept-encoding": "identity"})
    assert is_hit(coded)
    assert is_hit(identity)
    assert coded.headers["content-encoding"] == "gzip"
    assert "content-encoding" not in identity.headers
    assert coded.content == identity.content == BODY
    assert calls["negotiated"] == 2


async def test_a_declared_accept_encoding_keeps_each_coding_apart(make_cache: MakeCache) -> None:
    app, calls = build(make_cache())
    async with client_for(app) as client:
        await client.get("/declared", headers={"accept-encoding": "gzip"})
        identity = await client.get("/declared", headers={"accept-encoding": "identity"})
        coded = await client.get("/declared", headers={"accept-encoding": "gzip"})
    assert "content-encoding" not in identity.headers
    assert is_hit(coded)
    assert calls["declared"] == 2


# The application's own Vary selects variants


async def test_an_undeclared_vary_stores_one_variant_per_value(make_cache: MakeCache) -> None:
    app, calls = build(make_cache())
    async with client_for(app) as client:
        a = await client.get("/tenant", headers={"x-tenant": "a"})
        b = await client.get("/tenant", headers={"x-tenant": "b"})
        a_again = await client.get("/tenant", headers={"x-tenant": "a"})
        b_again = await client.get("/tenant", headers={"x-tenant": "b"})
    assert a.headers["cache-status"] == STORED
    # The page is stored, but not for b's tenant (RFC 9211 §2.2 vary-miss).
    assert b.headers["cache-status"] == forwarded(Forward.VARY_MISS, stored=True).decode()
    assert is_hit(a_again)
    assert is_hit(b_again)
    assert a_again.text == "tenant a"
    assert b_again.text == "tenant b"
    assert calls["tenant"] == 2


async def test_a_request_without_the_varied_header_has_a_variant_of_its_own(
    make_cache: MakeCache,
) -> None:
    app, calls = build(make_cache())
    async with client_for(app) as client:
        await client.get("/tenant", headers={"x-tenant": ""})
        absent = await client.get("/tenant")
        absent_again = await client.get("/tenant")
    assert not is_hit(absent)
    assert is_hit(absent_again)
    assert absent_again.text == "tenant none"
    assert calls["tenant"] == 2


async def test_a_vary_on_a_credential_that_bypasses_needs_no_variant() -> None:
    store = CountingStore()
    app, _ = build(Cache(store))
    async with client_for(app) as client:
        await client.get("/plain?vary=Cookie")
        store.reads = 0
        hit = await client.get("/plain?vary=Cookie")
    assert is_hit(hit)
    assert store.reads == 1  # requests with a cookie bypass: every stored one has none


async def test_a_varied_header_is_compared_after_normalisation(make_cache: MakeCache) -> None:
    app, calls = build(make_cache())
    async with client_for(app) as client:
        await client.get("/language", headers={"accept-language": "EN-us, fr;q=0.5"})
        same = await client.get("/language", headers={"accept-language": "en-US,fr; q=0.5"})
    assert is_hit(same)
    assert calls["language"] == 1


async def test_the_apps_vary_is_named_on_a_variant_hit(make_cache: MakeCache) -> None:
    app, _ = build(make_cache())
    async with client_for(app) as client:
        await client.get("/tenant", headers={"x-tenant": "a"})
        hit = await client.get("/tenant", headers={"x-tenant": "a"})
    assert "x-tenant" in vary_of(hit)


async def test_a_304_is_answered_from_a_variant(make_cache: MakeCache) -> None:
    app, _ = build(make_cache())
    async with client_for(app) as client:
        first = await client.get("/tenant", headers={"x-tenant": "a"})
        revalidated = await client.get(
            "/tenant", headers={"x-tenant": "a", "if-none-match": first.headers["etag"]}
        )
    assert revalidated.status_code == 304
    assert is_hit(revalidated)


async def test_concurrent_misses_for_different_variants_each_get_their_own(
    make_cache: MakeCache,
) -> None:
    app, _ = build(make_cache())
    bodies: dict[str, str] = {}
    async with client_for(app) as client:

        async def get(tenant: str) -> None:
            response = await client.get("/slow-tenant", headers={"x-tenant": tenant})
            bodies[tenant] = response.text

        with anyio.fail_after(10):
            async with anyio.create_task_group() as tasks:
                for n in range(10):
                    tasks.start_soon(get, f"t{n}")
    assert bodies == {f"t{n}": f"tenant t{n}" for n in range(10)}


async def test_invalidating_a_tag_removes_every_variant(make_cache: MakeCache) -> None:
    cache = make_cache()
    app, calls = build(cache)
    async with client_for(app) as client:
        for tenant in ("a", "b"):
            await client.get("/tenant", headers={"x-tenant": tenant})
        await cache.invalidate("tenants")
        a = await client.get("/tenant", headers={"x-tenant": "a"})
        b = await client.get("/tenant", headers={"x-tenant": "b"})
    assert not is_hit(a)
    assert not is_hit(b)
    assert calls["tenant"] == 4


async def test_invalidating_the_path_removes_every_variant(make_cache: MakeCache) -> None:
    cache = make_cache()
    app, calls = build(cache)
    async with client_for(app) as client:
        for tenant in ("a", "b"):
            await client.get("/tenant", headers={"x-tenant": tenant})
        await cache.invalidate_path("/tenant")
        a = await client.get("/tenant", headers={"x-tenant": "a"})
        b = await client.get("/tenant", headers={"x-tenant": "b"})
    assert not is_hit(a)
    assert not is_hit(b)
    assert calls["tenant"] == 4


async def test_a_write_to_the_path_removes_every_variant(make_cache: MakeCache) -> None:
    app, calls = build(make_cache())
    async with client_for(app) as client:
        for tenant in ("a", "b"):
            await client.get("/tenant", headers={"x-tenant": tenant})
        await client.post("/tenant")
        a = await client.get("/tenant", headers={"x-tenant": "a"})
        b = await client.get("/tenant", headers={"x-tenant": "b"})
    assert not is_hit(a)
    assert not is_hit(b)
    assert calls["tenant"] == 4


async def test_clear_removes_every_variant(make_cache: MakeCache) -> None:
    cache = make_cache()
    app, calls = build(cache)
    async with client_for(app) as client:
        for tenant in ("a", "b"):
            await client.get("/tenant", headers={"x-tenant": tenant})
        await cache.clear()
        a = await client.get("/tenant", headers={"x-tenant": "a"})
        b = await client.get("/tenant", headers={"x-tenant": "b"})
    assert not is_hit(a)
    assert not is_hit(b)
    assert calls["tenant"] == 4


# Store round trips


async def hit_reads(path: str, headers: dict[str, str]) -> int:
    store = CountingStore()
    app, _ = build(Cache(store))
    async with client_for(app) as client:
        await client.get(path, headers=headers)
        store.reads = 0
        hit = await client.get(path, headers=headers)
    assert is_hit(hit)
    return store.reads


async def test_a_hit_on_declared_key_headers_reads_the_store_once() -> None:
    assert await hit_reads("/lang", {"accept-language": "fr"}) == 1


async def test_a_hit_on_declared_accept_encoding_reads_the_store_once() -> None:
    assert await hit_reads("/declared", {"accept-encoding": "gzip"}) == 1


async def test_a_hit_on_an_undeclared_vary_reads_the_store_twice() -> None:
    assert await hit_reads("/tenant", {"x-tenant": "a"}) == 2
