"""Checkpoint I/O every model shares: finding a checkpoint, telling TF1 from TF2 files, and
assigning a TF1 (name-based) checkpoint's variables into this port's models.

The release (spec §6) saved TF1 checkpoints whose variables are named by scope, e.g.
``generator/unit_3/sub2/conv2/weights``. Each model says which scope each of its layers had
(``face_aging.ipcgan.checkpoints.release_variable_map`` for G and D,
``face_aging.backbones.alexnet.release_rows`` for the AlexNet); :func:`assign_tf1_variables`
reads such a file with ``tf.train.load_checkpoint`` (no TF1 graph) and assigns it. This
project's own checkpoints are object-based TF2 checkpoints (``tf.train.Checkpoint``).

``python -m face_aging.checkpoints --tf1_checkpoint=PATH --output_dir=DIR`` converts a release
checkpoint (GAN or AlexNet) into a TF2 checkpoint (the command: ``face_aging.apps.convert``).
"""
from __future__ import annotations

import os
import re
from typing import Dict, List, Optional, Sequence, Tuple

if __name__ == "__main__":  # the documented command; its flags answer before TensorFlow loads
    from face_aging.apps.convert import run

    run()

import tensorflow as tf  # noqa: E402

#: Variables the release's files have but a port may lack (TF1's zero-debias state).
_OPTIONAL_SUFFIXES = ("/biased", "/local_step")
#: The spec abbreviates weights/biases as W/b; accept either spelling in a release file.
_ALIASES = {"weights": "W", "biases": "b"}
#: local_step given to imported moving averages without their debias state (0.9**1000 == 0).
_SETTLED_LOCAL_STEP = 1000.0

#: What a TF2 checkpoint appends to an object path to name a variable's value.
TF2_SUFFIX = "/.ATTRIBUTES/VARIABLE_VALUE"


class CheckpointMismatchError(ValueError):
    """A checkpoint lacks variables a model needs, or has them with other shapes."""


def tf1_variable_map(rows: Sequence[Tuple[str, object]]) -> Dict[str, tf.Variable]:
    """TF1 variable name (no ``:0``) -> variable, for ``[(release scope, built layer)]`` rows.

    Each layer names its own variables (``layer.release_variables()``: ``weights``,
    ``biases``, batch-norm statistics ...)."""
    mapping = {}
    for scope, layer in rows:
        if not layer.built:
            raise ValueError(f"{scope}: build the model before mapping its variables "
                             "(face_aging.ipcgan.networks.build_models, "
                             "face_aging.backbones.alexnet.build_alexnet)")
        for suffix, variable in layer.release_variables().items():
            mapping[f"{scope}/{suffix}"] = variable
    return mapping


def is_tf2_checkpoint(path: str) -> bool:
    """True for an object-based (TF2) checkpoint prefix, false for a TF1 name-based one."""
    return "_CHECKPOINTABLE_OBJECT_GRAPH" in dict(tf.train.list_variables(path))


def resolve_checkpoint(path: str, model_index: Optional[int] = None) -> str:
    """A checkpoint prefix from a prefix or a directory (latest, or the one of step ``model_index``).

    Works for TF1 (``acgan.model-N``) and TF2 (``ckpt-N``) files.

    Raises:
      FileNotFoundError: with one line naming the path and what is missing.
    """
    if os.path.isdir(path):
        prefixes = sorted({m.group(1) for f in os.listdir(path)
                           for m in [re.match(r"(.+-(\d+))\.index$", f)] if m},
                          key=lambda p: int(p.rsplit("-", 1)[1]))
        if model_index is not None:
            chosen = [p for p in prefixes if p.endswith(f"-{model_index}")]
            if not chosen:
                steps = [p.rsplit("-", 1)[1] for p in prefixes]
                raise FileNotFoundError(f"{path}: no checkpoint of step {model_index} "
                                        f"(steps found: {', '.join(steps) or 'none'})")
            return os.path.join(path, chosen[-1])
        latest = tf.train.latest_checkpoint(path)
        if latest:
            return latest
        if prefixes:
            return os.path.join(path, prefixes[-1])
        raise FileNotFoundError(f"{path}: no checkpoint (*.index) in this directory")
    if os.path.exists(path + ".index"):
        return path
    raise FileNotFoundError(f"{path}: no such checkpoint (expected {path}.index or a directory)")


def assign_tf1_variables(path: str, mapping: Dict[str, tf.Variable]) -> List[str]:
    """Assigns a release (TF1) checkpoint's variables into ``mapping`` (TF1 name -> variable).

    Reads with ``tf.train.load_checkpoint``; needs no TF1 graph. Adam slots,
    ``beta1_power``/``beta2_power`` and anything else unmapped are ignored. The moving
    averages' zero-debias state (``<stat>/biased``, ``<stat>/local_step``) is imported
    when present; otherwise it is set so that training continues the imported averages.

    Args:
      path: checkpoint prefix (``.../acgan.model-399999``) or a directory (latest).
      mapping: e.g. :func:`tf1_variable_map` of a model's release rows.
    Returns:
      the names assigned.
    Raises:
      CheckpointMismatchError: one message listing every missing or mis-shaped variable.
    """
    prefix = resolve_checkpoint(path)
    reader = tf.train.load_checkpoint(prefix)
    shapes = reader.get_variable_to_shape_map()
    missing, misshaped, values = [], [], {}
    for name, variable in mapping.items():
        stored = _stored_name(name, shapes)
        if stored is None:
            if not name.endswith(_OPTIONAL_SUFFIXES):
                missing.append(name)
            continue
        if tuple(shapes[stored]) != tuple(variable.shape):
            misshaped.append(f"{stored} {tuple(shapes[stored])} (model expects "
                             f"{tuple(variable.shape)})")
            continue
        values[name] = reader.get_tensor(stored)
    if missing or misshaped:
        lines = [f"{prefix}: does not match the model"]
        if missing:
            lines.append(f"missing {len(missing)}: " + ", ".join(sorted(missing)))
        if misshaped:
            lines.append(f"mis-shaped {len(misshaped)}: " + ", ".join(misshaped))
        raise CheckpointMismatchError("; ".join(lines))
    for name, value in values.items():
        mapping[name].assign(value)
    _settle_missing_debias_state(mapping, values)
    return sorted(values)


def _stored_name(name: str, shapes) -> Optional[str]:
    if name in shapes:
        return name
    scope, _, leaf = name.rpartition("/")
    alias = _ALIASES.get(leaf)
    if alias and f"{scope}/{alias}" in shapes:
        return f"{scope}/{alias}"
    return None


def _settle_missing_debias_state(mapping, loaded):
    for name in mapping:
        for stat in ("moving_mean", "moving_variance"):
            if name.endswith(f"/{stat}") and name in loaded and f"{name}/biased" not in loaded:
                mapping[f"{name}/biased"].assign(loaded[name])
                mapping[f"{name}/local_step"].assign(_SETTLED_LOCAL_STEP)
