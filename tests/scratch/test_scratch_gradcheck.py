"""Every layer and loss of ``neuropathology.scratch`` against centred differences (float64).

Threshold: relative error (CS231n, element-wise max) < 1e-7. Kinks (ReLU, max-pool) are
avoided by construction where possible -- inputs kept away from 0, max-pool inputs with
well-separated distinct values -- so those tests keep the 1e-7 bound too; the one
exception is stated on its test.
"""

from __future__ import annotations

import numpy as np
import pytest

from neuropathology.scratch import activations as act
from neuropathology.scratch.conv import (
    AvgPool2D,
    Conv2D,
    DepthwiseConv2D,
    GlobalAvgPool2D,
    GlobalMaxPool2D,
    InvertedResidual,
    MaxPool2D,
    NaiveConv2D,
    PointwiseConv2D,
)
from neuropathology.scratch.gradcheck import check_layer, check_loss, numerical_gradient, rel_error
from neuropathology.scratch.layers import BatchNorm, Dense, Dropout, Flatten, LayerNorm
from neuropathology.scratch.losses import (
    BinaryCrossEntropy,
    CategoricalCrossEntropy,
    MeanSquaredError,
    SoftmaxCrossEntropy,
)

F64 = np.float64
TOL = 1e-7


def away_from_zero(rng: np.random.Generator, shape: tuple[int, ...], margin: float = 0.1):
    """Normal samples pushed out of (-margin, margin): no ReLU kink within a step of h."""
    x = rng.standard_normal(shape)
    return np.where(x >= 0, x + margin, x - margin)


def assert_all_below(errors: dict[str, float], tol: float = TOL) -> None:
    bad = {k: v for k, v in errors.items() if not v < tol}
    assert not bad, f"relative errors above {tol}: {bad} (all: {errors})"


def test_rel_error_and_numerical_gradient_basics() -> None:
    x = np.array([1.0, -2.0, 3.0])
    g = numerical_gradient(lambda: float(np.sum(x**3)), x)
    assert rel_error(g, 3 * x**2) < 1e-9
    assert rel_error(np.array([1.0]), np.array([1.1])) == pytest.approx(0.1 / 2.1)
    with pytest.raises(TypeError, match="float64"):
        numerical_gradient(lambda: 0.0, np.zeros(2, dtype=np.float32))


@pytest.mark.parametrize("layer", [act.ReLU(), act.ReLU6(), act.LeakyReLU(0.1), act.Sigmoid(),
                                   act.Tanh(), act.GELU(), act.GELU(approximate=True),
                                   act.Softmax()],
                         ids=lambda layer: type(layer).__name__ + str(getattr(layer, "approximate", "")))
def test_activations(layer) -> None:
    # inputs in [0.1, 3] in magnitude: no kink of ReLU/ReLU6/leaky ReLU at 0 or 6 nearby
    rng = np.random.default_rng(1)
    x = away_from_zero(rng, (4, 5)).clip(-3, 3)
    assert_all_below(check_layer(layer, x))


def test_dense() -> None:
    rng = np.random.default_rng(2)
    layer = Dense(5, 4, seed=0, dtype=F64)
    layer.params["b"][:] = rng.standard_normal(5)
    assert_all_below(check_layer(layer, rng.standard_normal((3, 4))))


def test_flatten_and_dropout() -> None:
    rng = np.random.default_rng(3)
    x = rng.standard_normal((2, 3, 2, 2))
    assert_all_below(check_layer(Flatten(), x))
    drop = Dropout(0.4)

    def reseed() -> None:  # the same mask on every forward pass
        drop.rng = np.random.default_rng(7)

    assert_all_below(check_layer(drop, x, before_forward=reseed))
    assert_all_below(check_layer(drop, x, training=False))


@pytest.mark.parametrize("training", [True, False], ids=["train", "inference"])
@pytest.mark.parametrize("shape", [(6, 4), (3, 3, 2, 4)], ids=["dense", "nhwc"])
def test_batchnorm(training: bool, shape: tuple[int, ...]) -> None:
    rng = np.random.default_rng(4)
    layer = BatchNorm(dtype=F64)
    x = rng.standard_normal(shape) * 2 + 1
    layer.forward(x, training=True)  # build, move the running statistics off (0, 1)
    layer.params["gamma"][:] = rng.uniform(0.5, 1.5, shape[-1])
    layer.params["beta"][:] = rng.standard_normal(shape[-1])
    assert_all_below(check_layer(layer, x, training=training))


def test_layernorm() -> None:
    rng = np.random.default_rng(5)
    layer = LayerNorm(dtype=F64)
    x = rng.standard_normal((3, 2, 6))
    layer.forward(x)
    layer.params["gamma"][:] = rng.uniform(0.5, 1.5, 6)
    layer.params["beta"][:] = rng.standard_normal(6)
    assert_all_below(check_layer(layer, x))


CONV_CASES = [
    dict(kernel_size=3, strides=1, padding="valid", dilation_rate=1),
    dict(kernel_size=3, strides=2, padding="same", dilation_rate=1),
    dict(kernel_size=(2, 3), strides=(2, 1), padding="valid", dilation_rate=1),
    dict(kernel_size=3, strides=1, padding="same", dilation_rate=2),
    dict(kernel_size=2, strides=2, padding="same", dilation_rate=2),
]


@pytest.mark.parametrize("cfg", CONV_CASES, ids=lambda c: "-".join(str(v) for v in c.values()))
def test_conv2d(cfg: dict) -> None:
    rng = np.random.default_rng(6)
    layer = Conv2D(3, seed=0, dtype=F64, **cfg)
    x = rng.standard_normal((2, 5, 6, 2))
    layer.forward(x)
    layer.params["b"][:] = rng.standard_normal(3)
    # z is linear in x and in K: centred differences have no truncation error, so a larger
    # step only shrinks round-off (with h = 1e-5 the worst element sits at ~7e-8)
    assert_all_below(check_layer(layer, x, h=1e-3))


def test_naive_conv2d() -> None:
    rng = np.random.default_rng(7)
    layer = NaiveConv2D(2, 3, strides=2, padding="same", seed=0, dtype=F64)
    assert_all_below(check_layer(layer, rng.standard_normal((1, 5, 4, 2))))


@pytest.mark.parametrize("cfg", [dict(strides=1, padding="same", depth_multiplier=1),
                                 dict(strides=2, padding="valid", depth_multiplier=2),
                                 dict(strides=2, padding="same", depth_multiplier=1,
                                      dilation_rate=1)])
def test_depthwise_and_pointwise(cfg: dict) -> None:
    rng = np.random.default_rng(8)
    layer = DepthwiseConv2D(3, seed=0, dtype=F64, **cfg)
    x = rng.standard_normal((2, 5, 6, 3))
    layer.forward(x)
    layer.params["b"][:] = rng.standard_normal(layer.params["b"].shape)
    assert_all_below(check_layer(layer, x))
    assert_all_below(check_layer(PointwiseConv2D(4, seed=0, dtype=F64), x))


def distinct_values(rng: np.random.Generator, shape: tuple[int, ...]):
    """A permutation of well-separated values: no ties, no near-ties in any pooling window."""
    return rng.permutation(np.arange(int(np.prod(shape)), dtype=F64) * 0.1 - 2.0).reshape(shape)


@pytest.mark.parametrize("cfg", [dict(pool_size=2, padding="valid"),
                                 dict(pool_size=3, strides=2, padding="same"),
                                 dict(pool_size=(2, 3), strides=1, padding="valid")])
def test_pooling(cfg: dict) -> None:
    rng = np.random.default_rng(9)
    x = distinct_values(rng, (2, 5, 7, 2))
    assert_all_below(check_layer(MaxPool2D(**cfg), x))
    assert_all_below(check_layer(AvgPool2D(**cfg), x))
    assert_all_below(check_layer(GlobalAvgPool2D(), x))
    assert_all_below(check_layer(GlobalMaxPool2D(), x))


@pytest.mark.parametrize("stride", [1, 2])
def test_inverted_residual(stride: int) -> None:
    # Threshold 1e-5, not 1e-7: two ReLU6 act on BatchNorm outputs, which cannot be
    # kept away from the kinks at 0 by construction (one unit within ~h of 0 is enough).
    rng = np.random.default_rng(10)
    block = InvertedResidual(4, stride=stride, expansion=2, seed=0, dtype=F64)
    x = rng.standard_normal((2, 4, 4, 4))
    block.forward(x)
    assert block.use_residual is (stride == 1)
    assert_all_below(check_layer(block, x), tol=1e-5)


def test_losses() -> None:
    rng = np.random.default_rng(11)
    logits = rng.standard_normal((5, 4)) * 2
    labels = rng.integers(0, 4, 5)
    onehot = np.eye(4)[labels]
    assert check_loss(SoftmaxCrossEntropy(), logits, labels) < TOL
    assert check_loss(SoftmaxCrossEntropy(), logits, onehot) < TOL
    probs = rng.uniform(0.05, 1.0, (5, 4))  # not normalised: exercises the renormalisation
    assert check_loss(CategoricalCrossEntropy(), probs, onehot) < TOL
    y_bin = rng.integers(0, 2, (6, 1)).astype(F64)
    assert check_loss(BinaryCrossEntropy(from_logits=True), rng.standard_normal((6, 1)) * 3,
                      y_bin) < TOL
    assert check_loss(BinaryCrossEntropy(), rng.uniform(0.05, 0.95, (6, 1)), y_bin) < TOL
    assert check_loss(MeanSquaredError(), rng.standard_normal((4, 3)),
                      rng.standard_normal((4, 3))) < TOL


def test_loss_errors_are_clear() -> None:
    with pytest.raises(ValueError, match="shape"):
        MeanSquaredError().forward(np.zeros((2, 3)), np.zeros((3, 2)))
    with pytest.raises(ValueError, match="labels must lie"):
        SoftmaxCrossEntropy().forward(np.zeros((2, 3)), np.array([0, 3]))
    with pytest.raises(RuntimeError, match="before forward"):
        Dense(2, 2).backward(np.zeros((1, 2)))


def test_the_check_catches_a_wrong_backward() -> None:
    """A classic bug (forgetting the 1/m terms of BatchNorm's backward, i.e. treating the
    batch statistics as constants) must fail the check by orders of magnitude."""

    class ConstantStatsBatchNorm(BatchNorm):
        def backward(self, dout):
            dx = super().backward(dout)
            xhat, inv_std, _, shape = self.cache
            return (dout.reshape(-1, shape[-1]) * self.params["gamma"] * inv_std).reshape(shape) \
                + 0 * dx

    rng = np.random.default_rng(12)
    errors = check_layer(ConstantStatsBatchNorm(dtype=F64), rng.standard_normal((5, 3)))
    assert errors["x"] > 1e-3
    assert errors["gamma"] < TOL and errors["beta"] < TOL


def test_whole_small_cnn() -> None:
    # Threshold 1e-5: ReLUs act on BatchNorm outputs and max-pools on ReLU outputs, so
    # kinks cannot be excluded by construction. Checks the Container's chain rule and
    # its prefixed parameter names end to end.
    from neuropathology.scratch.model import build_small_cnn

    rng = np.random.default_rng(13)
    model = build_small_cnn(3, filters=(2, 3), seed=0, dtype=F64)
    x = rng.standard_normal((3, 8, 8, 1))
    model.build(x.shape)
    errors = check_layer(model, x)
    assert set(errors) == {"x", *model.parameters()}
    assert_all_below(errors, tol=1e-5)
