"""The pre-import environment of the training entry points (train_ipcgan, train_cyclegan, pretrain)."""
import os

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


def test_configure_determinism_turns_op_determinism_on_and_grappler_off():
    """In a fresh process (the settings are process-wide): op determinism, one intra-op
    thread, and no Grappler rewrites (their result varied between processes)."""
    import subprocess
    import sys

    code = ("from face_aging.training_loop import configure_determinism\n"
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
