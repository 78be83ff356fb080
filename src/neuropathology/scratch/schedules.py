"""Learning-rate schedules ``eta_t`` as callables of the optimiser step ``t = 0, 1, 2, ...``.

Formulas equal the Keras ones (``keras.optimizers.schedules``) where Keras has one, so
a schedule from this package and its Keras twin give the same ``eta_t``:

* :class:`StepDecay` -- ``eta_0 gamma^{floor(t / T)}`` (a PiecewiseConstantDecay in Keras);
* :class:`PiecewiseConstant` -- Keras' PiecewiseConstantDecay (``values[0]`` while
  ``t <= boundaries[0]``, ...);
* :class:`ExponentialDecay` -- ``eta_0 r^{t / T}`` (``floor`` when staircase);
* :class:`CosineDecay` -- optional linear warm-up from ``eta_0`` to ``warmup_target`` over
  ``W`` steps, then ``eta_peak ((1 - alpha) (1 + cos(pi min(t', T) / T)) / 2 + alpha)``;
* :class:`CosineDecayRestarts` -- SGDR (Loshchilov & Hutter): cosine cycles whose length is
  multiplied by ``t_mul`` and whose peak by ``m_mul`` after every restart;
* :class:`LinearWarmup` -- wraps any schedule: ``eta_t = eta_start + (s(0) - eta_start) t / W``
  for ``t < W``, then ``s(t - W)``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence


class Schedule:
    """Base class: ``schedule(step) -> learning rate`` (a Python float)."""

    def __call__(self, step: int) -> float:  # pragma: no cover - abstract
        raise NotImplementedError


class Constant(Schedule):
    """``eta_t = eta``."""

    def __init__(self, learning_rate: float) -> None:
        self.learning_rate = float(learning_rate)

    def __call__(self, step: int) -> float:
        return self.learning_rate


class PiecewiseConstant(Schedule):
    """``values[0]`` for ``t <= boundaries[0]``, ``values[i]`` for ``b[i-1] < t <= b[i]``, ..."""

    def __init__(self, boundaries: Sequence[int], values: Sequence[float]) -> None:
        if len(values) != len(boundaries) + 1:
            raise ValueError("PiecewiseConstant needs len(values) == len(boundaries) + 1")
        self.boundaries = list(boundaries)
        self.values = [float(v) for v in values]

    def __call__(self, step: int) -> float:
        for boundary, value in zip(self.boundaries, self.values[:-1], strict=True):
            if step <= boundary:
                return value
        return self.values[-1]


class StepDecay(Schedule):
    """``eta_t = eta_0 gamma^{floor(t / T)}``: divide the rate by ``1/gamma`` every ``T`` steps."""

    def __init__(self, initial_learning_rate: float, step_size: int, gamma: float = 0.1) -> None:
        if step_size <= 0:
            raise ValueError(f"StepDecay: step_size must be positive, got {step_size}")
        self.initial_learning_rate = float(initial_learning_rate)
        self.step_size = step_size
        self.gamma = gamma

    def __call__(self, step: int) -> float:
        return self.initial_learning_rate * self.gamma ** (step // self.step_size)


class ExponentialDecay(Schedule):
    """``eta_t = eta_0 r^{t / T}`` (``r^{floor(t / T)}`` with ``staircase=True``)."""

    def __init__(self, initial_learning_rate: float, decay_steps: int, decay_rate: float,
                 staircase: bool = False) -> None:
        self.initial_learning_rate = float(initial_learning_rate)
        self.decay_steps = decay_steps
        self.decay_rate = decay_rate
        self.staircase = staircase

    def __call__(self, step: int) -> float:
        p = step / self.decay_steps
        if self.staircase:
            p = math.floor(p)
        return self.initial_learning_rate * self.decay_rate**p


class CosineDecay(Schedule):
    """Cosine annealing with an optional linear warm-up (Keras' CosineDecay).

    Warm-up (``t < W``, only if ``warmup_target`` is set):
    ``eta_t = eta_0 + (warmup_target - eta_0) t / W``. Decay from ``eta_peak``
    (``warmup_target`` or ``eta_0``) with ``tau = min(t - W, T)``:
    ``eta_t = eta_peak ((1 - alpha) (1 + cos(pi tau / T)) / 2 + alpha)``.
    """

    def __init__(self, initial_learning_rate: float, decay_steps: int, alpha: float = 0.0,
                 warmup_target: float | None = None, warmup_steps: int = 0) -> None:
        if decay_steps <= 0:
            raise ValueError(f"CosineDecay: decay_steps must be positive, got {decay_steps}")
        self.initial_learning_rate = float(initial_learning_rate)
        self.decay_steps = decay_steps
        self.alpha = alpha
        self.warmup_target = warmup_target
        self.warmup_steps = warmup_steps

    def _decay(self, step: float, peak: float) -> float:
        fraction = min(step, self.decay_steps) / self.decay_steps
        cosine = 0.5 * (1.0 + math.cos(math.pi * fraction))
        return peak * ((1 - self.alpha) * cosine + self.alpha)

    def __call__(self, step: int) -> float:
        if self.warmup_target is None:
            return self._decay(step, self.initial_learning_rate)
        step = min(step, self.decay_steps + self.warmup_steps)
        if step < self.warmup_steps:
            delta = self.warmup_target - self.initial_learning_rate
            return self.initial_learning_rate + delta * step / self.warmup_steps
        return self._decay(step - self.warmup_steps, self.warmup_target)


class CosineDecayRestarts(Schedule):
    """SGDR: cosine annealing restarted with growing periods (Keras' CosineDecayRestarts).

    With ``f = t / T_0``, the restart index ``i`` solves ``sum_{k<i} t_mul^k <= f``
    (``i = floor(f)`` when ``t_mul = 1``, else ``floor(log(1 - f (1 - t_mul)) / log t_mul)``);
    the position inside cycle ``i`` is ``u = (f - (1 - t_mul^i)/(1 - t_mul)) / t_mul^i``, and
    ``eta_t = eta_0 ((1 - alpha) m_mul^i (1 + cos(pi u)) / 2 + alpha)``.
    """

    def __init__(self, initial_learning_rate: float, first_decay_steps: int, t_mul: float = 2.0,
                 m_mul: float = 1.0, alpha: float = 0.0) -> None:
        self.initial_learning_rate = float(initial_learning_rate)
        self.first_decay_steps = first_decay_steps
        self.t_mul = t_mul
        self.m_mul = m_mul
        self.alpha = alpha

    def __call__(self, step: int) -> float:
        f = step / self.first_decay_steps
        if self.t_mul == 1.0:
            i = math.floor(f)
            u = f - i
        else:
            i = math.floor(math.log(1.0 - f * (1.0 - self.t_mul)) / math.log(self.t_mul))
            done = (1.0 - self.t_mul**i) / (1.0 - self.t_mul)
            u = (f - done) / self.t_mul**i
        cosine = 0.5 * self.m_mul**i * (1.0 + math.cos(math.pi * u))
        return self.initial_learning_rate * ((1 - self.alpha) * cosine + self.alpha)


class LinearWarmup(Schedule):
    """Linear warm-up in front of another schedule (Goyal et al., 2017).

    ``eta_t = eta_start + (s(0) - eta_start) t / W`` for ``t < W``, then ``s(t - W)``: large
    steps before Adam's moments / BatchNorm's statistics settle can derail training.
    """

    def __init__(self, schedule: Schedule | float, warmup_steps: int,
                 start_learning_rate: float = 0.0) -> None:
        self.schedule = schedule if isinstance(schedule, Schedule) else Constant(schedule)
        self.warmup_steps = warmup_steps
        self.start_learning_rate = start_learning_rate

    def __call__(self, step: int) -> float:
        if step < self.warmup_steps:
            target = self.schedule(0)
            return self.start_learning_rate + (target - self.start_learning_rate) * step / self.warmup_steps
        return self.schedule(step - self.warmup_steps)
