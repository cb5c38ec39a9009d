"""Rebuilds images/test and images/train from public-domain photos and drawn faces.

    python images/make_images.py            # from the repository root

Sources (see images/README.md for licences):
- matplotlib's ``sample_data/grace_hopper.jpg`` (US Navy photograph, public domain);
- scikit-image's ``data/astronaut.png`` (NASA photograph of Eileen Collins, public
  domain; ``pip install scikit-image`` to have it);
- faces drawn here with OpenCV (this project's own work).

Faces are cut as ``test.py --detect_faces`` cuts them (``faces.locate_faces``: Haar box, eyes
levelled, ``faces.crop_with_margin`` with the training margin). Where
this OpenCV cannot run Haar cascades, the boxes and eye angles detected when the images
were made (recorded below) are used, so the crops are the same either way.
"""
import os
import sys

import cv2
import numpy as np
from PIL import Image

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

from face_aging import faces, files, images  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
TEST_SIZE = 200       # like UTKFace's 200x200 crops
TRAIN_SIZE = 96       # reference faces only feed batch statistics; keep them small
TRAIN_COUNT = 31      # the release's batch 32 = one test face + 31 references
#: (box, eye angle) found by Haar detection with OpenCV 5.0 + contrib, margin 0.4.
RECORDED = {"grace_hopper": ((149.0, 100.0, 380.0, 331.0), 0.0),
            "astronaut": ((177.0, 67.0, 270.0, 160.0), 2.5448043798130953)}


def public_domain_photos():
    import matplotlib

    photos = {"grace_hopper": os.path.join(matplotlib.get_data_path(), "sample_data",
                                           "grace_hopper.jpg")}
    try:
        import skimage

        photos["astronaut"] = os.path.join(os.path.dirname(skimage.__file__), "data",
                                           "astronaut.png")
    except ImportError:
        sys.exit("scikit-image is needed for astronaut.png: pip install scikit-image")
    return {name: images.read_image(path)[0] for name, path in photos.items()}


def face_of(name, photo):
    if faces.detector_status()[0]:
        found = faces.locate_faces(photo)
        if found:
            return found[0].box, found[0].angle
    return RECORDED[name]


def draw_face(rng, size=256):
    """A simple frontal face drawn with OpenCV: skin, hair, eyes, brows, nose, mouth."""
    background = rng.integers(60, 230, 3)
    image = np.empty((size, size, 3), np.uint8)
    image[:] = background
    gradient = np.linspace(-25, 25, size)[:, None, None]
    image = np.clip(image + gradient, 0, 255).astype(np.uint8)
    skin = np.array(rng.choice([(241, 194, 167), (224, 172, 105), (198, 134, 66),
                                (141, 85, 36), (255, 219, 172), (170, 110, 80)]), float)
    skin = np.clip(skin + rng.normal(0, 8, 3), 0, 255)
    hair = tuple(int(v) for v in rng.choice([(30, 20, 15), (90, 60, 30), (200, 170, 100),
                                             (120, 40, 20), (160, 160, 160), (15, 15, 15)]))
    c = size // 2
    face_w, face_h = int(size * rng.uniform(0.26, 0.32)), int(size * rng.uniform(0.34, 0.40))
    cy = c + int(size * 0.04)
    cv2.ellipse(image, (c, cy - face_h // 3), (face_w + 10, face_h), 0, 180, 360, hair, -1)
    cv2.rectangle(image, (c - face_w - 10, cy - face_h // 3), (c + face_w + 10,
                  cy + int(face_h * rng.uniform(0.0, 0.8))), hair, -1)
    cv2.ellipse(image, (c, size), (int(face_w * 1.8), int(size * 0.22)), 0, 180, 360,
                tuple(int(v) for v in rng.integers(20, 220, 3)), -1)  # shoulders
    cv2.rectangle(image, (c - face_w // 3, cy + face_h // 2), (c + face_w // 3, cy + face_h + 10),
                  tuple(int(v) for v in skin * 0.9), -1)  # neck
    cv2.ellipse(image, (c, cy), (face_w, face_h), 0, 0, 360, tuple(int(v) for v in skin), -1)
    cv2.ellipse(image, (c, cy - face_h + 12), (face_w, face_h // 3), 0, 180, 360, hair, -1)
    eye_y, eye_dx = cy - face_h // 6, int(face_w * 0.42)
    iris = tuple(int(v) for v in rng.choice([(60, 40, 20), (40, 90, 140), (60, 110, 60)]))
    for side in (-1, 1):
        ex = c + side * eye_dx
        cv2.ellipse(image, (ex, eye_y), (int(face_w * 0.2), int(face_h * 0.07)), 0, 0, 360,
                    (245, 245, 245), -1)
        cv2.circle(image, (ex, eye_y), int(face_h * 0.06), iris, -1)
        cv2.circle(image, (ex, eye_y), int(face_h * 0.025), (10, 10, 10), -1)
        cv2.line(image, (ex - int(face_w * 0.2), eye_y - int(face_h * 0.13)),
                 (ex + int(face_w * 0.2), eye_y - int(face_h * 0.15)), hair, 4)
    shade = tuple(int(v) for v in skin * 0.8)
    cv2.line(image, (c, eye_y + 5), (c - 6, cy + face_h // 4), shade, 3)
    cv2.line(image, (c - 6, cy + face_h // 4), (c + 6, cy + face_h // 4), shade, 3)
    lips = tuple(int(v) for v in np.clip(skin * np.array([0.85, 0.5, 0.5]), 0, 255))
    cv2.ellipse(image, (c, cy + face_h // 2), (int(face_w * 0.4), int(face_h * 0.09)), 0, 0, 180,
                lips, -1)
    image = cv2.GaussianBlur(image, (5, 5), 1.2)
    noise = rng.normal(0, 3, image.shape)
    return np.clip(image + noise, 0, 255).astype(np.uint8)


def save(path, image, quality=90):
    with files.atomic_path(path, suffix=os.path.splitext(path)[1]) as temporary:
        Image.fromarray(image).save(temporary, quality=quality, optimize=True)


def main():
    test_dir, train_dir = os.path.join(HERE, "test"), os.path.join(HERE, "train")
    os.makedirs(test_dir, exist_ok=True)
    os.makedirs(train_dir, exist_ok=True)
    rng = np.random.default_rng(2018)
    photos = public_domain_photos()
    boxes = {name: face_of(name, photo) for name, photo in photos.items()}
    for name, photo in photos.items():
        box, angle = boxes[name]
        crop = faces.crop_with_margin(photo, box, faces.DEFAULT_MARGIN, TEST_SIZE, angle)
        save(os.path.join(test_dir, f"{name}.jpg"), crop)
    for i in range(3):
        save(os.path.join(test_dir, f"drawn_{i}.jpg"),
             cv2.resize(draw_face(rng), (TEST_SIZE, TEST_SIZE), interpolation=cv2.INTER_AREA))
    # References: the two photos with other margins, shifts, scales, flips; drawn faces.
    references = []
    for name, photo in photos.items():
        box, angle = boxes[name]
        x1, y1, x2, y2 = box
        w = x2 - x1
        for k in range(8):
            margin = 0.3 + 0.05 * k
            dx, dy = rng.uniform(-0.08, 0.08, 2) * w
            crop = faces.crop_with_margin(photo, (x1 + dx, y1 + dy, x2 + dx, y2 + dy), margin,
                                          TRAIN_SIZE, angle + rng.uniform(-4, 4))
            references.append((f"{name}_{k}", crop[:, ::-1] if k % 2 else crop))
    while len(references) < TRAIN_COUNT:
        references.append((f"drawn_{len(references)}", cv2.resize(
            draw_face(rng), (TRAIN_SIZE, TRAIN_SIZE), interpolation=cv2.INTER_AREA)))
    for i, (name, image) in enumerate(references):
        save(os.path.join(train_dir, f"{i:02d}_{name}.jpg"), np.ascontiguousarray(image), 85)
    print(f"wrote {test_dir} and {len(references)} reference faces in {train_dir}")


if __name__ == "__main__":
    main()
