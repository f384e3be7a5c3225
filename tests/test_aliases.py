"""Aliases: a write invalidates every spelling of a path that the application reads alike.

``/products/01``, ``/products/+1`` and ``/products/1`` are one product to an ``int``
parameter, so tags are filled, and path tags spelled, from the values the endpoint
receives rather than from the text of the path.
"""

from __future__ import annotations

import enum
import uuid
from typing import Annotated

import pytest
from fastapi import APIRouter, Depends, FastAPI, Path
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Mount, Route

from asgi_cache import Cache, CacheMiddleware, cached, invalidates
from tests.helpers import Calls, MakeCache, client_for, is_hit

pytestmark = pytest.mark.anyio

# Spellings FastAPI (pydantic) reads as the int 1 from a path segment, besides /products/1;
# a space arrives decoded from %20 in the path, and pydantic strips it.
INT_ALIASES = ["/products/01", "/products/001", "/products/+1", "/products/1%20"]


def fastapi_products(cache: Cache, calls: Calls) -> FastAPI:
    """GET /products/{pid} tagged product:{pid}; two writes: one tagged elsewhere, one unmarked."""
    app = FastAPI()
    app.add_middleware(CacheMiddleware, cache=cache)
    names = {1: "apple", 2: "pear"}

    @app.get("/products/{pid}")
    @cached(ttl=60, tags=("product:{pid}",))
    async def get_product(pid: int) -> dict[str, object]:
        calls[f"get{pid}"] += 1
        return {"pid": pid, "name": names[pid]}

    @app.put("/admin/products/{pid}")  # another path: only the tag reaches the entries
    @invalidates("product:{pid}")
    async def rename(pid: int, name: str) -> dict[str, str]:
        names[pid] = name
        return {"name": name}

    @app.put("/products/{pid}")  # unmarked: only its path reaches the entries
    async def replace(pid: int, name: str) -> Response:
        names[pid] = name
        return Response(status_code=204)

    return app


@pytest.mark.parametrize("spelling", INT_ALIASES)
async def test_a_fastapi_tag_of_an_int_parameter_invalidates_every_spelling(
    make_cache: MakeCache, spelling: str
) -> None:
    calls = Calls()
    app = fastapi_products(make_cache(), calls)
    async with client_for(app) as client:
        await client.get(spelling)
        assert is_hit(await client.get(spelling))
        await client.put("/admin/products/1", params={"name": "cherry"})
        after = await client.get(spelling)
    assert not is_hit(after)
    assert after.json() == {"pid": 1, "name": "cherry"}


@pytest.mark.parametrize("spelling", INT_ALIASES)
async def test_an_unmarked_fastapi_write_invalidates_every_spelling_of_its_path(
    make_cache: MakeCache, spelling: str
) -> None:
    calls = Calls()
    app = fastapi_products(make_cache(), calls)
    async with client_for(app) as client:
        await client.get(spelling)
        await client.put("/products/1", params={"name": "cherry"})
        after = await client.get(spelling)
    assert not is_hit(after)
    assert after.json() == {"pid": 1, "name": "cherry"}


async def test_a_write_of_an_alias_invalidates_the_canonical_spelling(
    make_cache: MakeCache,
) -> None:
    calls = Calls()
    app = fastapi_products(make_cache(), calls)
    async with client_for(app) as client:
        await client.get("/products/1")
        await client.put("/products/01", params={"name": "cherry"})
        after = await client.get("/products/1")
    assert after.json() == {"pid": 1, "name": "cherry"}


async def test_a_write_leaves_other_values_cached(make_cache: MakeCache) -> None:
    calls = Calls()
    app = fastapi_products(make_cache(), calls)
    async with client_for(app) as client:
        await client.get("/products/01")
        await client.get("/products/02")
        await client.put("/products/2", params={"name": "fig"})
        assert is_hit(await client.get("/products/01"))


def starlette_products(cache: Cache, calls: Calls, write_path: str) -> Starlette:
    """GET /products/{pid:int} tagged product:{pid}; a tagged write elsewhere, an unmarked one."""
    names = {1: "apple"}

    @cached(ttl=60, tags=("product:{pid}",))
    async def get_product(request: Request) -> JSONResponse:
        pid = request.path_params["pid"]
        calls[f"get{pid}"] += 1
        return JSONResponse({"pid": pid, "name": names[pid]})

    @invalidates("product:{pid}")
    async def rename(request: Request) -> PlainTextResponse:
        names[request.path_params["pid"]] = request.query_params["name"]
        return PlainTextResponse("renamed")

    async def replace(request: Request) -> Response:
        names[int(request.path_params["pid"])] = request.query_params["name"]
        return Response(status_code=204)

    app = Starlette(
        routes=[
            Route("/products/{pid:int}", get_product),
            Route("/admin/products/{pid:int}", rename, methods=["PUT"]),
            Route(write_path, replace, methods=["PUT"]),
        ]
    )
    app.add_middleware(CacheMiddleware, cache=cache)
    return app


STARLETTE_INT_SPELLINGS = ["/products/1", "/products/01", "/products/0001"]
STARLETTE_INT_ALIASES = STARLETTE_INT_SPELLINGS[1:]


@pytest.mark.parametrize("spelling", STARLETTE_INT_ALIASES)
async def test_a_starlette_tag_of_an_int_convertor_invalidates_every_spelling(
    make_cache: MakeCache, spelling: str
) -> None:
    app = starlette_products(make_cache(), Calls(), "/products/{pid:int}")
    async with client_for(app) as client:
        await client.get(spelling)
        await client.put("/admin/products/1", params={"name": "cherry"})
        after = await client.get(spelling)
    assert not is_hit(after)
    assert after.json() == {"pid": 1, "name": "cherry"}


@pytest.mark.parametrize("spelling", STARLETTE_INT_ALIASES)
async def test_an_unmarked_starlette_write_invalidates_every_spelling_of_its_path(
    make_cache: MakeCache, spelling: str
) -> None:
    app = starlette_products(make_cache(), Calls(), "/products/{pid:int}")
    async with client_for(app) as client:
        await client.get(spelling)
        await client.put("/products/1", params={"name": "cherry"})
        after = await client.get(spelling)
    assert after.json() == {"pid": 1, "name": "cherry"}


@pytest.mark.parametrize("write", ["/products/1", "/products/01"])
async def test_a_write_route_reading_text_invalidates_what_the_cached_route_reads_alike(
    make_cache: MakeCache, write: str
) -> None:
    # The PUT route is {pid} (a str): its path is spelled as the GET route {pid:int} reads it.
    app = starlette_products(make_cache(), Calls(), "/products/{pid}")
    async with client_for(app) as client:
        for spelling in STARLETTE_INT_SPELLINGS:
            await client.get(spelling)
        await client.put(write, params={"name": "cherry"})
        after = [await client.get(spelling) for spelling in STARLETTE_INT_SPELLINGS]
    assert [response.json()["name"] for response in after] == ["cherry"] * 3


async def test_a_fastapi_convertor_route_and_a_typed_write_route_agree_on_the_path(
    make_cache: MakeCache,
) -> None:
    names = {1: "apple"}
    app = FastAPI()
    app.add_middleware(CacheMiddleware, cache=make_cache())

    @app.get("/products/{pid:int}")
    @cached(ttl=60)
    async def get_product(pid: int) -> dict[str, str]:
        return {"name": names[pid]}

    @app.put("/products/{pid}")
    async def replace(pid: int, name: str) -> Response:
        names[pid] = name
        return Response(status_code=204)

    async with client_for(app) as client:
        await client.get("/products/01")
        await client.put("/products/+1", params={"name": "cherry"})
        after = await client.get("/products/01")
    assert after.json() == {"name": "cherry"}


# Parameters above the route: mounts and router prefixes


async def test_a_write_invalidates_every_spelling_below_a_mount_with_a_parameter(
    make_cache: MakeCache,
) -> None:
    names = {(1, 1): "apple"}

    @cached(ttl=60)
    async def get_product(request: Request) -> JSONResponse:
        params = request.path_params
        return JSONResponse({"name": names[params["sid"], params["pid"]]})

    async def replace(request: Request) -> Response:
        params = request.path_params
        names[params["sid"], params["pid"]] = request.query_params["name"]
        return Response(status_code=204)

    shop = [
        Route("/products/{pid:int}", get_product),
        Route("/products/{pid:int}", replace, methods=["PUT"]),
    ]
    app = Starlette(routes=[Mount("/shops/{sid:int}", routes=shop)])
    app.add_middleware(CacheMiddleware, cache=make_cache())
    async with client_for(app) as client:
        await client.get("/shops/01/products/001")
        await client.put("/shops/1/products/1", params={"name": "cherry"})
        after = await client.get("/shops/01/products/001")
    assert after.json() == {"name": "cherry"}


async def test_a_mounted_fastapi_application_reads_its_parameters_from_its_signature(
    make_cache: MakeCache,
) -> None:
    names = {1: "apple"}
    api = FastAPI()

    @api.get("/products/{pid}")
    @cached(ttl=60, tags=("product:{pid}",))
    async def get_product(pid: int) -> dict[str, str]:
        return {"name": names[pid]}

    @api.post("/renames/{pid}")
    @invalidates("product:{pid}")
    async def rename(pid: int, name: str) -> dict[str, str]:
        names[pid] = name
        return {"name": name}

    app = Starlette(routes=[Mount("/api", app=api)])
    app.add_middleware(CacheMiddleware, cache=make_cache())
    async with client_for(app) as client:
        await client.get("/api/products/+1")
        await client.post("/api/renames/1", params={"name": "cherry"})
        after = await client.get("/api/products/+1")
    assert after.json() == {"name": "cherry"}


async def test_a_router_prefix_parameter_fills_tags_from_the_endpoint_signature(
    make_cache: MakeCache,
) -> None:
    names = {(1, 1): "apple"}
    shops = APIRouter(prefix="/shops/{sid}")

    @shops.get("/products/{pid}")
    @cached(ttl=60, tags=("shop:{sid}:product:{pid}",))
    async def get_product(sid: int, pid: int) -> dict[str, str]:
        return {"name": names[sid, pid]}

    @shops.put("/renames/{pid}")
    @invalidates("shop:{sid}:product:{pid}")
    async def rename(sid: int, pid: int, name: str) -> dict[str, str]:
        names[sid, pid] = name
        return {"name": name}

    app = FastAPI()
    app.include_router(shops)
    app.add_middleware(CacheMiddleware, cache=make_cache())
    async with client_for(app) as client:
        await client.get("/shops/01/products/+1")
        await client.put("/shops/1/renames/01", params={"name": "cherry"})
        after = await client.get("/shops/01/products/+1")
    assert after.json() == {"name": "cherry"}


async def test_a_parameter_of_a_dependency_fills_tags_from_the_dependency_signature(
    make_cache: MakeCache,
) -> None:
    names = {1: "apple"}

    def product_name(pid: int) -> str:
        return names[pid]

    app = FastAPI()
    app.add_middleware(CacheMiddleware, cache=make_cache())

    @app.get("/products/{pid}")
    @cached(ttl=60, tags=("product:{pid}",))
    async def get_product(name: str = Depends(product_name)) -> dict[str, str]:
        return {"name": name}

    @app.post("/renames/{pid}")
    @invalidates("product:{pid}")
    async def rename(pid: int, name: str) -> dict[str, str]:
        names[pid] = name
        return {"name": name}

    async with client_for(app) as client:
        await client.get("/products/01")
        await client.post("/renames/1", params={"name": "cherry"})
        after = await client.get("/products/01")
    assert after.json() == {"name": "cherry"}


# Other scalar types


class Size(str, enum.Enum):
    SMALL = "s"


class Level(enum.IntEnum):
    ONE = 1


UID = uuid.UUID("12345678-1234-5678-1234-567812345678")

# (route kind, a spelling stored, another spelling written, both read as one value)
SCALARS = [
    pytest.param("float", "1.50", "1.5", id="float"),
    pytest.param("float", "1e3", "1000", id="float-exponent"),
    pytest.param("bool", "yes", "true", id="bool"),
    pytest.param("bool", "0", "off", id="bool-false"),
    pytest.param("uuid", UID.hex.upper(), str(UID), id="uuid"),
    pytest.param("level", "01", "1", id="int-enum"),
    pytest.param("positive", "+7", "7", id="annotated-path"),
]


def scalar_app(cache: Cache) -> tuple[FastAPI, Calls]:
    calls = Calls()
    app = FastAPI()
    app.add_middleware(CacheMiddleware, cache=cache)

    @app.get("/float/{x}")
    @cached(ttl=60)
    async def get_float(x: float) -> dict[str, object]:
        calls["float"] += 1
        return {"n": calls["float"]}

    @app.get("/bool/{x}")
    @cached(ttl=60)
    async def get_bool(x: bool) -> dict[str, object]:
        calls["bool"] += 1
        return {"n": calls["bool"]}

    @app.get("/uuid/{x}")
    @cached(ttl=60)
    async def get_uuid(x: uuid.UUID) -> dict[str, object]:
        calls["uuid"] += 1
        return {"n": calls["uuid"]}

    @app.get("/level/{x}")
    @cached(ttl=60)
    async def get_level(x: Level) -> dict[str, object]:
        calls["level"] += 1
        return {"n": calls["level"]}

    @app.get("/size/{x}")
    @cached(ttl=60)
    async def get_size(x: Size) -> dict[str, object]:
        calls["size"] += 1
        return {"n": calls["size"]}

    @app.get("/positive/{x}")
    @cached(ttl=60)
    async def get_positive(x: Annotated[int, Path(gt=0)]) -> dict[str, object]:
        calls["positive"] += 1
        return {"n": calls["positive"]}

    @app.put("/{kind}/{x}")
    async def write(kind: str, x: str) -> Response:
        return Response(status_code=204)

    return app, calls


@pytest.mark.parametrize(("kind", "stored", "written"), SCALARS)
async def test_a_write_invalidates_a_scalar_parameter_spelled_otherwise(
    make_cache: MakeCache, kind: str, stored: str, written: str
) -> None:
    app, calls = scalar_app(make_cache())
    async with client_for(app) as client:
        await client.get(f"/{kind}/{stored}")
        assert is_hit(await client.get(f"/{kind}/{stored}"))
        await client.put(f"/{kind}/{written}")
        after = await client.get(f"/{kind}/{stored}")
    assert not is_hit(after)
    assert calls[kind] == 2


# Cache.invalidate_path


async def test_invalidate_path_of_the_canonical_path_removes_every_spelling(
    make_cache: MakeCache,
) -> None:
    cache = make_cache()
    app = fastapi_products(cache, Calls())
    async with client_for(app) as client:
        for spelling in ["/products/1", *INT_ALIASES]:
            await client.get(spelling)
        assert await cache.invalidate_path("/products/1") == 1 + len(INT_ALIASES)


async def test_invalidate_path_of_an_alias_removes_that_spelling(make_cache: MakeCache) -> None:
    cache = make_cache()
    app = fastapi_products(cache, Calls())
    async with client_for(app) as client:
        await client.get("/products/01")
        assert await cache.invalidate_path("/products/01") == 1
        assert not is_hit(await client.get("/products/01"))


async def test_invalidate_path_of_an_alias_removes_every_spelling_of_its_resource(
    make_cache: MakeCache,
) -> None:
    cache = make_cache()
    app = fastapi_products(cache, Calls())
    async with client_for(app) as client:
        for spelling in ["/products/1", *INT_ALIASES]:
            await client.get(spelling)
        assert await cache.invalidate_path("/products/01") == 1 + len(INT_ALIASES)
        after = [await client.get(spelling) for spelling in ["/products/1", *INT_ALIASES]]
    assert not any(is_hit(response) for response in after)
