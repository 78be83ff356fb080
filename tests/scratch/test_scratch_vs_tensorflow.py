"""Forward and backward passes of ``neuropathology.scratch`` against TensorFlow (float32).

Each case draws random inputs (odd spatial sizes, stride 2, 'same'/'valid' padding,
dilation), runs our layer and its TensorFlow twin (``tf.nn.*`` / ``keras.layers``),
and compares outputs and the gradients of ``L = sum(out (.) R)`` for a random ``R``
(obtained with ``tf.GradientTape``) to 1e-5.
"""

from __future__ import annotations

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
import tensorflow as tf  # noqa: E402

from neuropathology.scratch import activations as act  # noqa: E402
from neuropathology.scratch.conv import (  # noqa: E402
    AvgPool2D,
    Conv2D,
    DepthwiseConv2D,
    GlobalAvgPool2D,
    GlobalMaxPool2D,
    MaxPool2D,
    PointwiseConv2D,
)
from neuropathology.scratch.layers import BatchNorm, Dense, LayerNorm  # noqa: E402
from neuropathology.scratch.losses import (  # noqa: E402
    BinaryCrossEntropy,
    CategoricalCrossEntropy,
    MeanSquaredError,
    SoftmaxCrossEntropy,
)
from neuropathology.utils.helpers import derive_seed  # noqa: E402

TOL = dict(rtol=1e-5, atol=1e-5)
F32 = np.float32


def close(a, b, what: str) -> None:
    np.testing.assert_allclose(np.asarray(a), np.asarray(b), err_msg=what, **TOL)


def tf_vjp(fn, arrays: list[np.ndarray], R: np.ndarray) -> tuple[np.ndarray, list[np.ndarray]]:
    """TF output of ``fn(*arrays)`` and the gradients of ``sum(out * R)`` w.r.t. each array."""
    tensors = [tf.constant(a) for a in arrays]
    with tf.GradientTape() as tape:
        for t in tensors:
            tape.watch(t)
        out = fn(*tensors)
        loss = tf.reduce_sum(out * tf.constant(R))
    return out.numpy(), [g.numpy() for g in tape.gradient(loss, tensors)]


def keras_layer_vjp(layer, x: np.ndarray, R: np.ndarray, weights: list, **call_kwargs
                    ) -> tuple[np.ndarray, np.ndarray, list[np.ndarray]]:
    """Keras ``layer(x)``, and the gradients of ``sum(out * R)`` w.r.t. ``x`` and ``weights``."""
    x_t = tf.constant(x)
    with tf.GradientTape() as tape:
        tape.watch(x_t)
        out = layer(x_t, **call_kwargs)
        loss = tf.reduce_sum(out * R)
    dx, *dweights = tape.gradient(loss, [x_t, *weights])
    return out.numpy(), dx.numpy(), [g.numpy() for g in dweights]


def random_image(rng: np.random.Generator, channels: int) -> np.ndarray:
    h, w = (int(v) for v in rng.integers(6, 14, size=2))
    return rng.standard_normal((int(rng.integers(1, 4)), h, w, channels)).astype(F32)


@pytest.mark.parametrize("name", ["relu", "relu6", "leaky_relu", "sigmoid", "tanh", "gelu",
                                  "gelu_tanh", "softmax"])
def test_activations(name: str) -> None:
    rng = np.random.default_rng(0)
    x = (rng.standard_normal((4, 7)) * 4).astype(F32)
    ours, theirs = {
        "relu": (act.ReLU(), tf.nn.relu),
        "relu6": (act.ReLU6(), tf.nn.relu6),
        "leaky_relu": (act.LeakyReLU(0.2), lambda t: tf.nn.leaky_relu(t, alpha=0.2)),
        "sigmoid": (act.Sigmoid(), tf.sigmoid),
        "tanh": (act.Tanh(), tf.tanh),
        "gelu": (act.GELU(), lambda t: tf.nn.gelu(t, approximate=False)),
        "gelu_tanh": (act.GELU(approximate=True), lambda t: tf.nn.gelu(t, approximate=True)),
        "softmax": (act.Softmax(), tf.nn.softmax),
    }[name]
    out = ours.forward(x)
    R = rng.standard_normal(out.shape).astype(F32)
    tf_out, (tf_dx,) = tf_vjp(theirs, [x], R)
    close(out, tf_out, "forward")
    close(ours.backward(R), tf_dx, "dx")


def test_dense_matches_keras() -> None:
    rng = np.random.default_rng(1)
    x = rng.standard_normal((5, 7)).astype(F32)
    layer = Dense(3, 7, seed=0)
    layer.params["b"][:] = rng.standard_normal(3)
    kd = keras.layers.Dense(3)
    kd.build((None, 7))
    kd.set_weights([layer.params["W"].T, layer.params["b"]])  # Keras stores kernel = W^T
    out = layer.forward(x)
    R = rng.standard_normal(out.shape).astype(F32)
    k_out, dx_t, (dk, db) = keras_layer_vjp(kd, x, R, [kd.kernel, kd.bias])
    close(out, k_out, "forward")
    close(layer.backward(R), dx_t, "dx")
    close(layer.grads["W"], dk.T, "dW")
    close(layer.grads["b"], db, "db")


CONV_CASES = [
    (3, 1, "valid", 1), (3, 2, "same", 1), (3, 2, "valid", 1), (5, 2, "same", 1),
    (3, 1, "same", 2), (3, 1, "valid", 2), ((2, 3), (2, 1), "same", 1), (1, 2, "valid", 1),
]


@pytest.mark.parametrize("kernel,stride,padding,dilation", CONV_CASES)
def test_conv2d_matches_tf(kernel, stride, padding, dilation) -> None:
    rng = np.random.default_rng(derive_seed("conv", kernel, stride, padding, dilation))
    x = random_image(rng, 3)
    layer = Conv2D(4, kernel, strides=stride, padding=padding, dilation_rate=dilation, seed=1)
    out = layer.forward(x)
    layer.params["b"][:] = rng.standard_normal(4)
    out = layer.forward(x)
    R = rng.standard_normal(out.shape).astype(F32)
    strides = (stride, stride) if isinstance(stride, int) else stride

    def tf_conv(xt, kt, bt):
        return tf.nn.conv2d(xt, kt, strides=[1, *strides, 1], padding=padding.upper(),
                            dilations=dilation) + bt

    tf_out, (dx, dk, db) = tf_vjp(tf_conv, [x, layer.params["K"], layer.params["b"]], R)
    close(out, tf_out, "forward")
    close(layer.backward(R), dx, "dx")
    close(layer.grads["K"], dk, "dK")
    close(layer.grads["b"], db, "db")


@pytest.mark.parametrize("stride,padding,multiplier,dilation",
                         [(1, "same", 1, 1), (2, "same", 2, 1), (2, "valid", 1, 1),
                          (1, "valid", 1, 2), (1, "same", 3, 2)])
def test_depthwise_matches_tf(stride, padding, multiplier, dilation) -> None:
    rng = np.random.default_rng(stride * 100 + multiplier * 10 + dilation)
    x = random_image(rng, 3)
    layer = DepthwiseConv2D(3, strides=stride, padding=padding, depth_multiplier=multiplier,
                            dilation_rate=dilation, seed=2)
    layer.forward(x)
    layer.params["b"][:] = rng.standard_normal(layer.params["b"].shape)
    out = layer.forward(x)
    R = rng.standard_normal(out.shape).astype(F32)

    def tf_dw(xt, kt, bt):
        return tf.nn.depthwise_conv2d(xt, kt, strides=[1, stride, stride, 1],
                                      padding=padding.upper(), dilations=[dilation, dilation]) + bt

    tf_out, (dx, dk, db) = tf_vjp(tf_dw, [x, layer.params["K"], layer.params["b"]], R)
    close(out, tf_out, "forward")
    close(layer.backward(R), dx, "dx")
    close(layer.grads["K"], dk, "dK")
    close(layer.grads["b"], db, "db")


def test_pointwise_matches_tf() -> None:
    rng = np.random.default_rng(3)
    x = random_image(rng, 5)
    layer = PointwiseConv2D(6, seed=3)
    out = layer.forward(x)
    R = rng.standard_normal(out.shape).astype(F32)
    tf_out, (dx, dk) = tf_vjp(lambda a, k: tf.nn.conv2d(a, k, 1, "VALID"),
                              [x, layer.params["K"]], R)
    close(out, tf_out, "forward")
    close(layer.backward(R), dx, "dx")
    close(layer.grads["K"], dk, "dK")


@pytest.mark.parametrize("pool,stride,padding", [(2, 2, "valid"), (3, 2, "same"), (3, 2, "valid"),
                                                 (2, 1, "same"), (3, 1, "valid")])
def test_pooling_matches_tf(pool, stride, padding) -> None:
    rng = np.random.default_rng(pool * 10 + stride)
    x = random_image(rng, 2)
    for ours, theirs in [(MaxPool2D(pool, stride, padding), tf.nn.max_pool2d),
                         (AvgPool2D(pool, stride, padding), tf.nn.avg_pool2d)]:
        out = ours.forward(x)
        R = rng.standard_normal(out.shape).astype(F32)
        tf_out, (dx,) = tf_vjp(lambda t, f=theirs: f(t, pool, stride, padding.upper()), [x], R)
        close(out, tf_out, f"{type(ours).__name__} forward")
        close(ours.backward(R), dx, f"{type(ours).__name__} dx")
    for ours, theirs in [(GlobalAvgPool2D(), keras.layers.GlobalAveragePooling2D()),
                         (GlobalMaxPool2D(), keras.layers.GlobalMaxPooling2D())]:
        out = ours.forward(x)
        R = rng.standard_normal(out.shape).astype(F32)
        tf_out, (dx,) = tf_vjp(theirs, [x], R)
        close(out, tf_out, f"{type(ours).__name__} forward")
        close(ours.backward(R), dx, f"{type(ours).__name__} dx")


@pytest.mark.parametrize("shape", [(8, 5), (3, 5, 7, 4)])
def test_batchnorm_matches_keras(shape) -> None:
    rng = np.random.default_rng(len(shape))
    c = shape[-1]
    x = (rng.standard_normal(shape) * 3 + 2).astype(F32)
    ours = BatchNorm()
    ours.build(shape)
    ours.params["gamma"][:] = rng.uniform(0.5, 1.5, c)
    ours.params["beta"][:] = rng.standard_normal(c)
    ours.running_mean[:] = rng.standard_normal(c)
    ours.running_var[:] = rng.uniform(0.5, 2, c)
    kbn = keras.layers.BatchNormalization()
    kbn.build(shape)
    kbn.set_weights([ours.params["gamma"], ours.params["beta"], ours.running_mean,
                     ours.running_var])
    for training in (True, False):
        out = ours.forward(x, training=training)
        R = rng.standard_normal(shape).astype(F32)
        k_out, dx, (dg, dbeta) = keras_layer_vjp(kbn, x, R, [kbn.gamma, kbn.beta],
                                                 training=training)
        close(out, k_out, f"forward training={training}")
        close(ours.backward(R), dx, f"dx training={training}")
        close(ours.grads["gamma"], dg, "dgamma")
        close(ours.grads["beta"], dbeta, "dbeta")
        close(ours.running_mean, kbn.moving_mean.numpy(), "running mean")
        close(ours.running_var, kbn.moving_variance.numpy(), "running variance")


def test_layernorm_matches_keras() -> None:
    rng = np.random.default_rng(7)
    x = (rng.standard_normal((4, 3, 6)) * 2 + 1).astype(F32)
    ours = LayerNorm()
    ours.build(x.shape)
    ours.params["gamma"][:] = rng.uniform(0.5, 1.5, 6)
    ours.params["beta"][:] = rng.standard_normal(6)
    kln = keras.layers.LayerNormalization(epsilon=1e-3)
    kln.build(x.shape)
    kln.set_weights([ours.params["gamma"], ours.params["beta"]])
    out = ours.forward(x)
    R = rng.standard_normal(x.shape).astype(F32)
    k_out, dx, (dg, db) = keras_layer_vjp(kln, x, R, [kln.gamma, kln.beta])
    close(out, k_out, "forward")
    close(ours.backward(R), dx, "dx")
    close(ours.grads["gamma"], dg, "dgamma")
    close(ours.grads["beta"], db, "dbeta")


def _loss_vs_keras(ours, theirs, y_pred: np.ndarray, y_true: np.ndarray) -> None:
    value = ours.forward(y_pred, y_true)
    grad = ours.backward()
    p = tf.constant(y_pred)
    with tf.GradientTape() as tape:
        tape.watch(p)
        k_value = theirs(tf.constant(y_true), p)
    close(value, k_value.numpy(), f"{type(ours).__name__} value")
    close(grad, tape.gradient(k_value, p), f"{type(ours).__name__} gradient")


def test_losses_match_keras() -> None:
    rng = np.random.default_rng(8)
    logits = (rng.standard_normal((6, 4)) * 3).astype(F32)
    labels = rng.integers(0, 4, 6)
    onehot = np.eye(4, dtype=F32)[labels]
    _loss_vs_keras(SoftmaxCrossEntropy(), keras.losses.CategoricalCrossentropy(from_logits=True),
                   logits, onehot)
    _loss_vs_keras(SoftmaxCrossEntropy(),
                   keras.losses.SparseCategoricalCrossentropy(from_logits=True), logits, labels)
    probs = rng.uniform(0.05, 1.0, (6, 4)).astype(F32)
    _loss_vs_keras(CategoricalCrossEntropy(), keras.losses.CategoricalCrossentropy(), probs, onehot)
    y_bin = rng.integers(0, 2, (7, 1)).astype(F32)
    _loss_vs_keras(BinaryCrossEntropy(from_logits=True),
                   keras.losses.BinaryCrossentropy(from_logits=True),
                   (rng.standard_normal((7, 1)) * 3).astype(F32), y_bin)
    _loss_vs_keras(BinaryCrossEntropy(), keras.losses.BinaryCrossentropy(),
                   rng.uniform(0.02, 0.98, (7, 1)).astype(F32), y_bin)
    _loss_vs_keras(MeanSquaredError(), keras.losses.MeanSquaredError(),
                   rng.standard_normal((5, 3)).astype(F32), rng.standard_normal((5, 3)).astype(F32))
