"""The flags of ``python -m face_aging.pretrain`` (the command: ``face_aging.apps.pretrain``):
:func:`define_flags` defines them on a ``FlagValues``, :func:`config_from_flags` turns the
parsed flags into a ``PretrainConfig``; the training (``face_aging.alexnet.trainer.pretrain``)
never reads flags. No TensorFlow here: ``--help`` stays fast.
"""
from __future__ import annotations

import os

from absl import app, flags

from face_aging.alexnet import config
from face_aging.backbones import FEATURE_LAYERS
from face_aging.engine.flags import define_run_flags, register_rules

#: Tests only: a comma-separated list of steps whose loss is made NaN (exercises --nan_policy).
NAN_AT_STEPS_ENV = "FACE_AGING_PRETRAIN_NAN_AT_STEPS"

_D = config.PretrainConfig(list_dir="", output_dir="")


def define_flags(flag_values) -> None:
    """Defines the flags of ``python -m face_aging.pretrain`` (and their validators) on
    ``flag_values``."""
    where = dict(flag_values=flag_values)
    _define_data_and_model_flags(where)
    _define_schedule_flags(where)
    _define_augmentation_flags(where)
    # The run flags every trainer shares; this command's older names stay as aliases.
    define_run_flags(flag_values, dict(
        checkpoint_dir=None, save_interval=_D.save_every, log_interval=_D.log_every,
        max_steps=_D.max_steps, seed=_D.seed, deterministic=_D.deterministic,
        nan_policy=_D.nan_policy, mixed_precision=_D.mixed_precision, xla=_D.jit_compile),
        notes=dict(checkpoint_dir="The run folder: training checkpoints (train/), the best "
                                  "weights (pretrained/), TensorBoard logs (tensorboard/) and "
                                  "the report.",
                   save_interval="(Training checkpoints, to resume.)",
                   max_steps="(The schedule's length.)",
                   deterministic="(With --time_budget_minutes=0; no XLA: TF has no "
                                 "deterministic XLA max-pool gradient.)",
                   xla="(Not with --deterministic.)"),
        aliases=dict(output_dir="checkpoint_dir", save_every="save_interval",
                     log_every="log_interval", jit_compile="xla"))
    flags.mark_flags_as_required(["list_dir", "output_dir"], **where)
    register_rules(flag_values, config.RULES)


def _define_data_and_model_flags(where) -> None:
    """The data, the heads trained and where the weights start."""
    flags.DEFINE_string("list_dir", None, "Prepared dataset folder(s), comma-separated: "
                        "train.txt, test.txt where it has ages, train_identity.txt where it has "
                        "identities (e.g. data/utkface227,data/cacd_vs,data/lag: ages from "
                        "UTKFace, people from CACD-VS and LAG), verification_pairs.txt for the "
                        "report.", **where)
    flags.DEFINE_string("root_folder", None, "Root of the image paths (default: --list_dir).",
                        **where)
    flags.DEFINE_integer("age_groups", _D.age_groups, "Age groups (age head width).", **where)
    flags.DEFINE_enum("identity", _D.identity, list(config.IDENTITY_MODES),
                      "Train the identity head (fc6, fc7, new_1, new_2) on train_identity.txt: "
                      "auto = where that file exists.", **where)
    flags.DEFINE_float("identity_weight", _D.identity_weight, "Weight of the identity loss.",
                       **where)
    flags.DEFINE_enum("train_layers", _D.train_layers, list(config.TRAIN_LAYERS),
                      "auto: the trunk (conv1-5) and every head the data has labels for; "
                      "age_head: only age_fc6-8 on the trunk of --init_from, frozen (how the "
                      "release's age classifier sat on its identity net).", **where)
    flags.DEFINE_enum("verification_layer", _D.verification_layer, list(FEATURE_LAYERS),
                      "Layer whose features face verification judges (validation of the identity "
                      "part, and the CACD-VS figure of the report): train_ipcgan.py's "
                      "--fea_layer_name.", **where)
    flags.DEFINE_string("init_from", None, "Starting point: bvlc_alexnet.npy (conv1..5, fc6, fc7), "
                        "or a TF1/TF2 AlexNet checkpoint (prefix or folder); default: from scratch.",
                        **where)
    flags.DEFINE_boolean("conv1_rgb", _D.conv1_rgb, "bvlc .npy only: reverse conv1's input channels "
                         "(Caffe BGR filters for RGB input). Default keeps them, as the release.",
                         **where)


def _define_schedule_flags(where) -> None:
    """Batch, schedule, optimiser, losses and validation."""
    flags.DEFINE_integer("batch_size", _D.batch_size, "Images per step.", **where)
    flags.DEFINE_float("time_budget_minutes", _D.time_budget_minutes,
                       "Stop after this much training time; the LR schedule then runs on "
                       "max(step / max_steps, time / budget). 0: no budget.", **where)
    flags.DEFINE_enum("optimizer", _D.optimizer, list(config.OPTIMIZERS),
                      "adamw (decoupled weight decay) or sgd (Nesterov momentum, L2).", **where)
    flags.DEFINE_float("learning_rate", _D.learning_rate, "Peak learning rate.", **where)
    flags.DEFINE_float("momentum", _D.momentum, "SGD momentum.", **where)
    flags.DEFINE_float("weight_decay", _D.weight_decay, "Weight decay (kernels only).", **where)
    flags.DEFINE_integer("warmup_steps", _D.warmup_steps, "Linear warm-up steps.", **where)
    flags.DEFINE_float("final_lr_fraction", _D.final_lr_fraction,
                       "Cosine decay ends at this fraction of the peak learning rate.", **where)
    flags.DEFINE_float("label_smoothing", _D.label_smoothing, "Label smoothing.", **where)
    flags.DEFINE_float("dropout", _D.dropout, "Dropout rate on the fc layers (pretraining only).",
                       **where)
    flags.DEFINE_enum("class_balance", _D.class_balance, list(config.CLASS_BALANCE),
                      "weights: loss weights ~ (1/frequency)**power; sampling: equal draws "
                      "per group; none.", **where)
    flags.DEFINE_float("class_balance_power", _D.class_balance_power,
                       "Power of the inverse frequency for --class_balance=weights (1 = full).",
                       **where)
    flags.DEFINE_float("val_fraction", _D.val_fraction, "Share of train.txt held out for "
                       "validation (by identity where there are identities).", **where)
    flags.DEFINE_integer("split_seed", _D.split_seed, "Seed of the validation split's hash.",
                         **where)
    flags.DEFINE_integer("eval_every", _D.eval_every, "Validate (and keep the best) every N steps.",
                         **where)
    flags.DEFINE_integer("patience", _D.patience, "Stop after N validations without improvement "
                         "(0: never).", **where)


def _define_augmentation_flags(where) -> None:
    """Augmentation, subsets and the low-resolution phase."""
    flags.DEFINE_boolean("augment", _D.augment, "Random crop/flip, colour jitter, 128 px round trip.",
                         **where)
    flags.DEFINE_float("crop_scale_min", _D.crop_scale_min, "Smallest random crop (share of side).",
                       **where)
    flags.DEFINE_float("color_jitter", _D.color_jitter, "Brightness/contrast/saturation jitter.",
                       **where)
    flags.DEFINE_float("lowres_prob", _D.lowres_prob, "Probability of a 227->128->227 round trip "
                       "(what generated faces go through).", **where)
    flags.DEFINE_boolean("data_scale_init", _D.data_scale_init, "From scratch: rescale each layer "
                         "to unit pre-activation std on a batch of training images.", **where)
    flags.DEFINE_integer("max_images", _D.max_images, "Use only the first N training images (0: all).",
                         **where)
    flags.DEFINE_integer("low_res_size", _D.low_res_size, "Train the first --low_res_fraction of "
                         "the schedule at this input side (e.g. 131: pool5 3x3, repeated to 6x6; "
                         "~3x cheaper a step), then at 227. 0: always 227.", **where)
    flags.DEFINE_float("low_res_fraction", _D.low_res_fraction, "Share of the schedule (steps or "
                       "time budget) trained at --low_res_size.", **where)
    flags.DEFINE_integer("eval_batch_size", _D.eval_batch_size, "Batch size of evaluation.",
                         **where)


def config_from_flags(flag_values=None) -> config.PretrainConfig:
    """The parsed flags (default absl's FLAGS) as a PretrainConfig; ``nan_at_steps`` from the
    environment (:data:`NAN_AT_STEPS_ENV`, tests only)."""
    FLAGS = flag_values if flag_values is not None else flags.FLAGS
    return config.PretrainConfig(
        list_dir=FLAGS.list_dir, output_dir=FLAGS.checkpoint_dir, root_folder=FLAGS.root_folder,
        age_groups=FLAGS.age_groups, identity=FLAGS.identity,
        identity_weight=FLAGS.identity_weight, train_layers=FLAGS.train_layers,
        verification_layer=FLAGS.verification_layer, init_from=FLAGS.init_from,
        conv1_rgb=FLAGS.conv1_rgb, batch_size=FLAGS.batch_size, max_steps=FLAGS.max_steps,
        time_budget_minutes=FLAGS.time_budget_minutes, optimizer=FLAGS.optimizer,
        learning_rate=FLAGS.learning_rate, momentum=FLAGS.momentum,
        weight_decay=FLAGS.weight_decay, warmup_steps=FLAGS.warmup_steps,
        final_lr_fraction=FLAGS.final_lr_fraction, label_smoothing=FLAGS.label_smoothing,
        dropout=FLAGS.dropout, class_balance=FLAGS.class_balance,
        class_balance_power=FLAGS.class_balance_power, val_fraction=FLAGS.val_fraction,
        split_seed=FLAGS.split_seed, eval_every=FLAGS.eval_every, patience=FLAGS.patience,
        save_every=FLAGS.save_interval, log_every=FLAGS.log_interval, augment=FLAGS.augment,
        crop_scale_min=FLAGS.crop_scale_min, color_jitter=FLAGS.color_jitter,
        lowres_prob=FLAGS.lowres_prob, data_scale_init=FLAGS.data_scale_init, seed=FLAGS.seed,
        max_images=FLAGS.max_images, eval_batch_size=FLAGS.eval_batch_size,
        low_res_size=FLAGS.low_res_size, low_res_fraction=FLAGS.low_res_fraction,
        jit_compile=FLAGS.xla, deterministic=FLAGS.deterministic,
        nan_policy=FLAGS.nan_policy, mixed_precision=FLAGS.mixed_precision,
        nan_at_steps=nan_at_steps())


def nan_at_steps():
    """The steps :data:`NAN_AT_STEPS_ENV` names (tests only; a bad value is a usage error)."""
    raw = os.environ.get(NAN_AT_STEPS_ENV, "").strip()
    try:
        return tuple(int(v) for v in raw.split(",") if v.strip())
    except ValueError:
        raise app.UsageError(f"{NAN_AT_STEPS_ENV}={raw!r}: expected step numbers like 3,5")
