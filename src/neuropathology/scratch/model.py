"""``Sequential``: a stack of layers with a Keras-like mini-batch training loop.

One training step is the whole algorithm of the course in five lines::

    logits = model.forward(x_batch, training=True)   # a^(0) = x -> ... -> z^(L)
    loss = loss_fn.forward(logits, y_batch)          # L
    model.backward(loss_fn.backward())               # delta^(L) -> ... -> dL/dtheta
    optimizer.step(model.parameters(), model.gradients())

:meth:`Sequential.fit` adds shuffling, mini-batches, optional L2 penalty and gradient
clipping, validation and a text progress bar.
"""

from __future__ import annotations

import contextlib
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from typing import TextIO

import numpy as np
from threadpoolctl import threadpool_limits

from .base import Array, Container, Layer
from .losses import Loss
from .optim import Optimizer
from .regularization import clip_by_global_norm, clip_by_value, l2_penalty


@contextlib.contextmanager
def blas_threads(n: int | None) -> Iterator[None]:
    """Limit the BLAS library's threads to ``n`` inside the block (``None``: leave as is).

    A small CNN multiplies many *small* matrices; OpenBLAS' threads then cost more to wake
    and synchronise than they save, and when other processes share the cores they spin
    waiting for each other -- we measured one training step 5x slower with 2 BLAS threads
    than with 1 on a busy 2-core machine.
    """
    if n is None:
        yield
        return
    with threadpool_limits(limits=n, user_api="blas"):
        yield


class ProgressBar:
    """A one-line text progress bar (``\\r``-rewritten on a terminal, printed once otherwise)."""

    def __init__(self, total: int, prefix: str = "", width: int = 24,
                 stream: TextIO | None = None) -> None:
        self.total = max(total, 1)
        self.prefix = prefix
        self.width = width
        self.stream = stream if stream is not None else sys.stdout
        self.start = time.perf_counter()
        self.interactive = bool(getattr(self.stream, "isatty", lambda: False)())

    def _line(self, done: int, info: str) -> str:
        filled = int(self.width * done / self.total)
        bar = "=" * filled + (">" if filled < self.width else "") + "." * (self.width - filled - 1)
        elapsed = time.perf_counter() - self.start
        return f"{self.prefix}[{bar[:self.width]}] {done}/{self.total} {elapsed:5.1f}s {info}"

    def update(self, done: int, info: str = "") -> None:
        if self.interactive:
            self.stream.write("\r" + self._line(done, info))
            self.stream.flush()

    def close(self, info: str = "") -> None:
        if self.interactive:
            self.stream.write("\r")
        self.stream.write(self._line(self.total, info) + "\n")
        self.stream.flush()


_blas_limit = blas_threads


class Sequential(Container):
    """Layers applied in order. ``forward``/``backward``/``parameters``/``gradients`` as
    :class:`~neuropathology.scratch.base.Container`; plus ``build``, ``fit``, ``predict``,
    ``evaluate``.
    """

    def __init__(self, layers: Sequence[Layer], name: str | None = None) -> None:
        super().__init__(list(layers), name or "sequential")

    def build(self, input_shape: tuple[int, ...]) -> None:
        """Create every lazily-built parameter with a one-example inference pass.

        ``input_shape`` includes the batch axis (its value is ignored), e.g. ``x.shape``.
        Called by ``fit``; call it yourself before handing ``parameters()`` to an optimiser.
        """
        self.forward(np.zeros((1, *input_shape[1:]), dtype=self._dtype()))
        self.built = True

    def _dtype(self) -> type:
        for layer in self.layers:
            if hasattr(layer, "dtype"):
                return layer.dtype
        return np.float32

    def predict(self, x: Array, batch_size: int = 128) -> Array:
        """Outputs (e.g. logits) for ``x`` in inference mode, batch by batch."""
        outs = [self.forward(x[i:i + batch_size], training=False)
                for i in range(0, len(x), batch_size)]
        return np.concatenate(outs, axis=0)

    def evaluate(self, x: Array, y: Array, loss_fn: Loss, batch_size: int = 128
                 ) -> dict[str, float]:
        """Mean loss and accuracy (arg-max of the outputs vs integer or one-hot labels)."""
        logits = self.predict(x, batch_size)
        loss = loss_fn.forward(logits, y)
        labels = y if y.ndim == 1 else y.argmax(axis=-1)
        return {"loss": loss, "accuracy": float(np.mean(logits.argmax(axis=-1) == labels))}

    def train_step(self, x: Array, y: Array, loss_fn: Loss, optimizer: Optimizer, *,
                   l2: float = 0.0, clipnorm: float | None = None,
                   clipvalue: float | None = None) -> float:
        """One forward/backward/update on a mini-batch; returns the (penalised) loss."""
        out = self.forward(x, training=True)
        loss = loss_fn.forward(out, y)
        self.backward(loss_fn.backward())
        params, grads = self.parameters(), self.gradients()
        if l2:
            penalty, pgrads = l2_penalty(params, l2)
            loss += penalty
            grads = {k: g + pgrads[k] if k in pgrads else g for k, g in grads.items()}
        if clipvalue is not None:
            grads = clip_by_value(grads, clipvalue)
        if clipnorm is not None:
            grads, _ = clip_by_global_norm(grads, clipnorm)
        optimizer.step(params, grads)
        return loss

    def fit(self, x: Array, y: Array, loss_fn: Loss, optimizer: Optimizer, *, epochs: int = 1,
            batch_size: int = 32, shuffle: bool = True, seed: int = 0,
            validation_data: tuple[Array, Array] | None = None, l2: float = 0.0,
            clipnorm: float | None = None, clipvalue: float | None = None, verbose: int = 1,
            stream: TextIO | None = None, blas_threads: int | None = 1,
            augment: Callable[[Array, np.random.Generator], Array] | None = None
            ) -> dict[str, list[float]]:
        """Mini-batch training: each epoch shuffles, then steps through ``ceil(N / B)`` batches.

        Returns the history ``{"loss": [...], "accuracy": [...], "val_loss": [...],
        "val_accuracy": [...]}`` (per epoch; training metrics averaged over the epoch's
        batches). ``verbose=1`` draws a progress bar, ``0`` prints nothing.
        ``blas_threads`` limits BLAS threads while training (see :func:`blas_threads`).
        ``augment(x_batch, rng) -> x_batch`` transforms each training batch (e.g.
        :func:`random_horizontal_flip`); validation data is never augmented.
        """
        with _blas_limit(blas_threads):
            return self._fit(x, y, loss_fn, optimizer, epochs=epochs, batch_size=batch_size,
                             shuffle=shuffle, seed=seed, validation_data=validation_data, l2=l2,
                             clipnorm=clipnorm, clipvalue=clipvalue, verbose=verbose,
                             stream=stream, augment=augment)

    def _fit(self, x: Array, y: Array, loss_fn: Loss, optimizer: Optimizer, *, epochs: int,
             batch_size: int, shuffle: bool, seed: int,
             validation_data: tuple[Array, Array] | None, l2: float, clipnorm: float | None,
             clipvalue: float | None, verbose: int, stream: TextIO | None,
             augment: Callable[[Array, np.random.Generator], Array] | None
             ) -> dict[str, list[float]]:
        if len(x) != len(y):
            raise ValueError(f"fit: x has {len(x)} examples but y has {len(y)}")
        if not self.built:
            self.build(x.shape)
        rng = np.random.default_rng(seed)
        n = len(x)
        steps = -(-n // batch_size)
        history: dict[str, list[float]] = {"loss": [], "accuracy": []}
        for epoch in range(epochs):
            order = rng.permutation(n) if shuffle else np.arange(n)
            bar = ProgressBar(steps, f"epoch {epoch + 1}/{epochs} ", stream=stream) if verbose else None
            total_loss = 0.0
            correct = 0
            for step in range(steps):
                idx = order[step * batch_size:(step + 1) * batch_size]
                xb, yb = x[idx], y[idx]
                if augment is not None:
                    xb = augment(xb, rng)
                loss = self.train_step(xb, yb, loss_fn, optimizer, l2=l2, clipnorm=clipnorm,
                                       clipvalue=clipvalue)
                total_loss += loss * len(idx)
                labels = yb if yb.ndim == 1 else yb.argmax(axis=-1)
                correct += int(np.sum(self._last_output.argmax(axis=-1) == labels))
                if bar is not None:
                    bar.update(step + 1, f"loss {total_loss / ((step * batch_size) + len(idx)):.4f}")
            history["loss"].append(total_loss / n)
            history["accuracy"].append(correct / n)
            info = f"loss {total_loss / n:.4f} acc {correct / n:.3f}"
            if validation_data is not None:
                val = self.evaluate(*validation_data, loss_fn)
                history.setdefault("val_loss", []).append(val["loss"])
                history.setdefault("val_accuracy", []).append(val["accuracy"])
                info += f" val_loss {val['loss']:.4f} val_acc {val['accuracy']:.3f}"
            if bar is not None:
                bar.close(info)
        return history

    def forward(self, x: Array, training: bool = False) -> Array:
        out = super().forward(x, training=training)
        self._last_output = out
        return out


def random_horizontal_flip(x: Array, rng: np.random.Generator) -> Array:
    """Mirror each NHWC image left-right with probability 1/2 (a ``fit`` ``augment`` hook).

    Brains are roughly left-right symmetric and no class depends on the side of a lesion,
    so the label is unchanged -- effectively doubling a small training set.
    """
    flip = rng.random(len(x)) < 0.5
    out = x.copy()
    out[flip] = x[flip, :, ::-1]
    return out


def build_small_cnn(num_classes: int, *, filters: Sequence[int] = (16, 32, 64),
                    global_pool: str = "max", bn_momentum: float = 0.9,
                    seed: int | np.random.Generator | None = 0,
                    dtype: type = np.float32) -> Sequential:
    """The course's small CNN: ``[Conv 3x3 'same' -> BatchNorm -> ReLU -> MaxPool 2] x k
    -> global pooling -> Dense(num_classes)`` (logits; pair with ``SoftmaxCrossEntropy``).

    Input ``(N, H, W, C)``; ``H`` and ``W`` halve in every block. Convolutions have no bias
    (BatchNorm's ``beta`` replaces it) and He initialisation (they feed ReLUs).

    * ``global_pool="max"`` (default) keeps a feature that fires on a few pixels -- a small
      tumour -- at full strength; ``"avg"`` (the usual GAP) divides it by ``H W``. On the
      synthetic MRI set the max version learns markedly faster.
    * ``bn_momentum`` is 0.9 rather than Keras' 0.99: a short run takes a few hundred steps,
      too few for 0.99 running statistics to forget their initial (0, 1), and the
      inference-mode accuracy would lag far behind the training accuracy.
    """
    from .activations import ReLU
    from .conv import Conv2D, GlobalAvgPool2D, GlobalMaxPool2D, MaxPool2D
    from .layers import BatchNorm, Dense, as_generator

    if global_pool not in ("max", "avg"):
        raise ValueError(f"global_pool must be 'max' or 'avg', got {global_pool!r}")
    rng = as_generator(seed)
    layers: list[Layer] = []
    for f in filters:
        layers += [Conv2D(f, 3, padding="same", use_bias=False, kernel_initializer="he_normal",
                          seed=rng, dtype=dtype),
                   BatchNorm(momentum=bn_momentum, dtype=dtype), ReLU(), MaxPool2D(2)]
    layers += [GlobalMaxPool2D() if global_pool == "max" else GlobalAvgPool2D(),
               Dense(num_classes, seed=rng, dtype=dtype)]
    return Sequential(layers, name="small_cnn")
