"""The options of AlexNet pretraining (``python -m face_aging.pretrain``) as one plain object,
and the error a pretraining run stops with.

No TensorFlow here: the CLI's flags (``face_aging.alexnet.flags``, and so ``--help``) are
built from this module alone; the training is ``face_aging.alexnet.trainer.pretrain``.
"""
from __future__ import annotations

import dataclasses
import os
from typing import List, Optional, Tuple

from face_aging.backbones import FEATURE_LAYERS
from face_aging.engine.flags import RUN_RULES, at_least, one_of, rule, violations
from face_aging.errors import FaceAgingError

CLASS_BALANCE = ("weights", "sampling", "none")
OPTIMIZERS = ("adamw", "sgd")
IDENTITY_MODES = ("auto", "on", "off")
TRAIN_LAYERS = ("auto", "age_head")


def _in(low, high, low_open=False, high_open=False):
    return lambda v: (low < v if low_open else low <= v) and (v < high if high_open else v <= high)


def _checkpoint_or_file(path) -> bool:
    return not path or os.path.exists(path) or os.path.exists(path + ".index")


#: The rules of the options (beyond the run flags' ``engine.flags.RUN_RULES``), by flag name:
#: the flags of ``python -m face_aging.pretrain`` are validated with them, a config built in
#: code with :func:`problems`.
RULES = (at_least(2, "batch_size", "age_groups") + at_least(1, "eval_every", "eval_batch_size")
         + at_least(0, "weight_decay", "label_smoothing", "time_budget_minutes", "warmup_steps",
                    "patience", "class_balance_power", "identity_weight", "max_images")
         + [rule("learning_rate", lambda v: v > 0, "--learning_rate must be > 0"),
            rule("val_fraction", _in(0, 1, high_open=True), "--val_fraction must be in [0, 1)"),
            rule("dropout", _in(0, 1, high_open=True), "--dropout must be in [0, 1)"),
            rule("crop_scale_min", _in(0, 1, low_open=True), "--crop_scale_min must be in (0, 1]"),
            rule("final_lr_fraction", _in(0, 1), "--final_lr_fraction must be in [0, 1]"),
            rule("low_res_size", lambda v: v == 0 or 67 <= v <= 227,
                 "--low_res_size must be 0 or in 67..227"),
            rule("low_res_fraction", _in(0, 1), "--low_res_fraction must be in [0, 1]"),
            rule("lowres_prob", _in(0, 1), "--lowres_prob must be in [0, 1]"),
            one_of("class_balance", CLASS_BALANCE), one_of("optimizer", OPTIMIZERS),
            one_of("identity", IDENTITY_MODES), one_of("train_layers", TRAIN_LAYERS),
            one_of("verification_layer", FEATURE_LAYERS),
            rule(("train_layers", "init_from"), lambda layers, init: layers != "age_head" or init,
                 "--train_layers=age_head trains the age head on a frozen trunk: give the trunk "
                 "with --init_from"),
            rule("init_from", _checkpoint_or_file,
                 "--init_from {init_from}: no such file or checkpoint")])
#: Flag name -> config field where they differ (the run flags' canonical names).
FIELDS = {"checkpoint_dir": "output_dir", "save_interval": "save_every",
          "log_interval": "log_every", "xla": "jit_compile"}


class PretrainError(FaceAgingError, ValueError):
    """The run cannot start or go on as configured (the message says why, in one line)."""


@dataclasses.dataclass
class PretrainConfig:
    list_dir: str
    output_dir: str
    root_folder: Optional[str] = None       # default: list_dir
    age_groups: int = 5
    identities: int = 2000                  # new_2 width; train_ipcgan's AlexNet has 2000
    identity: str = "auto"                  # train new_1/new_2 (+fc6/fc7) on identity labels
    identity_weight: float = 1.0
    train_layers: str = "auto"              # auto: trunk + the heads with labels; age_head
    verification_layer: str = "conv5"       # features judged by face verification
    init_from: Optional[str] = None         # None: scratch; .npy: bvlc; else TF1/TF2 checkpoint
    conv1_rgb: bool = False                 # bvlc only: reverse conv1 input channels
    batch_size: int = 32
    max_steps: int = 3000
    time_budget_minutes: float = 0.0        # 0: none; else stop (and end the schedule) by then
    optimizer: str = "adamw"
    learning_rate: float = 2e-4
    momentum: float = 0.9                   # sgd
    weight_decay: float = 0.05              # adamw: decoupled (lr * wd a step); sgd: L2 (~5e-4)
    warmup_steps: int = 100
    final_lr_fraction: float = 0.02         # cosine decay to this fraction of the peak
    label_smoothing: float = 0.1
    dropout: float = 0.5
    class_balance: str = "weights"
    class_balance_power: float = 0.5        # weights ~ (1 / frequency) ** power
    val_fraction: float = 0.1
    split_seed: int = 0
    eval_every: int = 200
    patience: int = 4                       # evaluations without improvement before stopping
    min_delta: float = 0.0
    save_every: int = 200                   # training checkpoints (resume)
    log_every: int = 10
    augment: bool = True
    crop_scale_min: float = 0.8
    color_jitter: float = 0.2
    lowres_prob: float = 0.3
    data_scale_init: bool = True            # scratch: rescale each layer to unit activations
    seed: int = 0
    max_images: int = 0                     # 0: all; else a seeded sample of N (quick tries)
    low_res_size: int = 0                   # >0: train at this side first (cheaper), see forward
    low_res_fraction: float = 0.0           # share of the schedule trained at low_res_size
    jit_compile: bool = True                # XLA for the training step (~20% less CPU here)
    mixed_precision: str = "none"           # none | float16 | bfloat16 (face_aging.precision)
    eval_batch_size: int = 64
    deterministic: bool = False             # op determinism, one intra-op thread (see module doc)
    nan_policy: str = "stop"                # a non-finite step is undone; stop: raise; skip: go on
    nan_at_steps: Tuple[int, ...] = ()      # tests only: these steps' loss is NaN (1 = first)


def problems(config: PretrainConfig) -> List[str]:
    """The rules ``config`` breaks (:data:`RULES` and the run flags'), one line each."""
    run_rules = [r for r in RUN_RULES if FIELDS.get(r.names[0], r.names[0]) in
                 {f.name for f in dataclasses.fields(config)}]
    return violations(RULES + run_rules, config, FIELDS)
