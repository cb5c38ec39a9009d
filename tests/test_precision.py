"""bfloat16 mixed precision: the mode flag, one step against float32, checkpoints shared between
modes, exact resume within the mode, CycleGAN, pretraining's forward pass and inference.

Tolerances: bfloat16 keeps 8 bits of mantissa (relative rounding 2**-9 = 0.2 %); over the
generator, discriminator and AlexNet the losses of one step were measured within 1 % of float32,
so the tests allow 3 %; generator outputs within 4/255 (measured: mean 0.3/255 on the bundled model).
"""
import os
import shutil
import subprocess
import sys

import keras
import numpy as np
import pytest
import tensorflow as tf
from absl import flags

from conftest import REPO, make_list_dataset
from face_aging import precision
from face_aging.backbones.alexnet import AlexNet
from face_aging.ipcgan.networks import Discriminator, Generator, build_models, one_hot_age
from face_aging.ipcgan.trainer import IPCGANTrainer

S = 16
ENV = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2", PYTHONUNBUFFERED="1")


def _batch(b=2, seed=0):
    rng = np.random.default_rng(seed)
    return {"source_128": tf.constant(rng.uniform(-124, 151, (b, S, S, 3)), tf.float32),
            "source_227": tf.constant(rng.uniform(-124, 151, (b, 227, 227, 3)), tf.float32),
            "real": tf.constant(rng.uniform(-1, 1, (b, S, S, 3)), tf.float32),
            "target_group": tf.constant([2, 4]), "false_group": tf.constant([0, 1])}


def _models(mode, seed=0):
    keras.utils.set_random_seed(seed)
    with precision.keras_policy(mode):
        g, d, a = Generator(), Discriminator(), AlexNet()
        build_models(g, d, a, image_size=S)
    return g, d, a


@pytest.mark.parametrize("value, mode", [
    ("bfloat16", "bfloat16"), ("BF16", "bfloat16"), ("mixed_bfloat16", "bfloat16"),
    ("float16", "float16"), (True, "float16"), ("true", "float16"), ("1", "float16"),
    (False, "none"), (None, "none"), ("false", "none"), ("none", "none"), ("float32", "none")])
def test_mode_names_and_the_old_boolean_values(value, mode):
    assert precision.parse_mode(value) == mode


def test_an_unknown_mode_is_one_line():
    with pytest.raises(ValueError, match=r"^mixed precision 'int8': choose from none, float16, "
                                         r"bfloat16$"):
        precision.parse_mode("int8")


@pytest.mark.parametrize("argv, mode", [
    ([], "none"), (["--mixed_precision"], "float16"), (["--nomixed_precision"], "none"),
    (["--mixed_precision=bfloat16"], "bfloat16"), (["--mixed_precision=float16"], "float16"),
    (["--mixed_precision=false"], "none")])
def test_the_flag_keeps_its_boolean_spellings(argv, mode):
    values = flags.FlagValues()
    precision.define_flag(values)
    values(["prog"] + argv)
    assert values.mixed_precision == mode


def test_the_flag_refuses_an_unknown_mode():
    values = flags.FlagValues()
    precision.define_flag(values)
    with pytest.raises(flags.IllegalFlagValueError, match="choose from none, float16, bfloat16"):
        values(["prog", "--mixed_precision=int8"])


def test_only_float16_scales_the_loss():
    assert [precision.uses_loss_scaling(m) for m in precision.MODES] == [False, True, False]


def test_policy_is_restored_after_building():
    before = keras.mixed_precision.global_policy().name
    with precision.keras_policy("bfloat16"):
        assert keras.mixed_precision.global_policy().name == "mixed_bfloat16"
    assert keras.mixed_precision.global_policy().name == before


def test_one_bfloat16_step_matches_float32_and_keeps_float32_state():
    g32, d32, a32 = _models("none")
    g16, d16, a16 = _models("bfloat16")
    for ours, theirs in ((g16, g32), (d16, d32), (a16, a32)):
        for x, y in zip(ours.variables, theirs.variables):
            x.assign(y)
    assert g16.compute_dtype == "bfloat16" and g16.variable_dtype == "float32"
    assert all(v.dtype == "float32" for v in g16.variables + d16.variables)
    t32 = IPCGANTrainer(g32, d32, a32, mixed_precision="none")
    t16 = IPCGANTrainer(g16, d16, a16, mixed_precision="bfloat16")
    assert not t16.loss_scaling
    assert not isinstance(t16.g_optimizer, keras.optimizers.LossScaleOptimizer)
    batch = _batch()
    out32 = {k: float(v) for k, v in t32.train_step(batch).items()}
    out16 = t16.train_step(batch)
    assert all(v.dtype in (tf.float32, tf.bool) for v in out16.values())
    out16 = {k: float(v) for k, v in out16.items()}
    assert out16["finite"] == 1.0
    for name in ("d_loss", "g_loss", "fea_loss", "age_loss"):
        assert out16[name] == pytest.approx(out32[name], rel=0.03), name
    # batch-norm statistics are float32 and were updated in float32
    assert g16.bn1.moving_mean.dtype == "float32"
    np.testing.assert_allclose(g16.bn1.moving_mean.numpy(), g32.bn1.moving_mean.numpy(),
                               rtol=0.03, atol=0.05)
    # the generator's output is float32 (the losses and saved images are computed from it)
    fake = g16((batch["source_128"], one_hot_age([1, 3])), training=False)
    assert fake.dtype == tf.float32


def test_checkpoints_are_interchangeable_between_float32_and_bfloat16(tmp_path):
    g16, d16, a16 = _models("bfloat16", seed=1)
    t16 = IPCGANTrainer(g16, d16, a16, mixed_precision="bfloat16")
    t16.train_step(_batch())
    prefix = tf.train.Checkpoint(generator=g16, discriminator=d16,
                                 g_optimizer=t16.g_optimizer).write(str(tmp_path / "bf16"))
    g32, d32, a32 = _models("none", seed=2)
    t32 = IPCGANTrainer(g32, d32, a32)
    tf.train.Checkpoint(generator=g32, discriminator=d32,
                        g_optimizer=t32.g_optimizer).read(prefix).assert_consumed()
    for x, y in zip(g16.variables + d16.variables + list(t16.g_optimizer.variables),
                    g32.variables + d32.variables + list(t32.g_optimizer.variables)):
        np.testing.assert_array_equal(x.numpy(), y.numpy())
    # and back: a float32 checkpoint restores into bfloat16 models
    t32.train_step(_batch(seed=1))
    prefix = tf.train.Checkpoint(generator=g32).write(str(tmp_path / "fp32"))
    g_back, _, _ = _models("bfloat16", seed=3)
    tf.train.Checkpoint(generator=g_back).read(prefix).assert_consumed()
    for x, y in zip(g_back.variables, g32.variables):
        np.testing.assert_array_equal(x.numpy(), y.numpy())


def _train_args(data, ckpt, *extra):
    return [sys.executable, "train_ipcgan.py", f"--list_dir={data}", "--batch_size=2",
            "--image_size=16", "--allow_random_alexnet", "--deterministic",
            "--mixed_precision=bfloat16", "--log_interval=1", "--sample_interval=1000",
            "--save_interval=1", "--max_to_keep=0", f"--checkpoint_dir={ckpt}",
            f"--sample_dir={ckpt}/samples", *extra]


def _variables(prefix):
    reader = tf.train.load_checkpoint(str(prefix))
    return {k: reader.get_tensor(k) for k in reader.get_variable_to_shape_map()
            if k.split("/")[0] in ("generator", "discriminator", "g_optimizer", "d_optimizer")}


def test_cli_bfloat16_run_resumes_bit_exactly(tmp_path):
    """train_ipcgan.py --mixed_precision=bfloat16: 3 straight steps vs 1 step, a restart from
    that checkpoint, 2 more: the same weights and Adam moments, bit for bit."""
    data = make_list_dataset(tmp_path / "data")
    straight = tmp_path / "straight"
    run = subprocess.run(_train_args(data, straight, "--max_steps=3"), cwd=REPO, env=ENV,
                         capture_output=True, text=True, timeout=900)
    assert run.returncode == 0, run.stderr
    options = (straight / "training_options.json").read_text()
    assert '"mixed_precision": "bfloat16"' in options
    resumed = tmp_path / "resumed"
    first = subprocess.run(_train_args(data, resumed, "--max_steps=1"), cwd=REPO, env=ENV,
                           capture_output=True, text=True, timeout=900)
    assert first.returncode == 0, first.stderr
    second = subprocess.run(_train_args(data, resumed, "--max_steps=3"), cwd=REPO, env=ENV,
                            capture_output=True, text=True, timeout=900)
    assert second.returncode == 0, second.stderr
    assert "resumed from" in second.stdout and "at step 1" in second.stdout
    a, b = _variables(straight / "ckpt-3"), _variables(resumed / "ckpt-3")
    assert a.keys() == b.keys() and len(a) > 300
    for key in a:
        np.testing.assert_array_equal(a[key], b[key], err_msg=key)
    shutil.rmtree(straight)
    shutil.rmtree(resumed)


def test_cyclegan_bfloat16_step_matches_float32():
    from face_aging.cyclegan.networks import make_networks
    from face_aging.cyclegan.trainer import CycleGANTrainer

    trainers = {}
    for mode in ("none", "bfloat16"):
        keras.utils.set_random_seed(0)
        nets = make_networks(n_blocks=1, ngf=8, ndf=8, crop_size=32, mixed_precision=mode)
        trainers[mode] = CycleGANTrainer(*nets, (32, 32, 3), pool_size=0,
                                         mixed_precision=mode)
    for x, y in zip(trainers["bfloat16"].state_variables(),
                    trainers["none"].state_variables()):
        x.assign(y)
    assert trainers["bfloat16"].g_a.compute_dtype == "bfloat16"
    rng = np.random.default_rng(0)
    batch = {k: tf.constant(rng.uniform(-1, 1, (1, 32, 32, 3)), tf.float32) for k in "AB"}
    out = {m: {k: float(v) for k, v in t.train_step(batch).items()} for m, t in trainers.items()}
    assert out["bfloat16"]["finite"] == 1.0
    for name in ("G_A", "cycle_A", "idt_A", "D_A", "G_B", "cycle_B", "idt_B", "D_B"):
        assert out["bfloat16"][name] == pytest.approx(out["none"][name], rel=0.03, abs=1e-3), name
    fake = trainers["bfloat16"].g_a(batch["A"])
    assert fake.dtype == tf.float32 and all(
        v.dtype == "float32" for v in trainers["bfloat16"].g_a.variables)


def test_pretraining_forward_in_bfloat16_matches_float32():
    from face_aging.alexnet import networks as alexnet_networks

    keras.utils.set_random_seed(0)
    a32 = AlexNet()
    build_models(alexnet=a32)
    with precision.keras_policy("bfloat16"):
        a16 = AlexNet()
        build_models(alexnet=a16)
    for x, y in zip(a16.variables, a32.variables):
        x.assign(y * 20.0)  # large enough weights that the logits are not all ~0
    for x in a32.variables:
        x.assign(x * 20.0)
    images = tf.constant(np.random.default_rng(0).uniform(-124, 151, (2, 227, 227, 3)),
                         tf.float32)
    out32 = alexnet_networks.forward(a32, images, identity=True)
    out16 = alexnet_networks.forward(a16, images, identity=True)
    for name in ("age_logits", "identity_logits"):
        assert out16[name].dtype == tf.float32
        scale = float(tf.reduce_max(tf.abs(out32[name])))
        assert scale > 0
        np.testing.assert_allclose(out16[name].numpy(), out32[name].numpy(), atol=0.03 * scale)


def test_pretraining_config_builds_a_bfloat16_alexnet_with_plain_adam():
    from face_aging.alexnet import config as alexnet_config
    from face_aging.alexnet import networks as alexnet_networks

    config = alexnet_config.PretrainConfig(list_dir="", output_dir="", mixed_precision="bfloat16")
    with precision.keras_policy(config.mixed_precision):
        a = AlexNet()
        build_models(alexnet=a)
    optimizer = alexnet_networks.make_optimizer(config, [a.conv1.kernel])
    assert a.compute_dtype == "bfloat16"
    assert not isinstance(optimizer, keras.optimizers.LossScaleOptimizer)
    fp16 = alexnet_networks.make_optimizer(
        alexnet_config.PretrainConfig(list_dir="", output_dir="", mixed_precision="float16"),
        [a.conv1.kernel])
    assert isinstance(fp16, keras.optimizers.LossScaleOptimizer)


@pytest.mark.skipif(not os.path.isfile(os.path.join(REPO, "checkpoints", "bundled",
                                                    "model.json")),
                    reason="no bundled model")
def test_bundled_model_in_bfloat16_stays_within_a_few_levels_of_float32():
    from face_aging.ipcgan import inference

    faces = np.random.default_rng(0).integers(0, 256, (2, 96, 96, 3), dtype=np.uint8)
    outputs = {}
    for mode in ("none", "bfloat16"):
        generator = inference.load_generator(inference.BUNDLED_CHECKPOINT_DIR,
                                             mixed_precision=mode)
        outputs[mode] = inference.age_faces(generator, faces, [1, 4]).astype(np.int16)
    assert generator.compute_dtype == "bfloat16"
    difference = np.abs(outputs["bfloat16"] - outputs["none"])
    assert difference.mean() < 2.0 and np.percentile(difference, 99) <= 12
