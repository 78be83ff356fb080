"""Optimisers: turn gradients ``g_t = dL/dtheta`` into in-place parameter updates.

Each optimiser follows the exact update of its ``keras.optimizers`` twin (Keras 3), so
the same hyper-parameters give the same trajectory (the tests check 20 steps). Notation:
``theta`` a parameter, ``g_t`` its gradient at step ``t = 1, 2, ...``, ``eta_t`` the
learning rate (a float or a :class:`~neuropathology.scratch.schedules.Schedule` evaluated
at ``t - 1``, the number of updates already made -- Keras' ``iterations``).

Usage::

    opt = Adam(learning_rate=1e-3)
    opt.step(model.parameters(), model.gradients())   # updates the arrays in place

State (moments, accumulators) is kept per parameter *name*, so pass the same names
every step.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from .base import Array
from .schedules import Constant, Schedule


class Optimizer:
    """Base class: ``step(params, grads)`` applies one update to every named parameter."""

    def __init__(self, learning_rate: float | Schedule = 0.01) -> None:
        self.schedule = learning_rate if isinstance(learning_rate, Schedule) else Constant(learning_rate)
        self.iterations = 0
        self.state: dict[str, dict[str, Array]] = {}

    @property
    def learning_rate(self) -> float:
        """``eta`` for the next update."""
        return self.schedule(self.iterations)

    def _slots(self, name: str, param: Array) -> dict[str, Array]:
        if name not in self.state:
            self.state[name] = self._init_slots(param)
        return self.state[name]

    def _init_slots(self, param: Array) -> dict[str, Array]:
        return {}

    def step(self, params: Mapping[str, Array], grads: Mapping[str, Array]) -> None:
        """Update each ``params[name]`` in place from ``grads[name]``; then ``t <- t + 1``."""
        missing = set(params) - set(grads)
        if missing:
            raise KeyError(f"no gradient for parameters {sorted(missing)}: run backward() first")
        lr = self.learning_rate
        for name, p in params.items():
            g = np.asarray(grads[name], dtype=p.dtype)
            if g.shape != p.shape:
                raise ValueError(f"gradient of {name!r} has shape {g.shape}, parameter {p.shape}")
            self._update(p, g, lr, self._slots(name, p))
        self.iterations += 1

    def _update(self, p: Array, g: Array, lr: float, slots: dict[str, Array]) -> None:
        raise NotImplementedError  # pragma: no cover - abstract


class SGD(Optimizer):
    """(Stochastic) gradient descent, optionally with momentum or Nesterov momentum.

    Plain: ``theta <- theta - eta g``.
    Momentum ``mu`` (Keras' form, velocity carries the learning rate)::

        v <- mu v - eta g
        theta <- theta + v                      (classical momentum)
        theta <- theta + mu v - eta g           (nesterov=True: look-ahead form)
    """

    def __init__(self, learning_rate: float | Schedule = 0.01, momentum: float = 0.0,
                 nesterov: bool = False) -> None:
        super().__init__(learning_rate)
        if not 0.0 <= momentum <= 1.0:
            raise ValueError(f"momentum must be in [0, 1], got {momentum}")
        self.momentum = momentum
        self.nesterov = nesterov

    def _init_slots(self, param: Array) -> dict[str, Array]:
        return {"v": np.zeros_like(param)} if self.momentum else {}

    def _update(self, p: Array, g: Array, lr: float, slots: dict[str, Array]) -> None:
        if not self.momentum:
            p -= lr * g
            return
        v = slots["v"]
        v *= self.momentum
        v -= lr * g
        if self.nesterov:
            p += self.momentum * v - lr * g
        else:
            p += v


class Momentum(SGD):
    """SGD with classical (heavy-ball) momentum: ``v <- mu v - eta g``, ``theta <- theta + v``."""

    def __init__(self, learning_rate: float | Schedule = 0.01, momentum: float = 0.9) -> None:
        super().__init__(learning_rate, momentum=momentum, nesterov=False)


class Nesterov(SGD):
    """Nesterov accelerated gradient: ``v <- mu v - eta g``, ``theta <- theta + mu v - eta g``."""

    def __init__(self, learning_rate: float | Schedule = 0.01, momentum: float = 0.9) -> None:
        super().__init__(learning_rate, momentum=momentum, nesterov=True)


class AdaGrad(Optimizer):
    """Per-coordinate rates shrinking with the accumulated squared gradient (Duchi et al.)::

        G <- G + g^2                            (G starts at initial_accumulator_value = 0.1)
        theta <- theta - eta g / sqrt(G + eps)
    """

    def __init__(self, learning_rate: float | Schedule = 0.001,
                 initial_accumulator_value: float = 0.1, epsilon: float = 1e-7) -> None:
        super().__init__(learning_rate)
        self.initial_accumulator_value = initial_accumulator_value
        self.epsilon = epsilon

    def _init_slots(self, param: Array) -> dict[str, Array]:
        return {"G": np.full_like(param, self.initial_accumulator_value)}

    def _update(self, p: Array, g: Array, lr: float, slots: dict[str, Array]) -> None:
        G = slots["G"]
        G += g * g
        p -= lr * g / np.sqrt(G + self.epsilon)


class RMSprop(Optimizer):
    """AdaGrad with a leaky average instead of a sum (Hinton's lecture 6e)::

        s <- rho s + (1 - rho) g^2
        m_g <- rho m_g + (1 - rho) g            (centered=True only)
        D = s - m_g^2 + eps   (centered)   or   s + eps
        Delta = eta g / sqrt(D)                 (eps *inside* the root, as Keras)
        m <- mu m + Delta;  theta <- theta - m  (momentum mu > 0)  else  theta <- theta - Delta
    """

    def __init__(self, learning_rate: float | Schedule = 0.001, rho: float = 0.9,
                 momentum: float = 0.0, epsilon: float = 1e-7, centered: bool = False) -> None:
        super().__init__(learning_rate)
        self.rho = rho
        self.momentum = momentum
        self.epsilon = epsilon
        self.centered = centered

    def _init_slots(self, param: Array) -> dict[str, Array]:
        slots = {"s": np.zeros_like(param)}
        if self.momentum > 0:
            slots["m"] = np.zeros_like(param)
        if self.centered:
            slots["mg"] = np.zeros_like(param)
        return slots

    def _update(self, p: Array, g: Array, lr: float, slots: dict[str, Array]) -> None:
        s = slots["s"]
        s *= self.rho
        s += (1 - self.rho) * g * g
        if self.centered:
            mg = slots["mg"]
            mg *= self.rho
            mg += (1 - self.rho) * g
            denom = s - mg * mg + self.epsilon
        else:
            denom = s + self.epsilon
        increment = lr * g / np.sqrt(denom)
        if self.momentum > 0:
            m = slots["m"]
            m *= self.momentum
            m += increment
            p -= m
        else:
            p -= increment


class Adam(Optimizer):
    """Adaptive moment estimation (Kingma & Ba, 2015), in Keras' "epsilon-hat" form::

        m <- m + (1 - beta_1) (g - m)           (= beta_1 m + (1 - beta_1) g)
        v <- v + (1 - beta_2) (g^2 - v)
        alpha_t = eta sqrt(1 - beta_2^t) / (1 - beta_1^t)      (bias correction, t = 1, 2, ...)
        theta <- theta - alpha_t m / (sqrt(v) + eps)

    Note ``eps`` is added to the *uncorrected* ``sqrt(v)``: equivalent to the paper's
    ``m_hat / (sqrt(v_hat) + eps')`` with ``eps' = eps / sqrt(1 - beta_2^t)``.
    ``amsgrad=True`` uses ``v_max = max(v_max, v)`` in place of ``v``.

    ``alpha_t`` is computed in the parameter's dtype, like Keras: in float32,
    ``1 - 0.999^1`` suffers cancellation (``1.3e-5`` relative error), which shifts the first
    steps by ~``6e-6`` relative -- harmless, but needed to reproduce Keras to 1e-6.
    """

    def __init__(self, learning_rate: float | Schedule = 0.001, beta_1: float = 0.9,
                 beta_2: float = 0.999, epsilon: float = 1e-7, amsgrad: bool = False) -> None:
        super().__init__(learning_rate)
        self.beta_1 = beta_1
        self.beta_2 = beta_2
        self.epsilon = epsilon
        self.amsgrad = amsgrad

    def _init_slots(self, param: Array) -> dict[str, Array]:
        slots = {"m": np.zeros_like(param), "v": np.zeros_like(param)}
        if self.amsgrad:
            slots["v_max"] = np.zeros_like(param)
        return slots

    def _update(self, p: Array, g: Array, lr: float, slots: dict[str, Array]) -> None:
        # bias correction in the parameter's dtype, as Keras computes it (see docstring)
        ftype = p.dtype.type
        t = ftype(self.iterations + 1)
        alpha = ftype(lr) * np.sqrt(1 - ftype(self.beta_2) ** t) / (1 - ftype(self.beta_1) ** t)
        m, v = slots["m"], slots["v"]
        m += (g - m) * (1 - self.beta_1)
        v += (g * g - v) * (1 - self.beta_2)
        if self.amsgrad:
            np.maximum(slots["v_max"], v, out=slots["v_max"])
            v = slots["v_max"]
        p -= m * alpha / (np.sqrt(v) + self.epsilon)


class AdamW(Adam):
    """Adam with *decoupled* weight decay (Loshchilov & Hutter, 2019), as Keras applies it::

        theta <- theta - theta * lambda * eta    (decay first, not through the gradient)
        then the Adam update above

    Unlike an L2 term in the loss, the decay is not divided by ``sqrt(v)``, so every weight
    shrinks at the same relative rate. Keras' default ``lambda`` is 0.004.
    """

    def __init__(self, learning_rate: float | Schedule = 0.001, weight_decay: float = 0.004,
                 beta_1: float = 0.9, beta_2: float = 0.999, epsilon: float = 1e-7,
                 amsgrad: bool = False) -> None:
        super().__init__(learning_rate, beta_1, beta_2, epsilon, amsgrad)
        self.weight_decay = weight_decay

    def _update(self, p: Array, g: Array, lr: float, slots: dict[str, Array]) -> None:
        p -= p * self.weight_decay * lr
        super()._update(p, g, lr, slots)


OPTIMIZERS: dict[str, type[Optimizer]] = {
    "sgd": SGD,
    "momentum": Momentum,
    "nesterov": Nesterov,
    "adagrad": AdaGrad,
    "rmsprop": RMSprop,
    "adam": Adam,
    "adamw": AdamW,
}
