"""``python -m face_aging.export``: export a generator as a SavedModel (and optionally TF Lite,
ONNX) for serving::

    python -m face_aging.export --checkpoint_dir=checkpoints/bundled --output=exported/aging
    python -m face_aging.export --checkpoint_dir=pre_trained/acgan.model-399999 \\
        --output=exported/aging --tflite
    python -m face_aging.export --model=cyclegan --checkpoint_dir=checkpoints/cyclegan_wiki128 \\
        --output=exported/cyclegan [--noold_to_young] [--tflite]
    python -m face_aging.export --output=exported/aging --onnx    # + model.onnx (tf2onnx)

The signatures: ``face_aging.ipcgan.export`` (IPCGAN) and ``face_aging.cyclegan.export``
(``--model=cyclegan``, docs/CYCLEGAN.md "Inference, export and evaluation").
"""
from __future__ import annotations

import sys

from face_aging import registry


def main(argv, flag_values=None) -> int:
    """Runs the export the parsed flags ask for (``flag_values``, default absl's FLAGS) with the
    model's exporter (the registry's ``export``); returns the exit status (2: nothing written,
    one line on stderr)."""
    import tensorflow as tf

    from face_aging import progress
    from face_aging.checkpoints import CheckpointMismatchError
    from face_aging.errors import FaceAgingError
    from face_aging.onnx_export import check_available

    del argv
    if flag_values is None:
        from absl import flags as absl_flags

        flag_values = absl_flags.FLAGS
    F = flag_values
    try:
        if F.onnx:  # before anything is written
            check_available()
        registry.check_model_flags("export", F)
        checkpoint_dir = F.checkpoint_dir if F["checkpoint_dir"].present \
            else registry.resolve(F.model, "default_weights")
        with progress.bar(2 + int(F.tflite) + int(F.onnx), "export", unit="stage") as stages:
            result = registry.resolve(F.model, "export")(
                checkpoint_dir, F.output, F.model_index, F.tflite, F.image_size, onnx=F.onnx,
                mixed_precision=F.mixed_precision, stages=stages,
                **registry.model_flags("export", F.model, F))
    except (FaceAgingError, FileNotFoundError, CheckpointMismatchError, ValueError,
            NotImplementedError, tf.errors.OpError) as e:
        print(f"error: {str(e).splitlines()[0] if str(e) else type(e).__name__}",
              file=sys.stderr)
        return 2
    print(f"wrote SavedModel {result['saved_model']} (signatures: "
          f"{', '.join(result['signatures'])}; image size {result['image_size']})")
    if result["tflite"]:
        print(f"wrote {result['tflite']} ({result['tflite_bytes'] / 1e6:.1f} MB, "
              f"signatures: {', '.join(result['tflite_signatures'])})")
    _print_onnx(result["onnx"])
    return 0


def _print_onnx(written: dict) -> None:
    from face_aging.onnx_export import ONNX_OPSET

    for signature, file in written.items():
        print(f"wrote {file['path']} ({file['bytes'] / 1e6:.1f} MB, ONNX opset {ONNX_OPSET}, "
              f"signature {signature})")


def define_flags(flag_values=None):
    """Defines the command's flags on ``flag_values`` (default absl's global FLAGS)."""
    from absl import flags

    from face_aging import precision

    where = dict(flag_values=flag_values if flag_values is not None else flags.FLAGS)
    registry.define_model_flag(where["flag_values"], "export", "--checkpoint_dir default: the "
                               "bundled IPCGAN; cyclegan: checkpoints/cyclegan_young2old, "
                               "train_cyclegan.py's.")
    flags.DEFINE_string("checkpoint_dir", None,
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


def run() -> None:
    """The command (``python -m face_aging.export``): flags on absl's FLAGS, then :func:`main`."""
    from face_aging import cli

    cli.define_key_flags(define_flags)
    cli.run(main, doc=__doc__)


if __name__ == "__main__":
    run()
