"""Export a generator as a SavedModel (and optionally TF Lite) for serving.

CLI::

    python -m face_aging.export --checkpoint_dir=checkpoints/bundled --output=exported/aging
    python -m face_aging.export --checkpoint_dir=pre_trained/acgan.model-399999 \\
        --output=exported/aging --tflite
    python -m face_aging.export --model=cyclegan --checkpoint_dir=checkpoints/cyclegan_wiki128 \\
        --output=exported/cyclegan [--noold_to_young] [--tflite]
    python -m face_aging.export --output=exported/aging --onnx    # + model.onnx (tf2onnx)

``--model=cyclegan`` exports a ``train_cyclegan.py`` run's young -> old generator (and by
default old -> young) with the signatures of :func:`export_cyclegan_saved_model`
(docs/CYCLEGAN.md, "Inference, export and evaluation").

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
The ``.tflite`` (``--tflite``) holds the two uint8 signatures. ``--onnx`` converts the uint8
signatures to ``model.onnx`` (and ``model_age_vector.onnx`` / ``model_old_to_young.onnx``)
in the SavedModel directory: ``face_aging.onnx_export``.
"""
from __future__ import annotations

import contextlib
import json
import os
import sys
from typing import TYPE_CHECKING, Optional, Sequence

# TensorFlow and Keras are imported inside the functions: ``python -m face_aging.export
# --help`` (and a bad flag) answers before they load.
if TYPE_CHECKING:
    import tensorflow as tf

#: Signatures a TF Lite file gets (the uint8 in, uint8 out ones).
TFLITE_SIGNATURES = ("serve", "serve_age_vector")


def unit_range_to_uint8(images: tf.Tensor) -> tf.Tensor:
    """[-1, 1] -> uint8, as ``pixels.to_uint8``: (x + 1) * 127.5, clipped, truncated."""
    import tensorflow as tf

    return tf.cast(tf.clip_by_value((images + 1.0) * 127.5, 0.0, 255.0), tf.uint8)


def _uint8_faces_to_source(images: tf.Tensor, image_size: int) -> tf.Tensor:
    from face_aging import pixels

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
    import tensorflow as tf

    loaded = tf.saved_model.load(saved_model_dir)
    functions = [getattr(loaded, name).concrete_functions[0] for name in signatures]
    converter = tf.lite.TFLiteConverter.from_concrete_functions(functions, loaded)
    data = converter.convert()
    from face_aging.outputs import atomic_write_bytes

    atomic_write_bytes(tflite_path, data)
    return len(data)


#: Written beside the SavedModel: the model's side, groups and crop geometry, which
#: ``inference.load_generator(saved_model=DIR)`` (and so ``test.py --detect_faces``) reads.
EXPORT_MODEL_JSON = "model.json"


def write_export_record(output_dir: str, generator, source: str) -> dict:
    """Writes ``OUTPUT/model.json``: ``image_size``, ``age_groups``, ``face_crop`` (the crop
    geometry recorded beside the weights, if any) and the ``source_checkpoint``."""
    from face_aging.outputs import atomic_write_bytes

    record = {"image_size": int(generator.image_size), "age_groups": int(generator.age_groups),
              "source_checkpoint": os.path.abspath(source)}
    face_crop = getattr(generator, "face_crop", None)
    if face_crop is not None:
        record["face_crop"] = face_crop.as_dict()
    atomic_write_bytes(os.path.join(output_dir, EXPORT_MODEL_JSON),
                       (json.dumps(record, indent=2, sort_keys=True) + "\n").encode())
    return record


@contextlib.contextmanager
def _stage(stages, name: str):
    """One stage of an export on a progress bar (``face_aging.progress.bar``; None: none)."""
    if stages is not None:
        stages.set_description(f"export: {name}")
    yield
    if stages is not None:
        stages.update(1)


def export(checkpoint_dir: str, output_dir: str, model_index: Optional[int] = None,
           tflite: bool = False, image_size: Optional[int] = None,
           age_groups: Optional[int] = None, onnx: bool = False,
           mixed_precision: str = "none", stages=None) -> dict:
    """Loads weights (see ``inference.load_generator``) and writes the SavedModel (+ .tflite,
    + ONNX) and ``OUTPUT/model.json`` (:func:`write_export_record`).

    ``image_size`` / ``age_groups``: default, what is recorded beside the checkpoint (the
    bundled model's ``model.json``, a run's ``training_options.json``), else 128 / 5.
    ``mixed_precision``: the graph computes in this ``face_aging.precision`` mode (inputs and
    outputs keep their dtypes; ``bfloat16`` serves about 2x faster on CPUs with AVX-512 BF16).
    ``stages``: a progress bar counting the stages (2, plus one each for ``tflite``, ``onnx``).

    Returns:
      ``{"saved_model": DIR, "tflite": PATH or None, "tflite_bytes": int or None,
      "onnx": {signature: {"path", "bytes"}}}``; the ``.tflite`` is ``DIR/generator.tflite``,
      the ONNX files (``onnx``) ``DIR/model.onnx`` and ``DIR/model_age_vector.onnx``.
    """
    from face_aging.inference import load_generator

    with _stage(stages, "loading the weights"):
        generator = load_generator(checkpoint_dir=checkpoint_dir, model_index=model_index,
                                   image_size=image_size, age_groups=age_groups,
                                   mixed_precision=mixed_precision)
    with _stage(stages, "writing the SavedModel"):
        export_saved_model(generator, output_dir, generator.image_size)
        write_export_record(output_dir, generator, checkpoint_dir)
    result = {"saved_model": output_dir, "tflite": None, "tflite_bytes": None}
    if tflite:
        with _stage(stages, "converting to TF Lite"):
            path = os.path.join(output_dir, "generator.tflite")
            result["tflite_bytes"] = convert_to_tflite(output_dir, path)
            result["tflite"] = path
    result["onnx"] = {}
    if onnx:
        with _stage(stages, "converting to ONNX"):
            result["onnx"] = _convert_onnx(output_dir, "ipcgan", ["serve", "serve_age_vector"])
    return result


def _convert_onnx(output_dir: str, model: str, signatures) -> dict:
    from face_aging import onnx_export

    files = onnx_export.CYCLEGAN_ONNX_FILES if model == "cyclegan" \
        else onnx_export.IPCGAN_ONNX_FILES
    return onnx_export.convert_saved_model(output_dir, files, signatures)


# --------------------------------------------------------------------------- CycleGAN

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
    (+ ``DIR/generator.tflite`` with the float signatures). ``stages``: as :func:`export`.

    Returns:
      ``{"saved_model", "signatures", "tflite", "tflite_bytes", "image_size", "onnx"}``
      (``onnx``: ``DIR/model.onnx`` young -> old, ``DIR/model_old_to_young.onnx``).
    """
    from face_aging.cyclegan.inference import load_cyclegan

    with _stage(stages, "loading the weights"):
        model = load_cyclegan(checkpoint_dir=checkpoint_dir, model_index=model_index,
                              image_size=image_size, load_old_to_young=old_to_young,
                              mixed_precision=mixed_precision)
    with _stage(stages, "writing the SavedModel"):
        export_cyclegan_saved_model(model.g_a, output_dir, model.image_size, model.g_b)
    signatures = ["serve", "young_to_old"] + (["serve_old_to_young", "old_to_young"]
                                              if model.g_b is not None else [])
    result = {"saved_model": output_dir, "signatures": signatures, "tflite": None,
              "tflite_bytes": None, "image_size": model.image_size}
    if tflite:
        with _stage(stages, "converting to TF Lite"):
            path = os.path.join(output_dir, "generator.tflite")
            lite = [s for s in CYCLEGAN_TFLITE_SIGNATURES if s in signatures]
            result["tflite_bytes"] = convert_to_tflite(output_dir, path, lite)
            result.update(tflite=path, tflite_signatures=lite)
    result["onnx"] = {}
    if onnx:
        with _stage(stages, "converting to ONNX"):
            result["onnx"] = _convert_onnx(output_dir, "cyclegan", signatures)
    return result


# --------------------------------------------------------------------------- CLI

#: The flags _main reads; ``define_flags(flag_values)`` lets tests use their own FlagValues.
FLAGS = None


def _main(argv):
    import tensorflow as tf

    from face_aging import progress
    from face_aging.checkpoints import CheckpointMismatchError
    from face_aging.cyclegan.inference import CycleGANLoadError
    from face_aging.onnx_export import OnnxUnavailable, check_available

    del argv
    if FLAGS is None:
        from absl import flags as absl_flags

        flag_values = absl_flags.FLAGS
    else:
        flag_values = FLAGS
    F = flag_values
    try:
        if F.onnx:  # before anything is written
            check_available()
        if F.model == "cyclegan" and F["age_groups"].present:
            raise ValueError("--age_groups cannot be used with --model=cyclegan")
        if F.model == "ipcgan" and F["old_to_young"].present:
            raise ValueError("--old_to_young cannot be used with --model=ipcgan")
        with progress.bar(2 + int(F.tflite) + int(F.onnx), "export", unit="stage") as stages:
            if F.model == "cyclegan":
                from face_aging.cyclegan.inference import DEFAULT_CHECKPOINT_DIR

                checkpoint_dir = F.checkpoint_dir if F["checkpoint_dir"].present \
                    else DEFAULT_CHECKPOINT_DIR
                result = export_cyclegan(checkpoint_dir, F.output, F.model_index, F.tflite,
                                         F.image_size, F.old_to_young, F.onnx,
                                         mixed_precision=F.mixed_precision, stages=stages)
            else:
                result = export(F.checkpoint_dir, F.output, F.model_index, F.tflite,
                                F.image_size, F.age_groups, F.onnx,
                                mixed_precision=F.mixed_precision, stages=stages)
    except (FileNotFoundError, CheckpointMismatchError, CycleGANLoadError, ValueError,
            OnnxUnavailable, NotImplementedError, tf.errors.OpError) as e:
        print(f"error: {str(e).splitlines()[0] if str(e) else type(e).__name__}",
              file=sys.stderr)
        return 2
    if F.model == "cyclegan":
        print(f"wrote SavedModel {result['saved_model']} (signatures: "
              f"{', '.join(result['signatures'])}; image size {result['image_size']})")
        if result["tflite"]:
            print(f"wrote {result['tflite']} ({result['tflite_bytes'] / 1e6:.1f} MB, "
                  f"signatures: {', '.join(result['tflite_signatures'])})")
        _print_onnx(result["onnx"])
        return 0
    print(f"wrote SavedModel {result['saved_model']} (signatures: serve, serve_age_vector, "
          "generate, generate_batch_stats)")
    if result["tflite"]:
        print(f"wrote {result['tflite']} ({result['tflite_bytes'] / 1e6:.1f} MB, signatures: "
              f"{', '.join(TFLITE_SIGNATURES)})")
    _print_onnx(result["onnx"])
    return 0


def _print_onnx(written: dict) -> None:
    from face_aging.onnx_export import ONNX_OPSET

    for signature, file in written.items():
        print(f"wrote {file['path']} ({file['bytes'] / 1e6:.1f} MB, ONNX opset {ONNX_OPSET}, "
              f"signature {signature})")


def define_flags(flag_values=None):
    """Defines the CLI's flags on ``flag_values`` (default absl's global FLAGS)."""
    from absl import flags

    from face_aging import precision
    from face_aging.inference import BUNDLED_CHECKPOINT_DIR

    where = dict(flag_values=flag_values if flag_values is not None else flags.FLAGS)
    flags.DEFINE_enum("model", "ipcgan", ["ipcgan", "cyclegan"],
                      "ipcgan: the conditional generator. cyclegan: a train_cyclegan.py "
                      "run's generators (--checkpoint_dir default: checkpoints/"
                      "cyclegan_young2old, train_cyclegan.py's).", **where)
    flags.DEFINE_string("checkpoint_dir", BUNDLED_CHECKPOINT_DIR,
                        "Weights: a TF2 checkpoint directory or prefix, or a release TF1 "
                        "acgan.model-N prefix (or a directory of them). Default: the bundled "
                        "model. --model=cyclegan: a train_cyclegan.py checkpoint directory or "
                        "ckpt-N prefix.", **where)
    flags.DEFINE_integer("model_index", None,
                         "Checkpoint step in --checkpoint_dir (default: latest).", **where)
    flags.DEFINE_string("output", None, "SavedModel directory to write.", **where)
    flags.DEFINE_bool("tflite", False, "Also write OUTPUT/generator.tflite (IPCGAN: the uint8 "
                      "signatures; CycleGAN: the float ones).", **where)
    flags.DEFINE_bool("onnx", False, "Also write OUTPUT/model.onnx via tf2onnx (the [onnx] "
                      "extra): the uint8 signature serve; IPCGAN also "
                      "OUTPUT/model_age_vector.onnx (serve_age_vector), CycleGAN "
                      "OUTPUT/model_old_to_young.onnx (serve_old_to_young).", **where)
    flags.DEFINE_integer("image_size", None, "Generator input side in pixels (default: recorded "
                         "beside the checkpoint, else 128; CycleGAN: the run's crop_size).",
                         **where)
    flags.DEFINE_integer("age_groups", None, "Number of age groups (default: recorded beside "
                         "the checkpoint, else 5).", **where)
    flags.DEFINE_bool("old_to_young", True, "--model=cyclegan: also export the old -> young "
                      "generator (signatures serve_old_to_young, old_to_young).", **where)
    precision.define_flag(where["flag_values"], extra_help=" Of the exported graph's compute.")
    flags.mark_flags_as_required(["output"], **where)


_define_flags = define_flags  # the name before define_flags took a FlagValues


if __name__ == "__main__":
    from face_aging import cli

    define_flags()
    cli.run(_main)
