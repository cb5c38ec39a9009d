"""Export a ``train_cyclegan.py`` run's generators as a SavedModel (and optionally TF Lite,
ONNX) for serving: what ``python -m face_aging.export --model=cyclegan`` does (the command:
``face_aging.apps.export``). The young -> old generator, and by default old -> young, with
the signatures of :func:`export_cyclegan_saved_model` (docs/CYCLEGAN.md, "Inference, export
and evaluation").

TensorFlow and Keras are imported inside the functions: the command's ``--help`` answers
before they load.
"""
from __future__ import annotations

import os
from typing import Optional

from face_aging import onnx_export
from face_aging.exporting import convert_onnx, convert_to_tflite, stage, unit_range_to_uint8

#: Signatures of a CycleGAN export's TF Lite file: the float ones (TF Lite has no kernel for
#: the antialiased bicubic resize the uint8 signatures do, not even as a Flex op).
CYCLEGAN_TFLITE_SIGNATURES = ("young_to_old", "old_to_young")


def export_cyclegan_saved_model(g_a, output_dir: str, image_size: int, g_b=None) -> str:
    """Writes CycleGAN generators as a SavedModel (signatures in docs/CYCLEGAN.md):

    | signature | inputs | output |
    |---|---|---|
    | ``serve`` (also ``serving_default``) | ``images`` uint8 ``[B, H, W, 3]`` RGB, any H, W | ``aged`` uint8 ``[B, S, S, 3]``: young -> old |
    | ``serve_old_to_young`` (with ``g_b``) | as ``serve`` | ``rejuvenated`` uint8 ``[B, S, S, 3]`` |
    | ``young_to_old`` | ``images`` float32 ``[B, S, S, 3]`` in [-1, 1] | ``output`` float32 in [-1, 1]: ``g_a`` as is |
    | ``old_to_young`` (with ``g_b``) | as ``young_to_old`` | ``output``: ``g_b`` |

    The uint8 signatures resize as ``test.py --model=cyclegan`` does
    (``cyclegan.data.resize_rounded``: bicubic, antialiased, rounded), scale to [-1, 1], run
    the generator and map back with ``pixels.to_uint8``'s arithmetic.

    Args:
      g_a, g_b: built ``cyclegan.networks.ResnetGenerator`` s (young -> old, old -> young).
      image_size: S, the side faces are resized to (the run's ``crop_size``).
    """
    import keras
    import tensorflow as tf

    from face_aging import pixels
    from face_aging.cyclegan.data import resize_rounded

    image_size = int(image_size)
    images_spec = tf.TensorSpec([None, None, None, 3], tf.uint8, name="images")
    float_spec = tf.TensorSpec([None, image_size, image_size, 3], tf.float32, name="images")
    archive = keras.export.ExportArchive()
    generators = [("young_to_old", "serve", "aged", g_a)]
    if g_b is not None:
        generators.append(("old_to_young", "serve_old_to_young", "rejuvenated", g_b))
    def endpoints(generator, float_name, uint8_name, output_name):
        # A factory, not default arguments: the traced functions must take only ``images``.
        def translate(images):
            return {"output": generator(images)}

        def serve(images):
            source = pixels.to_unit_range(resize_rounded(images, image_size))
            return {output_name: unit_range_to_uint8(generator(source))}

        # TF Lite names a converted signature after its function.
        translate.__name__, serve.__name__ = float_name, uint8_name
        return translate, serve

    for float_name, uint8_name, output_name, generator in generators:
        archive.track(generator)
        translate, serve = endpoints(generator, float_name, uint8_name, output_name)
        # ``serve`` first: the archive's first endpoint also becomes ``serving_default``.
        archive.add_endpoint(uint8_name, serve, [images_spec])
        archive.add_endpoint(float_name, translate, [float_spec])
    archive.write_out(output_dir, verbose=False)
    return output_dir


def export_cyclegan(checkpoint_dir: str, output_dir: str, model_index: Optional[int] = None,
                    tflite: bool = False, image_size: Optional[int] = None,
                    old_to_young: bool = True, onnx: bool = False,
                    mixed_precision: str = "none", stages=None) -> dict:
    """Loads a ``train_cyclegan.py`` checkpoint (``cyclegan.inference.load_cyclegan``: n_blocks,
    ngf and the image size from its ``training_options.json``) and writes the SavedModel
    (+ ``DIR/generator.tflite`` with the float signatures). ``stages``: a progress bar counting
    the stages (``face_aging.exporting.stage``).

    Returns:
      ``{"saved_model", "signatures", "tflite", "tflite_bytes", "image_size", "onnx"}``
      (``onnx``: ``DIR/model.onnx`` young -> old, ``DIR/model_old_to_young.onnx``).
    """
    from face_aging.cyclegan.inference import load_cyclegan

    with stage(stages, "loading the weights"):
        model = load_cyclegan(checkpoint_dir=checkpoint_dir, model_index=model_index,
                              image_size=image_size, load_old_to_young=old_to_young,
                              mixed_precision=mixed_precision)
    with stage(stages, "writing the SavedModel"):
        export_cyclegan_saved_model(model.g_a, output_dir, model.image_size, model.g_b)
    signatures = ["serve", "young_to_old"] + (["serve_old_to_young", "old_to_young"]
                                              if model.g_b is not None else [])
    result = {"saved_model": output_dir, "signatures": signatures, "tflite": None,
              "tflite_bytes": None, "image_size": model.image_size}
    if tflite:
        with stage(stages, "converting to TF Lite"):
            path = os.path.join(output_dir, "generator.tflite")
            lite = [s for s in CYCLEGAN_TFLITE_SIGNATURES if s in signatures]
            result["tflite_bytes"] = convert_to_tflite(output_dir, path, lite)
            result.update(tflite=path, tflite_signatures=lite)
    result["onnx"] = {}
    if onnx:
        with stage(stages, "converting to ONNX"):
            result["onnx"] = convert_onnx(output_dir, onnx_export.CYCLEGAN_ONNX_FILES, signatures)
    return result
