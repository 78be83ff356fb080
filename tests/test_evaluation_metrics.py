"""Evaluation metrics: hand-made cases with known answers, and independent computations."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import (
    average_precision_score,
    cohen_kappa_score,
    log_loss,
    matthews_corrcoef,
    roc_auc_score,
)

from neuropathology.evaluation.metrics import (
    classification_metrics,
    classwise_ece,
    evaluation_metrics,
    expected_calibration_error,
    maximum_calibration_error,
    specificity_per_class,
    top_k_accuracy,
)

CLASSES = ("a", "b", "c")


def random_case(n: int = 300, c: int = 3, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    probs = rng.dirichlet(np.ones(c) * 0.7, size=n)
    labels = np.where(rng.random(n) < 0.6, probs.argmax(axis=1), rng.integers(0, c, n))
    return labels, probs


# --------------------------------------------------------------------------- hand-made


def test_hand_made_case_with_known_answers():
    labels = np.array([0, 0, 0, 1, 1, 2])
    probs = np.array([[0.8, 0.1, 0.1],   # 0 -> 0
                      [0.6, 0.3, 0.1],   # 0 -> 0
                      [0.2, 0.7, 0.1],   # 0 -> 1  (error)
                      [0.1, 0.8, 0.1],   # 1 -> 1
                      [0.3, 0.3, 0.4],   # 1 -> 2  (error)
                      [0.1, 0.1, 0.8]])  # 2 -> 2
    m = evaluation_metrics(labels, probs, CLASSES)
    assert m["accuracy"] == pytest.approx(4 / 6)
    assert m["confusion_matrix"] == [[2, 1, 0], [0, 1, 1], [0, 0, 1]]
    np.testing.assert_allclose(m["confusion_matrix_normalized"][0], [2 / 3, 1 / 3, 0])
    # recalls 2/3, 1/2, 1 -> balanced accuracy is their mean
    assert m["balanced_accuracy"] == pytest.approx((2 / 3 + 1 / 2 + 1) / 3)
    # class b: TP 1, FP 1 (a sample of class a), FN 1, TN 3 -> specificity 3/4
    assert m["per_class"]["b"]["specificity"] == pytest.approx(3 / 4)
    assert m["per_class"]["a"]["specificity"] == pytest.approx(1.0)
    assert m["per_class"]["c"]["specificity"] == pytest.approx(4 / 5)
    assert m["per_class"]["c"]["precision"] == pytest.approx(1 / 2)
    assert m["averages"]["micro"]["f1"] == pytest.approx(m["accuracy"])  # single-label
    # log loss = -mean log p_true
    truth = [0.8, 0.6, 0.2, 0.8, 0.3, 0.8]
    assert m["log_loss"] == pytest.approx(-np.mean(np.log(truth)))
    onehot = np.eye(3)[labels]
    assert m["brier"] == pytest.approx(np.mean(np.sum((probs - onehot) ** 2, axis=1)))
    assert m["top_k_accuracy"]["2"] == pytest.approx(6 / 6)  # every true class is in the top 2
    # class c: positive scores 0.8 (the c sample) vs 0.1, 0.1, 0.1, 0.1, 0.4 -> AUC 1
    assert m["roc_auc"]["per_class"]["c"] == pytest.approx(1.0)
    # kappa: p_o = 4/6, p_e = sum_k (row_k / N)(col_k / N) = (3*2 + 2*2 + 1*2) / 36 = 1/3
    assert m["cohen_kappa"] == pytest.approx((4 / 6 - 1 / 3) / (1 - 1 / 3))
    # multi-class MCC = (c s - sum_k p_k t_k) / sqrt((s^2 - sum p_k^2)(s^2 - sum t_k^2)),
    # c = 4 correct, s = 6, true counts t = (3, 2, 1), predicted counts p = (2, 2, 2)
    assert m["mcc"] == pytest.approx((4 * 6 - 12) / np.sqrt((36 - 12) * (36 - 14)))


def test_specificity_from_confusion_matrix():
    cm = np.array([[5, 1], [2, 7]])  # binary: specificity of class 1 = TN / (TN + FP) = 5 / 6
    np.testing.assert_allclose(specificity_per_class(cm), [7 / 9, 5 / 6])


def test_ece_hand_made():
    # 10 samples at confidence 0.9, 5 right: one bin, gap 0.4
    probs = np.tile([0.9, 0.1], (10, 1))
    labels = np.array([0] * 5 + [1] * 5)
    assert expected_calibration_error(labels, probs) == pytest.approx(0.4)
    assert maximum_calibration_error(labels, probs) == pytest.approx(0.4)
    # confident and always right: no gap
    perfect = np.tile([1.0, 0.0], (10, 1))
    assert expected_calibration_error(np.zeros(10, int), perfect) == pytest.approx(0.0)
    # two bins: 4 samples at 0.6 (all right, gap 0.4) and 6 at 0.95 (3 right, gap 0.45)
    probs = np.array([[0.6, 0.4]] * 4 + [[0.95, 0.05]] * 6)
    labels = np.array([0] * 4 + [0, 0, 0, 1, 1, 1])
    assert expected_calibration_error(labels, probs, n_bins=10) == pytest.approx(
        0.4 * 0.4 + 0.6 * 0.45)
    assert maximum_calibration_error(labels, probs, n_bins=10) == pytest.approx(0.45)


# --------------------------------------------------------------------------- independent


def naive_ece(labels, probs, n_bins, equal_mass=False):
    """Loop-based reference: explicit bin edges (uniform) or np.array_split (equal mass)."""
    conf = probs.max(axis=1)
    correct = probs.argmax(axis=1) == labels
    if equal_mass:
        groups = np.array_split(np.argsort(conf, kind="stable"), n_bins)
    else:
        edges = np.linspace(0, 1, n_bins + 1)
        groups = [np.flatnonzero((conf > lo) & (conf <= hi) if b else (conf >= lo) & (conf <= hi))
                  for b, (lo, hi) in enumerate(zip(edges[:-1], edges[1:], strict=True))]
    total = 0.0
    for g in groups:
        if len(g):
            total += len(g) / len(labels) * abs(correct[g].mean() - conf[g].mean())
    return total


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_every_metric_against_independent_computations(seed):
    labels, probs = random_case(seed=seed)
    m = evaluation_metrics(labels, probs, CLASSES)
    pred = probs.argmax(axis=1)
    assert m["accuracy"] == pytest.approx(np.mean(pred == labels))
    recalls = [np.mean(pred[labels == k] == k) for k in range(3)]
    assert m["balanced_accuracy"] == pytest.approx(np.mean(recalls))
    for k, name in enumerate(CLASSES):
        tp = np.sum((pred == k) & (labels == k))
        fp = np.sum((pred == k) & (labels != k))
        fn = np.sum((pred != k) & (labels == k))
        tn = np.sum((pred != k) & (labels != k))
        pc = m["per_class"][name]
        assert pc["precision"] == pytest.approx(tp / (tp + fp))
        assert pc["recall"] == pytest.approx(tp / (tp + fn))
        assert pc["specificity"] == pytest.approx(tn / (tn + fp))
        assert pc["f1"] == pytest.approx(2 * tp / (2 * tp + fp + fn))
        assert pc["support"] == np.sum(labels == k)
        # AUC = P(score of a positive > score of a negative) (Mann-Whitney), ties count 1/2
        pos, neg = probs[labels == k, k], probs[labels != k, k]
        wins = (pos[:, None] > neg[None, :]).mean() + 0.5 * (pos[:, None] == neg[None, :]).mean()
        assert pc["roc_auc"] == pytest.approx(wins)
    assert m["roc_auc"]["macro"] == pytest.approx(
        roc_auc_score(labels, probs, multi_class="ovr", average="macro"))
    assert m["roc_auc"]["weighted"] == pytest.approx(
        roc_auc_score(labels, probs, multi_class="ovr", average="weighted"))
    assert m["average_precision"]["macro"] == pytest.approx(
        average_precision_score(np.eye(3)[labels], probs, average="macro"))
    assert m["macro_f1"] == pytest.approx(np.mean([m["per_class"][c]["f1"] for c in CLASSES]))
    assert m["cohen_kappa"] == pytest.approx(cohen_kappa_score(labels, pred))
    assert m["mcc"] == pytest.approx(matthews_corrcoef(labels, pred))
    assert m["log_loss"] == pytest.approx(log_loss(labels, probs))
    assert m["log_loss"] == pytest.approx(-np.mean(np.log(probs[np.arange(len(labels)),
                                                               labels])))
    onehot = np.eye(3)[labels]
    assert m["brier"] == pytest.approx(np.mean(np.sum((probs - onehot) ** 2, axis=1)))
    top2 = np.argsort(-probs, axis=1)[:, :2]
    assert m["top_k_accuracy"]["2"] == pytest.approx(np.mean((top2 == labels[:, None]).any(1)))
    assert top_k_accuracy(labels, probs, 1) == pytest.approx(m["accuracy"])
    assert m["ece"] == pytest.approx(naive_ece(labels, probs, 15))
    assert m["ece_equal_mass"] == pytest.approx(naive_ece(labels, probs, 15, equal_mass=True))
    weighted_f1 = np.average([m["per_class"][c]["f1"] for c in CLASSES],
                             weights=np.bincount(labels, minlength=3))
    assert m["averages"]["weighted"]["f1"] == pytest.approx(weighted_f1)
    # the trainer's subset is unchanged
    base = classification_metrics(labels, probs, CLASSES)
    assert {k: m[k] for k in base if k != "per_class"} == {k: v for k, v in base.items()
                                                           if k != "per_class"}
    for name, values in base["per_class"].items():  # per class: extended, not changed
        assert {k: m["per_class"][name][k] for k in values} == values


def test_classwise_ece_against_a_loop():
    labels, probs = random_case(seed=5)
    mean, per_class = classwise_ece(labels, probs, n_bins=10)
    reference = []
    for k in range(3):
        p, hit = probs[:, k], labels == k
        total = 0.0
        for b in range(10):
            lo, hi = b / 10, (b + 1) / 10
            g = (p > lo) & (p <= hi) if b else (p >= lo) & (p <= hi)
            if g.any():
                total += g.mean() * abs(hit[g].mean() - p[g].mean())
        reference.append(total)
    np.testing.assert_allclose(per_class, reference)
    assert mean == pytest.approx(np.mean(reference))


def test_ece_of_calibrated_predictor_is_small_and_of_overconfident_large():
    rng = np.random.default_rng(0)
    probs = rng.dirichlet(np.ones(4), size=20000)
    labels = np.array([rng.choice(4, p=p) for p in probs])  # y ~ p: calibrated by construction
    assert expected_calibration_error(labels, probs) < 0.02
    assert expected_calibration_error(labels, probs, strategy="quantile") < 0.02
    assert classwise_ece(labels, probs)[0] < 0.02
    sharp = probs ** 4 / np.sum(probs ** 4, axis=1, keepdims=True)  # same argmax, over-confident
    assert expected_calibration_error(labels, sharp) > 0.15
    assert maximum_calibration_error(labels, sharp) > 0.2


def test_bad_inputs_are_rejected():
    labels, probs = random_case(n=10)
    bad = probs.copy()
    bad[3, 1] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        evaluation_metrics(labels, bad, CLASSES)
    with pytest.raises(ValueError, match="columns"):
        evaluation_metrics(labels, probs[:, :2], CLASSES)
    with pytest.raises(ValueError, match="non-zero"):
        evaluation_metrics(labels[:0], probs[:0], CLASSES)
    with pytest.raises(ValueError, match="strategy"):
        expected_calibration_error(labels, probs, strategy="magic")


def test_absent_class_gives_undefined_auc_not_a_crash():
    labels = np.array([0, 0, 1, 1])
    probs = np.array([[0.7, 0.2, 0.1], [0.6, 0.3, 0.1], [0.2, 0.7, 0.1], [0.3, 0.6, 0.1]])
    m = evaluation_metrics(labels, probs, CLASSES)
    assert m["roc_auc"]["per_class"]["c"] is None
    assert m["roc_auc"]["macro"] == pytest.approx(1.0)
