"""The one interface every layer of the from-scratch library shares.

A layer is a function ``a^(l) = f^(l)(a^(l-1); theta^(l))`` together with its
vector-Jacobian product. Following CS231n's ``layers.py``, each layer keeps what
its backward pass needs in ``self.cache`` during ``forward`` and, in ``backward``,
receives the upstream gradient ``dL/da^(l)`` (called ``dout``) and returns
``dL/da^(l-1)`` (called ``dx``), storing ``dL/dtheta`` in ``self.grads`` under the
same keys as ``self.params``.

Parameters are updated *in place* by the optimisers (``p -= ...``), so a layer must
never rebind an entry of ``self.params`` after building; gradients, in contrast, are
fresh arrays after every ``backward``.
"""

from __future__ import annotations

from typing import Any

import numpy as np

Array = np.ndarray


class Layer:
    """Base class: ``forward(x, training=...)``, ``backward(dout)``, ``params``, ``grads``.

    Layers with weights create them lazily in :meth:`build` from the first input's
    shape (like Keras), so a network can be declared without computing every
    ``in_features`` by hand; :meth:`~neuropathology.scratch.model.Sequential.build`
    triggers this with a dummy batch before an optimiser sees the parameters.
    """

    def __init__(self, name: str | None = None) -> None:
        self.name = name or type(self).__name__.lower()
        self.params: dict[str, Array] = {}
        self.grads: dict[str, Array] = {}
        self.cache: Any = None
        self.built = False

    # -- construction -------------------------------------------------
    def build(self, input_shape: tuple[int, ...]) -> None:
        """Create parameters for inputs of ``input_shape`` (batch axis first)."""
        self.built = True

    def _ensure_built(self, x: Array) -> None:
        if not self.built:
            self.build(tuple(x.shape))

    # -- computation ---------------------------------------------------
    def forward(self, x: Array, training: bool = False) -> Array:  # pragma: no cover - abstract
        raise NotImplementedError

    def backward(self, dout: Array) -> Array:  # pragma: no cover - abstract
        raise NotImplementedError

    def __call__(self, x: Array, training: bool = False) -> Array:
        return self.forward(x, training=training)

    def _require_cache(self) -> Any:
        if self.cache is None:
            raise RuntimeError(
                f"{type(self).__name__}.backward called before forward: run forward(x) first "
                "so the layer can cache what its gradient needs."
            )
        return self.cache

    # -- parameters ----------------------------------------------------
    def parameters(self) -> dict[str, Array]:
        """Trainable arrays by name (composite layers prefix their children's names)."""
        return self.params

    def gradients(self) -> dict[str, Array]:
        """``dL/dtheta`` from the last ``backward``, keyed like :meth:`parameters`."""
        return self.grads

    def __repr__(self) -> str:
        shapes = ", ".join(f"{k}={tuple(v.shape)}" for k, v in self.parameters().items())
        return f"{type(self).__name__}({shapes})"


class Container(Layer):
    """A layer made of layers applied in order: ``a^(l) = f_k(... f_1(a^(l-1)))``.

    Backpropagation through a composition is the chain rule read right to left, so
    ``backward`` calls the children's ``backward`` in reverse order. Parameters and
    gradients are exposed under ``"<index>.<child name>.<key>"`` so names stay unique.
    """

    def __init__(self, layers: list[Layer] | None = None, name: str | None = None) -> None:
        super().__init__(name)
        self.layers: list[Layer] = list(layers or [])

    def forward(self, x: Array, training: bool = False) -> Array:
        for layer in self.layers:
            x = layer.forward(x, training=training)
        self.built = True
        return x

    def backward(self, dout: Array) -> Array:
        for layer in reversed(self.layers):
            dout = layer.backward(dout)
        return dout

    def _prefixed(self, which: str) -> dict[str, Array]:
        out: dict[str, Array] = {}
        for i, layer in enumerate(self.layers):
            items = layer.parameters() if which == "params" else layer.gradients()
            for key, value in items.items():
                out[f"{i}.{layer.name}.{key}"] = value
        return out

    def parameters(self) -> dict[str, Array]:
        return self._prefixed("params")

    def gradients(self) -> dict[str, Array]:
        return self._prefixed("grads")

    def __repr__(self) -> str:
        inner = "\n".join(f"  ({i}) {layer!r}" for i, layer in enumerate(self.layers))
        return f"{type(self).__name__}(\n{inner}\n)"
