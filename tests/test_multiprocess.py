"""Two uvicorn workers share one Redis cache: ``examples/redis_app.py`` over real sockets.

Every request opens a new connection (``Connection: close``), so the kernel
hands successive requests to whichever worker accepts first and both workers
get some.  ``x-worker-pid`` says which worker answered; ``served_by`` in a
product's body says which worker computed it.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator

import anyio
import httpx
import pytest
import redis

from asgi_cache.status import parse
from tests.helpers import COLLAPSED, STORED, is_hit
from tests.redis_servers import RedisServer
from tests.servers import ROOT, running_uvicorn

STARTUP_TIMEOUT = 15.0
#: Bounds of every request loop below: requests and seconds.
MAX_REQUESTS = 200
MAX_SECONDS = 20.0


@pytest.fixture(scope="module")
def server(redis_server: RedisServer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The base URL of ``examples.redis_app:app`` under ``uvicorn --workers 2``."""
    with redis.Redis.from_url(redis_server.url) as client:  # leftovers of an earlier test
        for key in client.scan_iter(match="shop:*", count=1000):
            client.unlink(key)
    log = tmp_path_factory.mktemp("uvicorn-workers") / "output.log"
    # A store timeout for a loaded machine: these tests are about sharing and coalescing
    # over two workers, and a call cut off at the default 50 ms bypasses the cache.
    env = {**os.environ, "ASGI_CACHE_URL": redis_server.url, "ASGI_CACHE_TIMEOUT": "1.0"}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))
    try:
        with running_uvicorn(
            "examples.redis_app:app",
            "--workers",
            "2",
            env=env,
            log=log,
            startup_timeout=STARTUP_TIMEOUT,
            workers=2,
        ) as url:
            yield url
    finally:
        with redis.Redis.from_url(redis_server.url) as client:
            for key in client.scan_iter(match="shop:*", count=1000):
                client.unlink(key)


@pytest.fixture(scope="module")
def client(server: str) -> Iterator[httpx.Client]:
    """A client that opens a new connection per request, so requests spread over workers."""
    with httpx.Client(base_url=server, timeout=10, headers={"connection": "close"}) as client:
        yield client


def requests_until(client: httpx.Client, path: str) -> Iterator[httpx.Response]:
    """GET ``path`` over fresh connections, at most MAX_REQUESTS times in MAX_SECONDS."""
    deadline = time.monotonic() + MAX_SECONDS
    for _ in range(MAX_REQUESTS):
        if time.monotonic() > deadline:
            return
        response = client.get(path)
        assert response.status_code == 200, response.text
        yield response


def worker_pid(response: httpx.Response) -> int:
    return int(response.headers["x-worker-pid"])


@pytest.fixture(scope="module")
def workers(client: httpx.Client) -> set[int]:
    """The pids of the two workers, once each has answered ``/whoami``."""
    seen: set[int] = set()
    for response in requests_until(client, "/whoami"):
        assert response.json()["pid"] == worker_pid(response)
        assert "cache-status" not in response.headers  # not a cached route
        seen.add(worker_pid(response))
        if len(seen) == 2:
            return seen
    pytest.fail(
        f"only workers {seen} answered {MAX_REQUESTS} requests over new connections "
        f"in {MAX_SECONDS} s: requests do not spread over the two workers"
    )


def test_requests_over_new_connections_reach_both_workers(workers: set[int]) -> None:
    assert len(workers) == 2


def test_an_entry_stored_by_one_worker_is_served_by_the_other(
    client: httpx.Client, workers: set[int]
) -> None:
    first = client.get("/products/1")
    assert first.status_code == 200
    assert first.headers["cache-status"] == STORED
    computed_by = first.json()["served_by"]
    assert computed_by == worker_pid(first)
    other = (workers - {computed_by}).pop()

    for response in requests_until(client, "/products/1"):
        assert is_hit(response)
        assert response.content == first.content  # always the stored body
        if worker_pid(response) == other:
            assert response.json()["served_by"] == computed_by
            return
    pytest.fail(f"no hit on /products/1 was answered by worker {other} within the bounds")


def test_after_a_put_every_worker_serves_the_new_data(
    client: httpx.Client, workers: set[int]
) -> None:
    before = client.get("/products/2")
    assert before.json()["name"] == "cherry"
    # Make sure a stale entry is there to be invalidated: the next GET is a hit.
    assert is_hit(client.get("/products/2"))

    put = client.put("/products/2", params={"name": "new"})
    assert put.status_code == 200

    answered_by: set[int] = set()
    statuses: list[str] = []
    for response in requests_until(client, "/products/2"):
        assert response.json()["name"] == "new", (
            f"worker {worker_pid(response)} served stale data after the PUT returned: "
            f"{response.json()} ({response.headers['cache-status']})"
        )
        statuses.append(response.headers["cache-status"])
        answered_by.add(worker_pid(response))
        if answered_by == workers:
            break
    assert answered_by == workers, f"only {answered_by} answered after the PUT"
    assert statuses[0] == STORED  # the PUT removed the entry
    assert all(parse(status).hit for status in statuses[1:])  # type: ignore[union-attr]


def test_after_a_put_every_worker_serves_the_new_product_list(
    client: httpx.Client, workers: set[int]
) -> None:
    assert "3" not in client.get("/products").json()["products"]  # stored, or a hit
    assert is_hit(client.get("/products"))

    assert client.put("/products/3", params={"name": "fig"}).status_code == 200

    answered_by: set[int] = set()
    for response in requests_until(client, "/products"):
        assert response.json()["products"].get("3") == "fig"
        answered_by.add(worker_pid(response))
        if answered_by == workers:
            break
    assert answered_by == workers, f"only {answered_by} answered after the PUT"


def test_concurrent_misses_on_both_workers_compute_once(
    server: str, redis_server: RedisServer, workers: set[int]
) -> None:
    """A hundred concurrent requests for one cold key, spread over both workers.

    It tests coalescing, not timeouts: on a loaded machine the default 50 ms store
    timeout cut lock calls off, each cut-off request bypassed the store
    (``fwd=bypass; detail=store-unavailable``) and ran the endpoint itself, so the
    server runs with a store timeout of a second (see ``server``).
    """

    async def burst() -> list[httpx.Response]:
        limits = httpx.Limits(max_connections=100)
        async with httpx.AsyncClient(
            base_url=server, timeout=10, limits=limits, headers={"connection": "close"}
        ) as client:
            responses: list[httpx.Response] = []

            async def get() -> None:
                responses.append(await client.get("/report"))

            with anyio.fail_after(20):
                async with anyio.create_task_group() as tasks:
                    for _ in range(100):
                        tasks.start_soon(get)
            return responses

    responses = anyio.run(burst)
    with redis.Redis.from_url(redis_server.url) as data:
        runs = int(data.get("shop:data:report-runs") or 0)
    statuses = [response.headers["cache-status"] for response in responses]
    print(
        f"\ncoalescing over 2 workers: {len(responses)} concurrent requests, "
        f"{runs} endpoint execution(s), answered by {len({worker_pid(r) for r in responses})} "
        f"worker(s), {statuses.count(COLLAPSED)} collapsed"
    )
    assert len(responses) == 100
    assert all(response.status_code == 200 for response in responses)
    assert runs == 1, sorted(set(statuses))
    assert {response.json()["runs"] for response in responses} == {1}
    assert {worker_pid(response) for response in responses} == workers
