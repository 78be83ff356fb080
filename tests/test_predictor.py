"""The Predictor: the training preprocessing, batching, a run directory written by hand."""

from __future__ import annotations

import json

import keras
import numpy as np
import pytest

from neuropathology.data.data_loader import PreprocessConfig, preprocess_arrays, preprocess_paths
from neuropathology.data.io import read_image
from neuropathology.data.synthetic import write_dataset
from neuropathology.models import build_model
from neuropathology.predictor import Predictor, RunLoadError

CLASSES = ("glioma", "meningioma", "no_tumor", "pituitary")


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    root = tmp_path_factory.mktemp("pred")
    data = write_dataset(root / "data", per_class=2, test_per_class=0, size=40, seed=3)
    paths = sorted(data.glob("Training/*/*.png"))
    preprocess = PreprocessConfig(image_size=32, normalization="unit")
    model = build_model(4, base="small_cnn", image_size=32, weights="none",
                        dense_units=(8,), dropout=(0.0,)).model
    run = root / "run"
    run.mkdir()
    model.save(run / "model.keras")
    (run / "config.json").write_text(json.dumps(
        {"class_names": list(CLASSES), "preprocess": preprocess.to_dict()}))
    return model, preprocess, paths, run


def test_predict_paths_equals_the_model_on_the_shared_preprocessing(setup):
    model, preprocess, paths, _ = setup
    predictor = Predictor(model, CLASSES, preprocess, batch_size=3)  # 8 files -> 3 batches
    probs = predictor.predict_paths(paths)
    reference = model.predict(preprocess_paths(paths, preprocess), verbose=0)
    assert probs.shape == (len(paths), 4)
    np.testing.assert_allclose(probs, reference, atol=1e-5)
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, atol=1e-5)
    assert predictor.labels(probs) == [CLASSES[k] for k in reference.argmax(axis=1)]


def test_predict_arrays_matches_files_and_accepts_one_image(setup):
    model, preprocess, paths, _ = setup
    predictor = Predictor(model, CLASSES, preprocess)
    image = read_image(paths[0])  # uint8 (H, W, 3), exactly what the file decodes to
    one = predictor.predict_arrays(image)
    assert one.shape == (1, 4)
    np.testing.assert_allclose(one, predictor.predict_paths(paths[:1]), atol=1e-6)
    grey = image[..., 0]
    np.testing.assert_allclose(predictor.predict_arrays(grey),
                               model.predict(preprocess_arrays(grey, preprocess), verbose=0),
                               atol=1e-5)
    assert predictor.predict_paths([]).shape == (0, 4)


def test_from_run_restores_model_preprocessing_and_class_names(setup):
    model, preprocess, paths, run = setup
    loaded = Predictor.from_run(run)
    assert loaded.class_names == CLASSES
    assert loaded.preprocess == preprocess
    np.testing.assert_allclose(loaded.predict_paths(paths),
                               Predictor(model, CLASSES, preprocess).predict_paths(paths),
                               atol=1e-5)
    assert isinstance(loaded.model, keras.Model)


def test_from_run_on_a_missing_or_unfinished_directory_names_the_fix(tmp_path):
    with pytest.raises(RunLoadError, match="not a finished run directory"):
        Predictor.from_run(tmp_path / "nope")
    (tmp_path / "half").mkdir()
    (tmp_path / "half" / "config.json").write_text("{}")
    with pytest.raises(RunLoadError, match="model.keras not found"):
        Predictor.from_run(tmp_path / "half")
