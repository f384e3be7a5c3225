"""A real uvicorn, started on a free loopback port, spoken to over a real socket."""

from __future__ import annotations

import os
import socket
import subprocess
from collections.abc import Iterator

import httpx
import pytest

from asgi_cache.status import Forward, forwarded, parse
from tests.helpers import STORED, is_hit
from tests.servers import ROOT, free_port, running_uvicorn, uvicorn_command

STARTUP_TIMEOUT = 10.0
LIFESPAN = ("--lifespan", "on")


def server_env() -> dict[str, str]:
    """The environment without ``ASGI_CACHE_URL``, so the default cache is used."""
    env = {k: v for k, v in os.environ.items() if k != "ASGI_CACHE_URL"}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    return env


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The base URL of ``tests.served_app:app`` under uvicorn; the server is always stopped."""
    log = tmp_path_factory.mktemp("uvicorn") / "output.log"
    with running_uvicorn(
        "tests.served_app:app",
        *LIFESPAN,
        env=server_env(),
        log=log,
        startup_timeout=STARTUP_TIMEOUT,
    ) as url:
        yield url


@pytest.fixture
def client(server: str) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server, timeout=10) as client:
        yield client


def test_a_miss_then_a_hit_with_the_same_body_and_an_age(client: httpx.Client) -> None:
    miss = client.get("/products/1")
    hit = client.get("/products/1")
    assert miss.status_code == hit.status_code == 200
    assert miss.headers["cache-status"] == STORED
    assert is_hit(hit)
    assert "age" in hit.headers
    assert int(hit.headers["age"]) >= 0
    assert hit.content == miss.content
    assert hit.json()["executions"] == 1
    assert client.get("/calls").json()["product1"] == 1


def test_a_write_invalidates_and_the_next_read_is_fresh(client: httpx.Client) -> None:
    assert client.get("/products/2").json()["name"] == "pear"
    assert is_hit(client.get("/products/2"))
    put = client.put("/products/2", params={"name": "plum"})
    after = client.get("/products/2")
    assert put.status_code == 200
    assert after.json()["name"] == "plum"
    assert after.headers["cache-status"] == STORED
    assert after.json()["executions"] == 2


def test_head_is_answered_from_the_get_entry_without_a_body(client: httpx.Client) -> None:
    get = client.get("/products/3")
    head = client.head("/products/3")
    assert head.status_code == 200
    assert head.content == b""
    assert head.headers["content-length"] == get.headers["content-length"] == str(len(get.content))
    assert is_hit(head)
    assert client.get("/calls").json()["product3"] == 1


def test_a_no_cache_entry_is_validated_and_served_whole_without_rendering(
    client: httpx.Client,
) -> None:
    first = client.get("/versioned")
    validated = client.get("/versioned")
    assert first.headers["cache-status"] == STORED
    assert validated.status_code == 200
    assert validated.headers["cache-status"] == (
        forwarded(Forward.STALE, stored=True, fwd_status=304).decode()
    )
    assert validated.content == first.content == b"version 1 of the page"
    assert validated.headers["content-length"] == str(len(first.content))
    counts = client.get("/calls").json()
    assert (counts["versioned_checked"], counts["versioned_rendered"]) == (2, 1)


def raw_get(server: str, target: bytes) -> tuple[int, dict[bytes, bytes], bytes]:
    """One ``GET target`` written byte for byte on a socket (httpx refuses URLs over 64 KB)."""
    host, _, port = server.removeprefix("http://").partition(":")
    request = b"GET %s HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n\r\n" % (
        target,
        server.removeprefix("http://").encode(),
    )
    chunks: list[bytes] = []
    with socket.create_connection((host, int(port)), timeout=10) as sock:
        sock.sendall(request)
        while chunk := sock.recv(65536):
            chunks.append(chunk)
    head, _, body = b"".join(chunks).partition(b"\r\n\r\n")
    status_line, *lines = head.split(b"\r\n")
    headers = dict(line.lower().split(b": ", 1) for line in lines)
    return int(status_line.split()[1]), headers, body


@pytest.mark.parametrize(
    "query",
    [b"q=" + b"x" * 100_000, b"q=%FF", b"q=\xff\xfe", b"q=%FF%FE&r=%C3%28", b"%zz=%"],
    ids=["100-KB", "%FF", "raw-bytes", "invalid-utf-8", "bad-escapes"],
)
def test_awkward_query_strings_never_get_a_5xx(server: str, query: bytes) -> None:
    first = raw_get(server, b"/counted?" + query)
    second = raw_get(server, b"/counted?" + query)
    for status, _, _ in (first, second):
        # uvicorn may refuse an over-long request line itself (4xx); never a 5xx.
        assert status < 500
    if first[0] == 200:
        assert second[0] == 200
        assert parse(second[1][b"cache-status"]).hit  # type: ignore[union-attr]
        assert second[2] == first[2]


def test_a_marker_that_does_not_fit_its_route_stops_uvicorn_at_startup() -> None:
    completed = subprocess.run(
        uvicorn_command("tests.misconfigured_app:app", free_port(), *LIFESPAN),
        cwd=ROOT,
        env=server_env(),
        capture_output=True,
        timeout=20,
        check=False,
    )
    stderr = completed.stderr.decode("utf-8", "replace")
    assert completed.returncode != 0
    assert "/misconfigured/{pid}" in stderr
    assert "CacheConfigError" in stderr
    assert "sku" in stderr
