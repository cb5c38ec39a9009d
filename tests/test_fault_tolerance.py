"""Long runs: determinism, exact resume after SIGKILL, non-finite steps, unwritable dirs, SIGTERM."""
import os
import shutil
import signal
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf

from conftest import (REPO, LoggedProcess, assert_identical, checkpoint_values, kill_rng,
                      make_list_dataset, sigkill_after_step, wait_for)

ENV = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2", PYTHONUNBUFFERED="1")
STEPS = 6


def _args(data, ckpt, *extra):
    return [sys.executable, "train_ipcgan.py", f"--list_dir={data}", "--batch_size=2",
            "--image_size=16", "--allow_random_alexnet", "--deterministic", "--log_interval=1",
            "--sample_interval=1000", f"--checkpoint_dir={ckpt}",
            f"--sample_dir={ckpt}/samples", "--max_to_keep=0", *extra]


def _run(*args, timeout=1200):
    return subprocess.run(list(args), cwd=REPO, env=ENV, capture_output=True, text=True,
                          timeout=timeout)


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    return make_list_dataset(tmp_path_factory.mktemp("fault_tolerance") / "data")


#: The straight run's checkpoints the tests use (each ~120 MB: the others are deleted).
KEPT = (2, STEPS)


@pytest.fixture(scope="module")
def straight(dataset, tmp_path_factory):
    """An uninterrupted run of STEPS steps, a checkpoint every 2: the reference the other runs
    are compared with (ckpt-2, ckpt-STEPS), and the start of the fault scenarios (ckpt-2).
    Removed when the module's tests are done."""
    ckpt = tmp_path_factory.mktemp("straight") / "ckpt"
    result = _run(*_args(dataset, ckpt, f"--max_steps={STEPS}", "--save_interval=2"))
    assert result.returncode == 0, result.stderr
    for step in set(range(1, STEPS + 1)) - set(KEPT):
        for path in ckpt.glob(f"ckpt-{step}.*"):
            path.unlink()
    yield ckpt
    shutil.rmtree(ckpt.parent, ignore_errors=True)


def _copy_up_to(run, step, dest):
    """``dest``: a copy of ``run``'s checkpoint folder as it was right after step ``step``
    was saved (later checkpoints removed, the manager's state naming ckpt-``step``)."""
    shutil.copytree(run, dest, ignore=shutil.ignore_patterns("logs", "samples", "ckpt-*"))
    for path in run.glob(f"ckpt-{step}.*"):
        shutil.copy(path, dest)
    tf.compat.v1.train.update_checkpoint_state(str(dest), str(dest / f"ckpt-{step}"),
                                               all_model_checkpoint_paths=[str(dest / f"ckpt-{step}")])
    return dest


def test_a_second_run_is_identical_and_sigterm_writes_a_checkpoint(dataset, straight, tmp_path):
    """Same seed from scratch -> identical weights (determinism); stopped by SIGTERM after
    step 2, it writes a checkpoint and exits 0."""
    ckpt = tmp_path / "again"
    run = LoggedProcess(_args(dataset, ckpt, "--max_steps=1000", "--save_interval=2"),
                        tmp_path, "sigterm", ENV)
    wait_for(lambda: "\nstep 2/" in "\n" + run.out, run, what="step 2")
    run.send_signal(signal.SIGTERM)
    assert run.wait() == 0, run.err[-3000:]
    out = run.out
    assert "SIGTERM received: checkpoint written at step" in out
    step = int(out.split("checkpoint written at step ")[1].split(",")[0])
    assert (ckpt / f"ckpt-{step}.index").exists() and step >= 2
    assert_identical(checkpoint_values(straight / "ckpt-2"), checkpoint_values(ckpt / "ckpt-2"))


def test_killed_run_resumes_to_identical_weights(dataset, straight, tmp_path):
    """SIGKILL at a random moment (a save happens every step, so often during one), then the
    same command again: every variable equals the straight run's, bit for bit. (This needs
    Grappler off under --deterministic: with it, about one fresh process in four computed
    D's first gradients differently in the last bits; docs/BENCHMARKS.md, "Determinism".)"""
    rng, seed = kill_rng("killed run")
    kill_after, delay = rng.randint(2, STEPS - 2), rng.uniform(0.0, 0.6)
    work = tmp_path / "killed"
    # one checkpoint kept (plus the one being written): ~250 MB instead of STEPS x 120 MB
    command = _args(dataset, work, f"--max_steps={STEPS}", "--save_interval=1", "--max_to_keep=1")
    run = LoggedProcess(command, tmp_path, "killed", ENV)
    moment = sigkill_after_step(run, kill_after, delay, seed,
                                lambda: (p.name for p in work.iterdir() if "ckpt" in p.name))
    resumed = _run(*command)
    assert resumed.returncode == 0, f"{moment}\n{resumed.stderr}"
    assert "resumed from" in resumed.stdout, moment
    assert_identical(checkpoint_values(straight / f"ckpt-{STEPS}"),
                      checkpoint_values(work / f"ckpt-{STEPS}"))


def test_a_torn_save_never_replaces_the_last_good_checkpoint(dataset, straight, tmp_path):
    ckpt = _copy_up_to(straight, 2, tmp_path / "ckpt")
    # What a kill during the save of step 3 leaves: shard files of a temp prefix, no index,
    # and the manager's state file still naming ckpt-2.
    torn = ckpt / "ckpt-3_temp" / "part-00000-of-00001.data-00000-of-00001"
    torn.parent.mkdir()
    torn.write_bytes(os.urandom(1000))
    (ckpt / "ckpt-3.data-00000-of-00001").write_bytes(os.urandom(500))
    resumed = _run(*_args(dataset, ckpt, "--max_steps=3", "--save_interval=1"))
    assert resumed.returncode == 0, resumed.stderr
    assert "resumed from" in resumed.stdout and "ckpt-2 at step 2" in resumed.stdout
    assert int(checkpoint_values(ckpt / "ckpt-3")["step/.ATTRIBUTES/VARIABLE_VALUE"]) == 3


def test_non_finite_steps_stop_or_are_skipped(dataset, straight, tmp_path):
    ckpt = _copy_up_to(straight, 2, tmp_path / "ckpt")
    before = checkpoint_values(ckpt / "ckpt-2")
    # A weight that overflows float32 makes every gradient non-finite.
    stop = _run(*_args(dataset, ckpt, "--max_steps=4", "--gan_loss_weight=1e39"))
    assert stop.returncode == 1
    # D is updated first and its weights overflow, so the G loss seen through it is NaN.
    assert (f"step 3: non-finite g_loss; the step was not applied (last good checkpoint: "
            f"{ckpt}/ckpt-2)") in stop.stderr
    assert "Traceback" not in stop.stderr
    assert not (ckpt / "ckpt-3.index").exists()
    assert_identical(before, checkpoint_values(ckpt / "ckpt-2"))

    skip = _run(*_args(dataset, ckpt, "--max_steps=4", "--gan_loss_weight=1e39",
                       "--nan_policy=skip"))
    assert skip.returncode == 0, skip.stderr
    assert skip.stdout.count("skipping it (--nan_policy=skip)") == 2
    after = checkpoint_values(ckpt / "ckpt-4")
    for key in before:  # every step was undone: weights and optimizer state unchanged
        if key != "step/.ATTRIBUTES/VARIABLE_VALUE":
            np.testing.assert_array_equal(before[key], after[key], err_msg=key)


def test_unwritable_directories_fail_before_training(dataset, tmp_path):
    blocker = tmp_path / "a_file"
    blocker.write_text("not a directory")
    result = _run(*_args(dataset, tmp_path / "ckpt", "--max_steps=2",
                         f"--sample_dir={blocker}/samples"))
    assert result.returncode == 1
    assert f"{blocker}/samples: not writable" in result.stderr
    assert "Traceback" not in result.stderr and "step 1/" not in result.stdout


def test_too_little_disk_fails_before_training(dataset, tmp_path, monkeypatch):
    """The free-space probe runs before the first step and names the folder in one line."""
    from face_aging.engine import setup as engine_setup
    from face_aging.ipcgan import trainer as ipcgan_trainer
    from face_aging.ipcgan.config import TrainConfig

    class Usage:
        free = 2**20  # 1 MiB

    monkeypatch.setattr(engine_setup.shutil, "disk_usage", lambda path: Usage())
    ckpt = tmp_path / "ckpt"
    config = TrainConfig(list_dir=str(dataset), checkpoint_dir=str(ckpt),
                         sample_dir=str(tmp_path / "samples"), batch_size=2, image_size=16,
                         max_steps=2, allow_random_alexnet=True)
    lines = []
    with pytest.raises(engine_setup.TrainingSetupError) as info:
        ipcgan_trainer.train(config, print_fn=lines.append)
    message = str(info.value)
    assert message.startswith(f"{ckpt}: 1 MiB free, a checkpoint needs about ")
    # G and D hold 9.0M weights, each with two Adam slots: about 123 MiB a checkpoint
    assert 110 < int(message.split("needs about ")[1].split()[0]) < 140
    assert not any(line.startswith("step ") for line in lines)
    assert not list(ckpt.glob("ckpt-*"))
