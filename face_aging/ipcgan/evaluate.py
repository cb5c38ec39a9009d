"""Evaluating an IPCGAN generator (``evaluate.py``, the command ``face_aging.apps.evaluate``):
the test split aged to every group (:func:`evaluate`) and the cross-age mode
(:func:`evaluate_cross_age`); judges, metrics and reports are ``face_aging.metrics``.
No TensorFlow at import time.
"""
from __future__ import annotations

import os
import sys
import time

from face_aging.metrics import run


def build_generator(checkpoint_dir, model_index, allow_untrained, age_groups):
    """Returns ``(generator, info)``: the weights through ``ipcgan.inference.load_generator``
    (which reads the options recorded beside them), or a random G if allowed."""
    from face_aging.ipcgan.networks import Generator, build_models

    if checkpoint_dir is None:
        if not allow_untrained:
            raise run.UsageError("--checkpoint_dir is required (or --allow_untrained_generator "
                                 "to test the pipeline with random weights)")
        print("WARNING: " + "!" * 60 + "\nWARNING: evaluating an UNTRAINED generator with "
              "random weights: the numbers measure nothing but the pipeline.\nWARNING: "
              + "!" * 60, file=sys.stderr)
        generator = Generator(age_groups=age_groups)
        build_models(generator=generator)
        generator.image_size = 128
        return generator, {"checkpoint": None, "untrained": True}
    from face_aging.ipcgan.inference import load_generator

    generator = load_generator(checkpoint_dir, model_index=model_index, age_groups=age_groups)
    return generator, {"checkpoint": os.path.abspath(checkpoint_dir), "model_index": model_index,
                       "untrained": False}


def age_fn(generator, bn_mode, reference_faces, batch_size):
    """``(uint8 faces, group) -> uint8 aged faces`` at the evaluation's 128x128.

    A generator trained at another side (e.g. the bundled 64-px model) sees the faces resized
    to its side (as test.py does) and its outputs are resized back to 128 with cv2 bilinear,
    so the judges and FID/KID see every model at one size.
    """
    import cv2
    import numpy as np
    from face_aging.ipcgan.inference import age_faces, generator_image_size
    from face_aging.metrics.evaluation import IMAGE_SIZE as size

    def aged_128(faces, group):
        aged = age_faces(generator, faces, group, bn_mode=bn_mode,
                         reference_faces=reference_faces, batch_size=batch_size)
        if aged.shape[1:3] == (size, size):
            return aged
        return np.stack([cv2.resize(face, (size, size), interpolation=cv2.INTER_LINEAR)
                         for face in aged]).reshape(len(aged), size, size, 3)

    side = generator_image_size(generator)
    how = "face_aging.ipcgan.inference.age_faces" + (
        "" if side == size else f" at {side} px, outputs resized to {size}")
    return aged_128, how


def evaluate(checkpoint_dir, model_index, list_dir, root_folder, output_dir, max_faces_per_group,
             inception_weights, alexnet_checkpoint, batch_size, age_bins, bn_mode,
             allow_untrained_generator, kid_subsets=100, kid_subset_size=1000,
             max_impostor_pairs=5000, inception_score_splits=10):
    """The whole run from plain arguments; returns the written paths."""
    from face_aging.data import lists
    from face_aging.metrics import evaluation, judges, report as report_lib

    started = time.time()
    for name, value in (("list_dir", list_dir), ("output_dir", output_dir)):
        if not value:
            raise run.UsageError(f"--{name} is required")
    root_folder = root_folder or list_dir
    if not os.path.isdir(list_dir):
        raise run.UsageError(f"--list_dir {list_dir}: not a folder")
    if not os.path.isdir(root_folder):
        raise run.UsageError(f"--root_folder {root_folder}: not a folder")
    if batch_size < 1:
        raise run.UsageError("--batch_size must be >= 1")
    groups = len(age_bins) + 1
    cap = max_faces_per_group or None
    input_entries, real_entries = evaluation.read_split(list_dir, groups, cap)
    print(f"reading {len(input_entries)} input faces and "
          f"{sum(map(len, real_entries))} real faces")
    inputs = evaluation.load_faces(root_folder, input_entries)
    real = [evaluation.load_faces(root_folder, e) for e in real_entries]
    reference = None
    if bn_mode == "batch":
        train = lists.read_image_list(os.path.join(list_dir, lists.TRAIN_LIST))[:batch_size - 1]
        reference = evaluation.load_faces(root_folder, train).faces
    age_judge, identity_judge = judges.AgeJudge(), judges.IdentityJudge()  # before TensorFlow
    generator, model_info = build_generator(checkpoint_dir, model_index,
                                            allow_untrained_generator, groups)
    aging, generator_path = age_fn(generator, bn_mode, reference, batch_size)
    aging = run.counted(aging, len(inputs) * groups, "aging")
    feats = run.feature_network(inception_weights, alexnet_checkpoint, checkpoint_dir, batch_size,
                                groups)
    results, arrays = evaluation.run_evaluation(
        aging, inputs, real, age_judge=age_judge, identity_judge=identity_judge,
        features=feats, bins=age_bins, batch_size=batch_size,
        max_impostor_pairs=max_impostor_pairs, kid_subsets=kid_subsets,
        kid_subset_size=kid_subset_size, inception_score_splits=inception_score_splits)
    test_list = os.path.join(list_dir, lists.TEST_LIST)
    results["model"] = dict(model_info, bn_mode=bn_mode, aging=generator_path)
    results["data"] = {"list_dir": os.path.abspath(list_dir),
                       "root_folder": os.path.abspath(root_folder),
                       "test_list_sha256": run.sha256(test_list),
                       "max_faces_per_group": max_faces_per_group}
    results["code"] = {"git_commit": run.git_commit()}
    results["runtime_seconds"]["total"] = round(time.time() - started, 2)
    return report_lib.write_report(output_dir, results, arrays)


def evaluate_cross_age(checkpoint_dir, model_index, pairs_file, root_folder, output_dir,
                       target_groups, age_bins, bn_mode, allow_untrained_generator, batch_size,
                       max_people=0):
    """Cross-age mode: young photos aged and verified against the same person's adult photo
    (``face_aging.metrics.cross_age``); returns the written paths."""
    from face_aging.metrics import cross_age, judges

    started = time.time()
    if not output_dir:
        raise run.UsageError("--output_dir is required")
    if not os.path.isfile(pairs_file):
        raise run.UsageError(f"--cross_age_pairs {pairs_file}: file not found")
    if root_folder and not os.path.isdir(root_folder):
        raise run.UsageError(f"--root_folder {root_folder}: not a folder")
    if batch_size < 1:
        raise run.UsageError("--batch_size must be >= 1")
    if bn_mode == "batch":
        raise run.UsageError("--bn_mode=batch needs reference training faces; the cross-age mode "
                             "ages each face on its own (--bn_mode=moving)")
    try:
        groups = [int(g) for g in target_groups]
    except ValueError:
        raise run.UsageError(f"--cross_age_groups must be group numbers, got "
                             f"{','.join(target_groups)}") from None
    if not groups or any(not 0 <= g <= len(age_bins) for g in groups):
        raise run.UsageError(f"--cross_age_groups {','.join(target_groups)}: groups must be in "
                             f"0..{len(age_bins)}")
    data = cross_age.read_cross_age(pairs_file, root_folder or None, max_people or None)
    print(f"{pairs_file}: {len(data.pairs)} young/adult pairs of {data.people} people")
    age_judge, identity_judge = judges.AgeJudge(), judges.IdentityJudge()  # before TensorFlow
    generator, model_info = build_generator(checkpoint_dir, model_index,
                                            allow_untrained_generator, len(age_bins) + 1)
    aging, generator_path = age_fn(generator, bn_mode, None, batch_size)
    results, arrays = cross_age.run_cross_age_evaluation(
        aging, data, identity_judge=identity_judge, age_judge=age_judge, target_groups=groups,
        bins=age_bins, batch_size=batch_size)
    results["model"] = dict(model_info, bn_mode=bn_mode, aging=generator_path)
    results["data"] = {"pairs_file": os.path.abspath(pairs_file),
                       "root_folder": os.path.abspath(root_folder or os.path.dirname(
                           os.path.abspath(pairs_file))),
                       "pairs_sha256": run.sha256(pairs_file), "max_people": max_people}
    results["code"] = {"git_commit": run.git_commit()}
    results["runtime_seconds"]["total"] = round(time.time() - started, 2)
    paths = cross_age.write_report(output_dir, results, arrays)
    print(run.cross_age_summary(results))
    return paths
