"""Exact and near-duplicate detection: popcount, Hamming pairs, union-find, file hashing."""

from __future__ import annotations

import io
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from fixtures import write_dicom, write_image
from neuropathology.data import dedup
from neuropathology.data.dedup import (
    exact_duplicate_groups,
    groups_from_keys,
    hamming_pairs,
    hash_images,
    merge_groups,
    near_duplicate_groups,
    perceptual_hashes,
    phash_array,
    popcount64,
    union_find,
)
from neuropathology.data.io import ImageReadError


def smooth_image(seed: int, size: int = 64) -> np.ndarray:
    """A greyscale image with coarse structure (8x8 random values, bicubic-upsampled).

    Unlike pixel noise it has a stable perceptual hash: re-encoding or resizing keeps it,
    while two different seeds give hashes >= 16 bits apart.
    """
    rng = np.random.default_rng(seed)
    small = rng.integers(0, 256, size=(8, 8), dtype=np.uint8)
    return np.asarray(Image.fromarray(small).resize((size, size), Image.Resampling.BICUBIC))


def bits(*positions: int) -> np.uint64:
    return np.uint64(sum(1 << p for p in positions))


def components_reference(n: int, a: np.ndarray, b: np.ndarray) -> list[set[int]]:
    """Connected components by plain depth-first search, as sets."""
    neighbours: dict[int, set[int]] = {i: set() for i in range(n)}
    for x, y in zip(a.tolist(), b.tolist(), strict=True):
        neighbours[x].add(y)
        neighbours[y].add(x)
    seen: set[int] = set()
    comps = []
    for start in range(n):
        if start in seen:
            continue
        stack, comp = [start], set()
        while stack:
            v = stack.pop()
            if v in comp:
                continue
            comp.add(v)
            stack.extend(neighbours[v] - comp)
        seen |= comp
        comps.append(comp)
    return comps


# --------------------------------------------------------------------------- popcount


@pytest.mark.parametrize("use_bitwise_count", [True, False])
def test_popcount64_matches_python(monkeypatch: pytest.MonkeyPatch, use_bitwise_count: bool) -> None:
    if not use_bitwise_count and hasattr(np, "bitwise_count"):
        monkeypatch.delattr(np, "bitwise_count")  # exercise the byte lookup-table fallback
    rng = np.random.default_rng(0)
    values = rng.integers(0, 2**64 - 1, size=(40, 25), dtype=np.uint64, endpoint=True)
    values[0, 0], values[0, 1] = 0, np.uint64(2**64 - 1)
    expected = np.vectorize(lambda v: bin(int(v)).count("1"))(values)
    got = popcount64(values)
    assert got.shape == values.shape
    np.testing.assert_array_equal(got, expected)
    assert int(popcount64(np.uint64(0b1011))) == 3


# --------------------------------------------------------------------------- pairs and groups


def test_hamming_pairs_match_brute_force_across_blocks() -> None:
    rng = np.random.default_rng(1)
    # Only 10 random low bits: many close pairs, so the comparison is meaningful.
    hashes = rng.integers(0, 1024, size=150).astype(np.uint64) | bits(63)
    i, j, d = hamming_pairs(hashes, max_distance=2, block_rows=7)
    expected = {(a, b): bin(int(hashes[a] ^ hashes[b])).count("1")
                for a in range(150) for b in range(a + 1, 150)
                if bin(int(hashes[a] ^ hashes[b])).count("1") <= 2}
    got = dict(zip(zip(i.tolist(), j.tolist(), strict=True), d.tolist(), strict=True))
    assert len(expected) > 100
    assert got == expected
    assert (i < j).all()


def test_hamming_pairs_skip_invalid_and_reject_negative_distance() -> None:
    hashes = np.array([5, 5, 5], dtype=np.uint64)
    i, j, _ = hamming_pairs(hashes, max_distance=0, valid=np.array([True, False, True]))
    assert list(zip(i.tolist(), j.tolist(), strict=True)) == [(0, 2)]
    with pytest.raises(ValueError, match="max_distance"):
        hamming_pairs(hashes, max_distance=-1)


def test_union_find_matches_reference_components() -> None:
    rng = np.random.default_rng(2)
    for _ in range(30):
        n = int(rng.integers(1, 80))
        m = int(rng.integers(0, 120))
        a, b = rng.integers(0, n, m), rng.integers(0, n, m)
        ids = union_find(n, a, b)
        groups = [set(np.flatnonzero(ids == g).tolist()) for g in range(ids.max() + 1)]
        assert sorted(map(sorted, groups)) == sorted(map(sorted, components_reference(n, a, b)))
        firsts = [min(g) for g in groups]
        assert firsts == sorted(firsts)  # ids in order of first appearance
    with pytest.raises(ValueError, match=r"\[0, 3\)"):
        union_find(3, np.array([0]), np.array([3]))


def test_near_duplicate_groups_are_transitive_and_respect_threshold() -> None:
    base = np.uint64(0x0123_4567_89AB_CDEF)
    hashes = np.array([
        base,                          # 0
        base ^ bits(0, 1, 2),          # 1: 3 bits from 0
        base ^ bits(0, 1, 2, 40, 41, 42),  # 2: 3 bits from 1, 6 from 0 -> joined via 1
        ~base,                         # 3: 64 bits from 0
        ~base ^ bits(10),              # 4: 1 bit from 3
        base ^ bits(*range(20, 28)),   # 5: 8 bits from 0, far from all
    ], dtype=np.uint64)
    np.testing.assert_array_equal(near_duplicate_groups(hashes, max_distance=4), [0, 0, 0, 1, 1, 2])
    np.testing.assert_array_equal(near_duplicate_groups(hashes, max_distance=0), [0, 1, 2, 3, 4, 5])
    np.testing.assert_array_equal(near_duplicate_groups(hashes, max_distance=8), [0, 0, 0, 1, 1, 0])
    valid = np.array([True, False, True, True, True, True])  # 1 unreadable: the bridge is gone
    np.testing.assert_array_equal(near_duplicate_groups(hashes, max_distance=4, valid=valid),
                                  [0, 1, 2, 3, 3, 4])


def test_near_duplicate_grouping_of_3000_hashes() -> None:
    """Correct at dataset scale (speed is measured in benchmarks/, not asserted here)."""
    rng = np.random.default_rng(3)
    hashes = rng.integers(0, 2**64 - 1, size=3000, dtype=np.uint64, endpoint=True)
    hashes[100] = hashes[7] ^ bits(5, 9)
    ids = near_duplicate_groups(hashes, max_distance=4)
    assert ids[100] == ids[7]
    assert len(np.unique(ids)) == 2999
    same = near_duplicate_groups(np.zeros(3000, dtype=np.uint64))  # worst case: 4.5 M pairs
    assert (same == 0).all()


def test_groups_from_keys_and_merge_groups() -> None:
    np.testing.assert_array_equal(groups_from_keys(["p1", None, "p2", "p1", None]), [0, 1, 2, 0, 3])
    patients = np.array([0, 0, 1, 2, 3, 4])
    near = np.array([0, 1, 2, 2, 3, 3])  # item 2 looks like item 3; item 4 like item 5
    np.testing.assert_array_equal(merge_groups(patients, near), [0, 0, 1, 1, 2, 2])
    with pytest.raises(ValueError, match="same length"):
        merge_groups(np.zeros(3), np.zeros(4))


# --------------------------------------------------------------------------- files


@pytest.fixture()
def image_files(tmp_path: Path) -> dict[str, Path]:
    """An original, its byte copy, a resized copy, a JPEG re-encode, a DICOM, two others."""
    original = smooth_image(11)
    files = {
        "original": write_image(tmp_path / "original.png", original),
        "resized": write_image(tmp_path / "resized.png",
                               np.asarray(Image.fromarray(original).resize((56, 56)))),
        "jpeg": write_image(tmp_path / "reencoded.jpg", np.stack([original] * 3, axis=-1),
                            quality=70),
        "dicom": write_dicom(tmp_path / "scan.dcm", original.astype(np.uint16) * 16),
        "other": write_image(tmp_path / "other.png", smooth_image(12)),
        "third": write_image(tmp_path / "third image (1).png", smooth_image(13)),
    }
    files["copy"] = Path(shutil.copyfile(files["original"], tmp_path / "copy of original.png"))
    return files


def test_perceptual_hashes_group_reencoded_and_resized_copies(image_files: dict[str, Path]) -> None:
    order = ["original", "copy", "resized", "jpeg", "dicom", "other", "third"]
    hashes = perceptual_hashes([image_files[k] for k in order])
    assert hashes.dtype == np.uint64 and hashes.shape == (7,)
    distance = popcount64(hashes ^ hashes[0])
    assert distance[1] == 0  # byte copy
    assert (distance[2:5] <= 4).all(), distance  # resized, JPEG, DICOM of the same picture
    assert (distance[5:] >= 10).all(), distance  # different pictures
    assert popcount64(hashes[5] ^ hashes[6]) >= 10
    np.testing.assert_array_equal(near_duplicate_groups(hashes), [0, 0, 0, 0, 0, 1, 2])
    # hashing the decoded array directly gives the same value
    assert phash_array(np.stack([smooth_image(12)] * 3, axis=-1)) == int(hashes[5])


def test_exact_duplicate_groups_use_file_bytes(image_files: dict[str, Path]) -> None:
    order = ["original", "resized", "copy", "jpeg", "other"]
    ids = exact_duplicate_groups([image_files[k] for k in order])
    np.testing.assert_array_equal(ids, [0, 1, 0, 2, 3])
    assert ids.dtype == np.int64


def test_unreadable_files_raise_or_are_recorded(image_files: dict[str, Path], tmp_path: Path) -> None:
    data = image_files["jpeg"].read_bytes()
    truncated = tmp_path / "truncated.jpg"
    truncated.write_bytes(data[: len(data) // 2])
    paths = [image_files["original"], truncated, image_files["other"]]
    with pytest.raises(ImageReadError, match="truncated.jpg"):
        perceptual_hashes(paths)
    result = hash_images(paths, workers=2)
    np.testing.assert_array_equal(result.valid, [True, False, True])
    assert [index for index, _ in result.errors] == [1]
    assert "truncated.jpg" in result.errors[0][1]
    with pytest.raises(OSError):
        exact_duplicate_groups([tmp_path / "missing.png"])


def test_hash_size_and_dtype_validation() -> None:
    image = np.zeros((16, 16, 3), dtype=np.uint8)
    with pytest.raises(ValueError, match="hash_size"):
        phash_array(image, hash_size=9)
    with pytest.raises(ValueError, match="uint8"):
        phash_array(image.astype(np.float32))
    small = phash_array(np.stack([smooth_image(4)] * 3, axis=-1), hash_size=4)
    assert 0 <= small < 2**16
    with pytest.raises(ValueError, match="workers"):
        dedup.default_workers(0)


def test_phash_is_stable_under_png_round_trip() -> None:
    image = np.stack([smooth_image(21)] * 3, axis=-1)
    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, format="PNG")
    reread = np.asarray(Image.open(io.BytesIO(buffer.getvalue())).convert("RGB"))
    assert phash_array(image) == phash_array(reread)
