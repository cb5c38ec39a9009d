"""The state of a training run, whatever the model: the step, the checkpoint (the model's
objects, the step and the input position) and its manager; resume, and saves.

A checkpoint holds exactly the objects the model names (``trackables``: their names are the
checkpoint's keys, so runs written before resume after), ``step``, and the input position:

- :class:`IteratorInput`: a ``tf.data`` iterator object, saved as ``data_iterator`` (its
  shuffle order, buffered batches, ...), or left out (``checkpointed=False``);
- :class:`CounterInput`: a counter of samples drawn (saved as ``samples_seen``), when the
  input stream is a pure function of it.

A checkpoint is complete before the manager points to it, so a kill during a save leaves
the previous one as the latest. With ``tf.distribute`` workers (``worker``), the chief writes
the checkpoint; every other worker takes part in the save (into a scratch folder deleted at
once) and writes its own input position to ``input_worker_{i}/input-N``.
"""
from __future__ import annotations

import os
from typing import Callable, Dict, Optional

import tensorflow as tf

from face_aging.engine import distribute
from face_aging.engine.setup import TrainingSetupError

#: A worker's place in the cluster when there is no strategy (``distribute.worker_info``).
ONE_WORKER = {"num_workers": 1, "worker_index": 0, "local_replicas": 1, "is_chief": True}


class IteratorInput:
    """The input position is a ``tf.data`` iterator object, in the checkpoint as
    ``data_iterator`` unless ``checkpointed`` is False (then a resume starts the iterator
    afresh, or the model replaces :attr:`iterator`)."""

    def __init__(self, dataset, checkpointed: bool = True):
        self.iterator = iter(dataset)
        self.checkpointed = checkpointed

    def trackables(self) -> Dict[str, object]:
        return {"data_iterator": self.iterator} if self.checkpointed else {}

    def after_restore(self, step: int) -> None:
        """Nothing to rebuild: the restored iterator object is the position."""

    def next(self):
        return next(self.iterator)

    def advance(self) -> None:
        """Nothing to count: drawing from the iterator moved it."""


class CounterInput:
    """The input position is the number of samples drawn (``samples_seen``): the stream is a
    pure function of it (:meth:`start` builds it from there), ``per_step`` samples a step."""

    def __init__(self, per_step: int):
        self.per_step = int(per_step)
        self.counter = tf.Variable(0, dtype=tf.int64, trainable=False)
        self.iterator = None

    def trackables(self) -> Dict[str, object]:
        return {"samples_seen": self.counter}

    def after_restore(self, step: int) -> None:
        if int(self.counter) == 0 and step > 0:  # a checkpoint from before the counter
            self.counter.assign(step * self.per_step)

    def start(self, make_dataset: Callable[[int], object]) -> None:
        """The stream from the current position: ``make_dataset(samples_seen)``."""
        self.iterator = iter(make_dataset(int(self.counter)))

    def next(self):
        return next(self.iterator)

    def advance(self) -> None:
        self.counter.assign_add(self.per_step)


def first_line(error: BaseException, limit: Optional[int] = None) -> str:
    """The first line of an error's message (its type's name if it has none)."""
    return (str(error).strip().splitlines() or [type(error).__name__])[0][:limit]


class RunState:
    """The step variable, the run's checkpoint and its manager(s).

    Args:
      trackables: the model's objects, by checkpoint key (networks, optimizers, pools,
        counters, ...); ``step`` and the input's objects are added here.
      checkpoint_dir: the run's checkpoint folder (resume reads the latest there).
      max_to_keep: checkpoints kept (``CheckpointManager``).
      input: :class:`IteratorInput` or :class:`CounterInput`.
      worker: ``distribute.worker_info`` of this process (default: the only one).
      announce_saves: print ``saved PATH`` after each save (else a stop line names the path).
    """

    def __init__(self, trackables: Dict[str, object], checkpoint_dir: str, max_to_keep: int,
                 input, worker: Optional[Dict[str, int]] = None, announce_saves: bool = True):
        self.step = tf.Variable(0, dtype=tf.int64, name="step")
        self.input = input
        self.checkpoint_dir = checkpoint_dir
        self.worker = dict(worker or ONE_WORKER)
        self.is_chief = bool(self.worker["is_chief"])
        self.announce_saves = announce_saves
        self.models = dict(trackables, step=self.step)
        self.checkpoint = tf.train.Checkpoint(**self.models, **input.trackables())
        self.manager = tf.train.CheckpointManager(self.checkpoint,
                                                  own_checkpoint_dir(checkpoint_dir, self.worker),
                                                  max_to_keep=max_to_keep, checkpoint_name="ckpt")
        self.input_manager = None
        if not self.is_chief and input.trackables():
            # A non-chief worker's input position lives in its own small checkpoint (its shard).
            self.input_manager = tf.train.CheckpointManager(
                tf.train.Checkpoint(**input.trackables(), step=self.step),
                os.path.join(checkpoint_dir, f"input_worker_{self.worker['worker_index']}"),
                max_to_keep=max_to_keep, checkpoint_name="input")

    @property
    def step_value(self) -> int:
        return int(self.step.numpy())

    @property
    def latest(self) -> Optional[str]:
        """The last checkpoint this process's manager knows (written or found at the start)."""
        return self.manager.latest_checkpoint

    def restore(self, resume_failed: Callable[[str, BaseException], str],
                print_fn: Callable[[str], None], note: Callable[[], str] = lambda: ""
                ) -> Optional[str]:
        """Resumes from the latest checkpoint of ``checkpoint_dir``, if any, and prints
        ``resumed from PATH at step N`` + ``note()``. Returns the path (None: a fresh start).

        Raises:
          TrainingSetupError: ``resume_failed(path, error)``, when the checkpoint does not hold
            what this run's objects need (written with other options).
        """
        latest = tf.train.latest_checkpoint(self.checkpoint_dir)
        if latest is None:
            return None
        if self.is_chief:
            try:
                status = self.checkpoint.restore(latest).assert_existing_objects_matched()
                if not self.input.trackables():  # an input position saved beside is not used
                    status.expect_partial()
            except (AssertionError, ValueError, tf.errors.OpError) as e:
                raise TrainingSetupError(resume_failed(latest, e)) from None
        else:
            self._restore_worker(latest, print_fn)
        self.input.after_restore(self.step_value)
        print_fn(f"resumed from {latest} at step {self.step_value}{note()}")
        return latest

    def _restore_worker(self, latest: str, print_fn: Callable[[str], None]) -> None:
        """Another worker: the chief's models and step, then its own input position."""
        tf.train.Checkpoint(**self.models).restore(latest).expect_partial()
        if self.input_manager is None:
            return
        resumed = self.step_value
        own = os.path.join(self.input_manager.directory, f"input-{resumed}")
        if os.path.exists(own + ".index"):
            tf.train.Checkpoint(**self.input.trackables()).restore(own).expect_partial()
        else:
            print_fn(f"worker {self.worker['worker_index']}: no input position for step "
                     f"{resumed}; its data order starts afresh")

    def save(self, step: int, print_fn: Callable[[str], None]) -> None:
        """Chief: the checkpoint. Another worker: its input position, and its copy of the models
        into its scratch folder, deleted at once (every worker takes part in a save)."""
        path = self.manager.save(checkpoint_number=step)
        if self.is_chief:
            if self.announce_saves:
                print_fn(f"saved {path}")
            return
        if self.input_manager is not None:
            self.input_manager.save(checkpoint_number=step)
        distribute.remove_scratch(self.manager.directory)


def own_checkpoint_dir(checkpoint_dir: str, worker: Optional[Dict[str, int]] = None) -> str:
    """Where a process writes checkpoints: the run's folder for the chief, a scratch folder
    (deleted after each save) for another worker."""
    worker = worker or ONE_WORKER
    if worker["is_chief"]:
        return checkpoint_dir
    return distribute.scratch_dir(checkpoint_dir, worker["worker_index"])
