"""Training pipeline on tiny synthetic data: stages, resume, determinism, run directory, CLI."""

from __future__ import annotations

import csv
import json
import urllib.error
from pathlib import Path

import keras
import numpy as np
import pytest
import tensorflow as tf

from neuropathology.cli import main as cli_main
from neuropathology.data.data_loader import PreprocessConfig, preprocess_paths
from neuropathology.data.discovery import discover_dataset
from neuropathology.data.synthetic import write_dataset
from neuropathology.models import base_layers, build_model
from neuropathology.predictor import Predictor
from neuropathology.training.callbacks import learning_rate
from neuropathology.training.config import QUICK_PRESET, ConfigError, TrainConfig
from neuropathology.training.run_dir import RunDir, RunDirError, create_run, plan_run
from neuropathology.training.trainer import (
    balanced_class_weights,
    compile_model,
    make_strategy,
    oversampled,
    precision_policy,
    train,
)

pytestmark = pytest.mark.slow

IMAGE = 32


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory) -> Path:
    """Training/<class> (12 each) + Testing/<class> (4 each) synthetic PNGs at 32 px."""
    return write_dataset(tmp_path_factory.mktemp("synth") / "data", per_class=12,
                         test_per_class=4, size=IMAGE, seed=0)


def tiny(data_dir: Path, out: Path, **overrides) -> TrainConfig:
    settings = dict(data_dir=str(data_dir), output_dir=str(out), name="run",
                    base_model="small_cnn", weights="none", image_size=IMAGE, batch_size=12,
                    stage1_epochs=2, stage2_epochs=1, learning_rate=3e-3,
                    fine_tune_learning_rate=1e-3, dense_units=[16], dropout=[0.1], l2=0.0,
                    augment=None, dedup_distance=None, val_fraction=0.25,
                    early_stopping_patience=10, tensorboard=False, verbose=0, seed=7)
    settings.update(overrides)
    config = TrainConfig(**settings)
    config.validate()
    return config


def history_rows(run_dir: Path) -> list[dict[str, str]]:
    with (run_dir / "history.csv").open(newline="") as handle:
        return list(csv.DictReader(handle))


class Interrupt(keras.callbacks.Callback):
    """Simulates a crash/kill at the end of a given (global) epoch."""

    def __init__(self, at_epoch: int) -> None:
        super().__init__()
        self.at_epoch = at_epoch

    def on_epoch_end(self, epoch, logs=None):
        if epoch == self.at_epoch:
            raise KeyboardInterrupt(f"simulated interruption after epoch {epoch}")


# --------------------------------------------------------------------------- configuration


def test_config_precedence_defaults_quick_file_flags():
    assert TrainConfig.resolve().base_model == "mobilenetv2"
    quick = TrainConfig.resolve(flag_values={"quick": True})
    assert quick.base_model == QUICK_PRESET["base_model"]
    from_file = TrainConfig.resolve({"image_size": 48, "batch_size": 8}, {"quick": True})
    assert from_file.image_size == 48 and from_file.base_model == "small_cnn"
    flags = TrainConfig.resolve({"image_size": 48}, {"quick": True, "image_size": 40})
    assert flags.image_size == 40


@pytest.mark.parametrize(("settings", "message"), [
    ({"base_model": "vgg16"}, "choose one of"),
    ({"warmup_epochs": 1.0}, "--lr-schedule cosine"),
    ({"oversample": True, "class_weights": "balanced"}, "over-correct"),
    ({"base_model": "resnet50", "alpha": 0.5}, "--alpha"),
    ({"base_model": "small_cnn", "weights": "imagenet"}, "--weights none"),
    ({"name": "../escape"}, "plain folder name"),
    ({"data_dir": "/no/such/dir"}, "not a directory"),
    ({"augment": {"rotation_deg": 500}}, "invalid augment"),
    ({"unknown_key": 1}, "unknown setting"),
])
def test_bad_settings_are_rejected(settings, message):
    with pytest.raises(ConfigError, match=message):
        TrainConfig.resolve(settings)


def test_cosine_schedule_with_warmup():
    config = TrainConfig(lr_schedule="cosine", warmup_epochs=1.0)
    schedule = learning_rate(config, 1e-3, steps_per_epoch=10, epochs=5, warmup_epochs=1.0)
    assert float(schedule(0)) == pytest.approx(0.0)
    assert float(schedule(10)) == pytest.approx(1e-3)
    assert float(schedule(50)) == pytest.approx(1e-5, rel=1e-3)
    assert learning_rate(TrainConfig(), 1e-3, steps_per_epoch=10, epochs=5) == 1e-3


def test_class_weights_balanced_auto_and_oversampling(data_dir, tmp_path):
    full = discover_dataset(data_dir).subset("train")
    keep = [s for s in full.samples if s.label != "glioma"] + [
        s for s in full.samples if s.label == "glioma"][:4]
    imbalanced = full.with_samples(keep)
    counts = np.bincount(imbalanced.labels, minlength=4)
    assert counts.tolist() == [4, 12, 12, 12]
    weights = balanced_class_weights(imbalanced, tiny(data_dir, tmp_path))
    n, k = counts.sum(), 4
    assert weights == pytest.approx({c: n / (k * counts[c]) for c in range(4)})
    assert sum(weights[c] * counts[c] for c in range(4)) == pytest.approx(n)
    assert balanced_class_weights(full, tiny(data_dir, tmp_path)) is None  # balanced: off
    config = tiny(data_dir, tmp_path, oversample=True)
    assert balanced_class_weights(imbalanced, config) is None  # oversampling already balances
    resampled = oversampled(imbalanced, config)
    assert np.bincount(resampled.labels).tolist() == [12, 12, 12, 12]
    assert {s.path for s in resampled.samples} == {s.path for s in imbalanced.samples}


def test_mixed_precision_label_smoothing_and_clipping_are_wired():
    with precision_policy(True):
        model = build_model(4, base="small_cnn", image_size=IMAGE, weights="none").model
    assert keras.config.dtype_policy().name == "float32"  # restored afterwards
    assert model.get_layer("head_dense1").compute_dtype == "float16"
    assert model.get_layer("head_dense1").variable_dtype == "float32"
    assert model.output.dtype == "float32"  # the softmax stays float32
    compile_model(model, TrainConfig(clipnorm=1.0, label_smoothing=0.1), 1e-3)
    assert isinstance(model.optimizer, keras.optimizers.LossScaleOptimizer)
    assert model.optimizer.inner_optimizer.clipnorm == 1.0
    assert model.loss.get_config()["label_smoothing"] == pytest.approx(0.1)


def test_distribution_strategies():
    assert make_strategy("none") is tf.distribute.get_strategy()
    assert make_strategy("auto").num_replicas_in_sync == 1
    with pytest.raises(ConfigError, match="TF_CONFIG"):
        make_strategy("multiworker")


# --------------------------------------------------------------------------- training


@pytest.fixture(scope="module")
def finished(data_dir, tmp_path_factory):
    """One complete tiny run (3 + 1 epochs), shared by the tests that only read it."""
    out = tmp_path_factory.mktemp("runs")
    return train(tiny(data_dir, out, stage1_epochs=3, stage2_epochs=1)), out


def test_training_run_directory_and_predictor_round_trip(data_dir, finished):
    result, _ = finished
    run = result.run_dir
    for name in ("model.keras", "config.json", "class_names.json", "history.csv",
                 "training_curves.png", "metrics.json", "environment.json", "COMPLETE"):
        assert (run / name).is_file(), name
    assert not (run / "backup").exists()
    assert not list(run.rglob("*.partial*"))

    losses = [float(row["loss"]) for row in history_rows(run)]
    assert [int(r["epoch"]) for r in history_rows(run)] == [0, 1, 2, 3]
    assert losses[-1] < losses[0]  # it learns

    config = json.loads((run / "config.json").read_text())
    assert config["class_names"] == ["glioma", "meningioma", "no_tumor", "pituitary"]
    assert config["preprocess"] == {"image_size": IMAGE, "pad_to_square": False,
                                    "normalization": "unit"}
    assert config["model"]["pretrained"] is False
    assert json.loads((run / "class_names.json").read_text()) == config["class_names"]
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["split"] == "test" and metrics["n_samples"] == 16
    assert set(metrics["per_class"]["glioma"]) == {"precision", "recall", "f1", "support"}
    assert np.array(metrics["confusion_matrix"]).sum() == 16
    assert metrics["accuracy"] == pytest.approx(result.metrics["accuracy"])
    env = json.loads((run / "environment.json").read_text())
    assert env["seed"] == 7 and env["tensorflow"] == tf.__version__

    predictor = Predictor.from_run(run)
    test_paths = discover_dataset(data_dir).subset("test").paths[:6]
    reference = keras.saving.load_model(run / "model.keras", compile=False).predict(
        preprocess_paths(test_paths, PreprocessConfig.from_dict(config["preprocess"])), verbose=0)
    np.testing.assert_allclose(predictor.predict_paths(test_paths), reference, atol=1e-5)


def test_resume_continues_from_the_last_completed_epoch(data_dir, tmp_path):
    config = tiny(data_dir, tmp_path, stage1_epochs=2, stage2_epochs=2)
    with pytest.raises(KeyboardInterrupt):  # killed after the first epoch of stage 1
        train(config, extra_callbacks=[Interrupt(at_epoch=0)])
    assert not (tmp_path / "run" / "COMPLETE").exists()
    resumed = train(config)
    assert resumed.resumed and resumed.epochs_run == {1: [1], 2: [2, 3]}

    config2 = tiny(data_dir, tmp_path, name="run2", stage1_epochs=2, stage2_epochs=2)
    with pytest.raises(KeyboardInterrupt):  # killed in stage 2, after global epoch 2
        train(config2, extra_callbacks=[Interrupt(at_epoch=2)])
    with pytest.raises(RunDirError, match="different settings.*batch_size"):
        train(tiny(data_dir, tmp_path, name="run2", stage1_epochs=2, stage2_epochs=2,
                   batch_size=8))
    resumed2 = train(config2)
    assert resumed2.epochs_run == {2: [3]}  # stage 1 is not repeated
    assert [int(r["epoch"]) for r in history_rows(resumed2.run_dir)] == [0, 1, 2, 3]
    assert resumed2.stage1_epochs == 2


def test_finished_runs_are_refused_unless_overwrite(data_dir, finished):
    result, out = finished
    config = tiny(data_dir, out, stage1_epochs=3, stage2_epochs=1)
    with pytest.raises(RunDirError, match="already holds a finished run.*--overwrite"):
        train(config)
    assert plan_run(result.run_dir, config.to_dict(), overwrite=True) == "overwrite"
    scratch = out / "scratch"
    scratch.mkdir()
    (scratch / "notes.txt").write_text("mine")
    with pytest.raises(RunDirError, match="not a run directory"):
        plan_run(scratch, config.to_dict(), overwrite=False)
    create_run(RunDir(scratch), "overwrite", {"config.json": {"train": {}}})
    assert sorted(p.name for p in scratch.iterdir()) == ["config.json"]


def test_same_seed_gives_the_same_metrics(data_dir, finished):
    first, out = finished
    second = train(tiny(data_dir, out, name="same-seed", stage1_epochs=3, stage2_epochs=1))
    assert [r["loss"] for r in first.history] == [r["loss"] for r in second.history]
    assert first.metrics["confusion_matrix"] == second.metrics["confusion_matrix"]
    assert first.metrics["accuracy"] == second.metrics["accuracy"]


def test_stage2_fine_tunes_top_layers_with_frozen_batchnorm(data_dir, tmp_path):
    """A 'pretrained' base (a local weights file): stage 1 frozen, stage 2 top layers only."""
    source = keras.applications.MobileNetV2(include_top=False, weights=None, alpha=0.35,
                                            input_shape=(IMAGE, IMAGE, 3))
    weights = tmp_path / "mobilenet_no_top.weights.h5"
    source.save_weights(weights)
    result = train(tiny(data_dir, tmp_path, base_model="mobilenetv2", alpha=0.35,
                        weights=str(weights), stage1_epochs=1, stage2_epochs=1,
                        fine_tune_layers=12, fine_tune_learning_rate=1e-2))
    assert result.pretrained
    model = keras.saving.load_model(result.run_dir / "model.keras", compile=False)
    layers_ = base_layers(model)
    changed = []
    for layer in layers_:
        original = source.get_layer(layer.name)
        if isinstance(layer, keras.layers.BatchNormalization):  # frozen in both stages
            np.testing.assert_array_equal(layer.moving_mean.numpy(),
                                          original.moving_mean.numpy(), err_msg=layer.name)
            np.testing.assert_array_equal(layer.gamma.numpy(), original.gamma.numpy())
        elif layer.weights and not all(np.array_equal(a.numpy(), b.numpy())
                                       for a, b in zip(layer.weights, original.weights,
                                                       strict=True)):
            changed.append(layer.name)
    top = {layer.name for layer in layers_[-12:]}
    assert changed and set(changed) <= top  # only the unfrozen top layers moved


# --------------------------------------------------------------------------- command line


def test_cli_quick_end_to_end_with_synthetic_data(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("NEUROPATHOLOGY_CACHE", str(tmp_path / "cache"))
    code = cli_main(["train", "--quick", "--synthetic-per-class", "10",
                     "--synthetic-test-per-class", "3", "--synthetic-size", "32",
                     "--image-size", "32", "--stage1-epochs", "1", "--stage2-epochs", "1",
                     "--batch-size", "10", "--output-dir", str(tmp_path / "runs"),
                     "--name", "quick", "--no-tensorboard", "--verbose", "0"])
    out = capsys.readouterr().out
    assert code == 0
    assert "test accuracy" in out and str(tmp_path / "runs" / "quick") in out
    assert (tmp_path / "runs" / "quick" / "COMPLETE").is_file()
    assert any((tmp_path / "cache").iterdir())  # the synthetic set went to the cache


def _cli(tmp_path: Path, *args: str) -> int:
    return cli_main(["train", "--output-dir", str(tmp_path / "runs"), "--name", "bad",
                     "--no-tensorboard", "--verbose", "0", *args])


def test_cli_bad_input_fails_clearly_and_writes_nothing(tmp_path, data_dir, capsys, monkeypatch):
    no_classes = tmp_path / "empty"
    no_classes.mkdir()
    (no_classes / "readme.txt").write_text("no images here")
    assert _cli(tmp_path, "--data-dir", str(no_classes), "--base-model", "small_cnn") == 2
    assert "error:" in capsys.readouterr().err

    config_file = tmp_path / "bad.yaml"
    config_file.write_text("base_model: vgg16\n")
    assert _cli(tmp_path, "--config", str(config_file)) == 2
    assert "vgg16" in capsys.readouterr().err

    assert _cli(tmp_path, "--data-dir", str(data_dir), "--warmup-epochs", "1") == 2
    assert "--lr-schedule cosine" in capsys.readouterr().err

    from keras.src.backend import config as keras_config
    from keras.src.utils import file_utils

    def no_network(*args, **kwargs):
        raise urllib.error.URLError("simulated: no network")

    monkeypatch.setattr(keras_config, "_KERAS_DIR", str(tmp_path / "keras"))
    monkeypatch.setattr(file_utils, "urlretrieve", no_network)
    assert _cli(tmp_path, "--data-dir", str(data_dir), "--weights", "imagenet",
                "--alpha", "0.35", "--image-size", "96", "--dedup-distance", "none") == 2
    assert "--weights /path/to/" in capsys.readouterr().err
    assert not (tmp_path / "runs").exists()  # nothing half-written

    with pytest.raises(SystemExit):  # argparse rejects an unknown base model itself
        _cli(tmp_path, "--base-model", "vgg16")
