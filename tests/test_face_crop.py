"""The crop geometry beside the weights (inference.FaceCrop): model.json's face_crop, or the
training dataset's record, read by test.py --detect_faces (and the export tool); --face_margin
overrides it."""
import json
import os

import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

from face_aging import faces, inference
from face_aging.ipcgan import inference as ipcgan_inference
from test_inference import SIZE, fake_detector, random_generator, run_test_script


def _summary(list_dir, crop, margin, dataset="folder"):
    list_dir.mkdir(parents=True, exist_ok=True)
    (list_dir / "summary.json").write_text(json.dumps(
        {"dataset": dataset, "settings": {"crop": crop, "margin": margin, "align": True,
                                          "image_size": 400}}))
    return list_dir


def test_where_the_crop_geometry_is_read_from(tmp_path):
    bundle = tmp_path / "bundle"
    bundle.mkdir()
    (bundle / "model.json").write_text(json.dumps(
        {"image_size": 64, "face_crop": {"margin": 0.1, "align": False}}))
    assert inference.recorded_face_crop(str(bundle)) == inference.FaceCrop(
        0.1, False, str(bundle / "model.json"))
    assert inference.recorded_face_crop(str(bundle / "generator-5")) == \
        inference.recorded_face_crop(str(bundle))  # a prefix inside the folder
    # a training run: the geometry of its dataset, if its faces were cut around boxes
    run = tmp_path / "run"
    run.mkdir()
    for crop, dataset, margin, expected in (("detect", "folder", 0.25, 0.25),
                                            ("metadata", "imdb_wiki", 0.3, 0.3),
                                            ("auto", "imdb_wiki", 0.4, 0.4),
                                            ("auto", "utkface", 0.4, None),
                                            ("whole", "cacd", 0.4, None)):
        lists = _summary(tmp_path / f"lists_{crop}_{dataset}", crop, margin, dataset)
        (run / "training_options.json").write_text(json.dumps({"list_dir": str(lists)}))
        found = inference.recorded_face_crop(str(run))
        assert (found.margin if found else None) == expected, (crop, dataset)
        if found:
            assert found.recorded_in == str(lists / "summary.json")
    (run / "training_options.json").write_text(json.dumps({"list_dir": str(tmp_path / "gone")}))
    assert inference.recorded_face_crop(str(run)) is None
    assert inference.recorded_face_crop(str(tmp_path / "nothing")) is None
    (bundle / "model.json").write_text(json.dumps({"face_crop": {"margin": -1}}))
    with pytest.raises(ValueError, match=r"model.json: face_crop must be \{\"margin\": a number"):
        inference.recorded_face_crop(str(bundle))


def test_the_bundled_model_records_utkface_framing():
    crop = inference.recorded_face_crop(ipcgan_inference.BUNDLED_CHECKPOINT_DIR)
    if crop is None and not os.path.isfile(os.path.join(ipcgan_inference.BUNDLED_CHECKPOINT_DIR,
                                                        "model.json")):
        pytest.skip("no bundled model in this checkout")
    # UTKFace's crops are as tight as the Haar box (fitted margin -0.015, clamped to 0)
    assert crop.margin == 0.0 and crop.align is True
    assert "scripts/measure_face_margin.py" in json.loads(open(crop.recorded_in).read())[
        "face_crop"]["source"]


@pytest.fixture(scope="module")
def recorded_checkpoint(tmp_path_factory):
    """A generator checkpoint whose model.json records margin 0.1."""
    directory = tmp_path_factory.mktemp("recorded")
    generator = random_generator()
    tf.train.CheckpointManager(tf.train.Checkpoint(generator=generator), str(directory),
                               max_to_keep=None).save(checkpoint_number=1)
    (directory / "model.json").write_text(json.dumps(
        {"image_size": SIZE, "age_groups": 5, "face_crop": {"margin": 0.1, "align": True}}))
    return str(directory), generator


def test_detected_faces_are_cut_at_the_recorded_margin_unless_the_flag_says(
        tmp_path, monkeypatch, recorded_checkpoint, capsys):
    directory, generator = recorded_checkpoint
    loaded = ipcgan_inference.load_generator(directory)
    assert loaded.face_crop == inference.FaceCrop(0.1, True, os.path.join(directory, "model.json"))
    yy, xx = np.mgrid[0:200, 0:260]
    photo = np.stack([xx, yy, 255 - xx // 2], -1).astype(np.uint8)
    box = (100.0, 50.0, 180.0, 130.0)
    fake_detector(monkeypatch, [box])
    inputs = tmp_path / "in"
    inputs.mkdir()
    Image.fromarray(photo).save(inputs / "photo.png")
    for flag, margin, said in (([], 0.1, f"as recorded in {directory}/model.json"),
                               (["--face_margin=0.3"], 0.3, "(--face_margin)")):
        out = tmp_path / f"out{margin}"
        status = run_test_script([f"--checkpoint_dir={directory}", f"--test_data_dir={inputs}",
                                  f"--save_dir={out}", "--detect_faces", "--target_groups=2",
                                  *flag])
        lines = capsys.readouterr().out.splitlines()
        assert status == 0, lines
        assert lines[0].startswith(f"--detect_faces: crop margin {margin:g}") and said in lines[0]
        crop = faces.crop_with_margin(photo, box, margin)
        aged = np.asarray(Image.open(out / "photo_face0_group2_31-40.png"))
        np.testing.assert_array_equal(aged, ipcgan_inference.age_faces(generator, crop[None], 2)[0])
    # nothing recorded: the data tool's default margin, and the line says so
    plain = tmp_path / "plain"
    tf.train.CheckpointManager(tf.train.Checkpoint(generator=generator), str(plain),
                               max_to_keep=None).save(checkpoint_number=1)
    status = run_test_script([f"--checkpoint_dir={plain}", f"--test_data_dir={inputs}",
                              f"--save_dir={tmp_path / 'out_plain'}", "--detect_faces",
                              "--target_groups=2", f"--image_size={SIZE}"])
    first = capsys.readouterr().out.splitlines()[0]
    assert status == 0 and first.startswith(f"--detect_faces: crop margin "
                                            f"{faces.DEFAULT_MARGIN:g}, the data tool's default")
    aged = np.asarray(Image.open(tmp_path / "out_plain" / "photo_face0_group2_31-40.png"))
    crop = faces.crop_with_margin(photo, box, faces.DEFAULT_MARGIN)
    np.testing.assert_array_equal(aged, ipcgan_inference.age_faces(generator, crop[None], 2)[0])


def test_an_export_carries_the_crop_geometry(tmp_path, recorded_checkpoint):
    from face_aging.ipcgan import export

    directory, _ = recorded_checkpoint
    loaded = ipcgan_inference.load_generator(directory)
    record = export.write_export_record(str(tmp_path), loaded, directory)
    assert record["face_crop"] == {"margin": 0.1, "align": True} and record["image_size"] == SIZE
    assert inference.recorded_face_crop(str(tmp_path)).margin == 0.1
