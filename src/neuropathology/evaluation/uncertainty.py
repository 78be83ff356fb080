"""Uncertainty and abstention: entropy, MC dropout, risk-coverage, test-time augmentation.

* Predictive entropy H(p) = -sum_k p_k log p_k: 0 for a one-hot prediction, log C for uniform.
* MC dropout (Gal & Ghahramani, 2016): keep dropout active at inference, run T stochastic
  forward passes and average, p_bar = (1/T) sum_t p_t. The spread between passes is model
  (epistemic) uncertainty; the mutual information I = H(p_bar) - (1/T) sum_t H(p_t) measures it.
  Batch normalisation must stay in inference mode (its moving statistics), or the passes would
  depend on which images share a batch.
* Selective prediction: answer only when the confidence max_k p_k is high enough, abstain
  otherwise. Sorting images by decreasing confidence, coverage c = m / N after keeping the m
  most confident, risk r(c) = error rate among them. AURC = mean over m = 1..N of r(m / N), the
  area under the risk-coverage curve: lower is better; its floor, for a given accuracy, is
  reached when every error is less confident than every correct answer.
* Test-time augmentation: average the probabilities over label-preserving transforms of each
  image (identity, left-right mirror, small rotations), which smooths out the model's
  sensitivity to them.
"""

from __future__ import annotations

import contextlib
import math
import os
from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np
import tensorflow as tf

from neuropathology.data.data_loader import affine_transform, load_image, normalize

#: TTA views: (name, rotation in degrees, left-right mirror).
TTA_VIEWS: tuple[tuple[str, float, bool], ...] = (
    ("identity", 0.0, False), ("mirror", 0.0, True),
    ("rotate +8 deg", 8.0, False), ("rotate -8 deg", -8.0, False),
)


def predictive_entropy(probs: np.ndarray) -> np.ndarray:
    """H(p_i) = -sum_k p_ik log p_ik per row, in nats (0 log 0 = 0)."""
    p = np.asarray(probs, dtype=np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        terms = np.where(p > 0, p * np.log(p), 0.0)
    return -terms.sum(axis=1)


def risk_coverage_curve(y_true: Sequence[int] | np.ndarray, probs: np.ndarray,
                        confidence: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(coverage, risk) after keeping the m = 1..N most confident images.

    ``confidence`` defaults to max_k p_k; ties are broken by a stable sort (input order).
    """
    labels = np.asarray(y_true, dtype=np.int64)
    p = np.asarray(probs, dtype=np.float64)
    conf = p.max(axis=1) if confidence is None else np.asarray(confidence, dtype=np.float64)
    order = np.argsort(-conf, kind="stable")
    errors = (p.argmax(axis=1) != labels)[order].astype(np.float64)
    m = np.arange(1, len(labels) + 1)
    return m / len(labels), np.cumsum(errors) / m


def aurc(y_true: Sequence[int] | np.ndarray, probs: np.ndarray,
         confidence: np.ndarray | None = None) -> float:
    """AURC = (1/N) sum_{m=1..N} risk(m / N): the mean risk over all coverages."""
    _, risk = risk_coverage_curve(y_true, probs, confidence)
    return float(np.mean(risk))


def risk_at_coverage(y_true: Sequence[int] | np.ndarray, probs: np.ndarray,
                     coverages: Sequence[float] = (0.5, 0.8, 0.9, 1.0)) -> dict[str, float]:
    """Error rate of the ceil(c N) most confident images, for each coverage c."""
    _, risk = risk_coverage_curve(y_true, probs)
    n = len(risk)
    return {f"{c:g}": float(risk[max(1, math.ceil(c * n)) - 1]) for c in coverages}


def _all_layers(layer: Any) -> Iterator[Any]:
    for child in getattr(layer, "layers", []):
        yield child
        yield from _all_layers(child)


@contextlib.contextmanager
def batchnorm_frozen(model: Any) -> Iterator[None]:
    """Set every BatchNormalization layer non-trainable (Keras then runs it in inference mode
    even under ``training=True``); restore the flags afterwards."""
    import keras

    norms = [layer for layer in _all_layers(model)
             if isinstance(layer, keras.layers.BatchNormalization)]
    saved = [layer.trainable for layer in norms]
    for layer in norms:
        layer.trainable = False
    try:
        yield
    finally:
        for layer, flag in zip(norms, saved, strict=True):
            layer.trainable = flag


def mc_dropout_predict(model: Any, images: np.ndarray, n_passes: int, *, batch_size: int = 64,
                       seed: int = 0) -> np.ndarray:
    """Probabilities of ``n_passes`` forward passes with dropout active: (T, N, C).

    Average over axis 0 for the MC-dropout prediction. Batch norm stays in inference mode
    (:func:`batchnorm_frozen`), so with dropout rate 0 every pass equals the plain prediction.
    """
    if n_passes < 1:
        raise ValueError(f"n_passes must be >= 1, got {n_passes}")
    x = np.asarray(images, dtype=np.float32)
    passes = []
    with batchnorm_frozen(model), seeded_dropout(model, seed):
        for _ in range(n_passes):
            out = [np.asarray(model(tf.convert_to_tensor(x[i:i + batch_size]), training=True))
                   for i in range(0, len(x), batch_size)]
            passes.append(np.concatenate(out).astype(np.float64))
    return np.stack(passes)


@contextlib.contextmanager
def seeded_dropout(model: Any, seed: int) -> Iterator[None]:
    """Give every Dropout layer's random-number state a value derived from ``seed`` (so the
    same seed gives the same masks in any process); restore the states afterwards."""
    import keras

    from neuropathology.utils.helpers import derive_seed

    generators = [layer.seed_generator for layer in _all_layers(model)
                  if isinstance(layer, keras.layers.Dropout)
                  and getattr(layer, "seed_generator", None) is not None]
    saved = [np.array(g.state.numpy()) for g in generators]
    for i, generator in enumerate(generators):
        generator.state.assign(np.array([derive_seed(seed, i) % 2**31, 0], dtype=np.int64))
    try:
        yield
    finally:
        for generator, state in zip(generators, saved, strict=True):
            generator.state.assign(state)


def mutual_information(passes: np.ndarray) -> np.ndarray:
    """I_i = H(mean_t p_t,i) - mean_t H(p_t,i) per image, from (T, N, C) MC-dropout passes."""
    mean = passes.mean(axis=0)
    return predictive_entropy(mean) - np.mean([predictive_entropy(p) for p in passes], axis=0)


def tta_views(images: np.ndarray,
              views: Sequence[tuple[str, float, bool]] = TTA_VIEWS) -> list[np.ndarray]:
    """Each view of a batch of [0, 255] float images (B, S, S, 3): rotated about the centre
    and/or mirrored left-right in one bilinear warp (``data_loader.affine_transform``)."""
    x = tf.convert_to_tensor(images, tf.float32)
    b = tf.shape(x)[0]
    out = []
    for _, degrees, mirror in views:
        if degrees == 0.0 and not mirror:
            out.append(np.asarray(images, dtype=np.float32))
            continue
        angles = tf.fill((b,), float(degrees) * math.pi / 180.0)
        flips = tf.fill((b,), -1.0 if mirror else 1.0)
        out.append(affine_transform(x, angles, tf.ones((b,)), flips).numpy())
    return out


def tta_predict_paths(predictor: Any, paths: Sequence[str | os.PathLike[str]],
                      views: Sequence[tuple[str, float, bool]] = TTA_VIEWS) -> np.ndarray:
    """Mean probabilities over the TTA ``views`` of each file: (N, C).

    Views are made on the resized [0, 255] image *before* normalisation (the fill of rotated
    corners is black, like the scanner background), then normalised as in training.
    """
    config = predictor.preprocess
    out = []
    for i in range(0, len(paths), predictor.batch_size):
        raw = np.stack([load_image(p, config) for p in paths[i:i + predictor.batch_size]])
        views_probs = [predictor.predict_batch(normalize(v, config.normalization).numpy())
                       for v in tta_views(raw, views)]
        out.append(np.mean(views_probs, axis=0))
    if not out:
        return np.zeros((0, len(predictor.class_names)), np.float32)
    return np.concatenate(out)
