"""Is an explanation right? Localisation against a mask, and faithfulness to the model.

Localisation (the synthetic dataset ships tumour masks; maps are in [0, 1]):

* **Pointing game** (Zhang et al. 2016): a hit when the map's maximum lies inside the mask
  (optionally dilated by ``tolerance`` pixels).
* **IoU / Dice** of the thresholded map T = {map >= t} with the mask M:
  IoU = |T n M| / |T u M|, Dice = 2 |T n M| / (|T| + |M|).
* **Energy inside the mask** (the "energy-based pointing game" of Score-CAM):
  sum_{M} map / sum map - the fraction of the explanation's mass on the lesion.

Faithfulness (does the map rank pixels by how much the model *uses* them?):

* **Deletion / insertion** (Petsiuk et al. 2018): remove the most relevant pixels first
  (replace them by a baseline) and follow the class probability; a faithful map makes it
  fall fast (low deletion AUC). Insertion starts from the baseline and restores the most
  relevant pixels first (high AUC is good). AUC by the trapezoidal rule over the fraction.
* **ROAD** (Rong et al. 2022): removal with *noisy linear imputation* instead of a constant,
  so the removed region carries no shape information (a constant-filled hole is itself a
  feature the model can react to): removed pixels are interpolated from their neighbours
  (a sparse linear system, :func:`road_impute`) plus small noise. MoRF (most relevant first)
  should hurt more than LeRF (least relevant first); the gap LeRF - MoRF is reported.
* **Model-parameter randomisation** (Adebayo et al. 2018): recompute the maps with the
  weights re-initialised; an explanation that barely changes (high Spearman rank
  correlation) does not depend on what the model learned and is **flagged**.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import keras
import numpy as np
import tensorflow as tf
from scipy import ndimage, stats

from neuropathology.explain.graph import ExplainError, logit_model

__all__ = ["DeletionInsertion", "SanityResult", "deletion_insertion", "energy_inside",
           "iou_dice", "localisation", "pointing_game", "randomization_check", "road",
           "road_impute"]

#: Spearman correlation above which an explanation counts as weight-independent.
SANITY_THRESHOLD = 0.5


def _check_pair(heatmap: np.ndarray, mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    heatmap = np.asarray(heatmap, np.float64)
    mask = np.asarray(mask).astype(bool)
    if heatmap.ndim != 2 or heatmap.shape != mask.shape:
        raise ExplainError(f"map {heatmap.shape} and mask {mask.shape} must be 2-D and of the "
                           "same shape; resize the map with overlay.map_to_image first")
    return heatmap, mask


def pointing_game(heatmap: np.ndarray, mask: np.ndarray, *, tolerance: float = 0.0) -> bool:
    """True when the map's maximum lies in ``mask`` or within ``tolerance`` pixels (Euclidean)."""
    heatmap, mask = _check_pair(heatmap, mask)
    peak = np.unravel_index(int(np.argmax(heatmap)), heatmap.shape)
    if mask[peak] or tolerance <= 0 or not mask.any():
        return bool(mask[peak])
    return bool(ndimage.distance_transform_edt(~mask)[peak] <= tolerance)


def iou_dice(heatmap: np.ndarray, mask: np.ndarray, *, threshold: float = 0.5
             ) -> tuple[float, float]:
    """(IoU, Dice) of {map >= threshold} with the mask; (0, 0) when both are empty."""
    heatmap, mask = _check_pair(heatmap, mask)
    region = heatmap >= threshold
    inter = float(np.logical_and(region, mask).sum())
    union = float(np.logical_or(region, mask).sum())
    total = float(region.sum() + mask.sum())
    return (inter / union if union else 0.0), (2.0 * inter / total if total else 0.0)


def energy_inside(heatmap: np.ndarray, mask: np.ndarray) -> float:
    """sum_{mask} map / sum map (negatives clipped); 0 for an all-zero map."""
    heatmap, mask = _check_pair(heatmap, mask)
    heatmap = np.maximum(heatmap, 0.0)
    total = heatmap.sum()
    return float(heatmap[mask].sum() / total) if total > 0 else 0.0


def localisation(heatmap: np.ndarray, mask: np.ndarray, *, threshold: float = 0.5,
                 tolerance: float = 0.0) -> dict[str, float]:
    """All localisation scores of one map: pointing, iou, dice, energy (a JSON-able dict)."""
    iou, dice = iou_dice(heatmap, mask, threshold=threshold)
    return {"pointing": float(pointing_game(heatmap, mask, tolerance=tolerance)),
            "iou": iou, "dice": dice, "energy": energy_inside(heatmap, mask)}


# ----------------------------------------------------------------------------- faithfulness


def _probability_fn(model: keras.Model, batch_size: int) -> Callable[[np.ndarray, int],
                                                                      np.ndarray]:
    lmodel = logit_model(model)

    def probs(images: np.ndarray, cls: int) -> np.ndarray:
        out = [tf.nn.softmax(lmodel(tf.constant(images[i:i + batch_size]), training=False),
                             axis=-1)[:, cls].numpy() for i in range(0, len(images), batch_size)]
        return np.concatenate(out)

    return probs


def _order(heatmap: np.ndarray) -> np.ndarray:
    """Pixel indices from most to least relevant; ties broken by raster order (deterministic)."""
    return np.argsort(-np.asarray(heatmap, np.float64).ravel(), kind="stable")


def _trapezoid(y: np.ndarray, x: np.ndarray) -> float:
    """Trapezoidal rule sum_i (x_{i+1} - x_i) (y_i + y_{i+1}) / 2 (NumPy 1.x and 2.x alike)."""
    y, x = np.asarray(y, np.float64), np.asarray(x, np.float64)
    return float(np.sum(np.diff(x) * (y[1:] + y[:-1]) / 2.0))


@dataclass(frozen=True)
class DeletionInsertion:
    """Deletion and insertion curves (class probability at each removed/inserted fraction)."""

    fractions: np.ndarray
    deletion: np.ndarray
    insertion: np.ndarray

    @property
    def deletion_auc(self) -> float:
        """Area under the deletion curve (lower is more faithful)."""
        return _trapezoid(self.deletion, self.fractions)

    @property
    def insertion_auc(self) -> float:
        """Area under the insertion curve (higher is more faithful)."""
        return _trapezoid(self.insertion, self.fractions)


def deletion_insertion(model: keras.Model, image: np.ndarray, heatmap: np.ndarray, cls: int, *,
                       steps: int = 20, baseline: np.ndarray | float = 0.0,
                       batch_size: int = 32) -> DeletionInsertion:
    """Deletion/insertion curves for one preprocessed image (S, S, 3) and its (S, S) map.

    At fraction f = k / steps the top f of the pixels (by the map) are set to ``baseline``
    (deletion) or, starting from the baseline, restored from the image (insertion).
    """
    image = np.asarray(image, np.float32)
    if image.ndim != 3 or np.shape(heatmap) != image.shape[:2]:
        raise ExplainError(f"need one image (S, S, 3) and its map (S, S); got {image.shape} and "
                           f"{np.shape(heatmap)}")
    base = np.broadcast_to(np.asarray(baseline, np.float32), image.shape)
    order = _order(heatmap)
    n = order.size
    fractions = np.linspace(0.0, 1.0, steps + 1)
    deleted, inserted = [], []
    flat_img, flat_base = image.reshape(n, 3), base.reshape(n, 3)
    for f in fractions:
        k = int(round(f * n))
        d = flat_img.copy()
        d[order[:k]] = flat_base[order[:k]]
        ins = flat_base.copy()
        ins[order[:k]] = flat_img[order[:k]]
        deleted.append(d.reshape(image.shape))
        inserted.append(ins.reshape(image.shape))
    probs = _probability_fn(model, batch_size)
    both = probs(np.stack(deleted + inserted), int(cls))
    return DeletionInsertion(fractions, both[:len(fractions)], both[len(fractions):])


def road_impute(image: np.ndarray, removed: np.ndarray, *, noise: float = 0.01,
                seed: int = 0) -> np.ndarray:
    """ROAD's noisy linear imputation of the ``removed`` pixels of an (H, W, C) image.

    Each removed pixel is set to the weighted mean of its 8 neighbours (weight 1/6 for the
    4 direct, 1/12 for the 4 diagonal ones), removed neighbours included: one sparse linear
    system L x_removed = b whose right side collects the retained neighbours. Its solution is
    the discrete harmonic interpolation, which reproduces linear ramps exactly and carries no
    trace of the removed region's shape. Gaussian noise of ``noise`` x the image's value
    range is then added to the imputed pixels (seeded).
    """
    from scipy.sparse import coo_matrix
    from scipy.sparse.linalg import factorized

    image = np.asarray(image, np.float32)
    removed = np.asarray(removed, bool)
    if removed.shape != image.shape[:2]:
        raise ExplainError(f"removal mask {removed.shape} does not match image {image.shape}")
    out = image.copy()
    if not removed.any():
        return out
    if removed.all():
        out[:] = image.mean(axis=(0, 1))
        return out
    h, w = removed.shape
    index = -np.ones((h, w), np.int64)
    rows_r, cols_r = np.nonzero(removed)
    n = len(rows_r)
    index[rows_r, cols_r] = np.arange(n)
    diag = np.zeros(n)
    a_rows, a_cols, a_vals = [], [], []
    rhs = np.zeros((n, image.shape[-1]))
    for dr, dc, weight in ((-1, 0, 1 / 6), (1, 0, 1 / 6), (0, -1, 1 / 6), (0, 1, 1 / 6),
                           (-1, -1, 1 / 12), (-1, 1, 1 / 12), (1, -1, 1 / 12), (1, 1, 1 / 12)):
        rr, cc = rows_r + dr, cols_r + dc
        inside = (rr >= 0) & (rr < h) & (cc >= 0) & (cc < w)
        src = np.nonzero(inside)[0]
        rr, cc = rr[inside], cc[inside]
        diag[src] += weight
        neighbour = index[rr, cc]
        is_unknown = neighbour >= 0
        a_rows.append(src[is_unknown])
        a_cols.append(neighbour[is_unknown])
        a_vals.append(np.full(int(is_unknown.sum()), -weight))
        known = ~is_unknown
        np.add.at(rhs, src[known], weight * image[rr[known], cc[known]].astype(np.float64))
    a_rows.append(np.arange(n))
    a_cols.append(np.arange(n))
    a_vals.append(diag)
    matrix = coo_matrix((np.concatenate(a_vals), (np.concatenate(a_rows),
                                                   np.concatenate(a_cols))), shape=(n, n))
    solve = factorized(matrix.tocsc())
    values = np.stack([solve(rhs[:, ch]) for ch in range(rhs.shape[1])], axis=-1)
    rng = np.random.default_rng(seed)
    spread = float(image.max() - image.min()) or 1.0
    values += rng.normal(0.0, noise * spread, size=values.shape)
    out[rows_r, cols_r] = values.astype(np.float32)
    return out


def road(model: keras.Model, image: np.ndarray, heatmap: np.ndarray, cls: int, *,
         fractions: Sequence[float] = (0.1, 0.2, 0.3, 0.5, 0.7, 0.9), seed: int = 0,
         batch_size: int = 32) -> dict[str, list[float] | float]:
    """ROAD curves: class probability after imputing the most (MoRF) / least (LeRF) relevant
    fraction of pixels; returns fractions, morf, lerf and their mean gap (lerf - morf)."""
    image = np.asarray(image, np.float32)
    order = _order(heatmap)
    n = order.size
    batch = []
    for which in ("morf", "lerf"):
        ranked = order if which == "morf" else order[::-1]
        for f in fractions:
            removed = np.zeros(n, bool)
            removed[ranked[:int(round(f * n))]] = True
            batch.append(road_impute(image, removed.reshape(image.shape[:2]), seed=seed))
    p = _probability_fn(model, batch_size)(np.stack(batch), int(cls))
    morf, lerf = p[:len(fractions)], p[len(fractions):]
    return {"fractions": [float(f) for f in fractions], "morf": morf.tolist(),
            "lerf": lerf.tolist(), "gap": float(np.mean(lerf - morf))}


# --------------------------------------------------------------------------- sanity check


@dataclass(frozen=True)
class SanityResult:
    """Model-parameter randomisation check: per-image Spearman rho(trained map, random map)."""

    spearman: np.ndarray
    threshold: float

    @property
    def mean(self) -> float:
        """Mean rank correlation between the maps of the trained and randomised models."""
        return float(np.mean(self.spearman))

    @property
    def flagged(self) -> bool:
        """True when the maps barely change with random weights: the method fails the check."""
        return self.mean > self.threshold


def randomize_weights(model: keras.Model, *, seed: int = 0) -> keras.Model:
    """A copy of ``model`` with every weight re-drawn from its layer's initialiser.

    ``keras.models.clone_model`` rebuilds the architecture (nested models included) with fresh
    initial weights; batch-norm statistics return to mean 0 / variance 1.
    """
    keras.utils.set_random_seed(seed)
    return keras.models.clone_model(model)


def randomization_check(model: keras.Model, x: np.ndarray,
                        method: Callable[..., np.ndarray], *, class_index: int | None = None,
                        threshold: float = SANITY_THRESHOLD, seed: int = 0,
                        randomized: keras.Model | None = None) -> SanityResult:
    """Adebayo et al.'s sanity check: Spearman rho between ``method(model, x, classes)`` and
    ``method(randomised model, x, classes)`` per image (same classes for both: those the
    trained model predicts unless ``class_index``). rho > ``threshold`` flags the method."""
    x = np.asarray(x, np.float32)
    if x.ndim == 3:
        x = x[None]
    if class_index is None:
        classes = np.asarray(logit_model(model)(x, training=False)).argmax(axis=1)
    else:
        classes = np.full(len(x), int(class_index))
    other = randomized if randomized is not None else randomize_weights(model, seed=seed)
    trained_maps = method(model, x, classes)
    random_maps = method(other, x, classes)
    rho = []
    for a, b in zip(trained_maps, random_maps, strict=True):
        a, b = np.ravel(a), np.ravel(b)
        if np.ptp(a) == 0 or np.ptp(b) == 0:  # a constant map carries no ranking
            rho.append(1.0 if np.array_equal(a, b) else 0.0)
        else:
            rho.append(float(stats.spearmanr(a, b).statistic))
    return SanityResult(np.asarray(rho), float(threshold))
