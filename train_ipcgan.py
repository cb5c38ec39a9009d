"""Train IPCGAN (the release's age_lsgan_transfer.py), e.g.:

    python train_ipcgan.py --list_dir=data/utkface --gan_loss_weight=75 \
        --fea_loss_weight=0.5e-4 --age_loss_weight=30 --fea_layer_name=conv5 \
        --alexnet_pretrained_model=pre_trained/alexnet.model-292000 \
        --age_pretrained_model=pre_trained/age_classifier.model-300000

Resumes from the latest checkpoint in --checkpoint_dir. --dry_run prints the options. The
flags are flags.py's; the command is face_aging/apps/train_ipcgan.py.
"""
import sys

from face_aging.runtime_env import prepare_tf_environment  # imports no TensorFlow

prepare_tf_environment(sys.argv)  # before TensorFlow is imported

import flags  # noqa: E402 -- defines the flags on absl's FLAGS (their documented place)
from face_aging.apps import train_ipcgan  # noqa: E402 -- imports no TensorFlow

if __name__ == "__main__":
    train_ipcgan.run(flags.FLAGS)
