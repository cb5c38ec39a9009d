"""ONNX files from the SavedModel ``python -m face_aging.export`` writes (``--onnx``).

Each uint8 signature of the export becomes one ONNX model (ONNX has one graph per file), converted
by tf2onnx from the loaded SavedModel's endpoint function, so the weights and the in-graph resize
are exactly the SavedModel's:

| model | file | inputs | output |
|---|---|---|---|
| IPCGAN | ``model.onnx`` (``serve``) | ``images`` uint8 ``[B, H, W, 3]`` RGB, any H, W; ``target_group`` int32 ``[B]`` | ``aged`` uint8 ``[B, S, S, 3]`` |
| IPCGAN | ``model_age_vector.onnx`` (``serve_age_vector``) | ``images``; ``age_vector`` float32 ``[B, age_groups]`` | ``aged`` |
| CycleGAN | ``model.onnx`` (``serve``: young -> old) | ``images`` uint8 ``[B, H, W, 3]`` | ``aged`` uint8 ``[B, S, S, 3]`` |
| CycleGAN | ``model_old_to_young.onnx`` (``serve_old_to_young``) | ``images`` | ``rejuvenated`` |

Opset 18, the first with ``Resize(antialias=1)``: the CycleGAN signatures resize with TF's
antialiased bicubic (``ScaleAndTranslate``, kernel ``keyscubic``), which tf2onnx does not convert;
:func:`_scale_and_translate_to_resize` maps it to ONNX ``Resize`` (cubic, a = -0.5, weights outside
the image excluded, half-pixel centres, antialiased), which ONNX Runtime computes to within 1e-4 of
TF on 0..255 pixels. tf2onnx and onnx are the optional extra ``[onnx]``.
"""
from __future__ import annotations

import logging
import os
from typing import Dict, Sequence

from face_aging.errors import UnavailableError

#: ONNX opset written: 18 adds ``Resize``'s ``antialias`` attribute (needed by CycleGAN's resize).
ONNX_OPSET = 18
#: SavedModel signature -> ONNX file name inside the SavedModel directory, per model.
IPCGAN_ONNX_FILES = {"serve": "model.onnx", "serve_age_vector": "model_age_vector.onnx"}
CYCLEGAN_ONNX_FILES = {"serve": "model.onnx", "serve_old_to_young": "model_old_to_young.onnx"}


class OnnxUnavailable(UnavailableError, RuntimeError):
    """tf2onnx (the ``[onnx]`` extra) is not installed; the message says what to install."""


def check_available() -> None:
    """Raises :class:`OnnxUnavailable` (one line) unless tf2onnx can be imported."""
    try:
        import tf2onnx
    except ImportError as e:
        raise OnnxUnavailable(f"--onnx needs tf2onnx ({e}): pip install -e '.[onnx]'") from None
    del tf2onnx


def _scale_and_translate_to_resize(ctx, node, name, args):
    """tf2onnx handler: TF ``ScaleAndTranslate`` (``tf.image.resize(..., antialias=True)``) ->
    ONNX ``Resize`` in NCHW. Only what ``tf.image.resize`` emits is accepted: the Keys cubic
    kernel and a zero translation (anything else would convert to different numbers)."""
    import numpy as np
    from onnx import TensorProto
    from tf2onnx import constants, utils

    kernel = node.get_attr_str("kernel_type")
    if kernel != "keyscubic":
        raise NotImplementedError(f"{node.name}: ScaleAndTranslate kernel {kernel!r} (only "
                                  "'keyscubic', tf.image.resize's bicubic, converts)")
    translation = node.inputs[3]
    if not translation.is_const() or np.any(translation.get_tensor_value(as_list=False)):
        raise NotImplementedError(f"{node.name}: ScaleAndTranslate with a translation (only "
                                  "tf.image.resize's zero translation converts)")
    antialias = bool(node.get_attr_value("antialias", 1))
    nchw = ctx.make_node("Transpose", [node.input[0]], {"perm": constants.NHWC_TO_NCHW})
    shape = ctx.make_node("Shape", [nchw.output[0]])
    start = ctx.make_const(utils.make_name("start"), np.array([0], np.int64))
    stop = ctx.make_const(utils.make_name("stop"), np.array([2], np.int64))
    batch_and_channels = ctx.make_node("Slice", [shape.output[0], start.output[0], stop.output[0]])
    height_width = ctx.make_node("Cast", [node.input[1]], attr={"to": TensorProto.INT64})
    sizes = ctx.make_node("Concat", [batch_and_channels.output[0], height_width.output[0]],
                          {"axis": 0})
    roi = ctx.make_const(utils.make_name("roi"), np.array([], np.float32))
    scales = ctx.make_const(utils.make_name("scales"), np.array([], np.float32))
    resize = ctx.make_node(
        "Resize", [nchw.output[0], roi.output[0], scales.output[0], sizes.output[0]],
        attr={"mode": "cubic", "cubic_coeff_a": -0.5, "exclude_outside": 1,
              "antialias": int(antialias), "coordinate_transformation_mode": "half_pixel"})
    shapes, dtypes = node.output_shapes, node.output_dtypes
    ctx.remove_node(node.name)
    return ctx.make_node("Transpose", resize.output, {"perm": constants.NCHW_TO_NHWC},
                         name=node.name, outputs=node.output, shapes=shapes, dtypes=dtypes)


def convert_signature(saved_model_dir: str, signature: str, onnx_path: str,
                      opset: int = ONNX_OPSET, loaded=None) -> int:
    """Converts one endpoint of a face_aging SavedModel to an ONNX file (written atomically).

    Args:
      saved_model_dir: a directory written by ``face_aging.export``.
      signature: an endpoint of it, e.g. ``"serve"``.
      onnx_path: file to write.
      loaded: the already loaded SavedModel (saves loading it once per signature).
    Returns:
      the file's size in bytes.
    Raises:
      OnnxUnavailable: tf2onnx is not installed.
      ValueError: the SavedModel has no such endpoint.
    """
    check_available()
    import tensorflow as tf
    import tf2onnx

    from face_aging.files import atomic_write_bytes

    loaded = loaded if loaded is not None else tf.saved_model.load(saved_model_dir)
    function = getattr(loaded, signature, None)
    if function is None or not getattr(function, "concrete_functions", None):
        raise ValueError(f"{saved_model_dir}: no '{signature}' endpoint to convert to ONNX")
    input_signature = list(function.concrete_functions[0].structured_input_signature[0])
    logger = logging.getLogger("tf2onnx")
    level = logger.level
    logger.setLevel(logging.ERROR)  # tf2onnx logs every folded node at INFO
    try:
        model_proto, _ = tf2onnx.convert.from_function(
            function, input_signature=input_signature, opset=opset,
            custom_op_handlers={"ScaleAndTranslate": (_scale_and_translate_to_resize, [])})
    finally:
        logger.setLevel(level)
    data = model_proto.SerializeToString()
    atomic_write_bytes(onnx_path, data)
    return len(data)


def convert_saved_model(saved_model_dir: str, files: Dict[str, str],
                        signatures: Sequence[str] = None) -> Dict[str, dict]:
    """Writes ``files`` (signature -> file name) into ``saved_model_dir``; signatures the
    export does not have (CycleGAN without old -> young) are skipped when ``signatures`` lists
    the export's. Returns ``{signature: {"path", "bytes"}}``."""
    import tensorflow as tf

    loaded = tf.saved_model.load(saved_model_dir)
    written = {}
    for signature, name in files.items():
        if signatures is not None and signature not in signatures:
            continue
        path = os.path.join(saved_model_dir, name)
        written[signature] = {"path": path,
                              "bytes": convert_signature(saved_model_dir, signature, path,
                                                         loaded=loaded)}
    return written
