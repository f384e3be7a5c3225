"""Servers the suite runs as processes of its own: free loopback ports and uvicorn.

Plain Python (no pytest), like ``tests/redis_servers.py``, which takes its ports from here.
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
from pathlib import Path

__all__ = ["ROOT", "ServerFailed", "free_port", "running_uvicorn", "stop_group", "uvicorn_command"]

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


@contextmanager
def running_uvicorn(
    app: str,
    *options: str,
    env: Mapping[str, str],
    log: Path,
    startup_timeout: float,
    port: int | None = None,
) -> Iterator[str]:
    """Run ``uvicorn app`` on ``port`` (a free one by default) and yield its base URL
    once it accepts connections.

    The server runs in a process group of its own, so its workers are stopped with it when
    the block ends, however it ends; its output goes to ``log``.
    """
    port = port or free_port()
    with log.open("wb") as output:
        process = subprocess.Popen(
            uvicorn_command(app, port, *options),
            cwd=ROOT,
            env=dict(env),
            stdin=subprocess.DEVNULL,
            stdout=output,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        wait_until_accepting(process, port, log, startup_timeout)
        yield f"http://127.0.0.1:{port}"
    finally:
        stop_group(process)
