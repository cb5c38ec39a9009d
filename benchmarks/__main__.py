"""``python -m benchmarks``: throughput of the IPCGAN port on this machine (docs/BENCHMARKS.md).

Sections (``--only``): ``peak`` (the machine's practical peak per dtype: a large matmul and
the discriminator's dis_4 and a generator residual convolution, each in float32, bfloat16
and float16; ``matmul`` is an old name of it), ``generator`` (inference images/s),
``train_step`` (one IPCGAN step; ``train`` for short), ``pipeline`` (tf.data alone, without
and with cache), ``memory`` (peak RSS of a short training run in a subprocess), ``demo`` (the
web demo's seconds from upload to the strip, benchmarks/demo_latency.py). Configurations are
measured side by side, interleaved: ``default`` (this project's "reuse" step, float32),
``xla``, ``bfloat16`` and ``float16`` (the --mixed_precision modes of the entry points) and
``release_structure`` (the release's step structure, float32). Every GFLOP/s figure is also
given as a fraction of the peak of the dtype it computes in.
FLOPs: analytic, a multiply-add counts as 2 FLOPs (benchmarks/flops.py).
"""
from __future__ import annotations

import argparse
import datetime
import math
import os
import platform
import sys
import tempfile
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

SECTIONS = ("peak", "generator", "train_step", "pipeline", "memory", "demo")
SECTION_ALIASES = {"matmul": "peak", "train": "train_step"}
TARGETS = {"generator_fraction_of_peak": 0.75, "train_speedup_vs_release": 1.3,
           "pipeline_over_train": 3.0, "bf16_step_over_release": 0.55,
           "train_fraction_of_peak": 0.85, "bf16_generator_speedup": 1.6}
RELEASE_STAND_IN = ("the release-structured step of this port (float32) stands in for the "
                    "release's own TF1 graph")


def _ints(text):
    return [int(v) for v in str(text).split(",") if v.strip()]


def _parser():
    from face_aging.cli import ArgumentParser

    p = ArgumentParser(prog="python -m benchmarks", description=__doc__,
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--output", default=os.path.join("benchmarks", "results.json"),
                   help="JSON results file (written atomically)")
    p.add_argument("--only", default=",".join(SECTIONS),
                   help=f"comma-separated sections, from {','.join(SECTIONS)} "
                        f"(matmul = peak, train = train_step)")
    p.add_argument("--quick", action="store_true",
                   help="smoke run for CI: batch 2, 32x32 faces, tiny repeats, default "
                        "configuration only, memory run overlapped with the timed sections")
    p.add_argument("--repeats", type=int, default=None, help="timed runs per figure (median); 5")
    p.add_argument("--warmup", type=int, default=None, help="untimed runs first; 2")
    p.add_argument("--xla", action=argparse.BooleanOptionalAction, default=None,
                   help="include the XLA (jit_compile) configuration (default: yes; --quick: no)")
    p.add_argument("--mixed_precision", default=None, metavar="MODES",
                   help="comma-separated precision modes measured beside float32, as "
                        "--mixed_precision of train_ipcgan.py takes them: bfloat16 (mixed_bfloat16) "
                        "and/or float16 (mixed_float16 + loss scaling); none: float32 only "
                        "(default: bfloat16,float16; --quick: none)")
    p.add_argument("--no-mixed_precision", dest="mixed_precision", action="store_const",
                   const="none", help="= --mixed_precision=none")
    p.add_argument("--release", action=argparse.BooleanOptionalAction, default=None,
                   help="include the release-structured training step (default: yes; --quick: no)")
    p.add_argument("--image_size", type=int, default=None, help="face side; 128 (--quick: 32)")
    p.add_argument("--generator_batches", default=None, help="1,32 (--quick: 2)")
    p.add_argument("--train_batches", default=None, help="8,32 (--quick: 2)")
    p.add_argument("--d_output_channels", type=int, default=512,
                   help="channels of the discriminator's last layer in the training step "
                        "(train_ipcgan.py --d_output_channels): 512 as the release; 1 times the "
                        "bundled model's configuration")
    p.add_argument("--matmul_size", type=int, default=None, help="4096 (--quick: 512)")
    p.add_argument("--peak_batch", type=int, default=None,
                   help="batch of the peak section's convolutions; 32 (--quick: 2)")
    p.add_argument("--same_round_peak", action=argparse.BooleanOptionalAction, default=True,
                   help="also time the peak's ops in every round of the generator and "
                        "training-step sections, so their fraction of peak is of a peak under "
                        "the same load (default: yes)")
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
    return p


def parse_args(argv=None):
    p = _parser()
    return _resolved(p, p.parse_args(argv))


def _resolved(p, args):
    """``args`` with sections, defaults (by --quick), precision modes and batches resolved and
    checked (``p.error`` for a bad value)."""
    only = [SECTION_ALIASES.get(s.strip(), s.strip()) for s in args.only.split(",") if s.strip()]
    unknown = sorted(set(only) - set(SECTIONS))
    if unknown or not only:
        p.error(f"--only={args.only}: unknown section(s) {', '.join(unknown) or '(none given)'}; "
                f"choose from {','.join(SECTIONS)}")
    args.only = only
    q = args.quick
    defaults = dict(repeats=2 if q else 5, warmup=1 if q else 2, xla=not q,
                    mixed_precision="none" if q else "bfloat16,float16",
                    image_size=32 if q else 128, generator_batches="2" if q else "1,32",
                    train_batches="2" if q else "8,32", matmul_size=512 if q else 4096,
                    peak_batch=2 if q else 32,
                    jpeg_size=200 if q else 400, images_per_group=4 if q else 40,
                    memory_steps=1 if q else 2, release=not q)
    for name, value in defaults.items():
        if getattr(args, name) is None:
            setattr(args, name, value)
    from face_aging import precision

    modes = []
    for value in str(args.mixed_precision).split(","):
        if not value.strip():
            continue
        try:
            mode = precision.parse_mode(value)
        except ValueError as e:
            p.error(f"--mixed_precision: {e}")
        if mode != "none" and mode not in modes:
            modes.append(mode)
    args.mixed_precision = modes
    try:
        args.generator_batches = _ints(args.generator_batches)
        args.train_batches = _ints(args.train_batches)
    except ValueError:
        p.error("--generator_batches and --train_batches are comma-separated integers")
    if args.pipeline_batch is None:
        args.pipeline_batch = max(args.train_batches)
    for name in ("repeats", "image_size", "d_output_channels", "matmul_size", "peak_batch", "jpeg_size",
                 "images_per_group", "pipeline_batch", "memory_steps"):
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


def _fmt(value, spec=".1f"):
    return "-" if value is None else format(value, spec)


def _largest_batch_row(rows, config):
    rows = [r for r in rows if r["config"] == config]
    return max(rows, key=lambda r: r["batch"]) if rows else None


def _same_batch(rows, config, batch):
    return next((r for r in rows if r["config"] == config and r["batch"] == batch), None)


def _fraction_key(rows):
    """The fraction of peak a target is judged on: of the peak timed in the same rounds
    where the run has it, else of the peak section's."""
    if rows and all(r.get("fraction_of_same_round_peak") is not None for r in rows):
        return "fraction_of_same_round_peak", "float32, timed in the same rounds"
    return "fraction_of_peak", "float32, peak section"


def _best_float32(rows, batch, key):
    same = [r for r in rows if r["batch"] == batch and r.get("compute_dtype", "float32")
            == "float32" and r.get(key) is not None]
    return max(same, key=lambda r: r[key]) if same else None


def evaluate_targets(results):
    """The targets of issues 7 and 16 from the figures of this run; a target whose figures
    were not measured is left out. Each is ``{"target", ..., "met"}``; ``best``/``best_config``
    name the best float32 configuration where another than the default could meet it."""
    out = {}
    gen = results.get("generator", {}).get("results", [])
    row = _largest_batch_row(gen, "default")
    key, peak_name = _fraction_key(gen)
    if row and row.get(key) is not None:
        best = _best_float32(gen, row["batch"], key)
        out["a_generator_fraction_of_peak"] = dict(
            target=TARGETS["generator_fraction_of_peak"], batch=row["batch"],
            peak=peak_name, default=row[key], best_config=best["config"], best=best[key],
            met=row[key] >= TARGETS["generator_fraction_of_peak"])
    bf16 = row and _same_batch(gen, "bfloat16", row["batch"])
    if row and bf16:
        speedup = bf16["images_per_s"] / row["images_per_s"]
        out["f_bf16_generator_speedup"] = dict(
            target=TARGETS["bf16_generator_speedup"], batch=row["batch"], bfloat16=speedup,
            met=speedup >= TARGETS["bf16_generator_speedup"])
    train = results.get("train_step", {}).get("results", [])
    row = _largest_batch_row(train, "default")
    if row and row["speedup_vs_release"] is not None:
        best = _best_float32(train, row["batch"], "speedup_vs_release")
        out["b_train_speedup_vs_release"] = dict(
            target=TARGETS["train_speedup_vs_release"], batch=row["batch"],
            default=row["speedup_vs_release"], best_config=best["config"],
            best=best["speedup_vs_release"],
            met=row["speedup_vs_release"] >= TARGETS["train_speedup_vs_release"])
    key, peak_name = _fraction_key(train)
    if row and row.get(key) is not None:
        best = _best_float32(train, row["batch"], key)
        out["e_train_fraction_of_peak"] = dict(
            target=TARGETS["train_fraction_of_peak"], batch=row["batch"], peak=peak_name,
            default=row[key], best_config=best["config"], best=best[key],
            met=row[key] >= TARGETS["train_fraction_of_peak"])
    bf16 = row and _same_batch(train, "bfloat16", row["batch"])
    release = row and _same_batch(train, "release_structure", row["batch"])
    if bf16 and release:
        ratio = bf16["median_s"] / release["median_s"]
        out["d_bf16_step_over_release"] = dict(
            target=TARGETS["bf16_step_over_release"], at_most=True, batch=row["batch"],
            bfloat16=ratio, release_reference=RELEASE_STAND_IN,
            met=ratio <= TARGETS["bf16_step_over_release"])
    pipe = results.get("pipeline", {}).get("results", [])
    if row and pipe:
        consumed = row["images_per_s"]
        ratios = {("cached" if r["cache"] else "uncached"): r["images_per_s"] / consumed
                  for r in pipe}
        out["c_pipeline_over_train_step"] = dict(
            target=TARGETS["pipeline_over_train"], train_images_per_s=consumed, **ratios,
            met=ratios.get("uncached", 0) >= TARGETS["pipeline_over_train"])
    _mark_fractions_above_peak(out)
    return dict(sorted(out.items()))


def _mark_fractions_above_peak(targets) -> None:
    """A fraction of peak above 1 means the peak was measured while the machine was busier
    than during the figure (the sections run one after another): such a target is marked
    ``above_peak`` and not judged."""
    for target in targets.values():
        if target.get("peak") and max(target.get("default") or 0, target.get("best") or 0) > 1.0:
            target["above_peak"] = True
            target["met"] = False


def target_verdict(target) -> str:
    """``MET`` (by the default configuration), ``met with CONFIG`` (only by another),
    ``not judged`` (a fraction of peak above 100%) or ``not met``."""
    if target.get("above_peak"):
        return ("not judged: above 100% of a peak measured under heavier load; "
                "re-run on a quiet machine")
    if target["met"]:
        return "MET"
    best = target.get("best")
    if best is not None and best >= target["target"] and target.get("best_config"):
        return f"met with {target['best_config']} only"
    return "not met"


def _pct(fraction):
    return _fmt(fraction and 100 * fraction)


def _load(section):
    load = section.get("load_average")
    return f" (load {load['start'][0]:.2f} -> {load['end'][0]:.2f})" if load else ""


def _print_same_round(section, print_fn):
    same = section.get("same_round_peak")
    if same:
        print_fn("  peak in the same rounds (fastest timing): " + ", ".join(
            f"{d} {b['gflops']:.1f} GFLOP/s ({b['op']})" for d, b in same["best"].items()))


def _print_peak(pk, print_fn):
    print_fn(f"\npeak per dtype{_load(pk)}: matmul {pk['matmul_n']}^3; convs at batch "
             f"{pk['batch']} of a {pk['image_size']}px step")
    print_fn(f"  {'op':16s} {'library':10s} {'dtype':9s} {'median s':>9s} {'GFLOP/s':>8s} "
             f"{'fastest':>8s} {'of peak':>8s}")
    for r in pk["rows"]:
        print_fn(f"  {r['op']:16s} {r['library']:10s} {r['dtype']:9s} {r['median_s']:9.4f} "
                 f"{r['gflops']:8.1f} {r.get('best_gflops', r['gflops']):8.1f} "
                 f"{_pct(r['fraction_of_peak']):>7s}%")
    print_fn("  peak (fastest timing): " + ", ".join(
        f"{d} {b['gflops']:.1f} GFLOP/s ({b['op']})" for d, b in pk["best"].items()))


def _print_generator(gen, print_fn):
    print_fn(f"\ngenerator inference (training=False), {gen['image_size']}px, "
             f"{gen['gflop_per_image']:.2f} GFLOP/image (multiply-add = 2 FLOPs){_load(gen)}")
    print_fn(f"  {'config':18s} {'batch':>5s} {'median s':>9s} {'img/s':>8s} {'GFLOP/s':>8s} "
             f"{'of peak':>8s} {'same rnd':>8s} {'of fp32':>8s} {'vs default':>10s}")
    for r in gen["results"]:
        print_fn(f"  {r['config']:18s} {r['batch']:5d} {r['median_s']:9.4f} "
                 f"{r['images_per_s']:8.2f} {r['gflops']:8.1f} "
                 f"{_pct(r['fraction_of_peak']):>7s}% "
                 f"{_pct(r.get('fraction_of_same_round_peak')):>7s}% "
                 f"{_pct(r['fraction_of_float32_peak']):>7s}% "
                 f"{_fmt(r['speedup_vs_default'], '.2f'):>9s}x")
    _print_same_round(gen, print_fn)


def _print_train_step(tr, print_fn):
    print_fn(f"\ntraining step (G, D and frozen AlexNet), {tr['image_size']}px{_load(tr)}")
    print_fn(f"  {'config':18s} {'batch':>5s} {'median s':>9s} {'img/s':>8s} {'GFLOP/s':>8s} "
             f"{'of peak':>8s} {'same rnd':>8s} {'vs release':>10s} {'vs default':>10s}")
    for r in tr["results"]:
        print_fn(f"  {r['config']:18s} {r['batch']:5d} {r['median_s']:9.3f} "
                 f"{r['images_per_s']:8.2f} {r['gflops']:8.1f} "
                 f"{_pct(r['fraction_of_peak']):>7s}% "
                 f"{_pct(r.get('fraction_of_same_round_peak')):>7s}% "
                 f"{_fmt(r['speedup_vs_release'], '.2f'):>9s}x "
                 f"{_fmt(r['speedup_vs_default'], '.2f'):>9s}x")
    if any(r["config"] == "release_structure" for r in tr["results"]):
        print_fn(f"  ({RELEASE_STAND_IN})")
    _print_same_round(tr, print_fn)
    print_fn("  of peak: the row's median over the peak of its compute dtype (float32 for "
             "default, xla, release_structure; a peak op's fastest timing); same rnd: over "
             "the peak ops timed in the same rounds")


def _print_pipeline_memory_demo(results, print_fn):
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


def _print_targets(results, print_fn):
    targets = results.get("targets")
    if targets and results.get("meta", {}).get("quick"):
        print_fn("\ntargets: not judged (--quick measures batch 2 on 32x32 faces; the targets "
                 "are for batch 32 at 128x128)")
    elif targets:
        print_fn("\ntargets:")
        for name, t in targets.items():
            shown = {k: (round(v, 3) if isinstance(v, float) else v) for k, v in t.items()}
            print_fn(f"  {name}: {target_verdict(t)}  {shown}")


def print_table(results, print_fn=print):
    meta = results.get("meta", {})
    if meta.get("cpu"):
        sets = [k for k, v in meta.get("instruction_sets", {}).items() if v]
        print_fn(f"CPU: {meta['cpu']}, {meta.get('cpu_count')} logical CPUs; "
                 f"{' '.join(sets) or 'no listed instruction set'}")
    if results.get("peak"):
        _print_peak(results["peak"], print_fn)
    if results.get("generator"):
        _print_generator(results["generator"], print_fn)
    if results.get("train_step"):
        _print_train_step(results["train_step"], print_fn)
    for section in ("generator", "train_step"):
        for key, error in results.get(section, {}).get("errors", {}).items():
            print_fn(f"  FAILED {section} {key}: {error}")
    _print_pipeline_memory_demo(results, print_fn)
    _print_targets(results, print_fn)
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


def _meta(args, argv, cpu) -> dict:
    """The run's ``meta`` section: when, with what, on which machine."""
    import numpy as np
    import tensorflow as tf
    import keras

    from benchmarks import machine

    return {
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "argv": sys.argv[1:] if argv is None else list(argv), "quick": args.quick,
        "repeats": args.repeats, "warmup": args.warmup, "python": platform.python_version(),
        "tensorflow": tf.__version__, "keras": keras.__version__, "numpy": np.__version__,
        "cpu": cpu["model"], "cpu_count": os.cpu_count(),
        "instruction_sets": cpu["instruction_sets"],
        "has_bfloat16_dot": cpu["has_bfloat16_dot"],
        "load_average_at_start": machine.load_average(),
        "TF_ENABLE_ONEDNN_OPTS": os.environ.get("TF_ENABLE_ONEDNN_OPTS"),
        "intra_op_threads": tf.config.threading.get_intra_op_parallelism_threads(),
        "inter_op_threads": tf.config.threading.get_inter_op_parallelism_threads(),
        "flop_convention": "analytic count of conv/deconv/dense multiply-adds, "
                           "1 multiply-add = 2 FLOPs; elementwise ops not counted"}


def _timed_sections(args, configs, train_configs, results, log) -> None:
    """Peak, generator, train step and pipeline (in this order) into ``results``."""
    from benchmarks import machine, peak, sections

    peaks = None
    same_round = ({"matmul_n": args.matmul_size, "batch": args.peak_batch}
                  if args.same_round_peak else None)
    if any(s in args.only for s in ("peak", "generator", "train_step")):
        log(f"peak: matmul {args.matmul_size}, dis_4 and residual convs at batch "
            f"{args.peak_batch}, {args.image_size}px, in {', '.join(peak.DTYPES)}")
        load_start = machine.load_average()
        results["peak"] = peak.measure(args.matmul_size, args.image_size, args.peak_batch,
                                       args.warmup, args.repeats)
        results["peak"]["load_average"] = {"start": load_start,
                                           "end": machine.load_average()}
        results["matmul"] = peak.matmul_view(results["peak"])
        peaks = results["peak"]["best"]
    if "generator" in args.only:
        log(f"generator inference, batches {args.generator_batches}, "
            f"{[c.name for c in configs]}")
        results["generator"] = sections.generator_inference(
            configs, args.generator_batches, args.image_size, args.warmup, args.repeats,
            peaks, same_round)
    if "train_step" in args.only:
        log(f"train step, batches {args.train_batches}, {[c.name for c in train_configs]}")
        results["train_step"] = sections.train_steps(
            train_configs, args.train_batches, args.image_size, max(args.warmup, 1),
            args.repeats, peaks, same_round, args.d_output_channels)


def _run_sections(args, configs, train_configs, results, log) -> None:
    """Every section of ``--only`` into ``results``: the synthetic data they need in a
    temporary folder, the memory run's subprocess started, awaited and stopped."""
    from benchmarks import data, sections

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
        _timed_sections(args, configs, train_configs, results, log)
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


def _profile(args, results, log) -> None:
    """--profile_dir: a profiler trace of the default training step into ``results``."""
    from benchmarks import machine, profiling, sections

    batch = max(args.train_batches)
    log(f"profiling {args.profile_steps} train steps at batch {batch} -> {args.profile_dir}")
    trainer, _ = sections.make_trainer(sections.DEFAULT, args.image_size)
    summary = profiling.profile_train_step(
        trainer, sections.synthetic_batch(batch, args.image_size), args.profile_dir,
        args.profile_steps)
    results["profile"] = dict(summary, trace_dir=os.path.abspath(args.profile_dir),
                              load_average=machine.load_average(),
                              batch=batch, config="default")


def main(argv=None):
    args = parse_args(argv)
    import tensorflow as tf

    if args.intra_op_threads:
        tf.config.threading.set_intra_op_parallelism_threads(args.intra_op_threads)
    if args.inter_op_threads:
        tf.config.threading.set_inter_op_parallelism_threads(args.inter_op_threads)
    from benchmarks import machine, sections

    cpu = machine.cpu_info()
    started = time.time()
    results = {"meta": _meta(args, argv, cpu)}
    configs = [sections.DEFAULT]
    if args.xla:
        configs.append(sections.XLA)
    configs += [sections.PRECISION_CONFIGS[mode] for mode in args.mixed_precision]
    train_configs = configs + ([sections.RELEASE] if args.release else [])
    results["meta"]["configs"] = [c.name for c in train_configs]

    def log(message):
        print(f"[{time.time() - started:7.1f}s] {message}", file=sys.stderr, flush=True)

    _run_sections(args, configs, train_configs, results, log)
    if args.profile_dir:
        _profile(args, results, log)
    results["targets"] = evaluate_targets(results)
    results["meta"]["load_average_at_end"] = list(os.getloadavg())
    results["meta"]["seconds"] = time.time() - started
    _check_finite(results)
    from face_aging.files import atomic_write_json

    atomic_write_json(args.output, results)
    print_table(results)
    log(f"wrote {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
