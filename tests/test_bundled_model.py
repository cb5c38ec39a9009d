"""The bundled generator (checkpoints/bundled, checkpoints/MODEL_CARD.md) and the bundling tool."""
import json
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

from face_aging import images
from face_aging.apps import bundle as bundle_command
from face_aging.ipcgan import bundle, inference as ipcgan_inference
from face_aging.ipcgan.networks import Generator, build_models

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BUNDLED = ipcgan_inference.BUNDLED_CHECKPOINT_DIR
TEST_FACES = sorted(os.listdir(os.path.join(ROOT, "images", "test")))

# The bundled model's behaviour, judged independently on unseen UTKFace faces (below). Measured
# for today's model (128 px, --upsample=resize_conv, step 4,500; 8 faces a source group, 40 in
# all): judged mean age 19.4, 25.8, 35.2, 42.1, 45.0 years for target groups 0-4 (smallest rise
# 2.9); identity verified for 97.5-100 % in every group. The floors leave room for one face a
# group and for the judges' own noise; raise them when a better model is bundled.
#: Target groups checked, in order of age.
BEHAVIOUR_GROUPS = (0, 1, 2, 3, 4)
#: Test-split faces taken per source group (the first by file name).
FACES_PER_GROUP = 8
#: Share of outputs the identity judge must verify as their input's person, in every group.
IDENTITY_FLOOR = 0.85
#: Years the judged mean age must rise from each checked group to the next.
AGE_RISE_FLOOR = 2.0


def _training_checkpoint(folder, image_size=32, step=7):
    """A train_ipcgan-like folder: G (random, with moving stats) + an optimizer + options."""
    generator = Generator()
    build_models(generator=generator, image_size=image_size)
    rng = np.random.default_rng(0)
    for v in generator.variables:
        if "moving_variance" in v.path:
            v.assign(rng.uniform(0.5, 2, v.shape))
    optimizer = tf.keras.optimizers.Adam()
    optimizer.build(generator.trainable_variables)
    checkpoint = tf.train.Checkpoint(generator=generator, g_optimizer=optimizer,
                                     step=tf.Variable(step, dtype=tf.int64))
    tf.train.CheckpointManager(checkpoint, str(folder), 3).save(checkpoint_number=step)
    (folder / "training_options.json").write_text(json.dumps(
        {"image_size": image_size, "age_groups": 5, "fea_loss_weight": 0.01}))
    return generator


def test_bundle_keeps_the_generator_only_and_records_a_reference(tmp_path):
    generator = _training_checkpoint(tmp_path / "run")
    out = tmp_path / "bundled"
    info = bundle.bundle_generator(str(tmp_path / "run"), str(out),
                                   reference_image=os.path.join(ROOT, "images/test", TEST_FACES[0]))
    assert sorted(os.listdir(out)) == ["checkpoint", "generator-7.data-00000-of-00001",
                                       "generator-7.index", "model.json", "reference.npz"]
    recorded = json.loads((out / "model.json").read_text())
    assert recorded == info and recorded["image_size"] == 32 and recorded["step"] == 7
    assert recorded["training_options"]["fea_loss_weight"] == 0.01
    names = [n for n, _ in tf.train.list_variables(str(out / "generator-7"))]
    assert not [n for n in names if "optimizer" in n or n.startswith("step")]
    loaded = ipcgan_inference.load_generator(str(out))  # image size from model.json
    assert ipcgan_inference.generator_image_size(loaded) == 32
    for a, b in zip(loaded.variables, generator.variables):
        np.testing.assert_array_equal(a.numpy(), b.numpy())
    assert bundle.check_reference(str(out), loaded) == 0.0
    with np.load(out / "reference.npz") as ref:
        assert ref["outputs"].shape == (5, 32, 32, 3) and ref["source_uint8"].dtype == np.uint8
        assert np.abs(ref["outputs"][0] - ref["outputs"][4]).max() > 1e-5  # groups differ

    loaded.conv4.kernel.assign_add(tf.fill(loaded.conv4.kernel.shape, 1e-2))
    with pytest.raises(AssertionError, match="differ from the recorded reference"):
        bundle.check_reference(str(out), loaded)


def test_rebundling_replaces_the_folder_whole(tmp_path):
    _training_checkpoint(tmp_path / "run", step=7)
    out = tmp_path / "bundled"
    bundle.bundle_generator(str(tmp_path / "run"), str(out))
    _training_checkpoint(tmp_path / "run2", step=9)
    bundle.bundle_generator(str(tmp_path / "run2"), str(out))
    assert "generator-7.index" not in os.listdir(out) and "generator-9.index" in os.listdir(out)
    assert sorted(os.listdir(tmp_path)) == ["bundled", "run", "run2"]  # no staging left
    assert bundle_command.main(["--checkpoint_dir", str(tmp_path / "none"),
                                "--output_dir", str(tmp_path / "x")]) == 1
    assert not (tmp_path / "x").exists()


def test_bundle_records_the_crop_geometry(tmp_path):
    _training_checkpoint(tmp_path / "run")
    info = bundle.bundle_generator(str(tmp_path / "run"), str(tmp_path / "given"),
                                   face_margin=0.05, face_crop_note="measured")
    assert info["face_crop"] == {"margin": 0.05, "align": True, "source": "measured"}
    assert ipcgan_inference.load_generator(str(tmp_path / "given")).face_crop.margin == 0.05
    # without the option: what the training run's dataset recorded (faces cut around boxes)
    lists = tmp_path / "lists"
    lists.mkdir()
    (lists / "summary.json").write_text(json.dumps(
        {"dataset": "folder", "settings": {"crop": "detect", "margin": 0.3, "align": True}}))
    options = json.loads((tmp_path / "run" / "training_options.json").read_text())
    (tmp_path / "run" / "training_options.json").write_text(json.dumps(
        dict(options, list_dir=str(lists))))
    info = bundle.bundle_generator(str(tmp_path / "run"), str(tmp_path / "from_data"))
    assert info["face_crop"] == {"margin": 0.3, "align": True,
                                 "source": f"the training dataset's {lists / 'summary.json'}"}
    with pytest.raises(ValueError, match="face_margin must be >= 0, got -0.1"):
        bundle.bundle_generator(str(tmp_path / "run"), str(tmp_path / "bad"), face_margin=-0.1)
    assert not (tmp_path / "bad").exists()


class _CornerPainter:
    """Stands in for a generator of side 32: mid-grey outputs, with a saturated red 6x6
    square in the bottom-left corner for target group 0 (like the bundled model's blotch)."""
    age_groups, image_size = 5, 32

    def __call__(self, inputs, training=False, batch_stats=None):
        _, vectors = inputs
        out = np.zeros((len(vectors), 32, 32, 3), np.float32)
        out[np.argmax(vectors, -1) == 0, -6:, :6] = [1.0, -1.0, -1.0]
        return out


def test_corner_artefacts_count_made_up_colour_only():
    grey = np.full((40, 40, 3), 128, np.uint8)
    red_corner = grey.copy()
    red_corner[-10:, :10] = [255, 0, 0]  # the input itself is red there: not made up
    counts = bundle.corner_artefacts(_CornerPainter(), [grey, red_corner])
    assert counts.shape == (2, 5, 4)
    assert counts[0, 0].tolist() == [0, 0, 36, 0]  # top-left, top-right, bottom-left, -right
    assert counts[0, 1:].sum() == 0 and counts[1].sum() == 0
    assert counts.max() > bundle.CORNER_ARTEFACT_LIMIT


# ----------------------------------------------------------- the shipped model

needs_bundle = pytest.mark.skipif(not os.path.isfile(os.path.join(BUNDLED, "model.json")),
                                  reason="no bundled model in this checkout")


@needs_bundle
def test_shipped_bundle_is_small_and_gives_its_recorded_outputs():
    size = sum(os.path.getsize(os.path.join(BUNDLED, f)) for f in os.listdir(BUNDLED))
    assert size <= 20e6
    generator = ipcgan_inference.load_generator(BUNDLED)
    recorded = json.loads(open(os.path.join(BUNDLED, "model.json")).read())
    assert ipcgan_inference.generator_image_size(generator) == recorded["image_size"]
    assert bundle.check_reference(BUNDLED, generator, atol=1e-4) <= 1e-4


#: Shipped bundles whose corner artefacts are known to be in the weights (sha256 of the
#: generator's data file -> why): their test is an expected failure, so that a new bundle
#: (another hash) must pass it.
KNOWN_CORNER_ARTEFACTS: dict = {}  # none: the 128-px step-4500 bundle has no corner blotch


def _bundle_data_sha256():
    import hashlib

    data = [f for f in os.listdir(BUNDLED) if ".data-" in f]
    with open(os.path.join(BUNDLED, data[0]), "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


@needs_bundle
def test_shipped_bundle_has_no_corner_artefacts(request):
    """No output of the bundled model, for any target group, has more than
    CORNER_ARTEFACT_LIMIT pixels of made-up saturated colour in a corner: on the images/test
    faces and, with ../shared, on 20 UTKFace faces."""
    reason = KNOWN_CORNER_ARTEFACTS.get(_bundle_data_sha256())
    if reason:
        request.applymarker(pytest.mark.xfail(reason=reason, strict=True))
    faces = [images.read_image(os.path.join(ROOT, "images", "test", f))[0]
             for f in TEST_FACES]
    utk = os.path.join(os.path.dirname(ROOT), "shared", "data", "utkface")
    if os.path.isdir(utk):
        names = sorted(os.listdir(utk))
        faces += [images.read_image(os.path.join(utk, n))[0] for n in names[::len(names) // 20][:20]]
    counts = bundle.corner_artefacts(ipcgan_inference.load_generator(BUNDLED), faces)
    worst = np.unravel_index(counts.argmax(), counts.shape)
    assert counts.max() <= bundle.CORNER_ARTEFACT_LIMIT, (
        f"{counts.max()} made-up saturated pixels in corner "
        f"{('top-left', 'top-right', 'bottom-left', 'bottom-right')[worst[2]]} of face "
        f"{worst[0]}, group {worst[1]}")


@needs_bundle
def test_test_script_with_no_flags_writes_strips_for_every_test_face(tmp_path):
    """The README's first command, as a fresh clone runs it (cwd = the repository)."""
    checkout = tmp_path / "clone"
    shutil.copytree(ROOT, checkout, ignore=shutil.ignore_patterns(
        ".git", "output", "__pycache__", "*.egg-info", ".pytest_cache"))
    result = subprocess.run([sys.executable, "test.py"], cwd=checkout, capture_output=True,
                            text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    written = sorted(os.listdir(checkout / "output" / "test"))
    size = json.loads(open(os.path.join(BUNDLED, "model.json")).read())["image_size"]
    for face in TEST_FACES:
        stem = os.path.splitext(face)[0]
        strips = [f for f in written if f.startswith(stem) and "strip" in f]
        assert strips, f"no strip for {face} in {written}"
        with Image.open(checkout / "output" / "test" / strips[0]) as strip:
            assert strip.height >= size and strip.width >= 5 * size  # face + 4 or more ages


@needs_bundle
def test_export_tool_exports_the_bundled_model_by_default(tmp_path):
    result = subprocess.run([sys.executable, "-m", "face_aging.export",
                             f"--output={tmp_path / 'saved'}"], cwd=ROOT, capture_output=True,
                            text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-2000:]
    served = tf.saved_model.load(str(tmp_path / "saved"))
    with np.load(os.path.join(BUNDLED, "reference.npz")) as ref:
        source, expected = ref["source_uint8"], ref["outputs"]
    generator = ipcgan_inference.load_generator(BUNDLED)
    size = ipcgan_inference.generator_image_size(generator)
    batch = ipcgan_inference.preprocess_faces(np.repeat(source[None], 5, 0), size)
    out = served.signatures["generate"](source=batch, age_vector=tf.eye(5))["output"]
    np.testing.assert_allclose(out.numpy(), expected, atol=1e-4)
    # the crop geometry travels with the export (test.py --saved_model --detect_faces)
    recorded = json.loads(open(os.path.join(BUNDLED, "model.json")).read())
    exported = json.loads((tmp_path / "saved" / "model.json").read_text())
    assert exported["face_crop"] == {k: recorded["face_crop"][k] for k in ("margin", "align")}
    exported_generator = ipcgan_inference.load_generator(saved_model=str(tmp_path / "saved"))
    assert exported_generator.face_crop.margin == recorded["face_crop"]["margin"]


def test_training_curves_follow_the_latest_run_of_each_step(tmp_path):
    import importlib.util
    import time

    spec = importlib.util.spec_from_file_location(
        "plot_training_curves", os.path.join(ROOT, "scripts", "plot_training_curves.py"))
    curves = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(curves)
    for run, steps, value in (("first", range(0, 40, 10), 1.0), ("resumed", range(20, 60, 10), 2.0)):
        writer = tf.summary.create_file_writer(str(tmp_path / run))
        with writer.as_default():
            for step in steps:
                tf.summary.scalar("loss/age_loss", value + step / 100, step=step)
        writer.close()
        time.sleep(1.1)  # event file names carry the start time in seconds
    scalars = curves.read_scalars([str(tmp_path / "first"), str(tmp_path / "resumed")])
    steps, values = zip(*scalars["loss/age_loss"])
    assert steps == (0, 10, 20, 30, 40, 50)
    np.testing.assert_allclose(values, [1.0, 1.1, 2.2, 2.3, 2.4, 2.5], rtol=1e-6)
    out = tmp_path / "curves.png"
    assert curves.main([str(tmp_path / "first"), str(tmp_path / "resumed"), "--output", str(out),
                        "--phase", "20:resumed"]) == 0
    with Image.open(out) as image:
        assert image.size == (800, 520)
    assert curves.main([str(tmp_path / "none"), "--output", str(out)]) == 1


@needs_bundle
def test_bundled_model_ages_unseen_faces_and_keeps_their_identity():
    """An independent check of the shipped weights (not against outputs they recorded): the
    faces of UTKFace's test split (never trained on) aged to each of BEHAVIOUR_GROUPS are
    judged older group after group by the age judge, and verified as the same person by the
    identity judge above IDENTITY_FLOOR, as evaluate.py judges them (outputs at 128 px)."""
    from conftest import SHARED_DATA
    from test_evaluate import judges_installed

    utkface = SHARED_DATA / "utkface"
    if not utkface.is_dir() or not judges_installed():
        pytest.skip("needs ../shared/data/utkface and the [eval] extra")
    from face_aging.data.build import assign_split
    from face_aging.data.sources import read_utkface
    from face_aging.ipcgan.evaluate import age_fn as evaluation_age_fn
    from face_aging.metrics import age_identity, evaluation
    from face_aging.metrics.judges import AgeJudge, IdentityJudge

    # The split the bundled model was trained with: prepare's defaults (10 %, split seed 0).
    test_split = [r for r in read_utkface(str(utkface)).records
                  if assign_split(r, 0.1, 0) == "test"]
    assert len(test_split) == 605  # checkpoints/MODEL_CARD.md
    chosen = {g: [] for g in range(5)}
    for record in sorted(test_split, key=lambda r: r.name):
        group = int(age_identity.age_to_group([record.age])[0])
        if len(chosen[group]) < FACES_PER_GROUP:
            chosen[group].append(record.source)
    faces = np.stack([evaluation.read_face(path) for g in range(5) for path in chosen[g]])
    assert len(faces) == 5 * FACES_PER_GROUP

    age_fn, _ = evaluation_age_fn(ipcgan_inference.load_generator(BUNDLED), "moving", None, 8)
    age_judge, identity_judge = AgeJudge(), IdentityJudge()
    inputs = identity_judge.embed(faces)
    mean_age, verified = [], []
    for group in BEHAVIOUR_GROUPS:
        aged = age_fn(faces, group)
        mean_age.append(float(age_judge.estimate(aged).mean()))
        distances = np.linalg.norm(identity_judge.embed(aged) - inputs, axis=1)
        verified.append(float(np.mean(distances <= identity_judge.THRESHOLD)))
    print(f"judged mean age {np.round(mean_age, 1).tolist()}, verified {verified}")
    assert all(b - a >= AGE_RISE_FLOOR for a, b in zip(mean_age, mean_age[1:])), mean_age
    assert min(verified) >= IDENTITY_FLOOR, dict(zip(BEHAVIOUR_GROUPS, verified))
