"""``python -m face_aging.metrics.verification``: face verification accuracy of AlexNet (or
dlib) features on same/different pairs (``face_aging.metrics.verification``)."""
from __future__ import annotations

import os
import sys


def main(argv=None) -> int:
    """Parses ``argv`` (default ``sys.argv[1:]``), verifies, writes the report; returns the exit
    status."""
    from face_aging.cli import ArgumentParser
    from face_aging.errors import FaceAgingError
    from face_aging.metrics.verification import (FEATURE_LAYER_NAMES, read_pairs_checked,
                                                 verify_alexnet, verify_dlib, write_json_report)

    parser = ArgumentParser(
        prog="python -m face_aging.metrics.verification",
        description="Face verification accuracy of AlexNet features on same/different pairs, "
                    "by cross-validation over the folds present (threshold chosen on the "
                    "other folds).")
    features = parser.add_mutually_exclusive_group(required=True)
    features.add_argument("--alexnet",
                          help="AlexNet checkpoint: pretrain's pretrained/alexnet-N (or its "
                               "folder), a TF2 checkpoint with 'alexnet', or a release "
                               "alexnet.model-N")
    features.add_argument("--dlib", action="store_true",
                          help="instead of an AlexNet: dlib's face-recognition embeddings (the "
                               "[eval] judge), the ceiling of an independent recogniser")
    parser.add_argument("--pairs", required=True,
                        help="verification_pairs.txt (prepare --dataset=cacd_vs)")
    parser.add_argument("--layer", default="conv5", choices=FEATURE_LAYER_NAMES,
                        help="feature layer (default conv5, the release's --fea_layer_name)")
    parser.add_argument("--root_folder", default=None,
                        help="folder the pairs' paths are relative to (default: the pairs "
                             "file's folder)")
    parser.add_argument("--output", default=None,
                        help="JSON report (default: verification_<layer>.json in the current "
                             "folder)")
    parser.add_argument("--batch_size", type=int, default=32, help="images per forward pass")
    args = parser.parse_args(argv)
    if args.batch_size < 2:
        parser.error("--batch_size must be >= 2")
    output = args.output or ("verification_dlib.json" if args.dlib
                             else f"verification_{args.layer}.json")

    def fail(e) -> int:
        print(f"verification: error: {' '.join(str(e).split())}", file=sys.stderr)
        return 1

    # Everything that can be checked without TensorFlow first: its start-up lines would
    # otherwise come before the one line that matters.
    try:
        read_pairs_checked(args.pairs, args.root_folder)
        if args.dlib:
            from face_aging.metrics import judges

            try:
                result = verify_dlib(args.pairs, args.root_folder)
            except judges.JudgesUnavailableError as e:
                return fail(e)
            write_json_report(output, result)
            return 0
        if not (os.path.isdir(args.alexnet) or os.path.isfile(args.alexnet + ".index")):
            raise FileNotFoundError(f"--alexnet {args.alexnet}: no such checkpoint (expected "
                                    f"{args.alexnet}.index or a directory)")
    except (FaceAgingError, FileNotFoundError) as e:
        return fail(e)
    from face_aging import checkpoints

    try:
        result = verify_alexnet(args.alexnet, args.pairs, args.layer, args.root_folder,
                                args.batch_size)
    except (FaceAgingError, FileNotFoundError, checkpoints.CheckpointMismatchError) as e:
        return fail(e)
    write_json_report(output, result)
    return 0


def run() -> None:
    """The command."""
    sys.exit(main())


if __name__ == "__main__":
    run()
