"""Exact and near-duplicate detection: SHA-256 of the bytes, perceptual hashes, union-find.

Why this matters
----------------
Public brain-MRI sets are built from scans of a limited number of patients. Several axial
slices of one patient, or the same slice saved twice (re-encoded as JPEG, resized, slightly
cropped or shifted), end up as separate files. If a random split puts one copy in *train* and
another in *test*, the model is tested on images it has effectively memorised and the reported
accuracy overstates what it achieves on new patients. The remedy is to *group* such images and
never let a group span two splits (:mod:`neuropathology.data.splits`), and to report the groups
up front (:mod:`neuropathology.data.audit`).

Two notions of "duplicate" are used:

* **exact** duplicates: byte-identical files, found by the SHA-256 digest of the file bytes.
* **near** duplicates: images whose *perceptual hashes* differ in at most ``max_distance`` bits.

The perceptual hash (pHash, :func:`imagehash.phash`) shrinks the greyscale image to 32x32,
takes its 2-D discrete cosine transform (DCT) and keeps the 8x8 block of lowest frequencies;
each of the 64 bits says whether that coefficient is above the block's median (roughly the
sign pattern of the coarse brightness layout). Low frequencies survive JPEG re-encoding,
resizing and contrast changes, while unrelated images agree on about half of the bits
(Hamming distance about 32). The Hamming distance between two hashes (the number of
differing bits) is therefore a cheap similarity measure: 0 means "the same coarse picture",
and <= 4 bits is, in practice, the same image re-encoded or resized, or an adjacent slice of
the same scan. Because half of the 64 coefficients lie above their median (barring ties),
two hashes almost always differ in an *even* number of bits, so thresholds 4 and 5 behave
alike. Translations
and crops change the hash faster (a shift of a few percent of the width can cost 4-10 bits),
and on MRI, where every axial slice is a bright oval on black, unrelated slices with the same
layout occasionally come within 4 bits: near-duplicate groups are a conservative grouping
for splitting (over-grouping costs little) and a list to inspect, not proof of a copy. When
patient ids are known, pass them as explicit groups as well.

All pairwise distances are computed vectorised (XOR + popcount) in blocks of rows, so a few
thousand images take well under a second; the pairs within the threshold are merged into
groups with a union-find (disjoint-set) structure, so that "A near B" and "B near C" put A, B
and C in one group even when A and C are further apart (transitive closure).
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable, Hashable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import imagehash
import numpy as np
from PIL import Image

from neuropathology.data.io import ImageReadError, read_image

__all__ = [
    "HashResult",
    "default_workers",
    "exact_duplicate_groups",
    "file_sha256",
    "groups_from_keys",
    "hamming_pairs",
    "hash_images",
    "merge_groups",
    "near_duplicate_groups",
    "perceptual_hashes",
    "phash_array",
    "popcount64",
    "union_find",
]

#: Rows of the distance matrix computed at once: 512 x N uint64 (N = 3,000 -> 12 MB).
DEFAULT_BLOCK_ROWS = 512

_BYTE_POPCOUNT = np.array([bin(i).count("1") for i in range(256)], dtype=np.uint8)


# --------------------------------------------------------------------------- hashing


def phash_array(image: np.ndarray, *, hash_size: int = 8) -> int:
    """The pHash of an image array (as returned by ``read_image``) as a Python ``int``.

    ``hash_size ** 2`` bits are produced (64 for the default 8); the bits of the 8x8
    low-frequency DCT block are packed row-major, most significant bit first.
    """
    _check_hash_size(hash_size)
    array = np.asarray(image)
    if array.dtype != np.uint8:
        raise ValueError(f"phash_array expects a uint8 image, got dtype {array.dtype}")
    bits = imagehash.phash(Image.fromarray(array), hash_size=hash_size).hash.reshape(-1)
    return int("".join("1" if bit else "0" for bit in bits), 2)


@dataclass(frozen=True)
class HashResult:
    """Perceptual hashes of a list of files, tolerant of unreadable files.

    ``hashes[i]`` is meaningful only where ``valid[i]`` is true; ``errors`` lists
    ``(index, reason)`` for the files that could not be decoded.
    """

    hashes: np.ndarray
    valid: np.ndarray
    errors: tuple[tuple[int, str], ...]


def hash_images(
    paths: Sequence[str | os.PathLike[str]],
    *,
    hash_size: int = 8,
    workers: int | None = None,
    progress: Callable[[Iterable[object], int], Iterable[object]] | None = None,
) -> HashResult:
    """pHash every file with a thread pool; unreadable files are recorded, not raised.

    Decoding (Pillow, pydicom) releases the GIL for most of its work, so threads give a
    real speed-up without the start-up and pickling cost of processes. ``progress`` may
    wrap the result iterator (e.g. ``lambda it, n: tqdm(it, total=n)``).
    """
    _check_hash_size(hash_size)
    path_list = [Path(p) for p in paths]

    def one(path: Path) -> int | str:
        try:
            return phash_array(read_image(path), hash_size=hash_size)
        except ImageReadError as exc:
            return str(exc)
        except OSError as exc:  # permissions, vanished file
            return f"{path}: {exc}"

    results: Iterable[int | str]
    with ThreadPoolExecutor(max_workers=default_workers(workers)) as pool:
        results = pool.map(one, path_list)
        if progress is not None:
            results = progress(results, len(path_list))
        collected = list(results)
    hashes = np.zeros(len(collected), dtype=np.uint64)
    valid = np.zeros(len(collected), dtype=bool)
    errors: list[tuple[int, str]] = []
    for i, value in enumerate(collected):
        if isinstance(value, str):
            errors.append((i, value))
        else:
            hashes[i] = value
            valid[i] = True
    return HashResult(hashes=hashes, valid=valid, errors=tuple(errors))


def perceptual_hashes(
    paths: Sequence[str | os.PathLike[str]], *, hash_size: int = 8, workers: int | None = None
) -> np.ndarray:
    """pHash of every image as a ``uint64`` array (one 64-bit hash per path).

    Images are decoded with :func:`neuropathology.data.io.read_image`, so every format the
    project reads (DICOM, NIfTI, 16-bit PNG...) is hashed from the same pixels the model sees.
    Raises :class:`~neuropathology.data.io.ImageReadError` naming every unreadable file; use
    :func:`hash_images` to skip them instead.
    """
    result = hash_images(paths, hash_size=hash_size, workers=workers)
    if result.errors:
        listing = "\n  ".join(reason for _, reason in result.errors)
        raise ImageReadError(
            f"{len(result.errors)} file(s) could not be decoded for hashing:\n  {listing}\n"
            "Fix or remove them (`neuropathology audit DIR` lists every bad file)."
        )
    return result.hashes


def file_sha256(path: str | os.PathLike[str], *, chunk_size: int = 1 << 20) -> str:
    """Hex SHA-256 digest of a file's bytes (read in chunks, so large DICOMs are fine)."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(chunk_size), b""):
            digest.update(chunk)
    return digest.hexdigest()


def exact_duplicate_groups(
    paths: Sequence[str | os.PathLike[str]], *, workers: int | None = None
) -> np.ndarray:
    """Group id per path (int64); byte-identical files share an id.

    Ids are ``0..k-1`` in order of first appearance, so a file without a copy has an id of
    its own. A file that cannot be read raises ``OSError`` naming it.
    """
    with ThreadPoolExecutor(max_workers=default_workers(workers)) as pool:
        digests = list(pool.map(file_sha256, [Path(p) for p in paths]))
    return groups_from_keys(digests)


# --------------------------------------------------------------------------- distances


def popcount64(values: np.ndarray) -> np.ndarray:
    """Number of set bits of each element of a ``uint64`` array (as ``uint8``).

    Uses ``np.bitwise_count`` (NumPy >= 2.0, a single CPU instruction per element);
    otherwise views each 64-bit word as 8 bytes and sums a 256-entry lookup table.
    """
    array = np.asarray(values, dtype=np.uint64)
    if hasattr(np, "bitwise_count"):
        return np.asarray(np.bitwise_count(array), dtype=np.uint8)
    as_bytes = np.ascontiguousarray(array).reshape(-1).view(np.uint8).reshape(-1, 8)
    return _BYTE_POPCOUNT[as_bytes].sum(axis=1, dtype=np.uint8).reshape(array.shape)


def hamming_pairs(
    hashes: np.ndarray,
    *,
    max_distance: int = 4,
    valid: np.ndarray | None = None,
    block_rows: int = DEFAULT_BLOCK_ROWS,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """All pairs ``i < j`` whose hashes differ in at most ``max_distance`` bits.

    Returns ``(i, j, distance)`` as int64/int64/uint8 arrays. The upper triangle of the
    N x N distance matrix is computed one block of rows at a time (XOR, then popcount),
    so memory stays at ``block_rows * N`` words while the work is fully vectorised.
    Entries with ``valid[i] == False`` (unreadable images) are never paired.
    """
    hashes = np.asarray(hashes, dtype=np.uint64).reshape(-1)
    if max_distance < 0:
        raise ValueError(f"max_distance must be >= 0, got {max_distance}")
    index = np.arange(hashes.size) if valid is None else np.flatnonzero(np.asarray(valid, bool))
    sub = hashes[index]
    found_i: list[np.ndarray] = []
    found_j: list[np.ndarray] = []
    found_d: list[np.ndarray] = []
    for start in range(0, sub.size, block_rows):
        stop = min(start + block_rows, sub.size)
        # Row r of the block is compared with every column c > r (upper triangle).
        distances = popcount64(sub[start:stop, None] ^ sub[None, start:])
        rows, cols = np.nonzero(distances <= max_distance)
        keep = cols > rows
        rows, cols = rows[keep], cols[keep]
        found_i.append(index[rows + start])
        found_j.append(index[cols + start])
        found_d.append(distances[rows, cols])
    if not found_i:
        empty = np.zeros(0, dtype=np.int64)
        return empty, empty.copy(), np.zeros(0, dtype=np.uint8)
    return (
        np.concatenate(found_i).astype(np.int64),
        np.concatenate(found_j).astype(np.int64),
        np.concatenate(found_d).astype(np.uint8),
    )


# --------------------------------------------------------------------------- grouping


def union_find(n: int, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Group id (``0..k-1`` in order of first appearance) of ``n`` items joined by edges a-b.

    A vectorised union-find: every item points to a parent with a smaller index, and each
    round (1) *unites* the two roots of every edge by pointing the larger root at the
    smaller one and (2) *compresses* paths by pointer jumping (``parent = parent[parent]``)
    until every item points straight at its root. Parents only ever decrease, so no
    cycle can form, and the loop ends when both ends of every edge share a root: the
    roots are then exactly the connected components (the transitive closure of the edges).
    Each round is a handful of NumPy operations, so even millions of edges (3,000 copies of
    one image) are grouped in milliseconds, unlike a per-edge Python loop.
    """
    parent = np.arange(n, dtype=np.int64)
    a = np.asarray(a, dtype=np.int64).reshape(-1)
    b = np.asarray(b, dtype=np.int64).reshape(-1)
    if a.shape != b.shape:
        raise ValueError("edge arrays a and b must have the same length")
    if a.size and (min(a.min(), b.min()) < 0 or max(a.max(), b.max()) >= n):
        raise ValueError(f"edge endpoints must lie in [0, {n})")
    while a.size:
        root_a, root_b = parent[a], parent[b]
        differ = root_a != root_b
        if not differ.any():
            break
        low = np.minimum(root_a[differ], root_b[differ])
        high = np.maximum(root_a[differ], root_b[differ])
        np.minimum.at(parent, high, low)  # union: larger root -> smallest root it touches
        while True:  # find with full path compression (pointer jumping)
            grand = parent[parent]
            if np.array_equal(grand, parent):
                break
            parent = grand
        # Only edges that still cross two components can change anything next round.
        a, b = a[differ], b[differ]
    # Roots are the smallest index of their component, so sorting roots = first appearance.
    _, ids = np.unique(parent, return_inverse=True)
    return ids.astype(np.int64).reshape(-1)


def near_duplicate_groups(
    hashes: np.ndarray,
    *,
    max_distance: int = 4,
    valid: np.ndarray | None = None,
    block_rows: int = DEFAULT_BLOCK_ROWS,
) -> np.ndarray:
    """Group id per hash (int64): hashes within ``max_distance`` bits share a group.

    Grouping is transitive (union-find over all pairs within the threshold). Entries with
    ``valid[i] == False`` get a group of their own. Ids are ``0..k-1`` in order of first
    appearance. See the module docstring for what the Hamming threshold means.
    """
    hashes = np.asarray(hashes, dtype=np.uint64).reshape(-1)
    i, j, _ = hamming_pairs(hashes, max_distance=max_distance, valid=valid, block_rows=block_rows)
    return union_find(hashes.size, i, j)


def groups_from_keys(keys: Sequence[Hashable | None]) -> np.ndarray:
    """Group id per item (int64, first-appearance order); equal keys share a group.

    ``None`` means "no group": such items get an id of their own.
    """
    ids = np.empty(len(keys), dtype=np.int64)
    seen: dict[Hashable, int] = {}
    next_id = 0
    for i, key in enumerate(keys):
        if key is None:
            ids[i] = next_id
            next_id += 1
            continue
        if key not in seen:
            seen[key] = next_id
            next_id += 1
        ids[i] = seen[key]
    return ids


def merge_groups(*labelings: np.ndarray) -> np.ndarray:
    """Finest grouping coarser than every labeling: items sharing an id in any one are joined.

    E.g. merging patient ids with near-duplicate groups: two slices end up together if they
    belong to one patient *or* look alike, and transitively so.
    """
    arrays = [np.asarray(x, dtype=np.int64).reshape(-1) for x in labelings]
    if not arrays:
        raise ValueError("merge_groups needs at least one labeling")
    n = arrays[0].size
    if any(x.size != n for x in arrays):
        raise ValueError("all labelings must have the same length")
    a_parts, b_parts = [], []
    for labels in arrays:
        # Edge from every item to the first item with the same label: a spanning star.
        _, first, inverse = np.unique(labels, return_index=True, return_inverse=True)
        a_parts.append(np.arange(n, dtype=np.int64))
        b_parts.append(first[inverse.reshape(-1)].astype(np.int64))
    return union_find(n, np.concatenate(a_parts), np.concatenate(b_parts))


# --------------------------------------------------------------------------- internals


def _check_hash_size(hash_size: int) -> None:
    if not 2 <= hash_size <= 8:
        raise ValueError(
            f"hash_size must be between 2 and 8 (hash_size**2 bits must fit a uint64), got {hash_size}"
        )


def default_workers(workers: int | None = None) -> int:
    """Thread count for decoding: ``workers`` if given, else CPU count + 2 (at most 8)."""
    if workers is not None:
        if workers < 1:
            raise ValueError(f"workers must be >= 1, got {workers}")
        return workers
    return min(8, (os.cpu_count() or 1) + 2)
