"""Temperature scaling and reliability diagrams.

A classifier is *calibrated* when, among the images it labels with confidence 0.8, 80 % are
right. Networks trained with cross-entropy are usually over-confident. Temperature scaling
(Guo et al., 2017) fixes this with one scalar T > 0 fitted on held-out data:

    p(T) = softmax(z / T),      T* = argmin_T  NLL(T) = -(1/N) sum_i log softmax(z_i / T)_{y_i}

T > 1 softens the probabilities, T < 1 sharpens them. Dividing every logit of a row by the same
T > 0 never changes which one is largest, so accuracy (and the confusion matrix) is unchanged.

T is fitted on the **validation** split, never on the test split (that would be fitting on the
data the report grades). It is minimised over log T (so T stays positive) with SciPy's bounded
scalar minimiser, and saved in the run as ``calibration.json``; the Predictor applies it.

Our models end in a softmax, so they return probabilities, not logits. We use
z = log p: since p = softmax(z_true) = exp(z_true) / sum_j exp(z_true_j),
log p = z_true - logsumexp(z_true), i.e. the true logits minus one constant per row, and a
per-row constant cancels in softmax(z / T). So softmax(log(p) / T) is exactly
softmax(z_true / T) (up to the clipping of p at 1e-12 against log 0).
"""

from __future__ import annotations

import io
import json
import os
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from scipy.optimize import minimize_scalar
from scipy.special import log_softmax, softmax

from neuropathology.evaluation.metrics import reliability_bins
from neuropathology.utils.helpers import atomic_write_json

CALIBRATION_FILE = "calibration.json"
#: Search interval for T (on log T): 0.05 to 20 covers every realistic network.
T_BOUNDS = (0.05, 20.0)
_EPS = 1e-12


class CalibrationError(ValueError):
    """A calibration file or fit cannot be used; the message names the file and the fix."""


def probs_to_logits(probs: np.ndarray) -> np.ndarray:
    """log p, clipped at 1e-12: the logits up to a per-row constant (module docstring)."""
    return np.log(np.clip(np.asarray(probs, dtype=np.float64), _EPS, 1.0))


def apply_temperature(probs: np.ndarray, temperature: float) -> np.ndarray:
    """softmax(log(p) / T): probabilities recalibrated with temperature T (same argmax)."""
    if not temperature > 0:
        raise ValueError(f"temperature must be > 0, got {temperature}")
    return softmax(probs_to_logits(probs) / float(temperature), axis=1)


def nll(logits: np.ndarray, labels: np.ndarray, temperature: float = 1.0) -> float:
    """NLL(T) = -(1/N) sum_i log softmax(z_i / T)_{y_i}, computed stably with log-softmax."""
    logp = log_softmax(np.asarray(logits, dtype=np.float64) / temperature, axis=1)
    return float(-np.mean(logp[np.arange(len(labels)), np.asarray(labels, dtype=np.int64)]))


def fit_temperature(logits: np.ndarray, labels: Sequence[int] | np.ndarray, *,
                    bounds: tuple[float, float] = T_BOUNDS) -> float:
    """T* = argmin_T NLL(softmax(z / T)) by bounded Brent search over log T.

    NLL(T) is smooth and, for logits with any spread, unimodal in log T, so a 1-D bounded
    search finds the minimum to ~1e-5 in log T. Pass logits (or log-probabilities, see
    :func:`probs_to_logits`) of the **validation** split.
    """
    logits = np.asarray(logits, dtype=np.float64)
    labels = np.asarray(labels, dtype=np.int64)
    if logits.ndim != 2 or len(logits) != len(labels) or len(labels) == 0:
        raise ValueError(f"need logits (N, C) and N labels with N > 0, got {logits.shape} and "
                         f"{labels.shape}")
    if not np.all(np.isfinite(logits)):
        raise ValueError("logits contain NaN or inf; the model's predictions are not finite")
    result = minimize_scalar(lambda log_t: nll(logits, labels, float(np.exp(log_t))),
                             bounds=(np.log(bounds[0]), np.log(bounds[1])), method="bounded",
                             options={"xatol": 1e-5})
    return float(np.exp(result.x))


def save_calibration(run_dir: str | os.PathLike[str], temperature: float,
                     details: dict[str, Any] | None = None) -> Path:
    """Write ``<run>/calibration.json`` atomically: {"temperature": T, "method": ..., ...}."""
    document = {"method": "temperature_scaling", "temperature": float(temperature),
                "fitted_on": "val", "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
                **(details or {})}
    return atomic_write_json(Path(run_dir) / CALIBRATION_FILE, document)


def load_temperature(run_dir: str | os.PathLike[str]) -> float | None:
    """T from ``<run>/calibration.json``, or None when the run has not been calibrated."""
    path = Path(run_dir) / CALIBRATION_FILE
    if not path.is_file():
        return None
    try:
        temperature = float(json.loads(path.read_text(encoding="utf-8"))["temperature"])
    except (ValueError, KeyError, TypeError) as exc:
        raise CalibrationError(f"{path} is not a valid calibration file ({exc}); delete it and "
                               "rerun `neuropathology evaluate --run "
                               f"{Path(run_dir)}` to refit it") from exc
    if not (np.isfinite(temperature) and temperature > 0):
        raise CalibrationError(f"{path}: temperature must be a finite number > 0, got "
                               f"{temperature}; delete it and rerun `neuropathology evaluate`")
    return temperature


def plot_reliability(y_true: np.ndarray, panels: dict[str, np.ndarray], *, n_bins: int = 15,
                     title: str = "Reliability diagram") -> bytes:
    """Reliability diagrams (accuracy vs confidence per equal-width bin) side by side, as PNG.

    ``panels`` maps a title (e.g. "before (T = 1)") to probabilities (N, C). Bars show the
    accuracy of each bin, the diagonal is perfect calibration, the red gap is |acc - conf|.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from neuropathology.evaluation.metrics import expected_calibration_error

    fig, axes = plt.subplots(1, len(panels), figsize=(4.6 * len(panels), 4.4), squeeze=False)
    centres = (np.arange(n_bins) + 0.5) / n_bins
    for ax, (name, probs) in zip(axes[0], panels.items(), strict=True):
        bins = reliability_bins(y_true, probs, n_bins=n_bins)
        filled = bins["count"] > 0
        ax.bar(centres[filled], bins["accuracy"][filled], width=1 / n_bins, edgecolor="black",
               color="tab:blue", alpha=0.8, label="accuracy")
        ax.bar(centres[filled], bins["confidence"][filled] - bins["accuracy"][filled],
               bottom=bins["accuracy"][filled], width=1 / n_bins, color="tab:red", alpha=0.35,
               label="gap")
        ax.plot([0, 1], [0, 1], "k--", lw=1, label="perfect calibration")
        ece = expected_calibration_error(y_true, probs, n_bins=n_bins)
        ax.set_title(f"{name}\nECE = {ece:.4f}")
        ax.set_xlabel("confidence (max probability)")
        ax.set_ylabel("accuracy")
        ax.set_xlim(0, 1)
        ax.set_ylim(0, 1)
        ax.legend(loc="upper left", fontsize=8)
    fig.suptitle(title)
    fig.tight_layout()
    return figure_png(fig)


def figure_png(fig: Any) -> bytes:
    """Render a matplotlib figure to PNG bytes and close it (nothing is written to disk)."""
    import matplotlib.pyplot as plt

    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=100)
    plt.close(fig)
    return buffer.getvalue()
