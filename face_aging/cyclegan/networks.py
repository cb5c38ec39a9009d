"""The reference CycleGAN's networks (``networks.ResnetGenerator``, ``NLayerDiscriminator``).

Generator (``--netG resnet_9blocks`` / ``resnet_6blocks``, ``--norm instance``,
``--no_dropout``), for an ``H x W`` RGB input in [-1, 1], H and W multiples of 4:

| stage | layers | output |
|---|---|---|
| ``c7s1_64`` | reflection pad 3, conv 7x7 stride 1 (64), IN, ReLU | H x W x 64 |
| ``d128`` | conv 3x3 stride 2 zero pad 1 (128), IN, ReLU | H/2 x W/2 x 128 |
| ``d256`` | conv 3x3 stride 2 zero pad 1 (256), IN, ReLU | H/4 x W/4 x 256 |
| ``block_i`` | x + [reflect 1, conv 3x3, IN, ReLU, reflect 1, conv 3x3, IN](x) | H/4 x W/4 x 256 |
| ``u128`` | transposed conv 3x3 stride 2 pad 1 output_padding 1 (128), IN, ReLU | H/2 x W/2 x 128 |
| ``u64`` | the same (64), IN, ReLU | H x W x 64 |
| ``c7s1_3`` | reflection pad 3, conv 7x7 (3), tanh | H x W x 3 |

Every convolution has a bias (the reference uses one when the norm is instance norm);
instance norm has no parameters. Widths scale with ``ngf`` (64).

Discriminator (``--netD basic``, the 70x70 PatchGAN, ``n_layers_D=3``), every conv 4x4
with zero padding 1: C64 stride 2 (no norm), C128 stride 2, C256 stride 2, C512 stride 1,
each followed by IN (not C64) and LeakyReLU 0.2, then a 1-channel conv stride 1 (raw
scores, no sigmoid). A 256x256 input gives 30x30 scores, 128x128 gives 14x14.
"""
from __future__ import annotations

from typing import Dict, Optional

import keras
import tensorflow as tf

from face_aging import precision
from face_aging.cyclegan.layers import (INIT_GAIN, TransposedConv, conv, instance_norm,
                                        normal_init, receptive_field, reflection_pad)


from face_aging.cyclegan.config import default_n_blocks  # noqa: E402,F401 (TF-free home)


class ResnetBlock(keras.layers.Layer):
    """``x + IN(conv3x3(pad(ReLU(IN(conv3x3(pad(x)))))))``, reflection padding, no dropout."""

    def __init__(self, channels: int, init_gain: float = INIT_GAIN, **kwargs):
        super().__init__(**kwargs)
        self.conv1 = conv(channels, 3, init_gain=init_gain, name="conv1")
        self.conv2 = conv(channels, 3, init_gain=init_gain, name="conv2")

    def call(self, x):
        y = tf.nn.relu(instance_norm(self.conv1(reflection_pad(x, 1))))
        y = instance_norm(self.conv2(reflection_pad(y, 1)))
        return x + y


class ResnetGenerator(keras.Model):
    """The reference ResNet generator (table in the module docstring).

    Call: ``g(images)`` -> ``[B, H, W, 3]`` in [-1, 1]; ``g(images, stages=True)`` returns
    a dict of every stage's output in order (``c7s1_64``, ``d128``, ``d256``, ``block_0`` ..,
    ``u128``, ``u64``, ``c7s1_3``).

    Args:
      n_blocks: residual blocks (reference: 9 at 256x256, 6 at 128x128).
      ngf: width of the first layer (64); the others are 2x and 4x.
    """

    def __init__(self, n_blocks: int = 9, ngf: int = 64, output_channels: int = 3,
                 init_gain: float = INIT_GAIN, name: str = "resnet_generator"):
        super().__init__(name=name)
        if n_blocks < 0:
            raise ValueError(f"n_blocks must be >= 0, got {n_blocks}")
        self.n_blocks, self.ngf = n_blocks, ngf
        self.c7s1_64 = conv(ngf, 7, init_gain=init_gain, name="c7s1_64")
        self.d128 = conv(ngf * 2, 3, 2, padding=1, init_gain=init_gain, name="d128")
        self.d256 = conv(ngf * 4, 3, 2, padding=1, init_gain=init_gain, name="d256")
        # One attribute per block (not a list): tf.train.Checkpoint does not track Keras 3 lists.
        for i in range(n_blocks):
            setattr(self, f"block_{i}", ResnetBlock(ngf * 4, init_gain, name=f"block_{i}"))
        self.u128 = TransposedConv(ngf * 2, 3, 2, 1, 1, normal_init(init_gain), name="u128")
        self.u64 = TransposedConv(ngf, 3, 2, 1, 1, normal_init(init_gain), name="u64")
        self.c7s1_3 = conv(output_channels, 7, init_gain=init_gain, name="c7s1_3")

    @property
    def blocks(self):
        return [getattr(self, f"block_{i}") for i in range(self.n_blocks)]

    def call(self, images, stages: bool = False):
        out: Dict[str, tf.Tensor] = {}
        x = tf.cast(images, self.compute_dtype)
        out["c7s1_64"] = x = tf.nn.relu(instance_norm(self.c7s1_64(reflection_pad(x, 3))))
        out["d128"] = x = tf.nn.relu(instance_norm(self.d128(x)))
        out["d256"] = x = tf.nn.relu(instance_norm(self.d256(x)))
        for i, block in enumerate(self.blocks):
            out[f"block_{i}"] = x = block(x)
        out["u128"] = x = tf.nn.relu(instance_norm(self.u128(x)))
        out["u64"] = x = tf.nn.relu(instance_norm(self.u64(x)))
        out["c7s1_3"] = x = tf.cast(tf.tanh(self.c7s1_3(reflection_pad(x, 3))), tf.float32)
        return out if stages else x


class PatchDiscriminator(keras.Model):
    """The reference 70x70 PatchGAN (``NLayerDiscriminator``, n_layers 3, instance norm).

    Call: ``d(images)`` -> raw scores ``[B, h, w, 1]`` (30x30 for 256x256 inputs);
    ``d(images, stages=True)`` -> dict ``c64``, ``c128``, ``c256``, ``c512``, ``scores``.
    """

    #: (kernel, stride) of each conv, in order: the receptive field is 70x70.
    LAYOUT = ((4, 2), (4, 2), (4, 2), (4, 1), (4, 1))

    def __init__(self, ndf: int = 64, init_gain: float = INIT_GAIN,
                 name: str = "patch_discriminator"):
        super().__init__(name=name)
        self.ndf = ndf
        self.c64 = conv(ndf, 4, 2, padding=1, init_gain=init_gain, name="c64")
        self.c128 = conv(ndf * 2, 4, 2, padding=1, init_gain=init_gain, name="c128")
        self.c256 = conv(ndf * 4, 4, 2, padding=1, init_gain=init_gain, name="c256")
        self.c512 = conv(ndf * 8, 4, 1, padding=1, init_gain=init_gain, name="c512")
        self.scores = conv(1, 4, 1, padding=1, init_gain=init_gain, name="scores")

    @classmethod
    def receptive_field(cls) -> int:
        return receptive_field(cls.LAYOUT)

    def call(self, images, stages: bool = False):
        lrelu = lambda t: tf.nn.leaky_relu(t, 0.2)
        out: Dict[str, tf.Tensor] = {}
        x = tf.cast(images, self.compute_dtype)
        out["c64"] = x = lrelu(self.c64(x))
        out["c128"] = x = lrelu(instance_norm(self.c128(x)))
        out["c256"] = x = lrelu(instance_norm(self.c256(x)))
        out["c512"] = x = lrelu(instance_norm(self.c512(x)))
        out["scores"] = x = tf.cast(self.scores(x), tf.float32)
        return out if stages else x


def build_networks(*models, image_size: int = 32) -> None:
    """Creates the variables of the given generators/discriminators by one call on zeros
    (the weights' shapes do not depend on the image size; 32x32 is cheap)."""
    for model in models:
        if model is not None and not model.built:
            model(tf.zeros([1, image_size, image_size, 3]))


def make_networks(n_blocks: Optional[int] = None, ngf: int = 64, ndf: int = 64,
                  crop_size: int = 256, init_gain: float = INIT_GAIN,
                  mixed_precision: str = "none"):
    """``(g_a, g_b, d_a, d_b)``, built: young->old, old->young, judge of old faces, judge of
    young faces (the reference's netG_A, netG_B, netD_A, netD_B). ``n_blocks`` None: by
    ``crop_size`` (:func:`default_n_blocks`). ``mixed_precision``: a ``face_aging.precision``
    mode; the networks then compute in it (variables and outputs stay float32)."""
    n_blocks = default_n_blocks(crop_size) if n_blocks is None else n_blocks
    with precision.keras_policy(mixed_precision):
        g_a = ResnetGenerator(n_blocks, ngf, init_gain=init_gain, name="g_a")
        g_b = ResnetGenerator(n_blocks, ngf, init_gain=init_gain, name="g_b")
        d_a = PatchDiscriminator(ndf, init_gain, name="d_a")
        d_b = PatchDiscriminator(ndf, init_gain, name="d_b")
        build_networks(g_a, g_b, d_a, d_b)
    return g_a, g_b, d_a, d_b
