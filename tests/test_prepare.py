"""Dataset preparation: readers, bins, split, pairs, resume, bad inputs, CLI, read-back."""
from __future__ import annotations

import datetime
import json
import math
import os
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
from scipy.io import savemat

from face_aging.data import build, lists, sources
from face_aging.data.ages import age_group, check_bins, group_names

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
UTKFACE = SHARED_DATA / "utkface"
WIKI_YOUNG_OLD = SHARED_DATA / "wiki_young_old"


# ---------------------------------------------------------------- helpers

def _face_image(seed: int, h: int = 80, w: int = 60) -> np.ndarray:
    rng = np.random.default_rng(seed)
    image = rng.integers(0, 255, (h, w, 3), dtype=np.uint8)
    cv2.circle(image, (w // 2, h // 2), min(h, w) // 3, (200, 160, 140), -1)
    return image


def _write_jpg(path: Path, image: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    assert cv2.imwrite(str(path), image[..., ::-1])


def _datenum(year: int, month: int, day: int) -> float:
    return float(datetime.date(year, month, day).toordinal() + 366)


def _cells(values):
    out = np.empty(len(values), dtype=object)
    for i, v in enumerate(values):
        out[i] = v
    return out


def _all_entries(out: Path):
    return (lists.read_image_list(str(out / "train.txt")) +
            lists.read_image_list(str(out / "test.txt")))


def _run(source, out, **kw):
    kw.setdefault("settings", build.CropSettings(image_size=32, align=False))
    kw.setdefault("label_pairs", 50)
    kw.setdefault("histogram", False)
    kw.setdefault("progress_stream", open(os.devnull, "w"))
    return build.prepare(source, str(out), **kw)


# ---------------------------------------------------------------- age bins

def test_age_bins_rule_is_the_releases():
    bins = (20, 30, 40, 50)
    cases = {0: 0, 11: 0, 20: 0, 20.5: 1, 21: 1, 30: 1, 31: 2, 40: 2, 41: 3, 50: 3, 51: 4, 100: 4}
    assert {a: age_group(a, bins) for a in cases} == cases
    assert group_names(bins) == ["0-20", "21-30", "31-40", "41-50", "51+"]
    assert age_group(35, (30,)) == 1 and age_group(30, (30,)) == 0
    for bad, message in (([], "need at least one edge"), ([30, 20], "increase strictly"),
                         ([20, 20], r"increase strictly, got \[20, 20\]")):
        with pytest.raises(ValueError, match=message):
            check_bins(bad)


# ---------------------------------------------------------------- IMDB-WIKI

# name, dob, photo_taken, face_score, second_face_score, face_location, file?, identity
WIKI_ROWS = [
    ("a/young.jpg", _datenum(1981, 5, 5), 2009, 3.0, math.nan, [11, 11, 50, 60], True, "Ann"),  # 28 -> 1
    ("a/edge.jpg", _datenum(1979, 12, 1), 2000, 2.5, math.nan, [5, 5, 40, 45], True, "Bob"),  # 20 (july1) / 21
    ("a/july1.jpg", _datenum(1970, 7, 1), 2020, 2.0, math.nan, [5, 5, 40, 45], True, ""),  # 50 -> 3
    ("b/noface.jpg", _datenum(1980, 1, 1), 2010, -math.inf, math.nan, [1, 1, 2, 2], True, "C"),
    ("b/second.jpg", _datenum(1980, 1, 1), 2010, 4.0, 2.1, [5, 5, 40, 45], True, "D"),
    ("b/lowscore.jpg", _datenum(1980, 1, 1), 2010, 0.5, math.nan, [5, 5, 40, 45], True, "E"),
    ("b/unborn.jpg", _datenum(2015, 3, 3), 2009, 3.0, math.nan, [5, 5, 40, 45], True, "F"),  # -6
    ("b/ancient.jpg", _datenum(1800, 3, 3), 2009, 3.0, math.nan, [5, 5, 40, 45], True, "G"),  # 209
    ("b/year0.jpg", 1.0, 2009, 3.0, math.nan, [5, 5, 40, 45], True, "H"),  # dob before year 1
    ("b/missing.jpg", _datenum(1980, 1, 1), 2010, 3.0, math.nan, [5, 5, 40, 45], False, "I"),
    ("b/nobox.jpg", _datenum(1980, 1, 1), 2010, 3.0, math.nan, [], True, "J"),
    ("c/old.jpg", _datenum(1950, 1, 1), 2006, 5.0, math.nan, [5, 5, 40, 45], True, "Ann"),  # 56 -> 4
    ("c/mid.jpg", _datenum(1960, 10, 10), 2005, 1.0, math.nan, [5, 5, 40, 45], True, "K"),  # 44 -> 3
]


def _make_wiki(tmp_path: Path, struct: str = "wiki") -> Path:
    root = tmp_path / "wiki_raw"
    for i, row in enumerate(WIKI_ROWS):
        if row[6]:
            _write_jpg(root / row[0], _face_image(i))
    n = len(WIKI_ROWS)
    meta = {
        "dob": np.array([r[1] for r in WIKI_ROWS]),
        "photo_taken": np.array([r[2] for r in WIKI_ROWS], dtype=np.uint16),
        "full_path": _cells([r[0] for r in WIKI_ROWS]),
        "gender": np.array([1.0, 0.0, math.nan] + [1.0] * (n - 3)),
        "name": _cells([r[7] for r in WIKI_ROWS]),
        "face_location": _cells([np.array([r[5]], dtype=np.float64).reshape(1, -1) if r[5]
                                 else np.zeros((0, 0)) for r in WIKI_ROWS]),
        "face_score": np.array([r[3] for r in WIKI_ROWS]),
        "second_face_score": np.array([r[4] for r in WIKI_ROWS]),
    }
    path = root / f"{struct}.mat"
    savemat(str(path), {struct: meta})
    return path


def test_wiki_mat_gives_the_expected_kept_set_groups_and_drops(tmp_path):
    mat = _make_wiki(tmp_path)
    source = sources.read_imdb_wiki(str(mat), min_face_score=1.0)
    assert source.records_read == len(WIKI_ROWS)
    out = tmp_path / "out"
    summary = _run(source, out, test_fraction=0.0)
    entries = dict(_all_entries(out))
    assert entries == {"images/a/young.jpg": 1, "images/a/edge.jpg": 0, "images/a/july1.jpg": 3,
                       "images/c/old.jpg": 4, "images/c/mid.jpg": 3}
    dropped = {reason: sorted(e["item"] for e in info["examples"])
               for reason, info in summary["dropped"].items()}
    assert dropped == {
        "no_face": ["b/noface.jpg"], "second_face": ["b/second.jpg"],
        "low_face_score": ["b/lowscore.jpg"],
        "age_out_of_range": ["b/ancient.jpg", "b/unborn.jpg", "b/year0.jpg"],
        "missing_file": ["b/missing.jpg"], "malformed_record": ["b/nobox.jpg"]}
    assert summary["kept"] == 5 and summary["dropped_total"] == 8
    # crops: image_size square RGB
    crop = cv2.imread(str(out / "images/a/young.jpg"))
    assert crop.shape == (32, 32, 3)
    # identity side file: names mapped to ints, with the name table
    ids = dict(lists.read_image_list(str(out / "train_identity.txt")))
    assert ids["images/a/young.jpg"] == ids["images/c/old.jpg"]  # both "Ann"
    assert "images/a/july1.jpg" not in ids  # empty name: no identity
    names = (out / build.IDENTITY_NAMES).read_text().split("\n")
    assert f"{ids['images/a/young.jpg']} Ann" in names
    ages = dict(lists.read_image_list(str(out / "train_age.txt")))
    assert ages["images/a/edge.jpg"] == 20 and ages["images/a/july1.jpg"] == 50


def test_wiki_options_second_face_age_rule_and_imdb_struct(tmp_path):
    mat = _make_wiki(tmp_path, struct="imdb")
    kept = {r.name: r for r in sources.read_imdb_wiki(
        str(mat), keep_second_face=True, age_rule="year_difference").records}
    assert "b/second.jpg" in kept
    assert kept["a/edge.jpg"].age == 21 and age_group(kept["a/edge.jpg"].age) == 1
    assert kept["a/young.jpg"].box == (10.0, 10.0, 50.0, 60.0)  # MATLAB 1-based -> 0-based


def test_wiki_missing_metadata_and_wrong_struct_are_one_line_errors(tmp_path):
    with pytest.raises(sources.SourceError, match="metadata file not found"):
        sources.read_imdb_wiki(str(tmp_path / "nope.mat"))
    bad = tmp_path / "other.mat"
    savemat(str(bad), {"something": np.zeros(3)})
    with pytest.raises(sources.SourceError, match="no struct named wiki or imdb"):
        sources.read_imdb_wiki(str(bad))
    broken = tmp_path / "broken.mat"
    broken.write_bytes(b"not a mat file at all")
    with pytest.raises(sources.SourceError, match="not a readable MATLAB"):
        sources.read_imdb_wiki(str(broken))
    partial = tmp_path / "partial.mat"
    savemat(str(partial), {"wiki": {"dob": np.zeros(2)}})
    with pytest.raises(sources.SourceError, match="no field 'photo_taken'"):
        sources.read_imdb_wiki(str(partial))


# ---------------------------------------------------------------- CACD

CACD_ROWS = [  # file, age, identity
    ("14_Ann_A_0001.jpg", 14, 1), ("20_Ann_A_0002.jpg", 20, 1), ("23_Ann_A_0003.jpg", 23, 1),
    ("25_Bob_B_0001.jpg", 25, 2), ("35_Bob_B_0002.jpg", 35, 2),
    ("50_Cid_C_0001.jpg", 50, 3), ("51_Cid_C_0002.jpg", 51, 3), ("62_Cid_C_0003.jpg", 62, 3),
    ("41_Dee_D_0001.jpg", 41, 4), ("45_Eve_E_0001.jpg", 45, 5), ("33_Fay_F_0001.jpg", 33, 6),
    ("30_Gus_G_0001.jpg", 30, 7), ("40_Hal_H_0001.jpg", 40, 8),
]


def _make_cacd(tmp_path: Path, extra_bad: bool = True) -> Path:
    root = tmp_path / "cacd"
    for i, (name, _, _) in enumerate(CACD_ROWS):
        _write_jpg(root / "CACD2000" / name, _face_image(100 + i, 50, 50))
    rows = list(CACD_ROWS) + ([("99_Bad_0001.jpg", math.nan, 9)] if extra_bad else [])
    data = {"age": np.array([[r[1]] for r in rows], dtype=np.float64),
            "identity": np.array([[r[2]] for r in rows], dtype=np.float64),
            "year": np.full((len(rows), 1), 2010.0),
            "name": _cells([r[0] for r in rows]).reshape(-1, 1)}
    path = root / "celebrity2000_meta.mat"
    savemat(str(path), {"celebrityImageData": data,
                        "celebrityData": {"name": _cells(["Ann A", "Bob B"]).reshape(-1, 1)}})
    return path


def test_cacd_mat_gives_groups_identities_and_identity_split(tmp_path):
    mat = _make_cacd(tmp_path)
    source = sources.read_cacd(str(mat))
    assert source.records_read == len(CACD_ROWS) + 1
    out = tmp_path / "out"
    summary = _run(source, out, test_fraction=0.5, split_seed=3)
    entries = dict(_all_entries(out))
    expected = {f"images/{n}": age_group(a) for n, a, _ in CACD_ROWS}
    assert entries == expected
    assert [entries[f"images/{n}"] for n in ("20_Ann_A_0002.jpg", "23_Ann_A_0003.jpg",
            "50_Cid_C_0001.jpg", "51_Cid_C_0002.jpg")] == [0, 1, 3, 4]
    assert summary["dropped"]["malformed_record"]["count"] == 1
    train_ids = lists.read_image_list(str(out / "train_identity.txt"))
    test_ids = lists.read_image_list(str(out / "test_identity.txt"))
    identity_of = {n: i for n, _, i in CACD_ROWS}
    assert all(identity_of[p[len("images/"):]] == i for p, i in train_ids + test_ids)
    assert train_ids and test_ids, "seed 3 should put people in both splits"
    assert not {i for _, i in train_ids} & {i for _, i in test_ids}, "a person in both splits"
    assert not (out / build.IDENTITY_NAMES).exists()  # CACD identities are numbers already


# ---------------------------------------------------------------- split, pairs, determinism

def _folder_dataset(tmp_path: Path, per_group=(3, 3, 3, 3, 3), size=(40, 30)) -> Path:
    root = tmp_path / "groups"
    k = 0
    for g, n in enumerate(per_group):
        for j in range(n):
            _write_jpg(root / str(g) / f"img_{g}_{j}.jpg", _face_image(k, *size))
            k += 1
    return root


def test_split_is_deterministic_seeded_and_pairs_are_valid(tmp_path):
    root = _folder_dataset(tmp_path, per_group=(8, 8, 8, 8, 8))
    runs = {}
    for name, seed in (("a", 0), ("b", 0), ("c", 1)):
        _run(sources.read_folder(str(root)), tmp_path / name, test_fraction=0.3, split_seed=seed,
             label_pairs=77, label_pair_seed=5)
        runs[name] = {f: (tmp_path / name / f).read_text()
                      for f in ("train.txt", "test.txt", "train_label_pair.txt")}
    assert runs["a"] == runs["b"]
    assert runs["a"]["train.txt"] != runs["c"]["train.txt"]
    train = lists.read_image_list(str(tmp_path / "a" / "train.txt"))
    test = lists.read_image_list(str(tmp_path / "a" / "test.txt"))
    assert len(train) + len(test) == 40 and 4 <= len(test) <= 20
    pairs = lists.read_label_pairs(str(tmp_path / "a" / "train_label_pair.txt"), 5)
    assert len(pairs) == 77 and all(t != f for t, f in pairs)
    assert {t for t, _ in pairs} <= {g for _, g in train}


def test_label_pairs_only_target_groups_with_training_images():
    pairs = build.make_label_pairs([0, 4], 5, 2000, seed=1)
    assert len(pairs) == 2000
    assert {t for t, _ in pairs} == {0, 4}
    assert {f for _, f in pairs} == {0, 1, 2, 3, 4}
    assert all(t != f for t, f in pairs)
    assert pairs == build.make_label_pairs([0, 4], 5, 2000, seed=1)
    assert pairs != build.make_label_pairs([0, 4], 5, 2000, seed=2)
    with pytest.raises(build.PrepareError):
        build.make_label_pairs([], 5, 10, seed=0)


def test_limit_is_a_deterministic_subset(tmp_path):
    root = _folder_dataset(tmp_path, per_group=(5, 5, 5, 5, 5))
    s1 = _run(sources.read_folder(str(root)), tmp_path / "l1", limit=7)
    s2 = _run(sources.read_folder(str(root)), tmp_path / "l2", limit=7)
    assert s1["kept"] == s2["kept"] == 7
    assert _all_entries(tmp_path / "l1") == _all_entries(tmp_path / "l2")


# ---------------------------------------------------------------- resume and atomicity

def test_rerun_skips_done_work_and_repairs_an_interrupted_run(tmp_path):
    root = _folder_dataset(tmp_path)
    out = tmp_path / "out"
    first = _run(sources.read_folder(str(root)), out)
    assert first["images_written"] == 15 and first["images_existing"] == 0
    some = out / "images/2/img_2_1.jpg"
    mtime = some.stat().st_mtime_ns
    # simulate an interrupted run: one crop gone, a half-written temp file left behind
    victim = out / "images/3/img_3_0.jpg"
    victim.unlink()
    half_written = victim.parent / f".{victim.name}.k1ll3d_0.tmp.jpg"  # files.atomic_path's name
    half_written.write_bytes(b"half")
    second = _run(sources.read_folder(str(root)), out)
    assert second["images_written"] == 1 and second["images_existing"] == 14
    assert some.stat().st_mtime_ns == mtime
    assert victim.is_file() and cv2.imread(str(victim)).shape == (32, 32, 3)
    assert not half_written.exists()
    for path, _ in _all_entries(out):
        assert (out / path).is_file()
    # other crop settings on the same output: refused, unless overwrite
    with pytest.raises(build.PrepareError, match="image_size=32->48"):
        _run(sources.read_folder(str(root)), out, settings=build.CropSettings(image_size=48))
    third = _run(sources.read_folder(str(root)), out, overwrite=True,
                 settings=build.CropSettings(image_size=48, align=False))
    assert third["images_written"] == 15
    assert cv2.imread(str(some)).shape == (48, 48, 3)


def test_an_interrupted_run_leaves_no_list_naming_a_missing_image(tmp_path, monkeypatch):
    root = _folder_dataset(tmp_path)
    out = tmp_path / "out"
    calls = {"n": 0}
    real = build.process_one

    def dying(task):
        calls["n"] += 1
        if calls["n"] == 6:
            raise KeyboardInterrupt
        return real(task)

    monkeypatch.setattr(build, "process_one", dying)
    with pytest.raises(KeyboardInterrupt):
        _run(sources.read_folder(str(root)), out)
    assert not list(out.glob("*.txt")), "lists written before all images were done"
    monkeypatch.setattr(build, "process_one", real)
    summary = _run(sources.read_folder(str(root)), out)
    assert summary["images_existing"] == 5 and summary["images_written"] == 10


# ---------------------------------------------------------------- bad inputs

def test_bad_images_are_reported_and_skipped_or_converted(tmp_path):
    root = tmp_path / "bad"
    good = _face_image(1, 60, 60)
    _write_jpg(root / "0" / "good.jpg", good)
    ok, data = cv2.imencode(".jpg", good)
    (root / "0" / "truncated.jpg").write_bytes(data.tobytes()[: len(data) // 2])
    (root / "0" / "zero.jpg").write_bytes(b"")
    (root / "0" / "text.jpg").write_bytes(b"this is not an image\n" * 10)
    rgba = np.dstack([good, np.where(np.arange(60)[None, :] < 30, 0, 255).repeat(60, 0)]).astype(np.uint8)
    (root / "4").mkdir()
    assert cv2.imwrite(str(root / "4" / "alpha.png"), rgba[..., [2, 1, 0, 3]])
    cv2.imwrite(str(root / "4" / "grey.jpg"), cv2.cvtColor(good, cv2.COLOR_RGB2GRAY))
    (root / "4" / "notes.txt").write_text("not an image")
    out = tmp_path / "out"
    summary = _run(sources.read_folder(str(root)), out, test_fraction=0.0)
    kept = dict(_all_entries(out))
    assert kept == {"images/0/good.jpg": 0, "images/4/alpha.jpg": 4, "images/4/grey.jpg": 4}
    reasons = {r: [e["item"] for e in info["examples"]] for r, info in summary["dropped"].items()}
    assert reasons == {"truncated_image": ["0/truncated.jpg"], "empty_file": ["0/zero.jpg"],
                       "unreadable_image": ["0/text.jpg"], "not_an_image_file": ["4/notes.txt"]}
    notes = {r: [e["item"] for e in info["examples"]] for r, info in summary["notes"].items()}
    assert notes == {"alpha_composited": ["4/alpha.png"], "grayscale_converted": ["4/grey.jpg"]}
    alpha = cv2.imread(str(out / "images/4/alpha.jpg"))
    assert alpha.shape == (32, 32, 3)
    assert alpha[:, :14].min() > 235  # the transparent half became white (images' one policy)
    assert alpha[:, 18:].mean() < 215
    tsv = (out / build.DROPPED_TSV).read_text()
    assert "0/zero.jpg\tempty_file\tempty file (0 bytes)" in tsv
    # the reasons are images.BadImageError's kinds: tests/test_images.py


# ---------------------------------------------------------------- UTKFace

def _utk_expected_groups(names):
    counts = [0] * 5
    for name in names:
        age = int(name.split("_")[0])
        counts[0 if age <= 20 else 1 if age <= 30 else 2 if age <= 40 else 3 if age <= 50 else 4] += 1
    return counts


def test_utkface_name_parser_on_the_five_real_oddities():
    cases = {
        "24_0_1_20170116220224657 .jpg.chip.jpg": (24, "space"),
        "39_1_20170116174525125.jpg.chip.jpg": (39, "3 fields"),
        "55_0_0_20170116232725357jpg.chip.jpg": (55, "missing dot"),
        "61_1_20170109142408075.jpg.chip.jpg": (61, "3 fields"),
        "26_1_0_20170116171048641.jpg.chip.jpg": (26, None),
        "_1_0_20170116171048641.jpg.chip.jpg": (None, "no leading age"),
    }
    for name, (age, problem) in cases.items():
        got_age, got_problem = sources.parse_utkface_name(name)
        assert got_age == age, name
        assert (got_problem is None) if problem is None else (problem in got_problem), (name, got_problem)


@pytest.mark.skipif(not UTKFACE.is_dir(), reason=f"{UTKFACE} absent")
def test_utkface_real_folder_counts_and_malformed_names(tmp_path):
    names = sorted(p.name for p in UTKFACE.iterdir() if p.is_file() and not p.name.startswith("."))
    malformed = [n for n in names if not __import__("re").fullmatch(
        r"\d+_[01]_[0-4]_\d{17}\.jpg\.chip\.jpg", n)]
    assert len(malformed) == 5
    out = tmp_path / "utk"
    source = sources.read_utkface(str(UTKFACE))
    summary = _run(source, out, settings=build.CropSettings(image_size=64), num_workers=2,
                   histogram=True)
    assert summary["kept"] == len(names) and summary["dropped_total"] == 0
    total = [a + b for a, b in zip(summary["groups"]["train"], summary["groups"]["test"])]
    assert total == _utk_expected_groups(names)
    listed = [0] * 5
    for _, g in _all_entries(out):
        listed[g] += 1
    assert listed == total
    assert summary["notes"]["malformed_name"]["count"] == 5
    noted = {e["item"] for e in summary["notes"]["malformed_name"]["examples"]}
    assert noted == set(malformed)
    assert (out / "summary.png").stat().st_size > 1000
    assert json.loads((out / "summary.json").read_text())["kept"] == len(names)
    strict = sources.read_utkface(str(UTKFACE), strict_names=True)
    assert sorted(d.item for d in strict.drops if d.reason == "malformed_name") == sorted(malformed)


# ---------------------------------------------------------------- folder: young/old and CSV

def test_young_old_folders_by_name(tmp_path):
    root = tmp_path / "yo"
    for i in range(4):
        _write_jpg(root / "young" / f"y{i}.jpg", _face_image(i))
        _write_jpg(root / "old" / f"o{i}.jpg", _face_image(10 + i))
    mapping = sources.parse_folder_groups(["young=0", "old=4"])
    assert sources.parse_folder_groups(["young", "old"]) == {"young": 0, "old": 1}
    out = tmp_path / "out"
    summary = _run(sources.read_folder(str(root), mapping), out, test_fraction=0.0)
    assert summary["groups"]["train"] == [4, 0, 0, 0, 4]
    assert (out / "train_age_group_0.txt").is_file() and (out / "train_age_group_4.txt").is_file()
    assert not (out / "train_age_group_2.txt").exists()
    pairs = lists.read_label_pairs(str(out / "train_label_pair.txt"), 5)
    assert {t for t, _ in pairs} == {0, 4}
    with pytest.raises(sources.SourceError, match="sub-folders must be named by group number"):
        sources.read_folder(str(root))
    with pytest.raises(sources.SourceError, match="no sub-folder middle"):
        sources.read_folder(str(root), {"middle": 2})


@pytest.mark.skipif(not WIKI_YOUNG_OLD.is_dir(), reason=f"{WIKI_YOUNG_OLD} absent")
def test_real_wiki_young_old_pair_is_preparable(tmp_path):
    source = sources.read_folder(str(WIKI_YOUNG_OLD), {"young": 0, "old": 4})
    summary = _run(source, tmp_path / "yo", limit=24, settings=build.CropSettings(image_size=64))
    assert summary["records_selected"] == 24 and summary["kept"] >= 20
    groups = [a + b for a, b in zip(summary["groups"]["train"], summary["groups"]["test"])]
    assert groups[1:4] == [0, 0, 0] and groups[0] > 0 and groups[4] > 0


def test_csv_of_path_and_age(tmp_path):
    root = tmp_path / "csvdata"
    for i in range(5):
        _write_jpg(root / "pics" / f"p{i}.jpg", _face_image(i))
    (root / "labels.csv").write_text(
        "path,age,identity\npics/p0.jpg,12,a\npics/p1.jpg,25,a\npics/p2.jpg,47.5,b\n"
        "pics/p3.jpg,abc,c\npics/p4.jpg,-3,d\npics/gone.jpg,30,e\n")
    out = tmp_path / "out"
    summary = _run(sources.read_folder(str(root / "labels.csv")), out, test_fraction=0.0)
    assert dict(_all_entries(out)) == {"images/pics/p0.jpg": 0, "images/pics/p1.jpg": 1,
                                       "images/pics/p2.jpg": 3}
    assert set(summary["dropped"]) == {"malformed_record", "age_out_of_range", "missing_file"}


def test_output_names_are_safe_and_distinct():
    assert build.output_name("17/1000_1981-05-05_2009.jpg") == "images/17/1000_1981-05-05_2009.jpg"
    odd = build.output_name("24_0_1_20170116220224657 .jpg.chip.jpg")
    assert " " not in odd and odd.startswith("images/24_0_1_20170116220224657_.jpg.chip_")
    assert build.output_name("a b.jpg") != build.output_name("a_b.jpg")
    assert ".." not in build.output_name("../x.png")


# ---------------------------------------------------------------- command line

def _cli(*args, cwd=REPO):
    return subprocess.run([sys.executable, "-m", "face_aging.data.prepare", *args], cwd=cwd,
                          capture_output=True, text=True, timeout=120)


def test_cli_end_to_end_and_clear_errors(tmp_path):
    root = _folder_dataset(tmp_path, per_group=(2, 2, 2, 2, 2))
    out = tmp_path / "out"
    ok = _cli("--dataset=folder", f"--input={root}", f"--output_dir={out}", "--image_size=32",
              "--label_pairs=10", "--num_workers=2", "--test_fraction=0")
    assert ok.returncode == 0, ok.stderr
    assert "kept 10" in ok.stdout
    assert ok.stderr == ""  # not a terminal: no progress bar (tests/test_progress.py draws one)
    assert len(lists.read_image_list(str(out / "train.txt"))) == 10

    missing = _cli("--dataset=imdb_wiki", f"--input={tmp_path}/wiki.mat", f"--output_dir={out}2")
    assert missing.returncode == 1
    assert missing.stderr.strip() == f"prepare: error: {tmp_path}/wiki.mat: metadata file not found"

    for bad in (["--dataset=celeba"], ["--dataset=folder", "--age_bins=30,20"],
                ["--dataset=utkface", "--folder_groups=young=0"], ["--dataset=folder", "--bogus=1"]):
        r = _cli(*bad, f"--input={root}", f"--output_dir={out}3")
        assert r.returncode != 0 and "Traceback" not in r.stderr, (bad, r.stderr)
    r = _cli("--dataset=celeba", f"--input={root}", f"--output_dir={out}3")
    assert "dataset" in r.stderr and "celeba" in r.stderr


# ---------------------------------------------------------------- read-back by the core pipeline

def test_prepared_dataset_feeds_one_training_step(tmp_path):
    """A tiny prepared dataset (12 images, batch 2) -> make_train_dataset -> one train_step."""
    from face_aging.backbones.alexnet import AlexNet
    from face_aging.ipcgan.data import make_train_dataset
    from face_aging.ipcgan.networks import Discriminator, Generator
    from face_aging.ipcgan.trainer import IPCGANTrainer

    root = tmp_path / "csv"
    rows = ["path,age"]
    for i, age in enumerate([12, 18, 22, 27, 33, 38, 42, 47, 55, 60, 70, 19]):
        _write_jpg(root / f"f{i}.jpg", _face_image(i, 90, 70))
        rows.append(f"f{i}.jpg,{age}")
    (root / "ages.csv").write_text("\n".join(rows) + "\n")
    out = tmp_path / "prepared"
    summary = _run(sources.read_folder(str(root / "ages.csv")), out, test_fraction=0.0,
                   settings=build.CropSettings(image_size=64, align=False), label_pairs=20)
    assert summary["kept"] == 12 and summary["groups"]["train"] == [3, 2, 2, 2, 3]

    batch = next(iter(make_train_dataset(str(out), str(out), batch_size=2, age_groups=5,
                                         image_size=128, seed=0)))
    assert batch["source_128"].shape == (2, 128, 128, 3) and batch["real"].shape == (2, 128, 128, 3)
    trainer = IPCGANTrainer(Generator(), Discriminator(), AlexNet(), gan_loss_weight=75.0,
                            fea_loss_weight=0.5e-4, age_loss_weight=30.0, fea_layer_name="conv5",
                            learning_rate=1e-3)
    losses = trainer.train_step(batch)
    assert set(losses) >= {"d_loss", "g_loss", "fea_loss", "age_loss"}
    for name, value in losses.items():
        assert np.isfinite(float(value)), (name, value)
