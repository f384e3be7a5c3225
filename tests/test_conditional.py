"""Conditional requests answered from the cache (RFC 9110 §13, RFC 9111 §4.3.2)."""

from __future__ import annotations

import pytest
from fastapi import FastAPI, Request, Response

from asgi_cache import Cache, CacheMiddleware, cached
from asgi_cache.conditional import is_not_modified, last_modified
from asgi_cache.status import Detail
from tests.helpers import Calls, Clock, MakeCache, bypassed, client_for, is_hit

pytestmark = pytest.mark.anyio

STORED_AT = 1_700_000_000.0  # Tue, 14 Nov 2023 22:13:20 GMT
MODIFIED = "Tue, 14 Nov 2023 22:00:00 GMT"  # 800 s earlier
BEFORE = "Tue, 14 Nov 2023 21:59:59 GMT"
AFTER = "Tue, 14 Nov 2023 22:00:01 GMT"


def build(cache: Cache) -> tuple[FastAPI, Calls]:
    calls = Calls()
    app = FastAPI()
    app.add_middleware(CacheMiddleware, cache=cache)

    @app.get("/dated")
    @cached(ttl=60)
    async def dated(request: Request) -> Response:
        calls["dated"] += 1
        return Response(b"dated", media_type="text/plain", headers={"last-modified": MODIFIED})

    @app.get("/undated")
    @cached(ttl=60)
    async def undated() -> Response:
        calls["undated"] += 1
        return Response(b"undated", media_type="text/plain")

    @app.get("/gone")
    @cached(ttl=60)
    async def gone() -> Response:
        calls["gone"] += 1
        return Response(b"gone", status_code=404, headers={"etag": '"g"'})

    @app.get("/guarded")
    @cached(ttl=60)
    async def guarded(request: Request) -> Response:
        calls["guarded"] += 1
        if request.headers.get("if-match", '"v1"') not in ('"v1"', "*"):
            return Response(status_code=412)
        return Response(b"v1", headers={"etag": '"v1"'})

    return app, calls


def cache(make_cache: MakeCache) -> Cache:
    return make_cache(clock=Clock(STORED_AT))


@pytest.mark.parametrize("since", [MODIFIED, AFTER])
async def test_if_modified_since_not_older_than_last_modified_gets_304(
    make_cache: MakeCache, since: str
) -> None:
    app, calls = build(cache(make_cache))
    async with client_for(app) as client:
        await client.get("/dated")
        conditional = await client.get("/dated", headers={"if-modified-since": since})
    assert conditional.status_code == 304
    assert conditional.content == b""
    assert is_hit(conditional)
    assert calls["dated"] == 1


async def test_if_modified_since_older_than_last_modified_gets_the_full_response(
    make_cache: MakeCache,
) -> None:
    app, _ = build(cache(make_cache))
    async with client_for(app) as client:
        await client.get("/dated")
        full = await client.get("/dated", headers={"if-modified-since": BEFORE})
    assert full.status_code == 200 and full.content == b"dated"
    assert is_hit(full)


async def test_a_head_with_a_current_if_modified_since_gets_304(make_cache: MakeCache) -> None:
    app, _ = build(cache(make_cache))
    async with client_for(app) as client:
        await client.get("/dated")
        conditional = await client.head("/dated", headers={"if-modified-since": MODIFIED})
    assert conditional.status_code == 304


@pytest.mark.parametrize(
    "since",
    [
        "Sunday, 14-Nov-23 22:00:00 GMT",  # a wrong day name is not checked
        "Tue Nov 14 22:00:00 2023",
    ],
)
async def test_the_obsolete_date_forms_are_understood(make_cache: MakeCache, since: str) -> None:
    app, _ = build(cache(make_cache))
    async with client_for(app) as client:
        await client.get("/dated")
        conditional = await client.get("/dated", headers={"if-modified-since": since})
    assert conditional.status_code == 304


async def test_if_none_match_makes_if_modified_since_ignored(make_cache: MakeCache) -> None:
    app, _ = build(cache(make_cache))
    async with client_for(app) as client:
        await client.get("/dated")
        headers = {"if-none-match": '"other"', "if-modified-since": AFTER}
        full = await client.get("/dated", headers=headers)
    assert full.status_code == 200 and full.content == b"dated"


@pytest.mark.parametrize(
    "since",
    [
        "yesterday",
        "tue, 14 nov 2023 22:00:01 gmt",  # HTTP-date is case-sensitive
        "Tue, 14 Nov 2023 22:00:01 UTC",
        "Tue, 31 Nov 2023 22:00:01 GMT",
        "Tue, 14 Nov 2023 24:00:01 GMT",
        "1700000000",
        f"{AFTER}, {AFTER}",
    ],
)
async def test_an_invalid_if_modified_since_is_ignored(make_cache: MakeCache, since: str) -> None:
    app, _ = build(cache(make_cache))
    async with client_for(app) as client:
        await client.get("/dated")
        full = await client.get("/dated", headers={"if-modified-since": since})
    assert full.status_code == 200 and full.content == b"dated"


async def test_a_repeated_if_modified_since_is_ignored(make_cache: MakeCache) -> None:
    app, _ = build(cache(make_cache))
    async with client_for(app) as client:
        await client.get("/dated")
        headers = [("if-modified-since", AFTER), ("if-modified-since", AFTER)]
        full = await client.get("/dated", headers=headers)
    assert full.status_code == 200


async def test_without_last_modified_the_time_stored_is_compared(make_cache: MakeCache) -> None:
    app, calls = build(cache(make_cache))
    async with client_for(app) as client:
        await client.get("/undated")
        current = await client.get(
            "/undated", headers={"if-modified-since": "Tue, 14 Nov 2023 22:13:20 GMT"}
        )
        older = await client.get(
            "/undated", headers={"if-modified-since": "Tue, 14 Nov 2023 22:13:19 GMT"}
        )
    assert current.status_code == 304
    assert older.status_code == 200
    assert calls["undated"] == 1


async def test_a_stored_error_is_sent_whole_whatever_the_conditions(make_cache: MakeCache) -> None:
    app, calls = build(cache(make_cache))
    async with client_for(app) as client:
        await client.get("/gone")
        conditional = await client.get("/gone", headers={"if-none-match": '"g"'})
    assert conditional.status_code == 404 and conditional.content == b"gone"
    assert calls["gone"] == 1


@pytest.mark.parametrize(
    "header",
    [
        ("if-match", '"v0"'),
        ("if-unmodified-since", MODIFIED),
        ("if-range", '"v1"'),
    ],
)
async def test_origin_preconditions_go_to_the_application(
    make_cache: MakeCache, header: tuple[str, str]
) -> None:
    app, calls = build(cache(make_cache))
    async with client_for(app) as client:
        await client.get("/guarded")
        forwarded = await client.get("/guarded", headers=[header])
    assert forwarded.headers["cache-status"] == bypassed(Detail.PRECONDITION)
    assert calls["guarded"] == 2


async def test_the_applications_412_is_not_stored(make_cache: MakeCache) -> None:
    app, _ = build(cache(make_cache))
    async with client_for(app) as client:
        failed = await client.get("/guarded", headers={"if-match": '"v0"'})
        plain = await client.get("/guarded")
    assert failed.status_code == 412
    assert plain.status_code == 200 and plain.content == b"v1"


async def test_repeated_if_none_match_fields_are_one_list(make_cache: MakeCache) -> None:
    app, _ = build(cache(make_cache))
    async with client_for(app) as client:
        await client.get("/guarded")
        headers = [("if-none-match", '"a"'), ("if-none-match", '"v1"')]
        conditional = await client.get("/guarded", headers=headers)
    assert conditional.status_code == 304


# is_not_modified and last_modified

NOW = STORED_AT + 10
LAST_MODIFIED = [(b"last-modified", MODIFIED.encode()), (b"etag", b'"v1"')]


def current(
    if_none_match: bytes | None = None,
    if_modified_since: bytes | None = None,
    headers: list[tuple[bytes, bytes]] = LAST_MODIFIED,
    status: int = 200,
) -> bool:
    return is_not_modified(status, headers, STORED_AT, if_none_match, if_modified_since, NOW)


def test_a_matching_entity_tag_is_not_modified() -> None:
    assert current(if_none_match=b'W/"v1"')


def test_if_none_match_wins_over_if_modified_since() -> None:
    assert not current(if_none_match=b'"v2"', if_modified_since=AFTER.encode())


def test_if_none_match_without_a_stored_entity_tag_is_modified() -> None:
    headers = [(b"last-modified", MODIFIED.encode())]
    assert not current(if_none_match=b"*", if_modified_since=AFTER.encode(), headers=headers)


def test_a_date_equal_to_last_modified_is_not_modified() -> None:
    assert current(if_modified_since=MODIFIED.encode())


def test_a_date_before_last_modified_is_modified() -> None:
    assert not current(if_modified_since=BEFORE.encode())


@pytest.mark.parametrize("status", [203, 204, 206])
def test_any_2xx_may_be_not_modified(status: int) -> None:
    assert current(if_modified_since=AFTER.encode(), status=status)


@pytest.mark.parametrize("status", [301, 404, 410])
def test_a_non_2xx_is_never_not_modified(status: int) -> None:
    assert not current(if_none_match=b'"v1"', status=status)


def test_no_condition_is_modified() -> None:
    assert not current()


def test_last_modified_is_the_stored_field() -> None:
    assert last_modified(LAST_MODIFIED, STORED_AT, NOW) == STORED_AT - 800


def test_without_last_modified_the_date_field_counts() -> None:
    headers = [(b"date", b"Tue, 14 Nov 2023 22:10:00 GMT")]
    assert last_modified(headers, STORED_AT, NOW) == STORED_AT - 200


def test_an_invalid_last_modified_falls_back_on_the_date() -> None:
    headers = [(b"last-modified", b"soon"), (b"date", b"Tue, 14 Nov 2023 22:10:00 GMT")]
    assert last_modified(headers, STORED_AT, NOW) == STORED_AT - 200


def test_without_either_the_time_stored_counts() -> None:
    assert last_modified([], STORED_AT, NOW) == STORED_AT


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (b"Sun, 06 Nov 1994 08:49:37 GMT", 784111777.0),
        (b"Sunday, 06-Nov-94 08:49:37 GMT", 784111777.0),
        (b"Sun Nov  6 08:49:37 1994", 784111777.0),
        (b"Thu, 31 Dec 1998 23:59:60 GMT", 915148800.0),  # a leap second
    ],
)
def test_the_three_http_date_forms_are_read(value: bytes, expected: float) -> None:
    assert last_modified([(b"last-modified", value)], 0.0, NOW) == expected


def test_a_two_digit_year_more_than_50_years_ahead_is_in_the_past() -> None:
    # RFC 9110 §5.6.7: in 2023, "-80" is 1980, not 2080; "-70" is 2070.
    eighty = last_modified([(b"last-modified", b"Friday, 01-Nov-80 00:00:00 GMT")], 0.0, NOW)
    seventy = last_modified([(b"last-modified", b"Friday, 01-Nov-70 00:00:00 GMT")], 0.0, NOW)
    assert eighty == 341884800.0
    assert seventy == 3182025600.0
