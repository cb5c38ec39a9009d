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
