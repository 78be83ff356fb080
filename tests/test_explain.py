"""Explanation methods: the right region, completeness, any model (flat or nested), determinism."""

from __future__ import annotations

import keras
import numpy as np
import pytest

from explain_models import REGION, SIZE, region_image, region_model
from neuropathology.explain import (
    CAM_METHODS,
    METHODS,
    ExplainError,
    explain,
    feature_logit_model,
    find_target_layer,
    grad_cam,
    integrated_gradients,
    logit_model,
    occlusion,
)
from neuropathology.models.neuropathology_model import build_model, head_layers


def _peak(heatmap: np.ndarray) -> tuple[int, int]:
    r, c = np.unravel_index(int(np.argmax(heatmap)), heatmap.shape)
    return int(r), int(c)


def _in_region(point: tuple[int, int]) -> bool:
    return REGION[0].start <= point[0] < REGION[0].stop and \
        REGION[1].start <= point[1] < REGION[1].stop


@pytest.fixture(scope="module")
def flat_small_cnn() -> keras.Model:
    keras.utils.set_random_seed(1)
    model = build_model(3, base="small_cnn", image_size=32, weights="none",
                        dense_units=(16,), dropout=(0.1,)).model
    dense = model.get_layer("head_logits")  # larger logits than the initialiser's, so that
    kernel, bias = dense.get_weights()  # y(x) - y(baseline) is far from zero
    dense.set_weights([kernel * 100.0, bias])
    return model


@pytest.fixture(scope="module")
def batch() -> np.ndarray:
    return np.random.default_rng(3).uniform(0, 1, (2, 32, 32, 3)).astype(np.float32)


@pytest.mark.parametrize("nested", [False, True])
def test_gradcam_and_occlusion_peak_in_the_region_the_decision_depends_on(nested):
    model = region_model(nested=nested)
    x = region_image()[None]
    # the brighter distractor really is outside R and does not move the decision
    assert not _in_region(_peak(x[0].mean(axis=-1)))
    no_distractor = logit_model(model)(region_image(distractor=False)[None]).numpy()
    assert np.allclose(logit_model(model)(x).numpy(), no_distractor, atol=1e-6)
    for method in (grad_cam, occlusion):
        heatmap = method(model, x, 1)[0]
        assert heatmap.shape == (SIZE, SIZE)
        assert _in_region(_peak(heatmap)), (method.__name__, _peak(heatmap))
    heatmap = occlusion(model, x, 1, patch=4, stride=2)[0]
    outside = heatmap.copy()
    rows, cols = REGION  # R grown by the 3x3 receptive field (1) and the patch overlap (3)
    outside[rows.start - 4:rows.stop + 4, cols.start - 4:cols.stop + 4] = 0.0
    assert outside.max() == 0.0  # occluding anything away from R changes nothing


@pytest.mark.parametrize("method", sorted(METHODS))
def test_every_method_ignores_the_brighter_distractor(method):
    x = region_image()[None]
    heatmap = explain(region_model(nested=True), x, method, 1)[0]
    rows, cols = _peak(heatmap)
    # R grown by one pixel: the detector's 3x3 receptive field reaches one pixel beyond it
    assert REGION[0].start - 1 <= rows <= REGION[0].stop and \
        REGION[1].start - 1 <= cols <= REGION[1].stop, (method, rows, cols)


def test_score_cam_batching_does_not_change_the_map(flat_small_cnn, batch):
    from neuropathology.explain import score_cam

    np.testing.assert_allclose(score_cam(flat_small_cnn, batch, batch_size=7),
                               score_cam(flat_small_cnn, batch, batch_size=128), atol=1e-5)


def test_nested_base_is_located_inside_the_nested_model():
    model = region_model(nested=True)
    assert find_target_layer(model) == ("base", "region_gate")
    assert find_target_layer(model, "detector_relu") == ("base", "detector_relu")
    features, logits = feature_logit_model(model)(region_image()[None])
    assert features.shape == (1, SIZE, SIZE, 1) and logits.shape == (1, 2)
    flat, nested = region_model(), region_model(nested=True)
    np.testing.assert_allclose(grad_cam(flat, region_image()[None], 1),
                               grad_cam(nested, region_image()[None], 1), atol=1e-6)


def test_sequential_model_with_a_nested_base():
    nested = region_model(nested=True)
    seq = keras.Sequential([keras.Input((SIZE, SIZE, 3)), nested.get_layer("base"),
                            keras.layers.GlobalAveragePooling2D(),
                            keras.layers.Dense(2, name="logits"), keras.layers.Softmax()])
    seq.get_layer("logits").set_weights(nested.get_layer("head_logits").get_weights())
    assert find_target_layer(seq) == ("base", "region_gate")
    x = region_image()[None]
    np.testing.assert_allclose(logit_model(seq)(x), logit_model(nested)(x), atol=1e-6)
    np.testing.assert_allclose(grad_cam(seq, x, 1), grad_cam(nested, x, 1), atol=1e-6)


def test_unknown_layer_and_class_give_clear_errors(flat_small_cnn, batch):
    with pytest.raises(ExplainError, match="no layer named 'nope'"):
        grad_cam(flat_small_cnn, batch, layer_name="nope")
    with pytest.raises(ExplainError, match="out of range: the model has 3 classes"):
        grad_cam(flat_small_cnn, batch, 7)
    with pytest.raises(ExplainError, match="unknown method"):
        explain(flat_small_cnn, batch, "magic")
    with pytest.raises(ExplainError, match=r"\(N, S, S, 3\)"):
        grad_cam(flat_small_cnn, batch[..., 0])


@pytest.mark.parametrize("method", sorted(METHODS))
def test_every_method_gives_deterministic_unit_range_maps(flat_small_cnn, batch, method):
    options = {"steps": 16} if method == "ig" else {}
    options.update({"samples": 4} if method == "smoothgrad" else {})
    first = explain(flat_small_cnn, batch, method, **options)
    second = explain(flat_small_cnn, batch, method, **options)
    assert first.shape == (2, 32, 32) and first.dtype == np.float32
    assert first.min() >= 0.0 and first.max() <= 1.0
    assert np.all(first.reshape(2, -1).max(axis=1) == 1.0)  # each map scaled by its peak
    np.testing.assert_array_equal(first, second)


def test_predicted_class_is_the_default_and_any_class_can_be_chosen(flat_small_cnn, batch):
    predicted = logit_model(flat_small_cnn)(batch).numpy().argmax(axis=1)
    np.testing.assert_array_equal(grad_cam(flat_small_cnn, batch),
                                  grad_cam(flat_small_cnn, batch, predicted))
    other = (predicted + 1) % 3
    assert not np.allclose(grad_cam(flat_small_cnn, batch, other),
                           grad_cam(flat_small_cnn, batch, predicted))


def test_logits_not_probabilities_are_differentiated(flat_small_cnn, batch):
    logits = logit_model(flat_small_cnn)(batch).numpy()
    probs = flat_small_cnn(batch, training=False).numpy()
    np.testing.assert_allclose(np.exp(logits) / np.exp(logits).sum(1, keepdims=True), probs,
                               rtol=1e-4, atol=1e-6)
    assert not np.allclose(logits, probs)


@pytest.mark.parametrize("baseline", ["zeros", "blur"])
def test_integrated_gradients_completeness_within_one_percent(flat_small_cnn, batch, baseline):
    result = integrated_gradients(flat_small_cnn, batch, baseline=baseline, steps=128)
    total = result.attributions.reshape(2, -1).sum(axis=1)
    gap = result.score - result.baseline_score
    assert np.all(np.abs(gap) > 0.1)  # a non-trivial test
    np.testing.assert_allclose(total, gap, rtol=0.01)
    assert np.all(result.relative_delta < 0.01)
    np.testing.assert_allclose(result.delta, total - gap, rtol=1e-3, atol=1e-6)
    # the reported delta is the real error: a 1-step rule is visibly worse on this ReLU net
    coarse = integrated_gradients(flat_small_cnn, batch, baseline=baseline, steps=1)
    assert np.all(np.abs(coarse.delta) > np.abs(result.delta))


def test_integrated_gradients_is_exact_for_a_linear_model():
    inp = keras.Input((8, 8, 3))
    logits = keras.layers.Dense(2, name="head_logits")(keras.layers.Flatten()(inp))
    model = keras.Model(inp, keras.layers.Activation("softmax")(logits))
    x = np.random.default_rng(0).normal(size=(1, 8, 8, 3)).astype(np.float32)
    result = integrated_gradients(model, x, 0, steps=2)
    weights = model.get_layer("head_logits").get_weights()[0][:, 0].reshape(8, 8, 3)
    np.testing.assert_allclose(result.attributions[0], x[0] * weights, rtol=1e-4, atol=1e-6)


def _nested_copy(flat: keras.Model, base_top: str) -> keras.Model:
    """The same network with its base wrapped as a nested keras.Model (layers shared)."""
    base = keras.Model(flat.input, flat.get_layer(base_top).output, name="nested_base")
    inp = keras.Input(flat.input.shape[1:], name="outer_image")
    x = base(inp)
    for layer in head_layers(flat):
        x = layer(x)
    return keras.Model(inp, x, name="nested")


@pytest.mark.parametrize("base,size,top,target", [
    ("small_cnn", 32, "cnn_block4_pool", "cnn_block4_relu"),
    ("mobilenetv2", 64, "out_relu", "out_relu"),
])
def test_models_from_build_model_flat_and_nested(base, size, top, target):
    keras.utils.set_random_seed(0)
    kwargs = {"alpha": 0.35} if base == "mobilenetv2" else {}
    flat = build_model(4, base=base, image_size=size, weights="none", dense_units=(16,),
                       dropout=(0.1,), **kwargs).model
    nested = _nested_copy(flat, top)
    assert find_target_layer(flat) == (target,)
    assert find_target_layer(nested) == ("nested_base", target)
    x = np.random.default_rng(1).uniform(-1, 1, (2, size, size, 3)).astype(np.float32)
    np.testing.assert_allclose(logit_model(nested)(x), logit_model(flat)(x), atol=1e-5)
    for method in CAM_METHODS:
        options = {"max_channels": 64} if method == "scorecam" else {}
        a = explain(flat, x, method, 1, **options)
        b = explain(nested, x, method, 1, **options)
        assert a.shape == b.shape == (2, size, size)
        np.testing.assert_allclose(a, b, atol=1e-4, err_msg=method)
