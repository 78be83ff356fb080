"""The training configuration: one dataclass, three sources, one resolved result.

Precedence (later wins)::

    TrainConfig defaults  <  the --quick preset  <  a YAML/JSON config file  <  command-line flags

The fully resolved config is saved as ``config.json`` in the run directory, so every run can
be reproduced from its own directory (``neuropathology train --config runs/X/config.json``
works: the file's ``train`` section is accepted as a config file).
"""

from __future__ import annotations

import dataclasses
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from neuropathology.models.neuropathology_model import BASE_MODELS

DISTRIBUTE_CHOICES = ("auto", "none", "mirrored", "multiworker")
CLASS_WEIGHT_CHOICES = ("auto", "balanced", "none")
LR_SCHEDULES = ("constant", "cosine")
MONITORS = {"val_loss": "min", "val_accuracy": "max", "val_macro_f1": "max"}
ALIASES = ("none", "kaggle4")

#: Settings of ``--quick``: a small CNN at 64 px on the cached synthetic dataset, about
#: 2-3 minutes on 2 CPU cores. Both stages train every layer (the small CNN has no pretrained
#: weights); stage 2 is a lower-learning-rate continuation. Cosine decay instead of
#: ReduceLROnPlateau: with 180 validation images the monitored loss is too noisy for plateau
#: detection, while a fixed schedule needs no signal.
QUICK_PRESET: dict[str, Any] = {
    "base_model": "small_cnn",
    "weights": "none",
    "image_size": 64,
    "batch_size": 32,
    "stage1_epochs": 24,
    "stage2_epochs": 6,
    "learning_rate": 3e-3,
    "fine_tune_learning_rate": 5e-4,
    "lr_schedule": "cosine",
    "warmup_epochs": 1.0,
    "dense_units": [128, 64],
    "dropout": [0.3, 0.2],
    "early_stopping_patience": 10,
    "augment": {"rotation_deg": 10.0, "zoom": 0.05, "horizontal_flip": True,
                "brightness": 0.05, "contrast": 0.05},
}


class ConfigError(ValueError):
    """An invalid setting or combination of settings; the message names the fix."""


@dataclass
class TrainConfig:
    """Every knob of a training run (see ``neuropathology train --help`` for each one)."""

    # data
    data_dir: str | None = None  # None: the built-in synthetic dataset (cached)
    aliases: str = "none"  # "kaggle4": map Kaggle 4-class folder names to canonical names
    val_fraction: float = 0.15
    test_fraction: float = 0.15
    dedup_distance: int | None = 4  # pHash Hamming radius grouping near duplicates in splits
    strict: bool = False  # unreadable image -> error instead of skip-with-warning
    synthetic_per_class: int = 300
    synthetic_test_per_class: int = 60
    synthetic_size: int = 128
    # model
    base_model: str = "mobilenetv2"
    weights: str = "auto"
    alpha: float = 1.0
    image_size: int = 224
    pad_to_square: bool = False
    dense_units: list[int] = field(default_factory=lambda: [512, 256])
    dropout: list[float] = field(default_factory=lambda: [0.5, 0.3])
    l2: float = 1e-4
    # optimisation
    batch_size: int = 32
    stage1_epochs: int = 10
    stage2_epochs: int = 10
    learning_rate: float = 1e-3
    fine_tune_learning_rate: float = 1e-5
    fine_tune_layers: int = 30
    lr_schedule: str = "constant"
    warmup_epochs: float = 0.0
    clipnorm: float | None = None
    label_smoothing: float = 0.0
    mixed_precision: bool = False
    class_weights: str = "auto"
    oversample: bool = False
    augment: dict[str, Any] | None = field(default_factory=dict)  # None: no augmentation
    # callbacks
    monitor: str = "val_loss"
    early_stopping_patience: int = 5
    reduce_lr_patience: int = 2
    reduce_lr_factor: float = 0.2
    tensorboard: bool = True
    # run
    output_dir: str = "runs"
    name: str | None = None
    overwrite: bool = False
    seed: int = 42
    deterministic: bool = True
    distribute: str = "auto"
    verbose: int | None = None  # Keras fit verbosity; None: progress bar on a terminal
    quick: bool = False

    # -- construction ------------------------------------------------------------------

    @classmethod
    def field_names(cls) -> tuple[str, ...]:
        """Names of all settings (the keys a config file may use)."""
        return tuple(f.name for f in dataclasses.fields(cls))

    @classmethod
    def resolve(cls, file_values: Mapping[str, Any] | None = None,
                flag_values: Mapping[str, Any] | None = None) -> TrainConfig:
        """defaults < quick preset < config file < flags; then :meth:`validate`."""
        file_values = dict(file_values or {})
        flag_values = dict(flag_values or {})
        _check_keys(file_values, "config file")
        _check_keys(flag_values, "flags")
        quick = bool(flag_values.get("quick", file_values.get("quick", False)))
        merged: dict[str, Any] = dict(QUICK_PRESET) if quick else {}
        merged.update(file_values)
        merged.update(flag_values)
        config = cls(**merged)
        config.validate()
        return config

    def to_dict(self) -> dict[str, Any]:
        """JSON-able dict of every setting."""
        return dataclasses.asdict(self)

    # -- checks --------------------------------------------------------------------------

    def validate(self) -> None:
        """Reject bad values and contradictory combinations before anything is written."""
        _one_of("base_model", self.base_model, BASE_MODELS)
        _one_of("distribute", self.distribute, DISTRIBUTE_CHOICES)
        _one_of("class_weights", self.class_weights, CLASS_WEIGHT_CHOICES)
        _one_of("lr_schedule", self.lr_schedule, LR_SCHEDULES)
        _one_of("monitor", self.monitor, tuple(MONITORS))
        _one_of("aliases", self.aliases, ALIASES)
        for name in ("stage1_epochs", "batch_size", "synthetic_per_class",
                     "synthetic_test_per_class"):
            _at_least(name, getattr(self, name), 1)
        for name in ("stage2_epochs", "fine_tune_layers", "early_stopping_patience",
                     "reduce_lr_patience"):
            _at_least(name, getattr(self, name), 0)
        _at_least("image_size", self.image_size, 32)
        for name in ("learning_rate", "fine_tune_learning_rate"):
            if not _positive(getattr(self, name)):
                raise ConfigError(f"--{_flag(name)} must be > 0, got {getattr(self, name)}")
        if not 0.0 <= self.label_smoothing < 1.0:
            raise ConfigError(f"--label-smoothing must be in [0, 1), got {self.label_smoothing}")
        if self.clipnorm is not None and self.clipnorm <= 0:
            raise ConfigError(f"--clipnorm must be > 0 (or omitted), got {self.clipnorm}")
        if not 0.0 < self.reduce_lr_factor < 1.0:
            raise ConfigError(f"reduce_lr_factor must be in (0, 1), got {self.reduce_lr_factor}")
        if self.warmup_epochs < 0 or (self.warmup_epochs > 0 and self.lr_schedule != "cosine"):
            raise ConfigError("--warmup-epochs needs --lr-schedule cosine (warm-up is part of "
                              "the cosine schedule); add --lr-schedule cosine or drop it")
        if self.oversample and self.class_weights == "balanced":
            raise ConfigError("--oversample and --class-weights balanced both correct class "
                              "imbalance; together they over-correct. Use one of them")
        if self.alpha != 1.0 and self.base_model != "mobilenetv2":
            raise ConfigError(f"--alpha is MobileNetV2's width multiplier; {self.base_model} "
                              "has none. Drop --alpha or use --base-model mobilenetv2")
        if self.base_model == "small_cnn" and self.weights not in ("none", "auto"):
            raise ConfigError(f"small_cnn has no pretrained weights; --weights {self.weights} "
                              "is not possible. Use --weights none or another --base-model")
        if len(self.dense_units) != len(self.dropout) or not self.dense_units:
            raise ConfigError("--dense-units and --dropout need the same, non-zero number of "
                              f"values, got {self.dense_units} and {self.dropout}")
        if self.name is not None and not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._+-]*", self.name):
            raise ConfigError(f"--name {self.name!r} must be a plain folder name (letters, "
                              "digits, . _ + -), without slashes")
        if self.data_dir is not None and not Path(self.data_dir).is_dir():
            raise ConfigError(f"--data-dir {self.data_dir} is not a directory; point it at a "
                              "folder of <class>/<image> folders (optionally under "
                              "Training/ and Testing/), or omit it to use the synthetic dataset")
        if self.augment is not None:
            from neuropathology.data.data_loader import AugmentConfig

            try:
                AugmentConfig.from_dict(self.augment)
            except (TypeError, ValueError) as exc:
                raise ConfigError(f"invalid augment settings {self.augment}: {exc}") from exc

    @property
    def monitor_mode(self) -> str:
        """"min" for losses, "max" for accuracy-like metrics."""
        return MONITORS[self.monitor]


def load_config_file(path: str | Path) -> dict[str, Any]:
    """Read a YAML (``.yaml``/``.yml``) or JSON config file into a dict of settings.

    A run directory's ``config.json`` is accepted too: its ``train`` section is used.
    """
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"config file {path} does not exist; check the path given to --config")
    text = path.read_text(encoding="utf-8")
    try:
        if path.suffix.lower() in (".yaml", ".yml"):
            import yaml

            data = yaml.safe_load(text) or {}
        else:
            data = json.loads(text)
    except Exception as exc:  # yaml.YAMLError, json.JSONDecodeError
        raise ConfigError(f"config file {path} is not valid YAML/JSON: {exc}") from exc
    if not isinstance(data, dict):
        raise ConfigError(f"config file {path} must hold a mapping of settings, got "
                          f"{type(data).__name__}")
    if "train" in data and isinstance(data["train"], dict):  # a run's config.json
        data = data["train"]
    return {key.replace("-", "_"): value for key, value in data.items()}


def _positive(value: float) -> bool:
    """True for a finite number > 0."""
    return isinstance(value, (int, float)) and value > 0 and value != float("inf")


def _flag(name: str) -> str:
    return name.replace("_", "-")


def _check_keys(values: Mapping[str, Any], source: str) -> None:
    unknown = sorted(set(values) - set(TrainConfig.field_names()))
    if unknown:
        raise ConfigError(f"unknown setting(s) in {source}: {', '.join(unknown)}; valid "
                          f"settings are: {', '.join(TrainConfig.field_names())}")


def _one_of(name: str, value: object, choices: tuple[str, ...]) -> None:
    if value not in choices:
        raise ConfigError(f"--{_flag(name)} {value!r} is not valid; choose one of "
                          f"{', '.join(choices)}")


def _at_least(name: str, value: object, minimum: int) -> None:
    if not isinstance(value, int) or isinstance(value, bool) or value < minimum:
        raise ConfigError(f"--{_flag(name)} must be an integer >= {minimum}, got {value!r}")
