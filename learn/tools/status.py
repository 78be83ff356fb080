"""Keep the session table of ``learn/README.md`` true to the files.

The table has one row per session; its second column links the session's folder (or names it
in backticks while the folder does not exist yet, so that GitHub shows no dead link), and the
columns ``A`` ... ``F`` say ``written`` or ``not yet``. A part is *written* when a file
``part_<letter>_*.md`` exists in the folder and is not blank. :func:`disagreements` compares
the table with the files; ``python -m learn.tools.status`` prints the differences (exit 1) and
``--fix`` rewrites the cells.
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

PARTS = "ABCDEF"
WRITTEN, NOT_YET = "written", "not yet"
ROW = re.compile(r"^\|\s*(?P<num>\d{2})\s*\|(?P<rest>.*)\|\s*$")
FOLDER = re.compile(r"(?:\]\(|`)(?P<folder>session\d{2}_\w+)/?(?:\)|`)")


def part_written(folder: Path, letter: str) -> bool:
    return any(p.read_text(encoding="utf-8").strip()
               for p in folder.glob(f"part_{letter.lower()}_*.md"))


def _parse(readme: Path) -> tuple[list[str], list[tuple[int, str, list[str]]]]:
    """Lines of the README and the table rows: (line index, folder, cells A..F)."""
    lines = readme.read_text(encoding="utf-8").splitlines()
    rows = []
    for k, line in enumerate(lines):
        m = ROW.match(line)
        if not m:
            continue
        cells = [c.strip() for c in m.group("rest").split("|")]
        folder = FOLDER.search(cells[0])
        if folder is None or len(cells) != 1 + len(PARTS):
            raise ValueError(f"{readme}:{k + 1}: a session row needs a folder link and "
                             f"{len(PARTS)} status cells: {line!r}")
        rows.append((k, folder.group("folder"), cells[1:]))
    if not rows:
        raise ValueError(f"{readme}: no session table found")
    return lines, rows


def disagreements(readme: Path) -> list[str]:
    """Every cell of the table that disagrees with the files (empty when the table is true)."""
    _, rows = _parse(readme)
    out = []
    for k, folder, cells in rows:
        for letter, cell in zip(PARTS, cells, strict=True):
            truth = WRITTEN if part_written(readme.parent / folder, letter) else NOT_YET
            if cell != truth:
                out.append(f"{readme}:{k + 1}: {folder} part {letter} says {cell!r}, "
                           f"the files say {truth!r}")
    return out


def fix(readme: Path) -> None:
    lines, rows = _parse(readme)
    for k, folder, _ in rows:
        first = lines[k].split("|")[1:3]
        cells = [WRITTEN if part_written(readme.parent / folder, x) else NOT_YET for x in PARTS]
        lines[k] = "|" + "|".join(first) + "| " + " | ".join(cells) + " |"
    readme.write_text("\n".join(lines) + "\n", encoding="utf-8")


def main(argv: list[str] | None = None) -> int:
    from learn.tools import LEARN_DIR

    parser = argparse.ArgumentParser(prog="python -m learn.tools.status", description=__doc__)
    parser.add_argument("--fix", action="store_true", help="rewrite the status cells")
    args = parser.parse_args(argv)
    readme = LEARN_DIR / "README.md"
    if args.fix:
        fix(readme)
    problems = disagreements(readme)
    for p in problems:
        print(p, file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
