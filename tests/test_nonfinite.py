"""engine.nonfinite.guarded_step on a tiny model: a finite step is kept, a non-finite one is
undone (weights and optimizer slots back to their values before it), and the traced graph stays
small: the step waits for the snapshot through one grouped op, not one edge per variable."""
import numpy as np
import tensorflow as tf

from face_aging.engine.nonfinite import guarded_step, non_finite_names
from face_aging.engine.optim import make_adam

N_VARIABLES = 40


def _setup():
    variables = [tf.Variable(np.full((3,), i + 1.0, np.float32)) for i in range(N_VARIABLES)]
    optimizer = make_adam(0.1)
    optimizer.build(variables)
    state = variables + list(optimizer.variables)

    def step_fn(scale):
        with tf.GradientTape() as tape:
            loss = scale * tf.add_n([tf.reduce_sum(v * v) for v in variables])
        optimizer.apply_gradients(zip(tape.gradient(loss, variables), variables))
        return {"loss": loss}

    step = tf.function(lambda scale: guarded_step(step_fn, scale, state, variables))
    return variables, optimizer, state, step


def test_a_finite_step_is_kept_and_a_non_finite_one_undone():
    variables, optimizer, state, step = _setup()
    out = step(tf.constant(1.0))
    assert bool(out["finite"]) and float(out["loss"]) > 0
    assert float(variables[0][0]) < 1.0  # moved towards 0
    before = [v.numpy().copy() for v in state]
    out = step(tf.constant(np.nan, tf.float32))
    assert not bool(out["finite"])
    assert non_finite_names({k: v.numpy() for k, v in out.items()}, ["loss"]) == ["loss"]
    for kept, value in zip(before, state):
        np.testing.assert_array_equal(kept, value.numpy())
    assert int(optimizer.iterations.numpy()) == 1  # the undone step's count was restored too


def test_the_step_waits_for_the_snapshot_through_one_op():
    _, _, state, step = _setup()
    graph = step.get_concrete_function(tf.TensorSpec([], tf.float32)).graph
    edges = sum(len(op.control_inputs) for op in graph.get_operations())
    # An edge from every snapshotted variable to every input-less op of the step (26,193 edges
    # here; the 16-px IPCGAN step then took 14 s to trace and run once) against one grouped op
    # (1,026 edges; 5 s): at most a few edges per state variable.
    assert len(state) > 2 * N_VARIABLES and edges < 10 * len(state), (edges, len(state))
