"""face_aging.gradient_rewrites: the same forward pass as tf.nn.conv2d / tf.matmul, TF's gradients
to float rounding, and the rewrites used where (and only where) they apply."""
import numpy as np
import pytest
import tensorflow as tf

from face_aging import gradient_rewrites
from face_aging.backbones.alexnet import AlexNet
from face_aging.ipcgan.networks import Generator, build_models, one_hot_age


def _values_and_grads(conv, x, kernel, stride, padding):
    """Output, input gradient and kernel gradient of ``sum(conv(x)^2 * weights)``."""
    with tf.GradientTape() as tape:
        tape.watch([x, kernel])
        y = conv(x, kernel, stride, padding)
        weights = tf.reshape(tf.sin(tf.range(tf.size(y), dtype=tf.float32)), tf.shape(y))
        loss = tf.reduce_sum(tf.square(tf.cast(y, tf.float32)) * weights)
    return [tf.cast(t, tf.float32).numpy() for t in (y, *tape.gradient(loss, [x, kernel]))]


def _relative(a, b):
    return float(np.max(np.abs(a - b)) / np.max(np.abs(a)))


@pytest.mark.parametrize("x_shape, k_shape, stride, padding", [
    ((2, 227, 227, 3), (11, 11, 3, 96), 4, "VALID"),   # AlexNet conv1: input rewrite
    ((2, 20, 23, 3), (5, 5, 3, 4), 3, "VALID"),        # blocks past the edge (cropped)
    ((2, 22, 21, 2), (4, 4, 2, 3), 4, "VALID"),        # edge rows never read (zero gradient)
    ((2, 32, 32, 32), (7, 7, 32, 3), 1, "SAME"),       # generator conv4: kernel rewrite
    ((2, 12, 10, 6), (3, 5, 6, 2), 1, "SAME"),         # odd, not square
    ((2, 12, 10, 6), (4, 4, 6, 2), 1, "SAME"),         # even kernel: TF's own gradients
])
def test_same_forward_and_gradients_as_tensorflow(x_shape, k_shape, stride, padding):
    rng = np.random.default_rng(0)
    x = tf.constant(rng.normal(size=x_shape), tf.float32)
    kernel = tf.constant(rng.normal(0, 0.1, size=k_shape), tf.float32)
    want = _values_and_grads(tf.nn.conv2d, x, kernel, stride, padding)
    got = _values_and_grads(gradient_rewrites.conv2d, x, kernel, stride, padding)
    if gradient_rewrites.rewrites(k_shape, stride, padding, x_shape[1:3])["forward"]:
        assert _relative(want[0], got[0]) < 1e-5  # on pixel blocks: float rounding apart
    else:
        assert np.array_equal(got[0], want[0])  # the forward pass is tf.nn.conv2d itself
    assert got[1].shape == want[1].shape and got[2].shape == want[2].shape
    assert _relative(want[1], got[1]) < 1e-5 and _relative(want[2], got[2]) < 1e-5


def test_edge_rows_never_read_get_zero_gradient():
    # 22 rows, 4x4 windows at stride 4 read rows 0..19: rows 20, 21 get no gradient.
    x = tf.ones([1, 22, 22, 2])
    kernel = tf.ones([4, 4, 2, 3])
    with tf.GradientTape() as tape:
        tape.watch(x)
        loss = tf.reduce_sum(gradient_rewrites.conv2d(x, kernel, 4, "VALID"))
    dx = tape.gradient(loss, x).numpy()
    assert np.all(dx[:, 20:] == 0) and np.all(dx[:, :, 20:] == 0)
    assert np.all(dx[:, :20, :20] == 3.0)  # each pixel in one window, 3 output channels


def test_bfloat16_gradients_within_bfloat16_rounding():
    rng = np.random.default_rng(1)
    for x_shape, k_shape, stride, padding in [((2, 227, 227, 3), (11, 11, 3, 96), 4, "VALID"),
                                              ((2, 32, 32, 32), (7, 7, 32, 3), 1, "SAME")]:
        x = tf.constant(rng.normal(size=x_shape), tf.bfloat16)
        kernel = tf.constant(rng.normal(0, 0.1, size=k_shape), tf.bfloat16)
        want = _values_and_grads(tf.nn.conv2d, x, kernel, stride, padding)
        got = _values_and_grads(gradient_rewrites.conv2d, x, kernel, stride, padding)
        assert _relative(want[0], got[0]) < 1e-2
        assert _relative(want[1], got[1]) < 1e-2 and _relative(want[2], got[2]) < 1e-2


def test_space_to_depth_kernel_is_the_same_convolution():
    # conv(x, W, stride s) == conv(space_to_depth(x padded), K', 1), by the layout of K'.
    rng = np.random.default_rng(2)
    x = tf.constant(rng.normal(size=(1, 227, 227, 3)), tf.float32)
    kernel = tf.constant(rng.normal(size=(11, 11, 3, 8)), tf.float32)
    blocks = tf.nn.space_to_depth(tf.pad(x, [[0, 0], [0, 1], [0, 1], [0, 0]]), 4)
    k_blocks = gradient_rewrites.space_to_depth_kernel(kernel, 4)
    assert k_blocks.shape == (3, 3, 48, 8)
    np.testing.assert_allclose(tf.nn.conv2d(blocks, k_blocks, 1, "VALID").numpy(),
                               tf.nn.conv2d(x, kernel, 4, "VALID").numpy(), rtol=1e-4, atol=1e-3)


def test_which_gradients_are_rewritten():
    rewrites = gradient_rewrites.rewrites
    assert rewrites((11, 11, 3, 96), 4, "VALID", (227, 227)) == {
        "input": True, "kernel": False, "forward": False}
    assert rewrites((7, 7, 32, 3), 1, "SAME", (128, 128)) == {
        "input": False, "kernel": True, "forward": True}
    assert rewrites((7, 7, 32, 3), 1, "SAME", (130, 128))["forward"] is False  # 130 % 4
    assert rewrites((7, 7, 32, 3), 1, "SAME", (None, None))["forward"] is False
    assert rewrites((7, 7, 32, 32), 1, "SAME", (128, 128))["forward"] is False  # many outputs
    assert rewrites((4, 4, 512, 512), 1, "SAME", (16, 16)) == {
        "input": False, "kernel": False, "forward": False}
    assert rewrites((3, 3, 32, 64), 2, "SAME", (128, 128)) == {
        "input": False, "kernel": False, "forward": False}


@pytest.mark.parametrize("x_shape, k_shape", [((2, 32, 32, 32), (7, 7, 32, 3)),
                                              ((2, 16, 12, 5), (3, 5, 5, 2)),
                                              ((1, 8, 8, 2), (9, 9, 2, 1))])
def test_blocked_forward_is_the_same_convolution(x_shape, k_shape):
    rng = np.random.default_rng(9)
    x = tf.constant(rng.normal(size=x_shape), tf.float32)
    kernel = tf.constant(rng.normal(size=k_shape), tf.float32)
    want = tf.nn.conv2d(x, kernel, 1, "SAME").numpy()
    assert _relative(want, gradient_rewrites.blocked_conv2d(x, kernel).numpy()) < 1e-5
    assert _relative(want, gradient_rewrites.conv2d(x, kernel, 1, "SAME").numpy()) < 1e-5


def test_blocked_kernel_taps_by_hand():
    # 3x3 kernel, blocks of 2: output pixel 2*Bo + p reads input 2*Bi + i through tap
    # 2*(Bi - Bo) + i - p + 1 (zero outside 0..2); one block either side (m = 1).
    kernel = tf.reshape(tf.range(9.0), [3, 3, 1, 1])  # tap (a, b) holds 3a + b
    blocks = gradient_rewrites.blocked_kernel(kernel, 2).numpy()
    assert blocks.shape == (3, 3, 4, 4)
    # depth index of (row-in-block, col-in-block) is 2 * row + col, for input and output.
    # Same block (bh = bw = 1), input (0, 0) -> output (0, 0): tap (1, 1) = 4.
    assert blocks[1, 1, 0, 0] == 4.0
    # Same block, input (1, 0) -> output (0, 1): tap (1 + 1, 0 - 1 + 1) = (2, 0) = 6.
    assert blocks[1, 1, 2, 1] == 6.0
    # Block below (bh = 2), input (0, 1) -> output (1, 1): tap (2 + 0 - 1 + 1, 1 - 1 + 1) = (2, 1)
    assert blocks[2, 1, 1, 3] == 7.0
    # Block above (bh = 0), input (0, 0) -> output (0, 0): tap row -2 + 1 = -1: zero.
    assert blocks[0, 1, 0, 0] == 0.0


def test_unknown_spatial_size_falls_back_to_tensorflows_input_gradient():
    kernel = tf.constant(np.random.default_rng(3).normal(size=(5, 5, 3, 4)), tf.float32)

    @tf.function(input_signature=[tf.TensorSpec([None, None, None, 3])])
    def grad(x):
        with tf.GradientTape() as tape:
            tape.watch(x)
            loss = tf.reduce_sum(tf.square(gradient_rewrites.conv2d(x, kernel, 3, "VALID")))
        return tape.gradient(loss, x)

    x = tf.constant(np.random.default_rng(4).normal(size=(2, 20, 23, 3)), tf.float32)
    with tf.GradientTape() as tape:
        tape.watch(x)
        loss = tf.reduce_sum(tf.square(tf.nn.conv2d(x, kernel, 3, "VALID")))
    np.testing.assert_allclose(grad(x).numpy(), tape.gradient(loss, x).numpy(), rtol=1e-5,
                               atol=1e-5)


def test_models_use_the_rewrites_and_keep_their_gradients():
    """The generator's conv4 and AlexNet's conv1 run through the rewrite; switching it off
    gives the same gradients to float rounding (same weights, same input)."""
    generator, alexnet = Generator(), AlexNet()
    build_models(generator=generator, alexnet=alexnet)
    assert generator.conv4.rewrite_gradients and alexnet.conv1.rewrite_gradients
    rng = np.random.default_rng(5)
    source = tf.constant(rng.normal(0, 60, (2, 128, 128, 3)), tf.float32)
    age = one_hot_age([1, 3])

    def grads():
        with tf.GradientTape() as tape:
            fake = generator((source, age), training=True)
            images = tf.image.resize(fake, [227, 227]) * 127.5
            loss = tf.reduce_sum(tf.square(alexnet(images, outputs=("conv5",))["conv5"]))
        return tape.gradient(loss, generator.trainable_variables)

    rewritten = grads()
    generator.conv4.rewrite_gradients = alexnet.conv1.rewrite_gradients = False
    tensorflows = grads()
    largest = max(float(np.max(np.abs(g.numpy()))) for g in tensorflows)
    for want, got, var in zip(tensorflows, rewritten, generator.trainable_variables):
        want, got = want.numpy(), got.numpy()
        if var.path.endswith("biases") and "conv4" not in var.path:
            # A bias followed by batch norm has gradient 0 but for rounding: compare in
            # absolute terms against the model's largest gradient.
            assert np.max(np.abs(want - got)) < 1e-6 * largest, var.path
        else:
            assert _relative(want, got) < 1e-4, var.path


def test_matmul_same_product_and_gradients_as_tensorflow():
    rng = np.random.default_rng(6)
    x = tf.constant(rng.normal(size=(4, 96)), tf.float32)
    kernel = tf.constant(rng.normal(0, 0.1, size=(96, 40)), tf.float32)
    results = []
    for matmul in (tf.matmul, gradient_rewrites.matmul):
        with tf.GradientTape() as tape:
            tape.watch([x, kernel])
            y = matmul(x, kernel)
            loss = tf.reduce_sum(tf.square(y) * tf.reshape(tf.range(160.0), [4, 40]))
        results.append([y.numpy(), *[g.numpy() for g in tape.gradient(loss, [x, kernel])]])
    want, got = results
    assert np.array_equal(got[0], want[0])
    assert got[1].shape == (4, 96) and got[2].shape == (96, 40)
    assert _relative(want[1], got[1]) < 1e-5 and _relative(want[2], got[2]) < 1e-5
    # By hand for one entry: d loss / d x[0, 0] = sum_j 2 y[0, j] w_j kernel[0, j].
    by_hand = np.sum(2 * want[0][0] * np.arange(40.0) * kernel.numpy()[0])
    assert got[1][0, 0] == pytest.approx(by_hand, rel=1e-4)
