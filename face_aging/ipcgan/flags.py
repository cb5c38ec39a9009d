"""The flags of ``train_ipcgan.py``: :func:`define_flags` defines them on a ``FlagValues``
(``flags.py`` at the top of the repository, their documented place, defines them on absl's
FLAGS), :func:`config_from_flags` turns the parsed flags into a ``TrainConfig``: the library
never reads FLAGS.

Every flag of the release (spec §5) keeps its name and meaning; the paper's recipe
(gan 75, fea 0.5e-4, age 30, conv5) is the documented default. New flags follow.
"""
from __future__ import annotations

import os

from absl import flags

# TF-free imports only: --help and bad flags answer before TensorFlow loads.
from face_aging.backbones import FEATURE_LAYERS
from face_aging.engine.flags import define_run_flags, register_rules, rule
from face_aging.engine.options import DISTRIBUTIONS
from face_aging.ipcgan.config import RULES, STEP_STRUCTURES, UPSAMPLE_MODES, TrainConfig

_D = TrainConfig()


def _checkpoint_exists(path):
    return os.path.isdir(path) or os.path.exists(path + ".index")


def _check_lists(values):
    list_dir = values["list_dir"]
    needed = [values["source_file"] or os.path.join(list_dir, "train.txt"),
              os.path.join(list_dir, "train_label_pair.txt")]
    missing = [p for p in needed if not os.path.isfile(p)]
    if missing:
        raise flags.ValidationError(
            f"missing {', '.join(missing)}: prepare a dataset with "
            "`python -m face_aging.data.prepare` and pass its folder as --list_dir")
    root = values["root_folder"] or list_dir
    if not os.path.isdir(root):
        raise flags.ValidationError(f"--root_folder {root}: no such directory")
    return True


def _check_pretrained(values):
    if values["allow_random_alexnet"]:
        return True
    for name in ("alexnet_pretrained_model", "age_pretrained_model"):
        path = values[name]
        if path and not _checkpoint_exists(path):
            raise flags.ValidationError(
                f"--{name}={path}: no such checkpoint (pass the release's file, a TF2 checkpoint "
                "from `python -m face_aging.pretrain`, or --allow_random_alexnet for a smoke run)")
    if not values["alexnet_pretrained_model"] and not values["age_pretrained_model"]:
        raise flags.ValidationError("no pretrained AlexNet: set --alexnet_pretrained_model / "
                                    "--age_pretrained_model, or --allow_random_alexnet")
    return True


#: A flag with no option behind it (the release declared it and never used it).
TV_LOSS_RULE = rule("tv_loss_weight", lambda v: v == 0,
                    "--tv_loss_weight is unused by the release and by this port; leave it 0")


def define_flags(flag_values) -> None:
    """Defines the flags of ``train_ipcgan.py`` (and their validators: the rules of
    ``face_aging.ipcgan.config``) on ``flag_values``."""
    where = dict(flag_values=flag_values)
    _define_release_flags(where)
    # --- the run flags every trainer shares (the release's checkpoint_dir, sample_dir, max_steps)
    define_run_flags(flag_values, dict(
        checkpoint_dir=_D.checkpoint_dir, tensorboard_dir=None, sample_dir=_D.sample_dir,
        save_interval=_D.save_interval, sample_interval=_D.sample_interval,
        log_interval=_D.log_interval, max_to_keep=_D.max_to_keep, max_steps=_D.max_steps,
        seed=_D.seed, deterministic=_D.deterministic, nan_policy=_D.nan_policy,
        mixed_precision=_D.mixed_precision, xla=_D.jit_compile, dry_run=False),
        notes=dict(sample_dir="(Grids of each target group.)"))
    _define_new_flags(where)
    _define_start_and_scale_flags(where)
    register_rules(flag_values, RULES + [TV_LOSS_RULE])
    flags.register_multi_flags_validator(
        ["list_dir", "source_file", "root_folder"], _check_lists,
        message="the data lists are incomplete (see the message above)", **where)
    flags.register_multi_flags_validator(
        ["alexnet_pretrained_model", "age_pretrained_model", "allow_random_alexnet"],
        _check_pretrained, **where)


def _define_release_flags(where) -> None:
    """The release's flags (spec §5), except the run flags."""
    flags.DEFINE_float("learning_rate", _D.learning_rate, "Adam learning rate of G and D.", **where)
    flags.DEFINE_integer("batch_size", _D.batch_size, "Faces per batch (>= 2: batch norm needs it).",
                         **where)
    flags.DEFINE_integer("image_size", _D.image_size,
                         "Side of G/D images in pixels (the release: 128; a multiple of 8).",
                         **where)
    flags.DEFINE_integer("noise_dim", 256, "Declared by the release and unused there; accepted for "
                         "command-line compatibility and ignored.", **where)
    flags.DEFINE_integer("feature_size", 128, "Declared by the release and unused there; accepted "
                         "and ignored.", **where)
    flags.DEFINE_integer("age_groups", _D.age_groups, "Number of age groups.", **where)
    flags.DEFINE_string("alexnet_pretrained_model", _D.alexnet_pretrained_model,
                        "AlexNet trunk + identity head: the release's TF1 file or a TF2 checkpoint "
                        "(prefix or directory). Empty string: none.", **where)
    flags.DEFINE_string("age_pretrained_model", _D.age_pretrained_model,
                        "AlexNet age head: the release's TF1 age classifier or a TF2 checkpoint. "
                        "Empty string: none.", **where)
    flags.DEFINE_integer("model_index", None, "With --source_checkpoint_dir: the step to start from "
                         "(default: the latest).", **where)
    flags.DEFINE_float("gan_loss_weight", _D.gan_loss_weight, "Adversarial loss weight (paper: 75).",
                       **where)
    flags.DEFINE_float("fea_loss_weight", _D.fea_loss_weight,
                       "Identity feature loss weight (paper: 0.5e-4; the loss is a per-sample sum).",
                       **where)
    flags.DEFINE_float("age_loss_weight", _D.age_loss_weight, "Age classification loss weight (paper: 30).",
                       **where)
    flags.DEFINE_float("tv_loss_weight", 0.0, "Declared by the release and unused there; must be 0.",
                       **where)
    flags.DEFINE_string("source_checkpoint_dir", None, "Start G and D from this checkpoint (TF2 or the "
                        "release's acgan.model-N) when checkpoint_dir has none yet.", **where)
    flags.DEFINE_enum("fea_layer_name", _D.fea_layer_name, list(FEATURE_LAYERS),
                      "AlexNet layer of the identity-preserving feature loss (paper: conv5).",
                      **where)
    flags.DEFINE_string("source_file", None, "List of source faces (default: LIST_DIR/train.txt).",
                        **where)
    flags.DEFINE_string("root_folder", None, "Image paths in the lists are relative to this folder "
                        "(default: --list_dir).", **where)


def _define_new_flags(where) -> None:
    """Flags beyond the release: data, options of the networks and the losses."""
    flags.DEFINE_string("list_dir", _D.list_dir, "Folder with train.txt, train_age_group_k.txt and "
                        "train_label_pair.txt (python -m face_aging.data.prepare writes it).",
                        **where)
    flags.DEFINE_bool("allow_random_alexnet", False, "Train without pretrained AlexNet weights "
                      "(meaningless age/identity losses; tests and smoke runs only).", **where)
    flags.DEFINE_enum("step_structure", _D.step_structure, list(STEP_STRUCTURES),
                      "reuse: fake faces and source features computed once a step (same maths); "
                      "release: recomputed for the G update as the release's graph did.", **where)
    flags.DEFINE_float("bn_epsilon", _D.bn_epsilon, "Batch-norm epsilon (release 1e-3; some users "
                       "reproduced the paper with 1e-5).", **where)
    flags.DEFINE_integer("d_output_channels", _D.d_output_channels, "Channels of the discriminator's "
                         "last layer (release 512; 1 is the option users found more stable).",
                         **where)
    flags.DEFINE_enum("upsample", _D.upsample, list(UPSAMPLE_MODES), "How G's two upsampling "
                      "layers work. deconv: the release's 3x3 stride-2 transposed convolutions, "
                      "whose uneven overlap shows as a checkerboard in trained outputs; "
                      "resize_conv: nearest-neighbour 2x upsampling then a 3x3 convolution with "
                      "the same variables (Odena et al. 2016), no built-in checkerboard. Recorded "
                      "beside the checkpoints; inference and export read it from there.", **where)
    flags.DEFINE_bool("per_sample_targets", False, "Not the release: draw a (target, false) age "
                      "pair per face instead of one per batch. With one pair per batch the batch "
                      "norm after G's first conv subtracts the batch-constant condition map "
                      "(only the zero-padded borders leave a trace); mixed targets let G learn the "
                      "condition much sooner.", **where)
    flags.DEFINE_float("l1_loss_weight", _D.l1_loss_weight, "Not the release (0 = its loss): "
                       "weight of an L1 loss between each generated face and its input face "
                       "(both in [-1, 1]) added to G's loss; it holds colours, layout and "
                       "identity while the age loss changes the face.", lower_bound=0, **where)


def _define_start_and_scale_flags(where) -> None:
    """Flags beyond the release: the reconstruction start, caching, several devices."""
    flags.DEFINE_integer("reconstruction_steps", _D.reconstruction_steps, "Not the release (0 = "
                         "its random start): the first N steps train G alone to give back its "
                         "input face whatever the target age (L1 + the feature loss, no "
                         "discriminator, its own Adam), then GAN training continues from there. "
                         "--max_steps counts both phases.", lower_bound=0, **where)
    flags.DEFINE_float("reconstruction_learning_rate", _D.reconstruction_learning_rate,
                       "Adam learning rate (beta1 0.5) of the reconstruction steps.", lower_bound=0,
                       **where)
    flags.DEFINE_float("reconstruction_l1_weight", _D.reconstruction_l1_weight,
                       "Weight of the L1 term of the reconstruction loss (the feature term keeps "
                       "--fea_loss_weight).", lower_bound=0, **where)
    flags.DEFINE_bool("cache", False, "Keep decoded, resized faces in memory after their first use "
                      "(about 0.8 MB a training image; for datasets that fit in RAM).", **where)
    flags.DEFINE_enum("distribution", _D.distribution, list(DISTRIBUTIONS),
                      "none: one device; mirrored: all local GPUs (MirroredStrategy); multi_worker: "
                      "MultiWorkerMirroredStrategy over the cluster in TF_CONFIG. --batch_size is "
                      "the global batch.", **where)
    flags.DEFINE_bool("synchronized_bn", _D.synchronized_bn, "With --distribution: batch "
                      "statistics over the global batch (as the release's one GPU); off: each "
                      "replica normalises its own share.", **where)
    flags.DEFINE_integer("logical_cpu_devices", _D.logical_cpu_devices, "Split the CPU into N "
                         "logical devices (try --distribution=mirrored without GPUs; 0: off).",
                         lower_bound=0, **where)


def config_from_flags(flag_values=None) -> TrainConfig:
    """The parsed flags (default absl's FLAGS) as a TrainConfig (pretrained paths emptied under
    --allow_random_alexnet)."""
    FLAGS = flag_values if flag_values is not None else flags.FLAGS
    random_alexnet = FLAGS.allow_random_alexnet
    return TrainConfig(
        list_dir=FLAGS.list_dir, root_folder=FLAGS.root_folder, source_file=FLAGS.source_file,
        learning_rate=FLAGS.learning_rate, batch_size=FLAGS.batch_size,
        image_size=FLAGS.image_size, age_groups=FLAGS.age_groups, max_steps=FLAGS.max_steps,
        gan_loss_weight=FLAGS.gan_loss_weight, fea_loss_weight=FLAGS.fea_loss_weight,
        age_loss_weight=FLAGS.age_loss_weight, fea_layer_name=FLAGS.fea_layer_name,
        alexnet_pretrained_model=None if random_alexnet else (FLAGS.alexnet_pretrained_model or None),
        age_pretrained_model=None if random_alexnet else (FLAGS.age_pretrained_model or None),
        allow_random_alexnet=random_alexnet,
        checkpoint_dir=FLAGS.checkpoint_dir, source_checkpoint_dir=FLAGS.source_checkpoint_dir,
        model_index=FLAGS.model_index, sample_dir=FLAGS.sample_dir, tensorboard_dir=FLAGS.tensorboard_dir,
        save_interval=FLAGS.save_interval, sample_interval=FLAGS.sample_interval,
        log_interval=FLAGS.log_interval, max_to_keep=FLAGS.max_to_keep or None, seed=FLAGS.seed,
        deterministic=FLAGS.deterministic, jit_compile=FLAGS.xla,
        mixed_precision=FLAGS.mixed_precision, step_structure=FLAGS.step_structure,
        bn_epsilon=FLAGS.bn_epsilon, d_output_channels=FLAGS.d_output_channels,
        upsample=FLAGS.upsample, cache=FLAGS.cache, per_sample_targets=FLAGS.per_sample_targets,
        l1_loss_weight=FLAGS.l1_loss_weight,
        reconstruction_steps=FLAGS.reconstruction_steps,
        reconstruction_learning_rate=FLAGS.reconstruction_learning_rate,
        reconstruction_l1_weight=FLAGS.reconstruction_l1_weight,
        nan_policy=FLAGS.nan_policy, distribution=FLAGS.distribution,
        synchronized_bn=FLAGS.synchronized_bn, logical_cpu_devices=FLAGS.logical_cpu_devices)
