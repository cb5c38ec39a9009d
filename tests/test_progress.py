"""face_aging.progress: the one ETA format, the training loops' progress lines (a fake clock),
and the progress bars of the long jobs (only on a terminal)."""
import io
import os
import re
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from conftest import REPO
from face_aging import progress
from face_aging.progress import TrainingProgress, format_duration


class FakeClock:
    def __init__(self):
        self.now = 1000.0

    def __call__(self):
        return self.now


def test_format_duration():
    assert format_duration(0) == "0:00:00"
    assert format_duration(59.9) == "0:00:59"
    assert format_duration(3725) == "1:02:05"
    assert format_duration(100000) == "27:46:40"  # hours do not wrap at a day
    assert format_duration(-5) == "0:00:00"
    assert format_duration(float("nan")) == "?" and format_duration(None) == "?"
    assert format_duration(float("inf")) == "?"


def _run(progress_, clock, step_seconds):
    """Steps with the given durations; returns [(step, status)] of the lines printed."""
    lines = []
    for seconds in step_seconds:
        clock.now += seconds
        step = progress_.step + 1
        if progress_.step_done(step):
            lines.append((step, progress_.status()))
    return lines


def test_the_first_eta_leaves_the_compiling_step_out():
    """Step 1 takes 20 s (tracing, compiling), then 0.5 s a step: the first ETA printed is
    the remaining steps at 2 steps/s (not 21 steps in 30 s = 0.7 steps/s)."""
    clock = FakeClock()
    p = TrainingProgress(1000, 0, log_interval=100, line_seconds=10.0, clock=clock)
    assert p.compiling_line() == ("compiling the training step (step 1 of 1000 traces and "
                                  "compiles it: slow, and left out of the rate)...")
    lines = _run(p, clock, [20.0] + [0.5] * 30)
    assert lines[0] == (1, "first step 20.0 s (compiling)  ETA ?")
    # the next line comes from the wall clock: 10 s after step 1, at step 21
    step, status = lines[1]
    assert step == 21 and status == f"2.00 steps/s  ETA {format_duration((1000 - 21) / 2.0)}"
    assert status == "2.00 steps/s  ETA 0:08:09"
    assert p.rate == pytest.approx(2.0) and p.eta_seconds() == pytest.approx((1000 - 31) / 2)


def test_lines_every_log_interval_and_every_few_seconds():
    clock = FakeClock()
    p = TrainingProgress(12, 0, log_interval=5, line_seconds=10.0, clock=clock)
    # fast steps: the step schedule (1 = compiled, 5, 10, 12 = last)
    assert [s for s, _ in _run(p, clock, [3.0] + [0.1] * 11)] == [1, 5, 10, 12]
    clock = FakeClock()
    p = TrainingProgress(200000, 100, log_interval=100, line_seconds=10.0, clock=clock)
    # slow steps (4 s): a line at least every 10 s of wall time although no step is a multiple
    # of 100; resumed at step 100, so the first step of this process is 101
    steps = [s for s, _ in _run(p, clock, [30.0] + [4.0] * 9)]
    assert steps == [101, 104, 107, 110]
    assert p.status(images_per_step=32) == f"0.25 steps/s 8.0 img/s  ETA {format_duration(199890 * 4)}"
    assert p.status(eta_seconds=60) == "0.25 steps/s  ETA 0:01:00"  # e.g. a time budget


def test_a_recompile_restarts_the_rate():
    clock = FakeClock()
    p = TrainingProgress(100, 0, log_interval=1000, line_seconds=1e9, clock=clock)
    _run(p, clock, [10.0] + [1.0] * 4)  # 1 steps/s at the first input size
    assert p.rate == pytest.approx(1.0)
    p.expect_compile()
    assert p.compiling_line().startswith("compiling the training step (step 6 of 100 ")
    lines = _run(p, clock, [15.0] + [0.25] * 4)  # a new size: compiled again, then 4 steps/s
    assert lines == [(6, "first step 15.0 s (compiling)  ETA ?")]
    assert p.rate == pytest.approx(4.0) and p.eta_seconds() == pytest.approx(90 / 4)
    with pytest.raises(ValueError, match="log_interval must be >= 1"):
        TrainingProgress(10, 0, log_interval=0)


class FakeTerminal(io.StringIO):
    def isatty(self):
        return True


def test_bar_draws_on_a_terminal_and_is_silent_otherwise(capsys):
    terminal = FakeTerminal()
    with progress.bar(3, "test.py", unit="file", stream=terminal) as files:
        for name in ("a", "b", "c"):
            files.write(f"ok: {name}")
            files.update(1)
    drawn = terminal.getvalue()
    assert "test.py" in drawn and "3/3" in drawn and "file/s" in drawn
    assert "ok: a" in capsys.readouterr().out  # the lines still reach stdout
    pipe = io.StringIO()
    with progress.bar(3, "test.py", unit="file", stream=pipe) as files:
        files.update(3)
        files.write("ok: d")
    assert pipe.getvalue() == "" and files.n == 3
    assert capsys.readouterr().out == "ok: d\n"


def test_bar_times_are_format_duration_and_enabled_overrides_the_terminal():
    log = io.StringIO()  # not a terminal, but asked for (a log gets the bar)
    with progress.bar(100, "faces", unit="img", stream=log, enabled=True) as faces:
        faces.start_t -= 100  # started 100 s ago
        faces.update(10)
        faces.refresh()
    line = [d for d in log.getvalue().replace("\r", "\n").splitlines() if "10/100" in d][-1]
    elapsed, eta = re.search(r"\[(\S+), ETA (\S+),", line).groups()
    # H:MM:SS from format_duration (tqdm's own format would say 01:40)
    assert elapsed == "0:01:40"
    assert re.fullmatch(r"\d+:\d\d:\d\d", eta)
    terminal = FakeTerminal()
    with progress.bar(5, "off", stream=terminal, enabled=False) as off:
        off.update(5)
    assert terminal.getvalue() == "" and off.n == 5
    with progress.bar(None, "frames", unit="frame", stream=FakeTerminal()) as frames:
        frames.update(3)  # an unknown total counts without an ETA
    assert frames.n == 3


def test_test_script_counts_every_file_on_its_bar(tmp_path, monkeypatch):
    """process_image_files advances the bar once per file, failed files included."""
    from face_aging import images, inference
    from face_aging.ipcgan import inference as ipcgan_inference

    inputs = tmp_path / "in"
    inputs.mkdir()
    for i in range(3):
        Image.fromarray(np.full((40, 40, 3), 60 * i, np.uint8)).save(inputs / f"f{i}.png")
    (inputs / "broken.png").write_bytes(b"not an image")
    terminal = FakeTerminal()
    bar = progress.bar(4, "test.py", unit="file", stream=terminal)

    def render(face):
        return face[:8, :8], np.stack([face[:8, :8]])

    target = ipcgan_inference.AgeTarget("group1_21-30", "21-30", np.eye(5, dtype=np.float32)[1])
    summary = inference.process_image_files(images.list_image_files(str(inputs)),
                                            str(tmp_path / "out"), [target], render,
                                            log=bar.write, progress=bar)
    bar.close()
    assert len(summary.processed) == 3 and len(summary.failed) == 1 and bar.n == 4
    assert "4/4" in terminal.getvalue()


def test_the_data_tool_is_quiet_when_not_a_terminal(tmp_path):
    root = tmp_path / "faces"
    for group in range(2):
        (root / str(group)).mkdir(parents=True)
        for i in range(2):
            Image.fromarray(np.full((40, 40, 3), 50 + 80 * group, np.uint8)).save(
                root / str(group) / f"{i}.png")
    result = subprocess.run([sys.executable, "-m", "face_aging.data.prepare", "--dataset=folder",
                             f"--input={root}", f"--output_dir={tmp_path / 'out'}",
                             "--image_size=32", "--label_pairs=4", "--num_workers=1",
                             "--test_fraction=0", "--age_bins=20"], cwd=REPO,
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""  # no bar, no progress lines in a log
    assert "kept 4" in result.stdout
    assert len(os.listdir(tmp_path / "out" / "images")) >= 1
