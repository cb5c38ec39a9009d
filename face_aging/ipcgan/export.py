"""Export an IPCGAN generator as a SavedModel (and optionally TF Lite, ONNX) for serving:
what ``python -m face_aging.export`` does (the command: ``face_aging.apps.export``; the
CycleGAN's export: ``face_aging.cyclegan.export``).

Signatures of the SavedModel (all with moving batch-norm statistics unless named
otherwise; ``S`` = ``image_size``, 128 for the release):

| signature (endpoint) | inputs | output |
|---|---|---|
| ``serve`` (also ``serving_default``) | ``images`` uint8 ``[B, H, W, 3]`` RGB, any H, W; ``target_group`` int32 ``[B]`` in 0..age_groups-1 | ``aged`` uint8 ``[B, S, S, 3]`` RGB |
| ``serve_age_vector`` | ``images`` as above; ``age_vector`` float32 ``[B, age_groups]`` (soft weights blend ages) | ``aged`` uint8 ``[B, S, S, 3]`` |
| ``generate`` | ``source`` float32 ``[B, S, S, 3]`` RGB 0..255 minus ``pixels.MEAN_RGB``; ``age_vector`` | ``output`` float32 ``[B, S, S, 3]`` in [-1, 1] |
| ``generate_batch_stats`` | as ``generate`` | as ``generate``, normalised with the batch's own statistics (the release's test mode) |

The uint8 signatures resize inside the graph with ``pixels.resize_cv2`` (bilinear,
half-pixel centres, rounded: the release's ``cv2.resize`` of test faces), subtract the
mean, run the generator and map [-1, 1] to uint8 with ``pixels.to_uint8``'s arithmetic.
``ipcgan.inference.load_generator(saved_model=DIR)`` loads the export back as a generator.

The export goes through ``keras.export.ExportArchive``: PLATFORM_NOTES measured that a
``tf.Module`` wrapper around a Keras 3 model converts to a TF Lite file without weights.
The ``.tflite`` (``--tflite``) holds the two uint8 signatures. ``--onnx`` converts the uint8
signatures to ``model.onnx`` (and ``model_age_vector.onnx`` / ``model_old_to_young.onnx``)
in the SavedModel directory: ``face_aging.onnx_export``.
"""
from __future__ import annotations

import os
from typing import TYPE_CHECKING, Optional

from face_aging import onnx_export
from face_aging.exporting import convert_onnx, convert_to_tflite, stage, unit_range_to_uint8

# TensorFlow and Keras are imported inside the functions: ``python -m face_aging.export
# --help`` (and a bad flag) answers before they load.
if TYPE_CHECKING:
    import tensorflow as tf

#: Signatures of the SavedModel (the module doc describes each).
SIGNATURES = ("serve", "serve_age_vector", "generate", "generate_batch_stats")
#: Signatures a TF Lite file gets (the uint8 in, uint8 out ones).
TFLITE_SIGNATURES = ("serve", "serve_age_vector")


def _uint8_faces_to_source(images: tf.Tensor, image_size: int) -> tf.Tensor:
    from face_aging import pixels

    return pixels.subtract_mean(pixels.resize_cv2(images, (image_size, image_size)))


def export_saved_model(generator, output_dir: str, image_size: int = 128) -> str:
    """Writes ``generator`` as a SavedModel with the signatures in the module doc.

    Args:
      generator: a built ``ipcgan.networks.Generator`` (weights loaded).
      output_dir: SavedModel directory (created; an existing export there is replaced).
      image_size: generator side S in pixels.
    Returns:
      ``output_dir``.
    """
    import keras
    import tensorflow as tf

    age_groups = int(generator.age_groups)

    def aged_uint8(images, age_vector):
        source = _uint8_faces_to_source(images, image_size)
        return unit_range_to_uint8(generator((source, age_vector), training=False,
                                             batch_stats=False))

    def serve(images, target_group):
        return {"aged": aged_uint8(images, tf.one_hot(target_group, age_groups,
                                                      dtype=tf.float32))}

    def serve_age_vector(images, age_vector):
        return {"aged": aged_uint8(images, age_vector)}

    def generate(source, age_vector):
        return {"output": generator((source, age_vector), training=False, batch_stats=False)}

    def generate_batch_stats(source, age_vector):
        return {"output": generator((source, age_vector), training=False, batch_stats=True)}

    images_spec = tf.TensorSpec([None, None, None, 3], tf.uint8, name="images")
    vector_spec = tf.TensorSpec([None, age_groups], tf.float32, name="age_vector")
    source_spec = tf.TensorSpec([None, image_size, image_size, 3], tf.float32, name="source")
    archive = keras.export.ExportArchive()
    archive.track(generator)
    archive.add_endpoint("serve", serve, [images_spec,
                                          tf.TensorSpec([None], tf.int32, name="target_group")])
    archive.add_endpoint("serve_age_vector", serve_age_vector, [images_spec, vector_spec])
    archive.add_endpoint("generate", generate, [source_spec, vector_spec])
    archive.add_endpoint("generate_batch_stats", generate_batch_stats, [source_spec, vector_spec])
    archive.write_out(output_dir, verbose=False)
    return output_dir


#: Written beside the SavedModel: the model's side, groups and crop geometry, which
#: ``ipcgan.inference.load_generator(saved_model=DIR)`` (and so ``test.py --detect_faces``) reads.
EXPORT_MODEL_JSON = "model.json"


def write_export_record(output_dir: str, generator, source: str) -> dict:
    """Writes ``OUTPUT/model.json``: ``image_size``, ``age_groups``, ``face_crop`` (the crop
    geometry recorded beside the weights, if any) and the ``source_checkpoint``."""
    from face_aging.files import atomic_write_json

    record = {"image_size": int(generator.image_size), "age_groups": int(generator.age_groups),
              "source_checkpoint": os.path.abspath(source)}
    face_crop = getattr(generator, "face_crop", None)
    if face_crop is not None:
        record["face_crop"] = face_crop.as_dict()
    atomic_write_json(os.path.join(output_dir, EXPORT_MODEL_JSON), record)
    return record


def export(checkpoint_dir: str, output_dir: str, model_index: Optional[int] = None,
           tflite: bool = False, image_size: Optional[int] = None,
           age_groups: Optional[int] = None, onnx: bool = False,
           mixed_precision: str = "none", stages=None) -> dict:
    """Loads weights (see ``ipcgan.inference.load_generator``) and writes the SavedModel (+ .tflite,
    + ONNX) and ``OUTPUT/model.json`` (:func:`write_export_record`).

    ``image_size`` / ``age_groups``: default, what is recorded beside the checkpoint (the
    bundled model's ``model.json``, a run's ``training_options.json``), else 128 / 5.
    ``mixed_precision``: the graph computes in this ``face_aging.precision`` mode (inputs and
    outputs keep their dtypes; ``bfloat16`` serves about 2x faster on CPUs with AVX-512 BF16).
    ``stages``: a progress bar counting the stages (2, plus one each for ``tflite``, ``onnx``).

    Returns:
      ``{"saved_model": DIR, "signatures": SIGNATURES, "image_size": S, "tflite": PATH or
      None, "tflite_bytes": int or None, "tflite_signatures": TFLITE_SIGNATURES, "onnx":
      {signature: {"path", "bytes"}}}`` (the export result of every model, see
      ``face_aging.registry``); the ``.tflite`` is ``DIR/generator.tflite``, the ONNX files
      (``onnx``) ``DIR/model.onnx`` and ``DIR/model_age_vector.onnx``.
    """
    from face_aging.ipcgan.inference import load_generator

    with stage(stages, "loading the weights"):
        generator = load_generator(checkpoint_dir=checkpoint_dir, model_index=model_index,
                                   image_size=image_size, age_groups=age_groups,
                                   mixed_precision=mixed_precision)
    with stage(stages, "writing the SavedModel"):
        export_saved_model(generator, output_dir, generator.image_size)
        write_export_record(output_dir, generator, checkpoint_dir)
    result = {"saved_model": output_dir, "signatures": list(SIGNATURES), "tflite": None,
              "tflite_bytes": None, "tflite_signatures": list(TFLITE_SIGNATURES),
              "image_size": int(generator.image_size)}
    if tflite:
        with stage(stages, "converting to TF Lite"):
            path = os.path.join(output_dir, "generator.tflite")
            result["tflite_bytes"] = convert_to_tflite(output_dir, path, TFLITE_SIGNATURES)
            result["tflite"] = path
    result["onnx"] = {}
    if onnx:
        with stage(stages, "converting to ONNX"):
            result["onnx"] = convert_onnx(output_dir, onnx_export.IPCGAN_ONNX_FILES,
                                          ["serve", "serve_age_vector"])
    return result
