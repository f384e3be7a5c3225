"""The quick form of the chaos runs (``tests/chaos.py``): faults under load, two workers.

Each run is a few seconds of readers and writers on ``uvicorn --workers 2`` over a
real redis-server, with one real fault in the middle.  What must hold whatever
the fault: no 5xx, and no read answered with a page older than a write already
acknowledged, for the faults listed in ``FRESH_AFTER_WRITES``.
"""

from __future__ import annotations

import asyncio

import pytest

from tests.chaos import Figures, run

#: Faults after which no read may return a page older than an acknowledged write.
FRESH_AFTER_WRITES = [
    "none",
    "sigkill",
    "sigstop",
    "client-kill",
    "debug-sleep",
    "oom",
    "garbage",
    "loop-stall",
]


def quick(fault: str) -> Figures:
    return asyncio.run(run(fault, seconds=4.0, fault_at=1.0, duration=1.5, readers=8))


@pytest.mark.parametrize("fault", FRESH_AFTER_WRITES)
def test_no_5xx_and_no_stale_read_after_an_acknowledged_write(fault: str) -> None:
    figures = quick(fault)
    assert figures.requests > 200, figures  # the load really ran
    assert figures.errors == 0, figures
    assert figures.stale_reachable == figures.stale_during == 0, figures
    assert figures.hits > 0, figures  # the cache really served
