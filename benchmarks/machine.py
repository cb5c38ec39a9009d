"""What the benchmark ran on: the CPU's model name and instruction sets
(``face_aging.hardware``, which the library's precision modes read too) and the load."""
from __future__ import annotations

import os
from typing import List

from face_aging.hardware import INSTRUCTION_SETS, cpu_info, parse_cpuinfo

__all__ = ["INSTRUCTION_SETS", "cpu_info", "load_average", "parse_cpuinfo"]


def load_average() -> List[float]:
    """``os.getloadavg()`` (1, 5 and 15 minutes), the figure ``uptime`` prints."""
    return [round(v, 2) for v in os.getloadavg()]
