"""Figures of Session 03 (transfer learning and MobileNetV2) that the pages do not draw themselves.

Usage (from anywhere)::

    python learn/visualizations/generate_session03.py            # -> learn/visualizations/figures/
    python learn/visualizations/generate_session03.py --out DIR  # anywhere else (the tests do this)

Every figure is a pure function of fixed seeds, so reruns redraw the same pictures. No figure
needs pretrained (ImageNet) weights: the networks whose sizes are plotted are built with
``weights=None``, which gives the same shapes and parameter counts as the pretrained ones.
The MRI slice comes from the project's synthetic generator (``neuropathology.data.synthetic``).

The toy problems drawn here (the fine-tuning landscape, the ReLU spiral) are defined with the
same constants as in Session 03 Part A, which recomputes and asserts the numbers it quotes.
"""

from __future__ import annotations

import functools
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from figure_output import run, save_png  # noqa: E402 - sibling module
from matplotlib.patches import FancyArrowPatch, Rectangle  # noqa: E402
from scipy import ndimage  # noqa: E402

DPI = 90

SOBEL_X = np.array([[-1, 0, 1], [-2, 0, 2], [-1, 0, 1]], dtype=float)
FROZEN, TRAINABLE, HEAD = "#cfe2f3", "#f6b26b", "#93c47d"

# The fine-tuning toy of Part A (A.6): theta in R^2, source optimum theta_pre = 0,
# L_S = |theta|^2 / 2, L_T = (theta - theta_T)^T H_T (theta - theta_T) / 2 with a stiff
# (curvature 4) and a flat (curvature 0.04) direction.
TOY_ANGLE = np.deg2rad(-60.0)
TOY_U1 = np.array([np.cos(TOY_ANGLE), np.sin(TOY_ANGLE)])
TOY_U2 = np.array([-np.sin(TOY_ANGLE), np.cos(TOY_ANGLE)])
TOY_H = 4.0 * np.outer(TOY_U1, TOY_U1) + 0.04 * np.outer(TOY_U2, TOY_U2)
TOY_THETA_T = 1.0 * TOY_U1 + 3.0 * TOY_U2


def _save(fig: plt.Figure, out: Path, name: str) -> Path:
    return save_png(fig, out / f"session03_{name}.png", dpi=DPI)


def _box(ax: plt.Axes, x: float, y: float, w: float, h: float, text: str, color: str,
         hatch: str | None = None, fontsize: float = 8.5) -> None:
    ax.add_patch(Rectangle((x, y), w, h, fc=color, ec="0.3", lw=1.0, hatch=hatch))
    ax.text(x + w / 2, y + h / 2, text, ha="center", va="center", fontsize=fontsize)


def _arrow(ax: plt.Axes, start: tuple[float, float], end: tuple[float, float],
           color: str = "0.2", style: str = "-|>", ls: str = "-", lw: float = 1.2) -> None:
    ax.add_patch(FancyArrowPatch(start, end, arrowstyle=style, mutation_scale=11, color=color,
                                 ls=ls, lw=lw))


# --------------------------------------------------------------------------- Part A figures


def transfer_modes(out: Path) -> Path:
    """From scratch, feature extraction (stage 1), fine-tuning the top of the base (stage 2)."""
    stack = ["stem: Conv1", "blocks 0-2", "blocks 3-5", "blocks 6-9", "blocks 10-13",
             "blocks 14-16\n+ Conv_1"]
    modes = [
        ("training from scratch", [True] * 6, "all weights random,\nall trainable"),
        ("feature extraction\n(project: stage 1, lr 1e-3)", [False] * 6,
         "base pretrained and frozen;\nonly the new head learns"),
        ("fine-tuning the top\n(project: stage 2, lr 1e-5)", [False] * 5 + [True],
         "top 30 base layers + head learn;\nBN layers stay frozen"),
    ]
    fig, axes = plt.subplots(1, 3, figsize=(12.5, 5.6))
    for ax, (title, trainable, note) in zip(axes, modes, strict=True):
        y = 0.4
        _box(ax, 0.15, y, 0.7, 0.45, "image", "white")
        y += 0.7
        first_trainable = None
        for name, train in zip(stack, trainable, strict=True):
            color = TRAINABLE if train else FROZEN
            _box(ax, 0.15, y, 0.7, 0.6, name, color, hatch=None if train else "..")
            if train and first_trainable is None:
                first_trainable = y
            y += 0.8
        _box(ax, 0.15, y, 0.7, 0.6, "new head\n(GAP, dense, softmax)", HEAD)
        top = y + 0.6
        stop = first_trainable if first_trainable is not None else y
        _arrow(ax, (0.95, top), (0.95, stop), color="tab:red", ls="--")
        ax.text(1.0, (top + stop) / 2, "gradient\nflows", color="tab:red", fontsize=8,
                va="center")
        ax.text(0.5, -0.15, note, ha="center", va="top", fontsize=8.5)
        ax.set_xlim(0, 1.3)
        ax.set_ylim(-1.0, top + 0.3)
        ax.set_title(title, fontsize=10)
        ax.axis("off")
    handles = [Rectangle((0, 0), 1, 1, fc=TRAINABLE, ec="0.3"),
               Rectangle((0, 0), 1, 1, fc=FROZEN, ec="0.3", hatch=".."),
               Rectangle((0, 0), 1, 1, fc=HEAD, ec="0.3")]
    fig.legend(handles, ["trainable (base)", "frozen (base)", "new head (trainable)"],
               loc="lower center", ncol=3, fontsize=9, frameon=False)
    fig.tight_layout(rect=(0, 0.06, 1, 1))
    return _save(fig, out, "transfer_modes")


def domain_shift(out: Path) -> Path:
    """A colour-opponent filter sees a colour edge but nothing in a grey image copied to RGB."""
    from neuropathology.data.synthetic import generate_slice

    n = 96
    yy, xx = np.mgrid[0:n, 0:n]
    colour = np.empty((n, n, 3))
    colour[:] = (0.55, 0.30, 0.35)                            # reddish background, sum 1.2
    disc = (yy - 48) ** 2 + (xx - 34) ** 2 < 22 ** 2
    colour[disc] = (0.30, 0.55, 0.35)                         # greenish disc, the same sum
    square = (abs(yy - 48) < 14) & (abs(xx - 76) < 10)
    colour[square] = (0.75, 0.55, 0.55)                       # brighter square
    grey, _ = generate_slice("glioma", size=n, seed=4, difficulty=0.2)
    mri = np.repeat((grey.astype(float) / 255.0)[..., None], 3, axis=2)

    def luminance(img: np.ndarray) -> np.ndarray:   # Sobel_x on each channel, summed
        return sum(ndimage.correlate(img[..., c], SOBEL_X, mode="nearest") for c in range(3))

    def opponent(img: np.ndarray) -> np.ndarray:    # Sobel_x on red minus Sobel_x on green
        return (ndimage.correlate(img[..., 0], SOBEL_X, mode="nearest")
                - ndimage.correlate(img[..., 1], SOBEL_X, mode="nearest"))

    fig, axes = plt.subplots(2, 3, figsize=(11, 7.4))
    for row, (img, name) in enumerate(((colour, "colour image ('photo')"),
                                       (mri, "grey MRI slice copied into R, G, B"))):
        lum, opp = luminance(img), opponent(img)
        lim = max(np.abs(lum).max(), np.abs(opp).max(), 1e-9)
        axes[row, 0].imshow(np.clip(img, 0, 1))
        axes[row, 0].set_title(name, fontsize=9)
        axes[row, 1].imshow(lum, cmap="RdBu_r", vmin=-lim, vmax=lim)
        axes[row, 1].set_title(f"luminance edge filter\nmax |response| = {np.abs(lum).max():.2f}",
                               fontsize=9)
        axes[row, 2].imshow(opp, cmap="RdBu_r", vmin=-lim, vmax=lim)
        axes[row, 2].set_title(f"colour-opponent filter (red - green)\nmax |response| = "
                               f"{np.abs(opp).max():.2f}", fontsize=9)
        for ax in axes[row]:
            ax.axis("off")
    fig.suptitle("Both filters are 3 x 3 x 3 first-layer kernels. On a grey image the three "
                 "channels are equal,\nso a kernel acts only through the sum over its channels: "
                 "the opponent kernel sums to zero and is blind.", fontsize=9.5)
    fig.tight_layout(rect=(0, 0, 1, 0.92))
    return _save(fig, out, "domain_shift")


def quadrant(out: Path) -> Path:
    """Target data size x similarity to the source: which transfer strategy, where."""
    fig, ax = plt.subplots(figsize=(9.5, 7))
    cells = {
        (0, 1): ("small data, similar domain",
                 "feature extraction: freeze the base,\ntrain a linear or small head.\n"
                 "Fine-tuning would over-fit."),
        (1, 1): ("large data, similar domain",
                 "fine-tune most or all layers\nwith a small learning rate;\n"
                 "pretraining mainly saves time."),
        (0, 0): ("small data, different domain",
                 "the hard case: fine-tune carefully,\nuse earlier (more generic) layers,\n"
                 "augment; check a small model\ntrained from scratch."),
        (1, 0): ("large data, different domain",
                 "fine-tune everything or train\nfrom scratch; pretrained weights\n"
                 "are still a good initialisation."),
    }
    shades = {(0, 1): "#d9ead3", (1, 1): "#fff2cc", (0, 0): "#f4cccc", (1, 0): "#cfe2f3"}
    for (i, j), (title, text) in cells.items():
        ax.add_patch(Rectangle((i, j), 1, 1, fc=shades[(i, j)], ec="0.3"))
        ax.text(i + 0.5, j + 0.9, title, ha="center", va="top", fontsize=10, weight="bold")
        ax.text(i + 0.5, j + 0.62, text, ha="center", va="center", fontsize=9)
    points = [((0.15, 1.3), "Part A: 40 labelled slices,\nsame scanner", (8, -4), "top"),
              ((0.15, 0.22), "Part A: 40 labelled slices,\ninverted contrast", (8, -4), "top"),
              ((0.7, 1.0), "the project: ImageNet -> MRI,\na few thousand slices", (8, 6),
               "bottom")]
    for (x, y), label, offset, va in points:
        ax.plot(x, y, "k*", ms=13)
        ax.annotate(label, (x, y), xytext=offset, textcoords="offset points", fontsize=8.5,
                    va=va)
    ax.set_xlim(0, 2)
    ax.set_ylim(0, 2)
    ax.set_xticks([0.5, 1.5], ["small (tens to thousands)", "large (tens of thousands +)"])
    ax.set_yticks([0.5, 1.5], ["different", "similar"], rotation=90, va="center")
    ax.set_xlabel("labelled target data")
    ax.set_ylabel("similarity of the target domain to the source domain")
    ax.set_title("Where transfer helps, and how much of the network to adapt", fontsize=11)
    fig.tight_layout()
    return _save(fig, out, "quadrant")


def _toy_losses(theta: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(L_S, L_T) of the toy for points theta of shape (..., 2)."""
    d = theta - TOY_THETA_T
    return 0.5 * np.sum(theta ** 2, axis=-1), 0.5 * np.einsum("...i,ij,...j->...", d, TOY_H, d)


def _toy_gd(eta: float, steps: int) -> np.ndarray:
    path = [np.zeros(2)]
    for _ in range(steps):
        path.append(path[-1] - eta * TOY_H @ (path[-1] - TOY_THETA_T))
    return np.array(path)


def finetune_geometry(out: Path) -> Path:
    """Gradient descent on the target loss from the pretrained point; forgetting of the source."""
    g = np.linspace(-1.5, 4.5, 241)
    grid = np.stack(np.meshgrid(g, g - 1.8), axis=-1)
    l_s, l_t = _toy_losses(grid)
    small, big = _toy_gd(0.05, 400), _toy_gd(0.45, 12)
    lambdas = np.geomspace(1e-3, 1e3, 200)
    sp = np.array([np.linalg.solve(TOY_H + lam * np.eye(2), TOY_H @ TOY_THETA_T)
                   for lam in lambdas])
    fig, axes = plt.subplots(1, 2, figsize=(13, 5.4), gridspec_kw={"width_ratios": [1.15, 1]})
    ax = axes[0]
    ax.contour(grid[..., 0], grid[..., 1], l_t, levels=[0.05, 0.2, 0.5, 1, 2, 4, 8],
               colors="tab:orange", linewidths=1)
    ax.contour(grid[..., 0], grid[..., 1], l_s, levels=[0.5, 2, 4.5], colors="tab:blue",
               linestyles="--", linewidths=1)
    ax.plot(sp[:, 0], sp[:, 1], color="tab:green", lw=3, alpha=0.5,
            label=r"L2-SP minimisers, $\lambda$ from $10^{3}$ to $10^{-3}$")
    ax.plot(small[:, 0], small[:, 1], "k.-", ms=3, lw=0.8, label=r"GD, $\eta = 0.05$")
    ax.plot(small[25, 0], small[25, 1], "ko", ms=8, mfc="none")
    ax.annotate("after 25 steps", small[25], xytext=(-10, -30), textcoords="offset points",
                fontsize=8, arrowprops={"arrowstyle": "-", "lw": 0.6})
    ax.plot(big[:, 0], big[:, 1], "r.-", ms=4, lw=0.8, label=r"GD, $\eta = 0.45$")
    ax.plot(0, 0, "bs", ms=8)
    ax.annotate(r"$\theta_{\mathrm{pre}}$ (source optimum)", (0, 0), xytext=(-40, 12),
                textcoords="offset points", fontsize=9, color="tab:blue")
    ax.plot(*TOY_THETA_T, "*", color="tab:orange", ms=13)
    ax.annotate(r"$\theta_T$ (target optimum)", TOY_THETA_T, xytext=(-30, 10),
                textcoords="offset points", fontsize=9, color="tab:orange")
    ax.set_aspect("equal")
    ax.set_xlim(-1.2, 4.0)
    ax.set_ylim(-2.4, 2.0)
    ax.legend(fontsize=8, loc="lower right")
    ax.set_title("orange: target loss $L_T$; dashed blue: source loss $L_S$", fontsize=9.5)
    steps = np.arange(len(small))
    ls_path, lt_path = _toy_losses(small)
    axes[1].semilogx(steps[1:], lt_path[1:], color="tab:orange", label=r"target loss $L_T$")
    axes[1].semilogx(steps[1:], ls_path[1:], color="tab:blue", ls="--",
                     label=r"source loss $L_S$ (forgetting)")
    axes[1].axvline(25, color="0.5", lw=0.8, ls=":")
    axes[1].set_xlabel(r"gradient steps on $L_T$ ($\eta = 0.05$)")
    axes[1].set_ylabel("loss")
    axes[1].legend(fontsize=9)
    axes[1].set_title("the stiff direction is learned first; the flat one slowly,\n"
                      "and every step along it costs source knowledge", fontsize=9.5)
    fig.tight_layout()
    return _save(fig, out, "finetune_geometry")


def _channel_stack(ax: plt.Axes, x: float, y: float, colors: list[str], size: float = 0.9,
                   step: float = 0.18) -> None:
    for i, c in reversed(list(enumerate(colors))):
        ax.add_patch(Rectangle((x + i * step, y + i * step), size, size, fc=c, ec="0.3",
                               lw=0.8))


def separable(out: Path) -> Path:
    """Standard convolution versus depthwise (per channel) then pointwise (per pixel)."""
    cin = ["#e06666", "#6fa8dc", "#93c47d", "#ffd966"]
    fig, axes = plt.subplots(2, 1, figsize=(12, 6.4))
    ax = axes[0]
    _channel_stack(ax, 0.2, 0.4, cin)
    ax.text(0.85, 0.05, r"input, $C_{in} = 4$ channels", ha="center", fontsize=9)
    for f, fx in enumerate((3.0, 4.4, 5.8)):
        for i, c in reversed(list(enumerate(cin))):
            ax.add_patch(Rectangle((fx + i * 0.09, 0.8 + i * 0.09), 0.45, 0.45, fc=c,
                                   ec="0.3", lw=0.6))
        ax.text(fx + 0.4, 0.45, f"filter {f + 1}\n$k \\times k \\times C_{{in}}$",
                ha="center", fontsize=8, va="top")
    _arrow(ax, (1.9, 1.0), (2.8, 1.0))
    _arrow(ax, (7.0, 1.0), (7.9, 1.0))
    _channel_stack(ax, 8.1, 0.4, ["0.55", "0.7", "0.85"])
    ax.text(8.75, 0.05, r"output, $C_{out} = 3$", ha="center", fontsize=9)
    ax.text(10.3, 1.0, "standard convolution:\nevery filter reads every channel\n"
            r"weights $k^2 C_{in} C_{out}$", fontsize=9, va="center")
    ax.set_xlim(0, 13)
    ax.set_ylim(-0.2, 2.1)
    ax.axis("off")
    ax = axes[1]
    _channel_stack(ax, 0.2, 0.4, cin)
    for i, c in enumerate(cin):
        ax.add_patch(Rectangle((2.6 + i * 0.6, 0.9), 0.45, 0.45, fc=c, ec="0.3", lw=0.6))
    ax.text(3.65, 0.45, "depthwise: one $k \\times k$ filter\nper channel, no mixing",
            ha="center", fontsize=8, va="top")
    _channel_stack(ax, 5.3, 0.4, cin)
    for fx in (7.3, 8.0, 8.7):
        for i, c in enumerate(cin):
            ax.add_patch(Rectangle((fx, 0.7 + i * 0.22), 0.2, 0.2, fc=c, ec="0.3", lw=0.5))
    ax.text(8.1, 0.45, "pointwise: $1 \\times 1 \\times C_{in}$\nfilters mix channels",
            ha="center", fontsize=8, va="top")
    _channel_stack(ax, 9.5, 0.4, ["0.55", "0.7", "0.85"])
    _arrow(ax, (1.9, 1.0), (2.5, 1.0))
    _arrow(ax, (5.0, 1.0), (5.25, 1.0))
    _arrow(ax, (6.9, 1.0), (7.2, 1.0))
    _arrow(ax, (9.1, 1.0), (9.45, 1.0))
    ax.text(11.2, 1.0, "depthwise separable:\nfilter space, then mix\n"
            r"weights $k^2 C_{in} + C_{in} C_{out}$", fontsize=9, va="center")
    ax.set_xlim(0, 13)
    ax.set_ylim(-0.2, 2.1)
    ax.axis("off")
    fig.tight_layout()
    return _save(fig, out, "separable")


def inverted_residual(out: Path) -> Path:
    """ResNet's bottleneck block (wide-narrow-wide) against MobileNetV2's (narrow-wide-narrow)."""
    fig, axes = plt.subplots(1, 2, figsize=(13, 6.2))
    designs = [
        ("ResNet bottleneck (He et al., 2016)",
         [(256, "input 256"), (64, "1x1 conv, BN, ReLU -> 64"),
          (64, "3x3 conv, BN, ReLU -> 64"), (256, "1x1 conv, BN -> 256")],
         "ReLU after the addition", 256),
        ("MobileNetV2 inverted residual (block_2)",
         [(24, "input 24"), (144, "1x1 expand, BN, ReLU6 -> 144"),
          (144, "3x3 depthwise, BN, ReLU6 -> 144"), (24, "1x1 project, BN, linear -> 24")],
         "no activation after the addition", 144),
    ]
    for ax, (title, rows, note, widest) in zip(axes, designs, strict=True):
        scale = 4.0 / widest
        ys = [0.5, 2.0, 3.5, 5.0]
        for (width, label), y in zip(rows, ys, strict=True):
            w = width * scale
            linear = "linear" in label
            ax.add_patch(Rectangle((2.5 - w / 2, y), w, 0.7,
                                   fc="#f9cb9c" if width == widest else "#cfe2f3",
                                   ec="tab:red" if linear else "0.3", lw=2 if linear else 1))
            ax.text(2.5, y - 0.12, label, ha="center", va="top", fontsize=8.5)
        for y0, y1 in zip(ys[:-1], ys[1:], strict=True):
            _arrow(ax, (2.5, y0 + 0.7), (2.5, y1))
        x_in, x_out = 2.5 + rows[0][0] * scale / 2, 2.5 + rows[-1][0] * scale / 2
        x_far = 2.5 + 2.0 + 0.35
        ax.plot([x_in, x_far, x_far], [0.85, 0.85, 5.35], color="tab:green", lw=1.5)
        _arrow(ax, (x_far, 5.35), (x_out, 5.35), color="tab:green", lw=1.5)
        ax.text(x_far + 0.1, 3.0, "skip\nconnection", color="tab:green", fontsize=9)
        ax.text(2.5, 6.15, "+  (" + note + ")", ha="center", fontsize=9)
        ax.set_xlim(-0.3, 6.0)
        ax.set_ylim(-0.2, 6.6)
        ax.set_title(title, fontsize=10)
        ax.axis("off")
    fig.text(0.5, 0.02, "bar width proportional to the number of channels; red outline: the "
             "linear bottleneck (no ReLU). The skip joins the wide ends in ResNet, the thin "
             "ends in MobileNetV2.", ha="center", fontsize=9)
    fig.tight_layout(rect=(0, 0.05, 1, 1))
    return _save(fig, out, "inverted_residual")


def spiral(n_points: int = 300) -> tuple[np.ndarray, np.ndarray]:
    """The 2-D spiral of Part A (A.8): points as rows, and their curve parameter."""
    t = np.linspace(0.3, 3 * np.pi, n_points)
    return np.stack([t * np.cos(t), t * np.sin(t)], axis=1) / (3 * np.pi), t


def relu_manifold(out: Path) -> Path:
    """Sandler et al.'s experiment: embed a spiral in R^n, apply ReLU, project back."""
    x, t = spiral()
    dims = (2, 3, 5, 15, 30)
    fig, axes = plt.subplots(1, len(dims) + 1, figsize=(15, 3.2))
    axes[0].scatter(x[:, 0], x[:, 1], c=t, cmap="viridis", s=5)
    axes[0].set_title("input: a spiral in 2-D", fontsize=9)
    for ax, n in zip(axes[1:], dims, strict=True):
        T = np.random.default_rng(n).standard_normal((n, 2))
        y = np.maximum(x @ T.T, 0.0)
        back = y @ np.linalg.pinv(T).T
        active = (x @ T.T) > 0
        recoverable = np.mean([np.linalg.matrix_rank(T[a]) == 2 for a in active])
        ax.scatter(back[:, 0], back[:, 1], c=t, cmap="viridis", s=5)
        ax.set_title(f"n = {n}: $T^+$ ReLU($Tx$)\n{100 * recoverable:.0f}% of points recoverable",
                     fontsize=9)
    for ax in axes:
        ax.set_aspect("equal", adjustable="datalim")
        ax.set_xticks([])
        ax.set_yticks([])
    fig.tight_layout()
    return _save(fig, out, "relu_manifold")


def _macs(model) -> int:
    """Multiply-accumulates of the convolutions and dense layers of a Keras model."""
    import keras

    total = 0
    for layer in model.layers:
        if isinstance(layer, keras.layers.DepthwiseConv2D):
            _, h, w, c = layer.output.shape
            total += h * w * layer.kernel_size[0] * layer.kernel_size[1] * c
        elif isinstance(layer, keras.layers.Conv2D):
            _, h, w, c_out = layer.output.shape
            c_in = layer.input.shape[-1]
            total += (h * w * layer.kernel_size[0] * layer.kernel_size[1]
                      * c_in // layer.groups * c_out)
        elif isinstance(layer, keras.layers.Dense):
            total += layer.input.shape[-1] * layer.units
    return int(total)


ALPHAS = (0.35, 0.5, 0.75, 1.0, 1.3, 1.4)


@functools.lru_cache(maxsize=1)
def _mobilenet_costs() -> dict[float, tuple[int, int, int]]:
    """alpha -> (parameters without top, MACs without top at 224 px, channels of out_relu).

    For an input side that is a multiple of 32 every feature map scales exactly with the side,
    so MACs at resolution r are MACs(224) * (r / 224)^2; one extra build checks it.
    """
    import keras

    costs = {}
    for a in ALPHAS:
        m = keras.applications.MobileNetV2(weights=None, include_top=False, alpha=a,
                                           input_shape=(224, 224, 3))
        costs[a] = (m.count_params(), _macs(m), int(m.output.shape[-1]))
        keras.backend.clear_session()
    check = keras.applications.MobileNetV2(weights=None, include_top=False, alpha=0.35,
                                           input_shape=(160, 160, 3))
    assert _macs(check) * 224 ** 2 == costs[0.35][1] * 160 ** 2
    keras.backend.clear_session()
    return costs


def width_resolution(out: Path) -> Path:
    """MobileNetV2's cost over the width multiplier alpha and the input resolution."""
    sizes = (96, 128, 160, 192, 224)
    costs = _mobilenet_costs()
    macs = np.array([[costs[a][1] * (s / 224) ** 2 for s in sizes] for a in ALPHAS])
    params = np.array([costs[a][0] for a in ALPHAS], dtype=float)
    fig, axes = plt.subplots(1, 2, figsize=(12.5, 4.6))
    im = axes[0].imshow(macs / 1e6, cmap="viridis", origin="lower", aspect="auto")
    for (i, j), v in np.ndenumerate(macs / 1e6):
        axes[0].text(j, i, f"{v:.0f}", ha="center", va="center", fontsize=8,
                     color="white" if v < macs.max() / 2e6 else "black")
    axes[0].set_xticks(range(len(sizes)), [str(s) for s in sizes])
    axes[0].set_yticks(range(len(ALPHAS)), [str(a) for a in ALPHAS])
    axes[0].set_xlabel(r"input resolution (pixels); $\rho$ = resolution / 224")
    axes[0].set_ylabel(r"width multiplier $\alpha$")
    axes[0].set_title("millions of multiply-accumulates (base, no top)", fontsize=9.5)
    fig.colorbar(im, ax=axes[0], fraction=0.04)
    a = np.array(ALPHAS)
    ref = ALPHAS.index(1.0)
    axes[1].plot(a, params / params[ref], "o-", label="parameters / parameters at 1.0")
    axes[1].plot(a, macs[:, -1] / macs[ref, -1], "s-", label="MACs / MACs at 1.0 (224 px)")
    axes[1].plot(a, a ** 2, "k--", label=r"$\alpha^2$")
    axes[1].set_xlabel(r"width multiplier $\alpha$")
    axes[1].set_ylabel("ratio to the full-width network")
    axes[1].legend(fontsize=8.5)
    axes[1].grid(alpha=0.3)
    axes[1].set_title(r"cost grows about like $\alpha^2$ (the last 1280-channel layer is not "
                      r"narrowed for $\alpha < 1$)", fontsize=9)
    fig.tight_layout()
    return _save(fig, out, "width_resolution")


def efficient_families(out: Path) -> Path:
    """Parameters against multiply-accumulates at 224 x 224, with ImageNet classifier tops."""
    import keras

    builds = {"VGG16": keras.applications.VGG16, "ResNet50": keras.applications.ResNet50,
              "EfficientNetB0": keras.applications.EfficientNetB0}
    # top-1 ImageNet accuracy of each network's Keras weights, from the Keras documentation
    top1 = {"VGG16": 71.3, "ResNet50": 74.9, "EfficientNetB0": 77.1, "MobileNetV2": 71.3}
    points = {}
    for name, build in builds.items():
        m = build(weights=None)
        points[name] = (m.count_params(), _macs(m))
        keras.backend.clear_session()
    # MobileNetV2 with its top: global average pooling, then Dense(1000) on out_relu's channels
    mobile = {a: (p + c * 1000 + 1000, m + c * 1000)
              for a, (p, m, c) in _mobilenet_costs().items()}
    points["MobileNetV2"] = mobile[1.0]
    fig, ax = plt.subplots(figsize=(9, 5.6))
    mp = np.array(list(mobile.values()), dtype=float)
    ax.loglog(mp[:, 1], mp[:, 0], "o-", color="tab:blue", ms=4,
              label=r"MobileNetV2, $\alpha$ = 0.35 ... 1.4")
    colours = {"VGG16": "tab:gray", "ResNet50": "tab:red", "EfficientNetB0": "tab:green",
               "MobileNetV2": "tab:blue"}
    offsets = {"VGG16": (8, -6), "ResNet50": (8, -6), "EfficientNetB0": (-150, 40),
               "MobileNetV2": (10, -8)}
    for name, (p, m) in points.items():
        ax.loglog(m, p, "o", color=colours[name], ms=10)
        ax.annotate(f"{name}\n{p / 1e6:.1f} M params, {m / 1e9:.2f} G MACs\n"
                    f"ImageNet top-1 {top1[name]}%", (m, p), xytext=offsets[name],
                    textcoords="offset points", fontsize=8, va="top",
                    arrowprops={"arrowstyle": "-", "lw": 0.5, "color": "0.4"})
    ax.set_xlabel("multiply-accumulates per 224 x 224 image")
    ax.set_ylabel("parameters (with the 1000-class top)")
    ax.set_xlim(2e7, 1e11)
    ax.set_ylim(1e6, 4e8)
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=8.5, loc="upper left")
    ax.set_title("Four ImageNet classifiers (top-1 of the Keras weights, from the Keras "
                 "documentation)", fontsize=9.5)
    fig.tight_layout()
    return _save(fig, out, "efficient_families")


# --------------------------------------------------------------------------- Part B figures


#: MobileNetV2's body (Sandler et al., 2018, Table 2): expansion t, channels c, repeats n,
#: stride s of the first repeat.
MOBILENETV2_STAGES = ((1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2),
                      (6, 96, 3, 1), (6, 160, 3, 2), (6, 320, 1, 1))


def mobilenetv2_stages(out: Path) -> Path:
    """The 17 inverted residual blocks: thin inputs, wide expansions, resolution per block."""
    c_in, size, blocks = 32, 112, []
    for t, c, n, s in MOBILENETV2_STAGES:
        for i in range(n):
            stride = s if i == 0 else 1
            size_out = size // stride
            blocks.append((c_in, t * c_in, c, size, size_out, stride == 1 and c_in == c))
            c_in, size = c, size_out
    fig, ax = plt.subplots(figsize=(13, 5.2))
    idx = np.arange(len(blocks))
    ax.bar(idx, [b[1] for b in blocks], color="#f9cb9c", width=0.8,
           label="expanded width $t \\cdot C_{in}$ (depthwise 3x3 works here)")
    ax.bar(idx, [b[0] for b in blocks], color="#6fa8dc", width=0.5,
           label="bottleneck width $C_{in}$ (block input)")
    for i, b in enumerate(blocks):
        ax.text(i, b[1] + 25, f"{b[3]}" + (f"->{b[4]}" if b[4] != b[3] else ""), ha="center",
                fontsize=7.5, rotation=90, va="bottom")
        if b[5]:
            ax.text(i, -70, "+", ha="center", fontsize=12, color="tab:green")
    ax.set_xticks(idx, [f"{i}" for i in idx])
    ax.set_xlabel("block (keras names: expanded_conv, block_1 ... block_16); "
                  "green +: residual connection")
    ax.set_ylabel("channels")
    ax.set_ylim(-110, 1200)
    ax.legend(fontsize=9, loc="upper left")
    ax.set_title("MobileNetV2's 17 inverted residual blocks at 224 x 224 input (numbers above "
                 "the bars: spatial size in -> out)", fontsize=10)
    fig.tight_layout()
    return _save(fig, out, "mobilenetv2_stages")


FIGURES = (transfer_modes, domain_shift, quadrant, finetune_geometry, separable,
           inverted_residual, relu_manifold, width_resolution, efficient_families,
           mobilenetv2_stages)


def main(argv: list[str] | None = None) -> None:
    run(FIGURES, __doc__, argv)


if __name__ == "__main__":
    main()
