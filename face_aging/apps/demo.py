"""``python -m face_aging.demo``: a local web page that ages the faces of a photo (Gradio);
the page is ``face_aging.demo``."""
from __future__ import annotations

import sys

from face_aging import demo, registry
from face_aging.errors import FaceAgingError


def define_flags(flag_values=None):
    """The demo's flags (on ``flag_values``, default absl's global FLAGS)."""
    from absl import flags

    where = dict(flag_values=flag_values if flag_values is not None else flags.FLAGS)
    registry.define_model_flag(where["flag_values"], "demo", "The model the page starts with "
                               "(each can be chosen in the page).")
    flags.DEFINE_string("checkpoint_dir", None, "Weights it starts with: a checkpoint folder "
                        "or an export (default: the bundled IPCGAN; --model=cyclegan: "
                        "checkpoints/cyclegan_young2old).", **where)
    flags.DEFINE_string("host", demo.DEFAULT_HOST, "Address to listen on (0.0.0.0: every "
                        "interface; anyone who can reach it can then use the page and load "
                        "any checkpoint folder of this machine).", **where)
    flags.DEFINE_integer("port", demo.DEFAULT_PORT, "Port to listen on.", lower_bound=1,
                         upper_bound=65535, **where)
    flags.DEFINE_float("max_upload_megapixels", demo.DEFAULT_MAX_UPLOAD_MEGAPIXELS, "Largest photo "
                       "accepted, in megapixels (width x height / 1e6).", lower_bound=0.01,
                       **where)
    flags.DEFINE_integer("concurrency", 1, "Requests computed at once; the others wait in the "
                         "queue.", lower_bound=1, **where)
    flags.DEFINE_integer("max_queue", demo.DEFAULT_MAX_QUEUE, "Requests that may wait; more are "
                         "refused.", lower_bound=1, **where)
    flags.DEFINE_float("face_margin", None, "Crop margin per side of detected faces, a "
                       "fraction of the box (default: the training crops').", lower_bound=0.0,
                       **where)


def config_from_flags(flag_values) -> "demo.DemoConfig":
    """Turns parsed flags into a ``face_aging.demo.DemoConfig``."""
    return demo.DemoConfig(model=registry.get(flag_values.model).title,
                           weights=flag_values.checkpoint_dir, host=flag_values.host,
                           port=flag_values.port,
                           max_upload_megapixels=flag_values.max_upload_megapixels,
                           concurrency=flag_values.concurrency, max_queue=flag_values.max_queue,
                           face_margin=flag_values.face_margin)


def main(argv, flag_values=None):
    from absl import flags

    if len(argv) > 1:
        print(f"error: unexpected arguments: {' '.join(argv[1:])}", file=sys.stderr)
        return 2
    demo.no_telemetry()
    try:
        import gradio
    except ImportError as e:
        print(f"error: the demo needs Gradio ({e}): pip install -e '.[demo]'", file=sys.stderr)
        return 2
    del gradio
    config = config_from_flags(flag_values if flag_values is not None else flags.FLAGS)
    try:
        demo.launch(config)
    except FaceAgingError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except OSError as e:
        print(f"error: cannot listen on {config.host}:{config.port}: "
              f"{(str(e).splitlines() or [type(e).__name__])[0]}", file=sys.stderr)
        return 2
    return 0


def run() -> None:
    """The command (``python -m face_aging.demo``): flags on absl's FLAGS, then :func:`main`."""
    from face_aging import cli

    cli.define_key_flags(define_flags)
    cli.run(main, prog="demo", doc=demo.__doc__)  # the usage


if __name__ == "__main__":
    run()
