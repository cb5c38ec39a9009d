"""The training step (update order, logged losses) and the input pipeline."""
import keras
import numpy as np
import pytest
import tensorflow as tf

from conftest import group_colour, make_list_dataset
from face_aging import pixels
from face_aging.backbones.alexnet import AlexNet
from face_aging.ipcgan import losses
from face_aging.ipcgan.data import DatasetError, make_train_dataset
from face_aging.ipcgan.networks import Discriminator, Generator, build_models, one_hot_age
from face_aging.ipcgan.trainer import IPCGANTrainer

SIZE = 32


def _copy(model_cls, source):
    copy = model_cls()
    build_models(**{{Generator: "generator", Discriminator: "discriminator"}[model_cls]: copy},
                 image_size=SIZE)
    for a, b in zip(copy.variables, source.variables):
        a.assign(b)
    return copy


@pytest.fixture(scope="module")
def alexnet():
    a = AlexNet()
    build_models(alexnet=a)
    return a


def _batch(seed=0, b=3):
    rng = np.random.default_rng(seed)
    return {
        "source_128": tf.constant(rng.uniform(-124, 151, (b, SIZE, SIZE, 3)), tf.float32),
        "source_227": tf.constant(rng.uniform(-124, 151, (b, 227, 227, 3)), tf.float32),
        "real": tf.constant(rng.uniform(-1, 1, (b, SIZE, SIZE, 3)), tf.float32),
        "target_group": tf.fill([b], 3), "false_group": tf.fill([b], 1)}


@pytest.mark.parametrize("structure", ["reuse", "release"])
def test_step_updates_d_first_and_g_against_the_updated_d(alexnet, structure):
    tf.random.set_seed(0)
    g, d = Generator(), Discriminator()
    build_models(g, d, image_size=SIZE)
    trainer = IPCGANTrainer(g, d, alexnet, 75.0, 0.5e-4, 30.0, "conv5", 1e-3,
                            step_structure=structure)
    batch = _batch()
    g_before, d_before = _copy(Generator, g), _copy(Discriminator, d)
    logged = {k: float(v) for k, v in trainer.train_step(batch).items()}

    age_t, age_f = one_hot_age(batch["target_group"]), one_hot_age(batch["false_group"])
    fake = g_before((batch["source_128"], age_t), training=True)
    d_old = _copy(Discriminator, d_before)
    expected_d = losses.lsgan_discriminator_loss(
        d_old((batch["real"], age_t), training=True), d_old((batch["real"], age_f), training=True),
        d_old((fake, age_t), training=True))
    assert logged["d_loss"] == pytest.approx(float(expected_d), rel=1e-5)
    # g_loss is seen through the discriminator after its update ...
    d_new = _copy(Discriminator, d)
    with_new_d = float(losses.lsgan_generator_loss(d_new((fake, age_t), training=True)))
    with_old_d = float(losses.lsgan_generator_loss(d_old((fake, age_t), training=True)))
    assert logged["g_loss"] == pytest.approx(with_new_d, rel=1e-5)
    assert abs(with_new_d - with_old_d) > 1e-3 * abs(with_old_d)  # ... which is distinguishable
    # fea and age losses are the unweighted values on the pre-update generator's faces.
    out = alexnet(pixels.generated_to_alexnet(fake))
    src = alexnet(batch["source_227"])
    assert logged["fea_loss"] == pytest.approx(float(losses.msum(out["conv5"], src["conv5"])),
                                               rel=1e-4)
    assert logged["age_loss"] == pytest.approx(
        float(losses.age_classification_loss(out["age_logits"], batch["target_group"])), rel=1e-4)
    # Both networks moved; AlexNet did not.
    assert any(np.abs(a.numpy() - b.numpy()).max() > 0
               for a, b in zip(g.trainable_variables, g_before.trainable_variables))


def first_moments(optimizer, variables):
    """Adam's first moment ``m`` of each variable (Keras 3 keeps them in ``_momentums``)."""
    return [optimizer._momentums[optimizer._get_variable_index(v)].numpy() for v in variables]


def _flat(arrays):
    return np.concatenate([np.ravel(a) for a in arrays])


def _relative_difference(a, b):
    return float(np.linalg.norm(_flat(a) - _flat(b)) / np.linalg.norm(_flat(b)))


#: Loss weights for which every term of G's loss moves G's gradient by a similar amount with a
#: random AlexNet at 32 px (measured: |grad| of g_adv 2.5, of fea 1.2e6, of age 116), so that a
#: swapped, dropped or unweighted term changes the expected gradient by far more than the
#: tolerance (checked in the test).
WEIGHTS = {"gan": 300.0, "fea": 1e-3, "age": 10.0}


@pytest.mark.parametrize("structure", ["reuse", "release"])
def test_each_update_is_the_gradient_of_its_weighted_loss(alexnet, structure):
    """After one step from zero, Adam's first moment is ``(1 - beta1) * gradient``: D's must be
    the gradient of ``gan_w * d_loss`` (pre-update G's fakes), G's that of
    ``gan_w * g_adv + fea_w * fea + age_w * age`` through the updated D, each by a hand-built
    loss under a ``GradientTape``."""
    keras.utils.set_random_seed(1)
    g, d = Generator(), Discriminator()
    build_models(g, d, image_size=SIZE)
    trainer = IPCGANTrainer(g, d, alexnet, WEIGHTS["gan"], WEIGHTS["fea"], WEIGHTS["age"],
                            "conv5", 1e-3, step_structure=structure)
    batch = _batch(4)
    g_before, d_before = _copy(Generator, g), _copy(Discriminator, d)
    trainer.train_step(batch)
    beta_1 = 0.5
    d_moments = [m / (1 - beta_1) for m in first_moments(trainer.d_optimizer,
                                                         d.trainable_variables)]
    g_moments = [m / (1 - beta_1) for m in first_moments(trainer.g_optimizer,
                                                         g.trainable_variables)]

    age_t, age_f = one_hot_age(batch["target_group"]), one_hot_age(batch["false_group"])
    fake = g_before((batch["source_128"], age_t), training=True)
    with tf.GradientTape() as tape:
        d_loss = losses.lsgan_discriminator_loss(
            d_before((batch["real"], age_t), training=True),
            d_before((batch["real"], age_f), training=True),
            d_before((fake, age_t), training=True))
        d_total = WEIGHTS["gan"] * d_loss
    expected_d = tape.gradient(d_total, d_before.trainable_variables)
    assert _relative_difference(d_moments, expected_d) < 1e-4
    unweighted_d = [x / WEIGHTS["gan"] for x in expected_d]
    assert _relative_difference(d_moments, unweighted_d) > 0.9

    d_after = _copy(Discriminator, d)
    g_copy = _copy(Generator, g_before)
    source_features = alexnet(batch["source_227"])["conv5"]
    with tf.GradientTape(persistent=True) as tape:
        fake = g_copy((batch["source_128"], age_t), training=True)
        terms = {"gan": losses.lsgan_generator_loss(d_after((fake, age_t), training=True))}
        out = alexnet(pixels.generated_to_alexnet(fake))
        terms["fea"] = losses.msum(out["conv5"], source_features)
        terms["age"] = losses.age_classification_loss(out["age_logits"], batch["target_group"])
    grads = {k: tape.gradient(v, g_copy.trainable_variables) for k, v in terms.items()}

    def combined(weights):
        return [sum(weights[k] * grads[k][i] for k in grads) for i in range(len(grads["gan"]))]

    expected_g = combined(WEIGHTS)
    # Tolerance: the traced step and this eager computation give G's adversarial gradient to
    # ~1 % (measured: backprop through D's batch statistics of 3 faces at initialisation is
    # noisy in float32); the other terms agree to ~1e-6. A defect of the weighting (a swapped
    # pair, a dropped or an unweighted term) changes the gradient by 10 % or more.
    assert _relative_difference(g_moments, expected_g) < 1e-2
    w = WEIGHTS
    wrong = {"fea and age swapped": dict(w, fea=w["age"], age=w["fea"]),
             "gan and age swapped": dict(w, gan=w["age"], age=w["gan"]),
             **{f"{k} dropped": dict(w, **{k: 0.0}) for k in w},
             **{f"{k} unweighted": dict(w, **{k: 1.0}) for k in w}}
    for name, weights in wrong.items():
        assert _relative_difference(combined(weights), expected_g) > 0.1, name


def test_l1_loss_weight_adds_its_weighted_gradient_to_g_only(alexnet):
    """--l1_loss_weight (not the release): two trainers from the same weights, with and without
    it, take the same D update, and G's first moments differ by exactly ``l1_w`` times the
    gradient of ``mean|G(x) - x|`` (faces in [-1, 1]); the run with it logs ``l1_loss``, the
    release's does not."""
    keras.utils.set_random_seed(2)
    g, d = Generator(), Discriminator()
    build_models(g, d, image_size=SIZE)
    l1_w = 50.0
    trainers, logged = {}, {}
    for weight in (0.0, l1_w):
        g_run, d_run = _copy(Generator, g), _copy(Discriminator, d)
        trainers[weight] = IPCGANTrainer(g_run, d_run, alexnet, *WEIGHTS.values(), "conv5", 1e-3,
                                         l1_loss_weight=weight)
        logged[weight] = {k: float(v) for k, v in trainers[weight].train_step(_batch(5)).items()}
    assert "l1_loss" not in logged[0.0] and "l1_loss" in logged[l1_w]

    def moments(trainer, network, optimizer):
        return [m / 0.5 for m in first_moments(optimizer, network.trainable_variables)]

    without, with_l1 = (moments(t, t.generator, t.g_optimizer) for t in trainers.values())
    assert _relative_difference(*(moments(t, t.discriminator, t.d_optimizer)
                                  for t in trainers.values())) < 1e-6
    batch = _batch(5)
    g_copy = _copy(Generator, g)
    source = pixels.to_unit_range(pixels.generator_input_to_0_255(batch["source_128"]))
    with tf.GradientTape() as tape:
        fake = g_copy((batch["source_128"], one_hot_age(batch["target_group"])), training=True)
        l1 = tf.reduce_mean(tf.abs(fake - source))
    expected = [l1_w * x for x in tape.gradient(l1, g_copy.trainable_variables)]
    assert logged[l1_w]["l1_loss"] == pytest.approx(float(l1), rel=1e-5)
    assert _relative_difference([a - b for a, b in zip(with_l1, without)], expected) < 1e-3


def test_alexnet_is_frozen_and_weights_shape_the_gradient(alexnet):
    g, d = Generator(), Discriminator()
    build_models(g, d, image_size=SIZE)
    before = [v.numpy().copy() for v in alexnet.variables]
    IPCGANTrainer(g, d, alexnet).train_step(_batch(1))
    for a, b in zip(before, alexnet.variables):
        np.testing.assert_array_equal(a, b.numpy())
    with pytest.raises(ValueError, match="fea_layer_name 'conv9'"):
        IPCGANTrainer(g, d, alexnet, fea_layer_name="conv9")
    with pytest.raises(ValueError, match="gan_loss_weight must be >= 0"):
        IPCGANTrainer(g, d, alexnet, gan_loss_weight=-1)


def test_xla_step_gives_the_same_losses(alexnet):
    results = []
    for jit in (False, True):
        keras.utils.set_random_seed(0)
        g, d = Generator(), Discriminator()
        build_models(g, d, image_size=SIZE)
        trainer = IPCGANTrainer(g, d, alexnet, jit_compile=jit)
        results.append({k: float(v) for k, v in trainer.train_step(_batch(2)).items()})
    for key in results[0]:
        assert results[1][key] == pytest.approx(results[0][key], rel=1e-3), key


def test_pipeline_batches_follow_the_label_pairs(tmp_path):
    root = make_list_dataset(tmp_path, per_group=3, size=40)
    ds = make_train_dataset(str(root), None, batch_size=2, image_size=SIZE, seed=0)
    pairs = [(1, 0), (4, 2), (3, 1), (0, 3), (2, 4)]
    for i, batch in enumerate(ds.take(7)):
        t, f = pairs[i % len(pairs)]
        assert batch["target_group"].numpy().tolist() == [t, t]
        assert batch["false_group"].numpy().tolist() == [f, f]
        assert batch["source_128"].shape == (2, SIZE, SIZE, 3)
        assert batch["source_227"].shape == (2, 227, 227, 3)
        # real faces come from the target group: their grey level says which group
        real_0_255 = (batch["real"].numpy() + 1) * 127.5
        assert abs(np.median(real_0_255) - group_colour(t)) < 2
        assert batch["real"].numpy().min() >= -1 and batch["real"].numpy().max() <= 1
        # sources are RGB 0..255 minus the mean
        src = batch["source_128"].numpy() + np.array(pixels.MEAN_RGB)
        assert src.min() >= -1e-3 and src.max() <= 255 + 1e-3


def test_per_sample_targets_mix_groups_within_a_batch(tmp_path):
    root = make_list_dataset(tmp_path, per_group=3, size=40)
    ds = make_train_dataset(str(root), None, batch_size=2, image_size=SIZE, seed=0,
                            per_sample_targets=True)
    pairs = [(1, 0), (4, 2), (3, 1), (0, 3), (2, 4)]
    for i, batch in enumerate(ds.take(5)):
        expected = [pairs[(2 * i + k) % len(pairs)] for k in range(2)]  # one pair per face
        assert batch["target_group"].numpy().tolist() == [t for t, _ in expected]
        assert batch["false_group"].numpy().tolist() == [f for _, f in expected]
        assert batch["target_group"].dtype == tf.int32 and batch["real"].shape == (2, SIZE, SIZE, 3)
        for k, (t, _) in enumerate(expected):  # each real face from its own target group
            assert abs(np.median((batch["real"].numpy()[k] + 1) * 127.5) - group_colour(t)) < 2


def test_batch_norm_all_but_erases_a_batch_shared_condition():
    """Why ``per_sample_targets`` exists: with batch statistics (as the release trains), the
    batch norm after G's first conv subtracts a batch-constant condition map again, except for
    the share the zero-padded borders leave in the batch mean. Same face, targets 0 vs 4."""
    size, pad = 64, 3  # conv1 is 7x7 SAME
    generator = Generator()
    build_models(generator=generator, image_size=size)
    face = np.random.default_rng(0).uniform(-124, 151, (1, size, size, 3))
    source = tf.constant(np.repeat(face, 2, 0), tf.float32)

    def bn1(groups):
        age_map = tf.broadcast_to(one_hot_age(groups)[:, None, None, :], [2, size, size, 5])
        x = generator.conv1(tf.concat([source, age_map], -1))
        return generator.bn1(x, use_batch_stats=True).numpy()[:, pad:-pad, pad:-pad]

    shared = np.abs(bn1([0, 0]) - bn1([4, 4])).mean()  # two batches, each one target
    mixed_batch = bn1([0, 4])                            # one batch, both targets
    mixed = np.abs(mixed_batch[0] - mixed_batch[1]).mean()
    assert mixed > 1e-3 and shared < 0.2 * mixed


def test_pipeline_reports_missing_images_and_empty_groups(tmp_path):
    root = make_list_dataset(tmp_path, per_group=2)
    (root / "faces" / "g2_1.png").unlink()
    with pytest.raises(DatasetError, match=r"train.txt: 1 of 10 listed images are missing .*g2_1"):
        make_train_dataset(str(root), None, batch_size=2, image_size=SIZE)
    (root / "train_age_group_2.txt").write_text("")
    (root / "train.txt").write_text("".join(
        l for l in open(root / "train.txt") if "g2_1" not in l))
    with pytest.raises(DatasetError, match="no images, but .* asks for group 2"):
        make_train_dataset(str(root), None, batch_size=2, image_size=SIZE)
