"""Sequential, the training loop, initialisers, dropout and the naive/vectorised conv pair."""

from __future__ import annotations

import io

import numpy as np
import pytest

from neuropathology.scratch import init
from neuropathology.scratch.activations import ReLU
from neuropathology.scratch.conv import (
    Conv2D,
    InvertedResidual,
    NaiveConv2D,
    conv2d_naive,
    conv_output_length,
    same_padding,
)
from neuropathology.scratch.layers import BatchNorm, Dense, Dropout, Flatten
from neuropathology.scratch.losses import SoftmaxCrossEntropy
from neuropathology.scratch.model import Sequential, build_small_cnn
from neuropathology.scratch.optim import SGD, Adam


@pytest.mark.parametrize("n,k,s,d,expected", [(7, 3, 2, 1, (1, 1)), (8, 3, 2, 1, (0, 1)),
                                               (5, 3, 1, 2, (2, 2)), (6, 1, 2, 1, (0, 0)),
                                               (4, 4, 1, 1, (1, 2))])
def test_same_padding_rule(n, k, s, d, expected) -> None:
    assert same_padding(n, k, s, d) == expected
    assert conv_output_length(n, k, s, d, "same") == -(-n // s)


def test_valid_padding_too_small_input_is_a_clear_error() -> None:
    with pytest.raises(ValueError, match="smaller than the"):
        Conv2D(2, 5).forward(np.zeros((1, 3, 3, 1), np.float32))
    with pytest.raises(ValueError, match="NHWC"):
        Conv2D(2, 3).forward(np.zeros((3, 3, 1), np.float32))
    with pytest.raises(ValueError, match="padding"):
        Conv2D(2, 3, padding="full")


@pytest.mark.parametrize("stride,padding,dilation", [(1, "valid", 1), (2, "same", 1),
                                                     (2, "valid", 2), (1, "same", 2)])
def test_naive_and_vectorised_conv_agree(stride, padding, dilation) -> None:
    rng = np.random.default_rng(stride + dilation)
    x = rng.standard_normal((2, 7, 6, 3))
    fast = Conv2D(4, 3, strides=stride, padding=padding, dilation_rate=dilation, seed=0,
                  dtype=np.float64)
    slow = NaiveConv2D(4, 3, strides=stride, padding=padding, dilation_rate=dilation, seed=0,
                       dtype=np.float64)
    z = fast.forward(x)
    slow.build(x.shape)
    slow.params["K"][...] = fast.params["K"]
    np.testing.assert_allclose(slow.forward(x), z, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(conv2d_naive(x, fast.params["K"], None, (stride, stride), padding,
                                            (dilation, dilation)), z, atol=1e-12)
    R = rng.standard_normal(z.shape)
    np.testing.assert_allclose(slow.backward(R), fast.backward(R), atol=1e-12)
    np.testing.assert_allclose(slow.grads["K"], fast.grads["K"], atol=1e-12)
    np.testing.assert_allclose(slow.grads["b"], fast.grads["b"], atol=1e-12)


@pytest.mark.parametrize("name,var_fn", [
    ("glorot_uniform", lambda fi, fo: 2 / (fi + fo)), ("glorot_normal", lambda fi, fo: 2 / (fi + fo)),
    ("he_normal", lambda fi, fo: 2 / fi), ("he_uniform", lambda fi, fo: 2 / fi)])
def test_initialiser_variances(name, var_fn) -> None:
    rng = np.random.default_rng(0)
    w = init.get_initializer(name)((3, 3, 64, 96), rng, np.float64)
    fan_in, fan_out = 3 * 3 * 64, 3 * 3 * 96
    assert w.var() == pytest.approx(var_fn(fan_in, fan_out), rel=0.03)
    assert abs(w.mean()) < 0.01 * w.std()
    if name.endswith("normal"):
        assert np.abs(w).max() <= 2 * np.sqrt(var_fn(fan_in, fan_out)) / 0.8796 + 1e-12
    with pytest.raises(ValueError, match="unknown initializer"):
        init.get_initializer("lecun")


def test_dropout_keeps_the_expectation() -> None:
    x = np.ones((200, 500), np.float32)
    drop = Dropout(0.3, seed=0)
    out = drop.forward(x, training=True)
    assert np.mean(out == 0) == pytest.approx(0.3, abs=0.01)
    assert out.mean() == pytest.approx(1.0, abs=0.01)  # inverted dropout: E[a] = x
    assert np.array_equal(drop.forward(x, training=False), x)
    with pytest.raises(ValueError, match="rate"):
        Dropout(1.0)


def test_batchnorm_running_statistics_converge() -> None:
    rng = np.random.default_rng(1)
    bn = BatchNorm(momentum=0.9)
    for _ in range(100):
        bn.forward(rng.normal(3.0, 2.0, (64, 4)).astype(np.float32), training=True)
    np.testing.assert_allclose(bn.running_mean, 3.0, atol=0.15)
    np.testing.assert_allclose(bn.running_var, 4.0, rtol=0.1)
    y = bn.forward(rng.normal(3.0, 2.0, (1000, 4)).astype(np.float32), training=False)
    assert abs(y.mean()) < 0.1 and y.std() == pytest.approx(1.0, abs=0.1)


def test_sequential_parameters_gradients_and_fit_learn_a_separable_problem() -> None:
    rng = np.random.default_rng(2)
    centres = rng.standard_normal((3, 5)) * 3
    y = rng.integers(0, 3, 300)
    x = (centres[y] + rng.standard_normal((300, 5))).astype(np.float32)
    model = Sequential([Dense(16, seed=0), ReLU(), Dropout(0.1, seed=0), Dense(3, seed=1)])
    model.build(x.shape)
    names = list(model.parameters())
    assert names == ["0.dense.W", "0.dense.b", "3.dense.W", "3.dense.b"]
    assert model.parameters()["0.dense.W"].shape == (16, 5)  # W_ij: from input j to unit i
    stream = io.StringIO()
    history = model.fit(x, y, SoftmaxCrossEntropy(), Adam(0.01), epochs=5, batch_size=32,
                        validation_data=(x, y), stream=stream, l2=1e-4, clipnorm=5.0)
    assert list(model.gradients()) == names
    assert history["loss"][-1] < history["loss"][0]
    assert history["val_accuracy"][-1] > 0.9
    text = stream.getvalue()
    assert text.count("\n") == 5 and "epoch 5/5" in text and "val_acc" in text
    assert model.evaluate(x, y, SoftmaxCrossEntropy())["accuracy"] > 0.9


def test_fit_rejects_mismatched_data() -> None:
    with pytest.raises(ValueError, match="examples"):
        Sequential([Flatten(), Dense(2)]).fit(np.zeros((4, 2)), np.zeros(3, int),
                                              SoftmaxCrossEntropy(), SGD(0.1), verbose=0)


def test_small_cnn_and_inverted_residual_shapes() -> None:
    model = build_small_cnn(4, filters=(4, 8), seed=0)
    x = np.zeros((2, 16, 16, 1), np.float32)
    assert model.forward(x).shape == (2, 4)
    assert model.backward(np.ones((2, 4), np.float32)).shape == x.shape
    block = InvertedResidual(8, stride=2, expansion=3, seed=0)
    z = block.forward(np.ones((2, 9, 9, 4), np.float32), training=True)
    assert z.shape == (2, 5, 5, 8) and not block.use_residual
    assert {k.split(".")[1] for k in block.parameters()} == {
        "expand", "expand_bn", "depthwise", "depthwise_bn", "project", "project_bn"}


def test_random_horizontal_flip_mirrors_about_half() -> None:
    from neuropathology.scratch.model import random_horizontal_flip

    x = np.arange(2 * 3 * 4, dtype=np.float32).reshape(1, 3, 4, 2).repeat(200, axis=0)
    out = random_horizontal_flip(x, np.random.default_rng(0))
    flipped = np.array([np.array_equal(o, x[0, :, ::-1]) for o in out])
    kept = np.array([np.array_equal(o, x[0]) for o in out])
    assert np.all(flipped ^ kept)
    assert 0.4 < flipped.mean() < 0.6
