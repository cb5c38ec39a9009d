"""Identity-only datasets (CACD-VS, LAG): splits, lists, safe names, framing, CLI, real data."""
from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

from face_aging.data import build, framing, identity, lists
from face_aging.data.sources import SourceError

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO.parent / "shared" / "data"
CACD_VS = SHARED_DATA / "cacd_vs"
LAG = SHARED_DATA / "lag"
QUIET = open(os.devnull, "w")


def _noise(seed: int, size: int) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 255, (size, size, 3), dtype=np.uint8)


def _write(path: Path, image: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    # cv2.imwrite cannot take non-ASCII paths everywhere; encode and write the bytes.
    ok, data = cv2.imencode(path.suffix, image[..., ::-1])
    assert ok
    path.write_bytes(data.tobytes())


def _settings(**kw):
    kw.setdefault("image_size", 32)
    kw.setdefault("align", False)
    kw.setdefault("margin", 0.0)
    return build.CropSettings(**kw)


# ---------------------------------------------------------------- CACD-VS

def _make_cacd_vs(root: Path, folds=(1, 2, 3, 4), per_fold=2, extra_rows=()) -> Path:
    """``per_fold`` same and ``per_fold`` different pairs per fold, 64x64 noise images."""
    rows, n = [], 0
    for fold in folds:
        for same in (1, 0):
            for _ in range(per_fold):
                pid = f"{n:04d}"
                rows.append([pid, fold, same, f"images/{pid}_0.jpg", f"images/{pid}_1.jpg"])
                for k in (0, 1):
                    _write(root / "images" / f"{pid}_{k}.jpg", _noise(2 * n + k, 64))
                n += 1
    with open(root / "pairs.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["pair_id", "fold", "same_identity", "image_0", "image_1"])
        w.writerows(rows + list(extra_rows))
    return root


def test_cacd_vs_holds_out_test_folds_and_makes_one_identity_per_training_pair(tmp_path):
    root = _make_cacd_vs(tmp_path / "cacd_vs", extra_rows=[
        ["9990", 1, "x", "images/a.jpg", "images/b.jpg"],   # same_identity not 1/0
        ["9991", "one", 1, "images/a.jpg", "images/b.jpg"],  # fold not a number
        ["9992", 2, 1, "images/a.jpg", ""]])                  # an image missing
    source = identity.read_cacd_vs(str(root), test_folds=(3, 4))
    out = tmp_path / "out"
    summary = identity.prepare_identity(source, str(out), settings=_settings(),
                                        progress_stream=QUIET)

    # Pairs 0000-0015: fold f holds same pairs 4(f-1), 4(f-1)+1 and different ones +2, +3.
    train = lists.read_image_list(str(out / "train_identity.txt"))
    assert train == [(f"images/{p:04d}_{k}.jpg", i) for i, p in enumerate((0, 1, 4, 5))
                     for k in (0, 1)]
    test = lists.read_image_list(str(out / "test_identity.txt"))
    assert test == [(f"images/{p:04d}_{k}.jpg", 4 + i) for i, p in enumerate((8, 9, 12, 13))
                    for k in (0, 1)]
    names = dict(line.split(" ", 1) for line in (out / "identity_names.txt").read_text().splitlines())
    assert names["0"] == "pair_0000" and names["7"] == "pair_0013"

    pairs = identity.read_pairs(str(out / "verification_pairs.txt"))
    assert [(p[0], p[1], p[2]) for p in pairs] == [
        (f"{n:04d}", 3 + (n - 8) // 4, (n % 4) < 2) for n in range(8, 16)]
    for _, _, _, a, b in pairs:
        assert (out / a).is_file() and (out / b).is_file()
    # Train folds' different-person images are neither cropped nor listed.
    assert not (out / "images" / "0002_0.jpg").exists()
    held_out = {p for _, _, _, a, b in pairs for p in (a, b)}
    assert held_out.isdisjoint(p for p, _ in train)
    assert not (out / "train.txt").exists() and not (out / "train_label_pair.txt").exists()

    assert summary["kind"] == "identity" and summary["age_lists"] is None
    assert summary["identities"] == {"train": 4, "test": 4}
    assert summary["images"] == {"train": 8, "test": 16}
    assert summary["dropped"]["train_fold_different_person_pair"]["count"] == 8
    assert summary["dropped"]["malformed_record"]["count"] == 3
    assert summary["verification_pairs"] == {"file": "verification_pairs.txt", "pairs": 8,
                                             "same": 4, "different": 4, "folds": [3, 4],
                                             "lost_to_dropped_images": 0}
    assert json.loads((out / "summary.json").read_text()) == summary
    assert (out / "prepare_config.json").is_file() and (out / "dropped.tsv").is_file()


def test_cacd_vs_all_folds_option_and_bad_folds(tmp_path):
    root = _make_cacd_vs(tmp_path / "cacd_vs", folds=(1, 2), per_fold=1)
    source = identity.read_cacd_vs(str(root), test_folds=(2,), verification_folds="all")
    out = tmp_path / "out"
    identity.prepare_identity(source, str(out), settings=_settings(), progress_stream=QUIET)
    pairs = identity.read_pairs(str(out / "verification_pairs.txt"))
    assert [(p[0], p[1], p[2]) for p in pairs] == [("0000", 1, True), ("0001", 1, False),
                                                   ("0002", 2, True), ("0003", 2, False)]
    assert (out / "images" / "0001_0.jpg").is_file()   # cropped for its pair...
    listed = {p for name in ("train_identity.txt", "test_identity.txt")
              for p, _ in lists.read_image_list(str(out / name))}
    assert "images/0001_0.jpg" not in listed           # ...but no one's identity
    with pytest.raises(SourceError, match=r"^--test_folds 7: not a fold of .*pairs.csv "
                                          r"\(folds: 1,2\)$"):
        identity.read_cacd_vs(str(root), test_folds=(2, 7))
    with pytest.raises(SourceError, match="pairs.csv: not found"):
        identity.read_cacd_vs(str(tmp_path / "nowhere"))


# ---------------------------------------------------------------- LAG

ODD_NAMES = ["Childhood model (7)_1.jpg", "алиса миллер_2.jpg", "1 (1)_1.jpg",
             "Jasmine Tookes tumblr_1_add.jpg"]


def _counts(k: int):
    """(young, old) photos of person k."""
    return (2, 2) if k == 0 else (1 + k % 2, 1 + k % 3)


def _person(k: int) -> str:
    return f"person_{k:02d}" if k != 1 else "felix_(pewdiepie)"


def _make_lag(root: Path, people: int = 30, extra_rows=()) -> Path:
    """Person k has ``_counts(k)`` photos; person 0's file names are ODD_NAMES, person 1's
    folder has parentheses."""
    rows, seed = [], 0
    for k in range(people):
        person = _person(k)
        for kind, count in zip(("young", "old"), _counts(k)):
            for j in range(count):
                name = ODD_NAMES[j + (kind == "old") * 2] if k == 0 else f"{kind}{j}.jpg"
                rel = f"images/{person}/{kind}/{name}"
                _write(root / rel, _noise(seed, 40))
                seed += 1
                rows.append([rel, person, kind])
    with open(root / "labels.csv", "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(["path", "identity", "age_group"])
        w.writerows(rows + list(extra_rows))
    return root


def test_lag_splits_people_writes_safe_names_and_every_cross_age_pair(tmp_path):
    root = _make_lag(tmp_path / "lag", extra_rows=[["images/x/middle/a.jpg", "x", "middle"],
                                                   ["", "y", "old"]])
    source = identity.read_lag(str(root), test_fraction=0.3, split_seed=0)
    out = tmp_path / "out"
    summary = identity.prepare_identity(source, str(out), settings=_settings(),
                                        progress_stream=QUIET)
    people = [_person(k) for k in range(30)]
    held = {p for p in people if build.hash_unit(f"id:{p}", 0) < 0.3}
    assert 0 < len(held) < 30
    names = dict(line.split(" ", 1) for line in (out / "identity_names.txt").read_text().splitlines())
    train = lists.read_image_list(str(out / "train_identity.txt"))
    test = lists.read_image_list(str(out / "test_identity.txt"))
    assert {names[str(i)] for _, i in train} == set(people) - held
    assert {names[str(i)] for _, i in test} == held
    assert sorted({i for _, i in train}) == list(range(30 - len(held)))       # dense
    assert sorted({i for _, i in test}) == list(range(30 - len(held), 30))    # continuing
    for path, _ in train + test:
        assert (out / path).is_file()
        assert not any(c.isspace() for c in path) and path.isascii()

    # The odd names: renamed, the originals kept in the side table.
    originals = identity.read_original_names(str(out / "original_names.tsv"))
    assert len(originals) == len(train) + len(test)
    odd = {v for v in originals.values() if v.startswith("images/person_00/")}
    assert odd == {f"images/person_00/{kind}/{name}" for kind, names in
                   (("young", ODD_NAMES[:2]), ("old", ODD_NAMES[2:])) for name in names}
    for path, original in originals.items():
        assert path == f"images/{original[len('images/'):]}" or not original.isascii() or \
            any(c in original for c in " ()")
    # person_00's 4 photos and the 4 of the folder with parentheses
    assert summary["notes"]["renamed_to_a_safe_name"]["count"] == 4 + sum(_counts(1))

    # Cross-age: every young x old combination of each held-out person.
    triples = identity.read_cross_age(str(out / "test_cross_age.txt"))
    expected = sum(np.prod(_counts(people.index(p))) for p in held)
    assert len(triples) == expected == summary["cross_age_pairs"]["pairs"]
    assert summary["cross_age_pairs"]["held_out_people_without_young_and_old"] == 0
    for i, young, old in triples:
        assert names[str(i)] in held and "/young/" in young and "/old/" in old
        assert young.split("/")[1] == old.split("/")[1]
    assert summary["dropped"]["malformed_record"]["count"] == 2
    assert summary["identities"] == {"train": 30 - len(held), "test": len(held)}

    one = tmp_path / "one"
    identity.prepare_identity(identity.read_lag(str(root), 0.3, 0), str(one),
                              settings=_settings(), cross_age="one", progress_stream=QUIET)
    assert len(identity.read_cross_age(str(one / "test_cross_age.txt"))) == len(held)


def test_lag_split_is_stable_when_people_are_added(tmp_path):
    small = identity.read_lag(str(_make_lag(tmp_path / "a", people=12)), 0.3, 5)
    large = identity.read_lag(str(_make_lag(tmp_path / "b", people=30)), 0.3, 5)
    assert all(large.split_of[name] == split for name, split in small.split_of.items())
    other_seed = identity.read_lag(str(tmp_path / "b"), 0.3, 6)
    assert other_seed.split_of != large.split_of


def test_rerun_skips_existing_crops_and_refuses_other_settings(tmp_path):
    root = _make_lag(tmp_path / "lag", people=6)
    out = tmp_path / "out"
    first = identity.prepare_identity(identity.read_lag(str(root)), str(out),
                                      settings=_settings(), progress_stream=QUIET)
    lists_before = {f: (out / f).read_bytes() for f in ("train_identity.txt", "test_identity.txt",
                                                         "test_cross_age.txt")}
    again = identity.prepare_identity(identity.read_lag(str(root)), str(out),
                                      settings=_settings(), progress_stream=QUIET)
    assert first["images_written"] == again["images_existing"] == first["kept"] > 0
    assert again["images_written"] == 0
    assert lists_before == {f: (out / f).read_bytes() for f in lists_before}
    with pytest.raises(build.PrepareError, match="image_size=32->48"):
        identity.prepare_identity(identity.read_lag(str(root)), str(out),
                                  settings=_settings(image_size=48), progress_stream=QUIET)


# ---------------------------------------------------------------- framing

def test_frame_fractions_by_hand():
    box = framing.frame_fractions(framing.Framing(0.2, 0.5, 0.45), framing.Framing(0.4, 0.5, 0.3))
    np.testing.assert_allclose(box, (0.25, 0.30, 0.75, 0.80))
    np.testing.assert_allclose(framing.frame_box(200, 100, framing.Framing(0.2, 0.5, 0.45),
                                                 framing.Framing(0.4, 0.5, 0.3)),
                               (50, 30, 150, 80))


def test_reframed_crop_puts_the_eyes_where_utkface_has_them(tmp_path):
    """Two white 'eyes' placed at a made-up framing land at UTKFace's framing in the crop."""
    src = framing.Framing(eye_distance=0.2, eye_x=0.52, eye_y=0.46)
    size = 250
    image = np.zeros((size, size, 3), np.uint8)
    for dx in (-0.1, 0.1):
        cx, cy = int(round((src.eye_x + dx) * size)), int(round(src.eye_y * size))
        image[cy - 2:cy + 3, cx - 2:cx + 3] = 255
    root = tmp_path / "ds"
    _write(root / "face.png", image)
    source = identity.IdentitySource("test", framing=src)
    source.records = [identity.Record(source=str(root / "face.png"), name="face.png", identity="a")]
    source.split_of = {"face.png": "train"}
    out = tmp_path / "out"
    identity.prepare_identity(source, str(out), settings=_settings(image_size=200),
                              progress_stream=QUIET)
    crop = cv2.imread(str(out / "images" / "face.jpg"), cv2.IMREAD_GRAYSCALE)
    ys, xs = np.nonzero(crop > 128)
    left, right = xs < 100, xs >= 100
    target = framing.MEASURED["utkface"]
    eyes_x = (xs[left].mean() / 200, xs[right].mean() / 200)
    assert abs((eyes_x[1] - eyes_x[0]) - target.eye_distance) < 0.01
    assert abs(np.mean(eyes_x) - target.eye_x) < 0.01
    assert abs(ys.mean() / 200 - target.eye_y) < 0.01


@pytest.mark.skipif(not CACD_VS.is_dir(), reason=f"{CACD_VS} absent")
def test_real_cacd_vs_reframed_crops_match_utkface_framing(tmp_path):
    """On 24 real CACD-VS images, dlib's eye geometry of the crops ~ UTKFace's (the point of
    the re-framing); the uncropped images are framed far looser."""
    dlib = pytest.importorskip("dlib")
    pytest.importorskip("face_recognition_models")
    source = identity.read_cacd_vs(str(CACD_VS))
    assert len(source.pairs) == 1600 and source.info["test_folds"] == [5, 6, 7, 8]
    assert sum(1 for s in source.split_of.values() if s == "train") == 1600
    keep = {r.name for r in source.records[::200]}
    source.records = [r for r in source.records if r.name in keep]
    out = tmp_path / "out"
    identity.prepare_identity(source, str(out), settings=_settings(image_size=200, align=True),
                              progress_stream=QUIET)
    paths = sorted(str(p) for p in (out / "images").glob("*.jpg"))
    assert len(paths) == 24
    crops = framing.measure(paths, progress=False)
    raw = framing.measure([r.source for r in source.records], progress=False)
    target = framing.MEASURED["utkface"]
    assert crops["measured"] >= 20 and dlib
    assert abs(crops["eye_distance"]["median"] - target.eye_distance) < 0.03
    assert abs(crops["eye_y"]["median"] - target.eye_y) < 0.03
    assert raw["eye_distance"]["median"] < 0.25


@pytest.mark.skipif(not LAG.is_dir(), reason=f"{LAG} absent")
def test_real_lag_labels_odd_names_and_split(tmp_path):
    source = identity.read_lag(str(LAG))
    assert source.records_read == 3816 and not source.drops
    people = {r.identity for r in source.records}
    held = {r.identity for r in source.records if source.split_of[r.name] == "test"}
    assert len(people) == 1010 and 70 < len(held) < 130
    odd = [r for r in source.records
           if any(c.isspace() or c in "()" or "\u0400" <= c <= "\u04ff" for c in r.name)]
    assert len(odd) == 66   # 64 file names, plus a folder with parentheses
    source.records = odd[:12]
    out = tmp_path / "out"
    summary = identity.prepare_identity(source, str(out), settings=_settings(),
                                        progress_stream=QUIET)
    assert summary["kept"] == 12 and summary["notes"]["renamed_to_a_safe_name"]["count"] == 12
    listed = lists.read_image_list(str(out / "train_identity.txt")) + \
        lists.read_image_list(str(out / "test_identity.txt"))
    originals = identity.read_original_names(str(out / "original_names.tsv"))
    assert sorted(originals.values()) == sorted(f"images/{r.name}" for r in odd[:12])
    assert len(listed) == 12 and all((out / p).is_file() for p, _ in listed)


# ---------------------------------------------------------------- list format

def test_list_writer_refuses_paths_a_space_separated_reader_would_split(tmp_path):
    path = tmp_path / "train_identity.txt"
    lists.write_image_list(str(path), [("images/a.jpg", 0)])
    for bad in ("images/Childhood model (7)_1.jpg", "images/tab\there.jpg",
                "images/new\nline.jpg", ""):
        with pytest.raises(lists.ListFormatError) as e:
            lists.write_image_list(str(path), [("images/b.jpg", 1), (bad, 2)])
        assert "\n" not in str(e.value).replace("\\n", "")
    with pytest.raises(lists.ListFormatError, match="label '3' is not an integer"):
        lists.write_image_list(str(path), [("images/b.jpg", "3")])
    assert path.read_text() == "images/a.jpg 0\n"   # untouched by the refused writes
    with pytest.raises(lists.ListFormatError, match="whitespace"):
        identity.write_pairs(str(tmp_path / "p.txt"), [("1", 1, 1, "a b.jpg", "c.jpg")])


def test_list_reader_copes_with_spaces_and_refuses_an_ambiguous_split(tmp_path):
    path = tmp_path / "list.txt"
    path.write_text("images/Childhood model (7)_1.jpg 3\nimages/алиса миллер_2.jpg 4\n"
                    "images/plain.jpg 5\n", encoding="utf-8")
    assert lists.read_image_list(str(path)) == [("images/Childhood model (7)_1.jpg", 3),
                                                ("images/алиса миллер_2.jpg", 4),
                                                ("images/plain.jpg", 5)]
    path.write_text("images/plain.jpg 5\nimages/Childhood model 7\n")   # label missing
    with pytest.raises(lists.ListFormatError, match=r"list.txt:2: cannot tell path from label"):
        lists.read_image_list(str(path))
    path.write_text("images/Childhood model (7)_1.jpg\n")               # label missing
    with pytest.raises(lists.ListFormatError, match=r"list.txt:1: expected 'relative/path label'"):
        lists.read_image_list(str(path))
    path.write_bytes(b"images/\xff.jpg 1\n")
    with pytest.raises(lists.ListFormatError, match="not UTF-8"):
        lists.read_image_list(str(path))


def test_pairs_and_cross_age_readers_name_the_bad_line(tmp_path):
    path = tmp_path / "pairs.txt"
    path.write_text("# header\n0001 5 1 images/a.jpg images/b.jpg\n0002 5 2 images/c.jpg images/d.jpg\n")
    with pytest.raises(lists.ListFormatError, match=r"pairs.txt:3: fold must be an integer and same 1 or 0"):
        identity.read_pairs(str(path))
    path.write_text("0001 5 1 images/a.jpg\n")
    with pytest.raises(lists.ListFormatError, match=r"pairs.txt:1: expected 'pair_id fold same"):
        identity.read_pairs(str(path))
    path.write_text("# only a header\n")
    with pytest.raises(lists.ListFormatError, match="no pairs"):
        identity.read_pairs(str(path))
    cross = tmp_path / "cross.txt"
    cross.write_text("x images/y.jpg images/o.jpg\n")
    with pytest.raises(lists.ListFormatError, match=r"cross.txt:1: identity must be an integer"):
        identity.read_cross_age(str(cross))


# ---------------------------------------------------------------- command line

def _cli(*args):
    return subprocess.run([sys.executable, "-m", "face_aging.data.prepare", *args], cwd=REPO,
                          capture_output=True, text=True, timeout=300)


def test_cli_prepares_both_sets_and_reports_bad_flags_in_one_line(tmp_path):
    cacd = _make_cacd_vs(tmp_path / "cacd_vs", folds=(1, 2), per_fold=1)
    out = tmp_path / "out_cacd"
    r = _cli("--dataset=cacd_vs", f"--input={cacd}", f"--output_dir={out}", "--test_folds=2",
             "--image_size=32", "--num_workers=1")
    assert r.returncode == 0, r.stderr
    assert "verification_pairs.txt: 2 pairs (1 same, 1 different) of folds 2" in r.stdout
    config = json.loads((out / "prepare_config.json").read_text())
    assert config["margin"] == 0.0 and config["crop"] == "auto" and config["image_size"] == 32
    lag = _make_lag(tmp_path / "lag", people=4)
    r = _cli("--dataset=lag", f"--input={lag}", f"--output_dir={tmp_path / 'out_lag'}",
             "--num_workers=2", "--test_fraction=0.5")
    assert r.returncode == 0, r.stderr
    assert json.loads((tmp_path / "out_lag" / "prepare_config.json").read_text())["image_size"] \
        == identity.DEFAULT_IMAGE_SIZE
    for args, message in (
            (["--dataset=cacd_vs", f"--input={cacd}", "--test_folds=9"],
             f"prepare: error: --test_folds 9: not a fold of {cacd}/pairs.csv (folds: 1,2)"),
            (["--dataset=lag", f"--input={tmp_path}"],
             f"prepare: error: {tmp_path}/labels.csv: not found")):
        r = _cli(*args, f"--output_dir={tmp_path / 'bad'}")
        assert (r.returncode, r.stderr.strip()) == (1, message)
    r = _cli("--dataset=lag", f"--input={lag}", f"--output_dir={tmp_path / 'bad'}", "--limit=3")
    assert r.returncode != 0 and "--limit applies to the age datasets" in r.stderr
    assert "Traceback" not in r.stderr
