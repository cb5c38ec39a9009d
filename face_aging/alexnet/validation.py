"""Validating and reporting an AlexNet being pretrained: face verification on the validation
people (ROC AUC), on ``verification_pairs.txt`` files, and the age classifier's predictions.
"""
from __future__ import annotations

from typing import Callable, Dict, List, Optional, Tuple

import numpy as np
import tensorflow as tf

from face_aging.alexnet.data import SIZE
from face_aging.alexnet.networks import forward


def validation_pairs(entries, seed: int, max_same: int = 1000):
    """Verification pairs among the validation people: up to ``max_same`` same-person pairs
    (every pair of a person's images, seeded sample beyond that) and as many different-person
    pairs (seeded). Returns ``(index_0, index_1, same, images)``: indices into ``images``, the
    validation entries that have an identity."""
    images = [e for e in entries if e[2] >= 0]
    by_person: Dict[int, List[int]] = {}
    for k, (_, _, identity) in enumerate(images):
        by_person.setdefault(identity, []).append(k)
    same = [(a, b) for members in by_person.values()
            for i, a in enumerate(members) for b in members[i + 1:]]
    rng = np.random.default_rng(seed)
    if len(same) > max_same:
        same = [same[k] for k in sorted(rng.choice(len(same), max_same, replace=False))]
    different = []
    if len(by_person) >= 2:
        for _ in range(20 * max(len(same), 1)):
            if len(different) >= len(same):
                break
            a, b = rng.integers(0, len(images), 2)
            if images[a][2] != images[b][2]:
                different.append((int(a), int(b)))
    pairs = same + different
    index_0 = np.array([a for a, _ in pairs], np.int64)
    index_1 = np.array([b for _, b in pairs], np.int64)
    labels = np.array([True] * len(same) + [False] * len(different))
    return index_0, index_1, labels, images


def feature_function(alexnet, layer: str) -> Callable:
    """A traced ``images -> [B, features]`` of ``layer``, flattened."""
    @tf.function(reduce_retracing=True)
    def features(x):
        out = alexnet(x, training=False, outputs=(layer,))[layer]
        return tf.reshape(out, [tf.shape(out)[0], -1])

    return features


def validation_auc(alexnet, dataset, pairs, layer: str,
                   features: Optional[Callable] = None) -> float:
    """ROC AUC of face verification on the validation pairs, with ``layer`` features.
    ``features``: :func:`feature_function` of the same network and layer, made once by a
    caller that validates repeatedly (a new one per call would be traced again each time)."""
    from face_aging.metrics import verification

    features = features or feature_function(alexnet, layer)
    feats = np.concatenate([features(x).numpy() for x, _ in dataset])
    distances = verification.pair_distances(feats[pairs[0]], feats[pairs[1]])
    return float(verification.roc_auc(distances, pairs[2]))


def verification_reports(alexnet, pair_files, layer: str, print_fn: Callable = print) -> Dict:
    """Face verification (cross-validated over the folds present) of ``layer`` features on
    each ``verification_pairs.txt``: ``{pairs_file: result}`` without the per-pair rows."""
    from face_aging.metrics import verification

    results = {}
    for pair_file in pair_files:
        result = verification.verify_alexnet(alexnet, pair_file, layer, progress=False)
        result.pop("pair_distances", None)
        results[pair_file] = result
        print_fn(f"verification on {pair_file}: " + verification.format_result(result))
    return results


def predict(alexnet, dataset, size: int = SIZE) -> Tuple[np.ndarray, np.ndarray]:
    """(labels, predicted groups) over an eval dataset (evaluated at ``size``; 227 = real)."""

    @tf.function
    def logits(x):
        if size != SIZE:
            x = tf.image.resize(x, (size, size), antialias=True)
        return forward(alexnet, x, training=False)["age_logits"]

    labels, predictions = [], []
    for x, g in dataset:
        predictions.append(tf.argmax(logits(x), axis=-1).numpy())
        labels.append(g.numpy())
    if not labels:
        return np.zeros([0], np.int64), np.zeros([0], np.int64)
    return np.concatenate(labels).astype(np.int64), np.concatenate(predictions).astype(np.int64)
