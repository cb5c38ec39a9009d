r"""How a face sits in its crop ("framing"), measured, and the re-framing of one dataset's
crops into another's.

The GAN trains on UTKFace's aligned crops, and the frozen AlexNet later judges generated
faces framed like them; identity data framed otherwise (CACD-VS's loose 250x250 crops,
LAG's tighter 100x100 ones) is re-framed to UTKFace's framing before the AlexNet learns
from it.

A framing is three numbers, each a fraction of the crop's side: the distance between the
two eye centres, and the x and y of their midpoint (0 = left / top edge). They are
measured with dlib's HOG face detector and its 5-point landmark model (the ``[eval]``
extra) as medians over a set's images::

    python -m face_aging.data.framing --images=../shared/data/utkface   # face_aging.apps.framing

A dataset whose faces are placed consistently (all three sets here: the interquartile
ranges are a few hundredths of the side, see ``MEASURED``) is re-framed by one fixed square per
image size, :func:`frame_box`, cut with ``face_aging.faces.crop_with_margin`` at margin 0:
no per-image detection, so no image is dropped and the result does not depend on a
detector's misses.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Dict, List, Sequence, Tuple

import numpy as np


@dataclass(frozen=True)
class Framing:
    """Eye distance and eye-midpoint position, each as a fraction of the crop's side."""
    eye_distance: float
    eye_x: float
    eye_y: float


#: Medians over every image of each set (dlib HOG detector, 5-point landmarks; images where
#: no face was found are left out), by ``python -m face_aging.data.framing --images=DIR``.
#: Interquartile ranges (distance, x, y) and images measured in the comments.
MEASURED: Dict[str, Framing] = {
    # 0.032, 0.015, 0.015; 5,767 of 5,986
    "utkface": Framing(eye_distance=0.385, eye_x=0.490, eye_y=0.304),
    # 0.020, 0.008, 0.008; 6,369 of 6,400
    "cacd_vs": Framing(eye_distance=0.189, eye_x=0.499, eye_y=0.449),
    # 0.015, 0.013, 0.013; 3,747 of 3,816
    "lag": Framing(eye_distance=0.255, eye_x=0.492, eye_y=0.367),
}
#: The framing identity crops are re-framed to: the GAN's training faces.
TARGET = "utkface"


class FractionBox(tuple):
    """A box ``(x1, y1, x2, y2)`` in fractions of the image's width (x) and height (y),
    turned into pixels once the image is decoded (``pixels(width, height)``)."""

    def __new__(cls, x1: float, y1: float, x2: float, y2: float):
        return super().__new__(cls, (float(x1), float(y1), float(x2), float(y2)))

    def __getnewargs__(self):
        return tuple(self)

    def pixels(self, width: int, height: int) -> Tuple[float, float, float, float]:
        x1, y1, x2, y2 = self
        return (x1 * width, y1 * height, x2 * width, y2 * height)


def frame_fractions(source: Framing, target: Framing = MEASURED[TARGET]) -> FractionBox:
    """The square, in fractions of a (square) image framed like ``source``, whose crop is
    framed like ``target``.

    Side = ``source.eye_distance / target.eye_distance`` of the image's side; placed so that
    the source's eye midpoint lands where the target has it.
    """
    side = source.eye_distance / target.eye_distance
    x1 = source.eye_x - target.eye_x * side
    y1 = source.eye_y - target.eye_y * side
    return FractionBox(x1, y1, x1 + side, y1 + side)


def frame_box(width: int, height: int, source: Framing,
              target: Framing = MEASURED[TARGET]) -> Tuple[float, float, float, float]:
    """:func:`frame_fractions` in pixels of a ``width x height`` image (``x`` and the eye
    distance refer to the width, ``y`` to the height; the sets here are square)."""
    if min(width, height) < 1:
        raise ValueError(f"image size {width}x{height}")
    return frame_fractions(source, target).pixels(width, height)


# ----------------------------------------------------------------------- measurement

def _dlib_models():
    from face_aging.metrics.judges import import_optional

    dlib = import_optional("dlib")
    models = import_optional("face_recognition_models")
    return (dlib, dlib.get_frontal_face_detector(),
            dlib.shape_predictor(models.pose_predictor_five_point_model_location()))


def eye_geometry(image: np.ndarray, detector, predictor) -> Tuple[float, float, float]:
    """``(eye distance, eye-midpoint x, y)`` as fractions of the image's width/height, from
    the largest face dlib finds (upsampled once); raises LookupError when none."""
    found = detector(np.ascontiguousarray(image), 1)
    if not len(found):
        raise LookupError("no face found")
    rect = max(found, key=lambda r: r.area())
    shape = predictor(np.ascontiguousarray(image), rect)
    points = np.array([[shape.part(i).x, shape.part(i).y] for i in range(5)], np.float64)
    eye_a, eye_b = points[0:2].mean(0), points[2:4].mean(0)  # corners of each eye
    h, w = image.shape[:2]
    mid = (eye_a + eye_b) / 2.0
    return float(np.linalg.norm(eye_a - eye_b) / w), float(mid[0] / w), float(mid[1] / h)


def measure(paths: Sequence[str], progress: bool = True) -> Dict:
    """Median and interquartile range of the framing of ``paths`` (image files)."""
    from face_aging.images import BadImageError, read_image
    from face_aging.progress import bar as progress_bar

    _, detector, predictor = _dlib_models()
    values: List[Tuple[float, float, float]] = []
    missed = unreadable = 0
    bar = progress_bar(len(paths), "frame", unit="img", enabled=progress)
    for path in paths:
        try:
            image, _ = read_image(path, min_side=2)
            values.append(eye_geometry(image, detector, predictor))
        except LookupError:
            missed += 1
        except BadImageError:
            unreadable += 1
        bar.update(1)
    bar.close()
    result = {"images": len(paths), "measured": len(values), "no_face": missed,
              "unreadable": unreadable}
    if values:
        arr = np.asarray(values)
        median = np.median(arr, 0)
        iqr = np.percentile(arr, 75, 0) - np.percentile(arr, 25, 0)
        for k, name in enumerate(("eye_distance", "eye_x", "eye_y")):
            result[name] = {"median": round(float(median[k]), 3), "iqr": round(float(iqr[k]), 3)}
    return result


def image_files(folder: str) -> List[str]:
    """The image files below ``folder`` (recursively), sorted (``images.list_image_files``)."""
    from face_aging.images import IMAGE_EXTENSIONS, list_image_files

    return list_image_files(folder, recursive=True, extensions=IMAGE_EXTENSIONS)


if __name__ == "__main__":  # the documented command (face_aging.apps.framing)
    from face_aging.apps.framing import run

    run()
