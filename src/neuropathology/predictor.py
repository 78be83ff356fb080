"""The Predictor: a trained model plus exactly the preprocessing it was trained with.

Every consumer of a trained model - test evaluation, the evaluation CLI, Grad-CAM, the app -
goes through this class, so they all see the same tensors the model saw in training:
``data_loader.preprocess_paths`` / ``preprocess_arrays`` with the run's saved
``PreprocessConfig`` (image size, padding, the base's normalisation). Nothing here
re-declares preprocessing.

Speed: the forward pass is one ``tf.function`` traced once for a (None, S, S, 3) float32
input. A naive eager ``model(x)`` call re-dispatches every layer from Python on each call;
the traced graph runs as a single op, which matters for the single-image latency of an app
(see ``benchmarks/train_throughput.py``).

Calibration: when the run holds ``calibration.json`` (written by ``neuropathology evaluate``),
``from_run`` reads its temperature T and every prediction becomes softmax(log(p) / T). The
model ends in a softmax, so log p equals the logits minus a per-row constant, which cancels in
the softmax: this is exactly temperature scaling of the logits (see
``neuropathology.evaluation.calibration``). T > 0 never changes the predicted class.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import tensorflow as tf

from neuropathology.data.data_loader import PreprocessConfig, preprocess_arrays, preprocess_paths
from neuropathology.evaluation.calibration import apply_temperature, load_temperature

PathLike = str | os.PathLike[str]


class RunLoadError(FileNotFoundError):
    """A run directory is missing or incomplete; the message names the fix."""


class Predictor:
    """Probabilities for image files or arrays, with the training preprocessing.

    >>> predictor = Predictor.from_run("runs/20250131-142530_mobilenetv2")   # doctest: +SKIP
    >>> probs = predictor.predict_paths(["scan.png"])                       # doctest: +SKIP
    >>> predictor.class_names[int(probs[0].argmax())]                        # doctest: +SKIP
    """

    def __init__(self, model: Any, class_names: Sequence[str], preprocess: PreprocessConfig,
                 *, batch_size: int = 32, temperature: float = 1.0) -> None:
        if not temperature > 0:
            raise ValueError(f"temperature must be > 0, got {temperature}")
        self.model = model
        self.temperature = float(temperature)
        self.class_names: tuple[str, ...] = tuple(class_names)
        self.preprocess = preprocess
        self.batch_size = int(batch_size)
        size = preprocess.image_size
        self._forward = tf.function(
            lambda x: self.model(x, training=False),
            input_signature=[tf.TensorSpec([None, size, size, 3], tf.float32)],
        )

    @classmethod
    def from_run(cls, run_dir: PathLike, *, batch_size: int = 32,
                 calibrated: bool = True) -> Predictor:
        """Load ``model.keras``, the preprocessing and the class names of a run directory.

        ``calibrated``: apply the temperature of the run's ``calibration.json`` if it has one
        (``False``: the raw model probabilities, as the evaluation needs to fit T).
        """
        import keras

        run = Path(run_dir)
        model_path, config_path = run / "model.keras", run / "config.json"
        for path in (model_path, config_path):
            if not path.is_file():
                raise RunLoadError(
                    f"{path} not found: {run} is not a finished run directory. Pass the "
                    "folder `neuropathology train` printed at the end (e.g. runs/<name>), or "
                    "rerun the interrupted training command to finish it")
        config = json.loads(config_path.read_text(encoding="utf-8"))
        temperature = (load_temperature(run) if calibrated else None) or 1.0
        model = keras.saving.load_model(model_path, compile=False)
        return cls(model, config["class_names"], PreprocessConfig.from_dict(config["preprocess"]),
                   batch_size=batch_size, temperature=temperature)

    # -- prediction ------------------------------------------------------------------------

    def predict_batch(self, images: np.ndarray) -> np.ndarray:
        """Already preprocessed float32 (N, S, S, 3) -> probabilities (N, C) in one call.

        With a temperature T != 1: softmax(log(p) / T) of the model's probabilities p.
        """
        if len(images) == 0:
            return np.zeros((0, len(self.class_names)), np.float32)
        probs = self._forward(tf.convert_to_tensor(images, tf.float32)).numpy()
        if self.temperature == 1.0:
            return probs
        return apply_temperature(probs, self.temperature).astype(np.float32)

    def predict_paths(self, paths: Sequence[PathLike], *, progress: bool = False) -> np.ndarray:
        """Image files -> probabilities (N, C), columns in ``class_names`` order.

        Files are read and preprocessed ``batch_size`` at a time, so memory stays bounded
        for any number of files. An unreadable file raises ``ImageReadError`` naming it.
        """
        paths = list(paths)
        chunks = range(0, len(paths), self.batch_size)
        if progress and len(chunks) > 1:
            from tqdm.auto import tqdm

            chunks = tqdm(chunks, desc="predicting", unit="batch")
        out = [self.predict_batch(preprocess_paths(paths[i:i + self.batch_size], self.preprocess))
               for i in chunks]
        return np.concatenate(out) if out else np.zeros((0, len(self.class_names)), np.float32)

    def predict_arrays(self, images: np.ndarray | Sequence[np.ndarray]) -> np.ndarray:
        """In-memory image(s) (uint8 or 0-255 floats; see ``preprocess_arrays``) -> (N, C)."""
        return self.predict_batch(preprocess_arrays(images, self.preprocess))

    def labels(self, probabilities: np.ndarray) -> list[str]:
        """The most probable class name per row of ``probabilities``."""
        return [self.class_names[int(k)] for k in np.asarray(probabilities).argmax(axis=1)]
