"""The benchmark's report: the machine, a markdown table per group, and a PNG chart.

The "times floor" column divides a contender's req/s by that of ``floor`` (FastAPI with a
pure-ASGI middleware answering constant bytes) at the same point: how close a cache inside
FastAPI comes to the cheapest answer FastAPI can give.  Empty where the floor was not measured.
"""

from __future__ import annotations

import importlib.metadata
import os
import platform
import shutil
import subprocess
import time
from pathlib import Path

from benchmarks import load as loads
from benchmarks.contenders import CONTENDERS, TARGET
from benchmarks.harness import Group, Results, Row

#: Distributions whose versions the report names.
PACKAGES = (
    "asgi-cache",
    "starlette",
    "fastapi",
    "uvicorn",
    "httptools",
    "uvloop",
    "granian",
    "fastapi-cache2",
    "cashews",
    "hishel",
    "redis",
)


def cpu_model() -> str:
    with_name = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as file:
            for line in file:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return with_name


def redis_server_version() -> str | None:
    binary = shutil.which("redis-server")
    if binary is None:
        return None
    output = subprocess.run([binary, "--version"], capture_output=True, text=True, check=False)
    version = next((p for p in output.stdout.split() if p.startswith("v=")), "v=?")
    return version[2:]


def machine() -> list[str]:
    """Lines describing where the numbers come from."""
    versions = []
    for name in PACKAGES:
        try:
            versions.append(f"{name} {importlib.metadata.version(name)}")
        except importlib.metadata.PackageNotFoundError:
            versions.append(f"{name} (not installed)")
    load1, load5, _ = os.getloadavg()
    return [
        f"- CPU: {os.cpu_count()} cores, {cpu_model()}; load average {load1:.2f} / {load5:.2f}"
        " (1 / 5 min) at the end",
        f"- Python {platform.python_version()} on {platform.system()} {platform.release()}",
        f"- {', '.join(versions)}",
        f"- redis-server {redis_server_version() or '(not installed)'}",
        f"- load generator: {loadgen_description()}",
    ]


def loadgen_description(used: str | None = None) -> str:
    version = loads.wrk_version()
    if used == "python" or (used is None and version is None):
        return "the Python generator (benchmarks/load.py, asyncio, keep-alive)"
    return f"{version} (1 thread, keep-alive)"


def _groups(results: Results) -> list[tuple[Group, int, list[Row]]]:
    """Rows grouped by group and concurrency, in the order they were planned."""
    tables: dict[tuple[int, int], tuple[Group, int, list[Row]]] = {}
    for row in results.rows:
        key = (results.plan.groups.index(row.group), row.concurrency)
        tables.setdefault(key, (row.group, row.concurrency, []))[2].append(row)
    return [tables[key] for key in sorted(tables)]


def markdown(results: Results, label: str) -> str:
    plan = results.plan
    lines = [
        f"# End-to-end benchmark ({label})",
        "",
        f"`GET {TARGET}` over loopback HTTP, keep-alive; median of {plan.rounds} interleaved"
        f" rounds of {plan.seconds:g} s each (after a {plan.warmup:g} s warm-up), run"
        f" {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}.",
        "",
        *machine()[:-1],
        f"- load generator: {loadgen_description(results.loadgen)}",
        "",
    ]
    for group, concurrency, rows in _groups(results):
        floor = next((r.rps for r in rows if r.contender == "floor"), None)
        lines += [
            f"## {group.label}, {concurrency} connections",
            "",
            "| contender | what | req/s | × floor | p50 ms | p99 ms | errors |",  # noqa: RUF001
            "|---|---|---:|---:|---:|---:|---:|",
        ]
        for row in rows:
            ratio = f"{row.rps / floor:.2f}" if floor else ""
            lines.append(
                f"| {row.contender} | {CONTENDERS[row.contender].what} | {row.rps:,.0f} |"
                f" {ratio} | {row.p50_ms:.2f} | {row.p99_ms:.2f} | {row.errors} |"
            )
        lines.append("")
    if results.skipped:
        lines += ["## Skipped", ""]
        lines += [f"- {name}: {why}" for name, why in sorted(results.skipped.items())]
        lines.append("")
    return "\n".join(lines)


def chart(results: Results, path: Path, label: str) -> bool:
    """Bars of req/s per contender, one panel per 1 KiB group at its main concurrency.

    Returns ``False`` (and draws nothing) when matplotlib is not installed.
    """
    panels = [
        (f"{group.label}, {concurrency} connections", [(r.contender, r.rps) for r in rows])
        for group, concurrency, rows in _groups(results)
        if group.size == 1024 and concurrency == min(max(v) for v in group.levels.values())
    ]
    return draw(panels, path, label) if panels else False


def draw(panels: list[tuple[str, list[tuple[str, float]]]], path: Path, label: str) -> bool:
    """One horizontal bar panel per ``(title, [(contender, req/s), ...])``, asgi-cache's
    bars in orange; ``False`` when matplotlib is not installed."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return False
    height = 0.45 * sum(len(rows) for _, rows in panels) + 1.2 * len(panels) + 0.5
    figure, axes = plt.subplots(len(panels), 1, figsize=(9, height))
    for axis, (title, rows) in zip([axes] if len(panels) == 1 else axes, panels, strict=True):
        names = [name for name, _ in rows][::-1]
        values = [rps for _, rps in rows][::-1]
        colours = ["tab:orange" if n.startswith("asgi-cache") else "tab:blue" for n in names]
        axis.barh(names, values, color=colours)
        for y, value in enumerate(values):
            axis.text(value, y, f" {value:,.0f}", va="center", fontsize=8)
        axis.set_title(title, fontsize=10)
        axis.set_xlabel("requests per second (median of rounds)")
        axis.set_xlim(0, max(values) * 1.18)
    figure.suptitle(f"GET {TARGET}: req/s per contender ({label})")
    figure.tight_layout(rect=(0, 0, 1, 1 - 0.5 / height))  # room for the title above the panels
    figure.savefig(path, dpi=110)
    plt.close(figure)
    return True
