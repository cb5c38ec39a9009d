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
