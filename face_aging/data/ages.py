"""Age -> age-group rule (spec §4), in one place.

With the release's bins ``(20, 30, 40, 50)``: group 0 = age <= 20, 1 = 21..30,
2 = 31..40, 3 = 41..50, 4 = 51 and over. In general, for increasing bin edges
``b_0 < b_1 < ... < b_{n-1}``, the group of ``age`` is the number of edges strictly
below it (``bisect_left``): an age equal to an edge belongs to the lower group, so
``n`` edges give ``n + 1`` groups. Fractional ages follow the same rule (20.5 -> 1).

The paper names CACD's groups 11-20, 21-30, 31-40, 41-50, 50+; CACD has no age below
14, and an age of exactly 50 falls in group 3 under the release's bins.
"""
from __future__ import annotations

import bisect
from typing import List, Sequence

#: The release's bin edges (IMDB-WIKI variant and CACD alike).
RELEASE_AGE_BINS = (20, 30, 40, 50)


def age_group(age: float, bins: Sequence[float] = RELEASE_AGE_BINS) -> int:
    """Index of the group of ``age`` (years): number of bin edges strictly below it."""
    return bisect.bisect_left(list(bins), age)


def check_bins(bins: Sequence[float]) -> List[float]:
    """Returns the bins as numbers; raises ValueError unless non-empty and strictly increasing."""
    values = [float(b) for b in bins]
    if not values:
        raise ValueError("age bins: need at least one edge")
    if any(b >= c for b, c in zip(values, values[1:])):
        raise ValueError(f"age bins must increase strictly, got {list(bins)}")
    return values


def group_names(bins: Sequence[float]) -> List[str]:
    """Readable ranges of whole-year ages, e.g. ``['0-20', '21-30', ..., '51+']``."""
    edges = [int(b) if float(b).is_integer() else b for b in bins]
    names = [f"0-{edges[0]}"]
    for low, high in zip(edges, edges[1:]):
        names.append(f"{low + 1 if isinstance(low, int) else low}-{high}")
    last = edges[-1]
    names.append(f"{last + 1 if isinstance(last, int) else last}+")
    return names
