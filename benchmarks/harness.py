"""The end-to-end benchmark: contenders served by real servers, loaded over loopback HTTP.

A :class:`Plan` is a list of :class:`Group` s: one server kind, a worker count and a body size,
and for each contender the concurrency levels to measure.  For each group the harness starts
one server process per contender (all kept running while the group is measured, each on a free
port), checks every one (status, JSON body, and the library's hit marker where it has one),
then measures them in interleaved rounds: round 1 of every contender, then round 2, ..., with
the order rotated each round, so load that drifts on a shared machine hits every contender
alike.  The report gives the median over rounds.

Redis contenders talk to one private ``redis-server`` the harness starts on a free port (never
6379) and flushes between groups.  Server processes run in process groups of their own and are
stopped however the run ends.
"""

from __future__ import annotations

import contextlib
import os
import statistics
import subprocess
import sys
import tempfile
import urllib.error
import urllib.request
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from benchmarks import load as loads
from benchmarks.contenders import CONTENDERS, TARGET, items_for, unavailable
from tests.servers import ROOT, free_port, stop_group, wait_until_accepting

#: How long a server may take to accept connections (a FastAPI import on a busy machine).
STARTUP_TIMEOUT = 30.0


@dataclass(frozen=True)
class Server:
    """A kind of ASGI server and how to start it."""

    name: str  # as reported: "uvicorn (httptools)"
    program: str  # "uvicorn" or "granian"
    http: str = "httptools"  # uvicorn's --http

    def command(self, port: int, workers: int) -> list[str]:
        app = "benchmarks.contenders:app"
        if self.program == "uvicorn":
            return [
                *(sys.executable, "-m", "uvicorn", app),
                *("--host", "127.0.0.1", "--port", str(port), "--workers", str(workers)),
                *("--http", self.http, "--lifespan", "on", "--no-access-log"),
                *("--log-level", "warning"),
            ]
        if self.program == "granian":
            return [
                str(Path(sys.executable).with_name("granian")),
                *("--interface", "asgi", "--host", "127.0.0.1", "--port", str(port)),
                *("--workers", str(workers), "--http", "1", "--no-ws"),
                *("--log-level", "warning", app),
            ]
        raise ValueError(f"unknown server program {self.program!r}")


UVICORN = Server("uvicorn (httptools)", "uvicorn")
GRANIAN = Server("granian", "granian")


@dataclass(frozen=True)
class Group:
    """Contenders measured together: one server kind, workers and body size."""

    server: Server
    workers: int
    size: int
    levels: dict[str, tuple[int, ...]]  # contender -> concurrency levels

    @property
    def label(self) -> str:
        worker = "worker" if self.workers == 1 else "workers"
        return f"{self.server.name}, {self.workers} {worker}, {format_size(self.size)} body"


@dataclass(frozen=True)
class Plan:
    groups: list[Group]
    rounds: int
    seconds: float  # per measurement
    warmup: float  # before a contender's first measurement at a level
    requests: int | None = None  # stop each measurement after this many (Python generator only)
    loadgen: str = "auto"  # "auto", "wrk" or "python"


@dataclass
class Row:
    """One measured point: a contender in a group at one concurrency."""

    group: Group
    contender: str
    concurrency: int
    loads: list[loads.Load] = field(default_factory=list)

    @property
    def rps(self) -> float:
        return statistics.median(load.rps for load in self.loads)

    @property
    def p50_ms(self) -> float:
        return statistics.median(load.p50_ms for load in self.loads)

    @property
    def p99_ms(self) -> float:
        return statistics.median(load.p99_ms for load in self.loads)

    @property
    def errors(self) -> int:
        return sum(load.errors for load in self.loads)

    @property
    def requests(self) -> int:
        return sum(load.requests for load in self.loads)


@dataclass
class Results:
    plan: Plan
    loadgen: str  # what actually generated the load
    rows: list[Row] = field(default_factory=list)
    skipped: dict[str, str] = field(default_factory=dict)  # contender -> why


def format_size(size: int) -> str:
    for unit, factor in (("MiB", 2**20), ("KiB", 2**10)):
        if size >= factor and size % factor == 0:
            return f"{size // factor} {unit}"
    return f"{size} B"


# --- Redis and servers --------------------------------------------------------------------------


@contextlib.contextmanager
def private_redis(needed: bool) -> Iterator[tuple[str | None, str | None]]:
    """A throwaway ``redis-server`` on a free port: (url, None), or (None, why not)."""
    if not needed:
        yield None, None
        return
    from tests.redis_servers import RedisServer, RedisUnavailable

    try:
        server = RedisServer()
    except RedisUnavailable as exc:
        yield None, str(exc).splitlines()[0]
        return
    with server:
        yield server.url, None


def flush(redis_url: str) -> None:
    from tests.redis_servers import resp_command

    host_port = redis_url.split("//", 1)[1].split("/", 1)[0]
    host, port = host_port.rsplit(":", 1)
    resp_command(host, int(port), "FLUSHALL")


@dataclass
class Running:
    contender: str
    port: int
    process: subprocess.Popen[bytes]
    log: Path


def start(group: Group, contender: str, redis_url: str | None, directory: Path) -> Running:
    """Start ``contender`` under the group's server and wait until it accepts connections."""
    port = free_port()
    env = dict(os.environ)
    env.update(BENCH_CONTENDER=contender, BENCH_BODY_SIZE=str(group.size))
    if redis_url:
        env["BENCH_REDIS_URL"] = redis_url
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    log = directory / f"{contender}-{port}.log"
    with log.open("wb") as output:
        process = subprocess.Popen(
            group.server.command(port, group.workers),
            cwd=ROOT,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=output,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    running = Running(contender, port, process, log)
    try:
        wait_until_accepting(process, port, log, STARTUP_TIMEOUT)
    except BaseException:
        stop_group(process)
        raise
    return running


def check(running: Running, size: int) -> None:
    """One contender answers the target with the expected JSON and, if it can say so, a hit.

    With several workers each one has its own memory cache, so a few requests are allowed
    before the hit marker shows.
    """
    import json

    expected = items_for(size)
    hit_header = CONTENDERS[running.contender].hit_header
    url = f"http://127.0.0.1:{running.port}{TARGET}"
    seen: list[str] = []
    for _ in range(8):
        try:
            with urllib.request.urlopen(url, timeout=30) as response:
                status, headers, body = response.status, response.headers, response.read()
        except urllib.error.HTTPError as exc:
            raise RuntimeError(f"{running.contender}: GET {TARGET} answered {exc.code}") from exc
        if status != 200 or json.loads(body) != expected:
            raise RuntimeError(
                f"{running.contender}: GET {TARGET} answered {status} with an unexpected body"
            )
        if hit_header is None:
            return
        value = headers.get(hit_header[0])
        if value is not None and hit_header[1] in value:
            return
        seen.append(str(value))
    raise RuntimeError(
        f"{running.contender}: no {hit_header[0]!r} containing {hit_header[1]!r} "
        f"after {len(seen)} requests (saw {seen})"
    )


def measure(plan: Plan, loadgen: str, port: int, concurrency: int, seconds: float) -> loads.Load:
    if loadgen == "wrk":
        return loads.run_wrk(
            f"http://127.0.0.1:{port}{TARGET}", concurrency=concurrency, seconds=seconds
        )
    return loads.run_python(
        "127.0.0.1",
        port,
        TARGET,
        concurrency=concurrency,
        seconds=seconds,
        requests=plan.requests,
    )


def choose_loadgen(requested: str) -> str:
    if requested == "python":
        return "python"
    if loads.wrk_path() is not None:
        return "wrk"
    if requested == "wrk":
        raise SystemExit("--loadgen wrk: wrk is not installed (Debian: apt-get install wrk)")
    return "python"


def say(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def run(plan: Plan) -> Results:
    """Measure every group of ``plan``; contenders that cannot run are skipped with a reason."""
    results = Results(plan, choose_loadgen(plan.loadgen))
    names = {name for group in plan.groups for name in group.levels}
    for name in sorted(names):
        reason = unavailable(name)
        if reason:
            results.skipped[name] = reason
    needs_redis = any(CONTENDERS[n].redis for n in names if n not in results.skipped)
    with (
        private_redis(needs_redis) as (redis_url, redis_missing),
        tempfile.TemporaryDirectory(prefix="asgi-cache-bench-") as logs,
    ):
        if redis_missing:
            for name in names:
                if CONTENDERS[name].redis and name not in results.skipped:
                    results.skipped[name] = f"no Redis: {redis_missing}"
        for group in plan.groups:
            run_group(plan, group, results, redis_url, Path(logs))
    return results


def run_group(
    plan: Plan, group: Group, results: Results, redis_url: str | None, logs: Path
) -> None:
    say(f"== {group.label}")
    if redis_url:
        flush(redis_url)
    servers: list[Running] = []
    try:
        for name in group.levels:
            if name in results.skipped:
                continue
            try:
                running = start(group, name, redis_url, logs)
                servers.append(running)
                check(running, group.size)
            except Exception as exc:  # reported, and the other contenders go on
                lines = [line for line in str(exc).splitlines() if line.strip()] or [repr(exc)]
                detail = lines[0] if len(lines) == 1 else f"{lines[0]} ... {lines[-1].strip()}"
                results.skipped[name] = f"failed under {group.label}: {detail}"
                say(f"   {name}: skipped ({results.skipped[name]})")
                if servers and servers[-1].contender == name:
                    stop_group(servers.pop().process)
        rows = {
            (s.contender, c): Row(group, s.contender, c)
            for s in servers
            for c in group.levels[s.contender]
        }
        results.rows.extend(rows.values())
        for round_number in range(plan.rounds):
            shift = round_number % max(1, len(servers))
            for running in servers[shift:] + servers[:shift]:
                for concurrency in group.levels[running.contender]:
                    if round_number == 0 and plan.warmup > 0:
                        measure(plan, results.loadgen, running.port, concurrency, plan.warmup)
                    result = measure(plan, results.loadgen, running.port, concurrency, plan.seconds)
                    rows[running.contender, concurrency].loads.append(result)
                    say(
                        f"   round {round_number + 1} {running.contender:<22} c={concurrency:<4}"
                        f" {result.rps:>9.0f} req/s  p50 {result.p50_ms:.2f} ms"
                        f"  p99 {result.p99_ms:.2f} ms  errors {result.errors}"
                    )
    finally:
        for running in servers:
            stop_group(running.process)


# --- the plans ----------------------------------------------------------------------------------

#: Measured at every point of the full plan's sweeps (concurrency, body size).
SWEPT = (
    "bare",
    "floor",
    "fastapi",
    "fastapi-cache2-memory",
    "cashews-memory",
    "asgi-cache-memory",
    "asgi-cache-redis",
)
CONCURRENCY = (1, 4, 16, 64, 256)
SIZES = (100, 1024, 10 * 1024, 100 * 1024, 2**20)
MAIN_CONCURRENCY = 64
QUICK_CONCURRENCY = 32


def quick_plan(contenders: Sequence[str], loadgen: str) -> Plan:
    """One point: uvicorn, one worker, a 1 KiB body, 32 connections; every contender."""
    group = Group(UVICORN, 1, 1024, {name: (QUICK_CONCURRENCY,) for name in contenders})
    return Plan([group], rounds=3, seconds=2, warmup=1, loadgen=loadgen)


def full_plan(contenders: Sequence[str], loadgen: str) -> Plan:
    """Every contender on uvicorn and granian with 1 and 2 workers (1 KiB, 64 connections);
    on uvicorn with one worker, the :data:`SWEPT` contenders at every concurrency level and
    every body size too."""
    swept = [name for name in contenders if name in SWEPT]
    groups = []
    for server in (UVICORN, GRANIAN):
        for workers in (1, 2):
            levels = {name: (MAIN_CONCURRENCY,) for name in contenders}
            if server is UVICORN and workers == 1:
                levels.update({name: CONCURRENCY for name in swept})
            groups.append(Group(server, workers, 1024, levels))
    for size in SIZES:
        if size != 1024:
            groups.append(Group(UVICORN, 1, size, {name: (MAIN_CONCURRENCY,) for name in swept}))
    return Plan(groups, rounds=3, seconds=2, warmup=1, loadgen=loadgen)
