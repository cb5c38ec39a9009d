"""IPCGAN training options as one plain object: ``face_aging.ipcgan.flags`` builds it from the
flags of ``train_ipcgan.py``, tests build it directly. No TensorFlow here."""
from __future__ import annotations

import dataclasses
from typing import List, Optional

from face_aging.backbones import FEATURE_LAYERS
from face_aging.engine.flags import RUN_RULES, at_least, one_of, rule, violations
from face_aging.engine.options import DISTRIBUTIONS

# The choices of enumerated options, here (no TensorFlow) so that flag modules and --help
# need not import the modules that use them. AlexNet's feature layers are
# ``face_aging.backbones.FEATURE_LAYERS``; ``distribution`` and ``nan_policy`` take
# ``face_aging.engine.options.DISTRIBUTIONS`` / ``NAN_POLICIES``.
#: ``step_structure``: reuse G's output for the G update, or recompute it as the release did.
STEP_STRUCTURES = ("reuse", "release")
#: ``upsample``: G's two upsampling layers as the release's transposed convolutions, or as
#: nearest-neighbour upsampling + convolution (``face_aging.layers.Deconv``).
UPSAMPLE_MODES = ("deconv", "resize_conv")

#: The rules of the options (beyond the run flags' ``engine.flags.RUN_RULES``): the flags of
#: ``train_ipcgan.py`` are validated with them, a config built in code with :func:`problems`.
RULES = (at_least(0, "gan_loss_weight", "fea_loss_weight", "age_loss_weight", "learning_rate")
         + at_least(2, "batch_size", why="batch statistics need two faces")
         + [rule("image_size", lambda v: v >= 16 and v % 8 == 0,
                 "--image_size must be a multiple of 8, at least 16")]
         + at_least(2, "age_groups") + at_least(1, "d_output_channels")
         + [rule("bn_epsilon", lambda v: v > 0, "--bn_epsilon must be > 0"),
            one_of("fea_layer_name", FEATURE_LAYERS), one_of("step_structure", STEP_STRUCTURES),
            one_of("upsample", UPSAMPLE_MODES),
            one_of("distribution", DISTRIBUTIONS)])


@dataclasses.dataclass
class TrainConfig:
    """Every option of a ``train_ipcgan.py`` run. Release flags keep their names (spec §5)."""

    # Data (spec §4): list layout and the images' root.
    list_dir: str = "data/prepared"
    root_folder: Optional[str] = None          # default: list_dir
    source_file: Optional[str] = None          # default: list_dir/train.txt
    # Release hyper-parameters (spec §5) with the paper's recipe as defaults.
    learning_rate: float = 1e-3
    batch_size: int = 32
    image_size: int = 128
    age_groups: int = 5
    max_steps: int = 200000
    gan_loss_weight: float = 75.0
    fea_loss_weight: float = 0.5e-4
    age_loss_weight: float = 30.0
    fea_layer_name: str = "conv5"
    # Pretrained AlexNet (trunk + identity head) and age head: release TF1 files or TF2 checkpoints.
    alexnet_pretrained_model: Optional[str] = "pre_trained/alexnet.model-292000"
    age_pretrained_model: Optional[str] = "pre_trained/age_classifier.model-300000"
    allow_random_alexnet: bool = False
    # Outputs.
    checkpoint_dir: str = "checkpoints/0_conv5_lsgan_transfer_g75_0.5f-4_a30"
    source_checkpoint_dir: Optional[str] = None  # start G/D from here (transfer), if no checkpoint yet
    model_index: Optional[int] = None            # with source_checkpoint_dir: which step to take
    sample_dir: str = "samples/0_conv5_lsgan_transfer_g75_0.5f-4_a30"
    tensorboard_dir: Optional[str] = None        # TensorBoard; default checkpoint_dir/logs
    save_interval: int = 10000
    sample_interval: int = 5000
    log_interval: int = 100
    max_to_keep: Optional[int] = 5
    # Reproducibility and speed.
    seed: int = 0
    deterministic: bool = False
    jit_compile: bool = False
    mixed_precision: str = "none"            # none | float16 | bfloat16 (face_aging.precision)
    step_structure: str = "reuse"
    cache: bool = False                          # keep decoded, resized faces in memory
    # Several devices / hosts (tf.distribute); batch_size stays the *global* batch.
    distribution: str = "none"                   # none | mirrored | multi_worker
    synchronized_bn: bool = True                 # batch statistics over the global batch
    logical_cpu_devices: int = 0                 # >1: split the CPU into N devices (testing)
    # Fault handling.
    nan_policy: str = "stop"                     # stop | skip: what a non-finite step does
    # Options beyond the release (defaults = the release).
    bn_epsilon: float = 1e-3
    d_output_channels: int = 512
    upsample: str = "deconv"                     # deconv (release) | resize_conv (layers.Deconv)
    per_sample_targets: bool = False             # one (target, false) pair per face, not per batch
    l1_loss_weight: float = 0.0                  # G's L1 to its input face (0: the release's loss)
    reconstruction_steps: int = 0                # first N steps: G alone reproduces its input
    reconstruction_learning_rate: float = 2e-4   # their Adam (beta1 0.5), not the GAN's
    reconstruction_l1_weight: float = 1.0        # L1 weight; the feature loss keeps fea_loss_weight

    def resolved(self) -> "TrainConfig":
        """A copy with the derived defaults filled in."""
        import os
        c = dataclasses.replace(self)
        c.root_folder = c.root_folder or c.list_dir
        c.source_file = c.source_file or os.path.join(c.list_dir, "train.txt")
        c.tensorboard_dir = c.tensorboard_dir or os.path.join(c.checkpoint_dir, "logs")
        return c


def problems(config: TrainConfig) -> List[str]:
    """The rules ``config`` breaks (:data:`RULES` and the run flags'), one line each."""
    return violations(RULES + RUN_RULES, config)
