"""The end-to-end benchmark, in one command, from a fresh clone.

    python3 -m benchmarks.run --quick      # one point, every contender: under 2 minutes
    python3 -m benchmarks.run              # the full plan: about 15 minutes
    python3 -m benchmarks.run --help

Any Python 3.10+ starts it: this module needs only the standard library until it has built
``benchmarks/.venv`` (the project installed editable with its ``bench`` extra: the servers,
the other caches, matplotlib), so the project's own environment is never touched.  The venv is
reinstalled only when ``pyproject.toml`` changed; then the command runs again inside it.

The report (markdown) is printed and written to ``benchmarks/results/<label>.md``, the chart
to ``benchmarks/results/<label>.png``; the label is ``quick`` or ``full`` unless ``--label``
says otherwise.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
VENV = HERE / ".venv"
STAMP = VENV / "bench-installed-from"


def venv_python() -> Path:
    return VENV / ("Scripts/python.exe" if os.name == "nt" else "bin/python")


def in_venv() -> bool:
    return Path(sys.prefix).resolve() == VENV.resolve()


def ensure_venv() -> None:
    """Create ``benchmarks/.venv`` and install ``.[bench]`` into it, unless already done."""
    wanted = hashlib.sha256((ROOT / "pyproject.toml").read_bytes()).hexdigest()
    if venv_python().exists() and STAMP.exists() and STAMP.read_text().strip() == wanted:
        return
    if not venv_python().exists():
        print(f"creating {VENV}", file=sys.stderr, flush=True)
        if subprocess.run([sys.executable, "-m", "venv", str(VENV)], check=False).returncode:
            raise SystemExit(f"could not create {VENV} (Debian: apt-get install python3-venv)")
    print(f"installing .[bench] into {VENV}", file=sys.stderr, flush=True)
    install = [str(venv_python()), "-m", "pip", "install", "-q", "-e", f"{ROOT}[bench]"]
    if subprocess.run(install, cwd=ROOT, check=False).returncode != 0:
        raise SystemExit(
            f"could not install the benchmark's packages: {' '.join(install)} failed "
            f"(see pip's output above); {VENV} is kept, the next run tries again"
        )
    STAMP.write_text(wanted + "\n")


def parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.run",
        description="End-to-end HTTP benchmark of asgi-cache and its peers (see "
        "benchmarks/README.md).",
    )
    parser.add_argument(
        "--quick", action="store_true", help="one point (uvicorn, 1 worker, 1 KiB, c=32)"
    )
    parser.add_argument(
        "--contenders",
        help="comma-separated names (default: all; python -m benchmarks.run --list)",
    )
    parser.add_argument("--list", action="store_true", help="list the contenders and exit")
    parser.add_argument(
        "--loadgen",
        choices=("auto", "wrk", "python"),
        default="auto",
        help="auto: wrk when installed, else the Python generator",
    )
    parser.add_argument("--rounds", type=int, help="rounds per point (default 3)")
    parser.add_argument("--seconds", type=float, help="seconds per measurement (default 2)")
    parser.add_argument("--label", help="names the result files (default: quick or full)")
    parser.add_argument(
        "--out", type=Path, default=HERE / "results", help="directory of the result files"
    )
    parser.add_argument(
        "--no-venv",
        action="store_true",
        help="run in the current environment instead of benchmarks/.venv",
    )
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    options = parse(argv)
    if not options.no_venv and not in_venv():
        ensure_venv()
        command = [str(venv_python()), "-m", "benchmarks.run", *argv]
        return subprocess.run(command, cwd=ROOT, check=False).returncode

    import dataclasses

    from benchmarks import harness, report
    from benchmarks.contenders import CONTENDERS

    if options.list:
        for contender in CONTENDERS.values():
            print(f"{contender.name:<24} {contender.what}")
        return 0
    names = list(CONTENDERS)
    if options.contenders:
        names = [name.strip() for name in options.contenders.split(",") if name.strip()]
        unknown = [name for name in names if name not in CONTENDERS]
        if unknown:
            raise SystemExit(
                f"--contenders: unknown {', '.join(unknown)}; known: {', '.join(CONTENDERS)}"
            )
    plan = (harness.quick_plan if options.quick else harness.full_plan)(names, options.loadgen)
    if options.rounds is not None:
        if options.rounds < 1:
            raise SystemExit("--rounds must be at least 1")
        plan = dataclasses.replace(plan, rounds=options.rounds)
    if options.seconds is not None:
        if options.seconds < 1:
            raise SystemExit("--seconds must be at least 1 (wrk counts whole seconds)")
        plan = dataclasses.replace(plan, seconds=options.seconds)
    label = options.label or ("quick" if options.quick else "full")
    results = harness.run(plan)
    text = report.markdown(results, label)
    options.out.mkdir(parents=True, exist_ok=True)
    (options.out / f"{label}.md").write_text(text + "\n", encoding="utf-8")
    print(text)
    png = options.out / f"{label}.png"
    if report.chart(results, png, label):
        print(f"chart: {png}", file=sys.stderr)
    else:
        print("no chart: matplotlib is not installed (pip install -e '.[bench]')", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
