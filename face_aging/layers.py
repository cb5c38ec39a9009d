"""Layers with the release's exact arithmetic and variable names.

Each layer owns its variables under the release's short names (``weights``,
``biases``, ``beta``, ``gamma``, ``moving_mean``, ``moving_variance``), so the
release's checkpoints map one to one (see ``face_aging.checkpoints``). Compute
runs on ``tf.nn`` ops directly; kernels are cast to the input's dtype so the same
layers run under a ``mixed_float16`` or ``mixed_bfloat16`` policy.
"""
from __future__ import annotations

import keras
import tensorflow as tf

from face_aging import gradient_rewrites



def conv_init():
    """Conv and dense kernels: truncated normal, stddev 0.02 (spec §1.1).

    A new instance per layer: a Keras 3 initializer instance without a seed returns the
    same values on every call, which would give equal kernels to equal-shaped layers.
    """
    return keras.initializers.TruncatedNormal(stddev=0.02, seed=keras.random.SeedGenerator())


def deconv_init():
    """Transposed-conv kernels: normal, stddev 0.02 (spec §1.1); a new instance per layer."""
    return keras.initializers.RandomNormal(stddev=0.02, seed=keras.random.SeedGenerator())


class Conv(keras.layers.Layer):
    """2-D convolution, kernel ``[kh, kw, in/groups, out]`` + bias, as the release's ``conv2d``.

    ``groups=2`` is AlexNet's grouped convolution: input channels and output channels
    split in halves, half convolved with half, results concatenated. It runs as two
    plain convolutions (Keras' ``groups=2`` gradient is ~15x slower on CPU, see
    PLATFORM_NOTES), the kernel stored whole as in the release.

    ``rewrite_gradients=True``: computed by ``face_aging.gradient_rewrites.conv2d`` (for the
    shapes oneDNN's CPU runs slowly: AlexNet's ``conv1`` input gradient, the generator
    ``conv4``'s forward pass and kernel gradient; equal to TF's to float rounding).
    """

    def __init__(self, filters, kernel_size, strides=1, padding="SAME", groups=1,
                 kernel_initializer=None, rewrite_gradients=False, **kwargs):
        super().__init__(**kwargs)
        self.filters, self.kernel_size, self.strides = filters, kernel_size, strides
        self.padding, self.groups = padding, groups
        self.rewrite_gradients = rewrite_gradients
        self.kernel_initializer = kernel_initializer or conv_init()

    def build(self, input_shape):
        in_channels = int(input_shape[-1])
        if in_channels % self.groups or self.filters % self.groups:
            raise ValueError(f"{self.name}: channels {in_channels}->{self.filters} "
                             f"do not split into {self.groups} groups")
        k = self.kernel_size
        self.kernel = self.add_weight(
            name="weights", shape=(k, k, in_channels // self.groups, self.filters),
            initializer=self.kernel_initializer)
        self.bias = self.add_weight(name="biases", shape=(self.filters,), initializer="zeros")

    def call(self, x):
        return self._convolve(x, self.kernel, self.bias)

    def call_scaled(self, x, scale, offset):
        """``call(x) * scale + offset`` per output channel, computed as one convolution with
        the kernel and bias scaled (a batch norm with fixed statistics folded in: no separate
        pass over the activations). ``scale``, ``offset``: float32 ``[filters]``. Called
        directly, not through Keras (the layer must be built)."""
        return self._convolve(x, self.kernel * scale, self.bias * scale + offset)

    def call_on_parts(self, parts):
        """``call(tf.concat(parts, axis=-1))`` as the sum of one convolution per part, each
        with its slice of the kernel: no concatenated copy of the input, and the gradient
        needs no slicing of it. For the discriminator's image features + age-condition maps
        (64 + 5 channels: an odd channel count oneDNN runs slowly); same values to float
        rounding. One group only; called directly, not through Keras (the layer must be
        built)."""
        dtype = parts[0].dtype
        kernels = tf.split(tf.cast(self.kernel, dtype), [int(p.shape[-1]) for p in parts], axis=2)
        y = tf.add_n([tf.nn.conv2d(p, k, self.strides, self.padding)
                      for p, k in zip(parts, kernels)])
        return tf.nn.bias_add(y, tf.cast(self.bias, dtype))

    def _convolve(self, x, kernel, bias):
        kernel = tf.cast(kernel, x.dtype)
        if self.groups == 1:
            conv2d = gradient_rewrites.conv2d if self.rewrite_gradients else tf.nn.conv2d
            y = conv2d(x, kernel, self.strides, self.padding)
        else:
            xs = tf.split(x, self.groups, axis=-1)
            ks = tf.split(kernel, self.groups, axis=-1)
            y = tf.concat([tf.nn.conv2d(xi, ki, self.strides, self.padding)
                           for xi, ki in zip(xs, ks)], axis=-1)
        return tf.nn.bias_add(y, tf.cast(bias, x.dtype))

    def release_variables(self):
        return {"weights": self.kernel, "biases": self.bias}


class Deconv(keras.layers.Layer):
    """Upsampling by ``strides``, kernel ``[kh, kw, out, in]``, SAME, output = input x stride.

    ``resize=False`` (the release): a transposed convolution. With a 3x3 kernel and stride 2
    its output pixels receive 1, 2 or 4 kernel taps depending on their position, a period-2
    pattern that a trained generator shows as a checkerboard. ``resize=True``: nearest-neighbour
    upsampling, then a stride-1 convolution with the same variables (the kernel read as
    ``[kh, kw, in, out]``; Odena, Dumoulin, Olah, "Deconvolution and Checkerboard Artifacts",
    Distill 2016): every output pixel receives all taps, so no such pattern is built in. Both
    hold the same variables of the same shapes, so a checkpoint loads into either: the mode
    must be the one the weights were trained with.
    """

    def __init__(self, filters, kernel_size, strides=2, kernel_initializer=None,
                 resize=False, **kwargs):
        super().__init__(**kwargs)
        self.filters, self.kernel_size, self.strides = filters, kernel_size, strides
        self.resize = resize
        self.kernel_initializer = kernel_initializer or deconv_init()

    def build(self, input_shape):
        k = self.kernel_size
        self.kernel = self.add_weight(
            name="weights", shape=(k, k, self.filters, int(input_shape[-1])),
            initializer=self.kernel_initializer)
        self.bias = self.add_weight(name="biases", shape=(self.filters,), initializer="zeros")

    def call(self, x):
        return self._upsample(x, self.kernel, self.bias)

    def call_scaled(self, x, scale, offset):
        """As :meth:`Conv.call_scaled`: ``call(x) * scale + offset`` per output channel in one
        (transposed) convolution. Called directly, not through Keras (the layer must be built)."""
        return self._upsample(x, self.kernel * scale[:, tf.newaxis], self.bias * scale + offset)

    def _upsample(self, x, kernel, bias):
        kernel = tf.cast(kernel, x.dtype)
        if self.resize:
            s = self.strides
            up = tf.repeat(tf.repeat(x, s, axis=1), s, axis=2)  # nearest neighbour, exact
            y = tf.nn.conv2d(up, tf.transpose(kernel, [0, 1, 3, 2]), 1, padding="SAME")
        else:
            shape = tf.shape(x)
            output_shape = tf.stack([shape[0], shape[1] * self.strides,
                                     shape[2] * self.strides, self.filters])
            y = tf.nn.conv2d_transpose(x, kernel, output_shape, self.strides, padding="SAME")
        return tf.nn.bias_add(y, tf.cast(bias, x.dtype))

    def release_variables(self):
        return {"weights": self.kernel, "biases": self.bias}


class Dense(keras.layers.Layer):
    """Fully connected layer, kernel ``[in, out]`` + bias. Its input gradient is computed by
    ``face_aging.gradient_rewrites.matmul`` (the kernel read in stored order: 3.4x faster for
    AlexNet's ``fc6`` on CPU; equal to TF's to float rounding)."""

    def __init__(self, units, kernel_initializer=None, **kwargs):
        super().__init__(**kwargs)
        self.units = units
        self.kernel_initializer = kernel_initializer or conv_init()

    def build(self, input_shape):
        self.kernel = self.add_weight(name="weights", shape=(int(input_shape[-1]), self.units),
                                      initializer=self.kernel_initializer)
        self.bias = self.add_weight(name="biases", shape=(self.units,), initializer="zeros")

    def call(self, x):
        return tf.nn.bias_add(gradient_rewrites.matmul(x, tf.cast(self.kernel, x.dtype)),
                              tf.cast(self.bias, x.dtype))

    def release_variables(self):
        return {"weights": self.kernel, "biases": self.bias}


class BatchNorm(keras.layers.Layer):
    """The release's batch normalisation (spec §1.4).

    - Normalises over batch, height and width with the *batch's* statistics whenever
      ``use_batch_stats`` is true (the release did so at training and at test time),
      with the moving statistics otherwise.
    - ``update_moving`` (true when training) updates ``moving_mean`` / ``moving_variance``
      as TF1's ``assign_moving_average(decay, zero_debias=True)``: each statistic keeps a
      ``biased`` accumulator and a ``local_step`` counter (stored under
      ``<stat>/biased`` and ``<stat>/local_step`` as in the release), and
      ``moving = biased / (1 - decay ** local_step)``.
    - Variance is the population variance of the batch, as the release's ``tf.nn.moments``;
      computed by TF's fused batch-norm kernel (the same formula in one op forward and one
      backward; losses of a step agree with the unfused ops to ~1e-6 relative). Statistics
      and their updates stay float32 under a mixed policy (no autocast).
    - ``synchronized``: under a ``tf.distribute`` strategy, batch statistics are
      all-reduced over the replicas (global-batch statistics, as the release's one GPU).
    """

    def __init__(self, epsilon=1e-3, decay=0.9, synchronized=False, **kwargs):
        super().__init__(**kwargs)
        self.epsilon, self.decay, self.synchronized = epsilon, decay, synchronized

    def build(self, input_shape):
        c = (int(input_shape[-1]),)
        self.beta = self.add_weight(name="beta", shape=c, initializer="zeros")
        self.gamma = self.add_weight(name="gamma", shape=c, initializer="ones")
        self.moving_mean = self.add_weight(name="moving_mean", shape=c, initializer="zeros",
                                           trainable=False, aggregation="mean",
                                           autocast=False)
        self.moving_variance = self.add_weight(name="moving_variance", shape=c,
                                               initializer="ones", trainable=False,
                                               aggregation="mean", autocast=False)
        self.mean_biased = self.add_weight(name="moving_mean_biased", shape=c,
                                           initializer="zeros", trainable=False,
                                           aggregation="mean", autocast=False)
        self.mean_local_step = self.add_weight(name="moving_mean_local_step", shape=(),
                                               initializer="zeros", trainable=False,
                                               aggregation="mean", autocast=False)
        self.variance_biased = self.add_weight(name="moving_variance_biased", shape=c,
                                               initializer="zeros", trainable=False,
                                               aggregation="mean", autocast=False)
        self.variance_local_step = self.add_weight(name="moving_variance_local_step", shape=(),
                                                   initializer="zeros", trainable=False,
                                                   aggregation="mean", autocast=False)

    def call(self, x, use_batch_stats=False, update_moving=False):
        if not use_batch_stats:
            return self._normalise(x, self.moving_mean, self.moving_variance)
        replica = tf.distribute.get_replica_context()
        if self.synchronized and replica is not None and replica.num_replicas_in_sync > 1:
            mean, variance = self._global_batch_moments(x, replica)
            y = self._normalise(x, mean, variance)
        else:
            y, mean, variance = self._fused(x)
        if update_moving:
            self._update(self.moving_mean, self.mean_biased, self.mean_local_step, mean)
            self._update(self.moving_variance, self.variance_biased, self.variance_local_step,
                         variance)
        return y

    def folded(self):
        """``(scale, offset)``, float32 ``[channels]``: normalising with the moving statistics
        is ``x * scale + offset`` (``scale = gamma / sqrt(moving_variance + epsilon)``,
        ``offset = beta - moving_mean * scale``, as ``tf.nn.batch_normalization`` forms them),
        for folding into the convolution before it (``Conv.call_scaled``)."""
        scale = self.gamma * tf.math.rsqrt(self.moving_variance + self.epsilon)
        return scale, self.beta - self.moving_mean * scale

    def _normalise(self, x, mean, variance):
        dtype = x.dtype
        return tf.nn.batch_normalization(
            x, tf.cast(mean, dtype), tf.cast(variance, dtype), tf.cast(self.beta, dtype),
            tf.cast(self.gamma, dtype), self.epsilon)

    def _fused(self, x):
        """``(normalised x, batch mean, batch population variance)`` from TF's fused kernel
        (one op forward, one backward: the training step at batch 32, 128 px, 1.03x faster in
        float32 and 1.12x in bfloat16, docs/BENCHMARKS.md run H); statistics in float32 for
        every input dtype."""
        y, mean, bessel_variance, _, _, _ = tf.raw_ops.FusedBatchNormV3(
            x=x, scale=tf.cast(self.gamma, tf.float32), offset=tf.cast(self.beta, tf.float32),
            mean=tf.constant([], tf.float32), variance=tf.constant([], tf.float32),
            epsilon=self.epsilon, exponential_avg_factor=1.0, data_format="NHWC",
            is_training=True)
        count = tf.cast(tf.reduce_prod(tf.shape(x)[:-1]), tf.float32)
        # The kernel returns the variance with Bessel's correction (for running averages); the
        # release's moving statistics follow tf.nn.moments' population variance.
        variance = bessel_variance * (count - 1.0) / count
        return y, tf.stop_gradient(mean), tf.stop_gradient(variance)

    @staticmethod
    def _global_batch_moments(x, replica):
        """Mean and population variance over the global batch (all-reduced over replicas)."""
        x32 = tf.cast(x, tf.float32)
        count = tf.cast(tf.reduce_prod(tf.shape(x32)[:-1]), tf.float32)
        total, total_sq, total_count = replica.all_reduce(
            tf.distribute.ReduceOp.SUM,
            [tf.reduce_sum(x32, [0, 1, 2]), tf.reduce_sum(tf.square(x32), [0, 1, 2]), count])
        mean = total / total_count
        return mean, tf.maximum(total_sq / total_count - tf.square(mean), 0.0)

    def _update(self, moving, biased, local_step, value):
        # TF1 moving_averages._zero_debias, with update fraction (1 - decay).
        new_biased = biased - (biased - value) * (1.0 - self.decay)
        new_step = local_step + 1.0
        biased.assign(new_biased)
        local_step.assign(new_step)
        moving.assign(new_biased / (1.0 - tf.pow(self.decay, new_step)))

    def release_variables(self):
        return {"beta": self.beta, "gamma": self.gamma,
                "moving_mean": self.moving_mean, "moving_variance": self.moving_variance,
                "moving_mean/biased": self.mean_biased,
                "moving_mean/local_step": self.mean_local_step,
                "moving_variance/biased": self.variance_biased,
                "moving_variance/local_step": self.variance_local_step}


def lrelu(x, leak=0.2):
    """The release's leaky ReLU: ``max(x, leak * x)``."""
    return tf.maximum(x, leak * x)


def broadcast_condition(age_vector, height, width, dtype):
    """``[B, N]`` age vector -> ``[B, height, width, N]`` condition map (channel k = weight k)."""
    age_vector = tf.cast(age_vector, dtype)
    return tf.tile(age_vector[:, tf.newaxis, tf.newaxis, :], tf.stack([1, height, width, 1]))
