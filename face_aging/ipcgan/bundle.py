"""The bundled generator: what inference needs from a training run, and a regression guard.

A training checkpoint holds G, D, both optimizers and the step (about 100 MB at 64 px).
Inference needs only the generator's weights and its batch-norm moving statistics. This
module writes those into a folder (``checkpoints/bundled`` by default, the folder ``test.py``
and the export tool read when given nothing) together with:

- ``model.json``: ``image_size``, ``age_groups`` and ``upsample`` (read by
  ``ipcgan.inference.load_generator``), the crop geometry of the training faces
  (``face_crop``: the detector margin and eye alignment ``test.py --detect_faces`` and the
  export tool use; from ``--face_margin``, else the training dataset's record,
  ``face_aging.inference.dataset_face_crop``), the step, where it came
  from, and the training options recorded by the run;
- ``reference.npz``: a fixed input face (``source_uint8``, RGB 0..255) and the generator's
  raw outputs for it, one per target group (``outputs``, float32 in [-1, 1], moving
  statistics) -- recorded at bundling time, so a test can prove the shipped weights still
  give the same numbers (``check_reference``).

  python -m face_aging.bundle --checkpoint_dir=RUN_DIR [--model_index=STEP] \\
      [--output_dir=checkpoints/bundled] [--reference_image=images/test/astronaut.jpg] \\
      [--face_margin=0]   # UTKFace-like crops: measure with scripts/measure_face_margin.py

(the command: ``face_aging.apps.bundle``).

The folder is written under a temporary name and renamed into place
(``files.atomic_replace_dir``), so an interrupted run never leaves a half-written bundle where
the old one was.
"""
from __future__ import annotations

import json
import os
from typing import Optional

import numpy as np

MODEL_JSON = "model.json"
REFERENCE_NPZ = "reference.npz"
CHECKPOINT_NAME = "generator"


def reference_outputs(generator, source_uint8: np.ndarray) -> np.ndarray:
    """G's raw outputs (float32 ``[age_groups, S, S, 3]`` in [-1, 1]) for one uint8 RGB face,
    one per target group, with moving batch-norm statistics (what ``test.py`` uses)."""
    from face_aging.ipcgan import inference

    size = inference.generator_image_size(generator)
    groups = generator.age_groups
    source = inference.preprocess_faces(np.repeat(source_uint8[None], groups, 0), size)
    age_vectors = np.eye(groups, dtype=np.float32)
    return generator((source, age_vectors), training=False, batch_stats=False).numpy()


def check_reference(bundle_dir: str, generator, atol: float = 1e-4) -> float:
    """Largest absolute difference between ``generator``'s outputs and the recorded ones.

    Raises:
      AssertionError: one line, if it exceeds ``atol``.
    """
    with np.load(os.path.join(bundle_dir, REFERENCE_NPZ)) as recorded:
        expected, source = recorded["outputs"], recorded["source_uint8"]
    diff = float(np.abs(reference_outputs(generator, source) - expected).max())
    if diff > atol:
        raise AssertionError(f"{bundle_dir}: outputs differ from the recorded reference by "
                             f"{diff:.3g} (tolerance {atol:g})")
    return diff


#: Corner squares examined for artefacts, as a fraction of the output side.
CORNER_FRACTION = 3 / 8
#: An output pixel counts as an artefact when its chroma (max - min channel, 0..255) exceeds
#: this while the input's chroma at that pixel is below :data:`QUIET_INPUT_CHROMA`.
ARTEFACT_CHROMA = 180
QUIET_INPUT_CHROMA = 100
#: Artefact pixels a corner of a good output may have (of 24 x 24 at 64 px). The bundled
#: step-5000 model's bottom-left blotch has up to 89 (group 0) and 13 (group 1); its other
#: corners, and outputs without the blotch, at most 4 (docs/INFERENCE.md, "Known artefacts").
CORNER_ARTEFACT_LIMIT = 8


def corner_artefacts(generator, faces_uint8, age=None) -> np.ndarray:
    """Saturated-colour artefact pixels in each corner of each output (moving statistics).

    For every face and every age group: the pixels of the output's four corner squares
    (side ``CORNER_FRACTION`` of the output) whose chroma is above ``ARTEFACT_CHROMA`` where
    the input's (resized to the output's side) is below ``QUIET_INPUT_CHROMA`` -- colour the
    generator made up, like the bundled model's red/green blotch bottom left.

    Args:
      faces_uint8: uint8 RGB faces (any sizes; resized as ``test.py`` does).
      age: ``age(copies of one face, groups) -> uint8 [groups, S, S, 3]``, default
        ``inference.age_faces(generator, ...)`` (what ``test.py`` does); other ways of running
        the generator (batch statistics, a mirrored input) for scripts/measure_corner_artefact.py.
    Returns:
      int ``[faces, age_groups, 4]``: counts in the top-left, top-right, bottom-left and
      bottom-right corners.
    """
    from face_aging import pixels
    from face_aging.ipcgan import inference

    size = inference.generator_image_size(generator)
    corner = int(round(size * CORNER_FRACTION))
    groups = generator.age_groups
    counts = np.zeros((len(faces_uint8), groups, 4), np.int64)
    for i, face in enumerate(faces_uint8):
        shown = pixels.resize_cv2(np.asarray(face)[None], (size, size)).numpy()[0]
        quiet = np.ptp(shown, axis=-1) < QUIET_INPUT_CHROMA
        copies, targets = [face] * groups, np.arange(groups)
        aged = (age(copies, targets) if age is not None
                else inference.age_faces(generator, copies, targets))
        for k in range(groups):
            made_up = (np.ptp(aged[k].astype(np.int16), axis=-1) > ARTEFACT_CHROMA) & quiet
            counts[i, k] = [made_up[:corner, :corner].sum(), made_up[:corner, -corner:].sum(),
                            made_up[-corner:, :corner].sum(), made_up[-corner:, -corner:].sum()]
    return counts


def bundle_generator(checkpoint_dir: str, output_dir: str, model_index: Optional[int] = None,
                     reference_image: Optional[str] = None, extra: Optional[dict] = None,
                     face_margin: Optional[float] = None, face_crop_note: Optional[str] = None
                     ) -> dict:
    """Writes the generator of a training checkpoint as a bundle (see the module docstring).

    Args:
      checkpoint_dir: a ``train_ipcgan.py`` checkpoint folder or prefix (or a release one).
      output_dir: the bundle folder; replaced as a whole if it exists.
      model_index: the step to take (default: the latest checkpoint).
      reference_image: the fixed face of the regression guard (default: a seeded noise face).
      extra: more entries for ``model.json`` (e.g. a note on the training phases).
      face_margin: the detector margin whose crops frame faces as the training crops did
        (``model.json``'s ``face_crop``); default: what the run's dataset records
        (``inference.dataset_face_crop``), else none is written (inference then uses
        ``faces.DEFAULT_MARGIN``).
      face_crop_note: where ``face_margin`` comes from (stored beside it).
    Returns:
      the ``model.json`` contents.
    """
    if face_margin is not None and not face_margin >= 0:
        raise ValueError(f"face_margin must be >= 0, got {face_margin}")
    import tensorflow as tf

    from face_aging import files, images
    from face_aging.checkpoints import resolve_checkpoint
    from face_aging.ipcgan import inference

    prefix = resolve_checkpoint(checkpoint_dir, model_index)
    generator = inference.load_generator(prefix)
    size = inference.generator_image_size(generator)
    if reference_image:
        source, _ = images.read_image(reference_image)
    else:
        source = np.random.default_rng(0).integers(0, 256, (size, size, 3), dtype=np.uint8)
    info = _model_record(checkpoint_dir, prefix, generator, extra, face_margin, face_crop_note)
    step = info["step"]
    with files.atomic_replace_dir(output_dir) as staging:
        manager = tf.train.CheckpointManager(tf.train.Checkpoint(generator=generator), staging,
                                             max_to_keep=1, checkpoint_name=CHECKPOINT_NAME)
        manager.save(checkpoint_number=step or 0)
        # the state file must not name the staging folder: write a relative one
        files.atomic_write_text(os.path.join(staging, "checkpoint"),
                                f'model_checkpoint_path: "{CHECKPOINT_NAME}-{step or 0}"\n')
        np.savez_compressed(os.path.join(staging, REFERENCE_NPZ), source_uint8=source,
                            outputs=reference_outputs(generator, source))
        files.atomic_write_json(os.path.join(staging, MODEL_JSON), info)
    return info


def _model_record(checkpoint_dir: str, prefix: str, generator, extra: Optional[dict],
                  face_margin: Optional[float], face_crop_note: Optional[str]) -> dict:
    """``model.json``'s contents (see :func:`bundle_generator`)."""
    from face_aging.inference import dataset_face_crop
    from face_aging.ipcgan import inference

    folder = checkpoint_dir if os.path.isdir(checkpoint_dir) else os.path.dirname(checkpoint_dir)
    options_path = os.path.join(folder, "training_options.json")
    training_options = {}
    if os.path.isfile(options_path):
        with open(options_path) as f:
            training_options = json.load(f)
    step = int(prefix.rsplit("-", 1)[1]) if prefix.rsplit("-", 1)[-1].isdigit() else None
    info = {"image_size": inference.generator_image_size(generator),
            "age_groups": int(generator.age_groups), "upsample": generator.upsample,
            "step": step,
            "source_checkpoint": os.path.abspath(prefix), "bn_mode": "moving",
            "parameters": int(sum(np.prod(v.shape) for v in generator.variables)),
            "training_options": training_options, **(extra or {})}
    if face_margin is not None:
        info["face_crop"] = {"margin": float(face_margin), "align": True,
                             "source": face_crop_note or "given when bundling (--face_margin)"}
    else:
        recorded = dataset_face_crop(training_options.get("list_dir"))
        if recorded is not None:
            info["face_crop"] = dict(recorded.as_dict(),
                                     source=f"the training dataset's {recorded.recorded_in}")
    return info
