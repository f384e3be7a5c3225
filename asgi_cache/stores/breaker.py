"""A consecutive-failure circuit breaker, so a dead store adds no latency.

After ``threshold`` failures in a row the breaker opens: callers skip the store
for ``cooldown`` seconds.  Then one trial call is let through; its success
closes the breaker, its failure opens it again.
"""

from __future__ import annotations

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
        self.failures = 0
        self.opened_at = None
        self.trial = False
        return was_open

    def failed(self) -> str | None:
        """Record a failure; return ``"opened"``, ``"reopened"`` or ``None``."""
        self.failures += 1
        if self.opened_at is not None:
            self.opened_at = self.clock()
            self.trial = False
            return "reopened"
        if self.failures >= self.threshold:
            self.opened_at = self.clock()
            return "opened"
        return None

    def abandoned(self) -> None:
        """The call was cancelled: neither a success nor a failure, free the trial slot."""
        self.trial = False
