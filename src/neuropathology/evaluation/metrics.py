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

:func:`evaluation_metrics` adds everything ``neuropathology evaluate`` reports (ROC AUC,
average precision, kappa, MCC, log loss, Brier, calibration errors). scikit-learn computes
every metric it has; only the calibration errors (ECE with equal-width and equal-mass bins,
MCE, classwise ECE) and specificity (from the confusion matrix) are written here.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from sklearn.metrics import (
    accuracy_score,
    average_precision_score,
    balanced_accuracy_score,
    brier_score_loss,
    cohen_kappa_score,
    confusion_matrix,
    log_loss,
    matthews_corrcoef,
    precision_recall_fscore_support,
    roc_auc_score,
    top_k_accuracy_score,
)

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


# --------------------------------------------------------------------------- full report


def _check_inputs(y_true: Sequence[int] | np.ndarray, y_prob: np.ndarray,
                  n_classes: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(labels int64 (N,), probabilities float64 (N, C)) after shape / range / NaN checks."""
    probs = np.asarray(y_prob, dtype=np.float64)
    labels = np.asarray(y_true)
    if labels.ndim == 2:
        labels = labels.argmax(axis=1)
    labels = labels.astype(np.int64)
    if probs.ndim != 2:
        raise ValueError(f"y_prob must have shape (N, C), got {probs.shape}")
    if n_classes is not None and probs.shape[1] != n_classes:
        raise ValueError(f"y_prob must have {n_classes} columns, got {probs.shape}")
    if probs.shape[0] != labels.shape[0] or labels.shape[0] == 0:
        raise ValueError(f"need the same non-zero number of labels and predictions, got "
                         f"{labels.shape[0]} labels and {probs.shape[0]} predictions")
    if not np.all(np.isfinite(probs)):
        raise ValueError(f"y_prob contains {int(np.sum(~np.isfinite(probs)))} NaN/inf values")
    if labels.min() < 0 or labels.max() >= probs.shape[1]:
        raise ValueError(f"labels must be in [0, {probs.shape[1]}), got range "
                         f"[{labels.min()}, {labels.max()}]")
    sums = probs.sum(axis=1, keepdims=True)
    if np.all(np.abs(sums - 1.0) < 1e-4):  # float32 softmax rows sum to 1 only to ~1e-7
        probs = probs / sums
    return labels, probs


def specificity_per_class(cm: np.ndarray) -> np.ndarray:
    """Specificity_k = TN_k / (TN_k + FP_k) from a confusion matrix (rows true, cols predicted).

    TN_k = N - TP_k - FP_k - FN_k: everything neither truly k nor predicted k. 0 if undefined.
    """
    cm = np.asarray(cm, dtype=np.float64)
    tp = np.diag(cm)
    fp = cm.sum(axis=0) - tp
    fn = cm.sum(axis=1) - tp
    tn = cm.sum() - tp - fp - fn
    denom = tn + fp
    return np.divide(tn, denom, out=np.zeros_like(tn), where=denom > 0)


def _bins(confidence: np.ndarray, n_bins: int, strategy: str) -> np.ndarray:
    """Bin index (0..n_bins-1) of each confidence value.

    ``uniform``: equal-width bins ((k-1)/B, k/B] on [0, 1] (a confidence of exactly 0 goes to
    the first bin). ``quantile`` (equal mass): the sorted confidences are cut into ``n_bins``
    groups of (as nearly as possible) equal size, so every bin has ~N/B samples.
    """
    if n_bins < 1:
        raise ValueError(f"n_bins must be >= 1, got {n_bins}")
    if strategy == "uniform":
        return np.clip(np.ceil(confidence * n_bins).astype(np.int64) - 1, 0, n_bins - 1)
    if strategy == "quantile":
        order = np.argsort(confidence, kind="stable")
        index = np.empty(len(confidence), dtype=np.int64)
        index[order] = (np.arange(len(confidence)) * n_bins) // max(len(confidence), 1)
        return index
    raise ValueError(f"strategy must be 'uniform' or 'quantile', got {strategy!r}")


def reliability_bins(y_true: Sequence[int] | np.ndarray, y_prob: np.ndarray, *,
                     n_bins: int = 15, strategy: str = "uniform") -> dict[str, np.ndarray]:
    """Per bin of top-class confidence: count, mean confidence, accuracy (a reliability diagram).

    For bin b with samples B_b: conf(B_b) = mean_i max_k p_ik, acc(B_b) = mean_i [yhat_i = y_i].
    Empty bins have count 0 and NaN confidence/accuracy.
    """
    labels, probs = _check_inputs(y_true, y_prob)
    confidence = probs.max(axis=1)
    correct = (probs.argmax(axis=1) == labels).astype(np.float64)
    index = _bins(confidence, n_bins, strategy)
    count = np.bincount(index, minlength=n_bins).astype(np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        conf = np.bincount(index, weights=confidence, minlength=n_bins) / count
        acc = np.bincount(index, weights=correct, minlength=n_bins) / count
    return {"count": count, "confidence": conf, "accuracy": acc}


def expected_calibration_error(y_true: Sequence[int] | np.ndarray, y_prob: np.ndarray, *,
                               n_bins: int = 15, strategy: str = "uniform") -> float:
    """ECE = sum_b (|B_b| / N) |acc(B_b) - conf(B_b)| over bins of top-class confidence.

    ``strategy="uniform"``: B equal-width bins on [0, 1] (Guo et al. 2017);
    ``"quantile"``: equal-mass bins (each holds ~N/B samples), which avoids the nearly empty
    low-confidence bins of an accurate model. 0 for a perfectly calibrated predictor.
    """
    bins = reliability_bins(y_true, y_prob, n_bins=n_bins, strategy=strategy)
    filled = bins["count"] > 0
    weights = bins["count"][filled] / bins["count"].sum()
    gaps = np.abs(bins["accuracy"][filled] - bins["confidence"][filled])
    return float(np.sum(weights * gaps))


def maximum_calibration_error(y_true: Sequence[int] | np.ndarray, y_prob: np.ndarray, *,
                              n_bins: int = 15, strategy: str = "uniform") -> float:
    """MCE = max_b |acc(B_b) - conf(B_b)| over the non-empty bins: the worst-case gap."""
    bins = reliability_bins(y_true, y_prob, n_bins=n_bins, strategy=strategy)
    filled = bins["count"] > 0
    return float(np.max(np.abs(bins["accuracy"][filled] - bins["confidence"][filled])))


def classwise_ece(y_true: Sequence[int] | np.ndarray, y_prob: np.ndarray, *,
                  n_bins: int = 15) -> tuple[float, list[float]]:
    """Classwise ECE (Kull et al. 2019): for every class k, bin the probability p_ik itself
    (equal width) and compare it with the frequency of y_i = k in the bin:

        cwECE_k = sum_b (|B_b| / N) |mean_{i in B_b} [y_i = k] - mean_{i in B_b} p_ik|,
        cwECE = (1/C) sum_k cwECE_k.

    Unlike the top-label ECE it also checks the probabilities of the non-predicted classes.
    Returns (mean, per-class list).
    """
    labels, probs = _check_inputs(y_true, y_prob)
    per_class = []
    for k in range(probs.shape[1]):
        p = probs[:, k]
        hit = (labels == k).astype(np.float64)
        index = _bins(p, n_bins, "uniform")
        count = np.bincount(index, minlength=n_bins).astype(np.float64)
        filled = count > 0
        mean_p = np.bincount(index, weights=p, minlength=n_bins)[filled] / count[filled]
        freq = np.bincount(index, weights=hit, minlength=n_bins)[filled] / count[filled]
        per_class.append(float(np.sum(count[filled] / len(p) * np.abs(freq - mean_p))))
    return float(np.mean(per_class)), per_class


def top_k_accuracy(y_true: Sequence[int] | np.ndarray, y_prob: np.ndarray, k: int) -> float:
    """Share of samples whose true class is among the k most probable (scikit-learn)."""
    labels, probs = _check_inputs(y_true, y_prob)
    return float(top_k_accuracy_score(labels, probs, k=k, labels=np.arange(probs.shape[1])))


def roc_auc_per_class(labels: np.ndarray, probs: np.ndarray) -> list[float | None]:
    """One-vs-rest ROC AUC of every class (None when the class is absent or alone in y)."""
    out: list[float | None] = []
    for k in range(probs.shape[1]):
        positive = labels == k
        if positive.all() or not positive.any():
            out.append(None)
        else:
            out.append(float(roc_auc_score(positive, probs[:, k])))
    return out


def average_precision_per_class(labels: np.ndarray, probs: np.ndarray) -> list[float | None]:
    """Average precision AP_k = sum_n (R_n - R_{n-1}) P_n of class k vs rest (None if absent)."""
    out: list[float | None] = []
    for k in range(probs.shape[1]):
        positive = labels == k
        out.append(float(average_precision_score(positive, probs[:, k]))
                   if positive.any() else None)
    return out


def _mean_defined(values: Sequence[float | None]) -> float | None:
    defined = [v for v in values if v is not None]
    return float(np.mean(defined)) if defined else None


def _weighted_defined(values: Sequence[float | None], weights: np.ndarray) -> float | None:
    pairs = [(v, w) for v, w in zip(values, weights, strict=True) if v is not None]
    if not pairs or sum(w for _, w in pairs) == 0:
        return None
    return float(sum(v * w for v, w in pairs) / sum(w for _, w in pairs))


def evaluation_metrics(y_true: Sequence[int] | np.ndarray, y_prob: np.ndarray,
                       class_names: Sequence[str], *, n_bins: int = 15,
                       top_k: Sequence[int] = (2, 3)) -> dict[str, Any]:
    """Every metric of the evaluation report, as a JSON-able dict.

    On top of :func:`classification_metrics`: balanced accuracy (mean recall), per-class
    specificity, micro/weighted averages, the row-normalised confusion matrix, one-vs-rest
    ROC AUC and average precision (per class, macro, weighted), Cohen's kappa
    kappa = (p_o - p_e) / (1 - p_e), Matthews correlation (multi-class), top-k accuracy, log
    loss -(1/N) sum_i log p_{i,y_i}, Brier score (1/N) sum_i sum_k (p_ik - [y_i = k])^2, and
    calibration: ECE (equal width ``ece`` and equal mass ``ece_equal_mass``), MCE and
    classwise ECE. Undefined values (AUC of a class absent from y) are ``None``.
    """
    labels, probs = _check_inputs(y_true, y_prob, len(class_names))
    base = classification_metrics(labels, probs, class_names)
    n_classes = len(class_names)
    index = np.arange(n_classes)
    predicted = probs.argmax(axis=1)
    cm = np.asarray(base["confusion_matrix"], dtype=np.int64)
    row = cm.sum(axis=1, keepdims=True)
    normalised = np.divide(cm, row, out=np.zeros(cm.shape), where=row > 0)
    specificity = specificity_per_class(cm)
    auc = roc_auc_per_class(labels, probs)
    ap = average_precision_per_class(labels, probs)
    support = cm.sum(axis=1)
    for k, name in enumerate(class_names):
        base["per_class"][name].update(specificity=float(specificity[k]), roc_auc=auc[k],
                                       average_precision=ap[k])
    averages: dict[str, dict[str, float]] = {}
    for average in ("macro", "micro", "weighted"):
        p, r, f, _ = precision_recall_fscore_support(labels, predicted, labels=index,
                                                     average=average, zero_division=0)
        averages[average] = {"precision": float(p), "recall": float(r), "f1": float(f)}
    averages["macro"]["specificity"] = float(np.mean(specificity))
    averages["weighted"]["specificity"] = float(np.average(specificity, weights=support))
    ece_classwise, ece_per_class = classwise_ece(labels, probs, n_bins=n_bins)
    return {
        **base,
        "balanced_accuracy": float(balanced_accuracy_score(labels, predicted)),
        "averages": averages,
        "confusion_matrix_normalized": normalised.tolist(),
        "roc_auc": {"per_class": dict(zip(class_names, auc, strict=True)),
                    "macro": _mean_defined(auc), "weighted": _weighted_defined(auc, support)},
        "average_precision": {"per_class": dict(zip(class_names, ap, strict=True)),
                              "macro": _mean_defined(ap),
                              "weighted": _weighted_defined(ap, support)},
        "cohen_kappa": float(cohen_kappa_score(labels, predicted, labels=index)),
        "mcc": float(matthews_corrcoef(labels, predicted)),
        "top_k_accuracy": {str(k): top_k_accuracy(labels, probs, k)
                           for k in top_k if k < n_classes},
        "log_loss": float(log_loss(labels, probs, labels=index)),
        "brier": float(brier_score_loss(labels, probs, labels=index, scale_by_half=False)),
        "ece": expected_calibration_error(labels, probs, n_bins=n_bins),
        "ece_equal_mass": expected_calibration_error(labels, probs, n_bins=n_bins,
                                                     strategy="quantile"),
        "mce": maximum_calibration_error(labels, probs, n_bins=n_bins),
        "classwise_ece": ece_classwise,
        "classwise_ece_per_class": dict(zip(class_names, ece_per_class, strict=True)),
        "n_bins": n_bins,
    }
