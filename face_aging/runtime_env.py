"""Environment settings that must be made before TensorFlow is imported (no TF import here)."""
import os
from typing import Sequence

DETERMINISTIC_FLAGS = ("--deterministic", "--deterministic=true", "--deterministic=True")


def prepare_tf_environment(argv: Sequence[str], log_level: str = "1") -> None:
    """Quiets TF's C++ INFO lines; with ``--deterministic`` in ``argv`` turns oneDNN off.

    oneDNN's CPU convolution gradients can change with thread scheduling, even under TF's op
    determinism; TF's own kernels cannot. Call before the first ``import tensorflow``.
    """
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", log_level)
    if any(a in DETERMINISTIC_FLAGS for a in argv[1:]):
        os.environ["TF_ENABLE_ONEDNN_OPTS"] = "0"
