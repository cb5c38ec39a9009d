"""``python -m face_aging.pretrain``: train the frozen AlexNet here (age head, trunk, identity
head where there are identities)::

    python -m face_aging.pretrain --list_dir=data/utkface --output_dir=runs/alexnet_utkface

then ``train_ipcgan.py --alexnet_pretrained_model=runs/alexnet_utkface/pretrained
--age_pretrained_model=runs/alexnet_utkface/pretrained``. Resumes from ``OUTPUT/train``.
See docs/PRETRAIN.md; the flags are ``face_aging.alexnet.flags``, the training
``face_aging.alexnet.trainer.pretrain`` (on the engine's loop).

Long runs: kill it at any moment and rerun the same command to continue; SIGTERM / Ctrl-C
write a checkpoint and exit 0; with --deterministic the result equals an uninterrupted run's.
"""
from __future__ import annotations

import sys

from face_aging import registry

#: The model this command trains (its flags, options and loop: ``face_aging.registry``).
MODEL = "alexnet"


def define_flags(flag_values) -> None:
    """The flags of the command (``face_aging.alexnet.flags``) on ``flag_values``."""
    registry.resolve(MODEL, "define_flags")(flag_values)


def main(argv, flag_values=None) -> int:
    from absl import app

    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {' '.join(argv[1:])}")
    import tensorflow as tf
    from absl import logging

    from face_aging.checkpoints import CheckpointMismatchError
    from face_aging.errors import FaceAgingError

    logging.set_verbosity(logging.WARNING)
    config = registry.resolve(MODEL, "config_from_flags")(flag_values)
    try:
        registry.resolve(MODEL, "train")(config, print_fn=lambda s: print(s, flush=True))
    except (FaceAgingError, CheckpointMismatchError, FileNotFoundError) as e:
        print(f"pretrain: error: {e}", file=sys.stderr)
        return 1
    except tf.errors.OpError as e:
        print(f"pretrain: error: {e.message.splitlines()[0] if e.message else e}",
              file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("pretrain: interrupted; rerun the same command to resume from the last "
              "checkpoint", file=sys.stderr)
        return 130
    return 0


def run() -> None:
    """The command: flags on absl's FLAGS, parsed, then :func:`main`."""
    from face_aging.runtime_env import prepare_tf_environment  # imports no TensorFlow

    prepare_tf_environment(sys.argv, log_level="2")  # before TensorFlow is imported
    from face_aging import cli

    cli.define_key_flags(define_flags)
    cli.run(main, prog="pretrain", doc=__doc__)


if __name__ == "__main__":
    run()
