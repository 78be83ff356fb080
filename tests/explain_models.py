"""Tiny hand-built Keras models with known behaviour, shared by the explanation tests.

``region_model``: class 1's logit is the mean of a "bright blob" detector *inside a fixed
region* R of the image (a spatial mask after the detector), class 0's logit is its negative.
A bright blob outside R (the distractor) cannot change the decision, so a faithful
explanation must put its maximum inside R, not on the (brighter) distractor.
"""

from __future__ import annotations

import functools

import keras
import numpy as np
from keras import layers

SIZE = 32
#: image side of the trained small CNN
TRAIN_SIZE = 32
#: rows, cols of the region R the decision depends on
REGION = (slice(4, 14), slice(18, 28))


def region_mask(size: int = SIZE) -> np.ndarray:
    mask = np.zeros((size, size), np.float32)
    mask[REGION] = 1.0
    return mask


def region_image(*, distractor: bool = True) -> np.ndarray:
    """A dark noisy image with a blob inside R and, optionally, a brighter one outside it."""
    rng = np.random.default_rng(0)
    x = rng.uniform(0.0, 0.1, (SIZE, SIZE, 3)).astype(np.float32)
    x[7:11, 21:25] = 0.8  # inside R
    if distractor:
        x[22:27, 4:9] = 1.0  # outside R, brighter
    return x


def _detector_layers(inp: keras.KerasTensor) -> keras.KerasTensor:
    conv = layers.Conv2D(1, 3, padding="same", name="detector")
    y = conv(inp)
    conv.set_weights([np.full((3, 3, 3, 1), 1.0 / 27.0, np.float32),
                      np.array([-0.3], np.float32)])
    y = layers.ReLU(name="detector_relu")(y)
    mask = region_mask()[None, :, :, None]
    return layers.Lambda(lambda t: t * mask, name="region_gate")(y)


def _head(features: keras.KerasTensor) -> keras.KerasTensor:
    pooled = layers.GlobalAveragePooling2D(name="pool")(features)
    dense = layers.Dense(2, name="head_logits")
    logits = dense(pooled)
    dense.set_weights([np.array([[-400.0, 400.0]], np.float32), np.zeros(2, np.float32)])
    return layers.Activation("softmax", name="head_softmax")(logits)


def region_model(*, nested: bool = False) -> keras.Model:
    """The region model, flat or with the detector inside a nested ``keras.Model`` base."""
    inp = keras.Input((SIZE, SIZE, 3), name="image")
    if nested:
        inner_in = keras.Input((SIZE, SIZE, 3), name="base_input")
        base = keras.Model(inner_in, _detector_layers(inner_in), name="base")
        features = base(inp)
    else:
        features = _detector_layers(inp)
    return keras.Model(inp, _head(features), name="region_nested" if nested else "region_flat")


@functools.lru_cache(maxsize=1)
def trained_small_cnn() -> tuple[keras.Model, np.ndarray, np.ndarray, np.ndarray]:
    """A small CNN trained briefly on 32 px synthetic slices (cached for the session).

    Returns (model, preprocessed test images, test labels, test tumour masks).
    """
    from neuropathology.data.data_loader import PreprocessConfig, preprocess_arrays
    from neuropathology.data.synthetic import generate_arrays
    from neuropathology.models.neuropathology_model import build_model, unfreeze_top

    config = PreprocessConfig(image_size=TRAIN_SIZE, normalization="unit")
    train = generate_arrays(60, size=TRAIN_SIZE, seed=0, difficulty=0.2, split="train")
    test = generate_arrays(4, size=TRAIN_SIZE, seed=0, difficulty=0.2, split="test")
    keras.utils.set_random_seed(0)
    model = build_model(4, base="small_cnn", image_size=TRAIN_SIZE, weights="none",
                        dense_units=(32,), dropout=(0.1,)).model
    unfreeze_top(model, None, freeze_batchnorm=False)
    model.compile(optimizer=keras.optimizers.Adam(3e-3),
                  loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    model.fit(preprocess_arrays(train.images, config), train.labels, epochs=12, batch_size=32,
              verbose=0, shuffle=True)
    return model, preprocess_arrays(test.images, config), test.labels, test.masks
