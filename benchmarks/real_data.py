"""Benchmark: train on the real Sartaj Brain-Tumour MRI training set within a time budget.

Data: ``../shared/data/sartaj-brain-mri/Training`` (relative to the repository root; 2,870
JPEGs in four classes). Only its training split is available here, so the project's own
leakage-safe split carves validation and test sets out of it: stratified by class, with
perceptual-hash near duplicates (slices of one patient) kept in one split
(``--dedup-distance``). Class folder names are mapped to the canonical names (kaggle4).

Training is the normal pipeline (:func:`neuropathology.training.trainer.train`) with one
extra callback that stops a stage when the next epoch would overrun the wall-clock budget.
Reported: best validation accuracy and validation macro-F1 (from history.csv) and the
held-out test split's accuracy and macro-F1 (metrics.json), plus where the run went.

Offline, ``--weights auto`` falls back to random initialisation (the run records
``pretrained: false``); pass ``--weights PATH`` with a downloaded ``*_no_top.h5`` file for
transfer learning (see README).

Run:  python benchmarks/real_data.py --budget-minutes 20 [--base-model mobilenetv2]
      [--image-size 128] [--weights auto|PATH] [--output-dir runs/benchmarks]
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402

from neuropathology.training.config import TrainConfig  # noqa: E402
from neuropathology.training.trainer import train  # noqa: E402
from neuropathology.utils.helpers import format_table  # noqa: E402

REPO_ROOT = Path(__file__).resolve().parents[1]
REAL_DATA = REPO_ROOT.parent / "shared" / "data" / "sartaj-brain-mri" / "Training"


class TimeBudget(keras.callbacks.Callback):
    """Stop training when the next epoch would end after ``deadline`` (time.monotonic())."""

    def __init__(self, deadline: float) -> None:
        super().__init__()
        self.deadline = deadline
        self._epoch_start = time.monotonic()

    def on_epoch_begin(self, epoch, logs=None):
        self._epoch_start = time.monotonic()

    def on_epoch_end(self, epoch, logs=None):
        duration = time.monotonic() - self._epoch_start
        if time.monotonic() + duration > self.deadline:
            self.model.stop_training = True


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", type=Path, default=REAL_DATA)
    parser.add_argument("--budget-minutes", type=float, default=20.0)
    parser.add_argument("--base-model", default="mobilenetv2")
    parser.add_argument("--weights", default="auto")
    parser.add_argument("--alpha", type=float, default=1.0)
    parser.add_argument("--image-size", type=int, default=128)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--stage1-epochs", type=int, default=15)
    parser.add_argument("--stage2-epochs", type=int, default=10)
    parser.add_argument("--learning-rate", type=float, default=None,
                        help="stage-1 lr (default: 1e-3 pretrained-style; use ~3e-3 for a "
                             "random base)")
    parser.add_argument("--fine-tune-learning-rate", type=float, default=None)
    parser.add_argument("--dedup-distance", type=int, default=4)
    parser.add_argument("--output-dir", default=str(REPO_ROOT / "runs" / "benchmarks"))
    parser.add_argument("--name", default=None)
    parser.add_argument("--seed", type=int, default=42)
    args = parser.parse_args()

    if not args.data_dir.is_dir():
        raise SystemExit(f"{args.data_dir} not found: this benchmark needs the Sartaj MRI "
                         "training set at ../shared/data/sartaj-brain-mri/Training (or pass "
                         "--data-dir)")
    settings = dict(
        data_dir=str(args.data_dir), aliases="kaggle4", base_model=args.base_model,
        weights=args.weights, alpha=args.alpha, image_size=args.image_size,
        batch_size=args.batch_size, stage1_epochs=args.stage1_epochs,
        stage2_epochs=args.stage2_epochs, dedup_distance=args.dedup_distance,
        output_dir=args.output_dir, seed=args.seed, tensorboard=False, verbose=2,
        name=args.name or f"real-{args.base_model}-{args.image_size}-{time.strftime('%H%M%S')}",
    )
    if args.learning_rate is not None:
        settings["learning_rate"] = args.learning_rate
    if args.fine_tune_learning_rate is not None:
        settings["fine_tune_learning_rate"] = args.fine_tune_learning_rate
    config = TrainConfig(**settings)

    start = time.monotonic()
    budget = TimeBudget(start + 60 * args.budget_minutes)
    result = train(config, extra_callbacks=[budget])
    minutes = (time.monotonic() - start) / 60

    history = result.history
    best = max(history, key=lambda row: row.get("val_accuracy", 0.0))
    rows = [
        ["data", str(args.data_dir)],
        ["base model", f"{args.base_model} @ {args.image_size}px "
                       f"({'pretrained' if result.pretrained else 'random init'})"],
        ["epochs (stage 1 + 2)", f"{result.stage1_epochs} + {len(history) - result.stage1_epochs}"],
        ["wall time (min)", f"{minutes:.1f} (budget {args.budget_minutes:g})"],
        ["best val accuracy", f"{best['val_accuracy']:.4f} (epoch {int(best['epoch']) + 1})"],
        ["val macro F1 at that epoch", f"{best.get('val_macro_f1', float('nan')):.4f}"],
        ["test accuracy", f"{result.metrics['accuracy']:.4f}"],
        ["test macro F1", f"{result.metrics['macro_f1']:.4f}"],
        ["run directory", str(result.run_dir)],
    ]
    print("\n" + format_table(rows, ["real-data benchmark", "value"]))


if __name__ == "__main__":
    main()
