"""The network: a convolutional base (keras.applications or a small CNN) + classification head."""

from neuropathology.models.neuropathology_model import (
    BASE_MODELS,
    HEAD_PREFIX,
    BuiltModel,
    ModelConfigError,
    WeightsUnavailableError,
    base_layers,
    build_model,
    classification_head,
    count_parameters,
    freeze_base,
    gradcam_model,
    head_layers,
    imagenet_weights_file,
    last_conv_layer_name,
    normalization_for,
    unfreeze_top,
)

__all__ = [
    "BASE_MODELS",
    "HEAD_PREFIX",
    "BuiltModel",
    "ModelConfigError",
    "WeightsUnavailableError",
    "base_layers",
    "build_model",
    "classification_head",
    "count_parameters",
    "freeze_base",
    "gradcam_model",
    "head_layers",
    "imagenet_weights_file",
    "last_conv_layer_name",
    "normalization_for",
    "unfreeze_top",
]
