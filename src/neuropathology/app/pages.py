"""The app's pages: Predict, Model, Classes, and the page shown when there is no run yet.

Caching (so that moving a slider re-renders the overlay without re-running the model):

* the Predictor (model + preprocessing + calibration) per run: ``st.cache_resource``, keyed
  by the run path and the modification times of ``model.keras`` and ``calibration.json``;
* the decoded upload, the prediction and each explanation map: ``st.cache_data``, keyed by
  the run, the sha256 of the uploaded bytes, the method and the explained class. Opacity,
  threshold, contour and colormap only change :func:`inference.render`, which is cheap.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import streamlit as st

from neuropathology.app import inference
from neuropathology.app.classes import CLASS_INFO, NOTICE, REFERENCES, info_for
from neuropathology.app.report import json_bytes, png_bytes, report_dict, report_stem
from neuropathology.app.runs import RunInfo
from neuropathology.app.uploads import ALLOWED_EXTENSIONS, MAX_UPLOAD_MB, validate_upload
from neuropathology.utils.helpers import get_logger

log = get_logger("app")

COLORMAPS = ("jet", "inferno", "viridis", "turbo", "magma")


# --------------------------------------------------------------------------- caches


@st.cache_resource(show_spinner="Loading the model...", max_entries=2)
def load_predictor(run_path: str, cache_key: str):
    """The run's Predictor (calibrated when the run was evaluated); ``cache_key`` busts it."""
    from neuropathology.predictor import Predictor

    return Predictor.from_run(run_path)


@st.cache_data(show_spinner=False, max_entries=32)
def cached_upload(name: str, data: bytes):
    return validate_upload(name, data)


@st.cache_data(show_spinner=False, max_entries=64)
def cached_prediction(cache_key: str, digest: str, synthetic: bool, _predictor, _image):
    return inference.predict(_predictor, _image, synthetic_model=synthetic)


@st.cache_data(show_spinner=False, max_entries=128)
def cached_map(cache_key: str, digest: str, method: str, class_index: int, _predictor, _x):
    return inference.explanation_map(_predictor.model, _x, method, class_index)


# --------------------------------------------------------------------------- Predict


def predict_page(run: RunInfo) -> None:
    st.title("Predict")
    st.caption(f"Model: **{run.name}** ({run.base_model}, "
               f"{'pretrained' if run.pretrained else 'trained from scratch'}, "
               f"{'calibrated' if run.calibrated else 'not calibrated'}). "
               "Research and education only - not for diagnosis.")
    files = st.file_uploader(
        "MRI slices (PNG, JPEG or DICOM; one or several)", type=list(ALLOWED_EXTENSIONS),
        accept_multiple_files=True, key="uploads", max_upload_size=MAX_UPLOAD_MB,
        help=f"Up to {MAX_UPLOAD_MB} MB per file. Files stay on this server and are not kept.")
    settings = explanation_settings(run)
    if not files:
        st.info("Upload one or more axial brain MRI slices to see the predicted class, the "
                "calibrated probabilities and an explanation overlay.")
        return
    try:
        predictor = load_predictor(str(run.path), run.cache_key())
    except Exception as exc:  # a damaged or incompatible model.keras
        log.exception("loading %s failed", run.path)
        st.error(f"The model of run '{run.name}' could not be loaded ({type(exc).__name__}). "
                 "Pick another run in the sidebar, or retrain this one.")
        return
    for i, uploaded in enumerate(files):
        st.divider()
        show_one(i, uploaded.name, uploaded.getvalue(), run, predictor, settings)


def explanation_settings(run: RunInfo) -> dict:
    with st.expander("Explanation settings", expanded=True):
        c1, c2, c3 = st.columns(3)
        method = c1.selectbox("Method", list(inference.EXPLAIN_METHODS),
                              format_func=inference.EXPLAIN_METHODS.get, key="method")
        target = c1.selectbox("Explain class", ["predicted class", *run.class_names],
                              key="target")
        opacity = c2.slider("Opacity", 0.0, 1.0, 0.45, 0.05, key="opacity")
        threshold = c2.slider("Threshold (hide weaker evidence)", 0.0, 1.0, 0.3, 0.05,
                              key="threshold")
        colormap = c3.selectbox("Colormap", COLORMAPS, key="colormap")
        contour = c3.checkbox("Contour outline at the threshold", value=True, key="contour")
    return {"method": method, "target": target, "opacity": float(opacity),
            "threshold": float(threshold), "colormap": colormap, "contour": bool(contour)}


def show_one(i: int, name: str, data: bytes, run: RunInfo, predictor, settings: dict) -> None:
    from neuropathology.app.uploads import UploadError

    st.subheader(name)
    try:
        upload = cached_upload(name, data)
    except UploadError as exc:
        st.error(str(exc))
        return
    for note in upload.notes:
        st.info(note)
    key = run.cache_key()
    x, prediction = cached_prediction(key, upload.digest, run.synthetic_data, predictor,
                                      upload.image)
    left, right = st.columns([1, 1])
    with right:
        if prediction.unsure:
            st.warning("**No confident answer.** Most probable class: "
                       f"**{prediction.label}** ({prediction.confidence:.0%}), but:\n\n"
                       + "\n".join(f"- {w}" for w in prediction.warnings))
        else:
            st.success(f"Predicted class: **{prediction.label}** "
                       f"(calibrated probability {prediction.confidence:.0%})")
        probs = prediction.as_dict()
        st.bar_chart({"probability": probs}, horizontal=True, height=40 + 30 * len(probs),
                     x_label="calibrated probability")
        st.caption(" · ".join(f"{k}: {v:.3f}" for k, v in inference.top_classes(prediction))
                   + f" · normalised entropy {prediction.normalized_entropy:.2f}"
                   + ("" if prediction.temperature == 1.0
                      else f" · temperature T = {prediction.temperature:.2f}"))
    target = settings["target"]
    cls = prediction.index if target == "predicted class" else run.class_names.index(target)
    with left:
        try:
            with st.spinner("Computing the explanation..."):
                heat = cached_map(key, upload.digest, settings["method"], cls, predictor, x)
            overlay = inference.render(
                upload.image, heat, colormap=settings["colormap"], opacity=settings["opacity"],
                threshold=settings["threshold"], contour=settings["contour"],
                pad_to_square=predictor.preprocess.pad_to_square)
        except Exception as exc:  # an explanation failure must not hide the prediction
            log.exception("explanation failed for %s", name)
            st.warning(f"No explanation overlay: {exc}")
            overlay = None
        if overlay is not None:
            label = inference.EXPLAIN_METHODS[settings["method"]]
            st.image(overlay, caption=f"{label} for class '{prediction.class_names[cls]}'",
                     width="stretch")
    record = report_dict(name, prediction, run=run.name,
                         settings={**settings, "explained_class": prediction.class_names[cls]})
    stem = report_stem(name)
    d1, d2 = st.columns(2)
    if overlay is not None:
        d1.download_button("Download overlay (PNG)", png_bytes(overlay), f"{stem}_overlay.png",
                           "image/png", key=f"png_{i}", on_click="ignore")
    d2.download_button("Download report (JSON)", json_bytes(record), f"{stem}_report.json",
                       "application/json", key=f"json_{i}", on_click="ignore")


# --------------------------------------------------------------------------- Model


def _fmt(value, digits: int = 3) -> str:
    if value is None:
        return "n/a"
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return str(value)


def model_page(run: RunInfo) -> None:
    st.title("Model")
    st.caption(f"Run directory: `{run.path}`")
    train = run.config.get("train", {})
    data = run.config.get("data", {})
    pre = run.config.get("preprocess", {})
    temperature = (run.evaluation or {}).get("temperature", "see calibration.json")
    facts = {
        "base network": run.base_model,
        "ImageNet-pretrained": "yes" if run.pretrained else "no (trained from scratch)",
        "weights source": run.model_facts.get("weights_source", "n/a"),
        "parameters": f"{run.model_facts.get('parameters', 0):,}",
        "input": f"{pre.get('image_size')} x {pre.get('image_size')} px, normalisation "
                 f"'{pre.get('normalization')}', pad to square: {pre.get('pad_to_square')}",
        "classes": ", ".join(run.class_names),
        "training data": ("built-in synthetic MRI (not real patients)" if run.synthetic_data
                          else str(data.get("root", "n/a"))),
        "split sizes (train / val / test)": " / ".join(
            str(data.get("split_sizes", {}).get(k, "?")) for k in ("train", "val", "test")),
        "epochs (stage 1 + stage 2, at most)":
            f"{train.get('stage1_epochs')} + {train.get('stage2_epochs')}",
        "calibration": (f"temperature scaling, T = {_fmt(temperature)}" if run.calibrated
                        else "none (run `neuropathology evaluate`)"),
        "seed": train.get("seed"),
    }
    st.subheader("Model card")
    st.table({"fact": list(facts), "value": [str(v) for v in facts.values()]})
    if run.synthetic_data:
        st.warning("This model has only seen synthetic images. It demonstrates the app; it "
                   "says nothing about real MRI.")
    metrics = run.evaluation or run.metrics
    st.subheader("Test-split metrics")
    if metrics is None:
        st.info("This run has no metrics.json.")
    else:
        source = ("`neuropathology evaluate`" if run.evaluation else
                  "training (held-out test split)")
        st.caption(f"From {source}, n = {metrics.get('n', metrics.get('n_samples', '?'))}.")
        c = st.columns(4)
        ci = (run.evaluation or {}).get("ci95", {})
        for col, (key, label) in zip(c, [("accuracy", "accuracy"), ("macro_f1", "macro F1"),
                                          ("balanced_accuracy", "balanced accuracy"),
                                          ("ece_calibrated", "ECE (calibrated)")], strict=True):
            value = metrics.get(key)
            help_text = None
            if key in ci:
                help_text = f"95 % bootstrap CI {ci[key]['low']:.3f} - {ci[key]['high']:.3f}"
            col.metric(label, _fmt(value), help=help_text)
        per_class = metrics.get("per_class", {})
        if per_class:
            names = list(per_class)
            cols = ["precision", "recall", "f1", "support"]
            st.table({"class": names, **{k: [_fmt(per_class[n].get(k)) for n in names]
                                         for k in cols}})
    figures = run.figures()
    if figures:
        st.subheader("Evaluation figures")
        for path, caption in figures:
            st.image(str(path), caption=caption)
    else:
        if metrics and metrics.get("confusion_matrix"):
            st.subheader("Confusion matrix (rows: true class, columns: predicted)")
            cm = np.asarray(metrics["confusion_matrix"]).tolist()
            names = run.class_names
            st.table({"true \\ predicted": names,
                      **{n: [row[j] for row in cm] for j, n in enumerate(names)}})
        st.info("No reliability diagram yet: run `neuropathology evaluate --run "
                f"{run.path}` to fit the calibration and draw the confusion "
                "matrix, reliability diagrams and ROC curves.")
    curves = run.path / "training_curves.png"
    if curves.is_file():
        st.subheader("Training curves")
        st.image(str(curves))


# --------------------------------------------------------------------------- Classes


def classes_page(run: RunInfo | None) -> None:
    st.title("Classes")
    st.warning(NOTICE)
    names = run.class_names if run is not None else list(CLASS_INFO)
    st.markdown("What each class means and how it *typically* looks on MRI. Typical signs "
                "are tendencies with many exceptions; a radiologist uses several sequences, "
                "the whole volume, prior scans and the clinical history, none of which this "
                "model sees.")
    for name in names:
        info = info_for(name)
        if info is None:
            st.subheader(name)
            st.markdown("No description is written for this class.")
            continue
        st.subheader(f"{info.title} (`{name}`)")
        st.markdown(info.what)
        st.markdown("**Typical MRI appearance**\n\n" + "\n".join(f"- {m}" for m in info.mri))
        st.caption("References: " + ", ".join(f"[{k}]" for k in info.refs))
    st.subheader("References")
    st.markdown("\n".join(f"{k}. {text} <{link}>"
                          for k, (text, link) in enumerate(REFERENCES, start=1)))


# --------------------------------------------------------------------------- no run yet


def no_run_page(runs_dir: Path) -> None:
    from neuropathology.app.quick_train import train_quick

    st.title("No trained model yet")
    st.markdown(
        f"No finished run was found in `{runs_dir}`. To get one, either\n\n"
        "- run `python train.py --quick` in a terminal (a small CNN on the built-in synthetic "
        "MRI dataset, about 2 minutes on a laptop CPU) and reload this page, or\n"
        "- train on your own data (`python train.py --data-dir path/to/data`, see README.md), "
        "or\n"
        "- point **Runs folder** in the sidebar at a folder that holds run directories, or\n"
        "- train the quick synthetic model right here:")
    if st.button("Train the quick synthetic model (about 2 minutes)", key="train_quick"):
        bar = st.progress(0.0, text="starting")

        def progress(fraction: float, message: str) -> None:
            bar.progress(float(fraction), text=message)

        try:
            result = train_quick(runs_dir, progress)
        except Exception as exc:
            log.exception("quick training failed")
            st.error(f"Training failed: {exc}")
            return
        st.success(f"Trained {result.run_dir.name}; loading it.")
        st.rerun()
