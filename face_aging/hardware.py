"""What this machine's CPU can do for the project's arithmetic: its model name and the
instruction sets that decide the speed of each dtype (``/proc/cpuinfo`` on Linux;
``platform.processor()`` elsewhere). No TensorFlow import: the benchmarks and
``face_aging.precision`` read it."""
from __future__ import annotations

import os
import platform
from typing import Dict, List, Optional

# The flags that matter for this project's arithmetic, in /proc/cpuinfo's spelling:
# float32 FMA width (avx2/fma, avx512f), bfloat16 dot products (avx512_bf16; amx_bf16 with
# amx_tile on Sapphire Rapids and later), int8 (avx512_vnni, amx_int8), native float16
# arithmetic (avx512_fp16, amx_fp16; without them a CPU converts float16 to float32).
INSTRUCTION_SETS = ("fma", "avx2", "avx512f", "avx512bw", "avx512vl", "avx512_vnni",
                    "avx512_bf16", "avx512_fp16", "amx_tile", "amx_bf16", "amx_int8",
                    "amx_fp16")


def parse_cpuinfo(text: str) -> Dict[str, object]:
    """The first processor's ``model name`` and which of :data:`INSTRUCTION_SETS` its
    ``flags`` line lists.

    Returns ``{"model": str or None, "instruction_sets": {flag: bool, ...},
    "flags_read": "flags" (x86), "Features" (ARM) or None, "has_bfloat16_dot": bool}``
    (``has_bfloat16_dot``: AVX-512 BF16 or AMX BF16, the x86 instructions oneDNN's bfloat16
    kernels need to beat float32).
    """
    model: Optional[str] = None
    flags: List[str] = []
    flag_key: Optional[str] = None
    for line in text.splitlines():
        key, sep, value = line.partition(":")
        if not sep:
            continue
        key = key.strip()
        if key == "model name" and model is None:
            model = value.strip()
        elif key in ("flags", "Features") and not flags:  # Features: ARM's spelling
            flags, flag_key = value.split(), key
    present = set(flags)
    sets = {name: name in present for name in INSTRUCTION_SETS}
    return {"model": model, "instruction_sets": sets, "flags_read": flag_key,
            "has_bfloat16_dot": sets["avx512_bf16"] or sets["amx_bf16"]}


def cpu_info(path: str = "/proc/cpuinfo") -> Dict[str, object]:
    """:func:`parse_cpuinfo` of this machine, plus ``cpu_count``; where ``path`` cannot be
    read the model is ``platform.processor()`` and no instruction set is claimed."""
    try:
        with open(path) as f:
            info = parse_cpuinfo(f.read())
        info["source"] = path
    except OSError:
        info = parse_cpuinfo("")
        info["source"] = None
    if not info["model"]:
        info["model"] = platform.processor() or platform.machine()
    info["cpu_count"] = os.cpu_count()
    return info
