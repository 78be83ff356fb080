"""The run directory: everything needed to reuse, inspect or resume one training run.

Layout of ``<output-dir>/<name>/``::

    config.json          fully resolved settings ("train"), preprocessing, class names, model
    class_names.json     the label order of the model's outputs
    environment.json     Python/TF/Keras/NumPy versions, platform, CPU/GPU, seed, git commit
    history.csv          one row per epoch of both stages (Keras CSVLogger)
    training_curves.png  loss / accuracy / macro-F1 per epoch, stage boundary marked
    model.keras          the final model (best validation epoch of the last stage)
    metrics.json         held-out test split metrics (evaluation.metrics)
    COMPLETE             written last: its presence means every file above is final
    calibration.json     temperature T fitted on val by `neuropathology evaluate` (the
                         Predictor applies it); evaluation/ holds that command's report
    state.json           progress between stages (which stage finished, after how many epochs)
    checkpoints/         best weights per stage (atomic) and the weights each stage ended with
    backup/stage<k>/     keras.callbacks.BackupAndRestore state of an unfinished stage
    logs/                TensorBoard event files

Every file is written atomically (temporary file + rename), so an interrupted run never
leaves a half-written ``model.keras`` (or any other file) that looks complete.

New run, resume and overwrite - how they interact (:func:`plan_run`):

* the directory does not exist (or is empty)    -> a new run;
* it holds a finished run (``COMPLETE`` present) -> refused, unless ``--overwrite``, which
  deletes it and starts again;
* it holds an interrupted run (``config.json`` but no ``COMPLETE``) -> **resumed** when the
  settings are the same (restarting the same command continues from the last completed
  epoch), refused with the list of differing settings otherwise; ``--overwrite`` starts afresh;
* anything else (a folder with unrelated files) -> refused, unless ``--overwrite``.

The directory is created only after the data and the model have been loaded successfully,
so a failure before training starts leaves nothing behind.
"""

from __future__ import annotations

import json
import os
import platform
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from neuropathology.utils.helpers import atomic_write_json

#: Settings that may differ between an interrupted run and its resumption.
RESUME_IGNORED_KEYS = frozenset({"overwrite", "verbose"})


class RunDirError(RuntimeError):
    """The run directory cannot be used as asked; the message names the fix."""


@dataclass(frozen=True)
class RunDir:
    """Paths of one run directory (nothing is created by constructing it)."""

    path: Path

    @property
    def config(self) -> Path:
        return self.path / "config.json"

    @property
    def class_names(self) -> Path:
        return self.path / "class_names.json"

    @property
    def environment(self) -> Path:
        return self.path / "environment.json"

    @property
    def history(self) -> Path:
        return self.path / "history.csv"

    @property
    def curves(self) -> Path:
        return self.path / "training_curves.png"

    @property
    def model(self) -> Path:
        return self.path / "model.keras"

    @property
    def metrics(self) -> Path:
        return self.path / "metrics.json"

    @property
    def complete_marker(self) -> Path:
        return self.path / "COMPLETE"

    @property
    def state(self) -> Path:
        return self.path / "state.json"

    @property
    def logs(self) -> Path:
        return self.path / "logs"

    def backup_dir(self, stage: int) -> Path:
        """Where BackupAndRestore keeps the state of an unfinished ``stage``."""
        return self.path / "backup" / f"stage{stage}"

    def best_weights(self, stage: int) -> Path:
        """Best-validation-epoch weights of ``stage`` (written by the checkpoint callback)."""
        return self.path / "checkpoints" / f"stage{stage}_best.weights.h5"

    def stage_weights(self, stage: int) -> Path:
        """The weights ``stage`` ended with (the next stage starts from them)."""
        return self.path / "checkpoints" / f"stage{stage}_final.weights.h5"

    # -- state ---------------------------------------------------------------------------

    def is_complete(self) -> bool:
        return self.complete_marker.is_file()

    def read_state(self) -> dict[str, Any]:
        """Progress recorded between stages (empty for a fresh run)."""
        if not self.state.is_file():
            return {}
        return json.loads(self.state.read_text(encoding="utf-8"))

    def write_state(self, **updates: Any) -> None:
        state = self.read_state()
        state.update(updates)
        atomic_write_json(self.state, state)

    def mark_complete(self, summary: dict[str, Any]) -> None:
        """Write ``COMPLETE`` last: from now on the run is final (and will not be resumed)."""
        atomic_write_json(self.complete_marker, summary)
        shutil.rmtree(self.path / "backup", ignore_errors=True)


def default_run_name(base_model: str) -> str:
    """A sortable, unique-enough default name: ``20250131-142530_mobilenetv2``."""
    return f"{time.strftime('%Y%m%d-%H%M%S')}_{base_model}"


def plan_run(path: Path, train_settings: dict[str, Any], *, overwrite: bool) -> str:
    """Decide how to use ``path``: ``"new"``, ``"resume"`` or ``"overwrite"`` (module doc).

    Reads only; nothing is created or deleted here, so a refusal has no side effects.
    """
    run = RunDir(Path(path))
    if not run.path.exists() or (run.path.is_dir() and not any(run.path.iterdir())):
        return "new"
    if not run.path.is_dir():
        raise RunDirError(f"{run.path} exists and is not a directory; choose another --name "
                          "or --output-dir")
    if overwrite:
        return "overwrite"
    if run.is_complete():
        raise RunDirError(f"run directory {run.path} already holds a finished run; choose "
                          "another --name, or pass --overwrite to replace it")
    if not run.config.is_file():
        raise RunDirError(f"{run.path} exists and is not a run directory (no config.json); "
                          "choose another --name, or pass --overwrite to replace its contents")
    saved = json.loads(run.config.read_text(encoding="utf-8")).get("train", {})
    differences = _differences(saved, train_settings)
    if differences:
        raise RunDirError(
            f"{run.path} holds an interrupted run with different settings ("
            + "; ".join(differences) + "). To resume it, rerun with its settings "
            f"(--config {run.config}); to start again, pass --overwrite or another --name")
    return "resume"


def create_run(run: RunDir, mode: str, documents: dict[str, Any]) -> None:
    """Create (or, for ``"overwrite"``, recreate) ``run`` and write its JSON ``documents``.

    ``documents`` maps file names (``config.json`` ...) to JSON-able objects. For a resumed
    run they are rewritten with identical settings (the environment may have changed).
    """
    if mode == "overwrite" and run.path.exists():
        shutil.rmtree(run.path)
    run.path.mkdir(parents=True, exist_ok=True)
    for name, obj in documents.items():
        atomic_write_json(run.path / name, obj)


def environment_info(seed: int, strategy_name: str | None = None) -> dict[str, Any]:
    """Versions, hardware, seed and git commit: what is needed to explain a result later."""
    import keras
    import numpy as np
    import tensorflow as tf

    gpus = [d.name for d in tf.config.list_physical_devices("GPU")]
    build = tf.sysconfig.get_build_info()
    return {
        "python": sys.version.split()[0],
        "tensorflow": tf.__version__,
        "keras": keras.__version__,
        "numpy": np.__version__,
        "platform": platform.platform(),
        "machine": platform.machine(),
        "cpu": _cpu_model(),
        "cpu_count": os.cpu_count(),
        "gpus": gpus,
        "cuda_build": build.get("cuda_version"),
        "cudnn_build": build.get("cudnn_version"),
        "distribution_strategy": strategy_name,
        "seed": seed,
        "git": _git_info(),
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }


def _differences(saved: dict[str, Any], current: dict[str, Any]) -> list[str]:
    keys = (set(saved) | set(current)) - RESUME_IGNORED_KEYS
    return [f"{k}: saved {saved.get(k)!r}, now {current.get(k)!r}"
            for k in sorted(keys) if saved.get(k) != current.get(k)]


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _git_info() -> dict[str, Any] | None:
    """Commit and dirty flag of the repository holding this package (None outside git)."""
    where = Path(__file__).resolve().parent
    try:
        commit = subprocess.run(["git", "-C", str(where), "rev-parse", "HEAD"],
                                capture_output=True, text=True, timeout=5, check=True).stdout
        status = subprocess.run(["git", "-C", str(where), "status", "--porcelain"],
                                capture_output=True, text=True, timeout=10, check=True).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    return {"commit": commit.strip(), "dirty": bool(status.strip())}
