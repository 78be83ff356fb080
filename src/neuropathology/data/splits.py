"""Stratified, group-aware train/val/test splits and a leakage check.

Why group-aware
---------------
An MRI data set holds several slices per patient and, often, re-saved copies of one slice.
A split made image by image scatters them across train and test, and the test score then
measures recognition of seen patients rather than generalisation. So every image gets a
*group*: explicit groups (``Sample.group``, e.g. a patient id, or the ``groups`` argument)
merged with near-duplicate groups from perceptual hashes (:mod:`neuropathology.data.dedup`).
Whole groups are assigned to splits, so no group ever spans two splits.

The algorithm (greedy stratified group assignment)
--------------------------------------------------
Let ``n_k`` be the number of images of class ``k`` and ``f_s`` the fraction wanted for split
``s``; the target count is ``T[s, k] = f_s * n_k``. Groups are shuffled with the seed, then
ordered largest first (stable, so equal sizes keep the seeded order): big groups are the
hard ones to place, as in bin packing. Each group, with class counts ``c``, goes to the split
whose achieved counts ``A`` it moves *closest* to the targets, measured by the chi-square-like
cost ``sum_k (A[s, k] - T[s, k])**2 / T[s, k]``. Adding ``c`` to split ``s`` changes that cost
by ``sum_k c_k * (2 * (A[s, k] - T[s, k]) + c_k) / T[s, k]``; the split with the smallest
increase wins. For a single image of class ``k`` this is the split with the largest
*relative* deficit of class ``k``, so the class proportions track the targets within about
one image (or one group) per class and split. Same seed, same data -> same split.

Folder splits are honoured: a ``Testing``/``test`` folder *is* the test split and a
``val`` folder *is* the validation split; missing splits are carved from the ``train``
folder with the same algorithm, and the fractions are then fractions of the train folder.
"""

from __future__ import annotations

import dataclasses
import math
import os
import sys
import warnings
from collections.abc import Hashable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from tqdm import tqdm

from neuropathology.data.dedup import (
    groups_from_keys,
    hamming_pairs,
    hash_images,
    merge_groups,
    near_duplicate_groups,
)
from neuropathology.data.discovery import SPLIT_NAMES, Dataset, Sample
from neuropathology.utils.helpers import derive_seed, get_logger

__all__ = [
    "DataLeakageError",
    "LeakPair",
    "SplitWarning",
    "assert_no_leakage",
    "assign_groups",
    "cross_split_pairs",
    "find_leakage",
    "split_dataset",
    "validate_fractions",
]

_LOG = get_logger("data.splits")
_PROGRESS_MIN_FILES = 300  # show a hashing progress bar (stderr) above this many images


class SplitWarning(UserWarning):
    """A split was made, but it is weaker than asked for (a class too small, leakage...)."""


class DataLeakageError(AssertionError):
    """The same or a near-identical image appears in two splits."""


@dataclass(frozen=True)
class LeakPair:
    """Two files in different splits that are the same file or near-identical images."""

    split_a: str
    path_a: Path
    split_b: str
    path_b: Path
    distance: int  # Hamming distance of the pHashes (0 for the same path)

    def to_dict(self) -> dict[str, object]:
        return {"split_a": self.split_a, "path_a": str(self.path_a), "split_b": self.split_b,
                "path_b": str(self.path_b), "distance": int(self.distance)}


# --------------------------------------------------------------------------- validation


def validate_fractions(val_fraction: float, test_fraction: float) -> tuple[float, float, float]:
    """Check the fractions and return ``(train, val, test)``.

    Each must be a finite number in ``[0, 1)`` and together they must leave something for
    training; the error says which value is wrong and what would work.
    """
    values = {"val_fraction": val_fraction, "test_fraction": test_fraction}
    for name, value in values.items():
        if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
            raise TypeError(f"{name} must be a number between 0 and 1, got {value!r}")
        if not math.isfinite(float(value)) or not 0.0 <= float(value) < 1.0:
            raise ValueError(
                f"{name} must be in [0, 1) (e.g. 0.15 for 15 %), got {value!r}"
            )
    train = 1.0 - float(val_fraction) - float(test_fraction)
    if train <= 0.0:
        raise ValueError(
            f"val_fraction + test_fraction = {float(val_fraction) + float(test_fraction):.3f} "
            "leaves nothing for training; their sum must be below 1 (e.g. 0.15 and 0.15)"
        )
    return train, float(val_fraction), float(test_fraction)


# --------------------------------------------------------------------------- core algorithm


def assign_groups(
    labels: np.ndarray,
    groups: np.ndarray,
    fractions: Sequence[float],
    *,
    seed: int,
    num_classes: int | None = None,
) -> np.ndarray:
    """Split index per item (int64, into ``fractions``) by greedy stratified group assignment.

    ``labels`` are class indices, ``groups`` any integer group ids (items sharing an id are
    kept together), ``fractions`` the wanted share of each split (a split with fraction 0
    receives nothing). See the module docstring for the algorithm and its cost function.
    """
    labels = np.asarray(labels, dtype=np.int64).reshape(-1)
    groups = np.asarray(groups, dtype=np.int64).reshape(-1)
    if labels.shape != groups.shape:
        raise ValueError(f"labels ({labels.size}) and groups ({groups.size}) differ in length")
    frac = np.asarray(fractions, dtype=np.float64)
    if frac.ndim != 1 or frac.size == 0 or (frac < 0).any() or not np.isclose(frac.sum(), 1.0):
        raise ValueError(f"fractions must be non-negative and sum to 1, got {list(fractions)}")
    if labels.size == 0:
        return np.zeros(0, dtype=np.int64)
    if labels.min() < 0:
        raise ValueError("labels must be non-negative class indices")
    k = int(labels.max()) + 1 if num_classes is None else int(num_classes)
    group_index = np.unique(groups, return_inverse=True)[1].reshape(-1)
    n_groups = int(group_index.max()) + 1
    counts = np.zeros((n_groups, k), dtype=np.float64)
    np.add.at(counts, (group_index, labels), 1.0)

    targets = frac[:, None] * counts.sum(axis=0)[None, :]  # T[s, k]
    scale = np.where(targets > 0, targets, 1e-9)
    inactive = frac <= 0
    rng = np.random.default_rng(derive_seed("split_groups", int(seed)))
    order = rng.permutation(n_groups)
    order = order[np.argsort(-counts.sum(axis=1)[order], kind="stable")]  # big groups first

    achieved = np.zeros_like(targets)
    split_of_group = np.empty(n_groups, dtype=np.int64)
    for g in order:
        c = counts[g]
        increase = ((2.0 * (achieved - targets) + c) * c / scale).sum(axis=1)
        increase[inactive] = np.inf
        s = int(np.argmin(increase))
        split_of_group[g] = s
        achieved[s] += c
    return split_of_group[group_index]


# --------------------------------------------------------------------------- public API


def split_dataset(
    dataset: Dataset,
    *,
    val_fraction: float = 0.15,
    test_fraction: float = 0.15,
    seed: int = 42,
    groups: Sequence[Hashable | None] | None = None,
    dedup_distance: int | None = 4,
    hashes: np.ndarray | None = None,
) -> dict[str, Dataset]:
    """Split ``dataset`` into ``{"train", "val", "test"}`` datasets, stratified and group-aware.

    Parameters
    ----------
    val_fraction, test_fraction:
        Shares of the images (of the ``train`` folder when the data set has folder splits);
        ``test_fraction`` is unused when a test folder exists, likewise ``val_fraction``.
    seed:
        The same seed gives the same split on the same data.
    groups:
        One group key per sample (``None`` = no group), e.g. a patient id; overrides
        ``Sample.group``. Samples sharing a key always land in the same split.
    dedup_distance:
        Also keep perceptual-hash near duplicates (Hamming distance <= this many bits of the
        64-bit pHash) together; ``None`` skips hashing. Unreadable images are left ungrouped
        (with a warning); ``neuropathology audit`` lists them.
    hashes:
        Precomputed ``uint64`` pHashes aligned with ``dataset.samples`` (skips decoding).

    Returned samples carry their assigned split in ``Sample.split``. A class with too few
    images (or groups) to reach every split triggers a :class:`SplitWarning`, not an error;
    so do near duplicates that cross *folder* splits (they are reported, not moved).
    """
    fractions = validate_fractions(val_fraction, test_fraction)
    samples = tuple(dataset.samples)
    n = len(samples)
    if groups is not None:
        if len(groups) != n:
            raise ValueError(
                f"groups has {len(groups)} entries but the data set at {dataset.root} has {n} "
                "samples; pass one group key (or None) per sample, in dataset.samples order"
            )
        keys: list[Hashable | None] = list(groups)
    else:
        keys = [s.group for s in samples]
    group_ids = groups_from_keys(keys)

    hash_valid: np.ndarray | None = None
    if dedup_distance is not None and n:
        hashes, hash_valid = _hashes_for(samples, hashes)
        near = near_duplicate_groups(hashes, max_distance=dedup_distance, valid=hash_valid)
        group_ids = merge_groups(group_ids, near)

    labels = np.asarray(dataset.labels, dtype=np.int64).reshape(-1)
    folder = [_canonical_split(s.split) for s in samples]
    assigned: list[str | None] = list(folder)
    pool = np.array([f in (None, "train") for f in folder], dtype=bool)
    if any(f is not None for f in folder):
        present = set(folder)
        pool_val = val_fraction if "val" not in present else 0.0
        pool_test = test_fraction if "test" not in present else 0.0
        pool_fractions = (1.0 - pool_val - pool_test, pool_val, pool_test)
        if not pool.any():
            raise ValueError(
                f"{dataset.root} has split folders {sorted(p for p in present if p)} but no "
                "train folder; add a Training/ (or train/) folder, or point at a class-per-folder tree"
            )
    else:
        pool_fractions = fractions
    pool_idx = np.flatnonzero(pool)
    split_index = assign_groups(labels[pool_idx], group_ids[pool_idx], pool_fractions, seed=seed,
                                num_classes=len(dataset.class_names))
    for i, s in zip(pool_idx, split_index, strict=True):
        assigned[int(i)] = SPLIT_NAMES[int(s)]

    result: dict[str, Dataset] = {}
    for name in SPLIT_NAMES:
        chosen = [dataclasses.replace(samples[i], split=name) for i in range(n) if assigned[i] == name]
        result[name] = dataset.with_samples(tuple(chosen))

    _warn_small_classes(dataset, labels, assigned, pool_fractions, pool)
    _warn_crossing_groups(dataset, samples, group_ids, assigned)
    _LOG.info("split %s: %s", dataset.root,
              ", ".join(f"{name}={len(result[name])}" for name in SPLIT_NAMES))
    return result


def cross_split_pairs(
    split_of: Sequence[str | None],
    hashes: np.ndarray,
    *,
    max_distance: int = 4,
    valid: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Pairs ``(i, j, distance)`` of near-duplicate images that sit in different splits.

    The building block of :func:`find_leakage` and of the audit's leakage count.
    """
    split_arr = np.asarray([str(s) for s in split_of], dtype=object)
    i, j, d = hamming_pairs(hashes, max_distance=max_distance, valid=valid)
    cross = split_arr[i] != split_arr[j]
    return i[cross], j[cross], d[cross]


def find_leakage(
    splits: Mapping[str, Dataset | Sequence[str | os.PathLike[str]]],
    *,
    hashes: Mapping[str, np.ndarray] | None = None,
    max_distance: int | None = 4,
) -> list[LeakPair]:
    """Every pair of files in different splits that is the same path or a near duplicate.

    ``splits`` maps a split name to a :class:`Dataset` or a list of paths; ``hashes`` (same
    keys, aligned ``uint64`` arrays) skips decoding. ``max_distance=None`` checks paths only.
    """
    names: list[str] = []
    paths: list[Path] = []
    for name, part in splits.items():
        part_paths = part.paths if isinstance(part, Dataset) else [Path(p) for p in part]
        names.extend([name] * len(part_paths))
        paths.extend(Path(p) for p in part_paths)

    leaks: list[LeakPair] = []
    first_split: dict[Path, tuple[str, Path]] = {}
    for name, path in zip(names, paths, strict=True):
        key = path.resolve()
        if key in first_split and first_split[key][0] != name:
            leaks.append(LeakPair(first_split[key][0], first_split[key][1], name, path, 0))
        first_split.setdefault(key, (name, path))
    if max_distance is None or not paths:
        return leaks

    if hashes is not None:
        missing = [name for name in splits if name not in hashes]
        if missing:
            raise ValueError(f"hashes given for some splits but not for {missing}")
        all_hashes = np.concatenate([np.asarray(hashes[name], dtype=np.uint64).reshape(-1)
                                     for name in splits])
        if all_hashes.size != len(paths):
            raise ValueError(f"hashes hold {all_hashes.size} values for {len(paths)} files")
        valid = None
    else:
        result = hash_images(paths)
        all_hashes, valid = result.hashes, result.valid
    i, j, d = cross_split_pairs(names, all_hashes, max_distance=max_distance, valid=valid)
    for a, b, dist in zip(i.tolist(), j.tolist(), d.tolist(), strict=True):
        if paths[a].resolve() != paths[b].resolve():  # the same path is reported above
            leaks.append(LeakPair(names[a], paths[a], names[b], paths[b], int(dist)))
    return leaks


def assert_no_leakage(
    splits: Mapping[str, Dataset | Sequence[str | os.PathLike[str]]],
    *,
    hashes: Mapping[str, np.ndarray] | None = None,
    max_distance: int | None = 4,
    show: int = 20,
) -> None:
    """Raise :class:`DataLeakageError` listing cross-split duplicates (see :func:`find_leakage`)."""
    leaks = find_leakage(splits, hashes=hashes, max_distance=max_distance)
    if not leaks:
        return
    lines = [f"  [{p.split_a}] {p.path_a}  ~  [{p.split_b}] {p.path_b}  (distance {p.distance})"
             for p in leaks[:show]]
    more = f"\n  ... and {len(leaks) - show} more" if len(leaks) > show else ""
    raise DataLeakageError(
        f"{len(leaks)} image pair(s) appear in two splits (same file or pHash distance <= "
        f"{max_distance}):\n" + "\n".join(lines) + more +
        "\nSplit with neuropathology.data.splits.split_dataset (group-aware), or remove the copies."
    )


# --------------------------------------------------------------------------- internals


def _canonical_split(split: str | None) -> str | None:
    if split is None:
        return None
    lowered = split.lower()
    aliases = {"training": "train", "validation": "val", "valid": "val", "testing": "test"}
    lowered = aliases.get(lowered, lowered)
    if lowered not in SPLIT_NAMES:
        raise ValueError(f"unknown split {split!r}; expected one of {SPLIT_NAMES}")
    return lowered


def _hashes_for(
    samples: Sequence[Sample], hashes: np.ndarray | None
) -> tuple[np.ndarray, np.ndarray | None]:
    if hashes is not None:
        arr = np.asarray(hashes, dtype=np.uint64).reshape(-1)
        if arr.size != len(samples):
            raise ValueError(f"hashes has {arr.size} values for {len(samples)} samples")
        return arr, None
    def bar(results: Iterable[object], total: int) -> Iterable[object]:
        return tqdm(results, total=total, desc="hashing", unit="img", file=sys.stderr,
                    disable=total <= _PROGRESS_MIN_FILES, leave=False)

    result = hash_images([s.path for s in samples], progress=bar)
    if result.errors:
        shown = "; ".join(reason for _, reason in result.errors[:3])
        warnings.warn(
            f"{len(result.errors)} image(s) could not be decoded and are not near-duplicate "
            f"grouped ({shown}{' ...' if len(result.errors) > 3 else ''}). "
            "Run `neuropathology audit DIR` to list them.",
            SplitWarning,
            stacklevel=3,
        )
    return result.hashes, result.valid


def _warn_crossing_groups(
    dataset: Dataset,
    samples: Sequence[Sample],
    group_ids: np.ndarray,
    assigned: Sequence[str | None],
) -> None:
    """Groups can only cross splits through folder splits, which are kept as given: warn."""
    first: dict[int, int] = {}
    crossing: list[tuple[int, int]] = []
    seen_groups: set[int] = set()
    for i, g in enumerate(group_ids.tolist()):
        if g not in first:
            first[g] = i
        elif assigned[first[g]] != assigned[i] and g not in seen_groups:
            seen_groups.add(g)
            crossing.append((first[g], i))
    if crossing:
        a, b = crossing[0]
        warnings.warn(
            f"{len(crossing)} group(s) of duplicates/near duplicates or shared group keys span the "
            f"folder splits of {dataset.root} (e.g. [{assigned[a]}] {samples[a].path} and "
            f"[{assigned[b]}] {samples[b].path}). Folder splits are kept as given, so expect "
            "optimistic test scores; `neuropathology audit DIR` lists them.",
            SplitWarning,
            stacklevel=3,
        )


def _warn_small_classes(
    dataset: Dataset,
    labels: np.ndarray,
    assigned: Sequence[str | None],
    pool_fractions: Sequence[float],
    pool: np.ndarray,
) -> None:
    """Warn for every class that is absent from a split that should have received it."""
    wanted = [name for name, f in zip(SPLIT_NAMES, pool_fractions, strict=True) if f > 0]
    assigned_arr = np.asarray([str(a) for a in assigned], dtype=object)
    problems = []
    for k, class_name in enumerate(dataset.class_names):
        in_pool = pool & (labels == k)
        if not in_pool.any():
            continue
        missing = [s for s in wanted if not ((assigned_arr == s) & in_pool).any()]
        if missing:
            problems.append(f"{class_name!r} ({int(in_pool.sum())} image(s)) has none in "
                            f"{', '.join(missing)}")
    if problems:
        warnings.warn(
            "Some classes are too small (or too tightly grouped) to appear in every split: "
            + "; ".join(problems) + ". Metrics for them on those splits are undefined; "
            "collect more images or lower the fractions.",
            SplitWarning,
            stacklevel=3,
        )
