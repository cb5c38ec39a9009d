"""Timing helpers: warm-up, then interleaved repeats, median."""
from __future__ import annotations

import statistics
import time
from typing import Callable, Dict, List


def time_interleaved(fns: Dict[str, Callable[[], object]], warmup: int,
                     repeats: int) -> Dict[str, List[float]]:
    """Runs each callable ``warmup`` times (untimed), then ``repeats`` rounds in which every
    callable runs once, timed, in turn. Interleaving keeps configurations side by side: a
    change of machine load during the run hits all of them alike instead of one.

    Each callable must block until its work is done (e.g. end in ``.numpy()``).
    Returns name -> list of seconds.
    """
    for fn in fns.values():
        for _ in range(max(warmup, 0)):
            fn()
    times: Dict[str, List[float]] = {name: [] for name in fns}
    for _ in range(max(repeats, 1)):
        for name, fn in fns.items():
            t0 = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - t0)
    return times


def median(values: List[float]) -> float:
    return float(statistics.median(values))
