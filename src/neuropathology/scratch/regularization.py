"""Weight penalties and gradient clipping.

* L2 ("weight decay" when added to the loss): ``R(W) = (lambda/2) ||W||^2``, ``dR/dW = lambda W``
  -- shrinks every weight proportionally; the MAP estimate under a Gaussian prior.
* L1: ``R(W) = lambda ||W||_1``, ``dR/dW = lambda sign(W)`` -- a constant pull to zero that
  produces exact zeros (sparsity); the MAP estimate under a Laplace prior.

Penalties apply to weights (``W``, ``K``), not to biases or normalisation parameters,
which :func:`is_weight` decides from the parameter's name.

Clipping bounds the step when a gradient explodes:

* by value: ``g <- clip(g, -c, c)`` element-wise (changes the direction);
* by global norm (``tf.clip_by_global_norm``): with ``G = sqrt(sum_k ||g_k||^2)`` over all
  parameters, ``g_k <- g_k * c / max(G, c)`` (keeps the direction, caps the length).
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from .base import Array

WEIGHT_KEYS = ("W", "K")


def is_weight(name: str) -> bool:
    """True for weight matrices/kernels (``...W``/``...K``), false for biases, gamma, beta."""
    return name.rsplit(".", 1)[-1] in WEIGHT_KEYS


def l2_penalty(params: Mapping[str, Array], lam: float) -> tuple[float, dict[str, Array]]:
    """``(lambda/2) sum ||W||^2`` over the weights, and its gradient ``lambda W`` per weight."""
    value = 0.0
    grads: dict[str, Array] = {}
    for name, p in params.items():
        if is_weight(name):
            value += 0.5 * lam * float(np.sum(p * p))
            grads[name] = lam * p
    return value, grads


def l1_penalty(params: Mapping[str, Array], lam: float) -> tuple[float, dict[str, Array]]:
    """``lambda sum |W|`` over the weights, and its sub-gradient ``lambda sign(W)``."""
    value = 0.0
    grads: dict[str, Array] = {}
    for name, p in params.items():
        if is_weight(name):
            value += lam * float(np.sum(np.abs(p)))
            grads[name] = lam * np.sign(p)
    return value, grads


def clip_by_value(grads: Mapping[str, Array], clip_value: float) -> dict[str, Array]:
    """Element-wise ``clip(g, -c, c)`` (Keras' ``clipvalue``)."""
    if clip_value <= 0:
        raise ValueError(f"clip_value must be positive, got {clip_value}")
    return {k: np.clip(g, -clip_value, clip_value) for k, g in grads.items()}


def global_norm(grads: Mapping[str, Array]) -> float:
    """``G = sqrt(sum_k ||g_k||_2^2)``, the length of all gradients as one vector."""
    return float(np.sqrt(sum(float(np.sum(np.square(g, dtype=np.float64))) for g in grads.values())))


def clip_by_global_norm(grads: Mapping[str, Array],
                        clip_norm: float) -> tuple[dict[str, Array], float]:
    """Rescale all gradients by ``c / max(G, c)``; returns ``(clipped, G)`` like TF."""
    if clip_norm <= 0:
        raise ValueError(f"clip_norm must be positive, got {clip_norm}")
    norm = global_norm(grads)
    scale = clip_norm / max(norm, clip_norm)
    return {k: (g * scale).astype(g.dtype, copy=False) for k, g in grads.items()}, norm
