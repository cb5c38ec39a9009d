"""Per-target-group age and identity tables from judge outputs (pure numpy).

Nothing here runs a network: the judges (``judges.py``) turn faces into estimated ages
(years) and face embeddings (dlib's 128-d, Euclidean space), and these functions turn
those arrays into the report's tables, so tests can feed fixed judge outputs.

Shapes: ``N`` input faces, ``G`` target groups; generated outputs are indexed
``[i, g]`` = input face ``i`` aged to group ``g``.
"""
from __future__ import annotations

from typing import Dict, List, Optional, Sequence

import numpy as np

#: Upper age bounds (years, inclusive) of groups 0..3; group 4 is everything above.
DEFAULT_AGE_BINS = (20, 30, 40, 50)
#: dlib's usual same-person threshold on the Euclidean distance of its embeddings
#: (``face_recognition.compare_faces`` tolerance: distance <= 0.6 is a match).
DLIB_THRESHOLD = 0.6


def age_to_group(ages: np.ndarray, bins: Sequence[float] = DEFAULT_AGE_BINS) -> np.ndarray:
    """Age group of each age (years): group k holds ``bins[k-1] < age <= bins[k]``.

    With the default bins: <=20 -> 0, 21-30 -> 1, 31-40 -> 2, 41-50 -> 3, 51+ -> 4
    (a continuous estimate of 20.3 is in group 1).
    """
    bins = np.asarray(bins, np.float64)
    if bins.ndim != 1 or np.any(np.diff(bins) <= 0):
        raise ValueError(f"age bins must be strictly increasing, got {bins.tolist()}")
    return np.digitize(np.asarray(ages, np.float64), bins, right=True)


def group_names(bins: Sequence[float] = DEFAULT_AGE_BINS) -> List[str]:
    """Human names of the groups, e.g. ``['<=20', '21-30', ..., '51+']`` for integer bins."""
    bins = [int(b) if float(b).is_integer() else b for b in bins]
    names = [f"<={bins[0]}"]
    for lo, hi in zip(bins[:-1], bins[1:]):
        names.append(f"{lo + 1}-{hi}" if isinstance(lo, int) else f"({lo},{hi}]")
    names.append(f"{bins[-1] + 1}+" if isinstance(bins[-1], int) else f">{bins[-1]}")
    return names


def stats(values: np.ndarray) -> Dict[str, Optional[float]]:
    """``{"n", "mean", "std"}`` of ``values`` (None for an empty set)."""
    values = np.asarray(values, np.float64)
    if values.size == 0:
        return {"n": 0, "mean": None, "std": None}
    return {"n": int(values.size), "mean": float(values.mean()), "std": float(values.std())}


def age_table(generated_ages: np.ndarray, input_ages: np.ndarray,
              real_ages_by_group: Sequence[np.ndarray],
              bins: Sequence[float] = DEFAULT_AGE_BINS) -> List[Dict]:
    """One row per target group: what the age judge says of the outputs and of real faces.

    Args:
      generated_ages: ``[N, G]`` judge's age (years) of input ``i`` aged to group ``g``.
      input_ages: ``[N]`` judge's age of the input faces themselves.
      real_ages_by_group: ``G`` arrays, the judge's ages of real test faces labelled
        with each group (the judge's ceiling: how often it puts a real face of the
        group in the group).
      bins: age-group bounds, ``len(bins) == G - 1``.
    Returns:
      rows with ``group``, ``name``, ``n`` (outputs), ``mean_age``, ``std_age``,
      ``in_group`` (share of outputs judged inside the target group),
      ``mean_age_change`` (output minus its input, years), and ``real_n``,
      ``real_mean_age``, ``real_in_group`` (None where a group has no real faces).
    """
    gen = np.asarray(generated_ages, np.float64)
    inp = np.asarray(input_ages, np.float64)
    groups = len(bins) + 1
    if gen.ndim != 2 or gen.shape[1] != groups:
        raise ValueError(f"generated_ages must be [N, {groups}], got {gen.shape}")
    if inp.shape != (gen.shape[0],):
        raise ValueError(f"input_ages must be [{gen.shape[0]}], got {inp.shape}")
    if len(real_ages_by_group) != groups:
        raise ValueError(f"need {groups} real-age arrays, got {len(real_ages_by_group)}")
    names = group_names(bins)
    rows = []
    for g in range(groups):
        out = gen[:, g]
        out_stats = stats(out)
        real = np.asarray(real_ages_by_group[g], np.float64)
        real_stats = stats(real)
        rows.append({
            "group": g, "name": names[g],
            "n": out_stats["n"], "mean_age": out_stats["mean"], "std_age": out_stats["std"],
            "in_group": float(np.mean(age_to_group(out, bins) == g)) if out.size else None,
            "mean_age_change": float(np.mean(out - inp)) if out.size else None,
            "real_n": real_stats["n"], "real_mean_age": real_stats["mean"],
            "real_std_age": real_stats["std"],
            "real_in_group": float(np.mean(age_to_group(real, bins) == g)) if real.size else None,
        })
    return rows


def embedding_distances(a: np.ndarray, b: np.ndarray) -> Dict[str, np.ndarray]:
    """Row-wise cosine similarity and Euclidean distance of ``[..., D]`` embeddings."""
    a = np.asarray(a, np.float64)
    b = np.asarray(b, np.float64)
    dot = (a * b).sum(-1)
    norms = np.linalg.norm(a, axis=-1) * np.linalg.norm(b, axis=-1)
    return {"cosine": dot / np.maximum(norms, 1e-12), "euclidean": np.linalg.norm(a - b, axis=-1)}


def impostor_pairs(n: int, max_pairs: int = 5000, seed: int = 0) -> np.ndarray:
    """Index pairs ``[P, 2]`` (i < j) of different faces: all pairs, or a random subset."""
    if n < 2:
        return np.zeros((0, 2), np.int64)
    i, j = np.triu_indices(n, k=1)
    pairs = np.stack([i, j], axis=1)
    if len(pairs) > max_pairs:
        pairs = pairs[np.sort(np.random.default_rng(seed).choice(len(pairs), max_pairs, replace=False))]
    return pairs


def _pair_summary(cosine: np.ndarray, euclidean: np.ndarray, threshold: float) -> Dict:
    if euclidean.size == 0:
        return {"n": 0, "mean_cosine": None, "mean_distance": None, "std_distance": None,
                "verified": None}
    return {"n": int(euclidean.size), "mean_cosine": float(cosine.mean()),
            "mean_distance": float(euclidean.mean()), "std_distance": float(euclidean.std()),
            "verified": float(np.mean(euclidean <= threshold))}


def identity_table(input_embeddings: np.ndarray, output_embeddings: np.ndarray,
                   impostor_embeddings_a: np.ndarray, impostor_embeddings_b: np.ndarray,
                   threshold: float = DLIB_THRESHOLD,
                   bins: Sequence[float] = DEFAULT_AGE_BINS) -> Dict:
    """Input-vs-output identity per target group, next to the impostor baseline.

    Args:
      input_embeddings: ``[N, D]`` embeddings of the input faces.
      output_embeddings: ``[N, G, D]`` embeddings of input ``i`` aged to group ``g``.
      impostor_embeddings_a, impostor_embeddings_b: ``[P, D]`` embeddings of pairs of
        real faces of *different* people (row k of a with row k of b).
      threshold: same-person threshold on the Euclidean distance (dlib: 0.6).
    Returns:
      ``{"threshold", "groups": [rows with group, name, n, mean_cosine,
      mean_distance, std_distance, verified], "impostor": {same keys}}``.
      ``verified`` is the share of pairs with distance <= threshold: for the outputs,
      the verification rate (higher = identity kept); for impostors, the false-accept
      rate (what "verified" means by chance).
    """
    inp = np.asarray(input_embeddings, np.float64)
    out = np.asarray(output_embeddings, np.float64)
    if out.ndim != 3 or out.shape[0] != inp.shape[0] or out.shape[2] != inp.shape[1]:
        raise ValueError(f"output_embeddings must be [{inp.shape[0]}, G, {inp.shape[1]}], "
                         f"got {out.shape}")
    names = group_names(bins) if out.shape[1] == len(bins) + 1 else [str(g) for g in range(out.shape[1])]
    rows = []
    for g in range(out.shape[1]):
        d = embedding_distances(inp, out[:, g])
        rows.append({"group": g, "name": names[g],
                     **_pair_summary(d["cosine"], d["euclidean"], threshold)})
    imp = embedding_distances(impostor_embeddings_a, impostor_embeddings_b)
    return {"threshold": float(threshold), "groups": rows,
            "impostor": _pair_summary(imp["cosine"], imp["euclidean"], threshold)}
