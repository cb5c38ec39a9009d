"""The machine's practical peak per dtype: a large matmul and the two convolutions that carry
most of the networks' FLOPs, each in float32, bfloat16 and float16, interleaved.

Ops timed (a multiply-add = 2 FLOPs, benchmarks/flops.py):

- ``matmul``: ``tf.matmul`` of two n x n matrices (2 n^3 FLOPs); in float32 also numpy's
  (OpenBLAS), as the previous peak was.
- ``conv_dis_4``: ``tf.nn.conv2d`` of the discriminator's ``dis_4`` layer (4x4, 512 -> 512
  channels, stride 1, SAME, at image_size/8), the largest layer of the training step.
- ``conv_g_residual``: a generator residual conv (3x3, 128 -> 128, stride 1, SAME, at
  image_size/4); the 12 of them are 76% of the generator's FLOPs.

The **peak of a dtype** is the best GFLOP/s of any op in that dtype, each op taken at its
**fastest** timing (what the machine was seen to do); every figure of the run ("fraction of
peak") is its median over the peak of the dtype it computes in. A float32 matmul alone
understates a machine whose oneDNN convolutions run faster than its matmul. The peak is not a
median because a 0.3-s op catches a shared machine's passing slowdowns that a 10-s training
step averages out: one round here timed ``dis_4`` at 0.54 s between 0.31 and 0.29 s, and the
median of three such timings moved the peak by 7 % (docs/BENCHMARKS.md, run J).
"""
from __future__ import annotations

from typing import Dict, Iterable, Mapping, Optional

import numpy as np
import tensorflow as tf

from benchmarks import flops
from benchmarks.timing import median, time_interleaved

DTYPES = ("float32", "bfloat16", "float16")


def conv_layers(image_size: int):
    """The two convolution shapes timed, as ``flops.Layer`` records of the models' tables."""
    d = {layer.name: layer for layer in flops.discriminator_layers(image_size)}
    g = {layer.name: layer for layer in flops.generator_layers(image_size)}
    return {"conv_dis_4": d["dis_4"], "conv_g_residual": g["unit_0/sub1/conv1"]}


def fraction_of_peak(gflops: Optional[float], peaks: Mapping[str, Mapping[str, object]],
                     dtype: str) -> Optional[float]:
    """``gflops`` over the best GFLOP/s measured in ``dtype`` (``peaks[dtype]["gflops"]``);
    None when either is unknown."""
    best = (peaks.get(dtype) or {}).get("gflops")
    if gflops is None or not best:
        return None
    return gflops / best


def best_by_dtype(rows: Iterable[Mapping[str, object]]) -> Dict[str, Dict[str, object]]:
    """dtype -> the fastest row of that dtype at its fastest timing: ``{"gflops" (from the
    row's ``best_gflops``, or ``gflops`` if it has none), "median_gflops", "op", "library"}``."""
    best: Dict[str, Dict[str, object]] = {}
    for row in rows:
        rate = row.get("best_gflops", row["gflops"])
        current = best.get(row["dtype"])
        if current is None or rate > current["gflops"]:
            best[row["dtype"]] = {"gflops": rate, "median_gflops": row["gflops"],
                                  "op": row["op"], "library": row["library"]}
    return best


def _tail(y):
    # One element of the result: the op runs in full, but no large tensor is copied to numpy.
    return y[(0,) * len(y.shape)]


def timed_ops(matmul_n: int, image_size: int, batch: int, dtypes=DTYPES, prefix: str = ""):
    """The peak's ops as ready-to-time callables, each traced and run once (untimed).

    Returns ``(fns, meta)``: key -> callable and key -> ``{"op", "library", "dtype", "shape",
    "flops"}``; keys are ``PREFIX + op/library/dtype``. numpy's matmul is included when
    ``float32`` is among ``dtypes``.
    """
    rng = np.random.default_rng(0)
    fns, meta = {}, {}
    a = rng.standard_normal((matmul_n, matmul_n), dtype=np.float32)
    b = rng.standard_normal((matmul_n, matmul_n), dtype=np.float32)
    mm_shape, mm_flops = [matmul_n, matmul_n, matmul_n], 2.0 * matmul_n ** 3
    if "float32" in dtypes:
        fns[prefix + "matmul/numpy/float32"] = lambda: float(np.matmul(a, b)[0, 0])
        meta[prefix + "matmul/numpy/float32"] = dict(op="matmul", library="numpy",
                                                     dtype="float32", shape=mm_shape,
                                                     flops=mm_flops)
    convs = conv_layers(image_size)
    conv_inputs = {}
    for name, layer in convs.items():
        x = rng.standard_normal((batch, layer.out_h, layer.out_w, layer.in_channels),
                                dtype=np.float32)
        k = rng.standard_normal((layer.kernel, layer.kernel, layer.in_channels,
                                 layer.out_channels), dtype=np.float32) * 0.05
        conv_inputs[name] = (x, k)
    # One tf.function per op, traced once per dtype (the tensors are arguments, not captured
    # constants, so nothing can be folded away).
    matmul_fn = tf.function(lambda x, y: _tail(tf.matmul(x, y)))
    conv_fns = {name: tf.function(lambda x, k: _tail(tf.nn.conv2d(x, k, 1, "SAME")))
                for name in convs}
    for dtype in dtypes:
        ta, tb = tf.cast(a, dtype), tf.cast(b, dtype)
        key = f"{prefix}matmul/tensorflow/{dtype}"
        fns[key] = lambda x=ta, y=tb: matmul_fn(x, y).numpy()
        meta[key] = dict(op="matmul", library="tensorflow", dtype=dtype, shape=mm_shape,
                         flops=mm_flops)
        for name, layer in convs.items():
            x, k = (tf.cast(v, dtype) for v in conv_inputs[name])
            key = f"{prefix}{name}/tensorflow/{dtype}"
            fns[key] = lambda fn=conv_fns[name], x=x, k=k: fn(x, k).numpy()
            meta[key] = dict(op=name, library="tensorflow", dtype=dtype,
                             shape=dict(batch=batch, height=layer.out_h, width=layer.out_w,
                                        kernel=layer.kernel, in_channels=layer.in_channels,
                                        out_channels=layer.out_channels, stride=1,
                                        padding="SAME"),
                             flops=float(flops.forward_flops([layer], batch)))
    logger, level = tf.get_logger(), tf.get_logger().level
    logger.setLevel("ERROR")  # each op is traced once per dtype, on purpose: no retracing warning
    try:
        for fn in fns.values():  # trace each tf.function once, untimed
            fn()
    finally:
        logger.setLevel(level)
    return fns, meta


def summarise(times: Mapping[str, list], meta: Mapping[str, dict]):
    """Rows (median; GFLOP/s at the median and at the fastest timing; the median's fraction
    of its dtype's peak) and the peak per dtype (:func:`best_by_dtype`) of timed peak ops."""
    rows = []
    for key, ts in times.items():
        t, fastest = median(ts), float(min(ts))
        rows.append(dict(meta[key], median_s=t, min_s=fastest, times_s=[float(v) for v in ts],
                         gflops=meta[key]["flops"] / t / 1e9,
                         best_gflops=meta[key]["flops"] / fastest / 1e9))
    best = best_by_dtype(rows)
    for row in rows:
        row["fraction_of_peak"] = fraction_of_peak(row["gflops"], best, row["dtype"])
    return rows, best


def measure(matmul_n: int, image_size: int, batch: int, warmup: int, repeats: int,
            dtypes=DTYPES) -> Dict[str, object]:
    """Times every op in every dtype, interleaved (benchmarks.timing); returns
    ``{"rows": [...], "best": {dtype: ...}, ...}`` with each row's ``fraction_of_peak``."""
    fns, meta = timed_ops(matmul_n, image_size, batch, dtypes)
    rows, best = summarise(time_interleaved(fns, max(warmup - 1, 0), repeats), meta)
    return {"matmul_n": matmul_n, "image_size": image_size, "batch": batch,
            "dtypes": list(dtypes), "rows": rows, "best": best}


def matmul_view(peak: Mapping[str, object]) -> Dict[str, object]:
    """The float32 matmul figures alone, in the layout of the benchmark's old ``matmul``
    section (numpy vs TF, the faster one as ``peak_gflops``), for comparison with older
    results files."""
    out: Dict[str, object] = {"n": peak["matmul_n"], "flops": 2.0 * peak["matmul_n"] ** 3}
    for row in peak["rows"]:
        if row["op"] == "matmul" and row["dtype"] == "float32":
            out[row["library"]] = {k: row[k] for k in ("median_s", "min_s", "times_s", "gflops")}
    source = max(("numpy", "tensorflow"), key=lambda k: out[k]["gflops"])
    out["peak_gflops"], out["peak_source"] = out[source]["gflops"], source
    return out
