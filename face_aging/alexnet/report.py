"""The age classifier's test report: accuracy, within-one accuracy, per-group recall, confusion.

Pure numpy for the numbers (:func:`classification_report`), matplotlib for the picture
(:func:`write_report`); both files are written by ``face_aging.files`` (a temporary name and a
rename).
"""
from __future__ import annotations

from typing import Dict, Optional, Sequence

import numpy as np

from face_aging import files


def confusion_matrix(labels, predictions, num_groups: int) -> np.ndarray:
    """``[true, predicted]`` counts, int64 ``[num_groups, num_groups]``."""
    labels = np.asarray(labels, np.int64).ravel()
    predictions = np.asarray(predictions, np.int64).ravel()
    if labels.shape != predictions.shape:
        raise ValueError(f"{labels.size} labels but {predictions.size} predictions")
    if labels.size and (labels.min() < 0 or labels.max() >= num_groups
                        or predictions.min() < 0 or predictions.max() >= num_groups):
        raise ValueError(f"labels and predictions must lie in 0..{num_groups - 1}")
    matrix = np.zeros((num_groups, num_groups), np.int64)
    np.add.at(matrix, (labels, predictions), 1)
    return matrix


def classification_report(labels, predictions, num_groups: int,
                          group_names: Optional[Sequence[str]] = None) -> Dict:
    """Age-group classification figures of one prediction set.

    Returns a JSON-ready dict:
      ``count``; ``accuracy`` (exact group); ``within_one_accuracy`` (|pred - true| <= 1);
      ``mean_absolute_group_error``; ``per_group`` (name, support, recall, precision; recall
      and precision are None for a group with no true / no predicted sample);
      ``balanced_accuracy`` (mean recall over groups with samples); ``confusion_matrix``
      (rows true, columns predicted).
    """
    matrix = confusion_matrix(labels, predictions, num_groups)
    labels = np.asarray(labels, np.int64).ravel()
    predictions = np.asarray(predictions, np.int64).ravel()
    n = int(labels.size)
    names = list(group_names) if group_names is not None else [str(k) for k in range(num_groups)]
    support = matrix.sum(axis=1)
    predicted = matrix.sum(axis=0)
    per_group = []
    for k in range(num_groups):
        recall = float(matrix[k, k] / support[k]) if support[k] else None
        precision = float(matrix[k, k] / predicted[k]) if predicted[k] else None
        per_group.append({"group": k, "name": names[k], "support": int(support[k]),
                          "recall": recall, "precision": precision})
    recalls = [g["recall"] for g in per_group if g["recall"] is not None]
    error = np.abs(labels - predictions)
    return {
        "count": n,
        "accuracy": float(np.mean(error == 0)) if n else None,
        "within_one_accuracy": float(np.mean(error <= 1)) if n else None,
        "mean_absolute_group_error": float(np.mean(error)) if n else None,
        "balanced_accuracy": float(np.mean(recalls)) if recalls else None,
        "per_group": per_group,
        "confusion_matrix": matrix.tolist(),
    }


def plot_report(report: Dict, path: str, title: str = "age classifier, test split") -> None:
    """PNG: the confusion matrix (row-normalised, counts written in) and per-group recall."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    matrix = np.asarray(report["confusion_matrix"], np.float64)
    names = [g["name"] for g in report["per_group"]]
    rows = matrix.sum(axis=1, keepdims=True)
    normalised = np.divide(matrix, rows, out=np.zeros_like(matrix), where=rows > 0)
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(11, 4.6))
    ax1.imshow(normalised, cmap="Blues", vmin=0, vmax=1)
    for i in range(matrix.shape[0]):
        for j in range(matrix.shape[1]):
            ax1.text(j, i, f"{int(matrix[i, j])}", ha="center", va="center",
                     color="white" if normalised[i, j] > 0.5 else "black", fontsize=9)
    ax1.set_xticks(range(len(names)), names, rotation=30)
    ax1.set_yticks(range(len(names)), names)
    ax1.set_xlabel("predicted group")
    ax1.set_ylabel("true group")
    ax1.set_title("confusion matrix (counts; colour = row share)")
    recalls = [g["recall"] if g["recall"] is not None else 0.0 for g in report["per_group"]]
    ax2.bar(range(len(names)), recalls, color="tab:blue")
    for k, g in enumerate(report["per_group"]):
        ax2.text(k, recalls[k] + 0.02, f"{recalls[k]:.2f}\n(n={g['support']})", ha="center",
                 fontsize=8)
    ax2.set_xticks(range(len(names)), names, rotation=30)
    ax2.set_ylim(0, 1.15)
    ax2.set_ylabel("recall")
    acc, within = report["accuracy"], report["within_one_accuracy"]
    ax2.set_title(f"per-group recall; accuracy {acc:.3f}, within one {within:.3f}"
                  if acc is not None else "per-group recall")
    fig.suptitle(title)
    fig.tight_layout()
    try:
        with files.atomic_path(path, suffix=".png") as temporary:
            fig.savefig(temporary, format="png", dpi=100)
    finally:
        plt.close(fig)


def write_report(report: Dict, json_path: str, png_path: Optional[str] = None, **plot_kwargs):
    """Writes the report as JSON and (if ``png_path``) as a PNG."""
    files.atomic_write_json(json_path, report)
    if png_path:
        plot_report(report, png_path, **plot_kwargs)
