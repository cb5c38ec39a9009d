"""The port's arithmetic against the release's, computed independently.

- Live: the generator, the discriminator and the AlexNet (every output) against
  ``tests/reference/release_numpy.py``, plain numpy written from the spec's tables (§1.1-§1.3:
  TF's SAME padding, the grouped convolutions, LRN after each of the first two max pools,
  ReLU placement, the condition entering D after its first conv).
- Stored: ``tests/reference/release_reference.npz``, what the release's maths gives for one
  fixed tiny batch (made once by ``tests/reference/make_release_reference.py``, see its
  docstring): the generator output, the three discriminator calls, AlexNet's features and
  logits, and the four losses; checked on the models and through one training step.

Weights are the same seeded ones for all (``make_release_reference.release_weights``), put
into the port by their release names (spec §6).
"""
import json
import sys

import numpy as np
import pytest
import tensorflow as tf

from conftest import REPO

sys.path.insert(0, str(REPO / "tests" / "reference"))
import make_release_reference as maker  # noqa: E402
import release_numpy as ref  # noqa: E402

from face_aging import pixels  # noqa: E402
from face_aging.backbones import FEATURE_LAYERS  # noqa: E402
from face_aging.backbones.alexnet import AlexNet  # noqa: E402
from face_aging.ipcgan import checkpoints as ipcgan_checkpoints, losses  # noqa: E402
from face_aging.ipcgan.networks import (Discriminator, Generator, build_models,  # noqa: E402
                                        one_hot_age)
from face_aging.ipcgan.trainer import IPCGANTrainer  # noqa: E402

SIZE = maker.SIZE


def assert_close(actual, expected, name, rtol=2e-5):
    """Equal to ``rtol`` of the reference's largest magnitude (float32 against float64)."""
    actual, expected = np.asarray(actual, np.float64), np.asarray(expected, np.float64)
    assert actual.shape == expected.shape, (name, actual.shape, expected.shape)
    scale = max(np.abs(expected).max(), 1e-6)
    worst = np.abs(actual - expected).max() / scale
    assert worst <= rtol, f"{name}: differs from the reference by {worst:.2e} of its scale"


def _load(models, weights):
    """Assigns ``weights`` (release name -> array) to the models' trainable variables."""
    mapping = ipcgan_checkpoints.release_variable_map(*models)
    trainable = {name: v for name, v in mapping.items() if v.trainable}
    assert set(trainable) == set(weights), set(trainable) ^ set(weights)
    for name, value in weights.items():
        trainable[name].assign(value)


@pytest.fixture(scope="module")
def weights():
    return maker.release_weights(maker.SEED)


@pytest.fixture(scope="module")
def port(weights):
    g, d, a = Generator(), Discriminator(), AlexNet()
    build_models(g, d, a, image_size=SIZE)
    _load((g, d, a), weights)
    return g, d, a


# --------------------------------------------------------------------------- live

def _age_vectors():
    """Per-sample targets, one of them a blend of two groups (the port's soft condition)."""
    return np.array([[0, 0, 0, 1, 0], [1, 0, 0, 0, 0], [0, 0.5, 0.5, 0, 0]], np.float32)


def test_generator_equals_the_numpy_reference(port, weights):
    g = port[0]
    rng = np.random.default_rng(10)
    source = rng.uniform(-124, 151, (3, SIZE, SIZE, 3)).astype(np.float32)
    expected = ref.generator(weights, source, _age_vectors())
    assert_close(g((source, _age_vectors()), batch_stats=True), expected, "G, batch stats")
    assert np.abs(expected).max() < 1 and expected.std() > 0.2  # tanh, far from saturation


@pytest.mark.parametrize("channels", [512, 1])
def test_discriminator_equals_the_numpy_reference(port, weights, channels):
    """Spec §1.2: conv 4x4 s2 + lrelu, *then* the condition, three conv+BN+lrelu, conv; the
    512-channel output of the release and the 1-channel option."""
    rng = np.random.default_rng(11)
    images = rng.uniform(-1, 1, (3, SIZE, SIZE, 3)).astype(np.float32)
    if channels == 512:
        d, w = port[1], weights
    else:
        w = dict(weights)
        w["discriminator/dis_4/weights"] = weights["discriminator/dis_4/weights"][..., :1]
        w["discriminator/dis_4/biases"] = weights["discriminator/dis_4/biases"][:1]
        d = Discriminator(output_channels=1)
        build_models(discriminator=d, image_size=SIZE)
        _load((None, d), {k: v for k, v in w.items() if k.startswith("discriminator/")})
    expected = ref.discriminator(w, images, _age_vectors())
    assert expected.shape == (3, SIZE // 8, SIZE // 8, channels)
    assert_close(d((images, _age_vectors()), batch_stats=True), expected, "D")
    assert_close(d((images, _age_vectors()), training=True), expected, "D, training")


def test_alexnet_equals_the_numpy_reference(port, weights):
    """Spec §1.3, every output: LRN (radius 2, alpha 2e-5, beta 0.75, bias 1) after pool1 and
    pool2, grouped conv2/4/5, ReLU after every conv and fc layer but the logits."""
    a = port[2]
    images = np.random.default_rng(12).uniform(-124, 151, (2, 227, 227, 3)).astype(np.float32)
    expected = ref.alexnet(weights, images)
    got = a(images)
    assert set(got) == set(expected)
    for name in expected:
        assert_close(got[name], expected[name], f"AlexNet {name}")
    # The reference is not degenerate: LRN really divides (by up to ~2 here), half the units fire.
    pooled = ref.max_pool(ref.relu(ref.conv2d(images, weights["alexnet/conv1/weights"],
                                              weights["alexnet/conv1/biases"], 4, "VALID")))
    shrink = pooled / np.maximum(ref.local_response_normalization(pooled, **ref.LRN), 1e-9)
    assert shrink[pooled > 1].max() > 1.5
    assert 0.3 < np.mean(expected["conv5"] > 0) < 0.7


# --------------------------------------------------------------------------- stored

@pytest.fixture(scope="module")
def stored(weights):
    with np.load(REPO / "tests" / "reference" / "release_reference.npz") as f:
        data = {k: f[k] for k in f.files}
    meta = json.loads(str(data.pop("meta")))
    assert meta["weights_sha256"] == maker.weights_digest(weights), (
        "the weights regenerated from the recorded seed are not those the reference file was "
        "made with (numpy's RandomState stream, or release_weights, changed)")
    assert (meta["size"], meta["batch"]) == (SIZE, maker.BATCH)
    return meta, data


def _port_batch(data):
    source = tf.constant(data["source_uint8"])
    batch = maker.BATCH
    return {"source_128": pixels.subtract_mean(source),
            "source_227": pixels.subtract_mean(pixels.resize_tf1(source, (227, 227))),
            "real": pixels.to_unit_range(data["real_uint8"]),
            "target_group": tf.fill([batch], maker.TARGET),
            "false_group": tf.fill([batch], maker.FALSE)}


def test_the_stored_batch_is_the_release_pipeline_of_the_stored_faces(stored):
    """The port's pixel conventions (spec §3) turn the stored uint8 faces into the batch the
    reference was computed on."""
    _, data = stored
    expected = maker.release_batch(data)
    got = _port_batch(data)
    for name in ("source_128", "source_227", "real"):
        assert_close(got[name], expected[name], name)


def test_port_reproduces_the_stored_release_reference(port, stored):
    meta, data = stored
    g, d, a = port
    batch = _port_batch(data)
    t = one_hot_age(batch["target_group"])
    f = one_hot_age(batch["false_group"])
    fake = g((batch["source_128"], t), batch_stats=True)
    assert_close(fake, data["generator_output"], "generator output")
    calls = {"d_real_true": d((batch["real"], t), batch_stats=True),
             "d_real_false": d((batch["real"], f), batch_stats=True),
             "d_fake_true": d((fake, t), batch_stats=True)}
    for name, logits in calls.items():
        assert_close(logits.numpy()[maker.SUBSETS["d"]], data[name], name)
    out = {"fake": a(pixels.generated_to_alexnet(fake)), "source": a(batch["source_227"])}
    for which, features in out.items():
        for feature, subset in maker.FEATURE_SUBSET.items():
            assert_close(features[feature].numpy()[maker.SUBSETS[subset]],
                         data[f"alexnet_{which}_{feature}"], f"AlexNet {feature} of {which}")
    computed = {"d_loss": losses.lsgan_discriminator_loss(*calls.values()),
                "g_loss": losses.lsgan_generator_loss(calls["d_fake_true"]),
                "age_loss": losses.age_classification_loss(out["fake"]["age_logits"],
                                                           batch["target_group"])}
    for layer in FEATURE_LAYERS:
        computed[f"fea_loss_{layer}"] = losses.msum(out["fake"][layer], out["source"][layer])
    for name, value in computed.items():
        assert float(value) == pytest.approx(float(data[f"loss_{name}"]), rel=1e-4), name


@pytest.mark.parametrize("fea_layer_name", ["conv5", "fc6"])
def test_a_training_step_logs_the_stored_release_losses(port, weights, stored, fea_layer_name):
    """The step's logged d_loss, fea_loss and age_loss are the release's losses of the stored
    batch (all computed before any update); g_loss is seen through the updated D, so it moves."""
    _, data = stored
    g, d = Generator(), Discriminator()
    build_models(g, d, image_size=SIZE)
    _load((g, d), {k: v for k, v in weights.items() if not k.startswith("alexnet/")})
    trainer = IPCGANTrainer(g, d, port[2], fea_layer_name=fea_layer_name)
    logged = {k: float(v) for k, v in trainer.train_step(_port_batch(data)).items()}
    assert logged.pop("finite") == 1.0
    assert logged["d_loss"] == pytest.approx(float(data["loss_d_loss"]), rel=1e-4)
    assert logged["age_loss"] == pytest.approx(float(data["loss_age_loss"]), rel=1e-4)
    assert logged["fea_loss"] == pytest.approx(float(data[f"loss_fea_loss_{fea_layer_name}"]),
                                               rel=1e-4)
    assert logged["g_loss"] != pytest.approx(float(data["loss_g_loss"]), rel=1e-3)
