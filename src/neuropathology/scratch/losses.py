"""Loss functions ``L(y_hat, y)`` averaged over the batch, each with its gradient.

A loss object's ``forward(y_pred, y_true)`` returns the scalar mean loss and caches
what ``backward()`` needs to return ``dL/dy_pred`` (same shape as ``y_pred``) -- the
first error signal of backpropagation. Conventions follow Keras so values compare
directly: per-example losses are reduced over the last axis and then averaged over
the batch; probabilities are clipped to ``[eps, 1 - eps]`` with ``eps = 1e-7``.

Shapes: ``y_pred`` ``(N, C)`` (or ``(N,)``/``(N, 1)`` for binary); ``y_true`` the same
shape, or integer labels ``(N,)`` for :class:`SoftmaxCrossEntropy`.
"""

from __future__ import annotations

import numpy as np

from .activations import log_softmax, sigmoid, softmax
from .base import Array

EPSILON = 1e-7


class Loss:
    """Base class: ``forward(y_pred, y_true) -> float`` then ``backward() -> dL/dy_pred``."""

    def __init__(self) -> None:
        self.cache: tuple[Array, ...] | None = None

    def forward(self, y_pred: Array, y_true: Array) -> float:  # pragma: no cover - abstract
        raise NotImplementedError

    def backward(self) -> Array:  # pragma: no cover - abstract
        raise NotImplementedError

    def __call__(self, y_pred: Array, y_true: Array) -> float:
        return self.forward(y_pred, y_true)

    def _cached(self) -> tuple[Array, ...]:
        if self.cache is None:
            raise RuntimeError(f"{type(self).__name__}.backward called before forward")
        return self.cache


def _check_same_shape(y_pred: Array, y_true: Array, name: str) -> None:
    if y_pred.shape != y_true.shape:
        raise ValueError(
            f"{name}: y_pred has shape {y_pred.shape} but y_true has {y_true.shape}; "
            "pass targets with the prediction's shape (one-hot encode class labels)."
        )


class MeanSquaredError(Loss):
    """``L = (1/(N D)) sum_{n,d} (y_hat_nd - y_nd)^2``; ``dL/dy_hat = 2 (y_hat - y) / (N D)``."""

    def forward(self, y_pred: Array, y_true: Array) -> float:
        _check_same_shape(y_pred, y_true, "MeanSquaredError")
        diff = y_pred - y_true.astype(y_pred.dtype)
        self.cache = (diff,)
        return float(np.mean(diff * diff))

    def backward(self) -> Array:
        (diff,) = self._cached()
        return 2.0 * diff / diff.size


class BinaryCrossEntropy(Loss):
    """``L = -(1/N) sum [y log p + (1 - y) log(1 - p)]`` for ``y`` in [0, 1].

    ``from_logits=True`` (recommended) takes ``z`` with ``p = sigma(z)`` and uses the
    overflow-free identity ``-[y log p + (1-y) log(1-p)] = max(z, 0) - z y + log(1 + e^{-|z|})``;
    its gradient is simply ``(sigma(z) - y) / M``. With probabilities, ``p`` is clipped
    to ``[eps, 1-eps]`` like Keras (and the gradient is 0 where the clip is active).
    ``M`` is the number of elements: the mean runs over the last axis and the batch.
    """

    def __init__(self, from_logits: bool = False) -> None:
        super().__init__()
        self.from_logits = from_logits

    def forward(self, y_pred: Array, y_true: Array) -> float:
        _check_same_shape(y_pred, y_true, "BinaryCrossEntropy")
        y = y_true.astype(y_pred.dtype)
        if self.from_logits:
            z = y_pred
            losses = np.maximum(z, 0) - z * y + np.log1p(np.exp(-np.abs(z)))
            self.cache = (z, y)
        else:
            p = np.clip(y_pred, EPSILON, 1 - EPSILON)
            losses = -(y * np.log(p) + (1 - y) * np.log(1 - p))
            self.cache = (y_pred, y)
        return float(np.mean(losses))

    def backward(self) -> Array:
        y_pred, y = self._cached()
        m = y_pred.size
        if self.from_logits:
            return (sigmoid(y_pred) - y) / m
        inside = (y_pred > EPSILON) & (y_pred < 1 - EPSILON)
        p = np.clip(y_pred, EPSILON, 1 - EPSILON)
        return np.where(inside, (p - y) / (p * (1 - p)), 0.0).astype(y_pred.dtype) / m


class CategoricalCrossEntropy(Loss):
    """``L = -(1/N) sum_n sum_c y_nc log p_nc`` on probabilities ``p`` (rows summing to 1).

    Like Keras, ``p`` is first renormalised (``p / sum_c p``) and clipped to
    ``[eps, 1-eps]``. Use :class:`SoftmaxCrossEntropy` on logits instead when you can:
    ``log(softmax)`` computed in two steps loses precision when a probability underflows.
    """

    def forward(self, y_pred: Array, y_true: Array) -> float:
        _check_same_shape(y_pred, y_true, "CategoricalCrossEntropy")
        y = y_true.astype(y_pred.dtype)
        total = np.sum(y_pred, axis=-1, keepdims=True)
        q = y_pred / total
        p = np.clip(q, EPSILON, 1 - EPSILON)
        self.cache = (y_pred, y, total, q, p)
        return float(-np.mean(np.sum(y * np.log(p), axis=-1)))

    def backward(self) -> Array:
        y_pred, y, total, q, p = self._cached()
        n = y_pred.shape[0] if y_pred.ndim > 1 else 1
        inside = (q > EPSILON) & (q < 1 - EPSILON)
        dq = np.where(inside, -y / p, 0.0) / n  # dL/dq
        # q = y_pred / total: dL/dy_pred_c = (dq_c - sum_k dq_k q_k) / total
        return ((dq - np.sum(dq * q, axis=-1, keepdims=True)) / total).astype(y_pred.dtype)


class SoftmaxCrossEntropy(Loss):
    """Fused softmax + cross-entropy on logits ``z``: ``L = -(1/N) sum_n log s_{n, y_n}``.

    Computed as ``-sum_c y_c log_softmax(z)_c`` (stable: ``log_softmax = z - logsumexp(z)``).
    The gradient collapses to ``delta^(L) = dL/dz = (softmax(z) - y) / N`` -- the reason
    frameworks fuse the two. ``y_true`` may be one-hot ``(N, C)`` or integer labels ``(N,)``.
    """

    def forward(self, y_pred: Array, y_true: Array) -> float:
        z = y_pred
        if y_true.ndim == z.ndim - 1 and np.issubdtype(y_true.dtype, np.integer):
            if y_true.min(initial=0) < 0 or y_true.max(initial=0) >= z.shape[-1]:
                raise ValueError(
                    f"SoftmaxCrossEntropy: labels must lie in [0, {z.shape[-1]}); "
                    f"got range [{y_true.min()}, {y_true.max()}]"
                )
            y = np.eye(z.shape[-1], dtype=z.dtype)[y_true]
        else:
            _check_same_shape(z, y_true, "SoftmaxCrossEntropy")
            y = y_true.astype(z.dtype)
        logp = log_softmax(z)
        self.cache = (z, y)
        return float(-np.mean(np.sum(y * logp, axis=-1)))

    def backward(self) -> Array:
        z, y = self._cached()
        n = z.shape[0] if z.ndim > 1 else 1
        return (softmax(z) - y) / n


LOSSES: dict[str, type[Loss]] = {
    "mse": MeanSquaredError,
    "binary_crossentropy": BinaryCrossEntropy,
    "categorical_crossentropy": CategoricalCrossEntropy,
    "softmax_crossentropy": SoftmaxCrossEntropy,
}
