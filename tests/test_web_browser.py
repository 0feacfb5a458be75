"""End to end: ``somcolor serve`` in a subprocess, driven by Debian's Chromium (headless).

Playwright for Python drives the system Chromium (``/usr/bin/chromium``, installed
with apt; Playwright's own browser download is never used), at a laptop's size (1280 x
800) and a phone's (390 x 844, touch). The page shows a refused upload's message,
colorizes a short video in the background and offers it for download, colorizes a gray
photo, shows it beside the original and downloads it, takes hints and a reference. What
a first-time user must see is checked by bounding boxes against the window: the result
in view once ready, the picker and all its controls inside the window. The page must
not load anything from anywhere but the server. Screenshots go to temporary folders
only (``make docs-pictures`` makes the ones in docs/).
"""

from __future__ import annotations

import importlib.util
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from experiments.page_pictures import (
    CHROMIUM,
    CHROMIUM_ARGS,
    DESKTOP,
    PHONE,
    gray_of,
    serving,
    settle,
)

pytestmark = [
    pytest.mark.skipif(
        not CHROMIUM.exists(), reason="no /usr/bin/chromium: apt-get install -y chromium"
    ),
    pytest.mark.skipif(
        importlib.util.find_spec("playwright") is None, reason="playwright missing (dev extra)"
    ),
]
HAS_VIDEO = all(importlib.util.find_spec(m) is not None for m in ("somcolor.video", "av"))


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """The real server on a free loopback port; its URL."""
    try:
        with serving(tmp_path_factory.mktemp("server") / "serve.log") as url:
            yield url
    except RuntimeError as exc:
        pytest.fail(str(exc))


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield browser
        browser.close()


def watched(page, server: str):
    """``page`` noting requests to anywhere but the server and uncaught script errors."""
    page.foreign = []
    page.errors = []
    page.on(
        "request",
        lambda r: (
            None if r.url.startswith((server, "blob:", "data:")) else page.foreign.append(r.url)
        ),
    )
    page.on("pageerror", lambda exc: page.errors.append(str(exc)))
    page.goto(server)
    return page


@pytest.fixture(scope="module")
def page(server, browser):
    page = browser.new_page(**DESKTOP, accept_downloads=True)
    yield watched(page, server)
    page.close()


def gray_photo(path: Path) -> Path:
    """A gray photo that ships with scikit-image (in no training set here), as PNG."""
    import skimage.data

    Image.fromarray(gray_of(skimage.data.coffee())).save(path)
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
    expect(page.locator("#status")).to_contain_text("Ready: clip.mp4 colorized in")
    waited, server = waited_and_server(page)
    assert waited >= server - 0.05
    settle(page)
    assert shown_share(page, "#video-result") >= 0.6
    # A video: its own setting, under Advanced.
    page.locator("#advanced summary").click()
    expect(page.locator("#smoothing-row")).to_be_visible()
    expect(page.locator("#smoothing-row")).to_contain_text("Steadier colours between frames")
    page.locator("#advanced summary").click()
    with page.expect_download() as info:
        link.click()
    saved = tmp_path / "video.mp4"
    info.value.save_as(saved)
    assert info.value.suggested_filename == "clip_color.mp4"
    assert saved.read_bytes()[4:8] == b"ftyp"


# ---------------------------------------------------------------------------- in view
def window_size(page) -> tuple[float, float]:
    return tuple(page.evaluate("[window.innerWidth, window.innerHeight]"))


def wholly_in_view(page, locator) -> bool:
    """Every visible element of ``locator`` lies wholly inside the window."""
    width, height = window_size(page)
    boxes = [locator.nth(i).bounding_box() for i in range(locator.count())]
    boxes = [b for b in boxes if b is not None and b["width"] > 0]
    return bool(boxes) and all(
        b["x"] >= -0.5
        and b["y"] >= -0.5
        and b["x"] + b["width"] <= width + 0.5
        and b["y"] + b["height"] <= height + 0.5
        for b in boxes
    )


def shown_share(page, selector: str) -> float:
    """How much of the element the window shows, as a share of what could be shown
    (its height, or the window's below the status bar when it is taller)."""
    return page.evaluate(
        """(sel) => {
          const r = document.querySelector(sel).getBoundingClientRect();
          const top = document.getElementById('status').offsetHeight;
          const shown = Math.min(r.bottom, innerHeight) - Math.max(r.top, 0);
          return Math.max(0, shown) / Math.min(r.height, innerHeight - top);
        }""",
        selector,
    )


def waited_and_server(page) -> tuple[float, float]:
    """The seconds the status says the user waited, and the server's."""
    text = page.locator("#status").inner_text()
    found = re.search(r" in ([0-9.]+) s \(server ([0-9.]+) s\)", text)
    assert found, text
    return float(found[1]), float(found[2])


def open_photo(page, path: Path) -> None:
    """Choose a photo; wait for the ready state and for the window to stop scrolling."""
    from experiments.page_pictures import open_photo as _open

    _open(page, path)


def test_the_empty_page_says_what_can_be_done_and_hides_the_settings(page):
    from playwright.sync_api import expect

    page.reload()
    expect(page.locator("#model")).to_have_value("default")
    intro = page.locator("#intro")
    assert wholly_in_view(page, intro)
    text = intro.inner_text()
    assert "photo or video" in text and "tap the photo" in text and "colour photo" in text
    # The settings: under a collapsed "Advanced", in plain words, video's only for videos.
    assert page.locator("#advanced").get_attribute("open") is None
    expect(page.locator("#decoder")).to_be_hidden()
    labels = page.locator("#decoder option").all_inner_texts()
    assert len(labels) == 3 and not any(d in " ".join(labels) for d in ("annealed", "argmax"))
    page.locator("#advanced summary").click()
    expect(page.locator("#decoder")).to_be_visible()
    expect(page.locator("#advanced")).to_contain_text("Colour strength")
    expect(page.locator("#smoothing-row")).to_be_hidden()
    page.locator("#advanced summary").click()


def test_page_colorizes_a_gray_photo_and_offers_the_download(page, tmp_path):
    from playwright.sync_api import expect

    page.reload()
    expect(page.locator("#model")).to_have_value("default")
    photo = gray_photo(tmp_path / "coffee_gray.png")
    open_photo(page, photo)
    expect(page.locator("#error")).to_be_hidden()
    size = page.locator("#after").evaluate("img => [img.naturalWidth, img.naturalHeight]")
    assert size == [600, 400]
    # Ready, in view, and the time is the one the user waited (the server's apart).
    expect(page.locator("#status")).to_contain_text("Ready: coffee_gray.png colorized in")
    assert wholly_in_view(page, page.locator("#status"))
    assert shown_share(page, "#stage") >= 0.9
    waited, server = waited_and_server(page)
    assert waited >= server - 0.05 and server > 0
    expect(page.locator("#smoothing-row")).to_be_hidden()  # a photo: no video settings

    with page.expect_download() as info:
        page.click("#download")
    assert info.value.suggested_filename == "coffee_gray_color.png"
    saved = tmp_path / "download.png"
    info.value.save_as(saved)
    out = np.asarray(Image.open(saved))
    assert out.shape == (400, 600, 3)
    assert np.ptp(out.astype(int), axis=2).mean() > 2  # it has color

    page.screenshot(path=str(tmp_path / "web.png"))  # the view, to look at when it fails
    assert page.foreign == [] and page.errors == []


# ---------------------------------------------------------------------------- hints
#: The hints test photo: 866 x 577 (0.5 MP), a dark flat left part and a bright flat
#: right part, a strong luminance edge between them.
HW, HH = 866, 577


def two_regions(path: Path, size: tuple[int, int] = (HW, HH)) -> Path:
    width, height = size
    gray = np.full((height, width), 70, np.uint8)
    gray[:, width // 2 :] = 190
    Image.fromarray(gray).save(path)
    return path


def colour_reference(path: Path) -> Path:
    ref = np.zeros((120, 160, 3), np.uint8)
    ref[:, :80] = (30, 60, 160)  # dark: blue
    ref[:, 80:] = (240, 200, 40)  # light: yellow
    Image.fromarray(ref).save(path)
    return path


def reddish(rgb) -> bool:
    from test_web_hints import reddish

    return reddish(rgb)


def result_pixels(page, points, size: tuple[int, int] = (HW, HH)) -> list:
    """RGB of the shown result (``#after``, the preview) at photo pixels ``points`` of a
    photo of ``size`` (the preview may be smaller)."""
    return page.evaluate(
        """([points, W, H]) => {
          const img = document.getElementById('after');
          const c = document.createElement('canvas');
          c.width = img.naturalWidth; c.height = img.naturalHeight;
          const g = c.getContext('2d'); g.drawImage(img, 0, 0);
          return points.map(([x, y]) => {
            const px = Math.floor((x + 0.5) * c.width / W);
            const py = Math.floor((y + 0.5) * c.height / H);
            return Array.from(g.getImageData(px, py, 1, 1).data.slice(0, 3));
          });
        }""",
        [points, *size],
    )


def stage_point(page, x: int, y: int, size: tuple[int, int] = (HW, HH)) -> dict:
    """Where pixel (x, y) of a photo of ``size`` is inside ``#stage``, in CSS pixels."""
    box = page.locator("#stage").bounding_box()
    return {"x": (x + 0.5) * box["width"] / size[0], "y": (y + 0.5) * box["height"] / size[1]}


def wait_updated(page, n_hints: int) -> None:
    from playwright.sync_api import expect

    word = "1 hint," if n_hints == 1 else f"{n_hints} hints,"
    expect(page.locator("#status")).to_contain_text(f"{word} updated in", timeout=30_000)


def hint_in_red(page, x, y, *, touch: bool, n_hints: int = 1, size=(HW, HH)) -> None:
    """Tap (or click) photo pixel (x, y), wait for the suggestions, choose red."""
    from playwright.sync_api import expect

    at = stage_point(page, x, y, size)
    if touch:
        page.locator("#stage").tap(position=at)
    else:
        page.locator("#stage").click(position=at)
    expect(page.locator("#picker")).to_be_visible()
    expect(page.locator("#suggestions .swatch").first).to_be_visible(timeout=30_000)
    settle(page)
    assert picker_in_view(page)
    page.locator("#custom").fill("#ff0000")
    wait_updated(page, n_hints)


#: The picker and every control in it.
PICKER_PARTS = ("#picker", "#suggestions .swatch", "#picker .color-label", "#close-picker")


def picker_in_view(page) -> bool:
    """The picker and all its controls wholly inside the window, and the point it is for
    not under it (its mark's centre outside the picker's box, inside the window)."""
    if not all(wholly_in_view(page, page.locator(part)) for part in PICKER_PARTS):
        return False
    picker = page.locator("#picker").bounding_box()
    mark = page.locator(".mark.selected, .mark.pending").first.bounding_box()
    cx, cy = mark["x"] + mark["width"] / 2, mark["y"] + mark["height"] / 2
    width, height = window_size(page)
    covered = (
        picker["x"] <= cx <= picker["x"] + picker["width"]
        and picker["y"] <= cy <= picker["y"] + picker["height"]
    )
    return 0 <= cx <= width and 0 <= cy <= height and not covered


def test_page_hints_colour_a_region_and_stop_at_the_edge(page, tmp_path):
    from playwright.sync_api import expect

    page.reload()
    expect(page.locator("#model")).to_have_value("default")
    photo = two_regions(tmp_path / "regions.png")
    open_photo(page, photo)
    left, right, far = (200, 290), (650, 290), (30, 40)
    before = result_pixels(page, [left, right, far])
    assert not any(reddish(p) for p in before)

    hint_in_red(page, *left, touch=False)
    after = result_pixels(page, [left, right, far])
    assert reddish(after[0]) and reddish(after[2])  # the hinted flat region, far too
    assert not reddish(after[1])  # across the strong edge: not red
    assert page.locator("#suggestions .swatch").count() == 12
    assert page.locator("#recent").is_hidden()  # no earlier hint's colour yet

    # Drag the hint within the region: it moves (its colour stays), the result updates.
    page.locator("#close-picker").click()
    mark = page.locator(".mark").first
    box = mark.bounding_box()
    page.mouse.move(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
    page.mouse.down()
    page.mouse.move(box["x"] + box["width"] / 2 - 60, box["y"] + 30, steps=5)
    page.mouse.up()
    wait_updated(page, 1)
    label = page.locator(".mark").first.get_attribute("aria-label")
    assert "#ff0000" in label and f"at {left[0]}," not in label

    # Undo the move and the hint: the region is back to the model's colour.
    page.locator("#undo").click()
    page.locator("#undo").click()
    expect(page.locator(".mark")).to_have_count(0)
    wait_updated(page, 0)
    assert not reddish(result_pixels(page, [left])[0])
    expect(page.locator("#undo")).to_be_disabled()

    # Remove: a hint placed, then removed from the picker.
    hint_in_red(page, *left, touch=False)
    page.locator(".mark").first.click()
    page.locator("#remove-hint").click()
    expect(page.locator(".mark")).to_have_count(0)
    wait_updated(page, 0)

    # Four hints for the timing (from choosing the colour to the new preview shown),
    # then the downloads.
    done = page.evaluate("window.somcolorTimings.length")
    for i, x in enumerate((120, 200, 300, 380)):
        hint_in_red(page, x, 150 + 60 * i, touch=False, n_hints=i + 1)
        # The colours of the user's earlier hints come after the suggestions.
        expect(page.locator('#recent .swatch[data-color="#ff0000"]')).to_have_count(int(i > 0))
        page.locator("#close-picker").click()
    timings = page.evaluate("window.somcolorTimings")[done:]
    print(
        f"\nhint -> updated preview on a {HW}x{HH} photo (0.5 MP), desktop: "
        f"{', '.join(f'{t:.0f}' for t in timings)} ms; median {np.median(timings):.0f} ms"
    )
    with page.expect_download() as info:
        page.click("#download-hints")
    hints_file = tmp_path / "hints.json"
    info.value.save_as(hints_file)
    assert info.value.suggested_filename == "regions_hints.json"
    points = __import__("json").loads(hints_file.read_text())["points"]
    assert len(points) == 4 and all(p["color"] == "#ff0000" for p in points)
    with page.expect_download(timeout=60_000) as info:
        page.click("#download")
    saved = tmp_path / "regions_color.png"
    info.value.save_as(saved)
    assert info.value.suggested_filename == "regions_color.png"
    cli_out = tmp_path / "cli.png"
    subprocess.run(
        [sys.executable, "-m", "somcolor", "colorize", str(photo), "--hints", str(hints_file),
         "-o", str(cli_out), "-q"],
        check=True,
    )  # fmt: skip
    assert np.array_equal(np.asarray(Image.open(saved)), np.asarray(Image.open(cli_out)))

    page.locator(".mark").nth(1).click()  # the picker open on a hint: in view too
    expect(page.locator("#suggestions .swatch").first).to_be_visible(timeout=30_000)
    settle(page)
    assert picker_in_view(page)
    page.screenshot(path=str(tmp_path / "hints.png"))
    assert page.foreign == [] and page.errors == []


def test_page_takes_a_reference_photo(page, tmp_path):
    from playwright.sync_api import expect

    page.reload()
    expect(page.locator("#model")).to_have_value("default")
    open_photo(page, two_regions(tmp_path / "regions.png"))
    points = [(200, 290), (650, 290)]
    before = result_pixels(page, points)
    reference = colour_reference(tmp_path / "ref.png")
    add_reference(page, reference)
    after = result_pixels(page, points)
    assert after != before
    page.locator("#ref-remove").click()
    expect(page.locator("#reference-note")).to_be_hidden(timeout=60_000)
    expect(page.locator("#status")).to_have_attribute("data-state", "ready", timeout=60_000)

    # Undo and Clear agree: the reference is an action like a hint.
    expect(page.locator("#undo")).to_be_enabled()  # takes the removal back
    expect(page.locator("#clear")).to_be_disabled()  # nothing to clear
    hint_in_red(page, *points[0], touch=False)
    page.locator("#close-picker").click()
    add_reference(page, reference)
    expect(page.locator("#clear")).to_have_text("Clear hints and reference")
    page.locator("#undo").click()  # the last action: the reference
    expect(page.locator("#reference-note")).to_be_hidden(timeout=60_000)
    expect(page.locator("#status")).to_have_attribute("data-state", "ready", timeout=60_000)
    expect(page.locator(".mark")).to_have_count(1)  # the hint stays
    expect(page.locator("#clear")).to_have_text("Clear hints")
    add_reference(page, reference)
    page.locator("#clear").click()  # both go, as one action
    expect(page.locator("#reference-note")).to_be_hidden(timeout=60_000)
    expect(page.locator(".mark")).to_have_count(0)
    expect(page.locator("#clear")).to_be_disabled()
    page.locator("#undo").click()  # both come back
    expect(page.locator("#reference-note")).to_be_visible(timeout=60_000)
    expect(page.locator(".mark")).to_have_count(1)
    expect(page.locator("#status")).to_have_attribute("data-state", "ready", timeout=60_000)
    assert page.foreign == [] and page.errors == []


def add_reference(page, path: Path) -> None:
    """Add a reference photo; wait until the result is coloured from it, ready and in view."""
    from playwright.sync_api import expect

    page.set_input_files("#reference", str(path))
    expect(page.locator("#reference-note")).to_be_visible(timeout=60_000)
    expect(page.locator("#reference-note")).to_contain_text(f"reference photo {path.name}")
    expect(page.locator("#status")).to_contain_text(f"colours of {path.name} in", timeout=60_000)
    settle(page)
    assert shown_share(page, "#stage") >= 0.9


@pytest.fixture
def phone(server, browser):
    """A phone-sized page: 390 x 844 CSS pixels, touch, a mobile viewport."""
    context = browser.new_context(**PHONE, accept_downloads=True)
    yield watched(context.new_page(), server)
    context.close()


def small_targets(page) -> list:
    """Visible controls smaller than 44 x 44 CSS pixels (a hidden file input's label is
    its target; a colour input's label is its target)."""
    return page.evaluate(
        """() => [...document.querySelectorAll(
             'button, a, select, label.button, input[type=range], .swatch, .mark')]
          .filter((e) => e.offsetParent !== null || e.classList.contains('mark'))
          .map((e) => [e.id || e.className || e.tagName, e.getBoundingClientRect()])
          .filter(([, r]) => r.width > 0 && (r.width < 44 || r.height < 44))
          .map(([name, r]) => `${name}: ${Math.round(r.width)}x${Math.round(r.height)}`)"""
    )


def no_horizontal_scroll(page, width: int = 390) -> bool:
    """Nothing reaches past ``width`` CSS pixels (a mobile browser would otherwise zoom
    the whole page out to fit, so ``innerWidth`` grows with the content)."""
    return page.evaluate(
        """(width) => window.innerWidth === width
             && document.documentElement.scrollWidth <= width
             && [...document.querySelectorAll('body *')].every(
                  (e) => e.getBoundingClientRect().right <= width + 0.5)""",
        width,
    )


def test_page_works_on_a_phone_with_touch(phone, tmp_path):
    from playwright.sync_api import expect

    page = phone
    expect(page.locator("#model")).to_have_value("default")
    assert page.locator("#file").get_attribute("accept") == "image/*,video/*"
    assert no_horizontal_scroll(page)
    assert small_targets(page) == []
    # A phone camera's 12 MP photo: the page shows a 1280 x 960 preview and maps the tap
    # to the photo's own pixels.
    size = (4000, 3000)
    open_photo(page, two_regions(tmp_path / "regions.png", size))
    # The result below the fold on a phone: scrolled to, ready.
    assert page.evaluate("window.scrollY") > 0
    assert shown_share(page, "#stage") >= 0.9
    assert wholly_in_view(page, page.locator("#status"))
    hint_in_red(page, 900, 1500, touch=True, size=size)
    # The picker is a sheet at the bottom, the tapped point above it.
    picker = page.locator("#picker").bounding_box()
    assert picker["width"] == 390 and abs(picker["y"] + picker["height"] - 844) < 1
    # The hint's dot is small on a phone; its touch area stays 44 px.
    dot = page.locator(".mark").first.evaluate(
        "m => parseFloat(getComputedStyle(m, '::after').width)"
    )
    assert dot <= 16 and page.locator(".mark").first.bounding_box()["width"] == 44
    label = page.locator(".mark").first.get_attribute("aria-label")
    x, y = (int(v) for v in label.split(" at ")[1].split(":")[0].split(", "))
    assert abs(x - 900) <= 12 and abs(y - 1500) <= 12  # 4000 px over 370 CSS px: ~11 px each
    assert page.locator("#after").evaluate("i => [i.naturalWidth, i.naturalHeight]") == [1280, 960]
    left, right = result_pixels(page, [(900, 1500), (3000, 1500)], size)
    assert reddish(left) and not reddish(right)
    assert no_horizontal_scroll(page)
    assert small_targets(page) == []
    print(f"\nhint -> updated preview, phone emulation: {page.evaluate('window.somcolorTimings')}")
    page.screenshot(path=str(tmp_path / "phone.png"))
    page.locator("#close-picker").click()
    # A reference on the phone: the result, coloured from it, is in view.
    page.evaluate("window.scrollTo(0, 0)")
    add_reference(page, colour_reference(tmp_path / "ref.png"))
    assert page.foreign == [] and page.errors == []


# ---------------------------------------------------------------------------- video key frames
@pytest.mark.skipif(not HAS_VIDEO, reason="somcolor.video or PyAV missing: the 'video' extra")
@pytest.mark.parametrize("size", ["desktop", "phone"])
def test_page_carries_hints_on_a_video_key_frame(request, size, tmp_path):
    """Scrub to a frame, tap a hint on it, save the key frame, colour the video: the
    hinted object is red in later frames, and the downloaded keys JSON given to
    ``colorize-video --hints`` writes the same video."""
    from playwright.sync_api import expect
    from test_video import moving_shapes, write_clip

    from somcolor.video import iter_frames

    page = request.getfixturevalue("page" if size == "desktop" else "phone")
    page.reload()
    expect(page.locator("#model")).to_have_value("default")
    shape = (120, 160)
    clip = write_clip(tmp_path / "shapes.mp4", moving_shapes(16, shape), audio=None)
    page.set_input_files("#file", str(clip))
    expect(page.locator("#video-download")).to_be_visible(timeout=60_000)
    # Frame 5 (0.2 s at 29.97 frames/s): the bright disc is centred at (35, 45).
    page.evaluate(
        """() => new Promise((done) => {
             const v = document.getElementById('video-before');
             v.addEventListener('seeked', done, { once: true });
             v.currentTime = 0.2;
           })"""
    )
    page.locator("#add-keyframe").click()
    expect(page.locator("#keyframe-bar")).to_be_visible()
    expect(page.locator("#status")).to_have_attribute("data-state", "ready", timeout=60_000)
    settle(page)
    # In view with the key frame's bar above it (a 4:3 frame 948 px wide is 711 px high).
    assert shown_share(page, "#stage") >= 0.7
    hint_in_red(page, 35, 45, touch=size == "phone", size=(shape[1], shape[0]))
    page.locator("#close-picker").click()
    page.locator("#save-keyframe").click()
    expect(page.locator("#keyframe-list li")).to_have_count(1)
    expect(page.locator("#keyframe-list")).to_contain_text("0.20 s: 1 hint")
    with page.expect_download() as info:
        page.click("#download-keys")
    keys_file = tmp_path / "keys.json"
    info.value.save_as(keys_file)
    page.locator("#render-keyframes").click()
    expect(page.locator("#status")).to_contain_text("with hints on 1 key frame", timeout=60_000)
    with page.expect_download() as info:
        page.locator("#video-download").click()
    saved = tmp_path / "page.mp4"
    info.value.save_as(saved)
    frames = list(iter_frames(saved))
    r, g, b = (int(c) for c in frames[12][shape[0] // 3 + 12, 20 + 3 * 12])  # the disc, later
    assert r > g + 25 and r > b + 25
    cli_out = tmp_path / "cli.mp4"
    subprocess.run(
        [sys.executable, "-m", "somcolor", "colorize-video", str(clip), "-o", str(cli_out),
         "--hints", str(keys_file), "-q"],
        check=True,
    )  # fmt: skip
    assert cli_out.read_bytes() == saved.read_bytes()
    assert page.foreign == [] and page.errors == []
    page.reload()  # leaving the page deletes its job: the server's job slots are free again
