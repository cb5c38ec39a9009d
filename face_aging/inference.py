"""Inference over image files, whatever the model: read user images robustly, find faces, write
the outputs of a test run.

- :func:`process_image_files` -- the model-independent part of a test run (reading, face
  crops, output layout, one line per bad file), shared by ``face_aging.ipcgan.inference``
  and ``face_aging.cyclegan.inference``: the model is a ``render`` function.
- :class:`FaceCrop`, :func:`recorded_face_crop` -- how a model's training faces were framed,
  as recorded beside its weights.

The IPCGAN generator (loading it, aging faces, the age targets) is
``face_aging.ipcgan.inference``. TensorFlow is not imported here: test.py's ``--help`` and its
checks of the input answer before TensorFlow loads.
"""
from __future__ import annotations

import dataclasses
import os
import sys
from typing import Callable, List, Optional, Sequence, Tuple

import numpy as np

from face_aging.images import BadImageError, list_image_files, read_image

# --------------------------------------------------------------------------- recorded options


#: Beside a checkpoint, the options inference needs: ``model.json`` (the bundled model) or
#: ``training_options.json`` (written by ``train_ipcgan.py``).
RECORDED_OPTIONS_FILES = ("model.json", "training_options.json")


def recorded_options_file(checkpoint_dir: Optional[str]) -> Tuple[Optional[str], dict]:
    """``(path, contents)`` of the first of :data:`RECORDED_OPTIONS_FILES` beside a checkpoint,
    ``(None, {})`` if there is none."""
    if not checkpoint_dir:
        return None, {}
    folder = checkpoint_dir if os.path.isdir(checkpoint_dir) else os.path.dirname(checkpoint_dir)
    for name in RECORDED_OPTIONS_FILES:
        path = os.path.join(folder, name)
        if os.path.isfile(path):
            import json
            try:
                with open(path) as f:
                    options = json.load(f)
            except (OSError, ValueError) as e:
                raise ValueError(f"{path}: not readable JSON ({e})") from None
            return path, options if isinstance(options, dict) else {}
    return None, {}


@dataclasses.dataclass(frozen=True)
class FaceCrop:
    """How a model's training faces were framed, so that ``test.py --detect_faces`` cuts
    faces the same way (``faces.crop_with_margin``).

    Attributes:
      margin: added on each side of the detector's box, as a fraction of its larger side.
      align: eyes levelled before cropping.
      recorded_in: the file it was read from (for messages).
    """
    margin: float
    align: bool = True
    recorded_in: Optional[str] = None

    def as_dict(self) -> dict:
        """The ``face_crop`` entry of ``model.json`` (without ``recorded_in``)."""
        return {"margin": float(self.margin), "align": bool(self.align)}


#: The data tool's record of a prepared dataset (``face_aging.data.build``).
DATASET_SUMMARY = "summary.json"


def dataset_face_crop(list_dir: Optional[str]) -> Optional[FaceCrop]:
    """The crop geometry a prepared dataset records (``LIST_DIR/summary.json``), if its faces
    were cut around face boxes (``--crop=detect`` or ``metadata``, or ``auto`` on IMDB-WIKI's
    boxes); None for whole-image crops (e.g. UTKFace's own aligned crops, whose framing only a
    measurement can give: scripts/measure_face_margin.py) or when there is no summary."""
    if not list_dir:
        return None
    path = os.path.join(list_dir, DATASET_SUMMARY)
    try:
        import json
        with open(path) as f:
            summary = json.load(f)
        settings = summary["settings"]
        crop, margin = settings["crop"], float(settings["margin"])
    except (OSError, ValueError, KeyError, TypeError):
        return None
    if crop in ("detect", "metadata") or (crop == "auto" and summary.get("dataset") == "imdb_wiki"):
        return FaceCrop(margin, bool(settings.get("align", True)), path)
    return None


def recorded_face_crop(checkpoint_dir: Optional[str]) -> Optional[FaceCrop]:
    """The crop geometry recorded beside a checkpoint or export: ``model.json``'s ``face_crop``
    (the bundled model, an export), else the dataset of the run's ``training_options.json``
    (:func:`dataset_face_crop` of its ``list_dir``); None if nothing says.

    Raises:
      ValueError: one line, if the recorded entry is malformed.
    """
    path, options = recorded_options_file(checkpoint_dir)
    entry = options.get("face_crop")
    if entry is not None:
        try:
            margin = float(entry["margin"])
            if margin < 0:
                raise ValueError(margin)
            return FaceCrop(margin, bool(entry.get("align", True)), path)
        except (KeyError, TypeError, ValueError):
            raise ValueError(f"{path}: face_crop must be {{\"margin\": a number >= 0, "
                             f"\"align\": true or false}}, got {entry!r}") from None
    return dataset_face_crop(options.get("list_dir"))


# --------------------------------------------------------------------------- reading


def read_reference_faces(path: str, count: int,
                         log: Callable[[str], None] = print) -> List[np.ndarray]:
    """Up to ``count`` reference faces for ``bn_mode="batch"``: the first readable images of
    ``path`` in name order (the release: 31 faces of ``images/train``). Unreadable files
    are logged and skipped."""
    faces = []
    for file_path in list_image_files(path):
        if len(faces) == count:
            break
        try:
            faces.append(read_image(file_path)[0])
        except BadImageError as e:
            log(f"skipped reference face {file_path}: {e.reason}")
    return faces


# --------------------------------------------------------------------------- the test run


@dataclasses.dataclass
class RunSummary:
    """What a test run (:func:`process_image_files`) did: files processed, failures
    ``[(path, reason)]``, strips written."""
    processed: List[str] = dataclasses.field(default_factory=list)
    failed: List[Tuple[str, str]] = dataclasses.field(default_factory=list)
    strips: List[dict] = dataclasses.field(default_factory=list)


def _output_stems(paths: Sequence[str]) -> List[str]:
    stems = [os.path.splitext(os.path.basename(p))[0] for p in paths]
    counts = {s: stems.count(s) for s in stems}
    return [s if counts[s] == 1 else os.path.basename(p).replace(".", "_")
            for s, p in zip(stems, paths)]


def process_image_files(image_paths: Sequence[str], save_dir: str, targets: Sequence,
                        render: Callable[[np.ndarray], Tuple[np.ndarray, np.ndarray]],
                        detect_faces: bool = False, all_faces: bool = False,
                        face_margin: Optional[float] = None,
                        log: Callable[[str], None] = print, progress=None,
                        face_align: bool = True) -> RunSummary:
    """The test-script run of any model: read, (detect,) render, write, one line per file.

    Shared by ``ipcgan.inference.age_image_files`` and ``cyclegan.inference``: reading with
    ``images.read_image``, face crops (``faces.locate_faces``), the output layout of
    ``face_aging.outputs`` (atomic writes), pasting into photos (``faces.paste_back``) and the
    error handling.

    Args:
      targets: one per output column; ``tag`` names its files (``NAME_{tag}.png``).
      render: ``face uint8 [H, W, 3] -> (shown uint8 [S, S, 3], outputs uint8
        [len(targets), S, S, 3])``: the input as the model saw it and one output per target.
      progress: e.g. a ``face_aging.progress.bar``; ``progress.update(1)`` after each file.
      face_align: level the eyes of detected faces before cropping.
    """
    from face_aging import faces, files, outputs

    os.makedirs(save_dir, exist_ok=True)
    summary = RunSummary()
    for path, stem in zip(image_paths, _output_stems(image_paths)):
        try:
            image, notes = read_image(path)
            if detect_faces:
                located = faces.locate_faces(image, all_faces, face_margin, face_align)
                if not located:
                    raise BadImageError(path, "no face found")
                names = [f"{stem}_face{i}" for i in range(len(located))]
                inputs = [face.crop for face in located]
            else:
                names, inputs = [stem], [image]
            aged_per_face, strips = [], []
            for name, face in zip(names, inputs):
                shown, aged = render(face)
                strip = outputs.write_face_outputs(save_dir, name, shown, aged, targets)
                strips.append({"name": name, "source": path, "strip": strip})
                aged_per_face.append(aged)
            if detect_faces:
                for k, target in enumerate(targets):
                    photo = image
                    for aged, face in zip(aged_per_face, located):
                        photo = faces.paste_back(photo, aged[k], face.square, face.angle)
                    files.atomic_write_image(
                        os.path.join(save_dir, f"{stem}_{target.tag}_photo.jpg"), photo)
            summary.processed.append(path)
            summary.strips.extend(strips)
            detail = f" ({'; '.join(notes)})" if notes else ""
            faces_note = f", {len(names)} face(s)" if detect_faces else ""
            log(f"ok: {path}{detail}{faces_note}")
        except BadImageError as e:
            summary.failed.append((path, e.reason))
            log(f"FAILED: {path}: {e.reason}")
        except (_tensorflow_op_error(), ValueError, OSError) as e:
            reason = str(e).splitlines()[0] if str(e) else type(e).__name__
            summary.failed.append((path, reason))
            log(f"FAILED: {path}: {reason}")
        if progress is not None:
            progress.update(1)
    return summary


class _NoTensorFlowError(Exception):
    """Stands for ``tf.errors.OpError`` while TensorFlow is not loaded (nothing raises it)."""


def _tensorflow_op_error():
    """``tf.errors.OpError`` if TensorFlow is loaded (a network ran), else a class never raised."""
    tf = sys.modules.get("tensorflow")
    return tf.errors.OpError if tf is not None else _NoTensorFlowError
