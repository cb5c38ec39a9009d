"""Mixed precision, and a MirroredStrategy step over two logical CPU devices vs one device."""
import json
import os
import socket
import subprocess
import sys

import keras
import numpy as np
import pytest
import tensorflow as tf

from conftest import REPO, make_list_dataset
from face_aging.models import AlexNet, Discriminator, Generator, build_models
from face_aging.training import IPCGANTrainer

S = 16


def _batch(b=2, seed=0):
    rng = np.random.default_rng(seed)
    return {"source_128": tf.constant(rng.uniform(-124, 151, (b, S, S, 3)), tf.float32),
            "source_227": tf.constant(rng.uniform(-124, 151, (b, 227, 227, 3)), tf.float32),
            "real": tf.constant(rng.uniform(-1, 1, (b, S, S, 3)), tf.float32),
            "target_group": tf.fill([b], 2), "false_group": tf.fill([b], 0)}


def _mixed_trainer():
    keras.mixed_precision.set_global_policy("mixed_float16")
    try:
        g, d, a = Generator(), Discriminator(), AlexNet()
        build_models(g, d, a, image_size=S)
    finally:
        keras.mixed_precision.set_global_policy("float32")
    return IPCGANTrainer(g, d, a, mixed_precision=True)


def test_mixed_precision_step_is_finite_float32_and_its_loss_scale_checkpoints(tmp_path):
    trainer = _mixed_trainer()
    assert trainer.generator.compute_dtype == "float16"
    logged = trainer.train_step(_batch())
    assert all(v.dtype == tf.float32 for k, v in logged.items() if k != "finite")
    assert all(np.isfinite(float(v)) for k, v in logged.items() if k != "finite")
    assert bool(logged["finite"])
    assert trainer.generator.bn1.moving_mean.dtype == "float32"
    fake = trainer.generator((_batch()["source_128"], tf.one_hot([1, 2], 5)))
    assert fake.dtype == tf.float32
    scale = trainer.g_optimizer.dynamic_scale
    scale.assign(1024.0)
    trainer.g_optimizer.step_counter.assign(7)
    prefix = tf.train.Checkpoint(g_optimizer=trainer.g_optimizer).write(str(tmp_path / "ck"))
    other = _mixed_trainer()
    tf.train.Checkpoint(g_optimizer=other.g_optimizer).read(prefix).assert_consumed()
    assert float(other.g_optimizer.dynamic_scale) == 1024.0
    assert int(other.g_optimizer.step_counter) == 7


MIRRORED_SCRIPT = r"""
import json, numpy as np, tensorflow as tf
cpus = tf.config.list_physical_devices("CPU")
tf.config.set_logical_device_configuration(cpus[0], [tf.config.LogicalDeviceConfiguration()] * 2)
import keras
from face_aging.models import Generator, Discriminator, AlexNet, build_models
from face_aging.training import IPCGANTrainer
S, B = 16, 4
keras.utils.set_random_seed(0)
g1, d1, a = Generator(), Discriminator(), AlexNet()
build_models(g1, d1, a, image_size=S)
one = IPCGANTrainer(g1, d1, a, step_structure="release")
strategy = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
with strategy.scope():
    g2, d2 = Generator(synchronized_bn=True), Discriminator(synchronized_bn=True)
    build_models(g2, d2, image_size=S)
    for x, y in zip(g2.variables + d2.variables, g1.variables + d1.variables):
        x.assign(y)
    two = IPCGANTrainer(g2, d2, a, strategy=strategy)
rng = np.random.default_rng(0)
batch = {"source_128": rng.uniform(-124, 151, (B, S, S, 3)).astype("f4"),
         "source_227": rng.uniform(-124, 151, (B, 227, 227, 3)).astype("f4"),
         "real": rng.uniform(-1, 1, (B, S, S, 3)).astype("f4"),
         "target_group": np.full(B, 3, "i4"), "false_group": np.full(B, 1, "i4")}
l1 = one.train_step({k: tf.constant(v) for k, v in batch.items()})
dist = next(iter(strategy.experimental_distribute_dataset(tf.data.Dataset.from_tensors(batch))))
l2 = two.train_step(dist)
diffs = np.concatenate([np.abs(x.numpy() - y.numpy()).ravel()
                        for x, y in zip(g1.trainable_variables + d1.trainable_variables,
                                        g2.trainable_variables + d2.trainable_variables)])
stats = np.abs(g1.bn3.moving_variance.numpy() - g2.bn3.moving_variance.numpy()).max()
print(json.dumps({"one": {k: float(v) for k, v in l1.items()},
                  "two": {k: float(v) for k, v in l2.items()},
                  "replicas": strategy.num_replicas_in_sync,
                  "max_diff": float(diffs.max()), "share_within_1e-5": float((diffs < 1e-5).mean()),
                  "bn_stat_diff": float(stats)}))
"""


def test_mirrored_step_on_two_logical_cpus_equals_one_device():
    """Global batch 4 as 2 x 2 with synchronized batch norm vs 4 on one device.

    Tolerance: losses to 1e-3 relative; weights: Adam's first update is about
    ``lr * sign(grad)``, so a parameter whose gradient is float noise may move the other
    way (up to 2 * lr = 2e-3): 99% of weights must agree to 1e-5, all to 2.1e-3.
    """
    result = subprocess.run([sys.executable, "-c", MIRRORED_SCRIPT], cwd=REPO,
                            capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    out = json.loads(result.stdout.strip().splitlines()[-1])
    assert out["replicas"] == 2
    for key in ("d_loss", "g_loss", "fea_loss", "age_loss"):
        assert out["two"][key] == pytest.approx(out["one"][key], rel=1e-3), key
    assert out["share_within_1e-5"] > 0.99
    assert out["max_diff"] < 2.1e-3
    assert out["bn_stat_diff"] < 1e-3  # moving statistics from the global batch


# --- train_ipcgan.py --distribution ------------------------------------------------------

def _train_cli(args, env_extra=None, timeout=600):
    env = {k: v for k, v in os.environ.items() if k != "TF_CONFIG"}
    env.update(TF_CPP_MIN_LOG_LEVEL="2", **(env_extra or {}))
    return subprocess.Popen([sys.executable, "train_ipcgan.py", *args], cwd=REPO, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _common(dataset, ckpt, batch):
    return [f"--list_dir={dataset}", f"--batch_size={batch}", "--image_size=16",
            f"--checkpoint_dir={ckpt}", f"--sample_dir={ckpt}/samples", "--log_interval=1",
            "--save_interval=2", "--sample_interval=100", "--allow_random_alexnet"]


def _finish(proc, timeout=600):
    out, err = proc.communicate(timeout=timeout)
    return proc.returncode, out, err


def test_mirrored_cli_on_two_logical_cpus_trains_and_saves(tiny_dataset, tmp_path):
    """(Resuming a distributed run is tested with two workers below.)"""
    ckpt = tmp_path / "ckpt"
    args = _common(tiny_dataset, ckpt, 4) + ["--distribution=mirrored",
                                             "--logical_cpu_devices=2"]
    code, out, err = _finish(_train_cli(args + ["--max_steps=2"]))
    assert code == 0, err[-3000:]
    assert "step 2/2" in out and "one device found" not in out
    assert tf.train.latest_checkpoint(str(ckpt)).endswith("ckpt-2")
    names = [name for name, _ in tf.train.list_variables(tf.train.latest_checkpoint(str(ckpt)))]
    assert any("data_iterator" in n for n in names)  # the plain, checkpointable iterator


def test_mirrored_cli_rejects_a_global_batch_that_does_not_split(tiny_dataset, tmp_path):
    args = _common(tiny_dataset, tmp_path / "ckpt", 3) + [
        "--distribution=mirrored", "--logical_cpu_devices=2", "--max_steps=1"]
    code, out, err = _finish(_train_cli(args))
    assert code == 1
    assert err.strip().splitlines()[-1] == ("error: batch_size 3 (the global batch) does not "
                                            "divide over 2 replicas")


def test_multi_worker_without_tf_config_is_one_line(tiny_dataset, tmp_path):
    args = _common(tiny_dataset, tmp_path / "ckpt", 4) + ["--distribution=multi_worker",
                                                          "--max_steps=1"]
    code, out, err = _finish(_train_cli(args))
    assert code == 1
    assert "needs TF_CONFIG" in err.strip().splitlines()[-1]
    assert "Traceback" not in err


def _free_ports(n):
    socks = [socket.socket() for _ in range(n)]
    for s in socks:
        s.bind(("localhost", 0))
    ports = [s.getsockname()[1] for s in socks]
    for s in socks:
        s.close()
    return ports


def _run_workers(args, ports):
    cluster = {"worker": [f"localhost:{p}" for p in ports]}
    procs = [_train_cli(args, {"TF_CONFIG": json.dumps({"cluster": cluster,
                                                         "task": {"type": "worker",
                                                                  "index": i}})})
             for i in range(len(ports))]
    return [_finish(p) for p in procs]


def test_two_workers_on_loopback_train_leave_one_checkpoint_and_resume(tmp_path):
    """MultiWorkerMirroredStrategy, two processes on loopback ports: global batch 4 (2 per
    worker, disjoint shards of the faces), checkpoints written once (by worker 0, the chief);
    worker 1 keeps only its input position. Restarting both resumes at the saved step."""
    dataset = make_list_dataset(tmp_path / "data", per_group=4)
    ckpt = tmp_path / "ckpt"
    args = _common(dataset, ckpt, 4) + ["--distribution=multi_worker"]
    results = _run_workers(args + ["--max_steps=3"], _free_ports(2))
    for code, out, err in results:
        assert code == 0, err[-3000:]
    chief_out = results[0][1]
    assert "step 3/3" in chief_out and "saved" in chief_out
    losses = [float(line.split("d_loss ")[1].split()[0]) for line in chief_out.splitlines()
              if line.startswith("step ")]
    assert len(losses) == 3 and all(np.isfinite(losses))
    index_files = sorted(p.name for p in ckpt.glob("*.index"))
    assert index_files == ["ckpt-2.index", "ckpt-3.index"]  # once, by the chief
    assert not list(ckpt.glob(".worker_*"))  # the other worker's scratch copies are gone
    assert sorted(p.name for p in (ckpt / "input_worker_1").glob("*.index")) == [
        "input-2.index", "input-3.index"]
    assert (ckpt / "training_options.json").exists()

    results = _run_workers(args + ["--max_steps=4"], _free_ports(2))
    for code, out, err in results:
        assert code == 0, err[-3000:]
        assert "resumed from" in out and "at step 3" in out
    assert "step 4/4" in results[0][1]
    assert tf.train.latest_checkpoint(str(ckpt)).endswith("ckpt-4")
