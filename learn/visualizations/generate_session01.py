"""Figures of Session 01 (neural network fundamentals) that the pages do not draw themselves.

Usage (from anywhere)::

    python learn/visualizations/generate_session01.py            # -> learn/visualizations/figures/
    python learn/visualizations/generate_session01.py --out DIR  # anywhere else (the tests do this)

Every figure is a pure function of fixed seeds, so reruns redraw the same pictures.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

HERE = Path(__file__).resolve().parent


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
    path = out / "session01_activations.png"
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


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
    path = out / "session01_xor_geometry.png"
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


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
    path = out / "session01_gradient_norms.png"
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


FIGURES = (activations, xor_geometry, gradient_norms)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", type=Path, default=HERE / "figures")
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    for make in FIGURES:
        print(make(args.out))


if __name__ == "__main__":
    main()
