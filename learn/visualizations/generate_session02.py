"""Figures of Session 02 (convolutional neural networks) that the pages do not draw themselves.

Usage (from anywhere)::

    python learn/visualizations/generate_session02.py            # -> learn/visualizations/figures/
    python learn/visualizations/generate_session02.py --out DIR  # anywhere else (the tests do this)

Every figure is a pure function of fixed seeds, so reruns redraw the same pictures. The MRI
slices come from the project's synthetic generator (``neuropathology.data.synthetic``), which
gives the same bytes for the same arguments.

Convolution here means what deep-learning libraries compute, cross-correlation
``y[i, j] = sum_{u, v} x[i + u, j + v] k[u, v]`` (Part B explains the name); ``scipy.ndimage
.correlate`` computes it with the kernel centred on the output pixel.
"""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from figure_output import run, save_png  # noqa: E402 - sibling module
from matplotlib.patches import Rectangle  # noqa: E402
from scipy import ndimage, signal  # noqa: E402

DPI = 90

SOBEL_X = np.array([[-1, 0, 1], [-2, 0, 2], [-1, 0, 1]], dtype=float)
SOBEL_Y = SOBEL_X.T


def _slice(label: str = "glioma", size: int = 128, seed: int = 4) -> np.ndarray:
    """A synthetic axial slice as float in [0, 1] (low difficulty: a clearly visible lesion)."""
    from neuropathology.data.synthetic import generate_slice

    image, _ = generate_slice(label, size=size, seed=seed, difficulty=0.2)
    return image.astype(float) / 255.0


def _save(fig: plt.Figure, out: Path, name: str) -> Path:
    return save_png(fig, out / f"session02_{name}.png", dpi=DPI)


def _grid(ax: plt.Axes, values: np.ndarray, cmap: str = "Greys", fmt: str = "{:g}",
          vmin: float | None = None, vmax: float | None = None) -> None:
    """Show a small matrix as a grid of cells with its numbers written in."""
    shown = ax.imshow(values, cmap=cmap, vmin=vmin, vmax=vmax)
    for (i, j), v in np.ndenumerate(values):
        r, g, b, _ = shown.cmap(shown.norm(v))
        dark = 0.299 * r + 0.587 * g + 0.114 * b < 0.5  # white text on dark cells
        ax.text(j, i, fmt.format(v), ha="center", va="center", fontsize=9,
                color="white" if dark else "black")
    ax.set_xticks(np.arange(-0.5, values.shape[1]), minor=True)
    ax.set_yticks(np.arange(-0.5, values.shape[0]), minor=True)
    ax.grid(which="minor", color="grey", lw=0.6)
    ax.tick_params(which="both", length=0, labelbottom=False, labelleft=False)


def sliding_window(out: Path) -> Path:
    """A 7x7 image, a 3x3 vertical-edge kernel and the 5x5 'valid' output; one window traced."""
    x = np.where(np.arange(7)[None, :] >= np.arange(7)[:, None] + 1, 8.0, 1.0)
    x[5, 1] = 3.0  # one odd pixel so the output is not perfectly regular
    k = np.array([[-1, 0, 1], [-1, 0, 1], [-1, 0, 1]], dtype=float)
    y = signal.correlate2d(x, k, mode="valid")
    r, c = 1, 2  # the traced output position
    fig, axes = plt.subplots(1, 3, figsize=(11, 4), gridspec_kw={"width_ratios": [7, 3.6, 5]})
    _grid(axes[0], x, cmap="Blues", vmin=0, vmax=12)
    axes[0].add_patch(Rectangle((c - 0.5, r - 0.5), 3, 3, fill=False, ec="tab:red", lw=3))
    axes[0].set_title("input $x$ (7 x 7)")
    _grid(axes[1], k, cmap="coolwarm", vmin=-1.6, vmax=1.6)
    axes[1].set_title("kernel $k$ (3 x 3)")
    _grid(axes[2], y, cmap="Oranges", vmin=-5, vmax=30)
    axes[2].add_patch(Rectangle((c - 0.5, r - 0.5), 1, 1, fill=False, ec="tab:red", lw=3))
    axes[2].set_title(r"output $y$ (5 x 5, 'valid')")
    window = x[r:r + 3, c:c + 3]
    terms = " + ".join(f"({int(a)})({int(b)})" for a, b in zip(window.ravel(), k.ravel(),
                                                               strict=True) if b != 0)
    fig.suptitle(f"$y[{r},{c}]$ = sum of window * kernel = {terms} = {int(y[r, c])}",
                 fontsize=10)
    fig.tight_layout()
    return _save(fig, out, "sliding_window")


def sobel_mri(out: Path) -> Path:
    """Sobel kernels applied to a synthetic MRI slice: two derivative maps and the magnitude."""
    img = _slice()
    gx = ndimage.correlate(img, SOBEL_X, mode="nearest")
    gy = ndimage.correlate(img, SOBEL_Y, mode="nearest")
    mag = np.hypot(gx, gy)
    fig, axes = plt.subplots(1, 4, figsize=(12, 3.3))
    lim = np.abs(np.concatenate([gx.ravel(), gy.ravel()])).max()
    panels = ((img, "synthetic glioma slice (128 x 128)", "gray", 0, 1),
              (gx, r"$G_x$: Sobel $x$ (left-to-right change)", "RdBu_r", -lim, lim),
              (gy, r"$G_y$: Sobel $y$ (top-to-bottom change)", "RdBu_r", -lim, lim),
              (mag, r"edge strength $\sqrt{G_x^2 + G_y^2}$", "magma", 0, mag.max()))
    for ax, (v, title, cmap, lo, hi) in zip(axes, panels, strict=True):
        ax.imshow(v, cmap=cmap, vmin=lo, vmax=hi, interpolation="nearest")
        ax.set_title(title, fontsize=9)
        ax.axis("off")
    fig.tight_layout()
    return _save(fig, out, "sobel_mri")


def equivariance(out: Path) -> Path:
    """Shift the input, and the feature map shifts with it: f(T x) = T f(x) (circular)."""
    img = np.zeros((112, 112))
    img[16:96, 16:96] = _slice(size=80)  # a dark margin, so the shift wraps nothing visible
    shift = (12, -14)
    f = lambda v: np.maximum(ndimage.correlate(v, SOBEL_X, mode="wrap"), 0)  # noqa: E731
    shifted = np.roll(img, shift, axis=(0, 1))
    fx, ftx = f(img), f(shifted)
    diff = np.abs(ftx - np.roll(fx, shift, axis=(0, 1)))
    fig, axes = plt.subplots(1, 5, figsize=(15, 3.4))
    panels = ((img, r"$x$", "gray"), (shifted, r"$Tx$ (shifted by (12, -14))", "gray"),
              (fx, r"$f(x)$ = ReLU(Sobel$_x$ $\star$ $x$)", "magma"),
              (ftx, r"$f(Tx)$", "magma"),
              (diff, f"$|f(Tx) - Tf(x)|$, max = {diff.max():.1g}", "magma"))
    for ax, (v, title, cmap) in zip(axes, panels, strict=True):
        ax.imshow(v, cmap=cmap, vmin=0, vmax=1 if v is diff else v.max())
        ax.set_title(title, fontsize=9)
        ax.axis("off")
    fig.tight_layout()
    return _save(fig, out, "equivariance")


def _footprint(ax: plt.Axes, n: int, p: int, k: int, s: int, d: int, title: str) -> None:
    """Padded input grid; the cells read by output positions (0, 0) and (0, 1)."""
    m = n + 2 * p
    for i in range(m):
        for j in range(m):
            pad = not (p <= i < p + n and p <= j < p + n)
            ax.add_patch(Rectangle((j, m - 1 - i), 1, 1, fc="0.85" if pad else "white",
                                   ec="0.5", lw=0.8, hatch="//" if pad else None))
    for out_j, color, off in ((0, "tab:blue", 0.08), (1, "tab:orange", 0.52)):
        for u in range(k):
            for v in range(k):
                i, j = u * d, out_j * s + v * d
                ax.add_patch(Rectangle((j + off, m - 1 - i + 0.08), 0.4, 0.84, fc=color,
                                       alpha=0.8, ec="none"))
    o = (n + 2 * p - d * (k - 1) - 1) // s + 1
    ax.set_xlim(-0.2, m + 0.2)
    ax.set_ylim(-0.2, m + 0.2)
    ax.set_aspect("equal")
    ax.axis("off")
    ax.set_title(f"{title}\nn={n}, k={k}, p={p}, s={s}, d={d}  ->  output {o} x {o}", fontsize=9)


def padding_stride_dilation(out: Path) -> Path:
    """Four grids: valid, same padding, stride 2, dilation 2 (windows of outputs (0,0), (0,1))."""
    fig, axes = plt.subplots(1, 4, figsize=(14, 4.2))
    _footprint(axes[0], 5, 0, 3, 1, 1, "'valid' (no padding)")
    _footprint(axes[1], 5, 1, 3, 1, 1, "'same' (zero padding, hatched)")
    _footprint(axes[2], 5, 1, 3, 2, 1, "stride 2")
    _footprint(axes[3], 7, 0, 3, 1, 2, "dilation 2")
    fig.text(0.5, 0.02, "blue: cells read by output (0, 0); orange: by output (0, 1) - "
             "the orange window starts s cells to the right", ha="center", fontsize=9)
    fig.tight_layout(rect=(0, 0.05, 1, 1))
    return _save(fig, out, "padding_stride_dilation")


def _cone(ax: plt.Axes, layers: list[tuple[int, int]], width: int, title: str) -> None:
    """1-D dependency cone of the top centre unit through layers of (kernel, stride)."""
    # positions (in input pixels) of the units of each layer, input first
    pos = [np.arange(width, dtype=float)]
    for k, s in layers:
        prev = pos[-1]
        n_out = (len(prev) - k) // s + 1
        pos.append(np.array([prev[i * s:i * s + k].mean() for i in range(n_out)]))
    deps = [set()] * len(pos)
    top = len(pos) - 1
    deps[top] = {len(pos[top]) // 2}
    for level in range(top, 0, -1):
        k, s = layers[level - 1]
        deps[level - 1] = {i * s + u for i in deps[level] for u in range(k)}
    for level in range(top, 0, -1):
        k, s = layers[level - 1]
        for i in range(len(pos[level])):
            for u in range(k):
                on = i in deps[level]
                ax.plot([pos[level][i], pos[level - 1][i * s + u]], [level, level - 1],
                        color="tab:red" if on else "0.85", lw=1.6 if on else 0.6, zorder=1)
    for level, p in enumerate(pos):
        colors = ["tab:red" if i in deps[level] else "0.6" for i in range(len(p))]
        ax.scatter(p, np.full(len(p), level), c=colors, s=40, zorder=2)
    rf = len(deps[0])
    ax.set_yticks(range(len(pos)), ["input"] + [f"layer {i}" for i in range(1, len(pos))])
    ax.set_xticks([])
    ax.set_title(f"{title}\nreceptive field of the top unit: {rf} pixels", fontsize=9)
    for spine in ("top", "right", "bottom"):
        ax.spines[spine].set_visible(False)


def receptive_field(out: Path) -> Path:
    """Receptive-field cones (stride 1 and stride 2) and an effective receptive field."""
    fig, axes = plt.subplots(1, 3, figsize=(14, 4), gridspec_kw={"width_ratios": [1.2, 1.2, 1]})
    _cone(axes[0], [(3, 1)] * 3, 13, "three 3-wide convolutions, stride 1")
    _cone(axes[1], [(3, 2), (3, 1), (3, 1)], 19, "the same, first layer with stride 2")
    depth, size = 10, 31
    erf = np.zeros((size, size))
    erf[size // 2, size // 2] = 1.0
    for _ in range(depth):  # gradient of the centre output = delta correlated `depth` times
        erf = ndimage.correlate(erf, np.full((3, 3), 1 / 9), mode="constant")
    axes[2].imshow(erf, cmap="viridis")
    r = 2 * depth + 1
    lo = size // 2 - depth - 0.5
    axes[2].add_patch(Rectangle((lo, lo), r, r, fill=False, ec="white", lw=1.5, ls="--"))
    axes[2].set_title(f"effective receptive field, {depth} layers 3 x 3\n"
                      f"(dashed: theoretical {r} x {r})", fontsize=9)
    axes[2].axis("off")
    fig.tight_layout()
    return _save(fig, out, "receptive_field")


def _rectangles() -> np.ndarray:
    img = np.zeros((32, 32))
    img[6:14, 5:17] = 1.0
    img[18:28, 20:27] = 1.0
    return img


def hierarchy(out: Path) -> Path:
    """Layer 1: four edge detectors; layer 2: corners as a channel-mixing (1x1) combination."""
    img = _rectangles()
    relu = lambda z: np.maximum(z, 0)  # noqa: E731
    edges = {"left edge": relu(ndimage.correlate(img, SOBEL_X, mode="constant")),
             "right edge": relu(ndimage.correlate(img, -SOBEL_X, mode="constant")),
             "top edge": relu(ndimage.correlate(img, SOBEL_Y, mode="constant")),
             "bottom edge": relu(ndimage.correlate(img, -SOBEL_Y, mode="constant"))}
    pairs = {"top-left corner": ("left edge", "top edge"),
             "top-right corner": ("right edge", "top edge"),
             "bottom-left corner": ("left edge", "bottom edge"),
             "bottom-right corner": ("right edge", "bottom edge")}
    corners = {name: relu(edges[a] + edges[b] - 4.0) for name, (a, b) in pairs.items()}
    fig, axes = plt.subplots(2, 5, figsize=(14, 6))
    axes[0, 0].imshow(img, cmap="gray")
    axes[0, 0].set_title("input", fontsize=9)
    for ax, (name, v) in zip(axes[0, 1:], edges.items(), strict=True):
        ax.imshow(v, cmap="magma", vmin=0, vmax=4)
        ax.set_title(f"layer 1: {name}", fontsize=9)
    for ax, (name, v) in zip(axes[1, :4], corners.items(), strict=True):
        ax.imshow(v, cmap="magma", vmin=0, vmax=2)
        ax.set_title(f"layer 2: {name}", fontsize=9)
    axes[1, 4].imshow(img, cmap="gray")
    for v in corners.values():
        ys, xs = np.nonzero(v)
        axes[1, 4].scatter(xs, ys, s=60, facecolors="none", edgecolors="tab:red", lw=1.5)
    axes[1, 4].set_title("all layer-2 detections", fontsize=9)
    for ax in axes.ravel():
        ax.axis("off")
    fig.tight_layout()
    return _save(fig, out, "hierarchy")


def pooling_shift(out: Path) -> Path:
    """Max pooling (2 wide, stride 2) of a shifted 1-D response: jumps, not smooth invariance."""
    n = 16
    base = np.zeros(n)
    base[5], base[6] = 1.0, 0.4
    shifts = range(4)
    signals = np.stack([np.roll(base, t) for t in shifts])
    pooled = signals.reshape(len(shifts), n // 2, 2).max(axis=2)
    gap = signals.mean(axis=1)
    fig, axes = plt.subplots(1, 2, figsize=(12, 3.2), gridspec_kw={"width_ratios": [2, 1]})
    axes[0].imshow(signals, cmap="magma", vmin=0, vmax=1)
    axes[0].set_title("feature map, shifted right by t = 0, 1, 2, 3 (rows)", fontsize=9)
    axes[1].imshow(pooled, cmap="magma", vmin=0, vmax=1)
    axes[1].set_title(f"after 2-wide max pooling, stride 2\n(global average: {gap[0]:.4f} "
                      "in every row)", fontsize=9)
    for ax, data in zip(axes, (signals, pooled), strict=True):
        ax.set_yticks(range(len(shifts)), [f"t = {t}" for t in shifts])
        ax.set_xticks(range(data.shape[1]))
        ax.tick_params(labelsize=7)
    fig.tight_layout()
    return _save(fig, out, "pooling_shift")


def conv_vs_corr(out: Path) -> Path:
    """The impulse response: convolution reproduces the kernel, cross-correlation flips it."""
    k = np.arange(1, 10, dtype=float).reshape(3, 3)
    delta = np.zeros((5, 5))
    delta[2, 2] = 1.0
    fig, axes = plt.subplots(1, 4, figsize=(13, 3.6))
    _grid(axes[0], k, cmap="viridis")
    axes[0].set_title("kernel $k$", fontsize=10)
    _grid(axes[1], delta, cmap="Greys")
    axes[1].set_title(r"impulse $\delta$", fontsize=10)
    _grid(axes[2], signal.convolve2d(delta, k, mode="same"), cmap="viridis", vmin=0, vmax=9)
    axes[2].set_title(r"convolution $\delta * k$: $k$ itself", fontsize=10)
    _grid(axes[3], signal.correlate2d(delta, k, mode="same"), cmap="viridis", vmin=0, vmax=9)
    axes[3].set_title(r"cross-correlation $\delta \star k$: $k$ rotated 180$^\circ$",
                      fontsize=10)
    fig.tight_layout()
    return _save(fig, out, "conv_vs_corr")


def toeplitz(out: Path) -> Path:
    """The matrix of a 'valid' 3x3 cross-correlation on a 5x5 image: doubly block Toeplitz."""
    n, k = 5, 3
    o = n - k + 1
    t = np.zeros((o * o, n * n))
    for i in range(o):
        for j in range(o):
            for u in range(k):
                for v in range(k):
                    t[i * o + j, (i + u) * n + (j + v)] = u * k + v + 1  # tap number 1..9
    fig, ax = plt.subplots(figsize=(11, 4.6))
    shown = np.where(t > 0, t, np.nan)
    ax.imshow(shown, cmap="tab10", vmin=0.5, vmax=10.5)
    for (r, c), v in np.ndenumerate(t):
        if v:
            ax.text(c, r, f"{int(v)}", ha="center", va="center", fontsize=7)
    for b in range(1, n):
        ax.axvline(b * n - 0.5, color="k", lw=1)
    for b in range(1, o):
        ax.axhline(b * o - 0.5, color="k", lw=1)
    ax.set_xticks(range(n * n), [f"{m},{q}" for m in range(n) for q in range(n)], fontsize=6,
                  rotation=90)
    ax.set_yticks(range(o * o), [f"{i},{j}" for i in range(o) for j in range(o)], fontsize=7)
    ax.set_xlabel("input pixel (row, column) = column of the matrix")
    ax.set_ylabel("output pixel (row, column)")
    ax.set_title("entry = number of the kernel tap (1..9, row by row) that links output to "
                 "input; blank = 0.\nBlocks (black lines) repeat along diagonals: a block "
                 "Toeplitz matrix whose blocks are Toeplitz", fontsize=9)
    fig.tight_layout()
    return _save(fig, out, "toeplitz")


FIGURES = (sliding_window, sobel_mri, equivariance, padding_stride_dilation, receptive_field,
           hierarchy, pooling_shift, conv_vs_corr, toeplitz)


def main(argv: list[str] | None = None) -> None:
    run(FIGURES, __doc__, argv)


if __name__ == "__main__":
    main()
