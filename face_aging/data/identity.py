r"""Identity-only datasets (CACD-VS, LAG): readers, splits and the identity folder's files.

These sets have people but no usable ages, so a prepared folder holds identity lists and
verification lists, and no age lists (no ``train.txt``). The pretraining reads identities
from such a folder and ages from a UTKFace one. Output folder::

    images/<name>.jpg          crops re-framed like UTKFace's (``framing``), RGB JPEG
    train_identity.txt         "images/... identity", dense ids 0..K-1 (sorted keys)
    test_identity.txt          held-out people, ids K.. (continuing, never shared with train)
    identity_names.txt         "id key": the dataset's person (LAG) or pair (CACD-VS) behind an id
    original_names.tsv         path <TAB> the dataset's own file name, for every crop
    verification_pairs.txt     CACD-VS: "pair_id fold same path_0 path_1" (same: 1 / 0)
    test_cross_age.txt         LAG: "identity young_path old_path" of held-out people
    summary.json               read, kept, dropped per reason, identities, pairs, framing
    dropped.tsv, prepare_config.json   as in ``face_aging.data.build``

Same guarantees as ``build.prepare``: crops written whole then renamed, lists atomically
and after every crop; a re-run skips existing crops and refuses other crop settings.
"""
from __future__ import annotations

import csv
import io
import os
import time
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Dict, List, Optional, Sequence, Tuple

from face_aging import files
from face_aging.data import build, framing, lists
from face_aging.data.sources import Drop, Record, SourceError

DATASETS = ("cacd_vs", "lag")
#: Side of the written crops unless told otherwise: UTKFace's own 200 px. The re-framed
#: faces are ~122 source pixels (CACD-VS) and ~66 (LAG) wide, so more adds no detail.
DEFAULT_IMAGE_SIZE = 200
DEFAULT_TEST_FOLDS = (5, 6, 7, 8)
VERIFICATION_PAIRS = "verification_pairs.txt"
CROSS_AGE_LIST = "test_cross_age.txt"
ORIGINAL_NAMES = "original_names.tsv"
PAIRS_HEADER = "# pair_id fold same path_0 path_1"
CROSS_AGE_HEADER = "# identity young_path old_path"
CROSS_AGE_MODES = ("all", "one")
VERIFICATION_FOLDS = ("test", "all")


@dataclass
class Pair:
    """One CACD-VS pair: ``same`` True for the same person; names as in ``pairs.csv``."""
    pair_id: str
    fold: int
    same: bool
    name_0: str
    name_1: str


@dataclass
class IdentitySource:
    """What a reader returns: records to crop and how they are split and paired.

    ``records`` carry ``identity`` (a key string, or None for an image of no known
    person) and no age; ``split_of`` gives each record name ``train`` or ``test``;
    ``pairs`` are written to ``verification_pairs.txt``; ``young_old`` tags LAG images.
    """
    dataset: str
    records: List[Record] = field(default_factory=list)
    split_of: Dict[str, str] = field(default_factory=dict)
    drops: List[Drop] = field(default_factory=list)
    notes: List[Drop] = field(default_factory=list)
    records_read: int = 0
    pairs: List[Pair] = field(default_factory=list)
    young_old: Dict[str, str] = field(default_factory=dict)
    framing: Optional[framing.Framing] = None
    #: record name -> the path as the dataset's own metadata gives it
    original: Dict[str, str] = field(default_factory=dict)
    info: dict = field(default_factory=dict)


def _dataset_name(rel: str) -> str:
    """``images/a/b.jpg`` -> ``a/b.jpg`` (the crops go under the output's own images/)."""
    rel = rel.replace("\\", "/").lstrip("/")
    return rel[len("images/"):] if rel.startswith("images/") else rel


def _read_csv(path: str, columns: Sequence[str]) -> List[Tuple[int, Dict[str, str]]]:
    if not os.path.isfile(path):
        raise SourceError(f"{path}: not found")
    try:
        with open(path, newline="", encoding="utf-8") as f:
            reader = csv.DictReader(f)
            header = reader.fieldnames or []
            missing = [c for c in columns if c not in header]
            if missing:
                raise SourceError(f"{path}: no column {', '.join(missing)} "
                                  f"(header: {','.join(header) or 'empty'})")
            return [(number, row) for number, row in enumerate(reader, 2)]
    except (OSError, UnicodeDecodeError, csv.Error) as e:
        raise SourceError(f"{path}: cannot read CSV ({e})") from None


# ---------------------------------------------------------------- CACD-VS

def read_cacd_vs(folder: str, test_folds: Sequence[int] = DEFAULT_TEST_FOLDS,
                 verification_folds: str = "test") -> IdentitySource:
    """Reads CACD-VS's ``pairs.csv`` (``pair_id, fold, same_identity, image_0, image_1``).

    Every image of a pair in ``test_folds`` is held out (split ``test``). Each same-person
    pair of the other folds is one training identity (both its images); CACD-VS does not
    name people, so one person may be several identities. Images of the other folds'
    different-person pairs are left out (``train_fold_different_person_pair``: single
    images of unknown people cannot train a classifier) unless ``verification_folds='all'``
    puts every fold's pairs in ``verification_pairs.txt`` (then they are cropped, in no
    identity list). A training pair sharing an image with a test pair is left out.
    """
    if verification_folds not in VERIFICATION_FOLDS:
        raise ValueError(f"verification_folds must be one of {VERIFICATION_FOLDS}")
    path = os.path.join(folder, "pairs.csv")
    rows = _read_csv(path, ("pair_id", "fold", "same_identity", "image_0", "image_1"))
    source = IdentitySource("cacd_vs", framing=framing.MEASURED["cacd_vs"])
    pairs = _cacd_pairs(rows, source)
    folds = sorted({p.fold for p in pairs})
    unknown = sorted(set(test_folds) - set(folds))
    if unknown:
        raise SourceError(f"--test_folds {','.join(map(str, unknown))}: not a fold of {path} "
                          f"(folds: {','.join(map(str, folds)) or 'none'})")
    test_set = set(test_folds)
    split_of, identity_of = _cacd_identities(pairs, test_set, source)
    verification = [p for p in pairs if verification_folds == "all" or p.fold in test_set]
    in_verification = {n for p in verification for n in (p.name_0, p.name_1)}
    for p in pairs:
        if p.fold not in test_set and not p.same:
            for n in (p.name_0, p.name_1):
                if n in in_verification and n not in split_of:
                    split_of[n] = "train"
                    identity_of[n] = None
                elif n not in split_of:
                    source.drops.append(Drop(n, "train_fold_different_person_pair",
                                             f"pair {p.pair_id}: a single image of an unknown "
                                             "person cannot train a classifier"))
    for name in sorted(split_of):
        source.records.append(Record(source=os.path.join(folder, source.original[name]),
                                     name=name, identity=identity_of[name]))
    source.split_of = split_of
    source.pairs = verification
    source.info = {"folds": folds, "test_folds": sorted(test_set),
                   "verification_folds": verification_folds}
    return source


def _cacd_pairs(rows, source: IdentitySource) -> List[Pair]:
    """The well-formed rows of ``pairs.csv`` (each read row counted, each bad one dropped, the
    dataset's own image names recorded in ``source``)."""
    pairs: List[Pair] = []
    seen_ids = set()
    for number, row in rows:
        source.records_read += 1
        item = f"pairs.csv:{number}"
        try:
            pair_id = (row["pair_id"] or "").strip()
            fold = int(row["fold"])
            same = {"1": True, "0": False}[(row["same_identity"] or "").strip()]
            originals = [(row[k] or "").strip() for k in ("image_0", "image_1")]
            names = [_dataset_name(o) for o in originals]
            if not pair_id or not all(names) or names[0] == names[1]:
                raise ValueError("empty pair id or image, or the same image twice")
            if pair_id in seen_ids:
                raise ValueError(f"pair id {pair_id} repeated")
        except (ValueError, KeyError, TypeError) as e:
            detail = str(e) if not isinstance(e, KeyError) else "same_identity is not 1 or 0"
            source.drops.append(Drop(item, "malformed_record", detail))
            continue
        seen_ids.add(pair_id)
        pairs.append(Pair(pair_id, fold, same, names[0], names[1]))
        source.original.update(zip(names, originals))
    return pairs


def _cacd_identities(pairs: Sequence[Pair], test_set, source: IdentitySource
                     ) -> Tuple[Dict[str, str], Dict[str, Optional[str]]]:
    """``(split_of, identity_of)`` of the images of the test folds' pairs and of the other
    folds' same-person pairs (one identity a pair)."""
    test_images = {n for p in pairs if p.fold in test_set for n in (p.name_0, p.name_1)}
    identity_of: Dict[str, Optional[str]] = {}
    split_of: Dict[str, str] = {}
    for p in pairs:
        names = (p.name_0, p.name_1)
        if p.fold in test_set:
            for n in names:
                split_of[n] = "test"
                identity_of.setdefault(n, None)
                if p.same:
                    identity_of[n] = f"pair_{p.pair_id}"
        elif p.same:
            if any(n in test_images for n in names):
                source.drops.append(Drop(f"pair {p.pair_id}", "pair_shares_a_test_image",
                                         "an image of this training pair is in a test fold"))
                continue
            for n in names:
                if n in identity_of and identity_of[n] != f"pair_{p.pair_id}":
                    source.notes.append(Drop(n, "image_in_several_pairs",
                                             f"kept with its first pair, not {p.pair_id}"))
                    continue
                identity_of[n] = f"pair_{p.pair_id}"
                split_of[n] = "train"
    return split_of, identity_of


# ---------------------------------------------------------------- LAG

def read_lag(folder: str, test_fraction: float = 0.1, split_seed: int = 0) -> IdentitySource:
    """Reads LAG's ``labels.csv`` (``path, identity, age_group`` = young / old).

    People are split, not images: ``test_fraction`` of the identities (a seeded hash of the
    identity name, ``build.hash_unit``; stable when others are added) are held out.
    """
    path = os.path.join(folder, "labels.csv")
    rows = _read_csv(path, ("path", "identity", "age_group"))
    source = IdentitySource("lag", framing=framing.MEASURED["lag"])
    seen = set()
    for number, row in rows:
        source.records_read += 1
        item = f"labels.csv:{number}"
        rel = (row["path"] or "").strip()
        identity = (row["identity"] or "").strip()
        group = (row["age_group"] or "").strip()
        if not rel or not identity or group not in ("young", "old"):
            source.drops.append(Drop(item, "malformed_record",
                                     f"expected path, identity, age_group young/old; got "
                                     f"{rel!r}, {identity!r}, {group!r}"))
            continue
        name = _dataset_name(rel)
        if name in seen:
            source.drops.append(Drop(item, "malformed_record", f"{rel} listed twice"))
            continue
        seen.add(name)
        source.original[name] = rel
        record = Record(source=os.path.join(folder, rel), name=name, identity=identity)
        split = "test" if build.hash_unit(build.split_key(record), split_seed) < test_fraction \
            else "train"
        source.records.append(record)
        source.split_of[name] = split
        source.young_old[name] = group
    source.info = {"test_fraction": test_fraction, "split_seed": split_seed}
    return source


def cross_age_triples(source: IdentitySource, kept: Dict[str, str], ids: Dict[str, int],
                      mode: str = "all") -> List[Tuple[int, str, str]]:
    """``(identity id, young path, old path)`` for held-out people with both kinds of photo.

    ``kept`` maps record name -> crop path (only crops that exist). ``all``: every young x
    old combination; ``one``: the first young and the first old photo (by crop path).
    """
    if mode not in CROSS_AGE_MODES:
        raise ValueError(f"cross-age mode must be one of {CROSS_AGE_MODES}, got {mode!r}")
    by_person: Dict[str, Dict[str, List[str]]] = defaultdict(lambda: {"young": [], "old": []})
    for r in source.records:
        if source.split_of[r.name] == "test" and r.name in kept and r.identity is not None:
            by_person[r.identity][source.young_old[r.name]].append(kept[r.name])
    triples = []
    for person in sorted(by_person):
        young, old = sorted(by_person[person]["young"]), sorted(by_person[person]["old"])
        if mode == "one":
            young, old = young[:1], old[:1]
        triples.extend((ids[person], y, o) for y in young for o in old)
    return triples


# ---------------------------------------------------------------- the run

def prepare_identity(source: IdentitySource, out_dir: str, *,
                     settings: Optional[build.CropSettings] = None, num_workers: int = 1,
                     overwrite: bool = False, cross_age: str = "all",
                     progress_stream=None) -> dict:
    """Crops ``source`` into ``out_dir`` and writes its identity and verification lists.

    ``settings.crop='auto'`` re-frames each image like UTKFace's crops: the fixed square
    ``framing.frame_fractions(source.framing)`` cut at margin ``settings.margin`` (0 keeps
    UTKFace's framing; more adds that fraction of the square on each side). ``whole`` and
    ``detect`` behave as in ``build.prepare``. Returns the summary (also in summary.json).
    """
    start = time.monotonic()
    settings = settings or build.CropSettings(image_size=DEFAULT_IMAGE_SIZE, margin=0.0)
    records, extra = _framed_records(source, settings)
    os.makedirs(out_dir, exist_ok=True)
    build.check_output_folder(out_dir, settings, overwrite, extra)
    rel_of, status, crop_drops, crop_notes = build.write_crops(
        records, out_dir, settings, num_workers, overwrite, progress_stream)
    drops = list(source.drops) + crop_drops
    notes = list(source.notes) + crop_notes
    kept = {records[i].name: rel_of[i] for i in range(len(records))
            if status.get(i) in ("written", "existing")}
    for r in records:
        if build.output_name(r.name) != f"{build.IMAGES_DIR}/{r.name}" and r.name in kept:
            notes.append(Drop(r.name, "renamed_to_a_safe_name", kept[r.name]))
    people, ids, entries = _write_identity_lists(out_dir, source, kept)
    summary_extra = _write_pair_lists(out_dir, source, kept, ids, people, cross_age, drops)
    elapsed = time.monotonic() - start
    states = [status.get(i) for i in range(len(records))]
    summary = {
        "dataset": source.dataset,
        "kind": "identity",
        "output_dir": os.path.abspath(out_dir),
        "records_read": source.records_read,
        "records_selected": len(records),
        "kept": len(kept),
        "dropped_total": len(drops),
        "dropped": build.examples(drops),
        "notes": build.examples(notes),
        "images_written": states.count("written"),
        "images_existing": states.count("existing"),
        "images": {split: sum(1 for r in records if r.name in kept and source.split_of[r.name]
                              == split) for split in ("train", "test")},
        "identity_images": {split: len(entries[split]) for split in ("train", "test")},
        "identities": {split: len({i for _, i in entries[split]}) for split in ("train", "test")},
        "lists": [lists.TRAIN_IDENTITY_LIST, lists.TEST_IDENTITY_LIST, build.IDENTITY_NAMES,
                  ORIGINAL_NAMES] + [v["file"] for v in summary_extra.values()],
        "age_lists": None,
        "settings": settings.as_dict(),
        **extra,
        **source.info,
        **summary_extra,
        "seconds": round(elapsed, 2),
        "images_per_second": round(len(records) / elapsed, 1) if elapsed > 0 else None,
    }
    build.write_run_record(out_dir, summary, drops)
    return summary


def _framed_records(source: IdentitySource, settings: build.CropSettings
                    ) -> Tuple[List[Record], dict]:
    """The records to crop (with the re-framing box for ``crop='auto'``) and what the framing
    adds to ``prepare_config.json``."""
    if settings.crop not in ("auto", "whole", "detect"):
        raise build.PrepareError(f"--crop={settings.crop}: identity datasets take auto "
                                 "(re-framed like UTKFace), whole or detect")
    if settings.crop == "detect":
        ok, reason = build.faces.detector_status()
        if not ok:
            raise build.PrepareError(f"--crop=detect: {reason}")
    records = list(source.records)
    if settings.crop != "auto":
        return records, {}
    box = framing.frame_fractions(source.framing)
    extra = {"framing_source": vars(source.framing),
             "framing_target": vars(framing.MEASURED[framing.TARGET]),
             "frame_fractions": [round(v, 6) for v in box]}
    return [Record(source=r.source, name=r.name, identity=r.identity, box=box)
            for r in records], extra


def _write_identity_lists(out_dir: str, source: IdentitySource, kept: Dict[str, str]):
    """Writes the identity lists, identity names and original names; returns ``(people per
    split, identity key -> id, (path, id) entries per split)``.

    Identities: train ids 0..K-1, then test ids, each block in sorted key order. A key with
    images on both sides (impossible by construction) would be a bug: refused.
    """
    people = {split: sorted({r.identity for r in source.records if r.name in kept
                             and r.identity is not None and source.split_of[r.name] == split})
              for split in ("train", "test")}
    both = set(people["train"]) & set(people["test"])
    if both:
        raise build.PrepareError(f"identity {sorted(both)[0]} is in both splits")
    ids = {key: k for k, key in enumerate(people["train"] + people["test"])}
    entries = {"train": [], "test": []}
    for r in source.records:
        if r.name in kept and r.identity is not None:
            entries[source.split_of[r.name]].append((kept[r.name], ids[r.identity]))
    for split, list_name in (("train", lists.TRAIN_IDENTITY_LIST),
                             ("test", lists.TEST_IDENTITY_LIST)):
        entries[split] = sorted(entries[split])
        lists.write_image_list(os.path.join(out_dir, list_name), entries[split])
    files.atomic_write_lines(os.path.join(out_dir, build.IDENTITY_NAMES),
                             (f"{k} {key}" for key, k in sorted(ids.items(), key=lambda p: p[1])))
    write_original_names(os.path.join(out_dir, ORIGINAL_NAMES),
                         [(kept[r.name], source.original.get(r.name, r.name))
                          for r in source.records if r.name in kept])
    return people, ids, entries


def _write_pair_lists(out_dir: str, source: IdentitySource, kept: Dict[str, str],
                      ids: Dict[str, int], people: Dict[str, List[str]], cross_age: str,
                      drops: List[Drop]) -> dict:
    """CACD-VS's verification pairs or LAG's cross-age pairs (pairs that lost an image are
    added to ``drops``); returns their summary entries."""
    summary_extra = {}
    if source.dataset == "cacd_vs":
        rows, lost = [], 0
        for p in source.pairs:
            if p.name_0 in kept and p.name_1 in kept:
                rows.append((p.pair_id, p.fold, int(p.same), kept[p.name_0], kept[p.name_1]))
            else:
                lost += 1
                drops.append(Drop(f"pair {p.pair_id}", "pair_image_not_kept",
                                  "an image of this verification pair was dropped"))
        write_pairs(os.path.join(out_dir, VERIFICATION_PAIRS), rows)
        summary_extra["verification_pairs"] = {
            "file": VERIFICATION_PAIRS, "pairs": len(rows),
            "same": sum(1 for r in rows if r[2] == 1), "different": sum(1 for r in rows if r[2] == 0),
            "folds": sorted({r[1] for r in rows}), "lost_to_dropped_images": lost}
    if source.dataset == "lag":
        triples = cross_age_triples(source, kept, ids, cross_age)
        write_cross_age(os.path.join(out_dir, CROSS_AGE_LIST), triples)
        people_with_pairs = len({t[0] for t in triples})
        summary_extra["cross_age_pairs"] = {
            "file": CROSS_AGE_LIST, "mode": cross_age, "pairs": len(triples),
            "people": people_with_pairs,
            "held_out_people_without_young_and_old": len(people["test"]) - people_with_pairs}
    return summary_extra


# ---------------------------------------------------------------- the extra list files

def write_original_names(path: str, rows: Sequence[Tuple[str, str]]) -> None:
    """``path<TAB>original`` with a header, CSV-quoted where a name needs it; atomic."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, delimiter="\t", lineterminator="\n")
    writer.writerow(("path", "original"))
    writer.writerows(sorted(rows))
    files.atomic_write_lines(path, [buffer.getvalue().rstrip("\n")])


def read_original_names(path: str) -> Dict[str, str]:
    """Crop path -> the dataset's own name, from ``original_names.tsv``."""
    with open(path, newline="", encoding="utf-8") as f:
        rows = list(csv.reader(f, delimiter="\t"))
    return {row[0]: row[1] for row in rows[1:] if len(row) == 2}


def write_pairs(path: str, rows: Sequence[Tuple[str, int, int, str, str]]) -> None:
    """``pair_id fold same path_0 path_1`` lines under a ``#`` header; atomic."""
    lines = [PAIRS_HEADER]
    for pair_id, fold, same, path_0, path_1 in rows:
        for p in (str(pair_id), path_0, path_1):
            lists.check_list_path(p)
        lines.append(f"{pair_id} {int(fold)} {int(same)} {path_0} {path_1}")
    files.atomic_write_lines(path, lines)


def read_pairs(path: str) -> List[Tuple[str, int, bool, str, str]]:
    """Reads ``verification_pairs.txt``: ``(pair_id, fold, same, path_0, path_1)``.

    Lines starting with ``#`` and blank lines are skipped. Raises ListFormatError (file
    and line named) for a missing file, a line without exactly 5 fields, a fold that is not
    an integer or a ``same`` that is not 1 / 0, or no pairs at all.
    """
    rows = []
    for number, fields in _fields(path, 5, "pair_id fold same path_0 path_1"):
        pair_id, fold, same, path_0, path_1 = fields
        if not _is_int(fold) or same not in ("0", "1"):
            raise lists.ListFormatError(f"{path}:{number}: fold must be an integer and same "
                                        f"1 or 0, got fold {fold!r}, same {same!r}")
        rows.append((pair_id, int(fold), same == "1", path_0, path_1))
    if not rows:
        raise lists.ListFormatError(f"{path}: no pairs")
    return rows


def write_cross_age(path: str, rows: Sequence[Tuple[int, str, str]]) -> None:
    """``identity young_path old_path`` lines under a ``#`` header; atomic."""
    lines = [CROSS_AGE_HEADER]
    for identity, young, old in rows:
        lists.check_list_path(young)
        lists.check_list_path(old)
        lines.append(f"{int(identity)} {young} {old}")
    files.atomic_write_lines(path, lines)


def read_cross_age(path: str) -> List[Tuple[int, str, str]]:
    """Reads ``test_cross_age.txt``: ``(identity, young_path, old_path)``; errors as
    :func:`read_pairs`."""
    rows = []
    for number, fields in _fields(path, 3, "identity young_path old_path"):
        if not _is_int(fields[0]):
            raise lists.ListFormatError(f"{path}:{number}: identity must be an integer, got "
                                        f"{fields[0]!r}")
        rows.append((int(fields[0]), fields[1], fields[2]))
    if not rows:
        raise lists.ListFormatError(f"{path}: no cross-age pairs")
    return rows


def _fields(path: str, count: int, layout: str):
    if not os.path.isfile(path):
        raise lists.ListFormatError(f"{path}: list file not found")
    try:
        with open(path, encoding="utf-8") as f:
            lines = f.read().splitlines()
    except UnicodeDecodeError as e:
        raise lists.ListFormatError(f"{path}: not UTF-8 text ({e.reason})") from None
    for number, line in enumerate(lines, 1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        fields = line.split(" ")
        if len(fields) != count or not all(fields):
            raise lists.ListFormatError(f"{path}:{number}: expected '{layout}' ({count} fields "
                                        f"separated by single spaces), got {line!r}")
        yield number, fields


def _is_int(text: str) -> bool:
    try:
        int(text)
    except ValueError:
        return False
    return True
