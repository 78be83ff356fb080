"""Two-stage transfer learning, from a data directory to a finished run directory.

:func:`train` reads top to bottom as the pipeline runs::

    check settings and the run directory      (refuse early: nothing is written yet)
    seed everything, load + split the data    (leakage-safe split from neuropathology.data)
    build the model                           (inside the tf.distribute strategy's scope)
    build the input pipelines                 (augmentation for training only; class weights)
    create the run directory                  (config.json, class_names.json, environment.json)
    stage 1: frozen base, train the head      Adam, lr 1e-3
    stage 2: unfreeze the top N base layers   lower lr (1e-5): small steps keep pretrained filters
    save model.keras, history, curves; evaluate the held-out test split; write COMPLETE

Why two stages: a freshly initialised head produces large, random gradients. If the base were
trainable from the start, those gradients would flow into the pretrained filters and wreck
them before the head has learned anything ("catastrophic forgetting"). Training the head on
frozen features first, then fine-tuning the top of the base with a learning rate ~100x
smaller, adapts the high-level features to MRI without destroying the generic ones.

Resuming: an interrupted run restarted with the same command continues from its last
completed epoch (weights, optimizer state and epoch counter from BackupAndRestore; a finished
stage is not repeated). It is not bit-identical to an uninterrupted run: the seeded data
order restarts from its first permutation.

When the base is *not* pretrained (``small_cnn``, ``--weights none``, or ``auto`` offline)
there is nothing to protect: both stages train every layer, batch norm included, and stage 2
is a lower-learning-rate continuation.
"""

from __future__ import annotations

import contextlib
import csv
import dataclasses
import os
import sys
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import keras
import numpy as np
import tensorflow as tf

from neuropathology.data.data_loader import (
    AugmentConfig,
    PreprocessConfig,
    check_readable,
    class_weights,
    make_dataset,
    oversample_indices,
    steps_per_epoch,
)
from neuropathology.data.discovery import KAGGLE_4CLASS_ALIASES, Dataset, discover_dataset
from neuropathology.data.splits import split_dataset
from neuropathology.evaluation.metrics import classification_metrics
from neuropathology.models.neuropathology_model import (
    BuiltModel,
    build_model,
    count_parameters,
    freeze_base,
    normalization_for,
    unfreeze_top,
)
from neuropathology.predictor import Predictor
from neuropathology.training.callbacks import EpochTracker, learning_rate, stage_callbacks
from neuropathology.training.config import ConfigError, TrainConfig
from neuropathology.training.run_dir import (
    RunDir,
    create_run,
    default_run_name,
    environment_info,
    plan_run,
)
from neuropathology.utils.helpers import (
    atomic_path,
    atomic_write_json,
    derive_seed,
    get_logger,
    set_global_seed,
)

log = get_logger("training")

#: Class weights are switched on ("auto") when the largest class is this many times the smallest.
IMBALANCE_RATIO = 1.2


@dataclass(frozen=True)
class DataSplits:
    """The dataset and its leakage-safe train/val/test split."""

    root: Path
    synthetic: bool
    class_names: tuple[str, ...]
    train: Dataset
    val: Dataset
    test: Dataset


@dataclass
class TrainResult:
    """What :func:`train` returns (everything is also on disk in ``run_dir``)."""

    run_dir: Path
    metrics: dict[str, Any]
    history: list[dict[str, float]]
    pretrained: bool
    resumed: bool
    epochs_run: dict[int, list[int]]  #: per stage, the epoch indices this call trained
    stage1_epochs: int  #: epochs stage 1 took (stage 2's epochs are numbered after them)
    wall_seconds: float


# --------------------------------------------------------------------------- the pipeline


def train(config: TrainConfig, *, extra_callbacks: Sequence[keras.callbacks.Callback] = ()
          ) -> TrainResult:
    """Train, evaluate and save one run (see the module docstring for the steps)."""
    start = time.perf_counter()
    config.validate()
    config = dataclasses.replace(config, name=config.name or default_run_name(config.base_model))
    run = RunDir(Path(config.output_dir) / str(config.name))
    mode = plan_run(run.path, config.to_dict(), overwrite=config.overwrite)

    with reproducible(config.seed, deterministic=config.deterministic):
        data = load_data(config)
        preprocess = PreprocessConfig(image_size=config.image_size,
                                      pad_to_square=config.pad_to_square,
                                      normalization=normalization_for(config.base_model))
        strategy = make_strategy(config.distribute)
        with strategy.scope(), precision_policy(config.mixed_precision):
            built = build_model(
                len(data.class_names), base=config.base_model, image_size=config.image_size,
                weights=config.weights, alpha=config.alpha, dense_units=config.dense_units,
                dropout=config.dropout, l2=config.l2)
        pipelines = make_pipelines(config, data, preprocess)
        # Everything that can fail on bad input has run: only now touch the disk.
        create_run(run, mode, _run_documents(config, data, preprocess, built, strategy))
        log.info("%s run in %s (%s, %s weights, %d train / %d val / %d test images)",
                 "resuming" if mode == "resume" else "new", run.path, config.base_model,
                 "pretrained" if built.pretrained else "random",
                 len(data.train), len(data.val), len(data.test))
        with strategy.scope():
            epochs_run, stage1_epochs = fit_two_stages(config, run, built, pipelines,
                                                       extra_callbacks=extra_callbacks)
        history = finalize_history(run)
        save_model(built.model, run.model)
        metrics = evaluate_on_test(built.model, data, preprocess, config)
        atomic_write_json(run.metrics, metrics)
        plot_history(history, run.curves, stage_boundary=stage1_epochs)
    wall = time.perf_counter() - start
    run.mark_complete({"finished": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
                       "wall_seconds_last_session": round(wall, 1),
                       "epochs": len(history), "stage1_epochs": stage1_epochs,
                       "test_accuracy": metrics["accuracy"], "test_macro_f1": metrics["macro_f1"]})
    return TrainResult(run.path, metrics, history, built.pretrained, mode == "resume",
                       epochs_run, stage1_epochs, wall)


def load_data(config: TrainConfig) -> DataSplits:
    """Discover the dataset (or the cached synthetic one) and split it without leakage.

    The split is group-aware: perceptual-hash near duplicates (``dedup_distance``) never
    straddle train/val/test, because slices of one patient on both sides inflate the score.
    """
    synthetic = config.data_dir is None
    if synthetic:
        from neuropathology.data.synthetic import ensure_dataset

        root = ensure_dataset(None, per_class=config.synthetic_per_class,
                              test_per_class=config.synthetic_test_per_class,
                              size=config.synthetic_size, seed=0)
        log.info("no --data-dir given: using the built-in synthetic MRI dataset at %s", root)
    else:
        root = Path(config.data_dir)
    aliases = KAGGLE_4CLASS_ALIASES if config.aliases == "kaggle4" else None
    dataset = discover_dataset(root, aliases=aliases)
    splits = split_dataset(dataset, val_fraction=config.val_fraction,
                           test_fraction=config.test_fraction, seed=config.seed,
                           dedup_distance=config.dedup_distance)
    for name in ("train", "val", "test"):
        if len(splits[name]) == 0:
            raise ConfigError(f"the {name} split of {root} is empty ({len(dataset)} images); "
                              "add images or raise --val-fraction / --test-fraction")
    return DataSplits(root, synthetic, dataset.class_names, splits["train"], splits["val"],
                      splits["test"])


@dataclass(frozen=True)
class Pipelines:
    """The training and validation input pipelines and what the loss needs to know of them."""

    train: tf.data.Dataset
    val: tf.data.Dataset
    class_weight: dict[int, float] | None
    steps_per_epoch: int


def make_pipelines(config: TrainConfig, data: DataSplits, preprocess: PreprocessConfig
                   ) -> Pipelines:
    """tf.data pipelines (augmentation on the training split only) and class weights.

    Built before the run directory exists: unreadable files (``--strict``) fail here.
    """
    train_set = oversampled(data.train, config) if config.oversample else data.train
    augment = None if config.augment is None else AugmentConfig.from_dict(config.augment)
    train_ds = make_dataset(train_set, preprocess, batch_size=config.batch_size, training=True,
                            augment=augment, seed=derive_seed(config.seed, "train"),
                            strict=config.strict)
    val_ds = make_dataset(data.val, preprocess, batch_size=config.batch_size, training=False,
                          seed=derive_seed(config.seed, "val"), strict=config.strict)
    return Pipelines(train_ds, val_ds, balanced_class_weights(train_set, config),
                     steps_per_epoch(len(train_set), config.batch_size))


def fit_two_stages(config: TrainConfig, run: RunDir, built: BuiltModel, pipelines: Pipelines,
                   *, extra_callbacks: Sequence[keras.callbacks.Callback] = ()
                   ) -> tuple[dict[int, list[int]], int]:
    """Stage 1 then stage 2, skipping a stage a previous (interrupted) session finished.

    Returns the epochs trained per stage in this call and the number of stage-1 epochs.
    """
    model, state = built.model, run.read_state()
    epochs_run: dict[int, list[int]] = {}
    stages = [(1, config.stage1_epochs, config.learning_rate, config.warmup_epochs),
              (2, config.stage2_epochs, config.fine_tune_learning_rate, 0.0)]
    for stage, n_epochs, lr, warmup in stages:
        if n_epochs == 0:
            continue
        if state.get(f"stage{stage}_done"):  # finished by an earlier, interrupted session
            model.load_weights(run.stage_weights(stage))
            continue
        first = 0 if stage == 1 else state["stage1_epochs"]
        describe = configure_stage(model, stage, pretrained=built.pretrained,
                                   fine_tune_layers=config.fine_tune_layers)
        compile_model(model, config, learning_rate(config, lr, epochs=n_epochs,
                                                   steps_per_epoch=pipelines.steps_per_epoch,
                                                   warmup_epochs=warmup))
        trainable, frozen = count_parameters(model)
        log.info("stage %d: %s; %s trainable / %s frozen parameters, lr %.2g, epochs %d-%d",
                 stage, describe, f"{trainable:,}", f"{frozen:,}", lr, first + 1,
                 first + n_epochs)
        epochs_run[stage], end = fit_stage(model, config, run, stage, pipelines,
                                           first_epoch=first, n_epochs=n_epochs,
                                           extra_callbacks=extra_callbacks)
        finish_stage(model, run, stage)
        state = run.read_state() | {f"stage{stage}_done": True}
        if stage == 1:
            state["stage1_epochs"] = end
        run.write_state(**state)
    return epochs_run, int(state.get("stage1_epochs", config.stage1_epochs))


def configure_stage(model: keras.Model, stage: int, *, pretrained: bool,
                    fine_tune_layers: int) -> str:
    """Choose what trains in ``stage``; returns a short description for the log.

    Pretrained base: stage 1 freezes it (head only); stage 2 unfreezes its top
    ``fine_tune_layers`` layers with batch norm kept in inference mode (see
    ``neuropathology_model.unfreeze_top`` for why). Random base: everything trains.
    """
    if not pretrained:
        unfreeze_top(model, None, freeze_batchnorm=False)
        return "random base: all layers train (batch norm in training mode)"
    if stage == 1:
        freeze_base(model)
        return "base frozen, head trains"
    n = unfreeze_top(model, fine_tune_layers)
    return f"top {n} base layers unfrozen (batch norm stays in inference mode)"


def compile_model(model: keras.Model, config: TrainConfig,
                  lr: float | keras.optimizers.schedules.Schedule) -> None:
    """Adam + (label-smoothed) categorical cross-entropy + accuracy and macro F1.

    Cross-entropy L = -sum_k y_k log p_k; label smoothing eps replaces the one-hot y by
    (1 - eps) y + eps / C, which stops the logits growing without bound (over-confidence).
    Adam keeps running means of the gradient (m) and its square (v) and steps
    lr * m_hat / (sqrt(v_hat) + eps): a per-parameter step size. ``clipnorm`` rescales each
    gradient to norm <= clipnorm. Recompiling is required after changing ``trainable``.
    """
    optimizer = keras.optimizers.Adam(learning_rate=lr, clipnorm=config.clipnorm)
    model.compile(
        optimizer=optimizer,
        loss=keras.losses.CategoricalCrossentropy(label_smoothing=config.label_smoothing),
        metrics=["accuracy", keras.metrics.F1Score(average="macro", name="macro_f1")],
    )


def fit_stage(model: keras.Model, config: TrainConfig, run: RunDir, stage: int,
              pipelines: Pipelines, *, first_epoch: int, n_epochs: int,
              extra_callbacks: Sequence[keras.callbacks.Callback] = ()) -> tuple[list[int], int]:
    """``model.fit`` for one stage; returns (epochs trained now, global index after the last).

    Epochs are numbered globally (stage 2 continues after stage 1's last epoch), so
    history.csv is one continuous curve. BackupAndRestore may move the start forward to the
    epoch after the last one completed before an interruption.
    """
    model._initial_epoch = None  # keras keeps a restored start epoch on the model; reset it
    tracker = EpochTracker()
    callbacks = [*stage_callbacks(config, run, stage, first_epoch=first_epoch), tracker,
                 *extra_callbacks]
    model.fit(pipelines.train, validation_data=pipelines.val, initial_epoch=first_epoch,
              epochs=first_epoch + n_epochs, class_weight=pipelines.class_weight,
              callbacks=callbacks,
              shuffle=False,  # the tf.data pipeline shuffles (seeded) itself
              verbose=_verbosity(config))
    end = tracker.epochs[-1] + 1 if tracker.epochs else first_epoch + n_epochs
    return tracker.epochs, end


def finish_stage(model: keras.Model, run: RunDir, stage: int) -> None:
    """Load the stage's best-validation weights and save them as the stage's final weights."""
    best = run.best_weights(stage)
    if best.is_file():
        model.load_weights(best)
    with atomic_path(run.stage_weights(stage)) as tmp:
        model.save_weights(tmp)


def balanced_class_weights(train: Dataset, config: TrainConfig) -> dict[int, float] | None:
    """Class weights w_c = n / (k n_c) ("balanced"), or None.

    ``auto``: balanced when the largest class has >= IMBALANCE_RATIO times the images of the
    smallest (and oversampling is off, which already balances the classes).
    """
    counts = np.bincount(train.labels, minlength=len(train.class_names))
    imbalanced = counts.max() >= IMBALANCE_RATIO * max(1, counts.min())
    use = config.class_weights == "balanced" or (
        config.class_weights == "auto" and imbalanced and not config.oversample)
    if not use:
        return None
    weights = class_weights(train.labels, len(train.class_names))
    log.info("class weights: %s", {train.class_names[c]: round(w, 3) for c, w in weights.items()})
    return weights


def oversampled(train: Dataset, config: TrainConfig) -> Dataset:
    """The training split with minority classes resampled up to the majority count."""
    idx = oversample_indices(train.labels, seed=derive_seed(config.seed, "oversample"))
    return train.with_samples([train.samples[i] for i in idx])


def evaluate_on_test(model: keras.Model, data: DataSplits, preprocess: PreprocessConfig,
                     config: TrainConfig) -> dict[str, Any]:
    """Held-out test metrics through the Predictor: the same path the app and Grad-CAM use."""
    ok, bad = check_readable(data.test.paths, strict=config.strict)
    keep = {Path(p) for p in ok}
    labels = np.array([lab for p, lab in zip(data.test.paths, data.test.labels, strict=True)
                       if Path(p) in keep], dtype=np.int64)
    predictor = Predictor(model, data.class_names, preprocess, batch_size=config.batch_size)
    probs = predictor.predict_paths([p for p in data.test.paths if Path(p) in keep],
                                    progress=True)
    metrics = classification_metrics(labels, probs, data.class_names)
    return {"split": "test", "data_root": str(data.root), "synthetic_data": data.synthetic,
            "skipped_unreadable": len(bad), **metrics}


# --------------------------------------------------------------------------- outputs


def save_model(model: keras.Model, path: Path) -> None:
    """``model.keras`` via a temporary file + rename: never half-written under its real name."""
    with atomic_path(path) as tmp:
        model.save(tmp)


def finalize_history(run: RunDir) -> list[dict[str, float]]:
    """Read history.csv, keep the last row per epoch (a resumed epoch is logged twice), sort,
    and rewrite it atomically. Returns the rows as dicts of floats."""
    if not run.history.is_file():
        return []
    with run.history.open(newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    by_epoch = {int(row["epoch"]): row for row in rows}
    ordered = [by_epoch[e] for e in sorted(by_epoch)]
    columns = list(rows[0].keys()) if rows else []
    with atomic_path(run.history) as tmp, tmp.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=columns)
        writer.writeheader()
        writer.writerows(ordered)
    return [{k: float(v) for k, v in row.items() if v not in ("", None)} for row in ordered]


def plot_history(history: Sequence[dict[str, float]], path: Path, *, stage_boundary: int) -> None:
    """Loss and accuracy/macro-F1 per epoch, train vs. validation, stage 2 start marked."""
    if not history:
        return
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    epochs = [int(row["epoch"]) + 1 for row in history]
    fig, axes = plt.subplots(1, 2, figsize=(11, 4))
    panels = (("loss", ("loss", "val_loss")),
              ("accuracy / macro F1", ("accuracy", "val_accuracy", "val_macro_f1")))
    for ax, (title, keys) in zip(axes, panels, strict=True):
        for key in keys:
            if all(key in row for row in history):
                ax.plot(epochs, [row[key] for row in history], marker="o", ms=3, label=key)
        if 0 < stage_boundary < len(history):
            ax.axvline(stage_boundary + 0.5, color="grey", ls="--", lw=1, label="stage 2 starts")
        ax.set_xlabel("epoch")
        ax.set_title(title)
        ax.grid(alpha=0.3)
        ax.legend()
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=100, format="png")
    plt.close(fig)


def _run_documents(config: TrainConfig, data: DataSplits, preprocess: PreprocessConfig,
                   built: BuiltModel, strategy: tf.distribute.Strategy) -> dict[str, Any]:
    """The JSON files a run directory starts with."""
    from neuropathology import __version__

    resolved = {
        "train": config.to_dict(),
        "preprocess": preprocess.to_dict(),
        "class_names": list(data.class_names),
        "model": {"base_model": config.base_model, "pretrained": built.pretrained,
                  "weights_source": built.weights_source,
                  "parameters": int(built.model.count_params())},
        "data": {"root": str(data.root), "synthetic": data.synthetic,
                 "split_sizes": {"train": len(data.train), "val": len(data.val),
                                 "test": len(data.test)},
                 "train_class_counts": data.train.class_counts()},
        "package_version": __version__,
    }
    return {"config.json": resolved, "class_names.json": list(data.class_names),
            "environment.json": environment_info(config.seed, type(strategy).__name__)}


def _verbosity(config: TrainConfig) -> int:
    if config.verbose is not None:
        return config.verbose
    return 1 if sys.stdout.isatty() else 2


# --------------------------------------------------------------------------- environment


@contextlib.contextmanager
def reproducible(seed: int, *, deterministic: bool = True) -> Iterator[None]:
    """Seed Python, NumPy, TF and Keras; optionally make TF ops deterministic.

    ``enable_op_determinism`` makes TF pick deterministic kernels (and raise where none
    exists), so two runs with the same seed and data give the same numbers. It is a
    process-wide switch, so it is turned off again afterwards if it was off before.
    """
    from tensorflow.python.framework import config as tf_config

    set_global_seed(seed)
    was_enabled = tf_config.is_op_determinism_enabled()
    if deterministic:
        tf.config.experimental.enable_op_determinism()
    try:
        yield
    finally:
        if deterministic and not was_enabled:
            tf_config.disable_op_determinism()


def make_strategy(name: str) -> tf.distribute.Strategy:
    """The tf.distribute strategy for ``--distribute``.

    ``none``: the default (single-device) strategy. ``mirrored``: synchronous data parallelism
    over the local GPUs (gradients all-reduced every step). ``multiworker``: the same across
    machines described by the ``TF_CONFIG`` environment variable. ``auto``: multiworker if
    TF_CONFIG is set, mirrored with more than one GPU, else the default. ``--batch-size`` is
    the global batch (split across replicas).
    """
    if name == "auto":
        if os.environ.get("TF_CONFIG"):
            name = "multiworker"
        elif len(tf.config.list_physical_devices("GPU")) > 1:
            name = "mirrored"
        else:
            name = "none"
    if name == "none":
        return tf.distribute.get_strategy()
    if name == "mirrored":
        return tf.distribute.MirroredStrategy()
    if not os.environ.get("TF_CONFIG"):
        raise ConfigError("--distribute multiworker needs the TF_CONFIG environment variable "
                          "(cluster spec + this worker's task); set it on every worker, or use "
                          "--distribute mirrored / none on one machine")
    return tf.distribute.MultiWorkerMirroredStrategy()


@contextlib.contextmanager
def precision_policy(mixed: bool) -> Iterator[None]:
    """Build layers under ``mixed_float16`` (float16 compute, float32 weights) if asked.

    Keras then wraps the optimizer in a LossScaleOptimizer at compile time (the loss is
    scaled up before backprop so small float16 gradients do not underflow to zero). The
    head's softmax stays float32. Worth it on GPUs with tensor cores; slow on CPUs.
    """
    previous = keras.config.dtype_policy()
    if mixed:
        if not tf.config.list_physical_devices("GPU"):
            log.warning("--mixed-precision on a CPU-only machine is usually slower, not faster")
        keras.config.set_dtype_policy("mixed_float16")
    try:
        yield
    finally:
        keras.config.set_dtype_policy(previous)
