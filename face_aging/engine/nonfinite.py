"""The non-finite guard of a training step, once for every model: the step is undone in the
graph when a checked output or an updated weight is not finite; the loop then names the cause
in one line and stops (``nan_policy="stop"``: :class:`NonFiniteLossError`) or goes on
(``"skip"``)."""
from __future__ import annotations

from typing import Dict, List, Optional, Sequence

import numpy as np
import tensorflow as tf

from face_aging.errors import FaceAgingError


class NonFiniteLossError(FaceAgingError, RuntimeError):
    """A step produced non-finite numbers under ``nan_policy="stop"`` (nothing was applied)."""


def _ok(value: tf.Tensor) -> tf.Tensor:
    """A boolean output is a check already (e.g. "every gradient is finite"); a number is
    checked for being finite everywhere."""
    if value.dtype == tf.bool:
        return tf.reduce_all(value)
    return tf.reduce_all(tf.math.is_finite(value))


def guarded_step(step_fn, batch, state, checked_variables,
                 checked: Optional[Sequence[str]] = None) -> Dict[str, tf.Tensor]:
    """Runs ``step_fn(batch)`` (a dict of scalar outputs); if a checked output or a variable of
    ``checked_variables`` is then not finite, assigns every variable of ``state`` its value
    from before the step. Adds ``finite`` (bool tensor) to the returned dict.

    ``checked``: the outputs to check (default: all). A boolean output is a check of its own
    (e.g. ``gradients``: every gradient finite), which :func:`non_finite_names` can name.
    Inside a ``tf.function``: the snapshot and checks are ordered by control dependencies.
    """
    saved = [tf.identity(v) for v in state]
    # one grouped op to wait for: every input-less op of the step (constants, variable reads)
    # gets this as its control input, and one edge each instead of one per state variable
    # keeps the traced graph small (tracing and first call of a 16-px IPCGAN step: 14 s ->
    # 6 s here)
    with tf.control_dependencies([tf.group(*saved)]):
        logged = step_fn(batch)
    names = list(logged) if checked is None else list(checked)
    checks = [_ok(logged[name]) for name in names]
    with tf.control_dependencies(list(logged.values())):
        checks += [tf.reduce_all(tf.math.is_finite(v)) for v in checked_variables]
    finite = tf.reduce_all(tf.stack(checks))

    def undo():
        for variable, value in zip(state, saved):
            variable.assign(value)
        return tf.constant(False)

    logged["finite"] = tf.cond(finite, lambda: tf.constant(True), undo)
    return logged


def non_finite_names(out: Dict[str, object], checked: Optional[Sequence[str]] = None) -> List[str]:
    """What a step that was not finite names (its outputs, fetched): the checked outputs that
    are not finite numbers; else the first failed boolean check (a non-finite loss makes its
    gradients non-finite too: the first cause is named); else ``weights`` (the update
    overflowed)."""
    names = list(out) if checked is None else list(checked)
    values = {name: np.asarray(out[name]) for name in names}
    numbers = [n for n, v in values.items() if v.dtype != bool and not np.isfinite(v).all()]
    failed = [n for n, v in values.items() if v.dtype == bool and not v.all()]
    return numbers or failed[:1] or ["weights"]


def non_finite_line(step: int, names: Sequence[str], latest: Optional[str]) -> str:
    """The one line a non-finite step prints (or raises with)."""
    return (f"step {step}: non-finite {', '.join(names)}; the step was not applied "
            f"(last good checkpoint: {latest or 'none'})")
