"""Export a generator as a SavedModel (and optionally TF Lite) for serving.

CLI::

    python -m face_aging.export --checkpoint_dir=checkpoints/bundled --output=exported/aging
    python -m face_aging.export --checkpoint_dir=pre_trained/acgan.model-399999 \\
        --output=exported/aging --tflite

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
``inference.load_generator(saved_model=DIR)`` loads the export back as a generator.

The export goes through ``keras.export.ExportArchive``: PLATFORM_NOTES measured that a
``tf.Module`` wrapper around a Keras 3 model converts to a TF Lite file without weights.
The ``.tflite`` (``--tflite``) holds the two uint8 signatures.
"""
from __future__ import annotations

import os
import sys
from typing import Optional, Sequence

import keras
import tensorflow as tf

from face_aging import pixels

#: Signatures a TF Lite file gets (the uint8 in, uint8 out ones).
TFLITE_SIGNATURES = ("serve", "serve_age_vector")


def unit_range_to_uint8(images: tf.Tensor) -> tf.Tensor:
    """[-1, 1] -> uint8, as ``pixels.to_uint8``: (x + 1) * 127.5, clipped, truncated."""
    return tf.cast(tf.clip_by_value((images + 1.0) * 127.5, 0.0, 255.0), tf.uint8)


def _uint8_faces_to_source(images: tf.Tensor, image_size: int) -> tf.Tensor:
    return pixels.subtract_mean(pixels.resize_cv2(images, (image_size, image_size)))


def export_saved_model(generator, output_dir: str, image_size: int = 128) -> str:
    """Writes ``generator`` as a SavedModel with the signatures in the module doc.

    Args:
      generator: a built ``models.Generator`` (weights loaded).
      output_dir: SavedModel directory (created; an existing export there is replaced).
      image_size: generator side S in pixels.
    Returns:
      ``output_dir``.
    """
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


def convert_to_tflite(saved_model_dir: str, tflite_path: str,
                      signatures: Sequence[str] = TFLITE_SIGNATURES) -> int:
    """Converts an export's uint8 signatures to one float32 TF Lite file (no quantisation).

    Converts the loaded SavedModel's endpoint functions with ``from_concrete_functions``
    (the weights are the SavedModel's, so none are lost): with TF 2.21,
    ``from_saved_model(signature_keys=[two keys])`` silently keeps only
    ``serving_default``.

    Returns:
      the file's size in bytes.
    """
    loaded = tf.saved_model.load(saved_model_dir)
    functions = [getattr(loaded, name).concrete_functions[0] for name in signatures]
    converter = tf.lite.TFLiteConverter.from_concrete_functions(functions, loaded)
    data = converter.convert()
    from face_aging.outputs import atomic_write_bytes

    atomic_write_bytes(tflite_path, data)
    return len(data)


def export(checkpoint_dir: str, output_dir: str, model_index: Optional[int] = None,
           tflite: bool = False, image_size: Optional[int] = None,
           age_groups: Optional[int] = None) -> dict:
    """Loads weights (see ``inference.load_generator``) and writes the SavedModel (+ .tflite).

    ``image_size`` / ``age_groups``: default, what is recorded beside the checkpoint (the
    bundled model's ``model.json``, a run's ``training_options.json``), else 128 / 5.

    Returns:
      ``{"saved_model": DIR, "tflite": PATH or None, "tflite_bytes": int or None}``;
      the ``.tflite`` is ``DIR/generator.tflite``.
    """
    from face_aging.inference import load_generator

    generator = load_generator(checkpoint_dir=checkpoint_dir, model_index=model_index,
                               image_size=image_size, age_groups=age_groups)
    export_saved_model(generator, output_dir, generator.image_size)
    result = {"saved_model": output_dir, "tflite": None, "tflite_bytes": None}
    if tflite:
        path = os.path.join(output_dir, "generator.tflite")
        result["tflite_bytes"] = convert_to_tflite(output_dir, path)
        result["tflite"] = path
    return result


def _main(argv):
    from absl import flags

    from face_aging.checkpoints import CheckpointMismatchError

    del argv
    FLAGS = flags.FLAGS
    try:
        result = export(FLAGS.checkpoint_dir, FLAGS.output, FLAGS.model_index, FLAGS.tflite,
                        FLAGS.image_size, FLAGS.age_groups)
    except (FileNotFoundError, CheckpointMismatchError, ValueError, tf.errors.OpError) as e:
        print(f"error: {str(e).splitlines()[0] if str(e) else type(e).__name__}",
              file=sys.stderr)
        return 2
    print(f"wrote SavedModel {result['saved_model']} (signatures: serve, serve_age_vector, "
          "generate, generate_batch_stats)")
    if result["tflite"]:
        print(f"wrote {result['tflite']} ({result['tflite_bytes'] / 1e6:.1f} MB, signatures: "
              f"{', '.join(TFLITE_SIGNATURES)})")
    return 0


def _define_flags():
    from absl import flags

    from face_aging.inference import BUNDLED_CHECKPOINT_DIR

    flags.DEFINE_string("checkpoint_dir", BUNDLED_CHECKPOINT_DIR,
                        "Weights: a TF2 checkpoint directory or prefix, or a release TF1 "
                        "acgan.model-N prefix (or a directory of them). Default: the bundled "
                        "model.")
    flags.DEFINE_integer("model_index", None,
                         "Checkpoint step in --checkpoint_dir (default: latest).")
    flags.DEFINE_string("output", None, "SavedModel directory to write.")
    flags.DEFINE_bool("tflite", False, "Also write OUTPUT/generator.tflite (uint8 signatures).")
    flags.DEFINE_integer("image_size", None, "Generator input side in pixels (default: recorded "
                         "beside the checkpoint, else 128).")
    flags.DEFINE_integer("age_groups", None, "Number of age groups (default: recorded beside "
                         "the checkpoint, else 5).")
    flags.mark_flags_as_required(["output"])


if __name__ == "__main__":
    from absl import app

    _define_flags()
    app.run(_main)
