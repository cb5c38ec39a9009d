"""Kernel Inception Distance: unbiased MMD^2 with a cubic polynomial kernel.

Bińkowski, Sutherland, Arbel, Gretton, "Demystifying MMD GANs" (ICLR 2018). The kernel
is ``k(x, y) = (x.y / D + 1)^3`` for ``D``-dimensional activations; the estimator is the
unbiased U-statistic::

    MMD^2_u = sum_{i != j} k(x_i, x_j) / (m (m - 1)) + sum_{i != j} k(y_i, y_j) / (n (n - 1))
              - 2 sum_{i, j} k(x_i, y_j) / (m n)

averaged over random subsets (as stylegan2-ada's ``metrics/kernel_inception_distance.py``
and TF-GAN's ``kernel_classifier_distance``). Unlike FID it has no bias at small sample
counts, so it is the number to trust for a few hundred faces; it can come out slightly
negative when the two sets are alike.
"""
from __future__ import annotations

from typing import Dict, Optional

import numpy as np


def polynomial_kernel(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """``(x y^T / D + 1)^3`` for ``[m, D]`` and ``[n, D]`` arrays -> ``[m, n]`` (float64)."""
    x = np.asarray(x, np.float64)
    y = np.asarray(y, np.float64)
    return (x @ y.T / x.shape[1] + 1.0) ** 3


def mmd2_unbiased(x: np.ndarray, y: np.ndarray) -> float:
    """Unbiased MMD^2 between samples ``x [m, D]`` and ``y [n, D]`` (m, n >= 2)."""
    m, n = x.shape[0], y.shape[0]
    if m < 2 or n < 2:
        raise ValueError(f"unbiased MMD needs at least 2 samples per set, got {m} and {n}")
    kxx = polynomial_kernel(x, x)
    kyy = polynomial_kernel(y, y)
    kxy = polynomial_kernel(x, y)
    return float((kxx.sum() - np.trace(kxx)) / (m * (m - 1))
                 + (kyy.sum() - np.trace(kyy)) / (n * (n - 1))
                 - 2.0 * kxy.mean())


def kid_from_activations(activations1: np.ndarray, activations2: np.ndarray,
                         num_subsets: int = 100, max_subset_size: int = 1000,
                         seed: Optional[int] = 0) -> Dict[str, float]:
    """KID between two activation sets, averaged over random subsets.

    Each subset draws ``min(N_i, max_subset_size)`` rows of each set without
    replacement (stylegan2-ada's defaults: 100 subsets of at most 1000). With both sets
    smaller than ``max_subset_size`` every subset is the whole set and the result is
    the plain unbiased MMD^2.

    Returns:
      ``{"kid": mean over subsets, "kid_std": std over subsets, "subset_size_1",
      "subset_size_2", "num_subsets"}``.
    """
    x = np.asarray(activations1, np.float64)
    y = np.asarray(activations2, np.float64)
    if x.ndim != 2 or y.ndim != 2 or x.shape[1] != y.shape[1]:
        raise ValueError(f"activations must be [N, D] with equal D, got {x.shape} and {y.shape}")
    m = min(x.shape[0], max_subset_size)
    n = min(y.shape[0], max_subset_size)
    rng = np.random.default_rng(seed)
    whole = m == x.shape[0] and n == y.shape[0]
    values = []
    for _ in range(1 if whole else num_subsets):
        xs = x if m == x.shape[0] else x[rng.choice(x.shape[0], m, replace=False)]
        ys = y if n == y.shape[0] else y[rng.choice(y.shape[0], n, replace=False)]
        values.append(mmd2_unbiased(xs, ys))
    values = np.asarray(values)
    return {"kid": float(values.mean()), "kid_std": float(values.std()),
            "subset_size_1": int(m), "subset_size_2": int(n), "num_subsets": int(len(values))}
