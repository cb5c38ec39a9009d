"""Checkerboard score: how much of an image's detail sits at the upsampling layers' periods.

A stride-2 transposed convolution gives output pixels 1, 2 or 4 kernel taps depending on their
position (Odena, Dumoulin, Olah, "Deconvolution and Checkerboard Artifacts", Distill 2016), so
its artefact repeats every 2 pixels; a second stride-2 layer before it adds one that repeats
every 4. In the 2-D discrete Fourier transform of an ``N x N`` image a pattern of period ``p``
(``p`` dividing ``N``) has all its power at the frequencies ``(u, v)`` with ``u, v`` multiples
of ``N / p``. The score of period ``p`` is the power at the frequencies of period ``p`` that no
shorter period has (period 2: ``(N/2, 0), (0, N/2), (N/2, N/2)``; period 4: the 12 other points
of the ``N/4`` grid), as a share of all power but the mean's (DC), averaged over the images::

    score_p = mean_i [ sum_{(u,v) in F_p} |X_i(u,v)|^2 / sum_{(u,v) != (0,0)} |X_i(u,v)|^2 ]

on the grey image ``X_i`` (the mean of the RGB channels, 0..255). The share is 1 for a pure
+1/-1 checkerboard on any background and about ``|F_p| / N^2`` for white noise (3/16384 and
12/16384 at 128 px); natural faces have little power that high, so a generator's outputs
scoring well above its inputs are covered in a grid. Reported per 10,000 (``x 1e4``), in all
and split by direction (:data:`DIRECTIONS`). A transposed convolution's grid is the product
of a pattern down the image and one across it, so it always has a diagonal part; power on
one axis with none on the diagonal is lines (streaks), not a grid.
"""
from __future__ import annotations

from typing import Dict, Sequence

import numpy as np

#: The periods (pixels) the release's generator can imprint: deconv2 (2), deconv1 then deconv2 (4).
PERIODS = (2, 4)


def _period_mask(size: int, period: int) -> np.ndarray:
    """Boolean ``[size, size]``: the frequencies of period ``period`` no shorter period has."""
    if size % period:
        raise ValueError(f"image side {size} is not a multiple of the period {period}")

    def grid(p):
        mask = np.zeros((size, size), bool)
        mask[::size // p, ::size // p] = True
        return mask

    mask = grid(period)
    for shorter in range(1, period):
        if period % shorter == 0:
            mask &= ~grid(shorter)
    return mask


#: How a period's frequencies ``(u, v)`` split by direction (``u`` down the image, ``v`` across):
#: ``v = 0``: rows alternate, horizontal lines; ``u = 0``: vertical lines; both non-zero: a
#: pattern repeating along both axes at once, the transposed convolution's checkerboard.
DIRECTIONS = ("horizontal_lines", "vertical_lines", "diagonal")


def _direction_masks(size: int) -> np.ndarray:
    """Boolean ``[3, size, size]`` in the order of :data:`DIRECTIONS`."""
    u = np.arange(size)[:, None] != 0
    v = np.arange(size)[None, :] != 0
    return np.stack([u & ~v, ~u & v, u & v])


def periodic_power_shares(images: np.ndarray, periods: Sequence[int] = PERIODS) -> np.ndarray:
    """Per image, period and direction, the share of non-DC power at those frequencies.

    Args:
      images: ``[N, H, H, 3]`` or ``[N, H, H]``, any real dtype (uint8 0..255 or floats).
      periods: periods in pixels, each dividing ``H``.
    Returns:
      float64 ``[N, len(periods), 3]`` in 0..1 (0 for a constant image), the last axis in the
      order of :data:`DIRECTIONS`; summed over it, the period's share.
    """
    images = np.asarray(images, np.float64)
    if images.ndim == 4:
        images = images.mean(axis=-1)
    if images.ndim != 3 or images.shape[1] != images.shape[2]:
        raise ValueError(f"expected square images [N, H, H(, 3)], got {images.shape}")
    size = images.shape[1]
    power = np.abs(np.fft.fft2(images)) ** 2
    power[:, 0, 0] = 0.0
    total = power.sum(axis=(1, 2))
    directions = _direction_masks(size)
    shares = np.stack([np.stack([power[:, _period_mask(size, p) & d].sum(axis=1)
                                 for d in directions], axis=1) for p in periods], axis=1)
    return np.divide(shares, total[:, None, None], out=np.zeros_like(shares),
                     where=total[:, None, None] > 0)


def score_names(periods: Sequence[int] = PERIODS) -> list:
    """The keys of :func:`checkerboard_scores`, in its order."""
    return ([f"period_{p}" for p in periods] +
            [f"period_{p}_{d}" for p in periods for d in DIRECTIONS])


def checkerboard_scores(images: np.ndarray, periods: Sequence[int] = PERIODS) -> Dict[str, float]:
    """The mean share per 10,000 (see the module) of each period, ``period_2``, ``period_4``,
    and of each of its directions, ``period_2_horizontal_lines`` ... ``period_4_diagonal``."""
    shares = periodic_power_shares(images, periods)
    mean = shares.mean(axis=0) if len(shares) else np.full((len(periods), 3), np.nan)
    values = list(mean.sum(axis=1)) + list(mean.reshape(-1))
    return {name: float(1e4 * v) for name, v in zip(score_names(periods), values)}
