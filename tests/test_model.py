"""The model module: flat graph (Grad-CAM reachable), freezing, BN in inference mode, weights."""

from __future__ import annotations

import urllib.error

import keras
import numpy as np
import pytest
import tensorflow as tf

from neuropathology.models import (
    BASE_MODELS,
    ModelConfigError,
    WeightsUnavailableError,
    base_layers,
    build_model,
    count_parameters,
    gradcam_model,
    head_layers,
    last_conv_layer_name,
    normalization_for,
    unfreeze_top,
)


def _mobilenet(size: int = 96, **kwargs):
    return build_model(4, base="mobilenetv2", alpha=0.35, image_size=size, weights="none",
                       **kwargs).model


@pytest.mark.parametrize(("base", "size", "expected_layer"),
                         [("mobilenetv2", 96, "out_relu"), ("small_cnn", 32, "cnn_block4_relu")])
def test_gradcam_model_reaches_last_conv_without_graph_disconnected(base, size, expected_layer):
    kwargs = {"alpha": 0.35} if base == "mobilenetv2" else {}
    model = build_model(3, base=base, image_size=size, weights="none", **kwargs).model
    name = last_conv_layer_name(model)
    assert name == expected_layer
    # the construction that fails with a nested keras.applications base:
    explicit = keras.Model(model.inputs, [model.get_layer(name).output, model.output])
    grad_model = gradcam_model(model)
    x = tf.random.uniform((2, size, size, 3), -1.0, 1.0, seed=1)
    with tf.GradientTape() as tape:
        features, probs = grad_model(x)
        score = probs[:, 1]
    grads = tape.gradient(score, features)
    assert features.shape[0] == 2 and len(features.shape) == 4
    assert probs.shape == (2, 3)
    assert grads is not None and float(tf.reduce_sum(tf.abs(grads))) > 0
    np.testing.assert_allclose(explicit(x)[1].numpy(), model(x).numpy(), atol=1e-5)


def test_head_follows_the_outline_and_base_is_frozen():
    model = _mobilenet()
    names = [layer.name for layer in head_layers(model)]
    assert names == ["head_pool", "head_pool_bn", "head_dense1", "head_dropout1", "head_dense2",
                     "head_bn2", "head_dropout2", "head_logits", "head_softmax"]
    assert model.get_layer("head_dense1").units == 512
    assert model.get_layer("head_dense2").units == 256
    assert model.get_layer("head_dropout1").rate == 0.5
    assert model.get_layer("head_dropout2").rate == 0.3
    assert model.output.dtype == "float32"
    assert not any(layer.trainable for layer in base_layers(model))
    head_params = sum(int(np.prod(w.shape)) for layer in head_layers(model)
                      for w in layer.trainable_weights)
    trainable, frozen = count_parameters(model)
    assert trainable == head_params
    assert frozen > 300_000  # the MobileNetV2 (alpha 0.35) base


def test_unfreeze_top_counts_and_keeps_batchnorm_frozen():
    model = _mobilenet()
    before, _ = count_parameters(model)
    n = unfreeze_top(model, 20)
    assert n == 20
    layers_ = base_layers(model)
    top, rest = layers_[-20:], layers_[:-20]
    assert not any(layer.trainable for layer in rest)
    for layer in top:
        is_bn = isinstance(layer, keras.layers.BatchNormalization)
        assert layer.trainable is (not is_bn), layer.name
    expected = before + sum(int(np.prod(w.shape)) for layer in top
                            if not isinstance(layer, keras.layers.BatchNormalization)
                            for w in layer.weights)
    assert count_parameters(model)[0] == expected
    unfreeze_top(model, None, freeze_batchnorm=False)
    assert all(layer.trainable for layer in base_layers(model))
    assert count_parameters(model)[1] == sum(  # only BN moving statistics stay non-trainable
        int(np.prod(w.shape)) for layer in model.layers
        if isinstance(layer, keras.layers.BatchNormalization)
        for w in (layer.moving_mean, layer.moving_variance))


def test_batchnorm_statistics_stay_fixed_while_top_layers_train():
    model = _mobilenet(size=32)
    unfreeze_top(model, 30)
    base_bn = [layer for layer in base_layers(model)
               if isinstance(layer, keras.layers.BatchNormalization)]
    top_conv = next(layer for layer in reversed(base_layers(model))
                    if isinstance(layer, keras.layers.Conv2D) and layer.trainable)
    means = [bn.moving_mean.numpy().copy() for bn in base_bn]
    kernel = top_conv.kernel.numpy().copy()
    head_bn_var = model.get_layer("head_pool_bn").moving_variance.numpy().copy()
    optimizer = keras.optimizers.Adam(1e-2)
    rng = np.random.default_rng(0)
    x = rng.uniform(-1, 1, (8, 32, 32, 3)).astype("float32") * 3 + 1  # far from ImageNet stats
    y = np.eye(4, dtype="float32")[rng.integers(0, 4, 8)]
    for _ in range(2):  # an eager training step: the model is called with training=True
        with tf.GradientTape() as tape:
            loss = keras.losses.categorical_crossentropy(y, model(x, training=True))
        grads = tape.gradient(loss, model.trainable_variables)
        optimizer.apply_gradients(zip(grads, model.trainable_variables, strict=True))
    for bn, mean in zip(base_bn, means, strict=True):
        np.testing.assert_array_equal(bn.moving_mean.numpy(), mean, err_msg=bn.name)
    assert not np.allclose(top_conv.kernel.numpy(), kernel)  # fine-tuning did happen
    # ... while the head's BN (trainable) does update its statistics in training mode
    assert not np.array_equal(model.get_layer("head_pool_bn").moving_variance.numpy(),
                              head_bn_var)


def test_flat_graph_survives_save_and_load(tmp_path):
    model = build_model(2, base="small_cnn", image_size=32, weights="none").model
    path = tmp_path / "m.keras"
    model.save(path)
    loaded = keras.saving.load_model(path, compile=False)
    assert [layer.name for layer in base_layers(loaded)] == [
        layer.name for layer in base_layers(model)]
    assert last_conv_layer_name(loaded) == "cnn_block4_relu"
    gradcam_model(loaded)


def test_normalization_matches_each_base():
    assert [normalization_for(b) for b in BASE_MODELS] == [
        "mobilenetv2", "efficientnet", "resnet50", "unit"]


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"base": "vgg16"}, "unknown base model"),
    ({"base": "small_cnn", "weights": "imagenet"}, "--weights none"),
    ({"base": "resnet50", "alpha": 0.5}, "--alpha"),
    ({"base": "mobilenetv2", "weights": "/no/such/file.h5"}, "neither auto/imagenet/none"),
    ({"base": "small_cnn", "dense_units": (8, 4), "dropout": (0.1,)}, "same length"),
    ({"base": "small_cnn", "image_size": 16}, "too small"),
])
def test_bad_requests_raise_clear_errors(kwargs, message):
    with pytest.raises(ModelConfigError, match=message):
        build_model(3, **{"weights": "none", "image_size": 32, **kwargs})


@pytest.fixture()
def offline(monkeypatch, tmp_path):
    """Fault injection on the network: an empty keras cache and a download that fails."""
    from keras.src.backend import config as keras_config
    from keras.src.utils import file_utils

    calls: list[str] = []

    def no_network(url, *args, **kwargs):
        calls.append(url)
        raise urllib.error.URLError("simulated: no network")

    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "keras"))
    monkeypatch.setattr(keras_config, "_KERAS_DIR", str(tmp_path / "keras"))
    monkeypatch.setattr(file_utils, "urlretrieve", no_network)
    return calls


def test_auto_weights_fall_back_to_random_init_offline(offline, caplog):
    built = build_model(4, base="mobilenetv2", alpha=0.35, image_size=96, weights="auto")
    assert offline and "mobilenet_v2" in offline[0]  # the download was attempted ...
    assert built.pretrained is False and built.weights_source == "random"  # ... and failed
    assert "RANDOM initialisation" in caplog.text


def test_imagenet_weights_offline_is_an_error_naming_the_fix(offline):
    with pytest.raises(WeightsUnavailableError) as info:
        build_model(4, base="mobilenetv2", alpha=0.35, image_size=96, weights="imagenet")
    message = str(info.value)
    assert "mobilenet_v2_weights_tf_dim_ordering_tf_kernels_0.35_96_no_top.h5" in message
    assert "--weights /path/to/" in message


def test_local_weights_file_is_loaded_and_counts_as_pretrained(tmp_path):
    source = keras.applications.MobileNetV2(include_top=False, weights=None, alpha=0.35,
                                            input_shape=(32, 32, 3))
    for w in source.weights:  # distinctive values, so "loaded" is checkable
        w.assign(tf.fill(w.shape, 0.125))
    path = tmp_path / "mobilenet_v2_test_no_top.weights.h5"
    source.save_weights(path)
    built = build_model(4, base="mobilenetv2", alpha=0.35, image_size=32, weights=str(path))
    assert built.pretrained is True and built.weights_source == str(path.resolve())
    kernel = built.model.get_layer("Conv1").kernel.numpy()
    np.testing.assert_array_equal(kernel, np.full_like(kernel, 0.125))
