"""The models by name: the ONE place ``"ipcgan"``, ``"cyclegan"`` and ``"alexnet"`` resolve to
what implements each role for them. The commands dispatch through it (``--model``), so none
of them compares model names.

Roles (each a lazy ``"module:attr"`` string, imported only by :func:`resolve`, so ``--help``
never loads TensorFlow):

======================  =====================================================================
``config``              the options class (``TrainConfig`` ...)
``define_flags``        ``define_flags(flag_values)``: the training command's flags
``config_from_flags``   ``config_from_flags(flag_values)`` -> the options
``train``               ``train(config, print_fn)``: the training loop
``load``                loads trained weights for inference (``checkpoint_dir=``,
                        ``saved_model=``, ``model_index=``, ``image_size=``, ...)
``export``              ``export(checkpoint_dir, output_dir, model_index, tflite, image_size,
                        onnx=, mixed_precision=, stages=, **model flags)`` -> a dict with
                        ``saved_model``, ``signatures``, ``image_size``, ``tflite``,
                        ``tflite_bytes``, ``tflite_signatures``, ``onnx``
``evaluate``            ``evaluate(checkpoint_dir, model_index, list_dir, root_folder,
                        output_dir, max_faces, inception_weights, alexnet_checkpoint,
                        batch_size, age_bins, kid_subsets=, kid_subset_size=,
                        max_impostor_pairs=, **model flags)`` -> the written report paths
``evaluate_cross_age``  ``evaluate_cross_age(checkpoint_dir, model_index, pairs_file,
                        root_folder, output_dir, target_groups, age_bins, bn_mode,
                        allow_untrained_generator, batch_size, max_people)``: the cross-age mode
``default_weights``     the weights inference uses when none are given (a path)
``age``                 ``test.py``'s job for the model: ``job(flag_values) -> apps.age.Job``
``demo``                the demo page's model: ``load(weights) -> demo.DemoModel``
======================  =====================================================================

``only_flags[command]``: flags of that command that mean something for this model alone; the
command refuses them with another ``--model`` (:func:`foreign_flags`), and passes them to the
model's role function as keyword arguments of the same name.
"""
from __future__ import annotations

import dataclasses
import importlib
from typing import Dict, List, Mapping, Optional, Tuple

from face_aging.errors import UsageError


class UnknownModelError(UsageError):
    """A model name (or a role) the registry does not have."""


@dataclasses.dataclass(frozen=True)
class ModelEntry:
    """A model: its name on the command line, its title in pages and reports, what it is, and
    the ``"module:attr"`` of each role it has."""
    name: str
    title: str
    description: str
    roles: Mapping[str, str]
    only_flags: Mapping[str, Tuple[str, ...]] = dataclasses.field(default_factory=dict)


_MODELS: Dict[str, ModelEntry] = {}


def register(entry: ModelEntry) -> ModelEntry:
    """Adds ``entry`` (a name registered already raises ValueError)."""
    if entry.name in _MODELS:
        raise ValueError(f"model {entry.name!r} is already registered")
    _MODELS[entry.name] = entry
    return entry


register(ModelEntry(
    "ipcgan", "IPCGAN", "the conditional generator (one output per target age group)",
    roles={
        "config": "face_aging.ipcgan.config:TrainConfig",
        "define_flags": "face_aging.ipcgan.flags:define_flags",
        "config_from_flags": "face_aging.ipcgan.flags:config_from_flags",
        "train": "face_aging.ipcgan.trainer:train",
        "load": "face_aging.ipcgan.inference:load_generator",
        "export": "face_aging.ipcgan.export:export",
        "evaluate": "face_aging.ipcgan.evaluate:evaluate",
        "evaluate_cross_age": "face_aging.ipcgan.evaluate:evaluate_cross_age",
        "default_weights": "face_aging.ipcgan.inference:BUNDLED_CHECKPOINT_DIR",
        "age": "face_aging.apps.age:ipcgan_job",
        "demo": "face_aging.demo:load_ipcgan",
    },
    only_flags={
        "age": ("bn_mode", "train_data_dir", "target_groups", "interpolate", "group_labels",
                "age_groups"),
        "export": ("age_groups",),
        "evaluate": ("bn_mode", "allow_untrained_generator", "inception_score_splits"),
    }))

register(ModelEntry(
    "cyclegan", "CycleGAN", "a train_cyclegan.py run's generators (young -> old, old -> young)",
    roles={
        "config": "face_aging.cyclegan.config:CycleGANConfig",
        "define_flags": "face_aging.cyclegan.flags:define_flags",
        "config_from_flags": "face_aging.cyclegan.flags:config_from_flags",
        "train": "face_aging.cyclegan.trainer:train",
        "load": "face_aging.cyclegan.inference:load_cyclegan",
        "export": "face_aging.cyclegan.export:export_cyclegan",
        "evaluate": "face_aging.cyclegan.evaluate:evaluate_cyclegan",
        "default_weights": "face_aging.cyclegan.inference:DEFAULT_CHECKPOINT_DIR",
        "age": "face_aging.apps.age:cyclegan_job",
        "demo": "face_aging.demo:load_cyclegan",
    },
    only_flags={
        "age": ("old_to_young",),
        "export": ("old_to_young",),
        "evaluate": ("young_max_age", "old_min_age", "young_dir", "old_dir", "image_size"),
    }))

register(ModelEntry(
    "alexnet", "AlexNet", "the release's AlexNet (identity and age heads), pretrained here",
    roles={
        "config": "face_aging.alexnet.config:PretrainConfig",
        "define_flags": "face_aging.alexnet.flags:define_flags",
        "config_from_flags": "face_aging.alexnet.flags:config_from_flags",
        "train": "face_aging.alexnet.trainer:pretrain",
    }))


def get(name: str) -> ModelEntry:
    """The entry of model ``name``.

    Raises:
      UnknownModelError: one line naming the known models.
    """
    try:
        return _MODELS[name]
    except KeyError:
        raise UnknownModelError(f"unknown model {name!r}; known: {', '.join(_MODELS)}") from None


def names(role: Optional[str] = None) -> List[str]:
    """The models (with ``role``, those that have it), in registration order."""
    return [n for n, e in _MODELS.items() if role is None or role in e.roles]


def resolve(name: str, role: str):
    """Imports and returns what implements ``role`` for model ``name``."""
    entry = get(name)
    if role not in entry.roles:
        raise UnknownModelError(f"model {name!r} has no {role!r}; models with one: "
                                f"{', '.join(names(role)) or 'none'}")
    module, _, attr = entry.roles[role].partition(":")
    return getattr(importlib.import_module(module), attr)


def model_flags(command: str, name: str, values) -> dict:
    """``{flag: value}`` of the flags of ``command`` that model ``name`` alone takes (the
    keyword arguments its role function gets)."""
    return {flag: values[flag].value for flag in get(name).only_flags.get(command, ())}


def foreign_flags(command: str, name: str, values) -> List[str]:
    """The flags given (``values[flag].present``) that belong to another model of
    ``command``, as ``--flag``, in registry order."""
    own = set(get(name).only_flags.get(command, ()))
    given = []
    for other in _MODELS.values():
        for flag in other.only_flags.get(command, ()):
            if flag not in own and values[flag].present and f"--{flag}" not in given:
                given.append(f"--{flag}")
    return given


def check_model_flags(command: str, values) -> None:
    """Raises UsageError ``--a, --b cannot be used with --model=NAME`` when flags of another
    model are given (a flag of the other model is an error, not silently ignored)."""
    given = foreign_flags(command, values.model, values)
    if given:
        raise UsageError(f"{', '.join(given)} cannot be used with --model={values.model}")


def define_model_flag(flag_values, role: str, help_text: str, default: str = "ipcgan") -> None:
    """Defines ``--model`` on ``flag_values``: the models that have ``role``, described."""
    from absl import flags

    choices = names(role)
    described = " ".join(f"{n}: {get(n).description}." for n in choices)
    flags.DEFINE_enum("model", default, choices, f"{described} {help_text}".strip(),
                      flag_values=flag_values)
