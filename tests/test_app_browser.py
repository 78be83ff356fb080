"""End to end in a real browser: ``streamlit run app.py`` driven by Debian's Chromium.

The server listens on 127.0.0.1 only, on a free port; Playwright's Python package drives the
system Chromium (``executable_path``; no browser download). The test uploads a synthetic PNG
and waits for the prediction and the explanation overlay, then saves a screenshot
(``NEUROPATHOLOGY_APP_SCREENSHOT=path`` saves it there too).

Skips, saying why, where Chromium or Playwright is not installed
(``apt-get install chromium`` and ``pip install playwright``; ``.ci/run`` installs both).
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

CHROMIUM = "/usr/bin/chromium"
REPO = Path(__file__).resolve().parents[1]
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                 "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync"]

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not Path(CHROMIUM).is_file(),
                       reason=f"{CHROMIUM} not found: install Debian's Chromium "
                              "(apt-get install chromium) to run the browser test"),
]
pytest.importorskip("streamlit", reason="streamlit not installed: pip install -e '.[app]'")
playwright_sync = pytest.importorskip(
    "playwright.sync_api", reason="playwright not installed: pip install playwright "
                                  "(the browser itself comes from apt, not `playwright install`)")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_healthy(url: str, proc: subprocess.Popen, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"streamlit exited with code {proc.returncode}")
        try:
            with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2) as response:
                if response.read().strip() == b"ok":
                    return
        except OSError:
            time.sleep(0.3)
    raise TimeoutError(f"streamlit did not answer on {url} within {timeout:.0f} s")


@pytest.fixture
def server(app_runs, tmp_path):
    port = free_port()
    env = {**os.environ, "NEUROPATHOLOGY_RUNS": str(app_runs[0]), "TF_CPP_MIN_LOG_LEVEL": "2"}
    log = (tmp_path / "streamlit.log").open("w")
    proc = subprocess.Popen(
        [sys.executable, "-m", "streamlit", "run", "app.py", "--server.headless", "true",
         "--server.address", "127.0.0.1", "--server.port", str(port),
         "--server.fileWatcherType", "none", "--browser.gatherUsageStats", "false"],
        cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_healthy(url, proc)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()


def test_upload_predict_and_overlay_in_chromium(server, tmp_path):
    from PIL import Image

    from neuropathology.data.synthetic import generate_slice

    image = tmp_path / "synthetic_glioma.png"
    Image.fromarray(generate_slice("glioma", size=128, seed=7)[0]).save(image)
    shot = tmp_path / "app.png"
    with playwright_sync.sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 1100})
            page.goto(server, wait_until="domcontentloaded")
            page.get_by_text("MRI slices (PNG, JPEG or DICOM").wait_for(timeout=60_000)
            page.locator("input[type=file]").set_input_files(str(image))
            verdict = page.get_by_text("Most probable class").or_(
                page.get_by_text("Predicted class"))
            verdict.first.wait_for(timeout=60_000)
            overlay = page.locator("[data-testid=stImage] img")
            overlay.first.wait_for(timeout=60_000)
            assert page.get_by_text("Grad-CAM for class").count() >= 1
            download = page.get_by_role("button", name="Download report (JSON)")
            download.first.wait_for(timeout=60_000)  # drawn after the overlay; slow when loaded
            assert download.count() == 1
            body = page.inner_text("body")
            assert "Traceback" not in body
            box = overlay.first.bounding_box()
            assert box is not None and box["width"] > 100
            page.screenshot(path=str(shot), full_page=True)
        finally:
            browser.close()
    assert shot.stat().st_size > 10_000
    extra = os.environ.get("NEUROPATHOLOGY_APP_SCREENSHOT")
    if extra:
        shutil.copyfile(shot, extra)
