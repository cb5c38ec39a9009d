"""The documentation does not drift from what is installed: every version it pins is the one
requirements.txt (or the [eval] extra) pins, and the versions its prose names agree."""
import glob
import os
import re

from conftest import REPO
from face_aging.metrics.judges import EVAL_PACKAGES

DOCS = [str(REPO / "README.md")] + sorted(glob.glob(str(REPO / "docs" / "*.md"))) + sorted(
    glob.glob(str(REPO / "checkpoints" / "*.md")))
PIN = re.compile(r"(?<![\w.-])([A-Za-z][A-Za-z0-9_.-]*)==(\d[0-9A-Za-z.]*[0-9A-Za-z])")
#: Names prose uses for pinned packages: "TensorFlow 2.21" must be the pinned 2.21.x.
PROSE_NAMES = {"tensorflow": "TensorFlow", "keras": "Keras"}


def _normal(name):
    return name.lower().replace("_", "-")


def pinned_versions():
    """``{package: version}`` of requirements.txt and the evaluation extra's pins."""
    pins = {}
    with open(REPO / "requirements.txt") as f:
        for line in f:
            match = PIN.match(line.split("#")[0].strip())
            if match:
                pins[_normal(match.group(1))] = match.group(2)
    for spec in EVAL_PACKAGES:
        name, version = spec.split("==")
        pins.setdefault(_normal(name), version)
    return pins


def test_pins_in_the_docs_are_the_installed_pins():
    pins = pinned_versions()
    assert pins["tensorflow"] and pins["opencv-python-headless"].startswith("4.")
    found = []
    for path in DOCS:
        with open(path, encoding="utf-8") as f:
            for number, line in enumerate(f, 1):
                for name, version in PIN.findall(line):
                    where = f"{os.path.relpath(path, REPO)}:{number}"
                    assert _normal(name) in pins, f"{where} pins {name}, which nothing pins"
                    assert version == pins[_normal(name)], \
                        f"{where} says {name}=={version}, requirements pin {pins[_normal(name)]}"
                    found.append(name)
    assert found  # the check sees the docs' pins (docs/EVALUATION.md has some)


def test_versions_named_in_prose_match_the_pins():
    pins = pinned_versions()
    for package, prose in PROSE_NAMES.items():
        pattern = re.compile(rf"\b{prose} (\d+(?:\.\d+)+)")
        for path in DOCS:
            with open(path, encoding="utf-8") as f:
                text = f.read()
            for version in pattern.findall(text):
                assert (pins[package] + ".").startswith(version + "."), \
                    f"{os.path.relpath(path, REPO)} says {prose} {version}, pinned {pins[package]}"


def test_the_pin_check_catches_a_stale_pin():
    assert PIN.findall("the pinned `opencv-python-headless==5.0.0.93`) no") == [
        ("opencv-python-headless", "5.0.0.93")]
    assert PIN.findall("if groups == 1 and NR%10==0") == []
    assert pinned_versions()["opencv-python-headless"] != "5.0.0.93"
