"""A non-editable install (``pip install .``, no ``-e``) works without the checkout: test.py's
job runs from another folder with the bundled generator and the example faces that ship as
package data, and every console script of pyproject.toml is installed and answers --help
without TensorFlow."""
import os
import shutil
import subprocess
import sys
import tomllib

import pytest

from conftest import REPO

#: What a wheel is built from: the repository as it is (its links between checkpoints/bundled,
#: face_aging/examples and images/ included), without tests, docs or build leftovers.
SOURCES = ("pyproject.toml", "README.md", "face_aging", "images", "checkpoints")

#: On PYTHONPATH before the install: importing TensorFlow fails loudly.
NO_TENSORFLOW = 'raise RuntimeError("TensorFlow was imported")\n'


def _scripts():
    with open(REPO / "pyproject.toml", "rb") as f:
        return tomllib.load(f)["project"]["scripts"]


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    """``pip install --no-deps --target SITE`` of a copy of the repository (no ``-e``)."""
    root = tmp_path_factory.mktemp("install")
    source = root / "source"
    source.mkdir()
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc", "build", "*.egg-info")
    for name in SOURCES:
        path = REPO / name
        if path.is_dir():
            shutil.copytree(path, source / name, symlinks=True, ignore=ignore)
        else:
            shutil.copy2(path, source / name)
    site = root / "site"
    # The installed setuptools builds it (no build isolation: no download).
    result = subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--no-deps",
                             "--no-build-isolation", "--no-warn-script-location",
                             "--target", str(site), str(source)],
                            capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    assert not (site / "face_aging" / "examples" / "test").is_symlink()
    return site


def _env(site, *first):
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env["PYTHONPATH"] = os.pathsep.join([*map(str, first), str(site)])
    return env


def test_the_installed_test_job_ages_the_packaged_faces(installed, tmp_path):
    """Run from a folder without images/ or checkpoints/: the bundled generator and the
    packaged example faces are the defaults, one strip per example face."""
    examples = installed / "face_aging" / "examples" / "test"
    faces = sorted(os.path.splitext(name)[0] for name in os.listdir(examples))
    assert faces and len(faces) == len(os.listdir(REPO / "images" / "test"))
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    result = subprocess.run([sys.executable, "-m", "face_aging.apps.age", "--save_dir=out"],
                            cwd=elsewhere, env=_env(installed), capture_output=True, text=True,
                            timeout=600)
    assert result.returncode == 0, (result.stdout[-2000:], result.stderr[-2000:])
    processed = [line for line in result.stdout.splitlines() if line.startswith("ok: ")]
    assert len(processed) == len(faces)
    assert all(line.startswith(f"ok: {examples}{os.sep}") for line in processed), processed
    strips = sorted(n[:-len("_strip.png")] for n in os.listdir(elsewhere / "out")
                    if n.endswith("_strip.png"))
    assert strips == faces


@pytest.mark.parametrize("script", sorted(_scripts()))
def test_every_console_script_is_installed_and_answers_help_without_tensorflow(
        installed, tmp_path, script):
    blocker = tmp_path / "blocker"
    (blocker / "tensorflow").mkdir(parents=True)
    (blocker / "tensorflow" / "__init__.py").write_text(NO_TENSORFLOW)
    path = installed / "bin" / script
    assert path.is_file(), f"{script} was not installed"
    result = subprocess.run([sys.executable, str(path), "--help"], cwd=tmp_path,
                            env=_env(installed, blocker), capture_output=True, text=True,
                            timeout=300)
    assert result.returncode in (0, 1) and "Traceback" not in result.stderr, \
        result.stderr[-2000:]  # absl exits 1 after --help
    assert "--verbose" in result.stdout or "--[no]verbose" in result.stdout, result.stdout[-1500:]


@pytest.mark.parametrize("script", sorted(_scripts()))
def test_every_console_script_answers_a_bad_flag_in_one_line(installed, tmp_path, script):
    blocker = tmp_path / "blocker"
    (blocker / "tensorflow").mkdir(parents=True)
    (blocker / "tensorflow" / "__init__.py").write_text(NO_TENSORFLOW)
    result = subprocess.run([sys.executable, str(installed / "bin" / script), "--no_such_flag"],
                            cwd=tmp_path, env=_env(installed, blocker), capture_output=True,
                            text=True, timeout=300)
    lines = result.stderr.splitlines()
    assert result.returncode == 2 and len(lines) == 1, result.stderr[-2000:]
    if lines[0].endswith("(see --helpshort)"):  # absl; argparse names a missing argument first
        assert "no_such_flag" in lines[0], lines
    else:
        assert lines[0].endswith("(see --help)") and ": error: " in lines[0], lines
