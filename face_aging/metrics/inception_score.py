"""Inception Score (Salimans et al., "Improved Techniques for Training GANs", 2016).

``IS = exp(E_x KL(p(y|x) || p(y)))`` over class probabilities, computed per split and
reported as mean and std over splits, as the original ``inception_score.py`` and the
seed repository did (InceptionV3 with its ImageNet top, images resized to 299).

For faces it says little: every face is "one ImageNet class or none", so the score
sits near 1 whatever the generator does (the seed's 1.035 ± 0.01). It is reported only
to compare with that number, and labelled so.
"""
from __future__ import annotations

from typing import Tuple

import numpy as np


def inception_score(probabilities: np.ndarray, splits: int = 10, eps: float = 1e-12
                    ) -> Tuple[float, float]:
    """Inception Score of ``[N, C]`` class probabilities (rows sum to 1).

    Args:
      probabilities: softmax outputs, one row per image.
      splits: number of consecutive equal parts (as the original; at most N).
      eps: floor inside the logarithms.
    Returns:
      ``(mean, std)`` of the per-split scores; 1.0 for identical rows, C for confident
      predictions spread evenly over C classes.
    """
    p = np.asarray(probabilities, np.float64)
    if p.ndim != 2 or p.shape[0] < 1:
        raise ValueError(f"probabilities must be [N, C] with N >= 1, got {p.shape}")
    splits = max(1, min(int(splits), p.shape[0]))
    scores = []
    for part in np.array_split(p, splits):
        py = part.mean(axis=0, keepdims=True)
        kl = (part * (np.log(part + eps) - np.log(py + eps))).sum(axis=1)
        scores.append(np.exp(kl.mean()))
    return float(np.mean(scores)), float(np.std(scores))
