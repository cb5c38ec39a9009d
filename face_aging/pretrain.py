"""Train the frozen AlexNet here (age head, trunk, identity head where there are identities):

    python -m face_aging.pretrain --list_dir=data/utkface --output_dir=runs/alexnet_utkface

then ``train_ipcgan.py --alexnet_pretrained_model=runs/alexnet_utkface/pretrained
--age_pretrained_model=runs/alexnet_utkface/pretrained``. Resumes from ``OUTPUT/train``.
See docs/PRETRAIN.md; the loop is ``face_aging.pretraining.pretrain``.

Long runs: kill it at any moment and rerun the same command to continue; SIGTERM / Ctrl-C
write a checkpoint and exit 0; with --deterministic the result equals an uninterrupted run's.
"""
from __future__ import annotations

import os
import sys

from face_aging.runtime_env import prepare_tf_environment  # imports no TensorFlow

prepare_tf_environment(sys.argv, log_level="2")  # before TensorFlow is imported

# Tests only: a comma-separated list of steps whose loss is made NaN (exercises --nan_policy).
NAN_AT_STEPS_ENV = "FACE_AGING_PRETRAIN_NAN_AT_STEPS"

from absl import app, flags  # noqa: E402

from face_aging import cli, precision, pretrain_config  # noqa: E402 (no TensorFlow: --help stays fast)
from face_aging.config import FEATURE_LAYERS  # noqa: E402

_D = pretrain_config.PretrainConfig(list_dir="", output_dir="")
FLAGS = flags.FLAGS

flags.DEFINE_string("list_dir", None, "Prepared dataset folder(s), comma-separated: "
                    "train.txt, test.txt where it has ages, train_identity.txt where it has "
                    "identities (e.g. data/utkface227,data/cacd_vs,data/lag: ages from "
                    "UTKFace, people from CACD-VS and LAG), verification_pairs.txt for the "
                    "report.")
flags.DEFINE_string("root_folder", None, "Root of the image paths (default: --list_dir).")
flags.DEFINE_string("output_dir", None, "Where checkpoints, TensorBoard logs and the report go.")
flags.DEFINE_integer("age_groups", _D.age_groups, "Age groups (age head width).")
flags.DEFINE_enum("identity", _D.identity, list(pretrain_config.IDENTITY_MODES),
                  "Train the identity head (fc6, fc7, new_1, new_2) on train_identity.txt: "
                  "auto = where that file exists.")
flags.DEFINE_float("identity_weight", _D.identity_weight, "Weight of the identity loss.")
flags.DEFINE_enum("train_layers", _D.train_layers, list(pretrain_config.TRAIN_LAYERS),
                  "auto: the trunk (conv1-5) and every head the data has labels for; "
                  "age_head: only age_fc6-8 on the trunk of --init_from, frozen (how the "
                  "release's age classifier sat on its identity net).")
flags.DEFINE_enum("verification_layer", _D.verification_layer, list(FEATURE_LAYERS),
                  "Layer whose features face verification judges (validation of the identity "
                  "part, and the CACD-VS figure of the report): train_ipcgan.py's "
                  "--fea_layer_name.")
flags.DEFINE_string("init_from", None, "Starting point: bvlc_alexnet.npy (conv1..5, fc6, fc7), "
                    "or a TF1/TF2 AlexNet checkpoint (prefix or folder); default: from scratch.")
flags.DEFINE_boolean("conv1_rgb", _D.conv1_rgb, "bvlc .npy only: reverse conv1's input channels "
                     "(Caffe BGR filters for RGB input). Default keeps them, as the release.")
flags.DEFINE_integer("batch_size", _D.batch_size, "Images per step.")
flags.DEFINE_integer("max_steps", _D.max_steps, "Training steps (the schedule's length).")
flags.DEFINE_float("time_budget_minutes", _D.time_budget_minutes,
                   "Stop after this much training time; the LR schedule then runs on "
                   "max(step / max_steps, time / budget). 0: no budget.")
flags.DEFINE_enum("optimizer", _D.optimizer, list(pretrain_config.OPTIMIZERS),
                  "adamw (decoupled weight decay) or sgd (Nesterov momentum, L2).")
flags.DEFINE_float("learning_rate", _D.learning_rate, "Peak learning rate.")
flags.DEFINE_float("momentum", _D.momentum, "SGD momentum.")
flags.DEFINE_float("weight_decay", _D.weight_decay, "Weight decay (kernels only).")
flags.DEFINE_integer("warmup_steps", _D.warmup_steps, "Linear warm-up steps.")
flags.DEFINE_float("final_lr_fraction", _D.final_lr_fraction,
                   "Cosine decay ends at this fraction of the peak learning rate.")
flags.DEFINE_float("label_smoothing", _D.label_smoothing, "Label smoothing.")
flags.DEFINE_float("dropout", _D.dropout, "Dropout rate on the fc layers (pretraining only).")
flags.DEFINE_enum("class_balance", _D.class_balance, list(pretrain_config.CLASS_BALANCE),
                  "weights: loss weights ~ (1/frequency)**power; sampling: equal draws "
                  "per group; none.")
flags.DEFINE_float("class_balance_power", _D.class_balance_power,
                   "Power of the inverse frequency for --class_balance=weights (1 = full).")
flags.DEFINE_float("val_fraction", _D.val_fraction, "Share of train.txt held out for "
                   "validation (by identity where there are identities).")
flags.DEFINE_integer("split_seed", _D.split_seed, "Seed of the validation split's hash.")
flags.DEFINE_integer("eval_every", _D.eval_every, "Validate (and keep the best) every N steps.")
flags.DEFINE_integer("patience", _D.patience, "Stop after N validations without improvement "
                     "(0: never).")
flags.DEFINE_integer("save_every", _D.save_every, "Training checkpoint (resume) every N steps.")
flags.DEFINE_integer("log_every", _D.log_every, "Progress line every N steps.")
flags.DEFINE_boolean("augment", _D.augment, "Random crop/flip, colour jitter, 128 px round trip.")
flags.DEFINE_float("crop_scale_min", _D.crop_scale_min, "Smallest random crop (share of side).")
flags.DEFINE_float("color_jitter", _D.color_jitter, "Brightness/contrast/saturation jitter.")
flags.DEFINE_float("lowres_prob", _D.lowres_prob, "Probability of a 227->128->227 round trip "
                   "(what generated faces go through).")
flags.DEFINE_boolean("data_scale_init", _D.data_scale_init, "From scratch: rescale each layer "
                     "to unit pre-activation std on a batch of training images.")
flags.DEFINE_integer("seed", _D.seed, "Random seed.")
flags.DEFINE_integer("max_images", _D.max_images, "Use only the first N training images (0: all).")
flags.DEFINE_integer("low_res_size", _D.low_res_size, "Train the first --low_res_fraction of "
                     "the schedule at this input side (e.g. 131: pool5 3x3, repeated to 6x6; "
                     "~3x cheaper a step), then at 227. 0: always 227.")
flags.DEFINE_float("low_res_fraction", _D.low_res_fraction, "Share of the schedule (steps or "
                   "time budget) trained at --low_res_size.")
flags.DEFINE_boolean("jit_compile", _D.jit_compile, "XLA-compile the training step (not "
                     "with --deterministic: TF has no deterministic XLA max-pool gradient).")
precision.define_flag()
flags.DEFINE_integer("eval_batch_size", _D.eval_batch_size, "Batch size of evaluation.")
flags.DEFINE_boolean("deterministic", _D.deterministic, "TF op determinism, oneDNN and Grappler "
                     "off, one intra-op thread (multi-threaded reductions vary with load): the same seed "
                     "gives the same weights, and a killed and resumed run ends with the same "
                     "weights, bit for bit, as an uninterrupted one (with "
                     "--time_budget_minutes=0). Slower: one thread, no XLA.")
flags.DEFINE_enum("nan_policy", _D.nan_policy, ["stop", "skip"], "A step with a non-finite "
                  "loss, gradient or weight is undone; stop: end the run with one line; "
                  "skip: go on.")

flags.mark_flags_as_required(["list_dir", "output_dir"])
for _name in ("batch_size",):
    flags.register_validator(_name, lambda v: v >= 2, message=f"--{_name} must be >= 2")
for _name in ("max_steps", "eval_every", "save_every", "log_every", "eval_batch_size"):
    flags.register_validator(_name, lambda v: v >= 1, message=f"--{_name} must be >= 1")
for _name in ("weight_decay", "label_smoothing", "time_budget_minutes", "warmup_steps",
              "patience", "class_balance_power", "identity_weight", "max_images"):
    flags.register_validator(_name, lambda v: v >= 0, message=f"--{_name} must be >= 0")
flags.register_validator("learning_rate", lambda v: v > 0, message="--learning_rate must be > 0")
flags.register_validator("age_groups", lambda v: v >= 2, message="--age_groups must be >= 2")
flags.register_validator("val_fraction", lambda v: 0 <= v < 1,
                         message="--val_fraction must be in [0, 1)")
flags.register_validator("dropout", lambda v: 0 <= v < 1, message="--dropout must be in [0, 1)")
flags.register_validator("crop_scale_min", lambda v: 0 < v <= 1,
                         message="--crop_scale_min must be in (0, 1]")
flags.register_validator("final_lr_fraction", lambda v: 0 <= v <= 1,
                         message="--final_lr_fraction must be in [0, 1]")
flags.register_validator("low_res_size", lambda v: v == 0 or 67 <= v <= 227,
                         message="--low_res_size must be 0 or in 67..227")
flags.register_validator("low_res_fraction", lambda v: 0 <= v <= 1,
                         message="--low_res_fraction must be in [0, 1]")
flags.register_validator("lowres_prob", lambda v: 0 <= v <= 1,
                         message="--lowres_prob must be in [0, 1]")


def config_from_flags() -> pretrain_config.PretrainConfig:
    return pretrain_config.PretrainConfig(
        list_dir=FLAGS.list_dir, output_dir=FLAGS.output_dir, root_folder=FLAGS.root_folder,
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
        save_every=FLAGS.save_every, log_every=FLAGS.log_every, augment=FLAGS.augment,
        crop_scale_min=FLAGS.crop_scale_min, color_jitter=FLAGS.color_jitter,
        lowres_prob=FLAGS.lowres_prob, data_scale_init=FLAGS.data_scale_init, seed=FLAGS.seed,
        max_images=FLAGS.max_images, eval_batch_size=FLAGS.eval_batch_size,
        low_res_size=FLAGS.low_res_size, low_res_fraction=FLAGS.low_res_fraction,
        jit_compile=FLAGS.jit_compile, deterministic=FLAGS.deterministic,
        nan_policy=FLAGS.nan_policy, mixed_precision=FLAGS.mixed_precision,
        nan_at_steps=_nan_at_steps())


def _nan_at_steps():
    raw = os.environ.get(NAN_AT_STEPS_ENV, "").strip()
    try:
        return tuple(int(v) for v in raw.split(",") if v.strip())
    except ValueError:
        raise app.UsageError(f"{NAN_AT_STEPS_ENV}={raw!r}: expected step numbers like 3,5")


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {' '.join(argv[1:])}")
    import tensorflow as tf
    from absl import logging

    from face_aging import pretraining
    from face_aging.checkpoints import CheckpointMismatchError
    from face_aging.training_loop import NonFiniteLossError, TrainingSetupError

    logging.set_verbosity(logging.WARNING)
    try:
        pretraining.pretrain(config_from_flags(), print_fn=lambda s: print(s, flush=True))
    except (pretraining.PretrainError, TrainingSetupError, NonFiniteLossError,
            CheckpointMismatchError, FileNotFoundError) as e:
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


if __name__ == "__main__":
    cli.run(main, prog="pretrain")
