"""The Streamlit app: its helpers, and every page plus the upload flow through AppTest.

``streamlit.testing.v1.AppTest`` (Streamlit 1.67) drives ``st.file_uploader`` itself
(``set_value`` with (name, bytes, mime) tuples), so the upload flow runs exactly the code a
browser upload runs. The runs come from the session fixture ``app_runs`` (tests/conftest.py).
"""

from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from fixtures import ramp16, write_dicom, write_image, write_png_bomb
from neuropathology.app import inference
from neuropathology.app.runs import RUNS_ENV, discover_runs
from neuropathology.app.uploads import UploadError, validate_upload
from neuropathology.data.synthetic import generate_slice

pytestmark = pytest.mark.slow
pytest.importorskip("streamlit", reason="streamlit not installed: pip install -e '.[app]'")

APP = str(Path(__file__).resolve().parents[1] / "app.py")


def png(array: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(array).save(buf, format="PNG")
    return buf.getvalue()


def slice_png(label: str = "glioma", size: int = 96, seed: int = 1) -> bytes:
    return png(generate_slice(label, size=size, seed=seed)[0])


# --------------------------------------------------------------------------- helpers


def test_quick_train_progress_and_discovery(app_runs, tmp_path):
    runs_dir, progress = app_runs
    fractions = [f for f, _ in progress]
    assert fractions[0] == 0.0 and fractions[-1] == 1.0
    assert fractions == sorted(fractions) and len(fractions) >= 4  # start, 2 epochs, done
    assert "epoch 1 of at most 2" in progress[1][1]
    runs = {r.name: r for r in discover_runs(runs_dir)}
    assert set(runs) == {"tiny", "tiny-plain"}
    assert runs["tiny"].calibrated and runs["tiny"].evaluation is not None
    assert [p.name for p, _ in runs["tiny"].figures()][:2] == ["confusion_matrix.png",
                                                               "reliability.png"]
    assert not runs["tiny-plain"].calibrated and runs["tiny-plain"].figures() == []
    assert runs["tiny"].synthetic_data and not runs["tiny"].pretrained
    (tmp_path / "broken").mkdir()
    (tmp_path / "broken" / "config.json").write_text("{}")  # interrupted: no COMPLETE
    assert discover_runs(tmp_path) == [] and discover_runs(tmp_path / "missing") == []
    assert [r.name for r in discover_runs(runs_dir / "tiny")] == ["tiny"]  # a run itself


def bad_uploads(tmp_path: Path) -> dict[str, tuple[str, bytes, str]]:
    """name -> (file name, bytes, expected words in the message)."""
    truncated = slice_png()[:300]
    bomb = write_png_bomb(tmp_path / "bomb.png", 6000, 6000).read_bytes()
    nopix = write_dicom(tmp_path / "report.dcm", np.zeros((8, 8), np.uint16),
                        with_pixels=False).read_bytes()
    return {
        "extension": ("scan.gif", b"GIF89a....", "not accepted"),
        "empty": ("scan.png", b"", "empty"),
        "not an image": ("scan.png", b"hello, I am text" * 20, "not a PNG, JPEG or DICOM"),
        "truncated": ("scan.png", truncated, "truncated or corrupt"),
        "bomb": ("scan.png", bomb, "above the limit"),
        "dicom without pixels": ("report.dcm", nopix, "no pixel data"),
    }


def test_validate_upload_refuses_bad_files_with_messages(tmp_path):
    for case, (name, data, words) in bad_uploads(tmp_path).items():
        with pytest.raises(UploadError) as info:
            validate_upload(name, data)
        message = str(info.value)
        assert words in message, (case, message)
        assert message.startswith(name) and "np-upload-" not in message, (case, message)
    with pytest.raises(UploadError, match="above the upload limit"):
        validate_upload("big.png", slice_png(), max_bytes=100)
    with pytest.raises(UploadError, match="not accepted"):
        validate_upload("../../etc/passwd", b"root:x:0:0")


def test_validate_upload_reads_odd_but_valid_files_with_notes(tmp_path):
    rgba = np.dstack([np.full((16, 16, 3), 200, np.uint8), np.full((16, 16), 128, np.uint8)])
    cases = {
        "16-bit": (write_image(tmp_path / "a.png", ramp16(16, 16), mode="I;16"), "16-bit"),
        "rgba": (write_image(tmp_path / "b.png", rgba), "composited on black"),
        "wrong extension": (write_image(tmp_path / "c.png", rgba[..., :3]), "named .jpg"),
        "dicom": (write_dicom(tmp_path / "d.dcm", ramp16(16, 16)), "DICOM"),
    }
    for case, (path, words) in cases.items():
        name = "c.jpg" if case == "wrong extension" else path.name
        upload = validate_upload(name, path.read_bytes())
        assert upload.image.shape == (16, 16, 3) and upload.image.dtype == np.uint8, case
        assert any(words in note for note in upload.notes), (case, upload.notes)
    assert validate_upload("b.png", cases["rgba"][0].read_bytes()).image[0, 0, 0] == 100


def test_uncertainty_and_input_warnings():
    assert inference.uncertainty_warnings(np.array([0.97, 0.01, 0.01, 0.01]), 4) == []
    unsure = inference.uncertainty_warnings(np.full(4, 0.25), 4)
    assert len(unsure) == 2 and "unsure" in unsure[0] and "entropy" in unsure[1]
    # confident top class but the rest spread out: only the entropy warning
    spread = inference.uncertainty_warnings(np.array([0.72, 0.1, 0.09, 0.09]), 4)
    assert len(spread) == 1 and "entropy" in spread[0]
    grey = np.repeat(generate_slice("glioma", size=64, seed=0)[0][..., None], 3, axis=2)
    assert inference.input_warnings(grey, 64) == []
    colour = np.random.default_rng(0).integers(0, 256, (64, 64, 3), dtype=np.uint8)
    assert "colour image" in inference.input_warnings(colour, 64)[0]
    assert "small" in inference.input_warnings(grey[:20, :20], 64)[0]


# --------------------------------------------------------------------------- AppTest


@pytest.fixture
def app(app_runs, monkeypatch):
    from streamlit.testing.v1 import AppTest

    monkeypatch.setenv(RUNS_ENV, str(app_runs[0]))
    return AppTest.from_file(APP, default_timeout=60)


def select_run(at, name: str):
    box = at.sidebar.selectbox(key="run_choice")
    box.set_value(next(i for i, label in enumerate(box.options) if label.startswith(name + " ")))
    return at


def test_predict_page_upload_flow(app, monkeypatch, tmp_path):
    import streamlit as st

    st.cache_data.clear()
    calls: list[str] = []
    original = inference.explanation_map

    def counting(model, x, method, class_index):
        calls.append(method)
        return original(model, x, method, class_index)

    monkeypatch.setattr(inference, "explanation_map", counting)
    at = app.run()
    assert not at.exception and at.title[0].value == "Predict"
    assert at.file_uploader[0].accept_multiple_files
    assert set(at.file_uploader[0].allowed_type) >= {".png", ".jpg", ".dcm"}
    select_run(at, "tiny").run()
    dicom = write_dicom(tmp_path / "scan.dcm",
                        generate_slice("pituitary", size=64, seed=2)[0].astype(np.uint16) * 16)
    at.file_uploader[0].set_value([("slice.png", slice_png(), "image/png"),
                                   ("notes.png", b"not an image at all", "image/png"),
                                   ("scan.dcm", dicom.read_bytes(), "application/dicom")])
    at.run()
    assert not at.exception
    # the tiny model is unsure: a warning instead of a confident answer, probabilities shown
    verdicts = [w.value for w in at.warning] + [s.value for s in at.success]
    assert any("Most probable class" in v or "Predicted class" in v for v in verdicts)
    assert any("unsure" in w.value for w in at.warning)
    assert any("synthetic images only" in w.value for w in at.warning)
    assert any("glioma:" in c.value and "temperature" in c.value for c in at.caption)
    assert ["notes.png: the content is not" in e.value for e in at.error] == [True]
    assert any("DICOM (MONOCHROME2" in i.value for i in at.info)
    assert [s.value for s in at.subheader] == ["slice.png", "notes.png", "scan.dcm"]
    assert len(at.image) == 2 and "Grad-CAM" in at.image[0].proto.imgs[0].caption
    assert len(at.get("download_button")) == 4
    assert calls == ["gradcam"] * 2
    # sliders, colormap and contour re-render the overlay without recomputing the map
    at.slider(key="opacity").set_value(0.9).run()
    at.slider(key="threshold").set_value(0.6).run()
    at.checkbox(key="contour").uncheck().run()
    assert not at.exception and len(at.image) == 2 and calls == ["gradcam"] * 2
    at.selectbox(key="method").set_value("saliency").run()
    assert calls == ["gradcam"] * 2 + ["saliency"] * 2
    assert "Saliency" in at.image[0].proto.imgs[0].caption
    at.selectbox(key="target").set_value("pituitary").run()
    assert "'pituitary'" in at.image[1].proto.imgs[0].caption and len(calls) == 6


def test_report_contents(app_runs):
    from neuropathology.app.report import json_bytes, png_bytes, report_dict
    from neuropathology.predictor import Predictor

    predictor = Predictor.from_run(app_runs[0] / "tiny")
    image = generate_slice("meningioma", size=80, seed=3)[0]
    x, prediction = inference.predict(predictor, image, synthetic_model=True)
    heat = inference.explanation_map(predictor.model, x, "gradcam", prediction.index)
    overlay = inference.render(image, heat, opacity=0.5, threshold=0.4)
    assert overlay.shape == (80, 80, 3)  # at the image's own resolution
    record = json.loads(json_bytes(report_dict("m.png", prediction, run="tiny",
                                               settings={"method": "gradcam"})))
    assert record["predicted_class"] == prediction.label
    assert sum(record["probabilities"].values()) == pytest.approx(1.0, abs=1e-4)
    assert record["temperature"] == predictor.temperature != 1.0  # calibrated
    assert "not for diagnosis" in record["notice"] and record["warnings"]
    assert Image.open(io.BytesIO(png_bytes(overlay))).size == (80, 80)


def test_model_page_evaluated_and_plain(app):
    at = app.run()
    at.sidebar.radio(key="page").set_value("Model")
    select_run(at, "tiny").run()
    assert not at.exception and at.title[0].value == "Model"
    captions = [img.proto.imgs[0].caption for img in at.image]
    assert "Confusion matrix (test split)" in captions
    assert any(c.startswith("Reliability diagrams") for c in captions)
    assert [m.label for m in at.metric][:2] == ["accuracy", "macro F1"]
    facts = at.table[0].value
    assert "small_cnn" in facts.to_string() and "temperature scaling" in facts.to_string()
    select_run(at, "tiny-plain").run()
    assert not at.exception
    assert any("No reliability diagram yet" in i.value for i in at.info)
    assert any("Confusion matrix" in s.value for s in at.subheader)


def test_classes_page_and_no_run_page(tmp_path, monkeypatch):
    from streamlit.testing.v1 import AppTest

    monkeypatch.setenv(RUNS_ENV, str(tmp_path))  # no runs here
    at = AppTest.from_file(APP, default_timeout=60).run()
    assert not at.exception and at.title[0].value == "No trained model yet"
    assert at.button(key="train_quick").label.startswith("Train the quick synthetic model")
    assert any("python train.py --quick" in m.value for m in at.markdown)
    at.sidebar.radio(key="page").set_value("Classes").run()
    assert not at.exception
    assert "not for diagnosis" in at.warning[0].value
    titles = [s.value for s in at.subheader]
    assert titles[:4] == ["Glioma (`glioma`)", "Meningioma (`meningioma`)",
                          "Pituitary tumour (`pituitary`)", "No tumour (`no_tumor`)"]
    references = next(m.value for m in at.markdown if "Louis DN" in m.value)
    assert "10.1093/neuonc/noab106" in references and references.count("https://doi.org") >= 3


def test_upload_limit_matches_streamlit_config():
    import tomllib

    from neuropathology.app.uploads import MAX_UPLOAD_MB

    config = tomllib.loads((Path(APP).parent / ".streamlit" / "config.toml").read_text())
    assert config["server"]["maxUploadSize"] == MAX_UPLOAD_MB


def test_quick_train_button_trains_then_shows_the_run(tmp_path, monkeypatch):
    """The no-run page's button really trains (the quick preset shrunk to tiny settings so the
    test stays fast), shows progress, then picks up the new run."""
    import functools

    from streamlit.testing.v1 import AppTest

    from neuropathology.app import quick_train

    tiny = functools.partial(quick_train.train_quick, synthetic_per_class=12,
                             synthetic_test_per_class=4, synthetic_size=32, image_size=32,
                             stage1_epochs=1, stage2_epochs=1, val_fraction=0.3, batch_size=12)
    monkeypatch.setattr(quick_train, "train_quick", tiny)
    monkeypatch.setenv("NEUROPATHOLOGY_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv(RUNS_ENV, str(tmp_path / "runs"))
    at = AppTest.from_file(APP, default_timeout=180).run()
    assert at.title[0].value == "No trained model yet"
    at.button(key="train_quick").click().run()
    assert not at.exception and at.title[0].value == "Predict"
    assert at.sidebar.selectbox(key="run_choice").options[0].split(" - ")[1].startswith("small_cnn")


def test_a_broken_run_gives_a_message_not_a_stack_trace(app_runs, tmp_path, monkeypatch):
    import shutil

    from streamlit.testing.v1 import AppTest

    broken = tmp_path / "runs" / "broken"
    shutil.copytree(app_runs[0] / "tiny-plain", broken)
    (broken / "model.keras").write_bytes(b"this is not a keras file")
    monkeypatch.setenv(RUNS_ENV, str(tmp_path / "runs"))
    at = AppTest.from_file(APP, default_timeout=60).run()
    at.file_uploader[0].set_value(("slice.png", slice_png(), "image/png")).run()
    assert not at.exception
    assert at.error[0].value.startswith("The model of run 'broken' could not be loaded")


def test_class_pages_accept_every_kaggle_spelling():
    from neuropathology.app.classes import CLASS_INFO, info_for

    for name in ("glioma_tumor", "Meningioma", "notumor", "no_tumor", "pituitary_tumor", "no"):
        assert info_for(name) in CLASS_INFO.values(), name
    assert info_for("Glioblastoma T1C+") is None
