"""The downloadable per-image report: the overlay as PNG and a JSON record of the prediction.

The JSON holds the calibrated probabilities, the predicted class, the confidence, the
entropy, the warnings shown, the explanation settings that drew the PNG, the run and the
temperature used, and the "research and education only" notice.
"""

from __future__ import annotations

import io
import json
import time
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from neuropathology.app.inference import Prediction

DISCLAIMER = ("Research and education only. Not a medical device; not for diagnosis or any "
              "clinical decision.")


def png_bytes(image: np.ndarray) -> bytes:
    """A uint8 (H, W, 3) image as PNG bytes."""
    buf = io.BytesIO()
    Image.fromarray(np.asarray(image, np.uint8)).save(buf, format="PNG")
    return buf.getvalue()


def report_dict(filename: str, prediction: Prediction, *, run: str,
                settings: dict[str, Any]) -> dict[str, Any]:
    """The JSON report of one image (see the module docstring)."""
    from neuropathology import __version__

    return {
        "file": filename,
        "predicted_class": prediction.label,
        "confidence": round(prediction.confidence, 6),
        "probabilities": {k: round(v, 6) for k, v in prediction.as_dict().items()},
        "normalized_entropy": round(prediction.normalized_entropy, 6),
        "warnings": list(prediction.warnings),
        "run": run,
        "temperature": prediction.temperature,
        "explanation": settings,
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "package_version": __version__,
        "notice": DISCLAIMER,
    }


def json_bytes(report: dict[str, Any]) -> bytes:
    return (json.dumps(report, indent=2, sort_keys=True) + "\n").encode("utf-8")


def report_stem(filename: str) -> str:
    return Path(filename).stem or "image"
