"""Which predictions may run on the event loop instead of a worker thread.

Worker threads keep the loop free for ``/ping``, but handing a request to a thread and back costs
two thread wake-ups: about 0.2 ms on a small VM, more than a linear scikit-learn model takes for a
row. So every model starts in the threads, and its first small requests are timed there. If their
median is within the budget (``TANDEM_INLINE_PREDICT_MS``), later small requests run on the loop.
Models with user code never do (it may sleep or wait on I/O), and large bodies never do (their
cost grows with their size). When runs on the loop turn slow, the model goes back to the threads
for good, so a slow model holds the loop for a few milliseconds at most, once.
"""

from __future__ import annotations

import logging
import statistics
import time
from collections.abc import Callable
from typing import Any, TypeVar

log = logging.getLogger(__name__)
T = TypeVar("T")

#: Only bodies up to this size run on the loop, and only they are timed as trials.
SMALL_BODY = 16 * 1024
#: Small requests timed in a worker thread before a model may run on the loop.
TRIALS = 16
#: Back to the threads when the moving average passes this many budgets ...
AVERAGE_FACTOR = 2.0
#: ... or one run passes this many.
RUN_FACTOR = 20.0
#: Weight of the newest run in the moving average.
SMOOTHING = 0.1


class FastPath:
    """One loaded model's record: on trial, on the loop, or in the threads for good."""

    __slots__ = ("_average", "_budget", "_trials", "inline", "name")

    def __init__(self, name: str, budget_s: float, eligible: bool) -> None:
        self.name = name
        self._budget = budget_s
        self._trials: list[float] | None = [] if eligible and budget_s > 0 else None
        self._average = 0.0
        self.inline = False

    def runs_inline(self, size: int) -> bool:
        return self.inline and size <= SMALL_BODY

    def on_trial(self, size: int) -> bool:
        return self._trials is not None and size <= SMALL_BODY

    def timed(self, seconds: float) -> None:
        """Record a trial: one small request's time in a worker thread."""
        trials = self._trials
        if trials is None:
            return
        trials.append(seconds)
        if len(trials) < TRIALS:
            return
        self._trials = None
        median = statistics.median(trials)
        self.inline = median <= self._budget
        self._average = median
        log.info(
            "model %s: small requests take %.3f ms (median of %d); they %s (budget %.3f ms)",
            self.name,
            median * 1e3,
            TRIALS,
            "run on the event loop" if self.inline else "stay in worker threads",
            self._budget * 1e3,
        )

    def ran_inline(self, seconds: float) -> None:
        """Record a run on the loop; too slow, and the model goes back to the threads."""
        self._average += SMOOTHING * (seconds - self._average)
        if seconds > RUN_FACTOR * self._budget or self._average > AVERAGE_FACTOR * self._budget:
            self.inline = False
            log.warning(
                "model %s: a prediction on the event loop took %.3f ms (average %.3f ms, budget "
                "%.3f ms); its predictions run in worker threads from now on",
                self.name,
                seconds * 1e3,
                self._average * 1e3,
                self._budget * 1e3,
            )


def timed(func: Callable[..., T], *args: Any) -> tuple[T, float]:
    """``func(*args)`` and the seconds it took (run in a worker thread for a trial)."""
    started = time.perf_counter()
    result = func(*args)
    return result, time.perf_counter() - started
