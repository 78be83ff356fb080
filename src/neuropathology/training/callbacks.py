"""Callbacks and learning-rate schedules of one training stage.

Per stage, in this order::

    BestWeightsCheckpoint  keep the best-validation-epoch weights on disk (atomic)
    EarlyStopping        stop when the monitored metric stalls; restore the best weights
    ReduceLROnPlateau    divide the learning rate by 5 when it stalls (constant schedule only)
    CSVLogger            history.csv, one row per epoch, appended across stages and resumes
    TensorBoard          logs/ (``tensorboard --logdir runs/``); ``--no-tensorboard`` skips it
    BackupAndRestore     resume after an interruption from the last completed epoch

BackupAndRestore comes last so that an epoch counts as completed (and is skipped on resume)
only after its history row and best-weights checkpoint are on disk.
"""

from __future__ import annotations

import csv
import math
from pathlib import Path
from typing import Any

import keras

from neuropathology.training.config import TrainConfig
from neuropathology.training.run_dir import RunDir
from neuropathology.utils.helpers import atomic_path, get_logger

log = get_logger("training.callbacks")


class BestWeightsCheckpoint(keras.callbacks.Callback):
    """Save the weights of the best epoch so far: ``ModelCheckpoint(save_best_only=True,
    save_weights_only=True)`` made atomic and resumable.

    * atomic: the weights go to a temporary file that is renamed onto ``path``, so a kill
      during the write leaves the previous best file intact;
    * resumable: ``initial_best`` is the best value reached before an interruption (read
      from history.csv), so a resumed stage does not overwrite a better earlier checkpoint.
    """

    def __init__(self, path: Path, *, monitor: str, mode: str,
                 initial_best: float | None = None) -> None:
        super().__init__()
        self.path, self.monitor, self.mode = Path(path), monitor, mode
        self.best = initial_best

    def _improved(self, value: float) -> bool:
        if math.isnan(value):
            return False
        if self.best is None:
            return True
        return value < self.best if self.mode == "min" else value > self.best

    def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        value = (logs or {}).get(self.monitor)
        if value is None or not self._improved(float(value)):
            return
        self.best = float(value)
        with atomic_path(self.path) as tmp:  # readers see the old or the new file, never half
            self.model.save_weights(tmp)


class EpochTracker(keras.callbacks.Callback):
    """Records the epochs a ``fit`` call actually ran (after a resume, where it started)."""

    def __init__(self) -> None:
        super().__init__()
        self.epochs: list[int] = []

    def on_epoch_begin(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        self.epochs.append(int(epoch))


def learning_rate(config: TrainConfig, base_lr: float, *, steps_per_epoch: int, epochs: int,
                  warmup_epochs: float = 0.0) -> float | keras.optimizers.schedules.Schedule:
    """A constant rate, or cosine decay with optional linear warm-up.

    Cosine: lr(t) = lr_min + (lr_max - lr_min) * (1 + cos(pi * t / T)) / 2 over the T steps
    after warm-up, with lr_min = lr_max / 100. Warm-up: lr rises linearly from 0 to lr_max
    over the first W steps, which keeps Adam's early, badly estimated second moments from
    producing huge steps into a freshly initialised head.
    """
    if config.lr_schedule == "constant":
        return base_lr
    total = max(1, steps_per_epoch * epochs)
    warm = min(int(round(warmup_epochs * steps_per_epoch)), total - 1)
    if warm <= 0:
        return keras.optimizers.schedules.CosineDecay(base_lr, decay_steps=total, alpha=0.01)
    return keras.optimizers.schedules.CosineDecay(
        0.0, decay_steps=total - warm, alpha=0.01, warmup_target=base_lr, warmup_steps=warm)


def best_so_far(history_csv: Path, monitor: str, mode: str, first_epoch: int) -> float | None:
    """Best ``monitor`` value among history rows with ``epoch >= first_epoch`` (None if none)."""
    if not history_csv.is_file():
        return None
    with history_csv.open(newline="", encoding="utf-8") as handle:
        values = [float(row[monitor]) for row in csv.DictReader(handle)
                  if row.get(monitor) not in (None, "") and int(row["epoch"]) >= first_epoch]
    values = [v for v in values if not math.isnan(v)]
    if not values:
        return None
    return min(values) if mode == "min" else max(values)


def stage_callbacks(config: TrainConfig, run: RunDir, stage: int, *, first_epoch: int
                    ) -> list[keras.callbacks.Callback]:
    """The callbacks of ``stage`` (1 or 2) in the order of the module docstring.

    ``first_epoch``: global index of the stage's first epoch (epochs are numbered across
    both stages so that history.csv reads as one curve).
    """
    monitor, mode = config.monitor, config.monitor_mode
    callbacks: list[keras.callbacks.Callback] = [
        BestWeightsCheckpoint(run.best_weights(stage), monitor=monitor, mode=mode,
                              initial_best=best_so_far(run.history, monitor, mode, first_epoch)),
        keras.callbacks.EarlyStopping(monitor=monitor, mode=mode, restore_best_weights=True,
                                      patience=config.early_stopping_patience),
    ]
    if config.lr_schedule == "constant":  # a schedule owns the rate; the two cannot mix
        callbacks.append(keras.callbacks.ReduceLROnPlateau(
            monitor=monitor, mode=mode, factor=config.reduce_lr_factor,
            patience=config.reduce_lr_patience, min_lr=1e-7))
    callbacks.append(keras.callbacks.CSVLogger(str(run.history), append=True))
    if config.tensorboard:
        callbacks.append(keras.callbacks.TensorBoard(str(run.logs), profile_batch=0))
    callbacks.append(keras.callbacks.BackupAndRestore(str(run.backup_dir(stage)),
                                                      double_checkpoint=True))
    return callbacks
