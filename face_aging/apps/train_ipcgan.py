"""``python train_ipcgan.py``: train IPCGAN (the release's age_lsgan_transfer.py), e.g.::

    python train_ipcgan.py --list_dir=data/utkface --gan_loss_weight=75 \\
        --fea_loss_weight=0.5e-4 --age_loss_weight=30 --fea_layer_name=conv5 \\
        --alexnet_pretrained_model=pre_trained/alexnet.model-292000 \\
        --age_pretrained_model=pre_trained/age_classifier.model-300000

Resumes from the latest checkpoint in --checkpoint_dir. --dry_run prints the options. The
flags: ``face_aging.ipcgan.flags``; the training: ``face_aging.ipcgan.trainer.train``.
"""
import dataclasses
import json
import sys

from face_aging import registry

#: The model this command trains (its flags, options and loop: ``face_aging.registry``).
MODEL = "ipcgan"


def define_flags(flag_values) -> None:
    """The flags of ``train_ipcgan.py`` (``face_aging.ipcgan.flags``) on ``flag_values``."""
    registry.resolve(MODEL, "define_flags")(flag_values)


def main(argv, flag_values=None) -> int:
    from absl import app, flags, logging

    flag_values = flag_values if flag_values is not None else flags.FLAGS
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {' '.join(argv[1:])}")
    logging.set_verbosity(logging.WARNING)
    config = registry.resolve(MODEL, "config_from_flags")(flag_values)
    if flag_values.dry_run:
        print(json.dumps(dataclasses.asdict(config.resolved()), indent=2, sort_keys=True))
        return 0
    from face_aging.checkpoints import CheckpointMismatchError
    from face_aging.errors import FaceAgingError

    train = registry.resolve(MODEL, "train")
    try:
        train(config, print_fn=lambda line: print(line, flush=True))
    except (FaceAgingError, CheckpointMismatchError, FileNotFoundError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    return 0


def run(flag_values=None) -> None:
    """The command: the flags on ``flag_values`` (default absl's FLAGS; defined here unless
    they already are), parsed, then :func:`main`."""
    from face_aging.runtime_env import prepare_tf_environment  # imports no TensorFlow

    prepare_tf_environment(sys.argv)  # before TensorFlow is imported
    from absl import flags

    from face_aging import cli

    flag_values = flag_values if flag_values is not None else flags.FLAGS
    if "fea_layer_name" not in flag_values:
        cli.define_key_flags(define_flags, flag_values)
    cli.run(lambda argv: main(argv, flag_values), log_level="1", flag_values=flag_values,
            doc=__doc__)


if __name__ == "__main__":
    run()
