"""Colour hints and reference photos through the web API (:mod:`somcolor.web`).

A hint session previews the photo with hints (a hint in a flat region colours it and
stops at a strong edge); ``POST /api/colorize`` with the same hints gives exactly what
``somcolor colorize --hints`` gives; suggestions are the model's; sessions are bounded
(LRU, idle expiry) and every bad input (a hint outside the photo, a bad colour, too
many hints, unknown or closed sessions, a foreign or gray reference) answers its 4xx
JSON error while the server keeps serving.
"""

from __future__ import annotations

import io
import json

import numpy as np
import pytest
from PIL import Image
from test_web import local_client, make_clip, needs_video, png_bytes, refused, wait_for_job

from somcolor.color import rgb_to_luv
from somcolor.web import create_app

H, W = 120, 180
#: A hint in the dark left region, and points in the two regions.
LEFT, RIGHT = (40, 60), (140, 60)


def two_regions() -> np.ndarray:
    """Two flat regions with a strong luminance edge between them (gray)."""
    gray = np.full((H, W), 70, np.uint8)
    gray[:, W // 2 :] = 190
    return gray


PHOTO = png_bytes(two_regions())
RED = {"points": [{"x": LEFT[0], "y": LEFT[1], "color": "#ff0000"}]}


def hue_and_chroma(rgb) -> tuple[float, float]:
    """CIELUV hue (degrees) and chroma of one sRGB uint8 colour."""
    _, u, v = rgb_to_luv(np.asarray(rgb, np.float64).reshape(1, 3) / 255.0)[0]
    return float(np.degrees(np.arctan2(v, u)) % 360), float(np.hypot(u, v))


def reddish(rgb) -> bool:
    hue, chroma = hue_and_chroma(rgb)
    return chroma > 30 and (hue < 40 or hue > 340)


def decode(content: bytes) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(content)).convert("RGB"))


@pytest.fixture(scope="module")
def app(tmp_path_factory):
    return create_app(workdir=tmp_path_factory.mktemp("web"), max_hints=5)


@pytest.fixture(scope="module")
def client(app):
    with local_client(app) as c:
        yield c


@pytest.fixture(scope="module")
def clip() -> bytes:
    pytest.importorskip("av", reason="PyAV missing: install the 'video' extra")
    return make_clip()


def open_session(client, data: bytes = PHOTO, **files):
    parts = {"file": ("photo.png", data, "image/png")}
    parts.update({k: (f"{k}.png", v, "image/png") for k, v in files.items()})
    return client.post("/api/sessions", files=parts)


@pytest.fixture(scope="module")
def session(client) -> dict:
    r = open_session(client)
    assert r.status_code == 201, r.text
    return r.json()


def preview(client, session_id: str, hints: dict):
    return client.post(f"/api/sessions/{session_id}/colorize", json=hints)


# ---------------------------------------------------------------------------- sessions
def test_a_session_has_an_unguessable_id_and_the_photos_size(session):
    assert len(session["id"]) >= 22  # token_urlsafe(16): 128 random bits
    assert (session["width"], session["height"]) == (W, H)
    assert (session["preview_width"], session["preview_height"]) == (W, H)  # small: full size
    assert session["max_hints"] == 5


def test_a_hint_colours_its_flat_region_and_stops_at_the_edge(client, session):
    before = decode(preview(client, session["id"], {"points": []}).content)
    r = preview(client, session["id"], RED)
    assert r.status_code == 200, r.text
    assert r.headers["content-type"] == "image/jpeg"
    assert r.headers["x-somcolor-hints"] == "1"
    after = decode(r.content)
    assert after.shape == (H, W, 3)
    far_left = after[H // 2, 10]  # the same flat region, far from the hint
    assert reddish(after[LEFT[1], LEFT[0]]) and reddish(far_left)
    assert not reddish(after[RIGHT[1], RIGHT[0]])
    # Across the edge the hint's colour does not reach: a green hint in its place gives
    # the same colour there (any change from the automatic colour is the solve's own
    # smoothing of the model's chroma, whatever the hint), though not on the left.
    green = {"points": [dict(RED["points"][0], color="#00ff00")]}
    other = decode(preview(client, session["id"], green).content)
    assert np.abs(other[RIGHT[1], RIGHT[0]].astype(int) - after[RIGHT[1], RIGHT[0]]).max() <= 4
    assert np.abs(other[LEFT[1], LEFT[0]].astype(int) - after[LEFT[1], LEFT[0]]).max() > 100
    assert not reddish(before[LEFT[1], LEFT[0]])  # the red there is the hint's


def test_a_large_photo_is_previewed_downscaled_with_hints_in_its_own_pixels(tmp_path):
    app = create_app(workdir=tmp_path, preview_side=64)
    with local_client(app) as c:
        info = open_session(c).json()
        assert (info["width"], info["height"]) == (W, H)
        assert (info["preview_width"], info["preview_height"]) == (43, 64)[::-1]
        r = preview(c, info["id"], RED)
        out = decode(r.content)
        assert out.shape == (43, 64, 3)
        assert reddish(out[20, 10]) and not reddish(out[20, 55])


def test_full_size_colorize_with_hints_is_the_clis_result(client, tmp_path):
    from somcolor.cli import main

    r = client.post(
        "/api/colorize",
        files={"file": ("photo.png", PHOTO, "image/png")},
        data={"hints": json.dumps(RED)},
    )
    assert r.status_code == 200, r.text
    assert r.headers["x-somcolor-hints"] == "1"
    web = decode(r.content)
    (tmp_path / "in.png").write_bytes(PHOTO)
    (tmp_path / "h.json").write_text(json.dumps(RED))
    out = tmp_path / "out.png"
    assert main(["colorize", str(tmp_path / "in.png"), "--hints", str(tmp_path / "h.json"),
                 "-o", str(out), "-q"]) == 0  # fmt: skip
    assert np.array_equal(web, decode(out.read_bytes()))
    assert reddish(web[LEFT[1], LEFT[0]]) and not reddish(web[RIGHT[1], RIGHT[0]])


def test_suggestions_are_the_models_then_the_palette(client, session):
    import somcolor

    r = client.post("/api/suggest", json={"session": session["id"], "x": 30, "y": 50})
    assert r.status_code == 200, r.text
    body = r.json()
    colors = [(c["color"], c["probability"], c["source"]) for c in body["colors"]]
    assert len(colors) == 12  # the default k, the most there is
    sources = [s for _, _, s in colors]
    n_model = sources.index("palette")
    assert n_model >= 1 and set(sources[n_model:]) <= {"model", "palette"}
    probabilities = [p for _, p, _ in colors[:n_model]]
    assert probabilities == sorted(probabilities, reverse=True)
    assert all(p is None for _, p, s in colors if s == "palette")
    expected = somcolor.load().predictor().suggest(two_regions(), 30, 50, 12)
    assert colors == [(c, p if p is None else pytest.approx(p), s) for c, p, s in expected]
    r = client.post("/api/suggest", json={"session": session["id"], "x": 30, "y": 50, "k": 4})
    assert [(c["color"], c["source"]) for c in r.json()["colors"]] == [
        (c, s) for c, _, s in expected[:4]
    ]


def test_sessions_are_bounded_least_recently_used_first(tmp_path):
    app = create_app(workdir=tmp_path, max_hint_sessions=2)
    with local_client(app) as c:
        ids = [open_session(c).json()["id"] for _ in range(2)]
        assert preview(c, ids[0], RED).status_code == 200  # ids[0] is now the most recent
        third = open_session(c).json()["id"]
        msg = refused(preview(c, ids[1], RED), 410, "session_expired")
        assert "make room for newer ones" in msg
        assert preview(c, ids[0], RED).status_code == 200
        assert preview(c, third, RED).status_code == 200
        assert len(app.state.server.sessions) == 2


def test_sessions_are_bounded_in_memory_too(tmp_path):
    app = create_app(workdir=tmp_path, max_hint_session_bytes=1)  # room for the newest only
    with local_client(app) as c:
        first, second = (open_session(c).json()["id"] for _ in range(2))
        refused(preview(c, first, RED), 410, "session_expired")
        assert preview(c, second, RED).status_code == 200
        [held] = app.state.server.sessions._sessions.values()
        assert held.nbytes > 1 << 20  # the worker measured what it holds


def test_an_idle_session_expires(tmp_path):
    app = create_app(workdir=tmp_path, hint_session_ttl_s=60)
    with local_client(app) as c:
        registry = app.state.server.sessions
        now = [1000.0]
        registry.clock = lambda: now[0]
        info = open_session(c).json()
        now[0] += 59
        assert preview(c, info["id"], RED).status_code == 200
        now[0] += 61
        assert "60 s unused" in refused(preview(c, info["id"], RED), 410, "session_expired")


def test_a_deleted_session_is_gone(client):
    info = open_session(client).json()
    assert client.delete(f"/api/sessions/{info['id']}").status_code == 204
    refused(preview(client, info["id"], RED), 410, "session_expired")
    refused(client.post("/api/suggest", json={"session": info["id"], "x": 1, "y": 1}), 410,
            "session_expired")  # fmt: skip


def test_a_request_past_the_hint_deadline_gets_503_and_its_session_ends(tmp_path):
    """A 1280 x 960 preview with 60 hints takes the worker well over the 0.1 s between
    two looks at the deadline (a small one can be done before the first look)."""
    from dataclasses import replace

    app = create_app(workdir=tmp_path)
    rng = np.random.default_rng(0)
    big = png_bytes(rng.integers(0, 255, (1500, 2000), np.uint8))
    xs, ys = rng.integers(0, 2000, 60), rng.integers(0, 1500, 60)
    many = {
        "points": [
            {"x": int(x), "y": int(y), "color": "#f00000"} for x, y in zip(xs, ys, strict=True)
        ]
    }
    with local_client(app) as c:
        info = open_session(c, big).json()
        server = app.state.server
        server.limits = replace(server.limits, hint_timeout_s=0.01)
        refused(preview(c, info["id"], many), 503, "timeout")
        server.limits = replace(server.limits, hint_timeout_s=30)
        refused(preview(c, info["id"], RED), 410, "session_expired")
        again = open_session(c).json()  # a fresh worker takes the next session
        assert preview(c, again["id"], RED).status_code == 200


# ---------------------------------------------------------------------------- bad input
BAD_HINTS = [
    ({"points": [{"x": W, "y": 5, "color": "#ff0000"}]}, "outside the image's columns"),
    ({"points": [{"x": 5, "y": -1, "color": "#ff0000"}]}, "outside the image's rows"),
    ({"points": [{"x": 5, "y": 5, "color": "red"}]}, "not an sRGB hex string"),
    ({"points": [{"x": 5, "y": 5, "color": "#ff00zz"}]}, "not an sRGB hex string"),
    ({"points": [{"x": 5, "y": 5}]}, "missing ['color']"),
    ({"points": [{"x": 1, "y": 1, "color": "#ff0000"}] * 6}, "got 6 points, expected at most 5"),
    ({"dots": []}, "unknown keys ['dots']"),
    ([1, 2], "expected an object"),
]


@pytest.mark.parametrize("hints, message", BAD_HINTS)
def test_bad_hints_are_refused_with_422_in_a_session(client, session, hints, message):
    assert message in refused(preview(client, session["id"], hints), 422, "bad_hints")


@pytest.mark.parametrize("hints, message", BAD_HINTS)
def test_bad_hints_are_refused_with_422_by_colorize(client, hints, message):
    r = client.post(
        "/api/colorize",
        files={"file": ("photo.png", PHOTO, "image/png")},
        data={"hints": json.dumps(hints)},
    )
    assert message in refused(r, 422, "bad_hints")


def test_malformed_requests_to_a_session_are_refused(client, session):
    url = f"/api/sessions/{session['id']}/colorize"
    refused(client.post(url, content=b"{", headers={"content-type": "application/json"}), 422,
            "bad_hints")  # fmt: skip
    refused(client.post(url, content=b"{}", headers={"content-type": "text/plain"}), 415,
            "not_json")  # fmt: skip
    big = json.dumps({"points": [{"x": 1, "y": 1, "color": "#ff0000"}] * 2000})
    refused(client.post(url, content=big, headers={"content-type": "application/json"}), 413,
            "body_too_large")  # fmt: skip
    refused(preview(client, "no-such-session", RED), 404, "unknown_session")
    long = {"points": [], "pad": "x" * 40_000}
    r = client.post(
        "/api/colorize", files={"file": ("p.png", PHOTO)}, data={"hints": json.dumps(long)}
    )
    refused(r, 400, "bad_form")


@pytest.mark.parametrize(
    "body, message",
    [
        ({"x": 1, "y": 1}, "session"),
        ({"session": "s", "x": "1", "y": 1}, "x: got '1', expected a number"),
        ({"session": "s", "x": 1, "y": 1, "k": 0}, "k: got 0"),
        ({"session": "s", "x": 1, "y": 1, "k": 13}, "k: got 13, expected a whole number 1..12"),
        ({"session": "s", "x": 1, "y": 1, "z": 0}, "unknown keys ['z']"),
    ],
)
def test_bad_suggest_requests_are_refused(client, body, message):
    assert message in refused(client.post("/api/suggest", json=body), 422, "bad_request")


def test_suggest_outside_the_photo_is_refused(client, session):
    r = client.post("/api/suggest", json={"session": session["id"], "x": W + 3, "y": 1})
    assert "outside the image" in refused(r, 422, "bad_input")


# ---------------------------------------------------------------------------- references
def test_a_reference_that_is_not_a_photo_is_refused(client):
    refused(open_session(client, reference=b"not a photo at all" * 4), 415, "unsupported_type")
    r = client.post(
        "/api/colorize",
        files={"file": ("p.png", PHOTO), "reference": ("r.png", b"\x89PNG\r\n\x1a\nbroken")},
    )
    refused(r, 422, "corrupt_image")
    r = client.post("/api/colorize", files={"file": ("p.png", PHOTO), "reference": ("r.png", b"")})
    assert "'reference' file is empty" in refused(r, 400, "empty_file")


def test_a_reference_over_the_pixel_limit_is_refused(tmp_path):
    app = create_app(workdir=tmp_path, max_pixels=H * W)
    with local_client(app) as c:
        big = png_bytes(np.zeros((H + 1, W, 3), np.uint8))
        msg = refused(open_session(c, reference=big), 413, "too_many_pixels")
        assert msg.startswith("the reference photo")


def test_the_reference_counts_against_the_upload_size(tmp_path):
    app = create_app(workdir=tmp_path, max_upload_bytes=len(PHOTO) + 100)
    with local_client(app) as c:
        assert open_session(c).status_code == 201
        refused(open_session(c, reference=PHOTO), 413, "upload_too_large")


def reference_available(client) -> bool:
    return client.get("/api/config").json()["reference"]["available"]


def test_a_gray_reference_is_refused_with_422(client):
    if not reference_available(client):
        msg = refused(open_session(client, reference=PHOTO), 501, "no_reference")
        pytest.skip(f"no reference support in this somcolor: {msg}")
    refused(open_session(client, reference=PHOTO), 422, "bad_reference")
    r = client.post(
        "/api/colorize", files={"file": ("p.png", PHOTO), "reference": ("r.png", PHOTO)}
    )
    refused(r, 422, "bad_reference")


def test_a_colour_reference_changes_the_result_and_is_reported(client):
    if not reference_available(client):
        pytest.skip("no reference support in this somcolor")
    ref = np.zeros((64, 96, 3), np.uint8)
    ref[:, :48] = (30, 60, 160)  # dark: blue
    ref[:, 48:] = (240, 200, 40)  # light: yellow
    plain = client.post("/api/colorize", files={"file": ("p.png", PHOTO)})
    r = client.post(
        "/api/colorize", files={"file": ("p.png", PHOTO), "reference": ("r.png", png_bytes(ref))}
    )
    assert r.status_code == 200, r.text
    assert r.headers["x-somcolor-reference"] == "yes"
    assert not np.array_equal(decode(r.content), decode(plain.content))
    info = open_session(client, reference=png_bytes(ref)).json()
    assert info["reference"] == "reference"


@needs_video
def test_a_video_job_takes_a_reference_for_the_whole_clip(client, clip):
    if not reference_available(client):
        pytest.skip("no reference support in this somcolor")
    ref = np.zeros((64, 96, 3), np.uint8)
    ref[:, :48] = (30, 60, 160)
    ref[:, 48:] = (240, 200, 40)
    files = {"file": ("clip.mp4", clip, "video/mp4"), "reference": ("r.png", png_bytes(ref))}
    r = client.post("/api/jobs", files=files)
    assert r.status_code == 202, r.text
    job = wait_for_job(client, r.json()["id"], timeout=120)
    assert job["state"] == "done", job
    assert job["summary"]["reference"] is True
    client.delete(f"/api/jobs/{job['id']}")
    files["reference"] = ("gray.png", PHOTO)
    r = client.post("/api/jobs", files=files)
    job = wait_for_job(client, r.json()["id"], timeout=120)
    assert job["state"] == "failed" and "gray" in job["error"], job
    assert "/" not in job["error"]  # no server path
    client.delete(f"/api/jobs/{job['id']}")


# ---------------------------------------------------------------------------- the rest
def test_the_server_keeps_serving_after_bad_hint_requests(client, session):
    for hints, _ in BAD_HINTS:
        preview(client, session["id"], hints)
    assert client.get("/api/health").json() == {"status": "ok"}
    assert preview(client, session["id"], RED).status_code == 200
    assert client.post("/api/colorize", files={"file": ("p.png", PHOTO)}).status_code == 200


def test_openapi_documents_the_hint_api(client):
    schema = client.get("/openapi.json").json()
    paths = schema["paths"]
    assert {"/api/sessions", "/api/sessions/{session_id}/colorize", "/api/suggest"} <= set(paths)
    form = paths["/api/colorize"]["post"]["requestBody"]["content"]["multipart/form-data"]
    assert {"hints", "reference"} <= set(form["schema"]["properties"])
    body = paths["/api/sessions/{session_id}/colorize"]["post"]["requestBody"]
    assert body["content"]["application/json"]["schema"]["required"] == ["points"]
    assert "reference" in paths["/api/jobs"]["post"]["requestBody"]["content"][
        "multipart/form-data"]["schema"]["properties"]  # fmt: skip
    suggest = paths["/api/suggest"]["post"]["requestBody"]["content"]["application/json"]
    assert suggest["schema"]["properties"]["k"]["default"] == 12
    color = schema["components"]["schemas"]["SuggestedColor"]["properties"]
    assert color["source"]["enum"] == ["model", "palette"]
    assert {"type": "null"} in color["probability"]["anyOf"]  # null for a palette colour


def test_config_reports_the_hint_limits(client):
    config = client.get("/api/config").json()
    limits = config["limits"]
    assert limits["max_hints"] == 5
    assert {"max_hint_sessions", "hint_session_ttl_s", "preview_side", "hint_workers"} <= set(
        limits
    )
    assert set(config["reference"]) == {"available", "why_not"}
