"""What every model's export shares: the uint8 output mapping of the serving signatures, the
TF Lite conversion of an export's signatures, ONNX files, and the stages of an export's
progress bar. The models' exports are ``face_aging.ipcgan.export`` and
``face_aging.cyclegan.export``; the command is ``python -m face_aging.export``.

TensorFlow is imported inside the functions: ``python -m face_aging.export --help`` (and a
bad flag) answers before it loads.
"""
from __future__ import annotations

import contextlib
from typing import TYPE_CHECKING, Dict, Sequence

if TYPE_CHECKING:
    import tensorflow as tf


def unit_range_to_uint8(images: tf.Tensor) -> tf.Tensor:
    """[-1, 1] -> uint8, as ``pixels.to_uint8``: (x + 1) * 127.5, clipped, truncated."""
    import tensorflow as tf

    return tf.cast(tf.clip_by_value((images + 1.0) * 127.5, 0.0, 255.0), tf.uint8)


def convert_to_tflite(saved_model_dir: str, tflite_path: str, signatures: Sequence[str]) -> int:
    """Converts an export's signatures to one float32 TF Lite file (no quantisation).

    Converts the loaded SavedModel's endpoint functions with ``from_concrete_functions``
    (the weights are the SavedModel's, so none are lost): with TF 2.21,
    ``from_saved_model(signature_keys=[two keys])`` silently keeps only
    ``serving_default``.

    Returns:
      the file's size in bytes.
    """
    import tensorflow as tf

    loaded = tf.saved_model.load(saved_model_dir)
    functions = [getattr(loaded, name).concrete_functions[0] for name in signatures]
    converter = tf.lite.TFLiteConverter.from_concrete_functions(functions, loaded)
    data = converter.convert()
    from face_aging.files import atomic_write_bytes

    atomic_write_bytes(tflite_path, data)
    return len(data)


def convert_onnx(output_dir: str, files: Dict[str, str], signatures) -> dict:
    """The ONNX files of an export's uint8 signatures (``face_aging.onnx_export``):
    ``files`` maps a signature to its file name in ``output_dir``."""
    from face_aging import onnx_export

    return onnx_export.convert_saved_model(output_dir, files, signatures)


@contextlib.contextmanager
def stage(stages, name: str):
    """One stage of an export on a progress bar (``face_aging.progress.bar``; None: none)."""
    if stages is not None:
        stages.set_description(f"export: {name}")
    yield
    if stages is not None:
        stages.update(1)
