"""A from-scratch deep learning library in NumPy, checked against TensorFlow.

Written to be read: one forward/backward pair per idea, shapes in every docstring, the
maths named in the course's notation (``a^(l)`` activations, ``z^(l)`` pre-activations,
``delta^(l) = dL/dz^(l)``, ``W^(l)_ij`` from neuron ``j`` to neuron ``i``). Images are
NHWC, like TensorFlow, so every layer compares directly with its Keras twin.

Modules:

* :mod:`.activations` -- ReLU, ReLU6, leaky ReLU, sigmoid, tanh, softmax, GELU
* :mod:`.losses` -- MSE, binary / categorical cross-entropy, fused softmax cross-entropy
* :mod:`.layers` -- Dense, Flatten, Dropout, BatchNorm, LayerNorm
* :mod:`.conv` -- Conv2D (im2col) and its naive loop twin, depthwise / pointwise conv,
  max / average / global (average, max) pooling, MobileNetV2's inverted residual block
* :mod:`.init`, :mod:`.regularization` -- Glorot / He; L1 / L2; gradient clipping
* :mod:`.optim`, :mod:`.schedules` -- SGD ... AdamW; step, exponential, cosine, SGDR, warm-up
* :mod:`.autodiff` -- a tiny reverse-mode autodiff engine
* :mod:`.gradcheck` -- centred-difference gradient checks
* :mod:`.model` -- ``Sequential`` with a mini-batch ``fit`` loop

TensorFlow is not imported by any of these modules.
"""

from __future__ import annotations

from .activations import GELU, LeakyReLU, ReLU, ReLU6, Sigmoid, Softmax, Tanh
from .autodiff import Tensor
from .base import Container, Layer
from .conv import (
    AvgPool2D,
    Conv2D,
    DepthwiseConv2D,
    GlobalAvgPool2D,
    GlobalMaxPool2D,
    InvertedResidual,
    MaxPool2D,
    NaiveConv2D,
    PointwiseConv2D,
    conv2d_naive,
    conv2d_naive_backward,
)
from .gradcheck import check_layer, check_loss, numerical_gradient, rel_error
from .layers import BatchNorm, Dense, Dropout, Flatten, LayerNorm
from .losses import (
    BinaryCrossEntropy,
    CategoricalCrossEntropy,
    MeanSquaredError,
    SoftmaxCrossEntropy,
)
from .model import Sequential, build_small_cnn
from .optim import SGD, AdaGrad, Adam, AdamW, Momentum, Nesterov, RMSprop
from .schedules import (
    CosineDecay,
    CosineDecayRestarts,
    ExponentialDecay,
    LinearWarmup,
    PiecewiseConstant,
    StepDecay,
)

__all__ = [
    "GELU", "SGD", "AdaGrad", "Adam", "AdamW", "AvgPool2D", "BatchNorm", "BinaryCrossEntropy",
    "CategoricalCrossEntropy", "Container", "Conv2D", "CosineDecay", "CosineDecayRestarts",
    "Dense", "DepthwiseConv2D", "Dropout", "ExponentialDecay", "Flatten", "GlobalAvgPool2D",
    "GlobalMaxPool2D",
    "InvertedResidual", "Layer", "LayerNorm", "LeakyReLU", "LinearWarmup", "MaxPool2D",
    "MeanSquaredError", "Momentum", "NaiveConv2D", "Nesterov", "PiecewiseConstant",
    "PointwiseConv2D", "RMSprop", "ReLU", "ReLU6", "Sequential", "Sigmoid", "Softmax",
    "SoftmaxCrossEntropy", "StepDecay", "Tanh", "Tensor", "check_layer", "check_loss",
    "build_small_cnn", "conv2d_naive", "conv2d_naive_backward", "numerical_gradient",
    "rel_error",
]
