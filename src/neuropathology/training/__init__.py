"""Training: configuration, callbacks, the two-stage trainer, the run directory and its CLI.

``neuropathology.training.train`` and ``TrainResult`` are imported lazily (they pull in
TensorFlow); ``TrainConfig`` is light.
"""

from __future__ import annotations

from typing import Any

from neuropathology.training.config import ConfigError, TrainConfig, load_config_file

__all__ = ["ConfigError", "TrainConfig", "TrainResult", "load_config_file", "train"]


def __getattr__(name: str) -> Any:
    if name in ("train", "TrainResult"):
        from neuropathology.training import trainer

        return getattr(trainer, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
