"""The reconstruction start (--reconstruction_steps): G alone learns to give back its input, then
the GAN continues from there."""
import glob
import os
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

from conftest import REPO, make_list_dataset, run_tiny_training
from face_aging import pixels
from face_aging.backbones.alexnet import AlexNet
from face_aging.ipcgan.networks import Discriminator, Generator, build_models, one_hot_age
from face_aging.ipcgan.trainer import IPCGANTrainer

S = 32
ENV = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2", PYTHONUNBUFFERED="1")


def _faces(paths):
    """Real face photos of images/ at S x S: (source [B,S,S,3] minus mean, source_227, [-1,1])."""
    faces = np.stack([np.asarray(Image.open(p).convert("RGB").resize((S, S), Image.BILINEAR))
                      for p in paths]).astype(np.float32)
    big = np.stack([np.asarray(Image.open(p).convert("RGB").resize((227, 227), Image.BILINEAR))
                    for p in paths]).astype(np.float32)
    return {"source_128": pixels.subtract_mean(faces), "source_227": pixels.subtract_mean(big),
            "target": faces / 127.5 - 1.0}


def _l1(generator, faces, groups):
    out = generator((faces["source_128"], one_hot_age(groups)), training=False, batch_stats=True)
    return float(tf.reduce_mean(tf.abs(out - faces["target"])))


def test_reconstruction_start_reproduces_unseen_faces_better_than_a_random_generator():
    train_paths = sorted(glob.glob(str(REPO / "images" / "train" / "*.jpg")))
    test_paths = sorted(glob.glob(str(REPO / "images" / "test" / "*.jpg")))
    assert len(train_paths) >= 16 and len(test_paths) >= 4
    tf.random.set_seed(0)
    g, d, a = Generator(), Discriminator(), AlexNet()
    build_models(g, d, a, image_size=S)
    trainer = IPCGANTrainer(g, d, a)
    trainer.enable_reconstruction(learning_rate=2e-3)
    unseen = _faces(test_paths[:4])
    groups = [0, 2, 3, 4]
    random_l1 = _l1(g, unseen, groups)
    d_before = [v.numpy() for v in d.variables]
    rng = np.random.default_rng(0)
    for step in range(60):
        batch = _faces([train_paths[i] for i in rng.choice(len(train_paths), 8, replace=False)])
        out = trainer.reconstruction_step(batch, [0, step])
        assert bool(out["finite"])
    trained_l1 = _l1(g, unseen, groups)
    assert trained_l1 < 0.8 * random_l1, (random_l1, trained_l1)  # measured: 0.69x
    # the discriminator and the GAN's optimizers were not touched
    for before, after in zip(d_before, d.variables):
        np.testing.assert_array_equal(before, after.numpy())
    assert int(trainer.r_optimizer.iterations) == 60
    assert int(trainer.g_optimizer.iterations) == 0 and int(trainer.d_optimizer.iterations) == 0


def test_reconstruction_step_is_a_function_of_its_seed():
    """The random target ages come from the stateless seed (a resumed run draws the same): the
    same seed gives the same update, another seed another one."""
    batch = _faces(sorted(glob.glob(str(REPO / "images" / "train" / "*.jpg")))[:4])
    tf.random.set_seed(1)
    g, d, a = Generator(), Discriminator(), AlexNet()
    build_models(g, d, a, image_size=S)
    start = [v.numpy() for v in g.variables]
    kernels = []
    for seed in ([5, 3], [5, 3], [5, 4]):
        for v, value in zip(g.variables, start):
            v.assign(value)
        trainer = IPCGANTrainer(g, d, a)
        trainer.enable_reconstruction()
        trainer.reconstruction_step(batch, seed)
        kernels.append(g.conv1.kernel.numpy().copy())
    np.testing.assert_array_equal(kernels[0], kernels[1])
    assert not np.array_equal(kernels[0], kernels[2])


def test_cli_reconstruction_steps_then_gan_steps(tmp_path):
    data = make_list_dataset(tmp_path / "data")
    ckpt = tmp_path / "run"
    result = run_tiny_training(data, ckpt, "--reconstruction_steps=2", "--max_steps=3")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert any(line.startswith("step 1/3  rec_l1 ") for line in lines)
    assert "step 2: reconstruction start done; GAN training from here" in lines
    assert any(line.startswith("step 3/3  d_loss ") for line in lines)

    def iterations(step, name):
        reader = tf.train.load_checkpoint(str(ckpt / f"ckpt-{step}"))
        return int(reader.get_tensor(f"{name}/_iterations/.ATTRIBUTES/VARIABLE_VALUE"))

    assert [iterations(2, n) for n in ("r_optimizer", "g_optimizer", "d_optimizer")] == [2, 0, 0]
    assert [iterations(3, n) for n in ("r_optimizer", "g_optimizer", "d_optimizer")] == [2, 1, 1]
    bad = run_tiny_training(data, tmp_path / "bad", "--reconstruction_steps=-1", "--max_steps=3")
    assert bad.returncode != 0 and "reconstruction_steps" in bad.stderr


@pytest.mark.parametrize("flag", ["--reconstruction_learning_rate=-1",
                                  "--reconstruction_l1_weight=-2"])
def test_reconstruction_flags_refuse_negative_values(tmp_path, flag):
    data = make_list_dataset(tmp_path / "data")
    result = subprocess.run([sys.executable, "train_ipcgan.py", f"--list_dir={data}",
                             "--allow_random_alexnet", "--dry_run", flag], cwd=REPO, env=ENV,
                            capture_output=True, text=True, timeout=300)
    assert result.returncode != 0 and flag.split("=")[0][2:] in result.stderr
