"""Benchmark: is the input pipeline the bottleneck of training, and how fast is the Predictor?

1. Training throughput (images/s of ``model.fit`` steps) of MobileNetV2 at each ``--sizes``
   (224 and 128 by default), stage-1 setting (frozen base, head trains):

   - ``pipeline``   fed by the real input pipeline: ``make_dataset(training=True,
                    augment=AugmentConfig())`` over image files (decode + resize cached after
                    the first pass, then shuffle, batched augmentation, normalisation, prefetch);
   - ``in-memory``  fed by a tensor already in memory (no decode, no augmentation).

   ratio = pipeline / in-memory: close to 1.0 means the model, not the input, bounds training.

2. Single-image latency of ``Predictor.predict_batch`` (one traced ``tf.function``) against a
   naive eager ``model(x)`` call and ``model.predict(x)``; ratio = naive / Predictor.

Weights are random (``--weights none``): throughput does not depend on the weight values, and
the benchmark must run offline. Figures on a shared, busy CPU vary from run to run.

Run:  python benchmarks/train_throughput.py [--sizes 224 128] [--steps 8] [--batch-size 32]
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from neuropathology.data.data_loader import AugmentConfig, PreprocessConfig, make_dataset  # noqa: E402
from neuropathology.data.discovery import discover_dataset  # noqa: E402
from neuropathology.data.synthetic import write_dataset  # noqa: E402
from neuropathology.models import build_model, normalization_for  # noqa: E402
from neuropathology.predictor import Predictor  # noqa: E402
from neuropathology.training.config import TrainConfig  # noqa: E402
from neuropathology.training.trainer import compile_model  # noqa: E402
from neuropathology.utils.helpers import format_table  # noqa: E402


def images_per_second(model: keras.Model, dataset: tf.data.Dataset, steps: int,
                      batch_size: int) -> float:
    """Throughput of ``steps`` training steps after an untimed warm-up (tracing, and two passes
    over the files so that the pipeline's decode cache is complete: only augmentation,
    normalisation and batching remain per step, as in every epoch after the first)."""
    model.fit(dataset, steps_per_epoch=2 * steps + 1, epochs=1, verbose=0, shuffle=False)
    start = time.perf_counter()
    model.fit(dataset, steps_per_epoch=steps, epochs=1, verbose=0, shuffle=False)
    return steps * batch_size / (time.perf_counter() - start)


def latency_ms(fn, x, repeats: int) -> float:
    """Median wall time of ``fn(x)`` in milliseconds (after two warm-up calls)."""
    fn(x)
    fn(x)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        out = fn(x)
        np.asarray(out)  # make sure the result is materialised
        times.append(time.perf_counter() - start)
    return 1000 * float(np.median(times))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[224, 128])
    parser.add_argument("--steps", type=int, default=8, help="timed training steps per row")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--alpha", type=float, default=1.0)
    parser.add_argument("--repeats", type=int, default=30, help="latency measurements")
    args = parser.parse_args()

    n_images = args.steps * args.batch_size
    per_class = -(-n_images // 4)
    rows, latency_rows = [], []
    with tempfile.TemporaryDirectory() as tmp:
        root = write_dataset(Path(tmp) / "data", per_class=per_class, test_per_class=1,
                             size=256, seed=0)
        train_set = discover_dataset(root).subset("train")
        for size in args.sizes:
            keras.utils.set_random_seed(0)
            preprocess = PreprocessConfig(image_size=size,
                                          normalization=normalization_for("mobilenetv2"))
            model = build_model(len(train_set.class_names), base="mobilenetv2", image_size=size,
                                weights="none", alpha=args.alpha).model
            compile_model(model, TrainConfig(), 1e-3)
            pipeline = make_dataset(train_set, preprocess, batch_size=args.batch_size,
                                    training=True, augment=AugmentConfig(), seed=0).repeat()
            x = np.random.default_rng(0).uniform(-1, 1, (n_images, size, size, 3))
            y = keras.utils.to_categorical(np.arange(n_images) % 4, 4)
            memory = (tf.data.Dataset.from_tensor_slices((x.astype("float32"), y))
                      .batch(args.batch_size).repeat().prefetch(2))
            fed = images_per_second(model, pipeline, args.steps, args.batch_size)
            ideal = images_per_second(model, memory, args.steps, args.batch_size)
            rows.append([size, round(fed, 1), round(ideal, 1), round(fed / ideal, 2)])

            predictor = Predictor(model, train_set.class_names, preprocess)
            one = x[:1].astype("float32")
            traced = latency_ms(predictor.predict_batch, one, args.repeats)
            eager = latency_ms(lambda v, m=model: m(v, training=False), one, args.repeats)
            keras_predict = latency_ms(lambda v, m=model: m.predict(v, verbose=0), one,
                                       args.repeats)
            latency_rows.append([size, round(traced, 2), round(eager, 2), round(keras_predict, 2),
                                 round(eager / traced, 2)])

    print(f"\nTraining throughput, MobileNetV2 (alpha {args.alpha}), frozen base, "
          f"batch {args.batch_size}, {args.steps} timed steps, {os.cpu_count()} CPUs, "
          f"GPUs: {len(tf.config.list_physical_devices('GPU'))}")
    print(format_table(rows, ["size", "pipeline img/s", "in-memory img/s",
                              "pipeline / in-memory"]))
    print("\nSingle-image predict latency (median ms)")
    print(format_table(latency_rows, ["size", "Predictor", "eager model(x)", "model.predict",
                                      "eager / Predictor"]))


if __name__ == "__main__":
    main()
