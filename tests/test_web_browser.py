"""End to end: ``somcolor serve`` in a subprocess, driven by Debian's Chromium (headless).

Playwright for Python drives the system Chromium (``/usr/bin/chromium``, installed
with apt; Playwright's own browser download is never used). The page shows a refused
upload's message, colorizes a short video in the background and offers it for
download, then colorizes a gray photo, shows it beside the original and downloads it.
The last view is saved as ``docs/web.png`` (the screenshot in ``docs/web.md``). The
page must not load anything from anywhere but the server.
"""

from __future__ import annotations

import importlib.util
import io
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
SCREENSHOT = Path(__file__).resolve().parents[1] / "docs" / "web.png"

pytestmark = [
    pytest.mark.skipif(
        not CHROMIUM.exists(), reason="no /usr/bin/chromium: apt-get install -y chromium"
    ),
    pytest.mark.skipif(
        importlib.util.find_spec("playwright") is None, reason="playwright missing (dev extra)"
    ),
]
HAS_VIDEO = all(importlib.util.find_spec(m) is not None for m in ("somcolor.video", "av"))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """The real server on a free loopback port; its URL."""
    port = free_port()
    log = tmp_path_factory.mktemp("server") / "serve.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "somcolor", "serve", "--port", str(port)],
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                with urllib.request.urlopen(f"{url}/api/health", timeout=2) as r:
                    if r.status == 200:
                        break
            except OSError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"server did not start:\n{log.read_text()}")
            time.sleep(0.2)
        yield url
    finally:
        proc.terminate()
        proc.wait(timeout=20)


@pytest.fixture(scope="module")
def page(server):
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1100, "height": 900}, accept_downloads=True)
        page.foreign = []  # requests to anywhere but the server
        page.errors = []  # uncaught script errors
        page.on(
            "request",
            lambda r: (
                None if r.url.startswith((server, "blob:", "data:")) else page.foreign.append(r.url)
            ),
        )
        page.on("pageerror", lambda exc: page.errors.append(str(exc)))
        page.goto(server)
        yield page
        browser.close()


def gray_photo(path: Path) -> Path:
    """A gray photo that ships with scikit-image (in no training set here), as PNG."""
    import skimage.data

    rgb = skimage.data.coffee()
    gray = (rgb @ np.array([0.299, 0.587, 0.114])).astype(np.uint8)
    Image.fromarray(gray).save(path)
    return path


def test_page_shows_a_refused_upload(page):
    from playwright.sync_api import expect

    expect(page.locator("#model")).to_have_value("default")  # the config has loaded
    page.set_input_files(
        "#file", files=[{"name": "notes.png", "mimeType": "image/png", "buffer": b"hi" * 100}]
    )
    expect(page.locator("#error")).to_be_visible()
    expect(page.locator("#error")).to_contain_text("not a photo")


@pytest.mark.skipif(not HAS_VIDEO, reason="somcolor.video or PyAV missing: the 'video' extra")
def test_page_colorizes_a_video_in_the_background(page, tmp_path):
    from playwright.sync_api import expect
    from test_web import make_clip

    clip = tmp_path / "clip.mp4"
    clip.write_bytes(make_clip(n_frames=12))
    page.set_input_files("#file", str(clip))
    link = page.locator("#video-download")
    expect(link).to_be_visible(timeout=30_000)
    expect(page.locator("#progress-text")).to_contain_text("done: 12 of 12 frames")
    with page.expect_download() as info:
        link.click()
    saved = tmp_path / "video.mp4"
    info.value.save_as(saved)
    assert info.value.suggested_filename == "clip_color.mp4"
    assert saved.read_bytes()[4:8] == b"ftyp"


def test_page_colorizes_a_gray_photo_and_offers_the_download(page, tmp_path):
    from playwright.sync_api import expect

    photo = gray_photo(tmp_path / "coffee_gray.png")
    page.set_input_files("#file", str(photo))
    expect(page.locator("#photo-result")).to_be_visible(timeout=30_000)
    expect(page.locator("#error")).to_be_hidden()
    page.wait_for_function("document.getElementById('after').complete")
    size = page.locator("#after").evaluate("img => [img.naturalWidth, img.naturalHeight]")
    assert size == [600, 400]
    expect(page.locator("#status")).to_contain_text("colorized in")

    with page.expect_download() as info:
        page.click("#download")
    assert info.value.suggested_filename == "coffee_gray_color.png"
    saved = tmp_path / "download.png"
    info.value.save_as(saved)
    out = np.asarray(Image.open(saved))
    assert out.shape == (400, 600, 3)
    assert np.ptp(out.astype(int), axis=2).mean() > 2  # it has color

    page.evaluate(
        "const s = document.getElementById('split'); s.value = 40;"
        "s.dispatchEvent(new Event('input'));"
    )
    SCREENSHOT.parent.mkdir(exist_ok=True)
    png = page.screenshot(full_page=True)
    Image.open(io.BytesIO(png)).convert("RGB").save(SCREENSHOT, optimize=True)
    assert page.foreign == [] and page.errors == []
