"""benchmarks/: the analytic FLOP counter against hand counts, the profiler-trace parser, and
``python -m benchmarks --quick`` end to end. No timing assertions: benchmarks are not tests."""
import json
import math
import os
import subprocess
import sys
import threading

import pytest

from benchmarks import flops

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_generator_layers_by_hand():
    layers = {layer.name: layer for layer in flops.generator_layers(128)}
    # conv1: 128x128 outputs, each a 7x7x8 dot product (3 image + 5 condition channels), 32 filters.
    assert layers["conv1"].macs == 128 * 128 * 7 * 7 * 8 * 32 == 205_520_896
    # deconv1: every one of the 32x32 input pixels scatters a 3x3x64 patch from 128 channels.
    assert layers["deconv1"].macs == 32 * 32 * 3 * 3 * 128 * 64 == 75_497_472
    # a residual conv: 32x32 outputs, 3x3x128 dot products, 128 filters.
    assert layers["unit_3/sub2/conv2"].macs == 32 * 32 * 3 * 3 * 128 * 128


def test_generator_total_by_hand_and_two_flops_per_multiply_add():
    macs = (128 * 128 * 49 * 8 * 32          # conv1
            + 64 * 64 * 9 * 32 * 64          # conv2
            + 32 * 32 * 9 * 64 * 128         # conv3
            + 12 * 32 * 32 * 9 * 128 * 128   # 6 residual units x 2 convs
            + 32 * 32 * 9 * 128 * 64         # deconv1 (input pixels x kernel)
            + 64 * 64 * 9 * 64 * 32          # deconv2
            + 128 * 128 * 49 * 32 * 3)       # conv4
    assert flops.generator_flops(128, batch=1) == 2 * macs == 4_793_040_896
    assert flops.generator_flops(128, batch=32) == 32 * 2 * macs


def test_discriminator_and_alexnet_layers_by_hand():
    d = {layer.name: layer for layer in flops.discriminator_layers(128)}
    assert d["dis_1"].macs == 32 * 32 * 4 * 4 * (64 + 5) * 128  # condition concatenated after dis
    assert d["dis_4"].macs == 16 * 16 * 4 * 4 * 512 * 512
    a = {layer.name: layer for layer in flops.alexnet_layers("conv5", age_head=True)}
    assert a["conv1"].macs == 55 * 55 * 11 * 11 * 3 * 96
    assert a["conv2"].macs == 27 * 27 * 5 * 5 * 48 * 256   # 2 groups: half the input channels
    assert a["age_fc6"].macs == 6 * 6 * 256 * 4096
    assert "fc6" not in a  # the conv5 feature needs no fc6


def test_train_step_parts():
    reuse = flops.train_step_flops(128, batch=4, step_structure="reuse")
    release = flops.train_step_flops(128, batch=4, step_structure="release")
    assert reuse["total"] == sum(v for k, v in reuse.items() if k != "total")
    # The release's structure runs the generator forward once more, nothing else.
    assert release["total"] - reuse["total"] == flops.generator_flops(128, batch=4)
    d = flops.discriminator_layers(128)
    d_fwd = flops.forward_flops(d, 4)
    first = 2 * 4 * d[0].macs
    # D update: 3 forwards, 3 backwards of kernel grads (= forward) and input grads (no image grad).
    assert reuse["d_update"] == 3 * (3 * d_fwd - first)


def test_layer_table_matches_the_models_kernels():
    from face_aging.ipcgan.networks import Discriminator, Generator, build_models
    g, d = Generator(), Discriminator()
    build_models(g, d, image_size=32)
    kernels = {v.path.split("/", 1)[1].rsplit("/", 1)[0]: tuple(v.shape) for v in g.variables
               if v.path.endswith("weights")}
    kernels.update({v.path.split("/", 1)[1].rsplit("/", 1)[0]: tuple(v.shape)
                    for v in d.variables if v.path.endswith("weights")})
    table = flops.generator_layers(32) + flops.discriminator_layers(32)
    assert len(kernels) == len(table)
    by_suffix = {}
    for path, shape in kernels.items():
        by_suffix[path.replace("sub1/", "").replace("sub2/", "")] = shape
    for layer in table:
        name = layer.name.replace("sub1/", "").replace("sub2/", "")
        shape = by_suffix[name]
        if layer.kind == "deconv":  # [kh, kw, out, in]
            assert shape == (layer.kernel, layer.kernel, layer.out_channels, layer.in_channels)
        else:
            assert shape == (layer.kernel, layer.kernel, layer.in_channels // layer.groups,
                             layer.out_channels)


def test_profile_parser_finds_ops(tmp_path):
    import tensorflow as tf
    from benchmarks import profiling
    a = tf.random.normal([256, 256])
    fn = tf.function(lambda: tf.matmul(a, a) + 1.0)
    fn()
    tf.profiler.experimental.start(str(tmp_path))
    for _ in range(3):
        fn().numpy()
    tf.profiler.experimental.stop()
    times = profiling.op_times(str(tmp_path))
    assert times["by_type"].get("MatMul", 0) > 0 or times["by_type"].get("_MklMatMul", 0) > 0
    text = profiling.format_summary(profiling.summarise(times, steps=3))
    assert "MatMul" in text


def test_bad_flags_exit_with_usage():
    from benchmarks.__main__ import parse_args
    with pytest.raises(SystemExit) as exc:
        parse_args(["--only=generator,bogus"])
    assert exc.value.code == 2


def _positive(value):
    return isinstance(value, (int, float)) and math.isfinite(value) and value > 0


def test_quick_run_writes_every_section(tmp_path):
    out = tmp_path / "sub" / "results.json"
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2")
    proc = subprocess.run([sys.executable, "-m", "benchmarks", "--quick", f"--output={out}"],
                          cwd=REPO, env=env, capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stderr[-3000:]
    results = json.loads(out.read_text())
    for section in ("meta", "matmul", "generator", "train_step", "pipeline", "memory", "targets"):
        assert section in results, section
    assert _positive(results["matmul"]["peak_gflops"])
    for row in results["generator"]["results"] + results["train_step"]["results"]:
        for key in ("images_per_s", "gflops", "median_s", "fraction_of_peak", "flops"):
            assert _positive(row[key]), (row["config"], key)
    assert {r["cache"] for r in results["pipeline"]["results"]} == {False, True}
    for row in results["pipeline"]["results"]:
        assert _positive(row["images_per_s"])
    assert _positive(results["memory"]["peak_rss_mb"])
    web = results["demo"]  # the web demo's response: skipped only without the [demo] extra
    assert "skipped" in web or (_positive(web["upload_to_strip"]["median_s"])
                                and _positive(web["age_photo"]["median_s"]) and web["faces"] == 1)
    assert "generator inference" in proc.stdout and "training step" in proc.stdout
    # batch 2 at 32x32 says nothing about the targets: no verdict is printed
    assert "targets: not judged (--quick" in proc.stdout and "MET" not in proc.stdout
    assert os.listdir(out.parent) == ["results.json"]  # atomic write: no temporary left


def test_target_verdicts():
    from benchmarks.__main__ import target_verdict

    assert target_verdict({"target": 1.3, "met": True, "best": 1.4, "best_config": "xla"}) == "MET"
    assert target_verdict({"target": 1.3, "met": False, "best": 1.42,
                           "best_config": "xla"}) == "met with xla only"
    assert target_verdict({"target": 0.75, "met": False, "best": 0.65,
                           "best_config": "default"}) == "not met"
    assert target_verdict({"target": 3.0, "met": False}) == "not met"


def test_determinism_compare_counts_results_and_differing_variables():
    from benchmarks.determinism import compare

    same = {"g/w": "a", "d/w": "b"}
    assert compare({0: same, 1: dict(same), 2: dict(same)}) == (1, {})
    distinct, differing = compare({0: same, 1: {"g/w": "a", "d/w": "x"},
                                   2: {"g/w": "y", "d/w": "x"}, 3: dict(same)})
    assert distinct == 3 and differing == {"d/w": 2, "g/w": 1}


@pytest.mark.parametrize("differing_run", [None, 1])
def test_determinism_tool_runs_fresh_processes_counts_results_and_cleans_up(
        tmp_path, monkeypatch, capsys, differing_run):
    """The tool's own flow, on stand-in runs (a Python one-liner that writes what its
    "checkpoint" holds): N processes two at a time with progress lines, the count of distinct
    results, and its work folder removed when they agree, kept and named when they differ.
    (That fresh ``train_ipcgan.py --deterministic`` processes agree bit for bit is checked once,
    by tests/test_fault_tolerance.py's second run; not again here.)"""
    import tempfile

    from benchmarks import determinism

    def stand_in(args, data, ckpt):
        value = "other" if differing_run is not None and ckpt.endswith(f"run{differing_run:03d}") \
            else "same"
        # 1 MB of warnings on stderr, as a chatty TensorFlow might print: must not block the run
        return [sys.executable, "-c", f"import os, sys; sys.stderr.write('W' * 2**20); "
                f"os.makedirs({ckpt!r}); open(os.path.join({ckpt!r}, 'value'), 'w').write({value!r})"]

    def digests(prefix):
        with open(os.path.join(os.path.dirname(prefix), "value")) as f:
            return {"generator/w": f.read(), "step": "1"}

    monkeypatch.setattr(determinism, "run_command", stand_in)
    monkeypatch.setattr(determinism, "variable_digests", digests)
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    result = []
    tool = threading.Thread(target=lambda: result.append(determinism.main(["--runs=3",
                                                                          "--jobs=2"])),
                            daemon=True)
    tool.start()
    tool.join(timeout=300)
    assert not tool.is_alive(), "the tool hung (a run blocked on a full stderr pipe?)"
    status = result[0]
    out = capsys.readouterr().out
    assert "run 3/3 done" in out
    work = list(tmp_path.glob("determinism_*"))
    if differing_run is None:
        assert status == 0 and "3 fresh processes, 1 step(s) at 16 px, batch 2: 1 distinct " \
            "result(s)" in out
        assert not work and "runs kept" not in out
    else:
        assert status == 1 and ": 2 distinct result(s)" in out
        assert "generator/w: differs from the first run's in 1 run(s)" in out
        assert len(work) == 1 and f"runs kept in {work[0]}" in out
        assert sorted(p.name for p in work[0].iterdir()) == [
            "data", "run000", "run000.stderr", "run001", "run001.stderr", "run002",
            "run002.stderr"]


def test_train_step_section_times_the_discriminator_width_it_is_given():
    """--d_output_channels=1 (the bundled model's discriminator) builds D with a 1-channel last
    layer and counts its FLOPs: dis_4's 4x4 conv over 512 inputs at (S/8)^2 positions, once
    per output channel, in three D forwards and backwards (kernel and input gradients) of the D
    update and one forward + input-gradient backward of the G update."""
    from benchmarks import sections

    trainer, _ = sections.make_trainer(sections.DEFAULT, 16, d_output_channels=1)
    assert tuple(trainer.discriminator.dis_4.kernel.shape) == (4, 4, 512, 1)
    wide = flops.train_step_flops(128, 1, output_channels=512)["total"]
    narrow = flops.train_step_flops(128, 1, output_channels=1)["total"]
    dis_4_forward_per_channel = 2 * 16 * 16 * 4 * 4 * 512
    # D update: 3 x (forward + kernel grad + input grad); G update: forward + input grad.
    assert wide - narrow == (3 * 3 + 2) * dis_4_forward_per_channel * 511


@pytest.mark.parametrize("k", [3, 4, 7])
def test_forward_conv_input_gradient_equals_tf_gradient(k):
    """benchmarks.conv_gradient's rewrite: the input gradient of a stride-1 SAME convolution
    as a forward convolution of the output gradient (kernel flipped, channels swapped, padded
    the other way round) equals TF's own, for odd and even kernels (TF pads an even kernel
    unevenly), and the kernel gradient is TF's."""
    import numpy as np
    import tensorflow as tf
    from benchmarks import conv_gradient

    rng = np.random.default_rng(k)
    x = tf.constant(rng.normal(size=(2, 9, 9, 3)), tf.float64)
    kernel = tf.constant(rng.normal(size=(k, k, 3, 5)), tf.float64)
    dy = tf.constant(rng.normal(size=(2, 9, 9, 5)), tf.float64)
    with tf.GradientTape(persistent=True) as tape:
        tape.watch([x, kernel])
        ours = conv_gradient.conv_same_stride1(x, kernel)
        theirs = tf.nn.conv2d(x, kernel, 1, "SAME")
    np.testing.assert_allclose(ours, theirs, rtol=1e-12)
    for a, b in zip(tape.gradient(ours, [x, kernel], output_gradients=dy),
                    tape.gradient(theirs, [x, kernel], output_gradients=dy)):
        np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-10)


def test_tensorflow_gradients_comparison_patches_the_rewrites_and_restores_them():
    """benchmarks.conv_gradient --compare=project_rewrites: under the patch a traced gradient of
    AlexNet conv1's shape is TF's own (no space-to-depth blocks in the graph); afterwards the
    project's rewrite is back."""
    import tensorflow as tf
    from benchmarks import conv_gradient
    from face_aging import gradient_rewrites, layers

    def gradient_op_types():
        @tf.function
        def grad(x, kernel):
            with tf.GradientTape() as tape:
                tape.watch(x)
                y = gradient_rewrites.conv2d(x, kernel, 4, "VALID")
            return tape.gradient(y, x)

        graph = grad.get_concrete_function(tf.TensorSpec([1, 23, 23, 3]),
                                           tf.TensorSpec([11, 11, 3, 4])).graph
        return {op.type for op in graph.get_operations()}

    saved = (gradient_rewrites.conv2d, gradient_rewrites.matmul, layers.Conv.call_on_parts)
    with conv_gradient.tensorflow_gradients():
        assert "DepthToSpace" not in gradient_op_types()
    assert (gradient_rewrites.conv2d, gradient_rewrites.matmul, layers.Conv.call_on_parts) == saved
    assert "DepthToSpace" in gradient_op_types()
