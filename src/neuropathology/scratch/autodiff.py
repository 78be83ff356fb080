"""A tiny reverse-mode automatic differentiation engine on NumPy arrays (micrograd-sized).

Every :class:`Tensor` remembers the tensors it was computed from (``_parents``) and a
closure ``_backward`` that, given ``out.grad = dL/d(out)``, *adds* each parent's share
``dL/d(parent) = dL/d(out) * d(out)/d(parent)`` (a vector-Jacobian product) to
``parent.grad``. :meth:`Tensor.backward` sorts the graph topologically and runs those
closures from the output back to the leaves: the chain rule, applied once per edge.

The two classic pitfalls, handled:

* **Repeated use of a node** (``y = x * x``, or ``x`` feeding two branches): a node's
  gradient is the *sum* over all paths to the output, so closures accumulate with
  ``+=`` and a node's closure runs only after every consumer has contributed (that is
  what the topological order guarantees).
* **Broadcasting**: if ``x`` of shape ``(3,)`` was broadcast against ``(4, 3)``, the
  upstream gradient has shape ``(4, 3)``; :func:`unbroadcast` sums it over the
  broadcast axes back to ``(3,)`` (the adjoint of broadcasting is summation).

**Calling backward twice** -- our choice: ``backward()`` first resets ``grad`` to zero on
every node of the graph it walks, then recomputes. Calling it twice therefore gives the
same gradients (not doubled, unlike micrograd; no error, unlike PyTorch without
``retain_graph``). To add the gradients of two losses, call backward on their sum.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

import numpy as np

from .base import Array


def unbroadcast(grad: Array, shape: tuple[int, ...]) -> Array:
    """Sum ``grad`` down to ``shape``: undo NumPy broadcasting in the backward pass.

    Leading axes that broadcasting prepended are summed away; axes where ``shape`` has
    size 1 but ``grad`` does not are summed with ``keepdims``.
    """
    while grad.ndim > len(shape):
        grad = grad.sum(axis=0)
    for axis, size in enumerate(shape):
        if size == 1 and grad.shape[axis] != 1:
            grad = grad.sum(axis=axis, keepdims=True)
    return grad


class Tensor:
    """An array that records how it was computed, so ``backward()`` can differentiate it.

    ``data`` is stored as float64 (this engine is for teaching and checking, not speed);
    ``grad`` has the shape of ``data`` and is filled by :meth:`backward`.
    """

    __array_priority__ = 1000  # make ndarray + Tensor call Tensor.__radd__

    def __init__(self, data: Array | float | int | Iterable[float],
                 _parents: tuple[Tensor, ...] = (), _op: str = "",
                 requires_grad: bool = True) -> None:
        self.data = np.asarray(data, dtype=np.float64)
        self.grad = np.zeros_like(self.data)
        self._parents = _parents
        self._op = _op
        self._backward: Callable[[], None] = lambda: None
        self.requires_grad = requires_grad

    # -- helpers --------------------------------------------------------
    @staticmethod
    def _lift(other: Tensor | Array | float | int) -> Tensor:
        return other if isinstance(other, Tensor) else Tensor(other, requires_grad=False)

    @property
    def shape(self) -> tuple[int, ...]:
        """Shape of ``data`` (and of ``grad``)."""
        return self.data.shape

    def __repr__(self) -> str:
        return f"Tensor(shape={self.shape}, op={self._op or 'leaf'!r})"

    # -- arithmetic (broadcasting) ----------------------------------------
    def __add__(self, other: Tensor | Array | float | int) -> Tensor:
        other = self._lift(other)
        out = Tensor(self.data + other.data, (self, other), "+")

        def _backward() -> None:
            self.grad += unbroadcast(out.grad, self.shape)
            other.grad += unbroadcast(out.grad, other.shape)

        out._backward = _backward
        return out

    def __mul__(self, other: Tensor | Array | float | int) -> Tensor:
        other = self._lift(other)
        out = Tensor(self.data * other.data, (self, other), "*")

        def _backward() -> None:
            self.grad += unbroadcast(out.grad * other.data, self.shape)
            other.grad += unbroadcast(out.grad * self.data, other.shape)

        out._backward = _backward
        return out

    def __pow__(self, exponent: float) -> Tensor:
        if isinstance(exponent, Tensor):
            raise TypeError("Tensor ** Tensor is not supported; use exp(y * log(x))")
        out = Tensor(self.data**exponent, (self,), f"**{exponent}")

        def _backward() -> None:
            self.grad += out.grad * exponent * self.data ** (exponent - 1)

        out._backward = _backward
        return out

    def __matmul__(self, other: Tensor | Array) -> Tensor:
        """``C = A B`` for 2-D operands: ``dL/dA = dL/dC B^T``, ``dL/dB = A^T dL/dC``."""
        other = self._lift(other)
        if self.data.ndim != 2 or other.data.ndim != 2:
            raise ValueError("matmul in this engine supports 2-D operands only")
        out = Tensor(self.data @ other.data, (self, other), "@")

        def _backward() -> None:
            self.grad += out.grad @ other.data.T
            other.grad += self.data.T @ out.grad

        out._backward = _backward
        return out

    def __neg__(self) -> Tensor:
        return self * -1.0

    def __sub__(self, other: Tensor | Array | float | int) -> Tensor:
        return self + (-self._lift(other))

    def __truediv__(self, other: Tensor | Array | float | int) -> Tensor:
        return self * self._lift(other) ** -1.0

    def __radd__(self, other: Array | float | int) -> Tensor:
        return self + other

    def __rmul__(self, other: Array | float | int) -> Tensor:
        return self * other

    def __rsub__(self, other: Array | float | int) -> Tensor:
        return self._lift(other) - self

    def __rtruediv__(self, other: Array | float | int) -> Tensor:
        return self._lift(other) / self

    def __rmatmul__(self, other: Array) -> Tensor:
        return self._lift(other) @ self

    # -- element-wise functions -------------------------------------------
    def _unary(self, value: Array, local_grad: Array, op: str) -> Tensor:
        out = Tensor(value, (self,), op)

        def _backward() -> None:
            self.grad += out.grad * local_grad

        out._backward = _backward
        return out

    def exp(self) -> Tensor:
        """``d e^x / dx = e^x``."""
        e = np.exp(self.data)
        return self._unary(e, e, "exp")

    def log(self) -> Tensor:
        """``d log x / dx = 1 / x``."""
        return self._unary(np.log(self.data), 1.0 / self.data, "log")

    def tanh(self) -> Tensor:
        """``d tanh x / dx = 1 - tanh^2 x``."""
        t = np.tanh(self.data)
        return self._unary(t, 1.0 - t * t, "tanh")

    def relu(self) -> Tensor:
        """``d max(x, 0) / dx = 1[x > 0]``."""
        return self._unary(np.maximum(self.data, 0.0), (self.data > 0).astype(np.float64), "relu")

    def sigmoid(self) -> Tensor:
        """``d sigma / dx = sigma (1 - sigma)``."""
        s = 1.0 / (1.0 + np.exp(-self.data))
        return self._unary(s, s * (1 - s), "sigmoid")

    # -- reductions and shape ---------------------------------------------
    def sum(self, axis: int | tuple[int, ...] | None = None, keepdims: bool = False) -> Tensor:
        """Summation: its adjoint copies (broadcasts) the upstream gradient back."""
        out = Tensor(self.data.sum(axis=axis, keepdims=keepdims), (self,), "sum")

        def _backward() -> None:
            g = out.grad
            if axis is not None and not keepdims:
                g = np.expand_dims(g, axis)
            self.grad += np.broadcast_to(g, self.shape)

        out._backward = _backward
        return out

    def mean(self, axis: int | tuple[int, ...] | None = None, keepdims: bool = False) -> Tensor:
        """``sum / count``."""
        count = self.data.size / np.asarray(self.data.sum(axis=axis, keepdims=keepdims)).size
        return self.sum(axis=axis, keepdims=keepdims) * (1.0 / count)

    def reshape(self, *shape: int) -> Tensor:
        """Same numbers, new shape: the gradient is reshaped back."""
        out = Tensor(self.data.reshape(*shape), (self,), "reshape")

        def _backward() -> None:
            self.grad += out.grad.reshape(self.shape)

        out._backward = _backward
        return out

    @property
    def T(self) -> Tensor:  # noqa: N802 - NumPy's name
        """Transpose; its adjoint is the transpose of the upstream gradient."""
        out = Tensor(self.data.T, (self,), "T")

        def _backward() -> None:
            self.grad += out.grad.T

        out._backward = _backward
        return out

    # -- the reverse pass --------------------------------------------------
    def _topological_order(self) -> list[Tensor]:
        order: list[Tensor] = []
        seen: set[int] = set()
        stack: list[tuple[Tensor, bool]] = [(self, False)]
        while stack:  # iterative DFS: deep graphs do not hit Python's recursion limit
            node, expanded = stack.pop()
            if expanded:
                order.append(node)
                continue
            if id(node) in seen:
                continue
            seen.add(id(node))
            stack.append((node, True))
            stack.extend((p, False) for p in node._parents if id(p) not in seen)
        return order

    def backward(self, grad: Array | float | None = None) -> None:
        """Fill ``.grad`` of every node with ``dL/d(node)``, where ``L`` is this tensor.

        ``grad`` is the seed ``dL/d(self)``; it defaults to 1 and must be given for a
        non-scalar output. Gradients are zeroed first (see the module docstring).
        """
        if grad is None:
            if self.data.size != 1:
                raise ValueError(
                    f"backward() on a non-scalar Tensor of shape {self.shape} needs an explicit "
                    "seed gradient; reduce it to a scalar loss (e.g. .sum()) first"
                )
            grad = np.ones_like(self.data)
        order = self._topological_order()
        for node in order:
            node.grad = np.zeros_like(node.data)
        self.grad = np.broadcast_to(np.asarray(grad, dtype=np.float64), self.shape).copy()
        for node in reversed(order):
            node._backward()


def tensor(data: Array | float | Iterable[float]) -> Tensor:
    """A leaf :class:`Tensor` (a variable we want gradients for)."""
    return Tensor(data)
