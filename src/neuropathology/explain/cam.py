"""Class activation maps: Grad-CAM, Grad-CAM++, Score-CAM, Layer-CAM and HiRes-CAM.

Notation (as in Session 08 of the course). A^k (h x w) is channel k of the target layer's
feature map (:func:`~neuropathology.explain.graph.find_target_layer`), y^c the *logit* of
class c (pre-softmax ``head_logits``), Z = h * w.

* **Grad-CAM** (Selvaraju et al. 2017): alpha_k^c = (1/Z) sum_ij dy^c/dA^k_ij (the gradient,
  global-average-pooled), L^c = ReLU(sum_k alpha_k^c A^k). The ReLU keeps the evidence *for*
  class c. For a head that is GAP followed by linear layers, alpha_k^c is exactly the class
  weight of channel k, which is why Grad-CAM generalises CAM.
* **Grad-CAM++** (Chattopadhay et al. 2018): pixel-wise weights
  a^kc_ij = g^2 / (2 g^2 + sum_ab A^k_ab g^3) with g = dy^c/dA^k_ij (higher derivatives of
  exp(y^c) written through powers of g), w_k^c = sum_ij a^kc_ij ReLU(g_ij),
  L^c = ReLU(sum_k w_k^c A^k). Better for several instances of a class.
* **Score-CAM** (Wang et al. 2020): gradient-free. Each channel, upsampled and scaled to
  [0, 1], masks the input: M_k = norm(up(A^k)); its weight is the increase in class
  probability s_k = p_c(x * M_k) - p_c(baseline), L^c = ReLU(sum_k s_k A^k). Masked
  images are run in batches of ``batch_size``.
* **Layer-CAM** (Jiang et al. 2021): L^c = ReLU(sum_k ReLU(dy^c/dA^k) (.) A^k), element-wise
  weights: finer maps, usable on earlier layers.
* **HiRes-CAM** (Draelos & Carin 2020): L^c = ReLU(sum_k dy^c/dA^k (.) A^k); for a GAP head
  its sum over pixels equals y^c minus the bias, i.e. it is provably faithful to the score.

Every function takes a preprocessed batch x (N, S, S, 3) (exactly what the model eats; see
``Predictor.preprocess``) and returns float32 maps (N, S, S) bilinearly upsampled to the
input size and scaled per image to [0, 1] (divided by the maximum; an all-zero map stays 0).
``class_index`` None explains the predicted class; an int or a sequence picks class(es).
"""

from __future__ import annotations

from collections.abc import Sequence

import keras
import numpy as np
import tensorflow as tf

from neuropathology.explain.graph import ExplainError, feature_logit_model, logit_model

ClassIndex = int | Sequence[int] | np.ndarray | None

__all__ = ["ClassIndex", "grad_cam", "grad_cam_plus_plus", "hires_cam", "layer_cam",
           "normalize_maps", "resolve_classes", "score_cam", "upsample_maps"]


def as_batch(x: np.ndarray | tf.Tensor) -> tf.Tensor:
    """(S, S, 3) or (N, S, S, 3) -> float32 tensor (N, S, S, 3); anything else is an error."""
    x = tf.convert_to_tensor(x, tf.float32)
    if x.shape.rank == 3:
        x = x[None]
    if x.shape.rank != 4 or x.shape[-1] != 3:
        raise ExplainError(f"expected preprocessed images (N, S, S, 3), got shape {x.shape}; "
                           "preprocess with Predictor.preprocess / preprocess_paths first")
    return x


def resolve_classes(logits: np.ndarray | tf.Tensor, class_index: ClassIndex) -> tf.Tensor:
    """int32 (N,) class per image: the argmax of ``logits`` for None, else ``class_index``."""
    logits = np.asarray(logits)
    n, c = logits.shape
    if class_index is None:
        idx = logits.argmax(axis=1)
    else:
        idx = np.broadcast_to(np.asarray(class_index, dtype=np.int64).reshape(-1), (n,)) \
            if np.ndim(class_index) == 0 or len(np.asarray(class_index)) in (1, n) else None
        if idx is None:
            raise ExplainError(f"class_index has {len(np.asarray(class_index))} entries for "
                               f"{n} images; pass one class or one per image")
        if idx.min() < 0 or idx.max() >= c:
            raise ExplainError(f"class index {class_index} out of range: the model has {c} "
                               f"classes (0..{c - 1})")
    return tf.constant(np.asarray(idx, dtype=np.int32))


def upsample_maps(maps: tf.Tensor | np.ndarray, size: int | tuple[int, int]) -> np.ndarray:
    """(N, h, w) -> (N, H, W) by bilinear interpolation (half-pixel centres)."""
    hw = (size, size) if isinstance(size, int) else tuple(size)
    maps = tf.convert_to_tensor(maps, tf.float32)[..., None]
    return tf.image.resize(maps, hw, method="bilinear")[..., 0].numpy()


def normalize_maps(maps: np.ndarray) -> np.ndarray:
    """Clip negatives and divide each map by its maximum: float32 in [0, 1]; zero stays zero."""
    maps = np.maximum(np.asarray(maps, np.float32), 0.0)
    peak = maps.reshape(len(maps), -1).max(axis=1)
    scale = np.where(peak > 0, peak, 1.0).astype(np.float32)
    return maps / scale[:, None, None]


def _finish(cams: tf.Tensor, size: tuple[int, int]) -> np.ndarray:
    return normalize_maps(upsample_maps(tf.nn.relu(cams), size))


def _features_and_grads(model: keras.Model, x: tf.Tensor, class_index: ClassIndex,
                        layer_name: str | None) -> tuple[tf.Tensor, tf.Tensor, tf.Tensor]:
    """(A, dy^c/dA, classes) for the target layer; y^c is the logit of class c."""
    fmodel = feature_logit_model(model, layer_name)
    with tf.GradientTape() as tape:
        features, logits = fmodel(x, training=False)
        classes = resolve_classes(logits, class_index)
        score = tf.gather(logits, classes, axis=1, batch_dims=1)
    grads = tape.gradient(score, features)
    if grads is None:
        raise ExplainError("the class score does not depend on the target layer; pick a layer "
                           "on the path to the logits (layer_name=...)")
    return features, grads, classes


def grad_cam(model: keras.Model, x: np.ndarray, class_index: ClassIndex = None, *,
             layer_name: str | None = None) -> np.ndarray:
    """Grad-CAM: L = ReLU(sum_k alpha_k A^k), alpha_k = (1/Z) sum_ij dy^c/dA^k_ij."""
    x = as_batch(x)
    features, grads, _ = _features_and_grads(model, x, class_index, layer_name)
    alpha = tf.reduce_mean(grads, axis=(1, 2), keepdims=True)
    return _finish(tf.reduce_sum(alpha * features, axis=-1), x.shape[1:3])


def grad_cam_plus_plus(model: keras.Model, x: np.ndarray, class_index: ClassIndex = None, *,
                       layer_name: str | None = None) -> np.ndarray:
    """Grad-CAM++: w_k = sum_ij a_ij ReLU(g_ij), a_ij = g^2 / (2 g^2 + sum_ab A_ab g^3)."""
    x = as_batch(x)
    features, grads, _ = _features_and_grads(model, x, class_index, layer_name)
    g2, g3 = grads ** 2, grads ** 3
    denom = 2.0 * g2 + tf.reduce_sum(features, axis=(1, 2), keepdims=True) * g3
    denom = tf.where(tf.abs(denom) > 1e-12, denom, tf.ones_like(denom))
    a = g2 / denom
    weights = tf.reduce_sum(a * tf.nn.relu(grads), axis=(1, 2), keepdims=True)
    return _finish(tf.reduce_sum(weights * features, axis=-1), x.shape[1:3])


def layer_cam(model: keras.Model, x: np.ndarray, class_index: ClassIndex = None, *,
              layer_name: str | None = None) -> np.ndarray:
    """Layer-CAM: L = ReLU(sum_k ReLU(dy^c/dA^k) (.) A^k), element-wise."""
    x = as_batch(x)
    features, grads, _ = _features_and_grads(model, x, class_index, layer_name)
    return _finish(tf.reduce_sum(tf.nn.relu(grads) * features, axis=-1), x.shape[1:3])


def hires_cam(model: keras.Model, x: np.ndarray, class_index: ClassIndex = None, *,
              layer_name: str | None = None) -> np.ndarray:
    """HiRes-CAM: L = ReLU(sum_k dy^c/dA^k (.) A^k), element-wise (no averaging)."""
    x = as_batch(x)
    features, grads, _ = _features_and_grads(model, x, class_index, layer_name)
    return _finish(tf.reduce_sum(grads * features, axis=-1), x.shape[1:3])


def score_cam(model: keras.Model, x: np.ndarray, class_index: ClassIndex = None, *,
              layer_name: str | None = None, batch_size: int = 64,
              max_channels: int | None = None, baseline: float = 0.0) -> np.ndarray:
    """Score-CAM: L = ReLU(sum_k s_k A^k), s_k = p_c(x * M_k + b (1 - M_k)) - p_c(b).

    M_k is channel k upsampled to the input size and min-max scaled to [0, 1]; b is the
    constant ``baseline`` image (in model-input units). ``max_channels`` keeps only the
    channels with the largest mean activation (a speed/quality trade-off; None: all K).
    """
    x = as_batch(x)
    fmodel, lmodel = feature_logit_model(model, layer_name), logit_model(model)
    features, logits = fmodel(x, training=False)
    classes = resolve_classes(logits, class_index)
    size = tuple(x.shape[1:3])
    base_img = tf.fill((1, *size, 3), float(baseline))
    base_p = tf.nn.softmax(lmodel(base_img, training=False), axis=-1).numpy()[0]
    out = []
    for i in range(x.shape[0]):
        a = features[i]  # (h, w, K)
        channels = np.arange(a.shape[-1])
        if max_channels is not None and max_channels < len(channels):
            channels = np.argsort(-tf.reduce_mean(a, axis=(0, 1)).numpy(), kind="stable")
            channels = np.sort(channels[:max_channels])
        a = tf.gather(a, channels, axis=-1)
        masks = tf.image.resize(tf.transpose(a, (2, 0, 1))[..., None], size, "bilinear")
        low = tf.reduce_min(masks, axis=(1, 2, 3), keepdims=True)
        high = tf.reduce_max(masks, axis=(1, 2, 3), keepdims=True)
        masks = tf.math.divide_no_nan(masks - low, high - low)  # (K, S, S, 1)
        c = int(classes[i])
        scores = []
        for j in range(0, masks.shape[0], batch_size):
            m = masks[j:j + batch_size]
            masked = x[i:i + 1] * m + base_img * (1.0 - m)
            p = tf.nn.softmax(lmodel(masked, training=False), axis=-1)[:, c]
            scores.append(p - base_p[c])
        s = tf.concat(scores, axis=0)
        out.append(tf.reduce_sum(a * s, axis=-1))
    return _finish(tf.stack(out), size)
