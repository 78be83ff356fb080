"""Find the labelled images of a dataset directory, whatever public layout it uses.

Brain-MRI datasets are published as class-per-folder trees, optionally under split folders:

* ``root/<class>/*`` - Br35H (``yes``/``no``), a Kaggle ``Training`` folder on its own;
* ``root/<Split>/<class>/*`` - the 4-class Kaggle sets (``Training/glioma_tumor``,
  ``Testing/notumor``, ...), the 17-class set (``Glioblastoma T1C+``, ``Neurocitoma T2`` ...),
  ``train``/``val``/``test`` trees in any letter case;
* images at any depth below a class folder (e.g. per-patient sub-folders).

A folder name becomes a label after Unicode NFC normalisation, so ``Neurocitoma Ácido``
copied from macOS (which stores names decomposed, NFD) equals the same name typed on Linux
(composed, NFC). Optional ``aliases`` (matched case-insensitively) map folder names to
canonical class names, so two datasets can share labels and two folders can merge into one
class. Samples are sorted by path, so the same tree always gives the same dataset - a
prerequisite for seeded, reproducible splits.
"""

from __future__ import annotations

import os
import unicodedata
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from neuropathology.data.io import is_image_file
from neuropathology.utils.helpers import get_logger

__all__ = [
    "KAGGLE_4CLASS_ALIASES",
    "SPLIT_NAMES",
    "Dataset",
    "DatasetError",
    "Sample",
    "discover_dataset",
    "split_for_folder",
]

SPLIT_NAMES: tuple[str, ...] = ("train", "val", "test")

_SPLIT_FOLDERS: dict[str, str] = {
    "training": "train",
    "train": "train",
    "validation": "val",
    "valid": "val",
    "val": "val",
    "testing": "test",
    "test": "test",
}

KAGGLE_4CLASS_ALIASES: dict[str, str] = {
    "glioma": "glioma",
    "glioma_tumor": "glioma",
    "glioma tumor": "glioma",
    "meningioma": "meningioma",
    "meningioma_tumor": "meningioma",
    "meningioma tumor": "meningioma",
    "no_tumor": "no_tumor",
    "no tumor": "no_tumor",
    "notumor": "no_tumor",
    "no": "no_tumor",
    "pituitary": "pituitary",
    "pituitary_tumor": "pituitary",
    "pituitary tumor": "pituitary",
}
"""Folder names of the public 4-class sets -> the canonical names the synthetic set uses.

``no`` is included so Br35H's negatives can join ``no_tumor``; its ``yes`` folder (any tumour
type) deliberately has no alias - it cannot be assigned one of the three tumour classes.
"""

_log = get_logger("data.discovery")


class DatasetError(ValueError):
    """A dataset directory cannot be used; the message names the path and the fix."""


@dataclass(frozen=True)
class Sample:
    """One labelled image. ``split`` is the folder split (``train``/``val``/``test``) if any;
    ``group`` marks images that must stay in one split (e.g. a patient), if known."""

    path: Path
    label: str
    split: str | None = None
    group: str | None = None


@dataclass(frozen=True)
class Dataset:
    """An ordered, immutable set of labelled images with a fixed class list.

    ``class_names`` fixes the integer encoding (``labels`` index into it), so subsets and
    splits of one dataset always agree on what label 2 means. ``ignored`` lists the hidden
    and non-image files discovery skipped (for audits); it takes no part in equality.
    """

    root: Path
    class_names: tuple[str, ...]
    samples: tuple[Sample, ...]
    ignored: tuple[Path, ...] = field(default=(), compare=False, repr=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "root", Path(self.root))
        object.__setattr__(self, "class_names", tuple(self.class_names))
        object.__setattr__(self, "samples", tuple(self.samples))
        object.__setattr__(self, "ignored", tuple(self.ignored))
        if len(set(self.class_names)) != len(self.class_names):
            raise DatasetError(f"{self.root}: duplicate class names in {self.class_names}")
        unknown = {s.label for s in self.samples} - set(self.class_names)
        if unknown:
            raise DatasetError(
                f"{self.root}: sample labels {sorted(unknown)} are not in class_names "
                f"{list(self.class_names)}"
            )

    def __len__(self) -> int:
        return len(self.samples)

    @property
    def labels(self) -> np.ndarray:
        """``int64`` index of each sample's label in ``class_names``."""
        index = {name: i for i, name in enumerate(self.class_names)}
        return np.fromiter(
            (index[s.label] for s in self.samples), dtype=np.int64, count=len(self.samples)
        )

    @property
    def paths(self) -> list[Path]:
        return [s.path for s in self.samples]

    @property
    def splits(self) -> tuple[str, ...]:
        """Folder splits present, in ``SPLIT_NAMES`` order (empty for a flat layout)."""
        present = {s.split for s in self.samples}
        return tuple(name for name in SPLIT_NAMES if name in present)

    def class_counts(self) -> dict[str, int]:
        """Images per class, for every class in ``class_names`` (zero included)."""
        counts = Counter(s.label for s in self.samples)
        return {name: counts.get(name, 0) for name in self.class_names}

    def subset(self, split: str) -> Dataset:
        """The samples of folder split ``split`` (possibly none), with the same class_names."""
        if split not in SPLIT_NAMES:
            raise ValueError(f"unknown split {split!r}; expected one of {SPLIT_NAMES}")
        return self.with_samples(s for s in self.samples if s.split == split)

    def with_samples(self, samples: Iterable[Sample]) -> Dataset:
        """A dataset with the same root and class_names but other samples."""
        return Dataset(
            root=self.root,
            class_names=self.class_names,
            samples=tuple(samples),
            ignored=self.ignored,
        )


# --------------------------------------------------------------------------- discovery


def nfc(name: str) -> str:
    """Unicode NFC form: macOS (NFD) and Linux (NFC) spellings of one name compare equal."""
    return unicodedata.normalize("NFC", name)


def split_for_folder(name: str) -> str | None:
    """``"train"``/``"val"``/``"test"`` for a split folder name (any case), else None."""
    return _SPLIT_FOLDERS.get(nfc(name).strip().casefold())


def _is_hidden(name: str) -> bool:
    """Dot-files (``.DS_Store``, macOS ``._x.jpg`` resource forks) and ``__MACOSX`` folders."""
    return name.startswith(".") or name == "__MACOSX"


def _subdirs(directory: Path) -> list[Path]:
    """Visible sub-directories, sorted by NFC name for a platform-independent order."""
    return sorted(
        (p for p in directory.iterdir() if p.is_dir() and not _is_hidden(p.name)),
        key=lambda p: nfc(p.name),
    )


def _walk_images(folder: Path, ignored: list[Path]) -> list[Path]:
    """All image files below ``folder`` at any depth; hidden and non-image files go to ``ignored``.

    Symlinked directories are followed (datasets are often assembled from links), with a
    visited set of real paths so that a link cycle cannot loop forever.
    """
    found: list[Path] = []
    seen: set[str] = set()
    for dirpath, dirnames, filenames in os.walk(folder, followlinks=True):
        real = os.path.realpath(dirpath)
        if real in seen:
            dirnames[:] = []
            continue
        seen.add(real)
        hidden_dirs = [d for d in dirnames if _is_hidden(d)]
        ignored.extend(Path(dirpath, d) for d in hidden_dirs)
        dirnames[:] = [d for d in dirnames if not _is_hidden(d)]
        for name in filenames:
            path = Path(dirpath, name)
            if _is_hidden(name) or not is_image_file(path):
                ignored.append(path)
            else:
                found.append(path)
    return found


def _alias_lookup(aliases: Mapping[str, str] | None) -> dict[str, str]:
    """Case-insensitive, NFC-normalised alias table."""
    return {nfc(k).strip().casefold(): nfc(v) for k, v in (aliases or {}).items()}


def _label_for(folder: str, table: Mapping[str, str]) -> str:
    name = nfc(folder)
    return table.get(name.strip().casefold(), name)


def _collect_classes(
    directory: Path, split: str | None, table: Mapping[str, str], ignored: list[Path]
) -> list[Sample]:
    """Samples of every class folder directly under ``directory``; loose files are ignored."""
    samples: list[Sample] = []
    for entry in sorted(directory.iterdir(), key=lambda p: nfc(p.name)):
        if entry.is_dir() and not _is_hidden(entry.name):
            label = _label_for(entry.name, table)
            samples.extend(
                Sample(path=p, label=label, split=split) for p in _walk_images(entry, ignored)
            )
        else:
            ignored.append(entry)
    return samples


def _sort_key(sample: Sample, root: Path) -> tuple[str, ...]:
    """Sort by the NFC path parts below the root: the same order on every OS."""
    try:
        parts = sample.path.relative_to(root).parts
    except ValueError:
        parts = sample.path.parts
    return tuple(nfc(part) for part in parts)


def _check_split_classes(root: Path, samples: Sequence[Sample]) -> None:
    """Every split folder must hold the same classes, else labels would silently misalign."""
    per_split: dict[str, set[str]] = {}
    for s in samples:
        per_split.setdefault(s.split or "", set()).add(s.label)
    splits = sorted(per_split, key=SPLIT_NAMES.index)
    for a, b in zip(splits, splits[1:], strict=False):
        if per_split[a] != per_split[b]:
            raise DatasetError(
                f"{root}: split folders hold different classes: {a} has {sorted(per_split[a])}, "
                f"{b} has {sorted(per_split[b])}; rename the folders to match or map them with "
                "aliases"
            )


def _resolve_class_names(
    root: Path, found: Sequence[str], class_names: Sequence[str] | None
) -> tuple[str, ...]:
    """Sorted found labels, or the given ``class_names`` after checking every label is in it."""
    if class_names is None:
        return tuple(sorted(set(found)))
    given = tuple(nfc(c) for c in class_names)
    extra = sorted(set(found) - set(given))
    if extra:
        raise DatasetError(
            f"{root}: class folders {extra} are not in class_names; found classes "
            f"{sorted(set(found))}, expected class_names {list(given)}; pass aliases that map "
            "the folders onto those names, or remove the folders"
        )
    return given


def discover_dataset(
    root: str | os.PathLike[str],
    *,
    aliases: Mapping[str, str] | None = None,
    class_names: Sequence[str] | None = None,
) -> Dataset:
    """Discover a class-per-folder dataset, optionally under split folders.

    If any sub-folder of ``root`` is a split name (``Training``, ``val``, ``TEST`` ...), the
    layout is ``root/<split>/<class>/...`` and other sub-folders (e.g. ``masks``) are ignored;
    otherwise it is ``root/<class>/...``. Labels are NFC folder names mapped through
    ``aliases`` (case-insensitive keys). ``class_names``, if given, fixes the label order and
    must contain every discovered label.

    Raises:
        DatasetError: missing directory, no class folders or images, a single class, split
            folders with different class sets, or folders outside ``class_names``.
    """
    root_path = Path(root).expanduser().absolute()
    if not root_path.is_dir():
        what = "is not a directory" if root_path.exists() else "does not exist"
        raise DatasetError(
            f"{root_path}: dataset directory {what}; pass the folder that holds "
            "the class folders (or the Training/Testing folders)"
        )
    table = _alias_lookup(aliases)
    ignored: list[Path] = []
    subdirs = _subdirs(root_path)
    split_dirs = [(d, split_for_folder(d.name)) for d in subdirs if split_for_folder(d.name)]
    samples: list[Sample] = []
    if split_dirs:
        for d in subdirs:
            if not split_for_folder(d.name):
                _log.info(
                    "%s: ignoring non-split folder %r next to split folders", root_path, d.name
                )
                ignored.append(d)
        ignored.extend(p for p in root_path.iterdir() if not p.is_dir())
        for d, split in split_dirs:
            samples.extend(_collect_classes(d, split, table, ignored))
    else:
        samples = _collect_classes(root_path, None, table, ignored)
    _validate(root_path, samples, subdirs)
    if split_dirs:
        _check_split_classes(root_path, samples)
    names = _resolve_class_names(root_path, [s.label for s in samples], class_names)
    samples.sort(key=lambda s: _sort_key(s, root_path))
    if ignored:
        _log.info("%s: ignored %d hidden or non-image entries", root_path, len(ignored))
    return Dataset(
        root=root_path,
        class_names=names,
        samples=tuple(samples),
        ignored=tuple(sorted(ignored, key=lambda p: tuple(nfc(x) for x in p.parts))),
    )


def _validate(root: Path, samples: Sequence[Sample], subdirs: Sequence[Path]) -> None:
    """No images, or images of a single class, cannot train a classifier."""
    if not subdirs:
        raise DatasetError(
            f"{root}: no class folders found; put the images in one folder per "
            f"class, e.g. {root}/glioma/*.jpg, {root}/no_tumor/*.jpg"
        )
    if not samples:
        raise DatasetError(
            f"{root}: no image files found under the class folders (supported: "
            ".jpg .jpeg .png .bmp .tif .tiff .dcm .dicom .nii .nii.gz)"
        )
    labels = sorted({s.label for s in samples})
    if len(labels) < 2:
        raise DatasetError(
            f"{root}: only one class ({labels[0]!r}) has images; a classifier needs "
            "at least two class folders"
        )
