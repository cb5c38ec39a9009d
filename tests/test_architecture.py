"""The architecture's rules (docs/ARCHITECTURE.md), checked statically: every file is parsed
with ``ast``; nothing of the project and no TensorFlow is imported, so the whole file runs in
a second or two.

Scanned: SOURCE = ``face_aging/``, ``benchmarks/``, ``scripts/``, ``images/`` and the top-level
``*.py`` (everything but ``tests/``); TESTS = ``tests/``, held to rule 2 only.

1. Models are peers. No module of ``face_aging/ipcgan``, ``face_aging/cyclegan`` or
   ``face_aging/alexnet`` imports another of the three: every ``import`` / ``from`` statement
   of a file counts (inside functions too, relative ones resolved), and so does an
   ``importlib.import_module`` / ``__import__`` of a literal name. The shared packages
   (``engine``, ``backbones``) import no model at all. A lazy ``"face_aging.x:attr"`` string
   (how the registry names a model's parts without importing them) appears only in
   ``face_aging/registry.py``.
2. No private name crosses modules. A private name has one leading underscore (dunders are
   not private). Checked: ``from m import _x``; ``m._x`` where ``m`` is a project module, or a
   name imported from one (``SomeClass._x``); ``getattr``/``setattr``/``hasattr``/``delattr``,
   ``monkeypatch.setattr``/``delattr`` and ``patch.object`` with ``(m, "_x")``; and
   ``monkeypatch.setattr("m._x", ...)`` / ``patch("m._x")``. Tests are held to it as well: a
   test that needs a private helper says that the helper should be public. Not seen statically:
   attributes of instances (``trainer._x``), modules a test loads by file path, third-party
   privates (Keras's ``optimizer._momentums``: not the project's to fix).
3. No function or method of SOURCE is over 80 lines: from its first decorator (its ``def``
   line if it has none) to its last line, docstring and comments included; a nested function
   counts on its own and as part of the function around it.
4. Each of these exists once:

   - the image reader: only ``face_aging/images.py`` calls ``cv2.imread`` / ``imreadmulti`` /
     ``imdecode``, ``PIL.Image.open``, ``tf.io.decode_image`` / ``png`` / ``jpeg`` / ``bmp`` /
     ``gif`` (or their ``tf.image`` aliases) or Keras's ``load_img``. Reading video frames
     (``cv2.VideoCapture``) is not reading an image file and is not checked;
   - the atomic writer: only ``face_aging/files.py`` calls ``os.replace``, ``os.rename``,
     ``os.renames``, ``shutil.move``, ``tempfile.mkstemp`` or ``tempfile.NamedTemporaryFile``
     (``pathlib``'s ``replace``/``rename`` cannot be told from ``str.replace`` and are not seen);
   - the ETA: one function has ``eta`` as a word of its name (``TrainingProgress.eta_seconds``
     in ``face_aging/progress.py``; words, not letters: ``__getattr__`` and ``metadata`` are not
     ETAs); only ``progress.py`` puts ``ETA`` in a string or imports ``tqdm``, and its bar draws
     times with ``format_duration`` (its own bar fields);
   - the non-finite guard: one ``guarded_step`` (``face_aging/engine/nonfinite.py``); no other
     function both calls an ``is_finite`` and ``tf.cond`` (a guard's check-and-undo);
   - the training loop: outside ``face_aging/engine/loop.py`` no ``for``/``while`` loop or
     comprehension calls a step (a function or method named ``step`` or ``*_step``:
     ``train_step``, ``reconstruction_step``, ``_one_step``; calls in functions defined inside
     the loop are not the loop's), no module but ``engine/signals.py`` and ``engine/loop.py``
     names ``StopSignal``, and every ``"train"`` role of ``face_aging/registry.py`` calls
     ``face_aging.engine.loop.run``;
   - the paste-back: one function whose name contains ``paste``, ``paste_back`` in
     ``face_aging/faces.py``.

   A justified exception is listed below, keyed by file, function and call, with its reason;
   an exception that no longer matches anything fails too, so the lists stay true.

Every failure line is ``file:line: what; what to do``.
"""
from __future__ import annotations

import ast
import functools
import re
from pathlib import Path
from typing import Callable, Dict, Iterator, List, Optional, Set, Tuple

import pytest

REPO = Path(__file__).resolve().parents[1]
PACKAGE = "face_aging"
MODELS = ("ipcgan", "cyclegan", "alexnet")
SHARED = ("engine", "backbones")  # every model builds on them: they import no model
MAX_FUNCTION_LINES = 80
THIS = "tests/test_architecture.py"

#: (file, function, call) -> why the call may stay outside face_aging/images.py. None is
#: needed: the demo's upload limit reads a header with images.image_size, the screenshot
#: script decodes with images.decode_image, and a video's frames are not image files.
IMAGE_READER_EXCEPTIONS: Dict[Tuple[str, str, str], str] = {}
#: (file, function, call) -> why the call may stay outside face_aging/files.py.
ATOMIC_WRITER_EXCEPTIONS: Dict[Tuple[str, str, str], str] = {
    ("face_aging/engine/setup.py", "probe_writable", "tempfile.mkstemp"):
        "a write probe: an empty file made and deleted at once to test a folder; no output",
}
#: (file, function) -> why a loop there may call a training step outside the engine's loop.
STEP_LOOP_EXCEPTIONS: Dict[Tuple[str, str], str] = {
    ("benchmarks/conv_gradient.py", "main"):
        "traces the IPCGAN step once per variant before timing it; trains nothing",
    ("benchmarks/memory_child.py", "main"):
        "the peak memory of N IPCGAN steps, in a child process; no checkpoint, log or guard",
    ("benchmarks/profiling.py", "profile_train_step"):
        "a profiler trace of N IPCGAN steps; no checkpoint, log or guard",
}

IMAGE_READERS = {"cv2.imread", "cv2.imreadmulti", "cv2.imdecode", "PIL.Image.open",
                 "keras.utils.load_img", "tensorflow.keras.utils.load_img"} | {
    f"tensorflow.{module}.decode_{kind}" for module in ("io", "image")
    for kind in ("image", "png", "jpeg", "bmp", "gif")}
ATOMIC_WRITERS = {"os.replace", "os.rename", "os.renames", "shutil.move", "tempfile.mkstemp",
                  "tempfile.NamedTemporaryFile"}
STEP_NAME = re.compile(r"(^|_)step$")
LAZY_TARGET = re.compile(r"^face_aging(\.[A-Za-z_]\w*)*:[A-Za-z_]\w*(\.[A-Za-z_]\w*)*$")
LOOPS = (ast.For, ast.AsyncFor, ast.While, ast.ListComp, ast.SetComp, ast.DictComp,
         ast.GeneratorExp)
FUNCTIONS = (ast.FunctionDef, ast.AsyncFunctionDef)


# ----------------------------------------------------------------------------- files

def _python_files(*folders: str) -> List[Path]:
    return sorted(p for folder in folders for p in (REPO / folder).rglob("*.py")
                  if "__pycache__" not in p.parts)


SOURCE = _python_files(PACKAGE, "benchmarks", "scripts", "images") + sorted(REPO.glob("*.py"))
TESTS = _python_files("tests")


def rel(path: Path) -> str:
    return path.relative_to(REPO).as_posix()


def module_names(path: Path) -> List[str]:
    """The dotted names ``path`` is imported by (a test's also from inside tests/, which pytest
    puts on sys.path: ``conftest``, ``test_inference``)."""
    names = []
    for root in (REPO, REPO / "tests"):
        if root in path.parents:
            parts = list(path.relative_to(root).with_suffix("").parts)
            parts = parts[:-1] if parts[-1] == "__init__" else parts
            names += [".".join(parts)] if parts else []
    return names


MODULES: Dict[str, Path] = {name: path for path in SOURCE + TESTS for name in module_names(path)}


@functools.lru_cache(maxsize=None)
def parse(path: Path) -> ast.Module:
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    for node in ast.walk(tree):
        for child in ast.iter_child_nodes(node):
            child.parent = node  # type: ignore[attr-defined]
    return tree


@functools.lru_cache(maxsize=None)
def nodes(path: Path) -> List[ast.AST]:
    return list(ast.walk(parse(path)))


def is_private(name: str) -> bool:
    return name.startswith("_") and not (name.startswith("__") and name.endswith("__"))


def function_of(node: ast.AST) -> str:
    """The qualified name of the function or class ``node`` is in (``<module>`` if none)."""
    names = []
    while node is not None:
        if isinstance(node, FUNCTIONS + (ast.ClassDef,)):
            names.append(node.name)
        node = getattr(node, "parent", None)
    return ".".join(reversed(names)) or "<module>"


def functions(path: Path) -> List[ast.AST]:
    return [n for n in nodes(path) if isinstance(n, FUNCTIONS)]


def strings(path: Path) -> Iterator[ast.Constant]:
    """String constants that are values (docstrings and other bare string statements are
    left out)."""
    for node in nodes(path):
        if (isinstance(node, ast.Constant) and isinstance(node.value, str)
                and not isinstance(getattr(node, "parent", None), ast.Expr)):
            yield node


def called_name(call: ast.Call) -> Optional[str]:
    func = call.func
    return func.id if isinstance(func, ast.Name) else getattr(func, "attr", None)


def report(problems: List[str], rule: str) -> None:
    problems = list(dict.fromkeys(problems))
    if problems:
        pytest.fail(f"{rule} ({len(problems)}):\n  " + "\n  ".join(problems), pytrace=False)


# ----------------------------------------------------------------------------- imports

class Imports:
    """A file's import statements (resolved to absolute module names) and the names they bind:
    to modules (``modules``) or to attributes of a module (``objects``)."""

    def __init__(self, path: Path):
        self.path = path
        package = module_names(path)[0].split(".")
        if path.name != "__init__.py":
            package = package[:-1]
        self.statements: List[Tuple[int, str, List[str]]] = []  # line, module, from-names
        self.modules: Dict[str, str] = {}
        self.objects: Dict[str, Tuple[str, str]] = {}
        for node in nodes(path):
            if isinstance(node, ast.Import):
                for alias in node.names:
                    self.statements.append((node.lineno, alias.name, []))
                    top = alias.name.split(".")[0]
                    self.modules[alias.asname or top] = alias.name if alias.asname else top
            elif isinstance(node, ast.ImportFrom):
                module = node.module or ""
                if node.level:
                    module = ".".join(package[:len(package) - node.level + 1]
                                      + ([node.module] if node.module else []))
                self.statements.append((node.lineno, module, [a.name for a in node.names]))
                for alias in node.names:
                    bound = alias.asname or alias.name
                    if f"{module}.{alias.name}" in MODULES:
                        self.modules[bound] = f"{module}.{alias.name}"
                    else:
                        self.objects[bound] = (module, alias.name)

    def targets(self) -> Iterator[Tuple[int, str]]:
        """Every module an import may load (``from a import b``: ``a`` and ``a.b``), and the
        literal names given to ``importlib.import_module`` / ``__import__``."""
        for line, module, names in self.statements:
            yield line, module
            for name in names:
                yield line, f"{module}.{name}"
        for node in nodes(self.path):
            if (isinstance(node, ast.Call) and self.qualified(node.func) in (
                    "importlib.import_module", "__import__") and node.args
                    and isinstance(node.args[0], ast.Constant)
                    and isinstance(node.args[0].value, str)):
                yield node.lineno, node.args[0].value

    def qualified(self, node: ast.AST, imported: bool = False) -> Optional[str]:
        """``tf.io.decode_png`` -> ``tensorflow.io.decode_png`` through this file's imports
        (None if not a dotted name; with ``imported``, also if it does not start at an import)."""
        parts = []
        while isinstance(node, ast.Attribute):
            parts.append(node.attr)
            node = node.value
        if not isinstance(node, ast.Name):
            return None
        if node.id in self.modules:
            head = self.modules[node.id]
        elif node.id in self.objects:
            head = ".".join(self.objects[node.id])
        elif imported:
            return None
        else:
            head = node.id
        return ".".join([head] + parts[::-1])


@functools.lru_cache(maxsize=None)
def imports(path: Path) -> Imports:
    return Imports(path)


def model_of(module: str) -> Optional[str]:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 and parts[0] == PACKAGE and parts[1] in MODELS else None


# ----------------------------------------------------------------------------- 1. peers

def test_models_do_not_import_each_other():
    problems = []
    for path in SOURCE:
        parts = rel(path).split("/")
        if len(parts) < 3 or parts[0] != PACKAGE or parts[1] not in MODELS + SHARED:
            continue
        foreign: Dict[int, str] = {}  # line -> the longest name of another model imported
        for line, target in imports(path).targets():
            other = model_of(target)
            if other not in (None, parts[1]) and len(target) > len(foreign.get(line, "")):
                foreign[line] = target
        problems += [f"{rel(path)}:{line}: imports {target} (model {model_of(target)}); move what "
                     f"both need to a shared module (face_aging/engine, face_aging/backbones or a "
                     f"root module) or reach the model through face_aging/registry.py"
                     for line, target in sorted(foreign.items())]
    report(problems, "a model package (or engine/, backbones/) imports a model package")


def test_lazy_module_strings_only_in_the_registry():
    problems = [f"{rel(path)}:{node.lineno}: lazy target {node.value!r}; make it a role in "
                f"face_aging/registry.py and call registry.resolve(model, role)"
                for path in SOURCE if rel(path) != f"{PACKAGE}/registry.py"
                for node in strings(path) if LAZY_TARGET.match(node.value)]
    report(problems, "a lazy 'module:attr' string outside face_aging/registry.py")


# ----------------------------------------------------------------------------- 2. privates

def _project_name(name: Optional[str], own: Set[str]) -> bool:
    """``name`` is a project module (not the file's own) or a name defined in one."""
    if name is None or name in own or name.rpartition(".")[0] in own:
        return False
    return name in MODULES or name.rpartition(".")[0] in MODULES


def _private_uses(path: Path) -> Iterator[Tuple[int, str]]:
    found, own = imports(path), set(module_names(path))
    for line, module, names in found.statements:
        if module in MODULES and module not in own:
            yield from ((line, f"from {module} import {n}") for n in names if is_private(n))
    for node in nodes(path):
        if isinstance(node, ast.Attribute) and is_private(node.attr):
            owner = found.qualified(node.value, imported=True)
            if _project_name(owner, own):
                yield node.lineno, f"{owner}.{node.attr}"
        elif isinstance(node, ast.Call) and node.args:
            yield from _private_by_name(found, node, own)


def _private_by_name(found: Imports, node: ast.Call, own: Set[str]) -> Iterator[Tuple[int, str]]:
    """``getattr(m, "_x")``, ``monkeypatch.setattr(m, "_x", v)``, ``patch.object(m, "_x")``,
    ``monkeypatch.setattr("m._x", v)``, ``patch("m._x")``."""
    name, first, args = called_name(node), node.args[0], node.args
    if (name in ("getattr", "setattr", "hasattr", "delattr", "object") and len(args) > 1
            and isinstance(args[1], ast.Constant) and isinstance(args[1].value, str)
            and is_private(args[1].value)):
        owner = found.qualified(first, imported=True)
        if _project_name(owner, own):
            yield node.lineno, f"{owner}.{args[1].value}"
    if (name in ("setattr", "delattr", "patch") and isinstance(first, ast.Constant)
            and isinstance(first.value, str)):
        owner, _, attr = first.value.rpartition(".")
        if is_private(attr) and _project_name(owner, own):
            yield node.lineno, first.value


def test_no_private_name_crosses_modules():
    problems = [f"{rel(path)}:{line}: uses {what}; make the name public in its module (or move "
                f"the code that needs it there)"
                for path in SOURCE + TESTS for line, what in _private_uses(path)]
    report(problems, "a private name used outside its module")


# ----------------------------------------------------------------------------- 3. length

def function_lines(node) -> Tuple[int, int]:
    """(first line, length): from the first decorator (or ``def``) to the last line."""
    first = min([node.lineno] + [d.lineno for d in node.decorator_list])
    return first, node.end_lineno - first + 1


def test_no_function_over_80_lines():
    problems = []
    for path in SOURCE:
        for node in functions(path):
            first, length = function_lines(node)
            if length > MAX_FUNCTION_LINES:
                problems.append(f"{rel(path)}:{first}: {function_of(node)} is {length} lines "
                                f"(> {MAX_FUNCTION_LINES}); split it into named steps")
    report(problems, f"a function longer than {MAX_FUNCTION_LINES} lines")


# ----------------------------------------------------------------------------- 4. once

def _calls_only_in(owner: str, wanted: Set[str], exceptions: Dict, todo: str) -> List[str]:
    problems, used = [], set()
    for path in SOURCE:
        if rel(path) == owner:
            continue
        for node in nodes(path):
            name = imports(path).qualified(node.func) if isinstance(node, ast.Call) else None
            if name not in wanted:
                continue
            key = (rel(path), function_of(node), re.sub(r"^tensorflow\.", "tf.", name))
            if key in exceptions:
                used.add(key)
            else:
                problems.append(f"{rel(path)}:{node.lineno}: {key[1]} calls {key[2]}; {todo}")
    return problems + [f"{THIS}: the exception for {file} {function} {call} matches nothing any "
                       f"more; remove it" for file, function, call in set(exceptions) - used]


def test_one_image_reader():
    report(_calls_only_in(f"{PACKAGE}/images.py", IMAGE_READERS, IMAGE_READER_EXCEPTIONS,
                          "read through face_aging.images (read_image, decode_image, "
                          "decode_tf, image_size, probe), or list a justified exception in "
                          "IMAGE_READER_EXCEPTIONS"),
           "an image file read outside face_aging/images.py")


def test_one_atomic_writer():
    report(_calls_only_in(f"{PACKAGE}/files.py", ATOMIC_WRITERS, ATOMIC_WRITER_EXCEPTIONS,
                          "write through face_aging.files (atomic_write_*, atomic_path, "
                          "atomic_replace_dir), or list a justified exception in "
                          "ATOMIC_WRITER_EXCEPTIONS"),
           "a temporary-file-and-rename writer outside face_aging/files.py")


def _one_def(named: Callable[[str], bool], where: str, qualname: str, what: str,
             todo: str) -> List[str]:
    """Problems unless exactly one function of SOURCE is ``named``: ``qualname`` in ``where``."""
    found = [(path, node) for path in SOURCE for node in functions(path) if named(node.name)]
    expected = [(p, n) for p, n in found if rel(p) == where and function_of(n) == qualname]
    problems = [f"{rel(p)}:{n.lineno}: {function_of(n)} is a second {what}; {todo}"
                for p, n in found if (p, n) not in expected]
    if len(expected) != 1:
        problems.append(f"{where}:1: {len(expected)} definitions of {qualname}, expected one "
                        f"(the {what}); put it back or update {THIS}")
    return problems


def test_one_eta():
    progress = f"{PACKAGE}/progress.py"
    problems = _one_def(lambda name: "eta" in name.lower().split("_"), progress,
                        "TrainingProgress.eta_seconds", "ETA",
                        "use face_aging.progress (TrainingProgress, format_duration, bar)")
    for path in SOURCE:
        if rel(path) == progress:
            continue
        problems += [f"{rel(path)}:{node.lineno}: prints an ETA of its own; show it with "
                     f"face_aging.progress (TrainingProgress.status or format_duration)"
                     for node in strings(path) if re.search(r"\bETA\b", node.value)]
        problems += [f"{rel(path)}:{line}: imports tqdm (a bar with its own ETA format); make "
                     f"the bar with face_aging.progress.bar" for line, module in
                     imports(path).targets() if module.split(".")[0] == "tqdm"]
    # tqdm's format_meter formats elapsed/remaining with tqdm.format_interval by name, so the
    # bar must draw its own fields: a tqdm subclass that calls format_duration, and bar formats
    # without tqdm's {elapsed}/{remaining}
    tree = nodes(REPO / progress)
    subclass = any(isinstance(n, ast.ClassDef) and "tqdm" in map(ast.unparse, n.bases)
                   and "format_duration" in ast.unparse(n) for n in tree)
    formats = [n.value for n in tree if isinstance(n, ast.Constant) and isinstance(n.value, str)
               and "{desc}" in n.value]
    if not subclass or not formats or any(re.search(r"\{(elapsed|remaining)[}:]", f)
                                          for f in formats):
        line = next((n.lineno for n in tree if isinstance(n, ast.FunctionDef) and n.name == "bar"),
                    1)
        problems.append(f"{progress}:{line}: bar() draws tqdm's own elapsed/remaining times; "
                        f"draw them with format_duration (a tqdm subclass's format_dict and a "
                        f"bar_format without {{elapsed}}/{{remaining}})")
    report(problems, "a second ETA format")


def _checks_and_undoes(path: Path, node: ast.AST) -> bool:
    names = [imports(path).qualified(n.func) or "" for n in ast.walk(node)
             if isinstance(n, ast.Call)]
    return (any(n.endswith("is_finite") for n in names)
            and any(n in ("tensorflow.cond", "tensorflow.compat.v1.cond") for n in names))


def test_one_non_finite_guard():
    nonfinite = f"{PACKAGE}/engine/nonfinite.py"
    problems = _one_def(lambda name: name == "guarded_step", nonfinite, "guarded_step",
                        "non-finite guard", "call face_aging.engine.nonfinite.guarded_step")
    for path in SOURCE:
        if rel(path) == nonfinite:
            continue
        for node in functions(path):
            inner = [f for f in ast.walk(node) if isinstance(f, FUNCTIONS) and f is not node]
            if _checks_and_undoes(path, node) and not any(_checks_and_undoes(path, f)
                                                          for f in inner):
                problems.append(f"{rel(path)}:{node.lineno}: {function_of(node)} checks "
                                f"is_finite and undoes with tf.cond, a guard of its own; wrap "
                                f"the step in face_aging.engine.nonfinite.guarded_step")
    report(problems, "a second non-finite guard")


def _step_calls(loop: ast.AST) -> Iterator[ast.Call]:
    """Calls of a step in ``loop`` (not in a function, lambda or class defined inside it)."""
    todo = list(ast.iter_child_nodes(loop))
    while todo:
        node = todo.pop()
        if isinstance(node, FUNCTIONS + (ast.Lambda, ast.ClassDef)):
            continue
        if isinstance(node, ast.Call) and STEP_NAME.search(called_name(node) or ""):
            yield node
        todo.extend(ast.iter_child_nodes(node))


def _train_roles_run_the_engine() -> List[str]:
    """Every ``"train": "module:function"`` of the registry calls engine.loop.run."""
    registry = f"{PACKAGE}/registry.py"
    if not (REPO / registry).exists():
        return [f"{registry}:1: missing; the models' train roles are listed there"]
    roles = [(n.lineno, v.value) for n in nodes(REPO / registry) if isinstance(n, ast.Dict)
             for k, v in zip(n.keys, n.values) if isinstance(k, ast.Constant)
             and k.value == "train" and isinstance(v, ast.Constant)]
    problems = [] if roles else [f"{registry}:1: no \"train\" role found"]
    for line, target in roles:
        module, _, name = target.partition(":")
        path = MODULES.get(module)
        found = [n for n in functions(path) if n.name == name
                 and isinstance(n.parent, ast.Module)] if path else []
        if not found:
            problems.append(f"{registry}:{line}: the train role {target} does not exist")
        elif not any(isinstance(n, ast.Call) and imports(path).qualified(n.func)
                     == f"{PACKAGE}.engine.loop.run" for n in ast.walk(found[0])):
            problems.append(f"{rel(path)}:{found[0].lineno}: {name} (the {model_of(module)} "
                            f"train role) does not call face_aging.engine.loop.run; give the "
                            f"model a TrainPlan and run it there")
    return problems


def test_one_training_loop():
    engine = f"{PACKAGE}/engine"
    problems, used = [], set()
    for path in SOURCE:
        if rel(path) == f"{engine}/loop.py":
            continue
        for node in nodes(path):
            if isinstance(node, LOOPS):
                for call in _step_calls(node):
                    key = (rel(path), function_of(node))
                    if key in STEP_LOOP_EXCEPTIONS:
                        used.add(key)
                    else:
                        problems.append(
                            f"{rel(path)}:{call.lineno}: {key[1]} calls {called_name(call)} in "
                            f"a loop, a training loop of its own; give the model a TrainPlan "
                            f"(+ hooks) and run it with face_aging.engine.loop.run")
            named = (node.id if isinstance(node, ast.Name) else
                     node.attr if isinstance(node, ast.Attribute) else None)
            if named == "StopSignal" and rel(path) != f"{engine}/signals.py":
                problems.append(f"{rel(path)}:{node.lineno}: uses StopSignal, the engine loop's "
                                f"signal handling; end a run through a hook's stop_reason")
    problems += [f"{THIS}: the exception for {file} {function} matches nothing any more; "
                 f"remove it" for file, function in set(STEP_LOOP_EXCEPTIONS) - used]
    report(problems + _train_roles_run_the_engine(),
           "a training loop outside face_aging/engine/loop.py")


def test_one_paste_back():
    report(_one_def(lambda name: "paste" in name.lower(), f"{PACKAGE}/faces.py", "paste_back",
                    "paste-back", "use face_aging.faces.paste_back (feather=None: a hard edge)"),
           "a second paste-back")
