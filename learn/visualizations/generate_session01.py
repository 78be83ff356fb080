"""Figures of Session 01 (neural network fundamentals) that the pages do not draw themselves.

Usage (from anywhere)::

    python learn/visualizations/generate_session01.py            # -> learn/visualizations/figures/
    python learn/visualizations/generate_session01.py --out DIR  # anywhere else (the tests do this)

Every figure is a pure function of fixed seeds, so reruns redraw the same pictures.
"""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from figure_output import run, save_png  # noqa: E402 - sibling module
from scipy.special import gammaln  # noqa: E402

from neuropathology import scratch  # noqa: E402
from neuropathology.data.synthetic import generate_arrays  # noqa: E402


def activations(out: Path) -> Path:
    """The four activations of Part B and their derivatives."""
    z = np.linspace(-5, 5, 401)
    sig = 1 / (1 + np.exp(-z))
    funcs = {
        "ReLU": (np.maximum(z, 0), (z > 0).astype(float)),
        "sigmoid": (sig, sig * (1 - sig)),
        "tanh": (np.tanh(z), 1 - np.tanh(z) ** 2),
        "leaky ReLU (0.1)": (np.where(z > 0, z, 0.1 * z), np.where(z > 0, 1.0, 0.1)),
    }
    fig, axes = plt.subplots(1, 4, figsize=(13, 3.2))
    for ax, (name, (g, dg)) in zip(axes, funcs.items(), strict=True):
        ax.plot(z, g, label=r"$g(z)$")
        ax.plot(z, dg, "--", label=r"$g'(z)$")
        ax.set_title(name)
        ax.axhline(0, color="grey", lw=0.5)
        ax.axvline(0, color="grey", lw=0.5)
        ax.set_xlabel("$z$")
        ax.legend(loc="upper left", fontsize=8)
    fig.tight_layout()
    return save_png(fig, out / "session01_activations.png", dpi=100, quantize=False)


def xor_geometry(out: Path) -> Path:
    """XOR: no line separates it in the input space; two ReLU units make it separable."""
    x = np.array([[0, 0], [0, 1], [1, 0], [1, 1]], dtype=float)
    y = np.array([0, 1, 1, 0])
    # hidden layer h1 = relu(x1 + x2), h2 = relu(x1 + x2 - 1): output h1 - 2 h2 is XOR
    h = np.maximum(np.stack([x.sum(1), x.sum(1) - 1], axis=1), 0)
    fig, axes = plt.subplots(1, 2, figsize=(8.5, 4))
    for ax, pts, title, labels in ((axes[0], x, "input space $(x_1, x_2)$", ("$x_1$", "$x_2$")),
                                   (axes[1], h, "hidden space $(h_1, h_2)$", ("$h_1$", "$h_2$"))):
        for cls, marker, color in ((0, "o", "tab:blue"), (1, "s", "tab:red")):
            ax.scatter(*pts[y == cls].T, s=120, marker=marker, color=color, label=f"class {cls}")
        ax.set_title(title)
        ax.set_xlabel(labels[0])
        ax.set_ylabel(labels[1])
        ax.set_xlim(-0.3, 2.3)
        ax.set_ylim(-0.3, 1.3)
        ax.grid(alpha=0.3)
    t = np.linspace(-0.3, 2.3, 10)
    axes[1].plot(t, (t - 0.5) / 2, "k--", label=r"$h_1 - 2h_2 = \frac{1}{2}$")
    axes[0].legend(loc="upper right", fontsize=8)
    axes[1].legend(loc="upper left", fontsize=8)
    fig.tight_layout()
    return save_png(fig, out / "session01_xor_geometry.png", dpi=100, quantize=False)


def gradient_norms(out: Path) -> Path:
    """Norm of the error signal per layer in a 30-layer net: sigmoid vanishes, ReLU+He keeps it."""
    rng = np.random.default_rng(0)
    depth, width, n = 30, 64, 256

    def run(act: str, scale: float) -> list[float]:
        a = rng.standard_normal((n, width))
        zs, ws = [], []
        for _ in range(depth):
            w = rng.standard_normal((width, width)) * scale / np.sqrt(width)
            z = a @ w.T
            zs.append(z)
            ws.append(w)
            a = np.maximum(z, 0) if act == "relu" else 1 / (1 + np.exp(-z))
        delta = rng.standard_normal((n, width))
        norms = []
        for z, w in zip(reversed(zs), reversed(ws), strict=True):
            if act == "relu":
                delta = delta * (z > 0)
            else:
                s = 1 / (1 + np.exp(-z))
                delta = delta * s * (1 - s)
            norms.append(float(np.linalg.norm(delta) / np.sqrt(n)))
            delta = delta @ w
        return norms[::-1]

    fig, ax = plt.subplots(figsize=(6.5, 4))
    for act, scale, label in (("sigmoid", 1.0, "sigmoid, Var[W]=1/n"),
                              ("relu", np.sqrt(2.0), "ReLU, He: Var[W]=2/n"),
                              ("relu", 2.0, "ReLU, Var[W]=4/n")):
        ax.semilogy(range(1, depth + 1), run(act, scale), marker="o", ms=3, label=label)
    ax.set_xlabel(r"layer $\ell$")
    ax.set_ylabel(r"$\|\delta^{(\ell)}\|$ (per example)")
    ax.set_title("error signal norm by layer (output layer on the right)")
    ax.grid(alpha=0.3, which="both")
    ax.legend()
    fig.tight_layout()
    return save_png(fig, out / "session01_gradient_norms.png", dpi=100, quantize=False)


# ------------------------------------------------------------------ Part A: geometric intuition
# Every figure below is drawn from the same fixed seeds and the same computations as the
# blocks of Part A that assert the numbers the text quotes; the asserts here repeat the key
# ones, so a figure cannot silently disagree with the page.


def high_dimensions(out: Path) -> Path:
    """Distances concentrate; the volume of a ball lives in its shell, a cube's in its corners."""
    rng = np.random.default_rng(0)
    fig, axes = plt.subplots(1, 3, figsize=(13, 3.6))
    for d in (2, 10, 100, 1000):
        x = rng.uniform(size=(400, d))
        sq = np.sum(x ** 2, axis=1)
        d2 = sq[:, None] + sq[None, :] - 2 * x @ x.T
        dist = np.sqrt(np.maximum(d2[np.triu_indices(len(x), k=1)], 0))
        axes[0].hist(dist / dist.mean(), bins=np.linspace(0, 2.5, 101), density=True,
                     histtype="step", lw=1.5, label=f"d = {d}")
    axes[0].set_xlabel("pairwise distance / mean distance")
    axes[0].set_ylabel("density")
    axes[0].set_title("uniform points in $[0, 1]^d$")
    axes[0].legend(fontsize=8)

    dims = np.unique(np.logspace(0, 4, 200).astype(int))
    for eps in (0.01, 0.05):
        axes[1].semilogx(dims, 1 - (1 - eps) ** dims, label=rf"shell of thickness {eps}")
    axes[1].axvline(1024, color="grey", ls=":", lw=1)
    axes[1].text(1100, 0.05, "32 x 32 image", fontsize=8, color="grey")
    axes[1].set_xlabel("dimension $d$")
    axes[1].set_ylabel("fraction of the ball's volume")
    axes[1].set_title("the volume of a ball lies near its surface")
    axes[1].legend(fontsize=8, loc="center right")

    d_ball = np.arange(1, 31)
    ratio = np.exp(d_ball / 2 * np.log(np.pi) - gammaln(d_ball / 2 + 1) - d_ball * np.log(2))
    axes[2].semilogy(d_ball, ratio, marker="o", ms=3)
    axes[2].set_xlabel("dimension $d$")
    axes[2].set_ylabel("volume(ball) / volume(cube)")
    axes[2].set_title("inscribed ball in $[0, 1]^d$: the corners win")
    axes[2].grid(alpha=0.3, which="both")
    assert np.isclose(ratio[1], np.pi / 4) and ratio[9] < 0.003
    fig.tight_layout()
    return save_png(fig, out / "session01_high_dimensions.png", dpi=90, quantize=False)


def mri_pca(out: Path) -> Path:
    """PCA of 400 synthetic 32 x 32 MRI slices: a few directions carry most of the variance."""
    data = generate_arrays(100, size=32, seed=0, split="train")
    x = data.images.reshape(len(data.images), -1).astype(np.float64) / 255.0
    shuffled = np.random.default_rng(0).permuted(x, axis=0)  # each pixel shuffled separately

    def spectrum(v: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        mean = v.mean(axis=0)
        _, s, vt = np.linalg.svd(v - mean, full_matrices=False)
        return mean, vt, np.cumsum(s ** 2) / np.sum(s ** 2)

    mean, vt, cum = spectrum(x)
    _, _, cum_shuffled = spectrum(shuffled)
    k = {q: int(np.searchsorted(cum, q) + 1) for q in (0.5, 0.8, 0.9)}
    k_shuffled = int(np.searchsorted(cum_shuffled, 0.9) + 1)
    assert (k[0.5], k[0.8], k[0.9], k_shuffled) == (5, 32, 76, 231)

    fig = plt.figure(figsize=(13, 3.6))
    grid = fig.add_gridspec(1, 6, width_ratios=[2.4, 1, 1, 1, 1, 0.05])
    ax = fig.add_subplot(grid[0])
    ranks = np.arange(1, len(cum) + 1)
    ax.semilogx(ranks, cum, label="synthetic MRI slices")
    ax.semilogx(ranks, cum_shuffled, label="same pixels, shuffled per pixel")
    ax.axhline(0.9, color="grey", ls=":", lw=1)
    ax.plot([k[0.9]], [0.9], "o", color="tab:blue")
    ax.plot([k_shuffled], [0.9], "o", color="tab:orange")
    ax.set_xlabel("number of principal components $k$ (of 1024 pixels)")
    ax.set_ylabel("fraction of variance explained")
    ax.set_title("400 slices of 32 x 32 pixels")
    ax.legend(fontsize=8, loc="lower right")
    image = x[0]
    coords = vt @ (image - mean)
    panels = [("original", image)] + [
        (f"{kk} components", mean + vt[:kk].T @ coords[:kk]) for kk in (k[0.5], k[0.8], k[0.9])]
    for i, (title, img) in enumerate(panels, start=1):
        a = fig.add_subplot(grid[i])
        a.imshow(img.reshape(32, 32), cmap="gray", vmin=0, vmax=1)
        a.set_title(title, fontsize=10)
        a.axis("off")
    fig.tight_layout()
    return save_png(fig, out / "session01_mri_pca.png", dpi=90, quantize=False)


def _sigmoid(z: np.ndarray) -> np.ndarray:
    return 0.5 * (1 + np.tanh(z / 2))  # = 1 / (1 + e^-z), without overflow


def hyperplane(out: Path) -> Path:
    """One logistic neuron: its wall, its normal w, and a confidence that grows with distance."""
    u, offset = np.array([0.8, 0.6]), -0.5             # unit normal, b / ||w||
    g = np.linspace(-3, 3, 301)
    gx, gy = np.meshgrid(g, g)
    x0 = np.array([-1.6, 1.2])
    fig, axes = plt.subplots(1, 2, figsize=(10.5, 4.6))
    for ax, norm in zip(axes, (1.0, 4.0), strict=True):
        w, b = norm * u, norm * offset
        p = _sigmoid(w[0] * gx + w[1] * gy + b)
        im = ax.contourf(gx, gy, p, levels=np.linspace(0, 1, 21), cmap="RdBu_r", alpha=0.75)
        cs = ax.contour(gx, gy, p, levels=[0.1, 0.5, 0.9], colors="k",
                        linewidths=[0.8, 1.8, 0.8], linestyles=["--", "-", "--"])
        ax.clabel(cs, fmt={0.1: "p = 0.1", 0.5: "p = 0.5", 0.9: "p = 0.9"}, fontsize=8)
        foot = -b * w / norm ** 2                      # the point of the wall nearest 0
        ax.annotate("", xy=foot + u, xytext=foot,
                    arrowprops={"arrowstyle": "-|>", "lw": 2, "color": "k"})
        ax.text(*(foot + 1.1 * u), r"$\mathbf{w}$", fontsize=13)
        z0 = w @ x0 + b
        proj = x0 - z0 / norm ** 2 * w
        ax.plot(*np.stack([x0, proj]).T, "k:", lw=1.5)
        ax.plot(*x0, "ko", ms=5)
        ax.text(x0[0] - 0.3, x0[1] + 0.25, r"$\mathbf{x}$", fontsize=12)
        ax.text(-2.8, -2.7, r"$z < 0$", fontsize=12)
        ax.text(2.0, 2.5, r"$z > 0$", fontsize=12)
        ax.plot([0], [0], "k+", ms=10)
        ax.set_title(rf"$\|\mathbf{{w}}\| = {norm:g}$: "
                     r"p = $\sigma(\mathbf{w}^T\mathbf{x} + b)$, same wall", fontsize=10)
        ax.set_aspect("equal")
        ax.set_xlabel("$x_1$")
        ax.set_ylabel("$x_2$")
    fig.colorbar(im, ax=axes, shrink=0.85, label="p")
    return save_png(fig, out / "session01_hyperplane.png", dpi=90, quantize=False, tight=True)


def linear_partition(out: Path) -> Path:
    """Arg-max of four affine scores in the plane: four convex regions, one of them bounded."""
    angles = np.deg2rad([90, 210, 330])
    W = np.vstack([2 * np.stack([np.cos(angles), np.sin(angles)], axis=1), [[0.0, 0.0]]])
    b = np.array([0.0, 0.0, 0.0, 1.0])
    g = np.linspace(-2, 2, 401)
    gx, gy = np.meshgrid(g, g)
    z = np.stack([gx.ravel(), gy.ravel()], axis=1) @ W.T + b
    winner = z.argmax(axis=1).reshape(gx.shape)
    e = np.exp(z - z.max(axis=1, keepdims=True))
    p_centre = (e[:, 3] / e.sum(axis=1)).reshape(gx.shape)
    colors = ["tab:red", "tab:green", "tab:blue", "tab:orange"]
    fig, axes = plt.subplots(1, 2, figsize=(10, 4.4))
    axes[0].contourf(gx, gy, winner, levels=np.arange(-0.5, 4), colors=colors, alpha=0.45)
    axes[0].contour(gx, gy, winner, levels=np.arange(0.5, 3), colors="k", linewidths=1)
    for k in range(3):  # w_k - w_4 = w_k is normal to the edge between classes k and 4
        u = W[k] / 2
        axes[0].annotate("", xy=u, xytext=0.5 * u,
                         arrowprops={"arrowstyle": "-|>", "lw": 1.5, "color": "k"})
        side = np.array([-u[1], u[0]]) / np.linalg.norm(u)
        axes[0].text(*(0.85 * u + 0.18 * side), rf"$\mathbf{{w}}_{k + 1}$", fontsize=11,
                     ha="center", va="center")
        axes[0].text(*(1.5 * u), f"class {k + 1}", ha="center", fontsize=10)
    axes[0].text(0, -0.05, "class 4", ha="center", fontsize=10)
    axes[0].set_title(r"$\hat y = \arg\max_k (\mathbf{w}_k^T\mathbf{x} + b_k)$: convex regions")
    im = axes[1].contourf(gx, gy, p_centre, levels=np.linspace(0, 1, 21), cmap="Oranges")
    axes[1].contour(gx, gy, winner, levels=np.arange(0.5, 3), colors="k", linewidths=0.5)
    axes[1].set_title("softmax probability of class 4")
    fig.colorbar(im, ax=axes[1], shrink=0.85)
    for ax in axes:
        ax.set_aspect("equal")
        ax.set_xlabel("$x_1$")
        ax.set_ylabel("$x_2$")
    fig.tight_layout()
    return save_png(fig, out / "session01_linear_partition.png", dpi=90, quantize=False)


def activation_maps(out: Path) -> Path:
    """A grid through an affine map, then through ReLU (creased onto the walls) or tanh."""
    A = np.array([[1.0, 0.6], [-0.5, 1.0]])
    c = np.array([0.3, -0.2])
    ticks = np.linspace(-2, 2, 13)
    t = np.linspace(-2, 2, 121)
    lines = [np.stack([np.full_like(t, v), t], axis=1) for v in ticks]
    lines += [np.stack([t, np.full_like(t, v)], axis=1) for v in ticks]
    lattice = np.stack(np.meshgrid(ticks, ticks), axis=-1).reshape(-1, 2)
    z_lattice = lattice @ A.T + c
    region = (z_lattice[:, 0] > 0).astype(int) + 2 * (z_lattice[:, 1] > 0).astype(int)
    palette = np.array(["tab:grey", "tab:red", "tab:blue", "tab:green"])
    maps = [("input grid and the two walls", lambda p: p),
            (r"$\mathbf{z} = \mathbf{A}\mathbf{x} + \mathbf{b}$ (walls become the axes)",
             lambda p: p @ A.T + c),
            (r"$\mathrm{relu}(\mathbf{z})$: three quadrants flattened",
             lambda p: np.maximum(p @ A.T + c, 0)),
            (r"$\tanh(\mathbf{z})$: squashed into $(-1, 1)^2$", lambda p: np.tanh(p @ A.T + c))]
    fig, axes = plt.subplots(1, 4, figsize=(14, 3.7))
    for ax, (title, f) in zip(axes, maps, strict=True):
        for line in lines:
            ax.plot(*f(line).T, color="0.6", lw=0.5)
        ax.scatter(*f(lattice).T, c=palette[region], s=8, zorder=3)
        ax.set_title(title, fontsize=10)
        ax.set_aspect("equal")
        ax.axhline(0, color="k", lw=0.6)
        ax.axvline(0, color="k", lw=0.6)
    # the walls {z_1 = 0} and {z_2 = 0} in input coordinates
    for i, style in ((0, "-"), (1, "--")):
        a1, a2 = A[i]
        xs = np.linspace(-2, 2, 2)
        axes[0].plot(xs, -(a1 * xs + c[i]) / a2, "k" + style, lw=1.5, label=f"$z_{i + 1} = 0$")
    axes[0].set_xlim(-2.2, 2.2)
    axes[0].set_ylim(-2.2, 2.2)
    axes[0].legend(fontsize=8, loc="lower right")
    fig.tight_layout()
    return save_png(fig, out / "session01_activation_maps.png", dpi=90, quantize=False)


def two_spirals(n: int, noise: float, rng: np.random.Generator, turns: float = 2.0
                ) -> tuple[np.ndarray, np.ndarray]:
    """Two interleaved spirals of ``turns`` turns, n/2 points each, in about [-1, 1]^2."""
    t = np.sqrt(rng.uniform(0, 1, n // 2)) * turns * 2 * np.pi
    arm = np.stack([t * np.cos(t), t * np.sin(t)], axis=1) / (turns * 2 * np.pi)
    points = np.concatenate([arm, -arm]) + noise * rng.standard_normal((n, 2))
    return points, np.repeat([0, 1], n // 2)


def train_spiral_net():
    """The 2-8-8-2-2 tanh network of Part A, A.7 (same data, seeds and optimiser)."""
    rng = np.random.default_rng(0)
    x, y = two_spirals(400, 0.02, rng)
    x_test, y_test = two_spirals(400, 0.02, rng)
    layers = []
    for i, units in enumerate((8, 8, 2)):
        layers += [scratch.Dense(units, seed=i, dtype=np.float64), scratch.Tanh()]
    net = scratch.Sequential(layers + [scratch.Dense(2, seed=9, dtype=np.float64)])
    net.fit(x, y, scratch.SoftmaxCrossEntropy(), scratch.Adam(0.01), epochs=3000,
            batch_size=400, verbose=0)
    return net, x, y, x_test, y_test


def hidden_layers(net, x: np.ndarray) -> list[np.ndarray]:
    """The input and the activation after every tanh layer."""
    reps, a = [x], x
    for layer in net.layers:
        a = layer.forward(a)
        if type(layer).__name__ == "Tanh":
            reps.append(a)
    return reps


def layer_representations(out: Path) -> Path:
    """Two spirals, layer by layer: the last hidden layer has two units and a line suffices."""
    from sklearn.linear_model import LogisticRegression

    net, x, y, x_test, y_test = train_spiral_net()
    reps = hidden_layers(net, x)
    probe = [LogisticRegression(C=1e4, max_iter=5000).fit(r, y).score(r, y) for r in reps]
    test_acc = float(np.mean(net.predict(x_test).argmax(axis=1) == y_test))
    assert probe[0] < 0.7 and probe[1] < 0.7 and probe[2] > 0.99 and test_acc > 0.98
    colors = np.array(["tab:blue", "tab:red"])
    fig, axes = plt.subplots(1, 4, figsize=(16, 4.2))
    g = np.linspace(-1.2, 1.2, 241)
    gx, gy = np.meshgrid(g, g)
    logits = net.predict(np.stack([gx.ravel(), gy.ravel()], axis=1))
    margin = (logits[:, 1] - logits[:, 0]).reshape(gx.shape)
    axes[0].contourf(gx, gy, margin > 0, levels=[-0.5, 0.5, 1.5],
                     colors=["#cfe0f3", "#f6d0cf"])
    axes[0].contour(gx, gy, margin, levels=[0], colors="k", linewidths=1)
    titles = ["input $\\mathbf{x}$ (2-D)", "hidden layer 1 (8 units; PCA view)",
              "hidden layer 2 (8 units; PCA view)", "hidden layer 3 (2 units; exact)"]
    for i, (ax, r) in enumerate(zip(axes, reps, strict=True)):
        if r.shape[1] > 2:
            centred = r - r.mean(axis=0)
            r = centred @ np.linalg.svd(centred, full_matrices=False)[2][:2].T
        ax.scatter(*r.T, c=colors[y], s=6)
        ax.set_title(f"{titles[i]}\nlinear probe: {probe[i]:.0%} correct", fontsize=10)
        ax.set_aspect("equal", adjustable="datalim" if i < 3 else "box")
    last = net.layers[-1].params
    v, c = last["W"][1] - last["W"][0], last["b"][1] - last["b"][0]
    h = np.linspace(-1.05, 1.05, 2)
    axes[3].plot(h, -(v[0] * h + c) / v[1], "k-", lw=1.2, label="output layer's wall")
    axes[3].set_xlim(-1.05, 1.05)
    axes[3].set_ylim(-1.05, 1.05)
    axes[3].legend(fontsize=8, loc="lower left")
    fig.tight_layout()
    return save_png(fig, out / "session01_layer_representations.png", dpi=90, quantize=False)


def linear_regions(out: Path) -> Path:
    """The linear regions of a random ReLU network in the plane, one layer and two layers."""
    rng = np.random.default_rng(0)
    layers = [(rng.standard_normal((8, 2)), rng.standard_normal(8)),
              (rng.standard_normal((8, 8)), rng.standard_normal(8))]
    readout = np.random.default_rng(1).standard_normal(8)
    g = np.linspace(-3, 3, 601)
    gx, gy = np.meshgrid(g, g)
    a = np.stack([gx.ravel(), gy.ravel()], axis=1)
    patterns = []
    for W, b in layers:
        z = a @ W.T + b
        patterns.append(z > 0)
        a = np.maximum(z, 0)
    output = (a @ readout).reshape(gx.shape)
    fig, axes = plt.subplots(1, 2, figsize=(11, 5))
    palette = np.random.default_rng(2).uniform(0.35, 1.0, size=(2000, 3))
    for ax, bits, title in ((axes[0], patterns[0], "one layer of 8 ReLU units"),
                            (axes[1], np.concatenate(patterns, axis=1),
                             "two layers of 8 units, and contours of the output")):
        codes = bits.astype(np.int64) @ (2 ** np.arange(bits.shape[1]))  # pattern as integer
        _, ids = np.unique(codes, return_inverse=True)
        ids = ids.reshape(gx.shape)
        ax.imshow(palette[ids % len(palette)], origin="lower", extent=(-3, 3, -3, 3))
        edge = np.zeros(ids.shape, bool)
        edge[:, 1:] |= ids[:, 1:] != ids[:, :-1]
        edge[1:, :] |= ids[1:, :] != ids[:-1, :]
        ax.contour(gx, gy, edge.astype(float), levels=[0.5], colors="k", linewidths=0.6)
        ax.set_title(title, fontsize=10)
        ax.set_xlabel("$x_1$")
        ax.set_ylabel("$x_2$")
    axes[1].contour(gx, gy, output, levels=15, colors="k", linewidths=0.5, alpha=0.6)
    fig.tight_layout()
    return save_png(fig, out / "session01_linear_regions.png", dpi=90, quantize=False)


def sawtooth(out: Path) -> Path:
    """The tent map t and its compositions: each layer doubles the number of linear pieces."""
    def tent(v: np.ndarray) -> np.ndarray:
        return 2 * np.maximum(v, 0) - 4 * np.maximum(v - 0.5, 0)

    x = np.linspace(0, 1, 2049)
    fig, axes = plt.subplots(1, 3, figsize=(12, 3.4), sharey=True)
    y = x
    for k, ax in enumerate(axes, start=1):
        y = tent(y)
        ax.plot(x, y, lw=1.8)
        kinks = np.arange(1, 2 ** k) / 2 ** k
        ax.plot(kinks, tent_power(kinks, k), "k.", ms=6)
        name = " \\circ ".join(["t"] * k)
        ax.set_title(f"${name}$: {2 ** k} pieces, {k} layer{'s' if k > 1 else ''} of 2 units",
                     fontsize=10)
        ax.set_xlabel("$x$")
        ax.grid(alpha=0.3)
    fig.tight_layout()
    return save_png(fig, out / "session01_sawtooth.png", dpi=90, quantize=False)


def tent_power(v: np.ndarray, k: int) -> np.ndarray:
    for _ in range(k):
        v = 2 * np.maximum(v, 0) - 4 * np.maximum(v - 0.5, 0)
    return v


def regression_problem() -> tuple[np.ndarray, np.ndarray]:
    """The two-weight least-squares problem of Part A, A.10."""
    rng = np.random.default_rng(0)
    x = rng.standard_normal((100, 2)) @ np.linalg.cholesky([[1.0, 0.8], [0.8, 1.0]]).T
    y = x @ np.array([1.0, -0.5]) + 0.1 * rng.standard_normal(100)
    return x, y


def gd_paths(out: Path) -> Path:
    """Gradient descent on a quadratic: a small rate, one near 2/lambda_max, one past it."""
    x, y = regression_problem()
    n = len(y)
    H = x.T @ x / n
    w_star = np.linalg.solve(H, x.T @ y / n)
    lam_max = np.linalg.eigvalsh(H)[-1]

    def loss(w: np.ndarray) -> np.ndarray:
        r = w @ x.T - y
        return 0.5 * np.mean(r ** 2, axis=-1)

    def run(eta: float, steps: int) -> np.ndarray:
        w = np.array([-2.0, 0.5])
        path = [w]
        for _ in range(steps):
            w = w - eta * (x.T @ (x @ w - y) / n)
            path.append(w)
        return np.array(path)

    rates = [(0.5 / lam_max, r"$\eta = 0.5/\lambda_{\max}$", "tab:green"),
             (1.9 / lam_max, r"$\eta = 1.9/\lambda_{\max}$", "tab:orange"),
             (2.1 / lam_max, r"$\eta = 2.1/\lambda_{\max}$", "tab:red")]
    g1, g2 = np.linspace(-2.6, 3.4, 241), np.linspace(-2.6, 3.4, 241)
    G1, G2 = np.meshgrid(g1, g2)
    L = loss(np.stack([G1, G2], axis=-1))
    fig, axes = plt.subplots(1, 2, figsize=(11.5, 4.6))
    axes[0].contour(G1, G2, L, levels=np.geomspace(L.min() + 1e-3, L.max(), 18), colors="0.6",
                    linewidths=0.7)
    for eta, label, color in rates:
        path = run(eta, 10)
        axes[0].plot(*path.T, "o-", color=color, ms=3, lw=1.2, label=label)
        axes[1].semilogy(loss(run(eta, 100)) - loss(w_star), color=color, label=label)
    axes[0].plot(*w_star, "k*", ms=12)
    axes[0].set_xlim(-2.6, 3.4)
    axes[0].set_ylim(-2.6, 3.4)
    axes[0].set_aspect("equal")
    axes[0].set_xlabel("$w_1$")
    axes[0].set_ylabel("$w_2$")
    axes[0].set_title("level sets of the loss and 10 steps of gradient descent")
    axes[0].legend(fontsize=8, loc="upper right")
    axes[1].set_xlabel("step")
    axes[1].set_ylabel(r"$L(\mathbf{w}_t) - L(\mathbf{w}^\star)$")
    axes[1].set_title("loss above the minimum")
    axes[1].grid(alpha=0.3, which="both")
    axes[1].legend(fontsize=8)
    fig.tight_layout()
    return save_png(fig, out / "session01_gd_paths.png", dpi=90, quantize=False)


FIGURES = (activations, xor_geometry, gradient_norms, high_dimensions, mri_pca, hyperplane,
           linear_partition, activation_maps, layer_representations, linear_regions, sawtooth,
           gd_paths)


def main(argv: list[str] | None = None) -> None:
    run(FIGURES, __doc__, argv, blas_threads=1)


if __name__ == "__main__":
    main()
