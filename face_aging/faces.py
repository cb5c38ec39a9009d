"""Face detection, eye alignment and margin crops, with OpenCV only.

Shared by data preparation (``python -m face_aging.data.prepare``) and inference
(``test.py --detect_faces``, the demo, the video tool), so that a face is cropped at test time
exactly as the training crops were made: :func:`locate_faces` is the one detect -> level ->
crop, :func:`paste_back` the one way back into the photo.

Conventions used everywhere in this module:

- images are ``numpy`` arrays ``[H, W, 3]``, **RGB, uint8** (0..255);
- a *box* is ``(x1, y1, x2, y2)`` in **pixels**, 0-based, ``x2``/``y2`` exclusive
  (a box covering the whole ``W x H`` image is ``(0, 0, W, H)``); floats allowed;
- angles are in **degrees**, positive = counter-clockwise as seen on screen
  (OpenCV's ``getRotationMatrix2D`` convention).

The crop rule (:func:`square_with_margin`): a square centred on the box centre, of
side ``max(box width, box height) * (1 + 2 * margin)``, i.e. ``margin`` times the
box's larger side is added on *each* side. Parts of the square outside the image are
filled by replicating the border pixels. The square is then resized to the output
size. ``DEFAULT_MARGIN`` is the margin the training data of this project uses by
default (``prepare --margin``); inference should crop with the same value.

Detection uses OpenCV's Haar cascades (``haarcascade_frontalface_default.xml``,
``haarcascade_eye.xml``). OpenCV 4.x wheels ship them under ``cv2.data.haarcascades``;
OpenCV 5.0 moved ``CascadeClassifier`` to opencv-contrib and ships no cascade files.
:func:`detector_status` says what is missing; the XML files are also looked up in
``$FACE_AGING_HAAR_DIR`` and Debian's ``opencv-data`` folders.
"""
from __future__ import annotations

import dataclasses
import math
import os
from typing import List, Optional, Sequence, Tuple

import cv2
import numpy as np

from face_aging.errors import UnavailableError

#: Margin added on each side of a face box, as a fraction of the box's larger side.
#: 0.4 is IMDB-WIKI's own crop margin ("40 % margin"). Training crops made by
#: ``face_aging.data.prepare`` use it unless ``--margin`` says otherwise.
DEFAULT_MARGIN = 0.4
#: Side of the crops written by ``prepare`` (CACD's release crops are 400x400).
DEFAULT_CROP_SIZE = 400
#: Eye-line rolls larger than this (degrees) are taken as a false eye detection.
MAX_ROLL_DEGREES = 30.0

FACE_CASCADE = "haarcascade_frontalface_default.xml"
EYE_CASCADE = "haarcascade_eye.xml"
#: Detection runs on a copy whose longer side is at most this many pixels.
_DETECT_MAX_SIDE = 800

Box = Tuple[float, float, float, float]
Point = Tuple[float, float]


class FaceDetectionUnavailable(UnavailableError, RuntimeError):
    """This OpenCV build cannot run Haar cascades (the message says what to install)."""


# --------------------------------------------------------------------------- geometry

def square_with_margin(box: Sequence[float], margin: float = DEFAULT_MARGIN) -> Tuple[int, int, int, int]:
    """The square region a crop takes: ``(x1, y1, x2, y2)`` integer pixels, may extend past the image.

    Centred on the box centre, side ``round(max(w, h) * (1 + 2 * margin))`` (at least 1).
    """
    x1, y1, x2, y2 = (float(v) for v in box)
    w, h = x2 - x1, y2 - y1
    if not (w > 0 and h > 0):
        raise ValueError(f"degenerate face box {tuple(box)}")
    if margin < 0:
        raise ValueError(f"margin must be >= 0, got {margin}")
    side = max(1, int(round(max(w, h) * (1.0 + 2.0 * margin))))
    cx, cy = (x1 + x2) / 2.0, (y1 + y2) / 2.0
    left = int(round(cx - side / 2.0))
    top = int(round(cy - side / 2.0))
    return left, top, left + side, top + side


def centre_square(height: int, width: int) -> Box:
    """The largest centred square box of a ``width x height`` image (pixels)."""
    side = min(height, width)
    x1 = (width - side) // 2
    y1 = (height - side) // 2
    return float(x1), float(y1), float(x1 + side), float(y1 + side)


def box_inside_fraction(box: Sequence[float], height: int, width: int) -> float:
    """Fraction of the box's area that lies inside a ``width x height`` image (0..1)."""
    x1, y1, x2, y2 = (float(v) for v in box)
    area = max(0.0, x2 - x1) * max(0.0, y2 - y1)
    if area <= 0:
        return 0.0
    ix = max(0.0, min(x2, width) - max(x1, 0.0))
    iy = max(0.0, min(y2, height) - max(y1, 0.0))
    return ix * iy / area


def _region(image: np.ndarray, x1: int, y1: int, x2: int, y2: int) -> np.ndarray:
    """``image[y1:y2, x1:x2]`` where out-of-image pixels replicate the border."""
    h, w = image.shape[:2]
    cx1, cy1, cx2, cy2 = max(x1, 0), max(y1, 0), min(x2, w), min(y2, h)
    if cx1 >= cx2 or cy1 >= cy2:  # entirely outside: replicate the nearest pixel
        nx = min(max(x1, 0), w - 1)
        ny = min(max(y1, 0), h - 1)
        return np.broadcast_to(image[ny, nx], (y2 - y1, x2 - x1) + image.shape[2:]).copy()
    inner = image[cy1:cy2, cx1:cx2]
    pads = (cy1 - y1, y2 - cy2, cx1 - x1, x2 - cx2)
    if any(pads):
        inner = cv2.copyMakeBorder(np.ascontiguousarray(inner), *pads, cv2.BORDER_REPLICATE)
    return inner


def _resize(image: np.ndarray, size: int) -> np.ndarray:
    h = image.shape[0]
    if h == size:
        return np.ascontiguousarray(image)
    interpolation = cv2.INTER_AREA if h > size else cv2.INTER_LINEAR
    return cv2.resize(np.ascontiguousarray(image), (size, size), interpolation=interpolation)


def crop_with_margin(image: np.ndarray, box: Sequence[float], margin: float = DEFAULT_MARGIN,
                     size: int = DEFAULT_CROP_SIZE, angle: float = 0.0) -> np.ndarray:
    """Square crop around a face box, optionally levelled, resized to ``size x size``.

    Args:
      image: ``[H, W, 3]`` RGB uint8 (any channel count works).
      box: face box ``(x1, y1, x2, y2)`` in pixels.
      margin: fraction of the box's larger side added on each side (see module doc).
      size: output side in pixels.
      angle: degrees to rotate the image about the box centre before cropping
        (:func:`eye_roll_angle` gives the angle that levels the eyes); 0 = no rotation.
    Returns:
      ``[size, size, C]`` uint8. Downscaling uses ``INTER_AREA``, upscaling ``INTER_LINEAR``.
    """
    x1, y1, x2, y2 = square_with_margin(box, margin)
    side = x2 - x1
    if abs(angle) < 1e-3:
        return _resize(_region(image, x1, y1, x2, y2), size)
    pad = int(math.ceil(side * (math.sqrt(2.0) - 1.0) / 2.0)) + 2
    region = _region(image, x1 - pad, y1 - pad, x2 + pad, y2 + pad)
    full = side + 2 * pad
    centre = ((full - 1) / 2.0, (full - 1) / 2.0)
    matrix = cv2.getRotationMatrix2D(centre, float(angle), 1.0)
    rotated = cv2.warpAffine(region, matrix, (full, full), flags=cv2.INTER_LINEAR,
                             borderMode=cv2.BORDER_REPLICATE)
    return _resize(rotated[pad:pad + side, pad:pad + side], size)


#: Width of the soft edge of a pasted face, as a fraction of the smaller side of its square.
FEATHER = 0.12


def soft_mask(height: int, width: int, feather: float = FEATHER) -> np.ndarray:
    """float32 ``[height, width]`` in [0, 1]: an ellipse filling the box, edges feathered.

    1 in the middle, falling smoothly to 0 at the box's border; ``feather`` is the width
    of the fall-off as a fraction of the smaller side.
    """
    y = (np.arange(height, dtype=np.float32) + 0.5) / height * 2.0 - 1.0
    x = (np.arange(width, dtype=np.float32) + 0.5) / width * 2.0 - 1.0
    radius = np.sqrt(y[:, np.newaxis] ** 2 + x[np.newaxis, :] ** 2)  # 1 on the inscribed ellipse
    band = max(2.0 * feather, 1e-3)
    t = np.clip((1.0 - radius) / band, 0.0, 1.0)
    return (t * t * (3.0 - 2.0 * t)).astype(np.float32)  # smoothstep


def paste_back(photo: np.ndarray, face: np.ndarray, square: Sequence[float], angle: float = 0.0,
               feather: Optional[float] = FEATHER) -> np.ndarray:
    """The one paste-back, inverse of :func:`crop_with_margin`: ``face`` into a copy of ``photo``
    over the crop's ``square``, rotated back by ``angle``.

    Args:
      photo: uint8 RGB ``[H, W, 3]``.
      face: uint8 RGB ``[h, w, 3]``, any size; resized to the square (``INTER_AREA`` down,
        ``INTER_CUBIC`` up).
      square: ``(x1, y1, x2, y2)`` photo pixels, exclusive end (:func:`square_with_margin`, or
        :attr:`LocatedFace.square`); may reach outside the photo (only the inside part is
        pasted).
      angle: degrees the crop was levelled by (``crop_with_margin``'s ``angle``).
      feather: blend with :func:`soft_mask` of this feather (faded into the photo); None: a hard
        edge (the whole square replaced).
    Returns:
      a new uint8 ``[H, W, 3]``.
    """
    x1, y1, x2, y2 = (int(round(v)) for v in square)
    if x2 <= x1 or y2 <= y1:
        raise ValueError(f"empty paste square {tuple(square)}")
    side_w, side_h = x2 - x1, y2 - y1
    interpolation = cv2.INTER_AREA if side_w < face.shape[1] else cv2.INTER_CUBIC
    patch = cv2.resize(np.ascontiguousarray(face), (side_w, side_h), interpolation=interpolation)
    mask = (soft_mask(side_h, side_w, feather) if feather is not None
            else np.ones((side_h, side_w), np.float32))
    if abs(angle) >= 1e-3:
        centre = ((side_w - 1) / 2.0, (side_h - 1) / 2.0)
        matrix = cv2.getRotationMatrix2D(centre, -float(angle), 1.0)
        patch = cv2.warpAffine(patch, matrix, (side_w, side_h), flags=cv2.INTER_LINEAR,
                               borderMode=cv2.BORDER_REPLICATE)
        mask = cv2.warpAffine(mask, matrix, (side_w, side_h), borderMode=cv2.BORDER_CONSTANT,
                              flags=cv2.INTER_LINEAR if feather is not None else cv2.INTER_NEAREST,
                              borderValue=0)
    height, width = photo.shape[:2]
    cx1, cy1, cx2, cy2 = max(x1, 0), max(y1, 0), min(x2, width), min(y2, height)
    out = photo.copy()
    if cx2 <= cx1 or cy2 <= cy1:
        return out
    region = out[cy1:cy2, cx1:cx2].astype(np.float32)
    inside = patch[cy1 - y1:cy2 - y1, cx1 - x1:cx2 - x1].astype(np.float32)
    alpha = mask[cy1 - y1:cy2 - y1, cx1 - x1:cx2 - x1, np.newaxis]
    out[cy1:cy2, cx1:cx2] = np.clip(np.round(region + alpha * (inside - region)), 0, 255) \
        .astype(np.uint8)
    return out


def eye_roll_angle(left_eye: Point, right_eye: Point) -> float:
    """Degrees to rotate (counter-clockwise, OpenCV convention) so the eye line is level.

    ``left_eye`` is the eye on the image's left (the person's right eye), in pixels.
    """
    dx = float(right_eye[0]) - float(left_eye[0])
    dy = float(right_eye[1]) - float(left_eye[1])
    return math.degrees(math.atan2(dy, dx))


# --------------------------------------------------------------------------- detection

def cascade_dirs() -> List[str]:
    """Where the Haar cascade files are looked for, in order (see the module docstring)."""
    dirs = []
    env = os.environ.get("FACE_AGING_HAAR_DIR")
    if env:
        dirs.append(env)
    data = getattr(getattr(cv2, "data", None), "haarcascades", None)
    if data:
        dirs.append(data)
    dirs += ["/usr/share/opencv4/haarcascades", "/usr/share/opencv/haarcascades"]
    return dirs


def detector_status() -> Tuple[bool, str]:
    """``(True, "")`` if Haar detection can run here, else ``(False, reason)``."""
    if not hasattr(cv2, "CascadeClassifier"):
        return False, (f"OpenCV {cv2.__version__} has no CascadeClassifier (OpenCV 5 moved it to "
                       "opencv-contrib): install opencv-contrib-python-headless, or "
                       "opencv-python-headless 4.x")
    for name in (FACE_CASCADE, EYE_CASCADE):
        if not any(os.path.isfile(os.path.join(d, name)) for d in cascade_dirs()):
            return False, (f"Haar cascade {name} not found in {', '.join(cascade_dirs())}: "
                           "set FACE_AGING_HAAR_DIR to a folder holding OpenCV's haarcascade "
                           "XML files (e.g. Debian's opencv-data, or an OpenCV 4.x wheel's cv2/data)")
    return True, ""


#: The classifiers loaded so far, by cascade file name (each file is loaded once).
LOADED_CASCADES = {}


def _cascade(name: str):
    if name not in LOADED_CASCADES:
        ok, reason = detector_status()
        if not ok:
            raise FaceDetectionUnavailable(reason)
        path = next(os.path.join(d, name) for d in cascade_dirs()
                    if os.path.isfile(os.path.join(d, name)))
        classifier = cv2.CascadeClassifier(path)
        if classifier.empty():
            raise FaceDetectionUnavailable(f"{path}: OpenCV could not load this cascade")
        LOADED_CASCADES[name] = classifier
    return LOADED_CASCADES[name]


def _grey(image: np.ndarray) -> np.ndarray:
    if image.ndim == 2:
        grey = image
    else:
        grey = cv2.cvtColor(np.ascontiguousarray(image[..., :3]), cv2.COLOR_RGB2GRAY)
    return cv2.equalizeHist(grey)


def detect_faces(image: np.ndarray, min_face: int = 32, scale_factor: float = 1.1,
                 min_neighbors: int = 5) -> List[Box]:
    """Frontal faces found by OpenCV's Haar cascade, largest first.

    Args:
      image: ``[H, W, 3]`` RGB uint8 (or ``[H, W]`` grey).
      min_face: smallest face side searched, in pixels of ``image``.
    Returns:
      boxes ``(x1, y1, x2, y2)`` in pixels of ``image``, sorted by area, largest first.
    Raises:
      FaceDetectionUnavailable: this OpenCV cannot run Haar cascades.
    """
    cascade = _cascade(FACE_CASCADE)
    h, w = image.shape[:2]
    scale = min(1.0, _DETECT_MAX_SIDE / float(max(h, w)))
    small = image if scale == 1.0 else cv2.resize(
        np.ascontiguousarray(image), (max(1, round(w * scale)), max(1, round(h * scale))),
        interpolation=cv2.INTER_AREA)
    min_side = max(12, int(round(min_face * scale)))
    found = cascade.detectMultiScale(_grey(small), scaleFactor=scale_factor,
                                     minNeighbors=min_neighbors, minSize=(min_side, min_side))
    boxes = [(x / scale, y / scale, (x + bw) / scale, (y + bh) / scale)
             for (x, y, bw, bh) in np.asarray(found).reshape(-1, 4).tolist()]
    return sorted(boxes, key=lambda b: (b[2] - b[0]) * (b[3] - b[1]), reverse=True)


def largest_face(boxes: Sequence[Box]) -> Optional[Box]:
    """The box of largest area, or ``None`` for no boxes."""
    if not len(boxes):
        return None
    return max(boxes, key=lambda b: (b[2] - b[0]) * (b[3] - b[1]))


def find_eyes(image: np.ndarray, box: Sequence[float]) -> Optional[Tuple[Point, Point]]:
    """Eye centres ``(left, right)`` (image left/right, pixels) inside a face box, or ``None``.

    Looks in the box's upper half with the Haar eye cascade and accepts a pair only if
    one eye lies in each half of the box and the eye line rolls at most
    ``MAX_ROLL_DEGREES``; anything else is taken as a false detection.
    """
    cascade = _cascade(EYE_CASCADE)
    h, w = image.shape[:2]
    x1, y1, x2, y2 = (int(round(v)) for v in box)
    x1, y1, x2, y2 = max(x1, 0), max(y1, 0), min(x2, w), min(y2, h)
    bw, bh = x2 - x1, y2 - y1
    if bw < 24 or bh < 24:
        return None
    top = image[y1:y1 + bh // 2 + bh // 10, x1:x2]
    min_eye = max(6, bw // 10)
    found = np.asarray(cascade.detectMultiScale(_grey(top), scaleFactor=1.1, minNeighbors=4,
                                                minSize=(min_eye, min_eye))).reshape(-1, 4)
    if len(found) < 2:
        return None
    centres = [(x1 + x + ew / 2.0, y1 + y + eh / 2.0, ew * eh) for x, y, ew, eh in found.tolist()]
    mid = x1 + bw / 2.0
    lefts = [c for c in centres if c[0] < mid]
    rights = [c for c in centres if c[0] >= mid]
    if not lefts or not rights:
        return None
    left = max(lefts, key=lambda c: c[2])
    right = max(rights, key=lambda c: c[2])
    if abs(eye_roll_angle(left[:2], right[:2])) > MAX_ROLL_DEGREES:
        return None
    return (left[0], left[1]), (right[0], right[1])


def level_angle(image: np.ndarray, box: Sequence[float]) -> Optional[float]:
    """Degrees that level the eyes found in ``box`` (:func:`find_eyes`,
    :func:`eye_roll_angle`), None when no eye pair is found."""
    eyes = find_eyes(image, box)
    return eye_roll_angle(*eyes) if eyes is not None else None


# --------------------------------------------------------------------------- detect, level, crop


@dataclasses.dataclass
class LocatedFace:
    """A face found in a photo.

    Attributes:
      crop: uint8 RGB ``[size, size, 3]``, cut as the training crops were.
      box: the detector's box ``(x1, y1, x2, y2)`` in photo pixels.
      square: the crop's square ``(x1, y1, x2, y2)`` in photo pixels (may reach outside):
        where :func:`paste_back` puts the processed face.
      angle: degrees the photo was rotated (about the box centre) to level the eyes.
    """
    crop: np.ndarray
    box: Box
    square: Tuple[int, int, int, int]
    angle: float


def locate_faces(image: np.ndarray, all_faces: bool = False, margin: Optional[float] = None,
                 align: bool = True, size: int = DEFAULT_CROP_SIZE,
                 boxes: Optional[Sequence[Sequence[float]]] = None,
                 angles: Optional[Sequence[float]] = None) -> List[LocatedFace]:
    """The one detect -> level -> crop: faces of a photo cropped exactly as
    ``python -m face_aging.data.prepare`` cuts the training data (Haar detection, eyes levelled,
    :func:`crop_with_margin`), for the test run, the demo, the video tool and the data tool.

    Args:
      image: uint8 RGB ``[H, W, 3]``.
      all_faces: every detected face, largest first; else only the largest.
      margin: fraction of the box's larger side added on each side (default
        :data:`DEFAULT_MARGIN`).
      align: level the eyes (:func:`level_angle`; upright where no eye pair is found).
      size: side of the crops.
      boxes: the faces' boxes, instead of detecting them (a dataset's box, a video's tracked
        boxes); all of them are cropped.
      angles: the levelling angle of each box, instead of finding the eyes.
    Returns:
      ``[]`` when no face is found.
    Raises:
      FaceDetectionUnavailable: detection (or eye finding) is needed and this OpenCV cannot.
    """
    margin = DEFAULT_MARGIN if margin is None else margin
    if boxes is None:
        boxes = detect_faces(image)
        boxes = boxes if all_faces else boxes[:1]
    if angles is None:
        angles = [(level_angle(image, box) if align else None) or 0.0 for box in boxes]
    return [LocatedFace(crop_with_margin(image, box, margin, size, angle),
                        tuple(box), square_with_margin(box, margin),
                        float(angle))
            for box, angle in zip(boxes, angles)]
