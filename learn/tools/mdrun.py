"""Run the Python blocks of a course page, in order, in one namespace (like a notebook).

Rules (documented for authors in ``learn/README.md``):

* Every fenced block whose info string starts with ``python`` runs, top to bottom, in one
  namespace per page (``__name__ == "__main__"``); other languages (``bash``, ``text``) never run.
* ```` ```python no-run ```` marks a block that is shown but not run. Keep it rare.
* A block directly after a ``<!-- include: path::Symbol -->`` line is real project code,
  checked equal to the source by :mod:`learn.tools.refs`; it is shown, not run.
* Before the first block: ``random``, NumPy's legacy global generator and -- when the page uses
  TensorFlow/Keras (it mentions ``tensorflow``, ``keras`` or a TF-backed ``neuropathology``
  module) -- TensorFlow are seeded with :data:`SEED`; matplotlib uses the Agg backend.
* NumPy's BLAS runs single-threaded (``threadpoolctl``): pages multiply small matrices, for
  which threads only add overhead, and one thread keeps timings stable on a shared CPU.
* The working directory is the page's directory, so a block may write ``figures/x.png`` next
  to the page. With ``isolated=True`` (what the tests use) it is instead an empty temporary
  folder holding only an empty ``figures/``: what a Colab notebook sees after its set-up cell.
  So the tests never rewrite files in the tree, and a page that reads a file of the repository
  (which a Colab user does not have) fails here first.

Errors name the page, the block number and the line *in the Markdown file*: each block is
compiled with the page's path as its file name and padded so that its line numbers are the
page's, so tracebacks point into the Markdown.

Command line::

    python -m learn.tools.mdrun [PAGE ...]     # default: every page; runs in place, so
                                               # figures the pages write are regenerated
"""

from __future__ import annotations

import argparse
import contextlib
import os
import random
import re
import sys
import tempfile
import time
import traceback
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from threadpoolctl import threadpool_limits

SEED = 0
FENCE = re.compile(r"^(?P<fence>`{3,}|~{3,})\s*(?P<info>[^`]*)$")
INCLUDE = re.compile(r"^<!--\s*include:\s*(?P<path>[^:\s]+)::(?P<symbol>[\w.]+)\s*-->\s*$")
USES_TF = re.compile(
    r"\b(tensorflow|keras)\b|neuropathology\.(models|training|predictor|explain|evaluation)"
)
#: Part D of every session must run in under this many seconds (a limit of the course).
PART_D_LIMIT_S = 60.0


@dataclass
class Block:
    """One fenced code block: its language, source and where it sits in the page."""

    index: int  # 1-based among the page's python blocks
    info: str  # the fence's info string, e.g. "python" or "python no-run"
    source: str
    first_line: int  # line number (1-based) of the block's first code line in the page
    include: tuple[str, str] | None = None  # (path, symbol) when preceded by an include marker

    @property
    def runs(self) -> bool:
        words = self.info.split()
        return "no-run" not in words[1:] and self.include is None


def _closes(line: str, fence: str) -> bool:
    mark = line.strip()
    return bool(mark) and set(mark) == {fence[0]} and len(mark) >= len(fence)


def code_blocks(text: str, language: str = "python") -> list[Block]:
    """The fenced blocks of ``language`` in a Markdown text, in order."""
    lines = text.splitlines()
    blocks: list[Block] = []
    i = 0
    while i < len(lines):
        m = FENCE.match(lines[i])
        if not m:
            i += 1
            continue
        fence, info = m.group("fence"), m.group("info").strip()
        j = i + 1
        while j < len(lines) and not _closes(lines[j], fence):
            j += 1
        if j == len(lines):
            raise ValueError(f"line {i + 1}: code fence {fence!r} is never closed")
        if info.split()[:1] == [language]:
            include = None
            if i > 0 and (inc := INCLUDE.match(lines[i - 1].strip())):
                include = (inc.group("path"), inc.group("symbol"))
            source = "\n".join(lines[i + 1:j]) + "\n"
            blocks.append(Block(len(blocks) + 1, info, source, i + 2, include))
        i = j + 1
    return blocks


class BlockError(AssertionError):
    """A block of a page raised; the message names page, block, Markdown line and traceback."""


@dataclass
class PageResult:
    path: Path
    seconds: float
    blocks_run: int
    blocks_skipped: int
    namespace: dict = field(default_factory=dict, repr=False)


def _seed(uses_tf: bool) -> None:
    random.seed(SEED)
    import numpy as np

    np.random.seed(SEED)  # noqa: NPY002 - pages may use the legacy global generator
    if uses_tf:
        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
        import keras

        keras.utils.set_random_seed(SEED)  # python, numpy and the TF/Keras generators


@contextlib.contextmanager
def _working_dir(path: Path) -> Iterator[None]:
    old = Path.cwd()
    os.chdir(path)
    try:
        yield
    finally:
        os.chdir(old)


def _format_error(page: Path, block: Block, exc: BaseException) -> str:
    frames = traceback.extract_tb(exc.__traceback__)
    # drop the runner's own frames: start at the first frame inside the page
    for k, frame in enumerate(frames):
        if frame.filename == str(page):
            frames = frames[k:]
            break
    page_lines = [f.lineno for f in frames if f.filename == str(page)]
    line = page_lines[-1] if page_lines else block.first_line
    tb = "".join(traceback.format_list(frames))
    detail = "".join(traceback.format_exception_only(type(exc), exc))
    return (f"{page}:{line}: python block {block.index} (starting at line {block.first_line}) "
            f"raised {type(exc).__name__}\nTraceback (most recent call last):\n{tb}{detail}")


def run_page(page: Path, *, isolated: bool = False) -> PageResult:
    """Run ``page``'s python blocks; raise :class:`BlockError` on the first failure."""
    page = Path(page).resolve()
    blocks = code_blocks(page.read_text(encoding="utf-8"))
    runnable = [b for b in blocks if b.runs]
    start = time.perf_counter()
    namespace: dict = {"__name__": "__main__"}  # no __file__: a notebook has none either
    if not runnable:
        return PageResult(page, 0.0, 0, len(blocks), namespace)

    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    _seed(any(USES_TF.search(b.source) for b in runnable))
    with contextlib.ExitStack() as stack:
        workdir = page.parent
        if isolated:
            workdir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="course-")))
            (workdir / "figures").mkdir()
        stack.enter_context(_working_dir(workdir))
        # One BLAS thread: the course multiplies small matrices, for which OpenBLAS threads
        # cost far more than they save on a busy 2-core machine (10x slower, measured).
        stack.enter_context(threadpool_limits(limits=1, user_api="blas"))
        try:
            for block in runnable:
                code = compile("\n" * (block.first_line - 1) + block.source, str(page), "exec")
                try:
                    exec(code, namespace)  # noqa: S102 - running the course is the point
                except Exception as exc:
                    raise BlockError(_format_error(page, block, exc)) from None
        finally:
            plt.close("all")
    return PageResult(page, time.perf_counter() - start, len(runnable),
                      len(blocks) - len(runnable), namespace)


def check_time_limit(result: PageResult) -> None:
    """Fail when a ``part_d_*.md`` page took longer than :data:`PART_D_LIMIT_S`."""
    if result.path.name.startswith("part_d_") and result.seconds > PART_D_LIMIT_S:
        raise AssertionError(
            f"{result.path}: took {result.seconds:.1f} s; a Part D must run in under "
            f"{PART_D_LIMIT_S:.0f} s on a 2-core CPU -- use less data or fewer epochs")


def report(results: list[PageResult], slowest: int = 5) -> str:
    """A short table: the slowest pages first, with blocks run/skipped."""
    rows = sorted(results, key=lambda r: -r.seconds)[:slowest]
    lines = [f"slowest course pages (of {len(results)}):"]
    for r in rows:
        lines.append(f"  {r.seconds:7.2f} s  {r.blocks_run:3d} run / {r.blocks_skipped} shown  "
                     f"{r.path}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    from learn.tools import course_pages

    parser = argparse.ArgumentParser(prog="python -m learn.tools.mdrun", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("pages", nargs="*", type=Path, help="Markdown pages (default: all)")
    parser.add_argument("--isolated", action="store_true",
                        help="run each page in an empty temporary folder, as Colab would "
                             "(writes nothing into the tree)")
    args = parser.parse_args(argv)
    pages = args.pages or course_pages()
    results, failed = [], 0
    for page in pages:
        try:
            result = run_page(page, isolated=args.isolated)
            check_time_limit(result)
        except AssertionError as exc:
            print(f"FAIL {exc}", file=sys.stderr)
            failed += 1
            continue
        results.append(result)
        print(f"ok   {result.seconds:7.2f} s  {page}")
    print(report(results))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
