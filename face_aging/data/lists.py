"""The release's list-file layout (spec §4): the one home of its file names and line format.

A dataset folder (``list_dir``) holds, with image paths relative to a root folder:

- ``train.txt`` / ``test.txt``: one image a line, ``relative/path label`` (label = age group);
- ``train_age_group_k.txt`` / ``test_age_group_k.txt``: the same lines, one file per group k;
- ``train_label_pair.txt``: one ``t f`` pair a line (target and false group, t != f).

Paths may contain spaces (real UTKFace names do): the label is the last field.
"""
from __future__ import annotations

import os
import tempfile
from typing import Iterable, List, Sequence, Tuple

TRAIN_LIST = "train.txt"
TEST_LIST = "test.txt"
LABEL_PAIR_LIST = "train_label_pair.txt"


class ListFormatError(ValueError):
    """A list file is missing or has a malformed line (the message names file and line)."""


def age_group_list(split: str, group: int) -> str:
    """File name of one group's list, e.g. ``train_age_group_3.txt``."""
    return f"{split}_age_group_{group}.txt"


def read_image_list(path: str) -> List[Tuple[str, int]]:
    """Reads ``relative/path label`` lines; blank lines are skipped.

    Raises:
      ListFormatError: the file is missing, or a line has no integer label.
    """
    if not os.path.isfile(path):
        raise ListFormatError(f"{path}: list file not found")
    entries = []
    with open(path, encoding="utf-8") as f:
        for number, line in enumerate(f, 1):
            line = line.rstrip("\n").rstrip("\r")
            if not line.strip():
                continue
            parts = line.rsplit(" ", 1)
            if len(parts) != 2 or not parts[0] or not _is_int(parts[1]):
                raise ListFormatError(
                    f"{path}:{number}: expected 'relative/path label', got {line!r}")
            entries.append((parts[0], int(parts[1])))
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


def write_lines_atomic(path: str, lines: Iterable[str]) -> None:
    """Writes lines to ``path`` through a temporary file and a rename: never half-written."""
    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=directory, prefix=".tmp_", suffix=".txt")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            for line in lines:
                f.write(line + "\n")
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise


def write_image_list(path: str, entries: Sequence[Tuple[str, int]]) -> None:
    """Writes ``relative/path label`` lines atomically."""
    write_lines_atomic(path, (f"{p} {label}" for p, label in entries))


def write_label_pairs(path: str, pairs: Sequence[Tuple[int, int]]) -> None:
    """Writes ``t f`` lines atomically."""
    write_lines_atomic(path, (f"{t} {f}" for t, f in pairs))


def _is_int(text: str) -> bool:
    try:
        int(text)
    except ValueError:
        return False
    return True
