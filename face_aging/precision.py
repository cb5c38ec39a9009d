"""Mixed precision modes (no TensorFlow import at module level: flag modules use this).

``none``      float32 everywhere (the release).
``float16``   Keras ``mixed_float16``: float16 compute, float32 variables, dynamic loss scaling.
              A GPU feature; a CPU gains nothing from it.
``bfloat16``  Keras ``mixed_bfloat16``: bfloat16 compute, float32 variables; batch-norm statistics,
              losses and the models' outputs stay float32. bfloat16 has float32's exponent range,
              so no loss scaling is needed. The standard on TPUs and recent GPUs, and on CPUs with
              AVX-512 BF16 or AMX, where oneDNN runs bfloat16 convolutions about twice as fast as
              float32 (docs/BENCHMARKS.md). On an x86 CPU without them a training step is about
              ten times slower than float32: :func:`keras_policy` logs a warning there.

Checkpoints do not depend on the mode: variables are float32 in every mode, so a run can be
resumed or continued in another mode.
"""
from __future__ import annotations

import contextlib
import logging
from typing import Optional

from absl import flags

# A flag-defining helper: the flag belongs to (and is listed in the --help of) the module that
# calls define_flag, not this one.
flags.disclaim_key_flags()

MODES = ("none", "float16", "bfloat16")
KERAS_POLICIES = {"none": "float32", "float16": "mixed_float16", "bfloat16": "mixed_bfloat16"}
COMPUTE_DTYPES = {"none": "float32", "float16": "float16", "bfloat16": "bfloat16"}
_TRUE = ("true", "t", "1", "yes", "y")
_FALSE = ("false", "f", "0", "no", "n")


def parse_mode(value) -> str:
    """A mode name from a mode, a bool (the flag's old boolean form: True = ``float16``) or None.

    Raises:
      ValueError: one line naming the value and the accepted ones.
    """
    if value is None or value is False:
        return "none"
    if value is True:
        return "float16"
    text = str(value).strip().lower()
    aliases = {"fp16": "float16", "mixed_float16": "float16", "bf16": "bfloat16",
               "mixed_bfloat16": "bfloat16", "float32": "none", "fp32": "none", "off": "none"}
    text = aliases.get(text, text)
    if text in MODES:
        return text
    if text in _TRUE:
        return "float16"
    if text in _FALSE:
        return "none"
    raise ValueError(f"mixed precision {value!r}: choose from {', '.join(MODES)}")


def compute_dtype(mode) -> str:
    """The dtype the layers compute in under ``mode``: ``float32``, ``float16`` or ``bfloat16``."""
    return COMPUTE_DTYPES[parse_mode(mode)]


def uses_loss_scaling(mode: str) -> bool:
    """Only float16 needs loss scaling (its exponent range is too small for small gradients)."""
    return parse_mode(mode) == "float16"


def slow_bfloat16_note(mode, cpu: Optional[dict] = None,
                       gpu_count: Optional[int] = None) -> Optional[str]:
    """The line to show when ``mode`` is bfloat16 on a machine that computes it slower than
    float32, else None: no GPU, and an x86 CPU (``/proc/cpuinfo`` ``flags``) that lists neither
    AVX-512 BF16 nor AMX BF16. oneDNN then converts to float32 around every operation
    (docs/BENCHMARKS.md measures how much slower). Unknown CPUs (another OS, ARM) get no line.

    Args:
      cpu: ``face_aging.hardware.cpu_info()`` (read from this machine when None).
      gpu_count: visible GPUs (asked of TensorFlow when None).
    """
    if parse_mode(mode) != "bfloat16":
        return None
    from face_aging import hardware

    cpu = hardware.cpu_info() if cpu is None else cpu
    if cpu.get("flags_read") != "flags" or cpu["has_bfloat16_dot"]:
        return None
    if gpu_count is None:
        import tensorflow as tf

        gpu_count = len(tf.config.list_physical_devices("GPU"))
    if gpu_count:
        return None
    return (f"--mixed_precision=bfloat16: this CPU ({cpu['model']}) has neither AVX-512 BF16 "
            "nor AMX, so bfloat16 is converted to float32 around every operation: a training "
            "step measured 10x slower than with --mixed_precision=none (docs/BENCHMARKS.md, "
            "\"bfloat16 without AVX-512 BF16\")")


bfloat16_checked = False  # the machine is judged once per process


@contextlib.contextmanager
def keras_policy(mode: str):
    """Sets Keras' global dtype policy for ``mode`` while models are built; restores it after.
    Logs :func:`slow_bfloat16_note` (once per process) where bfloat16 would be slow."""
    import keras

    global bfloat16_checked
    if not bfloat16_checked and parse_mode(mode) == "bfloat16":
        bfloat16_checked = True
        note = slow_bfloat16_note(mode)
        if note:
            logging.getLogger("face_aging").warning(note)
    previous = keras.mixed_precision.global_policy().name
    keras.mixed_precision.set_global_policy(KERAS_POLICIES[parse_mode(mode)])
    try:
        yield
    finally:
        keras.mixed_precision.set_global_policy(previous)


class _ModeParser(flags.ArgumentParser):
    syntactic_help = "one of " + ", ".join(MODES)

    def parse(self, argument):
        try:
            return parse_mode(argument)
        except ValueError as e:
            raise ValueError(str(e)) from None

    def flag_type(self):
        return "mixed precision mode"


def define_flag(flag_values=flags.FLAGS, default: str = "none", extra_help: str = "") -> None:
    """Defines ``--mixed_precision=none|float16|bfloat16`` on ``flag_values``.

    The flag keeps its old boolean spellings: ``--mixed_precision`` means ``float16`` and
    ``--nomixed_precision`` means ``none`` (absl treats it as a boolean flag for those forms).
    """
    help_text = ("none: float32 (the release); bfloat16: mixed_bfloat16 (bf16 compute, float32 "
                 "variables and batch-norm statistics, no loss scaling; about 2x faster on CPUs "
                 "with AVX-512 BF16 or AMX, about 10x slower on CPUs without); float16: "
                 "mixed_float16 with dynamic loss scaling (GPUs). The bare --mixed_precision means float16." + extra_help)
    flag = flags.Flag(_ModeParser(), flags.ArgumentSerializer(), "mixed_precision", default,
                      help_text, boolean=True)
    flags.DEFINE_flag(flag, flag_values)
