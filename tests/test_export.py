"""Export (issues 5, 20): SavedModel, TF Lite (LiteRT) and ONNX, loaded in a fresh process,
equal to Keras to 1/255."""
import json
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import tensorflow as tf

from face_aging import exporting, pixels
from face_aging.apps import export as export_command
from face_aging.ipcgan import inference
from face_aging.ipcgan.networks import Generator, build_models
from face_aging.layers import BatchNorm

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SIZE = 128  # the export's default; the exported graph resizes any input to it


def random_generator(image_size=SIZE, seed=0):
    """Random weights with outputs that depend on face and age (see test_inference)."""
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
    calibration = rng.integers(0, 256, (8, 32, 32, 3)).astype(np.float32)
    g((pixels.subtract_mean(calibration), np.eye(5, dtype=np.float32)[np.arange(8) % 5]),
      training=True)
    g.image_size = image_size
    return g


def _run_python(code, timeout=300):
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2")
    result = subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True,
                            text=True, timeout=timeout, cwd=ROOT, env=env)
    assert result.returncode == 0, result.stderr[-3000:]
    return result


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    """A random generator saved as a TF2 checkpoint, exported by the CLI in a subprocess."""
    work = tmp_path_factory.mktemp("export")
    generator = random_generator()
    tf.train.CheckpointManager(tf.train.Checkpoint(generator=generator), str(work / "ckpt"),
                               max_to_keep=None).save(checkpoint_number=3)
    result = subprocess.run(
        [sys.executable, "-m", "face_aging.export", f"--checkpoint_dir={work / 'ckpt'}",
         f"--output={work / 'saved'}", "--tflite", "--onnx"],
        capture_output=True, text=True, timeout=300, cwd=ROOT,
        env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2"))
    assert result.returncode == 0, result.stderr[-3000:]
    assert "wrote SavedModel" in result.stdout
    assert "model.onnx" in result.stdout and "model_age_vector.onnx" in result.stdout
    return generator, work


def test_saved_model_and_tflite_in_a_fresh_process_match_keras(exported):
    generator, work = exported
    rng = np.random.default_rng(5)
    cases = {"small": rng.integers(0, 256, (2, 50, 70, 3), dtype=np.uint8),
             "square": rng.integers(0, 256, (3, 128, 128, 3), dtype=np.uint8)}
    groups = {"small": np.array([0, 4], np.int32), "square": np.array([1, 2, 3], np.int32)}
    vectors = {"small": np.array([[0.5, 0.5, 0, 0, 0], [0, 0, 0, 0.25, 0.75]], np.float32),
               "square": np.eye(5, dtype=np.float32)[[4, 0, 2]]}
    np.savez(work / "inputs.npz", **{f"{k}_images": v for k, v in cases.items()},
             **{f"{k}_groups": v for k, v in groups.items()},
             **{f"{k}_vectors": v for k, v in vectors.items()})
    result = _run_python(f"""
        import warnings; warnings.filterwarnings("ignore")
        import numpy as np, onnxruntime, tensorflow as tf
        from face_aging import litert
        data = np.load({str(work / 'inputs.npz')!r})
        loaded = tf.saved_model.load({str(work / 'saved')!r})
        interpreter = litert.tflite_interpreter({str(work / 'saved' / 'generator.tflite')!r})
        print("interpreter:", type(interpreter).__module__)
        by_group = onnxruntime.InferenceSession({str(work / 'saved' / 'model.onnx')!r})
        by_vector = onnxruntime.InferenceSession({str(work / 'saved' / 'model_age_vector.onnx')!r})
        out = {{}}
        for case in ("small", "square"):
            images = data[case + "_images"]
            out[case + "_sm_group"] = loaded.signatures["serve"](
                images=tf.constant(images), target_group=tf.constant(data[case + "_groups"]))["aged"].numpy()
            out[case + "_sm_default"] = loaded.signatures["serving_default"](
                images=tf.constant(images), target_group=tf.constant(data[case + "_groups"]))["aged"].numpy()
            out[case + "_sm_vector"] = loaded.signatures["serve_age_vector"](
                images=tf.constant(images), age_vector=tf.constant(data[case + "_vectors"]))["aged"].numpy()
            out[case + "_lite_group"] = interpreter.get_signature_runner("serve")(
                images=images, target_group=data[case + "_groups"])["aged"]
            out[case + "_lite_vector"] = interpreter.get_signature_runner("serve_age_vector")(
                images=images, age_vector=data[case + "_vectors"])["aged"]
            out[case + "_onnx_group"], = by_group.run(
                ["aged"], {{"images": images, "target_group": data[case + "_groups"]}})
            out[case + "_onnx_vector"], = by_vector.run(
                ["aged"], {{"images": images, "age_vector": data[case + "_vectors"]}})
        np.savez({str(work / 'outputs.npz')!r}, **out)
    """)
    import importlib.util
    if importlib.util.find_spec("ai_edge_litert") is not None:  # LiteRT's, not the deprecated one
        assert "interpreter: ai_edge_litert" in result.stdout, result.stdout
    results = np.load(work / "outputs.npz")
    worst = {}
    for case, images in cases.items():
        by_group = inference.age_faces(generator, images, groups[case])
        by_vector = inference.age_faces(generator, images, vectors[case])
        for name, want in (("sm_group", by_group), ("sm_default", by_group),
                           ("sm_vector", by_vector), ("lite_group", by_group),
                           ("lite_vector", by_vector), ("onnx_group", by_group),
                           ("onnx_vector", by_vector)):
            got = results[f"{case}_{name}"]
            assert got.dtype == np.uint8 and got.shape == want.shape == (len(images), SIZE, SIZE, 3)
            worst[f"{case}_{name}"] = int(np.abs(got.astype(int) - want.astype(int)).max())
    print("max |exported - keras| in uint8 levels:", json.dumps(worst))
    assert max(worst.values()) <= 1, worst
    assert by_group.std() > 20  # not a trivially flat output
    size = os.path.getsize(work / "saved" / "generator.tflite")
    assert size > 7_000_000, f"{size} bytes: the .tflite lost its weights"


def test_load_generator_from_saved_model_runs_both_bn_modes(exported, tmp_path):
    generator, work = exported
    loaded = inference.load_generator(saved_model=str(work / "saved"))
    assert loaded.image_size == SIZE and loaded.age_groups == 5
    rng = np.random.default_rng(6)
    faces = rng.integers(0, 256, (2, 60, 60, 3), dtype=np.uint8)
    references = rng.integers(0, 256, (3, 60, 60, 3), dtype=np.uint8)
    for mode in ("moving", "batch"):
        got = inference.age_faces(loaded, faces, np.array([1, 3]), mode, references, 4)
        want = inference.age_faces(generator, faces, np.array([1, 3]), mode, references, 4)
        assert np.abs(got.astype(int) - want.astype(int)).max() <= 1, mode
    with pytest.raises(FileNotFoundError):
        inference.load_generator(saved_model=str(tmp_path))


def test_test_script_runs_on_a_saved_model(exported, tmp_path):
    _, work = exported
    from PIL import Image

    Image.fromarray(np.random.default_rng(7).integers(0, 256, (64, 64, 3), dtype=np.uint8)) \
        .save(tmp_path / "a.png")
    result = subprocess.run(
        [sys.executable, "test.py", f"--saved_model={work / 'saved'}",
         f"--test_data_dir={tmp_path}", f"--save_dir={tmp_path / 'out'}"],
        capture_output=True, text=True, timeout=300, cwd=ROOT)
    assert result.returncode == 0, result.stderr[-2000:]
    assert Image.open(tmp_path / "out" / "a_strip.png").size == (5 * SIZE, SIZE)


def test_export_without_weights_is_one_line(tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "face_aging.export", f"--checkpoint_dir={tmp_path / 'none'}",
         f"--output={tmp_path / 'out'}"], capture_output=True, text=True, timeout=120, cwd=ROOT)
    assert result.returncode == 2
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "none" in errors[0]
    assert not (tmp_path / "out").exists()


def test_unit_range_to_uint8_matches_pixels():
    values = np.linspace(-1.2, 1.2, 1001, dtype=np.float32)
    np.testing.assert_array_equal(exporting.unit_range_to_uint8(tf.constant(values)).numpy(),
                                  pixels.to_uint8(values))


# --------------------------------------------------------------------------- LiteRT, ONNX


def test_litert_interpreter_is_preferred_and_tf_lite_still_works(exported, monkeypatch):
    """LiteRT's interpreter where installed; without it tf.lite's, with the same outputs."""
    import importlib.util

    from face_aging import litert

    _, work = exported
    path = str(work / "saved" / "generator.tflite")
    faces = np.random.default_rng(9).integers(0, 256, (1, 40, 40, 3), dtype=np.uint8)
    groups = np.array([2], np.int32)
    if importlib.util.find_spec("ai_edge_litert") is not None:
        from ai_edge_litert.interpreter import Interpreter
        assert litert.interpreter_class() is Interpreter
    preferred = litert.tflite_interpreter(path).get_signature_runner("serve")(
        images=faces, target_group=groups)["aged"]
    monkeypatch.setitem(sys.modules, "ai_edge_litert", None)
    monkeypatch.setitem(sys.modules, "ai_edge_litert.interpreter", None)
    assert litert.interpreter_class() is tf.lite.Interpreter
    fallback = litert.tflite_interpreter(path).get_signature_runner("serve")(
        images=faces, target_group=groups)["aged"]
    np.testing.assert_array_equal(preferred, fallback)


def _export_in_process(args, capsys):
    from absl import flags

    flag_values = flags.FlagValues()
    export_command.define_flags(flag_values)
    flag_values(["export"] + args)
    status = export_command.main([], flag_values)
    return status, capsys.readouterr()


def test_onnx_without_tf2onnx_is_one_line_and_writes_nothing(tmp_path, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "tf2onnx", None)  # import tf2onnx -> ImportError
    status, captured = _export_in_process([f"--output={tmp_path / 'out'}", "--onnx"], capsys)
    assert status == 2
    errors = captured.err.strip().splitlines()
    assert len(errors) == 1 and errors[0].startswith("error:") and "[onnx]" in errors[0]
    assert not (tmp_path / "out").exists()


CYCLEGAN_SIZE = 32


@pytest.fixture(scope="module")
def cyclegan_run(tmp_path_factory):
    """Random CycleGAN generators as a train_cyclegan.py checkpoint directory."""
    from face_aging.cyclegan.networks import ResnetGenerator, build_networks

    work = tmp_path_factory.mktemp("cyclegan_onnx")
    tf.keras.utils.set_random_seed(3)
    g_a, g_b = ResnetGenerator(1, 8, name="g_a"), ResnetGenerator(1, 8, name="g_b")
    build_networks(g_a, g_b)
    tf.train.CheckpointManager(tf.train.Checkpoint(g_a=g_a, g_b=g_b), str(work / "ckpt"),
                               max_to_keep=None).save(checkpoint_number=1)
    (work / "ckpt" / "training_options.json").write_text(
        json.dumps({"crop_size": CYCLEGAN_SIZE, "n_blocks": 1, "ngf": 8}))
    return g_a, g_b, work


def test_cyclegan_onnx_in_a_fresh_process_matches_keras(cyclegan_run):
    """Both directions' uint8 ONNX models (the antialiased bicubic resize mapped to ONNX Resize),
    down- and upscaling, against the Keras generators on test.py's pixels."""
    from face_aging.cyclegan.inference import translate_faces

    g_a, g_b, work = cyclegan_run
    result = subprocess.run(
        [sys.executable, "-m", "face_aging.export", "--model=cyclegan",
         f"--checkpoint_dir={work / 'ckpt'}", f"--output={work / 'saved'}", "--onnx"],
        capture_output=True, text=True, timeout=300, cwd=ROOT,
        env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2"))
    assert result.returncode == 0, result.stderr[-3000:]
    assert "model.onnx" in result.stdout and "model_old_to_young.onnx" in result.stdout
    rng = np.random.default_rng(4)
    cases = {"down": rng.integers(0, 256, (2, 90, 75, 3), dtype=np.uint8),
             "up": rng.integers(0, 256, (1, 20, 24, 3), dtype=np.uint8)}
    np.savez(work / "inputs.npz", **cases)
    _run_python(f"""
        import numpy as np, onnxruntime
        data = np.load({str(work / 'inputs.npz')!r})
        young_to_old = onnxruntime.InferenceSession({str(work / 'saved' / 'model.onnx')!r})
        old_to_young = onnxruntime.InferenceSession(
            {str(work / 'saved' / 'model_old_to_young.onnx')!r})
        out = {{}}
        for case in ("down", "up"):
            out[case + "_aged"], = young_to_old.run(["aged"], {{"images": data[case]}})
            out[case + "_rejuvenated"], = old_to_young.run(["rejuvenated"], {{"images": data[case]}})
        np.savez({str(work / 'outputs.npz')!r}, **out)
    """)
    results = np.load(work / "outputs.npz")
    worst = {}
    for case, faces in cases.items():
        for name, generator in (("aged", g_a), ("rejuvenated", g_b)):
            want = translate_faces(lambda x, g=generator: g(x), faces, CYCLEGAN_SIZE)
            got = results[f"{case}_{name}"]
            assert got.dtype == np.uint8 and got.shape == want.shape
            assert want.std() > 5  # the generator's output is not flat
            worst[f"{case}_{name}"] = int(np.abs(got.astype(int) - want.astype(int)).max())
    print("max |onnx - keras| in uint8 levels:", json.dumps(worst))
    assert max(worst.values()) <= 1, worst
