"""Train CycleGAN young -> old faces (Zhu et al. 2017, the reference's cycle_gan recipe), e.g.:

    python train_cyclegan.py --young_dir=../shared/data/wiki_young_old/young \
        --old_dir=../shared/data/wiki_young_old/old --crop_size=128 \
        --checkpoint_dir=checkpoints/cyclegan_wiki128

Resumes from the latest checkpoint in --checkpoint_dir. --dry_run checks the options and
the data and prints them. docs/CYCLEGAN.md has the recipe and every flag; the command is
face_aging/apps/train_cyclegan.py.
"""
import sys

from face_aging.runtime_env import prepare_tf_environment  # imports no TensorFlow

prepare_tf_environment(sys.argv)  # before TensorFlow is imported

from face_aging.apps import train_cyclegan  # noqa: E402 -- imports no TensorFlow

if __name__ == "__main__":
    train_cyclegan.run()
