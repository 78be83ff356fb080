"""Figures: every image a page references exists; every figure script runs.

Images are referenced by a path relative to the page (``![alt](figures/x.png)`` or
``<img src="...">``); web addresses are ignored. Two kinds of figures exist:

* made by a page itself (a Part D block saves ``figures/...png`` next to the page);
* made by ``learn/visualizations/generate_sessionNN.py``, one script per session, which writes
  into ``learn/visualizations/figures/`` by default or into ``--out DIR``.

The tests run each script into a temporary ``--out`` folder (so the tree is never modified)
and require that it writes every figure the committed ``figures/`` folder holds for that
session (file names start with ``sessionNN_``). Regenerate the committed figures with
``python learn/visualizations/generate_session01.py``.

Command line: ``python -m learn.tools.figures`` lists missing images (exit 1 if any).
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

IMAGE = re.compile(r"!\[[^\]]*\]\((?P<md>[^)\s]+)(?:\s+\"[^\"]*\")?\)|<img\s[^>]*src=\"(?P<html>[^\"]+)\"")


def image_refs(page: Path) -> list[str]:
    """Relative image paths referenced by ``page`` (web addresses left out)."""
    text = Path(page).read_text(encoding="utf-8")
    refs = [m.group("md") or m.group("html") for m in IMAGE.finditer(text)]
    return [r for r in refs if not re.match(r"^[a-z]+://", r) and not r.startswith("data:")]


def missing_images(page: Path) -> list[str]:
    page = Path(page)
    return [r for r in image_refs(page) if not (page.parent / r.split("#")[0]).is_file()]


def scripts(learn_dir: Path) -> list[Path]:
    return sorted((learn_dir / "visualizations").glob("generate_session*.py"))


def main() -> int:
    from learn.tools import course_pages

    bad = [(p, r) for p in course_pages() for r in missing_images(p)]
    for page, ref in bad:
        print(f"{page}: missing image {ref}", file=sys.stderr)
    if not bad:
        print("figures: every referenced image exists")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
