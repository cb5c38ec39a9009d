"""Train IPCGAN (the release's age_lsgan_transfer.py), e.g.:

    python train_ipcgan.py --list_dir=data/utkface --gan_loss_weight=75 \
        --fea_loss_weight=0.5e-4 --age_loss_weight=30 --fea_layer_name=conv5 \
        --alexnet_pretrained_model=pre_trained/alexnet.model-292000 \
        --age_pretrained_model=pre_trained/age_classifier.model-300000

Resumes from the latest checkpoint in --checkpoint_dir. --dry_run prints the options.
"""
import dataclasses
import json
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "1")  # keep TF's C++ info lines out of the progress
if any(a in ("--deterministic", "--deterministic=true", "--deterministic=True")
       for a in sys.argv[1:]):
    # oneDNN's CPU convolution gradients can change with thread scheduling, even under TF's
    # op determinism; TF's own kernels cannot. Must be set before TensorFlow is imported.
    os.environ["TF_ENABLE_ONEDNN_OPTS"] = "0"

from absl import app, logging

import flags as ipcgan_flags


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
    app.run(main)
