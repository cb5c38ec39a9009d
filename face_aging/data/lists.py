"""The release's list-file layout (spec §4): the one home of its file names and line format.

A dataset folder (``list_dir``) holds, with image paths relative to a root folder:

- ``train.txt`` / ``test.txt``: one image a line, ``relative/path label`` (label = age group);
- ``train_age_group_k.txt`` / ``test_age_group_k.txt``: the same lines, one file per group k;
- ``train_label_pair.txt``: one ``t f`` pair a line (target and false group, t != f).

Datasets with identities add ``train_identity.txt`` / ``test_identity.txt`` (``path identity``,
the same line format). A folder prepared from an identity-only set (CACD-VS, LAG) has only those
(and its verification lists), no ``train.txt``: see docs/DATA.md.

Paths and the label separator: the release's lists separate path and label by a space, so
a path with whitespace in it is read differently by different readers. This module's
writers refuse such paths (and control characters) with one line naming the path, so every
list written here is read the same by any whitespace-splitting reader; ``prepare`` gives
crops safe names for that reason. The reader copes with hand-made lists whose paths have
spaces (real UTKFace and LAG names do): the label is the last field; and where a path with
whitespace does not end in an image extension, the line cannot be split with certainty
(``photo 2`` could be a path without its label) and is refused, never guessed.
"""
from __future__ import annotations

import os
from typing import List, Sequence, Tuple

import numpy as np

from face_aging.files import atomic_write_lines
from face_aging.images import IMAGE_EXTENSIONS
from face_aging.errors import InputError


TRAIN_LIST = "train.txt"
TEST_LIST = "test.txt"
LABEL_PAIR_LIST = "train_label_pair.txt"
TRAIN_IDENTITY_LIST = "train_identity.txt"
TEST_IDENTITY_LIST = "test_identity.txt"


class ListFormatError(InputError):
    """A list file is missing or has a malformed line (the message names file and line)."""


def age_group_list(split: str, group: int) -> str:
    """File name of one group's list, e.g. ``train_age_group_3.txt``."""
    return f"{split}_age_group_{group}.txt"


def read_image_list(path: str) -> List[Tuple[str, int]]:
    """Reads ``relative/path label`` lines; blank lines are skipped.

    The label is the last space-separated field; the path may contain spaces only when it
    ends in an image extension (``IMAGE_EXTENSIONS``), else the split is ambiguous.

    Raises:
      ListFormatError: the file is missing or not UTF-8, a line has no integer label, or
        a line's path has whitespace but no image extension.
    """
    if not os.path.isfile(path):
        raise ListFormatError(f"{path}: list file not found")
    entries = []
    try:
        with open(path, encoding="utf-8") as f:
            for number, line in enumerate(f, 1):
                line = line.rstrip("\n").rstrip("\r")
                if not line.strip():
                    continue
                parts = line.rsplit(" ", 1)
                if len(parts) != 2 or not parts[0] or not _is_int(parts[1]):
                    raise ListFormatError(
                        f"{path}:{number}: expected 'relative/path label', got {line!r}")
                if _has_whitespace(parts[0]) and not parts[0].lower().endswith(IMAGE_EXTENSIONS):
                    raise ListFormatError(
                        f"{path}:{number}: cannot tell path from label in {line!r}: the path has "
                        "whitespace and no image extension (is the label missing?); rename "
                        "the file or give it an extension")
                entries.append((parts[0], int(parts[1])))
    except UnicodeDecodeError as e:
        raise ListFormatError(f"{path}: not UTF-8 text ({e.reason} at byte {e.start})") from None
    return entries


def read_label_pairs(path: str, age_groups: int) -> List[Tuple[int, int]]:
    """Reads ``t f`` lines; each must satisfy 0 <= t, f < age_groups and t != f.

    Raises:
      ListFormatError: missing file, empty file, or a bad line.
    """
    if not os.path.isfile(path):
        raise ListFormatError(f"{path}: label-pair file not found")
    pairs = []
    with open(path, encoding="utf-8") as f:
        for number, line in enumerate(f, 1):
            fields = line.split()
            if not fields:
                continue
            if len(fields) != 2 or not all(_is_int(x) for x in fields):
                raise ListFormatError(f"{path}:{number}: expected 't f', got {line.strip()!r}")
            t, fa = int(fields[0]), int(fields[1])
            if not (0 <= t < age_groups and 0 <= fa < age_groups) or t == fa:
                raise ListFormatError(
                    f"{path}:{number}: pair ({t}, {fa}) needs 0 <= t, f < {age_groups} and t != f")
            pairs.append((t, fa))
    if not pairs:
        raise ListFormatError(f"{path}: no label pairs")
    return pairs


def check_list_path(image_path: str) -> None:
    """Raises ListFormatError (one line naming the path) unless ``image_path`` can stand in a
    space-separated list line: not empty, no whitespace, no control characters."""
    if not image_path:
        raise ListFormatError("an image path in a list line is empty")
    if _has_whitespace(image_path) or any(ord(c) < 32 or ord(c) == 127 for c in image_path):
        raise ListFormatError(
            f"{image_path!r}: a list path cannot contain whitespace or control characters (the "
            "release's lists separate path and label by a space); give the file a safe name")


def write_image_list(path: str, entries: Sequence[Tuple[str, int]]) -> None:
    """Writes ``relative/path label`` lines atomically (labels are integers).

    Raises:
      ListFormatError: a path fails :func:`check_list_path` or a label is not an integer;
        nothing is written then (an existing file is left as it was).
    """
    lines = []
    for image_path, label in entries:
        check_list_path(image_path)
        if isinstance(label, bool) or not isinstance(label, (int, np.integer)):
            raise ListFormatError(f"{image_path}: label {label!r} is not an integer")
        lines.append(f"{image_path} {int(label)}")
    atomic_write_lines(path, lines)


def write_label_pairs(path: str, pairs: Sequence[Tuple[int, int]]) -> None:
    """Writes ``t f`` lines atomically."""
    atomic_write_lines(path, (f"{t} {f}" for t, f in pairs))


def _has_whitespace(text: str) -> bool:
    return any(c.isspace() for c in text)


def _is_int(text: str) -> bool:
    try:
        int(text)
    except ValueError:
        return False
    return True
