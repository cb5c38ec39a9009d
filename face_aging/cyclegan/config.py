"""CycleGAN training options as one plain object: ``face_aging.cyclegan.flags`` builds it,
tests build it directly. Defaults are the reference's ``cycle_gan`` recipe (docs/CYCLEGAN.md)."""
from __future__ import annotations

import dataclasses
import os
from typing import List, Optional

from face_aging.engine.flags import RUN_RULES, at_least, one_of, rule, violations
from face_aging.errors import InputError

# No TensorFlow here: face_aging.cyclegan.flags (and so --help) builds on this module alone.

#: ``gan_mode``: least-squares GAN (the reference's CycleGAN) or cross-entropy.
GAN_MODES = ("lsgan", "vanilla")

#: The rules of the options (beyond the run flags' ``engine.flags.RUN_RULES``), by flag name
#: (the config's ``lr`` is ``--learning_rate``): the flags of ``train_cyclegan.py`` are
#: validated with them, a config built in code with :func:`problems`.
RULES = (at_least(0, "lambda_a", "lambda_b", "lambda_identity", "learning_rate", "pool_size",
                  "n_epochs", "n_epochs_decay", "n_blocks", "init_gain")
         + at_least(1, "batch_size", "ngf", "ndf", "num_samples", "max_dataset_size")
         + [rule("crop_size", lambda v: v >= 32 and v % 4 == 0,
                 "--crop_size must be a multiple of 4, at least 32 (the PatchGAN's smallest "
                 "input)"),
            rule("beta1", lambda v: 0 <= v < 1, "--beta1 must be in [0, 1)"),
            rule("beta2", lambda v: 0 <= v < 1, "--beta2 must be in [0, 1)"),
            rule(("crop_size", "load_size"), lambda crop, load: load is None or load >= crop,
                 "--load_size must be >= --crop_size"),
            rule(("n_epochs", "n_epochs_decay"), lambda n, decay: n + decay >= 1,
                 "--n_epochs + --n_epochs_decay must be >= 1"),
            rule(("young_max_age", "old_min_age"), lambda young, old: young < old,
                 "--young_max_age must be below --old_min_age"),
            one_of("gan_mode", GAN_MODES)])
#: Flag name -> config field where they differ.
FIELDS = {"learning_rate": "lr"}


class DataError(InputError):
    """A domain cannot be built (missing folder, no readable images, bad list): one line."""


def domain_images(folder: str, flag: str = "folder") -> List[str]:
    """The images of one domain's folder: every .jpg/.jpeg/.png/.bmp file below it
    (``images.list_image_files``, recursively, hidden files left out), sorted.

    Raises:
      DataError: the folder is missing or holds no image file.
    """
    from face_aging.images import TF_IMAGE_EXTENSIONS, list_image_files

    if not os.path.isdir(folder):
        raise DataError(f"{flag} {folder}: no such directory")
    found = list_image_files(folder, recursive=True, extensions=TF_IMAGE_EXTENSIONS)
    if not found:
        raise DataError(f"{flag} {folder}: no images ({', '.join(TF_IMAGE_EXTENSIONS)}) found")
    return found


def default_load_size(crop_size: int) -> int:
    """The reference's jitter scaled to other sizes: 286 for a 256 crop, ``crop * 286 / 256``."""
    return int(round(crop_size * 286 / 256))


def default_n_blocks(crop_size: int) -> int:
    """9 residual blocks for 256x256 and larger (the reference's resnet_9blocks), else 6."""
    return 9 if crop_size >= 256 else 6


@dataclasses.dataclass
class CycleGANConfig:
    """Every option of a ``train_cyclegan.py`` run (reference option names in comments)."""

    # Data: two folders, or an age list split by two thresholds.
    young_dir: Optional[str] = None            # domain A (trainA)
    old_dir: Optional[str] = None              # domain B (trainB)
    age_list: Optional[str] = None             # e.g. data/wiki/train_age.txt
    age_list_root: Optional[str] = None        # default: the list's folder
    young_max_age: float = 30.0
    old_min_age: float = 50.0
    max_dataset_size: Optional[int] = None     # --max_dataset_size (inf)
    # Preprocessing (--preprocess resize_and_crop).
    crop_size: int = 256                       # --crop_size
    load_size: Optional[int] = None            # --load_size 286; default crop * 286 / 256
    no_flip: bool = False                      # --no_flip
    # Networks.
    n_blocks: Optional[int] = None             # --netG resnet_9blocks; 9 if crop >= 256, else 6
    ngf: int = 64                              # --ngf
    ndf: int = 64                              # --ndf
    init_gain: float = 0.02                    # --init_gain (--init_type normal)
    # Objective.
    gan_mode: str = "lsgan"                    # --gan_mode
    lambda_a: float = 10.0                     # --lambda_A
    lambda_b: float = 10.0                     # --lambda_B
    lambda_identity: float = 0.5               # --lambda_identity
    pool_size: int = 50                        # --pool_size
    # Optimisation.
    lr: float = 2e-4                           # --lr
    beta1: float = 0.5                         # --beta1
    beta2: float = 0.999                       # (reference: fixed 0.999)
    n_epochs: int = 100                        # --n_epochs
    n_epochs_decay: int = 100                  # --n_epochs_decay (--lr_policy linear)
    batch_size: int = 1                        # --batch_size
    max_steps: Optional[int] = None            # stop early; default: the whole schedule
    # Outputs.
    checkpoint_dir: str = "checkpoints/cyclegan_young2old"
    sample_dir: Optional[str] = None           # default: checkpoint_dir/samples
    tensorboard_dir: Optional[str] = None      # default: checkpoint_dir/logs
    save_interval: int = 5000                  # steps (--save_latest_freq 5000 images)
    sample_interval: int = 400                 # steps (--display_freq 400)
    log_interval: int = 100                    # steps (--print_freq 100)
    max_to_keep: Optional[int] = 5
    num_samples: int = 4                       # faces per sample strip
    # Reproducibility and faults.
    seed: int = 0
    deterministic: bool = False
    nan_policy: str = "stop"                   # stop | skip
    mixed_precision: str = "none"              # none | float16 | bfloat16 (face_aging.precision)

    def resolved(self) -> "CycleGANConfig":
        """A copy with the derived defaults filled in."""
        c = dataclasses.replace(self)
        c.load_size = default_load_size(c.crop_size) if c.load_size is None else c.load_size
        c.n_blocks = default_n_blocks(c.crop_size) if c.n_blocks is None else c.n_blocks
        c.sample_dir = c.sample_dir or os.path.join(c.checkpoint_dir, "samples")
        c.tensorboard_dir = c.tensorboard_dir or os.path.join(c.checkpoint_dir, "logs")
        return c


def problems(config: CycleGANConfig) -> List[str]:
    """The rules ``config`` breaks (:data:`RULES` and the run flags'), one line each."""
    return violations(RULES + RUN_RULES, config, FIELDS)
