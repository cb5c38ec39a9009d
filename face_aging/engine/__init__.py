"""The training machinery every model shares, once: the training loop (``loop.run``: a model's
``TrainPlan`` and ``hooks``), the run's state (``state``: step, checkpoint, resume, input
position, worker input checkpoints), the non-finite guard (``nonfinite``), signals, run setup
(determinism, writable folders, checkpoint size), tf.distribute helpers, sample images and the
release's Adam. No model package is imported here, and this package imports no TensorFlow at
import time (only its modules that run a network do)."""
