"""Load generators: ``wrk`` when it is installed, else a small Python one.

Both keep ``concurrency`` keep-alive connections busy with the same GET for a fixed time and
report requests per second and latency percentiles, as a :class:`Load`.  The Python generator
can also stop after a number of requests, which the test suite uses to exercise the harness
cheaply; it is slower than ``wrk`` (one Python process parsing every response), so a fast
server may be measured below its real throughput with it: the report names the generator.
"""

from __future__ import annotations

import asyncio
import re
import shutil
import subprocess
import time
from dataclasses import dataclass


@dataclass(frozen=True)
class Load:
    """What one load run measured."""

    requests: int
    seconds: float
    errors: int  # connection errors and non-2xx answers
    p50_ms: float
    p99_ms: float

    @property
    def rps(self) -> float:
        return self.requests / self.seconds if self.seconds > 0 else 0.0


def wrk_path() -> str | None:
    """The ``wrk`` binary, or ``None`` (Debian: ``apt-get install wrk``)."""
    return shutil.which("wrk")


def wrk_version() -> str | None:
    path = wrk_path()
    if path is None:
        return None
    result = subprocess.run([path, "--version"], capture_output=True, text=True, check=False)
    first = (result.stdout or result.stderr).splitlines()
    return first[0].split(" Copyright")[0] if first else "wrk"


_UNITS = {"us": 1e-3, "ms": 1.0, "s": 1e3, "m": 60e3}


def _milliseconds(text: str) -> float:
    match = re.fullmatch(r"([\d.]+)(us|ms|s|m)", text)
    if match is None:
        raise ValueError(f"unreadable wrk latency {text!r}")
    return float(match[1]) * _UNITS[match[2]]


def parse_wrk(output: str, seconds: float) -> Load:
    """Read requests, errors and the 50th / 99th latency percentiles from ``wrk --latency``."""
    total = re.search(r"(\d+) requests in ([\d.]+)(\w+)", output)
    p50 = re.search(r"^\s*50%\s+(\S+)", output, re.MULTILINE)
    p99 = re.search(r"^\s*99%\s+(\S+)", output, re.MULTILINE)
    if total is None or p50 is None or p99 is None:
        raise RuntimeError(f"unreadable wrk output:\n{output}")
    elapsed = _milliseconds(total[2] + total[3]) / 1e3
    errors = sum(int(n) for n in re.findall(r"Non-2xx or 3xx responses: (\d+)", output))
    socket_errors = re.search(
        r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", output
    )
    if socket_errors:
        errors += sum(int(n) for n in socket_errors.groups())
    return Load(
        int(total[1]), elapsed or seconds, errors, _milliseconds(p50[1]), _milliseconds(p99[1])
    )


def run_wrk(url: str, *, concurrency: int, seconds: float) -> Load:
    """One ``wrk`` run: one thread (the other core serves), ``concurrency`` connections."""
    path = wrk_path()
    if path is None:
        raise RuntimeError("wrk is not installed")
    command = [
        path,
        "-t1",
        f"-c{concurrency}",
        f"-d{max(1, round(seconds))}s",
        "--timeout",
        "10s",
        "--latency",
        url,
    ]
    result = subprocess.run(command, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise RuntimeError(f"{' '.join(command)} failed:\n{result.stdout}{result.stderr}")
    return parse_wrk(result.stdout, seconds)


# --- the Python load generator ------------------------------------------------------------------


class _Counters:
    def __init__(self, limit: int | None) -> None:
        self.limit = limit
        self.started = 0
        self.errors = 0
        self.latencies: list[int] = []  # nanoseconds, one per answered request

    def take(self) -> bool:
        """Claim one more request, unless the limit is reached."""
        if self.limit is not None and self.started >= self.limit:
            return False
        self.started += 1
        return True


async def _read_response(reader: asyncio.StreamReader) -> int:
    """Read one response (``Content-Length`` or chunked body) and return its status."""
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.split(b"\r\n")
    status = int(lines[0].split(b" ", 2)[1])
    length: int | None = None
    chunked = False
    for line in lines[1:]:
        name, _, value = line.partition(b":")
        name = name.strip().lower()
        if name == b"content-length":
            length = int(value)
        elif name == b"transfer-encoding" and b"chunked" in value.lower():
            chunked = True
    if chunked:
        while True:
            size = int((await reader.readuntil(b"\r\n")).split(b";")[0], 16)
            await reader.readexactly(size + 2)
            if size == 0:
                break
    elif length:
        await reader.readexactly(length)
    return status


async def _connection(
    host: str, port: int, request: bytes, counters: _Counters, deadline: float
) -> None:
    reader, writer = await asyncio.open_connection(host, port)
    try:
        while time.monotonic() < deadline and counters.take():
            start = time.perf_counter_ns()
            writer.write(request)
            status = await _read_response(reader)
            counters.latencies.append(time.perf_counter_ns() - start)
            if not 200 <= status < 300:
                counters.errors += 1
    except (OSError, asyncio.IncompleteReadError, ValueError):
        counters.errors += 1
    finally:
        writer.close()


def _percentile(ordered: list[int], fraction: float) -> float:
    if not ordered:
        return 0.0
    return ordered[min(len(ordered) - 1, int(len(ordered) * fraction))] / 1e6


async def python_load(
    host: str,
    port: int,
    target: str,
    *,
    concurrency: int,
    seconds: float,
    requests: int | None = None,
) -> Load:
    """Keep ``concurrency`` keep-alive connections sending GET ``target`` for ``seconds``
    (or until ``requests`` were sent, whichever comes first)."""
    request = (
        f"GET {target} HTTP/1.1\r\nHost: {host}:{port}\r\nUser-Agent: asgi-cache-bench\r\n"
        "Accept: */*\r\n\r\n"
    ).encode()
    counters = _Counters(requests)
    start = time.monotonic()
    deadline = start + seconds
    await asyncio.gather(
        *(_connection(host, port, request, counters, deadline) for _ in range(concurrency))
    )
    elapsed = time.monotonic() - start
    ordered = sorted(counters.latencies)
    return Load(
        len(ordered),
        elapsed,
        counters.errors,
        _percentile(ordered, 0.5),
        _percentile(ordered, 0.99),
    )


def run_python(
    host: str,
    port: int,
    target: str,
    *,
    concurrency: int,
    seconds: float,
    requests: int | None = None,
) -> Load:
    """:func:`python_load` in an event loop of its own (uvloop when installed)."""
    try:
        import uvloop
    except ImportError:
        return asyncio.run(
            python_load(
                host, port, target, concurrency=concurrency, seconds=seconds, requests=requests
            )
        )
    return uvloop.run(
        python_load(host, port, target, concurrency=concurrency, seconds=seconds, requests=requests)
    )
