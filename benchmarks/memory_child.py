"""Child process of the memory benchmark: a short training run, then prints its own peak RSS.

``python -m benchmarks.memory_child --list_dir=D --batch=32 --steps=2`` prints one JSON line:
``maxrss_kb`` (``getrusage(RUSAGE_SELF).ru_maxrss``, KiB on Linux), the same after the
models were built, and the wall time.
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def main(argv=None):
    parser = argparse.ArgumentParser()
    parser.add_argument("--list_dir", required=True)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--image_size", type=int, default=128)
    parser.add_argument("--steps", type=int, default=2)
    parser.add_argument("--step_structure", default="reuse")
    parser.add_argument("--xla", action="store_true")
    parser.add_argument("--mixed_precision", default="none",
                        help="a face_aging.precision mode: none, float16, bfloat16")
    args = parser.parse_args(argv)
    t0 = time.perf_counter()
    from benchmarks.sections import Config, make_dataset, make_trainer

    config = Config("memory", args.step_structure, args.xla, args.mixed_precision)
    dataset = make_dataset(args.list_dir, args.batch, args.image_size, cache=False)
    after_dataset = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    trainer, _ = make_trainer(config, args.image_size)
    after_build = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    iterator = iter(dataset)
    for _ in range(args.steps):
        trainer.train_step(next(iterator))["d_loss"].numpy()
    print(json.dumps({"maxrss_kb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
                      "maxrss_after_dataset_kb": after_dataset,
                      "maxrss_after_build_kb": after_build,
                      "seconds": time.perf_counter() - t0}))


if __name__ == "__main__":
    main()
