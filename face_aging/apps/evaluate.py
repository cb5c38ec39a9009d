"""``python evaluate.py``: evaluates a trained face-aging generator on a prepared test split.

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

import sys

from absl import flags

from face_aging import registry
from face_aging.errors import FaceAgingError
from face_aging.metrics.run import UsageError

# TensorFlow is imported only after the flags, lists, images and judges are checked, so
# bad input fails with one line (cli.run keeps its C++ start-up lines quiet once it loads).


def define_flags(flag_values) -> None:
    """Defines the flags of ``evaluate.py`` on ``flag_values``."""
    where = dict(flag_values=flag_values)
    registry.define_model_flag(flag_values, "evaluate", "ipcgan ages every test face to every "
                               "group; cyclegan translates the young test faces to old with a "
                               "train_cyclegan.py run's generator (--checkpoint_dir).")
    flags.DEFINE_string("checkpoint_dir", None, "Generator: TF2 checkpoint dir/prefix, or a release "
                        "TF1 acgan.model-N prefix or dir. --model=cyclegan: a train_cyclegan.py "
                        "checkpoint directory or ckpt-N prefix.", **where)
    flags.DEFINE_integer("model_index", None, "Checkpoint step inside --checkpoint_dir (default latest).",
                         **where)
    flags.DEFINE_string("list_dir", None, "Folder with test.txt and test_age_group_k.txt.", **where)
    flags.DEFINE_string("root_folder", None, "Folder the list paths are relative to (default: "
                        "--list_dir, as train_ipcgan.py: the data tool writes images and lists "
                        "into one folder).", **where)
    flags.DEFINE_string("output_dir", None, "Where report.json, report.html and PNGs go.", **where)
    flags.DEFINE_integer("max_faces_per_group", 100, "Cap on input faces per source group and on real "
                         "faces per group (the first lines of each list); 0 = no cap.", **where)
    flags.DEFINE_string("inception_weights", None, "Keras weights file of InceptionV3(include_top="
                        "True/False, weights=None) for FID/KID (and IS with the top). Without it, "
                        "FID/KID use AlexNet pool5 features (not comparable to published FID).",
                        **where)
    flags.DEFINE_string("alexnet_checkpoint", None, "AlexNet weights for the fallback features "
                        "(TF2 checkpoint with 'alexnet', or release alexnet.model-N); default: the "
                        "AlexNet inside --checkpoint_dir if it has one, else random weights.",
                        **where)
    flags.DEFINE_integer("batch_size", 32, "Faces per network call.", **where)
    flags.DEFINE_list("age_bins", ["20", "30", "40", "50"], "Upper ages (inclusive) of groups 0..G-2; "
                      "the judge's age estimates are binned with them.", **where)
    flags.DEFINE_enum("bn_mode", "moving", ["moving", "batch"], "Generator batch norm: moving "
                      "statistics, or the release's batch statistics with reference faces from "
                      "train.txt.", **where)
    flags.DEFINE_bool("allow_untrained_generator", False, "Without --checkpoint_dir, evaluate a "
                      "randomly initialised generator (for tests of the pipeline only).", **where)
    flags.DEFINE_integer("kid_subsets", 100, "KID: number of random subsets.", **where)
    flags.DEFINE_integer("kid_subset_size", 1000, "KID: largest subset size.", **where)
    flags.DEFINE_integer("max_impostor_pairs", 5000, "Identity: pairs of different faces for the "
                         "impostor baseline.", **where)
    flags.DEFINE_integer("inception_score_splits", 10, "Inception Score splits (as the seed).",
                         **where)
    # --model=cyclegan only.
    flags.DEFINE_float("young_max_age", 30.0, "--model=cyclegan: inputs are test faces up to this "
                       "age (test_age.txt; else test.txt groups whose ages all lie below it).",
                       **where)
    flags.DEFINE_float("old_min_age", 50.0, "--model=cyclegan: real old faces (KID/FID reference, "
                       "the age ceiling) are test faces from this age on.", **where)
    flags.DEFINE_string("young_dir", None, "--model=cyclegan: instead of the lists, a folder of "
                        "young faces to translate (images found recursively).", **where)
    flags.DEFINE_string("old_dir", None, "--model=cyclegan: with --young_dir, a folder of real "
                        "old faces.", **where)
    flags.DEFINE_integer("image_size", None, "--model=cyclegan: side faces are resized to "
                         "(default: the run's crop_size, from its training_options.json).", **where)

    # Cross-age mode (--model=ipcgan only).
    flags.DEFINE_string("cross_age_pairs", None, "Cross-age mode: a test_cross_age.txt (prepare "
                        "--dataset=lag: 'identity young_path old_path' of held-out people). Each "
                        "young photo is aged to --cross_age_groups and verified against the same "
                        "person's adult photo, beside the young photo itself (the do-nothing "
                        "baseline) and impostors. Paths are relative to --root_folder (default: "
                        "the file's folder); --list_dir is not used.", **where)
    flags.DEFINE_list("cross_age_groups", ["3", "4"], "Cross-age mode: target groups the young "
                      "photos are aged to (default the two oldest of the release's five).", **where)
    flags.DEFINE_integer("max_cross_age_people", 0, "Cross-age mode: keep the first N people of "
                         "the list (by identity id); 0 = all.", **where)


def _expected_errors():
    """Exceptions that mean bad input, reported as one line rather than a traceback: the
    project's (``FaceAgingError``), a missing file, a checkpoint that does not fit."""
    errors = [FaceAgingError, FileNotFoundError]
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


def _check_flags(FLAGS):
    """Usage errors of the flag combination (one line), before anything loads."""
    registry.check_model_flags("evaluate", FLAGS)
    if not FLAGS.cross_age_pairs:
        given = [f"--{n}" for n in ("cross_age_groups", "max_cross_age_people")
                 if FLAGS[n].present]
        if given:
            raise UsageError(f"{', '.join(given)} only apply with --cross_age_pairs")
        return
    if FLAGS.model not in registry.names("evaluate_cross_age"):
        raise UsageError("--cross_age_pairs works with "
                         + ", ".join(f"--model={n}" for n in registry.names("evaluate_cross_age")))
    if FLAGS.list_dir:
        raise UsageError("--list_dir is not used with --cross_age_pairs (the pairs file names "
                         "the faces); run evaluate.py once for each")


def _evaluate(FLAGS):
    """The run of the model's evaluator (the registry's ``evaluate`` or, with
    --cross_age_pairs, ``evaluate_cross_age``); returns the written paths."""
    F = FLAGS
    if F.cross_age_pairs:
        return registry.resolve(F.model, "evaluate_cross_age")(
            F.checkpoint_dir, F.model_index, F.cross_age_pairs, F.root_folder, F.output_dir,
            F.cross_age_groups, _parse_bins(F.age_bins), F.bn_mode,
            F.allow_untrained_generator, F.batch_size, F.max_cross_age_people)
    return registry.resolve(F.model, "evaluate")(
        F.checkpoint_dir, F.model_index, F.list_dir, F.root_folder, F.output_dir,
        F.max_faces_per_group, F.inception_weights, F.alexnet_checkpoint, F.batch_size,
        _parse_bins(F.age_bins), kid_subsets=F.kid_subsets, kid_subset_size=F.kid_subset_size,
        max_impostor_pairs=F.max_impostor_pairs, **registry.model_flags("evaluate", F.model, F))


def main(argv, flag_values=None):
    """The evaluation the parsed flags ask for (``flag_values``, default absl's FLAGS)."""
    FLAGS = flag_values if flag_values is not None else flags.FLAGS
    try:
        if len(argv) > 1:
            raise UsageError(f"unexpected arguments: {' '.join(argv[1:])}")
        _check_flags(FLAGS)
        paths = _evaluate(FLAGS)
    except _expected_errors() as e:
        sys.exit("evaluate.py: error: " + " ".join(str(e).split()))
    print(f"wrote {paths['json']} and {paths['html']}")


def run() -> None:
    """The command (``python evaluate.py``): flags on absl's FLAGS, then :func:`main`."""
    from face_aging import cli

    cli.define_key_flags(define_flags)
    cli.run(main, prog="evaluate.py", log_level="1", doc=__doc__)


if __name__ == "__main__":
    run()
