"""Setting a training run up, whatever the model: seeds and determinism, writable output
folders with room for a checkpoint, the options file, and the error a run cannot start with."""
from __future__ import annotations

import logging
import os
import shutil
import tempfile
from typing import Iterable

import keras
import numpy as np
import tensorflow as tf

from face_aging.errors import SetupError

log = logging.getLogger("face_aging")


class TrainingSetupError(SetupError, ValueError):
    """The run cannot start as configured (the message says why, in one line). A
    ``ValueError`` too, as it always was for callers that catch that."""


def configure_determinism(seed: int, deterministic: bool) -> None:
    """Seeds Python, numpy and TF (``keras.utils.set_random_seed``); optionally determinism.

    Determinism = TF op determinism, one intra-op thread and no Grappler rewrites of the
    traced step (the step runs as traced). Measured here:

    - with several intra-op threads, two identical runs differed in the last bits of the
      generator's gradients (a reduction split by load), even with op determinism and oneDNN
      off;
    - with Grappler on, about one fresh process in four computed the discriminator's first
      ``dis_4`` gradients differently in the last bits: Grappler rewrites the graph once per
      process and its result varied between processes. With ``disable_meta_optimizer``, 0 of
      13 differed, and 12 fresh ``train_ipcgan.py`` runs gave one result
      (docs/BENCHMARKS.md, "Determinism").
    """
    keras.utils.set_random_seed(seed)
    if deterministic:
        tf.config.experimental.enable_op_determinism()
        tf.config.optimizer.set_experimental_options({"disable_meta_optimizer": True})
        try:
            tf.config.threading.set_intra_op_parallelism_threads(1)
        except RuntimeError:  # TF already initialised in this process: keep its threads
            log.warning("deterministic: could not limit intra-op threads (TF already running)")


def probe_writable(directories, needed_bytes: int = 0) -> None:
    """Creates each directory, writes and removes a probe file, checks free space.

    Raises:
      TrainingSetupError: one line naming the directory and the problem.
    """
    for directory in directories:
        try:
            os.makedirs(directory, exist_ok=True)
            fd, probe = tempfile.mkstemp(dir=directory, prefix=".write_probe_")
            with os.fdopen(fd, "wb") as f:
                f.write(b"\0" * 4096)
            os.remove(probe)
        except OSError as e:
            raise TrainingSetupError(f"{directory}: not writable ({e.strerror or e})") from None
        free = shutil.disk_usage(directory).free
        if free < needed_bytes:
            raise TrainingSetupError(f"{directory}: {free / 2**20:.0f} MiB free, a checkpoint "
                                     f"needs about {needed_bytes / 2**20:.0f} MiB")


def count_values(variables: Iterable) -> int:
    """How many numbers ``variables`` hold (e.g. ``model.variables``)."""
    return sum(int(np.prod(v.shape)) for v in variables)


def checkpoint_bytes(values: int, extra_bytes: int = 0, slack: float = 1.2) -> int:
    """Disk a checkpoint needs (for :func:`probe_writable`): ``values`` float32 numbers (weights
    and optimizer slots, counted by the model) plus ``extra_bytes``, with some ``slack`` (e.g.
    for the input iterator's state)."""
    return int((values * 4 + extra_bytes) * slack)

