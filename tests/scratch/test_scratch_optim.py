"""Optimisers and learning-rate schedules against ``keras.optimizers`` (Keras 3).

Each optimiser runs 20 steps on the quadratic ``f(theta) = 1/2 theta^T A theta - c^T theta``
plus a fixed random gradient perturbation per step; the gradient is evaluated at the
optimiser's *own* current parameters, so any difference in the update rule compounds.
The trajectories must agree to 1e-6, in float32 on both sides: Keras 3 rounds some
hyper-parameters to float32 even for float64 variables (Adam's ``beta_2**t`` with
``beta_2 = 0.999`` differs from the float64 value by 6e-6 relative), so float32 is the
like-for-like comparison. Schedules are compared to 1e-7 absolute for the same reason:
Keras evaluates them in float32.
"""

from __future__ import annotations

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402

from neuropathology.scratch import optim, schedules  # noqa: E402
from neuropathology.scratch.regularization import (  # noqa: E402
    clip_by_global_norm,
    clip_by_value,
    l1_penalty,
    l2_penalty,
)

STEPS = 20


def _problem(seed: int = 0):
    rng = np.random.default_rng(seed)
    M = rng.standard_normal((4, 4))
    A = M @ M.T / 4 + np.eye(4) * 0.5  # symmetric positive definite
    c = rng.standard_normal(4)
    noise = rng.standard_normal((STEPS, 4)) * 0.3
    theta0 = rng.standard_normal(4)
    return A, c, noise, theta0


def _grad(A, c, noise, t, theta):
    return A @ theta - c + noise[t]


def run_ours(opt: optim.Optimizer, seed: int = 0) -> np.ndarray:
    A, c, noise, theta0 = _problem(seed)
    theta = theta0.astype(np.float32)
    path = []
    for t in range(STEPS):
        opt.step({"theta": theta}, {"theta": _grad(A, c, noise, t, theta).astype(np.float32)})
        path.append(theta.copy())
    return np.array(path)


def run_keras(opt, seed: int = 0) -> np.ndarray:
    A, c, noise, theta0 = _problem(seed)
    var = keras.Variable(theta0.astype(np.float32), dtype="float32")
    path = []
    for t in range(STEPS):
        g = _grad(A, c, noise, t, np.asarray(var.numpy()))
        opt.apply_gradients([(keras.ops.convert_to_tensor(g, dtype="float32"), var)])
        path.append(np.asarray(var.numpy()).copy())
    return np.array(path)


# learning rates are powers of two: exactly representable in Keras' float32 lr variable
CASES = {
    "sgd": (lambda: optim.SGD(0.125), lambda: keras.optimizers.SGD(0.125)),
    "momentum": (lambda: optim.Momentum(0.0625, momentum=0.9),
                 lambda: keras.optimizers.SGD(0.0625, momentum=0.9)),
    "nesterov": (lambda: optim.Nesterov(0.0625, momentum=0.8),
                 lambda: keras.optimizers.SGD(0.0625, momentum=0.8, nesterov=True)),
    "adagrad": (lambda: optim.AdaGrad(0.25), lambda: keras.optimizers.Adagrad(0.25)),
    "rmsprop": (lambda: optim.RMSprop(0.03125), lambda: keras.optimizers.RMSprop(0.03125)),
    "rmsprop_centered_momentum": (
        lambda: optim.RMSprop(0.015625, rho=0.8, momentum=0.5, centered=True, epsilon=1e-6),
        lambda: keras.optimizers.RMSprop(0.015625, rho=0.8, momentum=0.5, centered=True,
                                         epsilon=1e-6)),
    "adam": (lambda: optim.Adam(0.0625), lambda: keras.optimizers.Adam(0.0625)),
    "adam_amsgrad": (lambda: optim.Adam(0.0625, beta_1=0.8, beta_2=0.99, epsilon=1e-3,
                                        amsgrad=True),
                     lambda: keras.optimizers.Adam(0.0625, beta_1=0.8, beta_2=0.99, epsilon=1e-3,
                                                   amsgrad=True)),
    "adamw": (lambda: optim.AdamW(0.0625, weight_decay=0.5),
              lambda: keras.optimizers.AdamW(0.0625, weight_decay=0.5)),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_trajectory_matches_keras(name: str) -> None:
    ours, theirs = CASES[name]
    a, b = run_ours(ours()), run_keras(theirs())
    assert np.abs(a - b).max() < 1e-6, f"{name}: max deviation {np.abs(a - b).max():.3g}"
    assert np.abs(a[-1] - a[0]).max() > 1e-3  # the parameters actually moved


def test_schedule_drives_the_learning_rate_like_keras() -> None:
    ours = optim.Adam(schedules.ExponentialDecay(0.125, 5, 0.5))
    theirs = keras.optimizers.Adam(keras.optimizers.schedules.ExponentialDecay(0.125, 5, 0.5))
    assert np.abs(run_ours(ours) - run_keras(theirs)).max() < 1e-6


def test_optimizer_errors() -> None:
    with pytest.raises(KeyError, match="no gradient"):
        optim.SGD(0.1).step({"w": np.zeros(2)}, {})
    with pytest.raises(ValueError, match="shape"):
        optim.SGD(0.1).step({"w": np.zeros(2)}, {"w": np.zeros(3)})


STEPS_TO_CHECK = [0, 1, 2, 4, 5, 9, 10, 11, 19, 20, 21, 37, 50, 99, 100, 150, 400]


def _keras_values(schedule) -> np.ndarray:
    return np.array([float(schedule(s)) for s in STEPS_TO_CHECK])


def _our_values(schedule) -> np.ndarray:
    return np.array([schedule(s) for s in STEPS_TO_CHECK])


KS = keras.optimizers.schedules
SCHEDULES = {
    "exponential": (schedules.ExponentialDecay(0.1, 10, 0.5),
                    KS.ExponentialDecay(0.1, 10, 0.5)),
    "exponential_staircase": (schedules.ExponentialDecay(0.1, 7, 0.3, staircase=True),
                              KS.ExponentialDecay(0.1, 7, 0.3, staircase=True)),
    "cosine": (schedules.CosineDecay(0.1, 100, alpha=0.1), KS.CosineDecay(0.1, 100, alpha=0.1)),
    "cosine_warmup": (schedules.CosineDecay(0.0, 80, warmup_target=0.2, warmup_steps=20),
                      KS.CosineDecay(0.0, 80, warmup_target=0.2, warmup_steps=20)),
    "restarts": (schedules.CosineDecayRestarts(0.1, 10, t_mul=2.0, m_mul=0.5, alpha=0.05),
                 KS.CosineDecayRestarts(0.1, 10, t_mul=2.0, m_mul=0.5, alpha=0.05)),
    "restarts_t1": (schedules.CosineDecayRestarts(0.1, 20, t_mul=1.0),
                    KS.CosineDecayRestarts(0.1, 20, t_mul=1.0)),
    # step decay every 10 steps == Keras' piecewise constant with boundaries 9, 19, ...
    "step": (schedules.StepDecay(0.1, 10, gamma=0.5),
             KS.PiecewiseConstantDecay([9, 19, 29, 39, 49, 59, 69, 79, 89, 99, 109, 119, 129,
                                        139, 149, 159, 169, 179, 189, 199, 209],
                                       [0.1 * 0.5**k for k in range(22)])),
    "piecewise": (schedules.PiecewiseConstant([10, 20], [1.0, 0.5, 0.1]),
                  KS.PiecewiseConstantDecay([10, 20], [1.0, 0.5, 0.1])),
}


@pytest.mark.parametrize("name", sorted(SCHEDULES))
def test_schedules_match_keras(name: str) -> None:
    ours, theirs = SCHEDULES[name]
    sel = slice(None) if name != "step" else slice(0, -1)  # 400 is past the listed boundaries
    np.testing.assert_allclose(_our_values(ours)[sel], _keras_values(theirs)[sel],
                               rtol=0, atol=1e-7)


def test_linear_warmup() -> None:
    sched = schedules.LinearWarmup(schedules.CosineDecay(0.1, 50), warmup_steps=10,
                                   start_learning_rate=0.0)
    assert sched(0) == 0.0
    assert sched(5) == pytest.approx(0.05)
    assert sched(10) == pytest.approx(0.1)
    assert sched(35) == pytest.approx(0.05)  # half-way through the cosine
    assert sched(60) == pytest.approx(0.0, abs=1e-12)


def test_penalties_and_clipping() -> None:
    params = {"0.dense.W": np.array([[1.0, -2.0]]), "0.dense.b": np.array([3.0])}
    value, grads = l2_penalty(params, 0.1)
    assert value == pytest.approx(0.05 * 5) and set(grads) == {"0.dense.W"}
    np.testing.assert_allclose(grads["0.dense.W"], [[0.1, -0.2]])
    value, grads = l1_penalty(params, 0.1)
    assert value == pytest.approx(0.3)
    np.testing.assert_allclose(grads["0.dense.W"], [[0.1, -0.1]])
    g = {"a": np.array([3.0, 0.0]), "b": np.array([[4.0]])}
    clipped, norm = clip_by_global_norm(g, 1.0)
    assert norm == pytest.approx(5.0)
    np.testing.assert_allclose(clipped["a"], [0.6, 0.0])
    np.testing.assert_allclose(clipped["b"], [[0.8]])
    same, _ = clip_by_global_norm(g, 10.0)
    np.testing.assert_allclose(same["a"], g["a"])
    np.testing.assert_allclose(clip_by_value(g, 3.5)["b"], [[3.5]])


def test_clip_by_global_norm_matches_tf() -> None:
    import tensorflow as tf

    rng = np.random.default_rng(3)
    g = {"a": rng.standard_normal((3, 4)), "b": rng.standard_normal(5)}
    ours, norm = clip_by_global_norm(g, 1.5)
    theirs, tf_norm = tf.clip_by_global_norm([tf.constant(g["a"]), tf.constant(g["b"])], 1.5)
    assert norm == pytest.approx(float(tf_norm))
    np.testing.assert_allclose(ours["a"], theirs[0].numpy(), rtol=1e-12)
    np.testing.assert_allclose(ours["b"], theirs[1].numpy(), rtol=1e-12)
