"""Sample images of a training run (grids, atomic PNGs, TensorBoard images): the IPCGAN
release's grids (source batch + one grid per age group) and CycleGAN's strips."""
from __future__ import annotations

import math
import os
import tempfile

import numpy as np
from PIL import Image


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


def save_image_atomic(path: str, image_uint8: np.ndarray) -> None:
    """Writes an image (format from the extension) via a temporary file and a rename."""
    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, exist_ok=True)
    suffix = os.path.splitext(path)[1] or ".png"
    fd, tmp = tempfile.mkstemp(dir=directory, prefix=".tmp_", suffix=suffix)
    os.close(fd)
    try:
        Image.fromarray(np.asarray(image_uint8, np.uint8)).save(tmp)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise


def write_step_images(sample_dir: str, step: int, images, summary_writer=None) -> None:
    """Writes ``{name: uint8 [H, W, 3]}`` as ``sample_dir/step{step:07d}_{name}.png`` (each
    atomically) and, with a ``tf.summary`` writer, as TensorBoard images ``samples/{name}``."""
    for name, image in images.items():
        save_image_atomic(os.path.join(sample_dir, f"step{step:07d}_{name}.png"), image)
    if summary_writer is not None:
        import tensorflow as tf

        with summary_writer.as_default():
            for name, image in images.items():
                tf.summary.image(f"samples/{name}", image[np.newaxis], step=step)
