"""The one atomic writer: every file the project writes goes through here.

A file is written to a temporary name in its own folder, flushed and fsync'ed, given the
project's one file mode (:data:`FILE_MODE`: ``0o666`` minus the process umask, as a plain
``open`` would) and renamed over the target, so a reader (or a run killed mid-write) sees the
old file or the new one, never a half-written one. A failed write removes its temporary file;
a writer killed outright leaves one, which :func:`remove_temporaries` recognises by its name.
A folder written whole (a bundle) is staged beside its place and swapped in
(:func:`atomic_replace_dir`).
"""
from __future__ import annotations

import contextlib
import json
import math
import os
import re
import shutil
import tempfile
from typing import Iterable, Iterator

import numpy as np


def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


#: Mode of every file the project writes (read at import: ``os.umask`` cannot be read without
#: setting it, which is not thread-safe).
_UMASK = _umask()
FILE_MODE = 0o666 & ~_UMASK
#: Mode of a folder written whole (:func:`atomic_replace_dir`), as ``os.makedirs`` would make it.
DIR_MODE = 0o777 & ~_UMASK


#: The name :func:`atomic_path` gives a temporary: ``.NAME.XXXXXXXX.tmp[SUFFIX]``.
_TEMPORARY_NAME = re.compile(r"^\..+\.[A-Za-z0-9_]{8}\.tmp(\.[A-Za-z0-9]+)?$")


@contextlib.contextmanager
def atomic_path(path: str, suffix: str = "") -> Iterator[str]:
    """Yields a temporary path beside ``path`` for writers that need a file name (PIL,
    matplotlib, ``np.savez``, ``cv2.VideoWriter``); on a clean exit the file gets
    :data:`FILE_MODE` and replaces ``path``, on an exception it is removed. ``suffix`` (e.g.
    ``.png``) lets libraries that read the format from the name see the right extension."""
    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, exist_ok=True)
    fd, temporary = tempfile.mkstemp(prefix=f".{os.path.basename(path)}.", suffix=".tmp" + suffix,
                                     dir=directory)
    os.close(fd)
    try:
        yield temporary
        with open(temporary, "rb+") as f:
            os.fsync(f.fileno())
        os.chmod(temporary, FILE_MODE)
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temporary)
        raise


@contextlib.contextmanager
def atomic_replace_dir(path: str) -> Iterator[str]:
    """Yields an empty staging folder beside ``path`` for a folder written whole (a bundle); on
    a clean exit it gets :data:`DIR_MODE` and takes the place of ``path`` (an existing ``path``
    is moved to ``PATH.old`` first and then deleted), on an exception it is deleted. A reader
    sees the old folder or the new one, never a half-written one (between the two renames,
    none)."""
    parent = os.path.dirname(os.path.abspath(path))
    os.makedirs(parent, exist_ok=True)
    staging = tempfile.mkdtemp(prefix=f".{os.path.basename(os.path.abspath(path))}.", dir=parent)
    try:
        yield staging
        os.chmod(staging, DIR_MODE)
        old = None
        if os.path.exists(path):
            old = path.rstrip("/") + ".old"
            shutil.rmtree(old, ignore_errors=True)
            os.replace(path, old)
        os.replace(staging, path)
        if old:
            shutil.rmtree(old, ignore_errors=True)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise


@contextlib.contextmanager
def atomic_files_into(folder: str) -> Iterator[str]:
    """Yields a staging folder inside ``folder`` for writers that make several files at once
    (a TensorFlow checkpoint's ``.data``/``.index``); on a clean exit each file gets
    :data:`FILE_MODE` and is renamed into ``folder`` in sorted name order (a checkpoint's
    ``.index``, which makes it readable, after its ``.data``), and the staging folder is
    deleted, also on an exception. Each file appears whole; a reader may see some of the set
    before the rest."""
    os.makedirs(folder, exist_ok=True)
    staging = tempfile.mkdtemp(prefix=".staging.", dir=folder)
    try:
        yield staging
        for name in sorted(os.listdir(staging)):
            os.chmod(os.path.join(staging, name), FILE_MODE)
            os.replace(os.path.join(staging, name), os.path.join(folder, name))
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def remove_temporaries(folder: str) -> int:
    """Deletes the temporary files a killed writer left below ``folder`` (recursively); returns
    how many. Only for a folder no writer of this project is writing into at the same time."""
    removed = 0
    for root, _, names in os.walk(folder):
        for name in names:
            if _TEMPORARY_NAME.match(name):
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(os.path.join(root, name))
                    removed += 1
    return removed


def atomic_write_bytes(path: str, data: bytes) -> None:
    """Writes ``data`` to ``path`` atomically (see the module docstring)."""
    with atomic_path(path) as temporary:
        with open(temporary, "wb") as f:
            f.write(data)


def atomic_write_text(path: str, text: str) -> None:
    """UTF-8 text, atomically."""
    atomic_write_bytes(path, text.encode("utf-8"))


def atomic_write_lines(path: str, lines: Iterable[str]) -> None:
    """One line per item (each ended by ``\\n``), UTF-8, atomically."""
    atomic_write_text(path, "".join(f"{line}\n" for line in lines))


def json_safe(obj):
    """A JSON-safe copy: numpy scalars and arrays to Python, NaN and infinities to None."""
    if isinstance(obj, dict):
        return {str(k): json_safe(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [json_safe(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return json_safe(obj.tolist())
    if isinstance(obj, (bool, np.bool_)):
        return bool(obj)
    if isinstance(obj, np.integer):
        return int(obj)
    if isinstance(obj, (float, np.floating)):
        return float(obj) if math.isfinite(obj) else None
    return obj


def atomic_write_json(path: str, payload) -> None:
    """``payload`` as JSON (indent 2, sorted keys, NaN/inf as null, a final newline),
    atomically."""
    atomic_write_text(path, json.dumps(json_safe(payload), indent=2, sort_keys=True,
                                       allow_nan=False, ensure_ascii=False) + "\n")


def encode_image(image_rgb: np.ndarray, extension: str, quality: int = 95) -> bytes:
    """uint8 RGB ``[H, W, 3]`` -> PNG or JPEG bytes (``extension`` ``.png``/``.jpg``/``.jpeg``;
    JPEG at ``quality``), encoded by OpenCV."""
    import cv2

    image = np.asarray(image_rgb)
    if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
        raise ValueError(f"expected uint8 [H, W, 3], got {image.dtype} {image.shape}")
    extension = extension.lower()
    if extension not in (".png", ".jpg", ".jpeg"):
        raise ValueError(f"cannot encode images as {extension or 'no extension'} (.png, .jpg)")
    params = [cv2.IMWRITE_JPEG_QUALITY, quality] if extension != ".png" else []
    ok, encoded = cv2.imencode(extension, cv2.cvtColor(image, cv2.COLOR_RGB2BGR), params)
    if not ok:
        raise ValueError(f"could not encode a {extension} image")
    return encoded.tobytes()


def atomic_write_image(path: str, image_rgb: np.ndarray, quality: int = 95) -> None:
    """uint8 RGB ``[H, W, 3]`` as PNG or JPEG (from the extension), atomically."""
    atomic_write_bytes(path, encode_image(image_rgb, os.path.splitext(path)[1], quality))
