"""face_aging.files: the one atomic writer (temporary name, fsync, one file mode, rename)."""
import json
import os

import numpy as np
import pytest
from PIL import Image

from face_aging import files


def test_image_write_is_atomic_and_cleans_up_after_a_failed_fsync(tmp_path, monkeypatch):
    image = np.random.default_rng(0).integers(0, 256, (32, 96, 3), dtype=np.uint8)
    path = str(tmp_path / "x.png")
    files.atomic_write_image(path, image)
    np.testing.assert_array_equal(np.asarray(Image.open(path)), image)
    assert os.stat(path).st_mode & 0o777 == files.FILE_MODE

    def broken_fsync(fd):
        raise OSError(28, "No space left on device")
    monkeypatch.setattr(os, "fsync", broken_fsync)
    with pytest.raises(OSError):
        files.atomic_write_image(str(tmp_path / "y.png"), image)
    assert sorted(os.listdir(tmp_path)) == ["x.png"]  # no y.png, no temporary left behind


def test_json_is_sorted_with_nan_as_null_and_a_final_newline(tmp_path):
    path = str(tmp_path / "sub" / "r.json")  # the folder is made
    files.atomic_write_json(path, {"b": np.float32("nan"), "a": [np.int64(3), np.inf],
                                   "c": np.arange(2), "d": np.bool_(True), "é": "ü"})
    text = open(path, encoding="utf-8").read()
    assert text.endswith("}\n") and text.index('"a"') < text.index('"b"') and "ü" in text
    assert json.loads(text) == {"a": [3, None], "b": None, "c": [0, 1], "d": True, "é": "ü"}


def test_lines_and_text(tmp_path):
    files.atomic_write_lines(str(tmp_path / "l.txt"), (f"{k} x" for k in range(3)))
    assert (tmp_path / "l.txt").read_text() == "0 x\n1 x\n2 x\n"
    files.atomic_write_text(str(tmp_path / "t.txt"), "ä")
    assert (tmp_path / "t.txt").read_bytes() == "ä".encode("utf-8")


def test_atomic_path_keeps_the_extension_and_removes_the_temporary_on_an_error(tmp_path):
    target = str(tmp_path / "plot.png")
    with files.atomic_path(target, suffix=".png") as temporary:
        assert temporary.endswith(".png") and os.path.dirname(temporary) == str(tmp_path)
        Image.new("RGB", (4, 4)).save(temporary)
    assert os.listdir(tmp_path) == ["plot.png"]
    with pytest.raises(RuntimeError):
        with files.atomic_path(str(tmp_path / "other.png"), suffix=".png") as temporary:
            Image.new("RGB", (4, 4)).save(temporary)
            raise RuntimeError("killed")
    assert os.listdir(tmp_path) == ["plot.png"]


def test_remove_temporaries_takes_only_what_a_killed_writer_left(tmp_path):
    (tmp_path / "a").mkdir()
    left = tmp_path / "a" / ".x.jpg.k1ll3d_0.tmp.jpg"
    left.write_bytes(b"half")
    keep = [tmp_path / "a" / "x.jpg", tmp_path / ".hidden", tmp_path / "a" / ".x.partial"]
    for path in keep:
        path.write_bytes(b"data")
    assert files.remove_temporaries(str(tmp_path)) == 1
    assert not left.exists() and all(path.exists() for path in keep)


def test_atomic_replace_dir_swaps_a_whole_folder_or_leaves_the_old_one(tmp_path):
    target = tmp_path / "bundle"
    with files.atomic_replace_dir(str(target)) as staging:
        (open(os.path.join(staging, "one"), "w")).close()
    assert os.listdir(target) == ["one"] and os.stat(target).st_mode & 0o777 == files.DIR_MODE
    with pytest.raises(RuntimeError):
        with files.atomic_replace_dir(str(target)) as staging:
            (open(os.path.join(staging, "two"), "w")).close()
            raise RuntimeError("killed")
    assert os.listdir(target) == ["one"] and os.listdir(tmp_path) == ["bundle"]
    with files.atomic_replace_dir(str(target)) as staging:
        (open(os.path.join(staging, "two"), "w")).close()
    assert os.listdir(target) == ["two"] and os.listdir(tmp_path) == ["bundle"]
