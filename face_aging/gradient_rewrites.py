"""Gradients computed another way for shapes whose gradient oneDNN's CPU kernels run slowly.

:func:`conv2d` and :func:`matmul` are ``tf.nn.conv2d`` and ``tf.matmul`` computed as the same
sums in another order (float rounding apart). Forward passes are TF's own (identical outputs)
except one; the gradients take another route. Times at batch 32 on the 2-core CPU of
docs/BENCHMARKS.md:

- **forward pass of a stride-1 ``SAME`` convolution with at most 4 output channels** (the
  generator's ``conv4``: 7x7, 32 -> 3, the last layer of every aged face): on 4x4 pixel
  blocks (:func:`blocked_conv2d`, 48 output channels): 0.130 -> 0.087 s; generator inference
  1.06x faster; outputs within ~1e-7 of TF's.

- **input gradient of a strided ``VALID`` convolution** (AlexNet's ``conv1``: 11x11, stride 4,
  3 -> 96 channels). Its direct input gradient writes 3 channels at stride 4 (~20 GFLOP/s).
  The same convolution on space-to-depth blocks (each stride x stride patch of pixels becomes
  ``stride^2 * channels`` channels; the kernel zero-padded to a multiple of the stride and
  rearranged alike) is a stride-1 convolution whose input gradient has 48 output channels:
  0.169 -> 0.046 s.
- **kernel gradient of a stride-1 ``SAME`` convolution with an odd kernel** and few output
  channels (the generator's ``conv4``: 7x7, 32 -> 3): computed as the kernel gradient of the
  transposed problem (the output gradient as the input, the input as the output gradient),
  flipped in space with its channel axes swapped: ``conv4`` forward + backward 0.30 -> 0.19 s.
- **input gradient of a dense layer** (AlexNet's ``fc6``: 9216 -> 4096): ``dy @ kernel^T``
  reads the kernel transposed; ``(kernel @ dy^T)^T`` reads it in its stored order:
  0.065 -> 0.019 s.

``tests/test_gradient_rewrites.py`` checks each against TensorFlow's own results.
"""
from __future__ import annotations

from typing import Optional, Sequence

import numpy as np
import tensorflow as tf


def _ceil_div(a: int, b: int) -> int:
    return -(-a // b)


def space_to_depth_kernel(kernel: tf.Tensor, stride: int) -> tf.Tensor:
    """``[kh, kw, in, out]`` -> ``[ceil(kh/s), ceil(kw/s), s*s*in, out]``: the kernel of the same
    convolution applied to ``tf.nn.space_to_depth(x, s)`` at stride 1 (zero taps appended to
    make the kernel a multiple of the stride; depth order as ``space_to_depth``: row in block,
    column in block, channel)."""
    kh, kw, cin, cout = (int(d) for d in kernel.shape)
    bh, bw = _ceil_div(kh, stride), _ceil_div(kw, stride)
    padded = tf.pad(kernel, [[0, bh * stride - kh], [0, bw * stride - kw], [0, 0], [0, 0]])
    blocks = tf.reshape(padded, [bh, stride, bw, stride, cin, cout])
    return tf.reshape(tf.transpose(blocks, [0, 2, 1, 3, 4, 5]),
                      [bh, bw, stride * stride * cin, cout])


def space_to_depth_input_gradient(dy: tf.Tensor, kernel: tf.Tensor,
                                  input_hw: Sequence[int], stride: int) -> tf.Tensor:
    """The input gradient of ``tf.nn.conv2d(x, kernel, stride, "VALID")``, ``x`` of spatial size
    ``input_hw``, as the stride-1 input gradient of the space-to-depth convolution.

    ``dy``: ``[B, out_h, out_w, out]``. Returns ``[B, H, W, in]``; rows and columns the
    convolution never reads (beyond its last window) get zero gradient, as TF's."""
    h, w = (int(d) for d in input_hw)
    kh, kw, cin, _ = (int(d) for d in kernel.shape)
    out_h, out_w = int(dy.shape[1]), int(dy.shape[2])
    bh, bw = _ceil_div(kh, stride), _ceil_div(kw, stride)
    rows, cols = out_h - 1 + bh, out_w - 1 + bw  # blocks the stride-1 convolution reads
    block_grad = tf.raw_ops.Conv2DBackpropInput(
        input_sizes=tf.stack([tf.shape(dy)[0], rows, cols, stride * stride * cin]),
        filter=space_to_depth_kernel(kernel, stride), out_backprop=dy,
        strides=[1, 1, 1, 1], padding="VALID")
    dx = tf.nn.depth_to_space(block_grad, stride)[:, :h, :w, :]
    return tf.pad(dx, [[0, 0], [0, max(h - rows * stride, 0)],
                       [0, max(w - cols * stride, 0)], [0, 0]])


def swapped_kernel_gradient(x: tf.Tensor, dy: tf.Tensor, kernel_shape: Sequence[int]) -> tf.Tensor:
    """The kernel gradient of ``tf.nn.conv2d(x, kernel, 1, "SAME")`` for an odd ``kh x kw``
    kernel, as the kernel gradient of the convolution taking ``dy`` to ``x``: that one is
    ``grad[i, j, o, c] = sum dy[b, h+i-r, w+j-r, o] x[b, h, w, c]``, which is the wanted
    ``grad[kh-1-i, kw-1-j, c, o]`` (odd kernels pad ``SAME`` alike on both sides)."""
    kh, kw, cin, cout = (int(d) for d in kernel_shape)
    swapped = tf.raw_ops.Conv2DBackpropFilter(
        input=dy, filter_sizes=[kh, kw, cout, cin], out_backprop=x,
        strides=[1, 1, 1, 1], padding="SAME")
    return tf.reverse(tf.transpose(swapped, [0, 1, 3, 2]), [0, 1])


#: Side of the pixel blocks of :func:`blocked_conv2d` (4x4 pixels x 3 channels = 48 outputs).
OUTPUT_BLOCK = 4
#: :func:`conv2d` runs a stride-1 ``SAME`` forward pass on blocks up to this many outputs.
BLOCKED_MAX_OUTPUTS = 4


def blocked_kernel(kernel: tf.Tensor, block: int = OUTPUT_BLOCK) -> tf.Tensor:
    """``[kh, kw, in, out]`` (odd kh, kw) -> the kernel of the same stride-1 ``SAME``
    convolution between ``space_to_depth(x, block)`` and ``space_to_depth(y, block)``:
    ``[2mh+1, 2mw+1, block^2 in, block^2 out]`` with ``m = ceil(radius / block)``.

    Output pixel ``b*Bo + p`` reads input pixel ``b*Bi + i`` through tap
    ``b*(Bi - Bo) + i - p + radius``: taps outside the kernel are zero."""
    kh, kw, cin, cout = (int(d) for d in kernel.shape)

    def taps(k):
        r = (k - 1) // 2
        m = _ceil_div(r, block)
        t = (np.arange(2 * m + 1)[:, None, None] * block - m * block
             + np.arange(block)[None, :, None] - np.arange(block)[None, None, :] + r)
        return np.where((t >= 0) & (t < k), t, k).reshape(-1), 2 * m + 1  # k: a zero tap

    rows, nh = taps(kh)
    cols, nw = taps(kw)
    padded = tf.pad(kernel, [[0, 1], [0, 1], [0, 0], [0, 0]])
    by_rows = tf.reshape(tf.gather(padded, rows, axis=0), [nh, block, block, kw + 1, cin, cout])
    both = tf.reshape(tf.gather(by_rows, cols, axis=3),
                      [nh, block, block, nw, block, block, cin, cout])
    # (bh, ih, ph, bw, iw, pw, c, o) -> (bh, bw, [ih, iw, c], [ph, pw, o])
    return tf.reshape(tf.transpose(both, [0, 3, 1, 4, 6, 2, 5, 7]),
                      [nh, nw, block * block * cin, block * block * cout])


def blocked_conv2d(x: tf.Tensor, kernel: tf.Tensor, block: int = OUTPUT_BLOCK) -> tf.Tensor:
    """``tf.nn.conv2d(x, kernel, 1, "SAME")`` (odd kernel; H, W divisible by ``block``) computed
    on ``block`` x ``block`` pixel blocks: few output channels become ``block^2`` times as many
    (the generator's conv4: 3 -> 48), which oneDNN runs far faster although the blocked kernel
    has ~3x the multiply-adds (its zero taps)."""
    k_blocks = blocked_kernel(kernel, block)
    mh, mw = (int(k_blocks.shape[0]) - 1) // 2, (int(k_blocks.shape[1]) - 1) // 2
    y = tf.nn.conv2d(tf.nn.space_to_depth(x, block), k_blocks, 1,
                     [[0, 0], [mh, mh], [mw, mw], [0, 0]])
    return tf.nn.depth_to_space(y, block)


def rewrites(kernel_shape: Sequence[int], stride: int, padding: str,
             input_hw: Sequence[Optional[int]] = (None, None)) -> dict:
    """What :func:`conv2d` computes another way for this convolution: ``input`` / ``kernel``
    gradient, and ``forward`` on pixel blocks (needs the input's static H, W)."""
    kh, kw, cout = int(kernel_shape[0]), int(kernel_shape[1]), int(kernel_shape[3])
    odd_same = padding == "SAME" and stride == 1 and kh % 2 == 1 and kw % 2 == 1
    static = all(d is not None for d in input_hw)
    return {"input": padding == "VALID" and stride > 1,
            "kernel": odd_same,
            "forward": (odd_same and cout <= BLOCKED_MAX_OUTPUTS and static
                        and all(int(d) % OUTPUT_BLOCK == 0 for d in input_hw))}


def conv2d(x: tf.Tensor, kernel: tf.Tensor, stride: int, padding: str) -> tf.Tensor:
    """``tf.nn.conv2d(x, kernel, stride, padding)`` (NHWC, square stride) whose gradient uses
    the rewrites of this module where they apply (:func:`rewrites`), TF's own otherwise.
    The input's spatial size must be static for the input-gradient rewrite (else TF's)."""
    kernel = tf.convert_to_tensor(kernel)
    use = rewrites(kernel.shape, stride, padding, x.shape[1:3])
    use["input"] = use["input"] and x.shape[1] is not None and x.shape[2] is not None
    if not (use["input"] or use["kernel"]):
        return tf.nn.conv2d(x, kernel, stride, padding)
    strides = [1, stride, stride, 1]

    @tf.custom_gradient
    def conv(x, kernel):
        def grad(dy):
            if use["input"]:
                dx = space_to_depth_input_gradient(dy, kernel, x.shape[1:3], stride)
            else:
                dx = tf.raw_ops.Conv2DBackpropInput(input_sizes=tf.shape(x), filter=kernel,
                                                    out_backprop=dy, strides=strides,
                                                    padding=padding)
            if use["kernel"]:
                dk = swapped_kernel_gradient(x, dy, kernel.shape)
            else:
                dk = tf.raw_ops.Conv2DBackpropFilter(input=x, filter_sizes=tf.shape(kernel),
                                                     out_backprop=dy, strides=strides,
                                                     padding=padding)
            return dx, dk

        if use["forward"]:
            return blocked_conv2d(x, kernel), grad
        return tf.nn.conv2d(x, kernel, stride, padding), grad

    return conv(x, kernel)


def matmul(x: tf.Tensor, kernel: tf.Tensor) -> tf.Tensor:
    """``tf.matmul(x, kernel)`` (``x`` ``[B, in]``, ``kernel`` ``[in, out]``) whose input
    gradient is ``(kernel @ dy^T)^T`` (the kernel read in its stored order); the kernel
    gradient is TF's ``x^T @ dy``."""
    @tf.custom_gradient
    def product(x, kernel):
        def grad(dy):
            return (tf.transpose(tf.matmul(kernel, dy, transpose_b=True)),
                    tf.matmul(x, dy, transpose_a=True))

        return tf.matmul(x, kernel), grad

    return product(x, tf.convert_to_tensor(kernel))
