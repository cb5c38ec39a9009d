"""Checkpoints: the release's TF1 variable names (one table) and TF2 checkpoint I/O.

The release (spec §6) saved TF1 checkpoints whose variables are named by scope,
e.g. ``generator/unit_3/sub2/conv2/weights``. :func:`release_variable_map` is the
one table from those names to this port's variables; :func:`load_tf1_checkpoint`
reads a release checkpoint with ``tf.train.load_checkpoint`` (no TF1 graph) and
assigns it. This project's own checkpoints are object-based TF2 checkpoints
(``tf.train.Checkpoint``) with the attributes ``generator``, ``discriminator``,
``alexnet`` (and, for training, the optimizers and ``step``).

CLI: ``python -m face_aging.checkpoints --tf1_checkpoint=PATH --output_dir=DIR``
converts a release checkpoint (GAN or AlexNet) into a TF2 checkpoint.
"""
from __future__ import annotations

import os
import re
import sys
from typing import Dict, List, Optional, Sequence, Tuple

if __name__ == "__main__":  # the CLI: flags defined and parsed (--help, bad flags) before TF loads
    from absl import flags as _absl_flags

    from face_aging import cli as _cli

    _absl_flags.DEFINE_string("tf1_checkpoint", None,
                              "Release checkpoint prefix (e.g. pre_trained/alexnet.model-292000) "
                              "or a directory holding one.")
    _absl_flags.DEFINE_string("output_dir", None, "Directory for the TF2 checkpoint.")
    _absl_flags.DEFINE_integer("image_size", 128, "Generator/discriminator input size.")
    _absl_flags.DEFINE_integer("age_groups", 5, "Number of age groups.")
    _absl_flags.mark_flags_as_required(["tf1_checkpoint", "output_dir"])
    _cli.parse_flags_now(sys.argv)

import tensorflow as tf  # noqa: E402

#: AlexNet layer groups: the shared trunk, the identity net's fc layers and head, the age head.
ALEXNET_TRUNK = ("conv1", "conv2", "conv3", "conv4", "conv5")
ALEXNET_IDENTITY = ("fc6", "fc7", "new_1", "new_2")
ALEXNET_AGE = ("age_fc6", "age_fc7", "age_fc8")
ALEXNET_LAYERS = ALEXNET_TRUNK + ALEXNET_IDENTITY + ALEXNET_AGE

#: Variables the release's files have but a port may lack (TF1's zero-debias state).
_OPTIONAL_SUFFIXES = ("/biased", "/local_step")
#: The spec abbreviates weights/biases as W/b; accept either spelling in a release file.
_ALIASES = {"weights": "W", "biases": "b"}
#: local_step given to imported moving averages without their debias state (0.9**1000 == 0).
_SETTLED_LOCAL_STEP = 1000.0

_TF2_SUFFIX = "/.ATTRIBUTES/VARIABLE_VALUE"


class CheckpointMismatchError(ValueError):
    """A checkpoint lacks variables a model needs, or has them with other shapes."""


def release_layer_table(generator=None, discriminator=None, alexnet=None,
                        alexnet_layers: Sequence[str] = ALEXNET_LAYERS) -> List[Tuple[str, object]]:
    """The release's scope for every weight-owning layer of the given (built) models.

    Returns:
      ``[(scope, layer)]``, e.g. ``("generator/unit_0/sub1/conv1", g.units[0].conv1)``.
    """
    rows = []
    if generator is not None:
        g = generator
        for name in ("conv1", "bn1", "conv2", "bn2", "conv3", "bn3"):
            rows.append((f"generator/{name}", getattr(g, name)))
        for i, unit in enumerate(g.units):
            rows += [(f"generator/unit_{i}/sub1/conv1", unit.conv1),
                     (f"generator/unit_{i}/sub1/bn1", unit.bn1),
                     (f"generator/unit_{i}/sub2/conv2", unit.conv2),
                     (f"generator/unit_{i}/sub2/bn2", unit.bn2)]
        for name in ("deconv1", "bn4", "deconv2", "bn5", "conv4"):
            rows.append((f"generator/{name}", getattr(g, name)))
    if discriminator is not None:
        for name in ("dis", "dis_1", "dis_bn0", "dis_2", "dis_bn1", "dis_3", "dis_bn2", "dis_4"):
            rows.append((f"discriminator/{name}", getattr(discriminator, name)))
    if alexnet is not None:
        for name in alexnet_layers:
            if name not in ALEXNET_LAYERS:
                raise ValueError(f"unknown AlexNet layer {name!r}; choose from {ALEXNET_LAYERS}")
            rows.append((f"alexnet/{name}", getattr(alexnet, name)))
    return rows


def release_variable_map(generator=None, discriminator=None, alexnet=None,
                         alexnet_layers: Sequence[str] = ALEXNET_LAYERS) -> Dict[str, tf.Variable]:
    """TF1 variable name (no ``:0``) -> this port's variable, for the given built models."""
    mapping = {}
    for scope, layer in release_layer_table(generator, discriminator, alexnet, alexnet_layers):
        if not layer.built:
            raise ValueError(f"{scope}: build the model before mapping its variables "
                             "(face_aging.models.build_models)")
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


def load_tf1_checkpoint(path: str, generator=None, discriminator=None, alexnet=None,
                        alexnet_layers: Sequence[str] = ALEXNET_LAYERS) -> List[str]:
    """Assigns a release (TF1) checkpoint's variables into built models.

    Reads with ``tf.train.load_checkpoint``; needs no TF1 graph. Adam slots,
    ``beta1_power``/``beta2_power`` and anything else unmapped are ignored. The moving
    averages' zero-debias state (``<stat>/biased``, ``<stat>/local_step``) is imported
    when present; otherwise it is set so that training continues the imported averages.

    Args:
      path: checkpoint prefix (``.../acgan.model-399999``) or a directory (latest).
      generator, discriminator, alexnet: built models to fill (any may be None).
      alexnet_layers: which AlexNet layers to take from this file (the release keeps the
        trunk and identity head in ``alexnet.model-292000`` and the age head in
        ``age_classifier.model-300000``).
    Returns:
      the names assigned.
    Raises:
      CheckpointMismatchError: one message listing every missing or mis-shaped variable.
    """
    prefix = resolve_checkpoint(path)
    reader = tf.train.load_checkpoint(prefix)
    shapes = reader.get_variable_to_shape_map()
    mapping = release_variable_map(generator, discriminator, alexnet, alexnet_layers)
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


def load_alexnet_layers(path: str, alexnet, layers: Sequence[str]) -> List[str]:
    """Loads some AlexNet layers from a release TF1 file or this project's TF2 checkpoint.

    A TF2 checkpoint must hold the AlexNet under the attribute ``alexnet`` (as
    ``save_alexnet`` and ``python -m face_aging.pretrain`` write it).

    Raises:
      CheckpointMismatchError: a requested layer is missing or mis-shaped.
    """
    prefix = resolve_checkpoint(path)
    if not is_tf2_checkpoint(prefix):
        return load_tf1_checkpoint(prefix, alexnet=alexnet, alexnet_layers=layers)
    reader = tf.train.load_checkpoint(prefix)
    shapes = reader.get_variable_to_shape_map()
    problems, values = [], []
    for layer_name in layers:
        layer = getattr(alexnet, layer_name)
        for attr, variable in (("kernel", layer.kernel), ("bias", layer.bias)):
            key = f"alexnet/{layer_name}/{attr}{_TF2_SUFFIX}"
            if key not in shapes:
                problems.append(f"missing alexnet/{layer_name}/{attr}")
            elif tuple(shapes[key]) != tuple(variable.shape):
                problems.append(f"alexnet/{layer_name}/{attr} is {tuple(shapes[key])}, "
                                f"model expects {tuple(variable.shape)}")
            else:
                values.append((variable, reader.get_tensor(key)))
    if problems:
        raise CheckpointMismatchError(f"{prefix}: does not match the AlexNet: " + "; ".join(problems))
    for variable, value in values:
        variable.assign(value)
    return list(layers)


def save_alexnet(alexnet, prefix: str) -> str:
    """Writes a TF2 checkpoint holding only ``alexnet`` (weights, no optimizer); returns its path."""
    return tf.train.Checkpoint(alexnet=alexnet).write(prefix)


def restore_models(path: str, generator=None, discriminator=None,
                   model_index: Optional[int] = None) -> str:
    """Restores G and/or D from a TF2 training/export checkpoint or a release TF1 one.

    Returns:
      the checkpoint prefix restored.
    Raises:
      FileNotFoundError, CheckpointMismatchError: with one line naming the file.
    """
    prefix = resolve_checkpoint(path, model_index)
    if not is_tf2_checkpoint(prefix):
        load_tf1_checkpoint(prefix, generator=generator, discriminator=discriminator)
        return prefix
    objects = {k: v for k, v in (("generator", generator), ("discriminator", discriminator))
               if v is not None}
    status = tf.train.Checkpoint(**objects).read(prefix)
    try:
        status.expect_partial().assert_existing_objects_matched()
    except AssertionError as e:
        raise CheckpointMismatchError(f"{prefix}: does not hold {' and '.join(objects)}: "
                                      f"{str(e).splitlines()[0]}") from None
    return prefix


def checkpoint_contents(path: str) -> Dict[str, bool]:
    """Which parts a release checkpoint holds: ``{'generator', 'discriminator', 'alexnet_*'}``."""
    names = [n for n, _ in tf.train.list_variables(resolve_checkpoint(path))]
    has = lambda p: any(n.startswith(p) for n in names)
    return {"generator": has("generator/"), "discriminator": has("discriminator/"),
            "alexnet_trunk": all(has(f"alexnet/{l}/") for l in ALEXNET_TRUNK),
            "alexnet_identity": all(has(f"alexnet/{l}/") for l in ALEXNET_IDENTITY),
            "alexnet_age": all(has(f"alexnet/{l}/") for l in ALEXNET_AGE)}


def convert_tf1_checkpoint(tf1_path: str, output_dir: str, image_size: int = 128,
                           age_groups: int = 5) -> Tuple[str, List[str]]:
    """Converts a release checkpoint (GAN or AlexNet parts) into a TF2 checkpoint.

    Returns:
      ``(tf2_prefix, parts)``: the written prefix and which parts it holds.
    """
    from face_aging.models import AlexNet, Discriminator, Generator, build_models

    contents = checkpoint_contents(tf1_path)
    objects = {}
    if contents["generator"]:
        objects["generator"] = Generator(age_groups=age_groups)
    if contents["discriminator"]:
        objects["discriminator"] = Discriminator(age_groups=age_groups)
    layers: Tuple[str, ...] = ()
    if contents["alexnet_trunk"]:
        layers += ALEXNET_TRUNK
    if contents["alexnet_identity"]:
        layers += ALEXNET_IDENTITY
    if contents["alexnet_age"]:
        layers += ALEXNET_AGE
    if layers:
        objects["alexnet"] = AlexNet(age_groups=age_groups)
    if not objects:
        raise CheckpointMismatchError(
            f"{tf1_path}: holds no release generator/discriminator/alexnet variables")
    build_models(objects.get("generator"), objects.get("discriminator"), objects.get("alexnet"),
                 image_size)
    load_tf1_checkpoint(tf1_path, objects.get("generator"), objects.get("discriminator"),
                        objects.get("alexnet"), layers)
    os.makedirs(output_dir, exist_ok=True)
    step = int(re.search(r"-(\d+)$", resolve_checkpoint(tf1_path)).group(1)) \
        if re.search(r"-(\d+)$", resolve_checkpoint(tf1_path)) else 0
    checkpoint = tf.train.Checkpoint(**objects)
    manager = tf.train.CheckpointManager(checkpoint, output_dir, max_to_keep=None,
                                         checkpoint_name="ckpt")
    prefix = manager.save(checkpoint_number=step)
    parts = sorted(objects) if "alexnet" not in objects else \
        sorted(set(objects) - {"alexnet"}) + [f"alexnet ({', '.join(layers)})"]
    return prefix, parts


def _main(argv):
    from absl import flags as absl_flags

    del argv
    FLAGS = absl_flags.FLAGS
    try:
        prefix, parts = convert_tf1_checkpoint(FLAGS.tf1_checkpoint, FLAGS.output_dir,
                                               FLAGS.image_size, FLAGS.age_groups)
    except (FileNotFoundError, CheckpointMismatchError, tf.errors.OpError) as e:
        raise SystemExit(f"error: {e}") from None
    print(f"wrote {prefix} holding {', '.join(parts)}")


if __name__ == "__main__":
    _cli.run(_main)  # the flags are defined at the top
