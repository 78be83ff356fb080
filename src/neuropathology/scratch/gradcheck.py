"""Numerical gradient checking: the test every hand-written backward pass must pass.

Centred differences approximate a partial derivative with error ``O(h^2)``::

    df/dx_i ~ (f(x + h e_i) - f(x - h e_i)) / (2 h)

(one-sided differences are only ``O(h)``). In float64 with ``h ~ 1e-5`` the truncation
error (``~h^2 f'''``) and the round-off error (``~eps_mach |f| / h``) are both near
``1e-10``, so a correct analytic gradient agrees to a relative error around ``1e-8``
or better. In float32 round-off dominates and nothing below ``1e-3`` can be trusted --
check in float64.

Relative error (CS231n): ``max_i |a_i - n_i| / max(1e-8, |a_i| + |n_i|)``. Rules of thumb:
``< 1e-7`` correct; ``1e-7 .. 1e-5`` suspicious unless the function has kinks (ReLU,
max-pool) near the sampled points, where a difference can straddle the kink;
``> 1e-3`` a bug.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

import numpy as np

from .base import Array, Layer
from .losses import Loss


def rel_error(a: Array, b: Array) -> float:
    """``max |a - b| / max(1e-8, |a| + |b|)`` element-wise (CS231n's relative error)."""
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    return float(np.max(np.abs(a - b) / np.maximum(1e-8, np.abs(a) + np.abs(b))))


def numerical_gradient(f: Callable[[], float], x: Array, h: float = 1e-5) -> Array:
    """``dF/dx`` by centred differences, perturbing ``x`` *in place* (restored afterwards).

    ``f`` takes no arguments and reads ``x`` (e.g. a closure over a layer whose parameter
    ``x`` is): this lets the same routine differentiate inputs and parameters.
    """
    # A scalar output is the vector-Jacobian product with dout = 1.
    return numerical_gradient_array(f, x, np.float64(1.0), h)


def numerical_gradient_array(f: Callable[[], Array], x: Array, dout: Array,
                             h: float = 1e-5) -> Array:
    """``sum(dout (.) df/dx_i)`` for an array-valued ``f``: the vector-Jacobian product a
    ``backward(dout)`` must return, by centred differences (CS231n's ``eval_numerical_gradient_array``).

    The outputs are subtracted *before* the weighted sum, ``sum(dout (.) (f(x+h) - f(x-h)))``:
    outputs that do not depend on ``x_i`` cancel exactly, which avoids the round-off of
    differencing two large sums and gains one or two digits over ``numerical_gradient``
    applied to ``sum(f() * dout)``.
    """
    if x.dtype != np.float64:
        raise TypeError(f"gradient checks need float64 arrays, got {x.dtype}: cast with astype")
    grad = np.zeros_like(x)
    it = np.nditer(x, flags=["multi_index"], op_flags=[["readwrite"]])
    for _ in it:
        idx = it.multi_index
        old = x[idx]
        x[idx] = old + h
        f_plus = np.array(f(), dtype=np.float64)
        x[idx] = old - h
        f_minus = np.array(f(), dtype=np.float64)
        x[idx] = old
        grad[idx] = np.sum((f_plus - f_minus) * dout) / (2 * h)
    return grad


def check_layer(layer: Layer, x: Array, *, training: bool = True, seed: int = 0,
                h: float = 1e-5, before_forward: Callable[[], None] | None = None
                ) -> dict[str, float]:
    """Relative errors of ``layer.backward`` vs centred differences, for ``x`` and each param.

    The scalar checked is ``L = sum(forward(x) (.) R)`` with a fixed random ``R``, whose
    gradient w.r.t. the output is exactly ``R`` -- so every output entry is exercised
    with a generic weight. ``before_forward`` is called before every forward pass (e.g.
    to reseed a Dropout layer so its mask stays fixed). Returns ``{"x": err, name: err}``.
    """
    rng = np.random.default_rng(seed)

    def run() -> Array:
        if before_forward is not None:
            before_forward()
        return layer.forward(x, training=training)

    out = run()
    R = rng.standard_normal(out.shape)
    run()
    dx = layer.backward(R)
    analytic: dict[str, Array] = {"x": dx, **{k: v.copy() for k, v in layer.gradients().items()}}

    errors = {"x": rel_error(dx, numerical_gradient_array(run, x, R, h))}
    for name, p in layer.parameters().items():
        errors[name] = rel_error(analytic[name], numerical_gradient_array(run, p, R, h))
    return errors


def check_loss(loss: Loss, y_pred: Array, y_true: Array, h: float = 1e-5) -> float:
    """Relative error of ``loss.backward()`` vs centred differences of ``loss(y_pred, y_true)``."""
    loss.forward(y_pred, y_true)
    analytic = loss.backward()
    numeric = numerical_gradient(lambda: loss.forward(y_pred, y_true), y_pred, h)
    return rel_error(analytic, numeric)


def check_gradients(analytic: Mapping[str, Array], f: Callable[[], float],
                    arrays: Mapping[str, Array], h: float = 1e-5) -> dict[str, float]:
    """Compare ``analytic[name]`` with centred differences of ``f`` w.r.t. ``arrays[name]``."""
    return {name: rel_error(analytic[name], numerical_gradient(f, arrays[name], h))
            for name in arrays}
