"""Times the whole IPCGAN training step with and without a gradient rewrite, interleaved.

``--compare=project_rewrites`` (the default): the project's step against the same step with
TensorFlow's own ops everywhere, i.e. without ``face_aging/gradient_rewrites.py``
(AlexNet's conv1 input gradient, the generator conv4's blocked forward pass and kernel
gradient, the dense layers' input gradients) and with the discriminator's ``dis_1`` run on the
concatenated 69 channels (``Conv.call_on_parts`` off):

    python -m benchmarks.conv_gradient --batch=32 --image_size=128 --mixed_precision=none,bfloat16

``--compare=stride1_input``: the input gradient of a stride-1 ``SAME`` convolution as a
forward convolution (of the output gradient, padded the other way round, with the kernel
flipped in space and its in/out channels swapped), applied to every stride-1 ``SAME``
convolution with a kernel larger than 1x1 and one group (D's dis_3/dis_4, G's conv1/conv4 and
12 residual convolutions, AlexNet's conv3). TF's CPU ``Conv2DBackpropInput`` for the
discriminator's 4x4 convolutions once ran ~3x slower than the forward convolution; the project
keeps TF's own gradient there unless this tool measures the rewrite faster.

Each round runs every variant once, in turn; the speed-up is of the medians, with the
per-round ratios beside it (docs/BENCHMARKS.md has the figures).
"""
from __future__ import annotations

import contextlib
import os
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def forward_conv_input_gradient(dy, kernel):
    """The input gradient of ``tf.nn.conv2d(x, kernel, 1, "SAME")`` as a forward convolution.

    ``dy``: the output gradient ``[B, H, W, out]``; ``kernel``: ``[k, k, in, out]``. TF's
    ``SAME`` at stride 1 pads ``(k - 1) // 2`` before and the rest after; the gradient pads
    the other way round and convolves with the kernel flipped in both spatial axes and its
    channel axes swapped (``[k, k, out, in]``).
    """
    import tensorflow as tf

    k = int(kernel.shape[0])
    before, after = (k - 1) // 2, (k - 1) - (k - 1) // 2
    flipped = tf.transpose(tf.reverse(kernel, [0, 1]), [0, 1, 3, 2])
    padded = tf.pad(dy, [[0, 0], [after, before], [after, before], [0, 0]])
    return tf.nn.conv2d(padded, flipped, 1, "VALID")


def conv_same_stride1(x, kernel):
    """``tf.nn.conv2d(x, kernel, 1, "SAME")`` whose input gradient is
    :func:`forward_conv_input_gradient` (the kernel gradient stays TF's)."""
    import tensorflow as tf

    @tf.custom_gradient
    def conv(x, kernel):
        def grad(dy):
            dk = tf.raw_ops.Conv2DBackpropFilter(input=x, filter_sizes=tf.shape(kernel),
                                                 out_backprop=dy, strides=[1, 1, 1, 1],
                                                 padding="SAME")
            return forward_conv_input_gradient(dy, kernel), dk

        return tf.nn.conv2d(x, kernel, 1, "SAME"), grad

    return conv(x, kernel)


@contextlib.contextmanager
def rewritten_convolutions(enabled: bool = True):
    """While active, ``face_aging.layers.Conv`` layers *traced* use :func:`conv_same_stride1`
    where it applies (stride 1, ``SAME``, one group, kernel > 1x1)."""
    import tensorflow as tf
    from face_aging import layers

    original = layers.Conv.call

    def call(self, x):
        if not (self.groups == 1 and self.strides == 1 and self.padding == "SAME"
                and self.kernel_size > 1):
            return original(self, x)
        y = conv_same_stride1(x, tf.cast(self.kernel, x.dtype))
        return tf.nn.bias_add(y, tf.cast(self.bias, x.dtype))

    if enabled:
        layers.Conv.call = call
    try:
        yield
    finally:
        layers.Conv.call = original


@contextlib.contextmanager
def tensorflow_gradients(enabled: bool = True):
    """While active, models *traced* use TF's own convolutions, matmuls and gradients instead
    of the project's ``face_aging.gradient_rewrites`` and run ``dis_1`` on the concatenation of
    its parts."""
    import tensorflow as tf
    from face_aging import gradient_rewrites, layers

    saved = (gradient_rewrites.conv2d, gradient_rewrites.matmul, layers.Conv.call_on_parts)
    if enabled:
        gradient_rewrites.conv2d = lambda x, kernel, stride, padding: tf.nn.conv2d(
            x, kernel, stride, padding)
        gradient_rewrites.matmul = lambda x, kernel: tf.matmul(x, kernel)
        layers.Conv.call_on_parts = lambda self, parts: self(tf.concat(parts, axis=-1))
    try:
        yield
    finally:
        gradient_rewrites.conv2d, gradient_rewrites.matmul, layers.Conv.call_on_parts = saved


#: --compare -> (reference variant, candidate variant, context manager active for the one named)
COMPARISONS = {
    "project_rewrites": ("tf_gradients", "default", tensorflow_gradients, "tf_gradients"),
    "stride1_input": ("default", "rewritten", rewritten_convolutions, "rewritten"),
}


def parse_args(argv=None):
    from face_aging.cli import ArgumentParser

    p = ArgumentParser(prog="python -m benchmarks.conv_gradient",
                       description=__doc__.splitlines()[0])
    p.add_argument("--compare", choices=sorted(COMPARISONS), default="project_rewrites",
                   help="which rewrite to time against its absence (see the module docstring)")
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--image_size", type=int, default=128)
    p.add_argument("--mixed_precision", default="none",
                   help="comma-separated precision modes (none, bfloat16, float16)")
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--warmup", type=int, default=1)
    p.add_argument("--output", default=None, help="also write the results as JSON here")
    args = p.parse_args(argv)
    if min(args.batch, args.repeats) < 1 or args.warmup < 0:
        p.error("--batch and --repeats must be >= 1, --warmup >= 0")
    if args.image_size < 16 or args.image_size % 8:
        p.error("--image_size must be a multiple of 8, at least 16")
    from face_aging import precision

    try:
        args.mixed_precision = [precision.parse_mode(m) for m in args.mixed_precision.split(",")
                                if m.strip()]
    except ValueError as e:
        p.error(f"--mixed_precision: {e}")
    return args


def main(argv=None) -> int:
    args = parse_args(argv)
    from benchmarks import machine, sections
    from benchmarks.timing import median, time_interleaved

    reference, candidate, patch, patched = COMPARISONS[args.compare]
    fns = {}
    for mode in args.mixed_precision:
        for variant in (reference, candidate):
            config = sections.Config(f"{mode}/{variant}", mixed_precision=mode)
            trainer, _ = sections.make_trainer(config, args.image_size)
            data = sections.synthetic_batch(args.batch, args.image_size)
            with patch(variant == patched):
                start = time.perf_counter()
                trainer.train_step(data)["d_loss"].numpy()  # traces under the patch
            print(f"{config.name}: first step (tracing) {time.perf_counter() - start:.1f} s",
                  file=sys.stderr, flush=True)
            fns[config.name] = lambda t=trainer, d=data: t.train_step(d)["d_loss"].numpy()
    load_start = machine.load_average()
    times = time_interleaved(fns, args.warmup, args.repeats)
    results = {"compare": args.compare, "batch": args.batch, "image_size": args.image_size,
               "cpu": machine.cpu_info(),
               "load_average": {"start": load_start, "end": machine.load_average()},
               "times_s": times, "median_s": {k: median(v) for k, v in times.items()}}
    print(f"training step, batch {args.batch}, {args.image_size} px, median of "
          f"{args.repeats} interleaved rounds ({args.compare}):")
    for mode in args.mixed_precision:
        ref, new = f"{mode}/{reference}", f"{mode}/{candidate}"
        base, fast = results["median_s"][ref], results["median_s"][new]
        per_round = [a / b for a, b in zip(times[ref], times[new])]
        results.setdefault("speedup", {})[mode] = base / fast
        results.setdefault("speedup_per_round", {})[mode] = per_round
        print(f"  {mode:9s} {reference} {base:.3f} s   {candidate} {fast:.3f} s   "
              f"speed-up {base / fast:.3f}x (rounds {min(per_round):.3f}-{max(per_round):.3f}x)")
    if args.output:
        from face_aging.files import atomic_write_json

        atomic_write_json(args.output, results)
    return 0


if __name__ == "__main__":
    sys.exit(main())
