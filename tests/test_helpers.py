"""Shared helpers: atomic files, seeds, tables."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest

from neuropathology.utils.helpers import (
    atomic_path,
    atomic_write_json,
    derive_seed,
    format_table,
)


def test_atomic_write_json_round_trip_and_plain_file_mode(tmp_path: Path) -> None:
    target = atomic_write_json(tmp_path / "sub" / "m.json", {"a": np.float32(0.5), "b": np.arange(2)})
    assert json.loads(target.read_text()) == {"a": 0.5, "b": [0, 1]}
    plain = tmp_path / "plain.txt"
    plain.write_text("x")
    assert target.stat().st_mode & 0o777 == plain.stat().st_mode & 0o777
    assert [p.name for p in target.parent.iterdir()] == ["m.json"]


def test_atomic_path_leaves_old_file_and_no_temporary_on_error(tmp_path: Path) -> None:
    target = tmp_path / "model.keras"
    target.write_text("complete old model")
    with pytest.raises(RuntimeError), atomic_path(target) as tmp:
        tmp.write_text("half-written")
        raise RuntimeError("interrupted")
    assert target.read_text() == "complete old model"
    assert os.listdir(tmp_path) == ["model.keras"]


def test_derive_seed_is_stable_and_sensitive() -> None:
    assert derive_seed("synthetic", 0, "glioma", 3) == derive_seed("synthetic", 0, "glioma", 3)
    assert derive_seed("synthetic", 0, "glioma", 3) != derive_seed("synthetic", 0, "glioma", 4)
    assert 0 <= derive_seed("x") < 2**32


def test_format_table_aligns_numbers_right() -> None:
    table = format_table([["glioma", 0.5, 12], ["no_tumor", 0.25, 3]], ["class", "f1", "n"])
    lines = table.splitlines()
    assert lines[0].split() == ["class", "f1", "n"]
    assert lines[2] == "glioma    0.5000  12"
    assert lines[3] == "no_tumor  0.2500   3"


def test_atomic_path_keeps_double_suffixes_for_picky_writers(tmp_path: Path) -> None:
    with atomic_path(tmp_path / "best_stage1.weights.h5") as tmp:
        assert tmp.name.endswith(".partial.weights.h5")
        tmp.write_bytes(b"weights")
    assert (tmp_path / "best_stage1.weights.h5").read_bytes() == b"weights"
