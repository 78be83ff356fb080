"""The course under ``learn/`` as tests: every page runs, references, figures and status are true.

``python -m pytest tests/test_course.py`` runs the whole course (one test per page) and prints
the slowest pages at the end. The machinery lives in ``learn/tools`` and is tested here too,
on small temporary pages, so that each check is seen to fail when it should.
"""

from __future__ import annotations

import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from learn.tools import LEARN_DIR, course_pages, mdrun, refs, status  # noqa: E402
from learn.tools import figures as figs  # noqa: E402

PAGES = course_pages()


# --------------------------------------------------------------------------- the course itself


@pytest.mark.parametrize("page", PAGES, ids=[str(p.relative_to(LEARN_DIR)) for p in PAGES])
def test_page_runs(page: Path, record_property) -> None:
    result = mdrun.run_page(page, isolated=True)
    # read back by conftest.pytest_terminal_summary (works under pytest-xdist too)
    record_property("course_page", (str(result.path), result.seconds, result.blocks_run,
                                    result.blocks_skipped))
    mdrun.check_time_limit(result)


def test_references_are_current() -> None:
    problems = [p for page in PAGES for p in refs.process(page, ROOT)]
    assert not problems, "stale references (python -m learn.tools.refs --fix):\n" + "\n".join(
        map(str, problems))


def test_referenced_images_exist() -> None:
    missing = [f"{page}: {ref}" for page in PAGES for ref in figs.missing_images(page)]
    assert not missing, "missing images:\n" + "\n".join(missing)


@pytest.mark.parametrize("script", figs.scripts(LEARN_DIR), ids=lambda p: p.name)
def test_figure_script_runs(script: Path, tmp_path: Path) -> None:
    proc = subprocess.run([sys.executable, str(script), "--out", str(tmp_path)],
                          capture_output=True, text=True, timeout=300,
                          env={**_env(), "MPLBACKEND": "Agg"})
    assert proc.returncode == 0, proc.stderr
    session = script.stem.removeprefix("generate_")
    committed = {p.name for p in (LEARN_DIR / "visualizations" / "figures").glob(f"{session}_*")}
    written = {p.name for p in tmp_path.iterdir()}
    assert committed, f"{script.name}: no committed figures named {session}_*"
    assert committed <= written, f"{script.name} no longer writes {sorted(committed - written)}"


def test_status_table_is_true() -> None:
    problems = status.disagreements(LEARN_DIR / "README.md")
    assert not problems, "\n".join(problems) + "\n(python -m learn.tools.status --fix)"


def _env() -> dict[str, str]:
    import os

    return {**os.environ, "PYTHONPATH": str(ROOT)}


# --------------------------------------------------------------------------- the runner


def _page(tmp_path: Path, body: str, name: str = "page.md") -> Path:
    page = tmp_path / name
    page.write_text(textwrap.dedent(body), encoding="utf-8")
    return page


def test_runner_shares_namespace_skips_marked_blocks_and_uses_page_dir(tmp_path: Path) -> None:
    page = _page(tmp_path, """\
        # A page
        ```python
        x = 2
        ```
        Text, then a block that must not run:
        ```python no-run
        raise SystemExit("must not run")
        ```
        ```bash
        exit 1
        ```
        ```python
        import pathlib
        y = x * 21
        pathlib.Path("figures").mkdir(exist_ok=True)
        pathlib.Path("figures/out.txt").write_text(str(y))
        ```
        """)
    result = mdrun.run_page(page)
    assert result.namespace["y"] == 42
    assert (result.blocks_run, result.blocks_skipped) == (2, 1)
    assert (tmp_path / "figures" / "out.txt").read_text() == "42"


def test_isolated_run_sees_only_an_empty_figures_folder_like_colab(tmp_path: Path) -> None:
    page = _page(tmp_path, """\
        ```python
        import os
        seen = sorted(os.listdir("."))
        open("figures/made.png", "w").write("x")
        ```
        """)
    (tmp_path / "data.txt").write_text("only in the repository", encoding="utf-8")
    result = mdrun.run_page(page, isolated=True)
    assert result.namespace["seen"] == ["figures"]
    assert not (tmp_path / "figures" / "made.png").exists()  # the tree is left alone

    reader = _page(tmp_path, """\
        ```python
        open("data.txt").read()
        ```
        """, name="reader.md")
    mdrun.run_page(reader)  # in place it can read the file next to it ...
    with pytest.raises(mdrun.BlockError, match="FileNotFoundError"):
        mdrun.run_page(reader, isolated=True)  # ... in Colab (isolated) it could not


@pytest.mark.parametrize("page", PAGES, ids=[str(p.relative_to(LEARN_DIR)) for p in PAGES])
def test_pages_do_not_import_the_course_tools(page: Path) -> None:
    """Colab installs the package ``neuropathology`` only; ``learn`` is not installed there."""
    bad = [b.first_line for b in mdrun.code_blocks(page.read_text(encoding="utf-8"))
           if b.runs and re.search(r"^\s*(from|import)\s+learn\b", b.source, re.M)]
    assert not bad, f"{page}: blocks at lines {bad} import learn, which Colab does not have"


def test_runner_reports_page_block_and_markdown_line(tmp_path: Path) -> None:
    page = _page(tmp_path, """\
        Intro.

        ```python
        a = 1
        ```

        ```python
        b = a + 1
        c = undefined_name
        ```
        """)
    with pytest.raises(mdrun.BlockError) as info:
        mdrun.run_page(page)
    message = str(info.value)
    assert f"{page.resolve()}:9: python block 2" in message
    assert "NameError" in message and "undefined_name" in message


def test_runner_seeds_numpy_identically(tmp_path: Path) -> None:
    page = _page(tmp_path, """\
        ```python
        import numpy as np
        draw = np.random.rand(3)
        ```
        """)
    first = mdrun.run_page(page).namespace["draw"]
    second = mdrun.run_page(page).namespace["draw"]
    assert (first == second).all()


def test_page_without_python_blocks_passes(tmp_path: Path) -> None:
    page = _page(tmp_path, "# Only prose\n\n```text\nnot code\n```\n")
    assert mdrun.run_page(page).blocks_run == 0


def test_part_d_time_limit_is_enforced(tmp_path: Path) -> None:
    slow = mdrun.PageResult(tmp_path / "part_d_code_implementation.md", 61.0, 1, 0)
    with pytest.raises(AssertionError, match="under 60 s"):
        mdrun.check_time_limit(slow)
    mdrun.check_time_limit(mdrun.PageResult(tmp_path / "part_a_x.md", 120.0, 1, 0))
    mdrun.check_time_limit(mdrun.PageResult(tmp_path / "part_d_x.md", 59.0, 1, 0))


def test_unclosed_fence_is_an_error() -> None:
    with pytest.raises(ValueError, match="never closed"):
        mdrun.code_blocks("```python\nx = 1\n")


# --------------------------------------------------------------------------- the reference checker

_MODULE = '''\
"""A module."""

LIMIT = 3


@decorator
def f(x):
    """Doc."""
    return x


class K:
    def m(self):
        return 1
'''


def _project(tmp_path: Path) -> tuple[Path, Path]:
    (tmp_path / "pkg").mkdir()
    (tmp_path / "pkg" / "mod.py").write_text(_MODULE, encoding="utf-8")
    session = tmp_path / "learn" / "session"
    session.mkdir(parents=True)
    page = session / "part_e.md"
    page.write_text(textwrap.dedent("""\
        See [`pkg/mod.py::f` L6-L9](../../pkg/mod.py#L6-L9), [`pkg/mod.py::K.m` L13-L14](../../pkg/mod.py#L13-L14)
        and [`pkg/mod.py::LIMIT` L3-L3](../../pkg/mod.py#L3-L3).

        <!-- include: pkg/mod.py::f -->
        ```python
        @decorator
        def f(x):
            \"\"\"Doc.\"\"\"
            return x
        ```
        """), encoding="utf-8")
    return tmp_path, page


def test_symbol_ranges_include_decorators_and_docstrings() -> None:
    assert refs.symbol_range(_MODULE, "f") == (6, 9)
    assert refs.symbol_range(_MODULE, "K") == (12, 14)
    assert refs.symbol_range(_MODULE, "K.m") == (13, 14)
    assert refs.symbol_range(_MODULE, "LIMIT") == (3, 3)
    assert refs.symbol_source(_MODULE, "K.m") == "def m(self):\n    return 1\n"
    with pytest.raises(refs.SymbolNotFound):
        refs.symbol_range(_MODULE, "K.missing")


def test_checker_fails_when_code_moves_and_fix_repairs(tmp_path: Path) -> None:
    root, page = _project(tmp_path)
    assert refs.process(page, root) == []
    mod = root / "pkg" / "mod.py"
    moved = _MODULE.replace('"""A module."""\n', '"""A module."""\n\nimport os\n')
    moved = moved.replace('    """Doc."""', '    """Doc, now longer."""')
    mod.write_text(moved, encoding="utf-8")

    problems = refs.process(page, root)
    messages = "\n".join(map(str, problems))
    assert "pkg/mod.py::f says L6-L9, is L8-L11" in messages
    assert "pkg/mod.py::K.m says L13-L14, is L15-L16" in messages
    assert "pkg/mod.py::LIMIT says L3-L3, is L5-L5" in messages
    assert "included code differs from pkg/mod.py::f" in messages

    assert refs.process(page, root, fix=True) == []
    text = page.read_text(encoding="utf-8")
    assert "[`pkg/mod.py::f` L8-L11](../../pkg/mod.py#L8-L11)" in text
    assert '"""Doc, now longer."""' in text
    assert refs.process(page, root) == []


def test_checker_fails_on_a_wrong_link_target_and_a_missing_symbol(tmp_path: Path) -> None:
    root, page = _project(tmp_path)
    text = page.read_text(encoding="utf-8")
    page.write_text(text.replace("](../../pkg/mod.py#L6-L9)", "](../pkg/mod.py#L6-L9)")
                    + "\n[`pkg/mod.py::gone` L1-L2](../../pkg/mod.py#L1-L2)\n", encoding="utf-8")
    messages = "\n".join(map(str, refs.process(page, root)))
    assert "link target '../pkg/mod.py#L6-L9' should be '../../pkg/mod.py#L6-L9'" in messages
    assert "pkg/mod.py::gone: cannot resolve" in messages


def test_refs_cli_runs() -> None:
    proc = subprocess.run([sys.executable, "-m", "learn.tools.refs"], cwd=ROOT, env=_env(),
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr


# --------------------------------------------------------------------------- figures and status


def test_missing_image_is_reported(tmp_path: Path) -> None:
    (tmp_path / "figures").mkdir()
    (tmp_path / "figures" / "here.png").write_bytes(b"png")
    page = _page(tmp_path, '![a](figures/here.png) ![b](figures/gone.png) '
                           '<img src="figures/gone2.png"> ![web](https://example.org/x.png)\n')
    assert figs.missing_images(page) == ["figures/gone.png", "figures/gone2.png"]


def test_status_checker_compares_table_with_files(tmp_path: Path) -> None:
    session = tmp_path / "session01_x"
    session.mkdir()
    (session / "part_a_intro.md").write_text("# Written\n", encoding="utf-8")
    (session / "part_b_theory.md").write_text("  \n", encoding="utf-8")  # blank: not written
    readme = tmp_path / "README.md"
    header = "| Session | Topic | A | B | C | D | E | F |\n|---|---|---|---|---|---|---|---|\n"
    readme.write_text(header + "| 01 | [X](session01_x/) | written | written | not yet | not yet "
                      "| not yet | not yet |\n", encoding="utf-8")
    problems = status.disagreements(readme)
    assert len(problems) == 1 and "part B says 'written', the files say 'not yet'" in problems[0]
    status.fix(readme)
    assert status.disagreements(readme) == []
