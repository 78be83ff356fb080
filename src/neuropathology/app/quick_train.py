"""Training the quick synthetic model from the page, with a progress bar.

The same run ``python train.py --quick`` makes (small CNN, 64 px, the cached synthetic
dataset; about 1.5 minutes on two CPU cores), written into the app's runs folder. A Keras
callback reports the fraction of epochs done after every epoch of both stages.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

import keras

ProgressFn = Callable[[float, str], None]


class ProgressCallback(keras.callbacks.Callback):
    """Calls ``on_progress(fraction, message)`` after each epoch of both training stages."""

    def __init__(self, total_epochs: int, on_progress: ProgressFn) -> None:
        super().__init__()
        self.total = max(1, int(total_epochs))
        self.done = 0
        self.on_progress = on_progress

    def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        self.done += 1
        logs = logs or {}
        acc = logs.get("val_accuracy")
        extra = f", validation accuracy {acc:.2f}" if acc is not None else ""
        self.on_progress(min(self.done / self.total, 1.0),
                         f"epoch {self.done} of at most {self.total}{extra}")


def quick_config(runs_dir: str | os.PathLike[str], **overrides: Any):
    """The ``--quick`` TrainConfig writing into ``runs_dir`` (``overrides`` win; for tests)."""
    from neuropathology.training.config import TrainConfig

    flags = {"quick": True, "output_dir": os.fspath(runs_dir), "tensorboard": False,
             "verbose": 0, **overrides}
    return TrainConfig.resolve(flag_values=flags)


def train_quick(runs_dir: str | os.PathLike[str], on_progress: ProgressFn, **overrides: Any):
    """Train the quick model into ``runs_dir``; returns the trainer's ``TrainResult``."""
    from neuropathology.training.trainer import train

    config = quick_config(runs_dir, **overrides)
    callback = ProgressCallback(config.stage1_epochs + config.stage2_epochs, on_progress)
    on_progress(0.0, "loading the synthetic dataset (generated on first use)")
    result = train(config, extra_callbacks=[callback])
    on_progress(1.0, f"done: test accuracy {result.metrics['accuracy']:.3f}")
    return result
