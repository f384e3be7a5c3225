"""Two tiers for real: a ``varnishd`` the suite starts, with the shipped VCL, in
front of ``examples/varnish/app.py`` under uvicorn, over real sockets.

Varnish keeps pages an hour there (``cdn_cache_control``), so anything it
serves after a write that the write did not purge would be stale.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest

from tests.servers import ROOT, free_port, running_uvicorn
from tests.varnish_servers import VarnishServer

#: How long a write waits for Varnish: generous, for a loaded machine.
PURGE_WAIT = 2.0


@dataclass
class Tiers:
    app: str  # the application's own URL (uvicorn)
    varnish: VarnishServer  # in front of it
    http: httpx.Client  # one client for the module: a new one per request costs ~50 ms

    def through(self, path: str, **kwargs: Any) -> httpx.Response:
        """GET ``path`` through Varnish."""
        return self.http.get(self.varnish.url + path, timeout=10, **kwargs)

    def stats(self) -> dict[str, Any]:
        """The application's cache counters and endpoint executions, asked directly."""
        stats: dict[str, Any] = self.http.get(self.app + "/stats", timeout=10).json()
        return stats

    def executions(self, endpoint: str) -> int:
        return int(self.stats()["executions"].get(endpoint, 0))

    def rename(self, base: str, pid: int, name: str) -> httpx.Response:
        return self.http.put(f"{base}/products/{pid}", params={"name": name}, timeout=30)


def _env(varnish_url: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "ASGI_CACHE_URL"}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    env["VARNISH_URLS"] = varnish_url
    env["PURGE_WAIT"] = str(PURGE_WAIT)
    return env


@pytest.fixture(scope="module")
def tiers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Tiers]:
    directory = tmp_path_factory.mktemp("varnish")
    varnish_port = free_port()
    with running_uvicorn(
        "examples.varnish.app:app",
        "--lifespan",
        "on",
        env=_env(f"http://127.0.0.1:{varnish_port}"),
        log=directory / "uvicorn.log",
        startup_timeout=30,
    ) as app_url:
        backend_port = urlsplit(app_url).port
        assert backend_port is not None
        varnish = VarnishServer(backend_port, directory, port=varnish_port)
        varnish.start()
        try:
            with httpx.Client() as http:
                yield Tiers(app_url, varnish, http)
        finally:
            varnish.stop()


def members(response: httpx.Response) -> list[str]:
    """The members of ``Cache-Status``, application first, Varnish last (RFC 9211)."""
    return [member.strip() for member in response.headers.get("cache-status", "").split(",")]


def varnish_hit(response: httpx.Response) -> bool:
    return members(response)[-1] == "varnish; hit"


def wait_until(condition: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {timeout} s: {what}")
        time.sleep(0.05)


def test_a_miss_then_a_varnish_hit_that_reaches_nothing(tiers: Tiers) -> None:
    before = tiers.executions("product")
    first = tiers.through("/products/1")
    assert first.status_code == 200
    assert members(first) == ["asgi-cache; fwd=uri-miss; stored", "varnish; fwd=uri-miss"]
    second = tiers.through("/products/1")
    assert varnish_hit(second)
    assert second.json() == first.json() == {"id": 1, "name": "apple"}
    assert tiers.executions("product") == before + 1


def test_keys_and_cdn_freshness_reach_varnish_only(tiers: Tiers) -> None:
    marked = tiers.http.get(
        tiers.app + "/products/3", headers={"surrogate-capability": "varnish"}, timeout=10
    )
    assert marked.headers["surrogate-key"] == "shop product:3 /products/3"
    assert marked.headers["cdn-cache-control"] == "max-age=3600"
    assert "cache-control" not in marked.headers  # the server-side ttl is not sent
    direct = tiers.http.get(tiers.app + "/products/3", timeout=10)  # a hit, for a plain client
    assert members(direct)[0].startswith("asgi-cache; hit")
    assert "surrogate-key" not in direct.headers
    through = tiers.through("/products/3")
    assert "surrogate-key" not in through.headers
    assert "cdn-cache-control" not in through.headers


def test_a_put_purges_both_tiers_by_tag(tiers: Tiers) -> None:
    tiers.through("/products/2")
    tiers.through("/products")
    assert varnish_hit(tiers.through("/products/2"))
    assert varnish_hit(tiers.through("/products"))
    before = tiers.executions("product"), tiers.executions("products")

    written = tiers.rename(tiers.varnish.url, 2, "pear")  # a PUT passes through Varnish
    assert written.status_code == 200

    after = tiers.through("/products/2")
    assert after.json() == {"id": 2, "name": "pear"}
    assert members(after) == ["asgi-cache; fwd=uri-miss; stored", "varnish; fwd=uri-miss"]
    listing = tiers.through("/products")  # tagged "products": purged by the same write
    assert {"id": 2, "name": "pear"} in listing.json()["products"]
    assert not varnish_hit(listing)
    # The next reads: Varnish hits, and the application's own cache has it too.
    assert varnish_hit(tiers.through("/products/2"))
    assert members(tiers.http.get(tiers.app + "/products/2", timeout=10))[0].startswith(
        "asgi-cache; hit"
    )
    assert (tiers.executions("product"), tiers.executions("products")) == (
        before[0] + 1,
        before[1] + 1,
    )
    assert tiers.stats()["cache"]["purges_pending"] == 0


def test_a_write_bans_its_url_from_varnish_also_for_routes_not_cached_here(
    tiers: Tiers,
) -> None:
    tiers.through("/about")
    kept = tiers.through("/about")
    assert varnish_hit(kept)  # by its Surrogate-Control, whatever its Cache-Control says
    assert kept.headers["cache-control"] == "no-store"
    assert "surrogate-control" not in kept.headers
    edited = tiers.http.put(tiers.varnish.url + "/about", params={"text": "a new shop"}, timeout=30)
    assert edited.status_code == 200
    after = tiers.through("/about")
    assert after.json() == {"about": "a new shop"}
    assert not varnish_hit(after)


@pytest.mark.parametrize(("path", "header"), [("/me", "x-user"), ("/account", "authorization")])
def test_a_per_user_route_is_never_served_by_varnish_to_another_user(
    tiers: Tiers, path: str, header: str
) -> None:
    endpoint = path.strip("/")
    before = tiers.executions(endpoint)
    for _ in range(3):
        for user in ("Bearer alice", "Bearer bob"):
            response = tiers.through(path, headers={header: user})
            assert response.status_code == 200
            assert user in response.json().values()
            assert not varnish_hit(response)
    # Each user's page came from the application's cache after its first
    # request: per user there, never shared by Varnish.
    assert tiers.executions(endpoint) == before + 2


def test_a_purge_while_varnish_is_down_is_retried_and_applied_when_it_is_back(
    tiers: Tiers,
) -> None:
    tiers.through("/products/1")
    assert varnish_hit(tiers.through("/products/1"))
    failed = tiers.stats()["cache"]["purges_failed"]

    tiers.varnish.pause()  # it keeps its cache, and answers nothing
    try:
        started = time.monotonic()
        written = tiers.rename(tiers.app, 1, "quince")
        took = time.monotonic() - started
        assert written.status_code == 200  # the write is not held up by the outage
        assert took < PURGE_WAIT + 3
        stats = tiers.stats()["cache"]
        assert stats["purges_failed"] == failed + 1
        assert stats["purges_pending"] == 1
        assert tiers.http.get(tiers.app + "/products/1", timeout=10).json()["name"] == "quince"
    finally:
        tiers.varnish.resume()

    wait_until(lambda: tiers.stats()["cache"]["purges_pending"] == 0, 30, "purge applied")
    after = tiers.through("/products/1")
    assert after.json() == {"id": 1, "name": "quince"}
    assert not varnish_hit(after)


def test_two_tiers_under_reads_and_writes_serve_nothing_stale(
    tiers: Tiers, record_property: Callable[[str, object], None]
) -> None:
    """A read-mostly workload through Varnish, with writes between the reads:
    prints the figures, and no read after a write returns the old name."""
    start = tiers.stats()
    names = {pid: tiers.through(f"/products/{pid}").json()["name"] for pid in (1, 2, 3)}
    requests = hits = stale = writes = 0
    for round_ in range(20):
        for _ in range(4):
            for pid in (1, 2, 3):
                response = tiers.through(f"/products/{pid}")
                requests += 1
                hits += varnish_hit(response)
                stale += response.json()["name"] != names[pid]
            listing = tiers.through("/products")
            requests += 1
            hits += varnish_hit(listing)
            shown = {item["id"]: item["name"] for item in listing.json()["products"]}
            stale += any(shown[pid] != names[pid] for pid in names)
        pid = round_ % 3 + 1
        names[pid] = f"name-{round_}"
        assert tiers.rename(tiers.varnish.url, pid, names[pid]).status_code == 200
        writes += 1
    end = tiers.stats()
    executions = sum(end["executions"].values()) - sum(start["executions"].values())
    purges = end["cache"]["purges"] - start["cache"]["purges"]
    figures = {
        "requests": requests,
        "varnish_hits": hits,
        "app_executions": executions,
        "writes": writes,
        "purges": purges,
        "stale_reads_after_writes": stale,
    }
    for name, value in figures.items():
        record_property(name, value)
    print("\ntwo tiers:", ", ".join(f"{name} {value}" for name, value in figures.items()))
    assert stale == 0
    assert purges == writes  # one purge request batch per write, none kept
    assert end["cache"]["purges_pending"] == 0
    # Per write, at most the written product's page and the listing reach the application.
    assert executions <= 2 * writes
    assert hits >= requests - 2 * writes
