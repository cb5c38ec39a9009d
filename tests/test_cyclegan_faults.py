"""Long CycleGAN runs (``train_cyclegan.py``): with ``--deterministic`` a run stopped by Ctrl-C
(SIGINT), killed by SIGKILL at a random moment and restarted ends bit for bit equal to an
uninterrupted run; ``--nan_policy`` stop and skip through the command line; unwritable and
full output folders. The counterpart of test_fault_tolerance.py (train_ipcgan.py)."""
import shutil
import signal
import sys

import numpy as np
import pytest
import tensorflow as tf

from conftest import (LoggedProcess, assert_identical, checkpoint_values, kill_rng, sigkill_after_step,
                      wait_for)
from test_cyclegan import ENV, TINY, run_cli, write_faces

#: Every variable a CycleGAN checkpoint holds besides the input position.
STATE = ("g_a", "g_b", "d_a", "d_b", "g_optimizer", "d_optimizer", "pool_a", "pool_b", "step",
         "epoch")
#: 3 young and 2 old faces, batch 1: 3 steps an epoch; TINY trains 1 + 1 (decaying) epochs.
STEPS = 6


@pytest.fixture(scope="module")
def faces(tmp_path_factory):
    root = tmp_path_factory.mktemp("cyclegan_faults")
    return write_faces(root / "young", 3), write_faces(root / "old", 2, seed=1)


def _command(faces, ckpt, *extra):
    young, old = faces
    return [sys.executable, "train_cyclegan.py", f"--young_dir={young}", f"--old_dir={old}",
            f"--checkpoint_dir={ckpt}", *TINY, "--deterministic", "--save_interval=1",
            "--sample_interval=1000", *extra]


@pytest.fixture(scope="module")
def straight(faces, tmp_path_factory):
    """An uninterrupted run of the whole schedule, every checkpoint kept (they are small)."""
    ckpt = tmp_path_factory.mktemp("cyclegan_straight") / "ckpt"
    result = run_cli(*_command(faces, ckpt, f"--max_steps={STEPS}", "--max_to_keep=0")[2:])
    assert result.returncode == 0, result.stderr[-3000:]
    return ckpt


def test_interrupted_and_killed_run_ends_with_the_uninterrupted_weights(faces, straight,
                                                                        tmp_path):
    rng, seed = kill_rng("cyclegan")
    ckpt = tmp_path / "ckpt"
    command = _command(faces, ckpt, f"--max_steps={STEPS}")

    # 1. Ctrl-C after step 2: finishes the step, writes a checkpoint, exits 0.
    run = LoggedProcess(command, tmp_path, "sigint", ENV)
    wait_for(lambda: "\nstep 2/" in "\n" + run.out, run, what="step 2")
    run.send_signal(signal.SIGINT)
    assert run.wait() == 0, run.err[-3000:]
    assert "SIGINT received: checkpoint written at step " in run.out
    stopped_at = int(run.out.split("checkpoint written at step ")[1].split(",")[0])
    assert 2 <= stopped_at < STEPS - 1 and "Traceback" not in run.err
    assert tf.train.latest_checkpoint(str(ckpt)) == str(ckpt / f"ckpt-{stopped_at}")

    # 2. Resumed, then SIGKILL at a random moment after the next step (a save every step).
    run = LoggedProcess(command, tmp_path, "sigkill", ENV)
    moment = sigkill_after_step(run, stopped_at + 1, rng.uniform(0.0, 0.5), seed,
                                lambda: (p.name for p in ckpt.glob("ckpt-*")))
    assert f"resumed from {ckpt / f'ckpt-{stopped_at}'} at step {stopped_at}" in run.out

    # 3. The same command again finishes the schedule.
    finished = run_cli(*command[2:])
    assert finished.returncode == 0, f"{moment}\n{finished.stderr[-3000:]}"
    assert "resumed from" in finished.stdout and f"step {STEPS}/{STEPS}" in finished.stdout
    # Networks, both Adams (moments, step counters, learning rate), both image pools (images,
    # count, RNG), step and epoch: equal to the uninterrupted run's, bit for bit.
    assert_identical(checkpoint_values(straight / f"ckpt-{STEPS}", STATE),
                     checkpoint_values(ckpt / f"ckpt-{STEPS}", STATE), at_least=40)


def _copy_up_to(run, step, dest):
    """A copy of ``run`` as it was right after ckpt-``step`` was written."""
    dest.mkdir(parents=True)
    for path in run.glob(f"ckpt-{step}.*"):
        shutil.copy(path, dest)
    tf.compat.v1.train.update_checkpoint_state(str(dest), str(dest / f"ckpt-{step}"),
                                               all_model_checkpoint_paths=[str(dest / f"ckpt-{step}")])
    return dest


def test_non_finite_steps_stop_or_are_skipped_through_the_command_line(faces, straight,
                                                                       tmp_path):
    ckpt = _copy_up_to(straight, 2, tmp_path / "ckpt")
    before = checkpoint_values(ckpt / "ckpt-2", STATE)
    # A cycle weight that overflows float32 makes the cycle (and identity) losses infinite.
    overflow = "--lambda_a=1e39"
    stop = run_cli(*_command(faces, ckpt, "--max_steps=4", overflow)[2:])
    assert stop.returncode == 1
    last = stop.stderr.strip().splitlines()[-1]
    assert last.startswith("error: step 3: non-finite cycle_A") and last.endswith(
        f"; the step was not applied (last good checkpoint: {ckpt / 'ckpt-2'})"), last
    assert "Traceback" not in stop.stderr and "step 3/" not in stop.stdout
    assert tf.train.latest_checkpoint(str(ckpt)) == str(ckpt / "ckpt-2")

    skip = run_cli(*_command(faces, ckpt, "--max_steps=4", overflow, "--nan_policy=skip")[2:])
    assert skip.returncode == 0, skip.stderr[-3000:]
    assert skip.stdout.count("skipping it (--nan_policy=skip)") == 2
    after = checkpoint_values(ckpt / "ckpt-4", STATE)
    assert int(after["step/.ATTRIBUTES/VARIABLE_VALUE"]) == 4
    # Every step was undone: networks, optimizer moments and counters, pools unchanged (the
    # learning rate is the schedule's of step 4, the step and epoch count on).
    for key in before:
        if key.split("/")[0] not in ("step", "epoch") and "learning_rate" not in key:
            np.testing.assert_array_equal(before[key], after[key], err_msg=key)


def test_unwritable_checkpoint_dir_fails_before_training(faces, tmp_path):
    blocker = tmp_path / "a_file"
    blocker.write_text("not a directory")
    result = run_cli(*_command(faces, blocker / "ckpt", "--max_steps=2")[2:])
    assert result.returncode == 1
    assert result.stderr.strip().splitlines()[-1].startswith(
        f"error: {blocker / 'ckpt'}: not writable (")
    assert "Traceback" not in result.stderr and "step 1/" not in result.stdout


def test_too_little_disk_fails_before_training(faces, tmp_path, monkeypatch):
    """The free-space probe names the folder and what a checkpoint needs, before step 1: the
    reference-size networks at 128 px (2 x 7.84M + 2 x 2.76M weights, each with two Adam
    moments: 254 MB) and two pools of 50 faces (20 MB)."""
    from face_aging.cyclegan.config import CycleGANConfig
    from face_aging.cyclegan.trainer import train
    from face_aging.engine import setup as engine_setup
    from face_aging.engine.setup import TrainingSetupError

    class Usage:
        free = 2**20  # 1 MiB

    monkeypatch.setattr(engine_setup.shutil, "disk_usage", lambda path: Usage())
    young, old = faces
    ckpt = tmp_path / "ckpt"
    config = CycleGANConfig(young_dir=young, old_dir=old, crop_size=128, max_steps=2,
                            checkpoint_dir=str(ckpt))
    lines = []
    with pytest.raises(TrainingSetupError) as info:
        train(config, print_fn=lines.append)
    message = str(info.value)
    assert message.startswith(f"{ckpt}: 1 MiB free, a checkpoint needs about "), message
    needed = int(message.split("needs about ")[1].split()[0])
    assert 260 < needed < 340, needed  # 274 MB, and some slack for the iterator state
    assert not any(line.startswith("step ") for line in lines)
    assert not list(ckpt.glob("ckpt-*"))
