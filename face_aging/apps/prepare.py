"""``python -m face_aging.data.prepare``: prepares a face-aging dataset in the release's layout,
in one command (docs/DATA.md; the library: ``face_aging.data.prepare``, ``.build``,
``.identity``, ``.sources``)."""
from __future__ import annotations

import os
import sys

from absl import app, flags

from face_aging import cli, faces
from face_aging.data import build, identity, prepare
from face_aging.data.ages import RELEASE_AGE_BINS, check_bins
from face_aging.errors import FaceAgingError


def _bins_ok(values) -> bool:
    try:
        check_bins(values)
    except (TypeError, ValueError):
        return False
    return True


def _is_int(text: str) -> bool:
    try:
        int(text)
    except ValueError:
        return False
    return True


def define_flags(flag_values) -> None:
    """The flags of ``python -m face_aging.data.prepare`` (and their validators) on
    ``flag_values``."""
    where = dict(flag_values=flag_values)
    _define_source_flags(where)
    _define_crop_flags(where)
    _define_split_flags(where)
    _register_validators(where)


def _define_source_flags(where) -> None:
    """The dataset, its reader's options and the output folder."""
    flags.DEFINE_enum("dataset", None, prepare.DATASETS, "Which reader to use.", **where)
    flags.DEFINE_string("input", None, "imdb_wiki/cacd: the .mat metadata file; utkface: the image "
                        "folder; folder: a folder of group sub-folders, or a CSV of path,age[,identity]; "
                        "cacd_vs: the folder with pairs.csv; lag: the folder with labels.csv.",
                        **where)
    flags.DEFINE_string("image_dir", None, "imdb_wiki/cacd: folder the metadata's paths are relative to "
                        "(default: the .mat's folder; cacd: its CACD2000/ sub-folder if present).",
                        **where)
    flags.DEFINE_string("output_dir", None, "Output root: crops under images/, lists beside them. "
                        "Pass it to the trainer as both --root_folder and --list_dir.", **where)
    flags.DEFINE_list("age_bins", [str(b) for b in RELEASE_AGE_BINS],
                      "Increasing age-group edges: group k = ages in (bins[k-1], bins[k]]; "
                      "default: 0-20, 21-30, 31-40, 41-50, 51+.", **where)
    flags.DEFINE_list("folder_groups", None, "folder: sub-folder -> group, e.g. 'young=0,old=4' "
                      "(plain names 'young,old' take groups 0, 1, ... in order). Default: sub-folders "
                      "named by group number.", **where)
    flags.DEFINE_float("min_age", 0.0, "Drop ages below this (years).", **where)
    flags.DEFINE_float("max_age", None, "Drop ages above this (years). Default: 100 for imdb_wiki "
                       "(larger ages are metadata errors there), no limit otherwise.", **where)
    flags.DEFINE_float("min_face_score", 1.0, "imdb_wiki: drop records whose face_score is below this.",
                       **where)
    flags.DEFINE_bool("keep_second_face", False, "imdb_wiki: keep records where a second face was found.",
                      **where)
    flags.DEFINE_enum("imdb_wiki_age", "july1", ["july1", "year_difference"],
                      "imdb_wiki: age at 1 July of the photo year, or photo year minus birth year.",
                      **where)
    flags.DEFINE_bool("strict_names", False, "utkface: drop malformed file names even when the age "
                      "is still clear (default: keep them and report them).", **where)


def _define_crop_flags(where) -> None:
    """How faces are cut and written."""
    flags.DEFINE_enum("crop", "auto", list(build.CROP_MODES),
                      "auto: the dataset's face box where it has one (imdb_wiki), cacd_vs/lag: "
                      "re-framed like UTKFace's crops, else the whole image; metadata: the dataset's "
                      "box; detect: OpenCV Haar face detection (largest face); whole: the image's "
                      "centre square.", **where)
    flags.DEFINE_float("margin", None, "Margin added on each side of a face box, as a fraction of "
                       f"the box's larger side. Default: {faces.DEFAULT_MARGIN}; cacd_vs/lag with "
                       "--crop=auto: 0 (the re-framed square is the crop).", **where)
    flags.DEFINE_bool("align", True, "Level the eyes (Haar eye detection) when cropping around a box.",
                      **where)
    flags.DEFINE_integer("image_size", None, "Side of the written crops, pixels. Default: "
                         f"{faces.DEFAULT_CROP_SIZE}; cacd_vs/lag: {identity.DEFAULT_IMAGE_SIZE} "
                         "(UTKFace's size).", **where)
    flags.DEFINE_integer("jpeg_quality", 95, "JPEG quality of the written crops.", **where)


def _define_split_flags(where) -> None:
    """Splits, pairs and the run."""
    flags.DEFINE_float("test_fraction", 0.1, "Share of identities (or images) put in the test split "
                       "(lag: of the people; cacd_vs splits by --test_folds).", **where)
    flags.DEFINE_list("test_folds", [str(f) for f in identity.DEFAULT_TEST_FOLDS],
                      "cacd_vs: folds whose pairs are held out (every image of them); the same-person "
                      "pairs of the other folds train, one identity per pair.", **where)
    flags.DEFINE_enum("verification_folds", "test", list(identity.VERIFICATION_FOLDS),
                      "cacd_vs: folds listed in verification_pairs.txt: the --test_folds, or all "
                      "(for features not trained on CACD-VS).", **where)
    flags.DEFINE_enum("cross_age", "all", list(identity.CROSS_AGE_MODES),
                      "lag: test_cross_age.txt lists, per held-out person, every young x old "
                      "combination (all) or the first young and first old photo (one).", **where)
    flags.DEFINE_integer("split_seed", 0, "Seed of the hash that assigns train/test (and --limit).",
                         **where)
    flags.DEFINE_integer("label_pairs", 200000, "Lines of train_label_pair.txt (default: one per "
                         "step of the release's max_steps).", **where)
    flags.DEFINE_integer("label_pair_seed", 0, "Seed of train_label_pair.txt.", **where)
    flags.DEFINE_integer("num_workers", os.cpu_count() or 1, "Processes decoding and cropping images.",
                         **where)
    flags.DEFINE_integer("limit", None, "Keep only this many records (a deterministic hashed subset).",
                         **where)
    flags.DEFINE_bool("overwrite", False, "Redo crops that exist, and accept an output folder made "
                      "with other crop settings.", **where)



def _register_validators(where) -> None:
    """The rules of the flags (one line each when broken)."""
    flags.register_validator("age_bins", lambda v: _bins_ok(v), "--age_bins: give increasing numbers, e.g. 20,30,40,50",
                             **where)
    flags.register_validator("margin", lambda v: v is None or v >= 0, "--margin must be >= 0",
                             **where)
    flags.register_validator("image_size", lambda v: v is None or v >= 16, "--image_size must be >= 16",
                             **where)
    flags.register_validator("test_folds", lambda v: all(_is_int(x) for x in v),
                             "--test_folds: give fold numbers, e.g. 5,6,7,8", **where)
    flags.register_validator("jpeg_quality", lambda v: 1 <= v <= 100, "--jpeg_quality must be in 1..100",
                             **where)
    flags.register_validator("test_fraction", lambda v: 0.0 <= v < 1.0, "--test_fraction must be in [0, 1)",
                             **where)
    flags.register_validator("label_pairs", lambda v: v >= 1, "--label_pairs must be >= 1", **where)
    flags.register_validator("num_workers", lambda v: v >= 1, "--num_workers must be >= 1", **where)
    flags.register_validator("limit", lambda v: v is None or v >= 1, "--limit must be >= 1",
                             **where)
    flags.register_validator("min_face_score", lambda v: v == v, "--min_face_score must be a number",
                             **where)
    flags.register_multi_flags_validator(
        ["dataset", "folder_groups"], lambda f: not f["folder_groups"] or f["dataset"] == "folder",
        "--folder_groups only applies to --dataset=folder", **where)
    flags.register_multi_flags_validator(
        ["dataset", "crop"], lambda f: f["crop"] != "metadata" or f["dataset"] == "imdb_wiki",
        "--crop=metadata needs a dataset with face boxes (imdb_wiki)", **where)
    flags.register_multi_flags_validator(
        ["min_age", "max_age"], lambda f: f["max_age"] is None or f["min_age"] <= f["max_age"],
        "--min_age must not exceed --max_age", **where)
    flags.register_multi_flags_validator(
        ["dataset", "limit"], lambda f: f["limit"] is None or f["dataset"] in prepare.AGE_DATASETS,
        "--limit applies to the age datasets, not cacd_vs/lag", **where)
    flags.mark_flags_as_required(["dataset", "input", "output_dir"], **where)


def main(argv, flag_values=None):
    """Prepares the dataset the parsed flags ask for (``flag_values``, default absl's FLAGS)."""
    FLAGS = flag_values if flag_values is not None else flags.FLAGS
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {' '.join(argv[1:])}")
    if FLAGS.dataset in identity.DATASETS:
        return prepare_identity_dataset(FLAGS)
    bins = [int(b) if float(b).is_integer() else float(b) for b in check_bins(FLAGS.age_bins)]
    margin = faces.DEFAULT_MARGIN if FLAGS.margin is None else FLAGS.margin
    image_size = faces.DEFAULT_CROP_SIZE if FLAGS.image_size is None else FLAGS.image_size

    def summary():
        source = prepare.read_source(FLAGS.dataset, FLAGS.input, FLAGS.image_dir, FLAGS.min_age,
                                     FLAGS.max_age, FLAGS.min_face_score, FLAGS.keep_second_face,
                                     FLAGS.imdb_wiki_age, FLAGS.strict_names, FLAGS.folder_groups)
        settings = build.CropSettings(crop=FLAGS.crop, margin=margin, image_size=image_size,
                                      align=FLAGS.align, jpeg_quality=FLAGS.jpeg_quality)
        return build.prepare(
            source, FLAGS.output_dir, dataset=FLAGS.dataset, age_bins=bins, settings=settings,
            test_fraction=FLAGS.test_fraction, split_seed=FLAGS.split_seed,
            label_pairs=FLAGS.label_pairs, label_pair_seed=FLAGS.label_pair_seed,
            num_workers=FLAGS.num_workers, limit=FLAGS.limit, overwrite=FLAGS.overwrite)

    return _report(summary, prepare.format_summary)


def prepare_identity_dataset(FLAGS) -> int:
    """``--dataset=cacd_vs`` / ``lag``: the identity folder (``face_aging.data.identity``)."""
    margin = FLAGS.margin if FLAGS.margin is not None else (
        0.0 if FLAGS.crop == "auto" else faces.DEFAULT_MARGIN)
    image_size = FLAGS.image_size or identity.DEFAULT_IMAGE_SIZE

    def summary():
        if FLAGS.dataset == "cacd_vs":
            source = identity.read_cacd_vs(FLAGS.input, [int(f) for f in FLAGS.test_folds],
                                           FLAGS.verification_folds)
        else:
            source = identity.read_lag(FLAGS.input, FLAGS.test_fraction, FLAGS.split_seed)
        settings = build.CropSettings(crop=FLAGS.crop, margin=margin, image_size=image_size,
                                      align=FLAGS.align, jpeg_quality=FLAGS.jpeg_quality)
        return identity.prepare_identity(source, FLAGS.output_dir, settings=settings,
                                         num_workers=FLAGS.num_workers,
                                         overwrite=FLAGS.overwrite, cross_age=FLAGS.cross_age)

    return _report(summary, prepare.format_identity_summary)


def _report(make_summary, format_summary) -> int:
    """Runs ``make_summary()`` and prints ``format_summary`` of its result (exit 0), or one
    line for what the user got wrong (exit 1) or an interruption (exit 130)."""
    try:
        summary = make_summary()
    except (FaceAgingError, ValueError) as e:
        print(f"prepare: error: {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("prepare: interrupted; lists were not updated, re-run to resume", file=sys.stderr)
        return 130
    print(format_summary(summary))
    return 0


def run() -> None:
    """The command: flags on absl's FLAGS, parsed, then :func:`main`."""
    cli.define_key_flags(define_flags)
    cli.run(main, prog="prepare", doc=prepare.__doc__)  # the usage


if __name__ == "__main__":
    run()
