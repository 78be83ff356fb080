"""Tests for the tf.data pipeline, the shared preprocessing path and augmentation."""

from __future__ import annotations

import logging
import math
from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

from fixtures import build_class_tree, write_png_header_only
from neuropathology.data.data_loader import (
    NORMALIZATIONS,
    AugmentConfig,
    PreprocessConfig,
    affine_transform,
    bias_field,
    brightness_contrast,
    build_augmenter,
    check_readable,
    class_weights,
    cutout,
    load_image,
    make_dataset,
    mixup,
    normalize,
    oversample_indices,
    preprocess_arrays,
    preprocess_paths,
    random_affine,
    resize_image,
    rician_noise,
    steps_per_epoch,
)
from neuropathology.data.discovery import Dataset, discover_dataset
from neuropathology.data.io import ImageReadError

SIZE = 16
CLASSES = ("glioma", "meningioma", "no_tumor")


def _write_tree(root: Path, per_class: int = 4, seed: int = 0) -> Path:
    """Tiny class-per-folder tree of random RGB PNGs of varying (non-square) sizes."""
    rng = np.random.default_rng(seed)
    for c, name in enumerate(CLASSES):
        folder = root / name
        folder.mkdir(parents=True)
        for i in range(per_class):
            h, w = 20 + 2 * i, 28 - 2 * c
            pixels = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
            Image.fromarray(pixels).save(folder / f"img {i}.png")
    return root


@pytest.fixture(scope="module")
def tree(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _write_tree(tmp_path_factory.mktemp("tree"))


@pytest.fixture(scope="module")
def dataset(tree: Path) -> Dataset:
    return discover_dataset(tree)


def _collect(ds: tf.data.Dataset) -> tuple[np.ndarray, np.ndarray]:
    xs, ys = zip(*[(x.numpy(), y.numpy()) for x, y in ds], strict=True)
    return np.concatenate(xs), np.concatenate(ys)


# ----------------------------------------------------------------------------- configs


def test_configs_round_trip_and_validate() -> None:
    cfg = PreprocessConfig(image_size=32, pad_to_square=True, normalization="resnet50")
    assert PreprocessConfig.from_dict(cfg.to_dict()) == cfg
    aug = AugmentConfig(bias_field=0.3, rician_noise=0.02, mixup_alpha=0.2, cutout=0.25)
    assert AugmentConfig.from_dict(aug.to_dict()) == aug
    with pytest.raises(ValueError, match="mobilenetv2"):
        PreprocessConfig(normalization="imagenet")
    with pytest.raises(ValueError, match="image_sise"):
        PreprocessConfig.from_dict({"image_sise": 32})
    with pytest.raises(ValueError, match="rotation_deg"):
        AugmentConfig(rotation_deg=-5)
    with pytest.raises(ValueError, match="valid names"):
        normalize(np.zeros((2, 2, 3)), "vgg")


# ----------------------------------------------------------------------------- normalisation


def test_normalize_matches_keras_conventions() -> None:
    import keras

    rng = np.random.default_rng(1)
    x = rng.uniform(0, 255, (2, 4, 4, 3)).astype(np.float32)
    np.testing.assert_allclose(normalize(x, "mobilenetv2"),
                               keras.applications.mobilenet_v2.preprocess_input(x.copy()),
                               atol=1e-6)
    np.testing.assert_allclose(normalize(x, "resnet50"),
                               keras.applications.resnet50.preprocess_input(x.copy()),
                               atol=1e-4)
    np.testing.assert_array_equal(normalize(x, "efficientnet"), x)
    np.testing.assert_allclose(normalize(x[0], "unit"), x[0] / 255.0, atol=1e-7)


@pytest.mark.parametrize("normalization, low, high", [
    ("mobilenetv2", -1.0, 1.0), ("efficientnet", 0.0, 255.0),
    ("resnet50", -123.68, 255.0 - 103.939), ("unit", 0.0, 1.0)])
def test_pipeline_shapes_dtypes_ranges(dataset: Dataset, normalization: str, low: float,
                                       high: float) -> None:
    cfg = PreprocessConfig(image_size=SIZE, normalization=normalization)
    ds = make_dataset(dataset, cfg, batch_size=5)
    assert ds.element_spec[0].shape.as_list() == [None, SIZE, SIZE, 3]
    assert ds.element_spec[1].shape.as_list() == [None, len(CLASSES)]
    x, y = _collect(ds)
    assert x.dtype == np.float32 and y.dtype == np.float32
    assert x.shape == (len(dataset), SIZE, SIZE, 3)
    assert low - 1e-4 <= x.min() and x.max() <= high + 1e-4
    assert x.max() - x.min() > 0.5 * (high - low)  # random pixels span most of the range
    np.testing.assert_array_equal(y.argmax(1), dataset.labels)
    np.testing.assert_array_equal(y.sum(1), 1.0)


def test_num_classes_widens_one_hot(dataset: Dataset) -> None:
    cfg = PreprocessConfig(image_size=SIZE)
    _, y = _collect(make_dataset(dataset, cfg, batch_size=8, num_classes=5))
    assert y.shape == (len(dataset), 5)
    np.testing.assert_array_equal(y.argmax(1), dataset.labels)
    with pytest.raises(ValueError, match="num_classes"):
        make_dataset(dataset, cfg, num_classes=2)


def test_drop_remainder_and_steps_per_epoch(dataset: Dataset) -> None:
    cfg = PreprocessConfig(image_size=SIZE)
    n = len(dataset)
    full = list(make_dataset(dataset, cfg, batch_size=5))
    dropped = list(make_dataset(dataset, cfg, batch_size=5, drop_remainder=True))
    assert len(full) == steps_per_epoch(n, 5) == math.ceil(n / 5)
    assert len(dropped) == steps_per_epoch(n, 5, drop_remainder=True) == n // 5
    assert all(x.shape[0] == 5 for x, _ in dropped)


# ----------------------------------------------------------------------------- shared path


def test_eval_pipeline_equals_serving_path(dataset: Dataset) -> None:
    for cfg in (PreprocessConfig(image_size=SIZE),
                PreprocessConfig(image_size=SIZE, pad_to_square=True, normalization="resnet50")):
        x1, _ = _collect(make_dataset(dataset, cfg, batch_size=4, training=False,
                                      augment=AugmentConfig()))
        x2, _ = _collect(make_dataset(dataset, cfg, batch_size=3, training=False))
        served = preprocess_paths(dataset.paths, cfg)
        np.testing.assert_allclose(x1, served, atol=1e-6)
        np.testing.assert_array_equal(x1, x2)  # deterministic, batch size irrelevant
        # The in-memory route: the same pixels as arrays give the same tensors.
        pixels = [np.asarray(Image.open(p).convert("RGB")) for p in dataset.paths]
        np.testing.assert_allclose(preprocess_arrays(pixels, cfg), served, atol=1e-6)
        raw = load_image(dataset.paths[0], cfg)
        assert raw.dtype == np.float32 and raw.shape == (SIZE, SIZE, 3)
        np.testing.assert_allclose(normalize(raw, cfg.normalization), served[0], atol=1e-6)


def test_mixed_formats_go_through_one_pipeline(tmp_path: Path) -> None:
    layout = {"Training/glioma": ["a.jpg", "b scan (2).dcm", "c.png"],
              "Training/no_tumor": ["d.bmp", "e.tif", "f.nii.gz"]}
    build_class_tree(tmp_path, layout, size=20)
    data = discover_dataset(tmp_path)
    cfg = PreprocessConfig(image_size=SIZE, normalization="unit")
    x, y = _collect(make_dataset(data, cfg, batch_size=4))
    assert x.shape == (6, SIZE, SIZE, 3) and y.shape == (6, 2)
    np.testing.assert_allclose(x, preprocess_paths(data.paths, cfg), atol=1e-6)
    grey = [i for i, p in enumerate(data.paths) if p.suffix in (".dcm", ".gz")]
    assert len(grey) == 2
    for i in grey:  # greyscale sources replicated to three identical channels
        np.testing.assert_array_equal(x[i, ..., 0], x[i, ..., 2])


def test_preprocess_arrays_channel_handling() -> None:
    cfg = PreprocessConfig(image_size=SIZE, normalization="unit")
    rng = np.random.default_rng(2)
    grey = rng.integers(0, 256, (20, 24), dtype=np.uint8)
    rgb = np.repeat(grey[..., None], 3, axis=-1)
    expected = preprocess_arrays(rgb, cfg)
    assert expected.shape == (1, SIZE, SIZE, 3)
    np.testing.assert_array_equal(preprocess_arrays(grey, cfg), expected)
    np.testing.assert_array_equal(preprocess_arrays(grey[..., None], cfg), expected)
    np.testing.assert_array_equal(preprocess_arrays(np.stack([grey, grey]), cfg)[1], expected[0])
    rgba = np.concatenate([rgb, np.zeros_like(grey)[..., None]], axis=-1)
    np.testing.assert_array_equal(preprocess_arrays(rgba, cfg), 0.0)  # transparent -> black
    with pytest.raises(ValueError, match="8-bit"):
        preprocess_arrays(grey.astype(np.uint16) * 256, cfg)


def test_resize_is_antialiased_bilinear() -> None:
    # Same filter as tf.image.resize(bilinear, antialias=True), within rounding.
    rng = np.random.default_rng(3)
    image = rng.integers(0, 256, (50, 70, 3), dtype=np.uint8)
    ours = resize_image(image, 20).astype(np.float32)
    reference = tf.image.resize(image.astype(np.float32), (20, 20), antialias=True).numpy()
    assert np.abs(ours - reference).max() <= 2.0
    aliased = tf.image.resize(image.astype(np.float32), (20, 20), antialias=False).numpy()
    assert np.abs(ours - reference).mean() < 0.2 * np.abs(aliased - reference).mean()


def test_pad_to_square_keeps_aspect(tmp_path: Path) -> None:
    path = tmp_path / "wide.png"
    Image.fromarray(np.full((16, 32, 3), 200, np.uint8)).save(path)  # 2:1, width 32
    padded = load_image(path, PreprocessConfig(image_size=SIZE, pad_to_square=True))
    stretched = load_image(path, PreprocessConfig(image_size=SIZE))
    np.testing.assert_array_equal(stretched, 200.0)
    # Scaled to 16x8 and centred: 4 black rows above and below, full width in between.
    np.testing.assert_array_equal(padded[:4], 0.0)
    np.testing.assert_array_equal(padded[-4:], 0.0)
    np.testing.assert_array_equal(padded[4:12], 200.0)


# ----------------------------------------------------------------------------- augmentation

_AUG = AugmentConfig(bias_field=0.3, rician_noise=0.02, cutout=0.2, mixup_alpha=0.4)


def test_augmentation_only_in_training_and_seeded(dataset: Dataset) -> None:
    cfg = PreprocessConfig(image_size=SIZE)

    def first_batch(seed: int, training: bool = True) -> tuple[np.ndarray, np.ndarray]:
        ds = make_dataset(dataset, cfg, batch_size=len(dataset), training=training,
                          augment=_AUG, shuffle=False, seed=seed)
        x, y = next(iter(ds))
        return x.numpy(), y.numpy()

    clean = preprocess_paths(dataset.paths, cfg)
    aug_a, y_a = first_batch(3)
    aug_b, y_b = first_batch(3)
    aug_c, _ = first_batch(4)
    assert np.abs(aug_a - clean).mean() > 0.05  # pixels changed
    np.testing.assert_array_equal(aug_a, aug_b)  # same seed -> same augmented batch
    np.testing.assert_array_equal(y_a, y_b)
    assert not np.array_equal(aug_a, aug_c)
    assert aug_a.min() >= -1.0 - 1e-6 and aug_a.max() <= 1.0 + 1e-6  # clipped, then normalised
    np.testing.assert_allclose(y_a.sum(1), 1.0, atol=1e-6)
    np.testing.assert_allclose(first_batch(3, training=False)[0], clean, atol=1e-6)


def test_training_reshuffles_and_reaugments_each_epoch(dataset: Dataset) -> None:
    cfg = PreprocessConfig(image_size=SIZE)
    ds = make_dataset(dataset, cfg, batch_size=len(dataset), training=True,
                      augment=AugmentConfig(), seed=0)
    (x1, y1), (x2, y2) = (next(iter(ds)) for _ in range(2))
    assert not np.array_equal(x1.numpy(), x2.numpy())
    # Same multiset of labels, (almost surely) in another order.
    np.testing.assert_array_equal(np.sort(y1.numpy().argmax(1)), np.sort(dataset.labels))
    plain = make_dataset(dataset, cfg, batch_size=len(dataset), training=True, seed=0)
    xp, _ = next(iter(plain))  # shuffled but not augmented: a permutation of the clean images
    clean = preprocess_paths(dataset.paths, cfg).reshape(len(dataset), -1)
    rows = {r.tobytes() for r in clean}
    assert all(r.tobytes() in rows for r in xp.numpy().reshape(len(dataset), -1))


def test_build_augmenter_keeps_range_and_shape() -> None:
    augment = build_augmenter(_AUG, seed=0)
    x = tf.random.stateless_uniform((4, SIZE, SIZE, 3), (1, 2), 0.0, 255.0)
    y = tf.one_hot([0, 1, 2, 0], 3)
    ax, ay = augment(x, y)
    assert ax.shape == x.shape and ay.shape == y.shape
    assert float(tf.reduce_min(ax)) >= 0.0 and float(tf.reduce_max(ax)) <= 255.0


def test_augmenter_stays_float32_under_mixed_precision() -> None:
    import keras

    previous = keras.mixed_precision.global_policy()
    keras.mixed_precision.set_global_policy("mixed_float16")
    try:
        augment = build_augmenter(_AUG, seed=0)
        ax, _ = augment(tf.fill((2, SIZE, SIZE, 3), 100.0), tf.one_hot([0, 1], 2))
    finally:
        keras.mixed_precision.set_global_policy(previous)
    assert ax.dtype == tf.float32


def test_affine_transform_geometry() -> None:
    rng = np.random.default_rng(4)
    images = rng.uniform(0, 255, (2, 9, 9, 3)).astype(np.float32)
    one, zero = tf.ones((2,)), tf.zeros((2,))
    np.testing.assert_allclose(affine_transform(images, zero, one, one), images, atol=1e-4)
    mirrored = affine_transform(images, zero, one, -one).numpy()
    np.testing.assert_allclose(mirrored, images[:, :, ::-1], atol=1e-4)
    quarter = affine_transform(images, tf.fill((2,), math.pi / 2), one, one).numpy()
    rotated = np.rot90(images, k=1, axes=(1, 2))
    counter = np.rot90(images, k=-1, axes=(1, 2))
    assert (np.allclose(quarter, rotated, atol=1e-3) or np.allclose(quarter, counter, atol=1e-3))
    zoom_in = affine_transform(images, zero, tf.fill((2,), 2.0), one).numpy()
    np.testing.assert_allclose(zoom_in[:, 4, 4], images[:, 4, 4], atol=1e-4)  # centre fixed
    assert (zoom_in[:, 0, 0] > 0).all()  # zooming in reads inside the image: no border
    zoom_out = affine_transform(images, zero, tf.fill((2,), 0.5), one).numpy()
    np.testing.assert_array_equal(zoom_out[:, 0], 0.0)  # zooming out shows black background
    np.testing.assert_allclose(zoom_out[:, 4, 4], images[:, 4, 4], atol=1e-4)


def test_random_affine_flip_only_mirrors_some_images() -> None:
    rng = np.random.default_rng(5)
    images = rng.uniform(0, 255, (16, 8, 8, 3)).astype(np.float32)
    out = random_affine(images, (1, 2), rotation_deg=0.0, zoom=0.0).numpy()
    same = [np.allclose(o, i, atol=1e-4) for o, i in zip(out, images, strict=True)]
    flipped = [np.allclose(o, i[:, ::-1], atol=1e-4) for o, i in zip(out, images, strict=True)]
    assert all(a or b for a, b in zip(same, flipped, strict=True))
    assert 0 < sum(flipped) < 16


def test_brightness_contrast_keeps_grey_and_mean() -> None:
    grey = np.random.default_rng(6).uniform(60, 190, (4, 8, 8, 1)).astype(np.float32)
    images = np.repeat(grey, 3, axis=-1)
    contrast = brightness_contrast(images, (1, 1), brightness=0.0, contrast=0.2).numpy()
    np.testing.assert_allclose(contrast.mean(axis=(1, 2)), images.mean(axis=(1, 2)), atol=1e-3)
    assert not np.allclose(contrast, images)
    np.testing.assert_array_equal(contrast[..., 0], contrast[..., 2])
    shifted = brightness_contrast(images, (1, 1), brightness=0.1, contrast=0.0).numpy()
    delta = (shifted - images).reshape(4, -1)
    np.testing.assert_allclose(delta, delta[:, :1].repeat(delta.shape[1], 1), atol=1e-3)
    assert (np.abs(delta[:, 0]) <= 25.5 + 1e-3).all() and np.abs(delta).max() > 0.1


def test_mixup_is_convex_combination() -> None:
    b = 6
    images = tf.constant(np.arange(b, dtype=np.float32)[:, None, None, None] * 40.0
                         * np.ones((1, 4, 4, 3), np.float32))
    labels = tf.eye(b)  # every sample its own class: label row i = mixing weights of image i
    mixed_x, mixed_y = mixup(images, labels, alpha=0.4, seed=(5, 6))
    y = mixed_y.numpy()
    assert (y >= 0).all() and (y <= 1).all()
    np.testing.assert_allclose(y.sum(1), 1.0, atol=1e-6)
    assert (np.count_nonzero(y > 1e-6, axis=1) <= 2).all()  # two images at most
    assert (y.max(1) < 1 - 1e-3).any()  # something was actually mixed
    expected = y @ images.numpy().reshape(b, -1)
    np.testing.assert_allclose(mixed_x.numpy().reshape(b, -1), expected, atol=1e-3)


def test_cutout_zeros_a_square() -> None:
    images = tf.fill((3, 32, 32, 3), 255.0)
    out = cutout(images, 0.25, seed=(1, 2)).numpy()
    for img in out:
        zero = (img == 0).all(-1)
        assert zero.sum() == 8 * 8
        rows, cols = np.nonzero(zero)
        assert rows.max() - rows.min() == 7 and cols.max() - cols.min() == 7
        assert (img[~zero] == 255).all()


def test_rician_noise_on_zero_image_is_rayleigh() -> None:
    sigma = 20.0
    out = rician_noise(tf.zeros((4, 64, 64, 3)), sigma, seed=(3, 4)).numpy()
    assert out.min() >= 0.0
    np.testing.assert_array_equal(out[..., 0], out[..., 2])  # grey stays grey
    assert out.mean() == pytest.approx(sigma * math.sqrt(math.pi / 2), rel=0.02)
    # On bright tissue the noise is nearly Gaussian and centred on the signal.
    bright = rician_noise(tf.fill((2, 64, 64, 3), 150.0), sigma, seed=(3, 4)).numpy()
    assert bright.mean() == pytest.approx(150.0 + sigma**2 / 300.0, rel=0.01)
    assert bright.std() == pytest.approx(sigma, rel=0.05)


def test_bias_field_is_smooth_and_multiplicative() -> None:
    strength = 0.5
    rng = np.random.default_rng(7)
    flat = tf.fill((2, 32, 32, 3), 100.0)
    textured = tf.constant(rng.uniform(1.0, 100.0, (2, 32, 32, 3)).astype(np.float32))
    field = bias_field(flat, strength, seed=(9, 9)).numpy() / 100.0
    ratio = bias_field(textured, strength, seed=(9, 9)).numpy() / textured.numpy()
    np.testing.assert_allclose(ratio, field, rtol=1e-4)  # multiplicative: same field
    np.testing.assert_allclose(field[..., 0], field[..., 2])  # one field for all channels
    assert field.min() >= math.exp(-strength) - 1e-5 and field.max() <= math.exp(strength) + 1e-5
    assert field.std() > 0.02  # not constant
    # Smooth: neighbouring pixels differ by a small fraction of the field's range.
    step = max(np.abs(np.diff(field, axis=1)).max(), np.abs(np.diff(field, axis=2)).max())
    assert step < 0.1 * (field.max() - field.min()) + 1e-6
    assert not np.allclose(field[0], field[1])  # one field per image
    black = bias_field(tf.zeros((1, 8, 8, 3)), strength, seed=(1, 1)).numpy()
    np.testing.assert_array_equal(black, 0.0)


# ----------------------------------------------------------------------------- bad input


def test_corrupt_file_skipped_with_warning_or_strict_error(tmp_path: Path,
                                                           caplog: pytest.LogCaptureFixture
                                                           ) -> None:
    root = _write_tree(tmp_path / "data", per_class=2)
    write_png_header_only(root / "glioma" / "broken (1).png", 20, 20)  # truncated PNG
    (root / "no_tumor" / "empty.jpg").write_bytes(b"")
    data = discover_dataset(root)
    cfg = PreprocessConfig(image_size=SIZE)
    with caplog.at_level(logging.WARNING, logger="neuropathology"):
        x, y = _collect(make_dataset(data, cfg, batch_size=4))
    assert x.shape[0] == len(data) - 2 == y.shape[0]
    assert "Skipping 2 unreadable" in caplog.text
    assert "broken (1).png" in caplog.text and "empty.jpg" in caplog.text
    with pytest.raises(ImageReadError) as err:
        make_dataset(data, cfg, strict=True)
    assert "broken (1).png" in str(err.value) and "empty.jpg" in str(err.value)
    ok, bad = check_readable(data.paths)
    assert len(ok) == len(data) - 2 and {p.name for p, _ in bad} == {"broken (1).png",
                                                                      "empty.jpg"}


def test_empty_or_all_bad_dataset_is_a_clear_error(dataset: Dataset, tmp_path: Path) -> None:
    cfg = PreprocessConfig(image_size=SIZE)
    with pytest.raises(ValueError, match="no images"):
        make_dataset(dataset.with_samples(()), cfg)
    for name in ("a", "b"):
        (tmp_path / name).mkdir()
        (tmp_path / name / "x.png").write_bytes(b"garbage")
    with pytest.raises(ValueError, match="none of its 2 images"):
        make_dataset(discover_dataset(tmp_path), cfg)


# ----------------------------------------------------------------------------- class balance


def test_class_weights_balanced() -> None:
    weights = class_weights([0, 0, 0, 1], 2)
    assert weights == pytest.approx({0: 4 / (2 * 3), 1: 4 / (2 * 1)})
    labels = np.array([0] * 6 + [1] * 2 + [2] * 4)
    w = class_weights(labels, 4)
    assert w == pytest.approx({0: 12 / 24, 1: 12 / 8, 2: 12 / 16, 3: 1.0})
    # Each present class carries the same total weight n / k.
    totals = [w[c] * np.sum(labels == c) for c in range(3)]
    np.testing.assert_allclose(totals, 3.0)
    with pytest.raises(ValueError):
        class_weights([0, 3], 2)


def test_oversampling_balances_counts() -> None:
    labels = np.array([0] * 6 + [1] * 2 + [2] * 1)
    idx = oversample_indices(labels, seed=0)
    assert idx.dtype == np.int64
    np.testing.assert_array_equal(np.bincount(labels[idx]), [6, 6, 6])
    assert set(range(len(labels))) <= set(idx.tolist())  # every original kept
    np.testing.assert_array_equal(idx, oversample_indices(labels, seed=0))
    assert not np.array_equal(idx, oversample_indices(labels, seed=1))


def test_normalizations_documented() -> None:
    assert set(NORMALIZATIONS) == {"mobilenetv2", "efficientnet", "resnet50", "unit"}
