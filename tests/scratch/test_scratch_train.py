"""End to end: a small CNN built only from ``neuropathology.scratch`` learns synthetic MRI.

Small settings so the test stays well under a minute on 2 cores (the full-size run, 64x64
and 500 images per class, is ``benchmarks/scratch_train.py``): 32x32 slices, 250 training
and 50 test images per class, 10 epochs, ~10 s in all. Measured: 0.835 test accuracy.
The bound asserted, 0.60, is far above the 25 % chance level of four balanced classes
(with a margin for changes to the generator), so a broken gradient anywhere fails it.
"""

from __future__ import annotations

import time

import numpy as np
import pytest

from neuropathology.data.synthetic import generate_arrays
from neuropathology.scratch.losses import SoftmaxCrossEntropy
from neuropathology.scratch.model import build_small_cnn, random_horizontal_flip
from neuropathology.scratch.optim import Adam
from neuropathology.scratch.schedules import CosineDecay

SIZE, TRAIN_PER_CLASS, TEST_PER_CLASS, EPOCHS = 32, 250, 50, 10
MIN_TEST_ACCURACY = 0.60


def _inputs(images: np.ndarray) -> np.ndarray:
    return ((images.astype(np.float32) / 255.0 - 0.2) / 0.25)[..., None]


@pytest.mark.slow
def test_small_cnn_learns_synthetic_mri() -> None:
    train = generate_arrays(TRAIN_PER_CLASS, size=SIZE, seed=0, split="train")
    test = generate_arrays(TEST_PER_CLASS, size=SIZE, seed=0, split="test")
    model = build_small_cnn(len(train.class_names), filters=(8, 16, 32), seed=0)
    steps = EPOCHS * -(-len(train.labels) // 32)
    start = time.perf_counter()
    history = model.fit(_inputs(train.images), train.labels, SoftmaxCrossEntropy(),
                        Adam(CosineDecay(3e-3, steps)), epochs=EPOCHS, batch_size=32, verbose=0,
                        augment=random_horizontal_flip)
    seconds = time.perf_counter() - start
    accuracy = float(np.mean(model.predict(_inputs(test.images)).argmax(axis=-1) == test.labels))
    print(f"scratch CNN: test accuracy {accuracy:.3f} after {seconds:.1f} s of training")
    assert history["loss"][-1] < 0.85 * history["loss"][0]
    assert accuracy >= MIN_TEST_ACCURACY, (
        f"test accuracy {accuracy:.3f} < {MIN_TEST_ACCURACY} (chance 0.25)")
