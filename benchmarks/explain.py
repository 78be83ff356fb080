"""Benchmark: cost and quality of every explanation method.

1. Time per image of each method at 224 x 224 on the CPU, MobileNetV2 (alpha 1.0, random
   weights: the cost does not depend on the weight values, and the benchmark runs offline),
   one image at a time, median of ``--repeats`` calls after a warm-up call. The ratio column
   is time / Grad-CAM time.
2. With ``--run RUN`` (a ``train.py --quick`` run on the synthetic data): localisation against
   the tumour masks (pointing game, IoU / Dice at 0.5, energy inside the mask) and
   deletion / insertion AUC on the synthetic test split (``Testing/``, whose masks sit under
   ``masks/Testing/``), explaining the predicted class. The ``random map`` row (uniform noise
   maps, seeded) is the chance baseline every method should beat: lower deletion AUC,
   higher everything else.

Run:  python benchmarks/explain.py [--run runs/NAME] [--limit 120] [--size 224] [--repeats 3]
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402

from neuropathology.data.data_loader import PreprocessConfig, preprocess_arrays  # noqa: E402
from neuropathology.data.io import read_image  # noqa: E402
from neuropathology.data.synthetic import generate_slice  # noqa: E402
from neuropathology.explain import METHODS, explain, normalize_maps  # noqa: E402
from neuropathology.explain.metrics import deletion_insertion, localisation  # noqa: E402
from neuropathology.explain.overlay import map_to_image  # noqa: E402
from neuropathology.models import build_model  # noqa: E402
from neuropathology.utils.helpers import format_table  # noqa: E402


def time_methods(size: int, repeats: int) -> list[list[object]]:
    """Median seconds per image of every method on MobileNetV2 at ``size``."""
    model = build_model(4, base="mobilenetv2", image_size=size, weights="none").model
    image, _ = generate_slice("glioma", size=size, seed=0)
    x = preprocess_arrays(image, PreprocessConfig(image_size=size, normalization="mobilenetv2"))
    times = {}
    for method in METHODS:
        explain(model, x, method)  # warm-up: graph building, tracing
        runs = []
        for _ in range(repeats):
            start = time.perf_counter()
            explain(model, x, method)
            runs.append(time.perf_counter() - start)
        times[method] = float(np.median(runs))
        print(f"  {method:<10} {times[method]:8.3f} s", flush=True)
    return [[m, t, t / times["gradcam"]] for m, t in times.items()]


def quality(run: Path, limit: int | None) -> list[list[object]]:
    """Localisation and deletion/insertion AUC per method on the run's synthetic test split."""
    from neuropathology.predictor import Predictor

    predictor = Predictor.from_run(run)
    config = json.loads((run / "config.json").read_text())
    root = Path(config["data"]["root"])
    if not config["data"].get("synthetic") or not (root / "masks" / "Testing").is_dir():
        raise SystemExit(f"{run} was not trained on the synthetic data (no masks under "
                         f"{root / 'masks' / 'Testing'}); train with `python train.py --quick`")
    paths = sorted((root / "Testing").glob("*/*.png"))
    paths = [p for p in paths if p.parent.name != "no_tumor"]  # localisation needs a lesion
    if limit:
        paths = paths[:: max(1, len(paths) // limit)][:limit]
    from neuropathology.data.data_loader import preprocess_paths

    x = preprocess_paths(paths, predictor.preprocess)
    probs = predictor.predict_batch(x)
    classes = probs.argmax(axis=1)
    masks = [read_image(root / "masks" / "Testing" / p.parent.name / p.name).max(-1) > 0
             for p in paths]
    shapes = [m.shape for m in masks]
    rng = np.random.default_rng(0)
    candidates = {**{m: None for m in METHODS}, "random map": None}
    rows = []
    for method in candidates:
        start = time.perf_counter()
        if method == "random map":
            maps = normalize_maps(rng.uniform(size=x.shape[:3]))
        else:
            maps = np.concatenate([explain(predictor.model, x[i:i + 16], method,
                                           classes[i:i + 16]) for i in range(0, len(x), 16)])
        seconds = (time.perf_counter() - start) / len(x)
        scores = {"pointing": [], "iou": [], "dice": [], "energy": [], "del": [], "ins": []}
        for i, heat in enumerate(maps):
            full = map_to_image(heat, shapes[i], pad_to_square=predictor.preprocess.pad_to_square)
            loc = localisation(full, masks[i])
            for key in ("pointing", "iou", "dice", "energy"):
                scores[key].append(loc[key])
            curves = deletion_insertion(predictor.model, x[i], heat, int(classes[i]), steps=20)
            scores["del"].append(curves.deletion_auc)
            scores["ins"].append(curves.insertion_auc)
        rows.append([method, *(float(np.mean(v)) for v in scores.values()), seconds])
        print(f"  {method:<10} done", flush=True)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--run", type=Path, default=None, help="a train.py --quick run")
    parser.add_argument("--limit", type=int, default=None, help="test images (default: all)")
    parser.add_argument("--size", type=int, default=224, help="image side for the timing")
    parser.add_argument("--repeats", type=int, default=3, help="timed calls per method")
    parser.add_argument("--skip-timing", action="store_true")
    args = parser.parse_args()
    if not args.skip_timing:
        print(f"time per image, MobileNetV2 at {args.size}x{args.size}, CPU:")
        rows = time_methods(args.size, args.repeats)
        print(format_table(rows, ["method", "s / image", "x gradcam"]))
    if args.run is not None:
        print(f"quality on the synthetic test split (tumour slices) of {args.run}:")
        rows = quality(args.run, args.limit)
        print(format_table(rows, ["method", "pointing", "IoU", "Dice", "energy",
                                  "deletion AUC", "insertion AUC", "s / image"]))


if __name__ == "__main__":
    main()
