"""Temperature scaling, bootstrap / McNemar, entropy, risk-coverage, MC dropout and TTA."""

from __future__ import annotations

import json

import keras
import numpy as np
import pytest
from scipy.special import softmax
from scipy.stats import binom, chi2

from neuropathology.data.data_loader import PreprocessConfig, load_image, normalize
from neuropathology.evaluation.calibration import (
    CalibrationError,
    apply_temperature,
    fit_temperature,
    load_temperature,
    nll,
    probs_to_logits,
    save_calibration,
)
from neuropathology.evaluation.metrics import expected_calibration_error
from neuropathology.evaluation.statistics import bootstrap_ci, mcnemar
from neuropathology.evaluation.uncertainty import (
    aurc,
    batchnorm_frozen,
    mc_dropout_predict,
    mutual_information,
    predictive_entropy,
    risk_coverage_curve,
    tta_predict_paths,
    tta_views,
)
from neuropathology.models import build_model
from neuropathology.predictor import Predictor


def overconfident_logits(n: int, true_t: float = 2.5, c: int = 4, seed: int = 0):
    """Logits z whose labels are drawn from softmax(z / true_t): T* should be ~true_t."""
    rng = np.random.default_rng(seed)
    logits = rng.normal(0, 3.0, size=(n, c))
    p = softmax(logits / true_t, axis=1)
    labels = (rng.random(n)[:, None] > np.cumsum(p, axis=1)).sum(axis=1)
    return logits, labels


# --------------------------------------------------------------------------- temperature


def test_temperature_recovers_the_true_temperature_and_helps_held_out_data():
    logits, labels = overconfident_logits(6000)
    fit_z, fit_y, test_z, test_y = logits[:3000], labels[:3000], logits[3000:], labels[3000:]
    t = fit_temperature(fit_z, fit_y)
    assert t == pytest.approx(2.5, rel=0.1)
    assert nll(test_z, test_y, t) < nll(test_z, test_y, 1.0) - 0.05  # held-out NLL drops
    # it is the minimum: nearby temperatures are no better on the fitting data
    assert nll(fit_z, fit_y, t) <= min(nll(fit_z, fit_y, t * 0.95), nll(fit_z, fit_y, t * 1.05))
    probs = softmax(test_z, axis=1)
    calibrated = apply_temperature(probs, t)
    np.testing.assert_array_equal(calibrated.argmax(axis=1), probs.argmax(axis=1))  # accuracy
    assert (expected_calibration_error(test_y, calibrated)
            < 0.5 * expected_calibration_error(test_y, probs))


def test_log_probabilities_are_logits_up_to_a_row_constant():
    logits, labels = overconfident_logits(500, seed=1)
    probs = softmax(logits, axis=1)
    np.testing.assert_allclose(apply_temperature(probs, 1.7), softmax(logits / 1.7, axis=1),
                               atol=1e-9)
    assert fit_temperature(probs_to_logits(probs), labels) == pytest.approx(
        fit_temperature(logits, labels), rel=1e-3)
    np.testing.assert_allclose(apply_temperature(probs, 1.0), probs, atol=1e-12)
    # an under-confident model gets T < 1
    under, under_y = overconfident_logits(3000, true_t=0.5, seed=2)
    assert fit_temperature(under, under_y) < 0.7


def test_calibration_file_round_trip_and_bad_file(tmp_path):
    assert load_temperature(tmp_path) is None
    save_calibration(tmp_path, 1.5, {"n_val": 10})
    assert load_temperature(tmp_path) == 1.5
    assert json.loads((tmp_path / "calibration.json").read_text())["fitted_on"] == "val"
    (tmp_path / "calibration.json").write_text('{"temperature": -1}')
    with pytest.raises(CalibrationError, match="calibration.json.*> 0"):
        load_temperature(tmp_path)
    (tmp_path / "calibration.json").write_text("{}")
    with pytest.raises(CalibrationError, match="delete it"):
        load_temperature(tmp_path)


def test_predictor_applies_the_temperature():
    model = build_model(3, base="small_cnn", image_size=32, weights="none",
                        dense_units=(8,), dropout=(0.0,)).model
    config = PreprocessConfig(image_size=32, normalization="unit")
    images = np.random.default_rng(0).random((5, 32, 32, 3)).astype(np.float32)
    raw = Predictor(model, "abc", config).predict_batch(images)
    hot = Predictor(model, "abc", config, temperature=0.2).predict_batch(images)
    np.testing.assert_allclose(hot, apply_temperature(raw, 0.2), atol=1e-5)
    np.testing.assert_array_equal(hot.argmax(axis=1), raw.argmax(axis=1))
    with pytest.raises(ValueError, match="temperature"):
        Predictor(model, "abc", config, temperature=0.0)


# --------------------------------------------------------------------------- statistics


def test_bootstrap_ci_covers_the_estimate_and_shrinks_with_n():
    rng = np.random.default_rng(0)
    probs = rng.dirichlet(np.ones(3), size=400)
    labels = np.where(rng.random(400) < 0.7, probs.argmax(1), rng.integers(0, 3, 400))
    ci = bootstrap_ci(labels, probs, n_boot=200, seed=1)
    for name in ("accuracy", "macro_f1", "macro_auc"):
        assert ci[name]["low"] <= ci[name]["estimate"] <= ci[name]["high"], name
        assert ci[name]["high"] - ci[name]["low"] > 0
    assert ci["accuracy"]["estimate"] == pytest.approx(np.mean(probs.argmax(1) == labels))
    small = bootstrap_ci(labels[:50], probs[:50], n_boot=200, seed=1)
    width = {k: v["high"] - v["low"] for k, v in ci.items()}
    assert small["accuracy"]["high"] - small["accuracy"]["low"] > width["accuracy"]
    assert bootstrap_ci(labels, probs, n_boot=20, seed=3) == bootstrap_ci(labels, probs,
                                                                          n_boot=20, seed=3)


def test_mcnemar_identical_exact_and_chi_square():
    rng = np.random.default_rng(0)
    correct = rng.random(100) < 0.8
    same = mcnemar(correct, correct)
    assert same["p_value"] == 1.0 and same["b"] == same["c"] == 0
    # b = 2, c = 8 (10 discordant pairs): exact two-sided binomial
    a = np.array([True] * 2 + [False] * 8 + [True] * 20)
    b = np.array([False] * 2 + [True] * 8 + [True] * 20)
    exact = mcnemar(a, b)
    assert (exact["b"], exact["c"], exact["method"]) == (2, 8, "exact")
    assert exact["p_value"] == pytest.approx(2 * binom.cdf(2, 10, 0.5))
    # b = 30, c = 10: chi-square with continuity correction
    a = np.array([True] * 30 + [False] * 10)
    big = mcnemar(a, ~a)
    assert big["method"] == "chi2_continuity"
    assert big["statistic"] == pytest.approx((20 - 1) ** 2 / 40)
    assert big["p_value"] == pytest.approx(chi2.sf(19 ** 2 / 40, 1))
    assert mcnemar(~a, a)["p_value"] == pytest.approx(big["p_value"])  # symmetric


# --------------------------------------------------------------------------- uncertainty


def test_entropy_and_risk_coverage_hand_made():
    np.testing.assert_allclose(predictive_entropy(np.array([[0.25] * 4, [1, 0, 0, 0]])),
                               [np.log(4), 0.0], atol=1e-12)
    labels = np.array([0, 1, 1, 0])
    probs = np.array([[0.9, 0.1], [0.2, 0.8], [0.6, 0.4], [0.7, 0.3]])  # conf .9 .8 .6 .7
    coverage, risk = risk_coverage_curve(labels, probs)
    # by confidence: .9 right, .8 right, .7 right, .6 wrong
    np.testing.assert_allclose(coverage, [0.25, 0.5, 0.75, 1.0])
    np.testing.assert_allclose(risk, [0, 0, 0, 0.25])
    assert aurc(labels, probs) == pytest.approx(0.25 / 4)
    # the same error ranked most confident is the worst case
    worse = probs.copy()
    worse[2] = [0.95, 0.05]  # the same error, now the most confident prediction
    assert aurc(labels, worse) > aurc(labels, probs)


def tiny_model(dropout: float) -> keras.Model:
    model = build_model(3, base="small_cnn", image_size=32, weights="none",
                        dense_units=(16,), dropout=(dropout,)).model
    for layer in model.layers:  # every layer, batch norm included, as in a fine-tuned model
        layer.trainable = True
    return model


def test_mc_dropout_keeps_batchnorm_in_inference_mode():
    images = np.random.default_rng(0).random((6, 32, 32, 3)).astype(np.float32)
    model = tiny_model(0.0)
    norms = [layer for layer in model.layers
             if isinstance(layer, keras.layers.BatchNormalization)]
    flags = [layer.trainable for layer in norms]
    plain = model(images, training=False).numpy()
    passes = mc_dropout_predict(model, images, 3, batch_size=4)
    assert passes.shape == (3, 6, 3)
    for p in passes:  # no dropout: every pass is the deterministic prediction
        np.testing.assert_allclose(p, plain, atol=1e-5)
    assert np.allclose(mutual_information(passes), 0.0, atol=1e-6)
    assert norms and all(flags)
    assert [layer.trainable for layer in norms] == flags  # flags restored
    with batchnorm_frozen(model):
        assert not any(layer.trainable for layer in norms)
    # the test can fail: training=True alone normalises with the batch's own statistics
    assert not np.allclose(model(images, training=True).numpy(), plain, atol=1e-3)

    dropped = tiny_model(0.5)
    noisy = mc_dropout_predict(dropped, images, 4, seed=1)
    assert not np.allclose(noisy[0], noisy[1])
    np.testing.assert_array_equal(noisy, mc_dropout_predict(dropped, images, 4, seed=1))
    assert not np.allclose(noisy, mc_dropout_predict(dropped, images, 4, seed=2))
    np.testing.assert_allclose(noisy.mean(axis=0).sum(axis=1), 1.0, atol=1e-5)


def test_tta_views_and_prediction(tmp_path):
    from PIL import Image

    rng = np.random.default_rng(0)
    images = rng.integers(0, 255, size=(2, 32, 32, 3)).astype(np.float32)
    views = tta_views(images, [("id", 0.0, False), ("mirror", 0.0, True)])
    np.testing.assert_array_equal(views[0], images)
    np.testing.assert_allclose(views[1], images[:, :, ::-1, :], atol=1e-3)
    paths = []
    for i, image in enumerate(images.astype(np.uint8)):
        Image.fromarray(image).save(tmp_path / f"{i}.png")
        paths.append(tmp_path / f"{i}.png")
    config = PreprocessConfig(image_size=32, normalization="unit")
    predictor = Predictor(tiny_model(0.0), "abc", config)
    tta = tta_predict_paths(predictor, paths)
    raw = np.stack([load_image(p, config) for p in paths])
    reference = np.mean([predictor.predict_batch(normalize(v, "unit").numpy())
                         for v in tta_views(raw)], axis=0)
    np.testing.assert_allclose(tta, reference, atol=1e-6)
    np.testing.assert_allclose(tta.sum(axis=1), 1.0, atol=1e-5)
