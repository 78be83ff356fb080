"""Fully connected and normalisation layers: Dense, Flatten, Dropout, BatchNorm, LayerNorm.

Notation (the course's): ``a^(l-1)`` is a layer's input, ``z^(l)`` its pre-activation,
``W^(l)_ij`` the weight from neuron ``j`` of layer ``l-1`` to neuron ``i`` of layer ``l``,
``delta^(l) = dL/dz^(l)``. Rows of a batch are examples, so the column-vector formula
``z = W a + b`` becomes ``Z = A W^T + b`` for a batch ``A`` of shape ``(N, n_in)``.
"""

from __future__ import annotations

import numpy as np

from .base import Array, Layer
from .init import get_initializer, ones, zeros


def as_generator(seed: int | np.random.Generator | None) -> np.random.Generator:
    """A NumPy Generator from a seed, an existing Generator (shared), or fresh entropy."""
    if isinstance(seed, np.random.Generator):
        return seed
    return np.random.default_rng(seed)


class Dense(Layer):
    """Affine layer ``z^(l) = W^(l) a^(l-1) + b^(l)``.

    Shapes: input ``(N, n_in)``, output ``(N, n_out)``; ``W`` is ``(n_out, n_in)`` so that
    ``W[i, j]`` connects input neuron ``j`` to output neuron ``i`` (Keras stores the
    transpose, ``kernel = W^T``, of shape ``(n_in, n_out)``); ``b`` is ``(n_out,)``.

    Backward, given ``delta = dL/dz`` ``(N, n_out)``::

        dL/dW = delta^T A      (n_out, n_in)   -- summed over the batch
        dL/db = sum_n delta_n  (n_out,)
        dL/dA = delta W        (N, n_in)       -- the error sent to layer l-1
    """

    def __init__(self, units: int, in_features: int | None = None, *,
                 kernel_initializer: str = "glorot_uniform", use_bias: bool = True,
                 seed: int | np.random.Generator | None = None, dtype: type = np.float32,
                 name: str | None = None) -> None:
        super().__init__(name)
        if units <= 0:
            raise ValueError(f"Dense: units must be positive, got {units}")
        self.units = units
        self.use_bias = use_bias
        self.kernel_initializer = get_initializer(kernel_initializer)
        self.rng = as_generator(seed)
        self.dtype = dtype
        if in_features is not None:
            self.build((None, in_features))

    def build(self, input_shape: tuple[int, ...]) -> None:
        if len(input_shape) != 2:
            raise ValueError(
                f"Dense expects inputs of shape (N, features), got {input_shape}; "
                "put a Flatten layer before it."
            )
        n_in = int(input_shape[-1])
        self.params["W"] = self.kernel_initializer((self.units, n_in), self.rng, self.dtype)
        if self.use_bias:
            self.params["b"] = zeros((self.units,), dtype=self.dtype)
        self.built = True

    def forward(self, x: Array, training: bool = False) -> Array:
        self._ensure_built(x)
        self.cache = x
        z = x @ self.params["W"].T
        if self.use_bias:
            z = z + self.params["b"]
        return z

    def backward(self, dout: Array) -> Array:
        x = self._require_cache()
        self.grads["W"] = dout.T @ x
        if self.use_bias:
            self.grads["b"] = dout.sum(axis=0)
        return dout @ self.params["W"]


class Flatten(Layer):
    """Reshape ``(N, d_1, ..., d_k) -> (N, d_1 ... d_k)`` (row-major, like Keras on NHWC)."""

    def forward(self, x: Array, training: bool = False) -> Array:
        self.cache = x.shape
        return x.reshape(x.shape[0], -1)

    def backward(self, dout: Array) -> Array:
        return dout.reshape(self._require_cache())


class Dropout(Layer):
    """Inverted dropout: in training ``a = x (.) m / (1 - p)`` with ``m_i ~ Bernoulli(1 - p)``.

    Dividing by the keep probability ``1 - p`` at training time keeps ``E[a] = x``, so
    inference is the identity (no rescaling needed). Backward: ``dx = dout (.) m / (1 - p)``.
    Shapes: ``(...) -> (...)``.
    """

    def __init__(self, rate: float, *, seed: int | np.random.Generator | None = None,
                 name: str | None = None) -> None:
        super().__init__(name)
        if not 0.0 <= rate < 1.0:
            raise ValueError(f"Dropout: rate must be in [0, 1), got {rate}")
        self.rate = rate
        self.rng = as_generator(seed)
        self._identity = True  # whether the last forward pass was the identity (inference)

    def forward(self, x: Array, training: bool = False) -> Array:
        if not training or self.rate == 0.0:
            self.cache = None
            self._identity = True
            return x
        self._identity = False
        keep = 1.0 - self.rate
        mask = (self.rng.random(x.shape) < keep).astype(x.dtype) / x.dtype.type(keep)
        self.cache = mask
        return x * mask

    def backward(self, dout: Array) -> Array:
        if self._identity:
            return dout
        return dout * self._require_cache()


def _normalize_backward(dxhat: Array, xhat: Array, inv_std: Array, axes: tuple[int, ...]) -> Array:
    """``dL/dx`` for ``xhat = (x - mu) / sqrt(var + eps)`` with batch statistics over ``axes``.

    Differentiating through ``mu`` and ``var`` (both depend on every x in the group of
    ``m`` elements) gives the compact form::

        dx = (inv_std / m) (m dxhat - sum(dxhat) - xhat sum(dxhat (.) xhat))
    """
    m = 1
    for ax in axes:
        m *= dxhat.shape[ax]
    sum_d = dxhat.sum(axis=axes, keepdims=True)
    sum_dx = (dxhat * xhat).sum(axis=axes, keepdims=True)
    return (inv_std / m) * (m * dxhat - sum_d - xhat * sum_dx)


class BatchNorm(Layer):
    """Batch normalisation over every axis but the last (features / channels).

    Training: ``mu_B, sigma^2_B`` are the batch mean and (biased) variance per channel,
    ``xhat = (x - mu_B) / sqrt(sigma^2_B + eps)``, ``y = gamma (.) xhat + beta``; the running
    statistics follow Keras: ``running = momentum * running + (1 - momentum) * batch``.
    Inference: the running statistics replace the batch ones, so the layer is a fixed
    affine map per channel (and its backward is just ``dout (.) gamma / sqrt(var + eps)``).

    Shapes: ``(N, C)`` or ``(N, H, W, C)`` in and out; ``gamma``, ``beta`` ``(C,)``.
    Defaults equal ``keras.layers.BatchNormalization`` (momentum 0.99, epsilon 1e-3).
    """

    def __init__(self, momentum: float = 0.99, epsilon: float = 1e-3, *,
                 dtype: type = np.float32, name: str | None = None) -> None:
        super().__init__(name)
        self.momentum = momentum
        self.epsilon = epsilon
        self.dtype = dtype

    def build(self, input_shape: tuple[int, ...]) -> None:
        c = int(input_shape[-1])
        self.params["gamma"] = ones((c,), dtype=self.dtype)
        self.params["beta"] = zeros((c,), dtype=self.dtype)
        self.running_mean = zeros((c,), dtype=self.dtype)
        self.running_var = ones((c,), dtype=self.dtype)
        self.built = True

    def forward(self, x: Array, training: bool = False) -> Array:
        self._ensure_built(x)
        # work on the (M, C) view, M = all positions of all examples; einsum's column sums
        # are several times faster than x.mean(axis=(0, 1, 2)) on NHWC arrays
        x2 = x.reshape(-1, x.shape[-1])
        m = x2.shape[0]
        if training:
            mu = np.einsum("mc->c", x2) / m
            xc = x2 - mu
            var = np.einsum("mc,mc->c", xc, xc) / m
            self.running_mean *= self.momentum
            self.running_mean += (1 - self.momentum) * mu
            self.running_var *= self.momentum
            self.running_var += (1 - self.momentum) * var
        else:
            xc, var = x2 - self.running_mean, self.running_var
        inv_std = (1.0 / np.sqrt(var + self.epsilon)).astype(x.dtype)
        xhat = xc * inv_std
        self.cache = (xhat, inv_std, training, x.shape)
        return (xhat * self.params["gamma"] + self.params["beta"]).reshape(x.shape)

    def backward(self, dout: Array) -> Array:
        xhat, inv_std, training, shape = self._require_cache()
        gamma = self.params["gamma"]
        d2 = dout.reshape(-1, shape[-1])
        self.grads["gamma"] = np.einsum("mc,mc->c", d2, xhat)
        self.grads["beta"] = np.einsum("mc->c", d2)
        if not training:
            return (d2 * (gamma * inv_std)).reshape(shape)
        # _normalize_backward with the sums already at hand: sum(dxhat) = gamma dbeta,
        # sum(dxhat xhat) = gamma dgamma
        m = d2.shape[0]
        dx = (gamma * inv_std / m) * (m * d2 - self.grads["beta"] - xhat * self.grads["gamma"])
        return dx.reshape(shape)


class LayerNorm(Layer):
    """Layer normalisation: statistics per example over the last axis (no batch coupling).

    ``mu_n = mean_c x_nc``, ``sigma^2_n = var_c x_nc``, ``y = gamma (.) (x - mu_n) /
    sqrt(sigma^2_n + eps) + beta``; identical in training and inference.
    Shapes: ``(..., C)`` in and out; ``gamma``, ``beta`` ``(C,)``. Defaults equal
    ``keras.layers.LayerNormalization`` (axis -1, epsilon 1e-3).
    """

    def __init__(self, epsilon: float = 1e-3, *, dtype: type = np.float32,
                 name: str | None = None) -> None:
        super().__init__(name)
        self.epsilon = epsilon
        self.dtype = dtype

    def build(self, input_shape: tuple[int, ...]) -> None:
        c = int(input_shape[-1])
        self.params["gamma"] = ones((c,), dtype=self.dtype)
        self.params["beta"] = zeros((c,), dtype=self.dtype)
        self.built = True

    def forward(self, x: Array, training: bool = False) -> Array:
        self._ensure_built(x)
        mu = x.mean(axis=-1, keepdims=True)
        var = x.var(axis=-1, keepdims=True)
        inv_std = 1.0 / np.sqrt(var + self.epsilon)
        xhat = (x - mu) * inv_std
        self.cache = (xhat, inv_std)
        return self.params["gamma"] * xhat + self.params["beta"]

    def backward(self, dout: Array) -> Array:
        xhat, inv_std = self._require_cache()
        batch_axes = tuple(range(dout.ndim - 1))
        self.grads["gamma"] = (dout * xhat).sum(axis=batch_axes)
        self.grads["beta"] = dout.sum(axis=batch_axes)
        return _normalize_backward(dout * self.params["gamma"], xhat, inv_std, (dout.ndim - 1,))
