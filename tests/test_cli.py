"""The command line's first hour: --help of every entry point answers without TensorFlow,
a bad flag ends with exactly one line, TensorFlow's C++ start-up lines are hidden unless
--verbose (face_aging.cli, face_aging.runtime_env)."""
import os
import subprocess
import sys

import pytest

from conftest import REPO
from face_aging import cli, runtime_env

#: Runs an entry point in a fresh process as ``python SCRIPT`` / ``python -m MODULE`` would,
#: then reports whether TensorFlow was imported.
RUNNER = r"""
import os, runpy, sys
target, args = sys.argv[1], sys.argv[2:]
sys.argv = [target] + args
code = 0
try:
    if target.endswith(".py"):
        sys.path.insert(0, os.path.dirname(os.path.abspath(target)))
        runpy.run_path(target, run_name="__main__")
    else:
        sys.path.insert(0, os.getcwd())
        runpy.run_module(target, run_name="__main__", alter_sys=True)
except SystemExit as e:
    code = e.code
    if isinstance(code, str):
        print(code, file=sys.stderr)
        code = 1
sys.stdout.flush()
print("[exit=%s tensorflow=%s]" % (code, "tensorflow" in sys.modules))
"""

#: Every entry point, with a flag its help must show.
ENTRY_POINTS = [
    ("train_ipcgan.py", "--fea_layer_name"),
    ("train_cyclegan.py", "--young_dir"),
    ("test.py", "--test_data_dir"),
    ("evaluate.py", "--max_faces_per_group"),
    ("face_aging.pretrain", "--time_budget_minutes"),
    ("face_aging.export", "--tflite"),
    ("face_aging.data.prepare", "--dataset"),
    ("face_aging.bundle", "--reference_image"),
    ("face_aging.checkpoints", "--tf1_checkpoint"),
    ("face_aging.pretrained_formats", "--bvlc_npy"),
    ("scripts/measure_judges.py", "--identity_faces"),
    ("scripts/measure_face_margin.py", "--utkface_dir"),
    ("scripts/measure_corner_artefact.py", "--references"),
    ("scripts/plot_training_curves.py", "--phase"),
    ("benchmarks", "--only"),
    ("benchmarks.determinism", "--runs"),
]
ARGPARSE = {"face_aging.bundle", "scripts/plot_training_curves.py", "benchmarks",
            "benchmarks.determinism"}


def run_entry(target, *args, env=None, timeout=300):
    """``(exit status, TensorFlow imported, stdout without the runner's line, stderr)``."""
    result = subprocess.run([sys.executable, "-c", RUNNER, target, *args], cwd=REPO,
                            capture_output=True, text=True, timeout=timeout,
                            env=dict(os.environ, **(env or {})))
    *out, status = result.stdout.rstrip("\n").split("\n")
    assert status.startswith("[exit="), (result.stdout[-2000:], result.stderr[-2000:])
    code, loaded = status[len("[exit="):-1].split(" tensorflow=")
    return (int(code) if code not in ("None", "") else 0), loaded == "True", \
        "\n".join(out), result.stderr


@pytest.mark.parametrize("target, flag", ENTRY_POINTS, ids=[t for t, _ in ENTRY_POINTS])
def test_help_answers_without_importing_tensorflow(target, flag):
    helps = ["--help"] if target in ARGPARSE else ["--help", "--helpshort"]
    for help_flag in helps:
        code, loaded, out, err = run_entry(target, help_flag)
        assert not loaded, f"{target} {help_flag} imported TensorFlow"
        assert flag in out, (target, help_flag, out[-1500:])
        assert "--verbose" in out or "--[no]verbose" in out, (target, help_flag, out[-1500:])
        assert code in (0, 1) and "Traceback" not in err, err[-1500:]  # absl exits 1 after help


def _tiny_lists(tmp_path):
    from conftest import make_list_dataset

    return make_list_dataset(tmp_path / "data", per_group=1, size=8)


# (entry point, arguments, the one line; "{tmp}" is the test's folder)
BAD_FLAGS = [
    ("train_cyclegan.py", ["--crop_size=30", "--young_dir={tmp}", "--old_dir={tmp}"],
     "error: flag --crop_size=30: --crop_size must be a multiple of 4, at least 32 (the "
     "PatchGAN's smallest input) (see --helpshort)"),
    ("train_cyclegan.py", ["--gan_mode=wgan", "--young_dir={tmp}", "--old_dir={tmp}"],
     "error: flag --gan_mode=wgan: value should be one of <lsgan|vanilla> (see --helpshort)"),
    ("test.py", ["--interpolate=-1"],
     "error: flag --interpolate=-1: -1 is not a non-negative integer (see --helpshort)"),
    ("test.py", ["--no_such_flag"], "error: Unknown command line flag 'no_such_flag' "
     "(see --helpshort)"),
    ("evaluate.py", ["--batch_size=many"], "evaluate.py: error: flag --batch_size=many: "
     "invalid literal for int() with base 10: 'many' (see --helpshort)"),
    ("evaluate.py", ["--list_dir={tmp}", "surplus"],
     "evaluate.py: error: unexpected arguments: surplus"),
    ("face_aging.pretrain", ["--list_dir={tmp}", "--output_dir={tmp}/o", "--class_balance=magic"],
     "pretrain: error: flag --class_balance=magic: value should be one of "
     "<weights|sampling|none> (see --helpshort)"),
    ("face_aging.pretrain", ["--output_dir={tmp}/o"], "pretrain: error: flag --list_dir=None: "
     "Flag --list_dir must have a value other than None. (see --helpshort)"),
    ("face_aging.pretrain", ["--list_dir={tmp}", "--output_dir={tmp}/o", "surplus"],
     "pretrain: error: unexpected arguments: surplus (see --helpshort)"),
    ("face_aging.export", ["--checkpoint_dir={tmp}"], "error: flag --output=None: Flag --output "
     "must have a value other than None. (see --helpshort)"),
    ("face_aging.data.prepare", ["--dataset=celeba", "--input={tmp}", "--output_dir={tmp}/o"],
     "prepare: error: flag --dataset=celeba: value should be one of "
     "<imdb_wiki|cacd|utkface|folder|cacd_vs|lag> (see --helpshort)"),
    ("face_aging.checkpoints", ["--output_dir={tmp}"], "error: flag --tf1_checkpoint=None: Flag "
     "--tf1_checkpoint must have a value other than None. (see --helpshort)"),
    ("face_aging.pretrained_formats", ["--bvlc_npy=x.npy", "--output_dir={tmp}",
                                       "--age_groups=1"],
     "error: flag --age_groups=1: --age_groups must be >= 2 (see --helpshort)"),
    ("scripts/measure_judges.py", ["--identity_faces=some"], "error: flag --identity_faces=some: "
     "invalid literal for int() with base 10: 'some' (see --helpshort)"),
    ("scripts/measure_face_margin.py", ["--utkface_faces=x"], "error: flag --utkface_faces=x: "
     "invalid literal for int() with base 10: 'x' (see --helpshort)"),
    ("face_aging.demo", ["--port=abc"], "demo: error: flag --port=abc: invalid literal for int() "
     "with base 10: 'abc' (see --helpshort)"),
    ("face_aging.data.framing", ["--limit=x"], "python -m face_aging.data.framing: error: "
     "argument --limit: invalid int value: 'x' (see --help)"),
    ("face_aging.metrics.verification", ["--dlib", "--pairs=p", "--batch_size=1"],
     "python -m face_aging.metrics.verification: error: --batch_size must be >= 2 (see --help)"),
    ("face_aging.bundle", [], "python -m face_aging.bundle: error: the following arguments are "
     "required: --checkpoint_dir (see --help)"),
    ("scripts/plot_training_curves.py", ["{tmp}"], "plot_training_curves.py: error: the "
     "following arguments are required: --output (see --help)"),
    ("benchmarks", ["--repeats=some"], "python -m benchmarks: error: argument --repeats: "
     "invalid int value: 'some' (see --help)"),
    ("benchmarks.determinism", ["--runs=x"], "python -m benchmarks.determinism: error: "
     "argument --runs: invalid int value: 'x' (see --help)"),
]


@pytest.mark.parametrize("target, args, line", BAD_FLAGS,
                         ids=[f"{t} {' '.join(a)}" for t, a, _ in BAD_FLAGS])
def test_a_bad_flag_is_exactly_one_line(tmp_path, target, args, line):
    code, loaded, out, err = run_entry(target, *[a.format(tmp=tmp_path) for a in args])
    assert err.splitlines() == [line.format(tmp=tmp_path)], err[-2000:]
    assert code == cli.EXIT_USAGE or (target == "evaluate.py" and code == 1)
    assert not loaded  # answered before TensorFlow loads


@pytest.mark.parametrize("flag, line", [
    ("--batch_size=1", "error: flag --batch_size=1: --batch_size must be >= 2 (batch "
                       "statistics need two faces) (see --helpshort)"),
    ("--fea_layer_name=conv9", "error: flag --fea_layer_name=conv9: value should be one of "
                               "<conv3|conv4|conv5|pool5|fc6|fc7> (see --helpshort)"),
    ("--gan_loss_weight=-1", "error: flag --gan_loss_weight=-1.0: --gan_loss_weight must be "
                             ">= 0 (see --helpshort)"),
    ("--image_size=100", "error: flag --image_size=100: --image_size must be a multiple of 8, "
                         "at least 16 (see --helpshort)"),
    ("--bogus=1", "error: Unknown command line flag 'bogus' (see --helpshort)"),
])
def test_train_ipcgan_bad_flag_is_exactly_one_line(tmp_path, flag, line):
    lists = _tiny_lists(tmp_path)
    code, loaded, _, err = run_entry("train_ipcgan.py", f"--list_dir={lists}",
                                     "--allow_random_alexnet", "--dry_run", flag)
    assert err.splitlines() == [line] and code == cli.EXIT_USAGE and not loaded, err[-2000:]


def test_two_bad_train_ipcgan_flags_share_one_line(tmp_path):
    code, _, _, err = run_entry("train_ipcgan.py", f"--list_dir={tmp_path / 'none'}",
                                "--batch_size=1", "--allow_random_alexnet")
    missing = f"{tmp_path / 'none'}/train.txt, {tmp_path / 'none'}/train_label_pair.txt"
    assert err.splitlines() == [
        "error: flag --batch_size=1: --batch_size must be >= 2 (batch statistics need two "
        f"faces); flags list_dir={tmp_path / 'none'}, source_file=None, root_folder=None: "
        f"missing {missing}: prepare a dataset with `python -m face_aging.data.prepare` and "
        "pass its folder as --list_dir (see --helpshort)"], err
    assert code == cli.EXIT_USAGE


# --------------------------------------------------------------------------- quiet TensorFlow

NOISE = ["WARNING: All log messages before absl::InitializeLog() is called are written to STDERR",
         "I0000 00:00:1796173540.734806    8635 port.cc:153] oneDNN custom operations are on.",
         "I0000 00:00:1796173540.735299    8635 cudart_stub.cc:31] Could not find cuda drivers on "
         "your machine, GPU will not be used.",
         "I0000 00:00:1796173582.165214   10435 cpu_feature_guard.cc:227] This TensorFlow binary "
         "is optimized to use available CPU instructions in performance-critical operations.",
         "To enable the following instructions: AVX2 AVX512F FMA, in other operations, rebuild "
         "TensorFlow with the appropriate compiler flags.",
         "E0000 00:00:1796173590.243545   10435 cuda_platform.cc:52] failed call to cuInit: "
         "INTERNAL: CUDA error: Failed call to cuInit: UNKNOWN ERROR (303)"]


def test_start_up_noise_is_dropped_and_everything_else_kept():
    kept = ["E0000 00:00:1796173590.243545   10435 op_kernel.cc:1] a real kernel error",
            "F0000 00:00:1.5 1 check.cc:3] Check failed: x", "UserWarning: something",
            "Traceback (most recent call last):"]
    text = "\n".join(NOISE[:3] + kept[:2] + NOISE[3:] + kept[2:]) + "\n"
    assert runtime_env.without_startup_noise(text).splitlines() == kept


def test_captured_stderr_passes_other_lines_on(capfd):
    with runtime_env.CapturedStderr():
        os.write(2, ("\n".join(NOISE) + "\nkeep me\n").encode())
        print("python line", file=sys.stderr)  # (pytest's sys.stderr is not fd 2: any order)
    assert sorted(capfd.readouterr().err.splitlines()) == ["keep me", "python line"]
    with pytest.raises(RuntimeError):  # an error during the import: everything is shown
        with runtime_env.CapturedStderr():
            os.write(2, (NOISE[1] + "\n").encode())
            raise RuntimeError("import failed")
    assert capfd.readouterr().err.splitlines() == [NOISE[1]]


def test_a_command_that_loads_tensorflow_prints_only_its_own_line(tmp_path):
    """The whole stderr of a failing command that imports TensorFlow (and runs its CUDA
    probe) is its one error line; with --verbose or FACE_AGING_VERBOSE=1 TensorFlow's
    start-up lines are there too."""
    command = [sys.executable, "-m", "face_aging.checkpoints",
               f"--tf1_checkpoint={tmp_path / 'none'}", f"--output_dir={tmp_path / 'out'}"]
    env = {k: v for k, v in os.environ.items() if k not in ("TF_CPP_MIN_LOG_LEVEL",
                                                            runtime_env.VERBOSE_ENV)}
    quiet = subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True,
                           timeout=300)
    assert quiet.returncode == 1
    assert len(quiet.stderr.splitlines()) == 1 and quiet.stderr.startswith("error: "), \
        quiet.stderr[-3000:]
    for verbose_env, flag in (({}, ["--verbose"]), ({runtime_env.VERBOSE_ENV: "1"}, [])):
        loud = subprocess.run(command + flag, cwd=REPO, env=dict(env, **verbose_env),
                              capture_output=True, text=True, timeout=300)
        lines = loud.stderr.splitlines()
        assert loud.returncode == 1 and lines[-1] == quiet.stderr.strip()
        assert any(runtime_env.STARTUP_NOISE.match(line) for line in lines[:-1]), loud.stderr


def test_quiet_import_leaves_the_runtime_configurable():
    """The quiet import lists the physical devices (the CUDA probe) but does not start the
    runtime: thread counts and logical devices can still be set (--deterministic,
    --logical_cpu_devices)."""
    code = ("from face_aging import runtime_env\n"
            "assert runtime_env.quiet_tensorflow()\n"
            "import tensorflow as tf\n"
            "tf.config.threading.set_intra_op_parallelism_threads(1)\n"
            "cpu = tf.config.list_physical_devices('CPU')[0]\n"
            "tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)\n"
            "print(tf.config.threading.get_intra_op_parallelism_threads(), "
            "len(tf.config.list_logical_devices('CPU')))\n")
    env = {k: v for k, v in os.environ.items() if k != runtime_env.VERBOSE_ENV}
    result = subprocess.run([sys.executable, "-c", code], cwd=REPO, env=env,
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.split() == ["1", "2"]
    assert not [line for line in result.stderr.splitlines()
                if runtime_env.STARTUP_NOISE.match(line)], result.stderr


# --------------------------------------------------------------------------- flags, defined once

def _defined(module_name):
    import importlib

    from absl import flags

    values = flags.FlagValues()
    importlib.import_module(module_name).define_flags(values)
    return values


TRAINING_FLAGS = ["face_aging.ipcgan.flags", "face_aging.cyclegan.flags",
                  "face_aging.alexnet.flags"]


def test_the_training_flag_modules_define_on_the_flag_values_they_are_given():
    """The three trainers' flag modules are imported together (no global FLAGS): each defines
    its flags on the FlagValues it gets, and the run flags come from engine.flags with one
    help text."""
    from absl import flags

    from face_aging.engine import flags as run_flags

    defined = [_defined(m) for m in TRAINING_FLAGS]
    assert not {"young_dir", "fea_layer_name", "list_dir"} & set(flags.FLAGS)
    for values in defined:
        shared = [n for n in run_flags.RUN_FLAGS if n in values]
        assert {"seed", "deterministic", "max_steps", "nan_policy", "mixed_precision",
                "checkpoint_dir", "save_interval", "log_interval"} <= set(shared)
        for name in shared:
            if name != "mixed_precision":
                assert run_flags.RUN_FLAGS[name][1] in values[name].help, name
    assert "xla" in defined[0] and "xla" in defined[2] and "dry_run" in defined[1]


def test_old_spellings_are_aliases_of_the_canonical_names():
    pretrain = _defined("face_aging.alexnet.flags")
    pretrain(["pretrain", "--list_dir=l", "--output_dir=o", "--save_every=7", "--log_every=3",
              "--nojit_compile"])
    assert (pretrain.checkpoint_dir, pretrain.save_interval, pretrain.log_interval,
            pretrain.xla) == ("o", 7, 3, False)
    from face_aging.alexnet.flags import config_from_flags

    config = config_from_flags(pretrain)
    assert (config.output_dir, config.save_every, config.log_every, config.jit_compile) == \
        ("o", 7, 3, False)
    cyclegan = _defined("face_aging.cyclegan.flags")
    cyclegan(["train_cyclegan.py", "--young_dir=.", "--old_dir=.", "--lr=0.5"])
    assert cyclegan.learning_rate == 0.5
    from face_aging.cyclegan.flags import config_from_flags as cyclegan_config

    assert cyclegan_config(cyclegan).lr == 0.5


@pytest.mark.parametrize("module, config, bad, line", [
    ("face_aging.ipcgan", "TrainConfig", dict(batch_size=1),
     "--batch_size must be >= 2 (batch statistics need two faces)"),
    ("face_aging.ipcgan", "TrainConfig", dict(save_interval=0), "--save_interval must be >= 1"),
    ("face_aging.cyclegan", "CycleGANConfig", dict(crop_size=30),
     "--crop_size must be a multiple of 4, at least 32 (the PatchGAN's smallest input)"),
    ("face_aging.cyclegan", "CycleGANConfig", dict(lr=-1.0), "--learning_rate must be >= 0"),
    ("face_aging.alexnet", "PretrainConfig", dict(dropout=1.0), "--dropout must be in [0, 1)"),
    ("face_aging.alexnet", "PretrainConfig", dict(save_every=0), "--save_interval must be >= 1"),
])
def test_one_rule_table_checks_flags_and_configs(tmp_path, module, config, bad, line):
    """A rule is written once, in the model's config module: a config built in code breaks it
    with the same line a flag gets (absl's ``flag --NAME=VALUE:`` in front)."""
    import importlib

    config_module = importlib.import_module(f"{module}.config")
    base = dict(list_dir="l", output_dir="o") if config == "PretrainConfig" else {}
    assert config_module.problems(getattr(config_module, config)(**base)) == []
    assert config_module.problems(getattr(config_module, config)(**base, **bad)) == [line]
    from absl import flags

    values = _defined(f"{module}.flags")
    field_to_flag = {v: k for k, v in getattr(config_module, "FIELDS", {}).items()}
    (field, value), = bad.items()
    args = [f"--{field_to_flag.get(field, field)}={value}"]
    for name in ("train.txt", "train_label_pair.txt"):
        (tmp_path / name).write_text("")
    args += {"face_aging.ipcgan": ["--allow_random_alexnet", f"--list_dir={tmp_path}"],
             "face_aging.cyclegan": [f"--young_dir={tmp_path}", f"--old_dir={tmp_path}"],
             "face_aging.alexnet": ["--list_dir=l", "--output_dir=o"]}[module]
    with pytest.raises(flags.IllegalFlagValueError) as error:
        values(["prog", *args])
    lines = str(error.value).splitlines()
    flag = args[0].split("=")[0]
    assert len(lines) == 1 and lines[0].startswith(f"flag {flag}=")
    assert lines[0].endswith(f": {line}")
