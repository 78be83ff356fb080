"""The browsable site (``docs/``, Sphinx + myst-nb) builds from ``learn/`` with warnings as errors.

Same command as the README's: ``python -m sphinx -W --keep-going -b html docs docs/_build/html``,
here into a temporary folder. About 5 s. Needs the ``docs`` extra (also listed in ``dev``).
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def test_site_builds_without_warnings(tmp_path: Path) -> None:
    for module in ("sphinx", "myst_nb", "furo"):
        pytest.importorskip(module, reason='the docs extra is not installed (pip install -e ".[docs]")')
    out = tmp_path / "html"
    proc = subprocess.run(
        [sys.executable, "-m", "sphinx", "-W", "--keep-going", "-q", "-b", "html",
         "-d", str(tmp_path / "doctrees"), "docs", str(out)],
        cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    page = out / "course" / "session01_neural_networks" / "part_e_project_mapping.html"
    html = page.read_text(encoding="utf-8")
    assert 'class="math' in html  # dollarmath: maths rendered by MathJax
    assert "https://github.com/" in html and "src/neuropathology/" in html  # Part E refs
    assert (out / "search.html").is_file() and (out / "searchindex.js").is_file()
    assert "part_a_geometric_intuition" in (out / "index.html").read_text(encoding="utf-8")
