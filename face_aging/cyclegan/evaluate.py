"""Evaluating a ``train_cyclegan.py`` run's young -> old generator (``evaluate.py
--model=cyclegan``, the command ``face_aging.apps.evaluate``) with the judges, metrics and
reports of ``face_aging.metrics``. No TensorFlow at import time.
"""
from __future__ import annotations

import os
import time

from face_aging.metrics import run


def young_old_entries(list_dir, root_folder, young_dir, old_dir, young_max_age, old_min_age,
                      age_bins, max_faces):
    """``(young_entries, old_entries, root, description)`` from the lists or two folders."""
    from face_aging.metrics import evaluation

    if young_dir or old_dir:
        if list_dir:
            raise run.UsageError("give --list_dir or --young_dir/--old_dir, not both")
        if not (young_dir and old_dir):
            raise run.UsageError("--young_dir and --old_dir go together")
        from face_aging.cyclegan.config import domain_images

        young = [(p, -1) for p in domain_images(young_dir, "--young_dir")][:max_faces]
        old = [(p, -1) for p in domain_images(old_dir, "--old_dir")][:max_faces]
        return young, old, "", f"--young_dir {young_dir}, --old_dir {old_dir}"
    if not list_dir:
        raise run.UsageError("--list_dir is required (or --young_dir and --old_dir)")
    root_folder = root_folder or list_dir
    if not os.path.isdir(list_dir):
        raise run.UsageError(f"--list_dir {list_dir}: not a folder")
    if not os.path.isdir(root_folder):
        raise run.UsageError(f"--root_folder {root_folder}: not a folder")
    young, old, where = evaluation.read_young_old_split(list_dir, young_max_age, old_min_age,
                                                        age_bins, max_faces)
    return young, old, root_folder, where


def evaluate_cyclegan(checkpoint_dir, model_index, list_dir, root_folder, output_dir,
                      max_faces, inception_weights, alexnet_checkpoint, batch_size, age_bins,
                      young_max_age=30.0, old_min_age=50.0, young_dir=None, old_dir=None,
                      image_size=None, kid_subsets=100, kid_subset_size=1000,
                      max_impostor_pairs=5000):
    """``--model=cyclegan``: young faces through G_young->old, judged; returns the written paths.

    Reuses the IPCGAN run's pieces: the list reading and face loading of
    ``metrics.evaluation``, the same judges and FID/KID features (``metrics.run``), and the
    report writers of ``metrics.report``.
    """
    from face_aging.cyclegan import inference as cyclegan_inference
    from face_aging.metrics import evaluation, judges, report as report_lib

    started = time.time()
    if not output_dir:
        raise run.UsageError("--output_dir is required")
    if not checkpoint_dir:
        raise run.UsageError("--model=cyclegan needs --checkpoint_dir (a train_cyclegan.py "
                             "checkpoint directory)")
    if batch_size < 1:
        raise run.UsageError("--batch_size must be >= 1")
    if young_max_age >= old_min_age:
        raise run.UsageError(f"--young_max_age {young_max_age:g} must be below --old_min_age "
                             f"{old_min_age:g}")
    cap = max_faces or None
    young, old, root, where = young_old_entries(list_dir, root_folder, young_dir, old_dir,
                                                young_max_age, old_min_age, age_bins, cap)
    options = cyclegan_inference.recorded_options(checkpoint_dir)  # before TensorFlow
    size = cyclegan_inference.check_image_size(image_size or options["crop_size"])
    print(f"{where}: {len(young)} young input faces, {len(old)} real old faces, at {size}x{size}")
    age_judge, identity_judge = judges.AgeJudge(), judges.IdentityJudge()  # before TensorFlow
    model = cyclegan_inference.load_cyclegan(checkpoint_dir, model_index, image_size=size,
                                             load_old_to_young=False)

    def resize(face, side):
        return cyclegan_inference.resize_faces(face[None], side).numpy().astype("uint8")[0]

    inputs = evaluation.load_faces(root, young, size, resize=resize)
    real_old = evaluation.load_faces(root, old, size, resize=resize)
    feats = run.feature_network(inception_weights, alexnet_checkpoint, None, batch_size,
                                len(age_bins) + 1)
    translate = run.counted(lambda faces: cyclegan_inference.translate_faces(
        model.young_to_old, faces, size, batch_size), len(inputs), "young -> old")
    results, arrays = evaluation.run_translation_evaluation(
        translate, inputs, real_old, age_judge=age_judge, identity_judge=identity_judge,
        features=feats, old_min_age=old_min_age, batch_size=batch_size,
        max_impostor_pairs=max_impostor_pairs, kid_subsets=kid_subsets,
        kid_subset_size=kid_subset_size)
    results["model"] = {"name": "cyclegan", "checkpoint": os.path.abspath(model.source),
                        "model_index": model_index, "direction": "young_to_old",
                        "image_size": size, "recorded_options": options, "untrained": False}
    test_list = os.path.join(list_dir, evaluation.TEST_AGE_LIST) if list_dir else None
    if test_list and not os.path.isfile(test_list):
        test_list = os.path.join(list_dir, "test.txt")
    results["data"] = {"split": where, "young_max_age": young_max_age,
                       "old_min_age": old_min_age,
                       "list_dir": os.path.abspath(list_dir) if list_dir else None,
                       "root_folder": os.path.abspath(root) if root else None,
                       "young_dir": os.path.abspath(young_dir) if young_dir else None,
                       "old_dir": os.path.abspath(old_dir) if old_dir else None,
                       "list_sha256": run.sha256(test_list) if test_list else None,
                       "max_faces": max_faces}
    results["code"] = {"git_commit": run.git_commit()}
    results["runtime_seconds"]["total"] = round(time.time() - started, 2)
    return report_lib.write_translation_report(output_dir, results, arrays)
