"""Export the course pages to Colab notebooks, and check that the committed notebooks are current.

Every page ``learn/<session>/part_*.md`` with at least one runnable ```` ```python ```` block
becomes ``learn/notebooks/<session>/<page>.ipynb``. The Markdown is the source; the notebook is a
build product that is committed so that Colab can open it from GitHub. Edit the page, then run
the exporter.

What the export does (decisions, documented in ``learn/README.md`` too):

* The cells are split with the same parser the test runner uses (:func:`mdrun.code_blocks`),
  so a notebook runs exactly the blocks the tests run. Every runnable block is a code cell; the
  prose between blocks is a markdown cell.
* A block the runner does not run (```` ```python no-run ````, or code included from ``src/``
  after an ``<!-- include: ... -->`` marker) stays *inside the markdown cell* as a fenced block,
  so "Run all" in Colab never runs it. Other languages (``bash``, ``text``) stay in markdown too.
* The first cell is markdown with the "Open in Colab" badge and a note that the notebook is
  generated; the second is a set-up code cell that, in Colab only, installs the project from
  GitHub, and then does what the runner does before a page: seeds ``random``, NumPy (and Keras
  when the page uses TensorFlow) with :data:`mdrun.SEED` and creates ``figures/``.
* Relative links and images in the prose (``../visualizations/...``, ``../../src/...``, other
  pages) become absolute GitHub addresses, since a notebook opened in Colab has no folder.
* No outputs, no execution counts, cell ids ``cell-000``, ``cell-001``, ... and fixed
  metadata: exporting twice gives identical bytes.
* The page itself carries the same badge on the line after its title (added or updated by the
  exporter, never by hand).

The repository the links point to is the single constant :data:`COLAB_REPO`.

Command line (from the repository root; needs ``jupytext``, in the ``docs`` and ``dev`` extras)::

    python -m learn.tools.notebooks           # write every notebook, update the pages' badges,
                                              # delete notebooks whose page is gone
    python -m learn.tools.notebooks --check   # change nothing; exit 1 naming every notebook
                                              # that is missing, stale or orphaned
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

from learn.tools import LEARN_DIR, course_pages, mdrun

#: The GitHub ``owner/name`` of this repository: Colab badges, the install cell and the links
#: of exported notebooks and of the Sphinx site all use it. Change it here, then run
#: ``python -m learn.tools.notebooks`` to re-export.
COLAB_REPO = "neuropathology-dl/neuropathology-dl"
BRANCH = "main"
NOTEBOOK_DIR = "notebooks"
BADGE_SVG = "https://colab.research.google.com/assets/colab-badge.svg"
BADGE = re.compile(r"^\[!\[Open in Colab\]\([^)]*\)\]\([^)]*\)\s*$")
LINK = re.compile(r"(?P<bang>!?)\[(?P<text>(?:[^\[\]]|\[[^\]]*\])*)\]\((?P<target>[^)\s]+)\)")
SCHEME = re.compile(r"^[a-zA-Z][a-zA-Z0-9+.-]*:")


def pip_spec(repo: str = COLAB_REPO) -> str:
    return f"neuropathology @ git+https://github.com/{repo}@{BRANCH}"


def exported_pages(learn_dir: Path = LEARN_DIR) -> list[Path]:
    """The pages that get a notebook: ``part_*.md`` with at least one runnable python block."""
    return [p for p in course_pages(learn_dir) if p.name.startswith("part_")
            and any(b.runs for b in mdrun.code_blocks(p.read_text(encoding="utf-8")))]


def notebook_path(page: Path, learn_dir: Path = LEARN_DIR) -> Path:
    rel = page.resolve().relative_to(learn_dir.resolve())
    return learn_dir / NOTEBOOK_DIR / rel.with_suffix(".ipynb")


def _repo_path(path: Path, learn_dir: Path) -> str:
    """``path`` relative to the repository root (the folder above ``learn/``), with ``/``."""
    return path.resolve().relative_to(learn_dir.resolve().parent).as_posix()


def colab_url(page: Path, learn_dir: Path = LEARN_DIR, repo: str = COLAB_REPO) -> str:
    nb = _repo_path(notebook_path(page, learn_dir), learn_dir)
    return f"https://colab.research.google.com/github/{repo}/blob/{BRANCH}/{nb}"


def badge_line(page: Path, learn_dir: Path = LEARN_DIR, repo: str = COLAB_REPO) -> str:
    return f"[![Open in Colab]({BADGE_SVG})]({colab_url(page, learn_dir, repo)})"


def github_url(target: str, page: Path, learn_dir: Path, *, image: bool,
               repo: str = COLAB_REPO) -> str:
    """The GitHub address of a link ``target`` relative to ``page`` (kept if not relative)."""
    if SCHEME.match(target) or target.startswith(("#", "/")):
        return target
    path, _, anchor = target.partition("#")
    resolved = (page.parent / path).resolve()
    try:
        rel = resolved.relative_to(learn_dir.resolve().parent).as_posix()
    except ValueError:  # points outside the repository: leave it alone
        return target
    if image:
        url = f"https://raw.githubusercontent.com/{repo}/{BRANCH}/{rel}"
    else:
        kind = "tree" if path.endswith("/") or resolved.is_dir() else "blob"
        url = f"https://github.com/{repo}/{kind}/{BRANCH}/{rel}"
    return url + (f"#{anchor}" if anchor else "")


CODE_SPAN = re.compile(r"(?<!`)(?P<ticks>`+)(?!`).+?(?<!`)(?P=ticks)(?!`)")


def map_links(markdown: str, target_of) -> str:
    """Replace the target of every Markdown link and image in ``markdown`` by
    ``target_of(target, image)``; links in fenced blocks and inside code spans (examples of the
    syntax) are left as they are. A linked image, ``[![alt](img)](target)``, maps both."""
    out, fence = [], None
    for line in markdown.split("\n"):
        m = mdrun.FENCE.match(line)
        if fence is None and m:
            fence = m.group("fence")
        elif fence is not None and mdrun._closes(line, fence):
            fence = None
        elif fence is None:
            code = [c.span() for c in CODE_SPAN.finditer(line)]

            def swap(m: re.Match, code=code) -> str:
                if any(a <= m.start() < b for a, b in code):
                    return m.group(0)
                text = LINK.sub(lambda inner: swap(inner, []), m.group("text"))
                target = target_of(m.group("target"), bool(m.group("bang")))
                return f"{m.group('bang')}[{text}]({target})"

            line = LINK.sub(swap, line)
        out.append(line)
    return "\n".join(out)


def _markdown_cell(lines: list[str], page: Path, learn_dir: Path, repo: str) -> str:
    def target_of(target: str, image: bool) -> str:
        return github_url(target, page, learn_dir, image=image, repo=repo)

    return map_links("\n".join(lines), target_of).strip("\n")


def _setup_cell(uses_tf: bool, repo: str) -> str:
    lines = [
        "# Set-up. In Colab this installs the project from GitHub (a minute or two); elsewhere",
        "# it assumes `pip install -e .` in a checkout. Then it seeds the random generators",
        "# as the course's test runner does, so the numbers the text asserts come out the same.",
        "import os",
        "import random",
        "import sys",
        "",
        'if "google.colab" in sys.modules:',
        "    import subprocess",
        "",
        f'    project = "{pip_spec(repo)}"',
        '    subprocess.run([sys.executable, "-m", "pip", "install", "-q", project], check=True)',
        "",
        *(["import keras"] if uses_tf else []),
        "import numpy as np",
        "",
        'os.makedirs("figures", exist_ok=True)  # the page saves its figures next to itself',
        f"random.seed({mdrun.SEED})",
        f"np.random.seed({mdrun.SEED})  # noqa: NPY002 - the page may use the global generator",
    ]
    if uses_tf:
        lines.append(f"keras.utils.set_random_seed({mdrun.SEED})  # python, numpy and TensorFlow")
    return "\n".join(lines)


def page_cells(page: Path, learn_dir: Path = LEARN_DIR,
               repo: str = COLAB_REPO) -> list[tuple[str, str]]:
    """The notebook's cells for ``page`` as ``(cell_type, source)`` pairs."""
    text = page.read_text(encoding="utf-8")
    lines = []
    for line in text.splitlines():  # as mdrun.code_blocks splits, so block lines match
        if BADGE.match(line):
            lines.append(None)  # drop the badge and the blank line after it
        elif not (lines and lines[-1] is None and not line.strip()):
            lines.append(line)
    lines = [ln for ln in lines if ln is not None]
    body = "\n".join(lines) + "\n"
    blocks = mdrun.code_blocks(body)
    runnable = [b for b in blocks if b.runs]
    rel = _repo_path(page, learn_dir)
    cells = [
        ("markdown", f"{badge_line(page, learn_dir, repo)}\n\n"
                     f"*This notebook is generated from [`{rel}`]"
                     f"(https://github.com/{repo}/blob/{BRANCH}/{rel}) by "
                     "`python -m learn.tools.notebooks`: edit the Markdown page, not the "
                     "notebook. Run the set-up cell first.*"),
        ("code", _setup_cell(any(mdrun.USES_TF.search(b.source) for b in runnable), repo)),
    ]
    start = 0  # index into ``lines`` of the first line not yet placed in a cell
    for block in runnable:
        fence = block.first_line - 2  # 0-based index of the opening fence
        end = fence + 1 + len(block.source.splitlines())  # index of the closing fence
        prose = _markdown_cell(lines[start:fence], page, learn_dir, repo)
        if prose:
            cells.append(("markdown", prose))
        cells.append(("code", block.source.rstrip("\n")))
        start = end + 1
    prose = _markdown_cell(lines[start:], page, learn_dir, repo)
    if prose:
        cells.append(("markdown", prose))
    return cells


def notebook_text(page: Path, learn_dir: Path = LEARN_DIR, repo: str = COLAB_REPO) -> str:
    """The exact bytes (as text) of ``page``'s notebook: no outputs, stable ids and metadata."""
    import jupytext
    import nbformat

    cells = []
    for k, (kind, source) in enumerate(page_cells(page, learn_dir, repo)):
        make = nbformat.v4.new_code_cell if kind == "code" else nbformat.v4.new_markdown_cell
        cells.append(make(source=source, id=f"cell-{k:03d}"))
    nb = nbformat.v4.new_notebook(cells=cells, metadata={
        "colab": {"provenance": []},
        "kernelspec": {"display_name": "Python 3", "language": "python", "name": "python3"},
        "language_info": {"name": "python"},
    })
    nb.nbformat, nb.nbformat_minor = 4, 5
    return jupytext.writes(nb, fmt="ipynb")


def page_with_badge(page: Path, learn_dir: Path = LEARN_DIR, repo: str = COLAB_REPO) -> str:
    """``page``'s text with exactly one badge line, right after the title (line 1) and a blank."""
    # split on "\n" only: the rest of the page is kept byte for byte (str.splitlines would
    # also split on form feeds and other separators that a page may contain by accident)
    lines = page.read_text(encoding="utf-8").split("\n")
    lines = [ln for ln in lines if not BADGE.match(ln)]
    head, rest = lines[:1], lines[1:]
    while len(rest) > 1 and not rest[0].strip():
        rest = rest[1:]
    return "\n".join([*head, "", badge_line(page, learn_dir, repo), "", *rest])


def problems(learn_dir: Path = LEARN_DIR, repo: str = COLAB_REPO) -> list[str]:
    """Every notebook that is missing, stale or orphaned, and every page whose badge is wrong."""
    out = []
    pages = exported_pages(learn_dir)
    wanted = {notebook_path(p, learn_dir).resolve(): p for p in pages}
    for nb, page in wanted.items():
        if not nb.is_file():
            out.append(f"{nb}: missing (exported from {page})")
        elif nb.read_text(encoding="utf-8") != notebook_text(page, learn_dir, repo):
            out.append(f"{nb}: stale, out of sync with {page}")
        if page.read_text(encoding="utf-8") != page_with_badge(page, learn_dir, repo):
            out.append(f"{page}: its 'Open in Colab' line (after the title) is missing or wrong")
    for nb in sorted((learn_dir / NOTEBOOK_DIR).rglob("*.ipynb")):
        if ".ipynb_checkpoints" not in nb.parts and nb.resolve() not in wanted:
            out.append(f"{nb}: orphaned, no course page with code exports to it")
    return out


def export(learn_dir: Path = LEARN_DIR, repo: str = COLAB_REPO) -> list[Path]:
    """Write every notebook and badge; delete orphaned notebooks. Returns the files changed."""
    changed = []
    pages = exported_pages(learn_dir)
    wanted = set()
    for page in pages:
        text = page_with_badge(page, learn_dir, repo)
        if page.read_text(encoding="utf-8") != text:
            page.write_text(text, encoding="utf-8")
            changed.append(page)
        nb = notebook_path(page, learn_dir)
        wanted.add(nb.resolve())
        text = notebook_text(page, learn_dir, repo)
        if not nb.is_file() or nb.read_text(encoding="utf-8") != text:
            nb.parent.mkdir(parents=True, exist_ok=True)
            nb.write_text(text, encoding="utf-8")
            changed.append(nb)
    for nb in sorted((learn_dir / NOTEBOOK_DIR).rglob("*.ipynb")):
        if ".ipynb_checkpoints" not in nb.parts and nb.resolve() not in wanted:
            nb.unlink()
            changed.append(nb)
    return changed


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m learn.tools.notebooks", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--check", action="store_true",
                        help="change nothing; exit 1 if a notebook or badge is out of sync")
    args = parser.parse_args(argv)
    if args.check:
        found = problems()
        for p in found:
            print(p, file=sys.stderr)
        if found:
            print("(python -m learn.tools.notebooks re-exports them)", file=sys.stderr)
            return 1
        print(f"notebooks: {len(exported_pages())} in sync with their pages")
        return 0
    for path in export():
        print(f"wrote {path}" if path.exists() else f"deleted {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
