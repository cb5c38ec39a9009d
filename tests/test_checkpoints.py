"""Importing the release's TF1 checkpoints and the conversion CLI."""
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf

from conftest import REPO, write_tf1_checkpoint
from face_aging import backbones, checkpoints
from face_aging.backbones import alexnet as alexnet_backbone
from face_aging.backbones.alexnet import AlexNet
from face_aging.ipcgan import checkpoints as ipcgan_checkpoints
from face_aging.ipcgan.networks import Discriminator, Generator, build_models, one_hot_age


def _release_values(mapping, rng, with_debias=True):
    values = {}
    for name, variable in mapping.items():
        if name.endswith(("/biased", "/local_step")) and not with_debias:
            continue
        values[name] = rng.standard_normal(variable.shape, dtype=np.float32)
    return values


def _gan_checkpoint(tmp_path, rng, with_debias=True, extras=True):
    g, d = Generator(), Discriminator()
    build_models(g, d)
    values = _release_values(ipcgan_checkpoints.release_variable_map(g, d), rng, with_debias)
    if extras:  # what the release's files also hold and an importer must ignore
        values["generator/conv1/weights/Adam"] = np.zeros((7, 7, 8, 32), np.float32)
        values["generator/conv1/weights/Adam_1"] = np.zeros((7, 7, 8, 32), np.float32)
        values["beta1_power"] = np.float32(0.5)
        values["beta2_power"] = np.float32(0.999)
    prefix = write_tf1_checkpoint(str(tmp_path / "acgan.model-399999"), values)
    return prefix, values


def test_tf1_gan_checkpoint_round_trips_exactly(tmp_path):
    rng = np.random.default_rng(0)
    prefix, values = _gan_checkpoint(tmp_path, rng)
    g, d = Generator(), Discriminator()
    build_models(g, d)
    assigned = ipcgan_checkpoints.load_tf1_checkpoint(prefix, generator=g, discriminator=d)
    mapping = ipcgan_checkpoints.release_variable_map(g, d)
    assert set(assigned) == set(mapping)
    for name, variable in mapping.items():
        np.testing.assert_array_equal(variable.numpy(), values[name], err_msg=name)


def test_tf1_alexnet_checkpoint_round_trips_exactly(tmp_path):
    rng = np.random.default_rng(1)
    a = AlexNet()
    build_models(alexnet=a)
    mapping = ipcgan_checkpoints.release_variable_map(alexnet=a)
    values = {n: rng.standard_normal(v.shape, dtype=np.float32) for n, v in mapping.items()}
    prefix = write_tf1_checkpoint(str(tmp_path / "alexnet.model-292000"), values)
    b = AlexNet()
    build_models(alexnet=b)
    ipcgan_checkpoints.load_tf1_checkpoint(prefix, alexnet=b)
    for name, variable in ipcgan_checkpoints.release_variable_map(alexnet=b).items():
        np.testing.assert_array_equal(variable.numpy(), values[name], err_msg=name)


def test_missing_and_misshaped_variables_are_listed_in_one_message(tmp_path):
    rng = np.random.default_rng(2)
    g = Generator()
    build_models(generator=g)
    values = _release_values(ipcgan_checkpoints.release_variable_map(generator=g), rng)
    del values["generator/unit_3/sub2/conv2/weights"]
    del values["generator/bn5/gamma"]
    values["generator/conv4/biases"] = np.zeros(4, np.float32)
    prefix = write_tf1_checkpoint(str(tmp_path / "acgan.model-1"), values)
    before = g.conv1.kernel.numpy().copy()
    with pytest.raises(checkpoints.CheckpointMismatchError) as info:
        ipcgan_checkpoints.load_tf1_checkpoint(prefix, generator=g)
    message = str(info.value)
    assert "\n" not in message
    assert "missing 2: generator/bn5/gamma, generator/unit_3/sub2/conv2/weights" in message
    assert "generator/conv4/biases (4,) (model expects (3,))" in message
    np.testing.assert_array_equal(g.conv1.kernel.numpy(), before)  # nothing half-assigned


def test_without_debias_state_training_continues_the_imported_average(tmp_path):
    rng = np.random.default_rng(3)
    prefix, values = _gan_checkpoint(tmp_path, rng, with_debias=False, extras=False)
    g, d = Generator(), Discriminator()
    build_models(g, d)
    ipcgan_checkpoints.load_tf1_checkpoint(prefix, generator=g, discriminator=d)
    imported = g.bn1.moving_mean.numpy().copy()
    x = tf.random.normal([2, 128, 128, 3]) * 40
    age = one_hot_age([0, 1])
    y = g.conv1(tf.concat([x, tf.tile(age[:, None, None, :], [1, 128, 128, 1])], -1))
    batch_mean = tf.reduce_mean(y, [0, 1, 2]).numpy()
    g((x, age), training=True)
    np.testing.assert_allclose(g.bn1.moving_mean.numpy(), 0.9 * imported + 0.1 * batch_mean,
                               rtol=1e-4, atol=1e-4)


def test_alias_names_w_and_b_are_accepted(tmp_path):
    a = AlexNet()
    build_models(alexnet=a)
    values = {}
    for layer in backbones.ALEXNET_AGE:
        values[f"alexnet/{layer}/W"] = np.full(getattr(a, layer).kernel.shape, 0.5, np.float32)
        values[f"alexnet/{layer}/b"] = np.full(getattr(a, layer).bias.shape, 0.25, np.float32)
    prefix = write_tf1_checkpoint(str(tmp_path / "age_classifier.model-300000"), values)
    alexnet_backbone.load_alexnet_layers(prefix, a, backbones.ALEXNET_AGE)
    assert float(a.age_fc8.kernel[0, 0]) == 0.5 and float(a.age_fc8.bias[0]) == 0.25
    with pytest.raises(checkpoints.CheckpointMismatchError, match="missing 10: alexnet/conv1"):
        alexnet_backbone.load_alexnet_layers(prefix, a, backbones.ALEXNET_TRUNK)


def test_cli_converts_a_release_checkpoint_to_tf2(tmp_path):
    rng = np.random.default_rng(4)
    prefix, values = _gan_checkpoint(tmp_path, rng)
    out = tmp_path / "converted"
    result = subprocess.run([sys.executable, "-m", "face_aging.checkpoints",
                             f"--tf1_checkpoint={prefix}", f"--output_dir={out}"],
                            cwd=REPO, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    assert "ckpt-399999" in result.stdout and "discriminator, generator" in result.stdout
    g = Generator()
    build_models(generator=g)
    restored = ipcgan_checkpoints.restore_models(str(out), generator=g)
    assert restored.endswith("ckpt-399999")
    np.testing.assert_array_equal(g.units[2].conv1.kernel.numpy(),
                                  values["generator/unit_2/sub1/conv1/weights"])
    bad = subprocess.run([sys.executable, "-m", "face_aging.checkpoints",
                          f"--tf1_checkpoint={tmp_path / 'nope'}", f"--output_dir={out}"],
                         cwd=REPO, capture_output=True, text=True, timeout=300)
    assert bad.returncode != 0
    assert "nope: no such checkpoint" in bad.stderr and "Traceback" not in bad.stderr


def test_resolve_checkpoint_by_model_index(tmp_path):
    g = Generator()
    build_models(generator=g, image_size=16)
    manager = tf.train.CheckpointManager(tf.train.Checkpoint(generator=g), str(tmp_path), 5)
    manager.save(10)
    manager.save(20)
    assert checkpoints.resolve_checkpoint(str(tmp_path)).endswith("ckpt-20")
    assert checkpoints.resolve_checkpoint(str(tmp_path), 10).endswith("ckpt-10")
    with pytest.raises(FileNotFoundError, match="no checkpoint of step 15 .steps found: 10, 20"):
        checkpoints.resolve_checkpoint(str(tmp_path), 15)


def test_tf2_checkpoint_holds_every_variable(tmp_path):
    g, d = Generator(), Discriminator()
    build_models(g, d, image_size=16)
    rng = np.random.default_rng(5)
    for v in g.variables + d.variables:
        v.assign(rng.standard_normal(v.shape, dtype=np.float32))
    prefix = tf.train.Checkpoint(generator=g, discriminator=d).write(str(tmp_path / "ck"))
    g2, d2 = Generator(), Discriminator()
    build_models(g2, d2, image_size=16)
    ipcgan_checkpoints.restore_models(prefix, generator=g2, discriminator=d2)
    for a, b in zip(g.variables + d.variables, g2.variables + d2.variables):
        assert a.path == b.path
        np.testing.assert_array_equal(a.numpy(), b.numpy(), err_msg=a.path)
