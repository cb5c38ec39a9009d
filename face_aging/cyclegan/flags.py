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
from face_aging.cyclegan.config import GAN_MODES, RULES, CycleGANConfig
from face_aging.engine.flags import define_run_flags, register_rules

_D = CycleGANConfig()


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
    flags.DEFINE_float("learning_rate", _D.lr, "Initial Adam learning rate of both generators "
                       "and both discriminators (the reference's --lr, which is an alias).",
                       **where)
    flags.DEFINE_alias("lr", "learning_rate", **where)
    flags.DEFINE_float("beta1", _D.beta1, "Adam beta1.", **where)
    flags.DEFINE_float("beta2", _D.beta2, "Adam beta2 (the reference fixes 0.999).", **where)
    flags.DEFINE_integer("n_epochs", _D.n_epochs, "Epochs at the initial learning rate.", **where)
    flags.DEFINE_integer("n_epochs_decay", _D.n_epochs_decay, "Epochs of linear decay to zero "
                         "after them.", **where)
    flags.DEFINE_integer("batch_size", _D.batch_size, "Faces of each domain per step (reference 1).",
                         **where)
    # --- outputs, reproducibility and faults: the run flags every trainer shares ----------
    define_run_flags(flag_values, dict(
        checkpoint_dir=_D.checkpoint_dir, sample_dir=None, tensorboard_dir=None,
        save_interval=_D.save_interval, sample_interval=_D.sample_interval,
        log_interval=_D.log_interval, max_to_keep=_D.max_to_keep, max_steps=None, seed=_D.seed,
        deterministic=_D.deterministic, nan_policy=_D.nan_policy,
        mixed_precision=_D.mixed_precision, dry_run=False),
        notes=dict(sample_dir="(Strips; default: CHECKPOINT_DIR/samples.)",
                   max_steps="(Default: the whole schedule, (n_epochs + n_epochs_decay) * "
                             "max(young, old) / batch_size.)",
                   seed="(And of the jitter and the image pools.)",
                   dry_run="(And the data.)"))
    flags.DEFINE_integer("num_samples", _D.num_samples, "Faces of each domain in the sample strips.",
                         **where)
    register_rules(flag_values, RULES)
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
        lambda_identity=FLAGS.lambda_identity, pool_size=FLAGS.pool_size,
        lr=FLAGS.learning_rate, beta1=FLAGS.beta1, beta2=FLAGS.beta2, n_epochs=FLAGS.n_epochs,
        n_epochs_decay=FLAGS.n_epochs_decay, batch_size=FLAGS.batch_size,
        max_steps=FLAGS.max_steps, checkpoint_dir=FLAGS.checkpoint_dir,
        sample_dir=FLAGS.sample_dir, tensorboard_dir=FLAGS.tensorboard_dir,
        save_interval=FLAGS.save_interval, sample_interval=FLAGS.sample_interval,
        log_interval=FLAGS.log_interval, max_to_keep=FLAGS.max_to_keep or None,
        num_samples=FLAGS.num_samples, seed=FLAGS.seed, deterministic=FLAGS.deterministic,
        nan_policy=FLAGS.nan_policy, mixed_precision=FLAGS.mixed_precision)
