"""The frozen AlexNet's three sources: bvlc_alexnet.npy (safe unpickling), release TF1 files, and
pretraining here; the pretraining loop and its report; train_ipcgan.py taking the result."""
import dataclasses
import io
import os
import pickle
import shutil
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

from conftest import REPO, make_list_dataset, write_tf1_checkpoint
from face_aging import backbones, checkpoints
from face_aging.alexnet import config as alexnet_config
from face_aging.alexnet import data as alexnet_data
from face_aging.alexnet import formats
from face_aging.alexnet import networks as alexnet_networks
from face_aging.alexnet import trainer as alexnet_trainer
from face_aging.alexnet import validation as alexnet_validation
from face_aging.alexnet.report import classification_report, write_report
from face_aging.backbones import alexnet as alexnet_backbone
from face_aging.backbones.alexnet import AlexNet, build_alexnet
from face_aging.data import lists
from face_aging.ipcgan import checkpoints as ipcgan_checkpoints
from face_aging.ipcgan.config import TrainConfig
from face_aging.ipcgan.trainer import load_pretrained_alexnet

ENV = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2")


def run_module(module, *args, timeout=300):
    return subprocess.run([sys.executable, "-m", module, *args], cwd=REPO, env=ENV,
                          capture_output=True, text=True, timeout=timeout)


def built_alexnet():
    a = AlexNet()
    build_alexnet(a)
    return a


def bvlc_dict(rng, full_shapes=True):
    """A dict shaped like bvlc_alexnet.npy: layer -> [weights, biases] (fc8 included)."""
    shapes = dict(formats.BVLC_LAYERS, fc8=(4096, 1000))
    if not full_shapes:
        shapes = {k: (2,) * (len(s) - 1) + (3,) for k, s in shapes.items()}
    return {name: [rng.standard_normal(shape, dtype=np.float32),
                   rng.standard_normal(shape[-1:], dtype=np.float32)]
            for name, shape in shapes.items()}


class Evil:
    """Pickles as a call of os.system: what a hostile weights file would carry."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return os.system, (f"touch {self.marker}",)


# ----------------------------------------------------------------------------- safe unpickling

def test_safe_unpickler_loads_a_bvlc_shaped_npy(tmp_path):
    rng = np.random.default_rng(0)
    data = bvlc_dict(rng, full_shapes=False)
    path = tmp_path / "small.npy"
    np.save(path, data, allow_pickle=True)
    loaded = formats.safe_load_npy(str(path))
    assert sorted(loaded) == sorted(data)
    for name, (w, b) in data.items():
        assert isinstance(loaded[name], list) and len(loaded[name]) == 2
        np.testing.assert_array_equal(loaded[name][0], w)
        np.testing.assert_array_equal(loaded[name][1], b)
        assert loaded[name][0].dtype == np.float32
    # the users' way reads the same file identically
    reference = np.load(path, allow_pickle=True, encoding="latin1").item()
    np.testing.assert_array_equal(reference["conv3"][0], loaded["conv3"][0])
    # a bare pickle (no .npy header) and a plain numeric .npy are read too
    bare = tmp_path / "bare.pkl"
    bare.write_bytes(pickle.dumps({"x": [np.arange(3.0), np.float64(2.5)]}, protocol=4))
    got = formats.safe_load_npy(str(bare))
    np.testing.assert_array_equal(got["x"][0], np.arange(3.0))
    assert got["x"][1] == 2.5
    plain = tmp_path / "plain.npy"
    np.save(plain, np.arange(6, dtype=np.int16).reshape(2, 3))
    np.testing.assert_array_equal(formats.safe_load_npy(str(plain)),
                                  np.arange(6).reshape(2, 3))


class Python2Pickler(pickle._Pickler):
    """Writes bytes as Python 2 wrote its str (BINSTRING), as in the real bvlc_alexnet.npy
    (a Python 2 np.save, protocol 2); Python 3 would route protocol-2 bytes via _codecs."""

    dispatch = dict(pickle._Pickler.dispatch)

    def save_py2_str(self, obj):
        self.write(pickle.BINSTRING + len(obj).to_bytes(4, "little") + obj)
        self.memoize(obj)

    dispatch[bytes] = save_py2_str


def test_safe_unpickler_reads_a_python2_protocol2_npy(tmp_path):
    data = bvlc_dict(np.random.default_rng(2), full_shapes=False)
    wrapped = np.empty((), dtype=object)
    wrapped[()] = data
    path = tmp_path / "py2.npy"
    with open(path, "wb") as f:
        np.lib.format.write_array_header_1_0(
            f, {"descr": "|O", "fortran_order": False, "shape": ()})
        Python2Pickler(f, protocol=2).dump(wrapped)
    assert b"_codecs" not in path.read_bytes()
    loaded = formats.safe_load_npy(str(path))
    for name, (w, b) in data.items():
        np.testing.assert_array_equal(loaded[name][0], w)
        np.testing.assert_array_equal(loaded[name][1], b)


@pytest.mark.parametrize("payload, forbidden", [
    ("system", "system"),        # os.system (posix.system) as a reduce callable
    ("eval", "builtins.eval"),
    ("class", "collections.OrderedDict"),
])
def test_safe_unpickler_refuses_callables_before_running_them(tmp_path, payload, forbidden):
    marker = tmp_path / "pwned"
    if payload == "system":
        obj = {"conv1": [np.zeros(2, np.float32), Evil(marker)]}
    elif payload == "eval":
        class EvalEvil:
            def __reduce__(self):
                return eval, (f"open({str(marker)!r}, 'w').close()",)
        obj = {"conv1": EvalEvil()}
    else:
        import collections
        obj = {"conv1": collections.OrderedDict(a=np.zeros(2))}
    path = tmp_path / "evil.npy"
    np.save(path, obj, allow_pickle=True)
    with pytest.raises(formats.UnsafePickleError) as info:
        formats.safe_load_npy(str(path))
    message = str(info.value)
    assert forbidden in message and "refusing" in message and str(path) in message
    assert not marker.exists()
    if payload == "system":  # the converter CLI says so in one line, exits 1, runs nothing
        result = run_module("face_aging.pretrained_formats", f"--bvlc_npy={path}",
                            f"--output_dir={tmp_path / 'out'}", timeout=120)
        assert result.returncode == 1
        last = result.stderr.strip().splitlines()[-1]
        assert last.startswith("error: ") and "refusing" in last and forbidden in last
        assert "Traceback" not in result.stderr
        assert not marker.exists() and not (tmp_path / "out").exists()


def test_bad_weight_files_fail_with_one_clear_message(tmp_path):
    with pytest.raises(formats.PretrainedFormatError, match="no such file"):
        formats.safe_load_npy(str(tmp_path / "absent.npy"))
    truncated = tmp_path / "truncated.npy"
    buffer = io.BytesIO()
    np.save(buffer, {"conv1": [np.zeros((4, 4), np.float32)]}, allow_pickle=True)
    truncated.write_bytes(buffer.getvalue()[:-20])
    with pytest.raises(formats.PretrainedFormatError, match="not a readable"):
        formats.safe_load_npy(str(truncated))
    wrong = tmp_path / "wrong.npy"
    np.save(wrong, bvlc_dict(np.random.default_rng(1), full_shapes=False), allow_pickle=True)
    with pytest.raises(formats.PretrainedFormatError) as info:
        formats.read_bvlc_alexnet(str(wrong))
    assert "conv1 weights (2, 2, 2, 3)" in str(info.value) and "(11, 11, 3, 96)" in str(info.value)
    listed = tmp_path / "list.npy"
    np.save(listed, np.array([1, 2], dtype=object), allow_pickle=True)
    with pytest.raises(formats.PretrainedFormatError, match="expected a dict"):
        formats.read_bvlc_alexnet(str(listed))


# ----------------------------------------------------------------------------- the three sources

@pytest.fixture(scope="module")
def bvlc_file(tmp_path_factory):
    """A full-size bvlc_alexnet.npy stand-in (conv1..5, fc6, fc7 at their real shapes)."""
    rng = np.random.default_rng(7)
    data = bvlc_dict(rng)
    data["fc8"] = [np.zeros((4096, 10), np.float32), np.zeros(10, np.float32)]  # unused
    path = tmp_path_factory.mktemp("bvlc") / "bvlc_alexnet.npy"
    np.save(path, data, allow_pickle=True)
    return str(path), data


def test_bvlc_conversion_loads_every_weight_identically(bvlc_file, tmp_path):
    path, data = bvlc_file
    prefix = formats.convert_bvlc_alexnet(path, str(tmp_path / "bvlc"))
    assert prefix == str(tmp_path / "bvlc" / "alexnet-0")
    assert not [f for f in os.listdir(tmp_path / "bvlc") if f.startswith(".tmp")]
    a = built_alexnet()
    # train_ipcgan's loader: --alexnet_pretrained_model takes the folder or the prefix
    load_pretrained_alexnet(TrainConfig(alexnet_pretrained_model=str(tmp_path / "bvlc"),
                                        age_pretrained_model=None), a)
    for name in formats.BVLC_LAYERS:
        layer = getattr(a, name)
        np.testing.assert_array_equal(layer.kernel.numpy(), data[name][0], err_msg=name)
        np.testing.assert_array_equal(layer.bias.numpy(), data[name][1], err_msg=name)
    # conv1_rgb reverses conv1's input channels only
    formats.load_bvlc_alexnet(path, a, layers=["conv1", "conv2"], conv1_rgb=True)
    np.testing.assert_array_equal(a.conv1.kernel.numpy(), data["conv1"][0][:, :, ::-1, :])
    np.testing.assert_array_equal(a.conv2.kernel.numpy(), data["conv2"][0])


ALEXNET_SHAPES = dict(formats.BVLC_LAYERS, new_1=(4096, 256), new_2=(256, 2000),
                      age_fc6=(9216, 4096), age_fc7=(4096, 4096), age_fc8=(4096, 5))


def alexnet_tf1_values(rng, layers):
    values = {}
    for name in layers:
        shape = ALEXNET_SHAPES[name]
        values[f"alexnet/{name}/weights"] = rng.standard_normal(shape, dtype=np.float32)
        values[f"alexnet/{name}/biases"] = rng.standard_normal(shape[-1:], dtype=np.float32)
    return values


def test_release_tf1_age_classifier_converts_to_what_train_ipcgan_loads(tmp_path):
    layers = backbones.ALEXNET_TRUNK + backbones.ALEXNET_AGE
    values = alexnet_tf1_values(np.random.default_rng(3), layers)
    tf1 = write_tf1_checkpoint(str(tmp_path / "tf1" / "age_classifier.model-300000"), values)
    # what python -m face_aging.checkpoints --tf1_checkpoint=... --output_dir=... runs
    prefix, parts = ipcgan_checkpoints.convert_tf1_checkpoint(tf1, str(tmp_path / "tf2"))
    assert prefix.endswith("ckpt-300000") and parts == [f"alexnet ({', '.join(layers)})"]
    a = built_alexnet()
    load_pretrained_alexnet(TrainConfig(alexnet_pretrained_model=None,
                                        age_pretrained_model=str(tmp_path / "tf2")), a)
    for name in layers:
        layer = getattr(a, name)
        np.testing.assert_array_equal(layer.kernel.numpy(), values[f"alexnet/{name}/weights"])
        np.testing.assert_array_equal(layer.bias.numpy(), values[f"alexnet/{name}/biases"])


def test_forward_equals_alexnet_call_without_dropout():
    a = built_alexnet()
    x = tf.random.stateless_normal([2, 227, 227, 3], seed=[1, 2]) * 50.0
    mine = alexnet_networks.forward(a, x, training=False, dropout=0.5)["age_logits"]
    np.testing.assert_allclose(mine.numpy(), a(x, outputs=["age_logits"])["age_logits"].numpy(),
                               rtol=1e-6, atol=1e-6)
    # a low-resolution input reuses the same fc layers (pool5 3x3 repeated to 6x6)
    assert alexnet_networks.forward(a, x[:, :131, :131], training=True,
                                    dropout=0.5)["age_logits"].shape == (2, 5)


def mean_loss(alexnet, dataset_dir):
    entries = lists.read_image_list(os.path.join(dataset_dir, lists.TRAIN_LIST))
    ds = alexnet_data.make_eval_dataset([(p, g, -1) for p, g in entries], str(dataset_dir), 64,
                                        cache=False)
    total, n = 0.0, 0
    for x, g in ds:
        logits = alexnet_networks.forward(alexnet, x, training=False)["age_logits"]
        total += float(tf.reduce_sum(tf.nn.sparse_softmax_cross_entropy_with_logits(g, logits)))
        n += int(g.shape[0])
    return total / n


def test_pretraining_reduces_the_loss_and_train_ipcgan_takes_its_checkpoint(tmp_path):
    data = make_list_dataset(tmp_path / "data", per_group=2)
    entries = lists.read_image_list(str(data / lists.TRAIN_LIST))
    lists.write_image_list(str(data / lists.TEST_LIST), entries[::2])
    # a known starting point: scratch initialisation written as a TF2 checkpoint
    config = alexnet_config.PretrainConfig(
        list_dir=str(data), output_dir=str(tmp_path / "run"), batch_size=5, max_steps=6,
        learning_rate=1e-4, warmup_steps=1, dropout=0.0, label_smoothing=0.0, augment=False,
        class_balance="none", val_fraction=0.0, eval_every=6, save_every=6, log_every=2,
        jit_compile=False, weight_decay=0.0)
    start = built_alexnet()
    sample = next(iter(alexnet_data.make_eval_dataset(
        [(p, g, -1) for p, g in entries], str(data), 64, cache=False)))[0]
    alexnet_networks.initialise_alexnet(start, config, sample)
    init_prefix = alexnet_backbone.save_alexnet(start, str(tmp_path / "init" / "alexnet"))
    before = mean_loss(start, data)

    lines = []
    report = alexnet_trainer.pretrain(
        alexnet_config.PretrainConfig(**{**config.__dict__, "init_from": init_prefix}),
        print_fn=lines.append)
    text = "\n".join(lines)
    assert "step 6/6" in text and "steps/s" in text and "img/s" in text and "ETA" in text
    best = report["checkpoint"]
    assert best == str(tmp_path / "run" / "pretrained" / "alexnet-6")
    trained = built_alexnet()
    load_pretrained_alexnet(TrainConfig(alexnet_pretrained_model=best,
                                        age_pretrained_model=best), trained)
    after = mean_loss(trained, data)
    assert after < before - 0.05, (before, after)
    # every weight train_ipcgan loads equals the checkpoint's (source 3 of the three)
    reader = tf.train.load_checkpoint(best)
    for name in backbones.ALEXNET_LAYERS:
        layer = getattr(trained, name)
        np.testing.assert_array_equal(
            layer.kernel.numpy(),
            reader.get_tensor(f"alexnet/{name}/kernel/.ATTRIBUTES/VARIABLE_VALUE"))
    # the report, the training checkpoint and the TensorBoard events exist
    assert report["steps"] == 6 and report["count"] == len(entries[::2])
    assert os.path.isfile(tmp_path / "run" / "report.png")
    assert checkpoints.resolve_checkpoint(str(tmp_path / "run" / "train")).endswith("ckpt-6")
    assert os.listdir(tmp_path / "run" / "tensorboard")

    # a rerun resumes the finished run instead of starting over
    again = []
    alexnet_trainer.pretrain(alexnet_config.PretrainConfig(**{**config.__dict__,
                                                              "init_from": init_prefix}),
                             print_fn=again.append)
    assert any("resumed from" in line and "at step 6" in line for line in again)
    assert not any(line.startswith("step ") and "/6 loss" in line for line in again)

    # train_ipcgan.py runs a step with it as both pretrained models
    result = subprocess.run(
        [sys.executable, "train_ipcgan.py", f"--list_dir={data}", "--batch_size=2",
         "--image_size=32", f"--checkpoint_dir={tmp_path / 'gan'}",
         f"--sample_dir={tmp_path / 'samples'}", "--max_steps=1", "--log_interval=1",
         f"--alexnet_pretrained_model={tmp_path / 'run' / 'pretrained'}",
         f"--age_pretrained_model={best}"],
        cwd=REPO, env=ENV, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    assert "step 1/1" in result.stdout
    assert checkpoints.resolve_checkpoint(str(tmp_path / "gan")).endswith("ckpt-1")


def test_pretrain_cli_bad_input_is_one_line(tmp_path):
    missing = run_module("face_aging.pretrain", f"--list_dir={tmp_path / 'nothing'}",
                         f"--output_dir={tmp_path / 'out'}", timeout=120)
    assert missing.returncode == 1
    assert missing.stderr.strip().splitlines()[-1:] == [
        f"pretrain: error: {tmp_path / 'nothing'}: no train.txt or train_identity.txt (prepare "
        "the dataset with python -m face_aging.data.prepare)"]
    bad_flag = run_module("face_aging.pretrain", f"--list_dir={tmp_path}",
                          f"--output_dir={tmp_path / 'out'}", "--class_balance=magic",
                          timeout=120)
    assert bad_flag.returncode != 0 and "--class_balance" in bad_flag.stderr
    assert "Traceback" not in bad_flag.stderr


# ----------------------------------------------------------------------------- the report

def test_report_numbers_equal_a_hand_computation(tmp_path):
    labels = [0, 0, 0, 1, 1, 2, 2, 2, 3, 4, 4, 4]
    preds = [0, 1, 2, 1, 1, 2, 3, 1, 1, 4, 4, 3]
    rep = classification_report(labels, preds, 5, ["0-20", "21-30", "31-40", "41-50", "51+"])
    # exact: indices 0, 3, 4, 5, 9, 10 -> 6 of 12
    assert rep["accuracy"] == pytest.approx(6 / 12)
    # |error| <= 1 everywhere but (0 -> 2) and (3 -> 1): 10 of 12
    assert rep["within_one_accuracy"] == pytest.approx(10 / 12)
    # errors 0,1,2,0,0,0,1,1,2,0,0,1 -> 8 / 12
    assert rep["mean_absolute_group_error"] == pytest.approx(8 / 12)
    recalls = [g["recall"] for g in rep["per_group"]]
    assert recalls == pytest.approx([1 / 3, 2 / 2, 1 / 3, 0 / 1, 2 / 3])
    precisions = [g["precision"] for g in rep["per_group"]]
    # predicted columns: 0 {0}, 1 {0,1,1,2,3}, 2 {0,2}, 3 {2,4}, 4 {4,4}
    assert precisions == pytest.approx([1.0, 2 / 5, 1 / 2, 0.0, 1.0])
    assert rep["balanced_accuracy"] == pytest.approx((1 / 3 + 1 + 1 / 3 + 0 + 2 / 3) / 5)
    assert rep["confusion_matrix"] == [[1, 1, 1, 0, 0],
                                       [0, 2, 0, 0, 0],
                                       [0, 1, 1, 1, 0],
                                       [0, 1, 0, 0, 0],
                                       [0, 0, 0, 1, 2]]
    assert [g["support"] for g in rep["per_group"]] == [3, 2, 3, 1, 3]
    # a group with no samples has no recall (not zero)
    empty = classification_report([0, 1], [0, 0], 3)
    assert empty["per_group"][2]["recall"] is None and empty["balanced_accuracy"] == 0.5
    write_report(rep, str(tmp_path / "r.json"), str(tmp_path / "r.png"))
    import json
    assert json.loads((tmp_path / "r.json").read_text())["accuracy"] == 0.5
    png = tf.io.decode_png(tf.io.read_file(str(tmp_path / "r.png")))
    assert png.shape[0] > 200 and png.shape[1] > 400
    with pytest.raises(ValueError, match=r"labels and predictions must lie in 0\.\.4"):
        classification_report([0, 5], [0, 0], 5)


def test_class_weights_and_validation_split(tmp_path):
    w = alexnet_data.class_weights([100, 300, 0, 100], power=1.0)
    # inverse frequency, normalised to mean 1 over the samples, 0 for an absent group
    assert w[2] == 0 and w[0] == pytest.approx(w[3]) and w[0] == pytest.approx(3 * w[1])
    assert (w * np.array([100, 300, 0, 100])).sum() / 500 == pytest.approx(1.0)
    assert np.allclose(alexnet_data.class_weights([5, 50], power=0.0), 1.0)
    data = make_list_dataset(tmp_path / "d", per_group=20, size=8)
    lists.write_image_list(str(data / lists.TEST_LIST), [("faces/g0_0.png", 0)])
    config = alexnet_config.PretrainConfig(list_dir=str(data), output_dir=str(tmp_path / "o"),
                                           val_fraction=0.25)
    split = alexnet_data.read_datasets(config)
    train, val = split.train, split.val
    assert not split.has_identity and len(split.test) == 1
    assert len(train) + len(val) == 100 and 10 <= len(val) <= 40
    assert not {p for p, _, _ in train} & {p for p, _, _ in val}
    assert alexnet_data.read_datasets(config).val == val  # deterministic
    # ... and independent of where the dataset lives (a hash of the absolute path left a tiny
    # CI dataset without a validation image in one temporary folder and not in another)
    moved = tmp_path / "elsewhere" / "d"
    shutil.copytree(data, moved)
    moved_val = alexnet_data.read_datasets(dataclasses.replace(config, list_dir=str(moved))).val
    assert [os.path.relpath(p, moved) for p, _, _ in moved_val] == \
        [os.path.relpath(p, data) for p, _, _ in val]
    # identities: a person never straddles train and validation
    ids = [(p, k % 7) for k, (p, _) in enumerate(lists.read_image_list(str(data / "train.txt")))]
    lists.write_image_list(str(data / "train_identity.txt"), ids)
    split = alexnet_data.read_datasets(config)
    assert split.identities == 7 and split.has_identity
    assert not {i for _, _, i in split.train} & {i for _, _, i in split.val}


def _identity_folder(root, people, per_person, offset):
    """An identity-only prepared folder (as --dataset=lag writes): train_identity.txt and a
    verification_pairs.txt, no age lists; person k's images are grey level 20 + 30 k."""
    rng = np.random.default_rng(offset)
    entries = []
    for person in range(people):
        for n in range(per_person):
            rel = f"images/p{person}_{n}.png"
            (root / "images").mkdir(parents=True, exist_ok=True)
            level = 20 + 30 * person + offset
            image = np.clip(level + rng.normal(0, 3, (40, 40, 3)), 0, 255).astype(np.uint8)
            Image.fromarray(image).save(root / rel)
            entries.append((rel, person))
    lists.write_image_list(str(root / "train_identity.txt"), entries)
    with open(root / "verification_pairs.txt", "w") as f:
        f.write("# pair_id fold same path_0 path_1\n")
        for k in range(people - 1):
            f.write(f"{2 * k} {1 + k % 2} 1 images/p{k}_0.png images/p{k}_1.png\n")
            f.write(f"{2 * k + 1} {1 + k % 2} 0 images/p{k}_0.png images/p{k + 1}_1.png\n")
    return root


def test_several_folders_give_ages_and_identities_without_sharing_either(tmp_path):
    """--list_dir=ages,people_a,people_b: the age folder's images have no identity, the identity
    folders' images no age (-1); identities are numbered over the folders without clashes;
    every folder's verification pairs reach the report."""
    ages = make_list_dataset(tmp_path / "ages", per_group=2, size=8)
    lists.write_image_list(str(ages / lists.TEST_LIST), [("faces/g0_0.png", 0)])
    people_a = _identity_folder(tmp_path / "a", people=3, per_person=2, offset=0)
    people_b = _identity_folder(tmp_path / "b", people=4, per_person=2, offset=5)
    config = alexnet_config.PretrainConfig(list_dir=f"{ages},{people_a},{people_b}",
                                           output_dir=str(tmp_path / "o"), val_fraction=0.0)
    data = alexnet_data.read_datasets(config)
    by_path = {p: (g, i) for p, g, i in data.train}
    assert len(by_path) == 10 + 6 + 8 and data.identities == 7
    assert by_path[os.path.join(str(ages), "faces/g3_1.png")] == (3, -1)
    assert by_path[os.path.join(str(people_a), "images/p2_0.png")] == (-1, 2)
    assert by_path[os.path.join(str(people_b), "images/p0_1.png")] == (-1, 3)  # after a's 0..2
    assert data.has_age and data.has_identity
    assert data.verification_pairs == [str(people_a / "verification_pairs.txt"),
                                       str(people_b / "verification_pairs.txt")]
    assert [p for p, _, _ in data.test] == [os.path.join(str(ages), "faces/g0_0.png")]
    assert alexnet_networks.trained_layers(True, True) == (backbones.ALEXNET_TRUNK
                                                           + backbones.ALEXNET_AGE
                                                           + backbones.ALEXNET_IDENTITY)
    assert alexnet_networks.trained_layers(True, False) == (backbones.ALEXNET_TRUNK
                                                            + backbones.ALEXNET_IDENTITY)
    assert alexnet_networks.trained_layers(True, True, "age_head") == backbones.ALEXNET_AGE
    with pytest.raises(alexnet_config.PretrainError, match="needs a single --list_dir"):
        alexnet_data.read_datasets(alexnet_config.PretrainConfig(
            list_dir=f"{ages},{people_a}", output_dir="o", root_folder=str(ages)))
    with pytest.raises(alexnet_config.PretrainError, match="no train.txt or train_identity.txt"):
        alexnet_data.read_datasets(alexnet_config.PretrainConfig(
            list_dir=f"{ages},{tmp_path}", output_dir="o"))


def test_validation_pairs_are_within_and_across_people():
    entries = [(f"x{k}", -1, k // 3) for k in range(12)] + [("age_only", 2, -1)]
    i0, i1, same, images = alexnet_validation.validation_pairs(entries, seed=0)
    assert len(images) == 12  # the age-only image has no identity
    assert same.sum() == 4 * 3 and (~same).sum() == same.sum()
    people = np.array([e[2] for e in images])
    assert (people[i0[same]] == people[i1[same]]).all()
    assert (people[i0[~same]] != people[i1[~same]]).all()


def test_identity_pretraining_masks_the_age_loss_and_reports_verification(tmp_path):
    """Two identity folders, no ages: the trunk and identity head train (the age head is left
    as it was), the validation score is the verification AUC, and the report holds each
    folder's cross-validated verification."""
    people_a = _identity_folder(tmp_path / "a", people=5, per_person=3, offset=0)
    people_b = _identity_folder(tmp_path / "b", people=4, per_person=3, offset=5)
    start = built_alexnet()
    alexnet_networks.initialise_alexnet(start,
                                        alexnet_config.PretrainConfig(list_dir="", output_dir=""))
    init_prefix = alexnet_backbone.save_alexnet(start, str(tmp_path / "init" / "alexnet"))
    config = alexnet_config.PretrainConfig(
        list_dir=f"{people_a},{people_b}", output_dir=str(tmp_path / "run"), batch_size=4,
        max_steps=4, warmup_steps=1, augment=False, val_fraction=0.3, eval_every=2,
        save_every=4, log_every=2, jit_compile=False, patience=0, init_from=init_prefix)
    lines = []
    report = alexnet_trainer.pretrain(config, print_fn=lines.append)
    text = "\n".join(lines)
    assert "training conv1, conv2, conv3, conv4, conv5, fc6, fc7, new_1, new_2" in text
    assert "conv5 verification AUC" in text
    assert report["validation_score"] == "verification AUC"
    assert "accuracy" not in report  # no age test set: no age report
    assert set(report["verification"]) == {str(people_a / "verification_pairs.txt"),
                                           str(people_b / "verification_pairs.txt")}
    for result in report["verification"].values():
        assert 0.0 <= result["mean_accuracy"] <= 1.0 and result["layer"] == "conv5"
        assert [f["fold"] for f in result["folds"]] == [1, 2]
    # the age head was not trained: it still holds its initial weights; the identity net moved
    trained = built_alexnet()
    alexnet_backbone.load_alexnet_layers(report["checkpoint"], trained, backbones.ALEXNET_LAYERS)
    np.testing.assert_array_equal(trained.age_fc8.kernel.numpy(), start.age_fc8.kernel.numpy())
    assert not np.array_equal(trained.new_2.kernel.numpy(), start.new_2.kernel.numpy())
    assert not np.array_equal(trained.conv5.kernel.numpy(), start.conv5.kernel.numpy())
