"""Evaluates a trained face-aging generator on a prepared test split.

Ages every test face (``test.txt``) to every target group and reports, per group:
  * age: an independent estimator's mean age of the outputs and the share inside the
    target group, next to the same for real test faces of the group (its ceiling);
  * identity: dlib face-embedding distance/cosine of input vs output and the
    verification rate at 0.6, next to pairs of different real people;
  * realism: FID and KID against real faces of the group (InceptionV3 from
    ``--inception_weights``, else the project's AlexNet pool5, labelled as not comparable
    to published FID), and the Inception Score only as the seed reported it.
Writes ``report.json`` and ``report.html`` (+ PNGs) into ``--output_dir``.

Needs the evaluation extra: ``pip install '.[eval]'``. Example::

  python evaluate.py --checkpoint_dir=checkpoints/run1 --list_dir=data/utk \
      --output_dir=eval/run1 --max_faces_per_group=100

(``--root_folder`` defaults to ``--list_dir``, as in train_ipcgan.py: the data tool writes
the images and the lists into one folder.)

``--cross_age_pairs=data/lag/test_cross_age.txt`` is the cross-age mode: each held-out
person's young photo is aged to the oldest groups and verified against their adult photo,
beside the young photo itself (the do-nothing baseline) and impostors (see
``face_aging.metrics.cross_age`` and docs/EVALUATION.md)::

  python evaluate.py --checkpoint_dir=checkpoints/bundled \
      --cross_age_pairs=data/lag/test_cross_age.txt --output_dir=eval/cross_age

``--model=cyclegan`` evaluates a ``train_cyclegan.py`` run's young -> old generator with the
same judges: the young test faces (``test_age.txt`` ages <= ``--young_max_age``, else the
``test.txt`` groups that are wholly young; or ``--young_dir``) are translated, and the report
gives the judged mean age of inputs and outputs and the shift, the identity verification rate
input vs output at the same 0.6 threshold, and KID/FID of the outputs against the real old
faces (ages >= ``--old_min_age``, or ``--old_dir``). See docs/CYCLEGAN.md::

  python evaluate.py --model=cyclegan --checkpoint_dir=checkpoints/cyclegan_wiki128 \
      --list_dir=data/utk --output_dir=eval/cyclegan
"""
from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import time

from absl import flags

from face_aging import cli, progress

# TensorFlow is imported only after the flags, lists, images and judges are checked, so
# bad input fails with one line (cli.run keeps its C++ start-up lines quiet once it loads).

FLAGS = flags.FLAGS
flags.DEFINE_enum("model", "ipcgan", ["ipcgan", "cyclegan"], "ipcgan: age every test face to "
                  "every group. cyclegan: translate the young test faces to old with a "
                  "train_cyclegan.py run's generator (--checkpoint_dir).")
flags.DEFINE_string("checkpoint_dir", None, "Generator: TF2 checkpoint dir/prefix, or a release "
                    "TF1 acgan.model-N prefix or dir. --model=cyclegan: a train_cyclegan.py "
                    "checkpoint directory or ckpt-N prefix.")
flags.DEFINE_integer("model_index", None, "Checkpoint step inside --checkpoint_dir (default latest).")
flags.DEFINE_string("list_dir", None, "Folder with test.txt and test_age_group_k.txt.")
flags.DEFINE_string("root_folder", None, "Folder the list paths are relative to (default: "
                    "--list_dir, as train_ipcgan.py: the data tool writes images and lists "
                    "into one folder).")
flags.DEFINE_string("output_dir", None, "Where report.json, report.html and PNGs go.")
flags.DEFINE_integer("max_faces_per_group", 100, "Cap on input faces per source group and on real "
                     "faces per group (the first lines of each list); 0 = no cap.")
flags.DEFINE_string("inception_weights", None, "Keras weights file of InceptionV3(include_top="
                    "True/False, weights=None) for FID/KID (and IS with the top). Without it, "
                    "FID/KID use AlexNet pool5 features (not comparable to published FID).")
flags.DEFINE_string("alexnet_checkpoint", None, "AlexNet weights for the fallback features "
                    "(TF2 checkpoint with 'alexnet', or release alexnet.model-N); default: the "
                    "AlexNet inside --checkpoint_dir if it has one, else random weights.")
flags.DEFINE_integer("batch_size", 32, "Faces per network call.")
flags.DEFINE_list("age_bins", ["20", "30", "40", "50"], "Upper ages (inclusive) of groups 0..G-2; "
                  "the judge's age estimates are binned with them.")
flags.DEFINE_enum("bn_mode", "moving", ["moving", "batch"], "Generator batch norm: moving "
                  "statistics, or the release's batch statistics with reference faces from "
                  "train.txt.")
flags.DEFINE_bool("allow_untrained_generator", False, "Without --checkpoint_dir, evaluate a "
                  "randomly initialised generator (for tests of the pipeline only).")
flags.DEFINE_integer("kid_subsets", 100, "KID: number of random subsets.")
flags.DEFINE_integer("kid_subset_size", 1000, "KID: largest subset size.")
flags.DEFINE_integer("max_impostor_pairs", 5000, "Identity: pairs of different faces for the "
                     "impostor baseline.")
flags.DEFINE_integer("inception_score_splits", 10, "Inception Score splits (as the seed).")
# --model=cyclegan only.
flags.DEFINE_float("young_max_age", 30.0, "--model=cyclegan: inputs are test faces up to this "
                   "age (test_age.txt; else test.txt groups whose ages all lie below it).")
flags.DEFINE_float("old_min_age", 50.0, "--model=cyclegan: real old faces (KID/FID reference, "
                   "the age ceiling) are test faces from this age on.")
flags.DEFINE_string("young_dir", None, "--model=cyclegan: instead of the lists, a folder of "
                    "young faces to translate (images found recursively).")
flags.DEFINE_string("old_dir", None, "--model=cyclegan: with --young_dir, a folder of real "
                    "old faces.")
flags.DEFINE_integer("image_size", None, "--model=cyclegan: side faces are resized to "
                     "(default: the run's crop_size, from its training_options.json).")

# Cross-age mode (--model=ipcgan only).
flags.DEFINE_string("cross_age_pairs", None, "Cross-age mode: a test_cross_age.txt (prepare "
                    "--dataset=lag: 'identity young_path old_path' of held-out people). Each "
                    "young photo is aged to --cross_age_groups and verified against the same "
                    "person's adult photo, beside the young photo itself (the do-nothing "
                    "baseline) and impostors. Paths are relative to --root_folder (default: "
                    "the file's folder); --list_dir is not used.")
flags.DEFINE_list("cross_age_groups", ["3", "4"], "Cross-age mode: target groups the young "
                  "photos are aged to (default the two oldest of the release's five).")
flags.DEFINE_integer("max_cross_age_people", 0, "Cross-age mode: keep the first N people of "
                     "the list (by identity id); 0 = all.")

#: Flags that belong to one model only: given with the other, they are an error.
IPCGAN_ONLY_FLAGS = ("bn_mode", "allow_untrained_generator", "inception_score_splits")
CYCLEGAN_ONLY_FLAGS = ("young_max_age", "old_min_age", "young_dir", "old_dir", "image_size")


class UsageError(ValueError):
    """Bad flags (one line)."""


def _expected_errors():
    """Exceptions that mean bad input, reported as one line rather than a traceback."""
    from face_aging.cyclegan.folders import DataError
    from face_aging.cyclegan.inference import CycleGANLoadError
    from face_aging.data.lists import ListFormatError
    from face_aging.metrics.evaluation import EvaluationInputError
    from face_aging.metrics.features import FeatureError
    from face_aging.metrics.judges import JudgesUnavailableError

    errors = [UsageError, ListFormatError, EvaluationInputError, FeatureError,
              JudgesUnavailableError, FileNotFoundError, CycleGANLoadError, DataError]
    if "face_aging.checkpoints" in sys.modules:  # imported (TensorFlow) only once a model loads
        errors.append(sys.modules["face_aging.checkpoints"].CheckpointMismatchError)
    return tuple(errors)


def _parse_bins(values):
    try:
        bins = [float(v) for v in values]
    except ValueError:
        raise UsageError(f"--age_bins must be numbers, got {','.join(values)}") from None
    if not bins or any(b >= c for b, c in zip(bins, bins[1:])):
        raise UsageError(f"--age_bins must be strictly increasing, got {','.join(values)}")
    return bins


def _build_generator(checkpoint_dir, model_index, allow_untrained, age_groups):
    """Returns ``(generator, info)``; prefers face_aging.inference.load_generator."""
    from face_aging.models import Generator, build_models

    if checkpoint_dir is None:
        if not allow_untrained:
            raise UsageError("--checkpoint_dir is required (or --allow_untrained_generator "
                             "to test the pipeline with random weights)")
        print("WARNING: " + "!" * 60 + "\nWARNING: evaluating an UNTRAINED generator with "
              "random weights: the numbers measure nothing but the pipeline.\nWARNING: "
              + "!" * 60, file=sys.stderr)
        generator = Generator(age_groups=age_groups)
        build_models(generator=generator)
        generator.image_size = 128
        return generator, {"checkpoint": None, "untrained": True}
    try:
        from face_aging.inference import load_generator
    except ImportError:
        load_generator = None
    if load_generator is not None:
        generator = load_generator(checkpoint_dir, model_index=model_index, age_groups=age_groups)
    else:  # the few lines load_generator does
        from face_aging.checkpoints import restore_models

        generator = Generator(age_groups=age_groups)
        build_models(generator=generator)
        restore_models(checkpoint_dir, generator=generator, model_index=model_index)
        generator.image_size = 128
    return generator, {"checkpoint": os.path.abspath(checkpoint_dir), "model_index": model_index,
                       "untrained": False}


def _age_fn(generator, bn_mode, reference_faces, batch_size):
    """``(uint8 faces, group) -> uint8 aged faces`` at the evaluation's 128x128.

    A generator trained at another side (e.g. the bundled 64-px model) sees the faces resized
    to its side (as test.py does) and its outputs are resized back to 128 with cv2 bilinear,
    so the judges and FID/KID see every model at one size.
    """
    import cv2
    import numpy as np
    from face_aging.inference import age_faces, generator_image_size

    from face_aging.metrics.evaluation import IMAGE_SIZE as size

    def aged_128(faces, group):
        aged = age_faces(generator, faces, group, bn_mode=bn_mode,
                         reference_faces=reference_faces, batch_size=batch_size)
        if aged.shape[1:3] == (size, size):
            return aged
        return np.stack([cv2.resize(face, (size, size), interpolation=cv2.INTER_LINEAR)
                         for face in aged]).reshape(len(aged), size, size, 3)

    side = generator_image_size(generator)
    how = "face_aging.inference.age_faces" + ("" if side == size else
                                               f" at {side} px, outputs resized to {size}")
    return aged_128, how


def _counted(fn, total, desc):
    """``fn(faces, ...)`` that also counts the faces on a progress bar (a terminal only),
    closed when ``total`` faces are done (the judges' lines follow it)."""
    bar = progress.bar(total, desc, unit="face")

    def counted(faces, *args):
        out = fn(faces, *args)
        if bar.n < total:
            bar.update(len(faces))
            if bar.n >= total:
                bar.close()
        return out

    return counted


def _features(inception_weights, alexnet_checkpoint, checkpoint_dir, batch_size, age_groups):
    from face_aging.metrics import features

    if inception_weights:
        return features.InceptionFeatures(inception_weights, batch_size)
    from face_aging.models import AlexNet, build_models

    alexnet = AlexNet(age_groups=age_groups)
    build_models(alexnet=alexnet)
    source = alexnet_checkpoint or checkpoint_dir
    note = "random initialisation (no AlexNet checkpoint given or found)"
    if source:
        from face_aging import checkpoints

        try:
            checkpoints.load_alexnet_layers(source, alexnet, checkpoints.ALEXNET_TRUNK)
            note = f"trunk conv1-conv5 from {os.path.abspath(source)}"
        except checkpoints.CheckpointMismatchError:
            if alexnet_checkpoint:
                raise
    if note.startswith("random"):
        print("WARNING: FID/KID features come from a randomly initialised AlexNet "
              "(pass --inception_weights or --alexnet_checkpoint)", file=sys.stderr)
    return features.AlexNetFeatures(alexnet, note, batch_size)


def _sha256(path):
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


def _git_commit():
    try:
        return subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True,
                              cwd=os.path.dirname(os.path.abspath(__file__)),
                              timeout=10).stdout.strip() or None
    except (OSError, subprocess.SubprocessError):
        return None


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
            raise UsageError(f"--{name} is required")
    root_folder = root_folder or list_dir
    if not os.path.isdir(list_dir):
        raise UsageError(f"--list_dir {list_dir}: not a folder")
    if not os.path.isdir(root_folder):
        raise UsageError(f"--root_folder {root_folder}: not a folder")
    if batch_size < 1:
        raise UsageError("--batch_size must be >= 1")
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
    generator, model_info = _build_generator(checkpoint_dir, model_index,
                                             allow_untrained_generator, groups)
    age_fn, generator_path = _age_fn(generator, bn_mode, reference, batch_size)
    age_fn = _counted(age_fn, len(inputs) * groups, "aging")
    feats = _features(inception_weights, alexnet_checkpoint, checkpoint_dir, batch_size, groups)
    results, arrays = evaluation.run_evaluation(
        age_fn, inputs, real, age_judge=age_judge, identity_judge=identity_judge,
        features=feats, bins=age_bins, batch_size=batch_size,
        max_impostor_pairs=max_impostor_pairs, kid_subsets=kid_subsets,
        kid_subset_size=kid_subset_size, inception_score_splits=inception_score_splits)
    test_list = os.path.join(list_dir, lists.TEST_LIST)
    results["model"] = dict(model_info, bn_mode=bn_mode, aging=generator_path)
    results["data"] = {"list_dir": os.path.abspath(list_dir),
                       "root_folder": os.path.abspath(root_folder),
                       "test_list_sha256": _sha256(test_list),
                       "max_faces_per_group": max_faces_per_group}
    results["code"] = {"git_commit": _git_commit()}
    results["runtime_seconds"]["total"] = round(time.time() - started, 2)
    return report_lib.write_report(output_dir, results, arrays)


def _young_old_entries(list_dir, root_folder, young_dir, old_dir, young_max_age, old_min_age,
                       age_bins, max_faces):
    """``(young_entries, old_entries, root, description)`` from the lists or two folders."""
    from face_aging.metrics import evaluation

    if young_dir or old_dir:
        if list_dir:
            raise UsageError("give --list_dir or --young_dir/--old_dir, not both")
        if not (young_dir and old_dir):
            raise UsageError("--young_dir and --old_dir go together")
        from face_aging.cyclegan.folders import list_images

        young = [(p, -1) for p in list_images(young_dir, "--young_dir")][:max_faces]
        old = [(p, -1) for p in list_images(old_dir, "--old_dir")][:max_faces]
        return young, old, "", f"--young_dir {young_dir}, --old_dir {old_dir}"
    if not list_dir:
        raise UsageError("--list_dir is required (or --young_dir and --old_dir)")
    root_folder = root_folder or list_dir
    if not os.path.isdir(list_dir):
        raise UsageError(f"--list_dir {list_dir}: not a folder")
    if not os.path.isdir(root_folder):
        raise UsageError(f"--root_folder {root_folder}: not a folder")
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
    ``metrics.evaluation``, the same judges and FID/KID features (``_features``), and the
    report writers of ``metrics.report``.
    """
    from face_aging.cyclegan import inference as cyclegan_inference
    from face_aging.metrics import evaluation, judges, report as report_lib

    started = time.time()
    if not output_dir:
        raise UsageError("--output_dir is required")
    if not checkpoint_dir:
        raise UsageError("--model=cyclegan needs --checkpoint_dir (a train_cyclegan.py "
                         "checkpoint directory)")
    if batch_size < 1:
        raise UsageError("--batch_size must be >= 1")
    if young_max_age >= old_min_age:
        raise UsageError(f"--young_max_age {young_max_age:g} must be below --old_min_age "
                         f"{old_min_age:g}")
    cap = max_faces or None
    young, old, root, where = _young_old_entries(list_dir, root_folder, young_dir, old_dir,
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
    feats = _features(inception_weights, alexnet_checkpoint, None, batch_size, len(age_bins) + 1)
    translate = _counted(lambda faces: cyclegan_inference.translate_faces(
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
                       "list_sha256": _sha256(test_list) if test_list else None,
                       "max_faces": max_faces}
    results["code"] = {"git_commit": _git_commit()}
    results["runtime_seconds"]["total"] = round(time.time() - started, 2)
    return report_lib.write_translation_report(output_dir, results, arrays)


def evaluate_cross_age(checkpoint_dir, model_index, pairs_file, root_folder, output_dir,
                       target_groups, age_bins, bn_mode, allow_untrained_generator, batch_size,
                       max_people=0):
    """Cross-age mode: young photos aged and verified against the same person's adult photo
    (``face_aging.metrics.cross_age``); returns the written paths."""
    from face_aging.metrics import cross_age, judges

    started = time.time()
    if not output_dir:
        raise UsageError("--output_dir is required")
    if not os.path.isfile(pairs_file):
        raise UsageError(f"--cross_age_pairs {pairs_file}: file not found")
    if root_folder and not os.path.isdir(root_folder):
        raise UsageError(f"--root_folder {root_folder}: not a folder")
    if batch_size < 1:
        raise UsageError("--batch_size must be >= 1")
    if bn_mode == "batch":
        raise UsageError("--bn_mode=batch needs reference training faces; the cross-age mode "
                         "ages each face on its own (--bn_mode=moving)")
    try:
        groups = [int(g) for g in target_groups]
    except ValueError:
        raise UsageError(f"--cross_age_groups must be group numbers, got "
                         f"{','.join(target_groups)}") from None
    if not groups or any(not 0 <= g <= len(age_bins) for g in groups):
        raise UsageError(f"--cross_age_groups {','.join(target_groups)}: groups must be in "
                         f"0..{len(age_bins)}")
    data = cross_age.read_cross_age(pairs_file, root_folder or None, max_people or None)
    print(f"{pairs_file}: {len(data.pairs)} young/adult pairs of {data.people} people")
    age_judge, identity_judge = judges.AgeJudge(), judges.IdentityJudge()  # before TensorFlow
    generator, model_info = _build_generator(checkpoint_dir, model_index,
                                             allow_untrained_generator, len(age_bins) + 1)
    age_fn, generator_path = _age_fn(generator, bn_mode, None, batch_size)
    results, arrays = cross_age.run_cross_age_evaluation(
        age_fn, data, identity_judge=identity_judge, age_judge=age_judge, target_groups=groups,
        bins=age_bins, batch_size=batch_size)
    results["model"] = dict(model_info, bn_mode=bn_mode, aging=generator_path)
    results["data"] = {"pairs_file": os.path.abspath(pairs_file),
                       "root_folder": os.path.abspath(root_folder or os.path.dirname(
                           os.path.abspath(pairs_file))),
                       "pairs_sha256": _sha256(pairs_file), "max_people": max_people}
    results["code"] = {"git_commit": _git_commit()}
    results["runtime_seconds"]["total"] = round(time.time() - started, 2)
    paths = cross_age.write_report(output_dir, results, arrays)
    print(cross_age_summary(results))
    return paths


def cross_age_summary(results) -> str:
    """The cross-age headline lines for the terminal."""
    ident = results["identity"]
    base = ident["baseline"]
    line = lambda what, r: (f"  {what}: {100 * r['genuine']['verified']:.1f} % of pairs verified "
                            f"against the adult photo ({100 * r['genuine']['verified_per_person']:.1f}"
                            f" % per person), impostors {100 * r['impostor']['verified']:.1f} %")
    out = [f"cross-age, {ident['pairs']} pairs of {ident['people']} people, dlib distance <= "
           f"{ident['threshold']}:", line("young photo itself (baseline)", base)]
    out += [line(f"aged to group {r['group']} ({r['name']})", r) for r in ident["groups"]]
    return "\n".join(out)


def _check_model_flags():
    other = IPCGAN_ONLY_FLAGS if FLAGS.model == "cyclegan" else CYCLEGAN_ONLY_FLAGS
    given = [f"--{name}" for name in other if FLAGS[name].present]
    if given:
        raise UsageError(f"{', '.join(given)} cannot be used with --model={FLAGS.model}")


def main(argv):
    try:
        if len(argv) > 1:
            raise UsageError(f"unexpected arguments: {' '.join(argv[1:])}")
        _check_model_flags()
        if not FLAGS.cross_age_pairs:
            given = [f"--{n}" for n in ("cross_age_groups", "max_cross_age_people")
                     if FLAGS[n].present]
            if given:
                raise UsageError(f"{', '.join(given)} only apply with --cross_age_pairs")
        if FLAGS.cross_age_pairs:
            if FLAGS.model != "ipcgan":
                raise UsageError("--cross_age_pairs works with --model=ipcgan")
            if FLAGS.list_dir:
                raise UsageError("--list_dir is not used with --cross_age_pairs (the pairs "
                                 "file names the faces); run evaluate.py once for each")
            paths = evaluate_cross_age(
                FLAGS.checkpoint_dir, FLAGS.model_index, FLAGS.cross_age_pairs,
                FLAGS.root_folder, FLAGS.output_dir, FLAGS.cross_age_groups,
                _parse_bins(FLAGS.age_bins), FLAGS.bn_mode, FLAGS.allow_untrained_generator,
                FLAGS.batch_size, FLAGS.max_cross_age_people)
            print(f"wrote {paths['json']} and {paths['html']}")
            return
        if FLAGS.model == "cyclegan":
            paths = evaluate_cyclegan(
                FLAGS.checkpoint_dir, FLAGS.model_index, FLAGS.list_dir, FLAGS.root_folder,
                FLAGS.output_dir, FLAGS.max_faces_per_group, FLAGS.inception_weights,
                FLAGS.alexnet_checkpoint, FLAGS.batch_size, _parse_bins(FLAGS.age_bins),
                FLAGS.young_max_age, FLAGS.old_min_age, FLAGS.young_dir, FLAGS.old_dir,
                FLAGS.image_size, FLAGS.kid_subsets, FLAGS.kid_subset_size,
                FLAGS.max_impostor_pairs)
            print(f"wrote {paths['json']} and {paths['html']}")
            return
        paths = evaluate(FLAGS.checkpoint_dir, FLAGS.model_index, FLAGS.list_dir,
                         FLAGS.root_folder, FLAGS.output_dir, FLAGS.max_faces_per_group,
                         FLAGS.inception_weights, FLAGS.alexnet_checkpoint, FLAGS.batch_size,
                         _parse_bins(FLAGS.age_bins), FLAGS.bn_mode,
                         FLAGS.allow_untrained_generator, FLAGS.kid_subsets,
                         FLAGS.kid_subset_size, FLAGS.max_impostor_pairs,
                         FLAGS.inception_score_splits)
    except _expected_errors() as e:
        sys.exit("evaluate.py: error: " + " ".join(str(e).split()))
    print(f"wrote {paths['json']} and {paths['html']}")


if __name__ == "__main__":
    cli.run(main, prog="evaluate.py", log_level="1")
