"""The choices of run options every model's training shares (no TensorFlow here: flag modules
and ``--help`` read them)."""

#: ``distribution``: one device, all local GPUs, or several hosts (tf.distribute).
DISTRIBUTIONS = ("none", "mirrored", "multi_worker")
#: ``nan_policy``: what a non-finite step does (every training loop).
NAN_POLICIES = ("stop", "skip")
