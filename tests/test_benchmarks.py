"""The end-to-end benchmark's harness, run for real on its smallest piece.

One contender under a real uvicorn, a few hundred requests from the Python load generator:
enough to keep the harness, the contender's app and the report from rotting.  Nothing here
asserts a speed.
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from benchmarks import harness, report
from benchmarks.contenders import items_for, render, unavailable
from benchmarks.harness import Group, Plan, Results, Server
from benchmarks.load import parse_wrk
from tests.servers import ROOT

#: uvicorn picks httptools where installed (the benchmark's venv), h11 in the test environment.
UVICORN = Server("uvicorn", "uvicorn", http="auto")
REQUESTS = 300


@pytest.fixture(scope="module")
def results() -> Results:
    group = Group(UVICORN, 1, 1024, {"asgi-cache-memory": (4,)})
    plan = Plan([group], rounds=1, seconds=60, warmup=0, requests=REQUESTS, loadgen="python")
    return harness.run(plan)


def test_the_python_load_generator_gets_every_request_answered(results: Results) -> None:
    assert results.skipped == {}
    [row] = results.rows
    assert (row.contender, row.concurrency) == ("asgi-cache-memory", 4)
    assert row.requests == REQUESTS
    assert row.errors == 0


def test_the_report_has_a_row_for_the_measured_contender(results: Results) -> None:
    text = report.markdown(results, "test")
    assert "## uvicorn, 1 worker, 1 KiB body, 4 connections" in text
    [line] = [line for line in text.splitlines() if line.startswith("| asgi-cache-memory |")]
    assert line.endswith("| 0 |")  # no errors


@pytest.mark.parametrize("size", [100, 1024, 10 * 1024, 2**20])
def test_every_body_size_is_rendered_to_exactly_that_many_bytes(size: int) -> None:
    body = render(items_for(size))
    assert len(body) == size
    assert json.loads(body) == items_for(size)


def test_an_unknown_contender_is_reported_unavailable_by_name() -> None:
    assert unavailable("memcached") == (
        "unknown contender 'memcached'; known: " + ", ".join(harness.CONTENDERS)
    )


WRK_OUTPUT = """\
Running 2s test @ http://127.0.0.1:41234/items?b=2&a=1
  1 threads and 32 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency     1.05ms  301.22us   9.87ms   91.02%
    Req/Sec    30.41k     1.20k   31.90k    80.00%
  Latency Distribution
     50%    0.99ms
     75%    1.10ms
     90%    1.25ms
     99%    2.11ms
  60519 requests in 2.00s, 69.67MB read
  Non-2xx or 3xx responses: 3
  Socket errors: connect 0, read 1, write 0, timeout 2
Requests/sec:  30254.38
Transfer/sec:     34.83MB
"""


def test_wrk_output_gives_requests_errors_and_percentiles() -> None:
    load = parse_wrk(WRK_OUTPUT, 2)
    assert (load.requests, load.seconds, load.errors) == (60519, 2.0, 6)
    assert (load.p50_ms, load.p99_ms) == (0.99, 2.11)


def test_the_overheads_benchmark_runs_every_part_and_prints_each_ratio() -> None:
    """``benchmarks/overheads.py`` at its smallest: every comparison runs and is checked."""
    command = [sys.executable, "-m", "benchmarks.overheads", "--n", "20", "--rounds", "1"]
    command += ["--entries", "200", "--memory-entries", "50"]
    result = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    for title in ("Miss overhead", "Unmarked route", "Routes: static path", "A full memory store"):
        assert f"\n{title}" in result.stdout
    assert "200 other entries" in result.stdout
    assert "fit: " in result.stdout and " x body + " in result.stdout
