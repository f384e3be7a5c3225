"""Revalidation through HTTP: entries that need validating are asked about conditionally.

The application here implements conditional GET the cheap way: the ``ETag`` is
the row's version, and a request whose ``If-None-Match`` matches it gets a
``304`` before anything is rendered.  ``calls["checked"]`` counts requests
that reached the endpoint, ``calls["rendered"]`` the pages it rendered.
"""

from __future__ import annotations

import anyio
import pytest
from fastapi import FastAPI, Request, Response

from asgi_cache import Cache, CacheMiddleware, cached, invalidates
from asgi_cache.headers import etag_matches
from asgi_cache.status import Detail, Forward, forwarded, stood_in
from tests.helpers import (
    COLLAPSED,
    STORED,
    Calls,
    Clock,
    MakeCache,
    client_for,
    detail_of,
    hit_status,
    is_hit,
)

pytestmark = pytest.mark.anyio

#: What a validation the application answered with ``status`` looks like.
VALIDATED = forwarded(Forward.STALE, stored=True, fwd_status=304).decode()
REPLACED = forwarded(Forward.STALE, stored=True, fwd_status=200).decode()
LAST_MODIFIED = "Tue, 01 Dec 2026 10:00:00 GMT"


class Row:
    """The database row behind the page, and the knobs the tests turn."""

    def __init__(self) -> None:
        self.version = 1
        self.gate: anyio.Event | None = None  # set: validations wait for it
        self.seen: list[str | None] = []  # If-None-Match of each request that arrived
        self.extra: dict[str, str] = {}  # fields the next 304s carry
        self.failing = False  # the database is down: every request gets a 503


def build(cache: Cache, row: Row) -> tuple[FastAPI, Calls]:
    calls = Calls()
    app = FastAPI()
    app.add_middleware(CacheMiddleware, cache=cache)

    async def conditional_get(request: Request, cache_control: str | None = None) -> Response:
        calls["checked"] += 1
        if row.failing:
            return Response("down", status_code=503)
        if_none_match = request.headers.get("if-none-match")
        row.seen.append(if_none_match)
        etag = f'"v{row.version}"'
        headers = {"etag": etag, **({"cache-control": cache_control} if cache_control else {})}
        if if_none_match is not None and etag_matches(if_none_match.encode(), etag.encode()):
            if row.gate is not None:
                await row.gate.wait()
            return Response(status_code=304, headers={**headers, **row.extra})
        calls["rendered"] += 1
        return Response(f"page v{row.version}", headers=headers)

    @app.get("/article")
    @cached(ttl=10)
    async def article(request: Request) -> Response:
        return await conditional_get(request)

    @app.get("/no-cache")
    @cached()
    async def no_cache(request: Request) -> Response:
        return await conditional_get(request, "no-cache")

    @app.get("/must-revalidate")
    @cached()
    async def must_revalidate(request: Request) -> Response:
        return await conditional_get(request, "max-age=10, must-revalidate")

    @app.get("/swr")
    @cached(ttl=10, stale_while_revalidate=30)
    async def swr(request: Request) -> Response:
        return await conditional_get(request)

    @app.get("/sie")
    @cached(ttl=10, stale_if_error=60)
    async def sie(request: Request) -> Response:
        return await conditional_get(request)

    @app.get("/confused-sie")
    @cached(ttl=10, stale_if_error=60)
    async def confused_sie(request: Request) -> Response:
        if "if-none-match" in request.headers:
            return Response(status_code=304, headers={"etag": '"somebody-else"'})
        return Response("page", headers={"etag": '"mine"'})

    @app.get("/ignoring")
    @cached(ttl=10)
    async def ignoring() -> Response:
        calls["rendered"] += 1
        return Response(f"page v{row.version}", headers={"etag": f'"v{row.version}"'})

    @app.get("/dated")
    @cached(ttl=10)
    async def dated(request: Request) -> Response:
        calls["checked"] += 1
        if request.headers.get("if-modified-since") == LAST_MODIFIED:
            return Response(status_code=304)
        calls["rendered"] += 1
        return Response("dated page", headers={"last-modified": LAST_MODIFIED})

    @app.get("/confused")
    @cached(ttl=10)
    async def confused(request: Request) -> Response:
        if "if-none-match" in request.headers:
            return Response(status_code=304, headers={"etag": '"somebody-else"'})
        return Response("page", headers={"etag": '"mine"'})

    @app.put("/article")
    @invalidates()
    async def put_article() -> dict[str, bool]:
        row.version += 1
        return {"ok": True}

    return app, calls


async def test_a_stale_entry_is_validated_and_served_without_rendering(
    make_cache: MakeCache,
) -> None:
    clock, row = Clock(), Row()
    app, calls = build(make_cache(clock=clock), row)
    async with client_for(app) as client:
        await client.get("/article")
        clock.advance(15)
        validated = await client.get("/article")
    assert validated.status_code == 200
    assert validated.text == "page v1"
    assert validated.headers["cache-status"] == VALIDATED
    assert validated.headers["age"] == "0"
    assert row.seen == [None, '"v1"']
    assert calls["rendered"] == 1


async def test_a_validated_entry_is_fresh_again_for_its_lifetime(make_cache: MakeCache) -> None:
    clock, row = Clock(), Row()
    app, calls = build(make_cache(clock=clock), row)
    async with client_for(app) as client:
        await client.get("/article")
        clock.advance(15)
        await client.get("/article")
        clock.advance(9)
        again = await client.get("/article")
    assert again.headers["cache-status"] == hit_status(1)
    assert calls["checked"] == 2


async def test_the_304s_fields_update_the_stored_response(make_cache: MakeCache) -> None:
    clock, row = Clock(), Row()
    app, _ = build(make_cache(clock=clock), row)
    async with client_for(app) as client:
        await client.get("/article")
        row.extra = {"x-checked": "yes", "content-length": "0"}
        clock.advance(15)
        validated = await client.get("/article")
        hit = await client.get("/article")
    assert validated.headers["x-checked"] == hit.headers["x-checked"] == "yes"
    assert validated.headers["content-length"] == hit.headers["content-length"] == "7"
    assert hit.text == "page v1"


async def test_a_changed_resource_gets_a_full_response_that_replaces_the_entry(
    make_cache: MakeCache,
) -> None:
    clock, row = Clock(), Row()
    app, calls = build(make_cache(clock=clock), row)
    async with client_for(app) as client:
        await client.get("/article")
        row.version = 2
        clock.advance(15)
        changed = await client.get("/article")
        hit = await client.get("/article")
    assert changed.text == hit.text == "page v2"
    assert changed.headers["cache-status"] == REPLACED
    assert is_hit(hit)
    assert calls["rendered"] == 2


async def test_an_application_ignoring_conditionals_pays_one_render_and_the_entry_is_replaced(
    make_cache: MakeCache,
) -> None:
    clock, row = Clock(), Row()
    app, calls = build(make_cache(clock=clock), row)
    async with client_for(app) as client:
        await client.get("/ignoring")
        clock.advance(15)
        renewed = await client.get("/ignoring")
        hit = await client.get("/ignoring")
    assert renewed.status_code == 200
    assert renewed.headers["cache-status"] == REPLACED
    assert is_hit(hit)
    assert calls["rendered"] == 2


async def test_a_no_cache_response_is_stored_and_validated_at_every_reuse(
    make_cache: MakeCache,
) -> None:
    row = Row()
    app, calls = build(make_cache(), row)
    async with client_for(app) as client:
        first = await client.get("/no-cache")
        second = await client.get("/no-cache")
        third = await client.get("/no-cache")
    assert first.headers["cache-status"] == STORED
    assert second.headers["cache-status"] == third.headers["cache-status"] == VALIDATED
    assert second.text == third.text == "page v1"
    assert second.headers["cache-control"] == "no-cache"
    assert calls["checked"] == 3
    assert calls["rendered"] == 1


async def test_must_revalidate_is_validated_instead_of_served_stale_by_the_defaults(
    make_cache: MakeCache,
) -> None:
    clock, row = Clock(), Row()
    app, calls = build(make_cache(clock=clock, stale_while_revalidate=30), row)
    async with client_for(app) as client:
        await client.get("/must-revalidate")
        clock.advance(15)
        validated = await client.get("/must-revalidate")
    assert validated.headers["cache-status"] == VALIDATED
    assert calls["checked"] == 2


async def test_last_modified_is_validated_with_if_modified_since(make_cache: MakeCache) -> None:
    clock, row = Clock(), Row()
    app, calls = build(make_cache(clock=clock), row)
    async with client_for(app) as client:
        await client.get("/dated")
        clock.advance(15)
        validated = await client.get("/dated")
    assert validated.text == "dated page"
    assert validated.headers["cache-status"] == VALIDATED
    assert calls["rendered"] == 1


async def test_the_application_sees_the_stored_validator_instead_of_the_clients(
    make_cache: MakeCache,
) -> None:
    clock, row = Clock(), Row()
    app, _ = build(make_cache(clock=clock), row)
    async with client_for(app) as client:
        await client.get("/article")
        clock.advance(15)
        validated = await client.get("/article", headers={"if-none-match": '"v0"'})
    assert row.seen == [None, '"v1"']
    assert validated.status_code == 200
    assert validated.text == "page v1"


async def test_a_client_whose_validator_matches_gets_a_304_after_validation(
    make_cache: MakeCache,
) -> None:
    clock, row = Clock(), Row()
    app, calls = build(make_cache(clock=clock), row)
    async with client_for(app) as client:
        await client.get("/article")
        clock.advance(15)
        validated = await client.get("/article", headers={"if-none-match": '"v1"'})
    assert validated.status_code == 304
    assert validated.content == b""
    assert validated.headers["cache-status"] == VALIDATED
    assert calls["rendered"] == 1


async def test_an_invalidation_racing_a_validation_is_not_undone_by_its_304(
    make_cache: MakeCache,
) -> None:
    clock, row = Clock(), Row()
    app, calls = build(make_cache(clock=clock), row)
    async with client_for(app) as client:
        await client.get("/article")
        clock.advance(15)
        row.gate = anyio.Event()
        raced: list[str] = []

        async def validate() -> None:
            raced.append((await client.get("/article")).headers["cache-status"])

        async with anyio.create_task_group() as tasks:
            tasks.start_soon(validate)
            with anyio.fail_after(5):
                while calls["checked"] < 2:  # the 304 is on its way
                    await anyio.sleep(0.01)
            await client.put("/article")
            row.gate.set()
        row.gate = None
        after = await client.get("/article")
    assert raced == [forwarded(Forward.STALE, Detail.NOT_STORED, fwd_status=304).decode()]
    assert after.headers["cache-status"] == STORED
    assert after.text == "page v2"


async def test_concurrent_requests_needing_validation_send_one_conditional_request(
    make_cache: MakeCache,
) -> None:
    row = Row()
    app, calls = build(make_cache(), row)
    async with client_for(app) as client:
        await client.get("/no-cache")
        row.gate = anyio.Event()
        responses = []

        async def get() -> None:
            responses.append(await client.get("/no-cache"))

        async with anyio.create_task_group() as tasks:
            for _ in range(10):
                tasks.start_soon(get)
            with anyio.fail_after(5):
                while calls["checked"] < 2:
                    await anyio.sleep(0.01)
            await anyio.sleep(0.1)  # everybody else has arrived and waits
            row.gate.set()
    assert calls["checked"] == 2
    assert {r.text for r in responses} == {"page v1"}
    statuses = sorted(r.headers["cache-status"] for r in responses)
    assert statuses == sorted([VALIDATED] + [COLLAPSED] * 9)


async def test_a_background_refresh_is_a_conditional_request(make_cache: MakeCache) -> None:
    clock, row = Clock(), Row()
    app, calls = build(make_cache(clock=clock), row)
    async with client_for(app) as client:
        await client.get("/swr")
        clock.advance(15)
        stale = await client.get("/swr")
        with anyio.fail_after(5):
            while calls["checked"] < 2:
                await anyio.sleep(0.01)
        await anyio.sleep(0.05)  # the 304 is merged and stored
        clock.advance(1)
        renewed = await client.get("/swr")
    assert detail_of(stale) == Detail.STALE_WHILE_REVALIDATE
    assert renewed.headers["cache-status"] == hit_status(9)
    assert row.seen == [None, '"v1"']
    assert calls["rendered"] == 1


async def test_a_304_about_another_representation_is_answered_with_502(
    make_cache: MakeCache,
) -> None:
    clock, row = Clock(), Row()
    app, _ = build(make_cache(clock=clock), row)
    async with client_for(app) as client:
        await client.get("/confused")
        clock.advance(15)
        confused = await client.get("/confused")
    assert confused.status_code == 502
    assert detail_of(confused) == Detail.NOT_STORED


async def test_a_304_setting_a_cookie_reaches_its_client_but_is_not_stored(
    make_cache: MakeCache,
) -> None:
    row = Row()
    app, calls = build(make_cache(), row)
    async with client_for(app) as client:
        await client.get("/no-cache")
        row.extra = {"set-cookie": "session=abc"}
        validated = await client.get("/no-cache")
        row.extra = {}
        client.cookies.clear()
        again = await client.get("/no-cache")
    assert validated.headers["set-cookie"] == "session=abc"
    assert validated.text == "page v1"
    assert detail_of(validated) == Detail.SET_COOKIE
    assert "set-cookie" not in again.headers
    assert again.headers["cache-status"] == VALIDATED
    assert calls["rendered"] == 1


async def test_within_stale_if_error_the_request_is_conditional_too(make_cache: MakeCache) -> None:
    clock, row = Clock(), Row()
    app, calls = build(make_cache(clock=clock), row)
    async with client_for(app) as client:
        await client.get("/sie")
        clock.advance(15)
        validated = await client.get("/sie")
    assert validated.headers["cache-status"] == VALIDATED
    assert calls["rendered"] == 1


async def test_a_failing_validation_within_stale_if_error_serves_the_stale_entry(
    make_cache: MakeCache,
) -> None:
    clock, row = Clock(), Row()
    app, _ = build(make_cache(clock=clock), row)
    async with client_for(app) as client:
        await client.get("/sie")
        row.failing = True
        clock.advance(15)
        rescued = await client.get("/sie")
    assert rescued.status_code == 200
    assert rescued.text == "page v1"
    # The validation went forward and the application answered 503 (RFC 9211 §2.3).
    assert rescued.headers["cache-status"] == stood_in(-5, 503).decode()


async def test_a_failing_validation_past_every_window_passes_the_error_on(
    make_cache: MakeCache,
) -> None:
    clock, row = Clock(), Row()
    app, _ = build(make_cache(clock=clock), row)
    async with client_for(app) as client:
        await client.get("/article")
        row.failing = True
        clock.advance(15)
        failed = await client.get("/article")
    assert failed.status_code == 503
    assert failed.headers["cache-status"] == (
        forwarded(Forward.STALE, Detail.STATUS, fwd_status=503).decode()
    )


async def test_a_304_about_another_representation_within_stale_if_error_serves_the_entry(
    make_cache: MakeCache,
) -> None:
    clock, row = Clock(), Row()
    app, _ = build(make_cache(clock=clock), row)
    async with client_for(app) as client:
        await client.get("/confused-sie")
        clock.advance(15)
        rescued = await client.get("/confused-sie")
    assert rescued.status_code == 200
    assert rescued.text == "page"
    assert detail_of(rescued) == Detail.STALE_IF_ERROR


async def test_a_head_needing_validation_is_forwarded_and_leaves_the_entry_alone(
    make_cache: MakeCache,
) -> None:
    row = Row()
    app, calls = build(make_cache(), row)
    async with client_for(app) as client:
        await client.get("/no-cache")
        head = await client.head("/no-cache")
        validated = await client.get("/no-cache")
    assert detail_of(head) == Detail.HEAD
    assert validated.headers["cache-status"] == VALIDATED
    assert calls["rendered"] == 1


async def test_the_age_a_304_arrives_with_counts_in_the_validated_response(
    make_cache: MakeCache,
) -> None:
    clock, row = Clock(), Row()
    app, _ = build(make_cache(clock=clock), row)
    async with client_for(app) as client:
        await client.get("/article")
        row.extra = {"age": "3"}
        clock.advance(15)
        validated = await client.get("/article")
        clock.advance(2)
        hit = await client.get("/article")
    assert validated.headers["age"] == "3"
    assert hit.headers["age"] == "5"


# -- the request's own directives (honor_request_cache_control) -----------------------------

#: A validation asked for by the request's directives, answered 304 (RFC 9211 §2.2, §2.3).
REQUEST_VALIDATED = forwarded(Forward.REQUEST, stored=True, fwd_status=304).decode()


@pytest.mark.parametrize("directive", ["no-cache", "max-age=0"])
async def test_a_request_refusing_a_fresh_entry_gets_it_validated(
    make_cache: MakeCache, directive: str
) -> None:
    clock, row = Clock(), Row()
    app, calls = build(make_cache(clock=clock, honor_request_cache_control=True), row)
    async with client_for(app) as client:
        await client.get("/article")
        clock.advance(1)
        validated = await client.get("/article", headers={"cache-control": directive})
    assert validated.status_code == 200
    assert validated.text == "page v1"
    assert validated.headers["cache-status"] == REQUEST_VALIDATED
    assert row.seen == [None, '"v1"']
    assert calls["rendered"] == 1


async def test_pragma_no_cache_gets_the_entry_validated(make_cache: MakeCache) -> None:
    row = Row()
    app, calls = build(make_cache(honor_request_cache_control=True), row)
    async with client_for(app) as client:
        await client.get("/article")
        validated = await client.get("/article", headers={"pragma": "no-cache"})
    assert validated.headers["cache-status"] == REQUEST_VALIDATED
    assert calls["rendered"] == 1


async def test_a_request_no_cache_on_a_changed_resource_gets_the_new_one(
    make_cache: MakeCache,
) -> None:
    row = Row()
    app, calls = build(make_cache(honor_request_cache_control=True), row)
    async with client_for(app) as client:
        await client.get("/article")
        row.version = 2  # changed behind the cache's back
        fetched = await client.get("/article", headers={"cache-control": "no-cache"})
        after = await client.get("/article")
    assert fetched.text == after.text == "page v2"
    assert (
        fetched.headers["cache-status"]
        == forwarded(Forward.REQUEST, stored=True, fwd_status=200).decode()
    )
    assert is_hit(after)
    assert calls["rendered"] == 2


async def test_a_request_no_cache_is_not_validated_when_the_cache_is_not_told_to_honour_it(
    make_cache: MakeCache,
) -> None:
    row = Row()
    app, _ = build(make_cache(), row)
    async with client_for(app) as client:
        await client.get("/article")
        answer = await client.get("/article", headers={"cache-control": "no-cache"})
    assert is_hit(answer)
    assert row.seen == [None]


async def test_only_if_cached_with_no_cache_is_answered_504_without_the_application(
    make_cache: MakeCache,
) -> None:
    row = Row()
    app, _ = build(make_cache(honor_request_cache_control=True), row)
    async with client_for(app) as client:
        await client.get("/article")
        answer = await client.get("/article", headers={"cache-control": "no-cache, only-if-cached"})
    assert answer.status_code == 504
    assert row.seen == [None]


async def test_a_key_route_entry_is_renewed_by_a_304_and_stays_private(
    make_cache: MakeCache,
) -> None:
    clock, row = Clock(), Row()
    app = FastAPI()
    app.add_middleware(CacheMiddleware, cache=make_cache(clock=clock))
    renders = Calls()

    @app.get("/mine")
    @cached(ttl=10, key=lambda request: request.headers.get("x-user", ""))
    async def mine(request: Request) -> Response:
        etag = f'"v{row.version}"'
        if etag_matches((request.headers.get("if-none-match") or "").encode(), etag.encode()):
            return Response(status_code=304, headers={"etag": etag})
        renders["mine"] += 1
        return Response("my page", headers={"etag": etag})

    async with client_for(app) as client:
        await client.get("/mine", headers={"x-user": "ann"})
        clock.advance(15)
        validated = await client.get("/mine", headers={"x-user": "ann"})
        again = await client.get("/mine", headers={"x-user": "ann"})
    # The private this cache added for caches downstream does not stop the renewal.
    assert validated.headers["cache-status"] == VALIDATED
    assert "private" in validated.headers["cache-control"]
    assert is_hit(again)
    assert "private" in again.headers["cache-control"]
    assert renders["mine"] == 1
