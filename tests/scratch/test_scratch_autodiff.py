"""The tiny autodiff engine against ``tf.GradientTape`` and centred differences (float64)."""

from __future__ import annotations

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402
import pytest  # noqa: E402
import tensorflow as tf  # noqa: E402

from neuropathology.scratch.autodiff import Tensor, unbroadcast  # noqa: E402
from neuropathology.scratch.gradcheck import numerical_gradient, rel_error  # noqa: E402


def _inputs(seed: int = 0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    return {
        "X": rng.standard_normal((5, 3)),
        "W": rng.standard_normal((3, 4)),
        "b": rng.standard_normal(4),          # broadcast over rows
        "s": rng.standard_normal((5, 1)),     # broadcast over columns
        "c": rng.uniform(0.5, 2.0, (1, 4)),   # positive: used in log
    }


def expression(v, lib: str):
    """One composite expression, written once for both engines.

    Uses broadcasting (b, s, c), repeated use of nodes (h twice, X in two branches),
    matmul, exp / log / tanh / relu / sigmoid, division, powers, sum and mean.
    """
    if lib == "tf":
        tanh, relu, exp, log, sig = tf.tanh, tf.nn.relu, tf.exp, tf.math.log, tf.sigmoid

        def total(t, axis=None, keepdims=False):
            return tf.reduce_sum(t, axis=axis, keepdims=keepdims)

        def mean(t, axis=None):
            return tf.reduce_mean(t, axis=axis)

    else:
        tanh, relu, exp, log, sig = (lambda t: t.tanh()), (lambda t: t.relu()), \
            (lambda t: t.exp()), (lambda t: t.log()), (lambda t: t.sigmoid())

        def total(t, axis=None, keepdims=False):
            return t.sum(axis=axis, keepdims=keepdims)

        def mean(t, axis=None):
            return t.mean(axis=axis)

    X, W, b, s, c = v["X"], v["W"], v["b"], v["s"], v["c"]
    h = tanh(X @ W + b) * s                      # (5, 4)
    g = relu(h) + h * h                          # h used twice
    k = log(exp(g * 0.5) + c) / c                # exp, log, broadcast division
    r = sig(total(X, axis=1, keepdims=True)) * 2.0 - 1.0  # X used again
    rows = mean(k * r, axis=1)                    # (5,)
    return total(rows**2) + mean(g) - total(s * s) * 0.1


def test_composite_expression_matches_tensorflow() -> None:
    arrays = _inputs()
    ours = {k: Tensor(a) for k, a in arrays.items()}
    out = expression(ours, "np")
    out.backward()

    tf_vars = {k: tf.Variable(a) for k, a in arrays.items()}
    with tf.GradientTape() as tape:
        tf_out = expression(tf_vars, "tf")
    tf_grads = tape.gradient(tf_out, list(tf_vars.values()))

    assert float(out.data) == pytest.approx(float(tf_out.numpy()), rel=1e-12)
    for (name, t), g in zip(ours.items(), tf_grads, strict=True):
        assert t.grad.shape == arrays[name].shape
        np.testing.assert_allclose(t.grad, g.numpy(), rtol=1e-10, atol=1e-12, err_msg=name)


def test_matches_centred_differences() -> None:
    arrays = _inputs(1)
    ours = {k: Tensor(a) for k, a in arrays.items()}
    expression(ours, "np").backward()
    for name, a in arrays.items():
        # Tensor(a) wraps ``a`` without copying, so the in-place perturbation is seen
        num = numerical_gradient(
            lambda: float(expression({k: Tensor(v) for k, v in arrays.items()}, "np").data), a)
        assert rel_error(ours[name].grad, num) < 1e-7, name


def test_repeated_use_accumulates() -> None:
    x = Tensor(3.0)
    y = x * x + x  # dy/dx = 2x + 1 = 7
    y.backward()
    assert float(x.grad) == pytest.approx(7.0)
    a = Tensor(np.array([1.0, 2.0]))
    z = (a * 2.0 + a.exp()).sum() + (a * a).sum()  # a in three places
    z.backward()
    np.testing.assert_allclose(a.grad, 2.0 + np.exp([1.0, 2.0]) + 2 * np.array([1.0, 2.0]))


def test_backward_twice_recomputes_instead_of_doubling() -> None:
    x = Tensor(np.array([1.0, -2.0, 3.0]))
    y = (x * x).sum()
    y.backward()
    first = x.grad.copy()
    y.backward()
    np.testing.assert_array_equal(x.grad, first)  # not 2 * first
    np.testing.assert_allclose(first, 2 * x.data)


def test_broadcasting_reduction_and_errors() -> None:
    g = np.ones((4, 2, 3))
    assert unbroadcast(g, (3,)).tolist() == [8.0, 8.0, 8.0]
    assert unbroadcast(g, (2, 1)).shape == (2, 1)
    assert unbroadcast(g, (1, 2, 1))[0, 0, 0] == 12.0
    with pytest.raises(ValueError, match="non-scalar"):
        (Tensor(np.ones(3)) * 2.0).backward()
    t = Tensor(np.ones(3)) * 2.0
    t.backward(np.array([1.0, 2.0, 3.0]))  # explicit seed for a non-scalar output
    assert t._parents[0].grad.tolist() == [2.0, 4.0, 6.0]


def test_reflected_operators_and_deep_graph() -> None:
    x = Tensor(2.0)
    y = 1.0 / x - 3.0 + 2.0 * x - (4.0 - x)  # dy/dx = -1/x^2 + 2 + 1
    y.backward()
    assert float(x.grad) == pytest.approx(-0.25 + 3.0)
    z = x
    for _ in range(5000):  # deeper than Python's recursion limit
        z = z * 1.0001
    z.backward()
    assert float(x.grad) == pytest.approx(1.0001**5000)
