"""The operators' command line, run as a subprocess against the suite's Redis."""

from __future__ import annotations

import io
import subprocess
import sys

import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import Route

from asgi_cache import Cache, CacheMiddleware, cached
from asgi_cache.cli import Spinner
from asgi_cache.keys import key_kind, page_key
from asgi_cache.stores.redis import RedisStore
from tests.helpers import Calls, MakeCache, cache_status_member, client_for
from tests.redis_servers import RedisServer

pytestmark = pytest.mark.anyio


def build(cache: Cache) -> tuple[Starlette, Calls]:
    calls = Calls()

    @cached(ttl=600, tags=("fruit",))
    async def apple(request: Request) -> PlainTextResponse:
        calls["apple"] += 1
        return PlainTextResponse("apple", headers={"x-kind": "fruit"})

    @cached(ttl=600, tags=("veg",))
    async def leek(request: Request) -> PlainTextResponse:
        calls["leek"] += 1
        return PlainTextResponse("leek " + request.query_params.get("size", ""))

    @cached(ttl=600, vary=("accept-language",))
    async def hello(request: Request) -> PlainTextResponse:
        return PlainTextResponse(request.headers.get("accept-language", "?"))

    app = Starlette(routes=[Route("/apple", apple), Route("/leek", leek), Route("/hello", hello)])
    app.add_middleware(CacheMiddleware, cache=cache)
    return app, calls


def cli(*args: str, url: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "asgi_cache", "--url", url, *args],
        capture_output=True,
        text=True,
        timeout=60,
    )


def lines(output: str) -> dict[str, str]:
    return dict(line.strip().split(": ", 1) for line in output.splitlines() if ": " in line)


@pytest.fixture
def cache(redis_store: RedisStore) -> Cache:
    return Cache(redis_store, prefix="shop")


async def test_stats_counts_the_pages_an_app_stored(
    cache: Cache, redis_server: RedisServer
) -> None:
    app, _ = build(cache)
    async with client_for(app) as client:
        await client.get("/apple")
        await client.get("/leek", params={"size": "big"})
    done = cli("--prefix", "shop", "stats", url=redis_server.url)
    assert done.returncode == 0, done.stderr
    found = lines(done.stdout)
    assert found["keys"] == "2"
    assert found["page"].startswith("2 (")
    assert int(found["bytes"]) > len("apple") + len("leek big")


async def test_stats_leaves_out_other_prefixes(cache: Cache, redis_server: RedisServer) -> None:
    app, _ = build(cache)
    async with client_for(app) as client:
        await client.get("/apple")
    done = cli("--prefix", "other", "stats", url=redis_server.url)
    assert lines(done.stdout)["keys"] == "0"


async def test_purge_by_tag_removes_only_that_tags_pages(
    cache: Cache, redis_server: RedisServer
) -> None:
    app, calls = build(cache)
    async with client_for(app) as client:
        await client.get("/apple")
        await client.get("/leek")
        done = cli("--prefix", "shop", "purge", "--tag", "fruit", url=redis_server.url)
        await client.get("/apple")
        await client.get("/leek")
    assert done.returncode == 0, done.stderr
    assert lines(done.stdout)["removed"] == "1"
    assert calls == {"apple": 2, "leek": 1}


async def test_purge_by_path_removes_every_query_variant_of_the_path(
    cache: Cache, redis_server: RedisServer
) -> None:
    app, calls = build(cache)
    async with client_for(app) as client:
        await client.get("/leek", params={"size": "big"})
        await client.get("/leek", params={"size": "small"})
        await client.get("/apple")
        done = cli("--prefix", "shop", "purge", "--path", "/leek", url=redis_server.url)
        await client.get("/leek", params={"size": "big"})
        await client.get("/apple")
    assert lines(done.stdout)["removed"] == "2"
    assert calls == {"leek": 3, "apple": 1}


async def test_purge_all_empties_the_prefix_only(
    cache: Cache, redis_store: RedisStore, redis_server: RedisServer
) -> None:
    app, _ = build(cache)
    other, _ = build(Cache(redis_store, prefix="blog"))
    async with client_for(app) as client, client_for(other) as other_client:
        await client.get("/apple")
        await client.get("/leek")
        await other_client.get("/apple")
    done = cli("--prefix", "shop", "purge", "--all", url=redis_server.url)
    assert lines(done.stdout)["removed"] == "2"
    assert lines(cli("--prefix", "shop", "stats", url=redis_server.url).stdout)["keys"] == "0"
    assert lines(cli("--prefix", "blog", "stats", url=redis_server.url).stdout)["keys"] == "1"


async def test_purge_with_progress_reports_on_stderr(
    cache: Cache, redis_server: RedisServer
) -> None:
    app, _ = build(cache)
    async with client_for(app) as client:
        await client.get("/apple")
    done = cli("--prefix", "shop", "purge", "--all", "--progress", url=redis_server.url)
    assert done.stderr.endswith("clearing shop: 1 removed\n")


async def test_inspect_shows_the_stored_response(cache: Cache, redis_server: RedisServer) -> None:
    app, _ = build(cache)
    async with client_for(app) as client:
        await client.get("/apple")
    done = cli("--prefix", "shop", "inspect", "/apple", url=redis_server.url)
    assert done.returncode == 0, done.stderr
    found = lines(done.stdout)
    assert found["stored"] == "yes"
    assert found["status"] == "200"
    assert found["x-kind"] == "fruit"
    assert found["body bytes"] == "5"
    assert 0 < float(found["fresh for"]) <= 600


async def test_inspect_finds_a_page_by_its_query(cache: Cache, redis_server: RedisServer) -> None:
    app, _ = build(cache)
    async with client_for(app) as client:
        await client.get("/leek?size=big")
    found = cli("--prefix", "shop", "inspect", "/leek", "--query", "size=big", url=redis_server.url)
    missing = cli("--prefix", "shop", "inspect", "/leek", url=redis_server.url)
    assert lines(found.stdout)["stored"] == "yes"
    assert lines(missing.stdout)["stored"] == "no"


async def test_inspect_of_a_route_keyed_on_a_header_needs_that_header(
    cache: Cache, redis_server: RedisServer
) -> None:
    app, _ = build(cache)
    async with client_for(app) as client:
        await client.get("/hello", headers={"accept-language": "fr"})
    given = ("--prefix", "shop", "inspect", "/hello", "--header", "Accept-Language: fr")
    with_header = cli(*given, url=redis_server.url)
    without = cli("--prefix", "shop", "inspect", "/hello", url=redis_server.url)
    assert lines(with_header.stdout)["stored"] == "yes"
    assert lines(without.stdout)["stored"] == "no"


def test_an_unreachable_store_exits_1_naming_the_url_without_its_password() -> None:
    done = cli("stats", url="redis://me:secret@127.0.0.1:1/0")
    assert done.returncode == 1
    assert "redis://me:***@127.0.0.1:1/0" in done.stderr
    assert "secret" not in done.stderr


def test_no_store_url_is_a_usage_error() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "asgi_cache", "stats"],
        capture_output=True,
        text=True,
        env={"PATH": "", "PYTHONPATH": ""},
        timeout=60,
    )
    assert done.returncode == 2
    assert "ASGI_CACHE_URL" in done.stderr


def test_purge_needs_something_to_purge() -> None:
    assert cli("purge", url="memory://").returncode == 2


def test_a_malformed_header_is_a_usage_error() -> None:
    done = cli("inspect", "/x", "--header", "no-colon", url="memory://")
    assert done.returncode == 2
    assert "NAME:VALUE" in done.stderr


def test_an_unknown_scheme_is_a_usage_error() -> None:
    done = cli("stats", url="mongo://u:pw@host/")
    assert done.returncode == 2
    assert "pw" not in done.stderr


async def test_page_key_is_the_key_the_middleware_stores_under(make_cache: MakeCache) -> None:
    cache = make_cache(cache_status_key=True)
    app, _ = build(cache)
    async with client_for(app) as client:
        leek = await client.get("/leek?size=big&a=%41")
        hello = await client.get("/hello", headers={"accept-language": "de"})
    assert cache_status_member(leek)["key"] == page_key(cache.prefix, "/leek", b"a=A&size=big")
    assert cache_status_member(hello)["key"] == page_key(
        cache.prefix, "/hello", headers=[(b"Accept-Language", b"de")]
    )


async def test_scan_visits_each_stored_entry_with_its_size(make_cache: MakeCache) -> None:
    cache = make_cache()
    app, _ = build(cache)
    async with client_for(app) as client:
        await client.get("/apple")
    seen: list[tuple[str, int]] = []
    await cache.store.scan(cache.prefix + ":", lambda key, size: seen.append((key, size)))
    assert [key_kind(cache.prefix, key) for key, _ in seen] == ["page"]
    assert seen[0][1] > len("apple")


@pytest.mark.parametrize(
    ("key", "kind"),
    [
        ("shop:page:0123", "page"),
        ("shop:page:0123:vary:4567", "variant"),
        ("shop:page:0123:lock", "lock"),
        ("shop:memo:mod.fn:89ab", "memo"),
        ("shop:data:greeting", "data"),
        ("shop:tag:fruit", "other"),
        ("shop2:page:0123", None),
    ],
)
def test_key_kind_reads_the_key_layout(key: str, kind: str | None) -> None:
    assert key_kind("shop", key) == kind


def test_spinner_rewrites_one_line_and_ends_it_with_the_result() -> None:
    stream = io.StringIO()
    spinner = Spinner(stream, "clearing shop")
    spinner.tick(0.0)
    spinner.tick(0.1)
    spinner.done("3 removed")
    assert stream.getvalue() == (
        "\r| clearing shop (0.0s)\r/ clearing shop (0.1s)\rclearing shop: 3 removed\n"
    )
