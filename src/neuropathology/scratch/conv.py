"""Convolution and pooling layers in NHWC (TensorFlow's layout), vectorised and naive.

A 2-D convolution layer (strictly: cross-correlation, as in every framework) computes::

    z[n, h, w, f] = b[f] + sum_{i, j, c} x_pad[n, h s + i d, w s + j d, c] K[i, j, c, f]

with stride ``s``, dilation ``d`` and kernel ``K`` of shape ``(k_h, k_w, C_in, C_out)``.

*Vectorised form (im2col).* :func:`sliding_windows` views every receptive field at
once with ``np.lib.stride_tricks.as_strided`` -- shape ``(N, H_o, W_o, k_h, k_w, C)``,
no copy -- and reshaping it into the matrix ``cols`` of shape ``(N H_o W_o, k_h k_w C)``
turns the convolution into one matrix product ``cols @ K.reshape(-1, C_out)`` that BLAS
runs at full speed. Backward is two more products: ``dK = cols^T delta`` and
``dcols = delta K^T``; ``col2im`` then adds every window's gradient back onto the
pixels it came from (overlapping windows *add*, the transpose of "copy into windows").

*Naive form.* :func:`conv2d_naive` / :func:`conv2d_naive_backward` are the same maths
as explicit loops: slow, but each line is one term of the sum above.

Padding follows TensorFlow: ``'valid'`` adds none; ``'same'`` gives ``ceil(n / s)``
outputs by padding ``max((ceil(n/s) - 1) s + (k - 1) d + 1 - n, 0)`` in total, with the
odd pixel at the bottom/right.
"""

from __future__ import annotations

import math

import numpy as np
from numpy.lib.stride_tricks import as_strided

from .activations import ReLU6
from .base import Array, Container, Layer
from .init import get_initializer, zeros
from .layers import BatchNorm, as_generator

Pair = tuple[int, int]


def _pair(value: int | tuple[int, int], name: str) -> Pair:
    pair = (value, value) if isinstance(value, int) else (int(value[0]), int(value[1]))
    if min(pair) < 1:
        raise ValueError(f"{name} must be positive, got {value}")
    return pair


def _check_padding(padding: str) -> str:
    padding = padding.lower()
    if padding not in ("valid", "same"):
        raise ValueError(f"padding must be 'valid' or 'same', got {padding!r}")
    return padding


def conv_output_length(n: int, k: int, stride: int, dilation: int, padding: str) -> int:
    """Output length along one axis: ``ceil(n / s)`` for 'same',
    ``floor((n - k_eff) / s) + 1`` for 'valid', where ``k_eff = (k - 1) d + 1``."""
    k_eff = (k - 1) * dilation + 1
    if padding == "same":
        return math.ceil(n / stride)
    if n < k_eff:
        raise ValueError(
            f"input length {n} is smaller than the (dilated) kernel {k_eff} with padding "
            "'valid'; use padding='same' or a larger input"
        )
    return (n - k_eff) // stride + 1


def same_padding(n: int, k: int, stride: int, dilation: int = 1) -> Pair:
    """TensorFlow's 'same' padding ``(before, after)`` along one axis (extra on the after side)."""
    total = max((math.ceil(n / stride) - 1) * stride + (k - 1) * dilation + 1 - n, 0)
    return total // 2, total - total // 2


def pad_input(x: Array, kernel: Pair, strides: Pair, dilation: Pair, padding: str,
              value: float = 0.0) -> tuple[Array, tuple[Pair, Pair], Pair]:
    """Pad ``x`` ``(N, H, W, C)`` for a sliding window; returns ``(x_pad, pads, (H_o, W_o))``."""
    _, h, w, _ = x.shape
    h_out = conv_output_length(h, kernel[0], strides[0], dilation[0], padding)
    w_out = conv_output_length(w, kernel[1], strides[1], dilation[1], padding)
    if padding == "same":
        pads = (same_padding(h, kernel[0], strides[0], dilation[0]),
                same_padding(w, kernel[1], strides[1], dilation[1]))
        if any(pads[0]) or any(pads[1]):
            x = np.pad(x, ((0, 0), pads[0], pads[1], (0, 0)), constant_values=value)
    else:
        pads = ((0, 0), (0, 0))
    return x, pads, (h_out, w_out)


def sliding_windows(x_pad: Array, kernel: Pair, strides: Pair, dilation: Pair,
                    out_hw: Pair) -> Array:
    """Read-only view ``(N, H_o, W_o, k_h, k_w, C)`` of every receptive field of ``x_pad``.

    ``view[n, h, w, i, j, c] = x_pad[n, h s_h + i d_h, w s_w + j d_w, c]``: only the
    strides change, so no memory is copied (the reshape into ``cols`` copies).
    """
    sn, sh, sw, sc = x_pad.strides
    n, _, _, c = x_pad.shape
    shape = (n, out_hw[0], out_hw[1], kernel[0], kernel[1], c)
    st = (sn, sh * strides[0], sw * strides[1], sh * dilation[0], sw * dilation[1], sc)
    return as_strided(x_pad, shape=shape, strides=st, writeable=False)


def _tap(i: int, j: int, strides: Pair, dilation: Pair, out_hw: Pair) -> tuple[slice, slice]:
    """The rows/columns of ``x_pad`` that kernel tap ``(i, j)`` touches, as slices."""
    r0, c0 = i * dilation[0], j * dilation[1]
    return (slice(r0, r0 + strides[0] * (out_hw[0] - 1) + 1, strides[0]),
            slice(c0, c0 + strides[1] * (out_hw[1] - 1) + 1, strides[1]))


def _crop(dx_pad: Array, pads: tuple[Pair, Pair]) -> Array:
    (pt, pb), (pl, pr) = pads
    h, w = dx_pad.shape[1], dx_pad.shape[2]
    return dx_pad[:, pt:h - pb, pl:w - pr, :]


def col2im(dwindows: Array, padded_shape: tuple[int, ...], strides: Pair, dilation: Pair,
           pads: tuple[Pair, Pair]) -> Array:
    """Adjoint of :func:`sliding_windows`: add ``(N, H_o, W_o, k_h, k_w, C)`` back onto pixels.

    One vectorised ``+=`` per kernel tap ``(i, j)``; pixels shared by overlapping windows
    receive the sum of their gradients. Returns the cropped ``(N, H, W, C)`` gradient.
    """
    _, h_out, w_out, kh, kw, _ = dwindows.shape
    dx_pad = np.zeros(padded_shape, dtype=dwindows.dtype)
    for i in range(kh):
        for j in range(kw):
            rows, cols = _tap(i, j, strides, dilation, (h_out, w_out))
            dx_pad[:, rows, cols, :] += dwindows[:, :, :, i, j, :]
    return _crop(dx_pad, pads)


# --------------------------------------------------------------------- Conv2D


class Conv2D(Layer):
    """2-D convolution, NHWC, via im2col + one matrix product (see the module docstring).

    Shapes: ``x`` ``(N, H, W, C_in)`` -> ``z`` ``(N, H_o, W_o, C_out)``; kernel ``K``
    ``(k_h, k_w, C_in, C_out)`` (TF/Keras layout), bias ``b`` ``(C_out,)``.

    Backward, with ``delta = dL/dz`` reshaped to ``(N H_o W_o, C_out)``::

        dL/dK = cols^T delta             (k_h k_w C_in, C_out) -> (k_h, k_w, C_in, C_out)
        dL/db = sum over n, h, w of delta
        dL/dx = col2im(delta K^T)        computed tap by tap: for each (i, j),
                dx_pad[rows(i), cols(j)] += delta @ K[i, j]^T
    """

    def __init__(self, filters: int, kernel_size: int | Pair, *, strides: int | Pair = 1,
                 padding: str = "valid", dilation_rate: int | Pair = 1, use_bias: bool = True,
                 kernel_initializer: str = "glorot_uniform",
                 seed: int | np.random.Generator | None = None, dtype: type = np.float32,
                 name: str | None = None) -> None:
        super().__init__(name)
        if filters <= 0:
            raise ValueError(f"{type(self).__name__}: filters must be positive, got {filters}")
        self.filters = filters
        self.kernel_size = _pair(kernel_size, "kernel_size")
        self.strides = _pair(strides, "strides")
        self.dilation = _pair(dilation_rate, "dilation_rate")
        self.padding = _check_padding(padding)
        self.use_bias = use_bias
        self.kernel_initializer = get_initializer(kernel_initializer)
        self.rng = as_generator(seed)
        self.dtype = dtype

    def build(self, input_shape: tuple[int, ...]) -> None:
        if len(input_shape) != 4:
            raise ValueError(
                f"{type(self).__name__} expects NHWC inputs (N, H, W, C), got shape {input_shape}; "
                "add a channel axis to greyscale images (x[..., None])."
            )
        c_in = int(input_shape[-1])
        shape = (*self.kernel_size, c_in, self.filters)
        self.params["K"] = self.kernel_initializer(shape, self.rng, self.dtype)
        if self.use_bias:
            self.params["b"] = zeros((self.filters,), dtype=self.dtype)
        self.built = True

    def forward(self, x: Array, training: bool = False) -> Array:
        self._ensure_built(x)
        K = self.params["K"]
        x_pad, pads, out_hw = pad_input(x, self.kernel_size, self.strides, self.dilation,
                                        self.padding)
        windows = sliding_windows(x_pad, self.kernel_size, self.strides, self.dilation, out_hw)
        n = x.shape[0]
        cols = windows.reshape(n * out_hw[0] * out_hw[1], -1)  # the im2col copy
        z = cols @ K.reshape(-1, self.filters)
        if self.use_bias:
            z += self.params["b"]
        self.cache = (cols, x_pad.shape, pads, out_hw)
        return z.reshape(n, out_hw[0], out_hw[1], self.filters)

    def backward(self, dout: Array) -> Array:
        cols, padded_shape, pads, out_hw = self._require_cache()
        K = self.params["K"]
        delta = dout.reshape(-1, self.filters)
        self.grads["K"] = (cols.T @ delta).reshape(K.shape)
        if self.use_bias:
            self.grads["b"] = delta.sum(axis=0)
        dx_pad = np.zeros(padded_shape, dtype=dout.dtype)
        n, c_in = padded_shape[0], padded_shape[-1]
        # col2im fused with the product: one small GEMM per tap into a reused buffer, then a
        # shifted add whose rows are contiguous (W_o C values) when the stride is 1. This
        # never materialises dcols (N H_o W_o, k_h k_w C_in) and is ~2x faster than
        # "dcols = delta K^T, then scatter" (whose adds would read 16-float runs).
        tap = np.empty((delta.shape[0], c_in), dtype=np.result_type(delta, K))
        tap4 = tap.reshape(n, *out_hw, c_in)
        for i in range(self.kernel_size[0]):
            for j in range(self.kernel_size[1]):
                rows, cs = _tap(i, j, self.strides, self.dilation, out_hw)
                np.matmul(delta, np.ascontiguousarray(K[i, j].T), out=tap)
                dx_pad[:, rows, cs, :] += tap4
        return _crop(dx_pad, pads)


def conv2d_naive(x: Array, K: Array, b: Array | None, strides: Pair = (1, 1),
                 padding: str = "valid", dilation: Pair = (1, 1)) -> Array:
    """Convolution as four nested loops -- one output number at a time (for teaching).

    ``z[n, h, w, f] = b[f] + sum_{i,j,c} x_pad[n, h s + i d, w s + j d, c] K[i, j, c, f]``.
    Shapes as :class:`Conv2D`. Roughly ``N H_o W_o C_out`` Python iterations: use tiny inputs.
    """
    kh, kw, _, f_out = K.shape
    x_pad, _, (h_out, w_out) = pad_input(x, (kh, kw), strides, dilation, _check_padding(padding))
    n_batch = x.shape[0]
    z = np.zeros((n_batch, h_out, w_out, f_out), dtype=np.result_type(x, K))
    for n in range(n_batch):
        for h in range(h_out):
            for w in range(w_out):
                r0, c0 = h * strides[0], w * strides[1]
                field = x_pad[n, r0:r0 + (kh - 1) * dilation[0] + 1:dilation[0],
                              c0:c0 + (kw - 1) * dilation[1] + 1:dilation[1], :]  # (kh, kw, C)
                for f in range(f_out):
                    z[n, h, w, f] = np.sum(field * K[:, :, :, f]) + (0 if b is None else b[f])
    return z


def conv2d_naive_backward(dout: Array, x: Array, K: Array, strides: Pair = (1, 1),
                          padding: str = "valid",
                          dilation: Pair = (1, 1)) -> tuple[Array, Array, Array]:
    """Loop version of the convolution's backward pass: returns ``(dx, dK, db)``.

    Each output ``z[n, h, w, f]`` received ``delta = dout[n, h, w, f]``; it flows back to
    every input of its receptive field (``dx_field += delta K[..., f]``) and to every
    weight that multiplied it (``dK[..., f] += delta x_field``).
    """
    kh, kw, _, f_out = K.shape
    padding = _check_padding(padding)
    x_pad, pads, (h_out, w_out) = pad_input(x, (kh, kw), strides, dilation, padding)
    dx_pad = np.zeros_like(x_pad)
    dK = np.zeros_like(K)
    for n in range(x.shape[0]):
        for h in range(h_out):
            for w in range(w_out):
                r0, c0 = h * strides[0], w * strides[1]
                rs = slice(r0, r0 + (kh - 1) * dilation[0] + 1, dilation[0])
                cs = slice(c0, c0 + (kw - 1) * dilation[1] + 1, dilation[1])
                for f in range(f_out):
                    delta = dout[n, h, w, f]
                    dx_pad[n, rs, cs, :] += delta * K[:, :, :, f]
                    dK[:, :, :, f] += delta * x_pad[n, rs, cs, :]
    db = dout.sum(axis=(0, 1, 2))
    return _crop(dx_pad, pads), dK, db


class NaiveConv2D(Conv2D):
    """:class:`Conv2D` computed by :func:`conv2d_naive` (same parameters, same results, slow)."""

    def forward(self, x: Array, training: bool = False) -> Array:
        self._ensure_built(x)
        self.cache = x
        return conv2d_naive(x, self.params["K"], self.params.get("b"), self.strides,
                            self.padding, self.dilation)

    def backward(self, dout: Array) -> Array:
        x = self._require_cache()
        dx, dK, db = conv2d_naive_backward(dout, x, self.params["K"], self.strides,
                                           self.padding, self.dilation)
        self.grads["K"] = dK
        if self.use_bias:
            self.grads["b"] = db
        return dx


class PointwiseConv2D(Conv2D):
    """1x1 convolution: a Dense layer applied at every pixel, ``z[n,h,w] = K^T x[n,h,w] + b``.

    MobileNet uses it to mix channels after a depthwise conv (which never mixes them).
    Computed as one matrix product over ``(N H W, C_in)`` without im2col.
    Shapes: ``(N, H, W, C_in) -> (N, H, W, C_out)``; ``K`` ``(1, 1, C_in, C_out)``.
    """

    def __init__(self, filters: int, *, use_bias: bool = True,
                 kernel_initializer: str = "glorot_uniform",
                 seed: int | np.random.Generator | None = None, dtype: type = np.float32,
                 name: str | None = None) -> None:
        super().__init__(filters, 1, use_bias=use_bias, kernel_initializer=kernel_initializer,
                         seed=seed, dtype=dtype, name=name)

    def forward(self, x: Array, training: bool = False) -> Array:
        self._ensure_built(x)
        self.cache = x
        z = x @ self.params["K"][0, 0]
        if self.use_bias:
            z += self.params["b"]
        return z

    def backward(self, dout: Array) -> Array:
        x = self._require_cache()
        K = self.params["K"]
        c_in = x.shape[-1]
        self.grads["K"] = (x.reshape(-1, c_in).T @ dout.reshape(-1, self.filters)).reshape(K.shape)
        if self.use_bias:
            self.grads["b"] = dout.sum(axis=(0, 1, 2))
        return dout @ K[0, 0].T


class DepthwiseConv2D(Layer):
    """Depthwise convolution: each input channel has its own ``k_h x k_w`` filter(s).

    ``z[n, h, w, c M + m] = b[c M + m] + sum_{i,j} x_pad[n, h s + i d, w s + j d, c] K[i, j, c, m]``
    with depth multiplier ``M``. Costs ``k_h k_w C`` multiplies per pixel instead of
    ``k_h k_w C C_out``: with a pointwise conv after it, the MobileNet factorisation.
    Shapes: ``(N, H, W, C) -> (N, H_o, W_o, C M)``; ``K`` ``(k_h, k_w, C, M)`` (TF layout).
    Computed tap by tap: ``z += x_pad[rows(i), cols(j)] (.) K[i, j]`` (``k_h k_w`` array ops).
    """

    def __init__(self, kernel_size: int | Pair, *, strides: int | Pair = 1,
                 padding: str = "valid", depth_multiplier: int = 1,
                 dilation_rate: int | Pair = 1, use_bias: bool = True,
                 kernel_initializer: str = "glorot_uniform",
                 seed: int | np.random.Generator | None = None, dtype: type = np.float32,
                 name: str | None = None) -> None:
        super().__init__(name)
        self.kernel_size = _pair(kernel_size, "kernel_size")
        self.strides = _pair(strides, "strides")
        self.dilation = _pair(dilation_rate, "dilation_rate")
        self.padding = _check_padding(padding)
        self.depth_multiplier = depth_multiplier
        self.use_bias = use_bias
        self.kernel_initializer = get_initializer(kernel_initializer)
        self.rng = as_generator(seed)
        self.dtype = dtype

    def build(self, input_shape: tuple[int, ...]) -> None:
        if len(input_shape) != 4:
            raise ValueError(f"DepthwiseConv2D expects NHWC inputs, got shape {input_shape}")
        c = int(input_shape[-1])
        shape = (*self.kernel_size, c, self.depth_multiplier)
        # Keras computes depthwise fans from (k_h, k_w, C, M) like a conv kernel
        self.params["K"] = self.kernel_initializer(shape, self.rng, self.dtype)
        if self.use_bias:
            self.params["b"] = zeros((c * self.depth_multiplier,), dtype=self.dtype)
        self.built = True

    def forward(self, x: Array, training: bool = False) -> Array:
        self._ensure_built(x)
        K = self.params["K"]
        x_pad, pads, out_hw = pad_input(x, self.kernel_size, self.strides, self.dilation,
                                        self.padding)
        n, c, m = x.shape[0], x.shape[-1], self.depth_multiplier
        z = np.zeros((n, *out_hw, c, m), dtype=np.result_type(x, K))
        for i in range(self.kernel_size[0]):
            for j in range(self.kernel_size[1]):
                rows, cols = _tap(i, j, self.strides, self.dilation, out_hw)
                z += x_pad[:, rows, cols, :, None] * K[i, j]
        z = z.reshape(n, *out_hw, c * m)
        if self.use_bias:
            z += self.params["b"]
        self.cache = (x_pad, pads, out_hw)
        return z

    def backward(self, dout: Array) -> Array:
        x_pad, pads, out_hw = self._require_cache()
        K = self.params["K"]
        n, c, m = x_pad.shape[0], x_pad.shape[-1], self.depth_multiplier
        delta = dout.reshape(n, *out_hw, c, m)
        dK = np.zeros_like(K)
        dx_pad = np.zeros_like(x_pad)
        for i in range(self.kernel_size[0]):
            for j in range(self.kernel_size[1]):
                rows, cols = _tap(i, j, self.strides, self.dilation, out_hw)
                x_tap = x_pad[:, rows, cols, :]
                dK[i, j] = np.einsum("nhwc,nhwcm->cm", x_tap, delta, optimize=True)
                dx_pad[:, rows, cols, :] += (delta * K[i, j]).sum(axis=-1)
        self.grads["K"] = dK
        if self.use_bias:
            self.grads["b"] = dout.sum(axis=(0, 1, 2))
        return _crop(dx_pad, pads)


# --------------------------------------------------------------------- pooling


class _Pool2D(Layer):
    def __init__(self, pool_size: int | Pair = 2, strides: int | Pair | None = None,
                 padding: str = "valid", name: str | None = None) -> None:
        super().__init__(name)
        self.pool_size = _pair(pool_size, "pool_size")
        self.strides = self.pool_size if strides is None else _pair(strides, "strides")
        self.padding = _check_padding(padding)


class MaxPool2D(_Pool2D):
    """Max pooling: ``a[n, h, w, c] = max_{i,j} x_pad[n, h s + i, w s + j, c]``.

    'same' pads with ``-inf`` so padding never wins (TF's rule). Backward routes each
    ``dout`` entry to the arg-max of its window only (the max is locally the identity on
    the winner, constant in the others); overlapping windows add. Ties go to the first
    maximum in row-major window order.
    Shapes: ``(N, H, W, C) -> (N, H_o, W_o, C)``.
    """

    def forward(self, x: Array, training: bool = False) -> Array:
        x_pad, pads, out_hw = pad_input(x, self.pool_size, self.strides, (1, 1), self.padding,
                                        value=-np.inf)
        # a running maximum over the k_h k_w taps: element-wise ops, no window copy
        out = None
        for i in range(self.pool_size[0]):
            for j in range(self.pool_size[1]):
                rows, cols = _tap(i, j, self.strides, (1, 1), out_hw)
                tap = x_pad[:, rows, cols, :]
                out = tap.copy() if out is None else np.maximum(out, tap, out=out)
        self.cache = (x_pad, out, pads, out_hw)
        return out

    def backward(self, dout: Array) -> Array:
        x_pad, out, pads, out_hw = self._require_cache()
        dx_pad = np.zeros(x_pad.shape, dtype=dout.dtype)
        routed = np.zeros(out.shape, dtype=bool)  # windows whose winner is already found
        for i in range(self.pool_size[0]):
            for j in range(self.pool_size[1]):
                rows, cols = _tap(i, j, self.strides, (1, 1), out_hw)
                winner = (x_pad[:, rows, cols, :] == out) & ~routed
                dx_pad[:, rows, cols, :] += np.where(winner, dout, 0)
                routed |= winner
        return _crop(dx_pad, pads)


class AvgPool2D(_Pool2D):
    """Average pooling: ``a[n, h, w, c] = (1/|R|) sum_{(i,j) in R} x[n, h s + i, w s + j, c]``.

    With 'same', padded positions are excluded from ``|R|`` (TensorFlow's rule), so
    border windows average fewer pixels. Backward spreads ``dout / |R|`` over the window.
    Shapes: ``(N, H, W, C) -> (N, H_o, W_o, C)``.
    """

    def forward(self, x: Array, training: bool = False) -> Array:
        x_pad, pads, out_hw = pad_input(x, self.pool_size, self.strides, (1, 1), self.padding)
        ones = np.pad(np.ones((1, x.shape[1], x.shape[2], 1), dtype=x.dtype),
                      ((0, 0), pads[0], pads[1], (0, 0)))
        total = np.zeros((x.shape[0], *out_hw, x.shape[-1]), dtype=x.dtype)
        count = np.zeros((1, *out_hw, 1), dtype=x.dtype)
        for i in range(self.pool_size[0]):
            for j in range(self.pool_size[1]):
                rows, cols = _tap(i, j, self.strides, (1, 1), out_hw)
                total += x_pad[:, rows, cols, :]
                count += ones[:, rows, cols, :]
        self.cache = (count, x_pad.shape, pads, out_hw)
        return total / count

    def backward(self, dout: Array) -> Array:
        count, padded_shape, pads, out_hw = self._require_cache()
        dx_pad = np.zeros(padded_shape, dtype=dout.dtype)
        share = dout / count
        for i in range(self.pool_size[0]):
            for j in range(self.pool_size[1]):
                rows, cols = _tap(i, j, self.strides, (1, 1), out_hw)
                dx_pad[:, rows, cols, :] += share
        return _crop(dx_pad, pads)


class GlobalAvgPool2D(Layer):
    """``a[n, c] = (1 / (H W)) sum_{h,w} x[n, h, w, c]``; backward ``dout / (H W)`` everywhere.

    Shapes: ``(N, H, W, C) -> (N, C)``. Replaces Flatten + a huge Dense in modern CNNs.
    """

    def forward(self, x: Array, training: bool = False) -> Array:
        self.cache = x.shape
        return x.mean(axis=(1, 2))

    def backward(self, dout: Array) -> Array:
        n, h, w, c = self._require_cache()
        return np.broadcast_to(dout[:, None, None, :] / (h * w), (n, h, w, c)).copy()


class GlobalMaxPool2D(Layer):
    """``a[n, c] = max_{h,w} x[n, h, w, c]``; backward routes ``dout`` to each arg-max.

    Shapes: ``(N, H, W, C) -> (N, C)``. Where average pooling dilutes a feature that fires
    on a few pixels (a small lesion) by ``1 / (H W)``, the maximum keeps it whole: "is this
    pattern anywhere in the image?". Ties go to the first maximum in row-major order.
    """

    def forward(self, x: Array, training: bool = False) -> Array:
        n, h, w, c = x.shape
        flat = x.reshape(n, h * w, c)
        arg = flat.argmax(axis=1)  # (N, C)
        self.cache = (arg, x.shape)
        return np.take_along_axis(flat, arg[:, None, :], axis=1)[:, 0, :]

    def backward(self, dout: Array) -> Array:
        arg, (n, h, w, c) = self._require_cache()
        dx = np.zeros((n, h * w, c), dtype=dout.dtype)
        np.put_along_axis(dx, arg[:, None, :], dout[:, None, :], axis=1)
        return dx.reshape(n, h, w, c)


# --------------------------------------------------------------------- MobileNetV2 block


class InvertedResidual(Container):
    """MobileNetV2's inverted residual with linear bottleneck (Sandler et al., 2018).

    ``x -> 1x1 expand (C -> t C) -> BN -> ReLU6 -> 3x3 depthwise (stride s) -> BN -> ReLU6
    -> 1x1 project (t C -> C_out) -> BN`` (no activation: the "linear bottleneck"), plus
    the identity shortcut ``+ x`` when ``s = 1`` and ``C = C_out``. The expand step is
    skipped when ``t = 1``. Backward: the shortcut adds ``dout`` to the branch's ``dx``.
    Shapes: ``(N, H, W, C) -> (N, ceil(H/s), ceil(W/s), C_out)``.
    """

    def __init__(self, out_channels: int, *, stride: int = 1, expansion: int = 6,
                 seed: int | np.random.Generator | None = None, dtype: type = np.float32,
                 name: str | None = None) -> None:
        super().__init__([], name)
        self.out_channels = out_channels
        self.stride = stride
        self.expansion = expansion
        self.rng = as_generator(seed)
        self.dtype = dtype
        self.use_residual = False

    def build(self, input_shape: tuple[int, ...]) -> None:
        c_in = int(input_shape[-1])
        layers: list[Layer] = []
        if self.expansion != 1:
            layers += [PointwiseConv2D(c_in * self.expansion, use_bias=False,
                                       kernel_initializer="he_normal", seed=self.rng,
                                       dtype=self.dtype, name="expand"),
                       BatchNorm(dtype=self.dtype, name="expand_bn"), ReLU6(name="expand_relu6")]
        layers += [DepthwiseConv2D(3, strides=self.stride, padding="same", use_bias=False,
                                   kernel_initializer="he_normal", seed=self.rng,
                                   dtype=self.dtype, name="depthwise"),
                   BatchNorm(dtype=self.dtype, name="depthwise_bn"),
                   ReLU6(name="depthwise_relu6"),
                   PointwiseConv2D(self.out_channels, use_bias=False, seed=self.rng,
                                   dtype=self.dtype, name="project"),
                   BatchNorm(dtype=self.dtype, name="project_bn")]
        self.layers = layers
        self.use_residual = self.stride == 1 and c_in == self.out_channels
        self.built = True
        # create the children's parameters with a dummy inference pass (no statistics change)
        Container.forward(self, np.zeros((1, *input_shape[1:]), dtype=self.dtype), training=False)

    def forward(self, x: Array, training: bool = False) -> Array:
        self._ensure_built(x)
        out = Container.forward(self, x, training=training)
        return out + x if self.use_residual else out

    def backward(self, dout: Array) -> Array:
        dx = Container.backward(self, dout)
        return dx + dout if self.use_residual else dx
