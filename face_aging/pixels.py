"""Pixel conventions of the IPCGAN release: the one place they are defined.

Every network in the release expects its own pixel scale (spec §3). Keep them:
the pretrained AlexNet and any imported generator were trained on exactly these.

| tensor                     | scale                                   | resize grid          |
|----------------------------|-----------------------------------------|----------------------|
| ``source_128`` (G input)   | RGB 0..255 minus ``MEAN_RGB``           | TF1 (no half pixel)  |
| ``source_227`` (AlexNet)   | RGB 0..255 minus ``MEAN_RGB``           | TF1 (no half pixel)  |
| ``real`` (D input)         | RGB / 127.5 - 1, i.e. [-1, 1]           | cv2 (half pixel), uint8 |
| test faces (G input)       | RGB 0..255 minus ``MEAN_RGB``           | cv2 (half pixel), uint8 |
| G output                   | [-1, 1]; saved as (x + 1) * 127.5 uint8 | -                    |

``MEAN_RGB`` holds Caffe's *BGR* means but the release subtracts them from *RGB*
pixels; that quirk is part of what the pretrained weights learned.
"""
from __future__ import annotations

import numpy as np
import tensorflow as tf

#: Caffe's BGR channel means, subtracted from RGB pixels (release quirk, spec §3).
MEAN_RGB = (104.0, 117.0, 124.0)
#: Side of the AlexNet input.
ALEXNET_SIZE = 227


def resize_tf1(images: tf.Tensor, size) -> tf.Tensor:
    """Bilinear resize on TF1's grid (``resize_bilinear``, no half-pixel offset).

    This is what the release used inside the graph (generated face -> 227) and for
    the training source faces. TF2's ``tf.image.resize`` samples at half-pixel
    centres and changes the feature loss by several per cent.

    Args:
      images: ``[B, H, W, C]`` or ``[H, W, C]``, any float or integer dtype, any scale.
      size: ``(height, width)``.
    Returns:
      float32 images of the same scale at ``size``.
    """
    images = tf.convert_to_tensor(images)
    squeeze = images.shape.rank == 3
    if squeeze:
        images = images[tf.newaxis]
    out = tf.raw_ops.ResizeBilinear(
        images=tf.cast(images, tf.float32), size=tf.constant(size, tf.int32),
        align_corners=False, half_pixel_centers=False)
    return out[0] if squeeze else out


def resize_cv2(images: tf.Tensor, size) -> tf.Tensor:
    """Bilinear resize as the release's ``cv2.resize(INTER_LINEAR)`` on uint8 images.

    Half-pixel centres, no antialiasing, result rounded to whole 0..255 levels as
    cv2 returns uint8 (cv2's fixed-point weights can differ by one level).

    Args:
      images: RGB 0..255, ``[B, H, W, 3]`` or ``[H, W, 3]``.
      size: ``(height, width)``.
    Returns:
      float32 RGB 0..255 holding integer values.
    """
    out = tf.image.resize(tf.cast(images, tf.float32), size, method="bilinear", antialias=False)
    return tf.clip_by_value(tf.round(out), 0.0, 255.0)


def subtract_mean(images_0_255: tf.Tensor) -> tf.Tensor:
    """RGB 0..255 -> RGB minus ``MEAN_RGB`` (the scale of ``source_128`` and ``source_227``)."""
    return tf.cast(images_0_255, tf.float32) - tf.constant(MEAN_RGB, tf.float32)


def to_unit_range(images_0_255: tf.Tensor) -> tf.Tensor:
    """RGB 0..255 -> [-1, 1] (the scale of ``real`` faces for the discriminator)."""
    return tf.cast(images_0_255, tf.float32) / 127.5 - 1.0


def generated_to_alexnet(fake: tf.Tensor) -> tf.Tensor:
    """Generator output in [-1, 1] -> AlexNet input: 227x227 on TF1's grid, minus the mean."""
    return subtract_mean(resize_tf1((fake + 1.0) * 127.5, (ALEXNET_SIZE, ALEXNET_SIZE)))


def generator_input_to_0_255(source: tf.Tensor) -> tf.Tensor:
    """Inverse of :func:`subtract_mean`: ``source_128`` back to RGB 0..255 (for sample grids)."""
    return tf.cast(source, tf.float32) + tf.constant(MEAN_RGB, tf.float32)


def to_uint8(images_unit_range) -> np.ndarray:
    """[-1, 1] -> uint8 RGB as the release saved images: (x + 1) * 127.5, clipped, truncated."""
    x = (np.asarray(images_unit_range, np.float32) + 1.0) * 127.5
    return np.clip(x, 0, 255).astype(np.uint8)
