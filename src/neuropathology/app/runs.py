"""Finding run directories and reading the facts the app shows about each one.

A run is usable by the app when it holds ``COMPLETE`` (training finished), ``model.keras`` and
``config.json``. ``neuropathology evaluate`` adds ``calibration.json`` (the Predictor then
applies the temperature) and ``evaluation/`` (metrics.json and figures/*.png).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

#: Environment variable naming the folder that holds run directories (default ``runs``).
RUNS_ENV = "NEUROPATHOLOGY_RUNS"
DEFAULT_RUNS_DIR = "runs"

#: Evaluation figures shown on the Model page, in order: file name -> caption.
EVALUATION_FIGURES: dict[str, str] = {
    "confusion_matrix.png": "Confusion matrix (test split)",
    "reliability.png": "Reliability diagrams, before and after temperature scaling",
    "roc.png": "ROC curves (one-vs-rest)",
    "per_class.png": "Per-class precision, recall and F1",
    "risk_coverage.png": "Risk-coverage (selective prediction)",
}


def default_runs_dir() -> Path:
    """``$NEUROPATHOLOGY_RUNS`` if set, else ``runs`` (relative to the working directory)."""
    return Path(os.environ.get(RUNS_ENV) or DEFAULT_RUNS_DIR)


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


@dataclass(frozen=True)
class RunInfo:
    """What the app shows about one finished run directory."""

    path: Path
    config: dict[str, Any] = field(repr=False)
    metrics: dict[str, Any] | None = field(repr=False)
    evaluation: dict[str, Any] | None = field(repr=False)

    @property
    def name(self) -> str:
        return self.path.name

    @property
    def class_names(self) -> list[str]:
        return list(self.config.get("class_names", []))

    @property
    def model_facts(self) -> dict[str, Any]:
        return dict(self.config.get("model", {}))

    @property
    def pretrained(self) -> bool:
        return bool(self.model_facts.get("pretrained", False))

    @property
    def base_model(self) -> str:
        return str(self.model_facts.get("base_model", "unknown"))

    @property
    def image_size(self) -> int | None:
        return self.config.get("preprocess", {}).get("image_size")

    @property
    def synthetic_data(self) -> bool:
        return bool(self.config.get("data", {}).get("synthetic", False))

    @property
    def calibrated(self) -> bool:
        return (self.path / "calibration.json").is_file()

    @property
    def evaluation_dir(self) -> Path:
        return self.path / "evaluation"

    @property
    def test_accuracy(self) -> float | None:
        return None if self.metrics is None else self.metrics.get("accuracy")

    @property
    def test_macro_f1(self) -> float | None:
        return None if self.metrics is None else self.metrics.get("macro_f1")

    def figures(self) -> list[tuple[Path, str]]:
        """The evaluation figures that exist, with captions (empty if never evaluated)."""
        folder = self.evaluation_dir / "figures"
        return [(folder / name, caption) for name, caption in EVALUATION_FIGURES.items()
                if (folder / name).is_file()]

    def label(self) -> str:
        """One line for the model picker: name, base, pretrained, test accuracy."""
        acc = "n/a" if self.test_accuracy is None else f"{self.test_accuracy:.3f}"
        weights = "pretrained" if self.pretrained else "from scratch"
        return f"{self.name} - {self.base_model}, {weights}, test acc {acc}"

    def cache_key(self) -> str:
        """Changes when the run's model or calibration changes (for the model cache)."""
        parts = [str(self.path.resolve())]
        for name in ("model.keras", "calibration.json"):
            p = self.path / name
            parts.append(str(p.stat().st_mtime_ns) if p.is_file() else "-")
        return "|".join(parts)


def is_finished_run(path: Path) -> bool:
    return all((path / name).is_file() for name in ("COMPLETE", "model.keras", "config.json"))


def load_run_info(path: str | os.PathLike[str]) -> RunInfo | None:
    """The facts of one run directory, or None if it is not a finished run."""
    run = Path(path)
    if not is_finished_run(run):
        return None
    config = _read_json(run / "config.json")
    if not isinstance(config, dict):
        return None
    metrics = _read_json(run / "metrics.json")
    evaluation = _read_json(run / "evaluation" / "metrics.json")
    return RunInfo(run, config, metrics if isinstance(metrics, dict) else None,
                   evaluation if isinstance(evaluation, dict) else None)


def discover_runs(root: str | os.PathLike[str]) -> list[RunInfo]:
    """Finished runs in ``root`` (or ``root`` itself if it is a run), newest first.

    Unfinished (interrupted) runs and unrelated folders are skipped, not reported as errors.
    """
    base = Path(root)
    if not base.is_dir():
        return []
    if is_finished_run(base):
        info = load_run_info(base)
        return [info] if info else []
    found = [load_run_info(p) for p in base.iterdir() if p.is_dir()]
    runs = [r for r in found if r is not None]
    return sorted(runs, key=lambda r: (r.path / "COMPLETE").stat().st_mtime, reverse=True)
