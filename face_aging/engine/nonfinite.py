"""The non-finite guard of a training step: undo a step whose losses or weights are not
finite, and the error a run stops with under ``nan_policy="stop"``."""
from __future__ import annotations

from typing import Dict

import tensorflow as tf


class NonFiniteLossError(RuntimeError):
    """A step produced non-finite numbers under ``nan_policy="stop"`` (nothing was applied)."""


def guarded_step(step_fn, batch, state, checked_variables) -> Dict[str, tf.Tensor]:
    """Runs ``step_fn(batch)`` (a dict of scalar losses); if a loss or a variable of
    ``checked_variables`` is then not finite, assigns every variable of ``state`` its value
    from before the step. Adds ``finite`` (bool tensor) to the returned dict. Inside a
    ``tf.function``: the snapshot and checks are ordered by control dependencies."""
    saved = [tf.identity(v) for v in state]
    with tf.control_dependencies(saved):
        logged = step_fn(batch)
    checks = [tf.reduce_all(tf.math.is_finite(v)) for v in logged.values()]
    with tf.control_dependencies(list(logged.values())):
        checks += [tf.reduce_all(tf.math.is_finite(v)) for v in checked_variables]
    finite = tf.reduce_all(tf.stack(checks))

    def undo():
        for variable, value in zip(state, saved):
            variable.assign(value)
        return tf.constant(False)

    logged["finite"] = tf.cond(finite, lambda: tf.constant(True), undo)
    return logged
