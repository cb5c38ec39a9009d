"""face_aging.faces: margin squares, crops, levelling, paste-back, Haar detection."""
from __future__ import annotations

import math
from pathlib import Path

import cv2
import numpy as np
import pytest

from face_aging import faces
from face_aging.data import build

UTKFACE = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "utkface"
DETECTOR_OK, DETECTOR_WHY = faces.detector_status()


def test_square_with_margin_geometry():
    assert faces.square_with_margin((10, 20, 50, 80), 0.0) == (0, 20, 60, 80)  # 60 tall -> 60 square
    x1, y1, x2, y2 = faces.square_with_margin((10, 20, 50, 80), 0.4)
    assert x2 - x1 == y2 - y1 == round(60 * 1.8)
    assert ((x1 + x2) / 2, (y1 + y2) / 2) == (30, 50)
    assert faces.DEFAULT_MARGIN == 0.4
    with pytest.raises(ValueError, match=r"degenerate face box \(5, 5, 5, 9\)"):
        faces.square_with_margin((5, 5, 5, 9), 0.4)
    assert faces.centre_square(100, 60) == (0, 20, 60, 80)
    assert faces.box_inside_fraction((-10, 0, 10, 10), 50, 50) == pytest.approx(0.5)


def test_crop_with_margin_takes_the_right_pixels_and_replicates_borders():
    image = np.zeros((100, 120, 3), np.uint8)
    image[30:50, 40:60] = (255, 0, 0)
    crop = faces.crop_with_margin(image, (40, 30, 60, 50), margin=0.0, size=20)
    assert crop.shape == (20, 20, 3) and np.all(crop == (255, 0, 0))
    wide = faces.crop_with_margin(image, (40, 30, 60, 50), margin=0.5, size=40)
    assert np.all(wide[10:30, 10:30] == (255, 0, 0)) and wide[:10].max() == 0
    # a box at the corner: outside pixels replicate the edge row/column
    image[0, :] = (0, 255, 0)
    corner = faces.crop_with_margin(image, (0, 0, 10, 10), margin=0.5, size=20)
    assert corner.shape == (20, 20, 3) and np.all(corner[:5, 5:15] == (0, 255, 0))


def test_eye_roll_angle_and_levelled_crop():
    assert faces.eye_roll_angle((0, 0), (10, 0)) == 0
    assert faces.eye_roll_angle((0, 0), (10, 10)) == pytest.approx(45)
    image = np.full((200, 200, 3), 128, np.uint8)
    centre, half, tilt = np.array([100.0, 90.0]), 30.0, math.radians(15)
    left = centre - half * np.array([math.cos(tilt), math.sin(tilt)])
    right = centre + half * np.array([math.cos(tilt), math.sin(tilt)])
    for point in (left, right):
        cv2.circle(image, tuple(int(round(v)) for v in point), 5, (0, 0, 0), -1)
    angle = faces.eye_roll_angle(left, right)
    assert angle == pytest.approx(15, abs=1e-6)
    crop = faces.crop_with_margin(image, (60, 50, 140, 130), margin=0.0, size=80, angle=angle)
    dark = crop[..., 0] < 60
    ys, xs = np.nonzero(dark)
    left_y = ys[xs < 40].mean()
    right_y = ys[xs >= 40].mean()
    assert abs(left_y - right_y) < 1.5, (left_y, right_y)
    unlevelled = faces.crop_with_margin(image, (60, 50, 140, 130), margin=0.0, size=80)
    ys, xs = np.nonzero(unlevelled[..., 0] < 60)
    assert ys[xs >= 40].mean() - ys[xs < 40].mean() > 10


@pytest.mark.parametrize("angle", [0.0, 12.0])
def test_paste_back_inverts_crop(angle):
    rng = np.random.default_rng(0)
    image = cv2.GaussianBlur(rng.integers(0, 255, (120, 140, 3), dtype=np.uint8), (9, 9), 3)
    box = (50, 40, 90, 80)
    x1, y1, x2, y2 = faces.square_with_margin(box, 0.4)
    crop = faces.crop_with_margin(image, box, 0.4, size=x2 - x1, angle=angle)
    square = faces.square_with_margin(box, 0.4)
    restored = faces.paste_back(image, crop, square, angle, feather=None)  # a hard edge
    inner = (slice(y1 + 12, y2 - 12), slice(x1 + 12, x2 - 12))
    err = np.abs(restored[inner].astype(int) - image[inner].astype(int))
    assert err.mean() < (0.01 if angle == 0 else 3.0)
    assert np.array_equal(restored[:, :x1 - 1], image[:, :x1 - 1])  # outside untouched
    changed = faces.paste_back(image, np.zeros_like(crop), square, angle, feather=None)
    assert changed[(y1 + y2) // 2, (x1 + x2) // 2].max() == 0


def test_soft_paste_back_blends_inside_the_square_only():
    mask = faces.soft_mask(64, 64)
    assert mask[32, 32] == 1.0 and mask[0, 0] == 0.0 and mask[32, 0] < 0.05
    assert np.all(np.diff(mask[32, :32]) >= 0)  # rises smoothly towards the centre
    photo = np.random.default_rng(10).integers(0, 256, (100, 120, 3), dtype=np.uint8)
    face = np.full((40, 40, 3), 200, np.uint8)
    pasted = faces.paste_back(photo, face, (30, 20, 70, 60))
    np.testing.assert_array_equal(pasted[:20], photo[:20])  # outside the square: untouched
    np.testing.assert_array_equal(pasted[:, :30], photo[:, :30])
    np.testing.assert_array_equal(pasted[40, 50], [200, 200, 200])  # the middle: the face
    assert 0 < np.abs(pasted[40, 32].astype(int) - photo[40, 32].astype(int)).max()
    # A square reaching outside the photo pastes its inside part only.
    corner = faces.paste_back(photo, face, (-20, -20, 20, 20))
    assert corner.shape == photo.shape
    np.testing.assert_array_equal(corner[0, 0], np.round(photo[0, 0] + faces.soft_mask(40, 40)
                                  [20, 20] * (200.0 - photo[0, 0])).astype(np.uint8))


def test_locate_faces_with_given_boxes_and_angles_needs_no_detector(monkeypatch):
    def no_detector(*args, **kwargs):
        raise AssertionError("the detector ran")
    monkeypatch.setattr(faces, "detect_faces", no_detector)
    monkeypatch.setattr(faces, "find_eyes", no_detector)
    image = np.random.default_rng(1).integers(0, 256, (120, 140, 3), dtype=np.uint8)
    boxes = [(50, 40, 90, 80), (0, 0, 30, 30)]
    located = faces.locate_faces(image, margin=0.2, size=48, boxes=boxes, angles=[7.0, 0.0])
    assert [f.box for f in located] == boxes and [f.angle for f in located] == [7.0, 0.0]
    np.testing.assert_array_equal(located[0].crop,
                                  faces.crop_with_margin(image, boxes[0], 0.2, 48, 7.0))
    assert located[1].square == faces.square_with_margin(boxes[1], 0.2)
    upright = faces.locate_faces(image, boxes=boxes[:1], align=False)[0]
    assert upright.angle == 0.0 and upright.crop.shape == (faces.DEFAULT_CROP_SIZE,) * 2 + (3,)


def test_detector_status_is_explicit():
    ok, why = faces.detector_status()
    assert ok == DETECTOR_OK
    if not ok:
        assert "CascadeClassifier" in why or "haarcascade" in why
        with pytest.raises(faces.FaceDetectionUnavailable):
            faces.detect_faces(np.zeros((50, 50, 3), np.uint8))
    assert faces.largest_face([]) is None
    assert faces.largest_face([(0, 0, 5, 5), (0, 0, 10, 9), (1, 1, 4, 4)]) == (0, 0, 10, 9)


def test_crop_detect_without_detector_is_one_clear_error(tmp_path, monkeypatch):
    # Simulate a machine without the cascade files (e.g. OpenCV 5 wheels) wherever we run.
    monkeypatch.setattr(faces, "cascade_dirs", lambda: [str(tmp_path / "no_cascades")])
    monkeypatch.setattr(faces, "LOADED_CASCADES", {})
    ok, why = faces.detector_status()
    assert not ok and "haarcascade_frontalface_default.xml not found" in why
    with pytest.raises(faces.FaceDetectionUnavailable):
        faces.detect_faces(np.zeros((50, 50, 3), np.uint8))
    from face_aging.data import sources
    (tmp_path / "in" / "0").mkdir(parents=True)
    cv2.imwrite(str(tmp_path / "in" / "0" / "a.jpg"), np.zeros((30, 30, 3), np.uint8))
    with pytest.raises(build.PrepareError, match="--crop=detect: Haar cascade"):
        build.prepare(sources.read_folder(str(tmp_path / "in")), str(tmp_path / "out"),
                      settings=build.CropSettings(crop="detect"), histogram=False)


@pytest.mark.skipif(not DETECTOR_OK, reason=f"no Haar detection here: {DETECTOR_WHY}")
@pytest.mark.skipif(not UTKFACE.is_dir(), reason=f"{UTKFACE} absent")
def test_haar_detection_finds_the_face_of_aligned_crops():
    names = sorted(p for p in UTKFACE.iterdir() if p.name.startswith(("25_", "35_")))[:20]
    found = 0
    for path in names:
        image = cv2.imread(str(path))[..., ::-1]
        box = faces.largest_face(faces.detect_faces(image))
        if box is None:
            continue
        found += 1
        cx, cy = (box[0] + box[2]) / 2, (box[1] + box[3]) / 2
        assert abs(cx - 100) < 30 and abs(cy - 100) < 35, (path.name, box)
        assert 50 < box[2] - box[0] < 200
        located = faces.locate_faces(image, size=64)
        assert located and located[0].crop.shape == (64, 64, 3) and located[0].box == box
        assert abs(located[0].angle) <= faces.MAX_ROLL_DEGREES
    assert found >= 15
