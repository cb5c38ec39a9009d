"""Environment settings that must be made before TensorFlow is imported (no TF import here).

- :func:`prepare_tf_environment`: the environment variables a run needs before TF loads
  (oneDNN off under ``--deterministic``; the C++ log level as a default).
- :func:`quiet_tensorflow`: TensorFlow's C++ start-up lines (oneDNN notices, "Could not find
  cuda drivers", "failed call to cuInit", the CPU-instructions notice) are written to file
  descriptor 2 by C++ code before its logging is initialised, so ``TF_CPP_MIN_LOG_LEVEL``
  cannot hide them; this hides them unless ``--verbose`` or ``FACE_AGING_VERBOSE=1``.
"""
import contextlib
import importlib.abc
import importlib.util
import os
import re
import sys
import tempfile
from typing import Sequence

#: ``FACE_AGING_VERBOSE=1`` shows TensorFlow's start-up lines, as ``--verbose`` does.
VERBOSE_ENV = "FACE_AGING_VERBOSE"

#: Lines TensorFlow writes to stderr while it loads and probes for GPUs that say nothing
#: about the run: absl's pre-initialisation warning, and I/W lines (and the CUDA probe's E
#: lines) of the start-up sources. Anything else captured is passed on.
STARTUP_NOISE = re.compile(
    r"^(WARNING: All log messages before absl::InitializeLog\(\) is called are written to STDERR"
    r"|[IW]\d{4} [\d:.]+\s+\d+ \S+\.cc:\d+\] .*"
    r"|E\d{4} [\d:.]+\s+\d+ (cuda_\w+|gpu_\w+|cudart_stub|dso_loader)\.cc:\d+\] .*"
    r"|To enable the following instructions: .* with the appropriate compiler flags\.)$")


def boolean_flag(argv: Sequence[str], name: str) -> bool:
    """The value absl will give the boolean flag ``--name`` for this command line
    (``argv[0]`` is the program), read before the real parse and before TensorFlow loads.

    absl's own parser reads it, so every spelling counts as it will later: ``--name``,
    ``--noname``, ``--name=1|t|true|TRUE|0|f|false``, the last occurrence winning, and flags
    inside ``--flagfile`` files. Other flags are left alone; a command line absl will reject
    (a missing flag file, a bad value) gives False here and its one-line error later.
    """
    from absl import flags  # absl, not TensorFlow

    values = flags.FlagValues()
    flags.DEFINE_boolean(name, False, "", flag_values=values)
    argv = list(argv)
    try:
        values([argv[0] if argv else "", *argv[1:]], known_only=True)
    except flags.Error:
        return False
    return bool(values[name].value)


def verbose_requested(argv: Sequence[str] = ()) -> bool:
    """True if ``argv`` (after the program name) turns ``--verbose`` on, in any spelling absl
    accepts (:func:`boolean_flag`), or ``FACE_AGING_VERBOSE`` is set to 1/true/yes/on."""
    if len(argv) > 1 and boolean_flag(argv, "verbose"):
        return True
    return os.environ.get(VERBOSE_ENV, "").strip().lower() in ("1", "true", "yes", "on")


def prepare_tf_environment(argv: Sequence[str], log_level: str = "1") -> None:
    """Quiets TF's C++ INFO lines; if ``argv`` turns ``--deterministic`` on (any spelling,
    a ``--flagfile``: :func:`boolean_flag`), turns oneDNN off.

    oneDNN's CPU convolution gradients can change with thread scheduling, even under TF's op
    determinism; TF's own kernels cannot. Call before the first ``import tensorflow``.
    ``TF_CPP_MIN_LOG_LEVEL`` is only a default (a user's setting stays), and is not set at all
    when verbose output is asked for (:func:`verbose_requested`).
    """
    if not verbose_requested(argv):
        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", log_level)
    # Read as absl will read it: a string match missed --deterministic=1, =t, =TRUE and
    # --flagfile, and such a run believed it was deterministic with oneDNN still on.
    if len(argv) > 1 and boolean_flag(argv, "deterministic"):
        os.environ["TF_ENABLE_ONEDNN_OPTS"] = "0"


def without_startup_noise(text: str) -> str:
    """``text`` without the lines of :data:`STARTUP_NOISE` (the rest, in order)."""
    kept = [line for line in text.splitlines(keepends=True)
            if not STARTUP_NOISE.match(line.rstrip("\r\n"))]
    return "".join(kept)


class CapturedStderr:
    """File descriptor 2 sent to a temporary file while active; on exit, what was written
    there that is not start-up noise goes to the real stderr (everything, on an error)."""

    def __enter__(self):
        self._saved = None
        try:
            sys.stderr.flush()
            self._saved = os.dup(2)
        except (OSError, ValueError, AttributeError):  # no usable fd 2: capture nothing
            return self
        self._file = tempfile.TemporaryFile()
        os.dup2(self._file.fileno(), 2)
        return self

    def __exit__(self, exc_type, exc, tb):
        if self._saved is None:
            return False
        with contextlib.suppress(OSError, ValueError):  # a closed or broken stderr
            sys.stderr.flush()
        os.dup2(self._saved, 2)
        os.close(self._saved)
        self._file.seek(0)
        text = self._file.read().decode("utf-8", errors="replace")
        self._file.close()
        rest = text if exc_type is not None else without_startup_noise(text)
        if rest:
            sys.stderr.write(rest)
            sys.stderr.flush()
        return False


class _QuietLoader(importlib.abc.Loader):
    """Runs TensorFlow's import (and its GPU probe) with stderr captured; else delegates."""

    def __init__(self, loader):
        self._loader = loader

    def create_module(self, spec):
        return self._loader.create_module(spec)

    def exec_module(self, module):
        with CapturedStderr():
            self._loader.exec_module(module)
            # The CUDA probe ("failed call to cuInit") runs when devices are first listed.
            # Listing physical devices does not initialise the runtime: thread counts and
            # logical devices can still be configured afterwards.
            module.config.list_physical_devices()

    def __getattr__(self, name):
        return getattr(self._loader, name)


class _QuietTensorFlowFinder(importlib.abc.MetaPathFinder):
    """Finds ``tensorflow`` as usual, once, and gives its spec the quiet loader."""

    def find_spec(self, name, path=None, target=None):
        if name != "tensorflow":
            return None
        if self in sys.meta_path:
            sys.meta_path.remove(self)
        spec = importlib.util.find_spec(name)
        if spec is not None and spec.loader is not None:
            spec.loader = _QuietLoader(spec.loader)
        return spec


def quiet_tensorflow(verbose: bool = False, log_level: str = "2") -> bool:
    """Hides TensorFlow's C++ start-up lines in this process unless ``verbose``.

    Sets ``TF_CPP_MIN_LOG_LEVEL`` to ``log_level`` as a default and arranges that the first
    ``import tensorflow`` (wherever it happens) runs with stderr captured; captured lines
    other than start-up notices are printed when the import ends. Imports nothing of
    TensorFlow itself. With ``verbose`` (or ``FACE_AGING_VERBOSE=1``) nothing changes.

    Returns:
      True if the quiet import is armed (TensorFlow not imported yet, not verbose).
    """
    if verbose or verbose_requested():
        return False
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", log_level)
    if "tensorflow" in sys.modules:
        return False
    if not any(isinstance(f, _QuietTensorFlowFinder) for f in sys.meta_path):
        sys.meta_path.insert(0, _QuietTensorFlowFinder())
    return True
