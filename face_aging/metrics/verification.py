r"""Face verification as papers report it (the LFW protocol), for any per-image features.

Given pairs of faces labelled same / different person and split into folds:

1. **Distance** of a pair: the cosine distance of the L2-normalised, flattened features,
   ``1 - <a / |a|, b / |b|>`` in ``[0, 2]`` (0 = same direction). Normalising removes each
   feature vector's overall scale, which for a ReLU layer follows the image's contrast and
   brightness more than who is in it; on unit vectors the cosine distance ranks pairs
   exactly as the Euclidean one does (``|a - b|^2 = 2 * cosine distance``), and it is what
   FaceNet/SphereFace/ArcFace-style evaluations use. An all-zero feature vector (a dead
   layer) counts as orthogonal to everything: distance 1.
2. **Cross-validation over the folds present**: for each fold, the threshold that maximises
   accuracy on the *other* folds (pairs at distance <= threshold are called "same"), then the
   accuracy of that threshold on this fold. Reported: the mean over folds, the standard
   deviation over folds (``ddof=1``, LFW's sigma) and the standard error (``sigma /
   sqrt(folds)``), each fold's threshold and accuracy, and the ROC AUC over all pairs (the
   chance that a random same-person pair is closer than a random different-person pair; ties
   count half). Candidate thresholds are the midpoints between consecutive distinct distances
   plus one below all and one above all; of several thresholds with the best accuracy, the
   middle one (by rank) is taken.

Features here: :func:`verify_dlib` uses dlib's embeddings (the ``[eval]`` judge of
``evaluate.py``), the ceiling of an independent recogniser; :func:`extract_features` runs
``face_aging.backbones.alexnet.AlexNet`` on image files through the release's pixel pipeline
for real faces (decoded RGB 0..255, resized to 227x227 on cv2's grid, ``pixels.resize_cv2``,
minus ``pixels.MEAN_RGB``) and returns one layer of ``FEATURE_LAYERS`` flattened.
:func:`pair_distances_of_images` does the same pair by pair in batches, so memory stays at one
batch however many pairs there are (conv5 is 43,264 floats an image). Command line
(``face_aging.apps.verify``)::

    python -m face_aging.metrics.verification --alexnet=runs/alexnet/pretrained \
        --pairs=data/cacd_vs/verification_pairs.txt --layer=conv5 --output=verification.json
    python -m face_aging.metrics.verification --dlib --pairs=data/cacd_vs/verification_pairs.txt
"""
from __future__ import annotations

import os
from typing import Callable, Dict, List, Optional, Sequence

import numpy as np

from face_aging.backbones import ALEXNET_TRUNK, FEATURE_LAYERS
from face_aging.errors import InputError

#: The layers whose features can be judged: ``face_aging.backbones.FEATURE_LAYERS`` (TF-free,
#: so the command line checks a layer before TensorFlow loads).
FEATURE_LAYER_NAMES = FEATURE_LAYERS
#: What :func:`pair_distances` computes (recorded in every report).
DISTANCE = "cosine distance of L2-normalised flattened features, 1 - cos, in [0, 2]"


class VerificationInputError(InputError):
    """Bad pairs, labels, folds or images (one line naming the thing)."""


# ----------------------------------------------------------------------------- the math

def l2_normalise(features) -> np.ndarray:
    """Rows of ``[N, ...]`` features flattened to ``[N, D]`` float64 unit vectors (zero rows
    stay zero)."""
    x = np.asarray(features, np.float64).reshape(len(features), -1)
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    return np.divide(x, norms, out=np.zeros_like(x), where=norms > 0)


def pair_distances(features_0, features_1) -> np.ndarray:
    """Cosine distance ``1 - cos`` of row i of ``features_0`` and of ``features_1``, ``[N]``."""
    a, b = l2_normalise(features_0), l2_normalise(features_1)
    if a.shape != b.shape:
        raise VerificationInputError(f"features of the two sides differ in shape: "
                                     f"{a.shape} vs {b.shape}")
    return np.clip(1.0 - np.sum(a * b, axis=1), 0.0, 2.0)


def _check(distances, same):
    d = np.asarray(distances, np.float64).ravel()
    s = np.asarray(same).ravel()
    if d.shape != s.shape:
        raise VerificationInputError(f"{d.size} distances but {s.size} same/different labels")
    if not np.all(np.isfinite(d)):
        raise VerificationInputError(f"{int(np.sum(~np.isfinite(d)))} distances are not finite")
    if not np.all(np.isin(s, (0, 1, True, False))):
        raise VerificationInputError("same/different labels must be 1/0 or True/False")
    return d, s.astype(bool)


def best_threshold(distances, same) -> tuple:
    """``(threshold, accuracy)`` maximising the accuracy of "same iff distance <= threshold".

    Candidates: midpoints between consecutive distinct distances, plus ``min - 1`` (nobody is
    the same) and ``max + 1`` (everybody is); of equally good ones, the middle one by rank.
    """
    d, s = _check(distances, same)
    if d.size == 0:
        raise VerificationInputError("no pairs to choose a threshold on")
    values = np.unique(d)
    candidates = np.concatenate([[values[0] - 1.0], (values[:-1] + values[1:]) / 2.0,
                                 [values[-1] + 1.0]])
    order = np.argsort(d, kind="stable")
    sorted_d, sorted_same = d[order], s[order]
    # pairs at distance <= candidate k: those before position searchsorted(..., 'right')
    called_same = np.searchsorted(sorted_d, candidates, side="right")
    same_below = np.concatenate([[0], np.cumsum(sorted_same)])[called_same]
    different_below = called_same - same_below
    correct = same_below + (np.sum(~s) - different_below)
    best = np.flatnonzero(correct == correct.max())
    k = best[len(best) // 2]
    return float(candidates[k]), float(correct[k] / d.size)


def roc_auc(distances, same) -> float:
    """ROC AUC of "smaller distance = same person": P(d_same < d_different), ties count half."""
    from scipy.stats import rankdata

    d, s = _check(distances, same)
    n_same, n_diff = int(s.sum()), int((~s).sum())
    if not n_same or not n_diff:
        return float("nan")
    ranks = rankdata(-d)  # larger score (smaller distance) = higher rank; ties get mean ranks
    u = ranks[s].sum() - n_same * (n_same + 1) / 2.0
    return float(u / (n_same * n_diff))


def cross_validate(distances, same, folds) -> Dict:
    """k-fold verification over the folds present (see the module docstring).

    Args:
      distances: ``[N]`` pair distances (smaller = more alike).
      same: ``[N]`` 1 / True for same-person pairs.
      folds: ``[N]`` fold of each pair; at least two distinct folds.
    Returns:
      dict: ``mean_accuracy``, ``std_accuracy`` (ddof=1), ``standard_error``, ``auc``,
      ``pairs``, ``same_pairs``, ``folds`` (per fold: ``fold``, ``pairs``, ``threshold``,
      ``accuracy``, ``train_accuracy``); accuracies are fractions 0..1.
    """
    d, s = _check(distances, same)
    f = np.asarray(folds).ravel()
    if f.shape != d.shape:
        raise VerificationInputError(f"{d.size} distances but {f.size} fold labels")
    present = sorted(set(f.tolist()))
    if len(present) < 2:
        raise VerificationInputError(f"cross-validation needs pairs of at least 2 folds, got "
                                     f"{present or 'none'}")
    per_fold = []
    for fold in present:
        test = f == fold
        threshold, train_accuracy = best_threshold(d[~test], s[~test])
        accuracy = float(np.mean((d[test] <= threshold) == s[test]))
        per_fold.append({"fold": fold, "pairs": int(test.sum()), "threshold": threshold,
                         "accuracy": accuracy, "train_accuracy": train_accuracy})
    accuracies = np.asarray([x["accuracy"] for x in per_fold])
    std = float(np.std(accuracies, ddof=1))
    return {"mean_accuracy": float(accuracies.mean()), "std_accuracy": std,
            "standard_error": std / np.sqrt(len(accuracies)), "auc": roc_auc(d, s),
            "pairs": int(d.size), "same_pairs": int(s.sum()), "folds": per_fold,
            "distance": DISTANCE,
            "protocol": "threshold chosen on the other folds, accuracy on this fold"}


# ----------------------------------------------------------------------------- AlexNet

def layers_needed(layer: str) -> tuple:
    """AlexNet layers whose weights ``layer``'s features depend on."""
    if layer not in FEATURE_LAYERS:
        raise VerificationInputError(f"layer {layer!r} is not one of {', '.join(FEATURE_LAYERS)}")
    extra = {"fc6": ("fc6",), "fc7": ("fc6", "fc7")}.get(layer, ())
    return ALEXNET_TRUNK + extra


def load_alexnet(checkpoint: str, layer: str = "conv5", age_groups: int = 5):
    """A ``face_aging.backbones.alexnet.AlexNet`` with the weights ``layer`` needs from
    ``checkpoint`` (a ``pretrain`` output ``pretrained/alexnet-N`` or its folder, a TF2
    checkpoint holding ``alexnet``, or a release TF1 ``alexnet.model-N``). Other layers keep
    their random init.

    Raises:
      FileNotFoundError, checkpoints.CheckpointMismatchError: one line naming the file.
    """
    from face_aging.backbones.alexnet import AlexNet, build_alexnet, load_alexnet_layers

    alexnet = AlexNet(age_groups=age_groups)
    build_alexnet(alexnet)
    load_alexnet_layers(checkpoint, alexnet, layers_needed(layer))
    return alexnet


def load_227(path: str):
    """One image file -> float32 ``[227, 227, 3]`` RGB 0..255 minus MEAN_RGB (the release's
    pipeline for real faces: cv2-grid resize of the decoded uint8 RGB)."""
    import tensorflow as tf
    from face_aging import images, pixels

    if not os.path.isfile(path):
        raise VerificationInputError(f"{path}: image not found")
    try:
        image = images.decode_tf(tf.io.read_file(path))
    except (tf.errors.InvalidArgumentError, tf.errors.UnknownError) as e:
        raise VerificationInputError(f"{path}: not a decodable image "
                                     f"({str(e.message).splitlines()[0][:120]})") from None
    size = (pixels.ALEXNET_SIZE, pixels.ALEXNET_SIZE)
    if tuple(image.shape[:2]) != size:
        image = pixels.resize_cv2(image, size)
    return pixels.subtract_mean(image)


class FeatureExtractor:
    """``layer`` of ``alexnet`` for image files, flattened, ``batch_size`` images a call (one
    traced graph for every batch size)."""

    def __init__(self, alexnet, layer: str = "conv5", batch_size: int = 32):
        import tensorflow as tf
        from face_aging import pixels

        layers_needed(layer)
        self.layer = layer
        self.batch_size = int(batch_size)
        size = pixels.ALEXNET_SIZE

        @tf.function(input_signature=[tf.TensorSpec([None, size, size, 3], tf.float32)])
        def run(x):
            y = alexnet(x, training=False, outputs=(layer,))[layer]
            return tf.reshape(y, [tf.shape(y)[0], -1])

        self._run = run

    def __call__(self, paths: Sequence[str], progress: bool = False) -> np.ndarray:
        """float32 ``[len(paths), D]``; a progress bar on stderr when ``progress``."""
        import tensorflow as tf

        out: List[np.ndarray] = []
        bar = _progress(len(paths), f"{self.layer} features", progress)
        try:
            for start in range(0, len(paths), self.batch_size):
                chunk = paths[start:start + self.batch_size]
                out.append(self._run(tf.stack([load_227(p) for p in chunk])).numpy())
                bar.update(len(chunk))
        finally:
            bar.close()
        return np.concatenate(out) if out else np.zeros((0, 0), np.float32)


def _progress(total: int, what: str, enabled: bool):
    from face_aging.progress import bar

    return bar(total, what, unit="img", enabled=enabled)


def extract_features(alexnet, paths: Sequence[str], layer: str = "conv5", batch_size: int = 32,
                     progress: bool = True) -> np.ndarray:
    """float32 ``[len(paths), D]``: ``layer`` of ``alexnet`` for each image file, flattened.

    A progress bar (images/s, ETA) goes to stderr unless ``progress`` is False. Raises
    VerificationInputError naming the first missing or undecodable image.
    """
    return FeatureExtractor(alexnet, layer, batch_size)(paths, progress)


def pair_distances_of_images(feature_fn: Callable[[Sequence[str]], np.ndarray],
                             pairs: Sequence[tuple], root: str = "",
                             batch_pairs: int = 16) -> np.ndarray:
    """Distances of ``(path_0, path_1)`` pairs (relative to ``root``), computed ``batch_pairs``
    pairs at a time with ``feature_fn(paths) -> [len(paths), D]``."""
    out = []
    for start in range(0, len(pairs), batch_pairs):
        chunk = pairs[start:start + batch_pairs]
        paths = [os.path.join(root, p) for pair in chunk for p in pair]
        feats = np.asarray(feature_fn(paths))
        out.append(pair_distances(feats[0::2], feats[1::2]))
    return np.concatenate(out) if out else np.zeros((0,), np.float64)


def read_pairs_checked(pairs_file: str, root: Optional[str] = None):
    """``(rows of identity.read_pairs, root)`` after checking every image exists (one line
    naming the first missing one); ``root`` defaults to the pairs file's folder."""
    from face_aging.data import identity

    rows = identity.read_pairs(pairs_file)
    root = os.path.dirname(os.path.abspath(pairs_file)) if root is None else root
    missing = [p for row in rows for p in row[3:5] if not os.path.isfile(os.path.join(root, p))]
    if missing:
        raise VerificationInputError(f"{os.path.join(root, missing[0])}: image of "
                                     f"{pairs_file} not found ({len(missing)} missing)")
    return rows, root


def verify_alexnet(alexnet, pairs_file: str, layer: str = "conv5", root: Optional[str] = None,
                   batch_size: int = 32, progress: bool = True) -> Dict:
    """The whole measurement on a ``verification_pairs.txt``: the report of
    :func:`cross_validate` plus ``layer``, ``pairs_file`` and per-pair distances.

    ``alexnet``: a built ``AlexNet`` or a checkpoint path (:func:`load_alexnet`).
    ``root``: folder the pairs' paths are relative to (default: the pairs file's folder).
    """
    rows, root = read_pairs_checked(pairs_file, root)
    source = alexnet if isinstance(alexnet, str) else None
    if source is not None:
        alexnet = load_alexnet(source, layer)
    extractor = FeatureExtractor(alexnet, layer, batch_size)
    bar = _progress(2 * len(rows), f"{layer} features", progress)

    def features(paths):
        feats = extractor(paths)
        bar.update(len(paths))
        return feats

    try:
        distances = pair_distances_of_images(features, [r[3:5] for r in rows], root,
                                             batch_pairs=max(1, batch_size // 2))
    finally:
        bar.close()
    result = cross_validate(distances, [r[2] for r in rows], [r[1] for r in rows])
    result.update(layer=layer, features=f"AlexNet {layer}, flattened",
                  alexnet=os.path.abspath(source) if source else "(model given)",
                  pairs_file=os.path.abspath(pairs_file), root=os.path.abspath(root),
                  pair_distances=[{"pair_id": r[0], "fold": r[1], "same": int(r[2]),
                                   "distance": float(x)} for r, x in zip(rows, distances)])
    return result


def verify_dlib(pairs_file: str, root: Optional[str] = None, progress: bool = True,
                batch_pairs: int = 16) -> Dict:
    """The same measurement with dlib's face-recognition embeddings (``judges.IdentityJudge``,
    faces read as ``evaluate.py`` reads them: cv2 resize to 128x128) as the features: the
    ceiling an independent recogniser reaches on these pairs."""
    from face_aging.metrics import judges
    from face_aging.metrics.evaluation import read_face

    rows, root = read_pairs_checked(pairs_file, root)
    judge = judges.IdentityJudge()
    bar = _progress(2 * len(rows), "dlib embeddings", progress)

    def features(paths):
        emb = judge.embed(np.stack([read_face(p) for p in paths]))
        bar.update(len(paths))
        return emb

    try:
        distances = pair_distances_of_images(features, [r[3:5] for r in rows], root, batch_pairs)
    finally:
        bar.close()
    result = cross_validate(distances, [r[2] for r in rows], [r[1] for r in rows])
    result.update(layer=None, features="dlib face-recognition embeddings (128-d)",
                  judge=judge.describe(), pairs_file=os.path.abspath(pairs_file),
                  root=os.path.abspath(root),
                  pair_distances=[{"pair_id": r[0], "fold": r[1], "same": int(r[2]),
                                   "distance": float(x)} for r, x in zip(rows, distances)])
    return result


def format_result(result: Dict) -> str:
    """Lines for a terminal: the headline and one line per fold."""
    folds = ",".join(str(f["fold"]) for f in result["folds"])
    lines = [f"{result.get('features', 'features')}: verification accuracy "
             f"{100 * result['mean_accuracy']:.2f} % +- {100 * result['std_accuracy']:.2f} "
             f"(mean +- std over folds {folds}), ROC AUC {result['auc']:.4f}, "
             f"{result['pairs']} pairs ({result['same_pairs']} same)"]
    for f in result["folds"]:
        lines.append(f"  fold {f['fold']}: {100 * f['accuracy']:.2f} % of {f['pairs']} pairs at "
                     f"threshold {f['threshold']:.4f} (chosen on the other folds: "
                     f"{100 * f['train_accuracy']:.2f} %)")
    return "\n".join(lines)


def write_json_report(output: str, result: Dict) -> None:
    """Writes the JSON (atomically) and prints the figures."""
    from face_aging.files import atomic_write_json

    atomic_write_json(output, result)
    print(format_result(result))
    print(f"wrote {output}")


if __name__ == "__main__":  # the documented command (face_aging.apps.verify)
    from face_aging.apps.verify import run

    run()
