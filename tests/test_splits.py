"""Stratified, group-aware, seeded splits; folder splits; the leakage check."""

from __future__ import annotations

import shutil
import warnings
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from fixtures import build_class_tree, write_image
from neuropathology.data.discovery import Dataset, Sample, discover_dataset
from neuropathology.data.splits import (
    DataLeakageError,
    SplitWarning,
    assert_no_leakage,
    assign_groups,
    find_leakage,
    split_dataset,
    validate_fractions,
)

FRACTIONS = (0.7, 0.15, 0.15)


def smooth_image(seed: int, size: int = 48) -> np.ndarray:
    """Coarse random structure: a stable perceptual hash, far from other seeds' hashes."""
    rng = np.random.default_rng(seed)
    small = rng.integers(0, 256, size=(8, 8), dtype=np.uint8)
    return np.asarray(Image.fromarray(small).resize((size, size), Image.Resampling.BICUBIC))


def grouped_labels(per_class: int = 240, classes: int = 4, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Balanced labels; groups (patients) of 1-5 images, each group within one class."""
    rng = np.random.default_rng(seed)
    labels, groups = [], []
    group = 0
    for k in range(classes):
        left = per_class
        while left:
            size = min(int(rng.integers(1, 6)), left)
            labels += [k] * size
            groups += [group] * size
            group += 1
            left -= size
    order = rng.permutation(len(labels))  # interleave, as files would be
    return np.array(labels)[order], np.array(groups)[order]


def synthetic_dataset(labels: np.ndarray, groups: np.ndarray | None = None) -> Dataset:
    """A Dataset of (non-existent) paths: enough for splitting without decoding (dedup off)."""
    names = ("glioma", "meningioma", "no_tumor", "pituitary")
    samples = tuple(
        Sample(path=Path(f"/data/{names[k]}/img_{i:04d}.png"), label=names[k],
               group=None if groups is None else f"patient-{groups[i]}")
        for i, k in enumerate(labels.tolist())
    )
    return Dataset(root=Path("/data"), class_names=names, samples=samples)


# --------------------------------------------------------------------------- fractions


def test_validate_fractions() -> None:
    assert validate_fractions(0.15, 0.15) == pytest.approx((0.7, 0.15, 0.15))
    assert validate_fractions(0, 0.2) == pytest.approx((0.8, 0.0, 0.2))
    for bad, match in [((-0.1, 0.1), "val_fraction"), ((0.1, 1.0), "test_fraction"),
                       ((0.6, 0.4), "leaves nothing"), ((float("nan"), 0.1), "val_fraction")]:
        with pytest.raises(ValueError, match=match):
            validate_fractions(*bad)
    with pytest.raises(TypeError, match="test_fraction"):
        validate_fractions(0.1, "0.2")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="leaves nothing"):
        split_dataset(synthetic_dataset(np.zeros(4, dtype=int)), val_fraction=0.5, test_fraction=0.5)


# --------------------------------------------------------------------------- the algorithm


def test_assign_groups_is_stratified_and_keeps_groups_whole() -> None:
    labels, groups = grouped_labels()
    split = assign_groups(labels, groups, FRACTIONS, seed=7)
    for k in range(4):
        in_class = labels == k
        for s, target in enumerate(FRACTIONS):
            share = float(np.mean(split[in_class] == s))
            assert abs(share - target) <= 0.02, (k, s, share)
    for g in np.unique(groups):
        assert len(np.unique(split[groups == g])) == 1, f"group {g} crosses splits"


def test_assign_groups_seed_reproducibility() -> None:
    labels, groups = grouped_labels()
    first = assign_groups(labels, groups, FRACTIONS, seed=1)
    np.testing.assert_array_equal(first, assign_groups(labels, groups, FRACTIONS, seed=1))
    other = assign_groups(labels, groups, FRACTIONS, seed=2)
    assert np.mean(first != other) > 0.2


def test_assign_groups_zero_fraction_and_singletons() -> None:
    labels = np.repeat(np.arange(3), 100)
    split = assign_groups(labels, np.arange(300), (0.8, 0.2, 0.0), seed=0)
    assert not (split == 2).any()
    counts = [[int(np.sum((split == s) & (labels == k))) for s in range(2)] for k in range(3)]
    assert counts == [[80, 20]] * 3  # singletons hit integer targets exactly
    with pytest.raises(ValueError, match="sum to 1"):
        assign_groups(labels, np.arange(300), (0.5, 0.2, 0.2), seed=0)


def test_assign_groups_handles_mixed_label_groups() -> None:
    """Near-duplicate groups can mix labels; whole groups still go to one split."""
    rng = np.random.default_rng(5)
    labels = rng.integers(0, 3, size=600)
    groups = rng.integers(0, 200, size=600)  # groups of ~3 with random labels
    split = assign_groups(labels, groups, FRACTIONS, seed=3)
    for g in np.unique(groups):
        assert len(np.unique(split[groups == g])) == 1
    for s, target in enumerate(FRACTIONS):
        assert abs(np.mean(split == s) - target) <= 0.03


# --------------------------------------------------------------------------- split_dataset


def test_split_dataset_groups_from_samples_and_argument() -> None:
    labels, groups = grouped_labels(per_class=120)
    dataset = synthetic_dataset(labels, groups)
    parts = split_dataset(dataset, seed=3, dedup_distance=None)
    assert set(parts) == {"train", "val", "test"}
    assert sum(len(p) for p in parts.values()) == len(dataset)
    where: dict[str, str] = {}
    for name, part in parts.items():
        assert part.class_names == dataset.class_names
        for sample in part.samples:
            assert sample.split == name
            assert where.setdefault(sample.group, name) == name, "a group crosses splits"
    for name, target in zip(("train", "val", "test"), FRACTIONS, strict=True):
        counts = parts[name].class_counts()
        for cls, n in counts.items():
            assert abs(n / 120 - target) <= 0.03, (name, cls, n)
    # the same seed reproduces the split, another seed changes it
    again = split_dataset(dataset, seed=3, dedup_distance=None)
    assert all(again[k].samples == parts[k].samples for k in parts)
    other = split_dataset(dataset, seed=4, dedup_distance=None)
    assert other["test"].samples != parts["test"].samples

    # the groups argument overrides Sample.group: everything in one group -> one split
    with pytest.warns(SplitWarning, match="too small"):
        one_group = split_dataset(dataset, groups=["all"] * len(dataset), dedup_distance=None)
    assert sorted(len(p) for p in one_group.values()) == [0, 0, len(dataset)]
    with pytest.raises(ValueError, match="one group key"):
        split_dataset(dataset, groups=["a", "b"], dedup_distance=None)


def test_class_too_small_warns_instead_of_crashing() -> None:
    labels = np.array([0] * 40 + [1] * 40 + [2] * 2)
    dataset = synthetic_dataset(labels)
    with pytest.warns(SplitWarning, match="'no_tumor' \\(2 image"):
        parts = split_dataset(dataset, seed=0, dedup_distance=None)
    assert sum(p.class_counts()["no_tumor"] for p in parts.values()) == 2


def test_near_duplicates_never_cross_splits(tmp_path: Path) -> None:
    """Copies, resized and JPEG re-encoded versions of one image stay in one split."""
    groups_expected: list[set[str]] = []
    for cls_index, cls in enumerate(("glioma", "meningioma")):
        for i in range(12):
            seed = 100 * cls_index + i
            base = smooth_image(seed)
            original = write_image(tmp_path / cls / f"img ({i}).png", base)
            members = {original.name}
            if i % 3 == 0:  # every third image has a resized twin and a JPEG re-encode
                resized = Image.fromarray(base).resize((40, 40))
                members.add(write_image(tmp_path / cls / f"img ({i}) small.png",
                                        np.asarray(resized)).name)
                members.add(write_image(tmp_path / cls / f"img ({i}).jpg", base, quality=80).name)
            groups_expected.append({f"{cls}/{m}" for m in members})
    dataset = discover_dataset(tmp_path)
    assert len(dataset) == 24 + 8 * 2
    for seed in range(5):
        parts = split_dataset(dataset, val_fraction=0.25, test_fraction=0.25, seed=seed)
        split_of = {f"{s.path.parent.name}/{s.path.name}": name
                    for name, part in parts.items() for s in part.samples}
        for members in groups_expected:
            assert len({split_of[m] for m in members}) == 1, (seed, members)
        assert_no_leakage(parts)  # and the leakage check agrees


def test_folder_splits_are_honoured(tmp_path: Path) -> None:
    build_class_tree(tmp_path, {"Training/yes": 20, "Training/no": 20,
                                "Testing/yes": 4, "Testing/no": 3})
    dataset = discover_dataset(tmp_path)
    parts = split_dataset(dataset, val_fraction=0.2, seed=0)
    testing = {s.path for s in dataset.samples if s.split == "test"}
    training = {s.path for s in dataset.samples if s.split == "train"}
    assert {s.path for s in parts["test"].samples} == testing
    assert {s.path for s in parts["train"].samples} | {s.path for s in parts["val"].samples} == training
    assert parts["val"].class_counts() == {"no": 4, "yes": 4}  # 20 % of each Training class
    assert all(s.split == "val" for s in parts["val"].samples)

    build_class_tree(tmp_path, {"val/yes": 2, "val/no": 2}, seed=500)
    with_val = discover_dataset(tmp_path)
    parts = split_dataset(with_val, seed=0)
    assert len(parts["val"]) == 4 and len(parts["test"]) == 7 and len(parts["train"]) == 40


def test_folder_split_leakage_is_reported_not_moved(tmp_path: Path) -> None:
    build_class_tree(tmp_path, {"Training/yes": 6, "Training/no": 6, "Testing/yes": 2,
                                "Testing/no": 2})
    leaked = shutil.copyfile(tmp_path / "Training/yes/img_000.png", tmp_path / "Testing/yes/copy.png")
    dataset = discover_dataset(tmp_path)
    with pytest.warns(SplitWarning, match="span the folder splits"):
        parts = split_dataset(dataset, val_fraction=0.2, seed=0)
    assert Path(leaked) in {s.path for s in parts["test"].samples}
    leaks = find_leakage(parts)
    assert [(p.split_b, p.path_b.name, p.distance) for p in leaks] == [("test", "copy.png", 0)]
    assert leaks[0].path_a.name == "img_000.png"
    with pytest.raises(DataLeakageError, match="copy.png"):
        assert_no_leakage(parts)


def test_find_leakage_paths_and_precomputed_hashes(tmp_path: Path) -> None:
    a = write_image(tmp_path / "a.png", smooth_image(1))
    b = write_image(tmp_path / "b.png", smooth_image(2))
    c = write_image(tmp_path / "c.jpg", smooth_image(1), quality=85)  # near duplicate of a
    assert find_leakage({"train": [a], "test": [b]}) == []
    leaks = find_leakage({"train": [a, b], "test": [c]})
    assert [(p.path_a, p.path_b) for p in leaks] == [(a, c)]
    # the same file listed in two splits is found without any hashing
    same = find_leakage({"train": [a], "val": [a]}, max_distance=None)
    assert [(p.split_a, p.split_b, p.distance) for p in same] == [("train", "val", 0)]
    # precomputed hashes are used as given (equal hashes -> a leak, whatever the pixels)
    fake = {"train": np.array([7], dtype=np.uint64), "test": np.array([7], dtype=np.uint64)}
    assert len(find_leakage({"train": [a], "test": [b]}, hashes=fake)) == 1
    with pytest.raises(ValueError, match="not for"):
        find_leakage({"train": [a], "test": [b]}, hashes={"train": fake["train"]})
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert_no_leakage({"train": [a], "test": [b]})
