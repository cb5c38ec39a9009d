"""``python -m face_aging.bundle``: write a training run's generator as the bundled model
(``face_aging.ipcgan.bundle``), then check it for corner artefacts on the example faces
(``images/test``, which ships as the package's ``examples/test``)."""
from __future__ import annotations

import os
import sys

from face_aging.apps import EXAMPLES_DIR
from face_aging.errors import FaceAgingError


def main(argv=None) -> int:
    """Parses ``argv`` (default ``sys.argv[1:]``), writes the bundle; returns the exit status."""
    from face_aging.cli import ArgumentParser
    from face_aging.ipcgan import bundle
    from face_aging.ipcgan.inference import BUNDLED_CHECKPOINT_DIR

    parser = ArgumentParser(prog="python -m face_aging.bundle",
                            description=bundle.__doc__.split("\n\n")[0])
    parser.add_argument("--checkpoint_dir", required=True)
    parser.add_argument("--model_index", type=int, default=None)
    parser.add_argument("--output_dir", default=BUNDLED_CHECKPOINT_DIR)
    parser.add_argument("--reference_image", default=None)
    parser.add_argument("--note", default=None, help="free text stored in model.json")
    parser.add_argument("--face_margin", type=float, default=None,
                        help="detector margin matching the training crops' framing (model.json "
                             "face_crop); default: the training dataset's record, if any")
    parser.add_argument("--face_crop_note", default=None,
                        help="where --face_margin comes from (stored beside it)")
    args = parser.parse_args(argv)
    # A link (the repository's checkpoints/bundled) is followed: the folder it names is
    # replaced, and the link stays.
    output_dir = args.output_dir.rstrip("/") or args.output_dir
    if os.path.islink(output_dir):
        output_dir = os.path.realpath(output_dir)
    try:
        info = bundle.bundle_generator(args.checkpoint_dir, output_dir, args.model_index,
                                       args.reference_image,
                                       {"note": args.note} if args.note else None,
                                       args.face_margin, args.face_crop_note)
    except (FaceAgingError, FileNotFoundError, ValueError) as e:
        print(f"bundle: {e}", file=sys.stderr)
        return 1
    size = sum(os.path.getsize(os.path.join(output_dir, f)) for f in os.listdir(output_dir))
    print(f"wrote {args.output_dir}: step {info['step']}, {info['image_size']} px, "
          f"{info['parameters']:,} values, {size / 1e6:.1f} MB")
    test_faces = os.path.join(EXAMPLES_DIR, "test")
    if os.path.isdir(test_faces):
        from face_aging.images import list_image_files, read_image
        from face_aging.ipcgan.inference import load_generator

        faces = [read_image(p)[0] for p in list_image_files(test_faces)]
        worst = int(bundle.corner_artefacts(load_generator(output_dir), faces).max())
        verdict = ("ok" if worst <= bundle.CORNER_ARTEFACT_LIMIT
                   else "ARTEFACTS (see docs/INFERENCE.md)")
        print(f"corner artefacts on images/test: at most {worst} px a corner (limit "
              f"{bundle.CORNER_ARTEFACT_LIMIT}): {verdict}")
    return 0


def run() -> None:
    """The command (``python -m face_aging.bundle``)."""
    raise SystemExit(main())


if __name__ == "__main__":
    run()
