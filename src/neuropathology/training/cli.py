"""``neuropathology train`` (== ``python train.py``): flags -> TrainConfig -> train -> summary.

Every flag defaults to "not given", so :meth:`TrainConfig.resolve` can apply the precedence
defaults < ``--quick`` preset < ``--config`` file < flags.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
from collections.abc import Sequence
from typing import Any

from neuropathology.training.config import (
    ALIASES,
    CLASS_WEIGHT_CHOICES,
    DISTRIBUTE_CHOICES,
    LR_SCHEDULES,
    MONITORS,
    ConfigError,
    TrainConfig,
    load_config_file,
)

_S = argparse.SUPPRESS


def _dedup(value: str) -> int | None:
    return None if value.lower() == "none" else int(value)


def configure_parser(parser: argparse.ArgumentParser) -> None:
    """Add the training flags (all optional; see ``--help``)."""
    from neuropathology.models.neuropathology_model import BASE_MODELS

    add = parser.add_argument
    add("--config", default=None, metavar="FILE",
        help="YAML/JSON file of settings (flag names with _ or -); flags override it. "
             "A run's config.json works too")
    add("--quick", action="store_true", default=_S,
        help="a small CNN on the cached synthetic dataset: a few minutes on a CPU")
    g = parser.add_argument_group("data")
    g.add_argument("--data-dir", default=_S, metavar="DIR",
                   help="class-per-folder images, optionally under Training/ Testing/ "
                        "(default: the built-in synthetic MRI dataset)")
    g.add_argument("--aliases", choices=ALIASES, default=_S,
                   help="kaggle4: map glioma_tumor/notumor/... to canonical class names")
    g.add_argument("--val-fraction", type=float, default=_S)
    g.add_argument("--test-fraction", type=float, default=_S,
                   help="ignored when the data has a Testing/ folder")
    g.add_argument("--dedup-distance", type=_dedup, default=_S, metavar="BITS|none",
                   help="keep perceptual-hash near duplicates (Hamming <= BITS) in one split "
                        "(default 4; none: off)")
    g.add_argument("--strict", action="store_true", default=_S,
                   help="an unreadable image is an error instead of skipped with a warning")
    g.add_argument("--synthetic-per-class", type=int, default=_S)
    g.add_argument("--synthetic-test-per-class", type=int, default=_S)
    g.add_argument("--synthetic-size", type=int, default=_S)
    g = parser.add_argument_group("model")
    g.add_argument("--base-model", choices=BASE_MODELS, default=_S,
                   help="default mobilenetv2; small_cnn for fast CPU experiments")
    g.add_argument("--weights", default=_S, metavar="auto|imagenet|none|PATH",
                   help="auto (default): ImageNet if it can be downloaded/read, else random "
                        "init with a warning; PATH: a local *_no_top.h5 weights file")
    g.add_argument("--alpha", type=float, default=_S, help="MobileNetV2 width multiplier")
    g.add_argument("--image-size", type=int, default=_S)
    g.add_argument("--pad-to-square", action="store_true", default=_S,
                   help="keep the aspect ratio (black bars) instead of stretching")
    g.add_argument("--dense-units", type=int, nargs="+", default=_S)
    g.add_argument("--dropout", type=float, nargs="+", default=_S)
    g.add_argument("--l2", type=float, default=_S)
    g = parser.add_argument_group("optimisation")
    g.add_argument("--batch-size", type=int, default=_S, help="global batch size")
    g.add_argument("--stage1-epochs", type=int, default=_S, help="head-only epochs (frozen base)")
    g.add_argument("--stage2-epochs", type=int, default=_S, help="fine-tuning epochs (0: skip)")
    g.add_argument("--learning-rate", "--lr", type=float, default=_S, help="stage 1 (1e-3)")
    g.add_argument("--fine-tune-learning-rate", "--fine-tune-lr", type=float, default=_S,
                   help="stage 2 (1e-5)")
    g.add_argument("--fine-tune-layers", type=int, default=_S,
                   help="how many top base layers stage 2 unfreezes (30)")
    g.add_argument("--lr-schedule", choices=LR_SCHEDULES, default=_S,
                   help="cosine replaces ReduceLROnPlateau")
    g.add_argument("--warmup-epochs", type=float, default=_S, help="linear warm-up (cosine only)")
    g.add_argument("--clipnorm", type=float, default=_S, help="clip each gradient's norm")
    g.add_argument("--label-smoothing", type=float, default=_S)
    g.add_argument("--mixed-precision", action="store_true", default=_S,
                   help="mixed_float16 (GPUs with tensor cores)")
    g.add_argument("--class-weights", choices=CLASS_WEIGHT_CHOICES, default=_S,
                   help="auto (default): balanced when the training classes are imbalanced")
    g.add_argument("--oversample", action="store_true", default=_S,
                   help="resample minority classes up to the majority count")
    g.add_argument("--no-augment", dest="augment", action="store_const", const=None,
                   default=_S, help="switch training augmentation off")
    g = parser.add_argument_group("callbacks and run")
    g.add_argument("--monitor", choices=tuple(MONITORS), default=_S,
                   help="validation metric for checkpoint/early stopping (val_loss)")
    g.add_argument("--patience", dest="early_stopping_patience", type=int, default=_S,
                   help="early-stopping patience in epochs")
    g.add_argument("--no-tensorboard", dest="tensorboard", action="store_false", default=_S)
    g.add_argument("--output-dir", default=_S, help="parent of run directories (runs/)")
    g.add_argument("--name", default=_S,
                   help="run directory name (default: a timestamp). Give one to be able to "
                        "resume: rerunning an interrupted run's command continues it")
    g.add_argument("--overwrite", action="store_true", default=_S,
                   help="replace an existing run directory of the same name")
    g.add_argument("--seed", type=int, default=_S)
    g.add_argument("--no-deterministic", dest="deterministic", action="store_false",
                   default=_S, help="allow non-deterministic (faster) TF kernels")
    g.add_argument("--distribute", choices=DISTRIBUTE_CHOICES, default=_S,
                   help="tf.distribute strategy; multiworker reads TF_CONFIG")
    g.add_argument("--verbose", type=int, choices=(0, 1, 2), default=_S,
                   help="Keras progress output (default: bar on a terminal, a line otherwise)")


def run_cli(args: argparse.Namespace) -> int:
    """Resolve the config, train, print the summary; user errors -> message + exit code 2."""
    flags = {k: v for k, v in vars(args).items() if k not in ("config", "command", "_run")}
    config: TrainConfig | None = None
    try:
        file_values = load_config_file(args.config) if args.config else {}
        config = _with_name(TrainConfig.resolve(file_values, flags))
        from neuropathology.training.trainer import train

        result = train(config)
    except _user_errors() as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        if config is not None:
            print(f"\ninterrupted. The run is resumable: rerun the same command with "
                  f"--name {config.name} to continue from the last completed epoch.",
                  file=sys.stderr)
        return 130
    print(summary(result, config))
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """``python train.py [flags]``: the same as ``neuropathology train [flags]``."""
    parser = argparse.ArgumentParser(
        prog="train.py", description="Train the classifier (two-stage transfer learning).")
    configure_parser(parser)
    return run_cli(parser.parse_args(argv))


def summary(result: Any, config: TrainConfig) -> str:
    """The final, human-readable report: what ran, how well, where it went."""
    from neuropathology.evaluation.metrics import metrics_table
    from neuropathology.utils.helpers import format_table

    history = result.history
    best_val = max((row.get("val_accuracy", 0.0) for row in history), default=float("nan"))
    minutes, seconds = divmod(int(round(result.wall_seconds)), 60)
    rows = [
        ["run directory", str(result.run_dir.resolve())],
        ["base model", f"{config.base_model} ({'pretrained' if result.pretrained else 'random init'})"],
        ["epochs (stage 1 + 2)", f"{result.stage1_epochs} + {len(history) - result.stage1_epochs}"],
        ["resumed", "yes" if result.resumed else "no"],
        ["best val accuracy", f"{best_val:.4f}"],
        ["test accuracy", f"{result.metrics['accuracy']:.4f}"],
        ["test macro F1", f"{result.metrics['macro_f1']:.4f}"],
        ["wall time", f"{minutes}:{seconds:02d}"],
    ]
    return ("\n" + format_table(rows, ["run", "value"]) + "\n\nTest split ("
            f"{result.metrics['n_samples']} images):\n" + metrics_table(result.metrics)
            + f"\n\nModel and reports: {result.run_dir.resolve()}\n")


def _with_name(config: TrainConfig) -> TrainConfig:
    from neuropathology.training.run_dir import default_run_name

    if config.name is not None:
        return config
    return dataclasses.replace(config, name=default_run_name(config.base_model))


def _user_errors() -> tuple[type[BaseException], ...]:
    """Exceptions a user can cause with bad input; reported as one line, not a traceback."""
    from neuropathology.data.discovery import DatasetError
    from neuropathology.data.io import ImageReadError
    from neuropathology.models.neuropathology_model import (
        ModelConfigError,
        WeightsUnavailableError,
    )
    from neuropathology.training.run_dir import RunDirError

    return (ConfigError, ModelConfigError, WeightsUnavailableError, RunDirError, DatasetError,
            ImageReadError, FileExistsError)
