"""Several devices and hosts for ``train_ipcgan.py --distribution=...`` (``tf.distribute``).

- ``mirrored``: ``tf.distribute.MirroredStrategy`` over all local GPUs (or the given
  devices; ``logical_cpu_devices`` splits the CPU for trying it without GPUs).
- ``multi_worker``: ``tf.distribute.MultiWorkerMirroredStrategy``, cluster from ``TF_CONFIG``.

Batch semantics: ``batch_size`` is the *global* batch. Each worker runs its own input
pipeline over a disjoint shard of the faces, batched to its share of the global batch, and
every worker follows the same label-pair sequence (one (target, false) pair per global
batch, as the release's single GPU). Within a worker the batch is split over its local
replicas with ``distribute_values_from_function``, which keeps the input iterator a plain,
checkpointable ``tf.data`` iterator (``tf.distribute``'s own distributed iterators cannot be
checkpointed), so a distributed run resumes at the exact batch too.

Checkpoints: every worker takes part in a save (reading synchronized variables may need
collectives), but only the chief's lands in ``checkpoint_dir``; the others write to a
per-worker scratch folder that is deleted at once (the pattern of the TF multi-worker guide).
"""
from __future__ import annotations

import json
import os
import shutil
from typing import Dict, Optional

import tensorflow as tf

from face_aging.engine.options import DISTRIBUTIONS


class DistributionError(ValueError):
    """The requested distribution cannot be set up (one line saying why)."""


def split_cpu(num_devices: int) -> None:
    """Splits the first physical CPU into ``num_devices`` logical devices (before TF starts)."""
    if num_devices <= 1:
        return
    cpu = tf.config.list_physical_devices("CPU")[0]
    try:
        tf.config.set_logical_device_configuration(
            cpu, [tf.config.LogicalDeviceConfiguration()] * num_devices)
    except RuntimeError as e:
        raise DistributionError(f"cannot split the CPU into {num_devices} devices after "
                                f"TensorFlow has started ({e})") from None


def make_strategy(distribution: str, logical_cpu_devices: int = 0
                  ) -> Optional[tf.distribute.Strategy]:
    """The strategy for ``distribution`` (None for ``"none"``); call before any other TF work."""
    if distribution not in DISTRIBUTIONS:
        raise DistributionError(f"distribution {distribution!r}: choose from {DISTRIBUTIONS}")
    if distribution == "none":
        return None
    if distribution == "mirrored":
        split_cpu(logical_cpu_devices)
        devices = None
        if logical_cpu_devices > 1 and not tf.config.list_physical_devices("GPU"):
            devices = [d.name for d in tf.config.list_logical_devices("CPU")]
        return tf.distribute.MirroredStrategy(devices)
    tf_config = os.environ.get("TF_CONFIG")
    if not tf_config:
        raise DistributionError("--distribution=multi_worker needs TF_CONFIG (the cluster and "
                                "this task), see the README's 'Several GPUs and hosts'")
    try:
        task = json.loads(tf_config)["task"]
        task["type"], int(task["index"])
    except (ValueError, KeyError, TypeError) as e:
        raise DistributionError(f"TF_CONFIG is not a valid cluster description ({e!r})") from None
    split_cpu(logical_cpu_devices)
    return tf.distribute.MultiWorkerMirroredStrategy()


def worker_info(strategy: Optional[tf.distribute.Strategy]) -> Dict[str, int]:
    """``num_workers``, ``worker_index``, ``local_replicas``, ``is_chief`` of this process."""
    if strategy is None:
        return {"num_workers": 1, "worker_index": 0, "local_replicas": 1, "is_chief": True}
    resolver = getattr(strategy, "cluster_resolver", None)
    local = len(strategy.extended.worker_devices)
    if resolver is None or not resolver.cluster_spec().as_dict():
        return {"num_workers": 1, "worker_index": 0, "local_replicas": local, "is_chief": True}
    workers = resolver.cluster_spec().as_dict()
    task_type, task_id = resolver.task_type, int(resolver.task_id)
    num_workers = len(workers.get("worker", [])) + len(workers.get("chief", []))
    has_chief = "chief" in workers
    # Workers are numbered chief first; without a chief, worker 0 is the chief.
    index = task_id + (1 if has_chief and task_type == "worker" else 0)
    is_chief = task_type == "chief" or (not has_chief and task_type == "worker" and task_id == 0)
    return {"num_workers": num_workers, "worker_index": index, "local_replicas": local,
            "is_chief": is_chief}


def split_batch(strategy: tf.distribute.Strategy, batch: Dict[str, tf.Tensor],
                local_replicas: int):
    """This worker's batch -> a per-replica value: local replica r takes rows r*n..(r+1)*n-1."""
    rows = int(batch["source_128"].shape[0])
    if rows % local_replicas:
        raise DistributionError(f"a worker's batch of {rows} does not split over "
                                f"{local_replicas} replicas")
    per = rows // local_replicas

    def value_fn(context):
        r = context.replica_id_in_sync_group % local_replicas
        return {k: v[r * per:(r + 1) * per] for k, v in batch.items()}

    return strategy.experimental_distribute_values_from_function(value_fn)


def any_worker(strategy: Optional[tf.distribute.Strategy], flag: bool) -> bool:
    """True if ``flag`` is true on any worker (a collective: every worker must call it)."""
    if strategy is None or worker_info(strategy)["num_workers"] == 1:
        return flag
    value = strategy.run(lambda: tf.constant(1.0 if flag else 0.0))
    return float(strategy.reduce(tf.distribute.ReduceOp.SUM, value, axis=None)) > 0


def scratch_dir(checkpoint_dir: str, worker_index: int) -> str:
    """Where a non-chief worker's (immediately deleted) checkpoint copy goes."""
    return os.path.join(checkpoint_dir, f".worker_{worker_index}_scratch")


def remove_scratch(path: str) -> None:
    shutil.rmtree(path, ignore_errors=True)
