"""Image folders of the two domains, without TensorFlow (``evaluate.py`` checks its input
before TensorFlow loads); ``cyclegan.data`` re-exports these names."""
from __future__ import annotations

import os
from typing import List

#: File types taken from a folder: the ones ``tf.io.decode_image`` decodes (not GIF: animations).
IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp")


class DataError(ValueError):
    """A domain cannot be built (missing folder, no readable images, bad list): one line."""


def list_images(folder: str, flag: str = "folder") -> List[str]:
    """Every image file below ``folder`` (recursively), sorted.

    Raises:
      DataError: the folder is missing or holds no image file.
    """
    if not os.path.isdir(folder):
        raise DataError(f"{flag} {folder}: no such directory")
    found = []
    for root, dirs, files in os.walk(folder):
        dirs.sort()
        found += [os.path.join(root, f) for f in files
                  if os.path.splitext(f)[1].lower() in IMAGE_EXTENSIONS]
    if not found:
        raise DataError(f"{flag} {folder}: no images ({', '.join(IMAGE_EXTENSIONS)}) found")
    return sorted(found)
