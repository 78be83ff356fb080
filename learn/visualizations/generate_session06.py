"""Figures of Session 06 (evaluation and class imbalance) that the pages do not draw themselves.

Usage (from anywhere)::

    python learn/visualizations/generate_session06.py            # -> learn/visualizations/figures/
    python learn/visualizations/generate_session06.py --out DIR  # anywhere else (the tests do this)

Every figure is a pure function of fixed seeds, so reruns redraw the same pictures. The toy
problems are defined here exactly as in Parts A and B, whose code blocks recompute and assert
every number the text quotes; the figures only draw them:

* the *binormal* scorer: the tumour score (a logit) is N(-2, 2^2) on healthy scans and
  N(+2, 2^2) on scans with a tumour, 1000 of each (seed 0); sigma(score) is then the exact
  posterior at prevalence 1/2, and the ROC AUC is Phi(sqrt 2) = 0.9214;
* the 2-D imbalanced problem: 1900 points N((0, 0), I) against 100 points N((1.5, 2), I)
  (seed 1), fitted with logistic regression plain, with the project's balanced class weights
  and on the project's oversampled indices;
* the over-confident four-class "network": calibrated logits z ~ N(0, 3^2 I), a label drawn
  from softmax(z), and reported probabilities softmax(2.5 z) (seed 3, 2000 validation and
  2000 test images), recalibrated with the project's temperature scaling.

The metric functions are scikit-learn's and the project's (``neuropathology.evaluation``,
``neuropathology.data.data_loader.class_weights`` and ``oversample_indices``).
"""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from figure_output import run, save_png  # noqa: E402 - sibling module
from scipy.special import expit, logit, softmax  # noqa: E402
from scipy.special import ndtr as Phi  # noqa: E402
from scipy.stats import binom, norm  # noqa: E402
from sklearn.metrics import (  # noqa: E402
    auc,
    average_precision_score,
    f1_score,
    precision_recall_curve,
    roc_auc_score,
    roc_curve,
)

DPI = 90

MU, SIGMA, N_PER_CLASS = 2.0, 2.0, 1000  # binormal scores: N(-MU, SIGMA^2) vs N(+MU, SIGMA^2)
WALLS = (-2.0, 0.0, 2.0)  # thresholds on the score traced in the ROC figure
MU0, MU1 = np.array([0.0, 0.0]), np.array([1.5, 2.0])  # the 2-D imbalanced problem
N_MAJOR, N_MINOR = 1900, 100
CLASS_NAMES = ("glioma", "meningioma", "no_tumor", "pituitary")
#: the four-class confusion matrix of Part A (rows true, columns predicted)
CONFUSION = np.array([[40, 4, 5, 1],
                      [5, 18, 5, 2],
                      [4, 6, 388, 2],
                      [1, 2, 9, 8]])
OVERCONFIDENCE = 2.5  # the network reports softmax(2.5 z) where softmax(z) is calibrated
COST_PREVALENCE = 0.1
NEG_COLOR, POS_COLOR = "tab:blue", "tab:red"


def _save(fig: plt.Figure, out: Path, name: str) -> Path:
    return save_png(fig, out / f"session06_{name}.png", dpi=DPI)


def binormal_scores() -> tuple[np.ndarray, np.ndarray]:
    """(scores, labels): 1000 healthy scores N(-2, 4) first, then 1000 tumour scores N(2, 4)."""
    rng = np.random.default_rng(0)
    z_neg = rng.normal(-MU, SIGMA, N_PER_CLASS)
    z_pos = rng.normal(MU, SIGMA, N_PER_CLASS)
    return np.concatenate([z_neg, z_pos]), np.repeat([0, 1], N_PER_CLASS)


def _densities(ax: plt.Axes, grid: np.ndarray, wall: float | None = None,
               shade: bool = False) -> None:
    f_neg = norm.pdf(grid, -MU, SIGMA)
    f_pos = norm.pdf(grid, MU, SIGMA)
    ax.plot(grid, f_neg, color=NEG_COLOR, lw=2, label="healthy (y = 0)")
    ax.plot(grid, f_pos, color=POS_COLOR, lw=2, label="tumour (y = 1)")
    if shade and wall is not None:
        left, right = grid <= wall, grid >= wall
        ax.fill_between(grid[left], f_neg[left], color=NEG_COLOR, alpha=0.25, lw=0,
                        label="TN: healthy, called healthy")
        ax.fill_between(grid[right], f_pos[right], color=POS_COLOR, alpha=0.25, lw=0,
                        label="TP: tumour, called tumour")
        ax.fill_between(grid[right], f_neg[right], facecolor="none", edgecolor=NEG_COLOR,
                        hatch="///", lw=0, label="FP: healthy, called tumour")
        ax.fill_between(grid[left], f_pos[left], facecolor="none", edgecolor=POS_COLOR,
                        hatch="\\\\\\", lw=0, label="FN: tumour, called healthy")
    ax.set_xlabel(r"tumour score $s$ (a logit; the probability is $\sigma(s)$)")
    ax.set_ylabel("density")
    ax.set_ylim(0, 0.23)


def threshold(out: Path) -> Path:
    """The threshold as a wall between two overlapping score distributions: TN, FP, FN, TP."""
    grid = np.linspace(-9, 9, 721)
    fig, axes = plt.subplots(1, 2, figsize=(12, 4), sharey=True)
    for ax, wall in zip(axes, (0.0, 2.0), strict=True):
        _densities(ax, grid, wall, shade=True)
        ax.axvline(wall, color="k", lw=2)
        tpr, fpr = 1 - Phi((wall - MU) / SIGMA), 1 - Phi((wall + MU) / SIGMA)
        ax.set_title(f"wall at $s$ = {wall:g} ($p = \\sigma(s)$ = {expit(wall):.2f}): "
                     f"TPR = {tpr:.3f}, FPR = {fpr:.3f}", fontsize=10)
        ax.text(wall + 0.2, 0.215, "predict tumour  $\\rightarrow$", fontsize=9)
        ax.text(wall - 0.2, 0.215, "$\\leftarrow$  predict healthy", fontsize=9, ha="right")
    axes[0].legend(fontsize=8, loc="center left")
    fig.tight_layout()
    return _save(fig, out, "threshold")


def roc(out: Path) -> Path:
    """Moving the wall traces the ROC curve: three walls, three points."""
    scores, labels = binormal_scores()
    fpr, tpr, _ = roc_curve(labels, scores)
    grid = np.linspace(-9, 9, 721)
    fig, axes = plt.subplots(1, 2, figsize=(12, 4.3), gridspec_kw={"width_ratios": [1.3, 1]})
    _densities(axes[0], grid)
    colors = ("tab:green", "black", "tab:purple")
    t_grid = np.linspace(-12, 12, 601)
    axes[1].plot(1 - Phi((t_grid + MU) / SIGMA), 1 - Phi((t_grid - MU) / SIGMA), color="0.6",
                 lw=4, alpha=0.6, label=f"population: AUC = $\\Phi(\\sqrt{{2}})$ = "
                                       f"{Phi(np.sqrt(2)):.4f}")
    axes[1].step(fpr, tpr, where="post", color="tab:orange", lw=1.5,
                 label=f"1000 + 1000 test scans: AUC = {roc_auc_score(labels, scores):.4f}")
    for wall, color in zip(WALLS, colors, strict=True):
        axes[0].axvline(wall, color=color, lw=2, ls="--")
        x = np.mean(scores[labels == 0] >= wall)
        y = np.mean(scores[labels == 1] >= wall)
        axes[1].plot(x, y, "o", color=color, ms=9, label=f"wall at $s$ = {wall:g}: "
                                                          f"({x:.3f}, {y:.3f})")
    axes[0].legend(fontsize=8, loc="upper left")
    axes[0].set_title("three positions of the wall", fontsize=10)
    axes[1].plot([0, 1], [0, 1], ":", color="0.4", label="chance (AUC = 0.5)")
    axes[1].set(xlabel="false positive rate FPR = FP / (FP + TN)",
                ylabel="true positive rate TPR = TP / (TP + FN)", xlim=(0, 1), ylim=(0, 1.01))
    axes[1].set_title("ROC curve: (FPR, TPR) for every wall", fontsize=10)
    axes[1].legend(fontsize=7.5, loc="lower right")
    fig.tight_layout()
    return _save(fig, out, "roc")


def prevalence(out: Path) -> Path:
    """The same scorer at prevalence 50 % and 5 %: identical ROC, very different PR curves."""
    scores, labels = binormal_scores()
    weight = np.where(labels == 1, 1.0, 19.0)  # every healthy scan counted 19 times
    fig, axes = plt.subplots(1, 2, figsize=(12, 4.3))
    for w, name, style in ((None, "prevalence 50 %", "-"), (weight, "prevalence 5 %", "--")):
        fpr, tpr, _ = roc_curve(labels, scores, sample_weight=w)
        prec, rec, _ = precision_recall_curve(labels, scores, sample_weight=w)
        area = roc_auc_score(labels, scores, sample_weight=w)
        ap = average_precision_score(labels, scores, sample_weight=w)
        axes[0].plot(fpr, tpr, style, lw=2, label=f"{name}: AUC = {area:.4f}")
        axes[1].plot(rec, prec, style, lw=2, label=f"{name}: AP = {ap:.3f}")
        pi = 0.5 if w is None else 1 / 20
        axes[1].axhline(pi, ls=":", color="0.4")
        axes[1].text(0.02, pi + 0.015, f"chance: precision = {pi:g}", fontsize=8, color="0.3")
    axes[0].plot([0, 1], [0, 1], ":", color="0.4")
    axes[0].set(xlabel="FPR", ylabel="TPR (recall)", title="ROC: the two curves coincide")
    axes[1].set(xlabel="recall (TPR)", ylabel="precision (PPV)", ylim=(0, 1.02),
                title="precision-recall: precision collapses at 5 %")
    for ax in axes:
        ax.legend(fontsize=8, loc="lower right" if ax is axes[0] else "lower left")
        ax.title.set_fontsize(10)
    fig.tight_layout()
    return _save(fig, out, "prevalence")


def confusion(out: Path) -> Path:
    """The four-class confusion matrix of Part A: counts and row-normalised (recall)."""
    y_true = np.repeat(np.arange(4), CONFUSION.sum(axis=1))
    y_pred = np.concatenate([np.repeat(np.arange(4), row) for row in CONFUSION])
    recall = CONFUSION / CONFUSION.sum(axis=1, keepdims=True)
    fig, axes = plt.subplots(1, 2, figsize=(11.5, 4.6))
    for ax, values, fmt, title in ((axes[0], CONFUSION, "{:d}", "counts $M_{jk}$ (colour: "
                                                                "share of the row)"),
                                   (axes[1], recall, "{:.2f}", "rows normalised: recall on "
                                                               "the diagonal")):
        ax.imshow(recall, cmap="Blues", vmin=0, vmax=1)
        for (i, j), v in np.ndenumerate(values):
            ax.text(j, i, fmt.format(v), ha="center", va="center", fontsize=10,
                    color="white" if recall[i, j] > 0.5 else "black")
        ax.set_xticks(range(4), CLASS_NAMES, fontsize=8)
        ax.set_yticks(range(4), CLASS_NAMES, fontsize=8)
        ax.set_xlabel("predicted class $k$")
        ax.set_ylabel("true class $j$")
        ax.set_title(title, fontsize=10)
    acc = np.trace(CONFUSION) / CONFUSION.sum()
    fig.suptitle(f"accuracy = micro F1 = {acc:.3f},  weighted F1 = "
                 f"{f1_score(y_true, y_pred, average='weighted'):.3f},  macro F1 = "
                 f"{f1_score(y_true, y_pred, average='macro'):.3f}", fontsize=10)
    fig.tight_layout()
    return _save(fig, out, "confusion")


def imbalanced_problem() -> tuple[np.ndarray, np.ndarray]:
    """1900 majority points N((0,0), I), then 100 minority points N((1.5, 2), I) (seed 1)."""
    rng = np.random.default_rng(1)
    x = np.concatenate([rng.standard_normal((N_MAJOR, 2)) + MU0,
                        rng.standard_normal((N_MINOR, 2)) + MU1])
    return x, np.repeat([0, 1], [N_MAJOR, N_MINOR])


def imbalance(out: Path) -> Path:
    """The boundary drifts into the minority class; weights and oversampling move it back."""
    from sklearn.linear_model import LogisticRegression

    from neuropathology.data.data_loader import class_weights, oversample_indices

    x, y = imbalanced_problem()
    fits = {
        "plain logistic regression": LogisticRegression(C=np.inf).fit(x, y),
        "balanced class weights": LogisticRegression(
            C=np.inf, class_weight=class_weights(y, 2)).fit(x, y),
    }
    idx = oversample_indices(y, seed=0)
    fits["oversampled minority"] = LogisticRegression(C=np.inf).fit(x[idx], y[idx])
    fig, axes = plt.subplots(1, 2, figsize=(12.5, 5), gridspec_kw={"width_ratios": [1.15, 1]})
    ax = axes[0]
    ax.scatter(*x[y == 0].T, s=6, color=NEG_COLOR, alpha=0.35, label=f"majority ({N_MAJOR})")
    ax.scatter(*x[y == 1].T, s=14, color=POS_COLOR, alpha=0.9, label=f"minority ({N_MINOR})")
    grid = np.linspace(-4, 6, 2)
    styles = {"plain logistic regression": ("k", "-"), "balanced class weights": ("tab:green", "-"),
              "oversampled minority": ("tab:orange", "--")}
    u = (MU1 - MU0) / np.linalg.norm(MU1 - MU0)
    mid = (MU0 + MU1) / 2
    offsets = {}
    for name, clf in fits.items():
        w, b = clf.coef_[0], clf.intercept_[0]
        ax.plot(grid, -(b + w[0] * grid) / w[1], color=styles[name][0], ls=styles[name][1],
                lw=2, label=name)
        offsets[name] = -(w @ mid + b) / (w @ u)
    d = MU1 - MU0  # the equal-prior Bayes boundary: the perpendicular bisector of the means
    ax.plot(grid, (d @ mid - d[0] * grid) / d[1], ":", color="0.3", lw=2,
            label="equal-prior boundary (bisector)")
    ax.plot(*np.array([MU0, MU1]).T, "k^", ms=9)
    ax.set(xlim=(-4, 5.5), ylim=(-4, 5.5), aspect="equal", xlabel="$x_1$", ylabel="$x_2$")
    ax.legend(fontsize=7.5, loc="upper left")
    ax.set_title("decision boundaries", fontsize=10)
    ax = axes[1]
    proj = (x - mid) @ u  # signed position along the line through the two means
    bins = np.linspace(-5, 4.5, 60)
    ax.hist(proj[y == 0], bins=bins, color=NEG_COLOR, alpha=0.5, label="majority")
    ax.hist(proj[y == 1], bins=bins, color=POS_COLOR, alpha=0.9, label="minority")
    for name, s in offsets.items():
        ax.axvline(s, color=styles[name][0], ls=styles[name][1], lw=2,
                   label=f"{name}: {s:+.2f}")
    ax.axvline(0, color="0.3", ls=":", lw=2, label="midpoint: 0")
    ax.set(xlabel="position along the line from the majority mean to the minority mean",
           ylabel="count")
    ax.set_title("where each boundary crosses that line", fontsize=10)
    ax.legend(fontsize=7.5, loc="upper left")
    fig.tight_layout()
    return _save(fig, out, "imbalance")


def overconfident_network() -> dict[str, np.ndarray]:
    """Calibrated logits z ~ N(0, 9 I_4), y ~ softmax(z); the network says softmax(2.5 z)."""
    rng = np.random.default_rng(3)
    out = {}
    for split in ("val", "test"):
        z = rng.normal(0.0, 3.0, (2000, 4))
        u = rng.random(2000)
        out[f"y_{split}"] = np.minimum((u[:, None] > softmax(z, axis=1).cumsum(axis=1))
                                       .sum(axis=1), 3)
        out[f"p_{split}"] = softmax(OVERCONFIDENCE * z, axis=1)
    return out


def reliability(out: Path) -> Path:
    """Reliability diagrams before and after temperature scaling; one image's probabilities."""
    from neuropathology.evaluation.calibration import (
        apply_temperature,
        fit_temperature,
        probs_to_logits,
    )
    from neuropathology.evaluation.metrics import expected_calibration_error, reliability_bins

    net = overconfident_network()
    temperature = fit_temperature(probs_to_logits(net["p_val"]), net["y_val"])
    calibrated = apply_temperature(net["p_test"], temperature)
    fig, axes = plt.subplots(1, 3, figsize=(14, 4.3))
    centres = (np.arange(15) + 0.5) / 15
    for ax, (name, probs) in zip(axes[:2], (("network, T = 1", net["p_test"]),
                                            (f"after temperature scaling, T = {temperature:.2f}",
                                             calibrated)), strict=True):
        bins = reliability_bins(net["y_test"], probs, n_bins=15)
        filled = bins["count"] > 0
        ax.bar(centres[filled], bins["accuracy"][filled], width=1 / 15, color="tab:blue",
               edgecolor="k", alpha=0.8, label="accuracy in the bin")
        ax.bar(centres[filled], bins["confidence"][filled] - bins["accuracy"][filled],
               bottom=bins["accuracy"][filled], width=1 / 15, color="tab:red", alpha=0.35,
               label="gap to the mean confidence")
        ax.plot([0, 1], [0, 1], "k--", lw=1, label="perfect calibration")
        ece = expected_calibration_error(net["y_test"], probs, n_bins=15)
        acc = np.mean(probs.argmax(axis=1) == net["y_test"])
        ax.set_title(f"{name}\naccuracy {acc:.4f}, mean confidence "
                     f"{probs.max(axis=1).mean():.3f}, ECE {ece:.3f}", fontsize=9)
        ax.set(xlim=(0, 1), ylim=(0, 1), xlabel="confidence (largest probability)",
               ylabel="accuracy")
        ax.legend(fontsize=7.5, loc="upper left")
    confidence = net["p_test"].max(axis=1)
    i = int(np.argmax((confidence > 0.8) & (confidence < 0.9)))  # a confident test image
    temps = (1.0, temperature, 6.0)
    width = 0.26
    for j, t in enumerate(temps):
        p = apply_temperature(net["p_test"][i:i + 1], t)[0]
        axes[2].bar(np.arange(4) + (j - 1) * width, p, width=width,
                    label=f"T = {t:.2f}" + (" (fitted)" if t == temperature else ""))
    axes[2].set_xticks(range(4), CLASS_NAMES, fontsize=8)
    axes[2].set(ylim=(0, 1), ylabel="probability")
    axes[2].set_title("one test image: a higher T flattens,\nthe order of the classes stays",
                      fontsize=9)
    axes[2].legend(fontsize=8)
    fig.tight_layout()
    return _save(fig, out, "reliability")


def costs(out: Path) -> Path:
    """Expected cost per scan against the threshold on a calibrated probability (prevalence 0.1)."""
    pi = COST_PREVALENCE
    t = np.linspace(0.001, 0.999, 999)
    wall = logit(t) - logit(pi)  # p = sigma(s + logit pi) >= t  <=>  s >= logit t - logit pi
    tpr, fpr = 1 - Phi((wall - MU) / SIGMA), 1 - Phi((wall + MU) / SIGMA)
    fig, axes = plt.subplots(1, 2, figsize=(12, 4.3))
    s_grid = np.linspace(-12, 12, 601)
    axes[1].plot(1 - Phi((s_grid + MU) / SIGMA), 1 - Phi((s_grid - MU) / SIGMA), color="0.5")
    for c_fn, color in ((1, "tab:blue"), (5, "tab:orange"), (20, "tab:red")):
        cost = pi * c_fn * (1 - tpr) + (1 - pi) * fpr
        k = int(np.argmin(cost))
        axes[0].plot(t, cost, color=color, lw=2, label=f"$c_{{FN}}/c_{{FP}}$ = {c_fn}: "
                                                      f"best t = {t[k]:.3f} "
                                                      f"(1/{1 + c_fn})")
        axes[0].plot(t[k], cost[k], "o", color=color, ms=8)
        axes[1].plot(fpr[k], tpr[k], "o", color=color, ms=9,
                     label=f"$c_{{FN}}/c_{{FP}}$ = {c_fn}: TPR {tpr[k]:.2f}, FPR {fpr[k]:.2f}")
        slope = (1 - pi) / (pi * c_fn)  # iso-cost lines in ROC space have this slope
        xs = np.array([fpr[k] - 0.3, fpr[k] + 0.3])
        axes[1].plot(xs, tpr[k] + slope * (xs - fpr[k]), ":", color=color)
    axes[0].set(xlabel="threshold $t$ on the calibrated probability of a tumour",
                ylabel="expected cost per scan (units of $c_{FP}$)", ylim=(0, 0.6))
    axes[0].set_title(f"prevalence {pi:g}: the best threshold is "
                      "$c_{FP} / (c_{FP} + c_{FN})$", fontsize=10)
    axes[0].legend(fontsize=8)
    axes[1].set(xlabel="FPR", ylabel="TPR", xlim=(0, 1), ylim=(0, 1.01))
    axes[1].set_title("the same operating points on the ROC curve\n(dotted: lines of equal cost)",
                      fontsize=10)
    axes[1].legend(fontsize=8, loc="lower right")
    fig.tight_layout()
    return _save(fig, out, "costs")


def bootstrap(out: Path) -> Path:
    """Bootstrap distribution of accuracy for 85 of 100 and 850 of 1000 correct answers."""
    from neuropathology.evaluation.statistics import accuracy_metric, bootstrap_ci

    fig, axes = plt.subplots(1, 2, figsize=(12, 3.8), sharex=True)
    for ax, n in zip(axes, (100, 1000), strict=True):
        labels = np.zeros(n, dtype=np.int64)
        correct = np.arange(n) < int(0.85 * n)
        probs = np.where(correct[:, None], [0.9, 0.1], [0.1, 0.9])
        rng = np.random.default_rng(0)  # the resamples bootstrap_ci(seed=0) draws
        idx = rng.integers(0, n, size=(2000, n))
        values = correct[idx].mean(axis=1)
        ci = bootstrap_ci(labels, probs, {"accuracy": accuracy_metric}, n_boot=2000,
                          seed=0)["accuracy"]
        edges = np.arange(0.695, 0.99, 0.01) if n == 100 else np.arange(0.6995, 0.99, 0.004)
        ax.hist(values, bins=edges,
                density=True, color="tab:blue", alpha=0.6, label="bootstrap accuracies")
        k = np.arange(n + 1)
        pmf = binom.pmf(k, n, 0.85) * n  # density on the accuracy scale
        ax.plot(k / n, pmf, color="k", lw=1.5,
                label="sampling distribution if the true accuracy is 0.85")
        for v in (ci["low"], ci["high"]):
            ax.axvline(v, color="tab:red", lw=2)
        ax.set_title(f"n = {n} test images, {int(0.85 * n)} correct: 95 % interval "
                     f"[{ci['low']:.3f}, {ci['high']:.3f}], width {ci['high'] - ci['low']:.3f}",
                     fontsize=9)
        ax.set(xlabel="accuracy", xlim=(0.7, 0.98), ylim=(0, 1.4 * pmf.max()))
        ax.legend(fontsize=7.5, loc="upper left")
    fig.tight_layout()
    return _save(fig, out, "bootstrap")


def f1_contours(out: Path) -> Path:
    """Arithmetic mean against F1 (harmonic mean) over the (recall, precision) square."""
    g = np.linspace(0.001, 1, 300)
    r, p = np.meshgrid(g, g)
    fig, axes = plt.subplots(1, 3, figsize=(13.5, 4.3))
    levels = np.arange(0.1, 1.0, 0.1)
    for ax, values, title in ((axes[0], (p + r) / 2, "arithmetic mean $(P + R)/2$"),
                              (axes[1], 2 * p * r / (p + r), "F1 = harmonic mean"),
                              (axes[2], 5 * p * r / (4 * p + r), r"$F_2$ ($\beta = 2$)")):
        cs = ax.contour(r, p, values, levels=levels, cmap="viridis")
        ax.clabel(cs, fontsize=7, fmt="%.1f")
        ax.plot(1.0, 0.05, "r*", ms=12)
        ax.set(xlabel="recall $R$", ylabel="precision $P$", aspect="equal", title=title)
        ax.title.set_fontsize(10)
    axes[0].annotate("'everything is a tumour'\nat prevalence 5 %: 0.525", (1.0, 0.05),
                     (0.28, 0.2), fontsize=8, arrowprops={"arrowstyle": "->"})
    axes[1].annotate("same classifier: 0.095", (1.0, 0.05), (0.3, 0.2), fontsize=8,
                     arrowprops={"arrowstyle": "->"})
    axes[2].plot([0, 1], [0, 0.5], "k:", lw=1)
    axes[2].text(0.5, 0.16, "R = 2P: equal\nmarginal value", fontsize=8, rotation=27)
    fig.tight_layout()
    return _save(fig, out, "f1_contours")


def ap_steps() -> tuple[np.ndarray, np.ndarray]:
    """The ranked list of Part B's worked example (scores with one tie)."""
    scores = np.array([0.95, 0.9, 0.8, 0.8, 0.7, 0.6, 0.5, 0.4, 0.3, 0.2])
    labels = np.array([1, 0, 1, 0, 1, 0, 0, 1, 0, 0])
    return scores, labels


def average_precision(out: Path) -> Path:
    """Average precision as a sum of rectangles, against the trapezoids of linear interpolation."""
    scores, labels = ap_steps()
    prec, rec, _ = precision_recall_curve(labels, scores)
    ap = average_precision_score(labels, scores)
    fig, ax = plt.subplots(figsize=(6.5, 4.4))
    r, p = rec[::-1], prec[::-1]  # increasing recall: thresholds from high to low
    for k in range(1, len(r)):
        if r[k] > r[k - 1]:
            ax.add_patch(plt.Rectangle((r[k - 1], 0), r[k] - r[k - 1], p[k], color="tab:blue",
                                       alpha=0.3))
    ax.plot(r, p, "o-", color="tab:orange",
            label=f"linear interpolation: area {auc(rec, prec):.3f}")
    ax.step(r, p, where="pre", color="tab:blue", lw=2,
            label=f"step function: AP = {ap:.3f}")
    ax.axhline(labels.mean(), ls=":", color="0.4", label=f"prevalence {labels.mean():g}")
    ax.set(xlim=(0, 1.02), ylim=(0, 1.05), xlabel="recall", ylabel="precision")
    ax.set_title("AP = sum over thresholds of (R_n - R_(n-1)) P_n", fontsize=10)
    ax.legend(fontsize=8, loc="lower left")
    fig.tight_layout()
    return _save(fig, out, "average_precision")


FIGURES = (threshold, roc, prevalence, confusion, imbalance, reliability, costs, bootstrap,
           f1_contours, average_precision)


def main(argv: list[str] | None = None) -> None:
    run(FIGURES, __doc__, argv)


if __name__ == "__main__":
    main()
