"""Tests of the built-in synthetic MRI dataset (neuropathology.data.synthetic)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from scipy import ndimage

from neuropathology.data import synthetic as syn
from neuropathology.data.synthetic import (
    CLASS_NAMES,
    SyntheticArrays,
    default_cache_dir,
    describe_slice,
    ensure_dataset,
    generate_arrays,
    generate_slice,
    image_seed,
    read_manifest,
    write_dataset,
)

LESIONS = ("glioma", "meningioma", "pituitary")


# ------------------------------------------------------------------ generation
def test_generate_slice_shapes_dtypes_and_range() -> None:
    for label in CLASS_NAMES:
        image, mask = generate_slice(label, size=48, seed=3)
        assert image.shape == (48, 48) and image.dtype == np.uint8
        assert mask.shape == (48, 48) and mask.dtype == np.bool_
        # a head on a dark, noisy background: both dark and bright pixels are present
        assert image[:3, :3].mean() < 40 and image.max() > 150


def test_same_arguments_same_bytes() -> None:
    for label in CLASS_NAMES:
        a = generate_slice(label, size=64, seed=12345, difficulty=0.3)
        b = generate_slice(label, size=64, seed=12345, difficulty=0.3)
        assert a[0].tobytes() == b[0].tobytes() and a[1].tobytes() == b[1].tobytes()
    other = generate_slice("glioma", size=64, seed=12346, difficulty=0.3)[0]
    assert other.tobytes() != generate_slice("glioma", size=64, seed=12345, difficulty=0.3)[
        0].tobytes()


def test_render_does_not_depend_on_previous_calls() -> None:
    """The per-thread workspace is reused; no state may leak from one image to the next."""
    first = generate_slice("meningioma", size=64, seed=7)[0]
    generate_slice("pituitary", size=64, seed=99, difficulty=1.0)
    generate_slice("glioma", size=96, seed=5)
    assert generate_slice("meningioma", size=64, seed=7)[0].tobytes() == first.tobytes()


def test_generate_arrays_layout_and_independence_from_count() -> None:
    small = generate_arrays(2, size=32, seed=5)
    large = generate_arrays(5, size=32, seed=5)
    assert isinstance(small, SyntheticArrays) and small.class_names == CLASS_NAMES
    assert small.images.shape == (8, 32, 32) and small.images.dtype == np.uint8
    assert small.masks.shape == (8, 32, 32) and small.masks.dtype == np.bool_
    assert small.labels.dtype == np.int64 and len(small) == 8
    assert small.labels.tolist() == [0, 1, 2, 3, 0, 1, 2, 3]  # interleaved: prefixes balanced
    # image i of class c is the same image in a set of 2 or 5 per class
    assert np.array_equal(large.images[:8], small.images)
    assert np.array_equal(large.masks[:8], small.masks)
    # and it is exactly generate_slice with the documented per-image seed
    image, mask = generate_slice("meningioma", size=32, seed=image_seed(5, "train", "meningioma", 1))
    assert np.array_equal(large.images[5], image) and np.array_equal(large.masks[5], mask)
    # train and test seeds differ
    test = generate_arrays(2, size=32, seed=5, split="test")
    assert not np.array_equal(test.images, small.images)
    assert generate_arrays(0, size=32).images.shape == (0, 32, 32)


def test_invalid_arguments_raise_clear_errors() -> None:
    with pytest.raises(ValueError, match="glioma"):
        generate_slice("astrocytoma", size=32, seed=0)
    with pytest.raises(ValueError, match="size"):
        generate_slice("glioma", size=8, seed=0)
    with pytest.raises(ValueError, match="difficulty"):
        generate_slice("glioma", size=32, seed=0, difficulty=1.5)
    with pytest.raises(ValueError, match="per_class"):
        generate_arrays(-1)


# ------------------------------------------------------------------ anatomy and masks
def _centroid(mask: np.ndarray) -> tuple[float, float]:
    ys, xs = np.nonzero(mask)
    return float(xs.mean()), float(ys.mean())


@pytest.mark.parametrize("label", CLASS_NAMES)
def test_masks_match_the_class(label: str) -> None:
    size = 96
    for seed in range(12):
        image, mask = generate_slice(label, size=size, seed=seed)
        info = describe_slice(label, size=size, seed=seed)
        if label == "no_tumor":
            assert not mask.any()
            assert info.lesion_center_px is None
            continue
        assert mask.sum() >= 5, (label, seed)
        # every tumour pixel lies inside the skull (meningiomas are extra-axial but
        # intracranial), and the lesion is a single connected region
        assert not (mask & ~info.intracranial).any(), (label, seed)
        assert ndimage.label(mask)[1] == 1, (label, seed)
        ys, xs = np.nonzero(mask)
        midline = info.midline_distance_px(xs, ys)
        if label == "glioma":
            # intra-axial, in one hemisphere: clearly off the midline, inside the brain
            cx, cy = _centroid(mask)
            assert info.midline_distance_px(cx, cy) >= 0.07 * info.pixels_per_unit, seed
            u, v = info.head_coordinates(xs, ys)
            side = np.sign(u - info.midline_skew * v * v)
            assert abs(side.sum()) == side.size, seed  # never crosses the falx
            edt = ndimage.distance_transform_edt(info.intracranial)
            assert edt[mask].max() >= 3, seed
        elif label == "meningioma":
            # dural-based: touches the inner skull table or the falx
            edt = ndimage.distance_transform_edt(info.intracranial)
            touches_skull = edt[mask].min() <= 1.5
            touches_falx = midline.min() <= 1.5
            assert touches_skull or touches_falx, seed
            assert (info.attachment == "falx") == (touches_falx and not touches_skull) or (
                touches_skull and touches_falx)
        elif label == "pituitary":
            cx, cy = _centroid(mask)
            assert info.midline_distance_px(cx, cy) <= 0.05 * info.pixels_per_unit, seed
            assert info.inferior


def test_slice_level_does_not_give_the_class_away() -> None:
    inferior = {label: [describe_slice(label, size=32, seed=s).inferior for s in range(40)]
                for label in CLASS_NAMES}
    assert all(inferior["pituitary"])
    for label in ("no_tumor", "glioma", "meningioma"):
        share = float(np.mean(inferior[label]))
        assert 0.05 <= share <= 0.5, (label, share)


def test_difficulty_changes_lesions_noise_and_pose() -> None:
    easy = [generate_slice("meningioma", size=64, seed=s, difficulty=0.0) for s in range(8)]
    hard = [generate_slice("meningioma", size=64, seed=s, difficulty=1.0) for s in range(8)]
    assert all(e[0].tobytes() != h[0].tobytes() for e, h in zip(easy, hard, strict=True))
    # smaller lesions and more background noise when harder
    assert np.mean([h[1].sum() for h in hard]) < 0.8 * np.mean([e[1].sum() for e in easy])
    corner = (slice(0, 6), slice(0, 6))
    assert np.mean([h[0][corner].std() for h in hard]) > np.mean([e[0][corner].std() for e in easy])
    rot_easy = [abs(describe_slice("no_tumor", size=32, seed=s, difficulty=0.0).rotation_deg)
                for s in range(20)]
    rot_hard = [abs(describe_slice("no_tumor", size=32, seed=s, difficulty=1.0).rotation_deg)
                for s in range(20)]
    assert max(rot_easy) <= 4.0 < max(rot_hard)


def test_same_head_at_every_size() -> None:
    """Anatomy is drawn before anything size-dependent: 128 px downsampled ~ 64 px."""
    a = generate_slice("glioma", size=64, seed=11, difficulty=0.0)[0].astype(float)
    b = generate_slice("glioma", size=128, seed=11, difficulty=0.0)[0].astype(float)
    b = b.reshape(64, 2, 64, 2).mean(axis=(1, 3))
    other = generate_slice("glioma", size=64, seed=12, difficulty=0.0)[0].astype(float)
    assert np.abs(a - b).mean() < 0.5 * np.abs(a - other).mean()


def test_classes_are_learnable_but_not_trivial() -> None:
    """A linear model on 32x32 pixels beats chance clearly, but does not solve the task."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.preprocessing import StandardScaler

    def features(data: SyntheticArrays) -> np.ndarray:
        x = data.images.astype(np.float32).reshape(len(data), 32, 2, 32, 2).mean(axis=(2, 4))
        return x.reshape(len(data), -1) / 255.0

    train = generate_arrays(100, size=64, seed=3, split="train")
    test = generate_arrays(40, size=64, seed=3, split="test")
    scaler = StandardScaler().fit(features(train))
    model = LogisticRegression(C=0.05, max_iter=300)
    model.fit(scaler.transform(features(train)), train.labels)
    accuracy = float(np.mean(model.predict(scaler.transform(features(test))) == test.labels))
    assert 0.5 < accuracy < 0.97, accuracy


# ------------------------------------------------------------------ the tree on disk
def _tree_files(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*") if p.is_file())


def test_write_dataset_layout_manifest_and_masks(tmp_path: Path) -> None:
    out = write_dataset(tmp_path / "synth", per_class=3, test_per_class=2, size=32, seed=4,
                        difficulty=0.4, workers=1)
    for folder, count in (("Training", 3), ("Testing", 2)):
        for label in CLASS_NAMES:
            names = sorted(p.name for p in (out / folder / label).iterdir())
            assert names == [f"{label}_{i:06d}.png" for i in range(count)]
            masks = sorted(p.name for p in (out / "masks" / folder / label).iterdir())
            assert masks == names
    manifest = json.loads((out / "dataset.json").read_text())
    assert manifest["parameters"] == {"per_class": 3, "test_per_class": 2, "size": 32,
                                      "seed": 4, "difficulty": 0.4}
    assert manifest["class_names"] == list(CLASS_NAMES)
    assert manifest["counts"]["Testing"]["glioma"] == 2
    assert read_manifest(out) == manifest
    # the PNGs hold exactly the in-memory images; masks are 0/255
    train = generate_arrays(3, size=32, seed=4, difficulty=0.4, split="train")
    test = generate_arrays(2, size=32, seed=4, difficulty=0.4, split="test")
    for data, folder in ((train, "Training"), (test, "Testing")):
        for j in range(len(data)):
            label = CLASS_NAMES[data.labels[j]]
            name = f"{label}_{j // len(CLASS_NAMES):06d}.png"
            png = np.asarray(Image.open(out / folder / label / name))
            assert png.dtype == np.uint8 and np.array_equal(png, data.images[j])
            mask = np.asarray(Image.open(out / "masks" / folder / label / name))
            assert set(np.unique(mask)) <= {0, 255}
            assert np.array_equal(mask == 255, data.masks[j])
    # no temporary directories are left beside it
    assert [p.name for p in tmp_path.iterdir()] == ["synth"]


def test_process_pool_writes_identical_bytes(tmp_path: Path) -> None:
    kwargs = dict(per_class=2, test_per_class=1, size=32, seed=8)
    one = write_dataset(tmp_path / "one", workers=1, **kwargs)
    two = write_dataset(tmp_path / "two", workers=2, **kwargs)
    files_one, files_two = _tree_files(one), _tree_files(two)
    assert [p.relative_to(one) for p in files_one] == [p.relative_to(two) for p in files_two]
    for a, b in zip(files_one, files_two, strict=True):
        if a.suffix == ".png":
            assert np.array_equal(np.asarray(Image.open(a)), np.asarray(Image.open(b))), a


def test_ensure_dataset_reuses_cache_and_regenerates_on_change(tmp_path: Path) -> None:
    out = tmp_path / "cache"
    params = dict(per_class=2, test_per_class=1, size=32, seed=1)
    assert ensure_dataset(out, **params) == out
    manifest = out / "dataset.json"
    image = out / "Training" / "glioma" / "glioma_000000.png"
    stamps = (manifest.stat().st_mtime_ns, image.stat().st_mtime_ns)
    assert ensure_dataset(out, **params) == out
    assert (manifest.stat().st_mtime_ns, image.stat().st_mtime_ns) == stamps
    # write_dataset with the same parameters is idempotent as well
    write_dataset(out, **params)
    assert manifest.stat().st_mtime_ns == stamps[0]
    # a parameter change regenerates the tree in place
    before = np.asarray(Image.open(image))
    ensure_dataset(out, **{**params, "seed": 2})
    assert read_manifest(out)["parameters"]["seed"] == 2
    assert not np.array_equal(np.asarray(Image.open(image)), before)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cache"]


def test_ensure_dataset_default_location(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NEUROPATHOLOGY_CACHE", str(tmp_path / "npcache"))
    assert default_cache_dir() == tmp_path / "npcache"
    out = ensure_dataset(per_class=1, test_per_class=1, size=24, seed=3)
    assert out.parent == tmp_path / "npcache" and (out / "dataset.json").is_file()
    assert ensure_dataset(per_class=1, test_per_class=1, size=24, seed=3) == out
    monkeypatch.delenv("NEUROPATHOLOGY_CACHE")
    assert default_cache_dir() == Path.home() / ".cache" / "neuropathology"


def test_refuses_to_overwrite_foreign_directories(tmp_path: Path) -> None:
    foreign = tmp_path / "photos"
    foreign.mkdir()
    (foreign / "holiday.jpg").write_bytes(b"not an MRI")
    with pytest.raises(FileExistsError, match="overwrite"):
        write_dataset(foreign, per_class=1, test_per_class=1, size=24)
    with pytest.raises(FileExistsError, match=str(foreign)):
        ensure_dataset(foreign, per_class=1, test_per_class=1, size=24)
    assert [p.name for p in foreign.iterdir()] == ["holiday.jpg"]
    # a synthetic dataset with other parameters is also protected from write_dataset
    synth = write_dataset(tmp_path / "synth", per_class=1, test_per_class=1, size=24, seed=1)
    with pytest.raises(FileExistsError):
        write_dataset(synth, per_class=1, test_per_class=1, size=24, seed=2)
    write_dataset(synth, per_class=1, test_per_class=1, size=24, seed=2, overwrite=True)
    assert read_manifest(synth)["parameters"]["seed"] == 2
    # an empty directory is fine
    empty = tmp_path / "empty"
    empty.mkdir()
    write_dataset(empty, per_class=1, test_per_class=1, size=24)
    assert (empty / "dataset.json").is_file()


def test_interrupted_write_leaves_no_complete_looking_tree(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    calls = {"n": 0}
    real = syn.generate_slice

    def failing(*args: object, **kwargs: object):
        calls["n"] += 1
        if calls["n"] == 5:
            raise KeyboardInterrupt
        return real(*args, **kwargs)

    monkeypatch.setattr(syn, "generate_slice", failing)
    with pytest.raises(KeyboardInterrupt):
        write_dataset(tmp_path / "synth", per_class=2, test_per_class=1, size=24, workers=1)
    assert list(tmp_path.iterdir()) == []


# ------------------------------------------------------------------ CLI
def test_cli_end_to_end(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from neuropathology.cli import main

    out = tmp_path / "cli"
    argv = ["synth", "--out", str(out), "--per-class", "2", "--test-per-class", "1",
            "--size", "32", "--seed", "6", "--difficulty", "0.7"]
    assert main(argv) == 0
    text = capsys.readouterr().out
    assert str(out) in text and "Training" in text and "Testing" in text
    assert "total" in text and "8" in text
    assert len(list((out / "Training").rglob("*.png"))) == 8
    assert len(list((out / "Testing").rglob("*.png"))) == 4
    assert read_manifest(out)["parameters"]["difficulty"] == 0.7
    stamp = (out / "dataset.json").stat().st_mtime_ns
    assert main(argv) == 0
    assert "reused" in capsys.readouterr().out
    assert (out / "dataset.json").stat().st_mtime_ns == stamp


def test_cli_overwrite_refusal(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from neuropathology.cli import main

    out = tmp_path / "busy"
    out.mkdir()
    (out / "notes.txt").write_text("keep me")
    argv = ["synth", "--out", str(out), "--per-class", "1", "--test-per-class", "1",
            "--size", "24"]
    assert main(argv) == 1
    assert "--overwrite" in capsys.readouterr().err
    assert os.listdir(out) == ["notes.txt"]
    assert main([*argv, "--overwrite"]) == 0
    assert not (out / "notes.txt").exists() and (out / "dataset.json").is_file()
    assert main(["synth", "--out", str(tmp_path / "x"), "--per-class", "0"]) == 2
