"""Activation functions ``a = g(z)`` and their derivatives, as functions and as layers.

Every activation acts element-wise except softmax, so its backward pass is the
Hadamard product ``delta = dL/da (.) g'(z)``. Softmax couples the entries of a row;
its vector-Jacobian product is ``dL/dz = s (.) (dL/ds - <dL/ds, s>)``.

Shapes: any ``(...)`` in, the same shape out (softmax acts on the last axis).
"""

from __future__ import annotations

import math

import numpy as np
from scipy.special import erf

from .base import Array, Layer

# ---------------------------------------------------------------- functions


def relu(z: Array) -> Array:
    """``max(z, 0)``: the default hidden activation; gradient 1 for z > 0, else 0."""
    return np.maximum(z, 0)


def relu_grad(z: Array) -> Array:
    """``g'(z) = 1[z > 0]`` (we take the sub-gradient 0 at the kink z = 0, as TF does)."""
    return (z > 0).astype(z.dtype)


def relu6(z: Array) -> Array:
    """``min(max(z, 0), 6)``: MobileNetV2's bounded ReLU (robust in low precision)."""
    return np.clip(z, 0, 6)


def relu6_grad(z: Array) -> Array:
    """``1[0 < z < 6]``."""
    return ((z > 0) & (z < 6)).astype(z.dtype)


def leaky_relu(z: Array, alpha: float = 0.2) -> Array:
    """``z`` for z > 0, ``alpha z`` otherwise (0.2 as in ``keras.activations.leaky_relu``).

    Keras's *layer* ``keras.layers.LeakyReLU`` defaults to a slope of 0.3, not 0.2.
    """
    return np.where(z > 0, z, alpha * z)


def leaky_relu_grad(z: Array, alpha: float = 0.2) -> Array:
    """``1`` for z > 0 else ``alpha``."""
    return np.where(z > 0, 1.0, alpha).astype(z.dtype)


def sigmoid(z: Array) -> Array:
    """Logistic ``sigma(z) = 1 / (1 + e^{-z})``, computed without overflow for large |z|.

    For z >= 0 use ``1/(1+e^{-z})``; for z < 0 use ``e^{z}/(1+e^{z})``: both only ever
    exponentiate a non-positive number.
    """
    e = np.exp(-np.abs(z))
    return np.where(z >= 0, 1.0 / (1.0 + e), e / (1.0 + e)).astype(z.dtype, copy=False)


def sigmoid_grad(z: Array) -> Array:
    """``sigma'(z) = sigma(z) (1 - sigma(z))`` (at most 1/4: one source of vanishing gradients)."""
    s = sigmoid(z)
    return s * (1 - s)


def tanh(z: Array) -> Array:
    """Hyperbolic tangent, ``tanh z = 2 sigma(2z) - 1`` (zero-centred, saturating)."""
    return np.tanh(z)


def tanh_grad(z: Array) -> Array:
    """``1 - tanh^2 z``."""
    t = np.tanh(z)
    return 1 - t * t


def softmax(z: Array, axis: int = -1) -> Array:
    """``s_i = e^{z_i} / sum_j e^{z_j}``, shifted by ``max_j z_j`` so no exponent overflows.

    The shift cancels in the ratio (softmax is invariant to adding a constant per row).
    """
    shifted = z - np.max(z, axis=axis, keepdims=True)
    e = np.exp(shifted)
    return e / np.sum(e, axis=axis, keepdims=True)


def log_softmax(z: Array, axis: int = -1) -> Array:
    """``log s_i = z_i - logsumexp(z)``, exact even where ``s_i`` underflows to 0."""
    shifted = z - np.max(z, axis=axis, keepdims=True)
    return shifted - np.log(np.sum(np.exp(shifted), axis=axis, keepdims=True))


def softmax_backward(dout: Array, s: Array, axis: int = -1) -> Array:
    """Vector-Jacobian product of softmax: ``dL/dz = s (.) (dout - sum(dout (.) s))``.

    The Jacobian is ``diag(s) - s s^T``; multiplying it by ``dout`` never needs the
    ``(C, C)`` matrix.
    """
    return s * (dout - np.sum(dout * s, axis=axis, keepdims=True))


_SQRT_2_OVER_PI = math.sqrt(2.0 / math.pi)


def gelu(z: Array, approximate: bool = False) -> Array:
    """Gaussian error linear unit ``z Phi(z)`` (``Phi`` the standard normal CDF).

    ``approximate=True`` uses the tanh form ``0.5 z (1 + tanh(sqrt(2/pi)(z + 0.044715 z^3)))``;
    both match ``tf.nn.gelu`` with the same flag.
    """
    if approximate:
        return 0.5 * z * (1 + np.tanh(_SQRT_2_OVER_PI * (z + 0.044715 * z**3)))
    return (0.5 * z * (1 + erf(z / math.sqrt(2.0)))).astype(z.dtype, copy=False)


def gelu_grad(z: Array, approximate: bool = False) -> Array:
    """``d/dz [z Phi(z)] = Phi(z) + z phi(z)`` (or the derivative of the tanh form)."""
    if approximate:
        u = _SQRT_2_OVER_PI * (z + 0.044715 * z**3)
        t = np.tanh(u)
        du = _SQRT_2_OVER_PI * (1 + 3 * 0.044715 * z**2)
        return 0.5 * (1 + t) + 0.5 * z * (1 - t * t) * du
    cdf = 0.5 * (1 + erf(z / math.sqrt(2.0)))
    pdf = np.exp(-0.5 * z * z) / math.sqrt(2 * math.pi)
    return (cdf + z * pdf).astype(z.dtype, copy=False)


# ---------------------------------------------------------------- layers


class _Elementwise(Layer):
    """``a = g(z)`` element-wise; backward returns ``delta = dout (.) g'(z)``."""

    def _g(self, z: Array) -> Array:  # pragma: no cover - abstract
        raise NotImplementedError

    def _dg(self, z: Array) -> Array:  # pragma: no cover - abstract
        raise NotImplementedError

    def forward(self, x: Array, training: bool = False) -> Array:
        self.cache = x
        return self._g(x)

    def backward(self, dout: Array) -> Array:
        z = self._require_cache()
        return dout * self._dg(z)


class ReLU(_Elementwise):
    """``a = max(z, 0)``. Shapes: ``(...) -> (...)``."""

    def _g(self, z: Array) -> Array:
        return relu(z)

    def _dg(self, z: Array) -> Array:
        return relu_grad(z)


class ReLU6(_Elementwise):
    """``a = min(max(z, 0), 6)`` (MobileNetV2). Shapes: ``(...) -> (...)``."""

    def _g(self, z: Array) -> Array:
        return relu6(z)

    def _dg(self, z: Array) -> Array:
        return relu6_grad(z)


class LeakyReLU(_Elementwise):
    """``a = z`` if z > 0 else ``alpha z``. Shapes: ``(...) -> (...)``."""

    def __init__(self, alpha: float = 0.2, name: str | None = None) -> None:
        super().__init__(name)
        self.alpha = alpha

    def _g(self, z: Array) -> Array:
        return leaky_relu(z, self.alpha)

    def _dg(self, z: Array) -> Array:
        return leaky_relu_grad(z, self.alpha)


class Sigmoid(_Elementwise):
    """``a = sigma(z)``. Shapes: ``(...) -> (...)``."""

    def _g(self, z: Array) -> Array:
        return sigmoid(z)

    def _dg(self, z: Array) -> Array:
        return sigmoid_grad(z)


class Tanh(_Elementwise):
    """``a = tanh(z)``. Shapes: ``(...) -> (...)``."""

    def _g(self, z: Array) -> Array:
        return tanh(z)

    def _dg(self, z: Array) -> Array:
        return tanh_grad(z)


class GELU(_Elementwise):
    """``a = z Phi(z)`` (exact, or the tanh approximation). Shapes: ``(...) -> (...)``."""

    def __init__(self, approximate: bool = False, name: str | None = None) -> None:
        super().__init__(name)
        self.approximate = approximate

    def _g(self, z: Array) -> Array:
        return gelu(z, self.approximate)

    def _dg(self, z: Array) -> Array:
        return gelu_grad(z, self.approximate)


class Softmax(Layer):
    """``a = softmax(z)`` over the last axis. Shapes: ``(N, C) -> (N, C)``.

    For classification prefer :class:`~neuropathology.scratch.losses.SoftmaxCrossEntropy`
    on the logits: the fused gradient ``s - y`` is exact and cheaper.
    """

    def forward(self, x: Array, training: bool = False) -> Array:
        s = softmax(x)
        self.cache = s
        return s

    def backward(self, dout: Array) -> Array:
        return softmax_backward(dout, self._require_cache())


ACTIVATIONS: dict[str, type[Layer]] = {
    "relu": ReLU,
    "relu6": ReLU6,
    "leaky_relu": LeakyReLU,
    "sigmoid": Sigmoid,
    "tanh": Tanh,
    "gelu": GELU,
    "softmax": Softmax,
}


def get_activation(name: str) -> Layer:
    """An activation layer by its Keras-style name (``"relu"``, ``"gelu"``, ...)."""
    try:
        return ACTIVATIONS[name]()
    except KeyError:
        raise ValueError(
            f"unknown activation {name!r}; choose one of {sorted(ACTIVATIONS)}"
        ) from None
