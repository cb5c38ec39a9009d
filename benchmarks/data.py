"""A small synthetic face dataset in the release's list layout, with realistic JPEGs."""
from __future__ import annotations

import os
from typing import Sequence, Tuple

import numpy as np
from PIL import Image

from face_aging.data import lists

DEFAULT_PAIRS = ((1, 0), (4, 2), (3, 1), (0, 3), (2, 4))


def synthetic_face(rng: np.random.Generator, size: int) -> np.ndarray:
    """A smooth face-like RGB image (skin-toned ellipse on a gradient, soft texture):
    decodes like a photo crop, unlike flat or pure-noise images."""
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32) / size
    background = rng.uniform(40, 200, 3)[None, None, :] * (0.6 + 0.4 * yy[..., None])
    skin = np.array([205, 160, 130], np.float32) * rng.uniform(0.7, 1.1)
    inside = ((xx - 0.5) / 0.33) ** 2 + ((yy - 0.52) / 0.42) ** 2 < 1.0
    image = np.where(inside[..., None], skin[None, None, :], background)
    for cx in (0.38, 0.62):  # eyes
        eye = ((xx - cx) / 0.06) ** 2 + ((yy - 0.42) / 0.03) ** 2 < 1.0
        image[eye] = 40.0
    mouth = ((xx - 0.5) / 0.12) ** 2 + ((yy - 0.7) / 0.03) ** 2 < 1.0
    image[mouth] = [150, 60, 60]
    texture = rng.normal(0, 6, (size // 4, size // 4, 3)).repeat(4, 0).repeat(4, 1)
    image = image + texture[:size, :size] + rng.normal(0, 2, image.shape)
    return np.clip(image, 0, 255).astype(np.uint8)


def make_jpeg_dataset(root: str, per_group: int = 40, size: int = 400, age_groups: int = 5,
                      pairs: Sequence[Tuple[int, int]] = DEFAULT_PAIRS, quality: int = 90,
                      seed: int = 0) -> str:
    """Writes ``per_group`` JPEGs of ``size`` x ``size`` per age group under ``root/faces`` and
    the list files (``train.txt``, ``train_age_group_k.txt``, ``train_label_pair.txt``).
    400x400 is the CACD crop size, 200x200 UTKFace's. Returns ``root``."""
    rng = np.random.default_rng(seed)
    os.makedirs(os.path.join(root, "faces"), exist_ok=True)
    entries = []
    for group in range(age_groups):
        for i in range(per_group):
            rel = f"faces/g{group}_{i:04d}.jpg"
            Image.fromarray(synthetic_face(rng, size)).save(os.path.join(root, rel),
                                                            quality=quality)
            entries.append((rel, group))
    lists.write_image_list(os.path.join(root, lists.TRAIN_LIST), entries)
    for group in range(age_groups):
        lists.write_image_list(os.path.join(root, lists.age_group_list("train", group)),
                               [e for e in entries if e[1] == group])
    lists.write_label_pairs(os.path.join(root, lists.LABEL_PAIR_LIST), list(pairs))
    return root
