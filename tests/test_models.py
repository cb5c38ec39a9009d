"""Networks: every variable's shape against the release's table, and the maths against tf.nn."""
import numpy as np
import pytest
import tensorflow as tf

from face_aging.backbones.alexnet import AlexNet
from face_aging.ipcgan import checkpoints as ipcgan_checkpoints
from face_aging.ipcgan.networks import Discriminator, Generator, build_models, one_hot_age
from face_aging.layers import BatchNorm

BN = ("beta", "gamma", "moving_mean", "moving_variance")


def _bn(scope, c):
    return {f"{scope}/{k}": (c,) for k in BN}


def _conv(scope, *shape):
    return {f"{scope}/weights": shape, f"{scope}/biases": (shape[-1],)}


def _deconv(scope, kh, kw, out, inp):
    return {f"{scope}/weights": (kh, kw, out, inp), f"{scope}/biases": (out,)}


# The release's variables (spec §1, §6), written out by hand.
RELEASE_SHAPES = {
    **_conv("generator/conv1", 7, 7, 8, 32), **_bn("generator/bn1", 32),
    **_conv("generator/conv2", 3, 3, 32, 64), **_bn("generator/bn2", 64),
    **_conv("generator/conv3", 3, 3, 64, 128), **_bn("generator/bn3", 128),
    **{k: v for i in range(6) for k, v in {
        **_conv(f"generator/unit_{i}/sub1/conv1", 3, 3, 128, 128),
        **_bn(f"generator/unit_{i}/sub1/bn1", 128),
        **_conv(f"generator/unit_{i}/sub2/conv2", 3, 3, 128, 128),
        **_bn(f"generator/unit_{i}/sub2/bn2", 128)}.items()},
    **_deconv("generator/deconv1", 3, 3, 64, 128), **_bn("generator/bn4", 64),
    **_deconv("generator/deconv2", 3, 3, 32, 64), **_bn("generator/bn5", 32),
    **_conv("generator/conv4", 7, 7, 32, 3),
    **_conv("discriminator/dis", 4, 4, 3, 64),
    **_conv("discriminator/dis_1", 4, 4, 69, 128), **_bn("discriminator/dis_bn0", 128),
    **_conv("discriminator/dis_2", 4, 4, 128, 256), **_bn("discriminator/dis_bn1", 256),
    **_conv("discriminator/dis_3", 4, 4, 256, 512), **_bn("discriminator/dis_bn2", 512),
    **_conv("discriminator/dis_4", 4, 4, 512, 512),
    **_conv("alexnet/conv1", 11, 11, 3, 96), **_conv("alexnet/conv2", 5, 5, 48, 256),
    **_conv("alexnet/conv3", 3, 3, 256, 384), **_conv("alexnet/conv4", 3, 3, 192, 384),
    **_conv("alexnet/conv5", 3, 3, 192, 256),
    **_conv("alexnet/fc6", 9216, 4096), **_conv("alexnet/fc7", 4096, 4096),
    **_conv("alexnet/new_1", 4096, 256), **_conv("alexnet/new_2", 256, 2000),
    **_conv("alexnet/age_fc6", 9216, 4096), **_conv("alexnet/age_fc7", 4096, 4096),
    **_conv("alexnet/age_fc8", 4096, 5),
}


@pytest.fixture(scope="module")
def models():
    g, d, a = Generator(), Discriminator(), AlexNet()
    build_models(g, d, a)
    return g, d, a


def test_every_release_variable_has_the_release_shape(models):
    mapping = ipcgan_checkpoints.release_variable_map(*models)
    core = {k: tuple(v.shape) for k, v in mapping.items()
            if not k.endswith(("/biased", "/local_step"))}
    assert core == RELEASE_SHAPES
    # Nothing trainable is left out of the table.
    mapped = {id(v) for v in mapping.values()}
    for model in models:
        assert all(id(v) in mapped for v in model.trainable_variables)


def test_output_shapes_and_ranges(models):
    g, d, a = models
    source = tf.random.uniform([2, 128, 128, 3], -124.0, 151.0)
    age = one_hot_age([0, 4])
    fake = g((source, age), training=False)
    assert fake.shape == (2, 128, 128, 3)
    assert float(tf.reduce_max(tf.abs(fake))) <= 1.0
    assert d((fake, age), training=False).shape == (2, 16, 16, 512)
    out = a(tf.zeros([1, 227, 227, 3]))
    assert {k: tuple(v.shape) for k, v in out.items()} == {
        "conv3": (1, 13, 13, 384), "conv4": (1, 13, 13, 384), "conv5": (1, 13, 13, 256),
        "pool5": (1, 6, 6, 256), "fc6": (1, 4096), "fc7": (1, 4096),
        "identity_logits": (1, 2000), "age_logits": (1, 5)}
    assert set(a(tf.zeros([1, 227, 227, 3]), outputs=("conv5",))) == {"conv5"}


def _ref_bn(x, var, prefix, eps=1e-3, moving=False):
    if moving:
        mean, variance = var[f"{prefix}/moving_mean"], var[f"{prefix}/moving_variance"]
    else:
        mean, variance = tf.nn.moments(x, [0, 1, 2])
    return tf.nn.batch_normalization(x, mean, variance, var[f"{prefix}/beta"],
                                     var[f"{prefix}/gamma"], eps)


def _ref_conv(x, var, prefix, stride=1):
    return tf.nn.conv2d(x, var[f"{prefix}/weights"], stride, "SAME") + var[f"{prefix}/biases"]


def _ref_deconv(x, var, prefix):
    w = var[f"{prefix}/weights"]
    b, h, wd, _ = x.shape
    y = tf.nn.conv2d_transpose(x, w, [b, 2 * h, 2 * wd, w.shape[2]], 2, "SAME")
    return y + var[f"{prefix}/biases"]


def reference_generator(var, source, age_vector, moving=False):
    """The release's generator written directly in tf.nn ops, batch statistics (spec §1.1, §1.4)
    or the moving ones."""
    def bn(x, prefix):
        return _ref_bn(x, var, prefix, moving=moving)

    b, h, w, _ = source.shape
    cond = tf.tile(age_vector[:, None, None, :], [1, h, w, 1])
    x = tf.concat([source, cond], -1)
    x = tf.nn.relu(bn(_ref_conv(x, var, "generator/conv1"), "generator/bn1"))
    x = tf.nn.relu(bn(_ref_conv(x, var, "generator/conv2", 2), "generator/bn2"))
    x = tf.nn.relu(bn(_ref_conv(x, var, "generator/conv3", 2), "generator/bn3"))
    for i in range(6):
        u = f"generator/unit_{i}"
        y = tf.nn.relu(bn(_ref_conv(x, var, f"{u}/sub1/conv1"), f"{u}/sub1/bn1"))
        x = x + bn(_ref_conv(y, var, f"{u}/sub2/conv2"), f"{u}/sub2/bn2")
    x = tf.nn.relu(bn(_ref_deconv(x, var, "generator/deconv1"), "generator/bn4"))
    x = tf.nn.relu(bn(_ref_deconv(x, var, "generator/deconv2"), "generator/bn5"))
    return tf.tanh(_ref_conv(x, var, "generator/conv4"))


def test_generator_batch_statistics_equal_direct_tf_nn_computation():
    g = Generator()
    build_models(generator=g, image_size=32)
    rng = np.random.default_rng(1)
    var = {}
    for name, v in ipcgan_checkpoints.release_variable_map(generator=g).items():
        if name.endswith(("/beta", "/gamma")):  # non-trivial affine parameters
            v.assign(rng.normal(1.0 if name.endswith("gamma") else 0.0, 0.3, v.shape)
                     .astype(np.float32))
        var[name] = tf.constant(v.numpy())
    source = tf.constant(rng.uniform(-124, 151, (3, 32, 32, 3)).astype(np.float32))
    age = tf.constant([[0, 1, 0, 0, 0], [0, 0, 0, 0, 1], [0.5, 0.5, 0, 0, 0]], tf.float32)
    expected = reference_generator(var, source, age)
    np.testing.assert_allclose(g((source, age), batch_stats=True).numpy(), expected.numpy(),
                               atol=2e-5)
    np.testing.assert_allclose(g((source, age), training=True).numpy(), expected.numpy(),
                               atol=2e-5)


def test_inference_with_folded_batch_norm_equals_direct_tf_nn_computation():
    """With the moving statistics each batch norm is folded into its convolution
    (``networks.conv_bn``); the outputs stay those of conv -> tf.nn.batch_normalization."""
    g = Generator()
    build_models(generator=g, image_size=32)
    rng = np.random.default_rng(2)
    var = {}
    for name, v in ipcgan_checkpoints.release_variable_map(generator=g).items():
        if name.endswith(("/beta", "/gamma", "/moving_mean")):
            v.assign(rng.normal(1.0 if name.endswith("gamma") else 0.0, 0.3, v.shape)
                     .astype(np.float32))
        if name.endswith("/moving_variance"):
            v.assign(rng.uniform(0.2, 3.0, v.shape).astype(np.float32))
        var[name] = tf.constant(v.numpy())
    source = tf.constant(rng.uniform(-124, 151, (3, 32, 32, 3)).astype(np.float32))
    age = tf.constant([[0, 1, 0, 0, 0], [0, 0, 0, 0, 1], [0.5, 0.5, 0, 0, 0]], tf.float32)
    expected = reference_generator(var, source, age, moving=True).numpy()
    np.testing.assert_allclose(g((source, age), training=False).numpy(), expected, atol=3e-5)
    traced = tf.function(lambda s, a: g((s, a), training=False))
    np.testing.assert_allclose(traced(source, age).numpy(), expected, atol=3e-5)
    # The batch-statistics output is a different image: the check above is not vacuous.
    assert np.abs(reference_generator(var, source, age).numpy() - expected).max() > 1e-2


def test_batch_norm_moving_averages_follow_tf1_zero_debias():
    g = Generator()
    build_models(generator=g, image_size=16)
    bn = g.bn1
    x1 = tf.random.normal([4, 16, 16, 3], seed=1) * 50
    x2 = tf.random.normal([4, 16, 16, 3], seed=2) * 50
    age = one_hot_age([0, 1, 2, 3])
    means = []
    for x in (x1, x2):
        # conv1's output is what bn1 normalises.
        y = g.conv1(tf.concat([x, tf.tile(age[:, None, None, :], [1, 16, 16, 1])], -1))
        means.append(tf.reduce_mean(y, [0, 1, 2]).numpy())
        g((x, age), training=True)
    # zero-debiased EMA, decay 0.9: after 1 step = m1; after 2 = (0.1*0.9*m1 + 0.1*m2)/(1-0.81)
    expected = (0.09 * means[0] + 0.1 * means[1]) / 0.19
    np.testing.assert_allclose(bn.moving_mean.numpy(), expected, rtol=1e-4, atol=1e-4)
    assert float(bn.mean_local_step.numpy()) == 2.0
    before = bn.moving_mean.numpy().copy()
    g((x1, age), training=False)
    g((x1, age), batch_stats=True)  # the release's test mode: batch stats, no update
    np.testing.assert_array_equal(bn.moving_mean.numpy(), before)


def test_batch_norm_statistics_and_gradients_equal_the_release_formula():
    """The fused kernel computes the release's ``tf.nn.moments`` + ``tf.nn.batch_normalization``:
    the output and the gradients with respect to x, gamma and beta agree, and the moving
    variance takes the population variance (numpy ``ddof=0``), not the kernel's Bessel-corrected
    one (which would be 16/15 of it for these 16 values a channel)."""
    rng = np.random.default_rng(5)
    x = tf.constant(rng.normal(3.0, 2.0, (2, 2, 4, 3)).astype(np.float32))
    bn = BatchNorm(1e-3)
    bn.build(x.shape)
    bn.gamma.assign([0.5, 1.5, -1.0])
    bn.beta.assign([0.1, -0.2, 0.3])
    weights = tf.constant(rng.normal(size=x.shape).astype(np.float32))
    with tf.GradientTape(persistent=True) as tape:
        tape.watch(x)
        fused = tf.reduce_sum(bn(x, use_batch_stats=True, update_moving=True) * weights)
        mean, variance = tf.nn.moments(x, [0, 1, 2])
        formula = tf.reduce_sum(tf.nn.batch_normalization(x, mean, variance, bn.beta, bn.gamma,
                                                          1e-3) * weights)
    np.testing.assert_allclose(float(fused), float(formula), rtol=1e-5)
    for source in (x, bn.gamma, bn.beta):
        np.testing.assert_allclose(tape.gradient(fused, source).numpy(),
                                   tape.gradient(formula, source).numpy(), rtol=1e-4, atol=1e-5)
    values = x.numpy().reshape(-1, 3)
    # One zero-debiased update: the moving statistics are the batch's own.
    np.testing.assert_allclose(bn.moving_mean.numpy(), values.mean(0), rtol=1e-5)
    np.testing.assert_allclose(bn.moving_variance.numpy(), values.var(0, ddof=0), rtol=1e-5)
    # Under the bfloat16 policy: output in bfloat16, statistics kept in float32.
    bn16 = BatchNorm(1e-3, dtype="mixed_bfloat16")
    y16 = bn16(x, use_batch_stats=True, update_moving=True)
    assert y16.dtype == tf.bfloat16 and bn16.moving_variance.dtype == tf.float32
    np.testing.assert_allclose(bn16.moving_variance.numpy(), values.var(0, ddof=0), rtol=2e-2)


def test_moving_statistics_make_a_face_independent_of_its_batch():
    g = Generator()
    build_models(generator=g, image_size=16)
    g((tf.random.normal([4, 16, 16, 3]) * 50, one_hot_age([0, 1, 2, 3])), training=True)
    face = tf.random.normal([1, 16, 16, 3], seed=3) * 50
    others = tf.random.normal([3, 16, 16, 3], seed=4) * 50
    age = one_hot_age([2, 0, 1, 3])
    alone = g((face, age[:1]), training=False)
    in_batch = g((tf.concat([face, others], 0), age), training=False)[:1]
    # (convolution kernels may round differently for another batch size: float tolerance)
    np.testing.assert_allclose(alone.numpy(), in_batch.numpy(), atol=1e-5)
    with_batch_stats = g((tf.concat([face, others], 0), age), batch_stats=True)[:1]
    assert np.abs(with_batch_stats.numpy() - alone.numpy()).max() > 1e-3


def test_grouped_convolution_equals_half_by_half(models):
    _, _, a = models
    x = tf.random.normal([1, 27, 27, 96])
    w, b = a.conv2.kernel, a.conv2.bias
    expected = tf.concat([tf.nn.conv2d(x[..., :48], w[..., :128], 1, "SAME"),
                          tf.nn.conv2d(x[..., 48:], w[..., 128:], 1, "SAME")], -1) + b
    np.testing.assert_allclose(a.conv2(x).numpy(), expected.numpy(), atol=1e-4)


def test_discriminator_condition_enters_after_first_conv_and_lrelu():
    d = Discriminator(output_channels=1)
    build_models(discriminator=d, image_size=32)
    assert d.dis_4.kernel.shape == (4, 4, 512, 1)
    images = tf.random.uniform([2, 32, 32, 3], -1, 1)
    a0 = d((images, one_hot_age([0, 0])), batch_stats=True)
    a1 = d((images, one_hot_age([3, 3])), batch_stats=True)
    assert a0.shape == (2, 4, 4, 1)
    assert np.abs(a0.numpy() - a1.numpy()).max() > 0


def test_alexnet_rejects_unknown_output(models):
    with pytest.raises(ValueError, match="no output"):
        models[2](tf.zeros([1, 227, 227, 3]), outputs=("conv9",))


def test_initialisers_follow_the_release_and_differ_between_layers():
    g = Generator()
    build_models(generator=g, image_size=16)
    kernels = [u.conv1.kernel.numpy() for u in g.units] + [u.conv2.kernel.numpy() for u in g.units]
    assert all(not np.array_equal(kernels[0], k) for k in kernels[1:])
    # truncated normal, stddev 0.02 before truncation at 2 sigma -> 0.0176 after
    assert np.std(np.concatenate([k.ravel() for k in kernels])) == pytest.approx(0.0176, rel=0.03)
    assert np.abs(kernels[0]).max() <= 0.04
    assert np.std(g.deconv1.kernel.numpy()) == pytest.approx(0.02, rel=0.1)
    assert np.all(g.conv1.bias.numpy() == 0) and np.all(g.bn1.gamma.numpy() == 1)


def test_conv_on_parts_is_the_convolution_of_their_concatenation():
    from face_aging.layers import Conv, broadcast_condition
    rng = np.random.default_rng(7)
    features = tf.constant(rng.normal(size=(2, 16, 16, 6)), tf.float32)
    condition = broadcast_condition(one_hot_age([1, 4]), 16, 16, tf.float32)
    conv = Conv(8, 4, 2, name="dis_1")
    whole = conv(tf.concat([features, condition], -1))  # builds: kernel [4, 4, 11, 8]
    np.testing.assert_allclose(conv.call_on_parts([features, condition]).numpy(), whole.numpy(),
                               rtol=1e-5, atol=1e-5)


def test_discriminator_output_unchanged_by_the_split_dis_1():
    """After its first (building) call the discriminator runs dis_1 on the two parts; the
    logits equal the concatenation's to float rounding."""
    d = Discriminator(output_channels=4)
    images = tf.constant(np.random.default_rng(8).uniform(-1, 1, (2, 32, 32, 3)), tf.float32)
    age = one_hot_age([0, 3])
    d((images, age), training=False, batch_stats=True)  # builds dis_1 on the concatenation
    split = d((images, age), training=False, batch_stats=True)
    d.dis_1.call_on_parts = lambda parts: d.dis_1(tf.concat(parts, -1))
    whole = d((images, age), training=False, batch_stats=True)
    assert split.shape == (2, 4, 4, 4)
    np.testing.assert_allclose(split.numpy(), whole.numpy(), rtol=1e-4, atol=1e-5)
