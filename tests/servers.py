"""Servers the suite runs as processes of its own: free loopback ports and ASGI servers.

Plain Python (no pytest), like ``tests/redis_servers.py``, which takes its ports from here.
:data:`SERVERS` lists the ASGI servers the suite runs an application under (uvicorn with
either HTTP parser, hypercorn, granian), each started by :func:`running_server`.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from importlib.util import find_spec
from pathlib import Path

__all__ = [
    "ROOT",
    "SERVERS",
    "AsgiServer",
    "Running",
    "ServerFailed",
    "free_port",
    "running_server",
    "running_uvicorn",
    "stop_group",
    "uvicorn_command",
]

#: The repository, so ``tests.served_app`` and ``examples.redis_app`` import in a server.
ROOT = Path(__file__).resolve().parents[1]


class ServerFailed(RuntimeError):
    """A server exited during startup or never accepted connections; carries its output."""


def free_port() -> int:
    """Return a TCP port on 127.0.0.1 that was free a moment ago.

    Another process may grab it before the server binds it; :class:`RedisServer
    <tests.redis_servers.RedisServer>` retries on a fresh port when that happens.
    """
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def uvicorn_command(app: str, port: int, *options: str) -> list[str]:
    """``python -m uvicorn app`` on 127.0.0.1:``port``, with more ``options``."""
    return [
        sys.executable,
        "-m",
        "uvicorn",
        app,
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        *options,
    ]


@dataclass(frozen=True)
class AsgiServer:
    """An ASGI server the suite can run an application under, and how to start it."""

    #: The test id: ``uvicorn-h11``, ``uvicorn-httptools``, ``hypercorn``, ``granian``.
    name: str
    #: The importable modules it needs (the server, its HTTP parser).
    modules: tuple[str, ...]
    #: ``python -m`` arguments before the application; ``{port}`` is filled in.
    arguments: tuple[str, ...]

    def command(self, app: str, port: int, *options: str) -> list[str]:
        """The command line serving ``app`` on 127.0.0.1:``port``, with more ``options``.

        Raises :class:`ServerFailed` naming the missing package when the server (or
        its HTTP parser) is not installed, rather than letting a test skip.
        """
        missing = [module for module in self.modules if find_spec(module) is None]
        if missing:
            raise ServerFailed(
                f"{self.name} needs {', '.join(missing)}, which {sys.executable} cannot "
                "import: install the test extra (pip install -e '.[test]')"
            )
        arguments = [argument.format(port=port) for argument in self.arguments]
        return [sys.executable, "-m", *arguments, *options, app]


#: The servers of the matrix in ``tests/test_servers.py``.  Each runs the lifespan
#: (granian's ``asgi`` interface does; ``asginl`` would not) in one process serving
#: requests (granian: a worker under its manager process).
SERVERS = (
    AsgiServer(
        "uvicorn-h11",
        ("uvicorn", "h11"),
        ("uvicorn", "--host", "127.0.0.1", "--port", "{port}", "--http", "h11", "--lifespan", "on"),
    ),
    AsgiServer(
        "uvicorn-httptools",
        ("uvicorn", "httptools"),
        (
            *("uvicorn", "--host", "127.0.0.1", "--port", "{port}"),
            *("--http", "httptools", "--lifespan", "on"),
        ),
    ),
    AsgiServer("hypercorn", ("hypercorn",), ("hypercorn", "--bind", "127.0.0.1:{port}")),
    AsgiServer(
        "granian",
        ("granian",),
        (
            *("granian", "--interface", "asgi", "--host", "127.0.0.1", "--port", "{port}"),
            *("--workers", "1"),
        ),
    ),
)


def wait_until_accepting(
    process: subprocess.Popen[bytes], port: int, log: Path, timeout: float, name: str = "uvicorn"
) -> None:
    """Return once ``port`` accepts a connection; raise :class:`ServerFailed` if ``process``
    (``name``) exits first or ``timeout`` seconds pass."""
    deadline = time.monotonic() + timeout
    while True:
        if process.poll() is not None:
            raise ServerFailed(f"{name} exited with {process.returncode}:\n{log.read_text()}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            if time.monotonic() > deadline:
                raise ServerFailed(
                    f"{name} did not accept connections within {timeout} s:\n{log.read_text()}"
                ) from None
            time.sleep(0.05)


def wait_until_logged(
    process: subprocess.Popen[bytes], log: Path, line: str, times: int, timeout: float
) -> None:
    """Return once ``log`` holds ``line`` ``times`` times; raise :class:`ServerFailed` if
    ``process`` exits first or ``timeout`` seconds pass."""
    deadline = time.monotonic() + timeout
    while log.read_text(errors="replace").count(line) < times:
        if process.poll() is not None or time.monotonic() > deadline:
            raise ServerFailed(
                f"{times} x {line!r} not logged within {timeout} s:\n{log.read_text()}"
            )
        time.sleep(0.05)


def stop_group(process: subprocess.Popen[bytes]) -> None:
    """SIGTERM the server's whole process group (manager and workers), then SIGKILL."""
    try:
        os.killpg(process.pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        pass
    try:  # workers that outlived their manager, or a manager that did not stop
        os.killpg(process.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    process.wait(timeout=10)


@dataclass(frozen=True)
class Running:
    """A server process started by :func:`running_server`."""

    url: str
    process: subprocess.Popen[bytes]
    log: Path

    def output(self) -> str:
        """What the server printed so far."""
        return self.log.read_text(errors="replace")

    def terminate(self, signum: int, timeout: float) -> int:
        """Send ``signum`` to the server's main process, as a process manager does, and
        return its exit code; raise :class:`ServerFailed` if it is still running after
        ``timeout`` seconds."""
        self.process.send_signal(signum)
        try:
            return self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            raise ServerFailed(
                f"the server did not exit within {timeout} s of signal {signum}:\n{self.output()}"
            ) from None


@contextmanager
def running_server(
    server: AsgiServer,
    app: str,
    *options: str,
    env: Mapping[str, str],
    log: Path,
    startup_timeout: float,
) -> Iterator[Running]:
    """Run ``app`` under ``server`` on a free port; yield it once it accepts connections.

    The server runs in a process group of its own, so its workers are stopped with it when
    the block ends, however it ends; its output goes to ``log``.
    """
    port = free_port()
    command = server.command(app, port, *options)
    with _started(command, env, log) as process:
        wait_until_accepting(process, port, log, startup_timeout, server.name)
        yield Running(f"http://127.0.0.1:{port}", process, log)


@contextmanager
def running_uvicorn(
    app: str,
    *options: str,
    env: Mapping[str, str],
    log: Path,
    startup_timeout: float,
    port: int | None = None,
    workers: int = 0,
) -> Iterator[str]:
    """Run ``uvicorn app`` on ``port`` (a free one by default) and yield its base URL
    once it accepts connections, and once ``workers`` workers (if given) have logged
    their startup: the manager's socket accepts as soon as the first worker listens,
    and a test that needs both would otherwise find only that one answering.

    The server runs in a process group of its own, so its workers are stopped with it when
    the block ends, however it ends; its output goes to ``log``.
    """
    port = port or free_port()
    with _started(uvicorn_command(app, port, *options), env, log) as process:
        wait_until_accepting(process, port, log, startup_timeout)
        wait_until_logged(process, log, "Application startup complete.", workers, startup_timeout)
        yield f"http://127.0.0.1:{port}"


@contextmanager
def _started(
    command: list[str], env: Mapping[str, str], log: Path
) -> Iterator[subprocess.Popen[bytes]]:
    """``command`` in a process group of its own, its output in ``log``; always stopped."""
    with log.open("wb") as output:
        process = subprocess.Popen(
            command,
            cwd=ROOT,
            env=dict(env),
            stdin=subprocess.DEVNULL,
            stdout=output,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        yield process
    finally:
        stop_group(process)
