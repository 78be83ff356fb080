"""Benchmark: images/s of the tf.data input pipeline against a naive per-image PIL loop.

What is measured (one full pass over the files, no cache, batch 32, 224 px by default):

- ``tf.data``            make_dataset(training=True, augment=AugmentConfig()): parallel decode
                         (read_image + antialiased resize in tf.numpy_function) + batched,
                         parallel augmentation (flip/rotation/zoom warp, brightness/contrast)
                         + normalisation + prefetch.
- ``tf.data no-aug``     the same without augmentation (what evaluation/serving costs).
- ``naive``              for each file: PIL open -> convert("RGB") -> resize -> numpy, normalised.
- ``naive + eager aug``  the naive loop plus the same augmenter called eagerly on each image.
- ``check_readable``     the up-front decode-every-file check make_dataset runs once per process
                         (reported separately; the pipeline rows skip it).

Each pipeline row's ratio is against the naive loop doing the same work. Figures on a shared,
busy machine vary from run to run; the CPU-time column varies less.

Datasets: a synthetic tree written to a temporary directory with
``neuropathology.data.synthetic.write_dataset`` and, when ``../shared/data/sartaj-brain-mri/Training``
exists relative to the repository root, an evenly spaced subset of it.

Run:  python benchmarks/data_pipeline.py [--synthetic-images 400] [--real-images 600]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
from PIL import Image  # noqa: E402

from neuropathology.data.data_loader import (  # noqa: E402
    AugmentConfig,
    PreprocessConfig,
    build_augmenter,
    check_readable,
    make_dataset,
    normalize,
)
from neuropathology.data.discovery import Dataset, discover_dataset  # noqa: E402
from neuropathology.utils.helpers import format_table  # noqa: E402

REPO_ROOT = Path(__file__).resolve().parents[1]
REAL_DATA = REPO_ROOT.parent / "shared" / "data" / "sartaj-brain-mri" / "Training"


Timing = tuple[float, float]  # (wall seconds, CPU seconds of this process, all threads)


def _clock() -> Timing:
    return time.perf_counter(), time.process_time()


def _since(start: Timing) -> Timing:
    return time.perf_counter() - start[0], time.process_time() - start[1]


def time_pipeline(dataset: Dataset, config: PreprocessConfig, *, batch_size: int,
                  augment: AugmentConfig | None) -> Timing:
    """(wall, CPU) seconds for one full pass of ``make_dataset`` (no cache, no file check)."""
    ds = make_dataset(dataset, config, batch_size=batch_size, training=True, augment=augment,
                      cache=False, check_files=False, seed=0)
    start = _clock()
    n = 0
    for images, _ in ds:
        n += int(images.shape[0])
    elapsed = _since(start)
    assert n == len(dataset), (n, len(dataset))
    return elapsed


def time_naive(paths: list[Path], config: PreprocessConfig,
               augment: Callable[[tf.Tensor, tf.Tensor], tuple[tf.Tensor, tf.Tensor]] | None
               ) -> Timing:
    """(wall, CPU) seconds for the per-image loop: PIL open/convert/resize (+ eager aug)."""
    size = config.image_size
    dummy_label = tf.zeros((1, 1))
    start = _clock()
    for path in paths:
        with Image.open(path) as im:
            pixels = np.asarray(im.convert("RGB").resize((size, size), Image.BILINEAR),
                                dtype=np.float32)
        x = tf.convert_to_tensor(pixels[None])
        if augment is not None:
            x, _ = augment(x, dummy_label)
        normalize(x, config.normalization).numpy()
    return _since(start)


def benchmark(name: str, dataset: Dataset, args: argparse.Namespace) -> list[list[object]]:
    config = PreprocessConfig(image_size=args.image_size)
    augment = AugmentConfig()
    paths = dataset.paths
    n = len(paths)
    print(f"[{name}] {n} images from {dataset.root}", flush=True)
    # Warm-up on a few files: traces the tf.data functions and Keras layers once, so the
    # timed passes measure steady-state throughput rather than graph construction.
    warm = dataset.with_samples(dataset.samples[: args.batch_size])
    time_pipeline(warm, config, batch_size=args.batch_size, augment=augment)

    timings: dict[str, Timing] = {}
    start = _clock()
    check_readable(paths)
    timings["check_readable (up front)"] = _since(start)
    timings["tf.data (decode+resize+aug)"] = time_pipeline(
        dataset, config, batch_size=args.batch_size, augment=augment)
    timings["tf.data no-aug"] = time_pipeline(dataset, config, batch_size=args.batch_size,
                                              augment=None)
    timings["naive PIL loop"] = time_naive(paths, config, None)
    if args.naive_augment:
        timings["naive + eager aug per image"] = time_naive(paths, config,
                                                            build_augmenter(augment, seed=0))
    rate = {k: n / wall for k, (wall, _) in timings.items()}
    # Each pipeline row is compared with the naive loop doing the same work.
    baseline = {"tf.data (decode+resize+aug)": "naive + eager aug per image",
                "tf.data no-aug": "naive PIL loop"}
    rows = []
    for k, (wall, cpu) in timings.items():
        ref = baseline.get(k)
        ratio = f"{rate[k] / rate[ref]:.2f}x" if ref in rate else ""
        rows.append([name, k, n, f"{wall:.2f}", f"{rate[k]:.1f}", ratio, f"{1000 * cpu / n:.1f}"])
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--synthetic-images", type=int, default=400,
                        help="total synthetic training images (split over 4 classes)")
    parser.add_argument("--synthetic-size", type=int, default=256)
    parser.add_argument("--real-images", type=int, default=600,
                        help="evenly spaced subset of the real Training folder (0: skip)")
    parser.add_argument("--image-size", type=int, default=224)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--no-naive-augment", dest="naive_augment", action="store_false",
                        help="skip the (slow) eager per-image augmentation baseline")
    args = parser.parse_args(argv)

    from neuropathology.data.synthetic import write_dataset

    rows: list[list[object]] = []
    with tempfile.TemporaryDirectory(prefix="np-bench-") as tmp:
        start = time.perf_counter()
        root = write_dataset(Path(tmp) / "synthetic", per_class=max(1, args.synthetic_images // 4),
                             test_per_class=1, size=args.synthetic_size, seed=0)
        print(f"wrote synthetic tree in {time.perf_counter() - start:.1f}s", flush=True)
        synthetic = discover_dataset(root / "Training")
        rows += benchmark(f"synthetic {args.synthetic_size}px", synthetic, args)

    if args.real_images > 0 and REAL_DATA.is_dir():
        real = discover_dataset(REAL_DATA)
        step = max(1, len(real) // args.real_images)
        real = real.with_samples(real.samples[::step][: args.real_images])
        rows += benchmark("sartaj Training", real, args)
    elif args.real_images > 0:
        print(f"(real data not found at {REAL_DATA}; skipped)")

    print()
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(f"{os.cpu_count()} CPU cores (load average {load:.1f}), TensorFlow {tf.__version__}, "
          f"batch {args.batch_size}, {args.image_size} px, one pass, no cache.\n"
          f"'vs naive' = images/s over the naive loop doing the same work (with augmentation: "
          f"the eager per-image loop); 'CPU ms/img' = process CPU time (all threads) per "
          f"image, less sensitive to other load on the machine.")
    print(format_table(rows, ["data", "method", "images", "wall s", "images/s", "vs naive",
                              "CPU ms/img"]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
