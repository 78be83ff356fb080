"""Train the from-scratch NumPy small CNN on the synthetic MRI dataset: accuracy and time.

Target (issue 5): >= 85 % test accuracy on 64x64 images in under 2 minutes of training on
2 CPU cores. The network is :func:`neuropathology.scratch.model.build_small_cnn`
(``[Conv3x3-BN-ReLU-MaxPool] x 3 -> global max pool -> Dense``), trained with Adam, a cosine
learning-rate decay and random horizontal flips on ``generate_arrays(per_class,
split="train")`` and evaluated on the disjoint ``split="test"`` images. Image generation is timed separately from training.
BLAS is limited to one thread while training (see ``Sequential.fit``'s ``blas_threads``).

Usage::

    python benchmarks/scratch_train.py [--train 500] [--test 100] [--size 64] [--epochs 6]
        [--batch-size 32] [--lr 3e-3] [--global-pool max] [--no-flip] [--seed 0]
"""

from __future__ import annotations

import argparse
import os
import sys
import time

import numpy as np

from neuropathology.data.synthetic import generate_arrays
from neuropathology.scratch.losses import SoftmaxCrossEntropy
from neuropathology.scratch.model import build_small_cnn, random_horizontal_flip
from neuropathology.scratch.optim import Adam
from neuropathology.scratch.schedules import CosineDecay
from neuropathology.utils.helpers import format_table


def to_inputs(images: np.ndarray) -> np.ndarray:
    """uint8 ``(N, S, S)`` -> float32 ``(N, S, S, 1)`` scaled to [0, 1] then standardised
    with fixed constants (mean 0.2, std 0.25 of the synthetic slices), so test images get
    exactly the training transformation."""
    return ((images.astype(np.float32) / 255.0 - 0.2) / 0.25)[..., None]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--train", type=int, default=500, help="training images per class")
    parser.add_argument("--test", type=int, default=100, help="test images per class")
    parser.add_argument("--size", type=int, default=64)
    parser.add_argument("--epochs", type=int, default=6)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--lr", type=float, default=3e-3)
    parser.add_argument("--global-pool", choices=("max", "avg"), default="max")
    parser.add_argument("--no-flip", action="store_true", help="no horizontal-flip augmentation")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--quiet", action="store_true")
    args = parser.parse_args(argv)

    start = time.perf_counter()
    train = generate_arrays(args.train, size=args.size, seed=args.seed, split="train")
    test = generate_arrays(args.test, size=args.size, seed=args.seed, split="test")
    t_gen = time.perf_counter() - start
    x_train, x_test = to_inputs(train.images), to_inputs(test.images)

    model = build_small_cnn(len(train.class_names), global_pool=args.global_pool, seed=args.seed)
    steps = args.epochs * -(-len(x_train) // args.batch_size)
    optimizer = Adam(CosineDecay(args.lr, steps))
    loss_fn = SoftmaxCrossEntropy()
    start = time.perf_counter()
    model.fit(x_train, train.labels, loss_fn, optimizer, epochs=args.epochs,
              batch_size=args.batch_size, seed=args.seed, verbose=0 if args.quiet else 1,
              augment=None if args.no_flip else random_horizontal_flip)
    t_train = time.perf_counter() - start
    logits = model.predict(x_test)
    pred = logits.argmax(axis=-1)
    acc = float(np.mean(pred == test.labels))

    k = len(train.class_names)
    confusion = np.zeros((k, k), dtype=int)
    np.add.at(confusion, (test.labels, pred), 1)
    print(f"{args.train}/class train, {args.test}/class test, {args.size}x{args.size}, "
          f"{args.epochs} epochs, batch {args.batch_size}, Adam {args.lr:g} + cosine, "
          f"global {args.global_pool} pool, flips {'off' if args.no_flip else 'on'}; "
          f"cpus {os.cpu_count()}, load average {os.getloadavg()[0]:.1f}")
    print("confusion matrix (rows = true, columns = predicted):")
    print(format_table([[name, *row] for name, row in zip(train.class_names, confusion.tolist(),
                                                          strict=True)],
                       ["", *[n[:6] for n in train.class_names]]))
    print(f"generation {t_gen:.1f} s, training {t_train:.1f} s")
    ok = acc >= 0.85 and t_train < 120
    print(f"TEST ACCURACY {acc:.3f}  (target >= 0.85 in < 120 s of training: "
          f"{'met' if ok else 'NOT met'})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
