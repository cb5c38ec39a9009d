"""The AlexNet as pretraining trains it: the forward pass with dropout (and a low-resolution
input), the layers a run updates, the starting weights, and the optimizer.

The network is this project's :class:`face_aging.backbones.alexnet.AlexNet` (release layout,
LRN, no batch norm); pretraining adds dropout after age_fc6/age_fc7 (and fc6/fc7/new_1) which
the GAN does not use.
"""
from __future__ import annotations

import contextlib
import math
from typing import Callable, Dict, Tuple

import numpy as np
import tensorflow as tf

from face_aging import checkpoints, precision
from face_aging.alexnet.config import PretrainConfig, PretrainError
from face_aging.alexnet.data import DROPOUT_STREAM, seed_of
from face_aging.backbones import ALEXNET_AGE, ALEXNET_IDENTITY, ALEXNET_LAYERS, ALEXNET_TRUNK
from face_aging.backbones.alexnet import load_alexnet_layers


def forward(alexnet, images, training: bool = False, dropout: float = 0.0,
            identity: bool = False, seed=None) -> Dict[str, tf.Tensor]:
    """AlexNet's age (and identity) logits with dropout on the fc layers while training.

    With ``training=False`` (or ``dropout=0``) this is exactly ``AlexNet.call``'s arithmetic
    (same layers, pools and LRN); the GAN itself never uses dropout. ``seed`` (shape [2]:
    ``(config.seed, step)``) makes the dropout masks stateless: the same for the same seed and
    step, also after a resume; None draws them from TF's global generator.

    Inputs smaller than 227 (the low-resolution phase of pretraining, e.g. 131 -> pool5 3x3)
    have their pool5 map repeated to 6x6 (nearest) so the same fc layers apply; at 227 this
    is the identity.
    """
    a = alexnet

    def drop(t, layer):
        if not training or dropout <= 0:
            return t
        if seed is None:
            return tf.nn.dropout(t, rate=dropout)
        return tf.nn.experimental.stateless_dropout(
            t, rate=dropout, seed=seed_of(seed[0], seed[1], DROPOUT_STREAM + layer))

    x = tf.cast(images, a.compute_dtype)
    x = a.lrn(a.pool(tf.nn.relu(a.conv1(x))))
    x = a.lrn(a.pool(tf.nn.relu(a.conv2(x))))
    x = tf.nn.relu(a.conv3(x))
    x = tf.nn.relu(a.conv4(x))
    x = tf.nn.relu(a.conv5(x))
    out = {"conv5": x}
    pool5 = a.pool(x)
    if pool5.shape[1] != 6 or pool5.shape[2] != 6:
        rows = [i * pool5.shape[1] // 6 for i in range(6)]
        cols = [i * pool5.shape[2] // 6 for i in range(6)]
        pool5 = tf.gather(tf.gather(pool5, rows, axis=1), cols, axis=2)
    flat = tf.reshape(pool5, [-1, 6 * 6 * 256])
    y = drop(tf.nn.relu(a.age_fc6(flat)), 0)
    y = drop(tf.nn.relu(a.age_fc7(y)), 1)
    out["age_logits"] = tf.cast(a.age_fc8(y), tf.float32)
    if identity:
        z = drop(tf.nn.relu(a.fc6(flat)), 2)
        z = drop(tf.nn.relu(a.fc7(z)), 3)
        z = drop(tf.nn.relu(a.new_1(z)), 4)
        out["identity_logits"] = tf.cast(a.new_2(z), tf.float32)
    return out


def trained_layers(identity: bool, age: bool = True, train_layers: str = "auto") -> Tuple[str, ...]:
    """The layers a run updates: ``age_head`` only the age head (``age_fc6..8``, on a frozen
    trunk: how the release's age classifier sat on its identity net); ``auto`` the trunk and
    the heads whose labels the data has."""
    if train_layers == "age_head":
        return ALEXNET_AGE
    layers = ALEXNET_TRUNK
    layers += ALEXNET_AGE if age else ()
    return layers + ALEXNET_IDENTITY if identity else layers


def initialise_alexnet(alexnet, config: PretrainConfig, sample_images=None,
                       print_fn: Callable = print) -> str:
    """Fills a built AlexNet from ``config.init_from`` (bvlc .npy, TF1 or TF2 checkpoint), or
    for scratch: He-normal kernels, rescaled on ``sample_images`` so every layer's
    pre-activation has unit standard deviation (data-dependent init; the release's
    0.02 truncated normal on 0..255-scale inputs trains slowly without batch norm).
    Returns a one-line description."""
    from face_aging.alexnet import formats

    source = config.init_from
    if source:
        if source.endswith((".npy", ".pkl", ".pickle")):
            try:
                names = formats.load_bvlc_alexnet(source, alexnet,
                                                  conv1_rgb=config.conv1_rgb)
            except (formats.PretrainedFormatError,
                    formats.UnsafePickleError) as e:
                raise PretrainError(str(e)) from None
            return f"bvlc_alexnet.npy {source}: {', '.join(names)}"
        loaded = []
        try:
            load_alexnet_layers(source, alexnet, ALEXNET_TRUNK)
            loaded += ALEXNET_TRUNK
            for group in (ALEXNET_IDENTITY, ALEXNET_AGE):
                # a file that lacks this head leaves it as it starts
                with contextlib.suppress(checkpoints.CheckpointMismatchError):
                    load_alexnet_layers(source, alexnet, group)
                    loaded += group
        except (FileNotFoundError, checkpoints.CheckpointMismatchError,
                tf.errors.OpError) as e:
            raise PretrainError(f"--init_from: {str(e).splitlines()[0]}") from None
        return f"checkpoint {source}: {', '.join(loaded)}"
    rng = np.random.default_rng(config.seed)
    for name in ALEXNET_LAYERS:
        layer = getattr(alexnet, name)
        shape = tuple(layer.kernel.shape)
        fan_in = int(np.prod(shape[:-1]))
        layer.kernel.assign(rng.normal(0.0, math.sqrt(2.0 / fan_in), shape).astype(np.float32))
        layer.bias.assign(np.zeros(layer.bias.shape, np.float32))
    if config.data_scale_init and sample_images is not None:
        _unit_scale(alexnet, sample_images)
    # small age/identity logits at the start
    for name in ("age_fc8", "new_2"):
        layer = getattr(alexnet, name)
        layer.kernel.assign(layer.kernel * 0.1)
    return "scratch (He normal" + (", data-dependent unit scaling)" if config.data_scale_init
                                   and sample_images is not None else ")")


def _unit_scale(alexnet, images):
    """Layer by layer (LSUV-like): divide each kernel by the std of its pre-activation."""
    a = alexnet
    x = tf.convert_to_tensor(images, tf.float32)

    def fix(layer, inputs):
        y = layer(inputs)
        std = float(tf.math.reduce_std(y))
        if std > 0:
            layer.kernel.assign(layer.kernel / std)
        return tf.nn.relu(layer(inputs))

    h = a.lrn(a.pool(fix(a.conv1, x)))
    h = a.lrn(a.pool(fix(a.conv2, h)))
    h = fix(a.conv3, h)
    h = fix(a.conv4, h)
    h = fix(a.conv5, h)
    flat = tf.reshape(a.pool(h), [-1, 6 * 6 * 256])
    y = fix(a.age_fc6, flat)
    y = fix(a.age_fc7, y)
    fix(a.age_fc8, y)
    z = fix(a.fc6, flat)
    z = fix(a.fc7, z)
    z = fix(a.new_1, z)
    fix(a.new_2, z)


def make_optimizer(config: PretrainConfig, variables):
    """The run's optimizer over ``variables`` (built): AdamW (no decay on biases) or Nesterov
    SGD, wrapped in loss scaling under float16."""
    import keras

    if config.optimizer == "adamw":
        opt = keras.optimizers.AdamW(learning_rate=config.learning_rate,
                                     weight_decay=config.weight_decay)
        opt.exclude_from_weight_decay(var_list=[v for v in variables if len(v.shape) == 1])
    else:
        opt = keras.optimizers.SGD(learning_rate=config.learning_rate, momentum=config.momentum,
                                   nesterov=True)
    if precision.uses_loss_scaling(config.mixed_precision):
        opt = keras.optimizers.LossScaleOptimizer(opt)
    opt.build(variables)
    return opt
