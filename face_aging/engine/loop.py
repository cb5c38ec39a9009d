"""The one training loop: every model (IPCGAN, CycleGAN, AlexNet pretraining) runs its steps
here. The model gives a :class:`TrainPlan` (its step, its batches, its progress line, its end)
and :mod:`hooks <face_aging.engine.hooks>` (learning rates, phases, samples, evaluation,
budgets); :func:`run` does the rest, the same way for all:

- a progress line on ``TrainingProgress``'s schedule (``step N/M ... | rate ETA``), after a
  ``compiling the training step ...`` line before each step that traces;
- the non-finite policy: a step that was not finite (undone in the graph by
  ``face_aging.engine.nonfinite.guarded_step``) is named in one line; ``stop`` raises
  :class:`NonFiniteLossError`, ``skip`` goes on;
- checkpoints every ``save_interval`` steps, at the end, and on SIGTERM / SIGINT (agreed by
  every worker of a distributed run), after which the run exits with one line.
"""
from __future__ import annotations

import dataclasses
from typing import Callable, Dict, List, Optional, Sequence

import tensorflow as tf

from face_aging.engine import distribute
from face_aging.engine.hooks import Hook
from face_aging.engine.nonfinite import NonFiniteLossError, non_finite_line, non_finite_names
from face_aging.engine.signals import StopSignal
from face_aging.engine.state import RunState
from face_aging.progress import TrainingProgress


@dataclasses.dataclass
class Outcome:
    """How a loop ended: ``stop_reason`` (None when a stop signal ended it, ``stopped_by``
    then names the signal), the last logged values and the step reached."""
    stop_reason: Optional[str]
    stopped_by: Optional[str]
    logged: Dict[str, float]
    step: int


def write_scalars(writer, scalars: Dict[str, Optional[float]], step: int) -> None:
    """TensorBoard scalars (None values left out)."""
    with writer.as_default():
        for name, value in scalars.items():
            if value is not None:
                tf.summary.scalar(name, value, step=step)


class TrainPlan(Hook):
    """A model's part of the loop. Subclasses set the attributes and implement :meth:`step`;
    the defaults are the GANs' (``step N/M  <fields>k v ...  | status`` lines, ``loss/*``
    scalars, the last logged losses and the step as the result).

    Attributes:
      state: the run's :class:`RunState` (restored before :func:`run`).
      max_steps, log_interval, save_interval: the schedule.
      nan_policy: ``stop`` or ``skip``.
      checked: the outputs the non-finite guard checked (None: all), to name the cause.
      strategy: a ``tf.distribute`` strategy (stop signals are agreed over its workers).
      summary_writer: TensorBoard (None: no scalars).
    """
    state: RunState
    max_steps: int
    log_interval: int
    save_interval: int
    nan_policy: str = "stop"
    checked: Optional[Sequence[str]] = None
    strategy = None
    summary_writer = None

    def next_batch(self):
        return self.state.input.next()

    def step(self, batch, index: int) -> Dict[str, tf.Tensor]:
        """Step number ``index + 1``: its outputs and ``finite`` (a scalar bool)."""
        raise NotImplementedError

    def stop_reason(self, loop, step: int, starting: bool) -> Optional[str]:
        return f"reached max_steps={self.max_steps}" if step >= self.max_steps else None

    def log_fields(self, current: int) -> str:
        """What the progress line shows between ``step N/M`` and the losses."""
        return ""

    def scalars(self, current: int) -> Dict[str, Optional[float]]:
        """TensorBoard scalars besides the losses (e.g. the learning rate)."""
        return {}

    def log(self, loop: "Loop", current: int, out) -> Dict[str, float]:
        """Prints the progress line, writes the scalars; returns the logged values."""
        logged = {k: float(v) for k, v in out.items()}
        loop.print(f"step {current}/{self.max_steps}  {self.log_fields(current)}"
                   + "  ".join(f"{k} {v:.4f}" for k, v in logged.items())
                   + f"  | {loop.progress.status()}")
        if self.summary_writer is not None:
            write_scalars(self.summary_writer, {
                **{f"loss/{k}": v for k, v in logged.items()}, **self.scalars(current),
                "steps_per_second": loop.progress.rate}, current)
        return logged

    def finish(self, outcome: Outcome) -> Dict:
        """The result: the last logged values, ``stopped_by`` (a signal ended it), ``step``."""
        if self.summary_writer is not None:
            self.summary_writer.flush()
        result = dict(outcome.logged)
        if outcome.stopped_by is not None:
            result["stopped_by"] = outcome.stopped_by
        result["step"] = outcome.step
        return result


class Loop:
    """One run of the loop (what hooks see): ``plan``, ``state``, ``progress``, ``print``,
    the last ``logged`` values, and :meth:`expect_compile`."""

    def __init__(self, plan: TrainPlan, hooks: Sequence[Hook], print_fn: Callable[[str], None]):
        self.plan, self.state, self.print = plan, plan.state, print_fn
        self.hooks: List[Hook] = [plan, *hooks]
        self.progress = TrainingProgress(plan.max_steps, self.state.step_value, plan.log_interval)
        self.logged: Dict[str, float] = {}
        self._compile_pending = True

    def expect_compile(self) -> None:
        """The next step traces again (e.g. a new input size): a compiling line before it, and
        it is left out of the rate."""
        self.progress.expect_compile()
        self._compile_pending = True

    def stop_reason(self, step: int, starting: bool = False) -> Optional[str]:
        for hook in self.hooks:
            reason = hook.stop_reason(self, step, starting)
            if reason is not None:
                return reason
        return None

    def run(self) -> Dict:
        reason, stopped_by = self.stop_reason(self.state.step_value, starting=True), None
        with StopSignal() as stop:
            while reason is None and stopped_by is None:
                reason, stopped_by = self._one_step(stop)
        return self.plan.finish(Outcome(reason, stopped_by, self.logged, self.state.step_value))

    def _one_step(self, stop: StopSignal):
        plan, state = self.plan, self.state
        index = state.step_value
        for hook in self.hooks:
            hook.before_step(self, index)
        if self._compile_pending:
            self.print(self.progress.compiling_line())
            self._compile_pending = False
        out = plan.step(plan.next_batch(), index)
        current = index + 1
        finite = self._apply_nan_policy(out, current)
        state.step.assign(current)
        state.input.advance()
        for hook in self.hooks:
            hook.after_update(self, current, out, finite)
        reason = self.stop_reason(current)
        if self.progress.step_done(current) or reason is not None:
            self.logged = plan.log(self, current, out)
        for hook in self.hooks:
            reason = hook.after_step(self, current, reason)
        stopping = distribute.any_worker(plan.strategy, stop.received is not None)
        if current % plan.save_interval == 0 or reason is not None or stopping:
            for hook in self.hooks:
                hook.before_save(self, current, reason)
            state.save(current, self.print)
        if stopping and reason is None:
            return None, self._stopped(stop.received, current)
        return reason, None

    def _apply_nan_policy(self, out, current: int) -> bool:
        """Pops ``finite``; a step that was not finite: one line, then stop or skip."""
        if bool(out.pop("finite")):
            return True
        line = non_finite_line(current, non_finite_names(out, self.plan.checked),
                               self.state.latest)
        if self.plan.nan_policy == "stop":
            raise NonFiniteLossError(line)
        self.print(line + "; skipping it (--nan_policy=skip)")
        return False

    def _stopped(self, received: Optional[str], current: int) -> str:
        name = received or "a stop signal to another worker"
        where = "" if self.state.announce_saves else f" ({self.state.latest})"
        self.print(f"{name} received: checkpoint written at step {current}{where}, exiting; "
                   "run the same command to resume")
        return name


def run(plan: TrainPlan, hooks: Sequence[Hook] = (), print_fn: Callable[[str], None] = print
        ) -> Dict:
    """Runs ``plan`` (its state restored) until a stop reason (the plan's ``max_steps``, a
    hook's) or a stop signal; returns ``plan.finish(outcome)``.

    Raises:
      NonFiniteLossError: a step was not finite under ``nan_policy="stop"`` (it was undone;
        nothing was written after it).
    """
    return Loop(plan, hooks, print_fn).run()
