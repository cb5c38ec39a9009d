"""Mixed precision, and a MirroredStrategy step over two logical CPU devices vs one device."""
import json
import os
import signal
import subprocess
import sys

import keras
import numpy as np
import pytest
import tensorflow as tf

from PIL import Image

from conftest import (REPO, LoggedProcess, assert_identical, checkpoint_values, free_ports,
                      make_list_dataset, wait_for)
from face_aging import pixels, precision
from face_aging.data import lists
from face_aging.backbones.alexnet import AlexNet
from face_aging.ipcgan.data import make_train_dataset
from face_aging.ipcgan.networks import Discriminator, Generator, build_models
from face_aging.ipcgan.trainer import IPCGANTrainer

S = 16


@pytest.fixture(autouse=True)
def _release_memory():
    """After each test, Keras' global state is cleared too (conftest then collects and trims):
    the float16 test's two trainers (two AlexNets, emulated float16) had left this worker at
    ~10 GB while the next tests' training children ran beside it."""
    yield
    keras.backend.clear_session()


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
    run = _train_cli(_common(tiny_dataset, ckpt, 2) + ["--mixed_precision=float16",
                                                        "--max_steps=2"], tmp_path, "float16")
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
from face_aging.backbones.alexnet import AlexNet
from face_aging.ipcgan.networks import Generator, Discriminator, build_models, one_hot_age
from face_aging.ipcgan.trainer import IPCGANTrainer
S, B = 16, 4
keras.utils.set_random_seed(0)
g1, d1, a = Generator(), Discriminator(), AlexNet()
build_models(g1, d1, a, image_size=S)
one = IPCGANTrainer(g1, d1, a, step_structure="release")
strategy = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
with strategy.scope():
    g2, d2 = Generator(synchronized_bn=True), Discriminator(synchronized_bn=True)
    g3 = Generator(synchronized_bn=False)
    build_models(g2, d2, image_size=S)
    build_models(g3, image_size=S)
    for x, y in zip(g2.variables + d2.variables + g3.variables,
                    g1.variables + d1.variables + g1.variables):
        x.assign(y)
    two = IPCGANTrainer(g2, d2, a, strategy=strategy)
rng = np.random.default_rng(0)
batch = {"source_128": rng.uniform(-124, 151, (B, S, S, 3)).astype("f4"),
         "source_227": rng.uniform(-124, 151, (B, 227, 227, 3)).astype("f4"),
         "real": rng.uniform(-1, 1, (B, S, S, 3)).astype("f4"),
         "target_group": np.full(B, 3, "i4"), "false_group": np.full(B, 1, "i4")}

# Batch norm: synchronized = the global batch's statistics; not = each replica's share's.
age = one_hot_age([0, 1, 2, 3])
halves = strategy.experimental_distribute_values_from_function(
    lambda ctx: (batch["source_128"][2 * ctx.replica_id_in_sync_group:][:2],
                 age[2 * ctx.replica_id_in_sync_group:][:2]))
def forward(model):
    out = strategy.run(lambda x: model(x, batch_stats=True), args=(halves,))
    return np.concatenate([v.numpy() for v in strategy.experimental_local_results(out)])
whole = g1((batch["source_128"], age), batch_stats=True).numpy()
by_half = np.concatenate([g1((batch["source_128"][:2], age[:2]), batch_stats=True).numpy(),
                          g1((batch["source_128"][2:], age[2:]), batch_stats=True).numpy()])
bn = {"synchronized_vs_whole": float(np.abs(forward(g2) - whole).max()),
      "unsynchronized_vs_halves": float(np.abs(forward(g3) - by_half).max()),
      "whole_vs_halves": float(np.abs(whole - by_half).max())}

l1 = one.train_step({k: tf.constant(v) for k, v in batch.items()})
dist = next(iter(strategy.experimental_distribute_dataset(tf.data.Dataset.from_tensors(batch))))
l2 = two.train_step(dist)
diffs = np.concatenate([np.abs(x.numpy() - y.numpy()).ravel()
                        for x, y in zip(g1.trainable_variables + d1.trainable_variables,
                                        g2.trainable_variables + d2.trainable_variables)])
stats = np.abs(g1.bn3.moving_variance.numpy() - g2.bn3.moving_variance.numpy()).max()

def moments(trainer, optimizer, model):
    opt = getattr(trainer, optimizer)
    return np.concatenate([opt._momentums[opt._get_variable_index(v)].numpy().ravel()
                           for v in model.trainable_variables])
moment_diff = {}
for name, m1, m2 in (("d", moments(one, "d_optimizer", d1), moments(two, "d_optimizer", d2)),
                     ("g", moments(one, "g_optimizer", g1), moments(two, "g_optimizer", g2))):
    moment_diff[name] = float(np.linalg.norm(m1 - m2) / np.linalg.norm(m1))
print(json.dumps({"one": {k: float(v) for k, v in l1.items()},
                  "two": {k: float(v) for k, v in l2.items()},
                  "replicas": strategy.num_replicas_in_sync,
                  "max_diff": float(diffs.max()), "share_within_1e-5": float((diffs < 1e-5).mean()),
                  "bn_stat_diff": float(stats), "moment_diff": moment_diff, "bn": bn}))
"""


def test_mirrored_step_on_two_logical_cpus_equals_one_device():
    """Global batch 4 as 2 x 2 with synchronized batch norm vs 4 on one device.

    Tolerance: losses to 1e-3 relative; Adam's first moments (the all-reduced gradients of the
    weighted losses, times 1 - beta1) to 2 % of their norm (float noise of the adversarial
    gradients through batch statistics is ~1 %; a dropped loss weight changes them by 90 % or
    more); weights: Adam's first update is about ``lr * sign(grad)``, so a parameter whose
    gradient is float noise may move the other way (up to 2 * lr = 2e-3): 99% of weights must
    agree to 1e-5, all to 2.1e-3. Batch norm: synchronized, a replica's output is the one of
    the whole batch; ``synchronized_bn=False``, the one of its own half.
    """
    result = subprocess.run([sys.executable, "-c", MIRRORED_SCRIPT], cwd=REPO,
                            capture_output=True, text=True, timeout=1200)
    assert result.returncode == 0, result.stderr[-3000:]
    out = json.loads(result.stdout.strip().splitlines()[-1])
    assert out["replicas"] == 2
    for key in ("d_loss", "g_loss", "fea_loss", "age_loss"):
        assert out["two"][key] == pytest.approx(out["one"][key], rel=1e-3), key
    assert out["moment_diff"]["d"] < 2e-2 and out["moment_diff"]["g"] < 2e-2, out["moment_diff"]
    assert out["share_within_1e-5"] > 0.99
    assert out["max_diff"] < 2.1e-3
    assert out["bn_stat_diff"] < 1e-3  # moving statistics from the global batch
    bn = out["bn"]
    assert bn["synchronized_vs_whole"] < 1e-4 and bn["unsynchronized_vs_halves"] < 1e-4, bn
    assert bn["whole_vs_halves"] > 1e-2, bn  # the two modes are told apart


# --- train_ipcgan.py --distribution ------------------------------------------------------

def _train_cli(args, log_dir, name, env_extra=None):
    env = {k: v for k, v in os.environ.items() if k != "TF_CONFIG"}
    env.update(env_extra or {})
    return LoggedProcess([sys.executable, "train_ipcgan.py", *args], log_dir, name, env)


def _common(dataset, ckpt, batch):
    return [f"--list_dir={dataset}", f"--batch_size={batch}", "--image_size=16",
            f"--checkpoint_dir={ckpt}", f"--sample_dir={ckpt}/samples", "--log_interval=1",
            "--save_interval=2", "--sample_interval=100", "--allow_random_alexnet"]


def test_mirrored_cli_on_two_logical_cpus_trains_and_saves(tiny_dataset, tmp_path):
    """``--nosynchronized_bn`` here (what it computes is checked above; the synchronized default
    runs in the two-worker test). Resuming a distributed run is tested with two workers below."""
    ckpt = tmp_path / "ckpt"
    args = _common(tiny_dataset, ckpt, 4) + ["--distribution=mirrored",
                                             "--logical_cpu_devices=2", "--nosynchronized_bn"]
    run = _train_cli(args + ["--max_steps=2"], tmp_path, "mirrored")
    assert run.wait() == 0, run.err[-3000:]
    assert "step 2/2" in run.out and "one device found" not in run.out
    assert tf.train.latest_checkpoint(str(ckpt)).endswith("ckpt-2")
    names = [name for name, _ in tf.train.list_variables(tf.train.latest_checkpoint(str(ckpt)))]
    assert any("data_iterator" in n for n in names)  # the plain, checkpointable iterator
    options = json.loads((ckpt / "training_options.json").read_text())
    assert options["synchronized_bn"] is False and options["distribution"] == "mirrored"


def test_mirrored_cli_rejects_a_global_batch_that_does_not_split(tiny_dataset, tmp_path):
    args = _common(tiny_dataset, tmp_path / "ckpt", 3) + [
        "--distribution=mirrored", "--logical_cpu_devices=2", "--max_steps=1"]
    run = _train_cli(args, tmp_path, "odd_batch")
    assert run.wait() == 1
    assert run.err.strip().splitlines()[-1] == ("error: batch_size 3 (the global batch) does "
                                                "not divide over 2 replicas")


def test_multi_worker_without_tf_config_is_one_line(tiny_dataset, tmp_path):
    args = _common(tiny_dataset, tmp_path / "ckpt", 4) + ["--distribution=multi_worker",
                                                          "--max_steps=1"]
    run = _train_cli(args, tmp_path, "no_tf_config")
    assert run.wait() == 1
    assert "needs TF_CONFIG" in run.err.strip().splitlines()[-1]
    assert "Traceback" not in run.err


# --- multi_worker: shards, label pairs, stop signal, resume ----------------------------------

def _unique_faces(root, per_group=4, size=24):
    """A list-layout dataset whose every image is one flat colour that names it: red = 10 *
    (image number + 1), green = 40 * group + 20; returns {red: relative path}."""
    entries, names = [], {}
    for group in range(5):
        for i in range(per_group):
            red = 10 * (group * per_group + i + 1)
            rel = f"faces/{group}_{i}.png"
            (root / "faces").mkdir(parents=True, exist_ok=True)
            Image.fromarray(np.full((size, size, 3), (red, 40 * group + 20, 128), np.uint8)).save(
                root / rel)
            entries.append((rel, group))
            names[red] = rel
    lists.write_image_list(str(root / lists.TRAIN_LIST), entries)
    for group in range(5):
        lists.write_image_list(str(root / lists.age_group_list("train", group)),
                               [e for e in entries if e[1] == group])
    lists.write_label_pairs(str(root / lists.LABEL_PAIR_LIST), [(1, 0), (4, 2), (3, 1), (0, 3)])
    return names


def test_worker_shards_are_disjoint_and_every_worker_follows_the_same_label_pairs(tmp_path):
    """The input of each of two workers (``make_train_dataset(..., num_shards=2, shard_index=k)``,
    what ``--distribution=multi_worker`` builds): its source and real faces come from its own
    half of the images, and both workers step through the label pairs in the same order."""
    names = _unique_faces(tmp_path)
    streams = [list(make_train_dataset(str(tmp_path), None, batch_size=2, image_size=S, seed=0,
                                       num_shards=2, shard_index=k).take(10)) for k in (0, 1)]
    sources, reals = [set(), set()], [set(), set()]
    for k, stream in enumerate(streams):
        for batch in stream:
            for face in batch["source_128"].numpy() + np.array(pixels.MEAN_RGB):
                sources[k].add(names[int(round(float(np.median(face[..., 0]))))])
            for face, t in zip((batch["real"].numpy() + 1) * 127.5, batch["target_group"]):
                rel = names[int(round(float(np.median(face[..., 0]))))]
                assert rel.startswith(f"faces/{int(t)}_"), rel  # a real face of the target group
                reals[k].add(rel)
    assert not sources[0] & sources[1] and not reals[0] & reals[1]
    # 20 draws a worker from its 10 images (one epoch each): together every image, once a worker
    assert sources[0] | sources[1] == set(names.values())
    for a, b in zip(*streams):
        assert a["target_group"].numpy().tolist() == b["target_group"].numpy().tolist()
        assert a["false_group"].numpy().tolist() == b["false_group"].numpy().tolist()
    pairs = [(int(b["target_group"][0]), int(b["false_group"][0])) for b in streams[0]]
    assert pairs == [[(1, 0), (4, 2), (3, 1), (0, 3)][i % 4] for i in range(10)]


def _start_workers(args, log_dir, name):
    ports = free_ports(2)
    print(f"{name}: workers on localhost ports {ports}")
    cluster = {"worker": [f"localhost:{p}" for p in ports]}
    return [_train_cli(args, log_dir, f"{name}_worker{i}",
                       {"TF_CONFIG": json.dumps({"cluster": cluster,
                                                 "task": {"type": "worker", "index": i}})})
            for i in range(len(ports))]


def _written_at(output):
    return int(output.split("checkpoint written at step ")[1].split(",")[0])


def test_two_workers_stop_together_and_resume_to_the_uninterrupted_weights(tmp_path):
    """MultiWorkerMirroredStrategy, two processes on loopback ports, global batch 4 (2 a worker),
    ``--deterministic``. A SIGTERM to worker 1 alone stops both at the same step, with a
    checkpoint written once (by worker 0, the chief) and worker 1's input position beside it;
    restarting both resumes there, and the run ends with every variable of G, D and both
    optimizers equal, bit for bit, to an uninterrupted run's."""
    dataset = make_list_dataset(tmp_path / "data", per_group=4)
    logs = tmp_path / "logs"
    logs.mkdir()

    def args(ckpt, steps):
        return _common(dataset, ckpt, 4) + ["--distribution=multi_worker", "--deterministic",
                                            f"--max_steps={steps}"]

    straight_dir, run_dir, final = tmp_path / "straight", tmp_path / "run", 5
    straight = _start_workers(args(straight_dir, final), logs, "straight")
    stopped = _start_workers(args(run_dir, 1000), logs, "stopped")
    wait_for(lambda: "step 1/1000" in stopped[1].out, stopped[1])
    stopped[1].process.send_signal(signal.SIGTERM)
    for worker in stopped + straight:
        assert worker.wait() == 0, worker.err[-3000:]
    at = _written_at(stopped[0].out)
    assert _written_at(stopped[1].out) == at and 1 <= at < final, (at, final)
    assert "SIGTERM received: checkpoint written" in stopped[1].out
    assert "a stop signal to another worker received: checkpoint written" in stopped[0].out
    saved = sorted(p.name for p in run_dir.glob("*.index"))
    assert saved == [f"ckpt-{s}.index" for s in sorted({2, at}) if s <= at]  # by the chief alone
    assert not list(run_dir.glob(".worker_*"))  # worker 1's scratch copies are gone
    assert f"input-{at}.index" in os.listdir(run_dir / "input_worker_1")
    assert (run_dir / "training_options.json").exists()
    chief_losses = [float(line.split("d_loss ")[1].split()[0])
                    for line in straight[0].out.splitlines() if line.startswith("step ")]
    assert len(chief_losses) == final and all(np.isfinite(chief_losses))

    resumed = _start_workers(args(run_dir, final), logs, "resumed")
    for worker in resumed:
        assert worker.wait() == 0, worker.err[-3000:]
        assert f"resumed from {run_dir / f'ckpt-{at}'} at step {at}" in worker.out
        assert "no input position" not in worker.out
    assert f"step {final}/{final}" in resumed[0].out
    assert_identical(checkpoint_values(straight_dir / f"ckpt-{final}"),
                     checkpoint_values(run_dir / f"ckpt-{final}"))
