"""Face verification metric: distances, thresholds, k-fold accuracy, AUC, AlexNet features, CLI."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

from face_aging.metrics import verification as V

REPO = Path(__file__).resolve().parents[1]
CACD_VS = REPO.parent / "shared" / "data" / "cacd_vs"

# A hand-made set: (distance, same, fold). Worked by hand in the test below.
PAIRS = [(0.10, 1, 1), (0.40, 1, 1), (0.30, 0, 1), (0.80, 0, 1),
         (0.20, 1, 2), (0.50, 0, 2), (0.60, 1, 2), (0.90, 0, 2),
         (0.35, 1, 3), (0.15, 0, 3), (0.70, 0, 3), (0.25, 1, 3)]


def test_cosine_distance_of_normalised_features_by_hand():
    a = np.array([[3, 4], [1, 0], [1, 0], [0, 0], [1, 1]], np.float32)
    b = np.array([[6, 8], [0, 2], [-1, 0], [1, 1], [1, 0]], np.float32)
    np.testing.assert_allclose(V.pair_distances(a, b), [0, 1, 2, 1, 1 - 1 / np.sqrt(2)],
                               atol=1e-12)
    # [N, ...] features are flattened: a 2x2 map equals its 4-vector
    np.testing.assert_allclose(V.pair_distances(np.ones((1, 2, 2)), np.ones((1, 4))), [0],
                               atol=1e-12)
    with pytest.raises(V.VerificationInputError, match="differ in shape"):
        V.pair_distances(np.ones((2, 3)), np.ones((2, 4)))


def test_k_fold_thresholds_and_accuracies_by_hand():
    """Fold 1, trained on folds 2+3 (0.15D .20S .25S .35S .50D .60S .70D .90D): correct
    counts over the candidates are 4,3,4,5,6,5,6,5,4, best 6 at 0.425 and 0.65 -> the
    middle (second) one, 0.65, train 6/8; on fold 1: .10S ok, .40S ok, .30D wrong, .80D ok
    -> 3/4. Fold 2 (on 1+3): a single best 0.55 (6/8); fold 2 at 0.55: .20S ok, .50D wrong,
    .60S wrong, .90D ok -> 2/4. Fold 3 (on 1+2): best 6/8 at 0.25, 0.45, 0.70 -> 0.45;
    fold 3: .35S ok, .15D wrong, .70D ok, .25S ok -> 3/4. Mean 2/3, std (ddof 1)
    sqrt(((1/12)^2 * 2 + (1/6)^2) / 2) = 0.144338, standard error / sqrt(3) = 1/12.
    AUC: same-closer-than-different counts 6+5+5+4+4+3 = 27 of 36 = 0.75."""
    d, s, f = map(np.array, zip(*PAIRS))
    result = V.cross_validate(d, s, f)
    got = [(x["fold"], round(x["threshold"], 6), x["train_accuracy"], x["accuracy"], x["pairs"])
           for x in result["folds"]]
    assert got == [(1, 0.65, 0.75, 0.75, 4), (2, 0.55, 0.75, 0.5, 4), (3, 0.45, 0.75, 0.75, 4)]
    assert result["mean_accuracy"] == pytest.approx(2 / 3)
    assert result["std_accuracy"] == pytest.approx(0.1443375673)
    assert result["standard_error"] == pytest.approx(1 / 12)
    assert result["auc"] == pytest.approx(0.75)
    assert (result["pairs"], result["same_pairs"]) == (12, 6)


def test_threshold_extremes_auc_ties_and_bad_input():
    # all same: the best threshold calls everything same
    assert V.best_threshold([0.3, 0.1], [1, 1]) == (1.3, 1.0)
    # all different: below everything
    assert V.best_threshold([0.3, 0.1], [0, 0]) == (pytest.approx(-0.9), 1.0)
    # perfectly separable: the midpoint of the gap
    assert V.best_threshold([0.1, 0.2, 0.6, 0.9], [1, 1, 0, 0]) == (pytest.approx(0.4), 1.0)
    # ties count half: (0.1<0.2) (0.1<0.3) (0.2=0.2: 1/2) (0.2<0.3) -> 3.5 / 4
    assert V.roc_auc([0.1, 0.2, 0.2, 0.3], [1, 1, 0, 0]) == pytest.approx(0.875)
    assert np.isnan(V.roc_auc([0.1, 0.2], [1, 1]))
    with pytest.raises(V.VerificationInputError, match="at least 2 folds"):
        V.cross_validate([0.1, 0.2], [1, 0], [1, 1])
    with pytest.raises(V.VerificationInputError, match="3 distances but 2"):
        V.cross_validate([0.1, 0.2, 0.3], [1, 0], [1, 2, 3])
    with pytest.raises(V.VerificationInputError, match="1/0"):
        V.best_threshold([0.1], [2])
    with pytest.raises(V.VerificationInputError, match="not finite"):
        V.best_threshold([np.nan, 0.1], [1, 0])


# ---------------------------------------------------------------- AlexNet features

@pytest.fixture(scope="module")
def alexnet():
    import tensorflow as tf
    from face_aging.backbones.alexnet import AlexNet, build_alexnet

    tf.keras.utils.set_random_seed(3)
    a = AlexNet()
    build_alexnet(a)
    return a


def _save_trunk(alexnet, prefix: str) -> str:
    """A TF2 checkpoint of only conv1..conv5 under 'alexnet' (9 MB, not the full 452 MB)."""
    import tensorflow as tf

    trunk = tf.Module()
    for name in ("conv1", "conv2", "conv3", "conv4", "conv5"):
        setattr(trunk, name, getattr(alexnet, name))
    return tf.train.Checkpoint(alexnet=trunk).write(prefix)


def _image(path: Path, seed: int, size: int) -> np.ndarray:
    rgb = np.random.default_rng(seed).integers(0, 255, (size, size, 3), dtype=np.uint8)
    rgb = cv2.GaussianBlur(rgb, (0, 0), 3)
    path.parent.mkdir(parents=True, exist_ok=True)
    assert cv2.imwrite(str(path), rgb[..., ::-1])
    return cv2.imread(str(path))[..., ::-1]  # what was stored (PNG: lossless)


def test_alexnet_features_follow_the_release_pixel_pipeline(tmp_path, alexnet, capsys):
    from face_aging import pixels

    exact = _image(tmp_path / "a227.png", 0, 227)
    small = _image(tmp_path / "b100.png", 1, 100)
    paths = [str(tmp_path / "a227.png"), str(tmp_path / "b100.png"), str(tmp_path / "a227.png")]
    feats = V.extract_features(alexnet, paths, "conv5", batch_size=2, progress=True)
    assert feats.shape == (3, 13 * 13 * 256) and feats.dtype == np.float32
    assert "conv5 features" in capsys.readouterr().err
    mean = np.array(pixels.MEAN_RGB, np.float32)
    direct = alexnet(exact[None].astype(np.float32) - mean, outputs=("conv5",))["conv5"]
    np.testing.assert_allclose(feats[0], np.asarray(direct).ravel(), rtol=1e-4, atol=1e-4)
    # The same face in a batch of two and alone: equal up to float rounding (some CPUs' oneDNN
    # picks another convolution kernel for another batch size).
    np.testing.assert_allclose(feats[0], feats[2], rtol=1e-5, atol=1e-6)
    # 100 px: cv2's own INTER_LINEAR resize (one level of rounding apart at most)
    resized = cv2.resize(small, (227, 227), interpolation=cv2.INTER_LINEAR).astype(np.float32)
    direct = np.asarray(alexnet(resized[None] - mean, outputs=("conv5",))["conv5"]).ravel()
    assert np.corrcoef(feats[1], direct)[0, 1] > 0.999
    one_by_one = V.extract_features(alexnet, paths, "conv5", batch_size=1, progress=False)
    np.testing.assert_allclose(one_by_one, feats, rtol=1e-4, atol=1e-3)
    assert V.extract_features(alexnet, paths[:1], "fc7", progress=False).shape == (1, 4096)
    with pytest.raises(V.VerificationInputError, match="nothing.png: image not found"):
        V.extract_features(alexnet, [str(tmp_path / "nothing.png")], progress=False)
    (tmp_path / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 not really")
    with pytest.raises(V.VerificationInputError, match="broken.jpg: not a decodable image"):
        V.extract_features(alexnet, [str(tmp_path / "broken.jpg")], progress=False)
    with pytest.raises(V.VerificationInputError, match="layer 'conv9'"):
        V.extract_features(alexnet, paths, "conv9", progress=False)


def _pairs_folder(root: Path) -> Path:
    """Two folds; same pairs are one image twice (distance 0), different pairs two images."""
    from face_aging.data import identity

    rows = []
    for n in range(8):
        fold, same = 1 + n // 4, int(n % 2 == 0)
        a = f"images/{n}_0.png"
        _image(root / a, 10 * n, 64)
        b = a if same else f"images/{n}_1.png"
        if not same:
            _image(root / b, 10 * n + 1, 64)
        rows.append((f"{n:04d}", fold, same, a, b))
    identity.write_pairs(str(root / "verification_pairs.txt"), rows)
    return root / "verification_pairs.txt"


def test_verify_alexnet_on_files_and_cli(tmp_path, alexnet):
    pairs = _pairs_folder(tmp_path / "data")
    result = V.verify_alexnet(alexnet, str(pairs), "conv5", batch_size=4, progress=False)
    assert result["mean_accuracy"] == 1.0 and result["auc"] == 1.0
    distances = {p["pair_id"]: p for p in result["pair_distances"]}
    assert all(distances[f"{n:04d}"]["distance"] == pytest.approx(0, abs=1e-6)
               for n in (0, 2, 4, 6))
    assert all(distances[f"{n:04d}"]["distance"] > 1e-3 for n in (1, 3, 5, 7))

    checkpoint = _save_trunk(alexnet, str(tmp_path / "ckpt" / "alexnet"))
    out = tmp_path / "v.json"
    run = lambda *a: subprocess.run([sys.executable, "-m", "face_aging.metrics.verification", *a],
                                    cwd=REPO, capture_output=True, text=True, timeout=600)
    ok = run(f"--alexnet={checkpoint}", f"--pairs={pairs}", "--layer=conv5", f"--output={out}",
             "--batch_size=4")
    assert ok.returncode == 0, ok.stderr
    assert "oneDNN" not in ok.stderr and "cuda" not in ok.stderr.lower(), ok.stderr
    assert "verification accuracy 100.00 % +- 0.00 (mean +- std over folds 1,2)" in ok.stdout
    written = json.loads(out.read_text())
    assert [f["fold"] for f in written["folds"]] == [1, 2] and written["layer"] == "conv5"
    for f, d in zip(written["pair_distances"], result["pair_distances"]):
        assert f["distance"] == pytest.approx(d["distance"], abs=1e-5)

    bad_pairs = tmp_path / "data" / "bad_pairs.txt"
    bad_pairs.write_text("0001 1 1 images/0_0.png images/gone.png\n0002 2 0 images/0_0.png "
                         "images/1_0.png\n")
    for args, message in (
            ([f"--alexnet={tmp_path / 'nope'}", f"--pairs={pairs}"],
             f"verification: error: --alexnet {tmp_path / 'nope'}: no such checkpoint"),
            ([f"--alexnet={checkpoint}", f"--pairs={bad_pairs}"],
             f"verification: error: {tmp_path / 'data' / 'images' / 'gone.png'}: image of")):
        r = run(*args, f"--output={tmp_path / 'never.json'}")
        assert r.returncode == 1 and r.stderr.strip().startswith(message), r.stderr
        assert len(r.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "never.json").exists()
    wrong = tmp_path / "wrong"  # a checkpoint without an AlexNet: found after TensorFlow loads
    import tensorflow as tf
    tf.train.Checkpoint(other=tf.Variable(1.0)).write(str(wrong / "ckpt"))
    r = run(f"--alexnet={wrong / 'ckpt'}", f"--pairs={pairs}")
    # one line although TensorFlow loaded: its C++ start-up lines stay hidden
    assert r.returncode == 1 and len(r.stderr.strip().splitlines()) == 1, r.stderr
    assert r.stderr.strip().splitlines()[-1].startswith(
        f"verification: error: {wrong / 'ckpt'}: does not match the AlexNet: missing alexnet/conv1")
    from face_aging.backbones import FEATURE_LAYERS
    assert V.FEATURE_LAYER_NAMES == FEATURE_LAYERS


@pytest.mark.skipif(not CACD_VS.is_dir(), reason=f"{CACD_VS} absent")
def test_real_cacd_vs_pairs_through_the_judges_features(tmp_path):
    """The cross-validation on real pairs, with dlib's embeddings as features: 2 x 20 pairs
    of two folds, crops re-framed by prepare; dlib (99.38 % on LFW) must separate them well."""
    judges = pytest.importorskip("face_aging.metrics.judges")
    try:
        judge = judges.IdentityJudge()
    except judges.JudgesUnavailableError as e:
        pytest.skip(str(e))
    from face_aging.data import build, identity

    source = identity.read_cacd_vs(str(CACD_VS), test_folds=(5, 6))
    chosen = [p for fold in (5, 6) for same in (True, False)
              for p in [q for q in source.pairs if q.fold == fold and q.same == same][:10]]
    names = {n for p in chosen for n in (p.name_0, p.name_1)}
    source.records = [r for r in source.records if r.name in names]
    source.pairs = chosen
    out = tmp_path / "cacd_vs"
    identity.prepare_identity(source, str(out), settings=build.CropSettings(
        image_size=128, margin=0.0, align=False), progress_stream=open(os.devnull, "w"))
    rows = identity.read_pairs(str(out / "verification_pairs.txt"))
    assert len(rows) == 40

    def features(paths):
        return judge.embed(np.stack([cv2.imread(p)[..., ::-1] for p in paths]))

    distances = V.pair_distances_of_images(features, [r[3:5] for r in rows], str(out))
    result = V.cross_validate(distances, [r[2] for r in rows], [r[1] for r in rows])
    assert result["auc"] > 0.9 and result["mean_accuracy"] >= 0.8
    # --dlib / verify_dlib: the same measurement, faces read as evaluate.py reads them (128 px)
    report = tmp_path / "dlib.json"
    r = subprocess.run([sys.executable, "-m", "face_aging.metrics.verification", "--dlib",
                        f"--pairs={out / 'verification_pairs.txt'}", f"--output={report}"],
                       cwd=REPO, capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr
    written = json.loads(report.read_text())
    assert written["features"].startswith("dlib") and written["pairs"] == 40
    np.testing.assert_allclose([p["distance"] for p in written["pair_distances"]], distances,
                               atol=1e-5)
    assert "verification accuracy" in r.stdout
