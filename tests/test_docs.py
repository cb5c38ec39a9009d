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


# Dotted names and commands the docs give: every module, attribute and script they name exists
# (a module moved in a refactor leaves no stale path behind). Read from the sources: nothing
# is imported, so no TensorFlow.
DOTTED = re.compile(r"\bface_aging(?:\.[A-Za-z_][A-Za-z0-9_]*)+")
COMMAND = re.compile(r"\bpython3? (-m )?([A-Za-z_][A-Za-z0-9_./]*)")


def _module_file(name):
    """The source file of module ``name`` of the repository, or None."""
    path = REPO.joinpath(*name.split("."))
    for candidate in (path.with_suffix(".py"), path / "__init__.py", path / "__main__.py"):
        if candidate.is_file():
            return candidate
    return None


def _defined(body):
    """``{name: node}`` of what a module or class body defines or imports."""
    import ast

    names = {}
    for node in body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names[node.name] = node
        elif isinstance(node, (ast.Assign, ast.AnnAssign)):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            for target in targets:
                for leaf in ast.walk(target):
                    if isinstance(leaf, ast.Name):
                        names[leaf.id] = node
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            for alias in node.names:
                names[(alias.asname or alias.name).split(".")[0]] = node
        elif isinstance(node, (ast.If, ast.Try)):
            names.update(_defined(node.body))
    return names


def _resolves(dotted):
    import ast

    parts = dotted.split(".")
    for cut in range(len(parts), 0, -1):
        source = _module_file(".".join(parts[:cut]))
        if source is None:
            continue
        body = ast.parse(source.read_text(encoding="utf-8")).body
        for attribute in parts[cut:]:
            node = _defined(body).get(attribute)
            if node is None:
                return False
            if not isinstance(node, ast.ClassDef):
                return True  # an attribute of a function or a value: not followed
            body = node.body
        return True
    return False


def test_module_paths_and_commands_in_the_docs_exist():
    missing = []
    for path in DOCS:
        with open(path, encoding="utf-8") as f:
            for number, line in enumerate(f, 1):
                where = f"{os.path.relpath(path, REPO)}:{number}"
                missing += [f"{where}: {name}" for name in DOTTED.findall(line)
                            if not _resolves(name)]
                for module_flag, target in COMMAND.findall(line):
                    if module_flag and target.split(".")[0] in ("face_aging", "benchmarks"):
                        if _module_file(target) is None:
                            missing.append(f"{where}: python -m {target}")
                    elif not module_flag and target.endswith(".py"):
                        if not (REPO / target).is_file():
                            missing.append(f"{where}: python {target}")
    assert not missing, "\n".join(missing)


def test_the_path_check_catches_a_moved_module():
    assert _resolves("face_aging.engine.loop.run")
    assert _resolves("face_aging.images.read_image")
    assert not _resolves("face_aging.training_loop")
    assert not _resolves("face_aging.inference.read_image_rgb")
    assert not _resolves("face_aging.engine.setup.write_json_atomic")
