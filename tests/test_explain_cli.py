"""``neuropathology explain``: one overlay, and a gallery + metrics JSON for a dataset split."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

from explain_models import TRAIN_SIZE, trained_small_cnn
from neuropathology.cli import main
from neuropathology.data.synthetic import CLASS_NAMES, write_dataset


@pytest.fixture(scope="module")
def run_and_data(tmp_path_factory):
    """A run directory holding the briefly trained small CNN, and a 48 px synthetic tree."""
    root = tmp_path_factory.mktemp("explain_cli")
    model = trained_small_cnn()[0]
    run = root / "run"
    run.mkdir()
    model.save(run / "model.keras")
    (run / "config.json").write_text(json.dumps({
        "class_names": list(CLASS_NAMES),
        "preprocess": {"image_size": TRAIN_SIZE, "normalization": "unit",
                       "pad_to_square": False}}))
    data = write_dataset(root / "data", per_class=1, test_per_class=2, size=48, seed=3,
                         workers=1)
    return run, data


def test_single_image_overlay_at_original_resolution(run_and_data, tmp_path, capsys):
    run, data = run_and_data
    image = data / "Testing" / "glioma" / "glioma_000000.png"
    mask = data / "masks" / "Testing" / "glioma" / "glioma_000000.png"
    out = tmp_path / "overlay.png"
    rc = main(["explain", "--run", str(run), "--image", str(image), "--out", str(out),
               "--mask", str(mask), "--class", "glioma"])
    printed = capsys.readouterr().out
    assert rc == 0
    overlay = np.asarray(Image.open(out))
    assert overlay.shape == (48, 48, 3)  # the original's size, not the model's 32 px
    assert "gradcam for class 'glioma'" in printed
    for key in ("pointing", "iou", "dice", "energy"):
        assert key in printed
    rc = main(["explain", "--run", str(run), "--image", str(image), "--out", str(out),
               "--method", "occlusion", "--class", "2"])
    assert rc == 0 and "occlusion for class 'no_tumor'" in capsys.readouterr().out
    rc = main(["explain", "--run", str(run), "--image", str(image), "--out", str(out),
               "--method", "ig", "--steps", "32"])
    printed = capsys.readouterr().out
    assert rc == 0 and "convergence delta" in printed


def test_batch_mode_writes_gallery_and_metrics(run_and_data, tmp_path):
    run, data = run_and_data
    out = tmp_path / "batch"
    rc = main(["explain", "--run", str(run), "--data", str(data), "--split", "test",
               "--out-dir", str(out), "--sanity", "4", "--gallery", "4"])
    assert rc == 0
    report = json.loads((out / "metrics.json").read_text())
    assert report["n_images"] == 8 and len(report["images"]) == 8
    assert (out / "gallery.png").stat().st_size > 0
    tumours = [r for r in report["images"] if r["label"] != "no_tumor"]
    assert all("pointing" in r and 0.0 <= r["energy"] <= 1.0 for r in tumours)
    assert all("pointing" not in r for r in report["images"] if r["label"] == "no_tumor")
    assert all(0.0 <= r["deletion_auc"] <= 1.0 for r in report["images"])
    for key in ("pointing", "iou", "dice", "energy", "deletion_auc", "insertion_auc", "road_gap"):
        assert key in report["summary"]
    assert set(report["sanity"]) == {"spearman_mean", "threshold", "flagged", "n_images"}


def test_clear_errors(run_and_data, tmp_path, capsys):
    run, data = run_and_data
    image = data / "Testing" / "glioma" / "glioma_000000.png"
    rc = main(["explain", "--run", str(tmp_path / "nope"), "--image", str(image),
               "--out", str(tmp_path / "o.png")])
    assert rc == 2 and "model.keras not found" in capsys.readouterr().err
    rc = main(["explain", "--run", str(run), "--image", str(image), "--out",
               str(tmp_path / "o.png"), "--class", "astrocytoma"])
    assert rc == 2 and "0=glioma" in capsys.readouterr().err
    rc = main(["explain", "--run", str(run), "--image", str(image)])
    assert rc == 2 and "--out" in capsys.readouterr().err
    rc = main(["explain", "--run", str(run), "--image", str(tmp_path / "missing.png"),
               "--out", str(tmp_path / "o.png")])
    assert rc == 2 and "missing.png" in capsys.readouterr().err
