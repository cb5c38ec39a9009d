"""Train IPCGAN (the release's age_lsgan_transfer.py), e.g.:

    python train_ipcgan.py --list_dir=data/utkface --gan_loss_weight=75 \
        --fea_loss_weight=0.5e-4 --age_loss_weight=30 --fea_layer_name=conv5 \
        --alexnet_pretrained_model=pre_trained/alexnet.model-292000 \
        --age_pretrained_model=pre_trained/age_classifier.model-300000

Resumes from the latest checkpoint in --checkpoint_dir. --dry_run prints the options.
"""
import dataclasses
import json
import sys

from face_aging.runtime_env import prepare_tf_environment  # imports no TensorFlow

prepare_tf_environment(sys.argv)  # before TensorFlow is imported

from absl import app, flags, logging

import flags as ipcgan_flags
from face_aging import cli  # noqa: E402 -- like the flag modules, imports no TensorFlow

flags.adopt_module_key_flags(ipcgan_flags)  # --help / --helpshort list them


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {' '.join(argv[1:])}")
    logging.set_verbosity(logging.WARNING)
    config = ipcgan_flags.config_from_flags()
    if ipcgan_flags.FLAGS.dry_run:
        print(json.dumps(dataclasses.asdict(config.resolved()), indent=2, sort_keys=True))
        return 0
    from face_aging.checkpoints import CheckpointMismatchError
    from face_aging.data.lists import ListFormatError
    from face_aging.data.pipeline import DatasetError
    from face_aging.training_loop import NonFiniteLossError, TrainingSetupError, train
    try:
        train(config, print_fn=lambda line: print(line, flush=True))
    except (DatasetError, ListFormatError, CheckpointMismatchError, FileNotFoundError,
            TrainingSetupError, NonFiniteLossError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    cli.run(main, log_level="1")
