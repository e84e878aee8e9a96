"""How long a failed attempt waits before the step retries it (``max_step_retries``), for every
driver: exponential, with jitter so that a step's members do not retry in lockstep, bounded,
and never past the flow's deadline. The scheduler keeps waiting retries and dispatches each
when it is due (its loop wakes for them), so a cancel or the deadline ends the wait at once."""

from __future__ import annotations

import random
from collections.abc import Callable

FIRST = 0.2  # seconds: the first retry's longest wait
LONGEST = 10.0  # seconds: no retry waits longer

Backoff = Callable[[int], float]
"""``failures`` (1 for the first retry) -> seconds to wait."""


def retry_delay(failures: int, *, chance: Callable[[], float] = random.random) -> float:
    """A random wait between half and all of ``min(FIRST * 2 ** (failures - 1), LONGEST)``."""
    ceiling: float = min(FIRST * 2.0 ** min(max(failures, 1) - 1, 32), LONGEST)
    return ceiling * (0.5 + chance() / 2)


def bounded(delay: float, remaining_ms: float | None) -> float:
    """``delay`` cut to what is left of the flow's budget (None: no deadline)."""
    if remaining_ms is None:
        return max(delay, 0.0)
    return max(min(delay, remaining_ms / 1000), 0.0)
