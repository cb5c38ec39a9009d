"""Inference (issue 5): age_faces, BN modes, interpolation, outputs, test.py, bad input.

Small random-weight generators (image side 32) keep this fast; every numeric claim is
checked at pixel level against the generator called directly.
"""
import os
import sys

import numpy as np
import pytest
import tensorflow as tf
from absl import flags
from PIL import Image

from face_aging import faces, images, outputs, pixels
from face_aging.ipcgan import inference as ipcgan_inference
from face_aging.ipcgan.checkpoints import release_variable_map
from face_aging.ipcgan.networks import Generator, build_models
from face_aging.layers import BatchNorm

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SIZE = 32

from test_images import encode, write_bad_and_odd_inputs  # noqa: E402


def random_generator(image_size=SIZE, seed=0):
    """A random-weight generator whose outputs depend clearly on both face and age.

    Random gamma/beta; the age channels of conv1 amplified; moving statistics set by one
    training-mode call on random faces (zero-debiased: they equal that batch's statistics).
    """
    tf.keras.utils.set_random_seed(seed)
    g = Generator()
    build_models(generator=g, image_size=image_size)
    rng = np.random.default_rng(seed)
    for layer in g._flatten_layers():
        if isinstance(layer, BatchNorm):
            c = layer.gamma.shape
            layer.gamma.assign(rng.uniform(0.5, 1.5, c))
            layer.beta.assign(rng.normal(0, 0.2, c))
    kernel = g.conv1.kernel.numpy()
    kernel[:, :, 3:] *= 20.0
    g.conv1.kernel.assign(kernel)
    g.conv4.kernel.assign(g.conv4.kernel * 3.0)
    calibration = rng.integers(0, 256, (16, image_size, image_size, 3)).astype(np.float32)
    g((pixels.subtract_mean(calibration), np.eye(5, dtype=np.float32)[np.arange(16) % 5]),
      training=True)
    g.image_size = image_size
    return g


def random_faces(count, height=40, width=50, seed=1):
    return np.random.default_rng(seed).integers(0, 256, (count, height, width, 3), dtype=np.uint8)


def expected_output(generator, faces_uint8, age_vectors, batch_stats=False):
    """The generator called directly on the release's test-face pixels (spec §3)."""
    source = pixels.subtract_mean(pixels.resize_cv2(faces_uint8, (SIZE, SIZE)))
    out = generator((source, tf.constant(age_vectors, tf.float32)), training=False,
                    batch_stats=batch_stats)
    return pixels.to_uint8(out.numpy())


@pytest.fixture(scope="module")
def generator():
    return random_generator()


# --------------------------------------------------------------------------- age_faces


def test_moving_mode_is_the_generator_on_release_pixels(generator):
    faces_uint8 = random_faces(3)
    aged = ipcgan_inference.age_faces(generator, faces_uint8, np.array([0, 2, 4]))
    assert aged.dtype == np.uint8 and aged.shape == (3, SIZE, SIZE, 3)
    np.testing.assert_array_equal(aged, expected_output(generator, faces_uint8,
                                                        np.eye(5)[[0, 2, 4]]))
    assert aged.std() > 20  # the outputs really vary: the comparison is not trivial


def test_moving_mode_does_not_depend_on_other_faces(generator):
    a, b, c = random_faces(3)
    with_b = ipcgan_inference.age_faces(generator, np.stack([a, b]), 3)
    with_c = ipcgan_inference.age_faces(generator, np.stack([a, c]), 3)
    np.testing.assert_array_equal(with_b[0], with_c[0])
    alone = ipcgan_inference.age_faces(generator, a[np.newaxis], 3)
    in_larger = ipcgan_inference.age_faces(generator, np.stack([a, b, c, b]), 3, batch_size=3)
    assert np.abs(alone[0].astype(int) - in_larger[0].astype(int)).max() <= 1


def test_batch_mode_equals_the_face_inside_its_reference_batch(generator):
    faces_uint8 = random_faces(2, seed=2)
    references = random_faces(5, 60, 60, seed=3)
    aged = ipcgan_inference.age_faces(generator, faces_uint8, np.array([1, 4]), bn_mode="batch",
                                      reference_faces=references, batch_size=4)
    for i, group in enumerate([1, 4]):
        batch = np.concatenate([
            pixels.resize_cv2(faces_uint8[i:i + 1], (SIZE, SIZE)).numpy(),
            pixels.resize_cv2(references[:3], (SIZE, SIZE)).numpy()]).astype(np.uint8)
        want = expected_output(generator, batch, np.eye(5)[[group] * 4], batch_stats=True)[0]
        np.testing.assert_array_equal(aged[i], want)
    # ... and, unlike moving mode, the result depends on the neighbours.
    other = ipcgan_inference.age_faces(generator, faces_uint8, np.array([1, 4]), bn_mode="batch",
                                       reference_faces=references[::-1], batch_size=4)
    assert np.abs(aged.astype(int) - other.astype(int)).max() > 1
    with pytest.raises(ValueError, match="reference_faces"):
        ipcgan_inference.age_faces(generator, faces_uint8, 1, bn_mode="batch")


def test_faces_of_any_size_and_target_forms(generator):
    a = random_faces(1, 90, 70, seed=4)[0]
    b = random_faces(1, 33, 45, seed=5)[0]
    by_list = ipcgan_inference.age_faces(generator, [a, b], np.array([2, 2]))
    np.testing.assert_array_equal(by_list[0], ipcgan_inference.age_faces(generator, a[None], 2)[0])
    by_vector = ipcgan_inference.age_faces(generator, [a, b], np.eye(5, dtype=np.float32)[2])
    np.testing.assert_array_equal(by_list, by_vector)
    with pytest.raises(ValueError, match="3 target groups for 2 faces"):
        ipcgan_inference.age_faces(generator, [a, b], np.array([1, 2, 3]))
    with pytest.raises(ValueError, match=r"target groups must be in 0\.\.4"):
        ipcgan_inference.age_faces(generator, [a], 5)
    with pytest.raises(ValueError, match="bn_mode must be one of .* got 'instance'"):
        ipcgan_inference.age_faces(generator, [a], 1, bn_mode="instance")


def test_interpolation_endpoints_equal_pure_groups(generator):
    targets = ipcgan_inference.age_targets([1, 3], 5, interpolate=3)
    assert [t.tag for t in targets] == ["group1_21-30", "group1.50_21-30_to_41-50",
                                        "group2.00_21-30_to_41-50", "group2.50_21-30_to_41-50",
                                        "group3_41-50"]
    vectors = np.stack([t.vector for t in targets])
    np.testing.assert_allclose(vectors.sum(1), 1.0, atol=1e-6)
    np.testing.assert_array_equal(vectors[0], np.eye(5)[1])
    np.testing.assert_array_equal(vectors[-1], np.eye(5)[3])
    np.testing.assert_allclose(vectors[2], [0, 0.5, 0, 0.5, 0])
    face = random_faces(1, seed=6)
    blended = ipcgan_inference.age_faces(generator, np.repeat(face, 5, 0), vectors)
    pure = ipcgan_inference.age_faces(generator, np.repeat(face, 5, 0), np.array([1, 1, 1, 3, 3]))
    np.testing.assert_array_equal(blended[0], pure[0])
    np.testing.assert_array_equal(blended[-1], pure[-1])
    np.testing.assert_array_equal(blended[2], expected_output(generator, face, vectors[2:3])[0])
    assert np.abs(blended[2].astype(int) - pure[0].astype(int)).max() > 1
    with pytest.raises(ValueError, match=r"target group 5 is not in 0\.\.4"):
        ipcgan_inference.age_targets([5], 5)
    with pytest.raises(ValueError, match="2 group labels for 5 age groups"):
        ipcgan_inference.age_targets([1], 5, group_labels=["a", "b"])


# --------------------------------------------------------------------------- outputs


def test_strip_layout():
    face = random_faces(1, SIZE, SIZE)[0]
    aged = random_faces(4, SIZE, SIZE, seed=9)
    strip = outputs.make_strip(face, aged)
    assert strip.shape == (SIZE, 5 * SIZE, 3)
    np.testing.assert_array_equal(strip[:, :SIZE], face)
    for k in range(4):
        np.testing.assert_array_equal(strip[:, (k + 1) * SIZE:(k + 2) * SIZE], aged[k])
    # the writer (atomic, no temporary left after a failed fsync): tests/test_files.py


def test_contact_sheet_escapes_names():
    text = outputs.contact_sheet_html([{"name": "a<b", "source": "x/a<b.jpg",
                                        "strip": "a<b #1_strip.png"}],
                                      ["input", "51+"], [("bad&.jpg", "empty file")])
    assert "a&lt;b" in text and "a%3Cb%20%231_strip.png" in text
    assert "bad&amp;.jpg" in text and "empty file" in text and "<th" in text


# --------------------------------------------------------------------------- test.py


def run_test_script(args):
    """Runs test.py's command (``face_aging.apps.age``) in this process with ``args``; returns
    its exit status.

    The flags live in a private ``FlagValues`` so that the global absl FLAGS (which other
    scripts' tests use in the same process) are never touched.
    """
    from face_aging.apps import age

    flag_values = flags.FlagValues()
    age.define_flags(flag_values)
    flag_values(["test.py"] + list(args))
    try:
        return age.main(["test.py"], flag_values)
    except SystemExit as e:
        return e.code


@pytest.fixture(scope="module")
def checkpoint_dir(tmp_path_factory, generator):
    directory = str(tmp_path_factory.mktemp("ckpt"))
    manager = tf.train.CheckpointManager(tf.train.Checkpoint(generator=generator), directory,
                                         max_to_keep=None)
    manager.save(checkpoint_number=100)
    return directory


def test_script_writes_strips_faces_and_contact_sheet(tmp_path, checkpoint_dir, generator, capsys):
    inputs = tmp_path / "in"
    inputs.mkdir()
    faces_uint8 = random_faces(2, 60, 50, seed=12)
    for i, face in enumerate(faces_uint8):
        Image.fromarray(face).save(inputs / f"face{i}.png")
    save_dir = tmp_path / "out"
    save_dir.mkdir()
    (save_dir / "keep.txt").write_text("mine")
    status = run_test_script([f"--checkpoint_dir={checkpoint_dir}", f"--test_data_dir={inputs}",
                              f"--save_dir={save_dir}", f"--image_size={SIZE}"])
    out = capsys.readouterr().out
    assert status == 0, out
    assert (save_dir / "keep.txt").read_text() == "mine"  # an existing folder is not wiped
    assert not [n for n in os.listdir(save_dir) if n.startswith(".")]  # no temporaries
    labels = ["21-30", "31-40", "41-50", "51+"]
    for i, face in enumerate(faces_uint8):
        strip = np.asarray(Image.open(save_dir / f"face{i}_strip.png"))
        assert strip.shape == (SIZE, 5 * SIZE, 3)
        shown = pixels.resize_cv2(face[None], (SIZE, SIZE)).numpy()[0].astype(np.uint8)
        np.testing.assert_array_equal(strip[:, :SIZE], shown)
        np.testing.assert_array_equal(np.asarray(Image.open(save_dir / f"face{i}_input.png")),
                                      shown)
        want = expected_output(generator, np.repeat(face[None], 4, 0), np.eye(5)[1:])
        for k, label in enumerate(labels):
            single = np.asarray(Image.open(save_dir / f"face{i}_group{k + 1}_{label}.png"))
            np.testing.assert_array_equal(single, want[k])
            np.testing.assert_array_equal(strip[:, (k + 1) * SIZE:(k + 2) * SIZE], want[k])
    sheet = (save_dir / "index.html").read_text()
    assert "face0_strip.png" in sheet and "face1_strip.png" in sheet and "51+" in sheet
    assert "2 of 2 file(s) processed, 0 failed" in out


def test_script_interpolation_and_batch_mode(tmp_path, checkpoint_dir, generator):
    inputs = tmp_path / "in"
    inputs.mkdir()
    face = random_faces(1, 40, 40, seed=13)
    Image.fromarray(face[0]).save(inputs / "a.png")
    refs = tmp_path / "refs"
    refs.mkdir()
    references = random_faces(4, 40, 40, seed=14)
    for i, r in enumerate(references):
        Image.fromarray(r).save(refs / f"r{i}.png")
    status = run_test_script([f"--checkpoint_dir={checkpoint_dir}", f"--test_data_dir={inputs}",
                              f"--save_dir={tmp_path / 'out'}", f"--image_size={SIZE}",
                              "--target_groups=0,4", "--interpolate=1", "--bn_mode=batch",
                              f"--train_data_dir={refs}", "--batch_size=3"])
    assert status == 0
    strip = np.asarray(Image.open(tmp_path / "out" / "a_strip.png"))
    assert strip.shape == (SIZE, 4 * SIZE, 3)
    middle = np.asarray(Image.open(tmp_path / "out" / "a_group2.00_0-20_to_51+.png"))
    want = ipcgan_inference.age_faces(generator, face, np.array([[0.5, 0, 0, 0, 0.5]], np.float32),
                                      bn_mode="batch", reference_faces=references[:2], batch_size=3)
    np.testing.assert_array_equal(middle, want[0])


def test_script_reports_every_bad_input_and_processes_the_rest(tmp_path, checkpoint_dir, capsys):
    _, bad, converted = write_bad_and_odd_inputs(str(tmp_path / "in"))
    save_dir = tmp_path / "out"
    status = run_test_script([f"--checkpoint_dir={checkpoint_dir}",
                              f"--test_data_dir={tmp_path / 'in'}", f"--save_dir={save_dir}",
                              f"--image_size={SIZE}"])
    lines = capsys.readouterr().out.splitlines()
    assert status == 1  # something failed
    for name, reason in bad.items():
        mine = [line for line in lines if os.path.join("in", name) in line]
        assert len(mine) == 1 and mine[0].startswith("FAILED") and reason in mine[0], (name, lines)
        assert not (save_dir / f"{os.path.splitext(name)[0]}_strip.png").exists()
    for name, note in converted.items():
        mine = [line for line in lines if os.path.join("in", name) in line]
        assert len(mine) == 1 and mine[0].startswith("ok"), (name, lines)
        assert note is None or note in mine[0]
        assert (save_dir / f"{os.path.splitext(name)[0]}_strip.png").exists()
    sheet = (save_dir / "index.html").read_text()
    assert "Not processed (5)" in sheet and "truncated.jpg" in sheet


def test_missing_bundled_model_is_one_clear_line(tmp_path):
    """A checkout without the bundled model (face_aging/ipcgan/bundled, which
    checkpoints/bundled links to, e.g. deleted): test.py says what to pass."""
    import shutil
    import subprocess

    checkout = tmp_path / "checkout"
    checkout.mkdir()
    shutil.copy(os.path.join(ROOT, "test.py"), checkout)
    shutil.copytree(os.path.join(ROOT, "face_aging"), checkout / "face_aging",
                    ignore=shutil.ignore_patterns("__pycache__", "bundled"))
    assert not (checkout / "face_aging" / "ipcgan" / "bundled").exists()
    env = dict(os.environ, PYTHONPATH=str(checkout))  # this copy, not the installed package
    result = subprocess.run([sys.executable, "test.py"], cwd=checkout, env=env,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 2
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "no bundled model is present" in errors[0]
    assert "--checkpoint_dir" in errors[0] and "--saved_model" in errors[0]


def test_script_bad_weights_and_flags(tmp_path, capsys):
    assert run_test_script([f"--checkpoint_dir={tmp_path / 'nothing'}"]) == 2
    assert "cannot load weights" in capsys.readouterr().err
    assert run_test_script([f"--checkpoint_dir={tmp_path}", "--saved_model=x"]) == 2


# --------------------------------------------------------------------------- weights


def write_release_checkpoint(generator, directory, step):
    """A release-layout (TF1) acgan checkpoint, with Adam slots and powers to be ignored."""
    values = {name: v.numpy() for name, v in release_variable_map(generator=generator).items()}
    graph = tf.Graph()
    with graph.as_default():
        variables = {name: tf.compat.v1.Variable(value, name=name)
                     for name, value in values.items()}
        variables["generator/conv1/weights/Adam"] = tf.compat.v1.Variable(
            np.zeros_like(values["generator/conv1/weights"]), name="generator/conv1/weights/Adam")
        variables["beta1_power"] = tf.compat.v1.Variable(0.5, name="beta1_power")
        saver = tf.compat.v1.train.Saver(variables)
        with tf.compat.v1.Session(graph=graph) as session:
            session.run(tf.compat.v1.global_variables_initializer())
            return saver.save(session, os.path.join(directory, "acgan.model"), global_step=step)


def test_release_tf1_checkpoint_gives_the_same_outputs(tmp_path, generator, capsys):
    prefix = write_release_checkpoint(generator, str(tmp_path), 399999)
    assert prefix.endswith("acgan.model-399999")
    faces_uint8 = random_faces(2, seed=15)
    want = ipcgan_inference.age_faces(generator, faces_uint8, np.array([1, 3]))
    for source in (dict(checkpoint_dir=prefix), dict(checkpoint_dir=str(tmp_path)),
                   dict(checkpoint_dir=str(tmp_path), model_index=399999)):
        loaded = ipcgan_inference.load_generator(**source, image_size=SIZE)
        np.testing.assert_array_equal(
            ipcgan_inference.age_faces(loaded, faces_uint8, np.array([1, 3])), want)
    references = random_faces(3, seed=16)
    np.testing.assert_array_equal(
        ipcgan_inference.age_faces(loaded, faces_uint8, 2, "batch", references, 4),
        ipcgan_inference.age_faces(generator, faces_uint8, 2, "batch", references, 4))


def test_tf2_checkpoint_latest_or_model_index(tmp_path, generator):
    other = random_generator(seed=7)
    checkpoint = tf.train.Checkpoint(generator=generator)
    manager = tf.train.CheckpointManager(checkpoint, str(tmp_path), max_to_keep=None)
    manager.save(checkpoint_number=10)
    tf.train.CheckpointManager(tf.train.Checkpoint(generator=other), str(tmp_path),
                               max_to_keep=None).save(checkpoint_number=20)
    face = random_faces(1, seed=17)
    latest = ipcgan_inference.load_generator(checkpoint_dir=str(tmp_path), image_size=SIZE)
    first = ipcgan_inference.load_generator(checkpoint_dir=str(tmp_path), model_index=10,
                                            image_size=SIZE)
    np.testing.assert_array_equal(ipcgan_inference.age_faces(latest, face, 2),
                                  ipcgan_inference.age_faces(other, face, 2))
    np.testing.assert_array_equal(ipcgan_inference.age_faces(first, face, 2),
                                  ipcgan_inference.age_faces(generator, face, 2))
    assert len(first.weights) == len(generator.weights) > 100  # every unit_i was restored too
    for restored, original in zip(first.weights, generator.weights):
        np.testing.assert_array_equal(restored.numpy(), original.numpy())
    with pytest.raises(FileNotFoundError, match="no checkpoint of step 30"):
        ipcgan_inference.load_generator(checkpoint_dir=str(tmp_path), model_index=30)
    with pytest.raises(ValueError, match="give exactly one of checkpoint_dir and saved_model"):
        ipcgan_inference.load_generator()


def test_image_size_and_groups_come_from_the_options_recorded_beside_the_checkpoint(tmp_path,
                                                                                     generator):
    import json

    tf.train.CheckpointManager(tf.train.Checkpoint(generator=generator), str(tmp_path),
                               max_to_keep=None).save(checkpoint_number=1)
    face = random_faces(1, seed=18)
    # train_ipcgan.py's training_options.json (many keys; only these two matter here)
    (tmp_path / "training_options.json").write_text(json.dumps(
        {"image_size": SIZE, "age_groups": 5, "gan_loss_weight": 75.0}))
    loaded = ipcgan_inference.load_generator(checkpoint_dir=str(tmp_path))
    assert loaded.image_size == SIZE and loaded.age_groups == 5
    np.testing.assert_array_equal(ipcgan_inference.age_faces(loaded, face, 3),
                                  ipcgan_inference.age_faces(generator, face, 3))
    # model.json (the bundled model's) wins over training_options.json; a flag over both
    (tmp_path / "model.json").write_text(json.dumps({"image_size": 2 * SIZE}))
    assert ipcgan_inference.load_generator(checkpoint_dir=str(tmp_path)).image_size == 2 * SIZE
    assert ipcgan_inference.load_generator(checkpoint_dir=str(tmp_path),
                                           image_size=SIZE).image_size == SIZE
    (tmp_path / "model.json").write_text("{not json")
    with pytest.raises(ValueError, match="model.json: not readable JSON"):
        ipcgan_inference.load_generator(checkpoint_dir=str(tmp_path))


# --------------------------------------------------------------------------- face detection


def fake_detector(monkeypatch, boxes):
    monkeypatch.setattr(faces, "detector_status", lambda: (True, ""))
    monkeypatch.setattr(faces, "detect_faces", lambda image, **kw: list(boxes))
    monkeypatch.setattr(faces, "find_eyes", lambda image, box: None)


def test_detect_faces_crops_ages_and_pastes(tmp_path, monkeypatch, checkpoint_dir, generator,
                                            capsys):
    yy, xx = np.mgrid[0:240, 0:320]
    photo = np.stack([xx * 0.7, yy, 128 + 60 * np.sin(xx / 20.0)], -1).astype(np.uint8)
    boxes = [(150.0, 60.0, 230.0, 140.0), (20.0, 100.0, 60.0, 140.0)]
    fake_detector(monkeypatch, boxes)
    located = faces.locate_faces(photo, all_faces=True)
    assert len(located) == 2
    crop = faces.crop_with_margin(photo, boxes[0], faces.DEFAULT_MARGIN)
    np.testing.assert_array_equal(located[0].crop, crop)
    assert located[0].square == faces.square_with_margin(boxes[0], faces.DEFAULT_MARGIN)
    assert len(faces.locate_faces(photo)) == 1  # largest only by default

    inputs = tmp_path / "in"
    inputs.mkdir()
    Image.fromarray(photo).save(inputs / "photo.png")
    Image.fromarray(np.full((100, 100, 3), 90, np.uint8)).save(inputs / "wall.png")
    save_dir = tmp_path / "out"
    detector_calls = iter([boxes, []])  # the photo has two faces, the wall none
    monkeypatch.setattr(faces, "detect_faces", lambda image, **kw: next(detector_calls))
    status = run_test_script([f"--checkpoint_dir={checkpoint_dir}", f"--test_data_dir={inputs}",
                              f"--save_dir={save_dir}", f"--image_size={SIZE}", "--detect_faces",
                              "--all_faces", "--target_groups=2"])
    lines = capsys.readouterr().out.splitlines()
    assert status == 1
    assert any(line.startswith("ok") and "photo.png" in line and "2 face(s)" in line
               for line in lines)
    assert any(line.startswith("FAILED") and "wall.png" in line and "no face found" in line
               for line in lines)
    aged = np.asarray(Image.open(save_dir / "photo_face0_group2_31-40.png"))
    np.testing.assert_array_equal(aged, ipcgan_inference.age_faces(generator, crop[None], 2)[0])
    assert (save_dir / "photo_face1_strip.png").exists()
    pasted = np.asarray(Image.open(save_dir / "photo_group2_31-40_photo.jpg"))
    assert pasted.shape == photo.shape
    want = photo
    for face, box in zip(located, boxes):
        age = ipcgan_inference.age_faces(generator, face.crop[None], 2)[0]
        want = faces.paste_back(want, age, face.square)
    error = np.abs(pasted.astype(int) - want.astype(int))
    change = np.abs(want.astype(int) - photo.astype(int))
    inside = np.zeros(photo.shape[:2], bool)
    for face in located:
        x1, y1, x2, y2 = face.square
        inside[max(y1, 0):y2, max(x1, 0):x2] = True
    assert error[~inside].mean() < 2 and change[~inside].max() == 0  # JPEG q95, else untouched
    assert error[inside].mean() < change[inside].mean() / 4  # the aged faces are pasted in


def test_detect_faces_unavailable_is_one_line(tmp_path, monkeypatch, checkpoint_dir, capsys):
    monkeypatch.setattr(faces, "detector_status", lambda: (False, "no cascades here"))
    (tmp_path / "a.png").write_bytes(encode(random_faces(1)[0], "PNG"))
    status = run_test_script([f"--checkpoint_dir={checkpoint_dir}", f"--test_data_dir={tmp_path}",
                              f"--save_dir={tmp_path / 'out'}", "--detect_faces"])
    assert status == 2 and "--detect_faces cannot run: no cascades here" in capsys.readouterr().err


@pytest.mark.skipif(not faces.detector_status()[0], reason="OpenCV cannot run Haar cascades here")
def test_real_detector_finds_grace_hopper():
    import matplotlib

    path = os.path.join(matplotlib.get_data_path(), "sample_data", "grace_hopper.jpg")
    photo, notes = images.read_image(path)
    located = faces.locate_faces(photo)
    assert len(located) == 1 and not notes
    x1, y1, x2, y2 = located[0].box
    assert 100 < (x1 + x2) / 2 < 400 and 100 < (y1 + y2) / 2 < 350  # her face, not the flag
    assert not faces.locate_faces(np.full((200, 200, 3), 128, np.uint8))
