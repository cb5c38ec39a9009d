"""The project's one exception base, for what the *user* got wrong or lacks.

Every error that means bad input, a bad flag, a missing file or an unavailable optional
package derives from :class:`FaceAgingError`; the command-line entry points catch that base
(never a list of classes) and print its message as one line. Anything else is a bug and keeps
its traceback. The classes below mix the base with the built-in type callers already catch
(``except ValueError`` keeps working for a :class:`InputError`).
"""
from __future__ import annotations


class FaceAgingError(Exception):
    """Base: the message is one line that names the thing and what is wrong with it."""


class UsageError(FaceAgingError, ValueError):
    """A bad flag or option combination."""


class InputError(FaceAgingError, ValueError):
    """A file, image, list or record that is malformed."""


class MissingInputError(FaceAgingError, FileNotFoundError):
    """A file or folder that should exist and does not."""


class SetupError(FaceAgingError, RuntimeError):
    """The run cannot start: an unwritable folder, too little disk, inconsistent state."""


class UnavailableError(FaceAgingError, ImportError):
    """An optional package (or a detector, a judge) this job needs is not installed."""
