"""``neuropathology evaluate`` end to end on a tiny trained run, and its bad-input errors."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import keras
import numpy as np
import pytest

from neuropathology.cli import main as cli_main
from neuropathology.data.discovery import discover_dataset
from neuropathology.data.synthetic import write_dataset
from neuropathology.evaluation.calibration import apply_temperature
from neuropathology.evaluation.cli import main as evaluate_main
from neuropathology.predictor import Predictor

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """A finished tiny run (small CNN, 32 px, 1 + 1 epochs) on the cached synthetic data."""
    root = tmp_path_factory.mktemp("evalrun")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("NEUROPATHOLOGY_CACHE", str(root / "cache"))
        code = cli_main(["train", "--quick", "--synthetic-per-class", "12",
                         "--synthetic-test-per-class", "4", "--synthetic-size", "32",
                         "--image-size", "32", "--stage1-epochs", "1", "--stage2-epochs", "1",
                         "--val-fraction", "0.3", "--batch-size", "12",
                         "--output-dir", str(root / "runs"), "--name", "tiny",
                         "--no-tensorboard", "--verbose", "0"])
        assert code == 0
        yield root / "runs" / "tiny"


def pristine_copy(run: Path, dest: Path) -> Path:
    """The run as training left it (no calibration, no evaluation)."""
    shutil.copytree(run, dest, ignore=shutil.ignore_patterns("calibration.json", "evaluation*"))
    return dest


def test_evaluate_end_to_end(run, tmp_path, capsys):
    training_metrics = (run / "metrics.json").read_text()
    code = cli_main(["evaluate", "--run", str(run), "--tta", "--mc-dropout", "2",
                     "--compare", str(run), "--n-boot", "100"])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    assert "macro F1" in captured.out and "Report:" in captured.out
    out = run / "evaluation"
    metrics = json.loads((out / "metrics.json").read_text())
    for key in ("accuracy", "macro_f1", "per_class", "confusion_matrix", "roc_auc", "ece",
                "ece_calibrated", "temperature", "n", "ci95"):
        assert key in metrics, key
    # the same test split the trainer evaluated, rebuilt from config.json
    trained = json.loads(training_metrics)
    assert metrics["n"] == trained["n_samples"] == 16
    assert metrics["confusion_matrix"] == trained["confusion_matrix"]
    assert metrics["accuracy"] == pytest.approx(trained["accuracy"])
    assert (run / "metrics.json").read_text() == training_metrics  # not clobbered
    assert metrics["calibrated"]["accuracy"] == pytest.approx(metrics["accuracy"])
    for name in ("accuracy", "macro_f1"):
        ci = metrics["ci95"][name]
        assert ci["low"] <= ci["estimate"] <= ci["high"]
    assert metrics["compare"]["mcnemar"]["p_value"] == 1.0  # a run against itself
    assert set(metrics["tta"]["delta"]) >= {"accuracy", "log_loss"}
    assert metrics["mc_dropout"]["passes"] == 2
    for figure in ("confusion_matrix", "roc", "pr", "reliability", "per_class",
                   "risk_coverage"):
        assert (out / "figures" / f"{figure}.png").stat().st_size > 1000, figure
    assert ("mistakes.png" in {p.name for p in (out / "figures").iterdir()}) == bool(
        metrics["most_confident_mistakes"])
    report = (out / "report.md").read_text()
    assert "![reliability diagrams](figures/reliability.png)" in report
    assert "<img src='figures/roc.png'" in (out / "report.html").read_text()
    assert not list(run.rglob("*.partial*"))

    # calibration.json is in the run, and the Predictor applies it
    temperature = json.loads((run / "calibration.json").read_text())["temperature"]
    assert temperature == pytest.approx(metrics["temperature"])
    paths = discover_dataset(metrics["data_root"]).paths[:5]
    raw = Predictor.from_run(run, calibrated=False).predict_paths(paths)
    calibrated = Predictor.from_run(run)
    assert calibrated.temperature == pytest.approx(temperature)
    np.testing.assert_allclose(calibrated.predict_paths(paths), apply_temperature(raw,
                                                                                  temperature),
                               atol=1e-5)


def _fails(capsys, *args: str) -> str:
    code = evaluate_main(["--n-boot", "10", *args])
    captured = capsys.readouterr()
    assert code == 2
    assert "Traceback" not in captured.err
    return captured.err


def test_missing_run_files(run, tmp_path, capsys):
    assert "does not exist" in _fails(capsys, "--run", str(tmp_path / "nope"))
    broken = pristine_copy(run, tmp_path / "broken")
    (broken / "model.keras").unlink()
    err = _fails(capsys, "--run", str(broken))
    assert str(broken / "model.keras") in err and "finish it" in err
    assert not (broken / "evaluation").exists()
    assert not (broken / "calibration.json").exists()


def test_classes_differ_lists_both_sets(run, tmp_path, capsys):
    data = write_dataset(tmp_path / "other", per_class=6, test_per_class=2, size=32, seed=1)
    for split in ("Training", "Testing"):
        (data / split / "pituitary").rename(data / split / "ependymoma")
    fresh = pristine_copy(run, tmp_path / "fresh")
    err = _fails(capsys, "--run", str(fresh), "--data-dir", str(data))
    assert "ependymoma" in err and "pituitary" in err and "differ" in err
    assert not (fresh / "evaluation").exists() and not (fresh / "calibration.json").exists()


def test_empty_split(run, tmp_path, capsys):
    data = write_dataset(tmp_path / "few", per_class=1, test_per_class=0, size=32, seed=2)
    err = _fails(capsys, "--run", str(run), "--data-dir", str(data), "--out",
                 str(tmp_path / "out"))
    assert "split" in err and "empty" in err
    assert not (tmp_path / "out").exists()


def test_nan_predictions(run, tmp_path, capsys):
    broken = pristine_copy(run, tmp_path / "nan")
    model = keras.saving.load_model(broken / "model.keras", compile=False)
    last = [layer for layer in model.layers if layer.get_weights()][-1]
    last.set_weights([np.full_like(w, np.nan) for w in last.get_weights()])
    (broken / "model.keras").unlink()
    model.save(broken / "model.keras")
    err = _fails(capsys, "--run", str(broken))
    assert "NaN" in err and "model.keras" in err
    assert not (broken / "evaluation").exists() and not (broken / "calibration.json").exists()


def test_evaluate_model_script_is_the_same_command():
    root = Path(__file__).resolve().parents[1]
    result = subprocess.run([sys.executable, str(root / "evaluate_model.py"), "--help"],
                            capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stderr
    for flag in ("--run", "--data-dir", "--split", "--tta", "--compare", "--out",
                 "--mc-dropout"):
        assert flag in result.stdout


def test_same_classes_in_another_order_are_remapped_to_the_model_columns(tmp_path):
    from neuropathology.evaluation.evaluate import EvaluationError, check_classes

    remap = check_classes(("b", "a", "c"), ("a", "b", "c"), tmp_path, tmp_path)
    assert remap.tolist() == [1, 0, 2]  # data label 0 ("b") is model column 1
    with pytest.raises(EvaluationError, match=r"only in data: \['d'\]; only in model: \['c'\]"):
        check_classes(("a", "b", "d"), ("a", "b", "c"), tmp_path, tmp_path)
