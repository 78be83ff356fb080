"""Dataset discovery on tiny copies of the real public brain-MRI layouts."""

from __future__ import annotations

import unicodedata
from pathlib import Path

import numpy as np
import pytest

from fixtures import (
    KAGGLE_4CLASS_FOLDERS,
    KAGGLE_4CLASS_NEW_FOLDERS,
    SEVENTEEN_CLASS_FOLDERS,
    build_class_tree,
    write_sample_image,
)
from neuropathology.data.discovery import (
    KAGGLE_4CLASS_ALIASES,
    SPLIT_NAMES,
    Dataset,
    DatasetError,
    Sample,
    discover_dataset,
)
from neuropathology.data.io import read_image

CANONICAL_4 = ("glioma", "meningioma", "no_tumor", "pituitary")


def _rel(dataset: Dataset) -> list[str]:
    return [p.relative_to(dataset.root).as_posix() for p in dataset.paths]


# --------------------------------------------------------------------------- real layouts


def test_kaggle_4class_training_testing(tmp_path) -> None:
    names = ["gg (1).jpg", "gg (10).jpg", "gg (2).jpg", "gg (627).jpg"]
    layout = {f"Training/{c}": names for c in KAGGLE_4CLASS_FOLDERS}
    layout |= {f"Testing/{c}": ["image(1).jpg", "image.jpg"] for c in KAGGLE_4CLASS_FOLDERS}
    build_class_tree(tmp_path, layout)
    ds = discover_dataset(tmp_path)
    assert ds.class_names == KAGGLE_4CLASS_FOLDERS
    assert len(ds) == 4 * 4 + 4 * 2
    assert ds.splits == ("train", "test")
    assert ds.class_counts() == dict.fromkeys(KAGGLE_4CLASS_FOLDERS, 6)
    train, test = ds.subset("train"), ds.subset("test")
    assert len(train) == 16 and len(test) == 8 and train.class_names == ds.class_names
    assert {s.split for s in train.samples} == {"train"}
    # Sorted by path: "gg (1)" < "gg (10)" < "gg (2)" (plain string order, deterministic).
    assert _rel(ds)[:4] == [f"Testing/glioma_tumor/{n}" for n in ("image(1).jpg", "image.jpg")] + [
        "Testing/meningioma_tumor/image(1).jpg",
        "Testing/meningioma_tumor/image.jpg",
    ]
    glioma_train = [p.name for p in train.paths if p.parent.name == "glioma_tumor"]
    assert glioma_train == names
    assert ds.labels.dtype == np.int64
    assert list(ds.labels[:2]) == [0, 0]
    for path in ds.paths[:3]:  # file names with spaces and parentheses really read
        assert read_image(path).shape == (8, 8, 3)


def test_kaggle_4class_training_folder_alone(tmp_path) -> None:
    """Pointing at ``Training`` itself (as for the shared Sartaj copy) is a flat layout."""
    build_class_tree(tmp_path / "Training", {c: 2 for c in KAGGLE_4CLASS_FOLDERS}, suffix=".jpg")
    ds = discover_dataset(tmp_path / "Training")
    assert ds.splits == () and len(ds) == 8
    assert all(s.split is None for s in ds.samples)


def test_both_kaggle_sets_share_canonical_names_via_aliases(tmp_path) -> None:
    build_class_tree(tmp_path / "old", {f"Training/{c}": 1 for c in KAGGLE_4CLASS_FOLDERS})
    build_class_tree(
        tmp_path / "new",
        {f"Training/{c}": 1 for c in KAGGLE_4CLASS_NEW_FOLDERS}
        | {f"Testing/{c}": 1 for c in KAGGLE_4CLASS_NEW_FOLDERS},
    )
    old = discover_dataset(tmp_path / "old", aliases=KAGGLE_4CLASS_ALIASES)
    new = discover_dataset(tmp_path / "new", aliases=KAGGLE_4CLASS_ALIASES)
    assert old.class_names == new.class_names == CANONICAL_4
    assert discover_dataset(tmp_path / "new").class_names == KAGGLE_4CLASS_NEW_FOLDERS


def test_seventeen_class_names_with_spaces_accents_plus(tmp_path) -> None:
    layout = {name: ["a (1).jpg", "b.png"] for name in SEVENTEEN_CLASS_FOLDERS}
    build_class_tree(tmp_path, layout)
    ds = discover_dataset(tmp_path)
    assert ds.class_names == tuple(sorted(SEVENTEEN_CLASS_FOLDERS))
    assert "Glioblastoma T1C+" in ds.class_names and "Neurocitoma Ácido T1" in ds.class_names
    assert set(ds.class_counts().values()) == {2}
    glioblastoma = ds.class_names.index("Glioblastoma T1C+")
    assert {ds.paths[i].parent.name for i in np.flatnonzero(ds.labels == glioblastoma)} == {
        "Glioblastoma T1C+"
    }


def test_br35h_yes_no_flat(tmp_path) -> None:
    build_class_tree(
        tmp_path, {"yes": ["y0.jpg", "y1.jpg", "y10.jpg"], "no": ["no0.jpg", "no 1.jpg"]}
    )
    ds = discover_dataset(tmp_path)
    assert ds.class_names == ("no", "yes") and ds.splits == ()
    assert ds.class_counts() == {"no": 2, "yes": 3}
    aliased = discover_dataset(tmp_path, aliases=KAGGLE_4CLASS_ALIASES)
    assert aliased.class_names == ("no_tumor", "yes")  # 'yes' keeps its own name


# --------------------------------------------------------------------------- names and aliases


def test_nfd_and_nfc_folder_names_are_one_class(tmp_path) -> None:
    name = "Neurocitoma Ácido T1"
    nfd, nfc = unicodedata.normalize("NFD", name), unicodedata.normalize("NFC", name)
    assert nfd != nfc
    build_class_tree(
        tmp_path,
        {f"Training/{nfd}": 2, "Training/Other": 1, f"Testing/{nfc}": 1, "Testing/Other": 1},
    )
    ds = discover_dataset(tmp_path)
    assert ds.class_names == (nfc, "Other")  # Python string order: 'N' < 'O'
    assert ds.class_counts()[nfc] == 3
    for sample in ds.samples:  # labels normalised, paths kept as stored on disk
        assert sample.path.exists()


def test_nfd_and_nfc_siblings_merge(tmp_path) -> None:
    name = "Ependimoma Ácido"
    build_class_tree(
        tmp_path,
        {unicodedata.normalize("NFD", name): 1, unicodedata.normalize("NFC", name): 1, "x": 1},
    )
    assert discover_dataset(tmp_path).class_counts() == {name: 2, "x": 1}


def test_aliases_case_insensitive_and_merge(tmp_path) -> None:
    build_class_tree(tmp_path, {"glioma_tumor": 2, "Glioma": 1, "NOTUMOR": 1})
    ds = discover_dataset(
        tmp_path, aliases={"GLIOMA_TUMOR": "glioma", "glioma": "glioma", "notumor": "no_tumor"}
    )
    assert ds.class_counts() == {"glioma": 3, "no_tumor": 1}
    assert {p.parent.name for p, label in zip(ds.paths, ds.labels, strict=True) if label == 0} == {
        "glioma_tumor",
        "Glioma",
    }


def test_class_names_fix_order_and_allow_missing_classes(tmp_path) -> None:
    build_class_tree(tmp_path, {"pituitary": 1, "glioma": 2})
    ds = discover_dataset(tmp_path, class_names=["pituitary", "no_tumor", "glioma"])
    assert ds.class_names == ("pituitary", "no_tumor", "glioma")
    assert ds.class_counts() == {"pituitary": 1, "no_tumor": 0, "glioma": 2}
    assert sorted(ds.labels.tolist()) == [0, 2, 2]


def test_class_names_rejects_unknown_folders(tmp_path) -> None:
    build_class_tree(tmp_path, {"glioma": 1, "meningioma": 1, "weird": 1})
    with pytest.raises(
        DatasetError,
        match=r"\['weird'\].*glioma.*meningioma.*weird.*expected"
        r" class_names \['glioma', 'meningioma'\]",
    ):
        discover_dataset(tmp_path, class_names=["glioma", "meningioma"])


# --------------------------------------------------------------------------- layouts


@pytest.mark.parametrize(
    ("folders", "splits"),
    [
        (("train", "val", "test"), ("train", "val", "test")),
        (("TRAIN", "Validation", "TEST"), ("train", "val", "test")),
        (("Training", "valid"), ("train", "val")),
        (("training", "Testing"), ("train", "test")),
    ],
)
def test_split_folder_names_any_case(tmp_path, folders, splits) -> None:
    build_class_tree(tmp_path, {f"{f}/{c}": 1 for f in folders for c in ("a", "b")})
    ds = discover_dataset(tmp_path)
    assert ds.splits == splits
    assert all(len(ds.subset(s)) == 2 for s in splits)
    assert set(splits) <= set(SPLIT_NAMES)


def test_nested_images_any_depth(tmp_path) -> None:
    build_class_tree(
        tmp_path,
        {"a": ["patient1/s1.png", "patient1/deep/er/s2.png", "s3.png"], "b": ["p2/s1.png"]},
    )
    ds = discover_dataset(tmp_path)
    assert ds.class_counts() == {"a": 3, "b": 1}


def test_hidden_and_non_image_files_ignored_and_counted(tmp_path) -> None:
    build_class_tree(
        tmp_path,
        {
            "yes": ["y0.jpg", "._y0.jpg", ".hidden/y9.jpg"],
            "no": ["n0.png", "notes.txt"],
            "__MACOSX/yes": ["y0.jpg"],
        },
    )
    (tmp_path / "yes" / ".DS_Store").write_bytes(b"\0\0\0\1Bud1")
    (tmp_path / "README.md").write_text("readme")
    (tmp_path / "no" / "Thumbs.db").write_bytes(b"x")
    ds = discover_dataset(tmp_path)
    assert _rel(ds) == ["no/n0.png", "yes/y0.jpg"]
    ignored = {p.relative_to(tmp_path).as_posix() for p in ds.ignored}
    assert ignored == {
        "yes/._y0.jpg",
        "yes/.hidden",
        "yes/.DS_Store",
        "no/notes.txt",
        "no/Thumbs.db",
        "README.md",
        "__MACOSX",
    }


def test_non_split_folder_beside_splits_is_ignored(tmp_path) -> None:
    """The synthetic tree has ``masks/`` next to ``Training``/``Testing``: not a class."""
    build_class_tree(
        tmp_path,
        {"Training/a": 2, "Training/b": 2, "Testing/a": 1, "Testing/b": 1, "masks/Training/a": 2},
    )
    (tmp_path / "dataset.json").write_text("{}")
    ds = discover_dataset(tmp_path)
    assert ds.class_names == ("a", "b") and len(ds) == 6
    assert tmp_path.absolute() / "masks" in ds.ignored


def test_mixed_formats_in_class_folders(tmp_path) -> None:
    build_class_tree(
        tmp_path, {"a": ["x.dcm", "y.nii.gz", "z.PNG", "w.TIFF"], "b": ["v.bmp", "u.jpeg"]}
    )
    ds = discover_dataset(tmp_path)
    assert ds.class_counts() == {"a": 4, "b": 2}
    for path in ds.paths:
        image = read_image(path)
        assert image.dtype == np.uint8 and image.ndim == 3 and image.shape[2] == 3


def test_order_is_deterministic_and_sorted(tmp_path) -> None:
    build_class_tree(tmp_path / "one", {"b": ["z.png", "a.png"], "a": ["m.png", "c.png"]})
    build_class_tree(tmp_path / "two", {"a": ["c.png", "m.png"], "b": ["a.png", "z.png"]})
    one, two = discover_dataset(tmp_path / "one"), discover_dataset(tmp_path / "two")
    assert _rel(one) == _rel(two) == ["a/c.png", "a/m.png", "b/a.png", "b/z.png"]
    assert one == discover_dataset(tmp_path / "one")


def test_relative_root_gives_absolute_paths(tmp_path, monkeypatch) -> None:
    build_class_tree(tmp_path / "data", {"a": 1, "b": 1})
    monkeypatch.chdir(tmp_path)
    ds = discover_dataset("data")
    assert ds.root.is_absolute() and all(p.is_absolute() and p.exists() for p in ds.paths)


# --------------------------------------------------------------------------- errors


def test_missing_directory(tmp_path) -> None:
    with pytest.raises(DatasetError, match=r"nowhere.*does not exist"):
        discover_dataset(tmp_path / "nowhere")
    file = write_sample_image(tmp_path / "f.png")
    with pytest.raises(DatasetError, match="is not a directory"):
        discover_dataset(file)


def test_no_class_folders(tmp_path) -> None:
    write_sample_image(tmp_path / "loose.png")
    with pytest.raises(DatasetError, match="no class folders"):
        discover_dataset(tmp_path)


def test_class_folders_without_images(tmp_path) -> None:
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    (tmp_path / "b" / "notes.txt").write_text("x")
    with pytest.raises(DatasetError, match="no image files"):
        discover_dataset(tmp_path)


def test_single_class(tmp_path) -> None:
    build_class_tree(tmp_path, {"glioma": 3})
    (tmp_path / "empty" / "sub").mkdir(parents=True)  # a class folder without images
    with pytest.raises(DatasetError, match=r"only one class \('glioma'\)"):
        discover_dataset(tmp_path)


def test_splits_with_different_classes(tmp_path) -> None:
    build_class_tree(
        tmp_path,
        {
            "Training/a": 1,
            "Training/b": 1,
            "Training/c": 1,
            "Testing/a": 1,
            "Testing/B": 1,
            "Testing/c": 1,
        },
    )
    with pytest.raises(
        DatasetError, match=r"train has \['a', 'b', 'c'\].*test has \['B', 'a', 'c'\]"
    ):
        discover_dataset(tmp_path)
    # ... which an alias repairs:
    assert discover_dataset(tmp_path, aliases={"B": "b"}).class_counts() == {"a": 2, "b": 2, "c": 2}


# --------------------------------------------------------------------------- Dataset API


def test_dataset_methods(tmp_path) -> None:
    build_class_tree(tmp_path, {"Training/a": 2, "Training/b": 1, "Testing/a": 1, "Testing/b": 1})
    ds = discover_dataset(tmp_path)
    assert len(ds.subset("val")) == 0 and ds.subset("val").class_names == ds.class_names
    with pytest.raises(ValueError, match="unknown split"):
        ds.subset("Training")
    few = ds.with_samples(ds.samples[:2])
    assert len(few) == 2 and few.root == ds.root and few.class_names == ds.class_names
    with pytest.raises(DatasetError, match="not in class_names"):
        ds.with_samples([Sample(path=Path("x.png"), label="zzz")])
    with pytest.raises(DatasetError, match="duplicate"):
        Dataset(root=tmp_path, class_names=("a", "a"), samples=())
    assert isinstance(ds.paths, list) and len(ds.paths) == len(ds) == 5
    assert ds.labels.tolist() == [0, 1, 0, 0, 1]  # Testing/a, Testing/b, Training/a x2, Training/b


def test_shared_sartaj_tree_is_never_needed(tmp_path) -> None:
    """Guard: tests build their own trees; this one just proves a 2x2 image tree suffices."""
    build_class_tree(tmp_path, {"a": 1, "b": 1}, size=2)
    assert len(discover_dataset(tmp_path)) == 2
