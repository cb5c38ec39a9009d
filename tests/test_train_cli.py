"""train_ipcgan.py end to end: checkpoints, sample grids, TensorBoard events, resume, bad flags."""
import json
import os
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf

from conftest import REPO, SHARED_DATA
from face_aging import checkpoints
from face_aging.backbones import alexnet as alexnet_backbone
from face_aging.backbones.alexnet import AlexNet, build_alexnet
from face_aging.data import lists


def run_train(*args, timeout=600):
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2")
    return subprocess.run([sys.executable, "train_ipcgan.py", *args], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=timeout)


def _event_tags(log_dir):
    tags = set()
    for name in os.listdir(log_dir):
        for record in tf.data.TFRecordDataset(os.path.join(log_dir, name)):
            event = tf.compat.v1.Event.FromString(record.numpy())
            tags.update(v.tag for v in event.summary.value)
    return tags


@pytest.fixture(scope="module")
def tf2_alexnet(tmp_path_factory):
    a = AlexNet()
    build_alexnet(a)
    return alexnet_backbone.save_alexnet(a, str(tmp_path_factory.mktemp("alexnet") / "alexnet"))


def test_trains_writes_everything_and_resumes(tiny_dataset, tmp_path, tf2_alexnet):
    ckpt, samples = tmp_path / "ckpt", tmp_path / "samples"
    common = [f"--list_dir={tiny_dataset}", "--batch_size=2", "--image_size=32",
              f"--checkpoint_dir={ckpt}", f"--sample_dir={samples}", "--log_interval=1",
              "--save_interval=2", "--sample_interval=2",
              f"--alexnet_pretrained_model={tf2_alexnet}", f"--age_pretrained_model={tf2_alexnet}"]
    first = run_train(*common, "--max_steps=2")
    assert first.returncode == 0, first.stderr
    assert "step 2/2" in first.stdout and "steps/s" in first.stdout and "ETA" in first.stdout
    lines = first.stdout.splitlines()
    compiling = lines.index("compiling the training step (step 1 of 2 traces and compiles it: "
                            "slow, and left out of the rate)...")
    step_1 = next(i for i, line in enumerate(lines) if line.startswith("step 1/2 "))
    assert compiling < step_1 and "| first step " in lines[step_1] \
        and lines[step_1].endswith("(compiling)  ETA ?")
    assert checkpoints.resolve_checkpoint(str(ckpt)).endswith("ckpt-2")
    grids = sorted(os.listdir(samples))
    assert grids == [f"step0000002_{n}.png" for n in
                     ("group0", "group1", "group2", "group3", "group4", "source")]
    # batch of 2 at 32x32: one row of ceil(sqrt(2)) = 2 columns
    assert tf.io.decode_png(tf.io.read_file(str(samples / grids[0]))).shape == (32, 64, 3)
    tags = _event_tags(ckpt / "logs")
    assert {"loss/d_loss", "loss/g_loss", "loss/fea_loss", "loss/age_loss",
            "samples/source", "samples/group3"} <= tags
    options = json.loads((ckpt / "training_options.json").read_text())
    assert options["gan_loss_weight"] == 75.0 and options["fea_layer_name"] == "conv5"

    second = run_train(*common, "--max_steps=3")
    assert second.returncode == 0, second.stderr
    assert "at step 2" in second.stdout and "step 3/3" in second.stdout
    assert "step 1/" not in second.stdout
    assert checkpoints.resolve_checkpoint(str(ckpt)).endswith("ckpt-3")
    step = tf.train.load_checkpoint(str(ckpt / "ckpt-3")).get_tensor(
        "step/.ATTRIBUTES/VARIABLE_VALUE")
    assert int(step) == 3


# Bad flags (each exactly one line, without TensorFlow): tests/test_cli.py.


def test_missing_pretrained_alexnet_needs_the_explicit_flag(tiny_dataset, tmp_path):
    result = run_train(f"--list_dir={tiny_dataset}", "--dry_run", timeout=120)
    assert result.returncode != 0
    assert "--alexnet_pretrained_model=pre_trained/alexnet.model-292000: no such checkpoint" \
        in result.stderr
    ok = run_train(f"--list_dir={tiny_dataset}", "--dry_run", "--allow_random_alexnet",
                   f"--checkpoint_dir={tmp_path / 'c'}", "--per_sample_targets", timeout=120)
    assert ok.returncode == 0, ok.stderr
    assert json.loads(ok.stdout)["alexnet_pretrained_model"] is None
    assert json.loads(ok.stdout)["per_sample_targets"] is True
    assert not (tmp_path / "c").exists()  # a dry run writes nothing


def test_one_run_on_real_utkface_faces(tmp_path):
    folder = SHARED_DATA / "utkface"
    if not folder.is_dir():
        pytest.skip("../shared/data/utkface is not present")
    entries = []
    for name in sorted(os.listdir(folder)):
        fields = name.split("_")
        if len(fields) == 4 and fields[0].isdigit():
            age = int(fields[0])
            group = 0 if age <= 20 else 1 if age <= 30 else 2 if age <= 40 else 3 if age <= 50 else 4
            if sum(1 for _, g in entries if g == group) < 4:
                entries.append((name, group))
        if len(entries) == 20:
            break
    lists.write_image_list(str(tmp_path / "train.txt"), entries)
    for group in range(5):
        lists.write_image_list(str(tmp_path / f"train_age_group_{group}.txt"),
                               [e for e in entries if e[1] == group])
    lists.write_label_pairs(str(tmp_path / "train_label_pair.txt"), [(4, 0), (0, 2)])
    result = run_train(f"--list_dir={tmp_path}", f"--root_folder={folder}", "--batch_size=4",
                       "--max_steps=2", "--allow_random_alexnet", "--log_interval=1",
                       f"--checkpoint_dir={tmp_path / 'ckpt'}", f"--sample_dir={tmp_path / 's'}")
    assert result.returncode == 0, result.stderr
    assert "RANDOMLY INITIALISED ALEXNET" in result.stdout + result.stderr
    losses = [line for line in result.stdout.splitlines() if line.startswith("step 2/2")]
    values = [float(x) for x in losses[0].split("|")[0].split()[3::2]]
    assert len(values) == 4 and all(np.isfinite(values))
    sources = tf.io.decode_png(tf.io.read_file(str(tmp_path / "s" / "step0000002_source.png")))
    assert sources.shape == (256, 256, 3) and float(tf.math.reduce_std(tf.cast(sources, tf.float32))) > 10


def test_cache_keeps_the_decoded_faces_out_of_the_checkpoint(tiny_dataset, tmp_path):
    """With --cache the iterator's state is the whole decoded dataset (its shuffle buffer),
    so the checkpoint leaves the input position out and a resume reshuffles from seed+step."""
    ckpt = tmp_path / "ckpt"
    common = [f"--list_dir={tiny_dataset}", "--batch_size=2", "--image_size=16", "--cache",
              f"--checkpoint_dir={ckpt}", f"--sample_dir={tmp_path / 's'}", "--save_interval=2",
              "--sample_interval=100", "--allow_random_alexnet"]
    first = run_train(*common, "--max_steps=2")
    assert first.returncode == 0, first.stderr
    names = [name for name, _ in tf.train.list_variables(str(ckpt / "ckpt-2"))]
    assert any(n.startswith("generator/") for n in names)
    assert not any("data_iterator" in n for n in names)
    second = run_train(*common, "--max_steps=3")
    assert second.returncode == 0, second.stderr
    assert "reshuffled from seed 0 + step 2" in second.stdout and "step 3/3" in second.stdout
    # Without --cache the same checkpoint lacks the input position it needs: one line.
    third = run_train(*[a for a in common if a != "--cache"], "--max_steps=4")
    assert third.returncode == 1
    assert third.stderr.strip().splitlines()[-1].startswith(f"error: {ckpt / 'ckpt-3'} does not hold")
