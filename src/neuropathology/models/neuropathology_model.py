"""The classifier: a convolutional base followed by a small classification head.

Data flows through one flat Keras functional graph::

    image (already normalised by neuropathology.data.data_loader)
      -> base: MobileNetV2 | EfficientNetB0 | ResNet50 (keras.applications) | a small CNN
      -> head: GlobalAveragePooling -> BatchNorm -> Dense(512, ReLU) -> Dropout(0.5)
               -> Dense(256, ReLU) -> BatchNorm -> Dropout(0.3) -> Dense(C) -> softmax

Three design decisions the course refers to:

1. **Flat graph (Grad-CAM).** The base is built with ``input_tensor=inputs``, so its layers
   become layers of the outer model instead of one opaque nested ``Model`` layer. Every inner
   activation (e.g. MobileNetV2's ``out_relu``) is then an output of the outer graph, and
   ``keras.Model(model.inputs, [conv_output, model.output])`` works without the
   "graph disconnected" error that a nested base causes. See :func:`gradcam_model`.
2. **"The base" without a nested model.** Head layers are named ``head_*``; every other
   layer except the input is the base (:func:`base_layers`). That rule survives saving and
   reloading ``model.keras``, so freezing/unfreezing works on a reloaded model too.
3. **Batch norm stays in inference mode when fine-tuning** (:func:`freeze_base`,
   :func:`unfreeze_top`): see :func:`unfreeze_top` for the why and the how.

The input normalisation (MobileNetV2's [-1, 1], ResNet's caffe BGR mean, ...) is *not* in the
model: the data pipeline applies it, with the same function at training and serving time
(``data_loader.preprocess_paths``). :func:`normalization_for` names it per base.
"""

from __future__ import annotations

import contextlib
import socket
import urllib.error
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import NamedTuple

import keras
from keras import layers, regularizers

from neuropathology.utils.helpers import get_logger

log = get_logger("models")

#: The bases :func:`build_model` accepts; ``small_cnn`` is for fast CPU experiments.
BASE_MODELS: tuple[str, ...] = ("mobilenetv2", "efficientnetb0", "resnet50", "small_cnn")

#: Prefix of every head layer's name; everything else (except the input) is "the base".
HEAD_PREFIX = "head_"

#: ``PreprocessConfig.normalization`` each base expects (the ImageNet weights were trained so).
_NORMALIZATION = {
    "mobilenetv2": "mobilenetv2",  # x / 127.5 - 1  -> [-1, 1]
    "efficientnetb0": "efficientnet",  # identity: the network rescales internally
    "resnet50": "resnet50",  # RGB -> BGR, minus the ImageNet channel means ("caffe")
    "small_cnn": "unit",  # x / 255 -> [0, 1]
}

#: Where keras downloads ImageNet weights from (only used to name the offline fix).
_WEIGHTS_URLS = {
    "mobilenetv2": "https://storage.googleapis.com/tensorflow/keras-applications/mobilenet_v2/",
    "efficientnetb0": "https://storage.googleapis.com/keras-applications/",
    "resnet50": "https://storage.googleapis.com/tensorflow/keras-applications/resnet/",
}

#: Momentum of the batch-norm running mean/variance for layers that learn their statistics
#: here (head, small CNN, a randomly initialised base); a pretrained base keeps its own.
#: See :func:`classification_head`.
BN_MOMENTUM = 0.9

#: Seconds a weights download may stall before ``--weights auto`` gives up on it.
DOWNLOAD_TIMEOUT_S = 20.0


class ModelConfigError(ValueError):
    """An impossible model request (unknown base, bad option combination); names the fix."""


class WeightsUnavailableError(RuntimeError):
    """ImageNet weights were requested but could not be downloaded or read; names the fix."""


class BuiltModel(NamedTuple):
    """What :func:`build_model` returns: the model and where its base weights came from."""

    model: keras.Model
    pretrained: bool  #: True when the base starts from ImageNet (or a local weights file)
    weights_source: str  #: "imagenet", "random" or the path of the weights file


# --------------------------------------------------------------------------- public API


def normalization_for(base: str) -> str:
    """The ``PreprocessConfig.normalization`` name the base expects (see module docstring)."""
    _check_base(base)
    return _NORMALIZATION[base]


def build_model(
    num_classes: int,
    *,
    base: str = "mobilenetv2",
    image_size: int = 224,
    weights: str = "auto",
    alpha: float = 1.0,
    dense_units: Sequence[int] = (512, 256),
    dropout: Sequence[float] = (0.5, 0.3),
    l2: float = 1e-4,
) -> BuiltModel:
    """Build base + head as one flat functional model, with the base frozen.

    ``weights``: ``"imagenet"`` (download or use the keras cache, error if impossible),
    ``"none"`` (random initialisation), ``"auto"`` (ImageNet if loadable, otherwise random
    with a loud warning), or the path of a local ``*_no_top.h5`` weights file (the offline
    route; see :func:`imagenet_weights_file`). ``alpha`` is MobileNetV2's width multiplier.
    The base is returned frozen (stage 1 of training); call :func:`unfreeze_top` for stage 2.
    """
    _check_request(num_classes, base, image_size, weights, alpha, dense_units, dropout)
    inputs = keras.Input(shape=(image_size, image_size, 3), name="image")
    if base == "small_cnn":
        features, source = small_cnn(inputs), "random"
    else:
        features, source = _application_base(base, inputs, weights, alpha)
    outputs = classification_head(features, num_classes, dense_units=dense_units,
                                  dropout=dropout, l2=l2)
    model = keras.Model(inputs, outputs, name=f"neuropathology_{base}")
    if source == "random":
        # keras.applications use BN momentum 0.99-0.999, tuned for long ImageNet runs; a base
        # trained from scratch here must learn its running statistics in a few hundred steps.
        for layer in model.layers:
            if isinstance(layer, keras.layers.BatchNormalization):
                layer.momentum = BN_MOMENTUM
    freeze_base(model)
    return BuiltModel(model, pretrained=source != "random", weights_source=source)


def classification_head(
    features: keras.KerasTensor,
    num_classes: int,
    *,
    dense_units: Sequence[int] = (512, 256),
    dropout: Sequence[float] = (0.5, 0.3),
    l2: float = 1e-4,
) -> keras.KerasTensor:
    """GAP -> BN -> Dense(512, ReLU) -> Dropout(0.5) -> Dense(256, ReLU) -> BN -> Dropout(0.3)
    -> Dense(C) -> softmax.

    * Global average pooling turns the (h, w, c) feature map into a c-vector, so the head's
      size does not depend on the image size, and each channel's mean is a "how much of this
      pattern is present" score.
    * Batch norm re-centres the pooled features (their scale differs a lot between bases).
      Its running statistics follow mu <- m mu + (1 - m) mu_batch; with m = 0.9
      (:data:`BN_MOMENTUM`) they settle within ~50 steps (0.9^50 < 0.01), where Keras's
      default 0.99 needs ~500 - longer than a short head-only stage, and validation would
      then be normalised with statistics that are still mostly their initial values.
    * L2 adds ``l2 * ||W||^2`` to the loss (weight decay); dropout zeroes units with
      probability p during training - both fight over-fitting on small medical datasets.
    * The last Dense gives logits z (``head_logits``, what Grad-CAM differentiates) and a
      separate float32 softmax p_k = exp(z_k) / sum_j exp(z_j) turns them into probabilities;
      float32 keeps the softmax stable under mixed precision.
    """
    reg = regularizers.L2(l2) if l2 > 0 else None
    x = layers.GlobalAveragePooling2D(name=f"{HEAD_PREFIX}pool")(features)
    x = layers.BatchNormalization(momentum=BN_MOMENTUM, name=f"{HEAD_PREFIX}pool_bn")(x)
    for i, (units, rate) in enumerate(zip(dense_units, dropout, strict=True), start=1):
        x = layers.Dense(units, activation="relu", kernel_regularizer=reg,
                         name=f"{HEAD_PREFIX}dense{i}")(x)
        if i == len(dense_units):  # BN after the last hidden layer, as in the outline
            x = layers.BatchNormalization(momentum=BN_MOMENTUM, name=f"{HEAD_PREFIX}bn{i}")(x)
        x = layers.Dropout(rate, name=f"{HEAD_PREFIX}dropout{i}")(x)
    logits = layers.Dense(num_classes, kernel_regularizer=reg, name=f"{HEAD_PREFIX}logits")(x)
    return layers.Activation("softmax", dtype="float32", name=f"{HEAD_PREFIX}softmax")(logits)


def small_cnn(inputs: keras.KerasTensor, filters: Sequence[int] = (16, 32, 64, 128)
              ) -> keras.KerasTensor:
    """A small VGG-style base for fast CPU runs: per block Conv3x3 -> BN -> ReLU -> MaxPool.

    Each block doubles the channels and halves the resolution, so the receptive field grows
    geometrically while the cost per block stays roughly constant. Pooling after the last
    block too leaves a coarse (S/16)^2 map, so that in global average pooling a small lesion
    is averaged with few background cells instead of being diluted away.
    Always randomly initialised.
    """
    x = inputs
    for i, n in enumerate(filters, start=1):
        x = layers.Conv2D(n, 3, padding="same", use_bias=False, name=f"cnn_block{i}_conv")(x)
        x = layers.BatchNormalization(momentum=BN_MOMENTUM, name=f"cnn_block{i}_bn")(x)
        x = layers.ReLU(name=f"cnn_block{i}_relu")(x)
        x = layers.MaxPooling2D(2, name=f"cnn_block{i}_pool")(x)
    return x


def base_layers(model: keras.Model) -> list[keras.layers.Layer]:
    """The base's layers in topological order (input first, top last): all but input and head."""
    return [layer for layer in model.layers
            if not isinstance(layer, keras.layers.InputLayer)
            and not layer.name.startswith(HEAD_PREFIX)]


def head_layers(model: keras.Model) -> list[keras.layers.Layer]:
    """The classification head's layers (names start with :data:`HEAD_PREFIX`)."""
    return [layer for layer in model.layers if layer.name.startswith(HEAD_PREFIX)]


def freeze_base(model: keras.Model) -> None:
    """Stage 1: make every base layer non-trainable; the head stays trainable.

    With a frozen base the only parameters that move are the head's, so a randomly
    initialised head cannot send large gradients into (and destroy) the pretrained filters.
    Recompile the model after changing ``trainable`` (Keras fixes the trained set at compile).
    """
    for layer in base_layers(model):
        layer.trainable = False
    for layer in head_layers(model):
        layer.trainable = True


def unfreeze_top(model: keras.Model, n_layers: int | None, *, freeze_batchnorm: bool = True
                 ) -> int:
    """Stage 2: unfreeze the top ``n_layers`` base layers (``None``: all); return how many.

    Layers are counted as in ``model.summary()`` (convolutions, activations, adds, ...), from
    the top of the base. The lower layers stay frozen: they detect generic edges and textures
    that transfer across domains, while the top layers encode ImageNet-specific parts.

    **Batch norm stays in inference mode** (``freeze_batchnorm=True``, the default when the
    base is pretrained). A BN layer normalises with x_hat = (x - mu) / sqrt(var + eps) then
    y = gamma * x_hat + beta. In training mode mu/var are the *current batch's* statistics and
    the running (ImageNet) statistics are overwritten by a moving average of them. With the
    small batches of fine-tuning those batch statistics are noisy, and replacing the ImageNet
    running statistics shifts every downstream activation at once: accuracy collapses in the
    first fine-tuning epoch. The classic recipe calls the base with ``base(x, training=False)``;
    with a flat graph there is no base call to pass it to, so we use the Keras 3 rule that
    *a BatchNormalization layer with ``trainable = False`` runs in inference mode* (it uses
    the stored moving mean/variance and does not update them). Consequence, stated plainly:
    in this project gamma and beta of base BN layers are **not** trained either.

    ``freeze_batchnorm=False`` is for a randomly initialised base, which has no running
    statistics worth keeping: there BN must learn in training mode like every other layer.
    Recompile the model afterwards.
    """
    layers_ = base_layers(model)
    freeze_base(model)
    chosen = layers_ if n_layers is None else layers_[len(layers_) - min(n_layers, len(layers_)):]
    for layer in chosen:
        is_bn = isinstance(layer, keras.layers.BatchNormalization)
        layer.trainable = not (is_bn and freeze_batchnorm)
    return len(chosen)


def count_parameters(model: keras.Model) -> tuple[int, int]:
    """(trainable, non-trainable) scalar parameter counts, e.g. to check freezing worked."""
    trainable = sum(int(w.numpy().size) for w in model.trainable_weights)
    frozen = sum(int(w.numpy().size) for w in model.non_trainable_weights)
    return trainable, frozen


def last_conv_layer_name(model: keras.Model) -> str:
    """Name of the base's last layer with a 4-D (batch, h, w, c) output: Grad-CAM's target.

    That is the deepest spatial feature map (MobileNetV2: ``out_relu``, ResNet50:
    ``conv5_block3_out``, EfficientNetB0: ``top_activation``, small CNN: its last ReLU), the
    best trade-off between high-level semantics and spatial resolution. Pooling layers are
    skipped: they only subsample the map before them.
    """
    for layer in reversed(base_layers(model)):
        pooling = isinstance(layer, (keras.layers.MaxPooling2D, keras.layers.AveragePooling2D))
        if len(layer.output.shape) == 4 and not pooling:
            return layer.name
    raise ModelConfigError(f"model {model.name!r} has no layer with a 4-D (spatial) output")


def gradcam_model(model: keras.Model, layer_name: str | None = None) -> keras.Model:
    """A model mapping the input to ``[feature map of layer_name, class probabilities]``.

    Possible only because the graph is flat (module docstring, point 1). Grad-CAM takes the
    gradient of a class score w.r.t. this feature map A: weights a_k = mean_ij dS/dA_ij^k,
    map = ReLU(sum_k a_k A^k).
    """
    name = layer_name or last_conv_layer_name(model)
    return keras.Model(model.input, [model.get_layer(name).output, model.output],
                       name=f"{model.name}_gradcam")


def imagenet_weights_file(base: str, *, alpha: float = 1.0, image_size: int = 224
                          ) -> tuple[str, str]:
    """(file name, URL) of the no-top ImageNet weights keras downloads for ``base``.

    Offline route: download the URL on a connected machine, then either pass
    ``--weights /path/to/<file name>`` or copy the file into ``~/.keras/models/`` (keras's
    cache, ``$KERAS_HOME/models`` if set) and use ``--weights imagenet``.
    """
    _check_base(base)
    if base == "small_cnn":
        raise ModelConfigError("small_cnn has no ImageNet weights; use --weights none")
    if base == "mobilenetv2":
        rows = image_size if image_size in (96, 128, 160, 192, 224) else 224
        name = f"mobilenet_v2_weights_tf_dim_ordering_tf_kernels_{float(alpha)}_{rows}_no_top.h5"
    elif base == "resnet50":
        name = "resnet50_weights_tf_dim_ordering_tf_kernels_notop.h5"
    else:
        name = "efficientnetb0_notop.h5"
    return name, _WEIGHTS_URLS[base] + name


# --------------------------------------------------------------------------- internals


def _check_base(base: str) -> None:
    if base not in BASE_MODELS:
        raise ModelConfigError(
            f"unknown base model {base!r}; choose one of {', '.join(BASE_MODELS)}")


def _check_request(num_classes: int, base: str, image_size: int, weights: str, alpha: float,
                   dense_units: Sequence[int], dropout: Sequence[float]) -> None:
    """Reject impossible combinations before any layer is built (clear message, no side effects)."""
    _check_base(base)
    if num_classes < 2:
        raise ModelConfigError(f"need at least 2 classes, got {num_classes}")
    if image_size < 32:
        raise ModelConfigError(f"image size {image_size} is too small; use >= 32 pixels")
    if len(dense_units) != len(dropout) or not dense_units:
        raise ModelConfigError(
            f"dense_units {tuple(dense_units)} and dropout {tuple(dropout)} must be non-empty "
            "and of the same length (one dropout rate per dense layer)")
    if alpha != 1.0 and base != "mobilenetv2":
        raise ModelConfigError(f"--alpha is MobileNetV2's width multiplier; {base} has none. "
                               "Drop --alpha or use --base-model mobilenetv2")
    if base == "small_cnn" and weights not in ("none", "auto"):
        raise ModelConfigError(
            f"small_cnn is always randomly initialised; --weights {weights} is not possible. "
            "Use --weights none (or auto), or a keras.applications base")
    is_keyword = weights in ("auto", "imagenet", "none")
    if not is_keyword and not Path(weights).is_file():
        raise ModelConfigError(
            f"--weights {weights!r} is neither auto/imagenet/none nor an existing file; "
            "pass the path of a downloaded *_no_top.h5 weights file")


def _application(base: str):
    return {"mobilenetv2": keras.applications.MobileNetV2,
            "efficientnetb0": keras.applications.EfficientNetB0,
            "resnet50": keras.applications.ResNet50}[base]


def _application_base(base: str, inputs: keras.KerasTensor, weights: str, alpha: float
                      ) -> tuple[keras.KerasTensor, str]:
    """Build a keras.applications base on ``inputs`` (flat graph); return (features, source)."""

    def construct(w: str | None) -> keras.KerasTensor:
        kwargs = {"alpha": alpha} if base == "mobilenetv2" else {}
        net = _application(base)(include_top=False, weights=w, input_tensor=inputs,
                                 input_shape=tuple(inputs.shape[1:]), **kwargs)
        return net.output

    if weights == "none":
        return construct(None), "random"
    if weights not in ("auto", "imagenet"):  # a local weights file
        try:
            return construct(weights), str(Path(weights).resolve())
        except (ValueError, OSError) as exc:
            raise ModelConfigError(
                f"could not load weights file {weights} into {base} (alpha={alpha}): {exc}. "
                f"It must be the no-top file for this base and alpha, e.g. "
                f"{imagenet_weights_file(base, alpha=alpha)[0]}") from exc
    try:
        with _download_timeout(DOWNLOAD_TIMEOUT_S):
            return construct("imagenet"), "imagenet"
    except Exception as exc:  # keras.utils.get_file wraps network errors in a bare Exception
        if not _is_download_failure(exc):
            raise
        file_name, url = imagenet_weights_file(base, alpha=alpha, image_size=inputs.shape[1])
        fix = (f"on a connected machine download {url} and pass --weights /path/to/{file_name} "
               "(or copy it into ~/.keras/models/)")
        if weights == "imagenet":
            raise WeightsUnavailableError(
                f"ImageNet weights for {base} could not be loaded ({exc}). Fix: {fix}; or use "
                "--weights auto / none to train from random initialisation") from exc
        log.warning("!" * 78)
        log.warning("ImageNet weights for %s are NOT available (%s).", base, _short(exc))
        log.warning("Continuing from RANDOM initialisation: expect much lower accuracy.")
        log.warning("To use pretrained weights: %s.", fix)
        log.warning("!" * 78)
        return construct(None), "random"


def _is_download_failure(exc: BaseException) -> bool:
    """True for network/cache failures of the weights download (not for programming errors)."""
    if isinstance(exc, (urllib.error.URLError, OSError, TimeoutError)):
        return True
    return "URL fetch failure" in str(exc) or "download" in str(exc).lower()


def _short(exc: BaseException, limit: int = 160) -> str:
    text = str(exc).replace("\n", " ")
    return text if len(text) <= limit else text[:limit] + "..."


@contextlib.contextmanager
def _download_timeout(seconds: float) -> Iterator[None]:
    """Bound every socket operation of the download so an offline machine fails fast."""
    previous = socket.getdefaulttimeout()
    socket.setdefaulttimeout(seconds)
    try:
        yield
    finally:
        socket.setdefaulttimeout(previous)
