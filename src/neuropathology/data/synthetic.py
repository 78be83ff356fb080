"""The built-in synthetic brain MRI dataset: axial T1-weighted-like slices in four classes.

Why it exists: a learner, a CI run or a quick demo with no data must still train something
meaningful, so the project ships a *generator* rather than a download. The images are drawn
from a simple anatomical model, rendered analytically, so that the task is learnable (each
class has the imaging signs a radiologist would look for) but not trivial (the signs are
small, vary in size, position and contrast, and sit on varied normal anatomy, noise and
bias fields).

Classes (``CLASS_NAMES``) and the signs that define them:

* ``no_tumor``  -- normal brain.
* ``glioma``    -- intra-axial, irregular (lobulated) heterogeneous mass, often with a dark
  necrotic core, inside one hemisphere, surrounded by T1-hypointense oedema.
* ``meningioma``-- extra-axial, round, homogeneous, bright mass with a broad base on the dura
  (inner skull table or falx), a thin CSF cleft and a short "dural tail".
* ``pituitary`` -- small midline sellar/suprasellar mass on *inferior* slices.

Hidden slice level. Every image has a level ``z`` in [0, 1] (0 = skull base, 1 = vertex).
Below ``INFERIOR_LEVEL`` the slice shows skull-base anatomy (orbits, sphenoid sinus, sella,
temporal lobes, pons, cerebellum; no lateral ventricles); above it, supratentorial anatomy
(cortex and sulci, white matter, lateral ventricles, falx). Pituitary slices are always
inferior; about a fifth of the other classes are inferior too, so the level alone does not
give the class away: an inferior slice shows a small *normal* pituitary gland unless it is a
pituitary tumour.

Tumour masks. Each image comes with a boolean mask of exactly the **tumour tissue**: the
glioma mass including its necrotic core, the meningioma, the pituitary adenoma. Perilesional
oedema, the meningioma's CSF cleft and dural tail are *not* tumour and are left out, so that
Grad-CAM localisation scored against the mask measures whether the model looks at the lesion
itself. A pixel is in the mask when the anti-aliased lesion weight that painted it is > 0.5.

Rendering. Every structure is an analytic shape in head coordinates (ellipses, lobulated
discs whose radius is a short Fourier series in the polar angle), composited by linear
interpolation (``a + (b - a) * w``) with anti-aliased edges about one pixel wide. Smooth random
fields (texture, sulci, bias field, head-shape wobble, tumour heterogeneity) are cubic
B-spline surfaces through a small Gaussian control grid, evaluated separably with the four
nonzero spline taps per axis. Noise is Rician: the magnitude of the signal plus complex
Gaussian noise, ``sqrt((s + n1)^2 + n2^2)``, which is what a magnitude MR image shows
(Rayleigh noise in the air, near-Gaussian noise in tissue). The bias field is multiplicative,
like a receive-coil sensitivity profile.

Determinism. The same ``(seed, label, size, difficulty)`` gives the same bytes: the random
draws come from NumPy's PCG64 (``np.random.default_rng``), which is the same stream on every
platform, and the image arithmetic is element-wise IEEE float32 ``+ - * / sqrt`` (exact, so
identical on every CPU whatever its SIMD width), gathers and clips; no BLAS, no threads, no
reductions. The only transcendental functions are float64 ones on scalars (pose angles) and
the cerebellar folia, whose last-bit differences between libms are far too small to change
a uint8 pixel. In a dataset, image ``i`` of class ``c`` and split ``s`` has seed
``image_seed(seed, s, c, i)``, so it does not depend on how many images are generated.
Random anatomy is drawn before anything that depends on ``size``, so the same seed gives the
same head at every resolution (only the noise differs).

Speed. Rendering writes into per-thread reusable buffers (:class:`_Workspace`) and draws its
noise as windows of a fixed Gaussian bank, so a 256 x 256 slice takes a few milliseconds on
one core (``benchmarks/synthetic_speed.py``).

Difficulty (``difficulty`` in [0, 1], default 0.5): higher means smaller and fainter
lesions, more noise, a stronger bias field and more variation in pose. The effects grow with
``difficulty ** 3``; at the default a tiny CNN trained for a minute on 64 x 64 images reaches
roughly 0.9-0.95 test accuracy (``benchmarks/synthetic_learnability.py``), at 1.0 much less.
"""

from __future__ import annotations

import argparse
import json
import math
import multiprocessing
import os
import shutil
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np

from neuropathology.utils.helpers import (
    atomic_write_json,
    derive_seed,
    format_table,
    get_logger,
)

__all__ = [
    "CLASS_NAMES",
    "DEFAULT_PER_CLASS",
    "DEFAULT_SIZE",
    "GENERATOR_VERSION",
    "INFERIOR_LEVEL",
    "MANIFEST_NAME",
    "SliceInfo",
    "SyntheticArrays",
    "configure_parser",
    "default_cache_dir",
    "describe_slice",
    "ensure_dataset",
    "generate_arrays",
    "generate_slice",
    "image_seed",
    "read_manifest",
    "run_cli",
    "write_dataset",
]

LOGGER = get_logger("data.synthetic")

#: Class folder names; the same canonical names the Kaggle 4-class aliases map to.
CLASS_NAMES: tuple[str, ...] = ("glioma", "meningioma", "no_tumor", "pituitary")

#: Bump whenever the rendered bytes change: cached datasets with another version are rebuilt.
GENERATOR_VERSION = 1
GENERATOR_NAME = "neuropathology.data.synthetic"
MANIFEST_NAME = "dataset.json"
DEFAULT_SIZE = 256
DEFAULT_PER_CLASS = 200
SPLIT_FOLDERS = {"train": "Training", "test": "Testing"}

#: Slice levels below this show skull-base (inferior) anatomy.
INFERIOR_LEVEL = 0.3
#: Probability that a glioma / meningioma / normal slice is drawn from the inferior levels.
_P_INFERIOR = {"glioma": 0.18, "meningioma": 0.2, "no_tumor": 0.25, "pituitary": 1.0}

_MIN_SIZE = 16
_MAX_SIZE = 1024
_LUT_BINS = 2048
_LUT_RHO_MAX = 1.3

_F32 = np.float32
# Sulcal pattern: a smooth random field on a polar (radius, angle) table over the outer brain.
_SULCI_K_RHO, _SULCI_K_THETA = 6, 76
_SULCI_RHO0, _SULCI_RHO1, _SULCI_N_RHO, _SULCI_N_THETA = 0.45, 1.05, 32, 1024
_SULCI_GRAD = 17.0  # typical |grad F| in field units per brain radius (converts widths)


# --------------------------------------------------------------------------------------------
# Small numeric building blocks
# --------------------------------------------------------------------------------------------
#: Mean over a knot interval of sum_j b_j(f)^2 for the cubic B-spline (= 151/315): dividing
#: the weights by its square root gives fields of unit variance on average.
_BSPLINE_ENERGY = 151.0 / 315.0


@lru_cache(maxsize=512)
def _spline_taps(n_out: int, k: int, periodic: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """The 4 nonzero cubic B-spline taps per output sample: ``(index (4, n), weight (4, n))``.

    The uniform cubic B-spline through control values ``g`` at position ``t`` (in control
    units, integer part ``i`` and fraction ``f``) is ``sum_j g[i-1+j] * b_j(f)`` with
    ``b_0 = (1-f)^3/6``, ``b_1 = (3f^3 - 6f^2 + 4)/6``, ``b_2 = (-3f^3 + 3f^2 + 3f + 1)/6``,
    ``b_3 = f^3/6``. Non-periodic curves use the interior knot span ``[1, k-2]``; periodic
    ones wrap the indices modulo ``k`` (one full turn).
    """
    if periodic:
        t = (np.arange(n_out, dtype=np.float64) + 0.5) / n_out * k
        i = np.floor(t).astype(np.int64)
    else:
        t = (np.arange(n_out, dtype=np.float64) + 0.5) / n_out * (k - 3) + 1.0
        i = np.minimum(np.floor(t).astype(np.int64), k - 3)
    f = t - i
    g = 1.0 - f
    f2, f3 = f * f, f * f * f
    weights = np.stack([g * g * g, 3 * f3 - 6 * f2 + 4, -3 * f3 + 3 * f2 + 3 * f + 1, f3])
    weights *= 1.0 / (6.0 * math.sqrt(_BSPLINE_ENERGY))
    index = np.stack([i - 1 + j for j in range(4)])
    if periodic:
        index %= k
    weights = weights.astype(_F32)
    index.setflags(write=False)
    weights.setflags(write=False)
    return index, weights


def _spline_surface(grid: np.ndarray, rows: int, cols: int, *, periodic_cols: bool = False,
                    out: np.ndarray | None = None, tmp: np.ndarray | None = None) -> np.ndarray:
    """Evaluate the tensor-product cubic B-spline through ``grid`` (kr, kc) at rows x cols.

    Separable: first along the columns on the small grid (``C = sum_t G[:, j_t] * w_t``,
    kr x cols), then along the rows (``out = sum_t w_t * C[i_t, :]``, four gathers of whole
    rows, i.e. contiguous copies). Costs ``O(rows * cols)`` instead of filtering a
    full-resolution noise image, and uses only element-wise float32 products and sums -- no
    BLAS, whose threading and kernels vary between machines -- so the result is the same
    bits everywhere and runs on one core.
    """
    kr, kc = grid.shape
    ri, rw = _spline_taps(rows, kr)
    ci, cw = _spline_taps(cols, kc, periodic_cols)
    g = grid.astype(_F32)
    c = g[:, ci[0]] * cw[0]
    for t in range(1, 4):
        c += g[:, ci[t]] * cw[t]
    if out is None:
        out = np.empty((rows, cols), dtype=_F32)
    if tmp is None:
        tmp = np.empty((rows, cols), dtype=_F32)
    np.take(c, ri[0], axis=0, out=out)
    out *= rw[0][:, None]
    for t in range(1, 4):
        np.take(c, ri[t], axis=0, out=tmp)
        tmp *= rw[t][:, None]
        out += tmp
    return out


def _ramp(x: np.ndarray) -> np.ndarray:
    """Clip to [0, 1] in place: the anti-aliased edge profile used for every shape."""
    return np.clip(x, 0.0, 1.0, out=x)


def _ramp_into(x: np.ndarray, slope: float, offset: float, out: np.ndarray) -> np.ndarray:
    """``out = clip(x * slope + offset, 0, 1)`` without temporaries (a linear edge ramp)."""
    np.multiply(x, _F32(slope), out=out)
    out += _F32(offset)
    return np.clip(out, 0.0, 1.0, out=out)


class _Workspace:
    """Reusable full-image buffers for one image size, one per thread.

    A 256 x 256 float32 temporary is 256 KiB, above glibc's default mmap threshold, so fresh
    temporaries can cost page faults and zeroing on every image, and they also evict the
    cache. The full-image steps therefore write into these buffers in place; only small
    windows around structures and lesions allocate.
    """

    F32_NAMES = ("u", "v", "p", "q", "rho", "base", "ic", "bw", "img", "tex", "sulc", "t1", "t2",
                 "t3", "t4")

    def __init__(self, size: int):
        self.size = size
        for name in self.F32_NAMES:
            setattr(self, name, np.empty((size, size), dtype=_F32))
        self.i1 = np.empty((size, size), dtype=np.intp)  # intp: gathers need no conversion
        self.i2 = np.empty((size, size), dtype=np.intp)
        self.b1 = np.empty((size, size), dtype=bool)


_WORKSPACES = threading.local()


def _blocks(image: np.ndarray, f: int) -> np.ndarray:
    """A (S/f, f, S/f, f) view of a square image: broadcasting a (S/f, 1, S/f, 1) field over
    it applies the field blockwise (nearest-neighbour upsampling without a copy)."""
    n = image.shape[0] // f
    return image.reshape(n, f, n, f)


def _workspace(size: int) -> _Workspace:
    ws = getattr(_WORKSPACES, "ws", None)
    if ws is None or ws.size != size:
        ws = _Workspace(size)
        _WORKSPACES.ws = ws
    return ws


@lru_cache(maxsize=16)
def _pixel_axis(size: int) -> np.ndarray:
    """Pixel-centre coordinates along one axis in [-1, 1], float32 (x right, y down)."""
    axis = ((np.arange(size, dtype=np.float64) + 0.5) * (2.0 / size) - 1.0).astype(_F32)
    axis.setflags(write=False)
    return axis


def _u(rng: np.random.Generator, lo: float, hi: float) -> float:
    """A uniform draw as a Python float (a NumPy float64 scalar would upcast float32 arrays)."""
    return float(rng.uniform(lo, hi))


def _harmonics(rng: np.random.Generator, orders: Sequence[int], amplitude: float) -> list[tuple[
        int, float, float]]:
    """Random Fourier coefficients ``(k, a_k, b_k)`` with ``a_k, b_k ~ N(0, (amplitude/k)^2)``."""
    return [(k, float(rng.normal(0.0, amplitude / k)), float(rng.normal(0.0, amplitude / k)))
            for k in orders]


class _Angular:
    """``cos(k phi), sin(k phi)`` around a lesion centre, computed once and shared.

    ``cos(k phi) + i sin(k phi) = ((dx + i dy) / |d|)^k`` (de Moivre), built by repeated
    complex multiplication of the unit vector, so only ``+ - * /`` are needed (no atan2).
    """

    def __init__(self, dx: np.ndarray, dy: np.ndarray, dist: np.ndarray):
        inv = _F32(1.0) / np.maximum(dist, _F32(1e-6))
        self.dist = dist
        self.terms = [(dx * inv, dy * inv)]

    def harmonic(self, k: int) -> tuple[np.ndarray, np.ndarray]:
        c1, s1 = self.terms[0]
        while len(self.terms) < k:
            ck, sk = self.terms[-1]
            self.terms.append((ck * c1 - sk * s1, sk * c1 + ck * s1))
        return self.terms[k - 1]


def _lobulated_radius(ang: _Angular, radius: float,
                      harmonics: Sequence[tuple[int, float, float]]) -> np.ndarray:
    """``r(phi) = radius * (1 + sum_k a_k cos(k phi) + b_k sin(k phi))``, clipped to
    [0.45, 1.6] x radius so the outline stays star-shaped and inside its window."""
    out = np.ones_like(ang.dist)
    for k, a, b in harmonics:
        ck, sk = ang.harmonic(k)
        out += ck * _F32(a)
        out += sk * _F32(b)
    np.clip(out, 0.45, 1.6, out=out)
    out *= _F32(radius)
    return out


# --------------------------------------------------------------------------------------------
# Public small types
# --------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class SyntheticArrays:
    """An in-memory synthetic dataset.

    ``images`` uint8 (N, S, S); ``labels`` int64 (N,) indexing ``class_names``; ``masks`` bool
    (N, S, S), all False for ``no_tumor``. Classes are interleaved (image ``j`` has class
    ``j % C`` and within-class index ``j // C``), so any prefix is class-balanced.
    """

    images: np.ndarray
    labels: np.ndarray
    masks: np.ndarray
    class_names: tuple[str, ...]

    def __len__(self) -> int:
        return int(self.labels.shape[0])


@dataclass(frozen=True)
class SliceInfo:
    """The hidden parameters of one rendered slice, for tests, the course and Grad-CAM checks.

    Pixel coordinates are ``(x, y)`` = (column, row) with pixel centres at integers.
    ``pixels_per_unit`` converts head units (the head's lateral semi-axis is ~0.7) to pixels.
    ``midline_skew`` bends the midsagittal line (the falx) to ``u = skew * v^2`` in head
    coordinates. ``intracranial`` is the space inside the inner skull table; ``brain`` the
    parenchyma before lesions were painted (sulci, ventricles and cisterns excluded).
    """

    label: str
    level: float
    inferior: bool
    head_center_px: tuple[float, float]
    rotation_deg: float
    pixels_per_unit: float
    lesion_center_px: tuple[float, float] | None
    lesion_radius_px: float | None
    attachment: str | None
    midline_skew: float
    intracranial: np.ndarray
    brain: np.ndarray

    def head_coordinates(self, x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Pixel coordinates -> head coordinates ``(u, v)`` (left-right, anterior-posterior)."""
        theta = math.radians(self.rotation_deg)
        cx, cy = self.head_center_px
        dx = (np.asarray(x, float) - cx) / self.pixels_per_unit
        dy = (np.asarray(y, float) - cy) / self.pixels_per_unit
        return math.cos(theta) * dx + math.sin(theta) * dy, -math.sin(theta) * dx + math.cos(
            theta) * dy

    def midline_distance_px(self, x: np.ndarray, y: np.ndarray) -> np.ndarray:
        """Unsigned left-right distance in pixels from points to the midsagittal line."""
        u, v = self.head_coordinates(x, y)
        return np.abs(u - self.midline_skew * v * v) * self.pixels_per_unit


# --------------------------------------------------------------------------------------------
# Parameter sampling
# --------------------------------------------------------------------------------------------
def _check_label(label: str) -> str:
    if label not in CLASS_NAMES:
        raise ValueError(f"unknown synthetic class {label!r}; use one of {', '.join(CLASS_NAMES)}")
    return label


def _check_size(size: int) -> int:
    if not isinstance(size, (int, np.integer)) or not _MIN_SIZE <= int(size) <= _MAX_SIZE:
        raise ValueError(f"size must be an integer in [{_MIN_SIZE}, {_MAX_SIZE}], got {size!r}")
    return int(size)


def _check_difficulty(difficulty: float) -> float:
    d = float(difficulty)
    if not 0.0 <= d <= 1.0 or math.isnan(d):
        raise ValueError(f"difficulty must be in [0, 1], got {difficulty!r}")
    return d


def _size_factor(hardness: float) -> float:
    """Lesion radius multiplier of the hardness ``h = difficulty**3``: 1.15 .. 0.55."""
    return 1.15 - 0.6 * hardness


def _contrast_factor(hardness: float) -> float:
    """Lesion contrast multiplier of the hardness ``h = difficulty**3``: 1.1 .. 0.5."""
    return 1.1 - 0.6 * hardness


def _sample_level(rng: np.random.Generator, label: str) -> float:
    """Slice level z: pituitary always inferior; other classes inferior with _P_INFERIOR."""
    if rng.uniform() < _P_INFERIOR[label]:
        return _u(rng, 0.02, INFERIOR_LEVEL - 0.02)
    return _u(rng, INFERIOR_LEVEL + 0.02, 0.95)


class _Slice:
    """One slice being rendered: pose, head-coordinate grids and the painting helpers.

    Coordinate systems (float32 arrays of the image shape, in the workspace): ``u, v`` head
    coordinates after the pose (v < 0 anterior = image top; lengths in head units); brain
    coordinates ``p, q``, the head ellipse warped (egg shape, skew) and scaled so that the
    inner skull table is the unit circle; ``rho_b = |(p, q)|`` (times a small outline wobble).
    ``self.d`` is the hardness ``difficulty**3`` that all difficulty effects use.
    """

    def __init__(self, rng: np.random.Generator, label: str, size: int, difficulty: float):
        # Every difficulty effect scales with difficulty^3: the default 0.5 then sits where
        # a tiny CNN on 64 px reaches ~0.9-0.95 test accuracy, and 1.0 is genuinely hard.
        d = difficulty ** 3
        self.rng, self.label, self.size, self.d = rng, label, size, d
        self.level = _sample_level(rng, label)
        self.inferior = self.level < INFERIOR_LEVEL
        # --- head shape: ellipse with an egg-shaped widening posteriorly and a slight skew
        shrink = 1.0 - 0.9 * max(0.0, self.level - 0.75) ** 1.5  # smaller sections at the vertex
        self.a0 = _u(rng, 0.66, 0.76) * shrink * (0.96 if self.inferior else 1.0)
        self.b0 = _u(rng, 0.83, 0.93) * (shrink ** 0.5)
        self.egg = _u(rng, 0.0, 0.1)
        self.skew = _u(rng, -1.0, 1.0) * (0.02 + 0.04 * d)
        # --- pose (more variation with difficulty)
        rot_max = 4.0 + 16.0 * d
        self.rotation_deg = _u(rng, -rot_max, rot_max)
        t_max = 0.015 + 0.06 * d
        self.tx, self.ty = _u(rng, -t_max, t_max), _u(rng, -t_max, t_max)
        extent = self.b0 * (1.0 + self.egg) + 0.02
        s_max = (0.985 - max(abs(self.tx), abs(self.ty))) / extent
        self.scale = min(_u(rng, 0.88, 1.0) * (1.0 - 0.1 * d * _u(rng, 0.0, 1.0)) / 0.93, s_max)
        # --- scalp and skull layers (thicknesses in head-normalised radius)
        self.t_skin = 0.008
        self.t_fat = _u(rng, 0.03, 0.06)
        self.t_outer = _u(rng, 0.012, 0.02)
        self.t_diploe = _u(rng, 0.012, 0.035)
        self.t_inner = _u(rng, 0.01, 0.016)
        self.r_in = 1.0 - (self.t_skin + self.t_fat + self.t_outer + self.t_diploe + self.t_inner)
        # --- T1 intensities (fat bright, WM > GM > CSF, cortical bone dark)
        self.i_csf = _u(rng, 0.06, 0.12)
        self.i_gm = _u(rng, 0.40, 0.48)
        self.i_wm = self.i_gm + _u(rng, 0.16, 0.24)
        self.i_fat = _u(rng, 0.82, 0.95)
        self.i_skin = _u(rng, 0.35, 0.5)
        self.i_bone = _u(rng, 0.02, 0.06)
        self.i_diploe = _u(rng, 0.35, 0.6)
        self.r_surf = 1.0 - _u(rng, 0.015, 0.045)  # brain surface (brain coords): CSF rim width
        self.sulcus_width = _u(rng, 0.06, 0.2)  # half-width in field units; atrophy widens
        self.sulcus_depth = _u(rng, 0.12, 0.2)
        self.cortex = _u(rng, 0.03, 0.045)  # cortical thickness (brain units)
        self.cortex_f = self.cortex * _SULCI_GRAD * _u(rng, 0.8, 1.2)  # in field units
        self.texture = _u(rng, 0.015, 0.035)
        # --- smooth random fields' control grids (drawn here: independent of size)
        self.g_low = rng.standard_normal((2, 5, 5))  # head-outline wobble, bias field
        self.g_tex = rng.standard_normal((1, 10, 10))  # tissue texture
        self.g_sulci = rng.standard_normal((_SULCI_K_RHO, _SULCI_K_THETA))  # polar sulci
        self.shape_wobble = _u(rng, 0.005, 0.015)
        # --- acquisition
        self.noise_sigma = _u(rng, 0.7, 1.3) * (0.02 + 0.055 * d)
        self.bias_amp = _u(rng, 0.5, 1.0) * (0.05 + 0.25 * d)
        self.gain = _u(rng, 0.92, 1.05)
        self.lesion: dict[str, Any] | None = None
        self.keep_maps = False
        if self.inferior:
            self._sample_inferior()
        else:
            self._sample_superior()
        if label == "glioma":
            self._sample_glioma()
        elif label == "meningioma":
            self._sample_meningioma()
        elif label == "pituitary":
            self._sample_pituitary()

    # ---------------------------------------------------------------- anatomy parameters
    def _sample_superior(self) -> None:
        rng = self.rng
        ls = (self.level - INFERIOR_LEVEL) / (1.0 - INFERIOR_LEVEL)
        self.ls = ls
        # Ventricles are largest at mid levels (bodies), absent at the centrum semiovale/vertex.
        if ls < 0.25:
            profile = 0.55 + 0.45 * ls / 0.25
        elif ls < 0.55:
            profile = 1.0
        else:
            profile = max(0.0, 1.0 - (ls - 0.55) / 0.25)
        self.vent_scale = profile * _u(rng, 0.55, 1.5)
        self.vent_asym = _u(rng, 0.85, 1.15)
        self.vent_gap = _u(rng, 0.015, 0.03)
        self.vent_curve = _u(rng, 0.06, 0.14)
        self.vent_tilt = _u(rng, -0.02, 0.04)
        self.vent_len = _u(rng, 0.22, 0.3)
        self.vent_q = _u(rng, -0.1, 0.0) - 0.1 * max(0.0, 0.3 - ls)
        self.third_ventricle = ls < 0.3
        self.deep_grey = ls < 0.4
        # the fissure is interrupted by the corpus callosum at ventricular levels
        self.callosum_q = (self.vent_len + 0.06) * min(1.0, max(0.0, (0.78 - ls) / 0.2))
        self.fissure_width = _u(rng, 0.008, 0.018)

    def _sample_inferior(self) -> None:
        rng = self.rng
        li = self.level / INFERIOR_LEVEL  # 0 = orbits/pons, 1 = suprasellar
        self.li = li
        self.temporal_r = (_u(rng, 0.27, 0.33), _u(rng, 0.4, 0.47))
        self.temporal_q = _u(rng, -0.16, -0.08) + 0.05 * li
        self.temporal_p = _u(rng, 0.5, 0.56)
        self.pons_r = (_u(rng, 0.17, 0.22), _u(rng, 0.14, 0.18))
        self.cereb_r = (_u(rng, 0.36, 0.42), _u(rng, 0.32, 0.38))
        self.folia_freq = _u(rng, 26.0, 34.0)
        self.gland_r = _u(rng, 0.05, 0.075)
        self.orbit_r = _u(rng, 0.13, 0.17) * max(0.0, 1.0 - 1.1 * li)
        self.sinus_r = (_u(rng, 0.13, 0.19), _u(rng, 0.1, 0.15))
        self.frontal_r = 0.28 * max(0.0, (li - 0.35) / 0.65)

    def _sample_glioma(self) -> None:
        rng, d = self.rng, self.d
        side = 1.0 if rng.uniform() < 0.5 else -1.0
        if self.inferior:  # temporal-lobe glioma
            pc = side * (self.temporal_p + _u(rng, -0.05, 0.03))
            qc = self.temporal_q + _u(rng, -0.12, 0.12)
            radius = _u(rng, 0.11, 0.17) * _size_factor(d)
        else:
            pc = side * _u(rng, 0.3, 0.56)
            qc = _u(rng, -0.55, 0.5)
            radius = _u(rng, 0.13, 0.22) * _size_factor(d)
            # keep it intra-axial: pull the centre inwards until the mass is inside the brain
            rb = math.hypot(pc, qc)
            limit = 0.86 - radius * 1.15
            if rb > limit:
                pc, qc = pc * limit / rb, qc * limit / rb
                if abs(pc) < 0.22:
                    pc = side * 0.22
        contrast = _contrast_factor(d)
        self.lesion = {
            "pc": pc, "qc": qc, "radius": radius, "side": side,
            "harmonics": _harmonics(rng, (2, 3, 4, 5, 6, 7), _u(rng, 0.35, 0.6)),
            "core": rng.uniform() < 0.85 - 0.3 * d,
            "core_frac": _u(rng, 0.4, 0.65),
            "core_harmonics": _harmonics(rng, (2, 3, 4), 0.3),
            # heterogeneous (irregularly enhancing) tissue around a dark necrotic core
            "i_rim": self.i_wm + (1.0 if rng.uniform() < 0.5 else -1.0) * _u(rng, 0.06, 0.16)
            * contrast,
            "i_core": self.i_csf + _u(rng, 0.04, 0.12),
            "hetero": _u(rng, 0.1, 0.2) * contrast,
            "grid": rng.standard_normal((1, 7, 7)),
            "edema_scale": _u(rng, 1.6, 2.4),
            "edema_harmonics": _harmonics(rng, (2, 3, 4, 5), 0.6),
            "edema_amp": _u(rng, 0.3, 0.45) * contrast,
        }

    def _sample_meningioma(self) -> None:
        rng, d = self.rng, self.d
        radius = _u(rng, 0.1, 0.19) * _size_factor(d)
        if not self.inferior and rng.uniform() < 0.3:
            side = 1.0 if rng.uniform() < 0.5 else -1.0
            attachment, angle = "falx", None
            qc = _u(rng, -0.6, 0.55)
            pc = side * radius * _u(rng, 0.55, 0.85) / (self.r_in * self.a0)
        else:
            attachment, side = "convexity", None
            if self.inferior:  # middle-fossa / posterior-fossa convexity
                angle = _u(rng, -0.35, 0.35) * math.pi + (0.0 if rng.uniform() < 0.5 else math.pi)
            else:
                angle = _u(rng, 0.0, 2.0 * math.pi)
            inset = radius * _u(rng, 0.55, 0.85)
            pb, qb = math.cos(angle), math.sin(angle)
            scale_b = self.r_in * 0.5 * (self.a0 + self.b0)
            pc, qc = pb * (1.0 - inset / scale_b), qb * (1.0 - inset / scale_b)
        contrast = _contrast_factor(d)
        self.lesion = {
            "pc": pc, "qc": qc, "radius": radius, "attachment": attachment, "side": side,
            "angle": angle,
            "harmonics": _harmonics(rng, (2, 3), 0.06),
            "i_mass": self.i_wm + _u(rng, 0.06, 0.2) * contrast,
            "tail": _u(rng, 1.3, 1.8),
            "cleft": _u(rng, 0.3, 0.7),
        }

    def _sample_pituitary(self) -> None:
        rng, d = self.rng, self.d
        contrast = _contrast_factor(d)
        self.lesion = {
            "pc": _u(rng, -0.025, 0.025), "qc": -0.26 + _u(rng, -0.02, 0.05),
            "radius": _u(rng, 0.075, 0.12) * _size_factor(d),
            "harmonics": _harmonics(rng, (2, 3), 0.08),
            "i_mass": self.i_gm + _u(rng, 0.12, 0.3) * contrast,
        }

    # ---------------------------------------------------------------- geometry helpers
    def setup_grids(self) -> None:
        """Head and brain coordinates of every pixel (the only full-image geometry)."""
        size = self.size
        ws = self.ws = _workspace(size)
        axis = _pixel_axis(size)
        theta = math.radians(self.rotation_deg)
        self.cos, self.sin = math.cos(theta), math.sin(theta)
        inv_s = 1.0 / self.scale
        c, s = self.cos * inv_s, self.sin * inv_s
        # u = (cos (x - tx) + sin (y - ty)) / scale ; v = (-sin (x - tx) + cos (y - ty)) / scale
        # both are sums of a function of the column and a function of the row (outer sums)
        off_u = -(c * self.tx + s * self.ty)
        off_v = s * self.tx - c * self.ty
        self.u, self.v, self.p, self.q = ws.u, ws.v, ws.p, ws.q
        np.add((axis * _F32(c) + _F32(off_u))[None, :], (axis * _F32(s))[:, None], out=ws.u)
        np.add((axis * _F32(-s) + _F32(off_v))[None, :], (axis * _F32(c))[:, None], out=ws.v)
        # brain coordinates: p = (u - skew v^2) / (r_in a0 (1 + egg v)), q = v / (r_in b0)
        ra = self.r_in * self.a0
        np.multiply(ws.v, _F32(ra * self.egg), out=ws.t1)
        ws.t1 += _F32(ra)
        np.multiply(ws.v, ws.v, out=ws.t2)
        ws.t2 *= _F32(-self.skew)
        ws.t2 += ws.u
        np.divide(ws.t2, ws.t1, out=ws.p)
        np.multiply(ws.v, _F32(1.0 / (self.r_in * self.b0)), out=ws.q)
        self.pix_phys = 2.0 / (size * self.scale)  # head units per pixel
        self.pix_rho = self.pix_phys / (0.5 * (self.a0 + self.b0))
        self.pix_b = self.pix_rho / self.r_in

    def to_phys(self, pc: float, qc: float) -> tuple[float, float]:
        """Brain coordinates -> head coordinates (inverse of the P, Q warp)."""
        v = qc * self.r_in * self.b0
        u = pc * self.r_in * self.a0 * (1.0 + self.egg * v) + self.skew * v * v
        return u, v

    def to_pixel(self, u: float, v: float) -> tuple[float, float]:
        """Head coordinates -> pixel (x, y) (column, row), pixel centres at integers."""
        x = self.scale * (self.cos * u - self.sin * v) + self.tx
        y = self.scale * (self.sin * u + self.cos * v) + self.ty
        half = self.size / 2.0
        return (x + 1.0) * half - 0.5, (y + 1.0) * half - 0.5

    def window(self, u: float, v: float, half: float) -> tuple[slice, slice] | None:
        """Pixel window (rows, cols) covering a disc of radius ``half`` head units, or None."""
        x, y = self.to_pixel(u, v)
        h = half / self.pix_phys + 2.0
        r0, r1 = max(0, int(math.floor(y - h))), min(self.size, int(math.ceil(y + h)) + 1)
        c0, c1 = max(0, int(math.floor(x - h))), min(self.size, int(math.ceil(x + h)) + 1)
        if r0 >= r1 or c0 >= c1:
            return None
        return slice(r0, r1), slice(c0, c1)

    def window_pq(self, pc: float, qc: float, half_pq: float) -> tuple[slice, slice] | None:
        u, v = self.to_phys(pc, qc)
        extent = half_pq * self.r_in * max(self.a0 * (1 + self.egg), self.b0)
        return self.window(u, v, extent * 1.1 + 0.01)

    def ellipse(self, win: tuple[slice, slice], pc: float, qc: float, rp: float, rq: float,
                angle_deg: float = 0.0, soft: float = 1.0) -> np.ndarray:
        """Anti-aliased weight of an ellipse in brain coordinates inside ``win``."""
        dp = self.p[win] - _F32(pc)
        dq = self.q[win] - _F32(qc)
        if angle_deg:
            ca, sa = math.cos(math.radians(angle_deg)), math.sin(math.radians(angle_deg))
            dp, dq = dp * _F32(ca) + dq * _F32(sa), dq * _F32(ca) - dp * _F32(sa)
        dp *= _F32(1.0 / rp)
        dq *= _F32(1.0 / rq)
        dist = np.sqrt(dp * dp + dq * dq)
        sharp = min(rp, rq) / (self.pix_b * soft)
        w = (1.0 - dist) * _F32(sharp) + _F32(0.5)
        return _ramp(w)

    def paint_ellipse(self, target: np.ndarray, value: float, pc: float, qc: float, rp: float,
                      rq: float, angle_deg: float = 0.0, soft: float = 1.0,
                      union: np.ndarray | None = None) -> None:
        """Composite ``value`` into ``target`` over an ellipse (and max-union its weight)."""
        win = self.window_pq(pc, qc, max(rp, rq))
        if win is None:
            return
        w = self.ellipse(win, pc, qc, rp, rq, angle_deg, soft)
        t = target[win]
        t += (_F32(value) - t) * w
        if union is not None:
            np.maximum(union[win], w, out=union[win])

    # ---------------------------------------------------------------- rendering
    def render(self, noise_rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        self.setup_grids()
        ws, size = self.ws, self.size
        # the two lowest-frequency fields (5 x 5 control points) vary by far less than a grey
        # level over a few pixels, so they are evaluated on blocks of ``f x f`` pixels
        f = next(b for b in (4, 2, 1) if size % b == 0)
        wobble = _spline_surface(self.g_low[0], size // f, size // f)
        wobble *= _F32(self.shape_wobble)
        wobble += _F32(1.0)
        bias = _spline_surface(self.g_low[1], size // f, size // f)
        np.clip(bias, -2.0, 2.0, out=bias)
        bias *= _F32(0.5 * self.bias_amp)
        bias += _F32(1.0)
        rho = self.rho_b = ws.rho
        np.multiply(ws.p, ws.p, out=rho)
        np.multiply(ws.q, ws.q, out=ws.t1)
        rho += ws.t1
        np.sqrt(rho, out=rho)
        _blocks(rho, f)[...] *= wobble[:, None, :, None]
        self._radial_layers()
        inv_pix = 1.0 / self.pix_b
        self.ic_w = _ramp_into(rho, -inv_pix, inv_pix + 0.5, ws.ic)  # inside the inner table
        _spline_surface(self.g_tex[0], size, size, out=ws.tex, tmp=ws.t1)
        self.tex = ws.tex
        self.brain_w = ws.bw
        if self.inferior:
            self._inferior_brain()
        else:
            self._superior_brain()
        img = ws.img
        mask = np.zeros((size, size), dtype=bool)
        if self.lesion is not None:
            painter = {"glioma": self._paint_glioma, "meningioma": self._paint_meningioma,
                       "pituitary": self._paint_pituitary}[self.label]
            painter(img, mask)
        if self.keep_maps:
            self.intracranial = ws.ic > 0.5
            self.brain = ws.bw > 0.5
        img *= ws.ic
        img += ws.base
        if self.inferior:
            self._paint_face(img)
        # multiplicative bias field, then Rician noise: |s * b + n1 + i n2|
        _blocks(img, f)[...] *= bias[:, None, :, None]
        # in units of sigma: |s + sigma (n1 + i n2)| = sigma |s / sigma + n1 + i n2|
        n_re, n_im = _noise_pair(noise_rng, size)
        img *= _F32(1.0 / self.noise_sigma)
        img += n_re
        img *= img
        np.multiply(n_im, n_im, out=ws.t1)
        img += ws.t1
        np.sqrt(img, out=img)
        img *= _F32(255.0 * self.gain * self.noise_sigma)
        img += _F32(0.5)
        np.clip(img, 0.0, 255.0, out=img)
        return img.astype(np.uint8), mask

    def _radial_layers(self) -> None:
        """Scalp and skull intensity (zero inside the cavity) as a function of head radius.

        The layer profile is tabulated on a fine grid of the radius, box-filtered over one
        pixel (partial-volume averaging, via a cumulative sum) and looked up per pixel.
        """
        ws = self.ws
        edges = np.cumsum([0.0, self.t_skin, self.t_fat, self.t_outer, self.t_diploe,
                           self.t_inner])
        values = np.array([0.0, self.i_skin, self.i_fat, self.i_bone, self.i_diploe,
                           self.i_bone, 0.0])
        r = (np.arange(_LUT_BINS, dtype=np.float64) + 0.5) * (_LUT_RHO_MAX / _LUT_BINS)
        val = values[np.searchsorted(edges, 1.0 - r, side="right")]  # by depth below scalp
        half = max(1, int(round(self.pix_rho * _LUT_BINS / _LUT_RHO_MAX / 2.0)))
        lut = _box_filter(val, half).astype(_F32)
        np.multiply(ws.rho, _F32(self.r_in * _LUT_BINS / _LUT_RHO_MAX), out=ws.t1)
        np.minimum(ws.t1, _F32(_LUT_BINS - 1), out=ws.t1)
        np.copyto(ws.i1, ws.t1, casting="unsafe")  # truncation: the bin index
        np.take(lut, ws.i1, out=ws.base, mode="clip")

    def _turns(self) -> np.ndarray:
        """Polar angle of (p, q) in turns [0, 1), in ws.t3, with exact float32 arithmetic.

        ``atan(z) ~ z (pi/4 + 0.273 (1 - z))`` on the first octant (error < 0.004 rad), then
        unfolded to the full turn branch-free (``a += s (c - 2a)``, ``s`` in {0, 1}). Only
        ``+ - * /`` are used, so every machine gets the same bits (a float32 atan2 would
        depend on the CPU's SIMD implementation).
        """
        ws = self.ws
        ap, aq, a, z, b = ws.t1, ws.t2, ws.t3, ws.t4, ws.b1
        np.abs(ws.p, out=ap)
        np.abs(ws.q, out=aq)
        np.maximum(ap, aq, out=a)
        a += _F32(1e-30)
        np.minimum(ap, aq, out=z)
        z /= a
        c1 = 0.273 / (2.0 * math.pi)
        np.multiply(z, _F32(-c1), out=a)
        a += _F32(c1 + 0.125)
        a *= z
        for cond, const in ((lambda: np.greater(aq, ap, out=b), 0.25),
                            (lambda: np.less(ws.p, 0.0, out=b), 0.5),
                            (lambda: np.less(ws.q, 0.0, out=b), 1.0)):
            cond()
            np.multiply(a, _F32(-2.0), out=z)
            z += _F32(const)
            z *= b
            a += z
        return a

    def _sulcal_field(self) -> np.ndarray:
        """|F| of a random field on polar coordinates around the brain centre (ws.sulc).

        Sulci are drawn along the zero lines of F; because F varies ~12x faster along the
        angle than along the radius, the zero lines run roughly radially, perpendicular to
        the brain surface, like real sulci. The field is tabulated on a (radius, angle) grid
        by separable B-spline evaluation and looked up per pixel (nearest bin).
        """
        ws = self.ws
        table = _spline_surface(self.g_sulci, _SULCI_N_RHO, _SULCI_N_THETA, periodic_cols=True)
        table = np.abs(table, out=table).ravel()
        turns = self._turns()
        turns *= _F32(_SULCI_N_THETA)
        np.copyto(ws.i1, turns, casting="unsafe")
        ws.i1 &= _SULCI_N_THETA - 1  # N is a power of two: wraps the bin of turn 1.0
        scale = _SULCI_N_RHO / (_SULCI_RHO1 - _SULCI_RHO0)
        np.multiply(ws.rho, _F32(scale), out=ws.t1)
        ws.t1 += _F32(-_SULCI_RHO0 * scale)
        np.clip(ws.t1, _F32(0.0), _F32(_SULCI_N_RHO - 1), out=ws.t1)
        np.copyto(ws.i2, ws.t1, casting="unsafe")
        ws.i2 *= _SULCI_N_THETA
        ws.i2 += ws.i1
        return np.take(table, ws.i2, out=ws.sulc, mode="clip")

    def _superior_brain(self) -> None:
        ws = self.ws
        rho, bw, t1, t2 = ws.rho, ws.bw, ws.t1, ws.t2
        sulc = self._sulcal_field()
        inv_pix = 1.0 / self.pix_b
        _ramp_into(rho, -inv_pix, self.r_surf * inv_pix + 0.5, bw)
        # sulci: thin CSF lines along the zero set of the field, down to the sulcal depth
        fundus = self.r_surf - self.sulcus_depth
        sharp = 1.0 / (_SULCI_GRAD * self.pix_b)  # field units -> pixels
        _ramp_into(sulc, -sharp, self.sulcus_width * sharp + 0.5, t1)
        _ramp_into(rho, 1.0 / 0.04, -fundus / 0.04, t2)
        t1 *= t2
        np.subtract(_F32(1.0), t1, out=t1)
        bw *= t1
        # cortex: a ribbon of roughly constant thickness along the surface and every sulcus
        # (|F| / |grad F| approximates the distance to the sulcus); white matter elsewhere
        _ramp_into(sulc, -sharp, (self.sulcus_width + self.cortex_f) * sharp + 0.5, t1)
        _ramp_into(rho, 1.0 / 0.03, -(fundus - self.cortex) / 0.03, t2)
        t1 *= t2
        _ramp_into(rho, 1.0 / 0.02, -(self.r_surf - self.cortex) / 0.02, t2)
        np.maximum(t1, t2, out=t1)
        tissue = ws.img
        np.multiply(t1, _F32(self.i_gm - self.i_wm), out=tissue)
        tissue += _F32(self.i_wm)
        ws.tex *= _F32(self.texture)
        tissue += ws.tex
        # deep grey nuclei (thalami, basal ganglia) at the level of the third ventricle
        if self.deep_grey:
            grey = self.i_gm + 0.05
            for sgn in (-1.0, 1.0):
                self.paint_ellipse(tissue, grey, sgn * 0.13, 0.1, 0.09, 0.12, soft=4.0)
                self.paint_ellipse(tissue, grey, sgn * 0.2, -0.12, 0.06, 0.12, angle_deg=sgn * 20,
                                   soft=4.0)
        # intracranial signal: CSF where there is no brain
        tissue -= _F32(self.i_csf)
        tissue *= bw
        tissue += _F32(self.i_csf)
        self._paint_ventricles(tissue)
        self._paint_fissure(tissue)

    def _paint_ventricles(self, intr: np.ndarray) -> None:
        """Lateral ventricles ")(": closest to the septum mid-body, diverging at both horns."""
        vs = self.vent_scale
        if vs > 0.05:
            rq = self.vent_len * min(1.0, 0.5 + 0.5 * vs)
            for sgn in (-1.0, 1.0):
                scale = vs * (self.vent_asym if sgn > 0 else 1.0)
                if self.lesion is not None and self.label == "glioma" and self.lesion["side"] == sgn:
                    scale *= max(0.35, 1.0 - 3.0 * self.lesion["radius"])  # mass effect
                rp = 0.02 + 0.045 * scale
                win = self.window_pq(sgn * 0.15, self.vent_q, rq + 0.1)
                if win is None:
                    continue
                q = self.q[win] - _F32(self.vent_q)
                dq = q * _F32(1.0 / rq)
                # centre line p(q) = gap + rp + curve q^2 (+ a tilt), width tapering to the horns
                centre = dq * dq * _F32(self.vent_curve) + dq * _F32(self.vent_tilt) + _F32(
                    self.vent_gap + rp)
                dp = self.p[win] * _F32(sgn) - centre
                dp *= _F32(1.0 / rp)
                dist = np.sqrt(dp * dp + dq * dq)
                w = _ramp((1.0 - dist) * _F32(rp / self.pix_b) + _F32(0.5))
                t = intr[win]
                t += (_F32(self.i_csf) - t) * w
        if self.third_ventricle:
            self.paint_ellipse(intr, self.i_csf, 0.0, 0.08, 0.016, 0.1)

    def _paint_fissure(self, intr: np.ndarray) -> None:
        """Interhemispheric fissure/falx: a dark midline line, interrupted by the callosum."""
        ws = self.ws
        t1, t2 = ws.t1, ws.t2
        np.abs(ws.p, out=t1)
        inv_pix = 1.0 / self.pix_b
        _ramp_into(t1, -inv_pix, self.fissure_width * inv_pix + 0.5, t1)
        if self.callosum_q > 0:
            np.abs(ws.q, out=t2)
            _ramp_into(t2, 1.0 / 0.04, -self.callosum_q / 0.04 + 0.5, t2)
            t1 *= t2
        t1 *= ws.ic  # only inside the skull
        np.subtract(_F32(self.i_csf), intr, out=t2)
        t2 *= t1
        intr += t2

    def _inferior_brain(self) -> None:
        ws = self.ws
        brain_w, bg = ws.bw, ws.t3
        brain_w.fill(0.0)
        bg.fill(self.i_csf)  # CSF; the skull base inside the cavity is painted on it
        tissue = ws.img
        np.multiply(ws.tex, _F32(self.texture), out=tissue)
        tissue += _F32(self.i_gm)
        gm, wm, csf = self.i_gm, self.i_wm, self.i_csf
        # skull base inside the cavity: petrous ridges, clivus, sphenoid sinus (bone / air)
        for sgn in (-1.0, 1.0):
            self.paint_ellipse(bg, self.i_bone, sgn * 0.45, 0.26, 0.36, 0.06, angle_deg=sgn * 32)
        self.paint_ellipse(bg, 0.5 * (self.i_diploe + self.i_bone), 0.0, -0.12, 0.11, 0.07)
        if self.li < 0.75:
            self.paint_ellipse(bg, self.i_bone, 0.0, -0.52, self.sinus_r[0] + 0.03,
                               self.sinus_r[1] + 0.03)
            self.paint_ellipse(bg, 0.01, 0.0, -0.52, *self.sinus_r)
        # temporal lobes (GM with a WM core), pons, cerebellum, frontal lobes at higher levels
        rp, rq = self.temporal_r
        for sgn in (-1.0, 1.0):
            pc = sgn * self.temporal_p
            self.paint_ellipse(tissue, wm - 0.03, pc, self.temporal_q + 0.04, rp * 0.5, rq * 0.62,
                               soft=5)
            self.paint_ellipse(brain_w, 1.0, pc, self.temporal_q, rp, rq, angle_deg=-sgn * 8)
        self.paint_ellipse(tissue, wm - 0.04, 0.0, 0.12, *self.pons_r, soft=3.0)
        self.paint_ellipse(brain_w, 1.0, 0.0, 0.12, *self.pons_r)
        self._paint_cerebellum(tissue, brain_w)
        if self.frontal_r > 0.03:
            for sgn in (-1.0, 1.0):
                self.paint_ellipse(tissue, wm - 0.05, sgn * 0.2, -0.68, self.frontal_r * 0.45,
                                   self.frontal_r * 0.55, soft=5)
                self.paint_ellipse(brain_w, 1.0, sgn * 0.2, -0.66, self.frontal_r * 0.75,
                                   self.frontal_r)
        intr = tissue
        intr -= bg
        intr *= brain_w
        intr += bg
        # fourth ventricle, normal pituitary gland, carotid and basilar flow voids
        self.paint_ellipse(intr, csf, 0.0, 0.33, 0.06, 0.035)
        self.paint_ellipse(intr, gm + 0.05, 0.0, -0.28, self.gland_r, self.gland_r * 0.75)
        ica_p = 0.14
        if self.label == "pituitary" and self.lesion is not None:
            ica_p = max(ica_p, abs(self.lesion["pc"]) + self.lesion["radius"] / (
                self.r_in * self.a0) + 0.04)
        for sgn in (-1.0, 1.0):
            self.paint_ellipse(intr, 0.02, sgn * ica_p, -0.28, 0.028, 0.028)
        self.paint_ellipse(intr, 0.02, 0.0, -0.03, 0.024, 0.024)

    def _paint_cerebellum(self, tissue: np.ndarray, brain_w: np.ndarray) -> None:
        """Two hemispheres with folia: stripes roughly parallel to the surface, perturbed."""
        rp, rq = self.cereb_r
        period_px = 2.0 * math.pi / self.folia_freq * rp / self.pix_b
        amp = 0.02 * min(1.0, max(0.0, (period_px - 2.5) / 3.0))  # fade out before aliasing
        for sgn in (-1.0, 1.0):
            pc, qc = sgn * 0.28, 0.58
            win = self.window_pq(pc, qc, max(rp, rq))
            if win is None:
                continue
            w = self.ellipse(win, pc, qc, rp, rq)
            value = np.full(w.shape, self.i_gm - 0.01, dtype=_F32)
            if amp > 0:
                dp = (self.p[win] - _F32(sgn * 0.12)) * _F32(1.0 / rp)
                dq = (self.q[win] - _F32(qc - 0.15)) * _F32(1.0 / rq)
                phase = np.sqrt(dp * dp + dq * dq) * _F32(self.folia_freq)
                phase += self.tex[win] * _F32(5.0)
                # float64 cosine: its last-bit differences between libms cannot reach uint8
                value += np.cos(phase.astype(np.float64)).astype(_F32) * _F32(amp)
            t = tissue[win]
            t += (value - t) * w
            np.maximum(brain_w[win], w, out=brain_w[win])

    def _paint_face(self, img: np.ndarray) -> None:
        """Orbits (bright fat, dark globes) and ethmoid air cells anterior to the cavity."""
        if self.orbit_r < 0.04:
            return
        r = self.orbit_r
        for sgn in (-1.0, 1.0):  # retrobulbar fat cone pointing to the orbital apex, then globe
            self.paint_ellipse(img, self.i_fat, sgn * 0.3, -0.8, r * 1.0, r * 1.9,
                               angle_deg=-sgn * 22)
            self.paint_ellipse(img, 0.2, sgn * 0.38, -0.95, r, r * 0.95)
        self.paint_ellipse(img, 0.04, 0.0, -0.88, 0.08, 0.2 * r / 0.15)

    # ---------------------------------------------------------------- lesions
    def _lesion_window(self, radius_factor: float) -> tuple[tuple[slice, slice] | None, float,
                                                           float]:
        les = self.lesion
        assert les is not None
        uc, vc = self.to_phys(les["pc"], les["qc"])
        les["uc"], les["vc"] = uc, vc
        return self.window(uc, vc, les["radius"] * radius_factor), uc, vc

    def _local(self, win: tuple[slice, slice], uc: float, vc: float) -> tuple[
            np.ndarray, np.ndarray, np.ndarray]:
        dx = self.u[win] - _F32(uc)
        dy = self.v[win] - _F32(vc)
        return dx, dy, np.sqrt(dx * dx + dy * dy)

    def _min_radius(self, radius: float) -> float:
        """At tiny image sizes keep a lesion at least 2 pixels in radius (never empty)."""
        return max(radius, 2.0 * self.pix_phys)

    def _paint_glioma(self, intr: np.ndarray, mask: np.ndarray) -> None:
        les = self.lesion
        assert les is not None
        les["radius"] = self._min_radius(les["radius"])
        win, uc, vc = self._lesion_window(les["edema_scale"] * 1.6 + 0.1)
        if win is None:
            return
        dx, dy, dist = self._local(win, uc, vc)
        # oedema: T1-hypointense halo in the parenchyma, darker towards the mass
        ang = _Angular(dx, dy, dist)
        r_ed = _lobulated_radius(ang, les["radius"] * les["edema_scale"],
                                 les["edema_harmonics"])
        edema = _ramp((r_ed - dist) / (r_ed * _F32(0.6)))
        edema *= self.brain_w[win]
        # the falx is a barrier: mass and oedema stay in their hemisphere
        hemisphere = _ramp(self.p[win] * _F32(les["side"] / self.pix_b) + _F32(0.5))
        edema *= hemisphere
        edema *= _F32(les["edema_amp"])
        t = intr[win]
        t -= (t - _F32(self.i_csf)) * edema
        # the mass, in its own (smaller) window: lobulated outline, heterogeneous signal,
        # optional necrotic core
        win = self.window(uc, vc, les["radius"] * 1.6)
        if win is None:
            return
        dx, dy, dist = self._local(win, uc, vc)
        ang = _Angular(dx, dy, dist)
        inv_pix = _F32(1.0 / self.pix_phys)
        r_m = _lobulated_radius(ang, les["radius"], les["harmonics"])
        w = _ramp((r_m - dist) * inv_pix + _F32(0.5))
        w *= _ramp((_F32(0.93) - self.rho_b[win]) * _F32(1.0 / self.pix_b) + _F32(0.5))
        w *= _ramp(self.p[win] * _F32(les["side"] / self.pix_b) + _F32(0.5))  # falx
        t = intr[win]
        rows, cols = t.shape
        hetero = _spline_surface(les["grid"][0], rows, cols)
        value = hetero * _F32(les["hetero"]) + _F32(les["i_rim"])
        if les["core"]:
            r_c = _lobulated_radius(ang, les["radius"] * les["core_frac"],
                                    les["core_harmonics"])
            core = _ramp((r_c - dist) * inv_pix + _F32(0.5))
            value += (_F32(les["i_core"]) - value) * core
        t += (value - t) * w
        mask[win] = w > 0.5

    def _paint_meningioma(self, intr: np.ndarray, mask: np.ndarray) -> None:
        les = self.lesion
        assert les is not None
        les["radius"] = self._min_radius(les["radius"])
        win, uc, vc = self._lesion_window(max(les["tail"], 1.6) + 0.2)
        if win is None:
            return
        dx, dy, dist = self._local(win, uc, vc)
        inv_pix = _F32(1.0 / self.pix_phys)
        r_m = _lobulated_radius(_Angular(dx, dy, dist), les["radius"], les["harmonics"])
        inside = _ramp((_F32(1.0) - self.rho_b[win]) * _F32(1.0 / self.pix_b) + _F32(0.5))
        if les["attachment"] == "falx":
            p_side = self.p[win] * _F32(les["side"])
            inside *= _ramp(p_side * _F32(1.0 / self.pix_b) + _F32(0.5))
        t = intr[win]
        # CSF cleft: a thin dark rim between the extra-axial mass and the brain it indents
        cleft = _ramp((r_m + _F32(1.5 * self.pix_phys + 0.012) - dist) * inv_pix)
        cleft *= inside
        cleft *= _F32(les["cleft"])
        t += (_F32(self.i_csf) - t) * cleft
        # dural tail: dura thickening along the inner table / falx next to the base
        if les["attachment"] == "convexity":
            dura = _ramp((self.rho_b[win] - _F32(1.0 - 0.02)) * _F32(1.0 / self.pix_b))
        else:
            dura = _ramp((_F32(0.015) - np.abs(self.p[win]))
                         * _F32(1.0 / self.pix_b))
        dura *= inside
        dura *= _ramp((_F32(les["radius"] * les["tail"]) - dist) * _F32(1.0 / les["radius"]))
        t += (_F32(0.5 * (les["i_mass"] + self.i_wm)) - t) * dura
        w = _ramp((r_m - dist) * inv_pix + _F32(0.5))
        w *= inside
        t += (_F32(les["i_mass"]) - t) * w
        mask[win] = w > 0.5

    def _paint_pituitary(self, intr: np.ndarray, mask: np.ndarray) -> None:
        les = self.lesion
        assert les is not None
        les["radius"] = self._min_radius(les["radius"])
        win, uc, vc = self._lesion_window(1.7)
        if win is None:
            return
        dx, dy, dist = self._local(win, uc, vc)
        r_m = _lobulated_radius(_Angular(dx, dy, dist), les["radius"], les["harmonics"])
        w = _ramp((r_m - dist) * _F32(1.0 / self.pix_phys) + _F32(0.5))
        t = intr[win]
        t += (_F32(les["i_mass"]) - t) * w
        mask[win] = w > 0.5


@lru_cache(maxsize=4)
def _noise_bank(size: int) -> np.ndarray:
    """Two fixed banks of N(0, 1) float32 samples, ``(size + pad)^2``, for cheap noise.

    Drawing 2 * size^2 Gaussians per image would take most of the rendering time, so each
    image takes windows of these banks at random offsets instead (see :func:`_noise_pair`).
    """
    pad = max(16, min(size, 256))
    rng = np.random.default_rng(derive_seed(GENERATOR_NAME, "noise-bank", size))
    bank = rng.standard_normal((2, size + pad, size + pad), dtype=_F32)
    bank.setflags(write=False)
    return bank


def _noise_pair(rng: np.random.Generator, size: int) -> tuple[np.ndarray, np.ndarray]:
    """Real and imaginary white Gaussian noise of unit variance (read-only views).

    Windows of the two independent banks at random offsets: white N(0, 1) noise with
    ``(pad + 1)^2`` distinct realisations per channel and independent channels. (Across
    images the noise is not independent; it carries no class information.)
    """
    bank = _noise_bank(size)
    pad = bank.shape[1] - size
    r0, c0, r1, c1 = rng.integers(0, pad + 1, size=4).tolist()
    return bank[0, r0:r0 + size, c0:c0 + size], bank[1, r1:r1 + size, c1:c1 + size]


def _box_filter(values: np.ndarray, half: int) -> np.ndarray:
    """Moving average of width ``2 * half + 1`` (edge-padded), via a sequential cumsum."""
    padded = np.concatenate([np.full(half + 1, values[0]), values, np.full(half, values[-1])])
    cs = np.cumsum(padded)
    return (cs[2 * half + 1:] - cs[:-2 * half - 1]) / (2 * half + 1)


# --------------------------------------------------------------------------------------------
# Public generation API
# --------------------------------------------------------------------------------------------
def _render(label: str, size: int, seed: int, difficulty: float, keep_maps: bool = False) -> tuple[
        np.ndarray, np.ndarray, _Slice]:
    _check_label(label)
    size = _check_size(size)
    difficulty = _check_difficulty(difficulty)
    seed = int(seed)
    anatomy = _Slice(np.random.default_rng(seed), label, size, difficulty)
    anatomy.keep_maps = keep_maps
    image, mask = anatomy.render(np.random.default_rng([seed, 1]))
    return image, mask, anatomy


def generate_slice(label: str, *, size: int = DEFAULT_SIZE, seed: int,
                   difficulty: float = 0.5) -> tuple[np.ndarray, np.ndarray]:
    """Render one synthetic axial T1-like slice of class ``label``.

    Returns ``(image, mask)``: ``image`` uint8 (size, size) greyscale, ``mask`` bool
    (size, size) marking the tumour tissue (all False for ``no_tumor``; oedema excluded).
    The same arguments always give the same bytes.
    """
    image, mask, _ = _render(label, size, seed, difficulty)
    return image, mask


def describe_slice(label: str, *, size: int = DEFAULT_SIZE, seed: int,
                   difficulty: float = 0.5) -> SliceInfo:
    """The hidden parameters of ``generate_slice(label, size=..., seed=..., difficulty=...)``."""
    _, mask, sl = _render(label, size, seed, difficulty, keep_maps=True)
    les = sl.lesion
    center = radius = attachment = None
    if les is not None and mask.any():
        center = sl.to_pixel(les["uc"], les["vc"])
        radius = les["radius"] / sl.pix_phys
        attachment = les.get("attachment")
    return SliceInfo(
        label=label, level=sl.level, inferior=sl.inferior,
        head_center_px=sl.to_pixel(0.0, 0.0), rotation_deg=sl.rotation_deg,
        pixels_per_unit=1.0 / sl.pix_phys, lesion_center_px=center, lesion_radius_px=radius,
        attachment=attachment, midline_skew=sl.skew, intracranial=sl.intracranial,
        brain=sl.brain,
    )


def image_seed(seed: int, split: str, label: str, index: int) -> int:
    """Seed of image ``index`` of class ``label`` in ``split``; independent of the set size."""
    return derive_seed(GENERATOR_NAME, int(seed), str(split), str(label), int(index))


def generate_arrays(per_class: int, *, size: int = 64, seed: int = 0, difficulty: float = 0.5,
                    split: str = "train") -> SyntheticArrays:
    """An in-memory dataset of ``per_class`` images per class, classes interleaved.

    ``split`` selects the seed family: ``"train"`` gives the same images as the ``Training``
    folder that :func:`write_dataset` writes with the same seed, ``"test"`` the ``Testing`` ones.
    """
    if int(per_class) < 0:
        raise ValueError(f"per_class must be >= 0, got {per_class!r}")
    per_class = int(per_class)
    size = _check_size(size)
    difficulty = _check_difficulty(difficulty)
    n_cls = len(CLASS_NAMES)
    n = per_class * n_cls
    images = np.empty((n, size, size), dtype=np.uint8)
    masks = np.empty((n, size, size), dtype=bool)
    labels = np.tile(np.arange(n_cls, dtype=np.int64), per_class)
    for j in range(n):
        label = CLASS_NAMES[j % n_cls]
        images[j], masks[j] = generate_slice(label, size=size, difficulty=difficulty,
                                             seed=image_seed(seed, split, label, j // n_cls))
    return SyntheticArrays(images=images, labels=labels, masks=masks, class_names=CLASS_NAMES)


# --------------------------------------------------------------------------------------------
# Writing the Kaggle-style tree, with a cache keyed by the manifest
# --------------------------------------------------------------------------------------------
def default_cache_dir() -> Path:
    """``$NEUROPATHOLOGY_CACHE`` if set, else ``~/.cache/neuropathology``."""
    env = os.environ.get("NEUROPATHOLOGY_CACHE")
    return Path(env).expanduser() if env else Path.home() / ".cache" / "neuropathology"


def _parameters(per_class: int, test_per_class: int | None, size: int, seed: int,
                difficulty: float) -> dict[str, Any]:
    if int(per_class) < 1:
        raise ValueError(f"per_class must be >= 1, got {per_class!r}")
    if test_per_class is None:
        test_per_class = max(1, round(0.25 * int(per_class)))
    if int(test_per_class) < 0:
        raise ValueError(f"test_per_class must be >= 0, got {test_per_class!r}")
    return {"per_class": int(per_class), "test_per_class": int(test_per_class),
            "size": _check_size(size), "seed": int(seed),
            "difficulty": _check_difficulty(difficulty)}


def _manifest(params: dict[str, Any]) -> dict[str, Any]:
    counts = {folder: {c: params["per_class" if split == "train" else "test_per_class"]
                       for c in CLASS_NAMES} for split, folder in SPLIT_FOLDERS.items()}
    return {
        "generator": GENERATOR_NAME,
        "generator_version": GENERATOR_VERSION,
        "parameters": params,
        "class_names": list(CLASS_NAMES),
        "counts": counts,
        "layout": {
            "images": "<Training|Testing>/<class>/<class>_<index:06d>.png (uint8 greyscale)",
            "masks": "masks/<Training|Testing>/<class>/<same name>.png "
                     "(0 background, 255 tumour tissue; oedema excluded)",
        },
        "image_seed": "derive_seed('neuropathology.data.synthetic', seed, 'train'|'test', "
                      "class, index)",
    }


def read_manifest(out_dir: str | os.PathLike[str]) -> dict[str, Any] | None:
    """The synthetic ``dataset.json`` of ``out_dir``, or None if absent/not ours/unreadable."""
    path = Path(out_dir) / MANIFEST_NAME
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(data, dict) or data.get("generator") != GENERATOR_NAME:
        return None
    return data


def _matches(out_dir: Path, params: dict[str, Any]) -> bool:
    manifest = read_manifest(out_dir)
    return (manifest is not None and manifest.get("generator_version") == GENERATOR_VERSION
            and manifest.get("parameters") == params
            and all((out_dir / folder).is_dir() for folder in SPLIT_FOLDERS.values()))


def _is_empty_dir(path: Path) -> bool:
    return path.is_dir() and not any(path.iterdir())


def _write_chunk(jobs: Sequence[tuple[str, str, int, str, int, int, float]], root: str) -> int:
    """Render and write ``(folder, label, index, split, seed, size, difficulty)`` jobs.

    A module-level function so that a process pool can pickle it.
    """
    from PIL import Image

    base = Path(root)
    for folder, label, index, split, seed, size, difficulty in jobs:
        image, mask = generate_slice(label, size=size, difficulty=difficulty,
                                     seed=image_seed(seed, split, label, index))
        name = f"{label}_{index:06d}.png"
        Image.fromarray(image).save(base / folder / label / name)
        Image.fromarray(mask.astype(np.uint8) * np.uint8(255)).save(
            base / "masks" / folder / label / name)
    return len(jobs)


def _generate_into(out: Path, params: dict[str, Any], workers: int | None) -> None:
    """Write the tree into a temporary sibling directory, then rename it onto ``out``."""
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.partial-", dir=out.parent))
    try:
        jobs = []
        for split, folder in SPLIT_FOLDERS.items():
            count = params["per_class" if split == "train" else "test_per_class"]
            for label in CLASS_NAMES:
                (tmp / folder / label).mkdir(parents=True)
                (tmp / "masks" / folder / label).mkdir(parents=True)
                jobs.extend((folder, label, i, split, params["seed"], params["size"],
                             params["difficulty"]) for i in range(count))
        if workers is None:
            workers = 1 if len(jobs) * params["size"] ** 2 < 2000 * 128 ** 2 else min(
                os.cpu_count() or 1, 8)
        if workers > 1 and len(jobs) > 1:
            chunk = max(1, math.ceil(len(jobs) / (workers * 4)))
            chunks = [jobs[i:i + chunk] for i in range(0, len(jobs), chunk)]
            # spawn, not fork: forking a process that has started TensorFlow threads can hang
            context = multiprocessing.get_context("spawn")
            with ProcessPoolExecutor(max_workers=workers, mp_context=context) as pool:
                list(pool.map(_write_chunk, chunks, [str(tmp)] * len(chunks)))
        else:
            _write_chunk(jobs, str(tmp))
        atomic_write_json(tmp / MANIFEST_NAME, _manifest(params))  # last: marks completeness
        if out.exists():
            trash = out.parent / f".{out.name}.old-{uuid.uuid4().hex[:8]}"
            os.replace(out, trash)
            os.replace(tmp, out)
            shutil.rmtree(trash, ignore_errors=True)
        else:
            os.replace(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def _refuse(out: Path) -> FileExistsError:
    return FileExistsError(
        f"{out} is not empty and is not a synthetic dataset with these parameters; "
        f"choose another directory or pass overwrite=True (CLI: --overwrite) to replace it")


def write_dataset(out_dir: str | os.PathLike[str], *, per_class: int = DEFAULT_PER_CLASS,
                  test_per_class: int | None = None, size: int = DEFAULT_SIZE, seed: int = 0,
                  difficulty: float = 0.5, overwrite: bool = False,
                  workers: int | None = None) -> Path:
    """Write the Kaggle-style tree ``Training/<class>/*.png``, ``Testing/<class>/*.png``.

    Masks go to ``masks/<Training|Testing>/<class>/<same name>.png`` (0/255) and the
    parameters to ``dataset.json``. Idempotent: a directory that already holds a dataset
    with the same parameters is returned untouched. A non-empty directory holding anything
    else raises ``FileExistsError`` unless ``overwrite=True``. ``test_per_class`` defaults
    to a quarter of ``per_class``; ``workers`` (default: automatic) renders in processes,
    with identical bytes. The tree is built beside ``out_dir`` and renamed into place, so an
    interrupted run never leaves a directory that looks complete.
    """
    params = _parameters(per_class, test_per_class, size, seed, difficulty)
    out = Path(out_dir).expanduser()
    if _matches(out, params):
        return out
    if out.exists() and not (overwrite or _is_empty_dir(out)):
        raise _refuse(out)
    if out.exists() and not out.is_dir():
        raise NotADirectoryError(f"{out} is a file; choose a directory path for the dataset")
    _generate_into(out, params, workers)
    return out


def _cache_name(params: dict[str, Any]) -> str:
    return (f"synthetic-v{GENERATOR_VERSION}-s{params['size']}-n{params['per_class']}"
            f"-t{params['test_per_class']}-seed{params['seed']}-d{params['difficulty']:g}")


def ensure_dataset(out_dir: str | os.PathLike[str] | None = None, *,
                   per_class: int = DEFAULT_PER_CLASS, test_per_class: int | None = None,
                   size: int = DEFAULT_SIZE, seed: int = 0, difficulty: float = 0.5,
                   overwrite: bool = False, workers: int | None = None) -> Path:
    """Return a synthetic dataset directory with these parameters, generating it if needed.

    ``out_dir`` defaults to a parameter-named folder under :func:`default_cache_dir`. A tree
    whose ``dataset.json`` matches is reused as is; a synthetic tree with other parameters
    (or an older generator version) is regenerated in place, since it is a cache; any other
    non-empty directory is refused unless ``overwrite=True``.
    """
    params = _parameters(per_class, test_per_class, size, seed, difficulty)
    out = (default_cache_dir() / _cache_name(params) if out_dir is None
           else Path(out_dir).expanduser())
    if _matches(out, params):
        return out
    if out.exists() and not (overwrite or _is_empty_dir(out) or read_manifest(out) is not None):
        raise _refuse(out)
    LOGGER.info("generating synthetic MRI dataset in %s (%d+%d per class, %dpx)", out,
                params["per_class"], params["test_per_class"], params["size"])
    _generate_into(out, params, workers)
    return out


# --------------------------------------------------------------------------------------------
# CLI: neuropathology synth
# --------------------------------------------------------------------------------------------
def configure_parser(parser: argparse.ArgumentParser) -> None:
    """Arguments of ``neuropathology synth``."""
    parser.add_argument("--out", required=True, type=Path, help="output directory")
    parser.add_argument("--per-class", type=int, default=DEFAULT_PER_CLASS,
                        help=f"training images per class (default {DEFAULT_PER_CLASS})")
    parser.add_argument("--test-per-class", type=int, default=None,
                        help="test images per class (default: a quarter of --per-class)")
    parser.add_argument("--size", type=int, default=DEFAULT_SIZE,
                        help=f"image side in pixels (default {DEFAULT_SIZE})")
    parser.add_argument("--seed", type=int, default=0, help="dataset seed (default 0)")
    parser.add_argument("--difficulty", type=float, default=0.5,
                        help="0 (easy) .. 1 (hard): lesion size/contrast, noise, bias, pose")
    parser.add_argument("--workers", type=int, default=None,
                        help="processes used to render (default: automatic; same bytes)")
    parser.add_argument("--overwrite", action="store_true",
                        help="replace a non-empty directory that is not this exact dataset")


def run_cli(args: argparse.Namespace) -> int:
    """Write (or reuse) the dataset; print where and how many images."""
    out = Path(args.out).expanduser()
    try:
        params = _parameters(args.per_class, args.test_per_class, args.size, args.seed,
                             args.difficulty)
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    reused = _matches(out, params)
    start = time.perf_counter()
    try:
        write_dataset(out, **params, overwrite=args.overwrite, workers=args.workers)
    except (FileExistsError, NotADirectoryError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    elapsed = time.perf_counter() - start
    rows = [[c, params["per_class"], params["test_per_class"]] for c in CLASS_NAMES]
    rows.append(["total", params["per_class"] * len(CLASS_NAMES),
                 params["test_per_class"] * len(CLASS_NAMES)])
    if reused:
        print(f"{out} already holds this synthetic dataset ({MANIFEST_NAME} matches); reused it")
    else:
        print(f"wrote synthetic MRI dataset to {out} in {elapsed:.1f} s "
              f"({params['size']}x{params['size']} px, seed {params['seed']}, "
              f"difficulty {params['difficulty']:g})")
    print(format_table(rows, ["class", "Training", "Testing"]))
    print(f"tumour masks: {out / 'masks'}")
    return 0
