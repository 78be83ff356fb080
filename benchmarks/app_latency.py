"""Benchmark: the app's latency from an uploaded file to the prediction and to the overlay.

Times the exact functions the Predict page calls, for one synthetic 224 x 224 PNG upload:

1. upload -> image       ``uploads.validate_upload`` (magic bytes, header pixel guard, decode);
2. image -> prediction   ``inference.predict`` (the run's preprocessing, calibrated forward
                         pass, uncertainty and input warnings);
3. -> explanation map    ``inference.explanation_map`` (Grad-CAM by default);
4. -> overlay            ``inference.render`` (colormap, opacity, threshold, contour);
5. slider move           what a slider change costs: the overlay only (the map is cached).

"cold" is the first call in a fresh process (model tracing included, as the first visitor
sees it); "warm" the median of ``--repeats`` later calls. The ratio column is the time of a
slider re-render relative to recomputing everything, which is what caching saves.

Without ``--run`` the model is MobileNetV2 at 224 px with random weights (the cost does not
depend on the weight values, and the benchmark runs offline); with ``--run runs/NAME`` it is
that run, loaded through ``Predictor.from_run`` as the app loads it.

Run:  python benchmarks/app_latency.py [--run runs/NAME] [--size 224] [--method gradcam]
"""

from __future__ import annotations

import argparse
import io
import os
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402
from PIL import Image  # noqa: E402

from neuropathology.app import inference  # noqa: E402
from neuropathology.app.uploads import validate_upload  # noqa: E402
from neuropathology.data.synthetic import generate_slice  # noqa: E402
from neuropathology.utils.helpers import format_table  # noqa: E402


def make_predictor(run: str | None, size: int):
    from neuropathology.predictor import Predictor

    if run:
        return Predictor.from_run(run)
    from neuropathology.data.data_loader import PreprocessConfig
    from neuropathology.models import build_model

    model = build_model(4, base="mobilenetv2", image_size=size, weights="none").model
    return Predictor(model, ("glioma", "meningioma", "no_tumor", "pituitary"),
                     PreprocessConfig(image_size=size, normalization="mobilenetv2"))


def one_pass(predictor, data: bytes, method: str) -> dict[str, float]:
    """Seconds of each stage for one upload, cumulative from the upload."""
    t0 = time.perf_counter()
    upload = validate_upload("slice.png", data)
    t1 = time.perf_counter()
    x, prediction = inference.predict(predictor, upload.image)
    t2 = time.perf_counter()
    heat = inference.explanation_map(predictor.model, x, method, prediction.index)
    t3 = time.perf_counter()
    inference.render(upload.image, heat, opacity=0.45, threshold=0.3)
    t4 = time.perf_counter()
    inference.render(upload.image, heat, opacity=0.8, threshold=0.5)  # a slider move
    t5 = time.perf_counter()
    return {"upload -> image": t1 - t0, "upload -> prediction": t2 - t0,
            "upload -> explanation map": t3 - t0, "upload -> overlay": t4 - t0,
            "slider move (overlay only)": t5 - t4}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--run", default=None, help="a run directory (default: random "
                        "MobileNetV2 weights at --size)")
    parser.add_argument("--size", type=int, default=224, help="uploaded image side (px)")
    parser.add_argument("--method", default="gradcam", choices=list(inference.EXPLAIN_METHODS))
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()

    buf = io.BytesIO()
    Image.fromarray(generate_slice("glioma", size=args.size, seed=0)[0]).save(buf, format="PNG")
    data = buf.getvalue()
    start = time.perf_counter()
    predictor = make_predictor(args.run, args.size)
    load = time.perf_counter() - start
    cold = one_pass(predictor, data, args.method)
    warm_runs = [one_pass(predictor, data, args.method) for _ in range(args.repeats)]
    warm = {k: float(np.median([r[k] for r in warm_runs])) for k in cold}
    full = warm["upload -> overlay"]
    rows = [[k, cold[k], warm[k], warm[k] / full] for k in cold]
    model = args.run or f"MobileNetV2 {args.size} px, random weights"
    print(f"model: {model} (loaded in {load:.2f} s); {args.size} x {args.size} PNG upload, "
          f"{args.method}, {os.cpu_count()} CPUs")
    print(format_table(rows, ["stage (cumulative)", "cold s", "warm s", "warm / full"]))


if __name__ == "__main__":
    main()
