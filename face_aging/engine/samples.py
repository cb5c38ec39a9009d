"""Sample images of a training run (grids, PNGs written by the one atomic writer, TensorBoard
images): the IPCGAN release's grids (source batch + one grid per age group) and CycleGAN's
strips."""
from __future__ import annotations

import math
import os

import numpy as np

from face_aging.files import atomic_write_image


def image_grid(images_uint8: np.ndarray, columns: int | None = None) -> np.ndarray:
    """``[N, H, W, 3]`` uint8 -> one ``[rows*H, columns*W, 3]`` grid, row-major, black padding.

    Default columns: ``ceil(sqrt(N))`` (a batch of 32 gives 6 columns, 6 rows).
    """
    images = np.asarray(images_uint8)
    if images.ndim != 4 or images.shape[-1] != 3:
        raise ValueError(f"expected [N, H, W, 3] images, got shape {images.shape}")
    n, h, w, _ = images.shape
    columns = columns or math.ceil(math.sqrt(n))
    rows = math.ceil(n / columns)
    grid = np.zeros((rows * h, columns * w, 3), np.uint8)
    for i, image in enumerate(images):
        r, c = divmod(i, columns)
        grid[r * h:(r + 1) * h, c * w:(c + 1) * w] = image
    return grid


def write_step_images(sample_dir: str, step: int, images, summary_writer=None) -> None:
    """Writes ``{name: uint8 [H, W, 3]}`` as ``sample_dir/step{step:07d}_{name}.png`` (each
    atomically) and, with a ``tf.summary`` writer, as TensorBoard images ``samples/{name}``."""
    for name, image in images.items():
        atomic_write_image(os.path.join(sample_dir, f"step{step:07d}_{name}.png"),
                           np.asarray(image, np.uint8))
    if summary_writer is not None:
        import tensorflow as tf

        with summary_writer.as_default():
            for name, image in images.items():
                tf.summary.image(f"samples/{name}", image[np.newaxis], step=step)
