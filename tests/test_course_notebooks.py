"""The Colab notebooks in ``learn/notebooks/`` are exactly what the exporter makes of the pages.

``python -m learn.tools.notebooks --check`` is the CI check; these tests run it on the real
course and show, on a temporary copy, that it fails on a stale, missing or orphaned notebook.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from learn.tools import LEARN_DIR, mdrun  # noqa: E402
from learn.tools import notebooks as nbs  # noqa: E402


def test_committed_notebooks_are_in_sync() -> None:
    problems = nbs.problems()
    assert not problems, "\n".join(problems) + "\n(python -m learn.tools.notebooks)"
    assert nbs.exported_pages(), "no course page exports to a notebook"


def test_check_cli_passes_on_the_course() -> None:
    proc = subprocess.run([sys.executable, "-m", "learn.tools.notebooks", "--check"], cwd=ROOT,
                          env={"PYTHONPATH": str(ROOT), **_env()}, capture_output=True,
                          text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr


def _env() -> dict[str, str]:
    import os

    return dict(os.environ)


PAGE = """\
    # A page

    Prose with an image ![fig](figures/a.png), a [sibling](other.md) and code
    [`src/pkg/mod.py::f` L1-L2](../../src/pkg/mod.py#L1-L2).

    ```python
    x = 2
    ```

    A fragment that is shown, not run:

    ```python no-run
    raise SystemExit(x[0](y))
    ```

    ```bash
    echo shown
    ```

    ```python
    y = x * 21
    ```
    """


def _course(tmp_path: Path) -> tuple[Path, Path]:
    learn = tmp_path / "learn"
    session = learn / "session01_x"
    session.mkdir(parents=True)
    page = session / "part_d_code.md"
    page.write_text(textwrap.dedent(PAGE), encoding="utf-8")
    (session / "part_a_prose.md").write_text("# Prose only\n\nNo code.\n", encoding="utf-8")
    return learn, page


def test_export_is_deterministic_and_runs_exactly_the_runnable_blocks(tmp_path: Path) -> None:
    learn, page = _course(tmp_path)
    assert nbs.problems(learn)  # nothing exported yet
    nbs.export(learn)
    assert nbs.problems(learn) == []
    nb_path = learn / "notebooks" / "session01_x" / "part_d_code.ipynb"
    assert sorted((learn / "notebooks").rglob("*.ipynb")) == [nb_path]  # prose-only: none
    first = nb_path.read_bytes()
    assert nbs.export(learn) == [] and nb_path.read_bytes() == first  # identical bytes

    text = page.read_text(encoding="utf-8")
    assert text.splitlines()[2] == nbs.badge_line(page, learn)
    assert text.count("Open in Colab") == 1

    nb = json.loads(first)
    cells = nb["cells"]
    assert [c["id"] for c in cells] == [f"cell-{k:03d}" for k in range(len(cells))]
    assert all(not c.get("outputs") and c.get("execution_count") is None
               for c in cells if c["cell_type"] == "code")
    colab = "https://colab.research.google.com/github/" + nbs.COLAB_REPO
    assert cells[0]["cell_type"] == "markdown" and colab in "".join(cells[0]["source"])
    setup = "".join(cells[1]["source"])
    assert "pip" in setup and nbs.COLAB_REPO in setup and "np.random.seed(0)" in setup
    code = ["".join(c["source"]) for c in cells[2:] if c["cell_type"] == "code"]
    assert code == [b.source.rstrip("\n") for b in mdrun.code_blocks(text) if b.runs]
    prose = "".join("".join(c["source"]) for c in cells if c["cell_type"] == "markdown")
    assert "```python no-run\nraise SystemExit(x[0](y))\n```" in prose  # kept verbatim
    assert "```bash" in prose
    raw = f"https://raw.githubusercontent.com/{nbs.COLAB_REPO}/main/learn/session01_x/figures/a.png"
    assert f"![fig]({raw})" in prose
    assert f"https://github.com/{nbs.COLAB_REPO}/blob/main/src/pkg/mod.py#L1-L2" in prose
    assert prose.count("Open in Colab") == 1  # the page's badge is not copied twice


def test_check_names_stale_missing_and_orphaned_notebooks(tmp_path: Path) -> None:
    learn, page = _course(tmp_path)
    nbs.export(learn)
    nb_path = nbs.notebook_path(page, learn)

    page.write_text(page.read_text(encoding="utf-8").replace("x * 21", "x * 22"),
                    encoding="utf-8")
    assert any("stale" in p and str(nb_path.resolve()) in p for p in nbs.problems(learn))

    nbs.export(learn)
    nb_path.unlink()
    assert any("missing" in p for p in nbs.problems(learn))

    nbs.export(learn)
    orphan = nb_path.with_name("part_z_gone.ipynb")
    shutil.copy(nb_path, orphan)
    assert any("orphaned" in p and "part_z_gone" in p for p in nbs.problems(learn))

    nbs.export(learn)
    assert not orphan.exists()
    page.write_text(page.read_text(encoding="utf-8").replace("Open in Colab", "Colab"),
                    encoding="utf-8")
    assert any("Open in Colab" in p for p in nbs.problems(learn))


def test_check_fails_on_a_stale_copy_of_a_real_notebook(tmp_path: Path) -> None:
    """The real Part D and its committed notebook, copied; an edit to the page is caught."""
    page = LEARN_DIR / "session01_neural_networks" / "part_d_code_implementation.md"
    learn = tmp_path / "learn"
    shutil.copytree(page.parent, learn / page.parent.name)
    nb_rel = nbs.notebook_path(page).relative_to(LEARN_DIR)
    (learn / nb_rel).parent.mkdir(parents=True)
    shutil.copy(LEARN_DIR / nb_rel, learn / nb_rel)
    for other in (learn / page.parent.name).glob("part_*.md"):
        if other.name != page.name:
            other.unlink()
    assert nbs.problems(learn) == []
    copy = learn / page.parent.name / page.name
    copy.write_text(copy.read_text(encoding="utf-8") + "\n```python\nz = 1\n```\n",
                    encoding="utf-8")
    assert nbs.problems(learn) == [f"{(learn / nb_rel).resolve()}: stale, out of sync with "
                                   f"{copy}"]
