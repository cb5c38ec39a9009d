"""IPCGAN inference: load a generator, age faces (uint8 RGB in, uint8 RGB out).

The small API the test script, the exporter, the bundle and the evaluation build on:

- :func:`load_generator` -- weights from a TF2 checkpoint (directory or prefix), a
  release TF1 ``acgan.model-N`` (converted on the fly), or a SavedModel written by
  ``python -m face_aging.export``.
- :func:`age_faces` -- uint8 RGB faces in, uint8 RGB aged faces out.
- :func:`age_targets` -- the age vectors (and output names) for a list of target groups,
  optionally with blended steps between adjacent groups.
- :func:`age_image_files` -- the whole test-script run over files (used by ``test.py``);
  its model-independent part (reading, face crops, output layout, one line per bad file) is
  ``face_aging.inference.process_image_files``.

Pixel scales (spec §3, ``face_aging.pixels``): callers pass and receive uint8 RGB
0..255. Inside, faces are resized to ``image_size`` with ``pixels.resize_cv2`` (the
release resized test faces with ``cv2.resize``), shifted by ``pixels.subtract_mean``,
and the generator's [-1, 1] output is mapped back with ``pixels.to_uint8``.

TensorFlow is imported by the functions that run a network, not by this module: test.py's
``--help`` and its checks of the input answer before TensorFlow loads.

Batch normalisation (spec §1.4, §8), ``bn_mode``:

- ``"moving"``: the moving statistics stored in the checkpoint. Deterministic; a
  face's output does not depend on the other faces in the batch.
- ``"batch"``: the release's test script. Each face is run inside a batch completed
  with ``batch_size - 1`` reference faces (the release: 31 faces from
  ``images/train``), all with the face's target age, normalised with that batch's
  statistics; the face's own row is kept.
"""
from __future__ import annotations

import dataclasses
import os
from typing import TYPE_CHECKING, Callable, List, Optional, Sequence, Tuple

import numpy as np

from face_aging.inference import (FaceCrop, RunSummary, process_image_files,
                                  recorded_face_crop, recorded_options_file)

if TYPE_CHECKING:
    import tensorflow as tf

#: Age-group names of the release (IMDB-WIKI variant; CACD's first group is 11-20).
DEFAULT_GROUP_LABELS = ("0-20", "21-30", "31-40", "41-50", "51+")
#: The release's test script wrote one image per target group 1..4 (its 1x5 strips).
RELEASE_TARGET_GROUPS = (1, 2, 3, 4)
BN_MODES = ("moving", "batch")


# --------------------------------------------------------------------------- weights


class SavedModelGenerator:
    """A generator exported by ``face_aging.export``, callable like ``networks.Generator``.

    ``g((source, age_vector), training=False, batch_stats=None)``: ``source`` float32
    ``[B, S, S, 3]`` RGB 0..255 minus ``pixels.MEAN_RGB``, ``age_vector`` float32
    ``[B, age_groups]``; returns ``[B, S, S, 3]`` in [-1, 1]. ``batch_stats=True`` runs
    the release's batch-statistics endpoint; training is not possible.
    """

    def __init__(self, path: str):
        import tensorflow as tf

        self.path = path
        self._loaded = tf.saved_model.load(path)
        for endpoint in ("generate", "generate_batch_stats"):
            if not hasattr(self._loaded, endpoint):
                raise ValueError(f"{path}: not a face_aging export (no '{endpoint}' endpoint); "
                                 "write one with python -m face_aging.export")
        source_spec, age_spec = self._loaded.generate.concrete_functions[0] \
            .structured_input_signature[0][:2]
        self.image_size = int(source_spec.shape[1])
        self.age_groups = int(age_spec.shape[-1])

    def __call__(self, inputs, training=False, batch_stats=None):
        import tensorflow as tf

        if training:
            raise ValueError("a SavedModel generator cannot be trained")
        source, age_vector = inputs
        endpoint = self._loaded.generate_batch_stats if batch_stats else self._loaded.generate
        return endpoint(tf.cast(source, tf.float32), tf.cast(age_vector, tf.float32))["output"]


#: The generator trained here and shipped with the package (checkpoints/MODEL_CARD.md; the
#: repository's checkpoints/bundled is a link to this folder): the default of test.py,
#: evaluate.py and the export tool.
BUNDLED_CHECKPOINT_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "bundled")

def recorded_model_options(checkpoint_dir: Optional[str]) -> dict:
    """``image_size``, ``age_groups`` and ``upsample`` recorded beside a checkpoint (empty if
    none; a model.json without ``upsample`` has it in its ``training_options``)."""
    _, options = recorded_options_file(checkpoint_dir)
    recorded = {k: int(options[k]) for k in ("image_size", "age_groups") if k in options}
    upsample = options.get("upsample", (options.get("training_options") or {}).get("upsample"))
    if upsample is not None:
        recorded["upsample"] = str(upsample)
    return recorded


def load_generator(checkpoint_dir: Optional[str] = None, model_index: Optional[int] = None,
                   saved_model: Optional[str] = None, image_size: Optional[int] = None,
                   age_groups: Optional[int] = None, mixed_precision: str = "none"):
    """Builds a generator and loads its weights from exactly one source.

    Args:
      checkpoint_dir: a TF2 checkpoint directory (latest, or step ``model_index``) or
        prefix holding ``generator``; or a release TF1 ``acgan.model-N`` prefix or a
        directory of them (converted on the fly by ``checkpoints.restore_models``).
      model_index: checkpoint step to pick inside ``checkpoint_dir`` (default: latest).
      saved_model: a directory written by ``python -m face_aging.export``.
      image_size: generator input side in pixels; default: what ``model.json`` or
        ``training_options.json`` beside the checkpoint records, else the release's 128.
        Ignored for a SavedModel, which records its own.
      age_groups: number of age groups; default as ``image_size``, else the release's 5.
      mixed_precision: compute in this ``face_aging.precision`` mode (``bfloat16``: about 2x
        faster on CPUs with AVX-512 BF16, outputs within a few 1/255 of float32; the weights
        are float32 in every mode). Ignored for a SavedModel.
    Returns:
      a ``networks.Generator`` (or :class:`SavedModelGenerator`) with attributes
      ``age_groups``, ``image_size`` and ``face_crop`` (the :class:`FaceCrop` recorded
      beside the weights, :func:`recorded_face_crop`, or None).
    Raises:
      ValueError: none or both sources given, or unreadable recorded options.
      FileNotFoundError, checkpoints.CheckpointMismatchError: one line naming the path.
    """
    if (checkpoint_dir is None) == (saved_model is None):
        raise ValueError("give exactly one of checkpoint_dir and saved_model")
    if saved_model is not None:
        if not os.path.isfile(os.path.join(saved_model, "saved_model.pb")):
            raise FileNotFoundError(f"{saved_model}: no SavedModel here (no saved_model.pb)")
        face_crop = recorded_face_crop(saved_model)  # before TensorFlow: a bad file stops early
        generator = SavedModelGenerator(saved_model)
        generator.face_crop = face_crop
        return generator
    from face_aging import precision
    from face_aging.ipcgan.checkpoints import restore_models
    from face_aging.ipcgan.networks import Generator, build_models

    recorded = recorded_model_options(checkpoint_dir)
    face_crop = recorded_face_crop(checkpoint_dir)
    image_size = image_size or recorded.get("image_size", 128)
    age_groups = age_groups or recorded.get("age_groups", 5)
    with precision.keras_policy(mixed_precision):
        generator = Generator(age_groups=age_groups,
                              upsample=recorded.get("upsample", "deconv"))
        build_models(generator=generator, image_size=image_size)
    restore_models(checkpoint_dir, generator=generator, model_index=model_index)
    generator.image_size = image_size
    generator.face_crop = face_crop
    return generator


def generator_image_size(generator, default: int = 128) -> int:
    """The side length a generator expects (``image_size`` attribute, else ``default``)."""
    return int(getattr(generator, "image_size", default))


def generator_face_crop(generator) -> FaceCrop:
    """How to cut detected faces for a generator: its recorded ``face_crop``, else the data
    tool's default (``faces.DEFAULT_MARGIN``, eyes levelled)."""
    face_crop = getattr(generator, "face_crop", None)
    if face_crop is not None:
        return face_crop
    from face_aging import faces

    return FaceCrop(faces.DEFAULT_MARGIN, True, None)


# --------------------------------------------------------------------------- targets


@dataclasses.dataclass(frozen=True)
class AgeTarget:
    """One output column: an age vector and the names that say which age it is.

    Attributes:
      tag: file-name part, e.g. ``group3_41-50`` or ``group2.50_31-40_to_41-50``.
      label: human-readable, e.g. ``41-50`` or ``31-40 to 41-50, 50%``.
      vector: float32 ``[age_groups]``, non-negative, summing to 1.
    """
    tag: str
    label: str
    vector: np.ndarray


def age_targets(target_groups: Sequence[int], age_groups: int = 5, interpolate: int = 0,
                group_labels: Optional[Sequence[str]] = None) -> List[AgeTarget]:
    """Age vectors for ``target_groups`` in the given order, with blends in between.

    Args:
      target_groups: group indices 0..age_groups-1 (e.g. ``(1, 2, 3, 4)``).
      interpolate: K >= 0 blended steps between each pair of adjacent listed groups
        a, b: weights ``(1 - j/(K+1), j/(K+1))`` on a and b, j = 1..K. The endpoints are
        exactly the pure one-hot groups.
      group_labels: one name per group (default :data:`DEFAULT_GROUP_LABELS` for 5
        groups, else ``g0``, ``g1``, ...).
    """
    labels = list(group_labels) if group_labels is not None else (
        list(DEFAULT_GROUP_LABELS) if age_groups == len(DEFAULT_GROUP_LABELS)
        else [f"g{k}" for k in range(age_groups)])
    if len(labels) != age_groups:
        raise ValueError(f"{len(labels)} group labels for {age_groups} age groups")
    if not target_groups:
        raise ValueError("no target groups")
    for g in target_groups:
        if not 0 <= int(g) < age_groups:
            raise ValueError(f"target group {g} is not in 0..{age_groups - 1}")
    if interpolate < 0:
        raise ValueError(f"interpolate must be >= 0, got {interpolate}")
    eye = np.eye(age_groups, dtype=np.float32)
    targets = []
    for i, a in enumerate(int(g) for g in target_groups):
        targets.append(AgeTarget(f"group{a}_{labels[a]}", labels[a], eye[a]))
        if i + 1 == len(target_groups):
            break
        b = int(target_groups[i + 1])
        for j in range(1, interpolate + 1):
            w = j / (interpolate + 1)
            position = a + w * (b - a)
            targets.append(AgeTarget(
                f"group{position:.2f}_{labels[a]}_to_{labels[b]}",
                f"{labels[a]} to {labels[b]}, {round(100 * w)}%",
                ((1.0 - w) * eye[a] + w * eye[b]).astype(np.float32)))
    return targets


# --------------------------------------------------------------------------- aging


def preprocess_faces(faces_uint8, image_size: int) -> tf.Tensor:
    """uint8 RGB faces (an array ``[N, H, W, 3]`` or a list of ``[H, W, 3]`` of any sizes)
    -> float32 ``[N, image_size, image_size, 3]``, RGB 0..255 minus the mean (G's input)."""
    import tensorflow as tf

    from face_aging import pixels

    if isinstance(faces_uint8, np.ndarray) and faces_uint8.ndim == 4:
        batch = [pixels.resize_cv2(faces_uint8, (image_size, image_size))]
    else:
        batch = [pixels.resize_cv2(np.asarray(f)[np.newaxis], (image_size, image_size))
                 for f in faces_uint8]
    if not batch:
        return tf.zeros([0, image_size, image_size, 3])
    return pixels.subtract_mean(tf.concat(batch, 0))


def _age_vectors(targets, count: int, age_groups: int) -> np.ndarray:
    targets = np.asarray(targets)
    if np.issubdtype(targets.dtype, np.integer):
        groups = np.broadcast_to(targets, (count,)) if targets.ndim == 0 else targets
        if groups.shape != (count,):
            raise ValueError(f"{groups.shape[0]} target groups for {count} faces")
        if groups.size and (groups.min() < 0 or groups.max() >= age_groups):
            raise ValueError(f"target groups must be in 0..{age_groups - 1}")
        return np.eye(age_groups, dtype=np.float32)[groups]
    vectors = np.asarray(targets, np.float32)
    if vectors.ndim == 1:
        vectors = np.broadcast_to(vectors, (count, vectors.shape[0]))
    if vectors.shape != (count, age_groups):
        raise ValueError(f"age vectors of shape {vectors.shape}, expected ({count}, {age_groups})")
    return vectors


def age_faces(generator, faces_uint8, target_groups_or_age_vectors, bn_mode: str = "moving",
              reference_faces=None, batch_size: int = 32) -> np.ndarray:
    """Ages faces: uint8 RGB in, uint8 RGB out.

    Args:
      generator: from :func:`load_generator` (or any ``networks.Generator``).
      faces_uint8: N face crops, RGB 0..255 uint8: ``[N, H, W, 3]`` or a list of
        ``[H, W, 3]`` arrays of any sizes; each is resized to the generator's side.
      target_groups_or_age_vectors: integer group(s) 0..age_groups-1 -- one int for all
        faces or ``[N]``; or float age vectors -- ``[age_groups]`` for all or
        ``[N, age_groups]`` (soft weights summing to 1 blend ages).
      bn_mode: ``"moving"`` (moving statistics; each face independent of the others) or
        ``"batch"`` (the release: each face normalised in a batch with
        ``batch_size - 1`` of ``reference_faces``, all given the face's age vector; with
        fewer references the batch is smaller).
      reference_faces: uint8 RGB faces (as ``faces_uint8``), needed for ``"batch"``.
      batch_size: faces per generator call (``"moving"``); batch size including the face
        (``"batch"``).
    Returns:
      uint8 ``[N, S, S, 3]`` RGB aged faces, S = the generator's ``image_size``.
    """
    import tensorflow as tf

    from face_aging import pixels

    if bn_mode not in BN_MODES:
        raise ValueError(f"bn_mode must be one of {BN_MODES}, got {bn_mode!r}")
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    size = generator_image_size(generator)
    sources = preprocess_faces(faces_uint8, size)
    count = int(sources.shape[0])
    vectors = _age_vectors(target_groups_or_age_vectors, count, generator.age_groups)
    outputs = []
    if bn_mode == "moving":
        for start in range(0, count, batch_size):
            stop = min(start + batch_size, count)
            outputs.append(generator((sources[start:stop], vectors[start:stop]),
                                     training=False, batch_stats=False))
    else:
        if reference_faces is None or len(reference_faces) == 0:
            raise ValueError("bn_mode='batch' needs reference_faces (the release used 31 "
                             "faces from images/train)")
        references = preprocess_faces(reference_faces, size)[:batch_size - 1]
        for i in range(count):
            batch = tf.concat([sources[i:i + 1], references], 0)
            age = np.repeat(vectors[i:i + 1], int(batch.shape[0]), axis=0)
            outputs.append(generator((batch, age), training=False, batch_stats=True)[:1])
    if not outputs:
        return np.zeros([0, size, size, 3], np.uint8)
    return pixels.to_uint8(tf.concat(outputs, 0).numpy())


def age_image_files(generator, image_paths: Sequence[str], save_dir: str,
                    targets: Sequence[AgeTarget], bn_mode: str = "moving",
                    reference_faces=None, batch_size: int = 32, detect_faces: bool = False,
                    all_faces: bool = False, face_margin: Optional[float] = None,
                    log: Callable[[str], None] = print, progress=None) -> RunSummary:
    """Ages every file and writes its outputs (see ``face_aging.outputs`` for the layout).

    One line per file goes to ``log``: ``ok`` (with any conversion), or ``FAILED`` and
    the reason; a failure never stops the other files. Nothing in ``save_dir`` is
    deleted; every file is written to a temporary name and renamed.

    Args:
      targets: from :func:`age_targets`.
      detect_faces: find faces in each photo (``face_aging.faces``), age the largest (or
        all, ``all_faces``) and paste them back into the photo.
      face_margin: crop margin for detected faces; default: the generator's recorded
        ``face_crop`` (:func:`recorded_face_crop`), else ``faces.DEFAULT_MARGIN``.
    """
    recorded = generator_face_crop(generator)
    if face_margin is None:
        face_margin = recorded.margin
    render = face_renderer(generator, targets, bn_mode, reference_faces, batch_size)
    return process_image_files(image_paths, save_dir, targets, render, detect_faces,
                               all_faces, face_margin, log, progress, face_align=recorded.align)


def face_renderer(generator, targets: Sequence[AgeTarget], bn_mode: str = "moving",
                  reference_faces=None, batch_size: int = 32
                  ) -> Callable[[np.ndarray], Tuple[np.ndarray, np.ndarray]]:
    """``face uint8 [H, W, 3] -> (shown uint8 [S, S, 3], aged uint8 [len(targets), S, S, 3])``:
    the face as the generator saw it and aged to each target (:func:`age_faces`). The
    ``render`` of :func:`process_image_files`, the video tool and the demo."""
    from face_aging import pixels

    vectors = np.stack([t.vector for t in targets])

    def render(face):
        aged = age_faces(generator, [face] * len(targets), vectors, bn_mode, reference_faces,
                         batch_size)
        shown = pixels.resize_cv2(face[np.newaxis], aged.shape[1:3]).numpy()
        return shown[0].astype(np.uint8), aged

    return render
