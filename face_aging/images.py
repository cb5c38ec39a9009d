"""The one image reader: every image file the project reads goes through here.

The policy, the same for every reader (test run, demo, data preparation, evaluation, training):

- **RGB, uint8**, ``[H, W, 3]``. Grayscale and 1-bit images are repeated to three channels;
  palette, CMYK, YCbCr, LAB and HSV images are converted by Pillow.
- **Transparency is composited on white**: ``out = (rgb * a + 255 * (255 - a) + 127) // 255``
  (exact integers, so the Pillow reader and the TensorFlow twin give the same pixels). A fully
  opaque alpha channel is simply dropped.
- **EXIF orientation is applied** (a photo is read the way it is displayed), unless the caller
  says the pixels are addressed as stored (a dataset's face box: ``apply_exif=False``).
- **16-bit images are scaled** to 8 bits by ``round(v / 257)``.
- **Animations give their first frame.**
- A file that cannot be used raises :class:`BadImageError`: one line naming the file and what
  is wrong (``e.reason`` without the path, ``e.kind`` a short key such as ``truncated_image``).

:func:`read_image` is the Pillow reader (returns the pixels and notes on what was converted);
:func:`decode_tf` is its TensorFlow twin for ``tf.data`` pipelines (IPCGAN, CycleGAN, AlexNet
pretraining, verification): it decodes the file's own channels and composites in the graph.
EXIF cannot be applied in a graph (TensorFlow's decoders ignore it): training data prepared by
``python -m face_aging.data.prepare`` carries none, and :func:`probe` (CycleGAN's setup check of
raw folders) reports the files whose EXIF rotation training will not see.
:func:`list_image_files` is the one folder listing; :func:`image_size` reads a header only
(the demo refuses huge uploads before decoding them). No TensorFlow (nor Pillow) at import time.
"""
from __future__ import annotations

import io
import os
from typing import List, Optional, Sequence, Tuple

import numpy as np

from face_aging.errors import InputError, MissingInputError

#: Smallest image side (pixels) accepted as a face by default; smaller inputs are reported.
MIN_IMAGE_SIDE = 32
#: File-name endings taken as images (lower case): what the Pillow reader is given.
IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff")
#: The endings :func:`decode_tf` decodes (not GIF: animations; not WebP/TIFF: no TF decoder).
TF_IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp")
#: Pillow's names of the formats :func:`decode_tf` decodes.
TF_FORMATS = ("JPEG", "PNG", "BMP", "MPO")

_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_SIXTEEN_BIT_GREY = ("I;16", "I;16B", "I;16L", "I;16N", "I")
_TRANSPARENT_MODES = ("RGBA", "LA", "PA", "RGBa", "La")


class BadImageError(InputError):
    """A file that cannot be used as an image: ``str(e)`` is ``PATH: REASON``.

    Attributes:
      path: the file.
      reason: what is wrong, without the path (for lines that name the file already).
      kind: ``missing_file``, ``empty_file``, ``truncated_image``, ``unreadable_image``,
        ``too_small`` or ``unsupported_format``.
    """

    def __init__(self, path: str, reason: str, kind: str = "unreadable_image"):
        super().__init__(f"{path}: {reason}")
        self.path, self.reason, self.kind = path, reason, kind


class Note(str):
    """A phrase saying what the reader converted (``"grayscale, converted to RGB"``), with a
    short key in ``kind`` (``grayscale_converted``, ``alpha_composited``, ...)."""

    kind: str

    def __new__(cls, text: str, kind: str):
        note = super().__new__(cls, text)
        note.kind = kind
        return note

    def __reduce__(self):  # keeps ``kind`` across processes (the data tool's workers)
        return Note, (str(self), self.kind)


# --------------------------------------------------------------------------- pixels


def composite_on_white(rgb: np.ndarray, alpha: np.ndarray) -> np.ndarray:
    """uint8 ``rgb [H, W, 3]`` over a white background with uint8 ``alpha [H, W]`` (exact
    integer rounding: the policy of :func:`read_image` and :func:`decode_tf`)."""
    colour = rgb.astype(np.uint32)
    a = alpha.astype(np.uint32)[..., np.newaxis]
    return ((colour * a + 255 * (255 - a) + 127) // 255).astype(np.uint8)


def sixteen_to_eight(values: np.ndarray) -> np.ndarray:
    """16-bit values -> uint8 ``round(v / 257)``."""
    return np.clip(np.round(values.astype(np.float64) / 257.0), 0, 255).astype(np.uint8)


# --------------------------------------------------------------------------- Pillow reader


def _read_bytes(path: str) -> bytes:
    try:
        with open(path, "rb") as f:
            data = f.read()
    except IsADirectoryError:
        raise BadImageError(path, "is a directory") from None
    except FileNotFoundError as e:
        raise BadImageError(path, f"unreadable ({e.strerror or e})", "missing_file") from None
    except OSError as e:
        raise BadImageError(path, f"unreadable ({e.strerror or e})") from None
    return data


def _open(path: str, data: bytes, draft: bool = False):
    """The decoded Pillow image of ``data`` (JPEGs at 1/8 scale with ``draft``: the whole
    stream is still read, so truncation is caught)."""
    from PIL import Image, UnidentifiedImageError

    if not data:
        raise BadImageError(path, "empty file (0 bytes)", "empty_file")
    try:
        image = Image.open(io.BytesIO(data))
        if draft and image.format in ("JPEG", "MPO"):
            image.draft("RGB", (max(1, image.width // 8), max(1, image.height // 8)))
        image.load()
    except UnidentifiedImageError:
        raise BadImageError(path, "not an image (unrecognised file format)") from None
    except Image.DecompressionBombError as e:
        raise BadImageError(path, f"too large to decode safely ({e})") from None
    except (OSError, SyntaxError, ValueError, EOFError) as e:
        reason = str(e) or type(e).__name__
        if isinstance(e, EOFError) or "truncated" in reason or "premature" in reason.lower():
            raise BadImageError(path, f"truncated or corrupt image data ({reason})",
                                "truncated_image") from None
        raise BadImageError(path, f"corrupt image ({reason})") from None
    return image


def _upright(image, notes: List[str]):
    """``image`` turned as its EXIF orientation says (a broken EXIF block is ignored)."""
    from PIL import ImageOps

    try:
        orientation = image.getexif().get(0x0112, 1)
        transposed = ImageOps.exif_transpose(image)
    except Exception:  # noqa: BLE001 -- a broken EXIF block is no reason to reject the pixels
        return image
    if transposed is None:
        return image
    if orientation in (2, 3, 4, 5, 6, 7, 8):
        notes.append(Note("rotated as its EXIF orientation says", "exif_rotated"))
    return transposed


def _to_rgb(path: str, image, data: bytes, notes: List[str]) -> np.ndarray:
    """The policy of the module docstring, by Pillow mode."""
    mode = image.mode
    if mode == "RGB" and data[:8] == _PNG_SIGNATURE and len(data) > 24 and data[24] == 16:
        import cv2

        decoded = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED)
        notes.append(Note("16-bit RGB, converted to 8-bit", "16bit_converted"))
        if decoded is not None and decoded.dtype == np.uint16 and decoded.ndim == 3:
            return sixteen_to_eight(cv2.cvtColor(decoded[..., :3], cv2.COLOR_BGR2RGB))
        return np.asarray(image)
    if mode == "RGB":
        return np.asarray(image)
    if mode in ("L", "1"):
        notes.append(Note("grayscale, converted to RGB" if mode == "L" else
                          "1-bit, converted to RGB", "grayscale_converted"))
        return np.asarray(image.convert("RGB"))
    if mode in _SIXTEEN_BIT_GREY or mode == "F":
        return _sixteen_bit_grey(path, image, notes)
    if mode in _TRANSPARENT_MODES or (mode == "P" and "transparency" in image.info):
        rgba = np.asarray(image.convert("RGBA"))
        if np.all(rgba[..., 3] == 255):
            notes.append(Note(f"{mode} with an opaque alpha channel, alpha dropped",
                              "alpha_removed"))
            return rgba[..., :3]
        notes.append(Note(f"{mode} with transparency, composited on white", "alpha_composited"))
        return composite_on_white(rgba[..., :3], rgba[..., 3])
    if mode in ("CMYK", "P", "YCbCr", "LAB", "HSV"):
        notes.append(Note(f"{mode}, converted to RGB", f"{mode.lower()}_converted"))
        return np.asarray(image.convert("RGB"))
    raise BadImageError(path, f"unsupported pixel format (PIL mode {mode})", "unsupported_format")


def _sixteen_bit_grey(path: str, image, notes: List[str]) -> np.ndarray:
    values = np.asarray(image)
    if image.mode == "F":  # floating point: 0..1, 0..255 or 0..65535, by its peak
        peak = float(np.nanmax(values)) if values.size else 0.0
        values = values * (65535.0 if peak <= 1.0 else 257.0 if peak <= 255.0 else 1.0)
    elif image.mode == "I" and values.size and (values.min() < 0 or values.max() > 65535):
        raise BadImageError(path, f"32-bit integer image with values {values.min()}.."
                            f"{values.max()}: unsupported pixel format", "unsupported_format")
    notes.append(Note("16-bit grayscale, converted to 8-bit RGB", "grayscale_converted"))
    return np.repeat(sixteen_to_eight(np.nan_to_num(values))[..., np.newaxis], 3, axis=2)


def read_image(path: str, min_side: int = MIN_IMAGE_SIDE,
               apply_exif: bool = True) -> Tuple[np.ndarray, List[Note]]:
    """Reads any image file as uint8 RGB ``[H, W, 3]`` by the policy of the module docstring.

    Args:
      min_side: smaller images are refused (``too_small``).
      apply_exif: turn the image as its EXIF orientation says; False for pixels addressed as
        stored (a dataset's face box).
    Returns:
      ``(image, notes)``: :class:`Note` phrases saying what was converted.
    Raises:
      BadImageError: the file and the reason (empty, truncated, not an image, too small, ...).
    """
    return decode_image(_read_bytes(path), path, min_side, apply_exif)


def decode_image(data: bytes, name: str = "image", min_side: int = MIN_IMAGE_SIDE,
                 apply_exif: bool = True) -> Tuple[np.ndarray, List[Note]]:
    """:func:`read_image` of bytes already read (``name`` stands for the path in errors)."""
    image = _open(name, data)
    notes: List[Note] = []
    if getattr(image, "n_frames", 1) > 1:
        notes.append(Note(f"first of {image.n_frames} frames", "first_frame"))
    if apply_exif:
        image = _upright(image, notes)
    rgb = np.ascontiguousarray(_to_rgb(name, image, data, notes), dtype=np.uint8)
    height, width = rgb.shape[:2]
    if min(height, width) < min_side:
        raise BadImageError(name, f"too small ({width}x{height} px; need at least {min_side} px "
                            "a side)", "too_small")
    return rgb, notes


def image_size(path: str) -> Optional[Tuple[int, int]]:
    """``(width, height)`` from the file's header (no pixels decoded); None if it is not an
    image Pillow recognises (:func:`read_image` then says what is wrong)."""
    from PIL import Image

    try:
        with Image.open(path) as header:
            return header.size
    except Exception:  # noqa: BLE001 -- read_image gives the reason
        return None


def probe(path: str, formats: Sequence[str] = TF_FORMATS) -> List[Note]:
    """Checks that ``path`` decodes (JPEGs at 1/8 scale: fast) in one of ``formats`` (Pillow
    names; default: what :func:`decode_tf` decodes); returns notes on what a TensorFlow
    decoder will not do (an EXIF rotation).

    Raises:
      BadImageError: as :func:`read_image`, or ``unsupported_format``.
    """
    image = _open(path, _read_bytes(path), draft=True)
    if image.format not in formats:
        raise BadImageError(path, f"{image.format} images are not supported", "unsupported_format")
    if image.width < 1 or image.height < 1:
        raise BadImageError(path, "no pixels", "too_small")
    orientation = image.getexif().get(0x0112, 1)
    if orientation not in (None, 1):
        return [Note(f"EXIF orientation {orientation}, not applied by TensorFlow's decoder",
                     "exif_rotated")]
    return []


# --------------------------------------------------------------------------- TensorFlow twin


def decode_tf(contents):
    """TensorFlow twin of :func:`read_image` for ``tf.data``: encoded JPEG/PNG/BMP/GIF bytes
    (a string tensor) -> uint8 RGB ``[H, W, 3]``.

    Same policy, in the graph: grey repeated to RGB, transparency composited on white with the
    same integer rounding, 16-bit PNGs scaled by ``round(v / 257)``, animations' first frame.
    A 3-channel file decodes exactly as ``tf.io.decode_image(channels=3)``. **EXIF orientation
    is not applied** (no TensorFlow decoder reads it): feed prepared or EXIF-free files.
    """
    import tensorflow as tf

    head = tf.io.decode_raw(tf.strings.substr(contents, 0, 25), tf.uint8)
    head = tf.pad(head, [[0, 25 - tf.shape(head)[0]]])
    png16 = tf.logical_and(tf.reduce_all(tf.equal(head[:8], tf.constant(
        list(_PNG_SIGNATURE), tf.uint8))), tf.equal(head[24], 16))

    def sixteen_bit():
        values = tf.cast(tf.io.decode_png(contents, channels=0, dtype=tf.uint16), tf.float32)
        return tf.cast(tf.round(values / 257.0), tf.uint8)

    image = tf.cond(png16, sixteen_bit, lambda: tf.io.decode_image(
        contents, channels=0, expand_animations=False, dtype=tf.uint8))

    def over_white(colour, alpha):
        colour, alpha = tf.cast(colour, tf.int32), tf.cast(alpha, tf.int32)
        return tf.cast((colour * alpha + 255 * (255 - alpha) + 127) // 255, tf.uint8)

    branches = [lambda: tf.tile(image[..., :1], [1, 1, 3]),                 # grey
                lambda: over_white(tf.tile(image[..., :1], [1, 1, 3]), image[..., 1:2]),
                lambda: image[..., :3],                                      # RGB
                lambda: over_white(image[..., :3], image[..., 3:4])]        # RGBA
    rgb = tf.switch_case(tf.shape(image)[-1] - 1, branches)
    rgb.set_shape([None, None, 3])
    return rgb


# --------------------------------------------------------------------------- listing


def list_image_files(path: str, recursive: bool = False,
                     extensions: Optional[Sequence[str]] = None) -> List[str]:
    """The files to read from ``path``, sorted: a file -> ``[path]``; a folder -> its
    non-hidden files (``recursive``: below it too, hidden folders skipped), only those ending
    in ``extensions`` (lower-case endings) if given.

    Without ``extensions`` every file is returned, not only known image types: a non-image in
    an input folder is then reported by :func:`read_image`, not silently skipped.

    Raises:
      errors.MissingInputError: ``path`` does not exist.
    """
    if os.path.isfile(path):
        return [path]
    if not os.path.isdir(path):
        raise MissingInputError(f"{path}: no such file or directory")
    found = []
    for root, dirs, names in os.walk(path):
        dirs[:] = sorted(d for d in dirs if not d.startswith(".")) if recursive else []
        found += [os.path.join(root, name) for name in names if not name.startswith(".")
                  and (extensions is None or name.lower().endswith(tuple(extensions)))]
    return sorted(found)
