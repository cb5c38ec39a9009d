"""The pre-import environment of the training entry points (train_ipcgan, train_cyclegan, pretrain)."""
import os

import pytest

from face_aging import runtime_env
from face_aging.runtime_env import prepare_tf_environment


def test_deterministic_turns_onednn_off_and_log_level_is_only_a_default(monkeypatch):
    monkeypatch.delenv("TF_ENABLE_ONEDNN_OPTS", raising=False)
    monkeypatch.setenv("TF_CPP_MIN_LOG_LEVEL", "3")
    prepare_tf_environment(["train.py", "--seed=1"])
    assert "TF_ENABLE_ONEDNN_OPTS" not in os.environ
    for flag in ("--deterministic", "--deterministic=true", "--deterministic=True"):
        monkeypatch.delenv("TF_ENABLE_ONEDNN_OPTS", raising=False)
        prepare_tf_environment(["train.py", flag])
        assert os.environ["TF_ENABLE_ONEDNN_OPTS"] == "0"
    assert os.environ["TF_CPP_MIN_LOG_LEVEL"] == "3"  # the user's setting stays
    # the program name is never read as a flag
    monkeypatch.delenv("TF_ENABLE_ONEDNN_OPTS", raising=False)
    prepare_tf_environment(["--deterministic"])
    assert "TF_ENABLE_ONEDNN_OPTS" not in os.environ


@pytest.mark.parametrize("args, on", [
    (["--deterministic=1"], True), (["--deterministic=t"], True), (["--deterministic=TRUE"], True),
    (["--list_dir=x", "--deterministic", "--seed", "3"], True),
    (["--deterministic", "--nodeterministic"], False), (["--nodeterministic"], False),
    (["--deterministic=0"], False), (["--deterministic=maybe"], False),  # absl rejects it later
    (["--flagfile={flagfile}"], True), (["--flagfile={flagfile}", "--nodeterministic"], False),
    (["--flagfile={tmp}/missing.cfg"], False), (["--seed=1"], False)])
def test_deterministic_is_read_as_absl_reads_it(monkeypatch, tmp_path, args, on):
    """Any spelling absl accepts, the last one winning, and --flagfile turn oneDNN off: a
    string match had missed =1, =t, =TRUE and flag files (determinism on, oneDNN on)."""
    flagfile = tmp_path / "run.cfg"
    flagfile.write_text("--seed=2\n--deterministic\n")
    monkeypatch.delenv("TF_ENABLE_ONEDNN_OPTS", raising=False)
    argv = ["train_ipcgan.py"] + [a.format(flagfile=flagfile, tmp=tmp_path) for a in args]
    prepare_tf_environment(argv)
    assert os.environ.get("TF_ENABLE_ONEDNN_OPTS") == ("0" if on else None)
    assert runtime_env.boolean_flag(argv, "deterministic") is on


def test_verbose_is_read_as_absl_reads_it(monkeypatch):
    monkeypatch.delenv(runtime_env.VERBOSE_ENV, raising=False)
    assert runtime_env.verbose_requested(["prog", "--verbose=1", "--seed=2"])
    assert runtime_env.verbose_requested(["prog", "--verbose=yes"]) is False  # absl: a bad value
    assert not runtime_env.verbose_requested(["prog", "--verbose", "--noverbose"])
    assert not runtime_env.verbose_requested(["--verbose"])  # the program name
    monkeypatch.setenv(runtime_env.VERBOSE_ENV, "on")
    assert runtime_env.verbose_requested(["prog"])


def test_configure_determinism_turns_op_determinism_on_and_grappler_off():
    """In a fresh process (the settings are process-wide): op determinism, one intra-op
    thread, and no Grappler rewrites (their result varied between processes)."""
    import subprocess
    import sys

    code = ("from face_aging.engine.setup import configure_determinism\n"
            "import tensorflow as tf\n"
            "from tensorflow.python.framework import config\n"
            "configure_determinism(0, True)\n"
            "print(tf.config.optimizer.get_experimental_options().get('disable_meta_optimizer'),"
            " tf.config.threading.get_intra_op_parallelism_threads(),"
            " config.is_op_determinism_enabled())\n")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2"), timeout=300)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["True", "1", "True"]


#: Calls a console script's target (``module:function`` from pyproject.toml) in this fresh
#: process as the installed script would, then reports TF_ENABLE_ONEDNN_OPTS at exit.
CONSOLE_RUNNER = r"""
import atexit, importlib, os, sys
target, args = sys.argv[1], sys.argv[2:]
atexit.register(lambda: print("[onednn=%s tensorflow=%s]" % (
    os.environ.get("TF_ENABLE_ONEDNN_OPTS"), "tensorflow" in sys.modules)))
module, function = target.split(":")
sys.argv = [target.split(".")[-1], *args]
getattr(importlib.import_module(module), function)()
"""


def _console_scripts():
    import tomllib

    from conftest import REPO

    with open(REPO / "pyproject.toml", "rb") as f:
        return tomllib.load(f)["project"]["scripts"]


@pytest.mark.parametrize("script", ["face-aging-train-ipcgan", "face-aging-train-cyclegan",
                                    "face-aging-pretrain"])
@pytest.mark.parametrize("spelling", ["--deterministic=t", "--flagfile={flagfile}"])
def test_console_scripts_turn_onednn_off_before_tensorflow(tmp_path, script, spelling):
    """The training console scripts read --deterministic (any spelling, a flag file) before
    anything imports TensorFlow, in a fresh process, as the documented commands do."""
    import subprocess
    import sys

    flagfile = tmp_path / "run.cfg"
    flagfile.write_text("--deterministic\n")
    env = {k: v for k, v in os.environ.items() if k != "TF_ENABLE_ONEDNN_OPTS"}
    result = subprocess.run([sys.executable, "-c", CONSOLE_RUNNER, _console_scripts()[script],
                             spelling.format(flagfile=flagfile), "--helpshort"],
                            cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert "Traceback" not in result.stderr, result.stderr[-2000:]
    assert result.stdout.rstrip().splitlines()[-1] == "[onednn=0 tensorflow=False]", \
        result.stdout[-2000:]
