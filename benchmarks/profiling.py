"""TensorBoard profiler trace of the training step and a text summary of its top ops.

The trace is written by ``tf.profiler.experimental.start/stop`` (open it with TensorBoard's
profile plugin). The summary is parsed from the trace's ``*.xplane.pb``: every event on the
host plane's TF executor threads whose name is ``op_name:OpType`` is one op execution; its
wall duration is summed per op type and per op name. Ops run concurrently on TF's inter-op
threads, so the op times add up to more than the step's wall time; the ``share`` column is
of the summed op time.
"""
from __future__ import annotations

import collections
import glob
import os
from typing import Dict, List

import tensorflow as tf


def _xplane_pb2():
    try:
        from tensorflow.tsl.profiler.protobuf import xplane_pb2
    except ImportError:  # other TF layouts
        from tsl.profiler.protobuf import xplane_pb2  # type: ignore
    return xplane_pb2


def op_times(trace_dir: str) -> Dict[str, Dict[str, float]]:
    """Sums op durations (seconds) of the newest trace under ``trace_dir``:
    ``{"by_type": {OpType: s}, "by_name": {op_name: s}, "count_by_type": {OpType: n}}``."""
    paths = sorted(glob.glob(os.path.join(trace_dir, "**", "*.xplane.pb"), recursive=True),
                   key=os.path.getmtime)
    if not paths:
        raise FileNotFoundError(f"no *.xplane.pb under {trace_dir}")
    space = _xplane_pb2().XSpace()
    with open(paths[-1], "rb") as f:
        space.ParseFromString(f.read())
    by_type, by_name, count = collections.Counter(), collections.Counter(), collections.Counter()
    for plane in space.planes:
        if not plane.name.startswith("/host:"):
            continue
        for line in plane.lines:
            if line.name == "python" or "Eigen" in line.name:
                continue
            for event in line.events:
                name = plane.event_metadata[event.metadata_id].name
                if ":" not in name or "::" in name:
                    continue  # executor bookkeeping, not an op
                op_name, op_type = name.rsplit(":", 1)
                seconds = event.duration_ps / 1e12
                by_type[op_type] += seconds
                by_name[op_name] += seconds
                count[op_type] += 1
    return {"by_type": dict(by_type), "by_name": dict(by_name), "count_by_type": dict(count),
            "trace_file": paths[-1]}


def summarise(times: Dict[str, Dict[str, float]], steps: int, top: int = 15) -> Dict[str, object]:
    total = sum(times["by_type"].values()) or 1.0

    def table(d: Dict[str, float]) -> List[Dict[str, object]]:
        rows = sorted(d.items(), key=lambda kv: -kv[1])[:top]
        return [{"op": k, "seconds_per_step": v / steps, "share": v / total} for k, v in rows]

    return {"steps": steps, "op_seconds_per_step": total / steps,
            "top_op_types": table(times["by_type"]), "top_ops": table(times["by_name"]),
            "trace_file": times["trace_file"]}


def format_summary(summary: Dict[str, object]) -> str:
    lines = [f"summed op time per step: {summary['op_seconds_per_step']:.3f} s "
             f"(ops overlap on inter-op threads; share = of summed op time)", "",
             "top op types:"]
    for row in summary["top_op_types"]:
        lines.append(f"  {row['seconds_per_step']:9.3f} s  {100 * row['share']:5.1f}%  {row['op']}")
    lines += ["", "top ops:"]
    for row in summary["top_ops"]:
        lines.append(f"  {row['seconds_per_step']:9.3f} s  {100 * row['share']:5.1f}%  {row['op']}")
    return "\n".join(lines) + "\n"


def profile_train_step(trainer, batch, profile_dir: str, steps: int = 2) -> Dict[str, object]:
    """Traces ``steps`` training steps (after one untraced warm-up) into ``profile_dir``,
    writes ``top_ops.txt`` there and returns the summary."""
    trainer.train_step(batch)["d_loss"].numpy()
    os.makedirs(profile_dir, exist_ok=True)
    tf.profiler.experimental.start(profile_dir)
    try:
        for _ in range(steps):
            trainer.train_step(batch)["d_loss"].numpy()
    finally:
        tf.profiler.experimental.stop()
    summary = summarise(op_times(profile_dir), steps)
    text = format_summary(summary)
    with open(os.path.join(profile_dir, "top_ops.txt"), "w") as f:
        f.write(text)
    summary["text"] = text
    return summary
