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

from conftest import REPO, LoggedProcess, make_list_dataset
from face_aging import precision
from face_aging.models import AlexNet, Discriminator, Generator, build_models
from face_aging.training import IPCGANTrainer

S = 16


def _batch(b=2, seed=0):
    rng = np.random.default_rng(seed)
    return {"source_128": tf.constant(rng.uniform(-124, 151, (b, S, S, 3)), tf.float32),
            "source_227": tf.constant(rng.uniform(-124, 151, (b, 227, 227, 3)), tf.float32),
            "real": tf.constant(rng.uniform(-1, 1, (b, S, S, 3)), tf.float32),
            "target_group": tf.fill([b], 2), "false_group": tf.fill([b], 0)}


# --- float16 (Keras mixed_float16 with dynamic loss scaling) ------------------------------
# float16 compute is emulated on a CPU (slow: one step of these models takes tens of seconds on
# a loaded 2-core machine), so one trainer goes through every float16 claim in a few steps.

def _float16_and_float32_trainers(seed=0):
    """Two trainers on the same initial weights, float32 and float16."""
    built = {}
    for mode in ("none", "float16"):
        keras.utils.set_random_seed(seed)
        with precision.keras_policy(mode):
            built[mode] = Generator(), Discriminator(), AlexNet()
            build_models(*built[mode], image_size=S)
    for ours, theirs in zip(built["float16"], built["none"]):
        for x, y in zip(ours.variables, theirs.variables):
            x.assign(y)
    return (IPCGANTrainer(*built["none"], mixed_precision="none"),
            IPCGANTrainer(*built["float16"], mixed_precision="float16"))


def _trainable(trainer):
    return trainer.generator.trainable_variables + trainer.discriminator.trainable_variables


def _moments(trainer, name):
    optimizer = getattr(trainer, f"{name[0]}_optimizer")
    inner = getattr(optimizer, "inner_optimizer", optimizer)  # inside the loss scaling
    model = trainer.generator if name == "g" else trainer.discriminator
    return np.concatenate([inner._momentums[inner._get_variable_index(v)].numpy().ravel()
                           for v in model.trainable_variables])


def test_float16_skips_an_overflowing_step_then_matches_float32_and_checkpoints_its_scale(
        tmp_path):
    """Dynamic loss scaling, then one applied step against float32 from the same weights.

    1. At a loss scale of 2**40 the scaled gradients overflow float16 (max 65504): the step is
       not applied (no weight or Adam moment moves, the NaN guard sees nothing wrong) and each
       optimizer halves its scale. (The default 2**15 already overflows on these models' first
       step: a float16 run starts by skipping a few steps.)
    2. At 2**6 the step is applied, and matches float32's first step. float16 keeps 11 bits
       (relative rounding 2**-11 = 0.05 %). Measured: d, fea and age losses within 1.3e-4 of
       float32's, g_loss (through the just-updated D, whose Adam step moves every weight by
       about lr whatever its gradient, so noise-level gradients flip) within 2.1e-3; D's Adam
       first moment within 1.2 % of float32's, G's within 18 % (its gradients pass G's batch
       norms and AlexNet in float16, and small ones underflow); 98.7 % of the weights within
       1e-5. Tolerances: d, fea, age losses 2e-3, g_loss 1e-2, moments 5 % (D) and 35 % (G;
       an unscaled or dropped loss is 100 % or more), weights as the two-replica test below.
    3. After ``dynamic_growth_steps`` finite steps the scale doubles.
    Logged losses and outputs are float32, batch-norm statistics stay float32, and the scale
    and its step counter are checkpointed.
    """
    t32, t16 = _float16_and_float32_trainers()
    assert t16.loss_scaling and t16.generator.compute_dtype == "float16"
    assert t16.generator.bn1.moving_mean.dtype == "float32"
    g, d = t16.g_optimizer, t16.d_optimizer
    batch = _batch()

    for optimizer in (g, d):
        optimizer.dynamic_scale.assign(2.0 ** 40)
    before = [v.numpy().copy() for v in _trainable(t16)]
    out = t16.train_step(batch)
    assert bool(out["finite"])
    for v, value in zip(_trainable(t16), before):
        np.testing.assert_array_equal(v.numpy(), value, err_msg=v.path)
    for optimizer in (g, d):
        assert float(optimizer.dynamic_scale) == 2.0 ** 39 and int(optimizer.step_counter) == 0
        assert int(optimizer.iterations) == 0
    assert not np.any(_moments(t16, "g")) and not np.any(_moments(t16, "d"))

    for optimizer in (g, d):
        optimizer.dynamic_scale.assign(2.0 ** 6)
    out32 = {k: float(v) for k, v in t32.train_step(batch).items()}
    logged = t16.train_step(batch)
    assert all(v.dtype == tf.float32 for k, v in logged.items() if k != "finite")
    out16 = {k: float(v) for k, v in logged.items()}
    assert out16.pop("finite") == 1.0
    for name in ("d_loss", "fea_loss", "age_loss"):
        assert out16[name] == pytest.approx(out32[name], rel=2e-3), name
    assert out16["g_loss"] == pytest.approx(out32["g_loss"], rel=1e-2)
    for optimizer in (g, d):
        assert float(optimizer.dynamic_scale) == 2.0 ** 6 and int(optimizer.step_counter) == 1
        assert int(optimizer.iterations) == 1
    for name, tolerance in (("d", 0.05), ("g", 0.35)):
        m16, m32 = _moments(t16, name), _moments(t32, name)
        assert np.linalg.norm(m16 - m32) / np.linalg.norm(m32) < tolerance, name
    diffs = np.concatenate([np.abs(x.numpy() - y.numpy()).ravel()
                            for x, y in zip(_trainable(t16), _trainable(t32))])
    assert (diffs < 1e-5).mean() > 0.98 and diffs.max() < 2.1e-3
    assert t16.generator((batch["source_128"], tf.one_hot([1, 2], 5))).dtype == tf.float32

    for optimizer in (g, d):
        optimizer.step_counter.assign(optimizer.dynamic_growth_steps - 1)
    t16.train_step(batch)
    for optimizer in (g, d):
        assert float(optimizer.dynamic_scale) == 2.0 ** 7 and int(optimizer.step_counter) == 0

    prefix = tf.train.Checkpoint(g_optimizer=g).write(str(tmp_path / "ck"))
    g.dynamic_scale.assign(1.0)
    g.step_counter.assign(5)
    tf.train.Checkpoint(g_optimizer=g).read(prefix).assert_consumed()
    assert float(g.dynamic_scale) == 2.0 ** 7 and int(g.step_counter) == 0


def test_cli_float16_run_trains_and_checkpoints_its_loss_scale(tiny_dataset, tmp_path):
    """``train_ipcgan.py --mixed_precision=float16`` once: it trains, records the mode, and its
    checkpoint holds both optimizers' loss scales (started at 2**15, halved by each skipped
    step: a power of two) and step counters."""
    ckpt = tmp_path / "ckpt"
    run = LoggedProcess([sys.executable, "train_ipcgan.py", *_common(tiny_dataset, ckpt, 2),
                         "--mixed_precision=float16", "--max_steps=2"], tmp_path, "float16")
    assert run.wait() == 0, run.err[-3000:]
    lines = [line for line in run.out.splitlines() if line.startswith("step ")]
    assert "step 2/2" in lines[-1], run.out
    for line in lines:
        values = [float(line.split(f"{k} ")[1].split()[0]) for k in ("d_loss", "g_loss")]
        assert all(np.isfinite(values)), line
    options = json.loads((ckpt / "training_options.json").read_text())
    assert options["mixed_precision"] == "float16"
    reader = tf.train.load_checkpoint(str(ckpt / "ckpt-2"))
    for name in ("g_optimizer", "d_optimizer"):
        keys = reader.get_variable_to_shape_map()
        scales = [k for k in keys if k.startswith(f"{name}/") and "dynamic_scale" in k]
        counters = [k for k in keys if k.startswith(f"{name}/") and "step_counter" in k]
        assert len(scales) == 1 and len(counters) == 1, (scales, counters)
        scale = float(reader.get_tensor(scales[0]))
        assert 1.0 <= scale <= 2.0 ** 15 and np.log2(scale) == int(np.log2(scale)), scale


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
