"""CycleGAN (face_aging.cyclegan, train_cyclegan.py): the reference architecture's shapes and
parameter counts, the layers' arithmetic against numpy, the image pool, the learning-rate
schedule, the losses, the step's update order, the data, and the CLI end to end."""
import json
import os
import signal
import subprocess
import sys

import keras
import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

from conftest import REPO, SHARED_DATA, LoggedProcess, wait_for
from face_aging.cyclegan import layers, losses, schedule
from face_aging.cyclegan.data import (DataError, default_load_size, load_domains,
                                      load_jittered, load_plain, make_unaligned_dataset)
from face_aging.cyclegan.image_pool import ImagePool
from face_aging.cyclegan.networks import (PatchDiscriminator, ResnetGenerator,
                                          default_n_blocks, make_networks)
from face_aging.cyclegan.trainer import LOSS_NAMES, CycleGANTrainer


# --- reference parameter counts, by hand from the layer list ------------------------------
def conv_params(k, c_in, c_out, bias=True):
    return k * k * c_in * c_out + (c_out if bias else 0)


def reference_generator_params(n_blocks, ngf=64):
    return (conv_params(7, 3, ngf)                     # c7s1-64 (IN has no parameters)
            + conv_params(3, ngf, 2 * ngf)             # d128
            + conv_params(3, 2 * ngf, 4 * ngf)         # d256
            + n_blocks * 2 * conv_params(3, 4 * ngf, 4 * ngf)  # R256 x n
            + conv_params(3, 4 * ngf, 2 * ngf)         # u128 (ConvTranspose2d, same count)
            + conv_params(3, 2 * ngf, ngf)             # u64
            + conv_params(7, ngf, 3))                  # c7s1-3


def reference_patchgan_params(ndf=64):
    return (conv_params(4, 3, ndf) + conv_params(4, ndf, 2 * ndf)
            + conv_params(4, 2 * ndf, 4 * ndf) + conv_params(4, 4 * ndf, 8 * ndf)
            + conv_params(4, 8 * ndf, 1))


def test_reference_counts_by_hand():
    # 9472 + 73856 + 295168 + 9 * 1180160 + 295040 + 73792 + 9411
    assert reference_generator_params(9) == 11_378_179
    assert reference_generator_params(6) == 11_378_179 - 3 * 1_180_160 == 7_837_699
    # 3136 + 131200 + 524544 + 2097664 + 8193
    assert reference_patchgan_params() == 2_764_737


def test_resnet_generator_9_blocks_at_256_matches_the_reference():
    g = ResnetGenerator(n_blocks=9)
    stages = g(tf.zeros([1, 256, 256, 3]), stages=True)
    expected = {"c7s1_64": (256, 256, 64), "d128": (128, 128, 128), "d256": (64, 64, 256),
                **{f"block_{i}": (64, 64, 256) for i in range(9)},
                "u128": (128, 128, 128), "u64": (256, 256, 64), "c7s1_3": (256, 256, 3)}
    assert list(stages) == list(expected)
    assert {k: tuple(v.shape[1:]) for k, v in stages.items()} == expected
    assert g.count_params() == reference_generator_params(9) == 11_378_179
    kernels = {v.path.split("/", 1)[1]: tuple(v.shape) for v in g.variables}
    assert kernels["c7s1_64/weights"] == (7, 7, 3, 64)
    assert kernels["d128/weights"] == (3, 3, 64, 128)
    assert kernels["block_8/conv2/weights"] == (3, 3, 256, 256)
    assert kernels["u128/weights"] == (3, 3, 128, 256)  # [kh, kw, out, in]
    assert kernels["c7s1_3/biases"] == (3,)
    assert len(g.variables) == 2 * (6 + 2 * 9)  # a kernel and a bias per conv, nothing else
    out = stages["c7s1_3"].numpy()
    assert np.all(np.abs(out) <= 1.0)


def test_resnet_generator_default_blocks_by_size_and_6_blocks_at_128():
    assert default_n_blocks(256) == 9 and default_n_blocks(512) == 9
    assert default_n_blocks(128) == 6
    g = ResnetGenerator(n_blocks=default_n_blocks(128))
    assert g(tf.zeros([1, 128, 128, 3])).shape == (1, 128, 128, 3)
    assert g.count_params() == reference_generator_params(6) == 7_837_699
    assert [b.name for b in g.blocks] == [f"block_{i}" for i in range(6)]


def test_patchgan_matches_the_reference_70x70():
    d = PatchDiscriminator()
    stages = d(tf.zeros([1, 256, 256, 3]), stages=True)
    assert {k: tuple(v.shape[1:]) for k, v in stages.items()} == {
        "c64": (128, 128, 64), "c128": (64, 64, 128), "c256": (32, 32, 256),
        "c512": (31, 31, 512), "scores": (30, 30, 1)}
    assert d.count_params() == reference_patchgan_params() == 2_764_737
    assert d(tf.zeros([1, 128, 128, 3])).shape == (1, 14, 14, 1)
    assert PatchDiscriminator.receptive_field() == 70
    # 1 + 3 * (1 + 2 + 4 + 8 + 8)
    assert layers.receptive_field([(4, 2)] * 3 + [(4, 1)] * 2) == 70


def test_weights_normal_002_fresh_per_layer_biases_zero():
    g = ResnetGenerator(n_blocks=2, ngf=16)
    g(tf.zeros([1, 32, 32, 3]))
    a, b = g.block_0.conv1.kernel.numpy(), g.block_1.conv1.kernel.numpy()
    assert a.shape == b.shape and not np.allclose(a, b)
    assert abs(float(np.std(np.concatenate([a.ravel(), b.ravel()]))) - 0.02) < 0.001
    assert abs(float(np.mean(a))) < 0.001
    assert all(not np.any(v.numpy()) for v in g.variables if v.path.endswith("biases"))


def test_instance_norm_matches_numpy():
    x = np.random.default_rng(0).normal(3.0, 2.0, (2, 5, 4, 3)).astype(np.float32)
    mean = x.mean(axis=(1, 2), keepdims=True)
    var = x.var(axis=(1, 2), keepdims=True)  # biased, as nn.InstanceNorm2d
    expected = (x - mean) / np.sqrt(var + 1e-5)
    np.testing.assert_allclose(layers.instance_norm(tf.constant(x)).numpy(), expected,
                               rtol=1e-5, atol=1e-5)


def test_reflection_pad_matches_numpy_reflect():
    x = np.arange(2 * 5 * 6 * 2, dtype=np.float32).reshape(2, 5, 6, 2)
    for pad in (1, 3):
        expected = np.pad(x, [(0, 0), (pad, pad), (pad, pad), (0, 0)], mode="reflect")
        np.testing.assert_array_equal(layers.reflection_pad(tf.constant(x), pad).numpy(), expected)


def _torch_conv2d(x, w, b, stride, pad):
    """nn.Conv2d by hand (cross-correlation, zero padding ``pad`` on every side), NHWC."""
    x = np.pad(x, [(0, 0), (pad, pad), (pad, pad), (0, 0)])
    k = w.shape[0]
    oh, ow = (x.shape[1] - k) // stride + 1, (x.shape[2] - k) // stride + 1
    out = np.zeros((x.shape[0], oh, ow, w.shape[3]), np.float64)
    for i in range(oh):
        for j in range(ow):
            patch = x[:, i * stride:i * stride + k, j * stride:j * stride + k, :]
            out[:, i, j, :] = np.tensordot(patch, w, axes=([1, 2, 3], [0, 1, 2]))
    return out + b


def _torch_conv_transpose2d(x, w, b, stride, pad, out_pad):
    """nn.ConvTranspose2d by hand: out[i*s - p + k] += x[i] * w[k]; w is [kh, kw, out, in]."""
    k = w.shape[0]
    oh = (x.shape[1] - 1) * stride - 2 * pad + k + out_pad
    ow = (x.shape[2] - 1) * stride - 2 * pad + k + out_pad
    out = np.zeros((x.shape[0], oh, ow, w.shape[2]), np.float64)
    for i in range(x.shape[1]):
        for j in range(x.shape[2]):
            for ki in range(k):
                for kj in range(k):
                    o, q = i * stride - pad + ki, j * stride - pad + kj
                    if 0 <= o < oh and 0 <= q < ow:
                        out[:, o, q, :] += x[:, i, j, :] @ w[ki, kj].T
    return out + b


def test_strided_conv_uses_pytorch_padding_not_tf_same():
    rng = np.random.default_rng(1)
    x = rng.normal(size=(2, 8, 6, 3)).astype(np.float32)
    layer = layers.conv(4, 3, 2, padding=1)
    layer(tf.constant(x))  # builds it
    layer.bias.assign(rng.normal(size=4).astype(np.float32))
    y = layer(tf.constant(x)).numpy()
    expected = _torch_conv2d(x, layer.kernel.numpy(), layer.bias.numpy(), 2, 1)
    assert y.shape == (2, 4, 3, 4)
    np.testing.assert_allclose(y, expected, rtol=1e-4, atol=1e-5)
    same = tf.nn.conv2d(x, layer.kernel, 2, "SAME").numpy() + layer.bias.numpy()
    assert not np.allclose(same, expected, atol=1e-3)  # TF's SAME is half a pixel off


def test_transposed_conv_matches_pytorch_and_doubles_exactly():
    rng = np.random.default_rng(2)
    x = rng.normal(size=(2, 3, 4, 5)).astype(np.float32)
    layer = layers.TransposedConv(3, 3, 2, 1, 1)
    layer(tf.constant(x))
    layer.bias.assign(rng.normal(size=3).astype(np.float32))
    y = layer(tf.constant(x)).numpy()
    assert y.shape == (2, 6, 8, 3)
    expected = _torch_conv_transpose2d(x, layer.kernel.numpy(), layer.bias.numpy(), 2, 1, 1)
    np.testing.assert_allclose(y, expected, rtol=1e-4, atol=1e-5)
    # output_padding beyond padding (zero-extended) still follows the formula
    wide = layers.TransposedConv(2, 4, 3, 0, 2)
    yw = wide(tf.constant(x)).numpy()
    np.testing.assert_allclose(yw, _torch_conv_transpose2d(x, wide.kernel.numpy(),
                                                           wide.bias.numpy(), 3, 0, 2),
                               rtol=1e-4, atol=1e-5)


# --- image pool ---------------------------------------------------------------------------
def _pixel(value):
    return tf.fill([1, 1, 1, 1], float(value))


def test_pool_returns_new_images_until_full_then_a_stored_one_half_the_time():
    pool = ImagePool(50, [1, 1, 1], seed=3)
    query = tf.function(pool.query)
    for i in range(1, 51):  # filling: the new image comes back and is stored
        assert float(query(_pixel(i))[0, 0, 0, 0]) == i
        assert int(pool.count.numpy()) == i
    assert sorted(pool.images.numpy().ravel().tolist()) == list(range(1, 51))
    stored_returns, n = 0, 2000
    for i in range(51, 51 + n):
        before = pool.images.numpy().ravel().copy()
        out = float(query(_pixel(i))[0, 0, 0, 0])
        after = pool.images.numpy().ravel()
        if out == i:  # the new image; the pool is unchanged
            np.testing.assert_array_equal(before, after)
        else:  # a stored image, replaced by the new one in its slot
            stored_returns += 1
            slot = int(np.flatnonzero(before == out)[0])
            assert after[slot] == i
            assert np.array_equal(np.delete(before, slot), np.delete(after, slot))
    # Binomial(2000, 0.5): sd 22.4; +-110 is 4.9 sd
    assert abs(stored_returns - n / 2) < 110, stored_returns
    assert int(pool.count.numpy()) == 50


def test_pool_is_deterministic_checkpointed_and_batched(tmp_path):
    def run(pool, values):
        return [float(pool.query(_pixel(v))[0, 0, 0, 0]) for v in values]

    a, b = ImagePool(4, [1, 1, 1], seed=7), ImagePool(4, [1, 1, 1], seed=7)
    assert run(a, range(1, 30)) == run(b, range(1, 30))
    path = tf.train.Checkpoint(pool=a).write(str(tmp_path / "pool"))
    restored = ImagePool(4, [1, 1, 1], seed=99)
    tf.train.Checkpoint(pool=restored).read(path).assert_consumed()
    assert run(restored, range(30, 60)) == run(a, range(30, 60))  # contents and RNG state
    batch = ImagePool(3, [2, 2, 3], seed=0).query(tf.ones([5, 2, 2, 3]))
    assert batch.shape == (5, 2, 2, 3)
    x = tf.random.normal([2, 4, 4, 3])
    np.testing.assert_array_equal(ImagePool(0, [4, 4, 3]).query(x).numpy(), x.numpy())


# --- schedule -------------------------------------------------------------------------------
def test_linear_schedule_values_as_the_reference():
    m = lambda e: schedule.linear_multiplier(e, 100, 100)
    # lambda_rule(epoch) = 1 - max(0, epoch + 1 - 100) / 101, epoch 0-based
    assert m(0) == 1.0 and m(50) == 1.0 and m(99) == 1.0
    assert m(100) == pytest.approx(100 / 101)
    assert m(150) == pytest.approx(50 / 101)
    assert m(199) == pytest.approx(1 / 101)
    assert m(200) == 0.0 and m(250) == 0.0  # past the schedule: clamped, not negative
    lr = lambda s: schedule.learning_rate(s, 10, 2e-4, 100, 100)
    assert lr(0) == 2e-4 and lr(999) == 2e-4          # epochs 0..99
    assert lr(1000) == pytest.approx(2e-4 * 100 / 101)  # first step of epoch 100
    assert lr(1999) == pytest.approx(2e-4 / 101)
    assert schedule.total_steps(2355) == 471_000
    assert schedule.linear_multiplier(3, 2, 4) == pytest.approx(1 - 2 / 5)


# --- losses -------------------------------------------------------------------------------
def test_losses_against_hand_values():
    real = tf.constant([[0.5, 1.5], [1.0, -1.0]])
    fake = tf.constant([[0.0, 0.5], [2.0, 1.0]])
    # lsgan: mean((s - 1)^2) = (0.25 + 0.25 + 0 + 4) / 4 ; mean(s^2) = (0 + .25 + 4 + 1) / 4
    assert float(losses.gan_loss(real, True)) == pytest.approx(4.5 / 4)
    assert float(losses.gan_loss(fake, False)) == pytest.approx(5.25 / 4)
    assert float(losses.discriminator_loss(real, fake)) == pytest.approx(0.5 * (4.5 + 5.25) / 4)
    # vanilla: BCE(sigmoid(0), 1) = log 2
    assert float(losses.gan_loss(tf.zeros([2, 2]), True, "vanilla")) == pytest.approx(np.log(2))
    assert float(losses.l1(real, fake)) == pytest.approx((0.5 + 1 + 1 + 2) / 4)
    a, b = tf.fill([1, 2, 2, 3], 0.5), tf.fill([1, 2, 2, 3], -0.5)
    out = losses.generator_losses(
        real_a=a, real_b=b, fake_a=None, fake_b=None, rec_a=a + 0.1, rec_b=b - 0.2,
        idt_a=b + 0.3, idt_b=a, d_a_fake_b=tf.fill([1, 2, 2, 1], 0.5),
        d_b_fake_a=tf.fill([1, 2, 2, 1], 2.0))
    assert float(out["G_A"]) == pytest.approx(0.25)
    assert float(out["G_B"]) == pytest.approx(1.0)
    assert float(out["cycle_A"]) == pytest.approx(10 * 0.1)
    assert float(out["cycle_B"]) == pytest.approx(10 * 0.2)
    assert float(out["idt_A"]) == pytest.approx(0.5 * 10 * 0.3)  # lambda_idt * lambda_B * L1
    assert float(out["idt_B"]) == pytest.approx(0.0)
    assert float(out["G"]) == pytest.approx(0.25 + 1 + 1 + 2 + 1.5)
    none = losses.generator_losses(a, b, None, None, a, b, None, None, tf.ones([1]),
                                   tf.ones([1]), lambda_identity=0.0)
    assert float(none["idt_A"]) == 0.0 and float(none["G"]) == 0.0


# --- the training step ---------------------------------------------------------------------
@pytest.fixture
def narrow_networks():
    keras.utils.set_random_seed(0)
    return make_networks(n_blocks=1, ngf=4, ndf=4, crop_size=32)


def _batch(seed=0, size=32):
    rng = np.random.default_rng(seed)
    return {k: tf.constant(rng.uniform(-1, 1, (1, size, size, 3)).astype(np.float32))
            for k in ("A", "B")}


def test_step_updates_generators_then_discriminators_on_pre_update_fakes_and_undoes_nan(
        narrow_networks):
    g_a, g_b, d_a, d_b = narrow_networks
    batch = _batch()
    real_a, real_b = batch["A"], batch["B"]
    fake_b, fake_a = g_a(real_a), g_b(real_b)
    expected = losses.generator_losses(real_a, real_b, fake_a, fake_b, g_b(fake_b), g_a(fake_a),
                                       g_a(real_b), g_b(real_a), d_a(fake_b), d_b(fake_a))
    expected["D_A"] = losses.discriminator_loss(d_a(real_b), d_a(fake_b))  # pool not yet full
    expected["D_B"] = losses.discriminator_loss(d_b(real_a), d_b(fake_a))
    weights = {m.name: [v.numpy() for v in m.variables] for m in narrow_networks}
    trainer = CycleGANTrainer(g_a, g_b, d_a, d_b, (32, 32, 3), lr=1e-2)
    out = trainer.train_step(batch)
    assert bool(out.pop("finite")) and list(out) == list(LOSS_NAMES)
    for name in LOSS_NAMES:
        assert float(out[name]) == pytest.approx(float(expected[name]), rel=1e-4, abs=1e-6), name
    for m in narrow_networks:  # all four networks moved
        assert any(not np.array_equal(a, v.numpy()) for a, v in zip(weights[m.name], m.variables))
    assert int(trainer.pool_a.count.numpy()) == 1 and int(trainer.pool_b.count.numpy()) == 1
    np.testing.assert_allclose(trainer.pool_b.images[0].numpy(), fake_b[0].numpy(), atol=1e-5)
    assert int(trainer.g_optimizer.iterations.numpy()) == 1
    trainer.set_learning_rate(5e-5)
    assert float(trainer.d_optimizer.learning_rate.numpy()) == pytest.approx(5e-5)

    # A step with a non-finite number is undone whole: networks, optimizers, pools, RNGs.
    before = [tf.identity(v).numpy() for v in trainer.state_variables()]
    bad = _batch(2)
    bad["A"] = tf.tensor_scatter_nd_update(bad["A"], [[0, 3, 3, 0]], [np.nan])
    out = trainer.train_step(bad)
    assert not bool(out["finite"])
    for a, v in zip(before, trainer.state_variables()):
        np.testing.assert_array_equal(a, v.numpy())


# --- data ---------------------------------------------------------------------------------
def write_faces(folder, count, seed=0, size=(40, 36)):
    os.makedirs(folder, exist_ok=True)
    rng = np.random.default_rng(seed)
    for i in range(count):
        pixels = rng.integers(0, 256, (size[0], size[1], 3), dtype=np.uint8)
        Image.fromarray(pixels).save(os.path.join(folder, f"face_{i}.jpg"), quality=90)
    return str(folder)


def test_jitter_resizes_crops_flips_deterministically(tmp_path):
    assert default_load_size(256) == 286 and default_load_size(128) == 143
    image = np.tile(np.arange(32, dtype=np.uint8)[None, :, None] * 8, (32, 1, 3))
    path = tmp_path / "ramp.png"
    Image.fromarray(image).save(path)
    p = tf.constant(str(path))
    plain = load_plain(p, 32).numpy()
    np.testing.assert_allclose(plain, image / 127.5 - 1.0, atol=1e-6)
    seen = set()
    for s in range(12):  # load == crop: only the flip is random
        out = load_jittered(p, tf.constant([0, s], tf.int64), 32, 32).numpy()
        seen.add("mirrored" if np.allclose(out, plain[:, ::-1]) else
                 "plain" if np.allclose(out, plain) else "other")
    assert seen == {"plain", "mirrored"}
    a = load_jittered(p, tf.constant([1, 5], tf.int64), 40, 32).numpy()
    b = load_jittered(p, tf.constant([1, 5], tf.int64), 40, 32).numpy()
    crops = {load_jittered(p, tf.constant([1, s], tf.int64), 40, 32, flip=False).numpy()[0, 0, 0]
             for s in range(12)}
    assert a.shape == (32, 32, 3) and np.array_equal(a, b) and len(crops) > 1
    assert -1.0 <= a.min() and a.max() <= 1.0


def test_domains_from_folders_age_list_and_bad_files(tmp_path):
    young = write_faces(tmp_path / "young", 3)
    write_faces(tmp_path / "old" / "nested", 2, seed=1)
    (tmp_path / "young" / "broken.jpg").write_bytes(b"not a jpeg at all")
    (tmp_path / "young" / "notes.txt").write_text("ignored")
    whole = (tmp_path / "old" / "nested" / "face_0.jpg").read_bytes()
    (tmp_path / "old" / "truncated.jpg").write_bytes(whole[:len(whole) // 2])
    domains = load_domains(young, str(tmp_path / "old"))
    assert len(domains.young) == 3 and len(domains.old) == 2
    assert domains.steps_per_epoch(1) == 3 and domains.steps_per_epoch(2) == 1
    assert "left out 2 unreadable file(s)" in domains.summary()
    assert sorted(os.path.basename(p) for p, _ in domains.skipped) == ["broken.jpg",
                                                                      "truncated.jpg"]
    batch = next(iter(make_unaligned_dataset(domains, 2, 16, 20)))
    assert batch["A"].shape == (2, 16, 16, 3) and batch["B"].shape == (2, 16, 16, 3)

    listing = tmp_path / "train_age.txt"
    listing.write_text("young/face_0.jpg 22\nyoung/face_1.jpg 35\nold/nested/face_0.jpg 61\n"
                       "young/face_2.jpg 50\n")
    d = load_domains(age_list=str(listing), young_max_age=30, old_min_age=50)
    assert [os.path.basename(p) for p in d.young] == ["face_0.jpg"]
    assert sorted(os.path.relpath(p, tmp_path) for p in d.old) == [
        "old/nested/face_0.jpg", "young/face_2.jpg"]
    assert len(load_domains(age_list=str(listing), max_dataset_size=1).old) == 1
    with pytest.raises(DataError, match="fewer than one batch of 2"):
        load_domains(age_list=str(listing), batch_size=2)
    with pytest.raises(DataError, match="no such directory"):
        load_domains(young, str(tmp_path / "missing"))
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match="no images"):
        load_domains(young, str(tmp_path / "empty"))


def test_domains_count_files_whose_exif_rotation_training_cannot_apply(tmp_path):
    young = write_faces(tmp_path / "young", 1)
    old = write_faces(tmp_path / "old", 1, seed=1)
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90 CW to display": TF's decoders ignore it
    Image.fromarray(np.zeros((40, 36, 3), np.uint8)).save(tmp_path / "young" / "turned.jpg",
                                                          exif=exif)
    domains = load_domains(young, old)
    assert len(domains.young) == 2 and domains.rotated == [str(tmp_path / "young" / "turned.jpg")]
    assert "1 file(s) with an EXIF rotation are used as stored" in domains.summary()


# --- train_cyclegan.py end to end -------------------------------------------------------------
ENV = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2", PYTHONUNBUFFERED="1")
TINY = ["--crop_size=32", "--load_size=36", "--ngf=4", "--ndf=4", "--n_blocks=1",
        "--pool_size=2", "--n_epochs=1", "--n_epochs_decay=1", "--num_samples=2",
        "--log_interval=1"]


def run_cli(*args, timeout=900):
    return subprocess.run([sys.executable, "train_cyclegan.py", *args], cwd=REPO, env=ENV,
                          capture_output=True, text=True, timeout=timeout)


def _event_tags(log_dir):
    tags = set()
    for name in os.listdir(log_dir):
        for record in tf.data.TFRecordDataset(os.path.join(log_dir, name)):
            tags.update(v.tag for v in tf.compat.v1.Event.FromString(record.numpy()).summary.value)
    return tags


@pytest.fixture(scope="module")
def faces(tmp_path_factory):
    root = tmp_path_factory.mktemp("faces")
    return write_faces(root / "young", 3), write_faces(root / "old", 2, seed=1)


def test_trains_checkpoints_then_resumes_and_stops_on_sigterm(faces, tmp_path):
    young, old = faces
    ckpt = tmp_path / "ckpt"
    common = [f"--young_dir={young}", f"--old_dir={old}", f"--checkpoint_dir={ckpt}", *TINY,
              "--save_interval=2", "--sample_interval=2"]
    first = run_cli(*common, "--max_steps=2")
    assert first.returncode == 0, first.stderr
    assert "3 young, 2 old faces" in first.stdout
    assert "step 2/2  epoch 1/2  lr 0.0002" in first.stdout
    assert "steps/s" in first.stdout and "ETA" in first.stdout
    reader = tf.train.load_checkpoint(str(ckpt / "ckpt-2"))
    names = reader.get_variable_to_shape_map()
    assert int(reader.get_tensor("step/.ATTRIBUTES/VARIABLE_VALUE")) == 2
    for part in ("g_a/", "g_b/", "d_a/", "d_b/", "g_optimizer/", "d_optimizer/", "data_iterator/",
                 "pool_a/images", "pool_b/rng", "epoch/"):
        assert any(n.startswith(part) for n in names), part
    assert names["pool_b/images/.ATTRIBUTES/VARIABLE_VALUE"] == [2, 32, 32, 3]
    assert int(reader.get_tensor("pool_a/count/.ATTRIBUTES/VARIABLE_VALUE")) == 2
    samples = sorted(os.listdir(ckpt / "samples"))
    assert samples == ["step0000002_old_to_young.png", "step0000002_young_to_old.png"]
    # two faces, each a row real | translated | reconstructed
    assert np.asarray(Image.open(ckpt / "samples" / samples[1])).shape == (64, 96, 3)
    assert {"loss/D_A", "loss/idt_B", "learning_rate", "steps_per_second",
            "samples/young_to_old"} <= _event_tags(ckpt / "logs")
    options = json.loads((ckpt / "training_options.json").read_text())
    assert options["steps_per_epoch"] == 3 and options["schedule_steps"] == 6
    assert options["lambda_identity"] == 0.5 and options["pool_size"] == 2

    # Resume (step 3 comes next), then SIGTERM: a checkpoint at the current step, clean exit.
    run = LoggedProcess([sys.executable, "train_cyclegan.py", *common, "--max_steps=1000",
                         "--save_interval=1000"], tmp_path, "resumed", ENV)
    wait_for(lambda: "\nstep 4/" in "\n" + run.out, run, what="step 4")
    run.send_signal(signal.SIGTERM)
    assert run.wait(timeout=300) == 0, run.err[-3000:]
    output = run.out
    assert "resumed from" in output and "at step 2" in output
    assert "step 3/1000  epoch 1/2" in output and "step 1/" not in output
    assert "step 4/1000  epoch 2/2  lr 0.0001" in output  # epoch 2 of 1 + 1: half the rate
    assert "SIGTERM received" in output
    stopped = int(tf.train.latest_checkpoint(str(ckpt)).rsplit("-", 1)[1])
    assert stopped >= 4
    assert int(tf.train.load_checkpoint(str(ckpt / f"ckpt-{stopped}")).get_tensor(
        "step/.ATTRIBUTES/VARIABLE_VALUE")) == stopped


@pytest.mark.parametrize("case, message", [
    ("missing", "--young_dir {root}/missing: no such directory"),
    ("empty", "--old_dir {root}/empty: no images"),
    ("corrupt_only", "--old_dir {root}/corrupt: 0 readable images, fewer than one batch of 1"),
    ("both_sources", "give either --young_dir/--old_dir or --age_list, not both"),
    ("no_data", "no data: give --young_dir and --old_dir"),
    ("crop_size", "--crop_size must be a multiple of 4, at least 32"),
    ("load_size", "--load_size must be >= --crop_size"),
])
def test_bad_input_gives_one_clear_line(faces, tmp_path, case, message):
    young, old = faces
    (tmp_path / "empty").mkdir()
    (tmp_path / "corrupt").mkdir()
    (tmp_path / "corrupt" / "bad.jpg").write_bytes(b"\xff\xd8 truncated nonsense")
    (tmp_path / "ages.txt").write_text("a.jpg 20\n")
    args = {"missing": [f"--young_dir={tmp_path}/missing", f"--old_dir={old}"],
            "empty": [f"--young_dir={young}", f"--old_dir={tmp_path}/empty"],
            "corrupt_only": [f"--young_dir={young}", f"--old_dir={tmp_path}/corrupt"],
            "both_sources": [f"--young_dir={young}", f"--old_dir={old}",
                             f"--age_list={tmp_path}/ages.txt"],
            "no_data": [],
            "crop_size": [f"--young_dir={young}", f"--old_dir={old}", "--crop_size=30"],
            "load_size": [f"--young_dir={young}", f"--old_dir={old}", "--crop_size=64",
                          "--load_size=60"]}[case]
    result = run_cli(*args, f"--checkpoint_dir={tmp_path}/ckpt", timeout=120)
    assert result.returncode != 0
    expected = message.format(root=tmp_path)
    assert sum(expected in line for line in result.stderr.splitlines()) == 1, result.stderr
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "ckpt").exists()


def test_dry_run_reports_skipped_files_and_writes_nothing(faces, tmp_path):
    young, _ = faces
    old = write_faces(tmp_path / "old", 2, seed=4)
    (tmp_path / "old" / "zero.jpg").write_bytes(b"")
    result = run_cli(f"--young_dir={young}", f"--old_dir={old}", "--dry_run",
                     f"--checkpoint_dir={tmp_path}/ckpt", timeout=120)
    assert result.returncode == 0, result.stderr
    options = json.loads(result.stdout)
    assert options["old_images"] == 2 and options["skipped_images"] == 1
    assert options["load_size"] == 286 and options["n_blocks"] == 9
    assert options["schedule_steps"] == 600 and options["lr"] == 2e-4
    assert "zero.jpg: empty file" in result.stderr
    assert not (tmp_path / "ckpt").exists()


def test_one_step_on_real_wiki_faces(tmp_path):
    folder = SHARED_DATA / "wiki_young_old"
    if not (folder / "young").is_dir():
        pytest.skip("../shared/data/wiki_young_old is not present")
    result = run_cli(f"--young_dir={folder / 'young'}", f"--old_dir={folder / 'old'}",
                     "--max_dataset_size=4", *TINY,
                     "--max_steps=1", f"--checkpoint_dir={tmp_path / 'ckpt'}")
    assert result.returncode == 0, result.stderr
    assert "4 young, 4 old faces" in result.stdout
    line = next(l for l in result.stdout.splitlines() if l.startswith("step 1/1"))
    values = [float(x) for x in line.split("|")[0].split()[7::2]]
    assert len(values) == 8 and all(np.isfinite(values))
    strip = np.asarray(Image.open(tmp_path / "ckpt" / "samples" / "step0000001_young_to_old.png"))
    assert strip.shape == (64, 96, 3) and strip[:, :32].std() > 10  # real faces, 2 rows
