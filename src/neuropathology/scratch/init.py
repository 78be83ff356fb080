"""Weight initialisers: keep the variance of ``a^(l)`` and ``delta^(l)`` steady with depth.

For a layer with ``fan_in`` inputs and ``fan_out`` outputs (for a conv kernel
``(k_h, k_w, C_in, C_out)``: ``fan_in = k_h k_w C_in``, ``fan_out = k_h k_w C_out``):

* Glorot/Xavier (tanh, sigmoid, linear): ``Var[W] = 2 / (fan_in + fan_out)``, i.e.
  uniform on ``[-l, l]`` with ``l = sqrt(6 / (fan_in + fan_out))``.
* He/Kaiming (ReLU, which zeroes half its inputs): ``Var[W] = 2 / fan_in``.

The "normal" variants draw from a normal truncated at two standard deviations, like
Keras, rescaled (by 0.8796...) so the *truncated* distribution has the target variance.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np

from .base import Array

Initializer = Callable[[tuple[int, ...], np.random.Generator, "np.dtype | type"], Array]

# std of a standard normal truncated to [-2, 2]
_TRUNC_STD = 0.87962566103423978


def compute_fans(shape: tuple[int, ...]) -> tuple[int, int]:
    """``(fan_in, fan_out)`` of a weight of ``shape``.

    Dense weights here are ``(n_out, n_in)`` (``W_ij`` from neuron j to neuron i);
    conv kernels are TensorFlow's ``(k_h, k_w, C_in, C_out)``.
    """
    if len(shape) == 2:
        n_out, n_in = shape
        return n_in, n_out
    if len(shape) == 4:
        receptive = shape[0] * shape[1]
        return receptive * shape[2], receptive * shape[3]
    size = int(np.prod(shape))
    return size, size


def _truncated_normal(shape: tuple[int, ...], std: float, rng: np.random.Generator) -> Array:
    out = rng.standard_normal(shape)
    bad = np.abs(out) > 2
    while bad.any():  # resample the tails: exactly a normal truncated at 2 sigma
        out[bad] = rng.standard_normal(int(bad.sum()))
        bad = np.abs(out) > 2
    return out * (std / _TRUNC_STD)


def glorot_uniform(shape: tuple[int, ...], rng: np.random.Generator,
                   dtype: np.dtype | type = np.float32) -> Array:
    """``U[-l, l]``, ``l = sqrt(6 / (fan_in + fan_out))`` (Glorot & Bengio, 2010)."""
    fan_in, fan_out = compute_fans(shape)
    limit = math.sqrt(6.0 / (fan_in + fan_out))
    return rng.uniform(-limit, limit, size=shape).astype(dtype)


def glorot_normal(shape: tuple[int, ...], rng: np.random.Generator,
                  dtype: np.dtype | type = np.float32) -> Array:
    """Truncated normal with ``std = sqrt(2 / (fan_in + fan_out))``."""
    fan_in, fan_out = compute_fans(shape)
    return _truncated_normal(shape, math.sqrt(2.0 / (fan_in + fan_out)), rng).astype(dtype)


def he_normal(shape: tuple[int, ...], rng: np.random.Generator,
              dtype: np.dtype | type = np.float32) -> Array:
    """Truncated normal with ``std = sqrt(2 / fan_in)`` (He et al., 2015) -- for ReLU nets."""
    fan_in, _ = compute_fans(shape)
    return _truncated_normal(shape, math.sqrt(2.0 / fan_in), rng).astype(dtype)


def he_uniform(shape: tuple[int, ...], rng: np.random.Generator,
               dtype: np.dtype | type = np.float32) -> Array:
    """``U[-l, l]``, ``l = sqrt(6 / fan_in)`` (variance ``2 / fan_in``)."""
    fan_in, _ = compute_fans(shape)
    limit = math.sqrt(6.0 / fan_in)
    return rng.uniform(-limit, limit, size=shape).astype(dtype)


def zeros(shape: tuple[int, ...], rng: np.random.Generator | None = None,
          dtype: np.dtype | type = np.float32) -> Array:
    """All zeros (biases; BatchNorm's beta)."""
    return np.zeros(shape, dtype=dtype)


def ones(shape: tuple[int, ...], rng: np.random.Generator | None = None,
         dtype: np.dtype | type = np.float32) -> Array:
    """All ones (BatchNorm's gamma)."""
    return np.ones(shape, dtype=dtype)


INITIALIZERS: dict[str, Initializer] = {
    "glorot_uniform": glorot_uniform,
    "xavier_uniform": glorot_uniform,
    "glorot_normal": glorot_normal,
    "xavier_normal": glorot_normal,
    "he_normal": he_normal,
    "he_uniform": he_uniform,
    "zeros": zeros,
    "ones": ones,
}


def get_initializer(name: str | Initializer) -> Initializer:
    """An initialiser by name (``"he_normal"``, ``"glorot_uniform"``, ...) or pass-through."""
    if callable(name):
        return name
    try:
        return INITIALIZERS[name]
    except KeyError:
        raise ValueError(f"unknown initializer {name!r}; choose one of {sorted(INITIALIZERS)}") from None
