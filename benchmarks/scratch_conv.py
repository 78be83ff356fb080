"""Forward+backward time of the NumPy Conv2D against TensorFlow's convolution.

Shapes (default): batch 32, 64x64x16 input -> 32 filters, 3x3 kernel, stride 1, 'same'
padding, float32. Three implementations:

* ``numpy``: :class:`neuropathology.scratch.conv.Conv2D` (im2col via ``as_strided`` + one
  GEMM forward; two GEMM-based products + a tap-by-tap col2im backward);
* ``tf``: ``tf.nn.conv2d`` under ``tf.GradientTape`` (gradients w.r.t. input and kernel),
  both eagerly and wrapped in ``tf.function`` (graph mode, TF's best case);
* ``naive``: :func:`conv2d_naive` / :func:`conv2d_naive_backward`, four nested Python loops.
  It is measured on ``--naive-batch`` images (default 1) and extrapolated linearly to the
  full batch (its cost is exactly linear in the batch size); the script says so.

What limits the NumPy version (measured breakdown, 1 BLAS thread, best of 9: im2col copy
14 ms, forward GEMM 27 ms, ``dK`` GEMM 28 ms, nine per-tap ``dx`` GEMMs 28 ms, nine shifted
adds 18 ms -- about 115 ms in all, against 25-35 ms for TF in graph mode):

* **GEMM throughput on one core.** The three products are ~3.6 GFLOP; OpenBLAS runs these
  tall, skinny shapes (131072 x 144 times 144 x 32) at ~45 GFLOP/s per core, so the GEMMs
  alone take ~80 ms. TF's oneDNN kernels use both cores *and* block the convolution so
  tiles stay in cache.
* **BLAS threads.** Two OpenBLAS threads should halve that, but on a machine whose cores
  are shared with other processes they spin-wait on each other and the step becomes 2-5x
  *slower* (the "default threads" row); hence ``Sequential.fit``'s ``blas_threads=1``.
  TF's own thread pool degrades much more gracefully.
* **Memory traffic of im2col and single-threaded parts.** ``cols`` holds every receptive
  field: ``k_h k_w = 9`` times the input (32*64*64*144 floats = 75 MB here), written by a
  strided copy; the backward pass adds the gradient back tap by tap (9 passes over the
  padded input). NumPy runs these copies and additions on one core.

Run: ``python benchmarks/scratch_conv.py [--batch 32] [--repeats 5]``.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from collections.abc import Callable

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402

from neuropathology.scratch.conv import (  # noqa: E402
    Conv2D,
    conv2d_naive,
    conv2d_naive_backward,
)
from neuropathology.scratch.model import blas_threads  # noqa: E402


def interleaved_times(fns: dict[str, Callable[[], object]], repeats: int
                      ) -> dict[str, tuple[float, float]]:
    """``(best, median)`` wall time per function, running them in alternation.

    The machine is shared, so one implementation must not get a quiet minute and the
    other a busy one: each round runs every function once. The best time is the least
    disturbed measurement; the median shows the typical one.
    """
    for fn in fns.values():  # warm-up (TF traces its graph, caches fill)
        fn()
    times: dict[str, list[float]] = {name: [] for name in fns}
    for _ in range(repeats):
        for name, fn in fns.items():
            start = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - start)
    return {name: (min(ts), statistics.median(ts)) for name, ts in times.items()}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--size", type=int, default=64)
    parser.add_argument("--in-channels", type=int, default=16)
    parser.add_argument("--filters", type=int, default=32)
    parser.add_argument("--kernel", type=int, default=3)
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--naive-batch", type=int, default=1,
                        help="images the naive loops actually run on (then extrapolated)")
    parser.add_argument("--skip-naive", action="store_true")
    args = parser.parse_args(argv)

    import tensorflow as tf

    rng = np.random.default_rng(0)
    shape = (args.batch, args.size, args.size, args.in_channels)
    x = rng.standard_normal(shape).astype(np.float32)
    layer = Conv2D(args.filters, args.kernel, padding="same", seed=0)
    out = layer.forward(x)
    dout = rng.standard_normal(out.shape).astype(np.float32)
    K = layer.params["K"]

    def numpy_step() -> None:
        layer.forward(x, training=True)
        layer.backward(dout)

    def numpy_step_1thread() -> None:
        with blas_threads(1):
            numpy_step()

    x_t, k_t, d_t = tf.constant(x), tf.Variable(K), tf.constant(dout)

    def tf_step() -> None:
        with tf.GradientTape() as tape:
            tape.watch(x_t)
            y = tf.nn.conv2d(x_t, k_t, strides=1, padding="SAME")
            loss = tf.reduce_sum(y * d_t)
        dx, dk = tape.gradient(loss, [x_t, k_t])
        dx.numpy()
        dk.numpy()

    @tf.function
    def tf_graph_step(xx, dd):
        with tf.GradientTape() as tape:
            tape.watch(xx)
            y = tf.nn.conv2d(xx, k_t, strides=1, padding="SAME")
            loss = tf.reduce_sum(y * dd)
        return tape.gradient(loss, [xx, k_t])

    def tf_graph() -> None:
        dx, dk = tf_graph_step(x_t, d_t)
        dx.numpy()
        dk.numpy()

    # correctness first: the benchmark compares equal work
    with tf.GradientTape() as tape:
        tape.watch(x_t)
        y = tf.nn.conv2d(x_t, k_t, strides=1, padding="SAME")
        loss = tf.reduce_sum(y * d_t)
    dx_tf, dk_tf = tape.gradient(loss, [x_t, k_t])
    layer.forward(x, training=True)
    dx_np = layer.backward(dout)
    err = max(float(np.abs(dx_np - dx_tf.numpy()).max()),
              float(np.abs(layer.grads["K"] - dk_tf.numpy()).max() / np.abs(dk_tf.numpy()).max()))

    res = interleaved_times({"numpy1": numpy_step_1thread, "numpy": numpy_step, "tf": tf_step,
                             "tf_graph": tf_graph}, args.repeats)
    t_np = min(res["numpy1"][0], res["numpy"][0])
    t_tfg = res["tf_graph"][0]
    print(f"shape: batch {args.batch}, {args.size}x{args.size}x{args.in_channels} -> "
          f"{args.filters} filters, {args.kernel}x{args.kernel}, stride 1, 'same', float32; "
          f"{args.repeats} interleaved rounds; cpus {os.cpu_count()}, "
          f"load average {os.getloadavg()[0]:.1f}")
    print(f"check: max |NumPy - TF| gradient difference {err:.2e}")
    print("                               best (median) fwd+bwd")
    for label, key in [("numpy im2col, 1 BLAS thread  ", "numpy1"),
                       ("numpy im2col, default threads", "numpy"),
                       ("tensorflow (eager)           ", "tf"),
                       ("tensorflow (graph)           ", "tf_graph")]:
        best, med = res[key]
        print(f"{label}  {best * 1e3:8.1f} ms ({med * 1e3:7.1f} ms)")
    for key in ("tf", "tf_graph"):
        print(f"ratio best numpy / {key:8s}: {t_np / res[key][0]:5.2f}x (best times), "
              f"{min(res['numpy1'][1], res['numpy'][1]) / res[key][1]:5.2f}x (medians)")

    if not args.skip_naive:
        nb = args.naive_batch
        xs, ds = x[:nb], dout[:nb]
        b = layer.params["b"]
        start = time.perf_counter()
        conv2d_naive(xs, K, b, (1, 1), "same", (1, 1))
        conv2d_naive_backward(ds, xs, K, (1, 1), "same", (1, 1))
        t_naive = (time.perf_counter() - start) * args.batch / nb
        print(f"naive loops         fwd+bwd: {t_naive * 1e3:9.1f} ms   (measured on {nb} image(s), "
              f"extrapolated x{args.batch / nb:g}) naive/numpy = {t_naive / t_np:,.0f}x, "
              f"naive/tf-graph = {t_naive / t_tfg:,.0f}x")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
