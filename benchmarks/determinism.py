"""Fresh-process determinism of ``train_ipcgan.py --deterministic``.

Runs the same short training (default: 1 step, 16 px, batch 2, random AlexNet, a synthetic
dataset) in N fresh processes and counts how many different results they end with, compared
variable by variable (G, D, both optimizers, the step). One distinct result = reproducible.
The findings this measures are in docs/BENCHMARKS.md, "Determinism".

    python -m benchmarks.determinism --runs=12 --jobs=2
"""
from __future__ import annotations

import collections
import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
import time

import numpy as np

from benchmarks.data import make_jpeg_dataset
from face_aging.progress import bar as progress_bar

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # before the TF import in variable_digests

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
COMPARED = ("generator", "discriminator", "g_optimizer", "d_optimizer", "step")


def parse_args(argv=None):
    from face_aging.cli import ArgumentParser

    parser = ArgumentParser(prog="python -m benchmarks.determinism",
                            description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=12, help="fresh processes")
    parser.add_argument("--jobs", type=int, default=2, help="processes at a time")
    parser.add_argument("--steps", type=int, default=1)
    parser.add_argument("--image_size", type=int, default=16)
    parser.add_argument("--batch_size", type=int, default=2)
    parser.add_argument("--work_dir", default=None, help="default: a temporary folder")
    args = parser.parse_args(argv)
    if args.runs < 2 or args.jobs < 1 or args.steps < 1:
        parser.error("--runs must be >= 2, --jobs and --steps >= 1")
    return args


def variable_digests(prefix: str) -> dict:
    """name -> sha1 of the value, for the checkpoint's G, D, optimizer and step variables."""
    import tensorflow as tf

    reader = tf.train.load_checkpoint(prefix)
    return {name: hashlib.sha1(np.ascontiguousarray(reader.get_tensor(name)).tobytes()).hexdigest()
            for name in sorted(reader.get_variable_to_shape_map())
            if name.split("/")[0] in COMPARED}


def run_command(args, data, ckpt):
    return [sys.executable, "train_ipcgan.py", f"--list_dir={data}", "--deterministic",
            f"--batch_size={args.batch_size}", f"--image_size={args.image_size}",
            "--allow_random_alexnet", f"--max_steps={args.steps}", f"--checkpoint_dir={ckpt}",
            f"--sample_dir={ckpt}/samples", "--sample_interval=100000", "--log_interval=100000"]


def compare(digests: dict):
    """``digests``: run -> {variable name: digest}. Returns (the number of distinct results,
    a Counter of variable name -> in how many runs it differs from the first run's)."""
    outcomes = {tuple(sorted(d.items())) for d in digests.values()}
    reference = digests[min(digests)]
    differing = collections.Counter(
        name for d in digests.values() for name in d if d[name] != reference.get(name))
    return len(outcomes), differing


def _run_all(args, work):
    data = make_jpeg_dataset(os.path.join(work, "data"), per_group=3, size=40)
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2")
    pending, finished, running = list(range(args.runs)), [], {}
    bar = progress_bar(args.runs, "determinism runs", unit="run", enabled=True)
    while pending or running:
        while pending and len(running) < args.jobs:
            run = pending.pop(0)
            ckpt = os.path.join(work, f"run{run:03d}")
            # stderr to a file: a pipe read only at the end would fill up (64 KB) and block
            # the run for ever
            with open(f"{ckpt}.stderr", "w") as err:
                running[run] = subprocess.Popen(run_command(args, data, ckpt), cwd=REPO, env=env,
                                                stdout=subprocess.DEVNULL, stderr=err)
        for run, process in list(running.items()):
            if process.poll() is not None:
                del running[run]
                if process.returncode != 0:
                    with open(os.path.join(work, f"run{run:03d}.stderr")) as err:
                        sys.exit(f"error: run {run} failed: {err.read().strip()[-500:]}")
                finished.append(run)
                bar.update(1)
                bar.write(f"run {len(finished)}/{args.runs} done")
        time.sleep(0.2)
    bar.close()
    return {run: variable_digests(os.path.join(work, f"run{run:03d}", f"ckpt-{args.steps}"))
            for run in sorted(finished)}


def main(argv=None):
    args = parse_args(argv)
    work = args.work_dir or tempfile.mkdtemp(prefix="determinism_")
    distinct, differing = compare(_run_all(args, work))
    print(f"{args.runs} fresh processes, {args.steps} step(s) at {args.image_size} px, "
          f"batch {args.batch_size}: {distinct} distinct result(s)")
    for name, count in differing.most_common(10):
        print(f"  {name}: differs from the first run's in {count} run(s)")
    if args.work_dir is None and distinct == 1:
        shutil.rmtree(work)  # ~100 MB a run; kept when the runs differ, to be inspected
    else:
        print(f"runs kept in {work}")
    return 0 if distinct == 1 else 1


if __name__ == "__main__":
    sys.exit(main())
