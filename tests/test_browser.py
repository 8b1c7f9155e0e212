"""The explorer in a real browser: JupyterLab started here, Debian's headless Chromium driven by Playwright.

What a person would do: open notebooks/06_explorer.ipynb, Run > Run All Cells, drag the style-weight
slider, press Run and see the preview change; then drag the steps slider to the end, press Run, press
Stop and see the run stop (the kernel must stay free for that click). Smoke settings
(D2LSTYLE_SMOKE=1: 48 pixels, 3 steps), so it takes well under 3 minutes on 2 cores.

Everything happens in a temporary folder: a copy of the notebook (JupyterLab saves what it runs), and
Jupyter's config, data, runtime, settings and workspace folders, so nothing of the user's is read or
touched. The server and the browser are torn down even when the test fails.

Needs the `playwright` Python package (the `dev` extra) and Debian's Chromium (`apt-get install
chromium`; Playwright's own browser download is not used). `.ci/run` installs both and sets
D2LSTYLE_REQUIRE_BROWSER=1, which turns a missing one into a failure instead of a skip.
"""

import base64
import io
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
import uuid
from pathlib import Path

import pytest
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOK = ROOT / "notebooks" / "06_explorer.ipynb"
CHROMIUM = Path(os.environ.get("D2LSTYLE_CHROMIUM", "/usr/bin/chromium"))
WAIT_MS = 120_000  # the longest wait for any one thing in the page (a busy 2-core machine)


def missing(reason: str):
    if os.environ.get("D2LSTYLE_REQUIRE_BROWSER") == "1":
        pytest.fail(f"{reason} (D2LSTYLE_REQUIRE_BROWSER=1: .ci/run should have installed it)")
    pytest.skip(reason)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_jupyterlab(folder: Path, port: int, token: str, log) -> subprocess.Popen:
    """JupyterLab on 127.0.0.1:port serving ``folder/root``, every Jupyter folder inside ``folder``."""
    env = dict(os.environ)
    env.update({
        "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")])),
        "D2LSTYLE_SMOKE": "1", "D2LSTYLE_CACHE": str(folder / "cache"),
        "MPLBACKEND": "module://matplotlib_inline.backend_inline",
        "JUPYTER_CONFIG_DIR": str(folder / "config"), "JUPYTER_DATA_DIR": str(folder / "data"),
        "JUPYTER_RUNTIME_DIR": str(folder / "runtime"), "IPYTHONDIR": str(folder / "ipython"),
        "JUPYTERLAB_SETTINGS_DIR": str(folder / "settings"),
        "JUPYTERLAB_WORKSPACES_DIR": str(folder / "workspaces"),
    })
    # No "get notified about Jupyter news?" toast over the page, and no update check (no network).
    settings = folder / "settings" / "@jupyterlab" / "apputils-extension"
    settings.mkdir(parents=True)
    (settings / "notification.jupyterlab-settings").write_text(
        '{"fetchNews": "false", "checkForUpdates": false}')
    command = [sys.executable, "-m", "jupyterlab", "--no-browser", "--allow-root",
               "--ServerApp.ip=127.0.0.1", f"--ServerApp.port={port}", "--ServerApp.port_retries=0",
               f"--IdentityProvider.token={token}", f"--ServerApp.root_dir={folder / 'root'}",
               "--LabApp.news_url=None",  # no network: no announcements, no update check
               "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate"]
    return subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT,
                            start_new_session=True)  # its own process group: kernels die with it


def wait_until_up(server: subprocess.Popen, url: str, seconds: float = 90) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise RuntimeError(f"JupyterLab exited with code {server.returncode}")
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                if response.status == 200:
                    return
        except OSError:
            time.sleep(0.5)
    raise RuntimeError(f"JupyterLab did not answer within {seconds:.0f} s")


def stop(server: subprocess.Popen) -> None:
    """SIGTERM to the server's process group (server and kernels), SIGKILL if it lingers."""
    if server.poll() is not None:
        return
    try:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=15)
    except subprocess.TimeoutExpired:
        os.killpg(server.pid, signal.SIGKILL)
        server.wait(timeout=15)
    except ProcessLookupError:
        pass


def drag(page, slider, fraction: float) -> None:
    """Drag ``slider``'s handle to ``fraction`` of its track, with the mouse, as a person would."""
    handle = slider.locator(".noUi-handle, .ui-slider-handle").first  # ipywidgets 8, 7
    track = slider.locator(".noUi-target, .ui-slider").first
    slider.scroll_into_view_if_needed()  # JupyterLab scrolls inside its panel; the mouse needs it seen
    box, where = handle.bounding_box(), track.bounding_box()
    page.mouse.move(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
    page.mouse.down()
    page.mouse.move(where["x"] + fraction * where["width"], box["y"] + box["height"] / 2, steps=8)
    page.mouse.up()


@pytest.mark.timeout(300)
def test_explorer_runs_and_stops_in_jupyterlab_and_chromium(tmp_path):
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        missing("the playwright package is not installed (pip install playwright; it is in the dev extra)")
    if not CHROMIUM.is_file():
        missing(f"no Chromium at {CHROMIUM} (apt-get install chromium, or set D2LSTYLE_CHROMIUM)")
    try:
        import jupyterlab  # noqa: F401
    except ImportError:
        missing("jupyterlab is not installed (it is in the notebooks extra)")

    (tmp_path / "root").mkdir()
    shutil.copy(NOTEBOOK, tmp_path / "root" / NOTEBOOK.name)  # JupyterLab saves what it runs
    port, token = free_port(), uuid.uuid4().hex
    base = f"http://127.0.0.1:{port}"
    log_path = tmp_path / "jupyterlab.log"
    start = time.perf_counter()
    with open(log_path, "wb") as log:
        server = start_jupyterlab(tmp_path, port, token, log)
        try:
            wait_until_up(server, f"{base}/api/status?token={token}")
            with sync_playwright() as playwright:
                browser = playwright.chromium.launch(
                    executable_path=str(CHROMIUM), headless=True,
                    args=["--disable-dev-shm-usage", "--disable-gpu"])
                try:
                    page = browser.new_page(viewport={"width": 1400, "height": 1000})
                    page.set_default_timeout(WAIT_MS)
                    try:
                        drive(page, f"{base}/lab/tree/{NOTEBOOK.name}?token={token}")
                    except Exception:
                        page.screenshot(path=str(tmp_path / "failure.png"), full_page=True)
                        raise
                finally:
                    browser.close()
        except Exception:
            log.flush()
            print(f"--- JupyterLab's log (last 4000 characters; screenshot in {tmp_path}):")
            print(log_path.read_text(errors="replace")[-4000:])
            raise
        finally:
            stop(server)
    print(f"browser test: {time.perf_counter() - start:.0f} s from server start to teardown")


def shown_image(img) -> Image.Image:
    """The picture an <img> shows, read back from its blob: URL (ipywidgets' Image view)."""
    data = img.evaluate("""async (el) => {
        const bytes = new Uint8Array(await (await fetch(el.src)).arrayBuffer());
        let text = ""; for (const b of bytes) text += String.fromCharCode(b);
        return btoa(text); }""")
    return Image.open(io.BytesIO(base64.b64decode(data))).convert("RGB")


def drive(page, url: str) -> None:
    page.goto(url)
    page.get_by_text("Python 3 (ipykernel) | Idle").wait_for()  # the status bar: kernel ready
    page.locator(".jp-Notebook .jp-CodeCell .jp-InputPrompt").first.click()  # focus the notebook
    # Run > Run All, from JupyterLab's menu bar, as a person would.
    page.locator(".lm-MenuBar-itemLabel", has_text="Run").first.click()
    page.locator(".lm-Menu-item:not(.lm-mod-disabled) .lm-Menu-itemLabel").get_by_text(
        re.compile(r"^Run All( Cells)?$")).first.click()
    # The last cell prints the run time: the whole notebook, with its short run, has been executed.
    page.locator(".jp-OutputArea-output", has_text="this run:").wait_for()

    preview, status = page.locator("img.d2lstyle-preview"), page.locator(".d2lstyle-status")
    run, stop_button = page.locator("button.d2lstyle-run"), page.locator("button.d2lstyle-stop")
    # The notebook is long: JupyterLab may leave cells scrolled out of view unrendered, so bring
    # the explorer back into view before reading it.
    page.locator(".jp-Notebook .jp-CodeCell", has=page.locator(".d2lstyle-status")).first \
        .scroll_into_view_if_needed()
    status.scroll_into_view_if_needed()
    page.locator(".d2lstyle-status", has_text="done: 3 steps").wait_for()  # the notebook's own run
    before, before_pixels = preview.get_attribute("src"), shown_image(preview)
    assert max(before_pixels.size) == 48  # the smoke size

    # Drag the style-weight slider and check that the kernel got the new value (its readout).
    weight = page.locator(".d2lstyle-style-weight")
    readout = weight.locator(".widget-readout")
    old_weight = readout.inner_text()
    drag(page, weight, 0.98)  # the track is 1e-3 ... 1e8; the preset starts at 1e7
    page.wait_for_function("([el, old]) => el.innerText.trim() !== old.trim()",
                           arg=[readout.element_handle(), old_weight])
    assert float(readout.inner_text()) > float(old_weight)

    run.click()
    page.wait_for_function("([el, old]) => el.getAttribute('src') !== old",
                           arg=[preview.element_handle(), before])
    page.locator(".d2lstyle-status", has_text="done: 3 steps").wait_for()
    assert run.is_enabled() and stop_button.is_disabled()
    after_pixels = shown_image(preview)
    assert after_pixels.size == before_pixels.size
    assert after_pixels.tobytes() != before_pixels.tobytes()  # a new picture, not just a new URL

    # A long run, stopped from the page: the kernel must still take clicks while it runs.
    drag(page, page.locator(".d2lstyle-steps"), 1.05)
    page.locator(".d2lstyle-steps .widget-readout", has_text="1000").wait_for()
    run.click()
    page.locator(".d2lstyle-status", has_text="step ").wait_for()
    stop_button.click()
    page.locator(".d2lstyle-status", has_text="stopped by callback").wait_for()
    assert run.is_enabled()
