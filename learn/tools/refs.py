"""Check (and with ``--fix`` update) the course's references into the project's code.

The one reference syntax is a Markdown link whose text names the file, the symbol and its
line range, and whose target is the same file relative to the page, anchored to those lines
(so it opens the right lines on GitHub)::

    [`src/neuropathology/training/trainer.py::compile_model` L270-L285](../../src/neuropathology/training/trainer.py#L270-L285)

``Symbol`` is a module-level function, class or assignment, or ``Class.method``. Its range is
what :mod:`ast` reports: from the first decorator (or the ``def``/``class``/target line) to the
last line of the body, docstring included.

A code block that claims to *be* the project's code carries a marker on the line just before
its fence; its body must equal the symbol's source (dedented for methods) exactly::

    <!-- include: src/neuropathology/training/trainer.py::compile_model -->
    ```python
    def compile_model(...):
    ...
    ```

Command line (from the repository root)::

    python -m learn.tools.refs            # report every stale reference; exit 1 if any
    python -m learn.tools.refs --fix      # rewrite line numbers and included code in place
"""

from __future__ import annotations

import argparse
import ast
import os
import re
import sys
import textwrap
from dataclasses import dataclass
from pathlib import Path

REF = re.compile(
    r"\[`(?P<path>[^`:\s]+)::(?P<symbol>[\w.]+)` L(?P<a>\d+)-L(?P<b>\d+)\]\((?P<target>[^)\s]+)\)"
)
INCLUDE = re.compile(r"^<!--\s*include:\s*(?P<path>[^:\s]+)::(?P<symbol>[\w.]+)\s*-->\s*$")


class SymbolNotFound(LookupError):
    pass


@dataclass(frozen=True)
class Problem:
    page: Path
    line: int
    message: str

    def __str__(self) -> str:
        return f"{self.page}:{self.line}: {self.message}"


def _node_range(node: ast.AST) -> tuple[int, int]:
    decorators = getattr(node, "decorator_list", [])
    start = min([node.lineno, *(d.lineno for d in decorators)])
    return start, node.end_lineno


def _names(node: ast.AST) -> list[str]:
    if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
        return [node.name]
    if isinstance(node, ast.Assign):
        return [t.id for t in node.targets if isinstance(t, ast.Name)]
    if isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
        return [node.target.id]
    return []


def symbol_range(source: str, symbol: str) -> tuple[int, int]:
    """``(first, last)`` line (1-based, inclusive) of ``symbol`` in a module's ``source``."""
    body = ast.parse(source).body
    node = None
    for part in symbol.split("."):
        node = next((n for n in body if part in _names(n)), None)
        if node is None:
            raise SymbolNotFound(symbol)
        body = getattr(node, "body", [])
    return _node_range(node)


def symbol_source(source: str, symbol: str) -> str:
    """The source text of ``symbol`` (its lines, dedented), ending with a newline."""
    a, b = symbol_range(source, symbol)
    return textwrap.dedent("\n".join(source.splitlines()[a - 1:b])) + "\n"


def expected_target(page: Path, root: Path, path: str, a: int, b: int) -> str:
    rel = os.path.relpath(root / path, page.parent).replace(os.sep, "/")
    return f"{rel}#L{a}-L{b}"


def _fence_end(lines: list[str], start: int) -> int:
    fence = lines[start].strip()
    fence = fence[: len(fence) - len(fence.lstrip(fence[0]))]
    for j in range(start + 1, len(lines)):
        mark = lines[j].strip()
        if mark and set(mark) == {fence[0]} and len(mark) >= len(fence):
            return j
    raise ValueError(f"line {start + 1}: code fence never closed")


def process(page: Path, root: Path, *, fix: bool = False) -> list[Problem]:
    """Problems of one page (after fixing what can be fixed when ``fix``)."""
    page = Path(page).resolve()
    text = page.read_text(encoding="utf-8")
    lines = text.splitlines(keepends=True)
    problems: list[Problem] = []
    sources: dict[str, str] = {}

    def load(path: str) -> str:
        if path not in sources:
            sources[path] = (root / path).read_text(encoding="utf-8")
        return sources[path]

    out: list[str] = []
    i = 0
    while i < len(lines):
        line = lines[i]
        inc = INCLUDE.match(line.strip())
        if inc and i + 1 < len(lines) and lines[i + 1].lstrip().startswith(("```", "~~~")):
            path, symbol = inc.group("path"), inc.group("symbol")
            end = _fence_end(lines, i + 1)
            shown = "".join(lines[i + 2:end])
            try:
                real = symbol_source(load(path), symbol)
            except (OSError, SymbolNotFound, SyntaxError) as exc:
                problems.append(Problem(page, i + 1, f"include {path}::{symbol}: {exc!r}"))
                out.extend(lines[i:end + 1])
                i = end + 1
                continue
            if shown != real:
                if fix:
                    shown = real
                else:
                    problems.append(Problem(page, i + 2, f"included code differs from "
                                            f"{path}::{symbol} (run --fix)"))
            out.extend([line, lines[i + 1], shown, lines[end]])
            i = end + 1
            continue

        def replace(m: re.Match[str], lineno: int = i + 1) -> str:
            path, symbol = m.group("path"), m.group("symbol")
            a, b = int(m.group("a")), int(m.group("b"))
            try:
                ra, rb = symbol_range(load(path), symbol)
            except (OSError, SymbolNotFound, SyntaxError) as exc:
                problems.append(Problem(page, lineno, f"{path}::{symbol}: cannot resolve "
                                        f"({type(exc).__name__}: {exc})"))
                return m.group(0)
            target = expected_target(page, root, path, ra, rb)
            if ((a, b) != (ra, rb) or m.group("target") != target) and not fix:
                what = (f"says L{a}-L{b}, is L{ra}-L{rb}" if (a, b) != (ra, rb)
                        else f"link target {m.group('target')!r} should be {target!r}")
                problems.append(Problem(page, lineno, f"{path}::{symbol} {what} (run --fix)"))
                return m.group(0)
            return f"[`{path}::{symbol}` L{ra}-L{rb}]({target})"

        out.append(REF.sub(replace, line))
        i += 1
    new = "".join(out)
    if fix and new != text:
        page.write_text(new, encoding="utf-8")
    return problems


def references(page: Path) -> list[tuple[str, str]]:
    """``(path, symbol)`` of every reference and include on a page (for tests and reports)."""
    text = Path(page).read_text(encoding="utf-8")
    found = [(m.group("path"), m.group("symbol")) for m in REF.finditer(text)]
    found += [(m.group("path"), m.group("symbol"))
              for m in map(INCLUDE.match, (ln.strip() for ln in text.splitlines())) if m]
    return found


def main(argv: list[str] | None = None) -> int:
    from learn.tools import REPO_ROOT, course_pages

    parser = argparse.ArgumentParser(prog="python -m learn.tools.refs", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("pages", nargs="*", type=Path, help="Markdown pages (default: all)")
    parser.add_argument("--fix", action="store_true", help="rewrite stale references in place")
    parser.add_argument("--root", type=Path, default=REPO_ROOT, help="repository root")
    args = parser.parse_args(argv)
    problems = []
    for page in args.pages or course_pages():
        problems += process(page, args.root.resolve(), fix=args.fix)
    for p in problems:
        print(p, file=sys.stderr)
    if not problems:
        print("references: all up to date" + (" (after --fix)" if args.fix else ""))
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
