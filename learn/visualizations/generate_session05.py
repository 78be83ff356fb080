"""Figures of Session 05 (regularisation) that the pages do not draw themselves.

Usage (from anywhere)::

    python learn/visualizations/generate_session05.py            # -> learn/visualizations/figures/
    python learn/visualizations/generate_session05.py --out DIR  # anywhere else (the tests do this)

Every figure is a pure function of fixed seeds, so reruns redraw the same pictures. The running
regression example of Part A is the curve-fitting problem of Bishop's textbook: fifteen noisy
samples of ``sin(2 pi x)`` at the fixed design points ``x_i = (i + 1/2) / 15``, noise standard
deviation 0.25, fitted with polynomials written in the Legendre basis (well conditioned). The MRI
panels use the project's synthetic generator (``neuropathology.data.synthetic``) and the
project's own augmentation functions (``neuropathology.data.data_loader``), so the pictures show
exactly what training applies.
"""

from __future__ import annotations

import math
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from figure_output import run, save_png  # noqa: E402 - sibling module
from matplotlib.patches import Circle, Polygon, Rectangle  # noqa: E402
from numpy.polynomial import Legendre, legendre  # noqa: E402
from scipy import stats  # noqa: E402

DPI = 90

N_TRAIN, SIGMA = 15, 0.25


#: For figures with noisy MRI panels: 48 greys and the matplotlib colours drawn on top of them.
MRI_PALETTE = ([(int(v), int(v), int(v)) for v in np.linspace(0, 255, 48).round()]
               + [tuple(int(255 * c) for c in matplotlib.colors.to_rgb(f"tab:{n}"))
                  for n in ("blue", "orange", "green", "red", "purple", "brown")])


def _save(fig: plt.Figure, out: Path, name: str, mri: bool = False) -> Path:
    return save_png(fig, out / f"session05_{name}.png", dpi=DPI,
                    palette=MRI_PALETTE if mri else None)


def truth(x: np.ndarray) -> np.ndarray:
    return np.sin(2 * np.pi * x)


def _data() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The running example: fixed design, one noise draw; 1000 fresh validation points."""
    rng = np.random.default_rng(0)
    x = (np.arange(N_TRAIN) + 0.5) / N_TRAIN
    y = truth(x) + SIGMA * rng.standard_normal(N_TRAIN)
    x_val = rng.uniform(0, 1, 1000)
    y_val = truth(x_val) + SIGMA * rng.standard_normal(1000)
    return x, y, x_val, y_val


def _rmse(pred: np.ndarray, target: np.ndarray) -> float:
    return float(np.sqrt(np.mean((pred - target) ** 2)))


def _slice(label: str = "glioma", seed: int = 4, size: int = 128) -> tuple[np.ndarray, np.ndarray]:
    """A synthetic slice as float32 (size, size) in [0, 255] and its tumour mask."""
    from neuropathology.data.synthetic import generate_slice

    image, mask = generate_slice(label, size=size, seed=seed, difficulty=0.2)
    return image.astype(np.float32), mask


def _batch(image: np.ndarray, copies: int = 1) -> np.ndarray:
    """(H, W) -> (copies, H, W, 3): the three identical channels the model reads."""
    return np.repeat(np.repeat(image[None, :, :, None], 3, axis=3), copies, axis=0)


def _show(ax: plt.Axes, image: np.ndarray, title: str, color: str = "black") -> None:
    ax.imshow(np.asarray(image)[..., 0] if np.asarray(image).ndim == 3 else image,
              cmap="gray", vmin=0, vmax=255)
    ax.set_title(title, fontsize=9, color=color)
    ax.axis("off")


# --------------------------------------------------------------------------- A.1 - A.3


def polynomial_fits(out: Path) -> Path:
    """Degrees 1, 3 and 14 fitted to the 15 points; training and validation RMSE vs degree."""
    x, y, x_val, y_val = _data()
    grid = np.linspace(0, 1, 400)
    fig, axes = plt.subplots(1, 4, figsize=(15, 3.5))
    for ax, degree in zip(axes[:3], (1, 3, 14), strict=True):
        fit = Legendre.fit(x, y, degree, domain=[0, 1])
        ax.plot(grid, truth(grid), color="tab:green", lw=1.5, label=r"truth $\sin 2\pi x$")
        ax.plot(grid, fit(grid), color="tab:red", lw=1.5, label=f"degree {degree}")
        ax.scatter(x, y, color="k", s=18, zorder=3, label="15 training points")
        ax.set_ylim(-1.8, 1.8)
        ax.set_title(f"degree {degree}: train RMSE {_rmse(fit(x), y):.2f}, "
                     f"validation {_rmse(fit(x_val), y_val):.2f}", fontsize=9)
        ax.legend(fontsize=7, loc="lower left")
    degrees = np.arange(15)
    train = [_rmse(Legendre.fit(x, y, d, domain=[0, 1])(x), y) for d in degrees]
    val = [_rmse(Legendre.fit(x, y, d, domain=[0, 1])(x_val), y_val) for d in degrees]
    axes[3].semilogy(degrees, np.maximum(train, 1e-3), "o-", label="training")
    axes[3].semilogy(degrees, val, "s-", label="validation")
    axes[3].axhline(SIGMA, color="0.5", ls=":", label=r"noise level $\sigma$")
    axes[3].set(xlabel="polynomial degree (capacity)", ylabel="RMSE (log scale)")
    axes[3].set_title("error against capacity\n(training RMSE 0 at degree 14, drawn at 0.001)",
                      fontsize=9)
    axes[3].legend(fontsize=7)
    fig.tight_layout()
    return _save(fig, out, "polynomial_fits")


def _gd_path(x: np.ndarray, y: np.ndarray, degree: int = 14):
    """Closed form of full-batch gradient descent from w = 0 on the least-squares loss
    (1/2N) ||y - Phi w||^2 with Legendre features: w_t = U diag(1 - (1 - eta h)^t) U^T w_LS."""
    phi = legendre.legvander(2 * x - 1, degree)
    h, u = np.linalg.eigh(phi.T @ phi / len(x))
    coef = u.T @ (phi.T @ y / len(x)) / h
    eta = 1.0 / h.max()

    def weights(t: float) -> np.ndarray:
        return u @ ((1.0 - np.power(1.0 - eta * h, t)) * coef)

    return phi, weights


def learning_curves(out: Path) -> Path:
    """(a) Training and validation error along gradient descent (degree 14);
    (b) error against the training-set size for degrees 3 and 9."""
    x, y, x_val, y_val = _data()
    phi, weights = _gd_path(x, y)
    phi_val = legendre.legvander(2 * x_val - 1, 14)
    steps = np.unique(np.round(np.geomspace(1, 1e8, 300)))
    train = np.array([_rmse(phi @ weights(t), y) for t in steps])
    val = np.array([_rmse(phi_val @ weights(t), y_val) for t in steps])
    best = int(np.argmin(val))
    fig, axes = plt.subplots(1, 2, figsize=(12, 3.9))
    ax = axes[0]
    ax.loglog(steps, np.maximum(train, 1e-3), label="training")
    ax.loglog(steps, val, label="validation")
    ax.axvline(steps[best], color="0.4", ls="--")
    ax.fill_between(steps, np.maximum(train, 1e-3), val, where=steps >= steps[best],
                    color="tab:orange", alpha=0.15, label="generalisation gap after the best step")
    ax.axhline(SIGMA, color="0.5", ls=":", label=r"$\sigma$")
    ax.text(steps[best] * 1.3, 2.0, f"early-stopping point\nt = {int(steps[best])}, "
            f"validation {val[best]:.3f}", fontsize=8)
    ax.set(xlabel="gradient-descent steps t (full batch, log scale)", ylabel="RMSE",
           title="degree-14 polynomial trained by gradient descent from w = 0")
    ax.title.set_fontsize(9)
    ax.legend(fontsize=7, loc="lower left")

    ax = axes[1]
    rng = np.random.default_rng(1)
    sizes = np.array([12, 15, 20, 30, 50, 100, 200, 500, 1000])
    grid = np.linspace(0, 1, 401)
    for degree, color in ((1, "tab:purple"), (9, "tab:blue")):
        tr, te = [], []
        for n in sizes:
            a, b = [], []
            for _ in range(200):
                xs = (np.arange(n) + rng.uniform(size=n)) / n  # one point per cell of width 1/n
                ys = truth(xs) + SIGMA * rng.standard_normal(n)
                fit = Legendre.fit(xs, ys, degree, domain=[0, 1])
                a.append(np.mean((fit(xs) - ys) ** 2))
                b.append(np.mean((fit(grid) - truth(grid)) ** 2) + SIGMA ** 2)
            tr.append(np.sqrt(np.mean(a)))
            te.append(np.sqrt(np.mean(b)))
        ax.semilogx(sizes, tr, "o-", color=color, label=f"degree {degree}: training")
        ax.semilogx(sizes, te, "s--", color=color, label=f"degree {degree}: test")
    ax.axhline(SIGMA, color="0.5", ls=":", label=r"$\sigma$ (no model does better)")
    ax.set(xlabel="training-set size N (log scale)", ylabel="RMSE (mean over 200 sets)",
           ylim=(0, 0.8), title="learning curves against the amount of data:\n"
           "degree 1 underfits (both high, small gap), degree 9 overfits small sets")
    ax.title.set_fontsize(9)
    ax.legend(fontsize=7)
    fig.tight_layout()
    return _save(fig, out, "learning_curves")


def _bias_variance(degrees: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Exact squared bias and variance, averaged over [0, 1], of least-squares polynomials on
    the fixed design: the prediction is s(x0)^T y, so its mean is s(x0)^T f(x) and its
    variance sigma^2 ||s(x0)||^2."""
    x = (np.arange(N_TRAIN) + 0.5) / N_TRAIN
    grid = np.linspace(0, 1, 401)
    bias2, var = [], []
    for d in degrees:
        design = legendre.legvander(2 * x - 1, d)
        smoother = legendre.legvander(2 * grid - 1, d) @ np.linalg.pinv(design)  # rows s(x0)^T
        bias2.append(np.mean((smoother @ truth(x) - truth(grid)) ** 2))
        var.append(SIGMA ** 2 * np.mean(np.sum(smoother ** 2, axis=1)))
    return np.array(bias2), np.array(var)


def double_descent_risk(p: int, n: int = 40, d: int = 400, sigma: float = 0.5) -> float:
    """Expected test error of minimum-norm least squares on the first p of d isotropic
    Gaussian features, with equal signal in every feature (Belkin, Hsu and Xu, 2019)."""
    kept, left = p / d, 1 - p / d  # ||beta_T||^2, ||beta_rest||^2 with ||beta|| = 1
    if p <= n - 2:
        return (left + sigma ** 2) * (1 + p / (n - p - 1))
    if p >= n + 2:
        return kept * (1 - n / p) + (left + sigma ** 2) * (1 + n / (p - n - 1))
    return math.inf


def bias_variance(out: Path) -> Path:
    """(a) The classical U: squared bias, variance, noise; (b) double descent."""
    degrees = np.arange(13)
    bias2, var = _bias_variance(degrees)
    fig, axes = plt.subplots(1, 2, figsize=(12, 3.9))
    ax = axes[0]
    ax.semilogy(degrees, bias2, "o-", label=r"bias$^2$ (below $10^{-3}$ from degree 5)")
    ax.semilogy(degrees, var, "s-", label="variance")
    ax.axhline(SIGMA ** 2, color="0.5", ls=":", label=r"noise $\sigma^2$")
    ax.semilogy(degrees, bias2 + var + SIGMA ** 2, "k^-", label="expected test error")
    best = int(np.argmin(bias2 + var))
    ax.axvline(best, color="0.4", ls="--")
    ax.set(xlabel="polynomial degree", ylabel="mean squared error (log)", ylim=(1e-3, 30),
           title=f"bias-variance trade-off (15 fixed points); best degree {best}")
    ax.title.set_fontsize(9)
    ax.legend(fontsize=7)

    ax = axes[1]
    n, d, sigma = 40, 400, 0.5
    for k, ps in enumerate((np.arange(1, n - 1), np.arange(n + 2, d + 1))):
        ax.semilogy(ps, [double_descent_risk(p) for p in ps], color="tab:red",
                    label="minimum-norm least squares (exact)" if k == 0 else None)
    rng = np.random.default_rng(2)
    ridge_ps = np.unique(np.round(np.geomspace(1, d, 30)).astype(int))
    ridge = []
    for p in ridge_ps:
        acc = 0.0
        for _ in range(200):
            xp = rng.standard_normal((n, p))
            beta_p = np.full(p, 1 / np.sqrt(d))
            y = xp @ beta_p + np.sqrt(1 - p / d + sigma ** 2) * rng.standard_normal(n)
            w = xp.T @ np.linalg.solve(xp @ xp.T + n * 0.5 * np.eye(n), y)  # ridge, lambda 0.5
            acc += np.sum((w - beta_p) ** 2) + 1 - p / d + sigma ** 2
        ridge.append(acc / 200)
    ax.semilogy(ridge_ps, ridge, "o-", color="tab:blue", ms=3,
                label=r"ridge, $\lambda = 0.5$ (200 simulations each)")
    ax.axvline(n, color="0.4", ls="--")
    ax.axhline(1 + sigma ** 2, color="0.5", ls=":", label=r"predicting 0: $\|\beta\|^2 + \sigma^2$")
    ax.text(n * 1.6, 20, "p = N = 40:\ninterpolation threshold", fontsize=8)
    ax.set(xlabel="number of features p used by the model (N = 40 examples)",
           ylabel="expected test error (log)", ylim=(0.9, 100),
           title="double descent (400 equally weak features, noise 0.5)")
    ax.title.set_fontsize(9)
    ax.legend(fontsize=7, loc="upper right")
    fig.tight_layout()
    return _save(fig, out, "bias_variance")


# --------------------------------------------------------------------------- A.4 L1 / L2


def _quadratic_contours(ax: plt.Axes, center: np.ndarray, hessian: np.ndarray) -> None:
    g = np.linspace(-1.6, 2.6, 300)
    w1, w2 = np.meshgrid(g, g)
    d = np.stack([w1 - center[0], w2 - center[1]], axis=-1)
    q = 0.5 * np.einsum("...i,ij,...j->...", d, hessian, d)
    ax.contour(w1, w2, q, levels=[0.02, 0.1, 0.25, 0.5, 0.9, 1.5, 2.3], colors="tab:blue",
               linewidths=0.8)
    ax.plot(*center, "b*", ms=10)
    ax.annotate(r"$\hat{\mathbf{w}}$ (unregularised)", center, xytext=(5, 5),
                textcoords="offset points", fontsize=8, color="tab:blue")


def constrained_minimum(center: np.ndarray, hessian: np.ndarray, norm: str,
                        radius: float = 1.0) -> np.ndarray:
    """Minimise (1/2)(w - c)^T H (w - c) over the l1 or l2 ball, by brute force on the sphere
    (the constraint is active whenever the centre lies outside the ball)."""
    angles = np.linspace(0, 2 * np.pi, 200_001)
    if norm == "l2":
        pts = radius * np.stack([np.cos(angles), np.sin(angles)], axis=1)
    else:
        c, s = np.cos(angles), np.sin(angles)
        pts = radius * np.stack([c, s], axis=1) / (np.abs(c) + np.abs(s))[:, None]
    d = pts - center
    return pts[np.argmin(0.5 * np.einsum("ni,ij,nj->n", d, hessian, d))]


def l1_l2_geometry(out: Path) -> Path:
    """Constraint balls touching the loss contours; the shrinkage maps of ridge and lasso."""
    center = np.array([1.6, 0.7])
    rot = np.array([[np.cos(0.5), -np.sin(0.5)], [np.sin(0.5), np.cos(0.5)]])
    hessian = rot @ np.diag([1.0, 0.3]) @ rot.T
    fig, axes = plt.subplots(1, 3, figsize=(14, 4.4))
    for ax, norm in zip(axes[:2], ("l2", "l1"), strict=True):
        _quadratic_contours(ax, center, hessian)
        if norm == "l2":
            ax.add_patch(Circle((0, 0), 1, fc="tab:orange", alpha=0.3, ec="tab:orange"))
            title = r"L2: $\|\mathbf{w}\|_2 \leq 1$ (a disc)"
        else:
            ax.add_patch(Polygon([(1, 0), (0, 1), (-1, 0), (0, -1)], closed=True,
                                 fc="tab:orange", alpha=0.3, ec="tab:orange"))
            title = r"L1: $\|\mathbf{w}\|_1 \leq 1$ (a diamond)"
        w = constrained_minimum(center, hessian, norm)
        g = np.linspace(-1.6, 2.6, 300)
        w1, w2 = np.meshgrid(g, g)
        dd = np.stack([w1 - center[0], w2 - center[1]], axis=-1)
        level = 0.5 * (w - center) @ hessian @ (w - center)
        ax.contour(w1, w2, 0.5 * np.einsum("...i,ij,...j->...", dd, hessian, dd),
                   levels=[level], colors="tab:red", linewidths=1.2, linestyles="--")
        ax.plot(*w, "ro", ms=7)
        ax.annotate(f"solution ({w[0]:.2f}, {w[1]:.2f})", w, xytext=(-20, -28),
                    textcoords="offset points", fontsize=8, color="tab:red")
        ax.axhline(0, color="k", lw=0.6)
        ax.axvline(0, color="k", lw=0.6)
        ax.set(xlim=(-1.6, 2.6), ylim=(-1.6, 2.6), aspect="equal", xlabel="$w_1$",
               ylabel="$w_2$", title=title)
    z = np.linspace(-3, 3, 601)
    lam = 1.0
    ax = axes[2]
    ax.plot(z, z, color="0.6", ls=":", label="no penalty: $w = z$")
    ax.plot(z, z / (1 + lam), label=r"ridge: $z / (1 + \lambda)$")
    ax.plot(z, np.sign(z) * np.maximum(np.abs(z) - lam, 0), label=r"lasso: soft threshold $S_\lambda(z)$")
    ax.plot(z, np.where(np.abs(z) > np.sqrt(2 * lam), z, 0), ls="--",
            label=r"L0 (best subset): hard threshold")
    ax.set(xlabel="unregularised coefficient z", ylabel="regularised coefficient w",
           title=r"orthonormal features, $\lambda = 1$", aspect="equal")
    ax.legend(fontsize=7)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    return _save(fig, out, "l1_l2_geometry")


def sparse_problem(seed: int = 3) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Tibshirani's example: 8 correlated features (rho = 0.5), 3 of them relevant."""
    rng = np.random.default_rng(seed)
    n, d = 50, 8
    cov = 0.5 ** np.abs(np.subtract.outer(np.arange(d), np.arange(d)))
    x = rng.standard_normal((n, d)) @ np.linalg.cholesky(cov).T
    w_true = np.array([3.0, 1.5, 0, 0, 2.0, 0, 0, 0])
    return x, x @ w_true + rng.standard_normal(n), w_true


def lasso_cd(x: np.ndarray, y: np.ndarray, lam: float, w0: np.ndarray | None = None,
             sweeps: int = 500) -> np.ndarray:
    """Coordinate descent for (1/2N)||y - Xw||^2 + lam ||w||_1."""
    n, d = x.shape
    w = np.zeros(d) if w0 is None else w0.copy()
    col2 = np.sum(x ** 2, axis=0) / n
    r = y - x @ w
    for _ in range(sweeps):
        for j in range(d):
            r += x[:, j] * w[j]
            z = x[:, j] @ r / n
            w[j] = np.sign(z) * max(abs(z) - lam, 0.0) / col2[j]
            r -= x[:, j] * w[j]
    return w


def regularization_paths(out: Path) -> Path:
    """Ridge and lasso coefficients as the penalty grows."""
    x, y, w_true = sparse_problem()
    n, d = x.shape
    lams = np.geomspace(1e-3, 1e2, 80)
    ridge = np.array([np.linalg.solve(x.T @ x + n * lam * np.eye(d), x.T @ y) for lam in lams])
    lasso, w = [], None
    for lam in lams[::-1]:
        w = lasso_cd(x, y, lam, w, sweeps=100)
        lasso.append(w)
    lasso = np.array(lasso[::-1])
    fig, axes = plt.subplots(1, 2, figsize=(12, 3.9), sharey=True)
    for ax, path, name in ((axes[0], ridge, "ridge (L2)"), (axes[1], lasso, "lasso (L1)")):
        for j in range(d):
            ax.semilogx(lams, path[:, j], lw=2 if w_true[j] else 1,
                        ls="-" if w_true[j] else "--", label=f"$w_{j + 1}$ (true {w_true[j]:g})")
        ax.axhline(0, color="k", lw=0.6)
        ax.set(xlabel=r"penalty strength $\lambda$ (log scale)", title=f"{name} path")
        ax.invert_xaxis()
    axes[0].set_ylabel("coefficient")
    axes[1].legend(fontsize=7, ncol=2)
    fig.tight_layout()
    return _save(fig, out, "regularization_paths")


# --------------------------------------------------------------------------- A.5 dropout


def _network(ax: plt.Axes, sizes: list[int], keep: list[np.ndarray], title: str) -> None:
    xs = np.arange(len(sizes))
    pos = [np.stack([np.full(s, xs[i]), np.linspace(-(s - 1) / 2, (s - 1) / 2, s)], axis=1)
           for i, s in enumerate(sizes)]
    for i in range(len(sizes) - 1):
        for a in range(sizes[i]):
            for b in range(sizes[i + 1]):
                on = keep[i][a] and keep[i + 1][b]
                ax.plot([pos[i][a, 0], pos[i + 1][b, 0]], [pos[i][a, 1], pos[i + 1][b, 1]],
                        color="tab:blue" if on else "0.92", lw=0.8 if on else 0.5, zorder=1)
    for i in range(len(sizes)):
        for a in range(sizes[i]):
            on = keep[i][a]
            ax.add_patch(Circle(pos[i][a], 0.16, fc="white" if on else "0.85",
                                ec="k" if on else "0.7", zorder=2))
            if not on:
                ax.plot(pos[i][a, 0] + np.array([-0.12, 0.12]), pos[i][a, 1] + np.array([-0.12, 0.12]),
                        color="tab:red", lw=1.2, zorder=3)
                ax.plot(pos[i][a, 0] + np.array([-0.12, 0.12]), pos[i][a, 1] + np.array([0.12, -0.12]),
                        color="tab:red", lw=1.2, zorder=3)
    ax.set(xlim=(-0.4, len(sizes) - 0.6), ylim=(-3.4, 3.4), aspect="equal", title=title)
    ax.title.set_fontsize(9)
    ax.axis("off")


def dropout_thinned(out: Path) -> Path:
    """The full network and three thinned networks sampled by dropout (p = 0.2 on the inputs,
    0.5 on the hidden units); every thinned network shares the full network's weights."""
    sizes = [4, 6, 6, 2]
    rates = [0.2, 0.5, 0.5, 0.0]
    rng = np.random.default_rng(5)
    fig, axes = plt.subplots(1, 4, figsize=(14, 4))
    _network(axes[0], sizes, [np.ones(s, bool) for s in sizes],
             "full network (inference:\nevery unit, no rescaling with inverted dropout)")
    for k, ax in enumerate(axes[1:], start=1):
        keep = [rng.uniform(size=s) >= p for s, p in zip(sizes, rates, strict=True)]
        kept = sum(int(m.sum()) for m in keep[:3])
        _network(ax, sizes, keep, f"training step {k}: one thinned network\n"
                 f"({kept} of 16 droppable units kept, survivors x 1/(1-p))")
    fig.suptitle(f"dropout samples one of 2^16 = {2 ** 16:,} weight-sharing sub-networks per "
                 "example and step", fontsize=10)
    fig.tight_layout()
    return _save(fig, out, "dropout_thinned")


# --------------------------------------------------------------------------- A.6 batch norm


def _deep_forward(x: np.ndarray, weights: list[np.ndarray], batchnorm: bool
                  ) -> list[np.ndarray]:
    """Pre-activations z of every layer of a tanh MLP, batch = one example per row."""
    zs, a = [], x
    for w in weights:
        z = a @ w.T
        if batchnorm:
            z = (z - z.mean(axis=0)) / np.sqrt(z.var(axis=0) + 1e-3)
        zs.append(z)
        a = np.tanh(z)
    return zs


def batchnorm_distributions(out: Path) -> Path:
    """Pre-activation histograms by depth, without and with batch normalisation; and a 2-D
    batch before and after BN (each coordinate standardised, the correlation kept)."""
    rng = np.random.default_rng(6)
    width, depth = 100, 10
    x = 2.0 + rng.standard_normal((512, width))  # inputs that are not centred
    weights = [rng.standard_normal((width, width)) * 0.5 / np.sqrt(width) for _ in range(depth)]
    fig, axes = plt.subplots(1, 3, figsize=(15, 4))
    colors = plt.cm.viridis(np.linspace(0, 0.9, depth))
    for ax, bn in zip(axes[:2], (False, True), strict=True):
        zs = _deep_forward(x, weights, bn)
        bins = np.linspace(-4, 4, 81)
        for layer in (0, 2, 4, 6, 9):
            ax.hist(zs[layer].ravel(), bins=bins, histtype="step", density=True, lw=1.5,
                    color=colors[layer], label=f"layer {layer + 1}: mean {zs[layer].mean():.2f}, "
                    f"std {zs[layer].std():.2f}")
        ax.set(xlabel="pre-activation value", ylabel="density",
               title=("without batch norm: weights a little too small,\n"
                      "the signal shrinks layer by layer" if not bn else
                      "the same weights with batch norm (before tanh):\n"
                      "mean 0, std 1 in every layer"))
        ax.title.set_fontsize(9)
        ax.legend(fontsize=7)
    ax = axes[2]
    cov = np.array([[4.0, 2.4], [2.4, 2.25]])
    z = np.array([3.0, -2.0]) + rng.standard_normal((256, 2)) @ np.linalg.cholesky(cov).T
    zhat = (z - z.mean(axis=0)) / np.sqrt(z.var(axis=0) + 1e-3)
    ax.scatter(*z.T, s=6, alpha=0.6, label="batch of 256, two features")
    ax.scatter(*zhat.T, s=6, alpha=0.6, label="after BN (per-feature z-score)")
    corr = np.corrcoef(zhat.T)[0, 1]
    ax.set(aspect="equal", xlabel="feature 1", ylabel="feature 2",
           title=f"BN re-centres and re-scales each feature;\nit does not decorrelate "
           f"(correlation still {corr:.2f})")
    ax.title.set_fontsize(9)
    ax.axhline(0, color="k", lw=0.5)
    ax.axvline(0, color="k", lw=0.5)
    ax.legend(fontsize=7, loc="upper left")
    fig.tight_layout()
    return _save(fig, out, "batchnorm")


def normalization_axes(out: Path) -> Path:
    """Which entries share a mean and variance: BN, LN, instance norm, group norm."""
    n, c, groups = 6, 8, 4
    fig, axes = plt.subplots(1, 4, figsize=(14, 3.6))
    cases = (("batch norm: one channel,\nall examples (and all H x W)",
              lambda i, j: j == 2),
             ("layer norm: one example,\nall channels (and all H x W)",
              lambda i, j: i == 1),
             ("instance norm: one example,\none channel (all H x W)",
              lambda i, j: i == 1 and j == 2),
             (f"group norm (G = {groups}): one example,\none group of {c // groups} channels",
              lambda i, j: i == 1 and j // (c // groups) == 1))
    for ax, (title, shared) in zip(axes, cases, strict=True):
        for i in range(n):
            for j in range(c):
                ax.add_patch(Rectangle((j, n - 1 - i), 1, 1, ec="0.4", lw=0.8,
                                       fc="tab:orange" if shared(i, j) else "white"))
        ax.set(xlim=(-0.2, c + 0.2), ylim=(-0.6, n + 0.2), aspect="equal")
        ax.set_title(title, fontsize=9)
        ax.text(c / 2, -0.5, "channels c ->", ha="center", fontsize=8)
        ax.text(-0.15, n / 2, "examples n ->", rotation=90, va="center", ha="right", fontsize=8)
        ax.axis("off")
    fig.suptitle("each cell is one (example, channel) pair and holds a whole H x W feature map; "
                 "orange cells share one mean and one variance", fontsize=10)
    fig.tight_layout()
    return _save(fig, out, "normalization_axes")


# --------------------------------------------------------------------------- A.7 - A.9 augmentation


def augmentation_gallery(out: Path) -> Path:
    """The project's augmentation functions, one at a time and all together, on one slice."""
    import tensorflow as tf

    from neuropathology.data.data_loader import (
        AugmentConfig,
        affine_transform,
        bias_field,
        brightness_contrast,
        build_augmenter,
        cutout,
        mixup,
        rician_noise,
    )

    glioma, _ = _slice("glioma", 4)
    other, _ = _slice("no_tumor", 7)
    x = tf.constant(_batch(glioma))
    one = tf.ones((1,))

    def warp(deg: float = 0.0, scale: float = 1.0, flip: bool = False) -> tf.Tensor:
        return affine_transform(x, one * deg * math.pi / 180, one * scale, one * (-1.0 if flip else 1.0))

    pair = tf.constant(np.concatenate([_batch(glioma), _batch(other)]))
    labels = tf.constant([[1.0, 0.0], [0.0, 1.0]])
    mixed, mixed_y = mixup(pair, labels, 1.0, 11)  # a seed that pairs the two slices
    assert 0.2 < float(mixed_y[0, 0]) < 0.8
    panels = [
        (x, "original (glioma)"),
        (warp(flip=True), "horizontal flip"),
        (warp(deg=20), "rotation +20 deg"),
        (warp(scale=1.1), "zoom 1.1"),
        (bias_field(x, 0.5, 1), "bias field, strength 0.5"),
        (brightness_contrast(x, 2, brightness=0.1, contrast=0.1), "brightness / contrast 0.1"),
        (rician_noise(x, 0.05 * 255, 1), "Rician noise, sigma = 0.05 x 255"),
        (cutout(x, 0.25, 5), "cutout, side 0.25"),
        (mixed[:1], f"mixup with a normal slice: kappa = {float(mixed_y[0, 0]):.2f}"),
    ]
    config = AugmentConfig(bias_field=0.3, rician_noise=0.03)
    augment = build_augmenter(config, seed=0)
    batch = tf.constant(_batch(glioma, 3))
    augmented, _ = augment(batch, tf.constant([[1.0, 0.0]] * 3))
    for k in range(3):
        panels.append((augmented[k:k + 1], f"full training pipeline, draw {k + 1}"))
    fig, axes = plt.subplots(2, 6, figsize=(12, 4.9))
    for ax, (image, title) in zip(axes.ravel(), panels, strict=True):
        _show(ax, np.asarray(image)[0], title)
    fig.suptitle("the project's augmentations (neuropathology.data.data_loader) on a synthetic "
                 "slice; the last three: AugmentConfig(bias_field=0.3, rician_noise=0.03)",
                 fontsize=10)
    fig.tight_layout()
    return _save(fig, out, "augmentation_gallery", mri=True)


def label_preservation(out: Path) -> Path:
    """Transforms that keep the label of a brain MRI slice, and transforms that do not."""
    import tensorflow as tf

    from neuropathology.data.data_loader import affine_transform, bias_field, rician_noise

    glioma, mask = _slice("glioma", 11)  # an inferior slice: orbits in front, cerebellum behind
    x = tf.constant(_batch(glioma))
    one = tf.ones((1,))
    ys, xs = np.nonzero(mask)
    occluded = glioma.copy()
    side = max(ys.max() - ys.min(), xs.max() - xs.min()) + 3  # a square over the whole lesion
    top = (ys.min() + ys.max() - side) // 2 + 1
    left = (xs.min() + xs.max() - side) // 2 + 1
    occluded[top:top + side, left:left + side] = 0
    assert not np.any(occluded[mask])
    assert not mask[64:, :64].any()  # the zoomed crop of the last panel misses the lesion
    panels = [
        (glioma, "original: glioma", "black"),
        (np.asarray(affine_transform(x, one * 0, one, -one))[0], "left-right flip: keeps label",
         "tab:green"),
        (np.asarray(bias_field(x, 0.5, 1))[0], "bias field: keeps label", "tab:green"),
        (np.asarray(rician_noise(x, 0.05 * 255, 1))[0], "Rician noise: keeps label", "tab:green"),
        (glioma[::-1], "upside down: anatomically impossible", "tab:red"),
        (255 - glioma, "inverted intensities: another\ncontrast (T2-like), not this scan",
         "tab:red"),
        (occluded, "cutout over the lesion:\n'glioma' no longer visible", "tab:red"),
        (np.asarray(tf.image.resize(x[:, 64:, :64, :], (128, 128)))[0],
         "crop without the lesion:\nlabel no longer supported", "tab:red"),
    ]
    fig, axes = plt.subplots(2, 4, figsize=(10, 6.0))
    for ax, (image, title, color) in zip(axes.ravel(), panels, strict=True):
        _show(ax, image, title, color)
    axes[0, 0].contour(mask, levels=[0.5], colors="tab:orange", linewidths=1)
    fig.suptitle("label-preserving (green) and label-destroying (red) transforms of a brain MRI "
                 "slice; orange: the tumour mask", fontsize=10)
    fig.tight_layout()
    return _save(fig, out, "label_preservation", mri=True)


def cutout_mixup(out: Path) -> Path:
    """Beta(alpha, alpha) densities; mixup of two slices at three weights; cutout draws."""
    import tensorflow as tf

    from neuropathology.data.data_loader import cutout

    glioma, mask = _slice("glioma", 4)
    normal, _ = _slice("no_tumor", 7)
    fig, axes = plt.subplots(2, 4, figsize=(11, 6.0))
    ax = axes[0, 0]
    grid = np.linspace(0.002, 0.998, 500)
    for alpha in (0.2, 1.0, 4.0):
        ax.plot(grid, stats.beta.pdf(grid, alpha, alpha), label=rf"$\alpha = {alpha:g}$")
    ax.set(ylim=(0, 4), xlabel=r"mixing weight $\kappa$", ylabel="density",
           title=r"$\kappa \sim \mathrm{Beta}(\alpha, \alpha)$")
    ax.legend(fontsize=8)
    for ax, kappa in zip(axes[0, 1:], (0.9, 0.5, 0.2), strict=True):
        _show(ax, kappa * glioma + (1 - kappa) * normal,
              f"mixup, kappa = {kappa}: target\n({kappa:g} glioma, {1 - kappa:.1f} no tumour)")
    x = tf.constant(_batch(glioma, 4))
    occluded = np.asarray(cutout(x, 0.25, 11))
    for k, ax in enumerate(axes[1]):
        covered = float(np.mean(occluded[k, :, :, 0][mask] == 0))
        _show(ax, occluded[k], f"cutout 0.25, draw {k + 1}: {100 * covered:.0f}% of the\n"
              "tumour erased", "tab:red" if covered > 0.5 else "black")
        ax.contour(mask, levels=[0.5], colors="tab:orange", linewidths=1)
    fig.tight_layout()
    return _save(fig, out, "cutout_mixup", mri=True)


# --------------------------------------------------------------------------- A.10 - A.11


def early_stopping_l2(out: Path) -> Path:
    """Gradient descent from 0 and the ridge path on a 2-D quadratic; the two shrinkage laws."""
    rot = np.array([[np.cos(0.4), -np.sin(0.4)], [np.sin(0.4), np.cos(0.4)]])
    h = np.array([1.0, 0.05])
    hess = rot @ np.diag(h) @ rot.T
    w_star = np.array([1.0, 1.5])
    eta = 0.5
    fig, axes = plt.subplots(1, 2, figsize=(12, 4.6))
    ax = axes[0]
    g = np.linspace(-0.3, 1.8, 300)
    w1, w2 = np.meshgrid(g, g)
    d = np.stack([w1 - w_star[0], w2 - w_star[1]], axis=-1)
    ax.contour(w1, w2, 0.5 * np.einsum("...i,ij,...j->...", d, hess, d),
               levels=[0.002, 0.01, 0.03, 0.07, 0.13, 0.2], colors="0.6", linewidths=0.8)
    path = [np.zeros(2)]
    for _ in range(200):
        path.append(path[-1] - eta * hess @ (path[-1] - w_star))
    path = np.array(path)
    ax.plot(*path.T, "o-", ms=2, color="tab:blue", label=f"gradient descent from 0, eta = {eta}")
    lams = np.geomspace(1e-3, 1e3, 300)
    ridge = np.array([np.linalg.solve(hess + lam * np.eye(2), hess @ w_star) for lam in lams])
    ax.plot(*ridge.T, color="tab:red", lw=2, alpha=0.7, label=r"ridge solutions, $\lambda$ from $\infty$ to 0")
    for t in (1, 2, 5, 10, 20, 50):
        ax.plot(*path[t], "ko", ms=4)
        ax.annotate(f"t = {t}", path[t], xytext=(5, -9), textcoords="offset points", fontsize=7)
        match = np.linalg.solve(hess + np.eye(2) / (eta * t), hess @ w_star)
        ax.plot(*match, "s", color="tab:red", ms=4, label=r"ridge at $\lambda = 1/(\eta t)$"
                if t == 1 else None)
    ax.plot(*w_star, "k*", ms=10)
    ax.set(aspect="equal", xlabel="$w_1$", ylabel="$w_2$",
           title="stopping after t steps is like a ridge penalty of about 1/(eta t)")
    ax.title.set_fontsize(9)
    ax.legend(fontsize=7, loc="lower right")
    ax = axes[1]
    s = np.geomspace(1e-2, 1e2, 400)
    ax.semilogx(s, -np.expm1(-s), label=r"early stopping: $1 - e^{-\eta h t}$")
    ax.semilogx(s, s / (1 + s), label=r"ridge with $\lambda = 1/(\eta t)$: $h / (h + \lambda)$")
    ax.set(xlabel=r"$\eta h t$ (curvature x learning rate x steps)",
           ylabel="fraction of the component of $\\hat{\\mathbf{w}}$ that is learned",
           title="the two shrinkage factors along one eigen-direction of curvature h")
    ax.title.set_fontsize(9)
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    return _save(fig, out, "early_stopping_l2")


def ensembles(out: Path) -> Path:
    """(a) Degree-9 fits to 20 noisy training sets and their average;
    (b) the variance of an average of M predictors with correlation rho."""
    x = (np.arange(N_TRAIN) + 0.5) / N_TRAIN
    rng = np.random.default_rng(8)
    grid = np.linspace(0, 1, 400)
    fits = np.array([Legendre.fit(x, truth(x) + SIGMA * rng.standard_normal(N_TRAIN), 9,
                                  domain=[0, 1])(grid) for _ in range(20)])
    fig, axes = plt.subplots(1, 2, figsize=(12, 3.9))
    ax = axes[0]
    for k, f in enumerate(fits):
        ax.plot(grid, f, color="0.7", lw=0.8, label="20 members (degree 9)" if k == 0 else None)
    ax.plot(grid, fits.mean(axis=0), color="tab:red", lw=2, label="their average")
    ax.plot(grid, truth(grid), color="tab:green", lw=1.5, ls="--", label="truth")
    ax.set(ylim=(-2, 2), title="averaging removes variance, not bias")
    ax.title.set_fontsize(9)
    ax.legend(fontsize=7)
    ax = axes[1]
    m = np.arange(1, 31)
    for rho in (0.0, 0.3, 0.7):
        ax.plot(m, rho + (1 - rho) / m, label=rf"$\rho = {rho}$: $\rho + (1 - \rho)/M$")
        ax.axhline(rho, color="0.7", ls=":", lw=0.8)
    ax.set(xlabel="ensemble size M", ylabel=r"variance of the average / $\sigma^2$",
           title="correlated members: the variance floor is rho sigma^2")
    ax.title.set_fontsize(9)
    ax.legend(fontsize=8)
    fig.tight_layout()
    return _save(fig, out, "ensembles")


FIGURES = (polynomial_fits, learning_curves, bias_variance, l1_l2_geometry,
           regularization_paths, dropout_thinned, batchnorm_distributions, normalization_axes,
           augmentation_gallery, label_preservation, cutout_mixup, early_stopping_l2, ensembles)


def main(argv: list[str] | None = None) -> None:
    run(FIGURES, __doc__, argv)


if __name__ == "__main__":
    main()
