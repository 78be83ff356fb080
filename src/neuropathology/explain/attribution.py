"""Input-space attributions: gradient saliency, SmoothGrad, Integrated Gradients, occlusion.

All differentiate (or probe) the class *logit* y^c (pre-softmax ``head_logits``) with
respect to the preprocessed input x (N, S, S, 3), and return per-pixel maps (N, S, S)
scaled to [0, 1] like the CAMs (:func:`~neuropathology.explain.cam.normalize_maps`).

* **Saliency** (Simonyan et al. 2014): |dy^c/dx|, max over the colour channels.
* **SmoothGrad** (Smilkov et al. 2017): the mean of |dy^c/dx| over n copies of x with Gaussian
  noise of standard deviation sigma * (max(x) - min(x)), which averages out the gradient's
  pixel-scale noise. Seeded: the same call gives the same map.
* **Integrated Gradients** (Sundararajan et al. 2017): with baseline x',
  IG_i = (x_i - x'_i) * int_0^1 dy^c/dx_i(x' + a (x - x')) da, approximated by the trapezoidal
  rule on ``steps`` intervals. *Completeness*: sum_i IG_i = y^c(x) - y^c(x') exactly for the
  integral; the approximation error is reported as the convergence delta
  delta = sum_i IG_i - (y^c(x) - y^c(x')); increase ``steps`` while |delta| is not small.
* **Occlusion** (Zeiler & Fergus 2014): slide a ``patch`` x ``patch`` square of the baseline
  value over the image with ``stride``; each pixel's score is the mean drop
  y^c(x) - y^c(x occluded) over the windows covering it. Model-agnostic, slow: one forward
  pass per window position (batched).
"""

from __future__ import annotations

from dataclasses import dataclass

import keras
import numpy as np
import tensorflow as tf
from scipy import ndimage

from neuropathology.explain.cam import ClassIndex, as_batch, normalize_maps, resolve_classes
from neuropathology.explain.graph import ExplainError, logit_model

__all__ = ["IGResult", "integrated_gradients", "make_baseline", "occlusion", "saliency",
           "smoothgrad"]

BASELINES = ("zeros", "blur", "uniform")


def _logit_grads(model: keras.Model, x: tf.Tensor, classes: tf.Tensor
                 ) -> tuple[tf.Tensor, tf.Tensor]:
    """(dy^c/dx, y^c) for a batch; classes (N,) int32."""
    lmodel = logit_model(model)
    with tf.GradientTape() as tape:
        tape.watch(x)
        score = tf.gather(lmodel(x, training=False), classes, axis=1, batch_dims=1)
    return tape.gradient(score, x), score


def _classes(model: keras.Model, x: tf.Tensor, class_index: ClassIndex) -> tf.Tensor:
    return resolve_classes(logit_model(model)(x, training=False), class_index)


def saliency(model: keras.Model, x: np.ndarray, class_index: ClassIndex = None) -> np.ndarray:
    """Vanilla gradient saliency: max_channel |dy^c/dx|, scaled to [0, 1]."""
    x = as_batch(x)
    grads, _ = _logit_grads(model, x, _classes(model, x, class_index))
    return normalize_maps(tf.reduce_max(tf.abs(grads), axis=-1).numpy())


def smoothgrad(model: keras.Model, x: np.ndarray, class_index: ClassIndex = None, *,
               samples: int = 25, sigma: float = 0.15, seed: int = 0) -> np.ndarray:
    """SmoothGrad: mean over ``samples`` noisy copies of max_channel |dy^c/dx|, in [0, 1]."""
    x = as_batch(x)
    classes = _classes(model, x, class_index)
    rng = np.random.default_rng(seed)
    spread = (tf.reduce_max(x, axis=(1, 2, 3)) - tf.reduce_min(x, axis=(1, 2, 3))).numpy()
    total = np.zeros(x.shape[:3], np.float32)
    for _ in range(samples):
        noise = rng.standard_normal(x.shape).astype(np.float32)
        noisy = x + noise * (sigma * spread)[:, None, None, None]
        grads, _ = _logit_grads(model, noisy, classes)
        total += tf.reduce_max(tf.abs(grads), axis=-1).numpy()
    return normalize_maps(total / samples)


def make_baseline(x: np.ndarray, kind: str | float = "zeros", *, seed: int = 0) -> np.ndarray:
    """A baseline image x' for IG / occlusion / deletion, same shape as x (model-input units).

    ``"zeros"``: all zeros (for the ``unit`` normalisation this is a black image, for
    ``mobilenetv2`` mid-grey); ``"blur"``: x Gaussian-blurred with sigma = S / 8 (removes
    detail, keeps the intensity distribution); ``"uniform"``: uniform noise over x's range
    (seeded); a number: that constant. Pass an array to the methods for anything else.
    """
    x = np.asarray(x, np.float32)
    if isinstance(kind, (int, float)):
        return np.full_like(x, float(kind))
    if kind == "zeros":
        return np.zeros_like(x)
    if kind == "blur":
        sigma = x.shape[-2] / 8.0
        return ndimage.gaussian_filter(x, sigma=(0,) * (x.ndim - 3) + (sigma, sigma, 0))
    if kind == "uniform":
        rng = np.random.default_rng(seed)
        return rng.uniform(x.min(), x.max(), size=x.shape).astype(np.float32)
    raise ExplainError(f"unknown baseline {kind!r}; use one of {', '.join(BASELINES)}, a "
                       "number or an array shaped like the input")


@dataclass(frozen=True)
class IGResult:
    """Integrated Gradients of a batch.

    ``attributions`` (N, S, S, 3) in logit units; ``map`` (N, S, S) = sum over channels of
    |attributions|, scaled to [0, 1]; ``score`` y^c(x) and ``baseline_score`` y^c(x') (N,);
    ``delta`` (N,) = sum attributions - (score - baseline_score), the completeness error;
    ``classes`` (N,) the explained classes.
    """

    attributions: np.ndarray
    map: np.ndarray
    score: np.ndarray
    baseline_score: np.ndarray
    delta: np.ndarray
    classes: np.ndarray

    @property
    def relative_delta(self) -> np.ndarray:
        """|delta| / |y^c(x) - y^c(x')| (N,): completeness error as a fraction."""
        gap = np.abs(self.score - self.baseline_score)
        return np.abs(self.delta) / np.where(gap > 0, gap, 1.0)


def integrated_gradients(model: keras.Model, x: np.ndarray, class_index: ClassIndex = None, *,
                         baseline: str | float | np.ndarray = "zeros", steps: int = 64,
                         batch_size: int = 32) -> IGResult:
    """Integrated Gradients with the trapezoidal rule on ``steps`` intervals (see module doc)."""
    if steps < 1:
        raise ExplainError(f"steps must be >= 1, got {steps}")
    x = as_batch(x)
    xb = np.asarray(baseline, np.float32) if isinstance(baseline, np.ndarray) else \
        make_baseline(x.numpy(), baseline)
    xb = np.broadcast_to(xb, x.shape).astype(np.float32)
    classes = _classes(model, x, class_index)
    alphas = np.linspace(0.0, 1.0, steps + 1, dtype=np.float32)
    weights = np.full(steps + 1, 1.0 / steps, np.float32)
    weights[[0, -1]] /= 2.0
    attributions, scores, base_scores = [], [], []
    for i in range(x.shape[0]):
        diff = x[i].numpy() - xb[i]
        path = xb[i][None] + alphas[:, None, None, None] * diff[None]
        grad_sum = np.zeros(diff.shape, np.float32)
        path_scores = []
        for j in range(0, len(alphas), batch_size):
            chunk = tf.constant(path[j:j + batch_size])
            cls = tf.fill((chunk.shape[0],), classes[i])
            grads, score = _logit_grads(model, chunk, cls)
            grad_sum += np.tensordot(weights[j:j + batch_size], grads.numpy(), axes=1)
            path_scores.append(score.numpy())
        path_scores = np.concatenate(path_scores)
        attributions.append(diff * grad_sum)
        scores.append(path_scores[-1])
        base_scores.append(path_scores[0])
    attr = np.stack(attributions).astype(np.float32)
    score, base_score = np.asarray(scores, np.float64), np.asarray(base_scores, np.float64)
    delta = attr.reshape(len(attr), -1).sum(axis=1, dtype=np.float64) - (score - base_score)
    return IGResult(attributions=attr, map=normalize_maps(np.abs(attr).sum(axis=-1)),
                    score=score, baseline_score=base_score, delta=delta,
                    classes=classes.numpy())


def occlusion(model: keras.Model, x: np.ndarray, class_index: ClassIndex = None, *,
              patch: int | None = None, stride: int | None = None,
              baseline: float = 0.0, batch_size: int = 64) -> np.ndarray:
    """Occlusion sensitivity: mean logit drop when a baseline square covers each pixel.

    ``patch`` defaults to S / 8 and ``stride`` to patch / 2. Negative drops (occluding made
    the class *more* likely) are clipped before the [0, 1] scaling.
    """
    x = as_batch(x)
    size_h, size_w = x.shape[1:3]
    patch = patch or max(1, size_h // 8)
    stride = stride or max(1, patch // 2)
    if patch > min(size_h, size_w):
        raise ExplainError(f"occlusion patch {patch} is larger than the image {size_h}x{size_w}")
    lmodel = logit_model(model)
    logits = lmodel(x, training=False)
    classes = resolve_classes(logits, class_index).numpy()
    ref = tf.gather(logits, classes, axis=1, batch_dims=1).numpy()
    tops = list(range(0, size_h - patch + 1, stride))
    lefts = list(range(0, size_w - patch + 1, stride))
    if tops[-1] != size_h - patch:
        tops.append(size_h - patch)
    if lefts[-1] != size_w - patch:
        lefts.append(size_w - patch)
    windows = [(t, left) for t in tops for left in lefts]
    maps = np.zeros(x.shape[:3], np.float32)
    for i in range(x.shape[0]):
        image = x[i].numpy()
        drops = []
        for j in range(0, len(windows), batch_size):
            chunk = windows[j:j + batch_size]
            batch = np.repeat(image[None], len(chunk), axis=0)
            for b, (t, left) in enumerate(chunk):
                batch[b, t:t + patch, left:left + patch, :] = baseline
            out = lmodel(tf.constant(batch), training=False).numpy()[:, classes[i]]
            drops.append(ref[i] - out)
        drops = np.concatenate(drops)
        total = np.zeros((size_h, size_w), np.float64)
        count = np.zeros((size_h, size_w), np.float64)
        for (t, left), d in zip(windows, drops, strict=True):
            total[t:t + patch, left:left + patch] += d
            count[t:t + patch, left:left + patch] += 1.0
        maps[i] = total / np.maximum(count, 1.0)
    return normalize_maps(maps)
