"""A consecutive-failure circuit breaker, so a dead store adds no latency.

After ``threshold`` failures in a row the breaker opens: callers skip the store
for ``cooldown`` seconds.  Then one trial call is let through; its success
closes the breaker, its failure opens it again.

A failed call counts only if no call succeeded while it was in flight: under a
burst, a busy event loop makes some calls miss their deadline while others go
through, and that is this process being slow, not the store being down.
"""

from __future__ import annotations

import math
from collections.abc import Callable

__all__ = ["Breaker"]


class Breaker:
    """Consecutive-failure circuit breaker: closed, open for ``cooldown``, then one trial."""

    def __init__(self, threshold: int, cooldown: float, clock: Callable[[], float]) -> None:
        self.threshold = threshold
        self.cooldown = cooldown
        self.clock = clock
        self.failures = 0
        self.opened_at: float | None = None
        self.trial = False
        self.last_success = -math.inf

    def allow(self) -> bool:
        if self.opened_at is None:
            return True
        if self.trial or self.clock() - self.opened_at < self.cooldown:
            return False
        self.trial = True
        return True

    def succeeded(self) -> bool:
        """Record a success; return whether this closed an open breaker."""
        was_open = self.opened_at is not None
        self.last_success = self.clock()
        self.failures = 0
        self.opened_at = None
        self.trial = False
        return was_open

    def outage(self, started_at: float) -> bool:
        """Whether a call made at ``started_at`` that just failed looks like an
        outage rather than this process being slow: the breaker is open, or no
        call succeeded while it was in flight."""
        return self.opened_at is not None or self.last_success <= started_at

    def failed(self, started_at: float) -> str | None:
        """Record a failure of a call made at ``started_at``; return
        ``"opened"``, ``"reopened"`` or ``None``."""
        if not self.outage(started_at):
            return None  # the store answered others meanwhile: not an outage
        self.failures += 1
        if self.opened_at is not None:
            self.opened_at = self.clock()
            self.trial = False
            return "reopened"
        if self.failures >= self.threshold:
            self.opened_at = self.clock()
            return "opened"
        return None

    def trip(self) -> None:
        """Open at once, as after ``threshold`` failures: the store is known to be down."""
        self.failures = max(self.failures, self.threshold)
        self.opened_at = self.clock()
        self.trial = False

    def abandoned(self) -> None:
        """The call was cancelled: neither a success nor a failure, free the trial slot."""
        self.trial = False
