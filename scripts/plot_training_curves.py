"""Loss curves of a training run from its TensorBoard event files, as one PNG.

A run resumed several times (or continued in another folder from a copied checkpoint) has
several event files, and a resumed phase rewrites the steps after its checkpoint: for each
step the value from the most recently started event file is kept, so the curve follows the
lineage of the final weights.

  python scripts/plot_training_curves.py --output=checkpoints/training_curves.png \\
      RUN_DIR/logs [MORE_LOG_DIRS ...] [--phase=STEP:LABEL ...]
"""
from __future__ import annotations

import glob
import os
import sys
from typing import Dict, List, Sequence, Tuple

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

LOSS_TAGS = ("loss/d_loss", "loss/g_loss", "loss/fea_loss", "loss/age_loss")


def read_scalars(log_dirs: Sequence[str]) -> Dict[str, List[Tuple[int, float]]]:
    """``{tag: [(step, value), ...]}`` sorted by step; later-started event files win a step."""
    import tensorflow as tf

    files = sorted({f for d in log_dirs for f in glob.glob(os.path.join(d, "events.out.tfevents.*"))},
                   key=lambda f: float(os.path.basename(f).split(".")[3]))  # start time in the name
    if not files:
        raise FileNotFoundError(f"no TensorBoard event files in {', '.join(log_dirs)}")
    values: Dict[str, Dict[int, float]] = {}
    for path in files:
        for record in tf.data.TFRecordDataset(path):
            event = tf.compat.v1.Event.FromString(record.numpy())
            for value in event.summary.value:
                if value.HasField("tensor") and value.tensor.dtype == tf.float32.as_datatype_enum:
                    scalar = tf.make_ndarray(value.tensor)
                    if scalar.ndim == 0:
                        values.setdefault(value.tag, {})[int(event.step)] = float(scalar)
    return {tag: sorted(steps.items()) for tag, steps in values.items()}


def plot(scalars, output: str, phases: Sequence[Tuple[int, str]] = (), title: str = "") -> None:
    """Writes a 2x2 grid of the four losses (each divided by its weight, as logged)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(2, 2, figsize=(10, 6.5), sharex=True)
    for ax, tag in zip(axes.flat, LOSS_TAGS):
        points = scalars.get(tag, [])
        if points:
            steps, ys = zip(*points)
            ax.plot(steps, ys, lw=0.8)
        for step, label in phases:
            ax.axvline(step, color="grey", ls=":", lw=0.8)
            ax.text(step, 1.0, label, rotation=90, va="top", ha="right", fontsize=7,
                    transform=ax.get_xaxis_transform(), color="grey")
        ax.set_title(tag.split("/")[-1] + " (loss / weight)", fontsize=9)
        ax.grid(alpha=0.3)
    for ax in axes[1]:
        ax.set_xlabel("step")
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    from face_aging.files import atomic_path

    with atomic_path(output, suffix=".png") as temporary:
        fig.savefig(temporary, dpi=80)
    plt.close(fig)


def main(argv=None) -> int:
    from face_aging.cli import ArgumentParser

    parser = ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("log_dirs", nargs="+")
    parser.add_argument("--output", required=True)
    parser.add_argument("--phase", action="append", default=[],
                        help="STEP:LABEL, a dotted line where a phase starts")
    parser.add_argument("--title", default="")
    args = parser.parse_args(argv)
    try:
        phases = [(int(p.split(":", 1)[0]), p.split(":", 1)[1]) for p in args.phase]
    except (ValueError, IndexError):
        print(f"plot_training_curves: --phase must be STEP:LABEL, got {args.phase}", file=sys.stderr)
        return 2
    try:
        scalars = read_scalars(args.log_dirs)
    except FileNotFoundError as e:
        print(f"plot_training_curves: {e}", file=sys.stderr)
        return 1
    plot(scalars, args.output, phases, args.title)
    print(f"wrote {args.output} ({', '.join(f'{t}: {len(scalars.get(t, []))} points' for t in LOSS_TAGS)})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
