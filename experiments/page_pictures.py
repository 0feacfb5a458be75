"""The page's pictures in docs/, as a first-time user sees them: ``make docs-pictures``.

``python -m experiments.page_pictures [--out docs]`` starts ``somcolor serve`` on a free
loopback port, drives Debian's Chromium (``/usr/bin/chromium``, headless, through
Playwright) and saves what the window shows (not the whole page):

* ``web.png``: 1280 x 800, a gray photo (scikit-image's ``coffee``) just colorized;
* ``hints.png``: 1280 x 800, scikit-image's ``chelsea`` in gray with five hints in the
  true photo's colours (:func:`somcolor.guide.simulated_hints`, seed 0), the picker open
  on the last;
* ``phone.png``: 390 x 844 with touch, the same photo with its first hint tapped and the picker's
  sheet open (saved at 1.5 x CSS pixels).

The browser tests (``tests/test_web_browser.py``) start the server with :func:`serving`
and write their screenshots to temporary folders only.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
DESKTOP = {"viewport": {"width": 1280, "height": 800}}
PHONE = {
    "viewport": {"width": 390, "height": 844},
    "device_scale_factor": 3,
    "is_mobile": True,
    "has_touch": True,
}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def serving(log: Path, *extra: str, timeout: float = 60.0):
    """``somcolor serve`` on a free loopback port while the block runs: its URL. Its
    output goes to ``log``; a server that does not answer within ``timeout`` seconds
    raises RuntimeError with that output."""
    port = free_port()
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "somcolor", "serve", "--port", str(port), *extra],
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + timeout
        while True:
            try:
                with urllib.request.urlopen(f"{url}/api/health", timeout=2) as r:
                    if r.status == 200:
                        break
            except OSError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"the server did not start:\n{log.read_text()}")
            time.sleep(0.2)
        yield url
    finally:
        proc.terminate()
        proc.wait(timeout=20)


def gray_of(rgb: np.ndarray) -> np.ndarray:
    """A colour photo's gray version (ITU-R 601 luma), uint8."""
    return (rgb @ np.array([0.299, 0.587, 0.114])).round().clip(0, 255).astype(np.uint8)


def save_gray(rgb: np.ndarray, path: Path) -> Path:
    from PIL import Image

    Image.fromarray(gray_of(rgb)).save(path)
    return path


def settle(page) -> None:
    """Wait until the window has stopped scrolling (the page scrolls smoothly)."""
    page.wait_for_function(
        """() => new Promise((done) => {
             let last = window.scrollY, still = 0;
             const tick = () => {
               still = window.scrollY === last ? still + 1 : 0;
               last = window.scrollY;
               if (still >= 5) done(true); else requestAnimationFrame(tick);
             };
             requestAnimationFrame(tick);
           })"""
    )


def open_photo(page, path: Path, timeout: float = 60_000) -> None:
    """Choose a photo and wait until it is colorized and the window has settled."""
    from playwright.sync_api import expect

    page.set_input_files("#file", str(path))
    expect(page.locator("#status")).to_have_attribute("data-state", "ready", timeout=timeout)
    page.wait_for_function("document.getElementById('after').complete")
    settle(page)


def tap_hint(page, x: int, y: int, color: str, size: tuple[int, int], *, touch: bool) -> None:
    """Tap (or click) photo pixel (x, y) of a photo of ``size``, give it ``color`` and
    wait for the updated preview."""
    from playwright.sync_api import expect

    box = page.locator("#stage").bounding_box()
    at = {"x": (x + 0.5) * box["width"] / size[0], "y": (y + 0.5) * box["height"] / size[1]}
    n = page.locator(".mark:not(.pending)").count() + 1
    if touch:
        page.locator("#stage").tap(position=at)
    else:
        page.locator("#stage").click(position=at)
    expect(page.locator("#suggestions .swatch").first).to_be_visible(timeout=30_000)
    page.locator("#custom").fill(color)
    word = "1 hint," if n == 1 else f"{n} hints,"
    expect(page.locator("#status")).to_contain_text(f"{word} updated in", timeout=30_000)
    settle(page)


def shoot(page, path: Path, scale: float = 1.0) -> None:
    from PIL import Image

    png = Image.open(io.BytesIO(page.screenshot())).convert("RGB")
    if scale != 1.0:
        png = png.resize((round(png.width * scale), round(png.height * scale)), Image.LANCZOS)
    png.save(path, optimize=True)


def main(argv=None) -> int:
    import skimage.data
    from playwright.sync_api import sync_playwright

    from somcolor.guide import simulated_hints

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=ROOT / "docs")
    args = ap.parse_args(argv)
    if not CHROMIUM.exists():
        print(f"error: no {CHROMIUM}: apt-get install -y chromium", file=sys.stderr)
        return 2
    args.out.mkdir(parents=True, exist_ok=True)
    cat = skimage.data.chelsea()
    size = (cat.shape[1], cat.shape[0])
    hints = simulated_hints(cat, 5, seed=0)  # [(x, y, "#rrggbb")]: true colours
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        coffee = save_gray(skimage.data.coffee(), tmp / "coffee_gray.png")
        photo = save_gray(cat, tmp / "chelsea_gray.png")
        with serving(tmp / "serve.log") as url, sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
            page = browser.new_page(**DESKTOP)
            page.goto(url)
            open_photo(page, coffee)
            page.evaluate(
                "const s = document.getElementById('split'); s.value = 40;"
                "s.dispatchEvent(new Event('input'));"
            )
            shoot(page, args.out / "web.png")
            open_photo(page, photo)
            for x, y, color in hints:
                tap_hint(page, x, y, color, size, touch=False)
                page.locator("#close-picker").click()
            page.locator(".mark").last.click()
            page.locator("#suggestions .swatch").first.wait_for()
            shoot(page, args.out / "hints.png")
            phone = browser.new_context(**PHONE).new_page()
            phone.goto(url)
            open_photo(phone, photo)
            tap_hint(phone, *hints[0], size, touch=True)
            shoot(phone, args.out / "phone.png", scale=0.5)
            browser.close()
    for name in ("web.png", "hints.png", "phone.png"):
        print(args.out / name)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
