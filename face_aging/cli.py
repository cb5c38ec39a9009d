"""What every command-line entry point shares. Imports no TensorFlow.

- :func:`run`: ``absl.app.run(main)`` with this project's conventions. A bad flag (absl's
  parsing or a validator) or an ``app.UsageError`` ends the run with ONE line on stderr,
  ``PROG: error: MESSAGE (see --helpshort)``, and exit status :data:`EXIT_USAGE`, instead
  of absl's ``FATAL Flags parsing error:`` block and its ``Pass --helpshort ...`` hint (or the
  whole usage text, for a ``UsageError``). ``--verbose`` (defined here) or
  ``FACE_AGING_VERBOSE=1`` shows TensorFlow's C++ start-up lines, which are hidden otherwise
  (``runtime_env.quiet_tensorflow``).
- :class:`ArgumentParser`: ``argparse`` with the same one-line errors and ``--verbose``.
- :func:`flag_error_line`: the one line for an absl flag error.
- :func:`define_key_flags`: a command's flags, defined by a ``define_flags(flag_values)`` in
  another module, listed in ``--helpshort`` of the script or ``python -m`` path that runs it.

Entry points keep TensorFlow out of their module-level imports, so ``--help`` answers (and a
bad flag is reported) without loading it.
"""
from __future__ import annotations

import argparse
import sys
from typing import Callable, Optional, Sequence

from face_aging import runtime_env

#: Exit status of a bad flag or a bad command line (argparse's, and the Unix convention).
EXIT_USAGE = 2
HELP_HINT = "see --helpshort"
VERBOSE_HELP = ("Show TensorFlow's C++ start-up lines (oneDNN notices, CUDA probes), hidden by "
                f"default; the environment variable {runtime_env.VERBOSE_ENV}=1 does the same.")


def one_line(text: str) -> str:
    """``text`` on one line: its lines stripped and joined with ``; ``."""
    return "; ".join(part.strip() for part in str(text).splitlines() if part.strip())


def flag_error_line(prog: Optional[str], error: BaseException) -> str:
    """The one line a bad flag ends with: ``PROG: error: MESSAGE (see --helpshort)``."""
    prefix = f"{prog}: error: " if prog else "error: "
    return f"{prefix}{one_line(error) or type(error).__name__} ({HELP_HINT})"


def _exit_usage(prog, error):
    sys.stderr.write(flag_error_line(prog, error) + "\n")
    sys.stderr.flush()
    raise SystemExit(EXIT_USAGE)


def define_verbose_flag(flag_values=None) -> None:
    """Defines ``--verbose`` on ``flag_values`` (default absl's FLAGS) unless it exists, and
    lists it in ``--helpshort`` of the main module."""
    from absl import flags

    flag_values = flag_values if flag_values is not None else flags.FLAGS
    if "verbose" not in flag_values:
        flags.DEFINE_bool("verbose", False, VERBOSE_HELP, flag_values=flag_values)
    main_module = sys.argv[0] if sys.argv and sys.argv[0] else "__main__"
    flag_values.register_key_flag_for_module(main_module, flag_values["verbose"])


def define_key_flags(define: Callable, flag_values=None) -> None:
    """Calls ``define(flag_values)`` (default absl's FLAGS) and lists every flag it defines in
    ``--helpshort`` of the main module (absl lists only the main module's key flags, and these
    flags belong to the module that holds ``define``)."""
    from absl import flags

    flag_values = flag_values if flag_values is not None else flags.FLAGS
    before = set(flag_values)
    define(flag_values)
    main_module = sys.argv[0] if sys.argv and sys.argv[0] else "__main__"
    for name in sorted(set(flag_values) - before):
        # (not absl's own, which importing absl.app or absl.logging may define meanwhile)
        if not str(flag_values.find_module_defining_flag(name, "")).startswith("absl."):
            flag_values.register_key_flag_for_module(main_module, flag_values[name])


def run(main: Callable[[Sequence[str]], Optional[int]], prog: Optional[str] = None,
        log_level: str = "2", flag_values=None, doc: Optional[str] = None) -> None:
    """Runs ``main`` as ``absl.app.run`` does, with the conventions of the module docstring.

    Args:
      main: ``main(argv)``; its return value is the exit status (as ``app.run``).
      prog: the name in error lines (``pretrain`` -> ``pretrain: error: ...``); None for
        a bare ``error: ...``.
      log_level: the default of ``TF_CPP_MIN_LOG_LEVEL`` when not verbose.
      doc: the text ``--help`` shows above the flags (absl shows the main module's
        docstring): the command's, when the main module is a script or a ``python -m``
        path that only calls it.
    """
    from absl import app, flags

    flag_values = flag_values if flag_values is not None else flags.FLAGS
    main_module = sys.modules.get("__main__")
    if doc is not None and main_module is not None:
        main_module.__doc__ = doc
    define_verbose_flag(flag_values)

    def parse(argv):
        try:
            return flag_values(argv)
        except flags.Error as e:
            _exit_usage(prog, e)

    def checked_main(argv):
        runtime_env.quiet_tensorflow(bool(flag_values["verbose"].value), log_level)
        try:
            return main(argv)
        except app.UsageError as e:
            _exit_usage(prog, e)

    app.run(checked_main, flags_parser=parse)


class ArgumentParser(argparse.ArgumentParser):
    """``argparse.ArgumentParser`` whose errors are one line (``PROG: error: MESSAGE (see
    --help)``, exit status 2), with ``--verbose``; :meth:`parse_args` arms the quiet
    TensorFlow import unless ``--verbose``."""

    def __init__(self, *args, log_level: str = "2", **kwargs):
        super().__init__(*args, **kwargs)
        self._log_level = log_level
        self.add_argument("--verbose", action="store_true", help=VERBOSE_HELP)

    def error(self, message):
        sys.stderr.write(f"{self.prog}: error: {one_line(message)} (see --help)\n")
        raise SystemExit(EXIT_USAGE)

    def parse_args(self, args=None, namespace=None):
        parsed = super().parse_args(args, namespace)
        runtime_env.quiet_tensorflow(parsed.verbose, self._log_level)
        return parsed

