"""``python -m face_aging.data.framing``: measures how faces sit in their crops
(``face_aging.data.framing``; needs the [eval] extra)."""
from __future__ import annotations

import os
import random
import sys


def main(argv=None) -> int:
    """Parses ``argv`` (default ``sys.argv[1:]``), measures each folder; returns the exit status."""
    from face_aging.cli import ArgumentParser
    from face_aging.data.framing import image_files, measure

    parser = ArgumentParser(
        prog="python -m face_aging.data.framing",
        description="Measures how faces sit in their crops: eye distance and eye-midpoint "
                    "position as fractions of the side (medians, IQRs). Needs the [eval] extra.")
    parser.add_argument("--images", required=True, action="append",
                        help="a folder of images (recursive); may be repeated")
    parser.add_argument("--limit", type=int, default=0,
                        help="measure a seeded random sample of this many images per folder "
                             "(0: all)")
    args = parser.parse_args(argv)
    from face_aging.errors import FaceAgingError

    for folder in args.images:
        if not os.path.isdir(folder):
            print(f"framing: error: --images {folder}: not a folder", file=sys.stderr)
            return 1
        paths = image_files(folder)
        if args.limit and args.limit < len(paths):
            paths = sorted(random.Random(0).sample(paths, args.limit))
        try:
            result = measure(paths)
        except FaceAgingError as e:
            print(f"framing: error: {e}", file=sys.stderr)
            return 1
        cells = ", ".join(f"{k} {v['median']:.3f} (IQR {v['iqr']:.3f})"
                          for k, v in result.items() if isinstance(v, dict))
        print(f"{folder}: {result['measured']} of {result['images']} images measured "
              f"({result['no_face']} without a face found, {result['unreadable']} unreadable): "
              f"{cells or 'nothing measured'}")
    return 0


def run() -> None:
    """The command."""
    sys.exit(main())


if __name__ == "__main__":
    run()
