"""Prediction, the "unsure / unlike the training data" warning, and explanation maps.

Everything goes through the run's :class:`~neuropathology.predictor.Predictor`: the image is
preprocessed once with the run's own ``PreprocessConfig`` and the probabilities are the
calibrated ones (temperature scaling, when ``neuropathology evaluate`` has fitted it).

When the app warns instead of presenting a confident answer (thresholds below, chosen to be
conservative; each is a module constant so a deployment can tighten it):

* **low confidence** - the calibrated top probability is below :data:`MIN_CONFIDENCE` (0.70).
  With calibrated probabilities, about 30 % or more of such answers are expected to be wrong.
* **high entropy** - the normalised predictive entropy H(p) / log C is above
  :data:`MAX_NORMALIZED_ENTROPY` (0.50): 0 is a one-hot answer, 1 the uniform distribution.
  This catches probability spread over several classes even when the top one looks fine
  (for 4 classes, p = (0.80, 0.07, 0.07, 0.07) has 0.52).
* **unlike the training data** - the project has no learned out-of-distribution score, so two
  input checks stand in: a colour image (MRI is greyscale; mean absolute difference between
  colour channels above :data:`MAX_COLOUR_DIFFERENCE` of the 0-255 range) and an image much
  smaller than the model input (below :data:`MIN_SIDE_FRACTION` of it on its shorter side).
* **synthetic model** - a run trained on the built-in synthetic dataset has never seen a real
  MRI; its answer on a real scan means nothing.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from neuropathology.data.data_loader import preprocess_arrays
from neuropathology.evaluation.uncertainty import predictive_entropy

MIN_CONFIDENCE = 0.70
MAX_NORMALIZED_ENTROPY = 0.50
MAX_COLOUR_DIFFERENCE = 0.06
MIN_SIDE_FRACTION = 0.5

#: Explanation methods offered in the app (keys of ``neuropathology.explain.METHODS``):
#: name -> label. The slower ones (many forward passes) say so.
EXPLAIN_METHODS: dict[str, str] = {
    "gradcam": "Grad-CAM",
    "gradcam++": "Grad-CAM++",
    "layercam": "Layer-CAM",
    "hirescam": "HiRes-CAM",
    "saliency": "Saliency (gradient)",
    "smoothgrad": "SmoothGrad (slower)",
    "ig": "Integrated Gradients (slower)",
    "scorecam": "Score-CAM (slow)",
    "occlusion": "Occlusion (slow)",
}


@dataclass(frozen=True)
class Prediction:
    """One image's calibrated prediction and the warnings attached to it."""

    probabilities: np.ndarray = field(repr=False)  #: (C,), columns in ``class_names`` order
    class_names: tuple[str, ...]
    temperature: float = 1.0
    warnings: tuple[str, ...] = ()

    @property
    def index(self) -> int:
        return int(np.argmax(self.probabilities))

    @property
    def label(self) -> str:
        return self.class_names[self.index]

    @property
    def confidence(self) -> float:
        return float(self.probabilities[self.index])

    @property
    def entropy(self) -> float:
        """Predictive entropy in nats."""
        return float(predictive_entropy(self.probabilities[None, :])[0])

    @property
    def normalized_entropy(self) -> float:
        """H(p) / log C in [0, 1] (0 for a single class)."""
        c = len(self.class_names)
        return self.entropy / math.log(c) if c > 1 else 0.0

    @property
    def unsure(self) -> bool:
        return bool(self.warnings)

    def as_dict(self) -> dict[str, float]:
        return {name: float(p) for name, p in zip(self.class_names, self.probabilities,
                                                   strict=True)}


def uncertainty_warnings(probabilities: np.ndarray, n_classes: int) -> list[str]:
    """Warnings from the calibrated probabilities alone (low confidence, high entropy)."""
    p = np.asarray(probabilities, np.float64)
    out = []
    confidence = float(p.max())
    if confidence < MIN_CONFIDENCE:
        out.append(f"The model is unsure: its calibrated confidence is {confidence:.0%}, below "
                   f"{MIN_CONFIDENCE:.0%}. Treat this answer as 'cannot tell'.")
    if n_classes > 1:
        h = float(predictive_entropy(p[None, :])[0]) / math.log(n_classes)
        if h > MAX_NORMALIZED_ENTROPY:
            out.append(f"The probability is spread over several classes (normalised entropy "
                       f"{h:.2f} > {MAX_NORMALIZED_ENTROPY:.2f}).")
    return out


def input_warnings(image: np.ndarray, image_size: int) -> list[str]:
    """Warnings when the input is unlike the training data (colour photo, tiny image)."""
    out = []
    rgb = np.asarray(image)
    if rgb.ndim == 3 and rgb.shape[-1] >= 3:
        channels = rgb[..., :3].astype(np.int16)
        diff = (np.abs(channels[..., 0] - channels[..., 1]).mean()
                + np.abs(channels[..., 1] - channels[..., 2]).mean()) / 2 / 255
        if diff > MAX_COLOUR_DIFFERENCE:
            out.append("This is a colour image; MRI slices are greyscale. It is probably not "
                       "an MRI slice like the training data, so the answer is not meaningful.")
    side = min(rgb.shape[:2])
    if side < MIN_SIDE_FRACTION * image_size:
        out.append(f"The image is small ({rgb.shape[1]} x {rgb.shape[0]}) compared with the "
                   f"model input ({image_size} x {image_size}); detail is missing.")
    return out


def preprocess(predictor, image: np.ndarray) -> np.ndarray:
    """The run's own preprocessing of one RGB image -> float32 (1, S, S, 3)."""
    return preprocess_arrays(image, predictor.preprocess)


def predict(predictor, image: np.ndarray, *, synthetic_model: bool = False
            ) -> tuple[np.ndarray, Prediction]:
    """Preprocess ``image`` once, predict calibrated probabilities, attach the warnings.

    Returns the preprocessed batch (reused by the explanation) and the prediction.
    """
    x = preprocess(predictor, image)
    probs = predictor.predict_batch(x)[0]
    names = tuple(predictor.class_names)
    warnings = uncertainty_warnings(probs, len(names))
    warnings += input_warnings(image, predictor.preprocess.image_size)
    if synthetic_model:
        warnings.append("This model was trained on synthetic images only; on a real MRI its "
                        "answer means nothing. Use it to learn how the app works.")
    return x, Prediction(probs.astype(np.float64), names, predictor.temperature,
                         tuple(warnings))


def explanation_map(model, x: np.ndarray, method: str, class_index: int) -> np.ndarray:
    """One (S, S) map in [0, 1] for ``class_index`` of the preprocessed batch ``x`` (1 image)."""
    from neuropathology.explain import explain

    if method not in EXPLAIN_METHODS:
        raise ValueError(f"unknown explanation method {method!r}")
    return np.asarray(explain(model, x, method, [int(class_index)])[0], np.float32)


def render(image: np.ndarray, heatmap: np.ndarray, *, colormap: str = "jet",
           opacity: float = 0.45, threshold: float = 0.5, contour: bool = True,
           pad_to_square: bool = False) -> np.ndarray:
    """The overlay at the image's own resolution (``explain.overlay.render_overlay``).

    ``threshold``: pixels whose map is below it are left untinted and, with ``contour``, the
    region at or above it is outlined.
    """
    from neuropathology.explain.overlay import render_overlay

    return render_overlay(image, heatmap, colormap=colormap, opacity=opacity,
                          threshold=threshold if contour else None, min_value=threshold,
                          pad_to_square=pad_to_square)


def top_classes(prediction: Prediction, k: int | None = None) -> Sequence[tuple[str, float]]:
    """(class, probability) sorted by decreasing probability."""
    order = np.argsort(-prediction.probabilities)
    if k is not None:
        order = order[:k]
    return [(prediction.class_names[i], float(prediction.probabilities[i])) for i in order]
