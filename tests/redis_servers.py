"""Throwaway ``redis-server`` processes for the test suite (plain Python, no pytest).

The suite never talks to a Redis it did not start: every server here listens on a
free loopback port, keeps its files in a private temporary directory, persists
nothing, and is stopped when the test (or, as a backstop, the interpreter) is
done.  Readiness is checked with a raw RESP ``INFO server`` over a socket (so that
these helpers do not depend on the client library under test), which must name the
started process: a port taken meanwhile by another run's server is never mistaken
for this one.

``redis-server`` and ``redis-cli`` are looked up on ``PATH`` (then ``/usr/bin``);
if they are missing, starting a server raises :class:`RedisUnavailable` with an
explanation rather than letting a test skip silently.
"""

from __future__ import annotations

import contextlib
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import weakref
from collections.abc import Iterator, Sequence
from types import TracebackType

from tests.servers import free_port

__all__ = [
    "RedisCluster",
    "RedisServer",
    "RedisUnavailable",
    "RedisUser",
    "free_cluster_port",
    "resp_command",
]

_STARTUP_TIMEOUT = 10.0
_STOP_TIMEOUT = 5.0


class RedisUnavailable(RuntimeError):
    """A test Redis could not be started (binary missing, crashed, or never became ready)."""


def _is_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


def free_cluster_port() -> int:
    """Return a port ``P`` such that ``P`` and its cluster bus port ``P + 10000`` are free.

    A cluster node also listens on ``P + 10000``, so ``P`` must be at most 55535;
    the ports are drawn below Linux's ephemeral range to make collisions unlikely.
    """
    for _ in range(1000):
        port = random.randrange(20000, 32768)
        if _is_free(port) and _is_free(port + 10000):
            return port
    raise RedisUnavailable("found no free port pair for a cluster node")


def _binary(name: str) -> str:
    path = shutil.which(name) or (
        f"/usr/bin/{name}" if os.access(f"/usr/bin/{name}", os.X_OK) else None
    )
    if path is None:
        raise RedisUnavailable(
            f"{name!r} was not found on PATH or in /usr/bin; the Redis tests start their own "
            f"servers and need it (Debian/Ubuntu: apt-get install redis-server)"
        )
    return path


def resp_command(host: str, port: int, *args: str, timeout: float = 1.0) -> bytes | int | None:
    """Send one command over a fresh connection and return its reply.

    Only the reply kinds the helpers need are understood: simple strings and bulk
    strings (as bytes), integers and nil.  An error reply raises ``RuntimeError``.
    """
    payload = [f"*{len(args)}\r\n".encode()]
    for arg in args:
        data = arg.encode()
        payload.append(b"$%d\r\n%s\r\n" % (len(data), data))
    with socket.create_connection((host, port), timeout=timeout) as sock:
        sock.sendall(b"".join(payload))
        reader = sock.makefile("rb")
        line = reader.readline()
        if not line.endswith(b"\r\n"):
            raise ConnectionError(f"connection closed mid-reply: {line!r}")
        kind, rest = line[:1], line[1:-2]
        if kind == b"+":
            return rest
        if kind == b":":
            return int(rest)
        if kind == b"-":
            raise RuntimeError(rest.decode(errors="replace"))
        if kind == b"$":
            size = int(rest)
            if size < 0:
                return None
            body = reader.read(size + 2)
            return body[:-2]
        raise RuntimeError(f"unsupported reply {line!r}")


def _pdeathsig() -> None:  # pragma: no cover - runs in the forked child
    """Ask Linux to SIGTERM the server if the test process dies without cleaning up."""
    import ctypes

    with contextlib.suppress(Exception):
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


class _Process:
    """The part of a server that the finaliser needs: it must not reference the server."""

    def __init__(self, directory: str) -> None:
        self.directory = directory
        self.popen: subprocess.Popen[bytes] | None = None

    def stop(self) -> None:
        popen, self.popen = self.popen, None
        if popen is None or popen.poll() is not None:
            return
        popen.terminate()
        try:
            popen.wait(_STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            popen.kill()
            popen.wait(_STOP_TIMEOUT)

    def cleanup(self) -> None:
        self.stop()
        shutil.rmtree(self.directory, ignore_errors=True)


class RedisServer:
    """One ``redis-server`` on 127.0.0.1, started on construction.

    ``stop()`` and ``start()`` take it down and bring it back on the same port with
    the same directory (for outage tests); ``close()`` (or leaving the ``with``
    block) stops it for good and removes its directory.
    """

    host = "127.0.0.1"

    def __init__(
        self,
        *extra_args: str,
        port: int | None = None,
        startup_timeout: float = _STARTUP_TIMEOUT,
    ) -> None:
        self._binary = _binary("redis-server")
        self._extra_args: Sequence[str] = extra_args
        self._startup_timeout = startup_timeout
        self._process = _Process(tempfile.mkdtemp(prefix="asgi-cache-redis-"))
        # Runs when the server is closed, garbage-collected, or at interpreter exit
        # (weakref.finalize registers itself with atexit): no process outlives the suite.
        self._finalizer = weakref.finalize(self, self._process.cleanup)
        self.log_path = os.path.join(self._process.directory, "redis.log")
        attempts = 1 if port is not None else 3
        for attempt in range(attempts):
            self.port = port if port is not None else free_port()
            try:
                self.start()
                break
            except RedisUnavailable:
                # Only a lost race for the port is worth another try.
                if attempt == attempts - 1 or "Address already in use" not in self.log():
                    self._finalizer()
                    raise

    @property
    def url(self) -> str:
        return f"redis://{self.host}:{self.port}/0"

    @property
    def directory(self) -> str:
        return self._process.directory

    @property
    def running(self) -> bool:
        popen = self._process.popen
        return popen is not None and popen.poll() is None

    def log(self) -> str:
        try:
            with open(self.log_path, encoding="utf-8", errors="replace") as file:
                return file.read()
        except FileNotFoundError:
            return ""

    def start(self) -> None:
        """Start the server (again) on its port and wait until it answers, as itself."""
        if self.running:
            return
        args = [
            self._binary,
            "--port",
            str(self.port),
            "--bind",
            self.host,
            "--save",
            "",
            "--appendonly",
            "no",
            "--dir",
            self.directory,
            "--logfile",
            self.log_path,
            *self._extra_args,
        ]
        self._process.popen = subprocess.Popen(
            args,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            preexec_fn=_pdeathsig if sys.platform == "linux" else None,
        )
        deadline = time.monotonic() + self._startup_timeout
        last_error: Exception | None = None
        while time.monotonic() < deadline:
            popen = self._process.popen
            if popen is None or popen.poll() is not None:
                self._process.stop()
                raise RedisUnavailable(
                    f"redis-server on port {self.port} exited during startup; "
                    f"its log:\n{self.log()}"
                )
            try:
                # The server answering must be this one: another process's redis-server
                # can hold the port (it was free a moment ago), and this one then exits
                # with "Address already in use" -- after a mere PING had been answered,
                # two test runs would share one server and see each other's clients.
                info = resp_command(self.host, self.port, "INFO", "server", timeout=0.5)
                if isinstance(info, bytes) and f"process_id:{popen.pid}\r".encode() in info:
                    return
            except (OSError, RuntimeError) as exc:
                last_error = exc
            time.sleep(0.01)
        self._process.stop()
        raise RedisUnavailable(
            f"redis-server on port {self.port} did not answer INFO as itself within "
            f"{self._startup_timeout:g}s (last error: {last_error!r}); its log:\n{self.log()}"
        )

    def stop(self) -> None:
        """Stop the process (SIGTERM, then SIGKILL); ``start()`` brings it back."""
        self._process.stop()

    @contextlib.contextmanager
    def paused(self) -> Iterator[None]:
        """Freeze the process (SIGSTOP) for the ``with`` block, then thaw it (SIGCONT).

        A frozen Redis keeps its data and its connections but answers nothing,
        as one stalled by the kernel, a fork or a long command would.
        """
        popen = self._process.popen
        assert popen is not None and popen.poll() is None, "the server is not running"
        os.kill(popen.pid, signal.SIGSTOP)
        try:
            yield
        finally:
            os.kill(popen.pid, signal.SIGCONT)

    def close(self) -> None:
        """Stop the process and delete its directory."""
        self._finalizer()

    def __enter__(self) -> RedisServer:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<RedisServer {self.host}:{self.port} running={self.running}>"


class RedisUser:
    """An ACL user of a test server, so that one client can be locked out while others go on.

    :meth:`revoke` disables the user and closes its connections: its commands fail before
    reaching Redis, as for a client cut off by a partition or a proxy restart, while clients of
    other users carry on.  :meth:`restore` lets it connect again.
    """

    def __init__(self, server: RedisServer, name: str) -> None:
        self.server = server
        self.name = name
        self._password = f"{name}-password"
        self._acl("on", f">{self._password}", "~*", "&*", "+@all")

    @property
    def url(self) -> str:
        server = self.server
        return f"redis://{self.name}:{self._password}@{server.host}:{server.port}/0"

    def _acl(self, *rules: str) -> None:
        resp_command(self.server.host, self.server.port, "ACL", "SETUSER", self.name, *rules)

    def revoke(self) -> None:
        self._acl("off")
        resp_command(self.server.host, self.server.port, "CLIENT", "KILL", "USER", self.name)

    def restore(self) -> None:
        self._acl("on")


class RedisCluster:
    """A three-primary Redis Cluster without replicas, ready when constructed.

    Each node is a :class:`RedisServer` with cluster mode enabled; the nodes are
    joined with ``redis-cli --cluster create`` and the constructor returns once
    every node reports ``cluster_state:ok`` and knows all three nodes.
    """

    def __init__(
        self,
        size: int = 3,
        *,
        extra_args: Sequence[str] = (),
        startup_timeout: float = _STARTUP_TIMEOUT,
    ) -> None:
        deadline = time.monotonic() + startup_timeout
        self.nodes: list[RedisServer] = []
        try:
            for _ in range(size):
                self.nodes.append(self._start_node(deadline, extra_args))
            self._create(deadline)
            self.wait_until_ok(max(0.5, deadline - time.monotonic()))
        except BaseException:
            self.close()
            raise

    @property
    def url(self) -> str:
        return self.nodes[0].url.rsplit("/", 1)[0]

    @staticmethod
    def _start_node(deadline: float, extra_args: Sequence[str]) -> RedisServer:
        for attempt in range(3):
            port = free_cluster_port()
            try:
                return RedisServer(
                    "--cluster-enabled",
                    "yes",
                    "--cluster-config-file",
                    f"nodes-{port}.conf",
                    "--cluster-node-timeout",
                    "2000",
                    *extra_args,
                    port=port,
                    startup_timeout=max(0.5, deadline - time.monotonic()),
                )
            except RedisUnavailable as exc:
                if attempt == 2 or "Address already in use" not in str(exc):
                    raise
        raise AssertionError("unreachable")

    def _create(self, deadline: float) -> None:
        command = [
            _binary("redis-cli"),
            "--cluster",
            "create",
            *(f"{node.host}:{node.port}" for node in self.nodes),
            "--cluster-replicas",
            "0",
            "--cluster-yes",
        ]
        try:
            result = subprocess.run(
                command,
                stdin=subprocess.DEVNULL,
                capture_output=True,
                timeout=max(0.5, deadline - time.monotonic()),
                check=False,
            )
        except subprocess.TimeoutExpired as exc:
            raise RedisUnavailable(f"{' '.join(command)} timed out") from exc
        if result.returncode != 0:
            raise RedisUnavailable(
                f"{' '.join(command)} failed ({result.returncode}):\n"
                f"{result.stdout.decode(errors='replace')}{result.stderr.decode(errors='replace')}"
            )

    def wait_until_ok(self, timeout: float = _STARTUP_TIMEOUT) -> None:
        """Wait until every node reports ``cluster_state:ok`` and knows all the others."""
        deadline = time.monotonic() + timeout
        expected = f"cluster_known_nodes:{len(self.nodes)}".encode()
        pending = list(self.nodes)
        info: object = None
        while pending:
            node = pending[0]
            try:
                info = resp_command(node.host, node.port, "CLUSTER", "INFO")
            except (OSError, RuntimeError) as exc:
                info = exc
            if isinstance(info, bytes) and b"cluster_state:ok" in info and expected in info:
                pending.pop(0)
                continue
            if time.monotonic() > deadline:
                raise RedisUnavailable(
                    f"cluster node {node.port} is not ready: {info!r}\nits log:\n{node.log()}"
                )
            time.sleep(0.05)

    def stop(self) -> None:
        """Stop every node for good and delete their directories."""
        self.close()

    def close(self) -> None:
        for node in self.nodes:
            node.close()

    def __enter__(self) -> RedisCluster:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<RedisCluster {', '.join(str(node.port) for node in self.nodes)}>"
