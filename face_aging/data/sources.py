"""Dataset readers: each turns a dataset's own metadata into ``Record``s plus ``Drop``s.

A reader never opens an image (that happens in parallel in ``face_aging.data.build``);
it reads labels, applies the metadata filters, and reports every record it rejects
with a reason. Readers take plain arguments; the command line lives in ``prepare``.

Drop reasons used here: ``malformed_record``, ``malformed_name``, ``no_face``,
``second_face``, ``low_face_score``, ``age_out_of_range``, ``not_an_image_file``.
"""
from __future__ import annotations

import csv
import datetime
import hashlib
import math
import os
import re
from dataclasses import dataclass, field
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np

from face_aging import images
from face_aging.images import IMAGE_EXTENSIONS
from face_aging.errors import InputError


class SourceError(InputError):
    """The dataset itself cannot be read (missing metadata file, wrong layout): one line."""


@dataclass
class Record:
    """One image to prepare.

    ``source``: absolute path of the image; ``name``: its path relative to the dataset's
    image folder (used for the output name and reports); ``age`` in years or ``None``;
    ``group``: a group fixed by the dataset (folder mode), else ``None`` (taken from
    ``age``); ``identity``: person id or ``None``; ``box``: face box ``(x1, y1, x2, y2)``
    in 0-based pixels, or ``None``.
    """
    source: str
    name: str
    age: Optional[float] = None
    group: Optional[int] = None
    identity: Optional[str] = None
    box: Optional[Tuple[float, float, float, float]] = None


@dataclass
class Drop:
    """A record left out: ``item`` names it (file or record), ``reason`` is a short key."""
    item: str
    reason: str
    detail: str = ""


@dataclass
class SourceResult:
    records: List[Record] = field(default_factory=list)
    drops: List[Drop] = field(default_factory=list)
    #: Records kept with a remark (e.g. a malformed name whose age was still clear).
    notes: List[Drop] = field(default_factory=list)
    records_read: int = 0


def _is_image_name(name: str) -> bool:
    return name.lower().endswith(IMAGE_EXTENSIONS)


def _listdir_files(folder: str) -> List[str]:
    """Relative paths of all non-hidden files under ``folder``, sorted (non-images too: the
    reader reports them)."""
    return [os.path.relpath(path, folder)
            for path in images.list_image_files(folder, recursive=True)]


# ---------------------------------------------------------------- MATLAB helpers

def _loadmat(path: str):
    from scipy.io import loadmat
    if not os.path.isfile(path):
        raise SourceError(f"{path}: metadata file not found")
    try:
        return loadmat(path)
    except Exception as e:  # scipy raises several types for a bad file
        raise SourceError(f"{path}: not a readable MATLAB .mat file ({type(e).__name__}: {e})")


def _struct(mat, path: str, names: Sequence[str]):
    for name in names:
        if name in mat:
            value = mat[name]
            try:
                return name, value.ravel()[0]
            except (AttributeError, IndexError):
                raise SourceError(f"{path}: variable '{name}' is not a MATLAB struct")
    found = sorted(k for k in mat if not k.startswith("__"))
    raise SourceError(f"{path}: no struct named {' or '.join(names)} (found: {', '.join(found) or 'none'})")


def _field(struct, field_name: str, path: str, struct_name: str) -> np.ndarray:
    names = struct.dtype.names or ()
    if field_name not in names:
        raise SourceError(f"{path}: struct '{struct_name}' has no field '{field_name}' "
                          f"(fields: {', '.join(names)})")
    return np.asarray(struct[field_name]).ravel()


def _cell_str(value) -> str:
    """A MATLAB char array / cell element as a Python string ('' when empty)."""
    if isinstance(value, str):
        return value
    arr = np.asarray(value)
    if arr.size == 0:
        return ""
    if arr.dtype.kind in "US":
        return "".join(str(x) for x in arr.ravel())
    if arr.dtype == object and arr.size == 1:
        return _cell_str(arr.ravel()[0])
    raise ValueError(f"not a string: {value!r}")


def _number(value) -> float:
    arr = np.asarray(value, dtype=np.float64).ravel()
    if arr.size != 1:
        raise ValueError(f"expected one number, got {arr.size}")
    return float(arr[0])


def matlab_datenum_to_date(datenum: float) -> datetime.date:
    """MATLAB serial date number (day 1 = 1 Jan year 0) -> date. Raises ValueError out of range."""
    if not math.isfinite(datenum):
        raise ValueError("not a finite date number")
    ordinal = int(math.floor(datenum)) - 366
    if ordinal < 1:
        raise ValueError(f"date number {datenum} is before year 1")
    return datetime.date.fromordinal(ordinal)


def age_at_july_first(birth: datetime.date, photo_year: int) -> int:
    """Age in whole years on 1 July of ``photo_year`` (a birthday on 1 July counts)."""
    had_birthday = (birth.month, birth.day) <= (7, 1)
    return photo_year - birth.year - (0 if had_birthday else 1)


def _stable_id(text: str) -> str:
    return hashlib.sha1(text.encode("utf-8")).hexdigest()[:8]


# ---------------------------------------------------------------- IMDB-WIKI

def read_imdb_wiki(metadata: str, image_dir: Optional[str] = None, min_face_score: float = 1.0,
                   keep_second_face: bool = False, age_rule: str = "july1",
                   min_age: float = 0, max_age: Optional[float] = 100) -> SourceResult:
    """Reads ``wiki.mat`` / ``imdb.mat`` (struct ``wiki`` or ``imdb``).

    Age: at 1 July of ``photo_taken`` (``age_rule='july1'``) or ``photo_taken`` minus the
    birth year (``'year_difference'``). ``face_location`` is MATLAB's 1-based
    ``[x1 y1 x2 y2]`` (``img(y1:y2, x1:x2)``), converted to a 0-based box
    ``(x1 - 1, y1 - 1, x2, y2)``. Identity = the ``name`` field (empty name: none).
    Filters, first match wins: malformed_record, no_face (face_score -inf),
    second_face (second_face_score not NaN, unless ``keep_second_face``),
    low_face_score (< ``min_face_score``), age_out_of_range (outside ``min_age..max_age``).
    """
    if age_rule not in ("july1", "year_difference"):
        raise ValueError(f"age_rule must be july1 or year_difference, got {age_rule!r}")
    mat = _loadmat(metadata)
    struct_name, s = _struct(mat, metadata, ("wiki", "imdb"))
    image_dir = image_dir or os.path.dirname(os.path.abspath(metadata))
    names = ("dob", "photo_taken", "full_path", "name", "face_location", "face_score",
             "second_face_score")
    fields = {n: _field(s, n, metadata, struct_name) for n in names}
    lengths = {n: len(v) for n, v in fields.items()}
    if len(set(lengths.values())) != 1:
        raise SourceError(f"{metadata}: fields of '{struct_name}' differ in length: {lengths}")
    result = SourceResult(records_read=lengths["dob"])
    for i in range(lengths["dob"]):
        item = f"{struct_name}[{i}]"
        try:
            rel = _cell_str(fields["full_path"][i])
            if not rel:
                raise ValueError("empty full_path")
            item = rel
            face_score = _number(fields["face_score"][i])
            second = _number(fields["second_face_score"][i])
            dob = _number(fields["dob"][i])
            photo_year = _number(fields["photo_taken"][i])
            if not math.isfinite(photo_year) or not math.isfinite(dob):
                raise ValueError(f"dob={dob} photo_taken={photo_year}")
            name = _cell_str(fields["name"][i]).strip()
            loc = np.asarray(fields["face_location"][i], dtype=np.float64).ravel()
        except (ValueError, TypeError) as e:
            result.drops.append(Drop(item, "malformed_record", str(e)))
            continue
        if face_score == -math.inf:
            result.drops.append(Drop(rel, "no_face", "face_score is -inf"))
            continue
        if not math.isnan(second) and not keep_second_face:
            result.drops.append(Drop(rel, "second_face", f"second_face_score={second:.3g}"))
            continue
        if math.isnan(face_score) or face_score < min_face_score:
            result.drops.append(Drop(rel, "low_face_score",
                                     f"face_score={face_score:.3g} < {min_face_score}"))
            continue
        if loc.size != 4 or not np.all(np.isfinite(loc)) or loc[2] <= loc[0] - 1 or loc[3] <= loc[1] - 1:
            result.drops.append(Drop(rel, "malformed_record", f"face_location={loc.tolist()}"))
            continue
        try:
            birth = matlab_datenum_to_date(dob)
            year = int(photo_year)
            age = (age_at_july_first(birth, year) if age_rule == "july1" else year - birth.year)
        except (ValueError, OverflowError) as e:
            result.drops.append(Drop(rel, "age_out_of_range", f"dob={dob}: {e}"))
            continue
        if age < min_age or (max_age is not None and age > max_age):
            result.drops.append(Drop(rel, "age_out_of_range",
                                     f"age {age} outside {min_age}..{max_age}"))
            continue
        box = (loc[0] - 1.0, loc[1] - 1.0, loc[2], loc[3])
        result.records.append(Record(
            source=os.path.join(image_dir, rel), name=rel, age=float(age),
            identity=name or None, box=tuple(float(v) for v in box)))
    return result


# ---------------------------------------------------------------- CACD

def read_cacd(metadata: str, image_dir: Optional[str] = None,
              min_age: float = 0, max_age: Optional[float] = None) -> SourceResult:
    """Reads CACD's ``celebrity2000_meta.mat`` / ``celebrity2000.mat``.

    Uses struct ``celebrityImageData`` with fields ``age``, ``identity`` and ``name``
    (the image file names, e.g. ``53_Robin_Williams_0001.jpg``). Images are looked up in
    ``image_dir``, by default ``CACD2000/`` next to the .mat file if it exists, else the
    .mat file's folder.
    """
    mat = _loadmat(metadata)
    struct_name, s = _struct(mat, metadata, ("celebrityImageData",))
    if image_dir is None:
        base = os.path.dirname(os.path.abspath(metadata))
        image_dir = os.path.join(base, "CACD2000")
        if not os.path.isdir(image_dir):
            image_dir = base
    fields = {n: _field(s, n, metadata, struct_name) for n in ("age", "identity", "name")}
    lengths = {n: len(v) for n, v in fields.items()}
    if len(set(lengths.values())) != 1:
        raise SourceError(f"{metadata}: fields of '{struct_name}' differ in length: {lengths}")
    result = SourceResult(records_read=lengths["age"])
    for i in range(lengths["age"]):
        item = f"{struct_name}[{i}]"
        try:
            rel = _cell_str(fields["name"][i])
            if not rel:
                raise ValueError("empty file name")
            item = rel
            age = _number(fields["age"][i])
            identity = _number(fields["identity"][i])
            if not math.isfinite(age) or not math.isfinite(identity) or identity != int(identity):
                raise ValueError(f"age={age} identity={identity}")
        except (ValueError, TypeError) as e:
            result.drops.append(Drop(item, "malformed_record", str(e)))
            continue
        if age < min_age or (max_age is not None and age > max_age):
            result.drops.append(Drop(rel, "age_out_of_range", f"age {age:g} outside {min_age}..{max_age}"))
            continue
        result.records.append(Record(source=os.path.join(image_dir, rel), name=rel, age=age,
                                     identity=str(int(identity))))
    return result


# ---------------------------------------------------------------- UTKFace

_UTK_FULL = re.compile(r"^(\d+)_([01])_([0-4])_(\d{17})\.jpg\.chip\.jpg$")
_UTK_AGE = re.compile(r"^(\d{1,3})_")


def parse_utkface_name(file_name: str) -> Tuple[Optional[int], Optional[str]]:
    """``(age, problem)`` from a UTKFace file name ``age_gender_race_datetime.jpg.chip.jpg``.

    ``problem`` is ``None`` for a well-formed name; otherwise it describes what breaks the
    pattern. ``age`` is ``None`` when no leading ``<digits>_`` age field exists (then the
    name is unusable); a malformed name with a clear leading age still yields it.
    """
    if _UTK_FULL.match(file_name):
        return int(file_name.split("_", 1)[0]), None
    m = _UTK_AGE.match(file_name)
    age = int(m.group(1)) if m else None
    stem = file_name
    for suffix in (".jpg.chip.jpg", "jpg.chip.jpg", ".chip.jpg", ".jpg"):
        if stem.endswith(suffix):
            stem = stem[: -len(suffix)]
            break
    fields = stem.split("_")
    if age is None:
        problem = "no leading age field"
    elif " " in file_name:
        problem = "contains a space"
    elif not file_name.endswith(".jpg.chip.jpg"):
        problem = "suffix is not '.jpg.chip.jpg' (missing dot?)"
    elif len(fields) != 4:
        problem = f"{len(fields)} fields instead of age_gender_race_datetime"
    else:
        problem = "a field is out of range (gender 0/1, race 0-4, 17-digit date)"
    return age, problem


def read_utkface(folder: str, strict_names: bool = False,
                 min_age: float = 0, max_age: Optional[float] = None) -> SourceResult:
    """Reads UTKFace labels from file names (the folder's files, recursively).

    A malformed name whose leading age field is still clear is kept and reported as a
    note (``malformed_name``); with ``strict_names`` it is dropped instead. A name with
    no age at all is always dropped.
    """
    if not os.path.isdir(folder):
        raise SourceError(f"{folder}: UTKFace folder not found")
    result = SourceResult()
    for rel in _listdir_files(folder):
        result.records_read += 1
        base = os.path.basename(rel)
        if not _is_image_name(base):
            result.drops.append(Drop(rel, "not_an_image_file", "extension is not an image type"))
            continue
        age, problem = parse_utkface_name(base)
        if problem is not None:
            if age is None or strict_names:
                result.drops.append(Drop(rel, "malformed_name", problem))
                continue
            result.notes.append(Drop(rel, "malformed_name", f"{problem}; age {age} kept"))
        if age < min_age or (max_age is not None and age > max_age):
            result.drops.append(Drop(rel, "age_out_of_range", f"age {age} outside {min_age}..{max_age}"))
            continue
        result.records.append(Record(source=os.path.join(folder, rel), name=rel, age=float(age)))
    return result


# ---------------------------------------------------------------- folder / CSV

def parse_folder_groups(specs: Sequence[str]) -> Dict[str, int]:
    """``['young=0', 'old=4']`` -> ``{'young': 0, 'old': 4}``; ``['young', 'old']`` -> 0, 1 by order."""
    mapping: Dict[str, int] = {}
    for index, spec in enumerate(specs):
        spec = spec.strip()
        if "=" in spec:
            name, _, value = spec.rpartition("=")
            try:
                group = int(value)
            except ValueError:
                raise ValueError(f"folder group '{spec}': '{value}' is not a group number")
        else:
            name, group = spec, index
        if not name:
            raise ValueError(f"folder group '{spec}': empty folder name")
        if name in mapping:
            raise ValueError(f"folder group '{name}' given twice")
        if group < 0:
            raise ValueError(f"folder group '{spec}': group must be >= 0")
        mapping[name] = group
    return mapping


def read_folder(path: str, folder_groups: Optional[Dict[str, int]] = None,
                min_age: float = 0, max_age: Optional[float] = None) -> SourceResult:
    """One sub-folder per age group, or a CSV file of ``path,age[,identity]``.

    Folder: ``folder_groups`` maps sub-folder names to groups; without it every
    sub-folder must be named by its group number (``0/``, ``1/``, ...). Images are
    found recursively inside each group folder. CSV: an optional header row; paths
    relative to the CSV's folder (or absolute); ``age`` in years (grouped by the bins).
    """
    if os.path.isfile(path):
        return _read_csv(path, min_age, max_age)
    if not os.path.isdir(path):
        raise SourceError(f"{path}: input folder or CSV file not found")
    subdirs = sorted(d for d in os.listdir(path)
                     if os.path.isdir(os.path.join(path, d)) and not d.startswith("."))
    if folder_groups:
        missing = [name for name in folder_groups if name not in subdirs]
        if missing:
            raise SourceError(f"{path}: no sub-folder {', '.join(missing)} "
                              f"(sub-folders: {', '.join(subdirs) or 'none'})")
        mapping = dict(folder_groups)
    else:
        if not subdirs or not all(d.isdigit() for d in subdirs):
            raise SourceError(f"{path}: sub-folders must be named by group number (0, 1, ...), "
                              f"found {', '.join(subdirs) or 'none'}; or map names with "
                              "--folder_groups=young=0,old=4")
        mapping = {d: int(d) for d in subdirs}
    result = SourceResult()
    for sub, group in mapping.items():
        sub_path = os.path.join(path, sub)
        for rel in _listdir_files(sub_path):
            result.records_read += 1
            name = os.path.join(sub, rel)
            if not _is_image_name(rel):
                result.drops.append(Drop(name, "not_an_image_file", "extension is not an image type"))
                continue
            result.records.append(Record(source=os.path.join(sub_path, rel), name=name, group=group))
    return result


def _read_csv(path: str, min_age: float, max_age: Optional[float]) -> SourceResult:
    base = os.path.dirname(os.path.abspath(path))
    result = SourceResult()
    try:
        with open(path, newline="", encoding="utf-8") as f:
            rows = list(csv.reader(f))
    except (OSError, UnicodeDecodeError, csv.Error) as e:
        raise SourceError(f"{path}: cannot read CSV ({e})")
    if rows and len(rows[0]) >= 2 and not _is_float(rows[0][1]):
        rows = rows[1:]  # header
    for number, row in enumerate(rows, 1):
        if not row or not any(cell.strip() for cell in row):
            continue
        result.records_read += 1
        item = f"{os.path.basename(path)}:{number}"
        if len(row) < 2 or not row[0].strip() or not _is_float(row[1]):
            result.drops.append(Drop(item, "malformed_record", f"expected 'path,age', got {row!r}"))
            continue
        rel, age = row[0].strip(), float(row[1])
        identity = row[2].strip() if len(row) > 2 and row[2].strip() else None
        if os.path.isabs(rel):
            source = rel
            name = os.path.join("abs", _stable_id(rel) + "_" + os.path.basename(rel))
        else:
            source = os.path.join(base, rel)
            name = os.path.normpath(rel)
            if name.startswith(".."):
                name = os.path.join("up", _stable_id(rel) + "_" + os.path.basename(rel))
        if not math.isfinite(age) or age < min_age or (max_age is not None and age > max_age):
            result.drops.append(Drop(rel, "age_out_of_range", f"age {row[1]} outside {min_age}..{max_age}"))
            continue
        result.records.append(Record(source=source, name=name, age=age, identity=identity))
    return result


def _is_float(text: str) -> bool:
    try:
        float(text)
    except (TypeError, ValueError):
        return False
    return True
