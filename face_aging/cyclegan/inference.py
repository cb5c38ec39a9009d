"""CycleGAN inference: load a ``train_cyclegan.py`` checkpoint, translate faces, run over files.

What ``test.py --model=cyclegan``, ``python -m face_aging.export --model=cyclegan`` and
``evaluate.py --model=cyclegan`` build on:

- :func:`recorded_options` -- ``crop_size`` (the image side), ``n_blocks`` and ``ngf`` as
  ``train_cyclegan.py`` recorded them in ``training_options.json`` beside its checkpoints.
- :func:`load_cyclegan` -- both generators from a checkpoint directory (latest, or step
  ``model_index``) or a ``ckpt-N`` prefix, or from a SavedModel written by the export tool:
  a :class:`CycleGANModel` whose ``young_to_old`` / ``old_to_young`` map [-1, 1] faces.
- :func:`translate_faces` -- uint8 RGB faces in, uint8 RGB translated faces out.
- :func:`translate_image_files` -- the test-script run over files, with IPCGAN's output
  layout, face detection and bad-input handling (``inference.process_image_files``).

Pixels (as the training pipeline's sample strips, ``cyclegan.data.load_plain``): a face is
resized to ``image_size x image_size`` with TF's bicubic resize with antialiasing, rounded
to whole 0..255 levels (the training faces' resize, without the random crop and flip), then
scaled to [-1, 1] (``pixels.to_unit_range``); the output goes back with ``pixels.to_uint8``.

Directions (the reference's names: A = young, B = old): ``young_to_old`` is ``g_a``,
``old_to_young`` is ``g_b``.
"""
from __future__ import annotations

import dataclasses
import json
import os
from typing import Callable, List, Optional, Sequence

import numpy as np

from face_aging.errors import InputError

# TensorFlow is imported inside the functions that run networks: evaluate.py reads the
# recorded options (and checks its input) before TensorFlow loads.

#: Output directions, in strip order; the tag names the files (``NAME_young_to_old.png``).
DIRECTIONS = ("young_to_old", "old_to_young")
#: Column headings of the strips and the contact sheet.
DIRECTION_LABELS = {"young_to_old": "young \u2192 old", "old_to_young": "old \u2192 young"}
#: train_cyclegan.py's default --checkpoint_dir: the default of test.py / export --model=cyclegan.
DEFAULT_CHECKPOINT_DIR = "checkpoints/cyclegan_young2old"
#: Written by train_cyclegan.py beside its checkpoints.
OPTIONS_FILE = "training_options.json"
#: What inference needs from it.
RECORDED_KEYS = ("crop_size", "n_blocks", "ngf")


class CycleGANLoadError(InputError):
    """No usable CycleGAN weights (missing options, wrong checkpoint): one line."""


@dataclasses.dataclass(frozen=True)
class Direction:
    """One output column of a strip: ``tag`` names files, ``label`` heads the column."""
    tag: str
    label: str


def directions(include_old_to_young: bool = True) -> List[Direction]:
    """The strip's output columns: young -> old, and (by default) old -> young."""
    tags = DIRECTIONS if include_old_to_young else DIRECTIONS[:1]
    return [Direction(tag, DIRECTION_LABELS[tag]) for tag in tags]


def _folder(checkpoint_dir: str) -> str:
    return checkpoint_dir if os.path.isdir(checkpoint_dir) else os.path.dirname(checkpoint_dir)


def recorded_options(checkpoint_dir: str) -> dict:
    """``{"crop_size", "n_blocks", "ngf"}`` from ``training_options.json`` beside the checkpoint.

    Raises:
      FileNotFoundError: no such directory or prefix.
      CycleGANLoadError: the file is missing, not JSON, or lacks a key (one line).
    """
    if not os.path.isdir(checkpoint_dir) and not os.path.isfile(checkpoint_dir + ".index"):
        raise FileNotFoundError(f"{checkpoint_dir}: no such checkpoint directory or ckpt-N prefix")
    path = os.path.join(_folder(checkpoint_dir), OPTIONS_FILE)
    if not os.path.isfile(path):
        raise CycleGANLoadError(
            f"{path}: not found; a train_cyclegan.py checkpoint directory records the image "
            "size, ngf and n_blocks there (pass --image_size, or point at the run's folder)")
    try:
        with open(path) as f:
            options = json.load(f)
    except (OSError, ValueError) as e:
        raise CycleGANLoadError(f"{path}: not readable JSON ({e})") from None
    missing = [k for k in RECORDED_KEYS if options.get(k) is None]
    if missing:
        raise CycleGANLoadError(f"{path}: no {', '.join(missing)} (not a train_cyclegan.py run?)")
    return {k: int(options[k]) for k in RECORDED_KEYS}


def check_image_size(image_size: int) -> int:
    """The generator takes sides that are multiples of 4 (two stride-2 stages)."""
    if image_size < 4 or image_size % 4:
        raise CycleGANLoadError(f"image size {image_size} must be a positive multiple of 4")
    return int(image_size)


@dataclasses.dataclass
class CycleGANModel:
    """Both generators of a run. ``young_to_old(x)`` / ``old_to_young(x)``: float32
    ``[B, S, S, 3]`` in [-1, 1] -> the same shape in [-1, 1].

    Attributes:
      g_a, g_b: the Keras ``ResnetGenerator`` s (None when loaded from a SavedModel).
      image_size: S, the side the faces are resized to (the training crop by default).
      source: the checkpoint prefix or SavedModel directory read.
      options: what was recorded (``crop_size``, ``n_blocks``, ``ngf``), if known.
    """
    young_to_old: Callable
    old_to_young: Optional[Callable]
    image_size: int
    source: str
    options: dict = dataclasses.field(default_factory=dict)
    g_a: object = None
    g_b: object = None
    #: A loaded SavedModel: held so that its variables live as long as the model.
    saved_model: object = None

    def generator(self, direction: str) -> Callable:
        fn = {"young_to_old": self.young_to_old, "old_to_young": self.old_to_young}.get(direction)
        if fn is None:
            raise ValueError(f"{self.source}: no {direction} generator")
        return fn


def load_cyclegan(checkpoint_dir: Optional[str] = None, model_index: Optional[int] = None,
                  saved_model: Optional[str] = None, image_size: Optional[int] = None,
                  load_old_to_young: bool = True,
                  mixed_precision: str = "none") -> CycleGANModel:
    """Builds the generators and reads their weights from exactly one source.

    Args:
      checkpoint_dir: a ``train_cyclegan.py`` checkpoint directory (latest ``ckpt-N``, or
        step ``model_index``) or a ``ckpt-N`` prefix; ``training_options.json`` beside it
        gives ``n_blocks``, ``ngf`` and the default ``image_size`` (its ``crop_size``).
      saved_model: instead, a directory written by
        ``python -m face_aging.export --model=cyclegan``.
      image_size: override the side faces are resized to (a multiple of 4; the networks
        are fully convolutional). Ignored for a SavedModel, whose signatures fix it.
      load_old_to_young: also read ``g_b``.
      mixed_precision: compute in this ``face_aging.precision`` mode (``bfloat16``: about 2x
        faster on CPUs with AVX-512 BF16; the weights are float32 in every mode).
    Raises:
      CycleGANLoadError, FileNotFoundError, checkpoints.CheckpointMismatchError: one line.
    """
    if (checkpoint_dir is None) == (saved_model is None):
        raise ValueError("give exactly one of checkpoint_dir and saved_model")
    if saved_model is not None:
        return _load_saved_model(saved_model, load_old_to_young)
    import tensorflow as tf

    from face_aging.checkpoints import CheckpointMismatchError, resolve_checkpoint
    from face_aging.cyclegan.networks import ResnetGenerator, build_networks

    prefix = resolve_checkpoint(checkpoint_dir, model_index)
    options = recorded_options(checkpoint_dir)
    size = check_image_size(image_size or options["crop_size"])
    from face_aging import precision

    with precision.keras_policy(mixed_precision):
        g_a = ResnetGenerator(options["n_blocks"], options["ngf"], name="g_a")
        g_b = ResnetGenerator(options["n_blocks"], options["ngf"], name="g_b") \
            if load_old_to_young else None
        build_networks(g_a, g_b)
    parts = {k: v for k, v in (("g_a", g_a), ("g_b", g_b)) if v is not None}
    try:
        status = tf.train.Checkpoint(**parts).read(prefix)
        status.expect_partial().assert_existing_objects_matched()
    except (AssertionError, ValueError, tf.errors.OpError) as e:
        first = (str(e).strip().splitlines() or [type(e).__name__])[0]
        raise CheckpointMismatchError(
            f"{prefix}: does not hold the CycleGAN generators {' and '.join(parts)} recorded in "
            f"{OPTIONS_FILE} (n_blocks {options['n_blocks']}, ngf {options['ngf']}): "
            f"{first}") from None
    return CycleGANModel(lambda x: g_a(x), (lambda x: g_b(x)) if g_b is not None else None,
                         size, prefix, options, g_a, g_b)


def _load_saved_model(path: str, load_old_to_young: bool) -> CycleGANModel:
    import tensorflow as tf

    if not os.path.isfile(os.path.join(path, "saved_model.pb")):
        raise FileNotFoundError(f"{path}: no SavedModel here (no saved_model.pb)")
    loaded = tf.saved_model.load(path)
    if not hasattr(loaded, "young_to_old"):
        raise CycleGANLoadError(f"{path}: not a CycleGAN export (no 'young_to_old' endpoint); "
                                "write one with python -m face_aging.export --model=cyclegan")
    spec = loaded.young_to_old.concrete_functions[0].structured_input_signature[0][0]
    def endpoint(name):
        function = getattr(loaded, name)
        return lambda x: function(tf.cast(x, tf.float32))["output"]

    has_b = load_old_to_young and hasattr(loaded, "old_to_young")
    return CycleGANModel(endpoint("young_to_old"), endpoint("old_to_young") if has_b else None,
                         int(spec.shape[1]), path, saved_model=loaded)


# --------------------------------------------------------------------------- pixels


def resize_faces(faces_uint8, image_size: int):
    """uint8 RGB faces (``[N, H, W, 3]`` or a list of ``[H, W, 3]`` of any sizes) -> float32
    RGB 0..255 ``[N, S, S, 3]``: bicubic with antialiasing, rounded (the training resize,
    ``cyclegan.data.resize_rounded``)."""
    import tensorflow as tf

    from face_aging.cyclegan.data import resize_rounded

    if isinstance(faces_uint8, np.ndarray) and faces_uint8.ndim == 4:
        return resize_rounded(faces_uint8, image_size)
    batch = [resize_rounded(np.asarray(f)[np.newaxis], image_size) for f in faces_uint8]
    if not batch:
        return tf.zeros([0, image_size, image_size, 3])
    return tf.concat(batch, 0)


def translate_faces(generator: Callable, faces_uint8, image_size: int,
                    batch_size: int = 32) -> np.ndarray:
    """uint8 RGB faces (any sizes) -> uint8 RGB ``[N, S, S, 3]`` through ``generator``
    (a [-1, 1] -> [-1, 1] callable, e.g. ``CycleGANModel.young_to_old``)."""
    import tensorflow as tf

    from face_aging import pixels

    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    sources = pixels.to_unit_range(resize_faces(faces_uint8, image_size))
    outputs = [generator(sources[start:start + batch_size])
               for start in range(0, int(sources.shape[0]), batch_size)]
    if not outputs:
        return np.zeros([0, image_size, image_size, 3], np.uint8)
    return pixels.to_uint8(tf.concat(outputs, 0).numpy())


def translate_image_files(model: CycleGANModel, image_paths: Sequence[str], save_dir: str,
                          columns: Sequence[Direction], batch_size: int = 32,
                          detect_faces: bool = False, all_faces: bool = False,
                          face_margin: Optional[float] = None,
                          log: Callable[[str], None] = print, progress=None):
    """Translates every file in every direction of ``columns`` and writes IPCGAN's layout:
    ``NAME_input.png``, ``NAME_young_to_old.png``, ``NAME_old_to_young.png``,
    ``NAME_strip.png`` (input | young -> old | old -> young) and, with ``detect_faces``,
    ``NAME_young_to_old_photo.jpg`` ... One line per file; see
    ``inference.process_image_files`` (also for ``progress``). Returns its ``RunSummary``."""
    from face_aging import inference

    return inference.process_image_files(image_paths, save_dir, columns,
                                         face_renderer(model, columns, batch_size),
                                         detect_faces=detect_faces, all_faces=all_faces,
                                         face_margin=face_margin, log=log, progress=progress)


def face_renderer(model: CycleGANModel, columns: Sequence[Direction], batch_size: int = 32):
    """``face uint8 [H, W, 3] -> (shown uint8 [S, S, 3], translated uint8 [len(columns), S, S,
    3])``, one output per direction: the ``render`` of ``inference.process_image_files``, the
    video tool and the demo."""
    generators = [model.generator(c.tag) for c in columns]

    def render(face):
        shown = resize_faces(face[np.newaxis], model.image_size).numpy().astype(np.uint8)[0]
        translated = np.concatenate([translate_faces(g, face[np.newaxis], model.image_size,
                                                     batch_size) for g in generators])
        return shown, translated

    return render
