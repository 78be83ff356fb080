"""Machinery that keeps the course honest; each module is also a command-line tool.

* :mod:`learn.tools.mdrun` -- run every ```python block of a page, in order, in one namespace.
* :mod:`learn.tools.refs` -- check (``--fix``: update) the references into ``src/``.
* :mod:`learn.tools.figures` -- every referenced image exists; figure scripts run.
* :mod:`learn.tools.status` -- the status table of ``learn/README.md`` matches the files.
* :mod:`learn.tools.notebooks` -- export the pages to Colab notebooks (``--check``: in sync).

``tests/test_course.py`` and ``tests/test_course_notebooks.py`` turn them into pytest tests. Run from the repository root, e.g.
``python -m learn.tools.refs --fix``.
"""

from pathlib import Path

#: ``learn/``
LEARN_DIR = Path(__file__).resolve().parents[1]
#: the repository root (the folder holding ``learn/`` and ``src/``)
REPO_ROOT = LEARN_DIR.parent


def course_pages(learn_dir: Path = LEARN_DIR) -> list[Path]:
    """Every Markdown page of the course (``learn/**/*.md``), sorted."""
    return sorted(p for p in learn_dir.rglob("*.md") if "tools" not in p.relative_to(learn_dir).parts)
