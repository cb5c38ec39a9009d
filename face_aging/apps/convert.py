"""``python -m face_aging.checkpoints --tf1_checkpoint=PATH --output_dir=DIR``: converts a
release checkpoint (GAN or AlexNet parts) into a TF2 checkpoint
(``face_aging.ipcgan.checkpoints.convert_tf1_checkpoint``)."""
from __future__ import annotations


def define_flags(flag_values) -> None:
    """The converter's flags on ``flag_values``."""
    from absl import flags

    where = dict(flag_values=flag_values)
    flags.DEFINE_string("tf1_checkpoint", None,
                        "Release checkpoint prefix (e.g. pre_trained/alexnet.model-292000) "
                        "or a directory holding one.", **where)
    flags.DEFINE_string("output_dir", None, "Directory for the TF2 checkpoint.", **where)
    flags.DEFINE_integer("image_size", 128, "Generator/discriminator input size.", **where)
    flags.DEFINE_integer("age_groups", 5, "Number of age groups.", **where)
    flags.mark_flags_as_required(["tf1_checkpoint", "output_dir"], **where)


def main(argv, flag_values=None) -> None:
    from absl import flags

    import tensorflow as tf

    from face_aging.checkpoints import CheckpointMismatchError
    from face_aging.errors import FaceAgingError
    from face_aging.ipcgan.checkpoints import convert_tf1_checkpoint

    del argv
    FLAGS = flag_values if flag_values is not None else flags.FLAGS
    try:
        prefix, parts = convert_tf1_checkpoint(FLAGS.tf1_checkpoint, FLAGS.output_dir,
                                               FLAGS.image_size, FLAGS.age_groups)
    except (FaceAgingError, FileNotFoundError, CheckpointMismatchError,
            tf.errors.OpError) as e:
        raise SystemExit(f"error: {e}") from None
    print(f"wrote {prefix} holding {', '.join(parts)}")


def run() -> None:
    """The command: flags on absl's FLAGS, parsed (``--help`` and bad flags answer before
    TensorFlow loads), then :func:`main`."""
    from face_aging import cli

    cli.define_key_flags(define_flags)
    cli.run(main, doc=__doc__)


if __name__ == "__main__":
    run()
