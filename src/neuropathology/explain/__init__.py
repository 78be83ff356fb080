"""Explanations of the classifier: which pixels drove a prediction, and can we trust that?

* :mod:`~neuropathology.explain.graph` - the gradient model (feature map + logits), flat or
  nested base.
* :mod:`~neuropathology.explain.cam` - Grad-CAM, Grad-CAM++, Score-CAM, Layer-CAM, HiRes-CAM.
* :mod:`~neuropathology.explain.attribution` - saliency, SmoothGrad, Integrated Gradients,
  occlusion.
* :mod:`~neuropathology.explain.overlay` - heatmap overlays at the original resolution.
* :mod:`~neuropathology.explain.metrics` - localisation (pointing game, IoU/Dice, energy) and
  faithfulness (deletion/insertion, ROAD, the randomisation sanity check).
* :mod:`~neuropathology.explain.cli` - ``neuropathology explain``.

:func:`explain` is the one entry point by method name: every method takes a preprocessed
batch (N, S, S, 3) and returns float32 maps (N, S, S) in [0, 1].
"""

from __future__ import annotations

from collections.abc import Callable

import keras
import numpy as np

from neuropathology.explain.attribution import (
    IGResult,
    integrated_gradients,
    make_baseline,
    occlusion,
    saliency,
    smoothgrad,
)
from neuropathology.explain.cam import (
    ClassIndex,
    grad_cam,
    grad_cam_plus_plus,
    hires_cam,
    layer_cam,
    normalize_maps,
    score_cam,
)
from neuropathology.explain.graph import (
    ExplainError,
    feature_logit_model,
    find_target_layer,
    logit_model,
)


def _ig_map(model: keras.Model, x: np.ndarray, class_index: ClassIndex = None,
            **kwargs: object) -> np.ndarray:
    return integrated_gradients(model, x, class_index, **kwargs).map


#: method name -> function(model, x, class_index, **options) -> (N, S, S) maps in [0, 1].
METHODS: dict[str, Callable[..., np.ndarray]] = {
    "gradcam": grad_cam,
    "gradcam++": grad_cam_plus_plus,
    "scorecam": score_cam,
    "layercam": layer_cam,
    "hirescam": hires_cam,
    "saliency": saliency,
    "smoothgrad": smoothgrad,
    "ig": _ig_map,
    "occlusion": occlusion,
}

#: The methods that use a convolutional target layer (accept ``layer_name``).
CAM_METHODS = ("gradcam", "gradcam++", "scorecam", "layercam", "hirescam")


def explain(model: keras.Model, x: np.ndarray, method: str = "gradcam",
            class_index: ClassIndex = None, **options: object) -> np.ndarray:
    """Maps (N, S, S) in [0, 1] of ``method`` (a key of :data:`METHODS`) for batch ``x``."""
    if method not in METHODS:
        raise ExplainError(f"unknown method {method!r}; choose one of {', '.join(METHODS)}")
    return METHODS[method](model, x, class_index, **options)


__all__ = [
    "CAM_METHODS",
    "METHODS",
    "ExplainError",
    "IGResult",
    "explain",
    "feature_logit_model",
    "find_target_layer",
    "grad_cam",
    "grad_cam_plus_plus",
    "hires_cam",
    "integrated_gradients",
    "layer_cam",
    "logit_model",
    "make_baseline",
    "normalize_maps",
    "occlusion",
    "saliency",
    "score_cam",
    "smoothgrad",
]
