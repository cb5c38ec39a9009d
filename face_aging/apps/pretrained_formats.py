"""``python -m face_aging.pretrained_formats --bvlc_npy=bvlc_alexnet.npy --output_dir=DIR``:
``bvlc_alexnet.npy`` read safely and written as a TF2 AlexNet checkpoint ``DIR/alexnet-0``
(``face_aging.alexnet.formats``)."""
from __future__ import annotations


def define_flags(flag_values) -> None:
    """The command's flags on ``flag_values``."""
    from absl import flags

    where = dict(flag_values=flag_values)
    flags.DEFINE_string("bvlc_npy", None, "bvlc_alexnet.npy (pickled dict layer -> [W, b]).",
                        **where)
    flags.DEFINE_string("output_dir", None, "Directory for the TF2 checkpoint alexnet-0.",
                        **where)
    flags.DEFINE_integer("age_groups", 5, "Age groups of the (untrained) age head.", **where)
    flags.DEFINE_boolean("conv1_rgb", False, "Reverse conv1's input channels (BGR-trained "
                         "filters for RGB input); default keeps them as stored, as the release.",
                         **where)
    flags.mark_flags_as_required(["bvlc_npy", "output_dir"], **where)
    flags.register_validator("age_groups", lambda v: v >= 2, "--age_groups must be >= 2",
                             **where)


def main(argv, flag_values=None) -> None:
    from absl import flags

    from face_aging.alexnet.formats import convert_bvlc_alexnet
    from face_aging.errors import FaceAgingError

    if len(argv) > 1:
        raise SystemExit(f"error: unexpected arguments {argv[1:]}")
    FLAGS = flag_values if flag_values is not None else flags.FLAGS
    try:
        prefix = convert_bvlc_alexnet(FLAGS.bvlc_npy, FLAGS.output_dir, FLAGS.age_groups,
                                      FLAGS.conv1_rgb)
    except (FaceAgingError, OSError) as e:
        raise SystemExit(f"error: {e}") from None
    print(f"wrote {prefix} (conv1..conv5, fc6, fc7 from {FLAGS.bvlc_npy}); use it as "
          f"--alexnet_pretrained_model={prefix} or as --init_from of python -m face_aging.pretrain")


def run() -> None:
    """The command: flags on absl's FLAGS, parsed, then :func:`main`."""
    from face_aging import cli
    from face_aging.alexnet import formats

    cli.define_key_flags(define_flags)
    cli.run(main, doc=formats.__doc__)  # the usage


if __name__ == "__main__":
    run()
