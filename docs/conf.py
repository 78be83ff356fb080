"""Sphinx configuration: the course in ``learn/`` as a browsable site (myst-nb, furo, MathJax).

Build (from the repository root; ``pip install -e ".[docs]"``)::

    python -m sphinx -W --keep-going -b html docs docs/_build/html

Sphinx reads only files under its source folder (``docs/``), and the course must stay where the
outline puts it and read well on GitHub. So each build copies the course's pages and images
into ``docs/course/`` (generated, ignored by git) and the site is built from that copy. The
pages' links that point outside the course -- references into ``src/`` (Part E), folder links --
are rewritten to their GitHub addresses while Sphinx reads the page (``source-read``), so they
work on the site too and no warning is suppressed. Links between pages and relative images are
left alone: they resolve inside the copy.

The code blocks are not executed here (``nb_execution_mode = "off"``): the test suite runs
every block already (``tests/test_course.py``).
"""

from __future__ import annotations

import re
import shutil
import sys
from pathlib import Path

DOCS = Path(__file__).resolve().parent
ROOT = DOCS.parent
LEARN = ROOT / "learn"
COPY = DOCS / "course"
sys.path.insert(0, str(ROOT))

from learn.tools.notebooks import github_url, map_links  # noqa: E402

project = "neuropathology: the course"
author = "neuropathology-dl contributors"
copyright = "neuropathology-dl contributors, MIT licence"  # noqa: A001 - Sphinx's name

extensions = ["myst_nb"]
myst_enable_extensions = ["dollarmath", "amsmath"]
myst_heading_anchors = 3
nb_execution_mode = "off"
html_theme = "furo"
html_title = "neuropathology: the course"
exclude_patterns = ["_build", "Thumbs.db", ".DS_Store"]
# MathJax 3 (Sphinx's default math renderer for HTML) renders $...$ and $$...$$ via dollarmath.


def _sync_course() -> None:
    """Copy the pages and images of ``learn/`` into ``docs/course/`` (mtimes kept)."""
    wanted = {p.relative_to(LEARN) for p in LEARN.rglob("*")
              if p.is_file() and p.suffix in {".md", ".png", ".svg", ".jpg", ".gif"}
              and not {"tools", "notebooks"} & set(p.relative_to(LEARN).parts)}
    if COPY.exists():
        for old in COPY.rglob("*"):
            if old.is_file() and old.relative_to(COPY) not in wanted:
                old.unlink()
    for rel in sorted(wanted):
        src, dst = LEARN / rel, COPY / rel
        if not dst.exists() or dst.stat().st_mtime != src.stat().st_mtime \
                or dst.stat().st_size != src.stat().st_size:
            dst.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dst)


_sync_course()


def _github_links(app, docname: str, source: list[str]) -> None:
    """Point links that leave the course (``../../src/...``, folders) at GitHub."""
    if not docname.startswith("course/"):
        return
    page = LEARN / (docname.removeprefix("course/") + ".md")

    def target_of(target: str, image: bool) -> str:
        path = target.partition("#")[0]
        if image or not path or path.endswith(".md") or re.match(r"^[a-z][a-z0-9+.-]*:", path):
            return target  # pages and images resolve inside the copy; web addresses stay
        resolved = (page.parent / path).resolve()
        if resolved.is_file() and resolved.is_relative_to(LEARN):
            return target
        return github_url(target, page, LEARN, image=False)

    source[0] = map_links(source[0], target_of)


def setup(app):
    app.connect("source-read", _github_links)
    return {"parallel_read_safe": True}
