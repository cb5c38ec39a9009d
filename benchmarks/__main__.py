"""``python -m benchmarks``: throughput of the IPCGAN port on this machine (docs/BENCHMARKS.md).

Sections (``--only``): ``matmul`` (practical peak), ``generator`` (inference images/s),
``train_step`` (one IPCGAN step), ``pipeline`` (tf.data alone, without and with cache),
``memory`` (peak RSS of a short training run in a subprocess), ``demo`` (the web demo's
seconds from upload to the strip, benchmarks/demo_latency.py). Configurations are measured
side by side, interleaved: ``default`` (this project's "reuse" step), ``xla``,
``mixed_precision`` and ``release_structure`` (the release's step structure).
FLOPs: analytic, a multiply-add counts as 2 FLOPs (benchmarks/flops.py).
"""
from __future__ import annotations

import argparse
import datetime
import json
import math
import os
import platform
import sys
import tempfile
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

SECTIONS = ("matmul", "generator", "train_step", "pipeline", "memory", "demo")
TARGETS = {"generator_fraction_of_peak": 0.75, "train_speedup_vs_release": 1.3,
           "pipeline_over_train": 3.0}


def _ints(text):
    return [int(v) for v in str(text).split(",") if v.strip()]


def parse_args(argv=None):
    from face_aging.cli import ArgumentParser

    p = ArgumentParser(prog="python -m benchmarks", description=__doc__,
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--output", default=os.path.join("benchmarks", "results.json"),
                   help="JSON results file (written atomically)")
    p.add_argument("--only", default=",".join(SECTIONS),
                   help=f"comma-separated sections, from {','.join(SECTIONS)}")
    p.add_argument("--quick", action="store_true",
                   help="smoke run for CI: batch 2, 32x32 faces, tiny repeats, default "
                        "configuration only, memory run overlapped with the timed sections")
    p.add_argument("--repeats", type=int, default=None, help="timed runs per figure (median); 5")
    p.add_argument("--warmup", type=int, default=None, help="untimed runs first; 2")
    p.add_argument("--xla", action=argparse.BooleanOptionalAction, default=None,
                   help="include the XLA (jit_compile) configuration (default: yes; --quick: no)")
    p.add_argument("--mixed_precision", action=argparse.BooleanOptionalAction, default=None,
                   help="include mixed_float16 + loss scaling (default: yes; --quick: no)")
    p.add_argument("--release", action=argparse.BooleanOptionalAction, default=None,
                   help="include the release-structured training step (default: yes; --quick: no)")
    p.add_argument("--image_size", type=int, default=None, help="face side; 128 (--quick: 32)")
    p.add_argument("--generator_batches", default=None, help="1,32 (--quick: 2)")
    p.add_argument("--train_batches", default=None, help="8,32 (--quick: 2)")
    p.add_argument("--matmul_size", type=int, default=None, help="4096 (--quick: 512)")
    p.add_argument("--jpeg_size", type=int, default=None,
                   help="side of the synthetic JPEGs; 400 as CACD's crops (--quick: 200)")
    p.add_argument("--images_per_group", type=int, default=None,
                   help="synthetic JPEGs per age group; 40 (--quick: 4)")
    p.add_argument("--pipeline_batch", type=int, default=None,
                   help="batch of the pipeline benchmark; the largest train batch")
    p.add_argument("--memory_steps", type=int, default=None, help="steps of the memory run; 2")
    p.add_argument("--profile_dir", default=None,
                   help="write a TensorBoard profiler trace of the train step and top_ops.txt here")
    p.add_argument("--profile_steps", type=int, default=2)
    p.add_argument("--intra_op_threads", type=int, default=0, help="0: TF's default")
    p.add_argument("--inter_op_threads", type=int, default=0, help="0: TF's default")
    args = p.parse_args(argv)
    only = [s.strip() for s in args.only.split(",") if s.strip()]
    unknown = sorted(set(only) - set(SECTIONS))
    if unknown:
        p.error(f"--only: unknown section(s) {unknown}; choose from {','.join(SECTIONS)}")
    args.only = only
    q = args.quick
    defaults = dict(repeats=2 if q else 5, warmup=1 if q else 2, xla=not q, mixed_precision=not q,
                    image_size=32 if q else 128, generator_batches="2" if q else "1,32",
                    train_batches="2" if q else "8,32", matmul_size=512 if q else 4096,
                    jpeg_size=200 if q else 400, images_per_group=4 if q else 40,
                    memory_steps=1 if q else 2, release=not q)
    for name, value in defaults.items():
        if getattr(args, name) is None:
            setattr(args, name, value)
    args.generator_batches = _ints(args.generator_batches)
    args.train_batches = _ints(args.train_batches)
    if args.pipeline_batch is None:
        args.pipeline_batch = max(args.train_batches)
    for name in ("repeats", "image_size", "matmul_size", "jpeg_size", "images_per_group",
                 "pipeline_batch", "memory_steps"):
        if getattr(args, name) < 1:
            p.error(f"--{name} must be >= 1")
    if args.warmup < 0:
        p.error("--warmup must be >= 0")
    if args.image_size % 8:
        p.error("--image_size must be a multiple of 8")
    if not args.generator_batches or not args.train_batches or min(
            args.generator_batches + args.train_batches) < 1:
        p.error("batches must be positive integers")
    return args


def write_json_atomic(path, payload):
    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=directory, prefix=".tmp_", suffix=".json")
    try:
        with os.fdopen(fd, "w") as f:
            json.dump(payload, f, indent=2, sort_keys=True, allow_nan=False)
            f.write("\n")
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def _cpu_model():
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor()


def _fmt(value, spec=".1f"):
    return "-" if value is None else format(value, spec)


def evaluate_targets(results):
    """The issue's three targets, from the figures of this run (None where not measured)."""
    out = {}
    gen = results.get("generator", {}).get("results", [])
    default_gen = [r for r in gen if r["config"] == "default"]
    if default_gen:
        row = max(default_gen, key=lambda r: r["batch"])
        best = max((r for r in gen if r["batch"] == row["batch"]), key=lambda r: r["gflops"])
        out["a_generator_fraction_of_peak"] = dict(
            target=TARGETS["generator_fraction_of_peak"], batch=row["batch"],
            default=row["fraction_of_peak"], best_config=best["config"],
            best=best["fraction_of_peak"],
            met=(row["fraction_of_peak"] or 0) >= TARGETS["generator_fraction_of_peak"])
    train = results.get("train_step", {}).get("results", [])
    default_train = [r for r in train if r["config"] == "default"]
    if default_train:
        row = max(default_train, key=lambda r: r["batch"])
        same = [r for r in train if r["batch"] == row["batch"] and r["speedup_vs_release"]]
        if row["speedup_vs_release"] is not None:
            best = max(same, key=lambda r: r["speedup_vs_release"])
            out["b_train_speedup_vs_release"] = dict(
                target=TARGETS["train_speedup_vs_release"], batch=row["batch"],
                default=row["speedup_vs_release"], best_config=best["config"],
                best=best["speedup_vs_release"],
                met=row["speedup_vs_release"] >= TARGETS["train_speedup_vs_release"])
    pipe = results.get("pipeline", {}).get("results", [])
    if default_train and pipe:
        consumed = max(default_train, key=lambda r: r["batch"])["images_per_s"]
        ratios = {("cached" if r["cache"] else "uncached"): r["images_per_s"] / consumed
                  for r in pipe}
        out["c_pipeline_over_train_step"] = dict(
            target=TARGETS["pipeline_over_train"], train_images_per_s=consumed, **ratios,
            met=ratios.get("uncached", 0) >= TARGETS["pipeline_over_train"])
    return out


def target_verdict(target) -> str:
    """``MET`` (by the default configuration), ``met with CONFIG`` (only by another), or
    ``not met``."""
    if target["met"]:
        return "MET"
    best = target.get("best")
    if best is not None and best >= target["target"] and target.get("best_config"):
        return f"met with {target['best_config']} only"
    return "not met"


def print_table(results, print_fn=print):
    mm = results.get("matmul")
    if mm:
        print_fn(f"\nmatmul {mm['n']}x{mm['n']} float32: numpy {mm['numpy']['gflops']:.1f} GFLOP/s, "
                 f"TF {mm['tensorflow']['gflops']:.1f} GFLOP/s -> peak {mm['peak_gflops']:.1f} "
                 f"({mm['peak_source']})")
    gen = results.get("generator")
    if gen:
        print_fn(f"\ngenerator inference (training=False), {gen['image_size']}px, "
                 f"{gen['gflop_per_image']:.2f} GFLOP/image (multiply-add = 2 FLOPs)")
        print_fn(f"  {'config':18s} {'batch':>5s} {'median s':>9s} {'img/s':>8s} {'GFLOP/s':>8s} {'of peak':>8s}")
        for r in gen["results"]:
            print_fn(f"  {r['config']:18s} {r['batch']:5d} {r['median_s']:9.4f} {r['images_per_s']:8.2f} "
                     f"{r['gflops']:8.1f} {_fmt(r['fraction_of_peak'] and 100 * r['fraction_of_peak']):>7s}%")
    tr = results.get("train_step")
    if tr:
        print_fn(f"\ntraining step (G, D and frozen AlexNet), {tr['image_size']}px")
        print_fn(f"  {'config':18s} {'batch':>5s} {'median s':>9s} {'img/s':>8s} {'GFLOP/s':>8s} "
                 f"{'of peak':>8s} {'vs release':>10s}")
        for r in tr["results"]:
            print_fn(f"  {r['config']:18s} {r['batch']:5d} {r['median_s']:9.3f} {r['images_per_s']:8.2f} "
                     f"{r['gflops']:8.1f} {_fmt(r['fraction_of_peak'] and 100 * r['fraction_of_peak']):>7s}% "
                     f"{_fmt(r['speedup_vs_release'], '.2f'):>9s}x")
    for section in ("generator", "train_step"):
        for key, error in results.get(section, {}).get("errors", {}).items():
            print_fn(f"  FAILED {section} {key}: {error}")
    pipe = results.get("pipeline")
    if pipe:
        print_fn(f"\ninput pipeline alone: {pipe['n_images']} synthetic {pipe['jpeg_size']}px JPEGs -> "
                 f"{pipe['image_size']}px + 227px sources and {pipe['image_size']}px reals")
        for r in pipe["results"]:
            print_fn(f"  cache={str(r['cache']):5s} batch {r['batch']:3d}: {r['images_per_s']:9.1f} "
                     f"samples/s  (median of {len(r['times_s'])} x {r['batches_per_repeat']} batches)")
    mem = results.get("memory")
    if mem:
        print_fn(f"\npeak RSS of a training run (batch {mem['batch']}, {mem['steps']} steps, "
                 f"{mem['config']}): {mem['peak_rss_mb']:.0f} MB "
                 f"(after building the models: {mem['rss_after_build_mb']:.0f} MB)")
    web = results.get("demo")
    if web and "skipped" in web:
        print_fn(f"\nweb demo: skipped ({web['skipped']})")
    elif web:
        print_fn(f"\nweb demo ({web['model']}), {web['photo']} {web['photo_size'][0]}x"
                 f"{web['photo_size'][1]}, one face, all ages: upload to strip "
                 f"{web['upload_to_strip']['median_s']:.2f} s median (first request "
                 f"{web['first_request_s']:.2f} s); the same work without the server "
                 f"{web['age_photo']['median_s']:.2f} s")
    targets = results.get("targets")
    if targets and results.get("meta", {}).get("quick"):
        print_fn("\ntargets: not judged (--quick measures batch 2 on 32x32 faces; the targets "
                 "are for batch 32 at 128x128)")
    elif targets:
        print_fn("\ntargets:")
        for name, t in targets.items():
            shown = {k: (round(v, 3) if isinstance(v, float) else v) for k, v in t.items()}
            print_fn(f"  {name}: {target_verdict(t)}  {shown}")
    prof = results.get("profile")
    if prof:
        print_fn(f"\nprofile ({prof['trace_dir']}):\n{prof['text']}")


def _check_finite(obj, path="results"):
    if isinstance(obj, float) and not math.isfinite(obj):
        raise ValueError(f"{path} is {obj}")
    if isinstance(obj, dict):
        for k, v in obj.items():
            _check_finite(v, f"{path}.{k}")
    if isinstance(obj, list):
        for i, v in enumerate(obj):
            _check_finite(v, f"{path}[{i}]")


def main(argv=None):
    args = parse_args(argv)
    import numpy as np
    import tensorflow as tf
    import keras

    if args.intra_op_threads:
        tf.config.threading.set_intra_op_parallelism_threads(args.intra_op_threads)
    if args.inter_op_threads:
        tf.config.threading.set_inter_op_parallelism_threads(args.inter_op_threads)
    from benchmarks import data, sections

    started = time.time()
    results = {"meta": {
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "argv": sys.argv[1:] if argv is None else list(argv), "quick": args.quick,
        "repeats": args.repeats, "warmup": args.warmup, "python": platform.python_version(),
        "tensorflow": tf.__version__, "keras": keras.__version__, "numpy": np.__version__,
        "cpu": _cpu_model(), "cpu_count": os.cpu_count(),
        "load_average_at_start": list(os.getloadavg()),
        "TF_ENABLE_ONEDNN_OPTS": os.environ.get("TF_ENABLE_ONEDNN_OPTS"),
        "intra_op_threads": tf.config.threading.get_intra_op_parallelism_threads(),
        "inter_op_threads": tf.config.threading.get_inter_op_parallelism_threads(),
        "flop_convention": "analytic count of conv/deconv/dense multiply-adds, "
                           "1 multiply-add = 2 FLOPs; elementwise ops not counted"}}
    configs = [sections.DEFAULT]
    if args.xla:
        configs.append(sections.XLA)
    if args.mixed_precision:
        configs.append(sections.MIXED)
    train_configs = configs + ([sections.RELEASE] if args.release else [])
    results["meta"]["configs"] = [c.name for c in train_configs]

    def log(message):
        print(f"[{time.time() - started:7.1f}s] {message}", file=sys.stderr, flush=True)

    tmp = tempfile.TemporaryDirectory(prefix="face_aging_bench_")
    list_dir, memory = None, None
    try:
        if "pipeline" in args.only or "memory" in args.only:
            log(f"writing {5 * args.images_per_group} synthetic {args.jpeg_size}px JPEGs")
            list_dir = data.make_jpeg_dataset(os.path.join(tmp.name, "data"),
                                              args.images_per_group, args.jpeg_size)
        if "memory" in args.only:
            memory = sections.PeakMemory(list_dir, min(max(args.train_batches),
                                                       5 * args.images_per_group),
                                         args.image_size, args.memory_steps)
            if args.quick:  # overlapped: the quick figures are a smoke test, not measurements
                log(f"peak memory, batch {memory.batch}, {memory.steps} steps (subprocess, "
                    f"overlapped)")
                memory.start()
        peak = None
        if any(s in args.only for s in ("matmul", "generator", "train_step")):
            log(f"matmul {args.matmul_size}")
            results["matmul"] = sections.matmul_peak(args.matmul_size, args.warmup, args.repeats)
            peak = results["matmul"]["peak_gflops"]
        if "generator" in args.only:
            log(f"generator inference, batches {args.generator_batches}, "
                f"{[c.name for c in configs]}")
            results["generator"] = sections.generator_inference(
                configs, args.generator_batches, args.image_size, args.warmup, args.repeats, peak)
        if "train_step" in args.only:
            log(f"train step, batches {args.train_batches}, {[c.name for c in train_configs]}")
            results["train_step"] = sections.train_steps(
                train_configs, args.train_batches, args.image_size, max(args.warmup, 1),
                args.repeats, peak)
        if "pipeline" in args.only:
            log(f"input pipeline, batch {args.pipeline_batch}")
            n_images = 5 * args.images_per_group
            results["pipeline"] = sections.input_pipeline(
                list_dir, n_images, args.jpeg_size, args.pipeline_batch, args.image_size,
                batches_per_repeat=max(2, n_images // args.pipeline_batch), warmup=args.warmup,
                repeats=args.repeats)
        if "demo" in args.only:
            log("web demo: upload to strip, one face, the bundled model")
            from benchmarks import demo_latency

            results["demo"] = demo_latency.demo_response(args.warmup, args.repeats)
        if memory is not None:
            if memory.proc is None:
                log(f"peak memory, batch {memory.batch}, {memory.steps} steps (subprocess)")
                memory.start()
            results["memory"] = memory.result()
            results["memory"]["overlapped_with_timing"] = args.quick
    finally:
        if memory is not None and memory.proc is not None and memory.proc.poll() is None:
            memory.proc.kill()
            memory.proc.wait()
        tmp.cleanup()
    if args.profile_dir:
        from benchmarks import profiling
        batch = max(args.train_batches)
        log(f"profiling {args.profile_steps} train steps at batch {batch} -> {args.profile_dir}")
        trainer, _ = sections.make_trainer(sections.DEFAULT, args.image_size)
        summary = profiling.profile_train_step(
            trainer, sections.synthetic_batch(batch, args.image_size), args.profile_dir,
            args.profile_steps)
        results["profile"] = dict(summary, trace_dir=os.path.abspath(args.profile_dir),
                                  batch=batch, config="default")
    results["targets"] = evaluate_targets(results)
    results["meta"]["load_average_at_end"] = list(os.getloadavg())
    results["meta"]["seconds"] = time.time() - started
    _check_finite(results)
    write_json_atomic(args.output, results)
    print_table(results)
    log(f"wrote {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
