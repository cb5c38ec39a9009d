"""face_aging.registry: every model's roles resolve, the commands refuse another model's flags
through it, and no module compares model names itself."""
import ast
import pathlib

import pytest
from absl import flags

from conftest import REPO
from face_aging import registry
from face_aging.errors import FaceAgingError


def test_every_role_of_every_model_resolves():
    for name in registry.names():
        entry = registry.get(name)
        for role, target in entry.roles.items():
            assert registry.resolve(name, role) is not None, (name, role, target)
        for command, only in entry.only_flags.items():
            assert command in entry.roles and only, (name, command)


def test_roles_by_model():
    assert registry.names() == ["ipcgan", "cyclegan", "alexnet"]
    for role in ("train", "define_flags", "config_from_flags", "config"):
        assert registry.names(role) == ["ipcgan", "cyclegan", "alexnet"]
    for role in ("age", "demo", "load", "export", "evaluate", "default_weights"):
        assert registry.names(role) == ["ipcgan", "cyclegan"]
    assert registry.names("evaluate_cross_age") == ["ipcgan"]


def test_unknown_models_and_roles_are_one_line():
    with pytest.raises(FaceAgingError, match=r"^unknown model 'stylegan'; known: ipcgan, "
                                             r"cyclegan, alexnet$"):
        registry.get("stylegan")
    with pytest.raises(FaceAgingError, match=r"^model 'alexnet' has no 'age'; models with one: "
                                             r"ipcgan, cyclegan$"):
        registry.resolve("alexnet", "age")


def test_another_models_flag_is_refused():
    values = flags.FlagValues()
    registry.define_model_flag(values, "export", "")
    flags.DEFINE_integer("age_groups", None, "", flag_values=values)
    flags.DEFINE_bool("old_to_young", True, "", flag_values=values)
    values(["export", "--model=cyclegan", "--age_groups=5"])
    assert registry.foreign_flags("export", "cyclegan", values) == ["--age_groups"]
    with pytest.raises(FaceAgingError, match=r"^--age_groups cannot be used with "
                                             r"--model=cyclegan$"):
        registry.check_model_flags("export", values)
    assert registry.model_flags("export", "cyclegan", values) == {"old_to_young": True}
    values.unparse_flags()
    values(["export", "--noold_to_young"])
    assert values.model == "ipcgan"
    with pytest.raises(FaceAgingError, match="--old_to_young cannot be used with --model=ipcgan"):
        registry.check_model_flags("export", values)


#: Model names as the code spells them; a comparison with one is dispatch outside the registry.
MODEL_NAMES = {"ipcgan", "cyclegan", "alexnet", "IPCGAN", "CycleGAN", "AlexNet"}


def _name_comparisons(path):
    tree = ast.parse(path.read_text(), str(path))
    for node in ast.walk(tree):
        if isinstance(node, ast.Compare) and all(isinstance(op, (ast.Eq, ast.NotEq))
                                                 for op in node.ops):
            for operand in [node.left, *node.comparators]:
                if isinstance(operand, ast.Constant) and operand.value in MODEL_NAMES:
                    yield f"{path.relative_to(REPO)}:{node.lineno}"


def test_no_module_dispatches_on_a_model_name():
    """``if FLAGS.model == "cyclegan"`` and the like: the registry dispatches instead."""
    paths = sorted(pathlib.Path(REPO, "face_aging").rglob("*.py")) + sorted(REPO.glob("*.py"))
    found = [hit for path in paths for hit in _name_comparisons(path)]
    assert found == []
