"""Shared pytest setup: put ``tests/`` on ``sys.path`` so tests can ``from fixtures import ...``;
the session-scoped ``app_runs`` fixture shared by the app tests; the table of the slowest course
pages at the end of a run."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

_TESTS_DIR = str(Path(__file__).resolve().parent)
if _TESTS_DIR not in sys.path:
    sys.path.insert(0, _TESTS_DIR)


@pytest.fixture(scope="session")
def app_runs(tmp_path_factory):
    """A runs folder for the app tests: ``tiny`` (evaluated, calibrated) and ``tiny-plain``.

    ``tiny`` is trained through the app's own quick-train helper (small CNN, 32 px, 1 + 1
    epochs), recording its progress reports; ``tiny-plain`` is a copy taken before evaluation.
    Returns ``(runs_dir, progress)``.
    """
    import shutil

    from neuropathology.app.quick_train import train_quick
    from neuropathology.evaluation.cli import main as evaluate_main

    root = tmp_path_factory.mktemp("app")
    progress: list[tuple[float, str]] = []
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("NEUROPATHOLOGY_CACHE", str(root / "cache"))
        result = train_quick(root / "runs", lambda f, m: progress.append((f, m)),
                             name="tiny", synthetic_per_class=12, synthetic_test_per_class=4,
                             synthetic_size=32, image_size=32, stage1_epochs=1, stage2_epochs=1,
                             val_fraction=0.3, batch_size=12)
        shutil.copytree(result.run_dir, root / "runs" / "tiny-plain")
        assert evaluate_main(["--run", str(result.run_dir), "--n-boot", "20"]) == 0
    return root / "runs", progress


def pytest_terminal_summary(terminalreporter) -> None:
    """Print the slowest course pages, from the ``course_page`` property of ``test_page_runs``.

    The property travels with the test report, so this works in a plain run and under
    pytest-xdist (whose workers are other processes).
    """
    pages = [value for rep in terminalreporter.stats.get("passed", [])
             for name, value in getattr(rep, "user_properties", ()) if name == "course_page"]
    if not pages:
        return
    root = str(Path(_TESTS_DIR).parent)
    if root not in sys.path:
        sys.path.insert(0, root)
    from learn.tools.mdrun import PageResult, report

    terminalreporter.write_line("")
    terminalreporter.write_line(report([PageResult(Path(path), seconds, run, skipped)
                                        for path, seconds, run, skipped in pages]))
