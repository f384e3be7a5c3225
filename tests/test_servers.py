"""The same application under every ASGI server of :data:`tests.servers.SERVERS`.

uvicorn (h11 and httptools), hypercorn and granian each run ``tests.served_app:app`` as a
real process on a free port, over the memory store and over the suite's Redis, and are
spoken to over a real socket: a miss, a hit that runs nothing, an invalidation, HEAD, a
streamed response, awkward request lines, the lifespan's startup (the store checked, the
state visible), its shutdown on a signal, and a startup that fails.  Each server starts
once per store; the shutdown test, last in its class, stops it.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import threading
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path

import httpx
import pytest

from asgi_cache.status import Forward, forwarded, parse
from tests.helpers import STORED, STREAMED, is_hit
from tests.redis_servers import RedisCluster, RedisServer
from tests.served_app import CHUNKS
from tests.servers import (
    ROOT,
    SERVERS,
    AsgiServer,
    Running,
    ServerFailed,
    free_port,
    running_server,
)

#: Seconds a server may take to accept connections (granian and hypercorn start a worker).
STARTUP_TIMEOUT = 20.0
#: Seconds a server may take to exit after SIGTERM / SIGINT, lifespan shutdown included.
SHUTDOWN_TIMEOUT = 10.0
#: Seconds the Cluster stays frozen after a server is started: past the server's imports,
#: well within the store's startup bound (``asgi_cache.stores.redis.STARTUP_TIMEOUT``).
FROZEN_AT_STARTUP = 2.5
#: How each store's server is stopped: as a process manager does (SIGTERM), or Ctrl-C.
STOP_SIGNALS = {"memory": signal.SIGTERM, "redis": signal.SIGINT}
#: The Redis store's timeout in these servers: they check behaviour, not latency.
STORE_TIMEOUT = "2"


def server_env(**extra: str) -> dict[str, str]:
    """The environment without ``ASGI_CACHE_URL``, plus ``extra``, importing from the repo."""
    env = {k: v for k, v in os.environ.items() if k != "ASGI_CACHE_URL"}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    env.update(extra)
    return env


@pytest.fixture(scope="module", params=SERVERS, ids=[server.name for server in SERVERS])
def asgi_server(request: pytest.FixtureRequest) -> AsgiServer:
    server: AsgiServer = request.param
    return server


@pytest.fixture(scope="class", params=["memory", "redis"])
def store_kind(request: pytest.FixtureRequest) -> str:
    kind: str = request.param
    return kind


@pytest.fixture(scope="class")
def served(
    request: pytest.FixtureRequest,
    asgi_server: AsgiServer,
    store_kind: str,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Running]:
    """``tests.served_app:app`` under ``asgi_server`` on a store of its own, with a marker
    file (``<log>.marker``) for its shutdown; stopped at the end of the class."""
    directory = tmp_path_factory.mktemp(f"{asgi_server.name}-{store_kind}")
    env = server_env(
        SERVED_PREFIX=f"served-{asgi_server.name}-{os.getpid()}",
        SERVED_MARKER=str(directory / "output.log.marker"),
    )
    if store_kind == "redis":
        redis: RedisServer = request.getfixturevalue("redis_server")
        env.update(ASGI_CACHE_URL=redis.url, SERVED_STORE_TIMEOUT=STORE_TIMEOUT)
    with running_server(
        asgi_server,
        "tests.served_app:app",
        env=env,
        log=directory / "output.log",
        startup_timeout=STARTUP_TIMEOUT,
    ) as running:
        yield running


@pytest.fixture
def client(served: Running) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=served.url, timeout=10) as client:
        yield client


def raw_get(url: str, target: bytes) -> tuple[int, dict[bytes, bytes], bytes]:
    """One ``GET target`` written byte for byte on a socket (httpx refuses URLs over 64 KB)."""
    authority = url.removeprefix("http://")
    host, _, port = authority.partition(":")
    request = b"GET %s HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n\r\n" % (
        target,
        authority.encode(),
    )
    chunks: list[bytes] = []
    with socket.create_connection((host, int(port)), timeout=10) as sock:
        sock.sendall(request)
        while chunk := sock.recv(65536):
            chunks.append(chunk)
    head, _, body = b"".join(chunks).partition(b"\r\n\r\n")
    status_line, *lines = head.split(b"\r\n")
    headers = dict(line.lower().split(b": ", 1) for line in lines)
    if headers.get(b"transfer-encoding") == b"chunked":
        body = dechunk(body)
    return int(status_line.split()[1]), headers, body


def dechunk(body: bytes) -> bytes:
    """The payload of a ``Transfer-Encoding: chunked`` body (RFC 9112 §7.1)."""
    payload = bytearray()
    while True:
        size_line, _, body = body.partition(b"\r\n")
        size = int(size_line.split(b";")[0], 16)
        if size == 0:
            return bytes(payload)
        payload += body[:size]
        body = body[size + 2 :]


def exited_cleanly(code: int, signum: int) -> bool:
    """Whether a server stopped by ``signum`` exited as after a complete shutdown.

    hypercorn and granian exit 0.  uvicorn (0.29 and later) finishes its shutdown, then
    raises the signal it caught against itself so that its parent sees it: it ends by
    ``signum`` (``-signum`` here, ``128 + signum`` in a shell).  The marker file, not
    the code, tells that the lifespan shutdown ran.
    """
    return code == 0 or code == -signum


class TestServer:
    """One server on one store, in order: the shutdown test comes last and stops it."""

    def test_lifespan_startup_checked_the_store_and_its_state_reaches_requests(
        self, served: Running, client: httpx.Client
    ) -> None:
        answer = client.get("/lifespan").json()
        assert answer["started_by"] == answer["pid"]
        assert answer["store_errors"] == 0
        assert "does not answer" not in served.output()

    def test_a_miss_is_stored_then_a_hit_runs_nothing(self, client: httpx.Client) -> None:
        miss = client.get("/products/1")
        hit = client.get("/products/1")
        assert miss.status_code == hit.status_code == 200
        assert miss.headers["cache-status"] == STORED
        assert is_hit(hit)
        assert int(hit.headers["age"]) >= 0
        assert hit.content == miss.content
        assert hit.json()["executions"] == 1
        assert client.get("/calls").json()["product1"] == 1

    def test_a_write_invalidates_and_the_next_read_reaches_the_app_once(
        self, client: httpx.Client
    ) -> None:
        assert client.get("/products/2").json()["name"] == "pear"
        assert is_hit(client.get("/products/2"))
        put = client.put("/products/2", params={"name": "plum"})
        after = client.get("/products/2")
        again = client.get("/products/2")
        assert put.status_code == 200
        assert after.json()["name"] == "plum"
        assert after.headers["cache-status"] == STORED
        assert is_hit(again)
        assert client.get("/calls").json()["product2"] == 2

    def test_head_is_answered_from_the_get_entry_without_a_body(self, client: httpx.Client) -> None:
        get = client.get("/products/3")
        head = client.head("/products/3")
        assert head.status_code == 200
        assert head.content == b""
        assert head.headers["content-length"] == str(len(get.content))
        assert is_hit(head)
        assert client.get("/calls").json()["product3"] == 1

    def test_a_streamed_response_arrives_whole_and_its_hit_is_byte_identical(
        self, client: httpx.Client
    ) -> None:
        with client.stream("GET", "/stream") as miss:
            received = list(miss.iter_raw())
        hit = client.get("/stream")
        body = b"".join(received)
        assert body == "".join([*CHUNKS, "run 1\n"]).encode()
        # Its head left before its end: Cache-Status cannot say "stored" yet.
        assert miss.headers["cache-status"] == STREAMED
        assert is_hit(hit)
        assert hit.content == body
        assert client.get("/calls").json()["stream"] == 1

    def test_a_no_cache_entry_is_validated_and_served_whole_without_rendering(
        self, client: httpx.Client
    ) -> None:
        first = client.get("/versioned")
        validated = client.get("/versioned")
        assert first.headers["cache-status"] == STORED
        assert validated.status_code == 200
        assert validated.headers["cache-status"] == (
            forwarded(Forward.STALE, stored=True, fwd_status=304).decode()
        )
        assert validated.content == first.content == b"version 1 of the page"
        counts = client.get("/calls").json()
        assert (counts["versioned_checked"], counts["versioned_rendered"]) == (2, 1)

    @pytest.mark.parametrize(
        "query",
        [b"q=" + b"x" * 100_000, b"q=%FF", b"q=\xff\xfe", b"q=%FF%FE&r=%C3%28", b"%zz=%"],
        ids=["100-KB", "%FF", "raw-bytes", "invalid-utf-8", "bad-escapes"],
    )
    def test_awkward_query_strings_never_get_a_5xx(self, served: Running, query: bytes) -> None:
        first = raw_get(served.url, b"/counted?" + query)
        second = raw_get(served.url, b"/counted?" + query)
        for status, _, _ in (first, second):
            # A server may refuse an over-long request line itself (4xx); never a 5xx.
            assert status < 500
        if first[0] == 200:
            assert second[0] == 200
            assert parse(second[1][b"cache-status"]).hit  # type: ignore[union-attr]
            assert second[2] == first[2]

    def test_a_signal_runs_the_lifespan_shutdown_closes_the_store_and_exits(
        self, served: Running, store_kind: str
    ) -> None:
        signum = STOP_SIGNALS[store_kind]
        code = served.terminate(signum, SHUTDOWN_TIMEOUT)
        marker = Path(f"{served.log}.marker").read_text().splitlines()
        assert exited_cleanly(code, signum), served.output()
        assert marker == ["app shutdown", "store closed"], served.output()
        assert "Traceback" not in served.output()


def test_a_store_that_does_not_answer_is_reported_at_startup_and_bypassed(
    asgi_server: AsgiServer, tmp_path: Path
) -> None:
    nobody = f"redis://127.0.0.1:{free_port()}/0"
    with running_server(
        asgi_server,
        "tests.served_app:app",
        env=server_env(ASGI_CACHE_URL=nobody, SERVED_PREFIX="down"),
        log=tmp_path / "output.log",
        startup_timeout=STARTUP_TIMEOUT,
    ) as running:
        before_any_request = running.output()
        first = httpx.get(f"{running.url}/products/1", timeout=10)
        second = httpx.get(f"{running.url}/products/1", timeout=10)
    assert "the store does not answer at startup" in before_any_request
    assert "127.0.0.1" in before_any_request
    assert first.status_code == second.status_code == 200
    assert not is_hit(second)
    assert second.json()["executions"] == 2


def test_a_marker_that_does_not_fit_its_route_stops_the_server_at_startup(
    asgi_server: AsgiServer,
) -> None:
    completed = subprocess.run(
        asgi_server.command("tests.misconfigured_app:app", free_port()),
        cwd=ROOT,
        env=server_env(),
        capture_output=True,
        timeout=STARTUP_TIMEOUT,
        check=False,
    )
    output = (completed.stderr + completed.stdout).decode("utf-8", "replace")
    # hypercorn logs the failed startup and exits with 0; the others with an error code.
    assert completed.returncode != 0 or asgi_server.name == "hypercorn", output
    assert "/misconfigured/{pid}" in output
    assert "CacheConfigError" in output
    assert "sku" in output


@pytest.mark.cluster
def test_a_fresh_cluster_store_serves_the_first_request_after_startup(
    asgi_server: AsgiServer, redis_cluster: RedisCluster, tmp_path: Path
) -> None:
    """The store's default 50 ms timeout, yet no warm-up request: the lifespan startup
    discovered the slots and connected to every primary."""
    env = server_env(
        ASGI_CACHE_URL=f"{redis_cluster.url}?cluster=true",
        SERVED_PREFIX=f"cold-{asgi_server.name}-{os.getpid()}",
    )
    with running_server(
        asgi_server,
        "tests.served_app:app",
        env=env,
        log=tmp_path / "output.log",
        startup_timeout=STARTUP_TIMEOUT,
    ) as running:
        first = httpx.get(f"{running.url}/products/1", timeout=10)
        second = httpx.get(f"{running.url}/products/1", timeout=10)
    assert first.headers["cache-status"] == STORED, running.output()
    assert is_hit(second)
    assert second.json()["executions"] == 1


@pytest.mark.cluster
def test_a_cluster_slow_to_answer_at_startup_is_waited_for_not_bypassed(
    redis_cluster: RedisCluster, tmp_path: Path
) -> None:
    """Every node frozen while the server starts: the startup check waits for them (up to
    its own bound, far above the 50 ms a request gets), so once they answer the first
    request is stored."""
    env = server_env(
        ASGI_CACHE_URL=f"{redis_cluster.url}?cluster=true",
        SERVED_PREFIX=f"frozen-{os.getpid()}",
    )
    with ExitStack() as frozen:
        for node in redis_cluster.nodes:
            frozen.enter_context(node.paused())
        thaw = threading.Timer(FROZEN_AT_STARTUP, frozen.close)
        thaw.start()
        try:
            with running_server(
                SERVERS[0],
                "tests.served_app:app",
                env=env,
                log=tmp_path / "output.log",
                startup_timeout=STARTUP_TIMEOUT,
            ) as running:
                thaw.join()
                first = httpx.get(f"{running.url}/products/1", timeout=10)
                second = httpx.get(f"{running.url}/products/1", timeout=10)
        finally:
            thaw.cancel()
            thaw.join()
    assert first.headers["cache-status"] == STORED, running.output()
    assert is_hit(second)
    assert "does not answer" not in running.output()


def test_a_server_that_is_not_installed_fails_naming_what_to_install() -> None:
    missing = AsgiServer("daphne", ("daphne_not_installed",), ("daphne", "-p", "{port}"))
    with pytest.raises(ServerFailed, match=r"daphne needs daphne_not_installed.*\[test\]"):
        missing.command("tests.served_app:app", free_port())
