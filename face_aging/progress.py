"""Progress of long jobs, in one place: the ETA format, training progress lines, terminal bars.

- :func:`format_duration`: seconds -> ``H:MM:SS`` (``?`` when unknown); every ETA the project
  prints uses it.
- :class:`TrainingProgress`: when the training loop (``face_aging.engine.loop``, under
  ``train_ipcgan.py``, ``train_cyclegan.py``, ``python -m face_aging.pretrain``) prints a
  progress line, and the rate and ETA it shows. The first step of a process traces and
  compiles the step (7 s here for the bundled model's 128-px batch-8 step in bfloat16 or
  float32, against 1-1.6 s for a steady one), so it is announced ("compiling ...") and left
  out of the rate: the rate and the ETA come from the steady steps after it. A line is printed every ``log_interval`` steps, after the first step, at the last
  step, and whenever ``line_seconds`` of wall time have passed since the previous line.
- :func:`bar`: a ``tqdm`` bar (count, rate, ETA) on stderr when stderr is a terminal, and
  silent otherwise (logs and pipes get no bar). ``bar.write(line)`` prints a line above it.

Imports no TensorFlow; ``tqdm`` only when a bar is made.
"""
from __future__ import annotations

import math
import sys
import time
from typing import Callable, Optional

from tqdm import tqdm

#: A training loop prints a progress line at least this often (seconds of wall time).
LINE_SECONDS = 10.0


def format_duration(seconds: Optional[float]) -> str:
    """``H:MM:SS`` for a duration in seconds (hours not wrapped at 24); ``?`` if unknown."""
    if seconds is None or not math.isfinite(seconds):
        return "?"
    seconds = int(max(seconds, 0))
    return f"{seconds // 3600:d}:{seconds % 3600 // 60:02d}:{seconds % 60:02d}"


class TrainingProgress:
    """Decides when a training loop prints a line, and what rate and ETA it shows.

    Usage, per process (``start_step`` = steps already done, e.g. after a resume)::

        progress = TrainingProgress(max_steps, start_step, log_interval)
        print_fn(progress.compiling_line())
        for each step:
            ... run step number ``step`` (1-based) ...
            if progress.step_done(step):
                print_fn(f"step {step}/{max_steps}  <losses>  | {progress.status()}")

    Args:
      total_steps: the step the run ends at.
      start_step: steps done before this process started.
      log_interval: a line every this many steps (>= 1).
      line_seconds: and a line whenever this much wall time passed since the last one.
      clock: seconds, monotonic (tests pass a fake one).
    """

    def __init__(self, total_steps: int, start_step: int = 0, log_interval: int = 100,
                 line_seconds: float = LINE_SECONDS, clock: Callable[[], float] = time.perf_counter):
        if log_interval < 1:
            raise ValueError(f"log_interval must be >= 1, got {log_interval}")
        self.total_steps = int(total_steps)
        self.start_step = int(start_step)
        self.log_interval = int(log_interval)
        self.line_seconds = float(line_seconds)
        self._clock = clock
        self._mark = clock()          # end of the previous step (or the start)
        self._last_line = self._mark
        self._compiling = True        # the next step traces and compiles
        self._just_compiled = False
        self.compile_seconds: Optional[float] = None
        self._steady_steps = 0
        self._steady_seconds = 0.0
        self.step = self.start_step

    def compiling_line(self) -> str:
        """The line to print before a step that compiles (the first one of a process, or
        after :meth:`expect_compile`)."""
        # "step N of M", not "step N/M": progress lines start with "step N/M", and logs are
        # searched for them (a step is done when its line is there).
        return (f"compiling the training step (step {self.step + 1} of {self.total_steps} "
                "traces and compiles it: slow, and left out of the rate)...")

    def expect_compile(self) -> None:
        """The next step compiles again (e.g. a new input shape): it is left out of the rate,
        and the rate restarts from the steady steps after it."""
        self._compiling = True

    def step_done(self, step: int) -> bool:
        """Records that step ``step`` (1-based, total) just ended; True if a line is due now.

        A line is due after a compiling step, every ``log_interval`` steps, at the last step,
        and when ``line_seconds`` passed since the previous line. Returning True counts as
        printing it (the time-based schedule restarts).
        """
        now = self._clock()
        seconds, self._mark = now - self._mark, now
        self.step = int(step)
        if self._compiling:
            self._compiling, self._just_compiled = False, True
            self.compile_seconds = seconds
            self._steady_steps, self._steady_seconds = 0, 0.0
        else:
            self._just_compiled = False
            self._steady_steps += 1
            self._steady_seconds += seconds
        due = (self._just_compiled or self.step % self.log_interval == 0
               or self.step >= self.total_steps or now - self._last_line >= self.line_seconds)
        if due:
            self._last_line = now
        return due

    @property
    def rate(self) -> Optional[float]:
        """Steps per second over the steady steps since the last compiling step (None before
        the first of them)."""
        if self._steady_steps == 0 or self._steady_seconds <= 0:
            return None
        return self._steady_steps / self._steady_seconds

    def eta_seconds(self) -> Optional[float]:
        """Seconds to ``total_steps`` at :attr:`rate` (None while unknown)."""
        rate = self.rate
        if rate is None:
            return None
        return max(self.total_steps - self.step, 0) / rate

    def status(self, images_per_step: Optional[int] = None,
               eta_seconds: Optional[float] = None) -> str:
        """``0.71 steps/s  ETA 1:17:49`` (with ``images_per_step``: ``... 5.7 img/s ...``);
        after a compiling step ``first step 18.3 s (compiling)  ETA ?``.

        ``eta_seconds``: show this ETA instead (e.g. capped by a time budget).
        """
        eta = format_duration(self.eta_seconds() if eta_seconds is None else eta_seconds)
        rate = self.rate
        if rate is None:
            compiled = (f"{self.compile_seconds:.1f} s" if self.compile_seconds is not None
                        else "?")
            return f"first step {compiled} (compiling)  ETA {eta}"
        images = f" {rate * images_per_step:.1f} img/s" if images_per_step else ""
        return f"{rate:.2f} steps/s{images}  ETA {eta}"


class _SilentBar(tqdm):
    """What :func:`bar` returns when there is no terminal: a disabled ``tqdm`` (draws nothing;
    ``write`` still prints the line) that still counts, so callers can read ``n``."""

    def __init__(self, total):
        super().__init__(total=total, disable=True)

    def update(self, n: int = 1) -> None:
        self.n += n


def is_terminal(stream) -> bool:
    """True if ``stream`` is an interactive terminal."""
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError, OSError):
        return False


class _Bar(tqdm):
    """``tqdm`` drawing its elapsed time and ETA with :func:`format_duration` (tqdm's own
    ``format_interval`` is called by name inside ``tqdm.format_meter``, so it cannot be
    overridden; the bar reads the two fields this class adds instead)."""

    FORMAT = ("{desc}: {percentage:3.0f}%|{bar}| {n_fmt}/{total_fmt} "
              "[{elapsed_hms}, ETA {eta_hms}, {rate_fmt}]")
    FORMAT_NO_TOTAL = "{desc}: {n_fmt} [{elapsed_hms}, {rate_fmt}]"

    @property
    def format_dict(self):
        fields = super().format_dict
        rate = fields.get("rate") or (fields["n"] / fields["elapsed"]
                                      if fields["n"] and fields["elapsed"] else None)
        left = (fields["total"] - fields["n"]) / rate if rate and fields["total"] else None
        fields["elapsed_hms"] = format_duration(fields["elapsed"])
        fields["eta_hms"] = format_duration(left)
        return fields


def bar(total: Optional[int], desc: str, unit: str = "it", stream=None,
        enabled: Optional[bool] = None):
    """A progress bar over ``total`` items (``None``: unknown, a count without ETA).

    ``enabled=None`` (default): drawn on ``stream`` (default stderr) only when it is a terminal;
    ``True``: drawn there in any case (a log gets a line every 10 s); ``False``: never. The bar
    shows count, percentage, rate, elapsed time and ETA in :func:`format_duration`'s
    ``H:MM:SS``. A bar that is not drawn is a silent stand-in that still counts (``n``).

    Both have ``update(n=1)``, ``set_description(desc)``, ``write(line)`` (a line on stdout
    above the bar), ``close()``, and work as context managers.
    """
    stream = stream if stream is not None else sys.stderr
    terminal = is_terminal(stream)
    if enabled is False or (enabled is None and not terminal):
        return _SilentBar(total)
    return _Bar(total=total, desc=desc, unit=unit, file=stream, dynamic_ncols=terminal,
                leave=True, mininterval=0.1 if terminal else 10.0,
                bar_format=_Bar.FORMAT if total else _Bar.FORMAT_NO_TOTAL)
