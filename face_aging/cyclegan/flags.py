"""The flags of ``train_cyclegan.py``: the reference CycleGAN's options under their names
(lower-cased: ``--lambda_a`` is the reference's ``--lambda_A``) plus this project's run
options. :func:`define_flags` defines them on a ``FlagValues``; :func:`config_from_flags`
turns the parsed flags into a ``CycleGANConfig``: the library never reads FLAGS.
docs/CYCLEGAN.md maps every reference option.

Several of them share their names with ``train_ipcgan.py``'s (such as --batch_size): define
the two sets on different ``FlagValues``.
"""
from __future__ import annotations

import os

from absl import flags

# TF-free imports only: --help and bad flags answer before TensorFlow loads.
from face_aging import precision
from face_aging.cyclegan.config import GAN_MODES, CycleGANConfig
from face_aging.engine.options import NAN_POLICIES

_D = CycleGANConfig()


def _at_least(minimum):
    return lambda v: v is None or v >= minimum


def _check_data(values):
    young, old, age_list = values["young_dir"], values["old_dir"], values["age_list"]
    if age_list:
        if young or old:
            raise flags.ValidationError("give either --young_dir/--old_dir or --age_list, "
                                        "not both")
        if not os.path.isfile(age_list):
            raise flags.ValidationError(f"--age_list {age_list}: no such file")
        root = values["age_list_root"]
        if root and not os.path.isdir(root):
            raise flags.ValidationError(f"--age_list_root {root}: no such directory")
        return True
    if not young or not old:
        raise flags.ValidationError("no data: give --young_dir and --old_dir (or --age_list)")
    for name in ("young_dir", "old_dir"):
        if not os.path.isdir(values[name]):
            raise flags.ValidationError(f"--{name} {values[name]}: no such directory")
    return True


def define_flags(flag_values) -> None:
    """Defines the flags of ``train_cyclegan.py`` (and their validators) on ``flag_values``."""
    where = dict(flag_values=flag_values)
    # --- data ------------------------------------------------------------------------------
    flags.DEFINE_string("young_dir", None, "Folder of young faces (domain A, the reference's "
                        "trainA); images found recursively.", **where)
    flags.DEFINE_string("old_dir", None, "Folder of old faces (domain B, trainB).", **where)
    flags.DEFINE_string("age_list", None, "Instead of the folders: an age list as "
                        "`python -m face_aging.data.prepare` writes it (e.g. data/wiki/train_age.txt, "
                        "'relative/path age' lines), split by --young_max_age / --old_min_age.",
                        **where)
    flags.DEFINE_string("age_list_root", None, "Folder the --age_list paths are relative to "
                        "(default: the list's folder).", **where)
    flags.DEFINE_float("young_max_age", _D.young_max_age, "--age_list: ages up to this are young.",
                       **where)
    flags.DEFINE_float("old_min_age", _D.old_min_age, "--age_list: ages from this on are old "
                       "(ages in between are not used).", **where)
    flags.DEFINE_integer("max_dataset_size", None, "Use at most this many images of each domain "
                         "(the first ones by path). Default: all.", **where)
    # --- preprocessing (--preprocess resize_and_crop) ---------------------------------------
    flags.DEFINE_integer("crop_size", _D.crop_size, "Side of the training crops and the networks' "
                         "images (reference 256; a multiple of 4).", **where)
    flags.DEFINE_integer("load_size", None, "Faces are resized to this before the random crop "
                         "(reference 286 for 256; default: crop_size * 286 / 256, e.g. 143 for 128).",
                         **where)
    flags.DEFINE_bool("no_flip", False, "No random horizontal flips.", **where)
    # --- networks ----------------------------------------------------------------------------
    flags.DEFINE_integer("n_blocks", None, "Residual blocks of the generators (reference "
                         "resnet_9blocks / resnet_6blocks). Default: 9 if crop_size >= 256, else 6.",
                         **where)
    flags.DEFINE_integer("ngf", _D.ngf, "Generator width: filters of the first conv layer.",
                         **where)
    flags.DEFINE_integer("ndf", _D.ndf, "Discriminator width: filters of the first conv layer.",
                         **where)
    flags.DEFINE_float("init_gain", _D.init_gain, "Weights ~ normal(0, init_gain), biases 0.",
                       **where)
    # --- objective -----------------------------------------------------------------------------
    flags.DEFINE_enum("gan_mode", _D.gan_mode, list(GAN_MODES),
                      "lsgan: least-squares GAN (the reference's CycleGAN); vanilla: cross-entropy.",
                      **where)
    flags.DEFINE_float("lambda_a", _D.lambda_a, "Weight of the cycle loss A -> B -> A "
                       "(reference --lambda_A).", **where)
    flags.DEFINE_float("lambda_b", _D.lambda_b, "Weight of the cycle loss B -> A -> B "
                       "(reference --lambda_B).", **where)
    flags.DEFINE_float("lambda_identity", _D.lambda_identity, "Identity loss weight, relative to "
                       "lambda_a/lambda_b: L1(G_A(B), B) * lambda_b * lambda_identity, and likewise. "
                       "0 turns it off.", **where)
    flags.DEFINE_integer("pool_size", _D.pool_size, "Generated images kept per direction for the "
                         "discriminator updates (0: no pool).", **where)
    # --- optimisation --------------------------------------------------------------------------
    flags.DEFINE_float("lr", _D.lr, "Initial Adam learning rate of both generators and both "
                       "discriminators.", **where)
    flags.DEFINE_float("beta1", _D.beta1, "Adam beta1.", **where)
    flags.DEFINE_float("beta2", _D.beta2, "Adam beta2 (the reference fixes 0.999).", **where)
    flags.DEFINE_integer("n_epochs", _D.n_epochs, "Epochs at the initial learning rate.", **where)
    flags.DEFINE_integer("n_epochs_decay", _D.n_epochs_decay, "Epochs of linear decay to zero "
                         "after them.", **where)
    flags.DEFINE_integer("batch_size", _D.batch_size, "Faces of each domain per step (reference 1).",
                         **where)
    flags.DEFINE_integer("max_steps", None, "Stop after this many steps (default: the whole "
                         "schedule, (n_epochs + n_epochs_decay) * max(young, old) / batch_size).",
                         **where)
    # --- outputs -------------------------------------------------------------------------------
    flags.DEFINE_string("checkpoint_dir", _D.checkpoint_dir, "Where checkpoints are written and "
                        "resumed from.", **where)
    flags.DEFINE_string("sample_dir", None, "Sample strips (default: CHECKPOINT_DIR/samples).",
                        **where)
    flags.DEFINE_string("tensorboard_dir", None, "TensorBoard (default: CHECKPOINT_DIR/logs).",
                        **where)
    flags.DEFINE_integer("save_interval", _D.save_interval, "Steps between checkpoints (and at the "
                         "end).", **where)
    flags.DEFINE_integer("sample_interval", _D.sample_interval, "Steps between sample strips.",
                         **where)
    flags.DEFINE_integer("log_interval", _D.log_interval, "Steps between progress lines and "
                         "TensorBoard scalars.", **where)
    flags.DEFINE_integer("max_to_keep", _D.max_to_keep, "Checkpoints kept (0: all).", **where)
    flags.DEFINE_integer("num_samples", _D.num_samples, "Faces of each domain in the sample strips.",
                         **where)
    # --- reproducibility and faults ----------------------------------------------------------
    flags.DEFINE_integer("seed", _D.seed, "Seed of the weights, data order, jitter and pools.",
                         **where)
    flags.DEFINE_bool("deterministic", False, "TF op determinism, oneDNN and Grappler off, one intra-op "
                      "thread: "
                      "same seed -> same weights. Slower.", **where)
    flags.DEFINE_enum("nan_policy", _D.nan_policy, list(NAN_POLICIES), "A step with a non-finite "
                      "loss or weight is undone; stop: end the run with one line; skip: go on.",
                      **where)
    precision.define_flag(where["flag_values"])
    flags.DEFINE_bool("dry_run", False, "Check the options and the data, print them, write nothing.",
                      **where)

    for _name in ("lambda_a", "lambda_b", "lambda_identity", "lr", "pool_size", "n_epochs",
                  "n_epochs_decay", "n_blocks", "max_to_keep", "init_gain"):
        flags.register_validator(_name, _at_least(0), message=f"--{_name} must be >= 0", **where)
    for _name in ("batch_size", "ngf", "ndf", "save_interval", "sample_interval", "log_interval",
                  "num_samples", "max_steps", "max_dataset_size"):
        flags.register_validator(_name, _at_least(1), message=f"--{_name} must be >= 1", **where)
    flags.register_validator("crop_size", lambda v: v >= 32 and v % 4 == 0,
                             message="--crop_size must be a multiple of 4, at least 32 (the "
                                     "PatchGAN's smallest input)", **where)
    flags.register_validator("beta1", lambda v: 0 <= v < 1, message="--beta1 must be in [0, 1)",
                             **where)
    flags.register_validator("beta2", lambda v: 0 <= v < 1, message="--beta2 must be in [0, 1)",
                             **where)
    flags.register_multi_flags_validator(
        ["crop_size", "load_size"],
        lambda f: f["load_size"] is None or f["load_size"] >= f["crop_size"],
        message="--load_size must be >= --crop_size", **where)
    flags.register_multi_flags_validator(
        ["n_epochs", "n_epochs_decay"], lambda f: f["n_epochs"] + f["n_epochs_decay"] >= 1,
        message="--n_epochs + --n_epochs_decay must be >= 1", **where)
    flags.register_multi_flags_validator(
        ["young_max_age", "old_min_age"], lambda f: f["young_max_age"] < f["old_min_age"],
        message="--young_max_age must be below --old_min_age", **where)
    flags.register_multi_flags_validator(
        ["young_dir", "old_dir", "age_list", "age_list_root"], _check_data,
        message="the data options are incomplete (see the message above)", **where)


def config_from_flags(flag_values=None) -> CycleGANConfig:
    """The parsed flags (default absl's FLAGS) as a CycleGANConfig."""
    FLAGS = flag_values if flag_values is not None else flags.FLAGS
    return CycleGANConfig(
        young_dir=FLAGS.young_dir, old_dir=FLAGS.old_dir, age_list=FLAGS.age_list,
        age_list_root=FLAGS.age_list_root, young_max_age=FLAGS.young_max_age,
        old_min_age=FLAGS.old_min_age, max_dataset_size=FLAGS.max_dataset_size,
        crop_size=FLAGS.crop_size, load_size=FLAGS.load_size, no_flip=FLAGS.no_flip,
        n_blocks=FLAGS.n_blocks, ngf=FLAGS.ngf, ndf=FLAGS.ndf, init_gain=FLAGS.init_gain,
        gan_mode=FLAGS.gan_mode, lambda_a=FLAGS.lambda_a, lambda_b=FLAGS.lambda_b,
        lambda_identity=FLAGS.lambda_identity, pool_size=FLAGS.pool_size, lr=FLAGS.lr,
        beta1=FLAGS.beta1, beta2=FLAGS.beta2, n_epochs=FLAGS.n_epochs,
        n_epochs_decay=FLAGS.n_epochs_decay, batch_size=FLAGS.batch_size,
        max_steps=FLAGS.max_steps, checkpoint_dir=FLAGS.checkpoint_dir,
        sample_dir=FLAGS.sample_dir, tensorboard_dir=FLAGS.tensorboard_dir,
        save_interval=FLAGS.save_interval, sample_interval=FLAGS.sample_interval,
        log_interval=FLAGS.log_interval, max_to_keep=FLAGS.max_to_keep or None,
        num_samples=FLAGS.num_samples, seed=FLAGS.seed, deterministic=FLAGS.deterministic,
        nan_policy=FLAGS.nan_policy, mixed_precision=FLAGS.mixed_precision)
