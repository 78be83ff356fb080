"""Audit an image dataset before training on it: ``neuropathology audit DIR``.

A model is only as trustworthy as its data, and the usual problems of public brain-MRI sets
are invisible in a training curve: class imbalance (accuracy then rewards predicting the
majority class), mixed sizes and colour modes, corrupt or truncated files (which would crash
or silently poison an epoch), and duplicates. Exact copies and near-duplicates (the same
slice re-encoded or resized) *within* a split over-weight some images; *across* splits they
are leakage - the test set then contains images the model trained on, and the score
overstates generalisation. The audit reports all of it in one pass, up front.

Every file is decoded completely (so truncated files are caught, not just bad headers) in a
thread pool: Pillow and pydicom release the GIL while decoding, so threads scale across
cores without the cost of processes. Exact duplicates are files with the same SHA-256 of
their bytes; near duplicates are images whose 64-bit perceptual hashes differ in at most
``near_duplicate_distance`` bits (see :mod:`neuropathology.data.dedup` for what the
threshold means), grouped transitively with union-find.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

from neuropathology.data.dedup import (
    default_workers,
    file_sha256,
    groups_from_keys,
    near_duplicate_groups,
    phash_array,
)
from neuropathology.data.discovery import (
    KAGGLE_4CLASS_ALIASES,
    SPLIT_NAMES,
    DatasetError,
    discover_dataset,
)
from neuropathology.data.io import ImageInfo, ImageReadError, read_image, read_image_info
from neuropathology.data.splits import cross_split_pairs
from neuropathology.utils.helpers import format_table

__all__ = [
    "ALIAS_SETS",
    "AuditReport",
    "DuplicateGroup",
    "audit_dataset",
    "configure_parser",
    "run_cli",
]

#: Named alias tables for ``--aliases``.
ALIAS_SETS: dict[str, Mapping[str, str] | None] = {"none": None, "kaggle4": KAGGLE_4CLASS_ALIASES}

#: Split name used for images of a dataset without split folders.
UNSPLIT = "all"

#: Show a progress bar above this many files (small audits finish before it would help).
PROGRESS_MIN_FILES = 300


@dataclass(frozen=True)
class DuplicateGroup:
    """Files that are byte-identical (``kind="exact"``) or look alike (``kind="near"``).

    ``members`` are ``(relative path, split, label)``; ``cross_split`` marks leakage and
    ``label_conflict`` a group whose copies carry different labels (a labelling error).
    """

    kind: str
    members: tuple[tuple[str, str, str], ...]

    @property
    def splits(self) -> tuple[str, ...]:
        return tuple(sorted({m[1] for m in self.members}, key=_split_order))

    @property
    def labels(self) -> tuple[str, ...]:
        return tuple(sorted({m[2] for m in self.members}))

    @property
    def cross_split(self) -> bool:
        return len(self.splits) > 1

    @property
    def label_conflict(self) -> bool:
        return len(self.labels) > 1

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "size": len(self.members),
            "splits": list(self.splits),
            "labels": list(self.labels),
            "cross_split": self.cross_split,
            "label_conflict": self.label_conflict,
            "members": [{"path": p, "split": s, "label": lab} for p, s, lab in self.members],
        }


@dataclass
class AuditReport:
    """Everything :func:`audit_dataset` found; ``to_dict`` for JSON, ``format_table`` for people.

    Counts are per split (``"all"`` when the dataset has no split folders) and overall.
    Image statistics cover the readable images only; unreadable files are listed with
    the reason. Duplicate groups have at least two members; a near-duplicate group is
    reported only if it holds at least two *different* files (byte-identical copies alone
    are an exact group).
    """

    root: str
    class_names: list[str]
    split_names: list[str]
    class_counts: dict[str, dict[str, int]]
    total_counts: dict[str, int]
    n_images: int
    n_readable: int
    n_ignored: int
    width: dict[str, float]
    height: dict[str, float]
    modes: dict[str, int]
    formats: dict[str, int]
    bit_depths: dict[str, int]
    unreadable: list[tuple[str, str]]
    exact_groups: list[DuplicateGroup]
    near_groups: list[DuplicateGroup]
    near_duplicate_distance: int
    cross_split_near_pairs: int
    seconds: float = 0.0
    extra: dict[str, Any] = field(default_factory=dict)

    # ------------------------------------------------------------------ derived numbers

    @property
    def imbalance_ratio(self) -> float:
        """Largest over smallest class count (1.0 = balanced; ``inf`` if a class is empty)."""
        return _imbalance(self.total_counts)

    def split_imbalance(self, split: str) -> float:
        return _imbalance(self.class_counts[split])

    def duplicate_summary(self, kind: str) -> dict[str, int]:
        """Group/file counts for ``kind`` in ``{"exact", "near"}``."""
        groups = self.exact_groups if kind == "exact" else self.near_groups
        files = sum(len(g.members) for g in groups)
        return {
            "groups": len(groups),
            "groups_within_split": sum(not g.cross_split for g in groups),
            "groups_across_splits": sum(g.cross_split for g in groups),
            "files": files,
            "redundant_files": files - len(groups),
            "label_conflicts": sum(g.label_conflict for g in groups),
        }

    @property
    def has_leakage(self) -> bool:
        """True when an exact or near-duplicate group spans two splits."""
        return any(g.cross_split for g in (*self.exact_groups, *self.near_groups))

    # ------------------------------------------------------------------ output

    def to_dict(self) -> dict[str, Any]:
        """A JSON-able dict (plain str/int/float/list/dict; ``inf`` imbalance becomes None)."""
        return {
            "root": self.root,
            "class_names": list(self.class_names),
            "splits": list(self.split_names),
            "n_images": self.n_images,
            "n_readable": self.n_readable,
            "n_unreadable": len(self.unreadable),
            "n_ignored": self.n_ignored,
            "class_counts": {s: dict(c) for s, c in self.class_counts.items()},
            "total_counts": dict(self.total_counts),
            "imbalance_ratio": _finite_or_none(self.imbalance_ratio),
            "split_imbalance_ratio": {s: _finite_or_none(self.split_imbalance(s))
                                      for s in self.split_names},
            "image_size": {"width": dict(self.width), "height": dict(self.height)},
            "modes": dict(self.modes),
            "formats": dict(self.formats),
            "bit_depths": dict(self.bit_depths),
            "unreadable": [{"path": p, "reason": r} for p, r in self.unreadable],
            "duplicates": {
                "near_duplicate_distance": self.near_duplicate_distance,
                "exact": self.duplicate_summary("exact"),
                "near": self.duplicate_summary("near"),
                "cross_split_near_pairs": self.cross_split_near_pairs,
                "leakage": self.has_leakage,
                "exact_groups": [g.to_dict() for g in self.exact_groups],
                "near_groups": [g.to_dict() for g in self.near_groups],
            },
            "seconds": round(self.seconds, 3),
        }

    def format_table(self, *, show_groups: int = 10) -> str:
        """Human-readable tables: counts, sizes, modes, unreadable files, duplicates."""
        out: list[str] = []
        split_word = ", ".join(self.split_names)
        out.append(f"Dataset audit: {self.root}")
        out.append(f"{self.n_images} images in {len(self.class_names)} classes (splits: "
                   f"{split_word}); {self.n_readable} readable, {len(self.unreadable)} unreadable, "
                   f"{self.n_ignored} non-image/hidden entries ignored; {self.seconds:.1f} s")

        rows: list[list[object]] = []
        for name in self.class_names:
            rows.append([name, *(self.class_counts[s][name] for s in self.split_names),
                         self.total_counts[name]])
        rows.append(["(all classes)", *(sum(self.class_counts[s].values()) for s in self.split_names),
                     sum(self.total_counts.values())])
        rows.append(["imbalance max/min", *(_ratio_cell(self.split_imbalance(s))
                                             for s in self.split_names),
                     _ratio_cell(self.imbalance_ratio)])
        out += ["", "Class counts", format_table(rows, ["class", *self.split_names, "total"])]

        if self.n_readable:
            size_rows = [[axis, stats["min"], stats["median"], stats["max"]]
                         for axis, stats in (("width", self.width), ("height", self.height))]
            out += ["", "Image size (pixels, readable images)",
                    format_table(size_rows, ["", "min", "median", "max"])]
            kind_rows: list[list[object]] = []
            for kind, counts in (("format", self.formats), ("mode", self.modes),
                                 ("bit depth", self.bit_depths)):
                kind_rows += [[kind, value, count] for value, count in counts.items()]
            out += ["", "Formats, modes and bit depths", format_table(kind_rows, ["", "value", "images"])]

        out += ["", f"Unreadable files: {len(self.unreadable)}"]
        if self.unreadable:
            out.append(format_table([[p, r] for p, r in self.unreadable], ["path", "reason"]))

        dup_rows = []
        for kind in ("exact", "near"):
            s = self.duplicate_summary(kind)
            dup_rows.append([kind, s["groups"], s["groups_within_split"], s["groups_across_splits"],
                             s["files"], s["redundant_files"], s["label_conflicts"]])
        out += ["", f"Duplicates (exact = same bytes; near = pHash distance <= "
                    f"{self.near_duplicate_distance} of 64 bits)",
                format_table(dup_rows, ["kind", "groups", "within split", "across splits",
                                        "files", "redundant", "label conflicts"])]
        if self.has_leakage:
            out.append(f"LEAKAGE: duplicate groups span splits ({self.cross_split_near_pairs} "
                       "cross-split near-duplicate pairs); test scores will be optimistic.")
        if self.duplicate_summary("near")["label_conflicts"]:
            out.append("Near-duplicate groups with different labels: inspect them. They are "
                       "either one image filed under two classes (a labelling error) or, on "
                       "MRI, unrelated slices with the same layout; try --max-distance 2.")
        interesting = sorted((*self.exact_groups, *self.near_groups),
                             key=lambda g: (not g.cross_split, not g.label_conflict,
                                            -len(g.members)))
        if interesting and show_groups > 0:
            out += ["", f"Duplicate groups (leakage and label conflicts first; "
                        f"{min(show_groups, len(interesting))} of {len(interesting)})"]
            group_rows: list[list[object]] = []
            for number, group in enumerate(interesting[:show_groups], start=1):
                flags = ",".join(f for f, on in (("LEAK", group.cross_split),
                                                 ("LABELS", group.label_conflict)) if on) or "-"
                for path, split, label in group.members:
                    group_rows.append([number, group.kind, flags, split, label, path])
            out.append(format_table(group_rows, ["#", "kind", "flags", "split", "label", "path"]))
        return "\n".join(out)


# --------------------------------------------------------------------------- audit


@dataclass(frozen=True)
class _FileResult:
    sha256: str | None
    info: ImageInfo | None
    phash: int | None
    error: str | None


def _inspect(path: Path) -> _FileResult:
    """Read one file completely: bytes (SHA-256), header facts, full decode, pHash."""
    try:
        digest = file_sha256(path)
    except OSError as exc:
        return _FileResult(None, None, None, f"cannot read file: {exc.strerror or exc}")
    try:
        info = read_image_info(path)
        image = read_image(path)
        return _FileResult(digest, info, phash_array(image), None)
    except ImageReadError as exc:
        return _FileResult(digest, None, None, _strip_path(str(exc), path))
    except (OSError, MemoryError) as exc:  # decoders may raise these past io's net
        return _FileResult(digest, None, None, f"{type(exc).__name__}: {exc}")


def audit_dataset(
    root: str | Path,
    *,
    aliases: Mapping[str, str] | None = None,
    near_duplicate_distance: int = 4,
    workers: int | None = None,
    progress: bool | None = None,
) -> AuditReport:
    """Audit the dataset under ``root`` (class-per-folder, optionally under split folders).

    Args:
        root: the dataset directory, as for :func:`~neuropathology.data.discovery.discover_dataset`.
        aliases: folder name -> class name mapping (e.g. ``KAGGLE_4CLASS_ALIASES``).
        near_duplicate_distance: max Hamming distance (bits of 64) between pHashes of near
            duplicates; 0 finds only pixel-identical-looking images.
        workers: decoding threads (default: CPU count + 2, at most 8).
        progress: show a tqdm bar on stderr; default only above a few hundred files.

    Raises:
        DatasetError: missing or empty directory, a single class, inconsistent splits.
    """
    if isinstance(near_duplicate_distance, bool) or not 0 <= int(near_duplicate_distance) <= 64:
        raise ValueError(f"near_duplicate_distance must be in [0, 64], got {near_duplicate_distance!r}")
    start = time.perf_counter()
    dataset = discover_dataset(root, aliases=aliases)
    samples = dataset.samples
    paths = [s.path for s in samples]
    show = len(paths) > PROGRESS_MIN_FILES if progress is None else progress
    with ThreadPoolExecutor(max_workers=default_workers(workers)) as pool:
        results_iter: Iterable[_FileResult] = pool.map(_inspect, paths)
        with tqdm(results_iter, total=len(paths), desc="audit", unit="img", file=sys.stderr,
                  disable=not show, leave=False) as bar:
            results = list(bar)

    split_of = [s.split or UNSPLIT for s in samples]
    split_names = [name for name in (*SPLIT_NAMES, UNSPLIT) if name in set(split_of)]
    rel = [_relative(p, dataset.root) for p in paths]

    class_counts = {s: {c: 0 for c in dataset.class_names} for s in split_names}
    for sample, split in zip(samples, split_of, strict=True):
        class_counts[split][sample.label] += 1
    total_counts = dataset.class_counts()

    readable = [i for i, r in enumerate(results) if r.error is None]
    infos = [results[i].info for i in readable]
    widths = [info.width for info in infos if info is not None]
    heights = [info.height for info in infos if info is not None]

    # Exact duplicates: same SHA-256 (unreadable-but-present files included: a copied corrupt
    # file is still a copy). Near duplicates: pHash components over decodable images.
    digests = [r.sha256 for r in results]
    exact_ids = groups_from_keys(digests)
    exact_groups = _collect_groups("exact", exact_ids, rel, split_of, samples,
                                   min_distinct=1, digests=digests)
    hashes = np.array([r.phash if r.phash is not None else 0 for r in results], dtype=np.uint64)
    valid = np.array([r.phash is not None for r in results], dtype=bool)
    near_ids = near_duplicate_groups(hashes, max_distance=near_duplicate_distance, valid=valid)
    near_groups = _collect_groups("near", near_ids, rel, split_of, samples,
                                  min_distinct=2, digests=digests)
    pair_i, _, _ = cross_split_pairs(split_of, hashes, max_distance=near_duplicate_distance,
                                     valid=valid)

    return AuditReport(
        root=str(dataset.root),
        class_names=list(dataset.class_names),
        split_names=split_names,
        class_counts=class_counts,
        total_counts=total_counts,
        n_images=len(samples),
        n_readable=len(readable),
        n_ignored=len(dataset.ignored),
        width=_stats(widths),
        height=_stats(heights),
        modes=_sorted_counts(info.mode for info in infos if info is not None),
        formats=_sorted_counts(info.format for info in infos if info is not None),
        bit_depths=_sorted_counts(str(info.bit_depth) for info in infos if info is not None),
        unreadable=[(rel[i], r.error) for i, r in enumerate(results) if r.error is not None],
        exact_groups=exact_groups,
        near_groups=near_groups,
        near_duplicate_distance=int(near_duplicate_distance),
        cross_split_near_pairs=int(pair_i.size),
        seconds=time.perf_counter() - start,
    )


def _collect_groups(
    kind: str,
    ids: np.ndarray,
    rel: Sequence[str],
    split_of: Sequence[str],
    samples: Sequence[Any],
    *,
    min_distinct: int,
    digests: Sequence[str | None],
) -> list[DuplicateGroup]:
    """Groups of >= 2 members (and >= ``min_distinct`` different contents), largest first."""
    by_group: dict[int, list[int]] = {}
    for i, g in enumerate(ids.tolist()):
        if kind == "exact" and digests[i] is None:
            continue
        by_group.setdefault(g, []).append(i)
    groups = []
    for indices in by_group.values():
        if len(indices) < 2 or len({digests[i] for i in indices}) < min_distinct:
            continue
        members = sorted(((rel[i], split_of[i], samples[i].label) for i in indices),
                         key=lambda m: (_split_order(m[1]), m[0]))
        groups.append(DuplicateGroup(kind, tuple(members)))
    groups.sort(key=lambda g: (-len(g.members), g.members[0][0]))
    return groups


# --------------------------------------------------------------------------- small helpers


def _split_order(name: str) -> int:
    order = (*SPLIT_NAMES, UNSPLIT)
    return order.index(name) if name in order else len(order)


def _relative(path: Path, root: Path) -> str:
    try:
        return path.relative_to(root).as_posix()
    except ValueError:
        return str(path)


def _strip_path(message: str, path: Path) -> str:
    """ImageReadError messages start with the path; the report shows the path separately."""
    prefix = f"{path}: "
    return message[len(prefix):] if message.startswith(prefix) else message


def _stats(values: Sequence[int]) -> dict[str, float]:
    if not values:
        return {"min": 0, "median": 0, "max": 0}
    median = statistics.median(values)
    return {"min": int(min(values)), "median": int(median) if float(median).is_integer() else float(median),
            "max": int(max(values))}


def _sorted_counts(values: Iterable[str]) -> dict[str, int]:
    """Counts, most common first (ties alphabetically), as a plain dict."""
    counts = Counter(values)
    return dict(sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])))


def _imbalance(counts: Mapping[str, int]) -> float:
    values = list(counts.values())
    if not values or max(values) == 0:
        return 1.0
    return float("inf") if min(values) == 0 else max(values) / min(values)


def _finite_or_none(value: float) -> float | None:
    return round(value, 4) if np.isfinite(value) else None


def _ratio_cell(value: float) -> str:
    return f"{value:.2f}" if np.isfinite(value) else "inf"


# --------------------------------------------------------------------------- CLI


def configure_parser(parser: argparse.ArgumentParser) -> None:
    """Arguments of ``neuropathology audit``."""
    parser.add_argument("directory", type=Path,
                        help="dataset folder: class folders, or Training/Testing/... split folders")
    parser.add_argument("--json", action="store_true", help="print the report as JSON on stdout")
    parser.add_argument("--aliases", choices=sorted(ALIAS_SETS), default="none",
                        help="map folder names to canonical class names (kaggle4: glioma_tumor -> "
                             "glioma, notumor -> no_tumor, ...)")
    parser.add_argument("--max-distance", type=int, default=4, metavar="N",
                        help="near duplicates: max pHash Hamming distance in bits of 64 (default 4)")
    parser.add_argument("--workers", type=int, default=None, metavar="N",
                        help="decoding threads (default: CPUs + 2, at most 8)")
    parser.add_argument("--show", type=int, default=10, metavar="N",
                        help="duplicate groups listed in the table output (default 10)")


def run_cli(args: argparse.Namespace) -> int:
    """Run the audit; 0 even when it finds problems (they are the output), 2 on bad input."""
    try:
        if args.workers is not None and args.workers < 1:
            raise ValueError(f"--workers must be >= 1, got {args.workers}")
        report = audit_dataset(args.directory, aliases=ALIAS_SETS[args.aliases],
                               near_duplicate_distance=args.max_distance, workers=args.workers)
    except (DatasetError, ValueError) as exc:
        print(f"neuropathology audit: error: {exc}", file=sys.stderr)
        return 2
    if args.json:
        print(json.dumps(report.to_dict(), indent=2))
    else:
        print(report.format_table(show_groups=args.show))
    return 0
