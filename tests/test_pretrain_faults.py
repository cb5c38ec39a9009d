"""Long pretraining runs (``python -m face_aging.pretrain``): determinism, exact resume after
SIGKILL (also during a checkpoint write) and SIGTERM, non-finite steps, unwritable and full
output folders. The counterpart of test_fault_tolerance.py (train_ipcgan.py)."""
import hashlib
import json
import os
import signal
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf

from conftest import (REPO, LoggedProcess, kill_rng, make_list_dataset, sigkill_after_step,
                      wait_for)
from face_aging.alexnet import config as alexnet_config
from face_aging.alexnet import data as alexnet_data
from face_aging.alexnet import trainer as alexnet_trainer
from face_aging.engine import setup as engine_setup
from face_aging.data import lists

ENV = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2", PYTHONUNBUFFERED="1")
NAN_ENV = "FACE_AGING_PRETRAIN_NAN_AT_STEPS"  # face_aging.pretrain.NAN_AT_STEPS_ENV
ENV.pop(NAN_ENV, None)


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    """10 tiny faces (2 a group): 5 train / 5 validation by the split's hash, 4 test."""
    root = make_list_dataset(tmp_path_factory.mktemp("pretrain_faults") / "data", per_group=2)
    entries = lists.read_image_list(str(root / lists.TRAIN_LIST))
    lists.write_image_list(str(root / lists.TEST_LIST), entries[::3])
    return root


#: Steps between training checkpoints. A checkpoint of the full-size AlexNet with its AdamW
#: moments is ~1 GB (and a best-weights copy ~0.5 GB more): every other step, not every step.
SAVE_EVERY = 2


def _args(data, out, *extra):
    # Everything random is on: augmentation (crop, flip, jitter, 128 px round trip), dropout;
    # a 131 px phase then 227 px; validation (early-stopping state) every 2 steps.
    return [sys.executable, "-m", "face_aging.pretrain", f"--list_dir={data}",
            f"--output_dir={out}", "--batch_size=2", "--deterministic", "--nojit_compile",
            "--val_fraction=0.3", "--warmup_steps=1", "--log_every=1", "--eval_every=2",
            f"--save_every={SAVE_EVERY}", "--eval_batch_size=8", "--low_res_size=131",
            "--low_res_fraction=0.5", "--lowres_prob=0.5", *extra]


def _run(*args, env=None, timeout=1200):
    return subprocess.run(list(args), cwd=REPO, env=dict(ENV, **(env or {})),
                          capture_output=True, text=True, timeout=timeout)


def _start(args, log):
    """The run, its stdout in ``log`` (stderr beside it, ``.err``)."""
    return LoggedProcess(args, log.parent, log.stem, ENV)


def _latest(out):
    return tf.train.latest_checkpoint(str(out / "train"))


#: Left out of the comparison: ``elapsed`` is wall-clock accounting (the report's training
#: time; with a time budget the schedule, which is why exact resume needs
#: --time_budget_minutes=0); ``save_counter`` counts the saves, and a stopped run saves once
#: more than an uninterrupted one (at the stop, between the --save_every steps).
NOT_TRAINING_STATE = ("elapsed", "save_counter")


def _tensors(prefix, skip=NOT_TRAINING_STATE):
    """name -> value of every variable of a training checkpoint (lazily, one at a time)."""
    reader = tf.train.load_checkpoint(str(prefix))
    keys = sorted(k for k in reader.get_variable_to_shape_map()
                  if k != "_CHECKPOINTABLE_OBJECT_GRAPH" and k.split("/")[0] not in skip)
    return reader, keys


def _digests(prefix):
    """name -> sha256 of the value, for every variable of a training checkpoint."""
    reader, keys = _tensors(prefix, skip=())
    return {k: hashlib.sha256(np.ascontiguousarray(reader.get_tensor(k)).tobytes()).hexdigest()
            for k in keys}


def _assert_identical(prefix_a, prefix_b, skip=NOT_TRAINING_STATE):
    a, keys_a = _tensors(prefix_a, skip)
    b, keys_b = _tensors(prefix_b, skip)
    assert keys_a == keys_b
    roots = {k.split("/")[0] for k in keys_a}
    assert {"alexnet", "optimizer", "step", "samples_seen", "best_acc", "best_step",
            "bad_evals"} <= roots
    assert sum(k.startswith("optimizer/") for k in keys_a) > 30  # moments, iterations
    for key in keys_a:
        np.testing.assert_array_equal(a.get_tensor(key), b.get_tensor(key), err_msg=key)
    return keys_a


def test_killed_and_stopped_runs_end_with_identical_weights(data, tmp_path):
    steps = 6
    # The uninterrupted run, alongside the interrupted one (one intra-op thread each).
    straight = _start(_args(data, tmp_path / "straight", f"--max_steps={steps}"),
                      tmp_path / "straight.log")
    out = tmp_path / "killed"
    command = _args(data, out, f"--max_steps={steps}")
    rng, seed = kill_rng("pretraining")

    # 1. SIGKILL while checkpoint k is being written: the one before stays the latest, intact.
    k, before = 2 * SAVE_EVERY, SAVE_EVERY
    process = _start(command, tmp_path / "1.log")
    wait_for(lambda: (out / "train" / f"ckpt-{k}_temp").exists(), process,
             what=f"the save of ckpt-{k}")
    process.send_signal(signal.SIGKILL)
    assert process.wait(timeout=60) == -signal.SIGKILL
    assert not (out / "train" / f"ckpt-{k}.index").exists()  # it was mid-save
    assert _latest(out) == str(out / "train" / f"ckpt-{before}")
    reader = tf.train.load_checkpoint(_latest(out))
    assert reader.get_tensor("step/.ATTRIBUTES/VARIABLE_VALUE") == before

    # 2. SIGTERM in the first step after resuming: finishes the step, writes a checkpoint
    # (whatever --save_every says), one line, exit 0.
    log = tmp_path / "2.log"
    process = _start(command, log)
    wait_for(lambda: f"step {before + 1}/{steps}" in process.out, process,
             what=f"step {before + 1}")
    process.send_signal(signal.SIGTERM)
    assert process.wait() == 0, process.err[-3000:]
    text = process.out
    assert f"resumed from {out / 'train' / f'ckpt-{before}'} at step {before}" in text
    assert "SIGTERM received: checkpoint written at step " in text
    assert "run the same command to resume" in text and "Traceback" not in process.err
    stopped_at = int(text.split("checkpoint written at step ")[1].split()[0])
    assert before < stopped_at < steps and "test: accuracy" not in text
    assert _latest(out) == str(out / "train" / f"ckpt-{stopped_at}")

    # 3. SIGKILL at a random moment after the next step: in a step, a validation or a save.
    log = tmp_path / "3.log"
    process = _start(command, log)
    moment = sigkill_after_step(process, stopped_at + 1, rng.uniform(0.0, 1.2), seed,
                                lambda: os.listdir(out / "train"))
    assert f"at step {stopped_at}" in process.out

    # 4. The same command again finishes the run.
    finished = _run(*command)
    assert finished.returncode == 0, f"{moment}\n{finished.stderr}"
    assert "resumed from" in finished.stdout and f"step {steps}/{steps}" in finished.stdout
    assert straight.wait() == 0, straight.err[-3000:]

    # Every variable (weights, AdamW moments and iterations, step, input position, early
    # stopping state) equals the uninterrupted run's, bit for bit; so do the best weights
    # and the report.
    _assert_identical(tmp_path / "straight" / "train" / f"ckpt-{steps}",
                      out / "train" / f"ckpt-{steps}")
    best = [f[:-len(".index")] for f in os.listdir(out / "pretrained") if f.endswith(".index")]
    assert len(best) == 1
    a = tf.train.load_checkpoint(str(tmp_path / "straight" / "pretrained" / best[0]))
    b = tf.train.load_checkpoint(str(out / "pretrained" / best[0]))
    for key in a.get_variable_to_shape_map():
        if key != "_CHECKPOINTABLE_OBJECT_GRAPH":
            np.testing.assert_array_equal(a.get_tensor(key), b.get_tensor(key), err_msg=key)
    reports = [json.loads((o / "report.json").read_text()) for o in (tmp_path / "straight", out)]
    for report in reports:
        for key in ("training_seconds", "images_per_second"):  # wall time
            report.pop(key)
        report["checkpoint"] = os.path.basename(report["checkpoint"])
    assert reports[0] == reports[1]


def test_non_finite_steps_stop_or_are_skipped(data, tmp_path):
    out = tmp_path / "run"
    # A NaN loss at step 2 (test hook): stop with one line, ckpt-1 stays the last.
    stop = _run(*_args(data, out, "--max_steps=3", "--save_every=1"), env={NAN_ENV: "2"})
    assert stop.returncode == 1, stop.stderr
    assert stop.stderr.strip().splitlines()[-1] == (
        f"pretrain: error: step 2: non-finite loss; the step was not applied (last good "
        f"checkpoint: {out / 'train' / 'ckpt-1'})")
    assert "Traceback" not in stop.stderr and "step 2/3" not in stop.stdout
    assert _latest(out) == str(out / "train" / "ckpt-1")
    assert not (out / "train" / "ckpt-2.index").exists()
    before = _digests(out / "train" / "ckpt-1")  # the next save deletes ckpt-1

    # An update that overflows (learning rate 1e39 -> inf): non-finite weights; skip goes on.
    skip = _run(*_args(data, out, "--max_steps=2", "--save_every=1", "--learning_rate=1e39",
                       "--nan_policy=skip"))
    assert skip.returncode == 0, skip.stderr
    assert (f"step 2: non-finite weights; the step was not applied (last good checkpoint: "
            f"{out / 'train' / 'ckpt-1'}); skipping it (--nan_policy=skip)") in skip.stdout
    assert _latest(out) == str(out / "train" / "ckpt-2")
    # The step was undone as a whole: weights and every optimizer variable (moments and the
    # iteration count) are ckpt-1's (the learning rate is set from the schedule each step).
    after = _digests(out / "train" / "ckpt-2")
    compared = [k for k in before if k.split("/")[0] in ("alexnet", "optimizer")
                and "learning_rate" not in k]
    # 12 layers' kernel and bias, two moments of the 16 trained ones, the iteration count
    assert any("iteration" in k for k in compared) and len(compared) == 24 + 2 * 16 + 1
    assert {k: after[k] for k in compared} == {k: before[k] for k in compared}
    assert after["step/.ATTRIBUTES/VARIABLE_VALUE"] != before["step/.ATTRIBUTES/VARIABLE_VALUE"]


def test_unwritable_output_dir_fails_before_training(data, tmp_path):
    blocker = tmp_path / "a_file"
    blocker.write_text("not a directory")
    result = _run(*_args(data, blocker / "out", "--max_steps=2"))
    assert result.returncode == 1
    assert result.stderr.strip().splitlines()[-1].startswith(
        f"pretrain: error: {blocker / 'out'}: not writable (")
    assert "Traceback" not in result.stderr and "step 1/" not in result.stdout


def test_too_little_disk_fails_before_training(data, tmp_path, monkeypatch):
    class Usage:
        free = 100 * 2**20

    monkeypatch.setattr(engine_setup.shutil, "disk_usage", lambda path: Usage())
    config = alexnet_config.PretrainConfig(list_dir=str(data), output_dir=str(tmp_path / "out"),
                                           batch_size=2, max_steps=2, val_fraction=0.3,
                                           jit_compile=False)
    lines = []
    with pytest.raises(engine_setup.TrainingSetupError) as info:
        alexnet_trainer.pretrain(config, print_fn=lines.append)
    # the weights, two AdamW moments of the trained layers, and the best weights (~1.5 GB)
    message = str(info.value)
    assert message.startswith(f"{tmp_path / 'out'}: 100 MiB free, a checkpoint needs about ")
    assert 1200 < int(message.split("needs about ")[1].split()[0]) < 2000
    assert not lines and not os.path.exists(tmp_path / "out" / "pretrain_options.json")


# ----------------------------------------------------------------------------- the input stream

def _entries(groups):
    return [(f"f{i}.png", g, -1) for i, g in enumerate(groups)]


def test_sample_order_is_a_pure_function_of_seed_and_position():
    entries = _entries([0, 0, 1, 2, 2, 2, 3])
    config = alexnet_config.PretrainConfig(list_dir="", output_dir="", seed=3)
    index = alexnet_data.sample_index_fn(entries, config)
    order = [int(index(tf.constant(n, tf.int64))) for n in range(3 * len(entries))]
    epochs = [order[e * 7:(e + 1) * 7] for e in range(3)]
    assert all(sorted(e) == list(range(7)) for e in epochs)  # each epoch: every image once
    assert len({tuple(e) for e in epochs}) == 3               # reshuffled every epoch
    assert order == [int(index(tf.constant(n, tf.int64))) for n in range(21)]
    other = alexnet_data.sample_index_fn(
        entries, alexnet_config.PretrainConfig(list_dir="", output_dir="", seed=4))
    assert order != [int(other(tf.constant(n, tf.int64))) for n in range(21)]

    # class_balance=sampling: every round of 4 draws each present group once; a group's own
    # draws go through its members, reshuffled each time round.
    config = alexnet_config.PretrainConfig(list_dir="", output_dir="", class_balance="sampling")
    index = alexnet_data.sample_index_fn(entries, config)
    drawn = [int(index(tf.constant(n, tf.int64))) for n in range(4 * 6)]
    for r in range(6):
        assert sorted(entries[i][1] for i in drawn[4 * r:4 * r + 4]) == [0, 1, 2, 3]
    of_group_2 = [i for i in drawn if entries[i][1] == 2]
    assert sorted(of_group_2[:3]) == [3, 4, 5] and sorted(of_group_2[3:]) == [3, 4, 5]


def test_a_stream_started_at_a_position_equals_the_tail_of_one_started_at_zero():
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (5, alexnet_data.SIZE, alexnet_data.SIZE, 3), dtype=np.uint8)
    entries = _entries([0, 1, 1, 2, 3])
    config = alexnet_config.PretrainConfig(list_dir="", output_dir="", batch_size=2,
                                           lowres_prob=0.5)  # every augmentation on
    weights = np.ones(5, np.float32)
    whole = list(alexnet_data.make_train_dataset(entries, images, config, weights).take(4))
    tail = list(alexnet_data.make_train_dataset(entries, images, config, weights,
                                                start_sample=4).take(2))
    for a, b in zip(whole[2:], tail):
        for x, y in zip(a, b):
            np.testing.assert_array_equal(x.numpy(), y.numpy())
    # the order does not depend on augmentation, which did change the pixels
    plain = alexnet_config.PretrainConfig(**{**config.__dict__, "augment": False})
    unaugmented = list(alexnet_data.make_train_dataset(entries, images, plain, weights).take(4))
    for a, b in zip(whole, unaugmented):
        np.testing.assert_array_equal(a[1].numpy(), b[1].numpy())
        assert not np.array_equal(a[0].numpy(), b[0].numpy())
