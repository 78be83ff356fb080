"""The dataset audit: every number of the report on a tiny tree, JSON, tables and the CLI."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from fixtures import build_class_tree, write_image
from neuropathology.cli import main
from neuropathology.data.audit import AuditReport, audit_dataset
from neuropathology.data.discovery import KAGGLE_4CLASS_ALIASES, DatasetError


def smooth_image(seed: int, size: tuple[int, int] = (64, 64)) -> np.ndarray:
    """Coarse random structure (8x8 upsampled): stable pHash, >= 16 bits from other seeds."""
    rng = np.random.default_rng(seed)
    small = rng.integers(0, 256, size=(8, 8), dtype=np.uint8)
    return np.asarray(Image.fromarray(small).resize(size, Image.Resampling.BICUBIC))


@pytest.fixture()
def dataset_tree(tmp_path: Path) -> Path:
    """Training/Testing tree with copies, near copies, a 16-bit PNG and a truncated JPEG.

    Training/glioma:     a0 (L), a0 copy (bytes of a0), a1 (RGB), a1 small.jpg (a1 resized to
                         48x40, JPEG), a2 (L)
    Training/meningioma: m0 (L), m1 (16-bit PNG), broken.jpg (truncated)
    Testing/glioma:      t0 (80x72, L)
    Testing/meningioma:  m0 leaked.png (bytes of Training m0), t1.jpg (a2 re-encoded as JPEG)
    plus notes.txt at the root and a .DS_Store: ignored.
    """
    root = tmp_path / "brain mri"
    train_g, train_m = root / "Training" / "glioma", root / "Training" / "meningioma"
    test_g, test_m = root / "Testing" / "glioma", root / "Testing" / "meningioma"
    a0 = write_image(train_g / "a0.png", smooth_image(0))
    shutil.copyfile(a0, train_g / "a0 copy.png")
    a1 = np.stack([smooth_image(1)] * 3, axis=-1)
    write_image(train_g / "a1.png", a1)
    write_image(train_g / "a1 small.jpg", np.asarray(Image.fromarray(a1).resize((48, 40))),
                quality=85)
    write_image(train_g / "a2.png", smooth_image(2))
    m0 = write_image(train_m / "m0.png", smooth_image(10))
    write_image(train_m / "m1.png", smooth_image(11).astype(np.uint16) * 257, mode="I;16")
    full = write_image(train_m / "broken.jpg", np.stack([smooth_image(12, (96, 96))] * 3, -1),
                       quality=95).read_bytes()
    (train_m / "broken.jpg").write_bytes(full[: int(len(full) * 0.7)])
    write_image(test_g / "t0.png", smooth_image(20, (80, 72)))
    write_image(test_m / "t1.jpg", smooth_image(2), quality=80)
    shutil.copyfile(m0, test_m / "m0 leaked.png")
    (root / "notes.txt").write_text("not an image")
    (train_g / ".DS_Store").write_bytes(b"\x00\x01")
    return root


def test_audit_report_numbers(dataset_tree: Path) -> None:
    report = audit_dataset(dataset_tree, workers=2)
    assert isinstance(report, AuditReport)
    assert report.root == str(dataset_tree.absolute())
    assert report.class_names == ["glioma", "meningioma"]
    assert report.split_names == ["train", "test"]
    assert report.class_counts == {"train": {"glioma": 5, "meningioma": 3},
                                   "test": {"glioma": 1, "meningioma": 2}}
    assert report.total_counts == {"glioma": 6, "meningioma": 5}
    assert report.imbalance_ratio == pytest.approx(6 / 5)
    assert report.split_imbalance("train") == pytest.approx(5 / 3)
    assert report.split_imbalance("test") == pytest.approx(2.0)
    assert (report.n_images, report.n_readable, report.n_ignored) == (11, 10, 2)

    # sizes and modes of the 10 readable images
    assert report.width == {"min": 48, "median": 64, "max": 80}
    assert report.height == {"min": 40, "median": 64, "max": 72}
    assert report.formats == {"PNG": 8, "JPEG": 2}
    assert report.modes == {"L": 7, "RGB": 2, "I;16": 1}
    assert report.bit_depths == {"8": 9, "16": 1}

    assert len(report.unreadable) == 1
    path, reason = report.unreadable[0]
    assert path == "Training/meningioma/broken.jpg"
    assert "truncated" in reason.lower() and str(dataset_tree) not in reason

    # exact: {a0, a0 copy} within train; {m0, m0 leaked} across train/test
    exact = {frozenset(p for p, _, _ in g.members): g for g in report.exact_groups}
    assert set(exact) == {
        frozenset({"Training/glioma/a0.png", "Training/glioma/a0 copy.png"}),
        frozenset({"Training/meningioma/m0.png", "Testing/meningioma/m0 leaked.png"}),
    }
    assert report.duplicate_summary("exact") == {
        "groups": 2, "groups_within_split": 1, "groups_across_splits": 1, "files": 4,
        "redundant_files": 2, "label_conflicts": 0}
    # near: {a1, a1 small.jpg} within train; {a2 (glioma), t1.jpg (meningioma)} across, and
    # with conflicting labels. Byte-identical pairs are not repeated as near groups.
    near = {frozenset(p for p, _, _ in g.members): g for g in report.near_groups}
    assert set(near) == {
        frozenset({"Training/glioma/a1.png", "Training/glioma/a1 small.jpg"}),
        frozenset({"Training/glioma/a2.png", "Testing/meningioma/t1.jpg"}),
    }
    leak = near[frozenset({"Training/glioma/a2.png", "Testing/meningioma/t1.jpg"})]
    assert leak.cross_split and leak.label_conflict
    assert leak.splits == ("train", "test") and leak.labels == ("glioma", "meningioma")
    assert report.duplicate_summary("near") == {
        "groups": 2, "groups_within_split": 1, "groups_across_splits": 1, "files": 4,
        "redundant_files": 2, "label_conflicts": 1}
    assert report.cross_split_near_pairs == 2  # m0 ~ m0 leaked, a2 ~ t1
    assert report.has_leakage
    assert report.near_duplicate_distance == 4


def test_audit_to_dict_is_json_and_table_is_readable(dataset_tree: Path) -> None:
    report = audit_dataset(dataset_tree)
    data = json.loads(json.dumps(report.to_dict()))
    assert data["n_images"] == 11 and data["n_unreadable"] == 1
    assert data["class_counts"]["test"] == {"glioma": 1, "meningioma": 2}
    assert data["imbalance_ratio"] == pytest.approx(1.2)
    assert data["image_size"]["width"]["max"] == 80
    assert data["duplicates"]["exact"]["groups_across_splits"] == 1
    assert data["duplicates"]["near"]["label_conflicts"] == 1
    assert data["duplicates"]["leakage"] is True
    assert data["unreadable"][0]["path"] == "Training/meningioma/broken.jpg"
    members = data["duplicates"]["near_groups"][0]["members"]
    assert {"path", "split", "label"} == set(members[0])

    table = report.format_table()
    for text in ("Class counts", "imbalance max/min", "1.20", "Image size", "I;16",
                 "Unreadable files: 1", "broken.jpg", "Duplicates", "LEAKAGE", "m0 leaked.png"):
        assert text in table, text


def test_audit_of_clean_unsplit_tree(tmp_path: Path) -> None:
    build_class_tree(tmp_path, {"yes": 3, "no": 1}, size=12)
    report = audit_dataset(tmp_path, near_duplicate_distance=0)
    assert report.split_names == ["all"]
    assert report.class_counts == {"all": {"no": 1, "yes": 3}}
    assert report.imbalance_ratio == pytest.approx(3.0)
    assert report.exact_groups == [] and report.near_groups == []
    assert not report.has_leakage and report.unreadable == []
    assert report.modes == {"RGB": 4} and report.width == {"min": 12, "median": 12, "max": 12}
    assert "LEAKAGE" not in report.format_table()
    with pytest.raises(ValueError, match="near_duplicate_distance"):
        audit_dataset(tmp_path, near_duplicate_distance=65)
    with pytest.raises(DatasetError):
        audit_dataset(tmp_path / "missing")


def test_audit_aliases_and_progress(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    build_class_tree(tmp_path, {"glioma_tumor": 2, "notumor": 2})
    report = audit_dataset(tmp_path, aliases=KAGGLE_4CLASS_ALIASES, progress=True)
    assert report.class_names == ["glioma", "no_tumor"]
    assert "audit" in capsys.readouterr().err  # the progress bar went to stderr


# --------------------------------------------------------------------------- CLI


def test_cli_json_and_table(dataset_tree: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["audit", str(dataset_tree), "--json"]) == 0  # findings are not failures
    data = json.loads(capsys.readouterr().out)
    assert data["duplicates"]["exact"]["groups"] == 2
    assert data["duplicates"]["near_duplicate_distance"] == 4

    assert main(["audit", str(dataset_tree), "--max-distance", "64", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["duplicates"]["near"]["groups"] == 1  # 64 bits: every readable image is "near"
    assert data["duplicates"]["near"]["files"] == 10

    assert main(["audit", str(dataset_tree), "--show", "1"]) == 0
    out = capsys.readouterr().out
    assert "Class counts" in out and "Duplicate groups" in out and "1 of 4" in out


def test_cli_aliases(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    build_class_tree(tmp_path, {"meningioma_tumor": 1, "no": 1, "pituitary_tumor": 1})
    assert main(["audit", str(tmp_path), "--aliases", "kaggle4", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["class_names"] == ["meningioma", "no_tumor", "pituitary"]


@pytest.mark.parametrize("case", ["missing", "empty", "bad-distance", "bad-workers"])
def test_cli_bad_input_exits_2_without_traceback(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], case: str
) -> None:
    build_class_tree(tmp_path / "ok", {"a": 1, "b": 1})
    (tmp_path / "empty").mkdir()
    argv, expected = {
        "missing": (["audit", str(tmp_path / "nope")], "does not exist"),
        "empty": (["audit", str(tmp_path / "empty")], "no class folders"),
        "bad-distance": (["audit", str(tmp_path / "ok"), "--max-distance", "-1"],
                         "near_duplicate_distance"),
        "bad-workers": (["audit", str(tmp_path / "ok"), "--workers", "0"], "--workers"),
    }[case]
    assert main(argv) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert expected in captured.err and "Traceback" not in captured.err
    assert captured.err.startswith("neuropathology audit: error:")
