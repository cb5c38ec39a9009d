"""What a model plugs into the training loop (``face_aging.engine.loop``) besides its step.

A :class:`Hook` sees each step at fixed points, in this order (every method optional)::

    before_step(loop, index)            # before step number index + 1: learning rate, phases
    <the step; the non-finite policy; step += 1; the input position moves on>
    after_update(loop, current, out, finite)   # counters (epoch), running means
    stop_reason(loop, step, starting)   # a reason to end here (also asked before the first step)
    <the progress line and TensorBoard scalars, on schedule and at the end>
    after_step(loop, current, reason)   # samples, evaluation; returns the (new) stop reason
    before_save(loop, current, reason)  # state to store before a checkpoint is written
    <the checkpoint, on schedule, at the end, on a stop signal>

The plan (``face_aging.engine.loop.TrainPlan``) is itself the first hook. General hooks:
:class:`LearningRateHook`, :class:`SamplesHook`, :class:`TimeBudgetHook`.
"""
from __future__ import annotations

import time
from typing import Callable, Optional


class Hook:
    """Does nothing at every point; subclasses override what they need."""

    def before_step(self, loop, index: int) -> None:
        """Before step number ``index + 1``: set learning rates, switch phases."""

    def after_update(self, loop, current: int, out, finite: bool) -> None:
        """After step ``current`` was applied (or undone: ``finite`` False): counters, means."""

    def stop_reason(self, loop, step: int, starting: bool) -> Optional[str]:
        return None

    def after_step(self, loop, current: int, reason: Optional[str]) -> Optional[str]:
        return reason

    def before_save(self, loop, current: int, reason: Optional[str]) -> None:
        """Before a checkpoint of step ``current`` is written: store state that goes in it."""


class LearningRateHook(Hook):
    """Sets the learning rate of each step: ``schedule(index)`` (0-based step index), passed
    to ``apply(lr)`` when it changes; ``apply`` returns the rate as shown (e.g. as the
    optimizer stores it). :attr:`shown` is the current one (None before the first step)."""

    def __init__(self, schedule: Callable[[int], float], apply: Callable[[float], float]):
        self.schedule, self.apply = schedule, apply
        self.lr: Optional[float] = None
        self.shown: Optional[float] = None

    def before_step(self, loop, index: int) -> None:
        lr = self.schedule(index)
        if lr != self.lr:
            self.shown = self.apply(lr)
            self.lr = lr


class SamplesHook(Hook):
    """``write(step)`` every ``interval`` steps and after the last one (only where
    ``enabled``: e.g. the chief of several workers)."""

    def __init__(self, write: Callable[[int], object], interval: int, enabled: bool = True):
        self.write, self.interval, self.enabled = write, interval, enabled

    def after_step(self, loop, current: int, reason: Optional[str]) -> Optional[str]:
        if self.enabled and (current % self.interval == 0 or reason is not None):
            self.write(current)
        return reason


class TimeBudgetHook(Hook):
    """Training time across resumes, kept in the checkpoint (``elapsed``, a float64 variable:
    stored before each save), and an optional budget: the run ends once it is used.

    Make it after the checkpoint was restored (it counts on from the restored time).
    """

    def __init__(self, elapsed, budget_minutes: float = 0.0,
                 clock: Callable[[], float] = time.time):
        self.elapsed, self.clock = elapsed, clock
        self.budget_minutes = float(budget_minutes)
        self.budget = self.budget_minutes * 60.0
        self._start, self._before = clock(), float(elapsed)

    def seconds(self) -> float:
        """Training time so far (this process and the ones before it)."""
        return self._before + (self.clock() - self._start)

    def used_up(self) -> bool:
        return self.budget > 0 and self.seconds() >= self.budget

    def stop_reason(self, loop, step: int, starting: bool) -> Optional[str]:
        if self.used_up():
            return f"time budget of {self.budget_minutes:g} minutes used"
        return None

    def before_save(self, loop, current: int, reason: Optional[str]) -> None:
        self.elapsed.assign(self.seconds())
