"""The bundled generator: what inference needs from a training run, and a regression guard.

A training checkpoint holds G, D, both optimizers and the step (about 100 MB at 64 px).
Inference needs only the generator's weights and its batch-norm moving statistics. This
module writes those into a folder (``checkpoints/bundled`` by default, the folder ``test.py``
and the export tool read when given nothing) together with:

- ``model.json``: ``image_size`` and ``age_groups`` (read by ``inference.load_generator``),
  the step, where it came from, and the training options recorded by the run;
- ``reference.npz``: a fixed input face (``source_uint8``, RGB 0..255) and the generator's
  raw outputs for it, one per target group (``outputs``, float32 in [-1, 1], moving
  statistics) -- recorded at bundling time, so a test can prove the shipped weights still
  give the same numbers (``check_reference``).

  python -m face_aging.bundle --checkpoint_dir=RUN_DIR [--model_index=STEP] \\
      [--output_dir=checkpoints/bundled] [--reference_image=images/test/astronaut.jpg]

The folder is written under a temporary name and renamed into place, so an interrupted
run never leaves a half-written bundle where the old one was.
"""
from __future__ import annotations

import json
import os
import shutil
import tempfile
from typing import Optional

import numpy as np

MODEL_JSON = "model.json"
REFERENCE_NPZ = "reference.npz"
CHECKPOINT_NAME = "generator"


def reference_outputs(generator, source_uint8: np.ndarray) -> np.ndarray:
    """G's raw outputs (float32 ``[age_groups, S, S, 3]`` in [-1, 1]) for one uint8 RGB face,
    one per target group, with moving batch-norm statistics (what ``test.py`` uses)."""
    from face_aging import inference

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


def bundle_generator(checkpoint_dir: str, output_dir: str, model_index: Optional[int] = None,
                     reference_image: Optional[str] = None, extra: Optional[dict] = None) -> dict:
    """Writes the generator of a training checkpoint as a bundle (see the module docstring).

    Args:
      checkpoint_dir: a ``train_ipcgan.py`` checkpoint folder or prefix (or a release one).
      output_dir: the bundle folder; replaced as a whole if it exists.
      model_index: the step to take (default: the latest checkpoint).
      reference_image: the fixed face of the regression guard (default: a seeded noise face).
      extra: more entries for ``model.json`` (e.g. a note on the training phases).
    Returns:
      the ``model.json`` contents.
    """
    import tensorflow as tf

    from face_aging import inference
    from face_aging.checkpoints import resolve_checkpoint

    prefix = resolve_checkpoint(checkpoint_dir, model_index)
    generator = inference.load_generator(prefix)
    size = inference.generator_image_size(generator)
    if reference_image:
        source, _ = inference.read_image_rgb(reference_image)
    else:
        source = np.random.default_rng(0).integers(0, 256, (size, size, 3), dtype=np.uint8)
    folder = checkpoint_dir if os.path.isdir(checkpoint_dir) else os.path.dirname(checkpoint_dir)
    options_path = os.path.join(folder, "training_options.json")
    training_options = {}
    if os.path.isfile(options_path):
        with open(options_path) as f:
            training_options = json.load(f)
    step = int(prefix.rsplit("-", 1)[1]) if prefix.rsplit("-", 1)[-1].isdigit() else None
    info = {"image_size": size, "age_groups": int(generator.age_groups), "step": step,
            "source_checkpoint": os.path.abspath(prefix), "bn_mode": "moving",
            "parameters": int(sum(np.prod(v.shape) for v in generator.variables)),
            "training_options": training_options, **(extra or {})}

    parent = os.path.dirname(os.path.abspath(output_dir))
    os.makedirs(parent, exist_ok=True)
    staging = tempfile.mkdtemp(prefix=".bundle-", dir=parent)
    os.chmod(staging, 0o755)  # mkdtemp makes it private; the bundle is an ordinary folder
    try:
        manager = tf.train.CheckpointManager(tf.train.Checkpoint(generator=generator), staging,
                                             max_to_keep=1, checkpoint_name=CHECKPOINT_NAME)
        manager.save(checkpoint_number=step or 0)
        # the state file must not name the staging folder: write a relative one
        with open(os.path.join(staging, "checkpoint"), "w") as f:
            f.write(f'model_checkpoint_path: "{CHECKPOINT_NAME}-{step or 0}"\n')
        np.savez_compressed(os.path.join(staging, REFERENCE_NPZ), source_uint8=source,
                            outputs=reference_outputs(generator, source))
        with open(os.path.join(staging, MODEL_JSON), "w") as f:
            json.dump(info, f, indent=2, sort_keys=True)
        old = None
        if os.path.exists(output_dir):
            old = output_dir.rstrip("/") + ".old"
            shutil.rmtree(old, ignore_errors=True)
            os.replace(output_dir, old)
        os.replace(staging, output_dir)
        if old:
            shutil.rmtree(old, ignore_errors=True)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return info


def main(argv=None) -> int:
    import argparse
    import sys

    from face_aging.inference import BUNDLED_CHECKPOINT_DIR

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--checkpoint_dir", required=True)
    parser.add_argument("--model_index", type=int, default=None)
    parser.add_argument("--output_dir", default=BUNDLED_CHECKPOINT_DIR)
    parser.add_argument("--reference_image", default=None)
    parser.add_argument("--note", default=None, help="free text stored in model.json")
    args = parser.parse_args(argv)
    try:
        info = bundle_generator(args.checkpoint_dir, args.output_dir, args.model_index,
                                args.reference_image, {"note": args.note} if args.note else None)
    except (FileNotFoundError, ValueError) as e:
        print(f"bundle: {e}", file=sys.stderr)
        return 1
    size = sum(os.path.getsize(os.path.join(args.output_dir, f))
               for f in os.listdir(args.output_dir))
    print(f"wrote {args.output_dir}: step {info['step']}, {info['image_size']} px, "
          f"{info['parameters']:,} values, {size / 1e6:.1f} MB")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
