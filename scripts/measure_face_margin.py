"""Measures the crop geometry of ``test.py --detect_faces`` against a model's training crops.

Two measurements (docs/INFERENCE.md, "Crop geometry"):

1. ``--utkface_dir``: the detector margin whose crops frame a face as UTKFace's own aligned
   crops do (what the bundled model was trained on). Each UTKFace crop is padded by half its
   side (replicated border, so that the Haar cascade also finds faces that touch the crop's
   edge) and the largest face is detected; the margin that turns that box into the crop is
   ``(crop side / box side - 1) / 2`` (``faces.square_with_margin``'s rule). Reports the
   median and quartiles over the faces found, and the box centre's offset from the crop's
   centre (in box sides).
2. ``--photos``: identity kept by the bundled (or ``--checkpoint_dir``) generator on detected
   faces at each of ``--margins``. Per photo: the largest face is detected and cropped at the
   margin (eyes levelled, as ``test.py --detect_faces``), aged to every ``--target_groups``
   group (moving statistics), and the face box's region of the aged output is compared with
   the same region of the input crop by the dlib identity judge (evaluate.py's, distance
   <= 0.6 = same person), both resized to 128 px. The "ceiling" row compares the input with
   its own round trip through the generator's side (what resolution alone costs at that
   margin).

Needs the evaluation extra (``pip install -e '.[eval]'``) for 2::

  python scripts/measure_face_margin.py --utkface_dir=../shared/data/utkface \\
      --photos=images/test/astronaut.jpg,images/test/grace_hopper.jpg,../shared/data/seed_test/images_test \\
      --margins=0,0.1,0.2,0.4 --output=margin.json
"""
from __future__ import annotations

import os
import sys
import time

from absl import app, flags

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

FLAGS = flags.FLAGS
flags.DEFINE_string("utkface_dir", None, "Folder of UTKFace crops: fit the matching margin.")
flags.DEFINE_integer("utkface_faces", 600, "UTKFace crops used for the fit (a seeded sample).")
flags.DEFINE_list("photos", [], "Photo files or folders (every image file in a folder, sorted): "
                  "identity at each margin.")
flags.DEFINE_integer("max_photos_per_folder", 25, "At most this many photos of each folder.")
flags.DEFINE_list("margins", ["0", "0.1", "0.2", "0.4"], "Crop margins to compare.")
flags.DEFINE_string("checkpoint_dir", None, "Generator (default: the bundled model).")
flags.DEFINE_list("target_groups", ["1", "2", "3", "4"], "Groups each face is aged to.")
flags.DEFINE_integer("seed", 0, "Seed of the UTKFace sample.")
flags.DEFINE_string("output", None, "Optional JSON file with every figure.")


def fit_utkface_margin(folder, count, seed):
    """``{"faces", "found", "margin_median", "margin_q25", "margin_q75", "offset_x", "offset_y"}``."""
    import cv2
    import numpy as np

    from face_aging import faces
    from face_aging.images import BadImageError, list_image_files, read_image

    paths = list_image_files(folder)
    rng = np.random.default_rng(seed)
    chosen = [paths[i] for i in sorted(rng.choice(len(paths), min(count, len(paths)),
                                                  replace=False))]
    margins, offset_x, offset_y = [], [], []
    for path in chosen:
        try:
            image, _ = read_image(path)
        except BadImageError:
            continue
        h, w = image.shape[:2]
        pad = max(h, w) // 2
        padded = cv2.copyMakeBorder(image, pad, pad, pad, pad, cv2.BORDER_REPLICATE)
        boxes = faces.detect_faces(padded)
        if not boxes:
            continue
        x1, y1, x2, y2 = boxes[0]
        side = max(x2 - x1, y2 - y1)
        margins.append((max(h, w) / side - 1.0) / 2.0)
        offset_x.append(((x1 + x2) / 2 - pad - w / 2) / side)
        offset_y.append(((y1 + y2) / 2 - pad - h / 2) / side)
    m = np.asarray(margins)
    q25, median, q75 = (float(v) for v in np.percentile(m, [25, 50, 75]))
    return {"faces": len(chosen), "found": int(len(m)), "margin_median": median,
            "margin_q25": q25, "margin_q75": q75,
            "offset_x_box_sides": float(np.median(offset_x)),
            "offset_y_box_sides": float(np.median(offset_y))}


def photo_paths(entries, per_folder):
    from face_aging.images import list_image_files

    paths = []
    for entry in entries:
        found = list_image_files(entry)
        paths += found if os.path.isfile(entry) else found[:per_folder]
    return paths


def identity_at_margins(paths, margins, checkpoint_dir, target_groups):
    """Per margin: faces detected, verification rate and mean distance (aged vs input), and the
    ceiling (input vs its round trip through the generator's side)."""
    import cv2
    import numpy as np

    from face_aging import faces, images
    from face_aging.ipcgan import inference as ipcgan_inference
    from face_aging.metrics import age_identity, judges

    judge = judges.IdentityJudge()
    generator = ipcgan_inference.load_generator(checkpoint_dir
                                                or ipcgan_inference.BUNDLED_CHECKPOINT_DIR)
    side = ipcgan_inference.generator_image_size(generator)
    photos = []
    for path in paths:
        try:
            photos.append((path, images.read_image(path)[0]))
        except images.BadImageError:
            continue

    def box_region(face, margin, size=128):
        # the detector box inside a crop of this margin: the central 1 / (1 + 2 margin)
        n = face.shape[0]
        inner = n / (1.0 + 2.0 * margin)
        a = int(round((n - inner) / 2))
        b = max(a + 1, int(round((n + inner) / 2)))
        return cv2.resize(np.ascontiguousarray(face[a:b, a:b]), (size, size),
                          interpolation=cv2.INTER_AREA if b - a > size else cv2.INTER_LINEAR)

    result = {}
    for margin in margins:
        inputs, aged, trips = [], [], []
        for path, photo in photos:
            located = faces.locate_faces(photo, margin=margin)
            if not located:
                continue
            crop = located[0].crop
            outputs = ipcgan_inference.age_faces(generator, [crop] * len(target_groups),
                                                 np.asarray(target_groups))
            small = cv2.resize(crop, (side, side), interpolation=cv2.INTER_AREA)
            for out in outputs:
                inputs.append(box_region(crop, margin))
                aged.append(box_region(out, margin))
            trips.append((box_region(crop, margin), box_region(small, margin)))
        if not inputs:
            result[f"{margin:g}"] = {"faces": 0}
            continue
        d = age_identity.embedding_distances(judge.embed(np.stack(inputs)),
                                             judge.embed(np.stack(aged)))["euclidean"]
        t = age_identity.embedding_distances(judge.embed(np.stack([a for a, _ in trips])),
                                             judge.embed(np.stack([b for _, b in trips])))[
            "euclidean"]
        result[f"{margin:g}"] = {
            "faces": len(trips), "outputs": int(len(d)),
            "verified": float(np.mean(d <= judge.THRESHOLD)), "mean_distance": float(d.mean()),
            "ceiling_verified": float(np.mean(t <= judge.THRESHOLD)),
            "ceiling_mean_distance": float(t.mean())}
    return {"photos": len(photos),
            "generator": checkpoint_dir or ipcgan_inference.BUNDLED_CHECKPOINT_DIR,
            "image_size": side, "target_groups": list(target_groups), "margins": result}


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {' '.join(argv[1:])}")
    result = {}
    started = time.time()
    if FLAGS.utkface_dir:
        result["utkface_fit"] = fit_utkface_margin(FLAGS.utkface_dir, FLAGS.utkface_faces,
                                                   FLAGS.seed)
        fit = result["utkface_fit"]
        print(f"UTKFace: {fit['found']} of {fit['faces']} faces found; matching margin median "
              f"{fit['margin_median']:+.3f} (quartiles {fit['margin_q25']:+.3f} .. "
              f"{fit['margin_q75']:+.3f}); box centre offset x {fit['offset_x_box_sides']:+.3f}, "
              f"y {fit['offset_y_box_sides']:+.3f} box sides", flush=True)
    if FLAGS.photos:
        paths = photo_paths(FLAGS.photos, FLAGS.max_photos_per_folder)
        margins = [float(m) for m in FLAGS.margins]
        groups = [int(g) for g in FLAGS.target_groups]
        result["identity"] = identity_at_margins(paths, margins, FLAGS.checkpoint_dir, groups)
        for margin, row in result["identity"]["margins"].items():
            if not row["faces"]:
                print(f"margin {margin}: no face found")
                continue
            print(f"margin {margin}: {row['faces']} faces, {row['outputs']} aged outputs: "
                  f"verified {100 * row['verified']:.1f} % (mean distance "
                  f"{row['mean_distance']:.3f}); ceiling {100 * row['ceiling_verified']:.1f} % "
                  f"({row['ceiling_mean_distance']:.3f})")
    result["seconds"] = round(time.time() - started, 1)
    if FLAGS.output:
        from face_aging.files import atomic_write_json

        atomic_write_json(FLAGS.output, result)
    return 0


if __name__ == "__main__":
    from face_aging import cli

    cli.run(main)
