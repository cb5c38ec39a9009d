"""IPCGAN networks as Keras subclassed models (spec §1): the generator and the discriminator.

The frozen AlexNet of the losses is shared with the other models:
``face_aging.backbones.alexnet.AlexNet``.

The age condition enters as a per-sample vector ``age_vector`` ``[B, age_groups]``
(one-hot, or soft weights for blending ages) and is broadcast over the spatial map
inside the model, so callers never build 128x128x5 tensors.

Batch normalisation (spec §1.4): ``training=True`` normalises with batch statistics
and updates the moving averages; ``training=False`` uses the moving statistics,
unless ``batch_stats=True`` asks for the release's test-time behaviour (batch
statistics, no update).
"""
from __future__ import annotations

import keras
import tensorflow as tf

from face_aging.backbones.alexnet import build_alexnet
from face_aging.ipcgan.config import UPSAMPLE_MODES
from face_aging.layers import BatchNorm, Conv, Deconv, broadcast_condition, lrelu


def _bn_flags(training, batch_stats):
    use_batch = bool(training) if batch_stats is None else bool(batch_stats)
    return use_batch, bool(training)


def conv_bn(conv, bn, x, use_batch_stats=False, update_moving=False):
    """``bn(conv(x))``. With the moving statistics (inference) the batch norm is folded into the
    convolution's kernel and bias (``Conv.call_scaled``): the same values to float rounding
    (~1e-5 on G's [-1, 1] outputs) in one pass over the activations instead of three: generator
    inference at batch 32 1.05x faster on the 2-core CPU of docs/BENCHMARKS.md (run H). In float32
    only: under a mixed policy the scaled kernel would be rounded to the compute dtype, which
    moved bfloat16 outputs by up to 0.08. Unbuilt layers (a model's first call) take the
    unfolded path, which builds them."""
    if use_batch_stats or x.dtype != tf.float32 or not (conv.built and bn.built):
        return bn(conv(x), use_batch_stats=use_batch_stats, update_moving=update_moving)
    return conv.call_scaled(x, *bn.folded())


class ResidualUnit(keras.layers.Layer):
    """``unit_i``: conv3x3 -> bn -> relu -> conv3x3 -> bn, plus the input; no activation after."""

    def __init__(self, channels=128, bn_epsilon=1e-3, synchronized_bn=False, **kwargs):
        super().__init__(**kwargs)
        self.conv1 = Conv(channels, 3, name="conv1")
        self.bn1 = BatchNorm(bn_epsilon, synchronized=synchronized_bn, name="bn1")
        self.conv2 = Conv(channels, 3, name="conv2")
        self.bn2 = BatchNorm(bn_epsilon, synchronized=synchronized_bn, name="bn2")

    def call(self, x, use_batch_stats=False, update_moving=False):
        y = tf.nn.relu(conv_bn(self.conv1, self.bn1, x, use_batch_stats, update_moving))
        return x + conv_bn(self.conv2, self.bn2, y, use_batch_stats, update_moving)


class Generator(keras.Model):
    """IPCGAN generator (spec §1.1): encoder, 6 residual units, decoder, tanh.

    ``upsample``: how ``deconv1``/``deconv2`` upsample (``config.UPSAMPLE_MODES``): the
    release's transposed convolutions (``"deconv"``, the default) or nearest-neighbour
    upsampling + convolution (``"resize_conv"``, free of the deconvolutions' checkerboard);
    the same variables either way.

    Call: ``g((source, age_vector), training=False, batch_stats=None)``.

    Args (call):
      source: ``[B, H, W, 3]`` float32, RGB 0..255 minus ``pixels.MEAN_RGB`` (not [-1, 1]);
        H and W divisible by 4 (the release: 128).
      age_vector: ``[B, age_groups]`` one-hot target group, or soft weights summing to 1.
    Returns:
      ``[B, H, W, 3]`` aged faces in [-1, 1].
    """

    def __init__(self, age_groups=5, bn_epsilon=1e-3, synchronized_bn=False, upsample="deconv",
                 name="generator"):
        super().__init__(name=name)
        self.age_groups = age_groups
        if upsample not in UPSAMPLE_MODES:
            raise ValueError(f"upsample must be one of {', '.join(UPSAMPLE_MODES)}, "
                             f"not {upsample!r}")
        self.upsample = upsample
        resize = upsample == "resize_conv"
        bn = dict(synchronized=synchronized_bn)
        self.conv1 = Conv(32, 7, 1, name="conv1")
        self.bn1 = BatchNorm(bn_epsilon, name="bn1", **bn)
        self.conv2 = Conv(64, 3, 2, name="conv2")
        self.bn2 = BatchNorm(bn_epsilon, name="bn2", **bn)
        self.conv3 = Conv(128, 3, 2, name="conv3")
        self.bn3 = BatchNorm(bn_epsilon, name="bn3", **bn)
        # One attribute per unit (not a list): tf.train.Checkpoint does not track Keras 3 lists.
        for i in range(6):
            setattr(self, f"unit_{i}", ResidualUnit(128, bn_epsilon, synchronized_bn,
                                                    name=f"unit_{i}"))
        self.deconv1 = Deconv(64, 3, 2, resize=resize, name="deconv1")
        self.bn4 = BatchNorm(bn_epsilon, name="bn4", **bn)
        self.deconv2 = Deconv(32, 3, 2, resize=resize, name="deconv2")
        self.bn5 = BatchNorm(bn_epsilon, name="bn5", **bn)
        self.conv4 = Conv(3, 7, 1, rewrite_gradients=True, name="conv4")

    @property
    def units(self):
        """The six residual units, ``unit_0`` .. ``unit_5``."""
        return [getattr(self, f"unit_{i}") for i in range(6)]

    def call(self, inputs, training=False, batch_stats=None):
        source, age_vector = inputs
        use_batch, update = _bn_flags(training, batch_stats)
        bn = dict(use_batch_stats=use_batch, update_moving=update)
        dtype = self.compute_dtype
        source = tf.cast(source, dtype)
        shape = tf.shape(source)
        x = tf.concat([source, broadcast_condition(age_vector, shape[1], shape[2], dtype)], -1)
        x = tf.nn.relu(conv_bn(self.conv1, self.bn1, x, **bn))
        x = tf.nn.relu(conv_bn(self.conv2, self.bn2, x, **bn))
        x = tf.nn.relu(conv_bn(self.conv3, self.bn3, x, **bn))
        for unit in self.units:
            x = unit(x, **bn)
        x = tf.nn.relu(conv_bn(self.deconv1, self.bn4, x, **bn))
        x = tf.nn.relu(conv_bn(self.deconv2, self.bn5, x, **bn))
        return tf.cast(tf.tanh(self.conv4(x)), tf.float32)


class Discriminator(keras.Model):
    """Conditional PatchGAN (spec §1.2).

    Call: ``d((images, age_vector), training=False, batch_stats=None)``.

    Args (call):
      images: ``[B, H, W, 3]`` in [-1, 1] (the release: 128x128).
      age_vector: ``[B, age_groups]``; broadcast to H/2 x W/2 after the first conv.
    Returns:
      logits ``[B, H/8, W/8, output_channels]`` (16x16x512 for the release; the last layer
      really has 512 channels; ``output_channels=1`` is the option some users needed).
    """

    def __init__(self, age_groups=5, bn_epsilon=1e-3, output_channels=512,
                 synchronized_bn=False, name="discriminator"):
        super().__init__(name=name)
        self.age_groups = age_groups
        bn = dict(synchronized=synchronized_bn)
        self.dis = Conv(64, 4, 2, name="dis")
        self.dis_1 = Conv(128, 4, 2, name="dis_1")
        self.dis_bn0 = BatchNorm(bn_epsilon, name="dis_bn0", **bn)
        self.dis_2 = Conv(256, 4, 2, name="dis_2")
        self.dis_bn1 = BatchNorm(bn_epsilon, name="dis_bn1", **bn)
        self.dis_3 = Conv(512, 4, 1, name="dis_3")
        self.dis_bn2 = BatchNorm(bn_epsilon, name="dis_bn2", **bn)
        self.dis_4 = Conv(output_channels, 4, 1, name="dis_4")

    def call(self, inputs, training=False, batch_stats=None):
        images, age_vector = inputs
        use_batch, update = _bn_flags(training, batch_stats)
        bn = dict(use_batch_stats=use_batch, update_moving=update)
        dtype = self.compute_dtype
        x = lrelu(self.dis(tf.cast(images, dtype)))
        shape = tf.shape(x)
        parts = [x, broadcast_condition(age_vector, shape[1], shape[2], dtype)]
        # The concatenation's convolution without concatenating (Conv.call_on_parts); not in
        # float16, whose CPU kernels then moved D's Adam moments 5.4 % from float32's
        # (tests/test_scale.py allows 5 %).
        if self.dis_1.built and dtype != "float16":
            x = self.dis_1.call_on_parts(parts)
        else:
            x = self.dis_1(tf.concat(parts, -1))
        x = lrelu(self.dis_bn0(x, **bn))
        x = lrelu(self.dis_bn1(self.dis_2(x), **bn))
        x = lrelu(self.dis_bn2(self.dis_3(x), **bn))
        return tf.cast(self.dis_4(x), tf.float32)


def one_hot_age(groups, age_groups=5) -> tf.Tensor:
    """int ``[B]`` target groups -> float32 ``[B, age_groups]`` one-hot age vectors."""
    return tf.one_hot(tf.cast(groups, tf.int32), age_groups, dtype=tf.float32)


def build_models(generator=None, discriminator=None, alexnet=None, image_size=128):
    """Creates all variables of the given models by one call on zeros (returns nothing)."""
    if generator is not None:
        source = tf.zeros([2, image_size, image_size, 3])
        generator((source, one_hot_age([0, 1], generator.age_groups)), training=False)
    if discriminator is not None:
        images = tf.zeros([2, image_size, image_size, 3])
        discriminator((images, one_hot_age([0, 1], discriminator.age_groups)), training=False)
    if alexnet is not None:  # every head, so that all variables exist
        build_alexnet(alexnet)
