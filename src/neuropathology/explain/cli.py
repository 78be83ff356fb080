"""``neuropathology explain``: an overlay for one image, or a gallery + metrics for a split.

Single image::

    neuropathology explain --run runs/NAME --image scan.png [--method gradcam] [--class C] \\
        --out overlay.png [--mask mask.png]

Batch (a dataset folder, e.g. the synthetic one, whose ``masks/<split>/<class>/<name>``
files give localisation scores)::

    neuropathology explain --run runs/NAME --data DIR --split test --out-dir explain_out

writes ``gallery.png`` and ``metrics.json`` (per image and averaged: pointing game, IoU,
Dice, energy inside the mask, deletion/insertion AUC, ROAD gap, and optionally the
randomisation sanity check). The model input is produced by the run's own preprocessing
(``neuropathology.predictor.Predictor``), the overlay drawn on the original-resolution image.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from neuropathology.utils.helpers import atomic_write_json, format_table, get_logger

log = get_logger("explain.cli")

_FAITHFULNESS_STEPS = 20


def configure_parser(parser: argparse.ArgumentParser) -> None:
    """Arguments of ``neuropathology explain``."""
    from neuropathology.explain import METHODS

    add = parser.add_argument
    add("--run", required=True, type=Path, help="run directory written by `neuropathology train`")
    src = parser.add_mutually_exclusive_group(required=True)
    src.add_argument("--image", type=Path, help="explain one image file")
    src.add_argument("--data", type=Path,
                     help="batch mode: a dataset folder (class folders, optionally under split "
                          "folders; synthetic masks under masks/<split>/<class>/)")
    add("--method", default="gradcam", choices=sorted(METHODS), help="default: gradcam")
    add("--class", dest="class_", default=None, metavar="C",
        help="class to explain, by name or index (default: the predicted class)")
    add("--layer", default=None, help="target layer of the CAM methods (default: auto)")
    add("--steps", type=int, default=64,
        help="ig: integration steps (default 64; raise it if the reported delta is large)")
    add("--baseline", default="black", choices=("black", "zeros", "blur", "uniform"),
        help="ig: baseline image (default black: a 0-valued image, normalised like the input)")
    add("--out", type=Path, default=None, help="single image: overlay file (.png/.jpg)")
    add("--mask", type=Path, default=None,
        help="single image: lesion mask (non-zero = lesion) for localisation scores")
    add("--colormap", default="jet", help="matplotlib colormap (default jet)")
    add("--opacity", type=float, default=0.45, help="heatmap opacity in [0, 1] (default 0.45)")
    add("--threshold", type=float, default=0.5,
        help="contour and IoU/Dice threshold on the [0, 1] map (default 0.5; <0: no contour)")
    add("--split", default="test", help="batch mode: split folder to use (default test)")
    add("--limit", type=int, default=None, help="batch mode: at most this many images")
    add("--out-dir", type=Path, default=None, help="batch mode: output folder")
    add("--gallery", type=int, default=24, help="batch mode: images in the gallery (default 24)")
    add("--target", choices=("predicted", "true"), default="predicted",
        help="batch mode: explain the predicted or the true class (default predicted)")
    add("--no-faithfulness", action="store_true",
        help="batch mode: skip deletion/insertion and ROAD (faster)")
    add("--sanity", type=int, default=0, metavar="N",
        help="batch mode: run the randomisation sanity check on N images (default 0: off)")


def _error(message: str) -> int:
    print(f"error: {message}", file=sys.stderr)
    return 2


def run_cli(args: argparse.Namespace) -> int:
    """Run single-image or batch mode; 0 on success, 2 on a usage/data error."""
    from neuropathology.data.io import ImageReadError
    from neuropathology.explain.graph import ExplainError
    from neuropathology.predictor import Predictor, RunLoadError

    if args.image is not None and args.out is None:
        return _error("--image needs --out FILE.png (where to write the overlay)")
    if args.data is not None and args.out_dir is None:
        return _error("--data needs --out-dir DIR (where to write gallery.png and metrics.json)")
    try:
        predictor = Predictor.from_run(args.run)
        class_index = _parse_class(args.class_, predictor.class_names)
        if args.image is not None:
            return _single(args, predictor, class_index)
        return _batch(args, predictor, class_index)
    except (RunLoadError, ImageReadError, ExplainError, FileNotFoundError, ValueError) as exc:
        return _error(str(exc))


def _parse_class(value: str | None, class_names: Sequence[str]) -> int | None:
    from neuropathology.explain.graph import ExplainError

    if value is None:
        return None
    if value in class_names:
        return list(class_names).index(value)
    if value.lstrip("-").isdigit() and 0 <= int(value) < len(class_names):
        return int(value)
    raise ExplainError(f"--class {value!r} is not a class of this run; use a name or index of "
                       f"{', '.join(f'{i}={n}' for i, n in enumerate(class_names))}")


def _ig_baseline(kind: str, x: np.ndarray, normalization: str) -> np.ndarray | str:
    """``black``: an all-zero image in pixel space, normalised like the model input."""
    if kind != "black":
        return kind
    from neuropathology.data.data_loader import normalize

    return normalize(np.zeros(x.shape, np.float32), normalization).numpy()


def _explain(method: str, model: Any, x: np.ndarray, classes: Any, layer: str | None,
             **options: Any) -> np.ndarray:
    from neuropathology.explain import CAM_METHODS, explain

    if method in CAM_METHODS and layer:
        options["layer_name"] = layer
    if layer and method not in CAM_METHODS:
        log.warning("--layer is ignored by %s (it works on the input)", method)
    return explain(model, x, method, classes, **options)


def _options(args: argparse.Namespace, x: np.ndarray, normalization: str) -> dict[str, Any]:
    if args.method != "ig":
        return {}
    return {"steps": args.steps, "baseline": _ig_baseline(args.baseline, x, normalization)}


def _read_mask(path: Path, shape: tuple[int, int]) -> np.ndarray:
    from neuropathology.data.io import read_image
    from neuropathology.explain.graph import ExplainError

    mask = read_image(path).max(axis=-1) > 0
    if mask.shape != shape:
        raise ExplainError(f"mask {path} is {mask.shape[1]}x{mask.shape[0]} but the image is "
                           f"{shape[1]}x{shape[0]}; pass the mask drawn on this image")
    return mask


def _single(args: argparse.Namespace, predictor: Any, class_index: int | None) -> int:
    from neuropathology.data.data_loader import preprocess_paths
    from neuropathology.data.io import read_image
    from neuropathology.explain.metrics import localisation
    from neuropathology.explain.overlay import map_to_image, render_overlay, save_image

    original = read_image(args.image)
    x = preprocess_paths([args.image], predictor.preprocess)
    normalization = predictor.preprocess.normalization
    probs = predictor.predict_batch(x)[0]
    cls = int(probs.argmax()) if class_index is None else class_index
    start = time.perf_counter()
    ig = None
    if args.method == "ig":
        from neuropathology.explain import integrated_gradients

        ig = integrated_gradients(predictor.model, x, [cls], **_options(args, x, normalization))
        heat = ig.map[0]
    else:
        heat = _explain(args.method, predictor.model, x, [cls], args.layer)[0]
    seconds = time.perf_counter() - start
    pad = predictor.preprocess.pad_to_square
    overlay = render_overlay(original, heat, colormap=args.colormap, opacity=args.opacity,
                             threshold=args.threshold if args.threshold >= 0 else None,
                             pad_to_square=pad)
    save_image(args.out, overlay)
    names = predictor.class_names
    order = np.argsort(-probs)
    rows = [[names[k], float(probs[k]), "<- explained" if k == cls else ""] for k in order]
    print(format_table(rows, ["class", "probability", ""]))
    print(f"{args.method} for class {names[cls]!r} ({seconds:.2f} s) -> {args.out}")
    if ig is not None:
        print(f"integrated gradients: sum of attributions {float(ig.attributions.sum()):.4f}, "
              f"logit(x) - logit(baseline) {float(ig.score[0] - ig.baseline_score[0]):.4f}, "
              f"convergence delta {float(ig.delta[0]):.2e} "
              f"({100 * float(ig.relative_delta[0]):.2f} %; raise --steps if large)")
    if args.mask is not None:
        mask = _read_mask(args.mask, original.shape[:2])
        full = map_to_image(heat, original.shape[:2], pad_to_square=pad)
        scores = localisation(full, mask, threshold=max(args.threshold, 0.0))
        print(format_table([[k, v] for k, v in scores.items()], ["localisation", "value"]))
    return 0


def _mask_for(root: Path, path: Path) -> Path | None:
    """``root/masks/<split>/<class>/<name>`` (the synthetic layout) if that file exists."""
    try:
        relative = Path(path).relative_to(root)
    except ValueError:
        return None
    candidate = root / "masks" / relative
    return candidate if candidate.is_file() else None


def _batch(args: argparse.Namespace, predictor: Any, class_index: int | None) -> int:
    from neuropathology.data.data_loader import preprocess_paths
    from neuropathology.data.discovery import discover_dataset, split_for_folder
    from neuropathology.data.io import read_image
    from neuropathology.explain.graph import ExplainError
    from neuropathology.explain.metrics import (
        deletion_insertion,
        localisation,
        randomization_check,
        road,
    )
    from neuropathology.explain.overlay import map_to_image, render_overlay, save_gallery

    dataset = discover_dataset(args.data)
    root = dataset.root
    split = split_for_folder(args.split) or args.split
    if dataset.splits:
        dataset = dataset.subset(split)
    unknown = sorted(set(dataset.class_counts()) - set(predictor.class_names))
    if unknown and any(dataset.class_counts()[u] for u in unknown):
        raise ExplainError(f"{root}: class folders {unknown} are not classes of the run "
                           f"({', '.join(predictor.class_names)})")
    samples = list(dataset.samples)
    if args.limit is not None:
        samples = _spread(samples, args.limit)
    if not samples:
        raise ExplainError(f"{root}: no images in split {args.split!r}")
    names = list(predictor.class_names)
    pad = predictor.preprocess.pad_to_square
    records, panels, titles, seconds = [], [], [], 0.0
    batch = 16
    for i in range(0, len(samples), batch):
        chunk = samples[i:i + batch]
        x = preprocess_paths([s.path for s in chunk], predictor.preprocess)
        probs = predictor.predict_batch(x)
        true = np.array([names.index(s.label) for s in chunk])
        pred = probs.argmax(axis=1)
        target = true if args.target == "true" else pred
        if class_index is not None:
            target = np.full(len(chunk), class_index)
        start = time.perf_counter()
        maps = _explain(args.method, predictor.model, x, target, args.layer,
                        **_options(args, x, predictor.preprocess.normalization))
        seconds += time.perf_counter() - start
        for j, sample in enumerate(chunk):
            rec: dict[str, Any] = {"path": str(sample.path), "label": sample.label,
                                   "predicted": names[int(pred[j])],
                                   "explained": names[int(target[j])],
                                   "probability": float(probs[j, target[j]])}
            mask_path = _mask_for(root, sample.path)
            original = None
            if mask_path is not None:
                original = read_image(sample.path)
                mask = _read_mask(mask_path, original.shape[:2])
                if mask.any():
                    full = map_to_image(maps[j], original.shape[:2], pad_to_square=pad)
                    rec.update(localisation(full, mask, threshold=max(args.threshold, 0.0)))
            if not args.no_faithfulness:
                curves = deletion_insertion(predictor.model, x[j], maps[j], int(target[j]),
                                            steps=_FAITHFULNESS_STEPS)
                rec["deletion_auc"] = curves.deletion_auc
                rec["insertion_auc"] = curves.insertion_auc
                rec["road_gap"] = road(predictor.model, x[j], maps[j], int(target[j]))["gap"]
            records.append(rec)
            if len(panels) < args.gallery:
                original = read_image(sample.path) if original is None else original
                panels.append(render_overlay(
                    original, maps[j], colormap=args.colormap, opacity=args.opacity,
                    threshold=args.threshold if args.threshold >= 0 else None,
                    pad_to_square=pad))
                titles.append(f"{sample.label} -> {rec['predicted']}\n{Path(sample.path).name}")
    summary = _summarise(records)
    report: dict[str, Any] = {
        "run": str(args.run), "data": str(root), "split": args.split, "method": args.method,
        "target": args.target if class_index is None else names[class_index],
        "n_images": len(records), "seconds_per_image": seconds / len(records),
        "summary": summary,
        "per_class": {c: _summarise([r for r in records if r["label"] == c]) for c in names
                      if any(r["label"] == c for r in records)},
        "images": records,
    }
    if args.sanity > 0:
        x = preprocess_paths([s.path for s in samples[:args.sanity]], predictor.preprocess)

        def method(model: Any, xs: np.ndarray, classes: Any) -> np.ndarray:
            return _explain(args.method, model, xs, classes, args.layer,
                            **_options(args, xs, predictor.preprocess.normalization))

        check = randomization_check(predictor.model, x, method)
        report["sanity"] = {"spearman_mean": check.mean, "threshold": check.threshold,
                            "flagged": check.flagged, "n_images": len(x)}
    out = Path(args.out_dir)
    out.mkdir(parents=True, exist_ok=True)
    save_gallery(out / "gallery.png", panels, titles)
    atomic_write_json(out / "metrics.json", report)
    rows = [[k, v] for k, v in summary.items()]
    if "sanity" in report:
        rows.append(["sanity spearman (flagged)" if report["sanity"]["flagged"]
                     else "sanity spearman", report["sanity"]["spearman_mean"]])
    print(format_table(rows, [f"{args.method} ({len(records)} images)", "mean"]))
    print(f"wrote {out / 'gallery.png'} and {out / 'metrics.json'}")
    return 0


_KEYS = ("pointing", "iou", "dice", "energy", "deletion_auc", "insertion_auc", "road_gap")


def _summarise(records: Sequence[dict[str, Any]]) -> dict[str, float]:
    out: dict[str, float] = {}
    for key in _KEYS:
        values = [r[key] for r in records if key in r]
        if values:
            out[key] = float(np.mean(values))
    correct = [r["label"] == r["predicted"] for r in records]
    if correct:
        out["accuracy"] = float(np.mean(correct))
    return out


def _spread(samples: Sequence[Any], limit: int) -> list[Any]:
    """At most ``limit`` samples, taken round-robin over classes (so every class appears)."""
    by_class: dict[str, list[Any]] = {}
    for s in samples:
        by_class.setdefault(s.label, []).append(s)
    out: list[Any] = []
    queues = [list(v) for v in by_class.values()]
    while len(out) < limit and any(queues):
        for q in queues:
            if q and len(out) < limit:
                out.append(q.pop(0))
    return out
