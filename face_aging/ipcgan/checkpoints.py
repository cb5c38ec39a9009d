"""IPCGAN's checkpoints: the release's TF1 variable names of G, D and the frozen AlexNet (one
table), reading and converting release files, and restoring G/D from any checkpoint.

The release (spec §6) saved TF1 checkpoints whose variables are named by scope, e.g.
``generator/unit_3/sub2/conv2/weights``. :func:`release_variable_map` is the one table from
those names to this port's variables (the AlexNet's rows are
``face_aging.backbones.alexnet.release_rows``); :func:`load_tf1_checkpoint` reads a release
checkpoint with ``tf.train.load_checkpoint`` (no TF1 graph) and assigns it. This project's
own checkpoints are object-based TF2 checkpoints (``tf.train.Checkpoint``) with the
attributes ``generator``, ``discriminator``, ``alexnet`` (and, for training, the optimizers
and ``step``).

``python -m face_aging.checkpoints --tf1_checkpoint=PATH --output_dir=DIR`` converts a
release checkpoint (GAN or AlexNet) into a TF2 checkpoint (:func:`convert_tf1_checkpoint`).
"""
from __future__ import annotations

import os
import re
from typing import Dict, List, Optional, Sequence, Tuple

import tensorflow as tf

from face_aging.backbones import ALEXNET_AGE, ALEXNET_IDENTITY, ALEXNET_LAYERS, ALEXNET_TRUNK
from face_aging.backbones import alexnet as alexnet_backbone
from face_aging.checkpoints import (CheckpointMismatchError, assign_tf1_variables,
                                    is_tf2_checkpoint, resolve_checkpoint, tf1_variable_map)


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
        rows += alexnet_backbone.release_rows(alexnet, alexnet_layers)
    return rows


def release_variable_map(generator=None, discriminator=None, alexnet=None,
                         alexnet_layers: Sequence[str] = ALEXNET_LAYERS) -> Dict[str, tf.Variable]:
    """TF1 variable name (no ``:0``) -> this port's variable, for the given built models."""
    return tf1_variable_map(release_layer_table(generator, discriminator, alexnet,
                                                alexnet_layers))


def load_tf1_checkpoint(path: str, generator=None, discriminator=None, alexnet=None,
                        alexnet_layers: Sequence[str] = ALEXNET_LAYERS) -> List[str]:
    """Assigns a release (TF1) checkpoint's variables into built models.

    Reads with ``tf.train.load_checkpoint``; needs no TF1 graph. Adam slots,
    ``beta1_power``/``beta2_power`` and anything else unmapped are ignored. The moving
    averages' zero-debias state (``<stat>/biased``, ``<stat>/local_step``) is imported
    when present; otherwise it is set so that training continues the imported averages
    (``face_aging.checkpoints.assign_tf1_variables``).

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
    return assign_tf1_variables(
        prefix, release_variable_map(generator, discriminator, alexnet, alexnet_layers))


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
    from face_aging.ipcgan.networks import Discriminator, Generator, build_models

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
        objects["alexnet"] = alexnet_backbone.AlexNet(age_groups=age_groups)
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
