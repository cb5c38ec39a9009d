"""--upsample: G's upsampling as the release's transposed convolutions or as nearest-neighbour
upsampling + convolution (no built-in checkerboard), recorded beside a run and read back."""
import json

import numpy as np
import pytest
import tensorflow as tf
from scipy.signal import correlate2d

from conftest import make_list_dataset, run_tiny_training
from face_aging.ipcgan.bundle import bundle_generator
from face_aging.ipcgan.inference import load_generator, preprocess_faces
from face_aging.ipcgan.networks import Generator, build_models, one_hot_age
from face_aging.layers import Deconv


def _ones_layer(resize):
    layer = Deconv(1, 3, 2, resize=resize)
    layer.build((1, 4, 4, 1))
    layer.kernel.assign(tf.ones_like(layer.kernel))
    return layer


def test_transposed_conv_has_the_checkerboard_and_resize_conv_has_none():
    """A constant input through an all-ones 3x3 kernel, stride 2. Transposed (TF's SAME: the
    forward conv reads input rows 2i..2i+2, padding only at the end): output row p receives
    input rows i with p in {2i, 2i+1, 2i+2}, i.e. two taps at even p, one at odd p; so pixels
    get 4 / 2 / 1 taps at even-even / mixed / odd-odd positions, a period-2 pattern.
    Resize-conv: every interior pixel sums the 9 taps of a constant map."""
    x = tf.ones((1, 4, 4, 1))
    deconv = _ones_layer(resize=False)(x).numpy()[0, :, :, 0]
    resize = _ones_layer(resize=True)(x).numpy()[0, :, :, 0]
    assert deconv.shape == resize.shape == (8, 8)
    interior = deconv[1:7, 1:7]
    taps = np.where(np.arange(1, 7) % 2 == 0, 2, 1)  # rows/columns 1..6
    np.testing.assert_array_equal(interior, np.outer(taps, taps))
    np.testing.assert_array_equal(resize[1:7, 1:7], np.full((6, 6), 9.0))


def test_resize_conv_is_nearest_upsampling_then_a_same_correlation_with_the_kernel():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(2, 5, 6, 3)).astype(np.float32)
    layer = Deconv(4, 3, 2, resize=True)
    layer.build(x.shape)
    layer.kernel.assign(rng.normal(size=(3, 3, 4, 3)).astype(np.float32))  # [kh, kw, out, in]
    layer.bias.assign(rng.normal(size=4).astype(np.float32))
    got = layer(tf.constant(x)).numpy()
    up = x.repeat(2, axis=1).repeat(2, axis=2)
    kernel, bias = layer.kernel.numpy(), layer.bias.numpy()
    expected = np.stack([
        np.stack([sum(correlate2d(up[b, :, :, i], kernel[:, :, o, i], mode="same")
                      for i in range(3)) + bias[o] for o in range(4)], -1)
        for b in range(2)])
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-5)


def test_both_modes_hold_the_same_variables_and_compute_different_images():
    deconv, resize = Generator(), Generator(upsample="resize_conv")
    build_models(generator=deconv, image_size=32)
    build_models(generator=resize, image_size=32)
    assert [(v.path, v.shape) for v in deconv.variables] == \
        [(v.path, v.shape) for v in resize.variables]
    for a, b in zip(deconv.variables, resize.variables):
        b.assign(a)
    source = tf.random.stateless_normal((2, 32, 32, 3), (1, 2), stddev=60.0)
    age = one_hot_age(tf.constant([0, 4]))
    out_deconv, out_resize = deconv((source, age)), resize((source, age))
    assert out_resize.shape == (2, 32, 32, 3)
    assert float(tf.reduce_max(tf.abs(out_deconv - out_resize))) > 1e-3
    with pytest.raises(ValueError, match="upsample must be one of deconv, resize_conv"):
        Generator(upsample="bilinear")


def test_the_mode_is_recorded_read_back_by_inference_and_bundles_and_kept_on_resume(tmp_path):
    data = make_list_dataset(tmp_path / "data")
    ckpt = tmp_path / "run"
    first = run_tiny_training(data, ckpt, "--upsample=resize_conv", "--max_steps=1")
    assert first.returncode == 0, first.stderr
    assert json.loads((ckpt / "training_options.json").read_text())["upsample"] == "resize_conv"

    generator = load_generator(str(ckpt))
    assert generator.upsample == "resize_conv" and generator.deconv1.resize
    # The weights of the run, computed as it trained them: the bundle's reference outputs.
    bundle = tmp_path / "bundle"
    bundle_generator(str(ckpt), str(bundle))
    assert json.loads((bundle / "model.json").read_text())["upsample"] == "resize_conv"
    from_bundle = load_generator(str(bundle))
    assert from_bundle.upsample == "resize_conv"
    reference = np.load(bundle / "reference.npz")
    source = tf.constant(reference["source_uint8"][None].astype(np.float32))
    faces = preprocess_faces(source.numpy().astype(np.uint8), 16)
    out = from_bundle((faces, one_hot_age(tf.constant([0]))), training=False).numpy()[0]
    np.testing.assert_allclose(out, reference["outputs"][0], atol=1e-5)

    # Resuming with the other mode would load the weights into layers computing something else.
    other = run_tiny_training(data, ckpt, "--upsample=deconv", "--max_steps=2")
    assert other.returncode != 0
    assert "was trained with --upsample=resize_conv" in other.stderr
    assert "Traceback" not in other.stderr
    assert not (ckpt / "ckpt-2.index").exists()
    same = run_tiny_training(data, ckpt, "--upsample=resize_conv", "--max_steps=2")
    assert same.returncode == 0, same.stderr
    assert (ckpt / "ckpt-2.index").exists()


def test_a_release_run_without_the_field_loads_as_deconv(tmp_path):
    """Runs and bundles from before the flag record no ``upsample``: they are the release's."""
    generator = Generator()
    build_models(generator=generator, image_size=16)
    tf.train.Checkpoint(generator=generator).write(str(tmp_path / "ckpt-1"))
    (tmp_path / "training_options.json").write_text(json.dumps({"image_size": 16}))
    assert load_generator(str(tmp_path / "ckpt-1")).upsample == "deconv"
