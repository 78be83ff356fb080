"""``neuropathology evaluate``: a finished run -> metrics, calibration, statistics, report.

The steps, top to bottom::

    check the run directory                 (config.json, model.keras, COMPLETE)
    rebuild the run's split                 (trainer.load_data with the run's own settings:
                                             same data, seed, fractions, dedup, aliases)
    check the classes                       (the data's class set must be the model's)
    predict val and the evaluated split     (raw probabilities: calibration is fitted here)
    fit the temperature on val              (T* = argmin NLL(softmax(log p / T)), never on test)
    metrics before / after calibration      (evaluation.metrics), bootstrap 95 % CIs
    uncertainty                             (entropy, risk-coverage, AURC; MC dropout if asked)
    TTA, comparison with a second run       (if asked; McNemar's test on the same images)
    figures and report                      (rendered in memory)
    write                                   (only now: <out>/metrics.json, report.md/.html,
                                             figures/, and <run>/calibration.json)

Nothing is written before every step has succeeded, so a failed evaluation leaves no
half-written output. The output goes to ``<run>/evaluation/`` by default (or
``<run>/evaluation-<split>/`` for another split), so the training-time ``<run>/metrics.json``
is never overwritten.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from neuropathology.evaluation.calibration import (
    CALIBRATION_FILE,
    apply_temperature,
    fit_temperature,
    nll,
    plot_reliability,
    probs_to_logits,
    save_calibration,
)
from neuropathology.evaluation.metrics import (
    evaluation_metrics,
    expected_calibration_error,
    maximum_calibration_error,
    metrics_table,
)
from neuropathology.evaluation.report import (
    Report,
    plot_confusion,
    plot_gallery,
    plot_per_class,
    plot_risk_coverage,
    plot_roc_pr,
)
from neuropathology.evaluation.statistics import bootstrap_ci, mcnemar
from neuropathology.evaluation.uncertainty import (
    TTA_VIEWS,
    aurc,
    mutual_information,
    predictive_entropy,
    risk_at_coverage,
    risk_coverage_curve,
)
from neuropathology.utils.helpers import (
    atomic_path,
    atomic_write_json,
    atomic_write_text,
    format_table,
    get_logger,
)

log = get_logger("evaluation")

SPLITS = ("train", "val", "test")
#: Settings that decide which images land in which split.
SPLIT_SETTINGS = ("data_dir", "aliases", "seed", "val_fraction", "test_fraction",
                  "dedup_distance", "synthetic_per_class", "synthetic_test_per_class",
                  "synthetic_size")
GALLERY_SIZE = 12


class EvaluationError(ValueError):
    """Bad input to the evaluation (run, data, predictions); the message names the fix."""


@dataclass(frozen=True)
class EvaluateOptions:
    """What ``neuropathology evaluate`` was asked to do (see its ``--help``)."""

    run: Path
    data_dir: Path | None = None
    split: str = "test"
    tta: bool = False
    compare: Path | None = None
    out: Path | None = None
    mc_dropout: int = 0
    n_boot: int = 1000
    n_bins: int = 15
    seed: int = 0

    @property
    def out_dir(self) -> Path:
        """``--out``, else ``<run>/evaluation`` (test) or ``<run>/evaluation-<split>``."""
        if self.out is not None:
            return Path(self.out)
        return self.run / ("evaluation" if self.split == "test" else f"evaluation-{self.split}")


@dataclass
class Evaluation:
    """Everything :func:`evaluate` computed, ready for :func:`write_outputs`."""

    options: EvaluateOptions
    metrics: dict[str, Any]
    calibration: dict[str, Any]
    report: Report
    figures: dict[str, bytes] = field(default_factory=dict)


# --------------------------------------------------------------------------- run and data


def check_run(run: Path) -> dict[str, Any]:
    """The run's ``config.json`` after checking the files evaluation needs exist."""
    import json

    if not run.is_dir():
        raise EvaluationError(f"run directory {run} does not exist; pass the folder "
                              "`neuropathology train` printed at its end (runs/<name>)")
    for name in ("config.json", "model.keras", "COMPLETE"):
        if not (run / name).is_file():
            raise EvaluationError(
                f"{run / name} not found: {run} is not a finished run. Pass the folder "
                "`neuropathology train` printed at its end, or rerun the interrupted training "
                "command (same --name) to finish it")
    path = run / "config.json"
    try:
        config = json.loads(path.read_text(encoding="utf-8"))
    except ValueError as exc:
        raise EvaluationError(f"{path} is not valid JSON ({exc}); the run is damaged, "
                              "retrain it") from exc
    missing = [k for k in ("train", "class_names", "preprocess") if k not in config]
    if missing:
        raise EvaluationError(f"{path} lacks {', '.join(missing)}; it was not written by "
                              "`neuropathology train` (or is damaged): retrain the run")
    return config


def train_config(run_config: dict[str, Any], data_dir: Path | None) -> Any:
    """The run's TrainConfig, with ``data_dir`` replaced when ``--data-dir`` is given."""
    from neuropathology.training.config import TrainConfig

    values = {k: v for k, v in run_config["train"].items() if k in TrainConfig.field_names()}
    if data_dir is not None:
        values["data_dir"] = str(data_dir)
    config = TrainConfig(**values)
    config.validate()
    return config


def check_classes(data_classes: tuple[str, ...], model_classes: tuple[str, ...], root: Path,
                  run: Path) -> np.ndarray:
    """Index map data label -> model column; the class *sets* must be equal."""
    if set(data_classes) != set(model_classes):
        only_data = sorted(set(data_classes) - set(model_classes))
        only_model = sorted(set(model_classes) - set(data_classes))
        raise EvaluationError(
            f"the classes of {root} differ from the model's. Data: {sorted(data_classes)}; "
            f"model {run}: {sorted(model_classes)} (only in data: {only_data}; only in "
            f"model: {only_model}). Evaluate on data with the model's class folders (rename "
            "the folders, or use the aliases the run was trained with)")
    return np.array([model_classes.index(c) for c in data_classes], dtype=np.int64)


def predict_split(predictor: Any, dataset: Any, remap: np.ndarray, *, split: str, strict: bool,
                  run: Path) -> tuple[list[Path], np.ndarray, np.ndarray, int]:
    """(readable paths, labels in model order, raw probabilities, number skipped)."""
    from neuropathology.data.data_loader import check_readable

    ok, bad = check_readable(dataset.paths, strict=strict)
    keep = set(ok)
    labels = np.array([remap[lab] for p, lab in zip(dataset.paths, dataset.labels, strict=True)
                       if Path(p) in keep], dtype=np.int64)
    if len(ok) == 0:
        raise EvaluationError(f"the {split} split of {dataset.root} has no readable images "
                              f"({len(bad)} unreadable); run `neuropathology audit "
                              f"{dataset.root}` and fix or add images")
    probs = np.asarray(predictor.predict_paths(ok, progress=True), dtype=np.float64)
    finite = np.isfinite(probs).all(axis=1)
    if not finite.all():
        first = ok[int(np.flatnonzero(~finite)[0])]
        raise EvaluationError(
            f"{run / 'model.keras'} predicts NaN/inf for {int((~finite).sum())} of {len(ok)} "
            f"images of the {split} split (first: {first}). The weights are broken (training "
            "diverged): retrain, e.g. with a lower --learning-rate or --clipnorm 1.0")
    return ok, labels, probs, len(bad)


# --------------------------------------------------------------------------- the pipeline


def evaluate(options: EvaluateOptions) -> Evaluation:
    """Run every step of the module docstring except the writing; raises on bad input."""
    from neuropathology.predictor import Predictor
    from neuropathology.training.config import ConfigError
    from neuropathology.training.trainer import load_data

    if options.split not in SPLITS:
        raise EvaluationError(f"--split must be one of {', '.join(SPLITS)}, got {options.split}")
    if options.mc_dropout < 0 or options.n_boot < 1:
        raise EvaluationError("--mc-dropout must be >= 0 and --n-boot >= 1")
    run = Path(options.run)
    run_config = check_run(run)
    model_classes = tuple(run_config["class_names"])
    config = train_config(run_config, options.data_dir)
    try:
        data = load_data(config)
    except ConfigError as exc:
        raise EvaluationError(f"{exc} (the run's split settings are in {run / 'config.json'})"
                              ) from exc
    remap = check_classes(tuple(data.class_names), model_classes, data.root, run)
    predictor = Predictor.from_run(run, calibrated=False)

    val_paths, val_labels, val_probs, _ = predict_split(
        predictor, data.val, remap, split="val", strict=config.strict, run=run)
    dataset = getattr(data, options.split)
    paths, labels, probs, skipped = predict_split(
        predictor, dataset, remap, split=options.split, strict=config.strict, run=run)

    # -- calibration (fitted on val only)
    val_logits = probs_to_logits(val_probs)
    temperature = fit_temperature(val_logits, val_labels)
    calibrated = apply_temperature(probs, temperature)
    calibration = {
        "temperature": temperature, "n_val": len(val_labels), "data_root": str(data.root),
        "val_nll_before": nll(val_logits, val_labels),
        "val_nll_after": nll(val_logits, val_labels, temperature),
        "val_ece_before": expected_calibration_error(val_labels, val_probs,
                                                     n_bins=options.n_bins),
        "val_ece_after": expected_calibration_error(
            val_labels, apply_temperature(val_probs, temperature), n_bins=options.n_bins),
    }

    metrics = evaluation_metrics(labels, probs, model_classes, n_bins=options.n_bins)
    after = evaluation_metrics(labels, calibrated, model_classes, n_bins=options.n_bins)
    metrics.update({
        "run": str(run.resolve()), "split": options.split, "data_root": str(data.root),
        "synthetic_data": data.synthetic, "skipped_unreadable": skipped, "n": len(labels),
        "temperature": temperature, "ece_calibrated": after["ece"],
        "calibrated": {k: after[k] for k in ("accuracy", "log_loss", "brier", "ece",
                                             "ece_equal_mass", "mce", "classwise_ece")}
                      | {"roc_auc_macro": after["roc_auc"]["macro"]},
        "calibration": {**calibration, "file": str(run / CALIBRATION_FILE)},
        "ci95": bootstrap_ci(labels, probs, n_boot=options.n_boot, seed=options.seed),
    })
    if options.split == "val":
        metrics["warning"] = ("the temperature was fitted on this split: calibrated figures "
                              "are optimistic")

    # -- uncertainty and abstention
    entropy = predictive_entropy(calibrated)
    correct = calibrated.argmax(axis=1) == labels
    metrics["uncertainty"] = {
        "mean_entropy": float(entropy.mean()),
        "mean_entropy_correct": float(entropy[correct].mean()) if correct.any() else None,
        "mean_entropy_wrong": float(entropy[~correct].mean()) if (~correct).any() else None,
        "aurc": aurc(labels, probs), "aurc_calibrated": aurc(labels, calibrated),
        "risk_at_coverage": risk_at_coverage(labels, calibrated),
    }
    curves = {"raw": (*risk_coverage_curve(labels, probs), metrics["uncertainty"]["aurc"]),
              f"calibrated (T = {temperature:.2f})":
                  (*risk_coverage_curve(labels, calibrated),
                   metrics["uncertainty"]["aurc_calibrated"])}
    if options.mc_dropout:
        mc = mc_dropout_block(predictor, paths, labels, options, temperature)
        metrics["mc_dropout"] = mc.pop("_summary")
        curves[f"MC dropout ({options.mc_dropout} passes)"] = mc["curve"]
    if options.tta:
        metrics["tta"] = tta_block(predictor, paths, labels, metrics, temperature, options)
    if options.compare is not None:
        metrics["compare"] = compare_block(Path(options.compare), run_config, paths, labels,
                                           probs, model_classes)

    mistakes = most_confident_mistakes(paths, labels, calibrated, model_classes)
    metrics["most_confident_mistakes"] = mistakes
    figures = make_figures(labels, probs, calibrated, model_classes, metrics, curves, mistakes,
                           predictor, options.n_bins, temperature)
    report = build_report(metrics, options, sorted(figures))
    return Evaluation(options, _json_clean(metrics), calibration, report, figures)


def mc_dropout_block(predictor: Any, paths: list[Path], labels: np.ndarray,
                     options: EvaluateOptions, temperature: float) -> dict[str, Any]:
    """MC-dropout metrics (mean of ``options.mc_dropout`` passes) and its risk-coverage curve."""
    import keras

    from neuropathology.data.data_loader import preprocess_paths
    from neuropathology.evaluation.uncertainty import mc_dropout_predict

    rates = [float(layer.rate) for layer in _layers(predictor.model)
             if isinstance(layer, keras.layers.Dropout)]
    passes = []
    for i in range(0, len(paths), predictor.batch_size):
        images = preprocess_paths(paths[i:i + predictor.batch_size], predictor.preprocess)
        passes.append(mc_dropout_predict(predictor.model, images, options.mc_dropout,
                                         seed=options.seed + i))
    stacked = np.concatenate(passes, axis=1)
    mean = stacked.mean(axis=0)
    summary = {
        "passes": options.mc_dropout, "dropout_rates": rates,
        "accuracy": float(np.mean(mean.argmax(axis=1) == labels)),
        "log_loss": nll(probs_to_logits(mean), labels),
        "ece": expected_calibration_error(labels, mean, n_bins=options.n_bins),
        "aurc": aurc(labels, mean),
        "mean_mutual_information": float(mutual_information(stacked).mean()),
        "mean_entropy": float(predictive_entropy(mean).mean()),
    }
    if not any(rate > 0 for rate in rates):
        summary["warning"] = "the model has no dropout layer with rate > 0: every pass is equal"
    return {"_summary": summary, "curve": (*risk_coverage_curve(labels, mean), summary["aurc"])}


def tta_block(predictor: Any, paths: list[Path], labels: np.ndarray, metrics: dict[str, Any],
              temperature: float, options: EvaluateOptions) -> dict[str, Any]:
    """Metrics of the TTA-averaged probabilities and their change against a single view."""
    from neuropathology.evaluation.statistics import macro_f1_metric
    from neuropathology.evaluation.uncertainty import tta_predict_paths

    tta = tta_predict_paths(predictor, paths)
    tta_cal = apply_temperature(tta, temperature)
    accuracy = float(np.mean(tta.argmax(axis=1) == labels))
    macro_f1 = macro_f1_metric(labels, tta)
    log_loss = nll(probs_to_logits(tta), labels)
    ece = expected_calibration_error(labels, tta_cal, n_bins=options.n_bins)
    return {
        "views": [name for name, _, _ in TTA_VIEWS],
        "accuracy": accuracy, "macro_f1": macro_f1, "log_loss": log_loss,
        "ece_calibrated": ece, "mce_calibrated": maximum_calibration_error(labels, tta_cal),
        "delta": {"accuracy": accuracy - metrics["accuracy"],
                  "macro_f1": macro_f1 - metrics["macro_f1"],
                  "log_loss": log_loss - metrics["log_loss"],
                  "ece_calibrated": ece - metrics["ece_calibrated"]},
    }


def compare_block(other: Path, run_config: dict[str, Any], paths: list[Path],
                  labels: np.ndarray, probs: np.ndarray,
                  model_classes: tuple[str, ...]) -> dict[str, Any]:
    """Evaluate a second run on the same images; McNemar's test on the paired correctness."""
    from neuropathology.predictor import Predictor

    other_config = check_run(other)
    other_classes = tuple(other_config["class_names"])
    if set(other_classes) != set(model_classes):
        raise EvaluationError(
            f"--compare {other}: its classes {sorted(other_classes)} differ from those of the "
            f"evaluated run {sorted(model_classes)}; compare runs trained on the same classes")
    order = [other_classes.index(c) for c in model_classes]
    other_probs = Predictor.from_run(other, calibrated=False).predict_paths(paths)[:, order]
    if not np.isfinite(other_probs).all():
        raise EvaluationError(f"{other / 'model.keras'} predicts NaN/inf; retrain that run")
    correct_a = probs.argmax(axis=1) == labels
    correct_b = other_probs.argmax(axis=1) == labels
    test = mcnemar(correct_a, correct_b)
    differing = [k for k in SPLIT_SETTINGS
                 if run_config["train"].get(k) != other_config["train"].get(k)]
    from neuropathology.evaluation.statistics import macro_f1_metric

    out = {"run": str(other.resolve()), "n": len(labels),
           "accuracy": float(correct_b.mean()), "accuracy_this_run": float(correct_a.mean()),
           "macro_f1": macro_f1_metric(labels, other_probs), "mcnemar": test}
    if differing:
        out["warning"] = (f"the runs differ in split settings ({', '.join(differing)}): some "
                          "of these images may have been in the other run's training data")
    return out


def most_confident_mistakes(paths: list[Path], labels: np.ndarray, probs: np.ndarray,
                            class_names: tuple[str, ...], limit: int = GALLERY_SIZE
                            ) -> list[dict[str, Any]]:
    """The ``limit`` wrong predictions with the highest confidence, most confident first."""
    predicted = probs.argmax(axis=1)
    wrong = np.flatnonzero(predicted != labels)
    wrong = wrong[np.argsort(-probs[wrong].max(axis=1), kind="stable")][:limit]
    return [{"path": str(paths[i]), "true": class_names[labels[i]],
             "predicted": class_names[predicted[i]], "confidence": float(probs[i].max())}
            for i in wrong]


def make_figures(labels: np.ndarray, probs: np.ndarray, calibrated: np.ndarray,
                 class_names: tuple[str, ...], metrics: dict[str, Any],
                 curves: dict[str, Any], mistakes: list[dict[str, Any]], predictor: Any,
                 n_bins: int, temperature: float) -> dict[str, bytes]:
    """figures/<name>.png -> PNG bytes."""
    from neuropathology.data.data_loader import load_image

    figures = {
        "confusion_matrix.png": plot_confusion(np.array(metrics["confusion_matrix"]),
                                               class_names),
        "roc.png": plot_roc_pr(labels, probs, class_names, "roc"),
        "pr.png": plot_roc_pr(labels, probs, class_names, "pr"),
        "reliability.png": plot_reliability(
            labels, {"before (T = 1)": probs, f"after (T = {temperature:.3f})": calibrated},
            n_bins=n_bins),
        "per_class.png": plot_per_class(metrics["per_class"]),
        "risk_coverage.png": plot_risk_coverage(curves),
    }
    if mistakes:
        images = [load_image(m["path"], predictor.preprocess) for m in mistakes]
        titles = [f"true {m['true']}\npred {m['predicted']} ({m['confidence']:.2f})"
                  for m in mistakes]
        figures["mistakes.png"] = plot_gallery(images, titles)
    return figures


# --------------------------------------------------------------------------- report


def build_report(metrics: dict[str, Any], options: EvaluateOptions,
                 figure_names: list[str]) -> Report:
    """The report document (rendered by :meth:`Report.markdown` and :meth:`Report.html`)."""
    ci = metrics["ci95"]
    report = Report(f"Evaluation of {Path(metrics['run']).name} ({metrics['split']} split)")
    report.paragraph(f"{metrics['n']} images of {metrics['data_root']} "
                     f"({'synthetic' if metrics['synthetic_data'] else 'user'} data), "
                     f"the split the run was trained with; {metrics['skipped_unreadable']} "
                     "unreadable file(s) skipped. Research and education only: not a medical "
                     "device.")
    if "warning" in metrics:
        report.paragraph(f"Warning: {metrics['warning']}.")
    report.heading("Summary")
    report.table(["metric", "value", "95 % CI (bootstrap)"], summary_rows(metrics, ci))
    report.heading("Per class")
    report.table(["class", "precision", "recall", "specificity", "F1", "ROC AUC", "AP",
                  "support"],
                 [[name, m["precision"], m["recall"], m["specificity"], m["f1"], m["roc_auc"],
                   m["average_precision"], m["support"]]
                  for name, m in metrics["per_class"].items()])
    report.table(["average", "precision", "recall", "F1"],
                 [[k, v["precision"], v["recall"], v["f1"]]
                  for k, v in metrics["averages"].items()])
    cal = metrics["calibration"]
    report.heading("Calibration")
    report.paragraph(
        f"Temperature scaling fitted on the validation split ({cal['n_val']} images): "
        f"T = {metrics['temperature']:.4f} (T > 1: the model was over-confident). Validation "
        f"NLL {cal['val_nll_before']:.4f} -> {cal['val_nll_after']:.4f}. Saved to "
        f"{cal['file']}; the Predictor applies it. Accuracy is unchanged by construction.")
    calibrated = metrics["calibrated"]
    report.table(["", "before", "after"], [
        ["ECE (equal width)", metrics["ece"], calibrated["ece"]],
        ["ECE (equal mass)", metrics["ece_equal_mass"], calibrated["ece_equal_mass"]],
        ["MCE", metrics["mce"], calibrated["mce"]],
        ["classwise ECE", metrics["classwise_ece"], calibrated["classwise_ece"]],
        ["log loss (NLL)", metrics["log_loss"], calibrated["log_loss"]],
        ["Brier", metrics["brier"], calibrated["brier"]],
        ["accuracy", metrics["accuracy"], calibrated["accuracy"]],
    ])
    unc = metrics["uncertainty"]
    report.heading("Uncertainty and abstention")
    report.table(["", "value"], [
        ["mean predictive entropy (nats)", unc["mean_entropy"]],
        ["  on correct predictions", unc["mean_entropy_correct"]],
        ["  on wrong predictions", unc["mean_entropy_wrong"]],
        ["AURC (raw)", unc["aurc"]], ["AURC (calibrated)", unc["aurc_calibrated"]],
        *[[f"error rate at coverage {c}", r] for c, r in unc["risk_at_coverage"].items()],
    ])
    if metrics.get("mc_dropout"):
        mc = metrics["mc_dropout"]
        report.paragraph(f"MC dropout: {mc['passes']} forward passes with dropout active "
                         f"(rates {mc['dropout_rates']}), probabilities averaged, no "
                         "temperature. " + (f"Warning: {mc['warning']}." if "warning" in mc
                                            else ""))
        report.table(["", "value"], [[k, mc[k]] for k in ("accuracy", "log_loss", "ece",
                                                          "aurc", "mean_mutual_information")])
    if metrics.get("tta"):
        tta = metrics["tta"]
        report.heading("Test-time augmentation")
        report.paragraph(f"Mean probabilities over the views: {', '.join(tta['views'])}. "
                         "The calibrated ECE uses the temperature fitted without TTA.")
        report.table(["", "single view", "TTA", "change"], [
            [k, tta[k] - tta["delta"][k], tta[k], tta["delta"][k]]
            for k in ("accuracy", "macro_f1", "log_loss", "ece_calibrated")])
    if metrics.get("compare"):
        comp = metrics["compare"]
        test = comp["mcnemar"]
        report.heading("Comparison (McNemar's test)")
        if "warning" in comp:
            report.paragraph(f"Warning: {comp['warning']}.")
        report.table(["", "value"], [
            ["this run accuracy", comp["accuracy_this_run"]],
            [f"{Path(comp['run']).name} accuracy", comp["accuracy"]],
            ["b (only this run right)", test["b"]], ["c (only the other right)", test["c"]],
            ["method", test["method"]], ["p-value", test["p_value"]]])
    report.heading("Figures")
    titles = {"confusion_matrix.png": "confusion matrix", "roc.png": "ROC curves",
              "pr.png": "precision-recall curves", "reliability.png": "reliability diagrams",
              "per_class.png": "per-class metrics", "risk_coverage.png": "risk-coverage",
              "mistakes.png": "most confident mistakes"}
    for name in titles:
        if name in figure_names:
            report.image(f"figures/{name}", titles[name])
    if "mistakes.png" not in figure_names:
        report.paragraph("No mistakes on this split: no gallery.")
    return report


def summary_rows(metrics: dict[str, Any], ci: dict[str, Any]) -> list[list[object]]:
    """Headline metrics with their bootstrap intervals."""
    def interval(name: str) -> str:
        c = ci.get(name) or {}
        low, high = c.get("low"), c.get("high")
        return "n/a" if low is None or high is None else f"[{low:.4f}, {high:.4f}]"

    return [
        ["accuracy", metrics["accuracy"], interval("accuracy")],
        ["balanced accuracy", metrics["balanced_accuracy"], ""],
        ["macro F1", metrics["macro_f1"], interval("macro_f1")],
        ["macro ROC AUC", metrics["roc_auc"]["macro"], interval("macro_auc")],
        ["macro average precision", metrics["average_precision"]["macro"], ""],
        ["Cohen's kappa", metrics["cohen_kappa"], ""],
        ["MCC", metrics["mcc"], ""],
        *[[f"top-{k} accuracy", v, ""] for k, v in metrics["top_k_accuracy"].items()],
        ["log loss", metrics["log_loss"], ""],
        ["Brier", metrics["brier"], ""],
        ["ECE before / after", f"{metrics['ece']:.4f} / {metrics['ece_calibrated']:.4f}", ""],
        ["temperature", metrics["temperature"], ""],
    ]


def summary_text(evaluation: Evaluation) -> str:
    """The terminal summary: headline table, per-class table, where the files went."""
    metrics = evaluation.metrics
    rows = summary_rows(metrics, metrics["ci95"])
    text = ["", f"{metrics['split']} split of {metrics['data_root']}: {metrics['n']} images",
            format_table(rows, ["metric", "value", "95% CI"]), "",
            metrics_table(metrics)]
    if metrics.get("tta"):
        d = metrics["tta"]["delta"]
        text.append(f"TTA: accuracy {metrics['tta']['accuracy']:.4f} ({d['accuracy']:+.4f}), "
                    f"log loss {metrics['tta']['log_loss']:.4f} ({d['log_loss']:+.4f})")
    if metrics.get("mc_dropout"):
        mc = metrics["mc_dropout"]
        text.append(f"MC dropout ({mc['passes']} passes): accuracy {mc['accuracy']:.4f}, "
                    f"ECE {mc['ece']:.4f}, AURC {mc['aurc']:.4f}")
    if metrics.get("compare"):
        test = metrics["compare"]["mcnemar"]
        text.append(f"McNemar vs {metrics['compare']['run']}: b = {test['b']}, c = {test['c']}, "
                    f"p = {test['p_value']:.4g} ({test['method']})")
    out = evaluation.options.out_dir
    text += ["", f"Report: {(out / 'report.md').resolve()} (and report.html)",
             f"Calibration: {metrics['calibration']['file']}", ""]
    return "\n".join(text)


# --------------------------------------------------------------------------- writing


def write_outputs(evaluation: Evaluation) -> Path:
    """Write figures, metrics.json, report.md/.html into the output folder and
    ``calibration.json`` into the run; every file atomically. Returns the output folder."""
    out = evaluation.options.out_dir
    if out.exists() and not out.is_dir():
        raise EvaluationError(f"--out {out} exists and is not a directory; choose another path")
    for name, png in evaluation.figures.items():
        with atomic_path(out / "figures" / name) as tmp:
            tmp.write_bytes(png)
    stale = out / "figures" / "mistakes.png"
    if "mistakes.png" not in evaluation.figures and stale.is_file():
        stale.unlink()
    atomic_write_text(out / "report.md", evaluation.report.markdown())
    atomic_write_text(out / "report.html", evaluation.report.html())
    save_calibration(evaluation.options.run, evaluation.calibration["temperature"],
                     {k: v for k, v in evaluation.calibration.items() if k != "temperature"})
    atomic_write_json(out / "metrics.json", evaluation.metrics)
    return out


def _layers(layer: Any) -> list[Any]:
    out = []
    for child in getattr(layer, "layers", []):
        out.append(child)
        out.extend(_layers(child))
    return out


def _json_clean(obj: Any) -> Any:
    """NaN/inf -> None (strict JSON), NumPy scalars -> Python, tuples -> lists, recursively."""
    if isinstance(obj, dict):
        return {str(k): _json_clean(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_json_clean(v) for v in obj]
    if isinstance(obj, (np.floating, float)):
        return float(obj) if np.isfinite(obj) else None
    if isinstance(obj, np.integer):
        return int(obj)
    if isinstance(obj, (Path, os.PathLike)):
        return str(obj)
    return obj


__all__ = ["EvaluateOptions", "Evaluation", "EvaluationError", "evaluate", "summary_text",
           "write_outputs"]
