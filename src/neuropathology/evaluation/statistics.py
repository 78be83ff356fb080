"""How sure are we of a test score? Bootstrap confidence intervals and McNemar's test.

A test set of a few hundred images gives an accuracy with an uncertainty of several
percentage points; a report without it invites reading noise as progress.

**Bootstrap (percentile) confidence interval.** Draw B resamples of the N test images with
replacement, compute the metric m*_b on each, and take the alpha/2 and 1 - alpha/2 quantiles of
{m*_b} as the (1 - alpha) interval. It needs no formula for the metric's variance, so it works
the same for accuracy, macro-F1 and macro AUC. (Images of one patient are not independent;
with patient ids one would resample patients - here the split already keeps near duplicates
together.)

**McNemar's test** compares two classifiers on the *same* images. Only the discordant pairs
carry information: b = #(A right, B wrong), c = #(A wrong, B right). Under H0 (equal error
rates) each discordant pair is A's win with probability 1/2, so b ~ Binomial(b + c, 1/2):

* exact: p = min(1, 2 P(X <= min(b, c))), X ~ Bin(b + c, 1/2)   (used when b + c < 25)
* chi-square with continuity correction: chi2 = (|b - c| - 1)^2 / (b + c), p = P(chi2_1 > chi2)

No discordant pairs (identical predictions) gives p = 1.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
from scipy.stats import binomtest, chi2
from sklearn.metrics import f1_score, roc_auc_score

#: Below this many discordant pairs McNemar's test uses the exact binomial distribution.
EXACT_BELOW = 25

Metric = Callable[[np.ndarray, np.ndarray], float]


def accuracy_metric(labels: np.ndarray, probs: np.ndarray) -> float:
    """(1/N) sum_i [argmax_k p_ik == y_i]."""
    return float(np.mean(probs.argmax(axis=1) == labels))


def macro_f1_metric(labels: np.ndarray, probs: np.ndarray) -> float:
    """(1/C) sum_k F1_k over all C classes (scikit-learn, 0 where undefined)."""
    return float(f1_score(labels, probs.argmax(axis=1), labels=np.arange(probs.shape[1]),
                          average="macro", zero_division=0))


def macro_auc_metric(labels: np.ndarray, probs: np.ndarray) -> float:
    """Mean one-vs-rest ROC AUC over the classes present both as positives and negatives."""
    aucs = [roc_auc_score(labels == k, probs[:, k]) for k in range(probs.shape[1])
            if 0 < np.sum(labels == k) < len(labels)]
    return float(np.mean(aucs)) if aucs else float("nan")


DEFAULT_METRICS: dict[str, Metric] = {"accuracy": accuracy_metric, "macro_f1": macro_f1_metric,
                                      "macro_auc": macro_auc_metric}


def bootstrap_ci(y_true: Sequence[int] | np.ndarray, y_prob: np.ndarray,
                 metrics: dict[str, Metric] | None = None, *, n_boot: int = 1000,
                 alpha: float = 0.05, seed: int = 0) -> dict[str, dict[str, float]]:
    """Percentile bootstrap (1 - alpha) intervals: {name: {"estimate", "low", "high"}}.

    ``estimate`` is the metric on the full data; resamples on which a metric is undefined
    (NaN, e.g. a class missing from a tiny resample) are dropped from its quantiles.
    """
    labels = np.asarray(y_true, dtype=np.int64)
    probs = np.asarray(y_prob, dtype=np.float64)
    if len(labels) == 0 or len(labels) != len(probs):
        raise ValueError(f"need N > 0 labels and N predictions, got {len(labels)} and "
                         f"{len(probs)}")
    if not 0 < alpha < 1 or n_boot < 1:
        raise ValueError(f"need 0 < alpha < 1 and n_boot >= 1, got {alpha} and {n_boot}")
    metrics = metrics or DEFAULT_METRICS
    rng = np.random.default_rng(seed)
    samples = rng.integers(0, len(labels), size=(n_boot, len(labels)))
    out: dict[str, dict[str, float]] = {}
    for name, fn in metrics.items():
        values = np.array([fn(labels[idx], probs[idx]) for idx in samples])
        values = values[np.isfinite(values)]
        low, high = (np.quantile(values, [alpha / 2, 1 - alpha / 2]) if len(values)
                     else (np.nan, np.nan))
        out[name] = {"estimate": fn(labels, probs), "low": float(low), "high": float(high),
                     "level": 1 - alpha, "n_boot": int(n_boot)}
    return out


def mcnemar(correct_a: Sequence[bool] | np.ndarray, correct_b: Sequence[bool] | np.ndarray,
            *, exact_below: int = EXACT_BELOW) -> dict[str, Any]:
    """McNemar's test on paired correctness vectors (module docstring for the formulas).

    Returns b, c, the method ("exact" or "chi2_continuity"), the statistic (the chi-square,
    or min(b, c) for the exact test) and the two-sided p-value.
    """
    a = np.asarray(correct_a, dtype=bool)
    b_ = np.asarray(correct_b, dtype=bool)
    if a.shape != b_.shape or a.ndim != 1:
        raise ValueError(f"need two 1-D correctness vectors of one length, got {a.shape} and "
                         f"{b_.shape}")
    b = int(np.sum(a & ~b_))
    c = int(np.sum(~a & b_))
    n = b + c
    if n == 0:
        return {"b": 0, "c": 0, "method": "exact", "statistic": 0.0, "p_value": 1.0}
    if n < exact_below:
        p = binomtest(min(b, c), n, 0.5, alternative="two-sided").pvalue
        return {"b": b, "c": c, "method": "exact", "statistic": float(min(b, c)),
                "p_value": float(min(1.0, p))}
    statistic = (abs(b - c) - 1.0) ** 2 / n
    return {"b": b, "c": c, "method": "chi2_continuity", "statistic": float(statistic),
            "p_value": float(chi2.sf(statistic, df=1))}
