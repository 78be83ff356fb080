"""Figures of Session 04 (training mechanics and optimisation) that the pages do not draw themselves.

Usage (from anywhere)::

    python learn/visualizations/generate_session04.py            # -> learn/visualizations/figures/
    python learn/visualizations/generate_session04.py --out DIR  # anywhere else (the tests do this)

Every figure is a pure function of fixed seeds, so reruns redraw the same pictures. The toy
problems (the ravine, the least-squares problem, the sharp and flat minima, the cliff) are
defined here exactly as in Parts A and B, whose code blocks recompute and assert every number
the text quotes; the figures only draw them. The learning-rate schedules come from the
project's ``neuropathology.scratch.schedules``, which follow Keras' formulas.
"""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from figure_output import run, save_png  # noqa: E402 - sibling module
from scipy.special import expit, logsumexp  # noqa: E402

from neuropathology.scratch import schedules  # noqa: E402

DPI = 90
RAVINE_KAPPA = 50.0  # the ravine of A.2 and A.4: f = (x^2 + kappa y^2) / 2
RAVINE_START = np.array([-9.0, 1.2])


def _save(fig: plt.Figure, out: Path, name: str) -> Path:
    return save_png(fig, out / f"session04_{name}.png", dpi=DPI)


# --------------------------------------------------------------------------- A.1 landscape


def landscape(out: Path) -> Path:
    """Four terrains: a round bowl, a ravine, a saddle, a plateau around a narrow well."""
    g = np.linspace(-2, 2, 81)
    X, Y = np.meshgrid(g, g)
    terrains = (
        ("round bowl: $\\kappa = 1$", 0.5 * (X ** 2 + Y ** 2), "viridis"),
        ("ravine: $\\kappa = 25$", 0.5 * (0.12 * X ** 2 + 3 * Y ** 2), "viridis"),
        ("saddle: curvatures $+1$ and $-1$", 0.5 * (X ** 2 - Y ** 2), "coolwarm"),
        ("plateau around a well", 1 - np.exp(-2 * (X ** 2 + Y ** 2)), "viridis"),
    )
    fig = plt.figure(figsize=(14, 3.8))
    for i, (title, Z, cmap) in enumerate(terrains):
        ax = fig.add_subplot(1, 4, i + 1, projection="3d")
        ax.plot_surface(X, Y, Z, cmap=cmap, rstride=2, cstride=2, lw=0.2, edgecolor="0.3",
                        alpha=0.95)
        ax.set_title(title, fontsize=10)
        ax.set_xlabel(r"$\theta_1$", fontsize=8, labelpad=-8)
        ax.set_ylabel(r"$\theta_2$", fontsize=8, labelpad=-8)
        ax.tick_params(labelsize=6, pad=-3)
        ax.view_init(elev=32, azim=-55)
    fig.tight_layout()
    return _save(fig, out, "landscape")


# --------------------------------------------------------------------------- A.2 ravine


def _ravine_path(kappa: float, eta: float, steps: int, beta: float = 0.0,
                 nesterov: bool = False, start: np.ndarray = RAVINE_START) -> np.ndarray:
    """Iterates of (heavy-ball or Nesterov) gradient descent on f = (x^2 + kappa y^2)/2."""
    h = np.array([1.0, kappa])
    theta, v = start.astype(float).copy(), np.zeros(2)
    path = [theta.copy()]
    for _ in range(steps):
        g = h * (theta + beta * v) if nesterov else h * theta
        v = beta * v - eta * g
        theta = theta + v
        path.append(theta.copy())
    return np.array(path)


def _steps_to(kappa: float, eta: float, beta: float = 0.0, tol: float = 1e-3) -> int:
    """Steps until the distance to the minimum is below tol times the initial distance."""
    path = _ravine_path(kappa, eta, 20_000, beta)
    dist = np.linalg.norm(path, axis=1)
    return int(np.argmax(dist < tol * dist[0]))


def _ravine_axes(ax: plt.Axes, kappa: float = RAVINE_KAPPA) -> None:
    x, y = np.linspace(-10, 1.5, 300), np.linspace(-1.6, 1.6, 200)
    X, Y = np.meshgrid(x, y)
    ax.contour(X, Y, 0.5 * (X ** 2 + kappa * Y ** 2), levels=np.geomspace(0.05, 80, 14),
               colors="0.7", linewidths=0.7)
    ax.plot(0, 0, "k*", ms=11)
    ax.set_xlabel(r"$\theta_1$ (flat direction, curvature $\mu = 1$)")
    ax.set_ylabel(rf"$\theta_2$ (steep, $L = {kappa:g}$)")


def ravine(out: Path) -> Path:
    """GD in a ravine: zig-zag across, crawl along; the number of steps grows like kappa."""
    k = RAVINE_KAPPA
    fig, axes = plt.subplots(1, 3, figsize=(15, 4.2), gridspec_kw={"width_ratios": [1.5, 1, 1]})
    _ravine_axes(axes[0])
    runs = ((0.5 / k, r"$\eta = 0.5/L$", "tab:green"),
            (2 / (k + 1), r"$\eta = 2/(L+\mu)$ (best fixed $\eta$)", "tab:orange"))
    for eta, label, color in runs:
        path = _ravine_path(k, eta, 40)
        axes[0].plot(*path.T, ".-", color=color, lw=1, ms=4, label=label)
        long = _ravine_path(k, eta, 400)
        axes[1].semilogy(np.abs(long[:, 0]), color=color, ls="-")
        axes[1].semilogy(np.abs(long[:, 1]) + 1e-300, color=color, ls=":")
    axes[0].set_xlim(-10, 1.5)
    axes[0].set_ylim(-1.6, 1.6)
    axes[0].legend(fontsize=8, loc="lower right")
    axes[0].set_title(f"40 steps of gradient descent, $\\kappa = {k:g}$", fontsize=10)
    axes[1].set_ylim(1e-8, 1e3)
    axes[1].set_xlabel("step $t$")
    axes[1].set_title(r"$|\theta_1|$ (solid: flat) and $|\theta_2|$ (dotted: steep)",
                      fontsize=10)
    axes[1].grid(alpha=0.3, which="both")
    kappas = np.array([10, 30, 100, 300, 1000])
    steps = [_steps_to(kk, 2 / (kk + 1)) for kk in kappas]
    axes[2].loglog(kappas, steps, "o-", color="tab:orange", label="measured, $\\eta = 2/(L+\\mu)$")
    axes[2].loglog(kappas, kappas / 2 * np.log(1e3), "k--", lw=1,
                   label=r"$\frac{\kappa}{2}\ln 10^3$")
    axes[2].set_xlabel(r"condition number $\kappa = L/\mu$")
    axes[2].set_ylabel("steps to shrink the distance $10^3$ times")
    axes[2].legend(fontsize=8)
    axes[2].grid(alpha=0.3, which="both")
    axes[2].set_title("the cost of a ravine grows like $\\kappa$", fontsize=10)
    fig.tight_layout()
    return _save(fig, out, "ravine")


# --------------------------------------------------------------------------- A.3 mini-batches


def regression_problem() -> tuple[np.ndarray, np.ndarray]:
    """N = 1000 examples, two correlated features, y = 2 x_1 - x_2 + noise (Part A, A.3)."""
    rng = np.random.default_rng(0)
    x = rng.standard_normal((1000, 2)) @ np.linalg.cholesky([[1.0, 0.6], [0.6, 1.0]]).T
    y = x @ np.array([2.0, -1.0]) + 0.5 * rng.standard_normal(1000)
    return x, y


def minibatch(out: Path) -> Path:
    """Paths of full-batch, mini-batch and single-example SGD; gradient variance against B."""
    x, y = regression_problem()
    n = len(y)
    w_star = np.linalg.lstsq(x, y, rcond=None)[0]
    start = np.array([-1.0, 2.0])
    fig, axes = plt.subplots(1, 2, figsize=(12, 4.6))
    g1, g2 = np.linspace(-1.6, 3.2, 200), np.linspace(-2.2, 2.6, 200)
    G1, G2 = np.meshgrid(g1, g2)
    W = np.stack([G1.ravel(), G2.ravel()], axis=1)
    loss = 0.5 * np.mean((W @ x.T - y) ** 2, axis=1).reshape(G1.shape)
    axes[0].contour(G1, G2, loss, levels=np.geomspace(0.13, 8, 14), colors="0.7",
                    linewidths=0.7)
    rng = np.random.default_rng(1)
    for batch, color in ((n, "k"), (32, "tab:blue"), (1, "tab:red")):
        w, path = start.copy(), [start.copy()]
        for _ in range(150):
            idx = rng.integers(0, n, batch) if batch < n else np.arange(n)
            w = w - 0.05 * x[idx].T @ (x[idx] @ w - y[idx]) / batch
            path.append(w.copy())
        label = "full batch (GD)" if batch == n else f"$B = {batch}$"
        axes[0].plot(*np.array(path).T, "-", color=color, lw=1, label=label, alpha=0.85)
    axes[0].plot(*w_star, "k*", ms=12)
    axes[0].set_aspect("equal")
    axes[0].set_xlabel("$w_1$")
    axes[0].set_ylabel("$w_2$")
    axes[0].set_title(r"150 steps, $\eta = 0.05$, same start", fontsize=10)
    axes[0].legend(fontsize=8, loc="lower left")

    per_example = x * (x @ start - y)[:, None]  # gradient of each example's loss, (N, 2)
    full = per_example.mean(axis=0)
    trace_sigma = np.sum(np.var(per_example, axis=0))
    sizes = np.array([1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 800, 950])
    measured = {True: [], False: []}
    for b in sizes:
        with_rep = per_example[rng.integers(0, n, (2000, b))].mean(axis=1)
        without = per_example[np.argsort(rng.random((2000, n)), axis=1)[:, :b]].mean(axis=1)
        measured[True].append(np.mean(np.sum((with_rep - full) ** 2, axis=1)))
        measured[False].append(np.mean(np.sum((without - full) ** 2, axis=1)))
    bb = np.linspace(1, n - 1, 500)
    axes[1].loglog(bb, trace_sigma / bb, "k-", lw=1, label=r"$\mathrm{tr}\,\Sigma / B$")
    axes[1].loglog(bb, trace_sigma / bb * (n - bb) / (n - 1), "k--", lw=1,
                   label=r"$\frac{\mathrm{tr}\,\Sigma}{B}\,\frac{N - B}{N - 1}$")
    axes[1].loglog(sizes, measured[True], "o", color="tab:blue", label="measured, with replacement")
    axes[1].loglog(sizes, measured[False], "s", color="tab:red", mfc="none",
                   label="measured, without replacement")
    axes[1].set_xlabel("batch size $B$ ($N = 1000$)")
    axes[1].set_ylabel(r"$\mathbb{E}\,\|\mathbf{g}_B - \nabla J\|^2$")
    axes[1].set_title("variance of the mini-batch gradient (2000 batches each)", fontsize=10)
    axes[1].grid(alpha=0.3, which="both")
    axes[1].legend(fontsize=8)
    fig.tight_layout()
    return _save(fig, out, "minibatch")


# --------------------------------------------------------------------------- A.4 momentum


def momentum(out: Path) -> Path:
    """Heavy ball vs plain GD in the ravine, Nesterov's look-ahead, steps against kappa."""
    k = RAVINE_KAPPA
    fig, axes = plt.subplots(1, 3, figsize=(15.5, 4.3), gridspec_kw={"width_ratios": [1.5, 1, 1]})
    _ravine_axes(axes[0])
    for beta, nesterov, label, color in ((0.0, False, r"$\beta = 0$ (GD)", "tab:green"),
                                         (0.9, False, r"heavy ball, $\beta = 0.9$", "tab:blue"),
                                         (0.9, True, r"Nesterov, $\beta = 0.9$", "tab:purple")):
        path = _ravine_path(k, 0.5 / k, 60, beta, nesterov)
        axes[0].plot(*path.T, ".-", color=color, lw=1, ms=3.5, label=label)
    axes[0].set_xlim(-10, 1.5)
    axes[0].set_ylim(-1.6, 1.6)
    axes[0].legend(fontsize=8, loc="lower right")
    axes[0].set_title(r"60 steps, $\eta = 0.5/L$ for all three", fontsize=10)

    # Nesterov's look-ahead, drawn on a rounder bowl so that the arrows are readable
    ax = axes[1]
    h = np.array([1.0, 4.0])
    gx, gy = np.meshgrid(np.linspace(-3.2, 1.2, 200), np.linspace(-1.6, 1.9, 200))
    ax.contour(gx, gy, 0.5 * (gx ** 2 + 4 * gy ** 2), levels=12, colors="0.8", linewidths=0.7)
    theta, v, beta, eta = np.array([-2.6, 0.1]), np.array([0.9, 1.0]), 0.9, 0.18
    ahead = theta + beta * v
    arrow = {"head_width": 0.07, "length_includes_head": True}
    ax.arrow(*theta, *(beta * v), color="tab:blue", **arrow)
    ax.arrow(*theta, *(-eta * h * theta), color="tab:green", ls=":", **arrow)
    ax.arrow(*ahead, *(-eta * h * theta), color="tab:green", **arrow)
    ax.arrow(*ahead, *(-eta * h * ahead), color="tab:purple", **arrow)
    hb = theta + beta * v - eta * h * theta
    nag = ahead - eta * h * ahead
    ax.plot(*theta, "ko", ms=5)
    ax.plot(*ahead, "o", color="tab:blue", ms=5, mfc="white")
    ax.plot(*hb, "s", color="tab:green", ms=6)
    ax.plot(*nag, "D", color="tab:purple", ms=6)
    ax.annotate(r"$\boldsymbol{\theta}_t$", theta, xytext=(-18, -12), textcoords="offset points")
    ax.annotate(r"look-ahead $\boldsymbol{\theta}_t + \beta\mathbf{v}_t$", ahead,
                xytext=(-30, 8), textcoords="offset points", color="tab:blue", fontsize=9)
    ax.annotate("heavy ball: gradient\nat $\\boldsymbol{\\theta}_t$", hb, xytext=(6, -22),
                textcoords="offset points", color="tab:green", fontsize=8)
    ax.annotate("Nesterov: gradient\nat the look-ahead", nag, xytext=(-6, -32),
                textcoords="offset points", color="tab:purple", fontsize=8)
    ax.plot(0, 0, "k*", ms=10)
    ax.set_aspect("equal")
    ax.set_xlim(-3.2, 1.2)
    ax.set_ylim(-1.6, 1.9)
    ax.set_title("one step: momentum arrow (blue), then a gradient step", fontsize=10)
    ax.set_xticks([])
    ax.set_yticks([])

    kappas = np.array([10, 30, 100, 300, 1000])
    gd = [_steps_to(kk, 2 / (kk + 1)) for kk in kappas]
    hb_steps = [_steps_to(kk, 4 / (np.sqrt(kk) + 1) ** 2, ((np.sqrt(kk) - 1) / (np.sqrt(kk) + 1)) ** 2)
                for kk in kappas]
    axes[2].loglog(kappas, gd, "o-", color="tab:green", label="GD, best $\\eta$")
    axes[2].loglog(kappas, hb_steps, "s-", color="tab:blue", label="heavy ball, best $\\eta, \\beta$")
    axes[2].loglog(kappas, np.sqrt(kappas) / 2 * np.log(1e3), "k--", lw=1,
                   label=r"$\frac{\sqrt{\kappa}}{2}\ln 10^3$")
    axes[2].set_xlabel(r"$\kappa$")
    axes[2].set_ylabel("steps to shrink the distance $10^3$ times")
    axes[2].grid(alpha=0.3, which="both")
    axes[2].legend(fontsize=8)
    axes[2].set_title(r"momentum: $\sqrt{\kappa}$ instead of $\kappa$", fontsize=10)
    fig.tight_layout()
    return _save(fig, out, "momentum")


# --------------------------------------------------------------------------- A.5 adaptive


def _adaptive_path(kind: str, h: np.ndarray, start: np.ndarray, eta: float,
                   steps: int) -> np.ndarray:
    """Paths of GD, RMSprop and Adam (Keras' update rules) on f = theta^T H theta / 2."""
    theta = start.astype(float).copy()
    m, v = np.zeros(2), np.zeros(2)
    path = [theta.copy()]
    for t in range(1, steps + 1):
        g = h @ theta
        if kind == "gd":
            theta = theta - eta * g
        elif kind == "rmsprop":
            v = 0.9 * v + 0.1 * g ** 2
            theta = theta - eta * g / np.sqrt(v + 1e-7)
        else:
            m = 0.9 * m + 0.1 * g
            v = 0.999 * v + 0.001 * g ** 2
            theta = theta - eta * np.sqrt(1 - 0.999 ** t) / (1 - 0.9 ** t) * m / (np.sqrt(v) + 1e-7)
        path.append(theta.copy())
    return np.array(path)


def adaptive(out: Path) -> Path:
    """The same ravine with its axes on the coordinate axes, and rotated by 45 degrees."""
    k, steps = 100.0, 80
    c = s = np.sqrt(0.5)
    rotation = np.array([[c, -s], [s, c]])
    start = np.array([-4.0, 0.6])
    runs = (("gd", 1 / k, "tab:green", r"GD, $\eta = 1/L$"),
            ("rmsprop", 0.05, "tab:orange", r"RMSprop, $\eta = 0.05$"),
            ("adam", 0.1, "tab:red", r"Adam, $\eta = 0.1$"))
    fig, axes = plt.subplots(1, 3, figsize=(16, 4.9), gridspec_kw={"width_ratios": [1, 1, 1.1]})
    for ax, (title, r, ls) in zip(axes[:2], (("axis-aligned ravine", np.eye(2), "-"),
                                             ("the same ravine rotated by 45°", rotation, "--")),
                                  strict=True):
        h = r @ np.diag([1.0, k]) @ r.T
        grid = np.linspace(-4.6, 4.6, 241)
        X, Y = np.meshgrid(grid, grid)
        P = np.stack([X, Y], axis=-1)
        F = 0.5 * np.einsum("...i,ij,...j->...", P, h, P)
        ax.contour(X, Y, F, levels=np.geomspace(0.02, 300, 16), colors="0.75", linewidths=0.7)
        for kind, eta, color, label in runs:
            path = _adaptive_path(kind, h, r @ start, eta, steps)
            ax.plot(*path.T, ".-", color=color, lw=1, ms=3, label=label)
            values = 0.5 * np.einsum("ti,ij,tj->t", path, h, path)
            axes[2].semilogy(values / values[0], ls, color=color,
                             label=f"{label}, {'aligned' if ls == '-' else 'rotated'}")
        ax.plot(0, 0, "k*", ms=11)
        ax.set_aspect("equal")
        ax.set_xlim(-4.6, 4.6)
        ax.set_ylim(-4.6, 4.6)
        ax.set_xlabel(r"$\theta_1$")
        ax.set_ylabel(r"$\theta_2$")
        ax.set_title(f"{title}, $\\kappa = {k:g}$, {steps} steps", fontsize=10)
        ax.legend(fontsize=8, loc="upper right")
    axes[2].set_xlabel("step $t$")
    axes[2].set_ylabel(r"$f(\boldsymbol{\theta}_t) / f(\boldsymbol{\theta}_0)$")
    axes[2].set_ylim(1e-7, 3)
    axes[2].grid(alpha=0.3, which="both")
    axes[2].legend(fontsize=7, loc="lower left", ncol=2)
    axes[2].set_title("solid: aligned, dashed: rotated (GD's two lines coincide)", fontsize=10)
    fig.tight_layout()
    return _save(fig, out, "adaptive")


# --------------------------------------------------------------------------- A.6 schedules


def schedule_examples(total: int = 1000, peak: float = 1e-3) -> dict[str, schedules.Schedule]:
    """The five schedules of the figure (Part A, A.6), all from neuropathology.scratch."""
    return {
        "step: $\\times 0.3$ every 250 steps": schedules.StepDecay(peak, 250, 0.3),
        "exponential: $\\times 0.01$ over 1000 steps": schedules.ExponentialDecay(peak, total, 0.01),
        "cosine to $\\eta_0/100$": schedules.CosineDecay(peak, total, alpha=0.01),
        "linear warm-up (50 steps) + cosine": schedules.CosineDecay(
            0.0, total - 50, alpha=0.01, warmup_target=peak, warmup_steps=50),
        "warm restarts (SGDR), $T_0 = 100$, $T_{i+1} = 2T_i$": schedules.CosineDecayRestarts(
            peak, 100, t_mul=2.0, m_mul=0.8, alpha=0.01),
    }


def schedules_figure(out: Path) -> Path:
    """Step, exponential, cosine, warm-up + cosine, and warm restarts, on linear and log axes."""
    steps = np.arange(1000)
    fig, axes = plt.subplots(1, 2, figsize=(13, 4.2))
    for name, sched in schedule_examples().items():
        eta = [sched(int(t)) for t in steps]
        for ax in axes:
            ax.plot(steps, eta, lw=1.6, label=name)
    axes[1].set_yscale("log")
    axes[1].set_ylim(5e-6, 2e-3)
    for ax, title in zip(axes, ("linear scale", "log scale"), strict=True):
        ax.set_xlabel("optimiser step $t$")
        ax.set_ylabel(r"$\eta_t$")
        ax.set_title(title, fontsize=10)
        ax.grid(alpha=0.3, which="both")
    axes[0].legend(fontsize=8)
    fig.tight_layout()
    return _save(fig, out, "schedules")


# --------------------------------------------------------------------------- A.7 sharp, flat


def two_minima(t: np.ndarray) -> np.ndarray:
    """A sharp minimum at -2 (curvature 50) and a flat one at +2 (curvature 2), both at 0."""
    return -logsumexp(np.stack([-25 * (t + 2) ** 2, -(t - 2) ** 2]), axis=0)


def two_minima_grad(t: float) -> float:
    a, b = -25 * (t + 2) ** 2, -(t - 2) ** 2
    w = expit(a - b)  # weight of the sharp well
    return w * 50 * (t + 2) + (1 - w) * 2 * (t - 2)


def sharp_flat(out: Path) -> Path:
    """A shifted test loss costs more at the sharp minimum; a large step cannot stay in it."""
    t = np.linspace(-3.2, 3.6, 800)
    shift = 0.3
    fig, axes = plt.subplots(1, 2, figsize=(12, 4.2))
    ax = axes[0]
    ax.plot(t, two_minima(t), color="k", label="training loss")
    ax.plot(t, two_minima(t - shift), "--", color="tab:red", label=f"test loss (shifted by {shift})")
    for centre, name, dx in ((-2.0, "sharp", 0.75), (2.0, "flat", -1.0)):
        gap = float(two_minima(np.array([centre - shift]))[0])
        ax.plot(centre, gap, "o", color="tab:red", ms=5)
        ax.annotate(f"{name} minimum:\ntest loss {gap:.2f} at $\\theta = {centre:g}$", (centre, gap),
                    xytext=(centre + dx, 2.6), fontsize=9,
                    arrowprops={"arrowstyle": "->", "color": "tab:red"})
    ax.set_ylim(-0.1, 3.3)
    ax.set_xlabel(r"$\theta$")
    ax.set_title("sharp and flat minima of the same depth", fontsize=10)
    ax.legend(fontsize=8, loc="center left")
    ax = axes[1]
    for eta, color in ((0.01, "tab:blue"), (0.1, "tab:orange")):
        theta, path = -1.9, [-1.9]
        for _ in range(60):
            theta = theta - eta * two_minima_grad(theta)
            path.append(theta)
        ax.plot(path, ".-", color=color, ms=4, label=f"$\\eta = {eta}$")
    ax.axhline(-2, color="0.5", lw=0.8, ls=":")
    ax.axhline(2, color="0.5", lw=0.8, ls=":")
    ax.set_xlabel("step $t$")
    ax.set_ylabel(r"$\theta_t$")
    ax.set_title(r"GD from $\theta_0 = -1.9$: stable only if $\eta < 2/\lambda$ "
                 r"($2/50 = 0.04$)", fontsize=10)
    ax.legend(fontsize=8)
    fig.tight_layout()
    return _save(fig, out, "sharp_flat")


# --------------------------------------------------------------------------- A.8 clipping


CLIFF_HEIGHT, CLIFF_STEEPNESS = 3.0, 30.0


def cliff_loss(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """A valley that slopes down to the right into a steep wall at x = 2 (Part A, A.8)."""
    return 0.5 * y ** 2 + 0.1 * (x - 4) ** 2 + CLIFF_HEIGHT * expit(CLIFF_STEEPNESS * (x - 2))


def cliff_grad(p: np.ndarray) -> np.ndarray:
    s = expit(CLIFF_STEEPNESS * (p[0] - 2))
    return np.array([0.2 * (p[0] - 4) + CLIFF_HEIGHT * CLIFF_STEEPNESS * s * (1 - s), p[1]])


def cliff_path(clip: float | None, steps: int = 30, eta: float = 0.7) -> np.ndarray:
    p, path = np.array([-3.0, 2.0]), []
    path.append(p.copy())
    for _ in range(steps):
        g = cliff_grad(p)
        if clip is not None:
            g = g * clip / max(np.linalg.norm(g), clip)
        p = p - eta * g
        path.append(p.copy())
    return np.array(path)


def clipping(out: Path) -> Path:
    """Gradient descent meets a cliff, with and without clipping; what each clipping does."""
    fig, axes = plt.subplots(1, 3, figsize=(16, 4.4), gridspec_kw={"width_ratios": [1.5, 1, 1]})
    ax = axes[0]
    X, Y = np.meshgrid(np.linspace(-6.5, 3, 400), np.linspace(-2.5, 2.5, 200))
    shown = ax.contourf(X, Y, cliff_loss(X, Y), levels=30, cmap="Greys_r")
    fig.colorbar(shown, ax=ax, label="loss")
    for clip, color, label in ((None, "tab:red", "no clipping"),
                               (1.0, "tab:cyan", "clip the norm at $c = 1$")):
        path = cliff_path(clip)
        ax.plot(*path.T, "o-", color=color, ms=3, lw=1, label=label)
        axes[1].plot(path[:, 0], "o-", color=color, ms=3, lw=1, label=label)
    axes[1].axhline(2, color="tab:orange", lw=1, ls=":")
    axes[1].axhline(-3, color="0.5", lw=0.8, ls="--")
    axes[1].text(0.5, -2.8, "start", color="0.4", fontsize=8)
    axes[1].set_xlabel("step $t$")
    axes[1].set_ylabel(r"$\theta_1$ (position along the valley)")
    axes[1].set_title("one step onto the wall undoes many steps", fontsize=10)
    axes[1].legend(fontsize=8, loc="lower right")
    ax.axvline(2, color="tab:orange", lw=1, ls=":")
    ax.text(2.08, -2.3, "wall", color="tab:orange", fontsize=9)
    ax.set_xlabel(r"$\theta_1$")
    ax.set_ylabel(r"$\theta_2$")
    ax.set_title(r"30 steps from $(-3, 2)$, $\eta = 0.7$", fontsize=10)
    ax.legend(fontsize=8, loc="upper left")

    ax = axes[2]
    g = np.array([3.0, 1.0])
    by_value = np.clip(g, -1, 1)
    by_norm = g / np.linalg.norm(g)
    arrow = {"head_width": 0.08, "length_includes_head": True, "lw": 1.5}
    for vec, color, label in ((g, "k", r"gradient $\mathbf{g} = (3, 1)$"),
                              (by_value, "tab:orange", "clip each entry to $[-1, 1]$"),
                              (by_norm, "tab:cyan", r"clip the norm to 1")):
        ax.arrow(0, 0, *vec, color=color, **arrow)
        ax.plot([], [], color=color, label=label)
    ax.add_patch(plt.Circle((0, 0), 1, fill=False, ls="--", color="tab:cyan", lw=0.8))
    ax.add_patch(plt.Rectangle((-1, -1), 2, 2, fill=False, ls="--", color="tab:orange", lw=0.8))
    ax.set_aspect("equal")
    ax.set_xlim(-1.3, 3.3)
    ax.set_ylim(-1.3, 1.6)
    ax.legend(fontsize=8, loc="upper left")
    ax.set_title("by value turns the vector; by norm keeps its direction", fontsize=10)
    fig.tight_layout()
    return _save(fig, out, "clipping")


# --------------------------------------------------------------------------- A.9 saddles


def goe(rng: np.random.Generator, count: int, n: int) -> np.ndarray:
    """``count`` symmetric n x n matrices (G + G^T)/2, G with i.i.d. N(0, 1) entries."""
    g = rng.standard_normal((count, n, n))
    return (g + np.swapaxes(g, 1, 2)) / 2


def semicircle_cdf(x: np.ndarray, radius: float) -> np.ndarray:
    x = np.clip(x / radius, -1, 1)
    return 0.5 + (x * np.sqrt(1 - x ** 2) + np.arcsin(x)) / np.pi


def saddles(out: Path) -> Path:
    """Random symmetric matrices: semicircle, P(all eigenvalues > 0), index against a shift."""
    rng = np.random.default_rng(0)
    fig, axes = plt.subplots(1, 3, figsize=(15, 4.1))
    n = 400
    ev = np.linalg.eigvalsh(goe(rng, 1, n)[0]) / np.sqrt(n)
    radius = np.sqrt(2.0)
    axes[0].hist(ev, bins=40, density=True, color="tab:blue", alpha=0.6)
    xs = np.linspace(-radius, radius, 300)
    axes[0].plot(xs, 2 / (np.pi * radius ** 2) * np.sqrt(radius ** 2 - xs ** 2), "k-", lw=1.2,
                 label="semicircle law")
    axes[0].axvline(0, color="tab:red", lw=1)
    axes[0].set_title(f"eigenvalues of one random {n} x {n} symmetric matrix\n"
                      f"({np.mean(ev < 0):.0%} negative)", fontsize=10)
    axes[0].set_xlabel(r"eigenvalue / $\sqrt{n}$")
    axes[0].legend(fontsize=8)
    dims = np.arange(1, 6)
    probs = [np.mean(np.linalg.eigvalsh(goe(rng, 400_000, d))[:, 0] > 0) for d in dims]
    axes[1].semilogy(dims, probs, "o-", color="tab:blue", label="random symmetric matrix")
    axes[1].semilogy(dims, 0.5 ** dims, "k--", lw=1, label=r"independent coin flips, $2^{-n}$")
    axes[1].set_xlabel("dimension $n$")
    axes[1].set_ylabel("P(all eigenvalues > 0)")
    axes[1].set_title("a minimum needs every curvature positive", fontsize=10)
    axes[1].grid(alpha=0.3, which="both")
    axes[1].legend(fontsize=8)
    shifts = np.linspace(-1.8, 1.8, 19)
    base = np.linalg.eigvalsh(goe(rng, 20, 200)) / np.sqrt(200)
    index = [np.mean(base + s < 0) for s in shifts]
    grid = np.linspace(-1.8, 1.8, 200)
    axes[2].plot(grid, semicircle_cdf(-grid, radius), "k-", lw=1.2, label="semicircle prediction")
    axes[2].plot(shifts, index, "o", color="tab:blue", label="measured, n = 200")
    axes[2].set_xlabel(r"shift $s$ of the spectrum ($\mathbf{H} = \mathbf{A}/\sqrt{n} + s\mathbf{I}$)")
    axes[2].set_ylabel("fraction of negative eigenvalues (index / n)")
    axes[2].set_title("higher on the landscape, more ways down", fontsize=10)
    axes[2].legend(fontsize=8)
    axes[2].grid(alpha=0.3)
    fig.tight_layout()
    return _save(fig, out, "saddles")


# --------------------------------------------------------------------------- Part B


def smooth_strongly_convex(x: np.ndarray) -> np.ndarray:
    """f(x) = x^2/2 + log(1 + e^{-3x}): mu = 1, L = 1 + 9/4 (Part B, B.2)."""
    return 0.5 * x ** 2 + np.logaddexp(0, -3 * x)


def descent_lemma(out: Path) -> Path:
    """Quadratic upper (L) and lower (mu) bounds at a point; GD's gap against the bound."""
    mu, lip = 1.0, 3.25
    f = smooth_strongly_convex
    df = lambda x: x - 3 * expit(-3 * x)  # noqa: E731
    x0 = -1.5
    x = np.linspace(-2.8, 1.6, 400)
    fig, axes = plt.subplots(1, 2, figsize=(12, 4.2))
    ax = axes[0]
    ax.plot(x, f(x), "k", lw=1.8, label="$J$")
    ax.plot(x, f(x0) + df(x0) * (x - x0) + lip / 2 * (x - x0) ** 2, "--", color="tab:red",
            label=r"upper bound, curvature $L$")
    ax.plot(x, f(x0) + df(x0) * (x - x0) + mu / 2 * (x - x0) ** 2, "--", color="tab:blue",
            label=r"lower bound, curvature $\mu$")
    x1 = x0 - df(x0) / lip
    ax.plot([x0, x1], [f(x0), f(x0) - df(x0) ** 2 / (2 * lip)], "o", color="tab:red")
    ax.annotate(r"GD step $\eta = 1/L$: minimum of the upper bound",
                (x1, f(x0) - df(x0) ** 2 / (2 * lip)), xytext=(-1.2, 7.0),
                arrowprops={"arrowstyle": "->"}, fontsize=9)
    ax.set_ylim(-0.5, 12)
    ax.set_xlabel(r"$\theta$")
    ax.legend(fontsize=8, loc="upper right")
    ax.set_title(r"$J(\theta) = \theta^2/2 + \log(1 + e^{-3\theta})$: two quadratics "
                 r"sandwich $J$", fontsize=10)
    ax = axes[1]
    from scipy.optimize import brentq

    f_star = f(brentq(df, -1.0, 2.0, xtol=1e-15))
    theta, gaps = x0, []
    for _ in range(14):
        gaps.append(f(theta) - f_star)
        theta = theta - df(theta) / lip
    ax.semilogy(gaps, "o-", color="k", ms=3, label=r"$J(\theta_t) - J^\star$, $\eta = 1/L$")
    ax.semilogy(gaps[0] * (1 - mu / lip) ** np.arange(14), "--", color="tab:red",
                label=r"bound $(1 - \mu/L)^t\,(J(\theta_0) - J^\star)$")
    ax.set_xlabel("step $t$")
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=8)
    ax.set_title("the guarantee (dashed) is a worst case; here the curvature\n"
                 "near the minimum is 2.3, so GD contracts faster", fontsize=10)
    fig.tight_layout()
    return _save(fig, out, "descent_lemma")


FIGURES = (landscape, ravine, minibatch, momentum, adaptive, schedules_figure, sharp_flat,
           clipping, saddles, descent_lemma)


def main(argv: list[str] | None = None) -> None:
    run(FIGURES, __doc__, argv, blas_threads=1)


if __name__ == "__main__":
    main()
