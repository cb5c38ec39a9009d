"""Loss functions and pixel conventions against values computed by hand."""
import cv2
import numpy as np
import pytest
import tensorflow as tf

from face_aging import pixels
from face_aging.engine.optim import make_adam
from face_aging.ipcgan import losses


def test_lsgan_discriminator_loss_by_hand():
    d1 = tf.constant([[1.0, 3.0]])      # (D1-1)^2: 0, 4 -> mean 2
    d2 = tf.constant([[2.0, 0.0]])      # D2^2: 4, 0 -> mean 2
    d3 = tf.constant([[1.0, 1.0]])      # D3^2: 1, 1 -> mean 1
    # 0.5 * (2 + 0.5 * (2 + 1)) = 1.75
    assert float(losses.lsgan_discriminator_loss(d1, d2, d3)) == pytest.approx(1.75)


def test_lsgan_generator_loss_by_hand():
    d3 = tf.constant([[[[0.0], [3.0]]]])  # (D3-1)^2: 1, 4 -> mean 2.5 -> 1.25
    assert float(losses.lsgan_generator_loss(d3)) == pytest.approx(1.25)


def test_msum_is_per_sample_sum_averaged_over_batch():
    a = tf.constant([[[1.0, 2.0], [3.0, 4.0]], [[0.0, 0.0], [0.0, 0.0]]])
    b = tf.zeros_like(a)
    # sample 0: 1+4+9+16 = 30; sample 1: 0 -> mean 15 (an element mean would be 3.75)
    assert float(losses.msum(a, b)) == pytest.approx(15.0)


def test_age_loss_is_mean_cross_entropy():
    logits = tf.constant([[2.0, 0.0], [0.0, 0.0]])
    expected = (-np.log(np.exp(2) / (np.exp(2) + 1)) - np.log(0.5)) / 2
    assert float(losses.age_classification_loss(logits, [0, 1])) == pytest.approx(expected, 1e-6)


def test_resize_tf1_uses_the_grid_without_half_pixel_offset():
    image = np.arange(4, dtype=np.float32).reshape(1, 1, 4, 1) * 10  # 0 10 20 30
    image = np.repeat(image, 2, axis=1)
    out = pixels.resize_tf1(image, (2, 8)).numpy()[0, 0, :, 0]
    # TF1: src = dst * (4 / 8) -> 0, .5, 1, ..., 3.5 (clamped to the last pixel)
    np.testing.assert_allclose(out, [0, 5, 10, 15, 20, 25, 30, 30])
    half_pixel = tf.image.resize(image, (2, 8)).numpy()[0, 0, :, 0]
    assert not np.allclose(out, half_pixel)


def test_resize_cv2_matches_cv2_within_one_level():
    rng = np.random.default_rng(0)
    image = rng.integers(0, 256, (50, 70, 3), dtype=np.uint8)
    for size in ((128, 128), (227, 227), (20, 30)):
        ours = pixels.resize_cv2(image, size).numpy()
        theirs = cv2.resize(image, (size[1], size[0]), interpolation=cv2.INTER_LINEAR)
        assert np.abs(ours - theirs.astype(np.float32)).max() <= 1.0
        assert np.all(ours == np.round(ours))


def test_pixel_scales():
    white = tf.fill([1, 1, 1, 3], 255.0)
    np.testing.assert_allclose(pixels.subtract_mean(white).numpy().ravel(), [151, 138, 131])
    np.testing.assert_allclose(pixels.to_unit_range(white).numpy().ravel(), [1, 1, 1])
    assert pixels.to_uint8(np.array([-1.0, 0.0, 1.0, 2.0])).tolist() == [0, 127, 255, 255]
    fake = tf.zeros([1, 128, 128, 3])  # mid-grey 127.5 - MEAN
    np.testing.assert_allclose(pixels.generated_to_alexnet(fake).numpy()[0, 100, 100],
                               [23.5, 10.5, 3.5])


def test_adam_is_the_release_update_with_epsilon_1e8():
    var = tf.Variable([0.0])
    optimizer = make_adam(1e-3)
    grad = 1e-7  # small enough that epsilon 1e-8 vs Keras' 1e-7 matters
    optimizer.apply_gradients([(tf.constant([grad]), var)])
    m, v = 0.5 * grad, 0.001 * grad ** 2
    lr_t = 1e-3 * np.sqrt(1 - 0.999) / (1 - 0.5)
    expected = -lr_t * m / (np.sqrt(v) + 1e-8)
    assert float(var.numpy()[0]) == pytest.approx(expected, rel=1e-5)


def test_release_adam_follows_keras_adam_over_steps_and_schedules():
    """The fused kernel against Keras' own Adam: five steps of varied gradients, a learning
    rate changed between steps (the CycleGAN decay assigns it), the slots and the weights."""
    rng = np.random.default_rng(0)
    start = rng.normal(size=(3, 4)).astype(np.float32)
    fused_var, keras_var = tf.Variable(start), tf.Variable(start)
    fused = make_adam(2e-3)
    reference = tf.keras.optimizers.Adam(2e-3, beta_1=0.5, beta_2=0.999, epsilon=1e-8)
    for step in range(5):
        grad = tf.constant(rng.normal(scale=10.0 ** -step, size=(3, 4)).astype(np.float32))
        if step == 3:
            fused.learning_rate.assign(5e-4)
            reference.learning_rate.assign(5e-4)
        fused.apply_gradients([(grad, fused_var)])
        reference.apply_gradients([(grad, keras_var)])
    np.testing.assert_allclose(fused_var.numpy(), keras_var.numpy(), rtol=1e-6, atol=1e-7)
    assert not np.allclose(fused_var.numpy(), start)
    # the kernel (like TF1) forms 1 - beta_2 in float32 (0.999f: 1.00005e-3), Keras in float64
    # (1e-3): v differs by that 5e-5 relative, m by rounding
    for fused_slot, keras_slot in zip(fused.variables, reference.variables):
        np.testing.assert_allclose(np.asarray(fused_slot), np.asarray(keras_slot),
                                   rtol=1e-4, atol=1e-12)
    assert int(fused.iterations.numpy()) == 5
