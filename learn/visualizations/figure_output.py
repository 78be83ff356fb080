"""What every ``generate_sessionNN.py`` shares: the command line and the PNG writer.

The scripts run as ``python learn/visualizations/generate_sessionNN.py [--out DIR]``, so this
module is imported as a sibling (``from figure_output import ...``): the script's folder is the
first entry of ``sys.path``.
"""

from __future__ import annotations

import argparse
import io
from collections.abc import Callable, Sequence
from pathlib import Path

import matplotlib.pyplot as plt
from PIL import Image
from threadpoolctl import threadpool_limits

FIGURES_DIR = Path(__file__).resolve().parent / "figures"


def save_png(fig: plt.Figure, path: Path, *, dpi: int = 90, quantize: bool = True,
             palette: Sequence[tuple[int, int, int]] | None = None, tight: bool = False) -> Path:
    """Save ``fig`` as a PNG and close it; return ``path``.

    With ``quantize`` (the default) the PNG is a palette image: without ``palette`` its 256
    colours are chosen adaptively, which loses nothing visible in line art and keeps files
    small; figures with noisy MRI panels pass a fixed ``palette`` (a ramp of greys plus the few
    colours drawn on top), since an adaptive one spends its entries on the noise and the file
    grows. ``quantize=False`` writes matplotlib's full-colour PNG. ``tight`` crops the figure to
    its drawn content (matplotlib's ``bbox_inches="tight"``).
    """
    buffer = io.BytesIO()
    fig.savefig(buffer, dpi=dpi, bbox_inches="tight" if tight else None)
    plt.close(fig)
    if not quantize:
        path.write_bytes(buffer.getvalue())
        return path
    buffer.seek(0)
    with Image.open(buffer) as image:
        rgb = image.convert("RGB")
        if palette is None:
            rgb.quantize(256).save(path, optimize=True)
        else:
            fixed = Image.new("P", (1, 1))
            fixed.putpalette([c for colour in palette for c in colour]
                             + [0] * 3 * (256 - len(palette)))
            rgb.quantize(palette=fixed, dither=Image.Dither.NONE).save(path, optimize=True)
    return path


def run(figures: Sequence[Callable[[Path], Path]], description: str | None,
        argv: list[str] | None = None, *, blas_threads: int | None = None) -> None:
    """The scripts' command line: draw every figure into ``--out`` (default ``figures/``).

    ``blas_threads=1`` runs NumPy's BLAS single-threaded, as the course's pages run, for scripts
    whose figures must repeat a page's numbers to the last bit.
    """
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--out", type=Path, default=FIGURES_DIR)
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    with threadpool_limits(limits=blas_threads, user_api="blas"):
        for make in figures:
            print(make(args.out))
