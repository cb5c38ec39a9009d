"""Frechet Inception Distance from activations.

Matches the formula of Heusel et al., "GANs Trained by a Two Time-Scale Update Rule
Converge to a Local Nash Equilibrium" (NeurIPS 2017), as implemented by pytorch-fid
(``calculate_frechet_distance``) and TF-GAN (``frechet_classifier_distance``)::

    FID = |mu_1 - mu_2|^2 + Tr(S_1 + S_2 - 2 (S_1 S_2)^(1/2))

with ``mu`` the mean and ``S`` the unbiased (N - 1) covariance of each activation set.
Like pytorch-fid, a singular product gets ``eps * I`` added to both covariances, and a
numerically complex square root keeps its real part when the imaginary part is tiny.

The number only compares with published FIDs when the activations are InceptionV3
``pool3`` (2048-d, ImageNet weights, 299x299 inputs) and the sample counts are large
(FID is biased upwards at small N: 30 images, as the seed used, says little).
"""
from __future__ import annotations

from typing import Tuple

import warnings

import numpy as np
import scipy.linalg


def activation_statistics(activations: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
    """Mean and unbiased covariance of ``[N, D]`` activations (float64; N >= 2)."""
    acts = np.asarray(activations, dtype=np.float64)
    if acts.ndim != 2:
        raise ValueError(f"activations must be [N, D], got shape {acts.shape}")
    if acts.shape[0] < 2:
        raise ValueError(f"FID needs at least 2 samples, got {acts.shape[0]}")
    return acts.mean(axis=0), np.cov(acts, rowvar=False)


def frechet_distance(mu1: np.ndarray, sigma1: np.ndarray, mu2: np.ndarray, sigma2: np.ndarray,
                     eps: float = 1e-6) -> float:
    """Frechet distance between N(mu1, sigma1) and N(mu2, sigma2) (pytorch-fid's formula).

    Args:
      mu1, mu2: ``[D]`` means.
      sigma1, sigma2: ``[D, D]`` covariances.
      eps: offset added to both diagonals when the product's square root is not finite.
    Returns:
      The squared Frechet (2-Wasserstein) distance, a float >= 0 up to rounding.
    """
    mu1, mu2 = np.atleast_1d(np.asarray(mu1, np.float64)), np.atleast_1d(np.asarray(mu2, np.float64))
    sigma1 = np.atleast_2d(np.asarray(sigma1, np.float64))
    sigma2 = np.atleast_2d(np.asarray(sigma2, np.float64))
    if mu1.shape != mu2.shape or sigma1.shape != sigma2.shape or sigma1.shape != mu1.shape * 2:
        raise ValueError(f"shape mismatch: mu {mu1.shape} vs {mu2.shape}, "
                         f"sigma {sigma1.shape} vs {sigma2.shape}")
    diff = mu1 - mu2
    with warnings.catch_warnings():
        # Fewer samples than dimensions make the covariances singular; scipy warns, the
        # square root is still finite (pytorch-fid behaves the same, minus the noise).
        warnings.simplefilter("ignore", scipy.linalg.LinAlgWarning)
        covmean = scipy.linalg.sqrtm(sigma1.dot(sigma2))
        if not np.isfinite(covmean).all():
            offset = np.eye(sigma1.shape[0]) * eps
            covmean = scipy.linalg.sqrtm((sigma1 + offset).dot(sigma2 + offset))
    if np.iscomplexobj(covmean):
        if not np.allclose(np.diagonal(covmean).imag, 0, atol=1e-3):
            raise ValueError(f"sqrtm has a large imaginary component "
                             f"{np.max(np.abs(covmean.imag)):.3g}")
        covmean = covmean.real
    return float(diff.dot(diff) + np.trace(sigma1) + np.trace(sigma2) - 2.0 * np.trace(covmean))


def fid_from_activations(activations1: np.ndarray, activations2: np.ndarray) -> float:
    """FID between two ``[N, D]`` activation sets (N may differ; both >= 2)."""
    mu1, s1 = activation_statistics(activations1)
    mu2, s2 = activation_statistics(activations2)
    return frechet_distance(mu1, s1, mu2, s2)
