"""Turns dataset ``Record``s into the release's layout (spec §4): crops, lists, summary.

Output folder (``root_folder`` and ``list_dir`` of the trainer are both this folder)::

    images/<dataset path>.jpg           crops, image_size x image_size, RGB JPEG
    train.txt, test.txt                 "images/... group"
    train_age_group_k.txt, test_...     one file per non-empty group k (none for an empty group)
    train_label_pair.txt                "t f" pairs, t != f, t a group with training images
    train_identity.txt, test_...        "images/... identity" (datasets with identities)
    identity_names.txt                  "identity name" when identities are names
    train_age.txt, test_age.txt         "images/... age" (whole years; datasets with ages)
    summary.json, summary.png           what was read, kept, dropped and why; group counts
    dropped.tsv                         every dropped item: item, reason, detail
    prepare_config.json                 the crop settings the images were made with

Guarantees: every file is written by ``face_aging.files`` (a temporary name, then a rename),
so a crop that exists is complete, and a run first removes the temporary files a killed run
left; lists are written only after every image is done, so an interrupted run never leaves a
list naming a missing image; a re-run skips the crops that exist (``overwrite`` redoes them)
and refuses an output folder made with other crop settings.

Image decoding (``face_aging.images``, the one reader) and what is kept: zero-byte, truncated
and undecodable files are dropped and reported. Grayscale images are converted to RGB and
kept; images with an alpha channel are composited on white and kept (fully opaque alpha is
simply removed); CMYK/palette images are converted. Each conversion is counted in the summary
(``notes``, by ``images.Note.kind``). EXIF orientation is ignored when the dataset gives a face
box (boxes refer to the stored pixels) and applied otherwise.
"""
from __future__ import annotations

import hashlib
import json
import multiprocessing
import os
import re
import time
from collections import Counter, defaultdict
from dataclasses import dataclass
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np

from face_aging import faces, files, images, progress
from face_aging.data import lists
from face_aging.data.ages import age_group, group_names
from face_aging.data.framing import FractionBox
from face_aging.data.sources import Drop, Record, SourceResult
from face_aging.errors import FaceAgingError, InputError

IMAGES_DIR = "images"
SUMMARY_JSON = "summary.json"
SUMMARY_PNG = "summary.png"
DROPPED_TSV = "dropped.tsv"
CONFIG_JSON = "prepare_config.json"
IDENTITY_NAMES = "identity_names.txt"
EXAMPLES_PER_REASON = 5
CROP_MODES = ("auto", "metadata", "detect", "whole")


class PrepareError(FaceAgingError):
    """A problem that stops the whole run (the message is one line naming the cause)."""


class ImageProblem(InputError):
    def __init__(self, reason: str, detail: str):
        super().__init__(detail)
        self.reason = reason
        self.detail = detail


@dataclass
class CropSettings:
    """What decides the pixels of a crop (recorded in ``prepare_config.json``)."""
    crop: str = "auto"            # auto | metadata | detect | whole
    margin: float = faces.DEFAULT_MARGIN
    image_size: int = faces.DEFAULT_CROP_SIZE
    align: bool = True
    jpeg_quality: int = 95
    min_box_inside: float = 0.5   # metadata boxes mostly outside the image are dropped

    def as_dict(self) -> dict:
        return dict(crop=self.crop, margin=self.margin, image_size=self.image_size,
                    align=self.align, jpeg_quality=self.jpeg_quality,
                    min_box_inside=self.min_box_inside)


# ---------------------------------------------------------------- one image

def make_crop(image: np.ndarray, box: Optional[Sequence[float]], settings: CropSettings) -> np.ndarray:
    """The crop of one decoded image under ``settings`` (``crop`` already resolved)."""
    h, w = image.shape[:2]
    mode = settings.crop
    if mode == "metadata":
        if box is None:
            mode = "whole"
        else:
            inside = faces.box_inside_fraction(box, h, w)
            if inside < settings.min_box_inside:
                raise ImageProblem("face_box_outside_image",
                                   f"only {inside:.0%} of box {tuple(round(v) for v in box)} "
                                   f"lies in the {w}x{h} image")
    if mode == "whole":
        return faces.crop_with_margin(image, faces.centre_square(h, w), 0.0, settings.image_size)
    try:
        located = faces.locate_faces(  # detect mode: the largest face; else the given box
            image, margin=settings.margin, size=settings.image_size,
            align=settings.align and faces.detector_status()[0],
            boxes=None if mode == "detect" else [box])
    except faces.FaceDetectionUnavailable as e:
        raise ImageProblem("detector_unavailable", str(e))
    if not located:
        raise ImageProblem("no_face_detected", "Haar cascade found no frontal face")
    return located[0].crop


def process_one(task) -> Tuple[int, str, str, List[str]]:
    """Worker: ``(index, source, output, box, settings, overwrite)`` ->
    ``(index, status, detail, notes)``; status is ``written``, ``existing`` or a drop reason."""
    index, source, output, box, settings, overwrite = task
    if not overwrite and os.path.exists(output):
        return index, "existing", "", []
    try:
        image, notes = images.read_image(source, min_side=2,
                                         apply_exif=box is None or settings.crop != "metadata")
        if isinstance(box, FractionBox):
            box = box.pixels(image.shape[1], image.shape[0])
        crop = make_crop(image, box, settings)
        files.atomic_write_image(output, crop, settings.jpeg_quality)
    except images.BadImageError as e:  # its kind: missing_file, empty_file, truncated_image, ...
        return index, e.kind, e.reason, []
    except ImageProblem as e:
        return index, e.reason, e.detail, []
    except Exception as e:  # one bad image must never stop the run
        return index, "unreadable_image", f"{type(e).__name__}: {e}", []
    return index, "written", "", [note.kind for note in notes]


def _worker_init():
    import cv2
    cv2.setNumThreads(1)


# ---------------------------------------------------------------- names, split, pairs

_SAFE = re.compile(r"[^A-Za-z0-9._/-]")


def output_name(name: str) -> str:
    """Output path (relative to the root) of a dataset-relative image name: ``images/<name>.jpg``.

    Characters other than letters, digits, ``. _ - /`` become ``_``; when that changed the
    name, 8 hex digits of its hash are appended so two names cannot collide.
    """
    name = name.replace(os.sep, "/").lstrip("/")
    stem, ext = os.path.splitext(name)
    if ext.lower() not in (".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff"):
        stem = name
    safe = _SAFE.sub("_", stem)
    safe = "/".join(part if part not in ("", ".", "..") else "_" for part in safe.split("/"))
    if safe != stem:
        safe += "_" + hashlib.sha1(name.encode("utf-8")).hexdigest()[:8]
    return f"{IMAGES_DIR}/{safe}.jpg"


def hash_unit(key: str, seed: int) -> float:
    """A number in [0, 1) fixed by ``(seed, key)``: the seeded hash behind splits and subsets."""
    digest = hashlib.sha256(f"{seed}\x00{key}".encode("utf-8")).digest()
    return int.from_bytes(digest[:8], "big") / 2.0 ** 64


def split_key(record: Record) -> str:
    """What the split hashes: the identity where there is one (a person never straddles
    the splits), else the image name."""
    return f"id:{record.identity}" if record.identity is not None else f"file:{record.name}"


def assign_split(record: Record, test_fraction: float, seed: int) -> str:
    return "test" if hash_unit(split_key(record), seed) < test_fraction else "train"


def make_label_pairs(train_groups: Sequence[int], num_groups: int, count: int,
                     seed: int) -> List[Tuple[int, int]]:
    """``count`` pairs ``(t, f)``: t uniform over ``train_groups`` (groups with training
    images), f uniform over the other groups of ``range(num_groups)``; seeded."""
    train_groups = sorted(set(train_groups))
    if not train_groups:
        raise PrepareError("no training images were kept: cannot make label pairs")
    if num_groups < 2:
        raise PrepareError("need at least 2 age groups for label pairs")
    rng = np.random.default_rng(seed)
    t = rng.choice(np.asarray(train_groups), size=count)
    offset = rng.integers(1, num_groups, size=count)  # f = t + offset (mod G), never t
    f = (t + offset) % num_groups
    return list(zip(t.tolist(), f.tolist()))


# ---------------------------------------------------------------- the run

def check_output_folder(out_dir: str, settings: CropSettings, overwrite: bool,
                        extra: Optional[dict] = None) -> None:
    """Records the crop settings (plus ``extra``, e.g. a dataset's framing) in
    ``prepare_config.json``; refuses a folder whose crops were made otherwise."""
    path = os.path.join(out_dir, CONFIG_JSON)
    wanted = {**settings.as_dict(), **(extra or {})}
    if os.path.isfile(path) and not overwrite:
        try:
            with open(path, encoding="utf-8") as f:
                old = json.load(f)
        except (OSError, ValueError):
            old = None
        if old != wanted:
            diff = ", ".join(f"{k}={old.get(k) if isinstance(old, dict) else '?'}->{v}"
                             for k, v in wanted.items()
                             if not isinstance(old, dict) or old.get(k) != v)
            raise PrepareError(f"{out_dir}: already holds crops made with other settings ({diff}); "
                               "use another --output_dir or pass --overwrite")
    files.atomic_write_json(path, wanted)


def examples(drops: Sequence[Drop]) -> dict:
    """``{reason: {"count", "examples": the first few items and details}}`` for a summary."""
    by_reason = defaultdict(list)
    for d in drops:
        by_reason[d.reason].append(d)
    return {reason: {"count": len(items),
                     "examples": [{"item": d.item, "detail": d.detail}
                                  for d in items[:EXAMPLES_PER_REASON]]}
            for reason, items in sorted(by_reason.items())}


def write_crops(records: Sequence[Record], out_dir: str, settings: CropSettings,
                num_workers: int = 1, overwrite: bool = False, progress_stream=None):
    """Crops every record into ``out_dir/images/...`` (in ``num_workers`` processes).

    ``crop='auto'`` means the record's box (``metadata``) if it has one, else ``whole``.
    Returns ``(rel_of, status, drops, notes)``: the output path (relative to ``out_dir``)
    of each record index, its status (``written``, ``existing`` or a drop reason), the
    ``Drop`` of every failed image and the conversions made (as ``Drop`` notes).
    """
    files.remove_temporaries(os.path.join(out_dir, IMAGES_DIR))  # a killed run's half-writes
    outputs: Dict[str, int] = {}
    tasks = []
    for i, r in enumerate(records):
        rel = output_name(r.name)
        if rel in outputs:  # two dataset names mapping to one output: keep them apart
            rel = rel[:-4] + "_" + hashlib.sha1(r.source.encode("utf-8")).hexdigest()[:8] + ".jpg"
        outputs[rel] = i
        record_settings = settings
        if settings.crop == "auto":
            record_settings = CropSettings(**{**settings.as_dict(),
                                              "crop": "metadata" if r.box is not None else "whole"})
        tasks.append((i, r.source, os.path.join(out_dir, rel), r.box, record_settings, overwrite))
    rel_of = {i: rel for rel, i in outputs.items()}

    status: Dict[int, str] = {}
    drops: List[Drop] = []
    notes: List[Drop] = []
    images = progress.bar(len(tasks), "prepare", unit="image", stream=progress_stream)
    pool = None
    try:
        if num_workers > 1 and len(tasks) > 1:
            ctx = multiprocessing.get_context("spawn")
            pool = ctx.Pool(num_workers, initializer=_worker_init)
            chunk = max(1, min(64, len(tasks) // (num_workers * 8) or 1))
            results_iter = pool.imap_unordered(process_one, tasks, chunksize=chunk)
        else:
            results_iter = map(process_one, tasks)
        for i, state, detail, image_notes in results_iter:
            status[i] = state
            r = records[i]
            if state not in ("written", "existing"):
                drops.append(Drop(r.name, state, detail))
            for n in image_notes:
                notes.append(Drop(r.name, n, ""))
            images.update(1)
    finally:
        if pool is not None:
            pool.terminate()
            pool.join()
    images.close()
    return rel_of, status, drops, notes


def prepare(source: SourceResult, out_dir: str, *, dataset: str = "", age_bins=(20, 30, 40, 50),
            settings: Optional[CropSettings] = None, test_fraction: float = 0.1, split_seed: int = 0,
            label_pairs: int = 200000, label_pair_seed: int = 0, num_workers: int = 1,
            limit: Optional[int] = None, overwrite: bool = False, progress_stream=None,
            histogram: bool = True) -> dict:
    """Writes crops, lists and the summary for ``source`` into ``out_dir``; returns the summary.

    Args:
      source: what a reader of ``face_aging.data.sources`` returned.
      age_bins: bin edges (see ``face_aging.data.ages``); ``len(age_bins) + 1`` groups.
      settings: crop settings; ``crop='auto'`` means the record's box if it has one, else
        the whole image (centre square).
      test_fraction: share of identities (or images, where there are none) put in test.
      limit: keep only this many records, chosen by the seeded hash (deterministic).
      num_workers: processes decoding and cropping (1 = in this process).
      progress_stream: where the progress bar (images, rate, ETA) goes, default stderr; a
        bar is drawn only if it is a terminal (``face_aging.progress.bar``).
    """
    start = time.monotonic()
    settings = settings or CropSettings()
    _check_settings(settings)
    records, drops = _select_records(source, age_bins, limit, split_seed)
    os.makedirs(out_dir, exist_ok=True)
    check_output_folder(out_dir, settings, overwrite)
    rel_of, status, crop_drops, crop_notes = write_crops(records, out_dir, settings, num_workers,
                                                         overwrite, progress_stream)
    drops.extend(crop_drops)
    notes: List[Drop] = list(source.notes) + crop_notes
    # Lists: only images that exist now, written last and atomically.
    kept = [i for i in range(len(records)) if status.get(i) in ("written", "existing")]
    splits = {"train": [], "test": []}
    for i in kept:
        splits[assign_split(records[i], test_fraction, split_seed)].append(i)
    counts = _write_group_lists(out_dir, records, rel_of, splits, len(age_bins) + 1)
    train_groups = [g for g in range(len(age_bins) + 1) if counts["train"][g] > 0]
    pairs = make_label_pairs(train_groups, len(age_bins) + 1, label_pairs, label_pair_seed)
    lists.write_label_pairs(os.path.join(out_dir, lists.LABEL_PAIR_LIST), pairs)

    elapsed = time.monotonic() - start
    state_counts = Counter(status.values())
    summary = {
        "dataset": dataset,
        "output_dir": os.path.abspath(out_dir),
        "records_read": source.records_read,
        "records_selected": len(records),
        "kept": len(kept),
        "dropped_total": len(drops),
        "dropped": examples(drops),
        "notes": examples(notes),
        "images_written": state_counts.get("written", 0),
        "images_existing": state_counts.get("existing", 0),
        "age_bins": list(age_bins),
        "group_names": group_names(age_bins),
        "groups": counts,
        "identities": {s: len({records[i].identity for i in idx if records[i].identity is not None})
                       for s, idx in splits.items()},
        "label_pairs": len(pairs),
        "label_pair_groups": train_groups,
        "settings": settings.as_dict(),
        "test_fraction": test_fraction,
        "split_seed": split_seed,
        "seconds": round(elapsed, 2),
        "images_per_second": round(len(records) / elapsed, 1) if elapsed > 0 else None,
    }
    warnings = _warnings(counts["train"], settings, records)
    if warnings:
        summary["warnings"] = warnings
    write_run_record(out_dir, summary, drops)
    if histogram:
        write_histogram(os.path.join(out_dir, SUMMARY_PNG), summary,
                        [records[i].age for i in kept if records[i].age is not None])
    return summary


def _check_settings(settings: CropSettings) -> None:
    if settings.crop not in CROP_MODES:
        raise PrepareError(f"crop must be one of {', '.join(CROP_MODES)}, got {settings.crop!r}")
    if settings.crop == "detect":
        ok, reason = faces.detector_status()
        if not ok:
            raise PrepareError(f"--crop=detect: {reason}")


def _select_records(source: SourceResult, age_bins, limit: Optional[int],
                    split_seed: int) -> Tuple[List[Record], List[Drop]]:
    """The records with a group in range (each given its ``group``), at most ``limit`` of them
    chosen by the seeded hash; and the drops so far (the source's and out-of-range ones)."""
    num_groups = len(age_bins) + 1
    drops: List[Drop] = list(source.drops)
    records: List[Record] = []
    for r in source.records:
        group = r.group if r.group is not None else (age_group(r.age, age_bins) if r.age is not None else None)
        if group is None:
            drops.append(Drop(r.name, "malformed_record", "no age and no group"))
        elif group >= num_groups:
            drops.append(Drop(r.name, "group_out_of_range", f"group {group} >= {num_groups} groups"))
        else:
            r.group = group
            records.append(r)
    if limit is not None and limit < len(records):
        chosen = sorted(records, key=lambda r: hash_unit("limit:" + r.name, split_seed))[:limit]
        names = {r.name for r in chosen}
        records = [r for r in records if r.name in names]
    return records, drops


def _write_group_lists(out_dir: str, records: Sequence[Record], rel_of: Dict[int, str],
                       splits: Dict[str, List[int]], num_groups: int) -> Dict[str, List[int]]:
    """Writes each split's lists (``train.txt``, per-group, identity and age lists, identity
    names); returns the images per group of each split."""
    kept = [i for idx in splits.values() for i in idx]
    has_identity = any(records[i].identity is not None for i in kept)
    identity_ids: Dict[str, int] = {}
    if has_identity:
        raw = sorted({records[i].identity for i in kept if records[i].identity is not None})
        if all(x.isdigit() for x in raw):
            identity_ids = {x: int(x) for x in raw}
        else:
            identity_ids = {x: k for k, x in enumerate(raw)}
            files.atomic_write_lines(os.path.join(out_dir, IDENTITY_NAMES),
                                     (f"{k} {x}" for x, k in sorted(identity_ids.items(), key=lambda p: p[1])))
    has_age = any(records[i].age is not None for i in kept)
    counts = {}
    for split, idx in splits.items():
        idx = sorted(idx, key=lambda i: rel_of[i])
        entries = [(rel_of[i], records[i].group) for i in idx]
        for g in range(num_groups):
            group_path = os.path.join(out_dir, lists.age_group_list(split, g))
            group_entries = [e for e in entries if e[1] == g]
            if group_entries:
                lists.write_image_list(group_path, group_entries)
            elif os.path.exists(group_path):  # an empty group has no list file (nor a stale one)
                os.remove(group_path)
        if has_identity:
            lists.write_image_list(os.path.join(out_dir, f"{split}_identity.txt"),
                                   [(rel_of[i], identity_ids[records[i].identity]) for i in idx
                                    if records[i].identity is not None])
        if has_age:
            lists.write_image_list(os.path.join(out_dir, f"{split}_age.txt"),
                                   [(rel_of[i], int(round(records[i].age))) for i in idx
                                    if records[i].age is not None])
        lists.write_image_list(os.path.join(out_dir, lists.TRAIN_LIST if split == "train"
                                            else lists.TEST_LIST), entries)
        counts[split] = [sum(1 for e in entries if e[1] == g) for g in range(num_groups)]
    return counts


def _warnings(train_counts: Sequence[int], settings: CropSettings,
              records: Sequence[Record]) -> List[str]:
    warnings = []
    empty = [g for g, count in enumerate(train_counts) if count == 0]
    if empty:
        warnings.append(f"no training images in group(s) {empty}: no list file for them, "
                        "and no label pair targets them")
    if settings.align and settings.crop in ("auto", "metadata", "detect") and any(
            r.box is not None for r in records) and not faces.detector_status()[0]:
        warnings.append("--align: eye detection unavailable here, crops were not levelled ("
                        + faces.detector_status()[1] + ")")
    return warnings


def write_run_record(out_dir: str, summary: dict, drops: Sequence[Drop]) -> None:
    """Writes ``dropped.tsv`` (every dropped item: item, reason, detail) and ``summary.json``:
    the last files of a run (``prepare``, ``identity.prepare_identity``)."""
    files.atomic_write_lines(os.path.join(out_dir, DROPPED_TSV),
                             ["item\treason\tdetail"] +
                             [f"{d.item}\t{d.reason}\t{d.detail}".replace("\n", " ") for d in drops])
    files.atomic_write_json(os.path.join(out_dir, SUMMARY_JSON), summary)


def write_histogram(path: str, summary: dict, ages: Sequence[float]) -> None:
    """PNG: images per group and split (left) and the age histogram of kept images (right)."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    names = summary["group_names"]
    x = np.arange(len(names))
    fig, axes = plt.subplots(1, 2 if len(ages) else 1, figsize=(11 if len(ages) else 6, 4), squeeze=False)
    ax = axes[0][0]
    ax.bar(x - 0.2, summary["groups"]["train"], 0.4, label="train")
    ax.bar(x + 0.2, summary["groups"]["test"], 0.4, label="test")
    ax.set_xticks(x, [f"{k}\n{n}" for k, n in enumerate(names)])
    ax.set_xlabel("age group")
    ax.set_ylabel("images")
    ax.set_title(f"{summary['dataset']}: {summary['kept']} kept of {summary['records_read']} read")
    ax.legend()
    if len(ages):
        ax2 = axes[0][1]
        ax2.hist(ages, bins=np.arange(0, max(ages) + 2, 1), color="gray")
        for edge in summary["age_bins"]:
            ax2.axvline(edge + 0.5, color="red", lw=0.8)
        ax2.set_xlabel("age (years); red: group edges")
        ax2.set_ylabel("images")
    fig.tight_layout()
    with files.atomic_path(path, suffix=".png") as temporary:
        fig.savefig(temporary, dpi=80)
    plt.close(fig)
