"""Classification metrics from predicted probabilities (scikit-learn underneath).

Every number the project reports (training summary, ``metrics.json``, evaluation, the app)
comes from :func:`classification_metrics`, so the definitions live in one place:

* accuracy = (1/N) sum_i [argmax_k p_ik == y_i]
* per class k: precision_k = TP_k / (TP_k + FP_k), recall_k = TP_k / (TP_k + FN_k),
  F1_k = 2 P_k R_k / (P_k + R_k) (0 when undefined), support_k = #{i : y_i = k}
* macro F1 = (1/C) sum_k F1_k: every class counts equally, so a model that ignores a rare
  class is penalised even when its accuracy looks good (the reason to report it on
  imbalanced medical data).
* confusion matrix M[t][p] = #{i : y_i = t and argmax_k p_ik = p} (rows true, columns predicted).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from sklearn.metrics import accuracy_score, confusion_matrix, precision_recall_fscore_support

from neuropathology.utils.helpers import format_table


def classification_metrics(y_true: Sequence[int] | np.ndarray, y_prob: np.ndarray,
                           class_names: Sequence[str]) -> dict[str, Any]:
    """Accuracy, macro F1, per-class precision/recall/F1/support and the confusion matrix.

    ``y_true``: integer labels (N,) or one-hot (N, C); ``y_prob``: probabilities (N, C) whose
    columns follow ``class_names``. Returns a JSON-able dict (plain floats, ints and lists).
    """
    probs = np.asarray(y_prob, dtype=np.float64)
    labels = np.asarray(y_true)
    if labels.ndim == 2:
        labels = labels.argmax(axis=1)
    labels = labels.astype(np.int64)
    n_classes = len(class_names)
    if probs.ndim != 2 or probs.shape[1] != n_classes:
        raise ValueError(f"y_prob must have shape (N, {n_classes}) to match class_names, "
                         f"got {probs.shape}")
    if probs.shape[0] != labels.shape[0] or labels.shape[0] == 0:
        raise ValueError(f"need the same non-zero number of labels and predictions, got "
                         f"{labels.shape[0]} labels and {probs.shape[0]} predictions")
    if labels.min() < 0 or labels.max() >= n_classes:
        raise ValueError(f"labels must be in [0, {n_classes}), got range "
                         f"[{labels.min()}, {labels.max()}]")
    predicted = probs.argmax(axis=1)
    index = list(range(n_classes))
    precision, recall, f1, support = precision_recall_fscore_support(
        labels, predicted, labels=index, zero_division=0)
    per_class = {
        name: {"precision": float(precision[k]), "recall": float(recall[k]),
               "f1": float(f1[k]), "support": int(support[k])}
        for k, name in enumerate(class_names)
    }
    return {
        "n_samples": int(labels.shape[0]),
        "class_names": list(class_names),
        "accuracy": float(accuracy_score(labels, predicted)),
        "macro_f1": float(np.mean(f1)),
        "macro_precision": float(np.mean(precision)),
        "macro_recall": float(np.mean(recall)),
        "per_class": per_class,
        "confusion_matrix": confusion_matrix(labels, predicted, labels=index).tolist(),
    }


def metrics_table(metrics: dict[str, Any]) -> str:
    """A readable per-class table plus the overall rows, for terminals and logs."""
    rows: list[list[object]] = [
        [name, m["precision"], m["recall"], m["f1"], m["support"]]
        for name, m in metrics["per_class"].items()
    ]
    rows.append(["macro avg", metrics["macro_precision"], metrics["macro_recall"],
                 metrics["macro_f1"], metrics["n_samples"]])
    table = format_table(rows, ["class", "precision", "recall", "f1", "support"])
    return f"{table}\naccuracy: {metrics['accuracy']:.4f}   macro F1: {metrics['macro_f1']:.4f}"
