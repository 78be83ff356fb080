"""The evaluation report: figures (PNG bytes) and one document rendered as Markdown and HTML.

Figures are rendered to bytes in memory, so nothing is written until every step of the
evaluation has succeeded (see ``evaluate.write_outputs``).
"""

from __future__ import annotations

import html
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from sklearn.metrics import precision_recall_curve, roc_curve

from neuropathology.evaluation.calibration import figure_png


def _pyplot() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def plot_confusion(cm: np.ndarray, class_names: Sequence[str]) -> bytes:
    """Counts and row-normalised (recall) confusion matrices, rows true, columns predicted."""
    plt = _pyplot()
    cm = np.asarray(cm, dtype=np.float64)
    rows = cm.sum(axis=1, keepdims=True)
    normalised = np.divide(cm, rows, out=np.zeros_like(cm), where=rows > 0)
    size = max(4.0, 0.9 * len(class_names) + 2)
    fig, axes = plt.subplots(1, 2, figsize=(2 * size + 1, size))
    for ax, matrix, title, fmt in ((axes[0], cm, "counts", "{:.0f}"),
                                   (axes[1], normalised, "normalised by true class", "{:.2f}")):
        image = ax.imshow(matrix, cmap="Blues", vmin=0)
        fig.colorbar(image, ax=ax, fraction=0.046)
        top = matrix.max() if matrix.size else 1
        for (i, j), value in np.ndenumerate(matrix):
            ax.text(j, i, fmt.format(value), ha="center", va="center", fontsize=8,
                    color="white" if value > 0.6 * top else "black")
        ticks = np.arange(len(class_names))
        ax.set_xticks(ticks, class_names, rotation=45, ha="right", fontsize=8)
        ax.set_yticks(ticks, class_names, fontsize=8)
        ax.set_xlabel("predicted")
        ax.set_ylabel("true")
        ax.set_title(title)
    fig.tight_layout()
    return figure_png(fig)


def plot_roc_pr(labels: np.ndarray, probs: np.ndarray, class_names: Sequence[str],
                kind: str) -> bytes:
    """One-vs-rest ROC (``kind="roc"``) or precision-recall (``"pr"``) curve of every class."""
    from sklearn.metrics import auc as area

    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(5.5, 5))
    for k, name in enumerate(class_names):
        positive = labels == k
        if not positive.any() or positive.all():
            continue
        if kind == "roc":
            fpr, tpr, _ = roc_curve(positive, probs[:, k])
            ax.plot(fpr, tpr, label=f"{name} (AUC {area(fpr, tpr):.3f})")
        else:
            precision, recall, _ = precision_recall_curve(positive, probs[:, k])
            ax.step(recall, precision, where="post", label=f"{name} (prevalence "
                    f"{positive.mean():.2f})")
    if kind == "roc":
        ax.plot([0, 1], [0, 1], "k--", lw=1)
        ax.set_xlabel("false positive rate (1 - specificity)")
        ax.set_ylabel("true positive rate (recall)")
        ax.set_title("ROC, one vs rest")
    else:
        ax.set_xlabel("recall")
        ax.set_ylabel("precision")
        ax.set_title("Precision-recall, one vs rest")
    ax.set_xlim(-0.01, 1.01)
    ax.set_ylim(-0.01, 1.01)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="lower right" if kind == "roc" else "lower left")
    fig.tight_layout()
    return figure_png(fig)


def plot_per_class(per_class: dict[str, dict[str, Any]]) -> bytes:
    """Grouped bars of precision, recall, specificity and F1 per class."""
    plt = _pyplot()
    names = list(per_class)
    keys = ("precision", "recall", "specificity", "f1")
    x = np.arange(len(names))
    width = 0.8 / len(keys)
    fig, ax = plt.subplots(figsize=(max(6.0, 1.4 * len(names) + 2), 4.2))
    for i, key in enumerate(keys):
        ax.bar(x + (i - (len(keys) - 1) / 2) * width, [per_class[n][key] for n in names], width,
               label=key)
    ax.set_xticks(x, names, rotation=30, ha="right")
    ax.set_ylim(0, 1.05)
    ax.set_title("Per-class metrics")
    ax.grid(axis="y", alpha=0.3)
    ax.legend(fontsize=8, ncol=4, loc="lower center")
    fig.tight_layout()
    return figure_png(fig)


def plot_risk_coverage(curves: dict[str, tuple[np.ndarray, np.ndarray, float]]) -> bytes:
    """Risk (error rate of the answered images) vs coverage; the legend gives each AURC."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(5.5, 4.2))
    for name, (coverage, risk, area) in curves.items():
        ax.plot(coverage, risk, label=f"{name} (AURC {area:.4f})")
    ax.set_xlabel("coverage (share of images answered, most confident first)")
    ax.set_ylabel("risk (error rate among answered)")
    ax.set_title("Risk-coverage (selective prediction)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    return figure_png(fig)


def plot_gallery(images: Sequence[np.ndarray], titles: Sequence[str]) -> bytes:
    """A grid of images (uint8 or [0, 255] floats) with one title each."""
    plt = _pyplot()
    n = len(images)
    cols = min(4, n)
    rows = -(-n // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(3.1 * cols, 3.3 * rows), squeeze=False)
    for ax in axes.ravel():
        ax.axis("off")
    for ax, image, title in zip(axes.ravel(), images, titles, strict=False):
        ax.imshow(np.clip(np.asarray(image), 0, 255).astype(np.uint8))
        ax.set_title(title, fontsize=8)
    fig.suptitle("Most confident mistakes")
    fig.tight_layout()
    return figure_png(fig)


# --------------------------------------------------------------------------- the document


@dataclass
class Report:
    """A sequence of blocks (headings, paragraphs, tables, images) with two renderers."""

    title: str
    blocks: list[tuple[str, Any]] = field(default_factory=list)

    def heading(self, text: str) -> None:
        self.blocks.append(("h2", text))

    def paragraph(self, text: str) -> None:
        self.blocks.append(("p", text))

    def table(self, headers: Sequence[str], rows: Sequence[Sequence[object]]) -> None:
        self.blocks.append(("table", (list(headers), [list(r) for r in rows])))

    def image(self, filename: str, alt: str) -> None:
        self.blocks.append(("img", (filename, alt)))

    def markdown(self) -> str:
        out = [f"# {self.title}", ""]
        for kind, value in self.blocks:
            if kind == "h2":
                out += [f"## {value}", ""]
            elif kind == "p":
                out += [value, ""]
            elif kind == "table":
                headers, rows = value
                out.append("| " + " | ".join(headers) + " |")
                out.append("|" + "---|" * len(headers))
                out += ["| " + " | ".join(_fmt(c) for c in row) + " |" for row in rows]
                out.append("")
            else:
                filename, alt = value
                out += [f"![{alt}]({filename})", ""]
        return "\n".join(out)

    def html(self) -> str:
        esc = html.escape
        out = ["<!DOCTYPE html>", "<html><head><meta charset='utf-8'>",
               f"<title>{esc(self.title)}</title>",
               "<style>body{font-family:sans-serif;max-width:1100px;margin:2em auto;}"
               "table{border-collapse:collapse;margin:1em 0;}td,th{border:1px solid #ccc;"
               "padding:3px 8px;text-align:right;}th{background:#eee;}"
               "img{max-width:100%;}</style></head><body>", f"<h1>{esc(self.title)}</h1>"]
        for kind, value in self.blocks:
            if kind == "h2":
                out.append(f"<h2>{esc(value)}</h2>")
            elif kind == "p":
                out.append(f"<p>{esc(value)}</p>")
            elif kind == "table":
                headers, rows = value
                out.append("<table><tr>" + "".join(f"<th>{esc(h)}</th>" for h in headers)
                           + "</tr>")
                out += ["<tr>" + "".join(f"<td>{esc(_fmt(c))}</td>" for c in row) + "</tr>"
                        for row in rows]
                out.append("</table>")
            else:
                filename, alt = value
                out.append(f"<p><img src='{esc(Path(filename).as_posix())}' alt='{esc(alt)}'>"
                           "</p>")
        out.append("</body></html>")
        return "\n".join(out) + "\n"


def _fmt(value: object) -> str:
    if value is None:
        return "n/a"
    if isinstance(value, (float, np.floating)):
        return "n/a" if not np.isfinite(value) else f"{value:.4f}"
    return str(value)
