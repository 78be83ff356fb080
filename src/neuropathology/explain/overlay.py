"""Rendering explanation maps on the original image.

A map is computed on the model's S x S input; :func:`map_to_image` takes it back to the
original H x W image (undoing the aspect-preserving padding when the run used
``pad_to_square``) by bilinear interpolation, so the overlay is drawn at full resolution.
:func:`render_overlay` then blends a colormap of the map with the image,
out = (1 - a) * image + a * colormap(map) where the map is above ``min_value`` (a is the
opacity), and can outline the region map >= ``threshold`` with a contour.
"""

from __future__ import annotations

import os
from collections.abc import Sequence

import matplotlib
import numpy as np
from PIL import Image
from scipy import ndimage

from neuropathology.explain.graph import ExplainError
from neuropathology.utils.helpers import atomic_path

__all__ = ["map_to_image", "render_overlay", "save_gallery", "save_image", "to_rgb_uint8"]


def to_rgb_uint8(image: np.ndarray) -> np.ndarray:
    """Greyscale (H, W) / (H, W, 1) or RGB(A) image -> uint8 (H, W, 3) (floats: 0-255 scale)."""
    image = np.asarray(image)
    if image.dtype != np.uint8:
        image = np.clip(np.rint(image), 0, 255).astype(np.uint8)
    if image.ndim == 2:
        image = image[..., None]
    if image.ndim != 3 or image.shape[-1] not in (1, 3, 4):
        raise ExplainError(f"expected an image (H, W), (H, W, 1|3|4), got shape {image.shape}")
    if image.shape[-1] == 1:
        image = np.repeat(image, 3, axis=-1)
    return np.ascontiguousarray(image[..., :3])


def map_to_image(heatmap: np.ndarray, shape: Sequence[int], *, pad_to_square: bool = False
                 ) -> np.ndarray:
    """An (S, S) map of the model input -> float32 (H, W) aligned with the original image.

    With ``pad_to_square`` the image was scaled so its longer side is S and centred on black
    bars (``data_loader.resize_image``); the bars are cropped off before resizing.
    """
    heatmap = np.asarray(heatmap, np.float32)
    if heatmap.ndim != 2:
        raise ExplainError(f"expected one 2-D map, got shape {heatmap.shape}")
    h, w = int(shape[0]), int(shape[1])
    if pad_to_square:
        size = heatmap.shape[0]
        scale = size / max(h, w)
        new_w, new_h = max(1, round(w * scale)), max(1, round(h * scale))
        top, left = (size - new_h) // 2, (size - new_w) // 2
        heatmap = heatmap[top:top + new_h, left:left + new_w]
    if heatmap.shape == (h, w):
        return heatmap.copy()
    return np.asarray(Image.fromarray(heatmap, mode="F").resize((w, h), Image.Resampling.BILINEAR),
                      np.float32)


def render_overlay(image: np.ndarray, heatmap: np.ndarray, *, colormap: str = "jet",
                   opacity: float = 0.45, threshold: float | None = 0.5,
                   min_value: float = 0.0, contour_color: Sequence[int] = (255, 255, 255),
                   contour_width: int | None = None, pad_to_square: bool = False) -> np.ndarray:
    """Blend ``colormap(heatmap)`` onto ``image`` at its own resolution; uint8 (H, W, 3).

    ``heatmap``: a [0, 1] map on the model input (S, S) or already (H, W). ``opacity`` a in
    [0, 1]. Pixels with map < ``min_value`` are left untinted. ``threshold``: outline the
    region map >= threshold with a contour of ``contour_color`` (None: no contour);
    ``contour_width`` defaults to ~1/200 of the image side (at least 1 pixel).
    """
    if not 0.0 <= opacity <= 1.0:
        raise ExplainError(f"opacity must be in [0, 1], got {opacity}")
    rgb = to_rgb_uint8(image)
    h, w = rgb.shape[:2]
    heat = np.clip(map_to_image(heatmap, (h, w), pad_to_square=pad_to_square), 0.0, 1.0)
    try:
        cmap = matplotlib.colormaps[colormap]
    except KeyError as exc:
        raise ExplainError(f"unknown colormap {colormap!r}; use a matplotlib name such as "
                           "jet, inferno, viridis, turbo") from exc
    colour = cmap(heat)[..., :3] * 255.0
    weight = np.where(heat >= min_value, opacity, 0.0)[..., None]
    out = (1.0 - weight) * rgb + weight * colour
    if threshold is not None:
        region = heat >= threshold
        width = contour_width or max(1, round(max(h, w) / 200))
        edge = region & ~ndimage.binary_erosion(region, iterations=1, border_value=0)
        if width > 1:
            edge = ndimage.binary_dilation(edge, iterations=width - 1)
        out[edge] = np.asarray(contour_color, np.float64)
    return np.clip(np.rint(out), 0, 255).astype(np.uint8)


def save_image(path: str | os.PathLike[str], image: np.ndarray) -> None:
    """Write a uint8 image atomically (format from the suffix: .png, .jpg, ...)."""
    target = os.fspath(path)
    with atomic_path(target) as tmp:
        Image.fromarray(to_rgb_uint8(image)).save(tmp, format=_format(target))


def _format(path: str) -> str:
    suffix = os.path.splitext(path)[1].lower().lstrip(".")
    formats = {"png": "PNG", "jpg": "JPEG", "jpeg": "JPEG", "bmp": "BMP", "tif": "TIFF",
               "tiff": "TIFF"}
    if suffix not in formats:
        raise ExplainError(f"cannot write {path!r}: use a .png, .jpg, .bmp or .tif file name")
    return formats[suffix]


def save_gallery(path: str | os.PathLike[str], panels: Sequence[np.ndarray],
                 titles: Sequence[str], *, columns: int = 6) -> None:
    """Save overlays as a grid figure with one title per panel (PNG, atomic)."""
    import matplotlib.pyplot as plt

    if not panels:
        raise ExplainError("nothing to put in the gallery: no images were explained")
    cols = min(columns, len(panels))
    rows = -(-len(panels) // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(2.4 * cols, 2.6 * rows), squeeze=False)
    for ax in axes.ravel():
        ax.axis("off")
    for ax, panel, title in zip(axes.ravel(), panels, titles, strict=False):
        ax.imshow(panel)
        ax.set_title(title, fontsize=7)
    fig.tight_layout()
    target = os.fspath(path)
    with atomic_path(target) as tmp:
        fig.savefig(tmp, dpi=110, format="png")
    plt.close(fig)
