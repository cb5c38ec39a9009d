"""The measured sections of ``python -m benchmarks``: generator inference, training step,
input pipeline, peak memory (the peak per dtype is benchmarks/peak.py). Each returns a
JSON-ready dict."""
from __future__ import annotations

import dataclasses
import inspect
import json
import os
import resource
import subprocess
import sys
import time
from typing import Dict, List, Optional, Sequence

import numpy as np
import tensorflow as tf

from benchmarks import flops, machine, peak
from benchmarks.peak import fraction_of_peak
from benchmarks.timing import median, time_interleaved
from face_aging import precision
from face_aging.backbones.alexnet import AlexNet
from face_aging.ipcgan import data as pipeline
from face_aging.ipcgan.networks import Discriminator, Generator, build_models, one_hot_age
from face_aging.ipcgan.trainer import IPCGANTrainer

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@dataclasses.dataclass(frozen=True)
class Config:
    """One configuration compared side by side.

    ``mixed_precision``: a ``face_aging.precision`` mode (``none``, ``float16``,
    ``bfloat16``), as the trainer and ``--mixed_precision`` of the entry points take it.
    """
    name: str
    step_structure: str = "reuse"
    xla: bool = False
    mixed_precision: str = "none"

    @property
    def compute_dtype(self) -> str:
        return precision.compute_dtype(self.mixed_precision)


DEFAULT = Config("default")
XLA = Config("xla", xla=True)
BFLOAT16 = Config("bfloat16", mixed_precision="bfloat16")
FLOAT16 = Config("float16", mixed_precision="float16")
RELEASE = Config("release_structure", step_structure="release")
PRECISION_CONFIGS = {"bfloat16": BFLOAT16, "float16": FLOAT16}


def peak_fractions(row: Dict[str, object], peaks, same_round=None) -> None:
    """Adds ``fraction_of_peak`` (against the best peak of the row's compute dtype),
    ``fraction_of_float32_peak`` and, given the best of the peak ops timed in the same
    rounds as the row, ``fraction_of_same_round_peak`` to ``row``."""
    row["peak_dtype"] = row["compute_dtype"]
    row["fraction_of_peak"] = fraction_of_peak(row["gflops"], peaks or {}, row["compute_dtype"])
    row["fraction_of_float32_peak"] = fraction_of_peak(row["gflops"], peaks or {}, "float32")
    row["fraction_of_same_round_peak"] = fraction_of_peak(row["gflops"], same_round or {},
                                                          row["compute_dtype"])


def _time_with_peak_ops(fns, configs, image_size, warmup, repeats, same_round_peak):
    """``time_interleaved`` of ``fns``, with the peak's ops (benchmarks/peak.py) in the dtypes
    of ``configs`` as more members of every round when ``same_round_peak`` is
    ``{"matmul_n", "batch"}``: a peak timed under the same load as the figures, so their
    fraction of it holds on a busy machine too. Returns ``(times, same_round or None)``."""
    if not same_round_peak:
        return time_interleaved(fns, warmup - 1, repeats), None
    dtypes = [d for d in peak.DTYPES if d in {c.compute_dtype for c in configs}]
    ref_fns, ref_meta = peak.timed_ops(same_round_peak["matmul_n"], image_size,
                                       same_round_peak["batch"], dtypes, prefix="peak:")
    times = time_interleaved({**fns, **ref_fns}, warmup - 1, repeats)
    rows, best = peak.summarise({k: times.pop(k) for k in ref_fns}, ref_meta)
    return times, {"rows": rows, "best": best, **same_round_peak}


def _gflops(flop_count: float, seconds: float) -> float:
    return flop_count / seconds / 1e9


def _first_calls(fns: Dict[str, object], meta: Dict[str, object]) -> Dict[str, str]:
    """Runs each callable once (its trace/compile and first run, untimed). A configuration
    that fails is dropped from ``fns``/``meta`` and reported, so one broken configuration
    does not cost the others' figures. Returns key -> one-line error."""
    errors = {}
    for key in list(fns):
        try:
            fns[key]()
        except Exception as exc:  # reported in the results, not hidden
            message = str(exc).strip().splitlines()
            errors[key] = f"{type(exc).__name__}: " + " ".join(
                line.strip() for line in message if line.strip())[-400:]
            del fns[key], meta[key]
    return errors


def _summary(times: List[float]) -> Dict[str, object]:
    return {"median_s": median(times), "min_s": float(min(times)),
            "times_s": [float(t) for t in times]}


# -- generator inference ----------------------------------------------------------------------
def generator_inference(configs: Sequence[Config], batches: Sequence[int], image_size: int,
                        warmup: int, repeats: int, peaks: Optional[Dict[str, dict]],
                        same_round_peak: Optional[Dict[str, int]] = None):
    """Images/s of ``G((source, age), training=False)`` (moving-statistics batch norm).

    ``peaks``: dtype -> ``{"gflops": ...}`` (benchmarks/peak.py) for the fractions of peak;
    ``same_round_peak``: see :func:`_time_with_peak_ops`."""
    rng = np.random.default_rng(0)
    fns, meta = {}, {}
    for config in configs:
        with precision.keras_policy(config.mixed_precision):
            generator = Generator()
            build_models(generator=generator, image_size=image_size)
        fn = tf.function(lambda s, a, g=generator: g((s, a), training=False),
                         jit_compile=config.xla)
        for batch in batches:
            source = tf.constant(rng.normal(0, 60, (batch, image_size, image_size, 3)),
                                 tf.float32)
            age = one_hot_age(tf.range(batch) % generator.age_groups)
            key = f"{config.name}/b{batch}"
            fns[key] = lambda fn=fn, s=source, a=age: fn(s, a).numpy()
            meta[key] = (config, batch)
    errors = _first_calls(fns, meta)
    load_start = machine.load_average()
    times, same_round = _time_with_peak_ops(fns, configs, image_size, warmup, repeats,
                                            same_round_peak)
    results = []
    for key, ts in times.items():
        config, batch = meta[key]
        flop_count = flops.generator_flops(image_size, batch)
        t = median(ts)
        row = dict(config=config.name, xla=config.xla, mixed_precision=config.mixed_precision,
                   compute_dtype=config.compute_dtype, batch=batch, images_per_s=batch / t,
                   flops=flop_count, gflops=_gflops(flop_count, t), **_summary(ts))
        peak_fractions(row, peaks, same_round and same_round["best"])
        results.append(row)
    _speedups(results, DEFAULT.name, "speedup_vs_default")
    return {"image_size": image_size, "gflop_per_image": flops.generator_flops(image_size) / 1e9,
            "load_average": {"start": load_start, "end": machine.load_average()},
            "same_round_peak": same_round, "results": results, "errors": errors}


def _speedups(results: List[Dict[str, object]], reference: str, key: str) -> None:
    """``row[key]`` = the ``reference`` configuration's median time at the row's batch over the
    row's (None where the reference was not measured)."""
    by_key = {(r["config"], r["batch"]): r for r in results}
    for row in results:
        ref = by_key.get((reference, row["batch"]))
        row[key] = ref["median_s"] / row["median_s"] if ref else None


# -- training step ----------------------------------------------------------------------------
def synthetic_batch(batch: int, image_size: int, seed: int = 0) -> Dict[str, tf.Tensor]:
    """A training batch of the pipeline's shapes and scales (spec §2, §3), from noise."""
    rng = np.random.default_rng(seed)
    return {"source_128": tf.constant(rng.normal(0, 60, (batch, image_size, image_size, 3)),
                                      tf.float32),
            "source_227": tf.constant(rng.normal(0, 60, (batch, 227, 227, 3)), tf.float32),
            "real": tf.constant(rng.uniform(-1, 1, (batch, image_size, image_size, 3)),
                                tf.float32),
            "target_group": tf.fill([batch], 1), "false_group": tf.fill([batch], 3)}


def make_trainer(config: Config, image_size: int, alexnet=None, d_output_channels: int = 512):
    """Fresh G and D (under the configuration's dtype policy) and a trainer; AlexNet may be
    shared between configurations of one dtype (it is frozen). ``d_output_channels``: the
    discriminator's last layer (``train_ipcgan.py --d_output_channels``; the release's 512)."""
    with precision.keras_policy(config.mixed_precision):
        generator = Generator()
        discriminator = Discriminator(output_channels=d_output_channels)
        if alexnet is None:
            alexnet = AlexNet()
        build_models(generator, discriminator, alexnet, image_size)
    trainer = IPCGANTrainer(generator, discriminator, alexnet, step_structure=config.step_structure,
                            jit_compile=config.xla, mixed_precision=config.mixed_precision)
    # Create the Adam slots now: a first step that creates them is traced twice (tf.function
    # retraces after creating variables), which doubles the warm-up (~13 s here) but does not
    # change the steady-state step that is timed.
    trainer.g_optimizer.build(generator.trainable_variables)
    trainer.d_optimizer.build(discriminator.trainable_variables)
    return trainer, alexnet


def train_steps(configs: Sequence[Config], batches: Sequence[int], image_size: int,
                warmup: int, repeats: int, peaks: Optional[Dict[str, dict]],
                same_round_peak: Optional[Dict[str, int]] = None, d_output_channels: int = 512):
    """Seconds per ``IPCGANTrainer.train_step`` on a fixed in-memory batch (no input pipeline).
    ``peaks`` and ``same_round_peak`` as for :func:`generator_inference`; ``d_output_channels``
    as for :func:`make_trainer` (the FLOP count follows it)."""
    fns, meta, trainers, alexnets = {}, {}, {}, {}
    for config in configs:
        trainer, alexnets[config.mixed_precision] = make_trainer(
            config, image_size, alexnets.get(config.mixed_precision), d_output_channels)
        trainers[config.name] = trainer
        for batch in batches:
            data = synthetic_batch(batch, image_size)
            key = f"{config.name}/b{batch}"
            fns[key] = lambda tr=trainer, d=data: tr.train_step(d)["d_loss"].numpy()
            meta[key] = (config, batch)
    errors = _first_calls(fns, meta)
    load_start = machine.load_average()
    times, same_round = _time_with_peak_ops(fns, configs, image_size, warmup, repeats,
                                            same_round_peak)
    results = []
    for key, ts in times.items():
        config, batch = meta[key]
        parts = flops.train_step_flops(image_size, batch, config.step_structure,
                                       output_channels=d_output_channels)
        t = median(ts)
        row = dict(config=config.name, step_structure=config.step_structure, xla=config.xla,
                   mixed_precision=config.mixed_precision, compute_dtype=config.compute_dtype,
                   batch=batch, images_per_s=batch / t, steps_per_s=1.0 / t,
                   flops=parts["total"], gflops=_gflops(parts["total"], t), **_summary(ts))
        peak_fractions(row, peaks, same_round and same_round["best"])
        results.append(row)
    _speedups(results, RELEASE.name, "speedup_vs_release")
    _speedups(results, DEFAULT.name, "speedup_vs_default")
    guard = getattr(next(iter(trainers.values())), "nan_guard", None) if trainers else None
    return {"image_size": image_size, "d_output_channels": d_output_channels, "nan_guard": guard,
            "load_average": {"start": load_start, "end": machine.load_average()},
            "same_round_peak": same_round,
            "flops_by_part_per_image": {
                s: flops.train_step_flops(image_size, 1, s, output_channels=d_output_channels)
                for s in ("reuse", "release")},
            "results": results, "errors": errors}


# -- input pipeline ---------------------------------------------------------------------------
def _supports_cache() -> bool:
    return "cache" in inspect.signature(pipeline.make_train_dataset).parameters


def _cached_train_dataset(list_dir: str, batch_size: int, image_size: int, seed: int = 0):
    """Fallback when ``make_train_dataset`` has no ``cache`` flag: the same batches, but each
    list's faces decoded and resized once, cached in memory, then shuffled and repeated."""
    from face_aging.data import lists
    age_groups = 5

    def image_ds(paths, loader, group_seed):
        ds = tf.data.Dataset.from_tensor_slices(paths)
        ds = ds.map(lambda p: loader(p, image_size), num_parallel_calls=tf.data.AUTOTUNE)
        ds = ds.cache().shuffle(len(paths), seed=group_seed).repeat()
        return ds.batch(batch_size, drop_remainder=True)

    def paths(list_path):
        return [os.path.join(list_dir, p) for p, _ in lists.read_image_list(list_path)]

    pairs = lists.read_label_pairs(os.path.join(list_dir, lists.LABEL_PAIR_LIST), age_groups)
    reals = [image_ds(paths(os.path.join(list_dir, lists.age_group_list("train", g))),
                      pipeline.load_real, seed + 1 + g) for g in range(age_groups)]
    source = image_ds(paths(os.path.join(list_dir, lists.TRAIN_LIST)), pipeline.load_source, seed)
    pair_ds = tf.data.Dataset.from_tensor_slices(
        (tf.constant([t for t, _ in pairs], tf.int64), tf.constant([f for _, f in pairs]))).repeat()
    real = tf.data.Dataset.choose_from_datasets(reals, pair_ds.map(lambda t, f: t))

    def to_batch(src, real_faces, pair):
        (s128, s227), (t, f) = src, pair
        return {"source_128": s128, "source_227": s227, "real": real_faces,
                "target_group": tf.fill([batch_size], tf.cast(t, tf.int32)),
                "false_group": tf.fill([batch_size], f)}

    return tf.data.Dataset.zip((source, real, pair_ds)).map(to_batch).prefetch(tf.data.AUTOTUNE)


def make_dataset(list_dir: str, batch_size: int, image_size: int, cache: bool):
    if not cache:
        return pipeline.make_train_dataset(list_dir, None, batch_size, image_size=image_size)
    if _supports_cache():
        return pipeline.make_train_dataset(list_dir, None, batch_size, image_size=image_size,
                                           cache=True)
    return _cached_train_dataset(list_dir, batch_size, image_size)


def input_pipeline(list_dir: str, n_images: int, jpeg_size: int, batch: int, image_size: int,
                   batches_per_repeat: int, warmup: int, repeats: int):
    """Training samples/s of ``make_train_dataset`` alone, without and with ``.cache()``.

    A sample is what one training image of a step needs: one source face (JPEG decode,
    resize to ``image_size`` and to 227) and one real face of the target group (JPEG
    decode, resize to ``image_size``), i.e. two decodes and three resizes.
    """
    results = []
    for cache in (False, True):
        iterator = iter(make_dataset(list_dir, batch, image_size, cache))
        # Warm-up: at least two passes over the data, so a cache is full before timing.
        warm_batches = max(warmup, 1) * batches_per_repeat + (2 * n_images // batch + 2 if cache else 0)
        for _ in range(warm_batches):
            next(iterator)["source_128"].numpy()
        times = []
        for _ in range(max(repeats, 1)):
            t0 = time.perf_counter()
            for _ in range(batches_per_repeat):
                next(iterator)["source_128"].numpy()
            times.append(time.perf_counter() - t0)
        t = median(times)
        results.append(dict(cache=cache, batch=batch, batches_per_repeat=batches_per_repeat,
                            images_per_s=batches_per_repeat * batch / t,
                            decodes_per_s=(0 if cache else 2) * batches_per_repeat * batch / t,
                            **_summary(times)))
        del iterator
    return {"jpeg_size": jpeg_size, "n_images": n_images, "image_size": image_size,
            "cache_implementation": ("make_train_dataset(cache=True)" if _supports_cache()
                                     else "benchmarks.sections._cached_train_dataset"),
            "results": results}


# -- peak memory ------------------------------------------------------------------------------
class PeakMemory:
    """Peak resident memory of a training run (pipeline + models + ``steps`` steps) in a fresh
    subprocess: its own ``ru_maxrss`` and the parent's ``RUSAGE_CHILDREN`` view.

    ``start()`` launches the child; ``result()`` waits for it. The full benchmark runs it
    alone, after the timed sections; ``--quick`` overlaps it with them to save wall time.
    """

    def __init__(self, list_dir: str, batch: int, image_size: int, steps: int,
                 config: Config = DEFAULT, timeout: float = 3600.0):
        self.list_dir, self.batch, self.image_size, self.steps = list_dir, batch, image_size, steps
        self.config, self.timeout, self.proc = config, timeout, None

    def start(self) -> "PeakMemory":
        config = self.config
        cmd = [sys.executable, "-m", "benchmarks.memory_child", f"--list_dir={self.list_dir}",
               f"--batch={self.batch}", f"--image_size={self.image_size}", f"--steps={self.steps}",
               f"--step_structure={config.step_structure}"]
        if config.xla:
            cmd.append("--xla")
        cmd.append(f"--mixed_precision={config.mixed_precision}")
        env = dict(os.environ, PYTHONPATH=os.pathsep.join(
            [REPO] + [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]))
        self.proc = subprocess.Popen(cmd, cwd=REPO, env=env, stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE, text=True)
        return self

    def result(self) -> Dict[str, object]:
        try:
            stdout, stderr = self.proc.communicate(timeout=self.timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.communicate()
            raise
        if self.proc.returncode != 0:
            raise RuntimeError(f"memory child failed ({self.proc.returncode}): {stderr[-2000:]}")
        child = json.loads(stdout.strip().splitlines()[-1])
        children = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
        return dict(config=self.config.name, batch=self.batch, image_size=self.image_size,
                    steps=self.steps, peak_rss_mb=child["maxrss_kb"] / 1024.0,
                    rss_after_build_mb=child["maxrss_after_build_kb"] / 1024.0,
                    rss_after_dataset_mb=child["maxrss_after_dataset_kb"] / 1024.0,
                    rusage_children_mb=children / 1024.0, child_seconds=child["seconds"])
