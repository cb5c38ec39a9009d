"""The reference CycleGAN's building blocks with PyTorch's exact arithmetic.

- :func:`instance_norm`: ``nn.InstanceNorm2d(affine=False, track_running_stats=False)``,
  eps 1e-5: each sample's channel normalised by its own spatial mean and *biased*
  variance, at training and at test time alike; no parameters.
- :func:`reflection_pad`: ``nn.ReflectionPad2d`` (= ``numpy.pad(mode="reflect")``, the edge
  pixel not repeated).
- :func:`conv`: ``nn.Conv2d(..., padding=p)`` zero padding *p* on every side. TF's "SAME"
  pads stride-2 convolutions only at the bottom/right, which shifts every output by half a
  pixel against PyTorch; explicit padding gives PyTorch's result exactly.
- :class:`TransposedConv`: ``nn.ConvTranspose2d(k, stride, padding, output_padding)``.
  The reference's ``(3, 2, 1, 1)`` doubles the size exactly; TF's "SAME" transposed
  convolution has the same size but places the kernel one pixel off.
- :func:`normal_init`: ``init.normal_(w, 0.0, 0.02)``, a fresh seeded instance per layer
  (a shared unseeded Keras 3 initializer gives every equal-shaped layer the same kernel).

Convolution layers reuse :class:`face_aging.layers.Conv` (kernel ``[kh, kw, in, out]`` +
bias, computed by ``tf.nn.conv2d``, which takes explicit paddings).
"""
from __future__ import annotations

import keras
import numpy as np
import tensorflow as tf

from face_aging.layers import Conv

#: The reference's init_gain: weights ~ normal(0, 0.02), biases 0.
INIT_GAIN = 0.02
#: nn.InstanceNorm2d's default epsilon.
INSTANCE_NORM_EPSILON = 1e-5


def normal_init(stddev: float = INIT_GAIN) -> keras.initializers.Initializer:
    """normal(0, stddev), untruncated as ``torch.nn.init.normal_``; a new instance per layer."""
    return keras.initializers.RandomNormal(mean=0.0, stddev=stddev,
                                           seed=keras.random.SeedGenerator())


def instance_norm(x: tf.Tensor, epsilon: float = INSTANCE_NORM_EPSILON) -> tf.Tensor:
    """``(x - mean_hw) / sqrt(var_hw + eps)`` per sample and channel (biased variance).

    Args:
      x: ``[B, H, W, C]``.
    """
    x32 = tf.cast(x, tf.float32)  # statistics in float32 under a mixed policy (no-op in float32)
    mean, variance = tf.nn.moments(x32, axes=[1, 2], keepdims=True)
    return tf.cast((x32 - mean) * tf.math.rsqrt(variance + epsilon), x.dtype)


def reflection_pad(x: tf.Tensor, pad: int) -> tf.Tensor:
    """Reflection padding of ``pad`` pixels on each side of H and W (needs ``pad < H, W``)."""
    return tf.pad(x, [[0, 0], [pad, pad], [pad, pad], [0, 0]], mode="REFLECT")


def conv(filters: int, kernel_size: int, strides: int = 1, padding: int = 0,
         init_gain: float = INIT_GAIN, name=None) -> Conv:
    """A convolution with bias and PyTorch's zero padding ``padding`` on each side."""
    pads = [[0, 0], [padding, padding], [padding, padding], [0, 0]] if padding else "VALID"
    return Conv(filters, kernel_size, strides, padding=pads,
                kernel_initializer=normal_init(init_gain), name=name)


class TransposedConv(keras.layers.Layer):
    """``nn.ConvTranspose2d(in, filters, kernel_size, stride, padding, output_padding)`` + bias.

    Output side: ``(H - 1) * stride - 2 * padding + kernel_size + output_padding``;
    ``out[o] = bias + sum_{i, k : o = i * stride - padding + k} x[i] * w[k]`` on each axis.
    Computed as TF's "VALID" transposed convolution (``(H - 1) * stride + kernel_size``
    outputs, ``o = i * stride + k``) cropped by ``padding`` at the top/left (zero-extended at
    the bottom/right if ``output_padding`` asks for more than it holds).

    The kernel is stored ``[kh, kw, filters, in]`` (TF's layout); a PyTorch
    ``ConvTranspose2d.weight`` ``[in, out, kh, kw]`` maps by ``transpose(2, 3, 1, 0)``.
    """

    def __init__(self, filters, kernel_size=3, strides=2, padding=1, output_padding=1,
                 kernel_initializer=None, **kwargs):
        super().__init__(**kwargs)
        if not 0 <= output_padding < strides:
            raise ValueError(f"output_padding {output_padding} must be in [0, stride {strides})")
        self.filters, self.kernel_size, self.strides = filters, kernel_size, strides
        self.padding, self.output_padding = padding, output_padding
        self.kernel_initializer = kernel_initializer or normal_init()

    def build(self, input_shape):
        k = self.kernel_size
        self.kernel = self.add_weight(name="weights", shape=(k, k, self.filters,
                                                             int(input_shape[-1])),
                                      initializer=self.kernel_initializer)
        self.bias = self.add_weight(name="biases", shape=(self.filters,), initializer="zeros")

    def output_size(self, size):
        return (size - 1) * self.strides - 2 * self.padding + self.kernel_size + self.output_padding

    def call(self, x):
        shape = tf.shape(x)
        s, k, p = self.strides, self.kernel_size, self.padding
        full_h, full_w = (shape[1] - 1) * s + k, (shape[2] - 1) * s + k
        y = tf.nn.conv2d_transpose(x, tf.cast(self.kernel, x.dtype),
                                   tf.stack([shape[0], full_h, full_w, self.filters]), s,
                                   padding="VALID")
        out_h = full_h - 2 * p + self.output_padding
        out_w = full_w - 2 * p + self.output_padding
        extra = max(0, self.output_padding - p)  # output_padding beyond the cropped rows
        if extra:
            y = tf.pad(y, [[0, 0], [0, extra], [0, extra], [0, 0]])
        y = y[:, p:p + out_h, p:p + out_w, :]
        return tf.nn.bias_add(y, tf.cast(self.bias, x.dtype))

    def compute_output_shape(self, input_shape):
        b, h, w, _ = input_shape
        size = lambda n: None if n is None else self.output_size(n)
        return (b, size(h), size(w), self.filters)


def receptive_field(layers) -> int:
    """Side of the input region one output sees, for ``[(kernel, stride), ...]`` in order."""
    field, jump = 1, 1
    for kernel, stride in layers:
        field += (kernel - 1) * jump
        jump *= stride
    return field


def count_params(shapes) -> int:
    """Number of values in a list of weight shapes."""
    return int(sum(np.prod(s) for s in shapes))
