"""The web API (:mod:`somcolor.web`) through FastAPI's test client.

Good photos and videos come back colorized; every limit answers with its 4xx JSON
error (size, pixels, type by content, corrupt files, busy server, expired results);
uploads live only in the app's private folder under generated names; and the server
keeps answering after every bad request. Video cases need the ``video`` extra and are
skipped, with the reason, without it.
"""

from __future__ import annotations

import functools
import importlib.util
import io
import json
import os
import threading
import time
import warnings
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from somcolor.decode import DECODERS
from somcolor.paths import DEFAULT_MODEL
from somcolor.web import create_app, server_options
from somcolor.web.connections import GuardedH11Protocol

with warnings.catch_warnings():  # newer Starlette asks for httpx2; httpx works the same
    warnings.simplefilter("ignore")
    from fastapi.testclient import TestClient

from conftest import image_array, synthetic_photo  # noqa: E402

HAS_VIDEO = all(importlib.util.find_spec(m) is not None for m in ("somcolor.video", "av"))
needs_video = pytest.mark.skipif(
    not HAS_VIDEO, reason="somcolor.video or PyAV missing: install the 'video' extra"
)


# ---------------------------------------------------------------------------- helpers
def png_bytes(array: np.ndarray, fmt: str = "PNG") -> bytes:
    buf = io.BytesIO()
    Image.fromarray(array).save(buf, format=fmt)
    return buf.getvalue()


GRAY_PNG = png_bytes(image_array("gray"))


def make_clip(n_frames: int = 10, width: int = 48, height: int = 32) -> bytes:
    """A tiny H.264 MP4 of a moving gray gradient, written with PyAV in memory."""
    import av

    buf = io.BytesIO()
    with av.open(buf, "w", format="mp4") as out:
        stream = out.add_stream("libx264", rate=10)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        ramp = np.linspace(0, 200, width)[None, :, None]
        for i in range(n_frames):
            frame = np.broadcast_to(ramp + 4 * i, (height, width, 3)).astype(np.uint8)
            out.mux(stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")))
        out.mux(stream.encode(None))
    return buf.getvalue()


def post_photo(client, data: bytes, name: str = "photo.png", **fields):
    return client.post("/api/colorize", files={"file": (name, data, "image/png")}, data=fields)


def post_video(client, data: bytes, name: str = "clip.mp4", **fields):
    return client.post("/api/jobs", files={"file": (name, data, "video/mp4")}, data=fields)


def wait_for_job(client, job_id: str, timeout: float = 30.0) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        job = client.get(f"/api/jobs/{job_id}").json()
        if job["state"] in ("done", "failed"):
            return job
        time.sleep(0.05)
    raise AssertionError(f"job {job_id} did not finish in {timeout} s")


def refused(response, status: int, code: str) -> str:
    """Assert a JSON refusal with this status and code; return its message."""
    assert response.status_code == status, response.text
    body = response.json()
    assert body["code"] == code, body
    assert isinstance(body["detail"], str) and body["detail"]
    return body["detail"]


def local_client(app, **kwargs) -> TestClient:
    """A test client that names the server ``localhost`` (TestClient's own
    ``testserver`` is not a name the server answers to)."""
    return TestClient(app, base_url="http://localhost", **kwargs)


def files_in(app) -> list[str]:
    return sorted(os.listdir(app.state.server.folder))


@pytest.fixture
def app(tmp_path):
    return create_app(workdir=tmp_path, result_ttl_s=60)


@pytest.fixture
def client(app):
    with local_client(app) as c:
        yield c


@pytest.fixture(scope="module")
def clip() -> bytes:
    pytest.importorskip("av", reason="PyAV missing: install the 'video' extra")
    return make_clip()


# ---------------------------------------------------------------------------- photos
def test_gray_photo_comes_back_as_a_color_png_of_the_same_size(client, app):
    r = post_photo(client, GRAY_PNG, name="grand-mère 1931.png")
    assert r.status_code == 200, r.text
    assert r.headers["content-type"] == "image/png"
    assert 'filename="grand-m_re_1931_color.png"' in r.headers["content-disposition"]
    out = np.asarray(Image.open(io.BytesIO(r.content)))
    assert out.shape == (*image_array("gray").shape, 3)
    assert np.ptp(out.astype(int), axis=2).max() > 0  # not gray any more
    assert files_in(app) == []  # the upload is gone once answered


@pytest.mark.parametrize("kind, fmt", [("rgb", "JPEG"), ("rgba", "PNG"), ("gray", "BMP")])
def test_other_formats_and_modes_are_accepted(client, kind, fmt):
    r = post_photo(client, png_bytes(image_array(kind), fmt), name="x")
    assert r.status_code == 200, r.text


def test_type_is_judged_by_content_not_by_name(client):
    assert post_photo(client, GRAY_PNG, name="notes.txt").status_code == 200
    refused(post_photo(client, b"just some text\n" * 10, name="photo.png"), 415, "unsupported_type")


@pytest.mark.parametrize("decoder", sorted(DECODERS))
def test_every_decoder_offered_works(client, decoder):
    assert decoder in client.get("/api/config").json()["decoders"]
    assert post_photo(client, GRAY_PNG, decoder=decoder).status_code == 200


def test_models_folder_adds_models_and_skips_broken_files(tmp_path, tiny_model_path):
    models = tmp_path / "models"
    models.mkdir()
    (models / "tiny.npz").write_bytes(tiny_model_path.read_bytes())
    (models / "broken.npz").write_bytes(b"not a model")
    app = create_app(models_dir=models, workdir=tmp_path)
    with local_client(app) as c:
        names = [m["name"] for m in c.get("/api/config").json()["models"]]
        assert names == ["default", "fast", "tiny"]  # both bundled models, then the folder's
        tiny = post_photo(c, GRAY_PNG, model="tiny")
        default = post_photo(c, GRAY_PNG)
        assert tiny.status_code == default.status_code == 200
        assert tiny.content != default.content
        msg = refused(post_photo(c, GRAY_PNG, model="../tiny"), 422, "bad_option")
        assert "expected one of ['default', 'fast', 'tiny']" in msg


# ---------------------------------------------------------------------------- limits
def test_upload_over_the_size_limit_is_refused_with_413(tmp_path):
    app = create_app(workdir=tmp_path, max_upload_bytes=2000)
    with local_client(app) as c:
        big = png_bytes(synthetic_photo(shape=(64, 64)))
        assert len(big) > 2000
        msg = refused(post_photo(c, big), 413, "upload_too_large")
        assert "1.95 KiB" in msg
        assert post_photo(c, GRAY_PNG).status_code == 200  # below the limit: fine
        assert files_in(app) == []


def test_upload_without_content_length_is_cut_off_at_the_limit(tmp_path):
    """A chunked body (no Content-Length) is counted as it arrives."""
    app = create_app(workdir=tmp_path, max_upload_bytes=1000)
    boundary = "somcolorboundary"
    head = (
        f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="a.png"\r\n'
        "Content-Type: image/png\r\n\r\n"
    ).encode()

    def body():
        yield head
        for _ in range(100):  # 100 KiB in all, never announced
            yield b"\0" * 1024
        yield f"\r\n--{boundary}--\r\n".encode()

    with local_client(app) as c:
        r = c.post(
            "/api/colorize",
            content=body(),
            headers={"content-type": f"multipart/form-data; boundary={boundary}"},
        )
        refused(r, 413, "upload_too_large")
        assert files_in(app) == []


def test_photo_over_the_pixel_limit_is_refused_with_413(tmp_path):
    app = create_app(workdir=tmp_path, max_pixels=1000)
    with local_client(app) as c:
        msg = refused(post_photo(c, GRAY_PNG), 413, "too_many_pixels")
        assert "40x32 = 1,280 pixels" in msg
        small = png_bytes(image_array("gray", shape=(20, 30)))
        assert post_photo(c, small).status_code == 200


@pytest.mark.parametrize(
    "data, code",
    [
        (GRAY_PNG[: len(GRAY_PNG) // 2], "corrupt_image"),  # truncated
        (GRAY_PNG[:8] + b"\0" * 200, "corrupt_image"),  # PNG signature, garbage after
        (png_bytes(image_array("rgb"), "JPEG")[:300], "corrupt_image"),
    ],
    ids=["truncated-png", "png-garbage", "truncated-jpeg"],
)
def test_corrupt_photo_is_refused_with_422(client, data, code):
    refused(post_photo(client, data), 422, code)


def test_foreign_types_are_refused_with_415(client, tmp_path):
    pdf = b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n1 0 obj\n<<>>\nendobj\n"
    refused(post_photo(client, pdf, name="scan.png"), 415, "unsupported_type")
    eps = b"%!PS-Adobe-3.0 EPSF-3.0\n%%BoundingBox: 0 0 10 10\n"  # Pillow reads EPS: not here
    refused(post_photo(client, eps, name="photo.eps"), 415, "unsupported_type")


@pytest.mark.parametrize(
    "files, data, status, code",
    [
        ({"file": ("a.png", b"", "image/png")}, {}, 400, "empty_file"),
        ({"other": ("a.png", GRAY_PNG, "image/png")}, {}, 400, "bad_form"),
        (None, {"model": "default"}, 415, "not_multipart"),  # a urlencoded form, no file
        ({"file": ("a.png", GRAY_PNG, "image/png")}, {"colour": "red"}, 400, "bad_form"),
        ({"file": ("a.png", GRAY_PNG, "image/png")}, {"decoder": "best"}, 422, "bad_option"),
    ],
    ids=["empty", "wrong-field", "not-multipart", "unknown-field", "bad-decoder"],
)
def test_malformed_requests_are_refused(client, app, files, data, status, code):
    refused(client.post("/api/colorize", files=files, data=data), status, code)
    assert files_in(app) == []


def test_no_file_part_is_refused_with_400(client):
    r = client.post("/api/colorize", files={"model": (None, "default")})
    refused(r, 400, "no_file")


def test_too_many_waiting_photos_get_429(tmp_path):
    app = create_app(workdir=tmp_path, max_pending_images=1)
    with local_client(app) as c:
        with app.state.server.photo_slot():  # one photo already in
            refused(post_photo(c, GRAY_PNG), 429, "busy")
            assert c.get("/api/health").status_code == 200
        assert post_photo(c, GRAY_PNG).status_code == 200


def test_server_keeps_answering_after_bad_uploads(client, app):
    bad = [b"", b"\x89PNG\r\n\x1a\n", b"GIF89a" + b"\xff" * 50, os.urandom(4096), b"RIFF"]
    for data in bad * 3:
        assert 400 <= post_photo(client, data).status_code < 500
    assert client.get("/api/health").json() == {"status": "ok"}
    assert post_photo(client, GRAY_PNG).status_code == 200
    assert files_in(app) == []


def test_a_bug_answers_500_in_json_and_the_server_goes_on(app, monkeypatch):
    async def broken(path, choice, disconnected):
        raise RuntimeError("a bug")

    with local_client(app, raise_server_exceptions=False) as c:
        monkeypatch.setattr(app.state.server, "colorize_photo", broken)
        refused_500 = post_photo(c, GRAY_PNG)
        assert refused_500.status_code == 500
        assert refused_500.json() == {"detail": "internal server error", "code": "internal"}
        monkeypatch.undo()
        assert post_photo(c, GRAY_PNG).status_code == 200
        assert files_in(app) == []


# ---------------------------------------------------------------------------- storage
def test_uploads_live_in_a_private_folder_under_generated_names(tmp_path):
    app = create_app(workdir=tmp_path)
    folder = Path(app.state.server.folder)
    assert folder.parent == tmp_path
    assert folder.stat().st_mode & 0o777 == 0o700
    seen = []
    real = app.state.server.colorize_photo

    async def spy(path, choice, disconnected, **options):
        seen.append((Path(path), Path(path).stat().st_mode & 0o777))
        return await real(path, choice, disconnected, **options)

    app.state.server.colorize_photo = spy
    with local_client(app) as c:
        assert post_photo(c, GRAY_PNG, name="../../../etc/evil.png").status_code == 200
        [(path, mode)] = seen
        assert path.parent == folder
        assert mode == 0o600
        assert "evil" not in path.name and len(path.name) == 32
    assert not folder.exists()  # removed when the app shut down


# ---------------------------------------------------------------------------- page, API
def test_page_and_static_files_are_served_without_anything_external(client):
    page = client.get("/")
    assert page.status_code == 200 and "text/html" in page.headers["content-type"]
    assert "default-src 'self'" in page.headers["content-security-policy"]
    for name in ("app.js", "style.css"):
        r = client.get(f"/static/{name}")
        assert r.status_code == 200
        assert "http://" not in r.text and "https://" not in r.text
    assert "https://" not in page.text and "http://" not in page.text


def test_openapi_schema_documents_the_api(client):
    schema = client.get("/openapi.json").json()
    paths = schema["paths"]
    assert {"/api/colorize", "/api/jobs", "/api/jobs/{job_id}", "/api/jobs/{job_id}/result"} <= set(
        paths
    )
    form = paths["/api/colorize"]["post"]["requestBody"]["content"]["multipart/form-data"]
    assert form["schema"]["required"] == ["file"]
    assert "image/png" in paths["/api/colorize"]["post"]["responses"]["200"]["content"]
    assert "413" in paths["/api/jobs"]["post"]["responses"]
    assert client.get("/docs").status_code == 404  # Swagger UI would load from a CDN


def test_config_reports_limits(tmp_path):
    app = create_app(workdir=tmp_path, max_upload_bytes=12345, max_pixels=999, max_jobs=3)
    with local_client(app) as c:
        cfg = c.get("/api/config").json()
    assert cfg["limits"]["max_upload_bytes"] == 12345
    assert cfg["limits"]["max_pixels"] == 999
    assert cfg["limits"]["max_jobs"] == 3
    assert cfg["models"][0]["name"] == cfg["default_model"] == "default"
    assert cfg["video"]["available"] is HAS_VIDEO


@pytest.mark.parametrize("bad", [{"max_jobs": 0}, {"max_pixels": -1}, {"result_ttl_s": True}])
def test_bad_limits_are_refused_at_creation(tmp_path, bad):
    with pytest.raises(ValueError, match="expected a positive number"):
        create_app(workdir=tmp_path, **bad)


def test_unknown_job_is_404(client):
    refused(client.get("/api/jobs/nope"), 404, "unknown_job")
    refused(client.get("/api/jobs/nope/result"), 404, "unknown_job")


# ---------------------------------------------------------------------------- videos
@needs_video
def test_video_job_runs_in_the_background_and_its_result_downloads(client, app, clip):
    import av

    r = post_video(client, clip, name="home movie.mp4", smoothing="0.3")
    assert r.status_code == 202, r.text
    job = r.json()
    assert r.headers["location"] == f"/api/jobs/{job['id']}"
    assert job["state"] in ("queued", "running")
    job = wait_for_job(client, job["id"])
    assert job["state"] == "done", job
    assert job["progress"] == 1.0 and job["frames_done"] == 10
    assert job["summary"]["frames"] == 10 and job["expires_in_s"] > 0
    result = client.get(job["result_url"])
    assert result.status_code == 200 and result.headers["content-type"] == "video/mp4"
    assert 'filename="home_movie_color.mp4"' in result.headers["content-disposition"]
    with av.open(io.BytesIO(result.content)) as container:
        frames = [f.to_ndarray(format="rgb24") for f in container.decode(video=0)]
    assert len(frames) == 10 and frames[0].shape == (32, 48, 3)
    assert np.ptp(frames[5].astype(int), axis=2).max() > 10  # colored
    [result_file] = files_in(app)  # the upload is gone, the result stays until the TTL
    assert result_file.endswith(".mp4") and "home" not in result_file


@needs_video
def test_photo_and_video_endpoints_refuse_each_other(client, clip):
    refused(post_photo(client, clip, name="clip.png"), 415, "video_not_photo")
    refused(post_video(client, GRAY_PNG, name="photo.mp4"), 415, "photo_not_video")
    refused(post_video(client, b"hello" * 100), 415, "unsupported_type")


@needs_video
def test_damaged_video_is_refused_or_fails_with_a_clear_message(client, app, clip):
    refused(post_video(client, clip[: len(clip) // 2]), 422, "corrupt_video")
    assert files_in(app) == []


@needs_video
def test_video_hints_are_checked_and_a_job_past_the_video_fails_with_the_reason(client, app, clip):
    msg = refused(post_video(client, clip, hints="{not json"), 422, "bad_hints")
    assert msg.startswith("hints: not JSON")
    bad = json.dumps({"keyframes": [{"frame": 0, "points": [{"x": 1, "y": 1, "color": "red"}]}]})
    refused(post_video(client, clip, hints=bad), 422, "bad_hints")
    assert files_in(app) == []
    beyond = json.dumps(
        {"keyframes": [{"frame": 50, "points": [{"x": 1, "y": 1, "color": "#ff0000"}]}]}
    )
    r = post_video(client, clip, hints=beyond)
    assert r.status_code == 202, r.text
    job = wait_for_job(client, r.json()["id"])
    assert job["state"] == "failed" and "frame 50 is beyond the video (10 frames" in job["error"]
    good = json.dumps(
        {"keyframes": [{"frame": 2, "points": [{"x": 10, "y": 10, "color": "#ff0000"}]}]}
    )
    r = post_video(client, clip, hints=good)
    job = wait_for_job(client, r.json()["id"])
    assert job["state"] == "done" and job["summary"]["frames"] == 10


@needs_video
def test_bad_smoothing_is_refused(client, clip):
    msg = refused(post_video(client, clip, smoothing="1.5"), 422, "bad_option")
    assert "smoothing" in msg


@needs_video
def test_video_over_the_pixel_limit_fails_with_the_reason(tmp_path, clip):
    app = create_app(workdir=tmp_path, max_pixels=1000)
    with local_client(app) as c:
        job = wait_for_job(c, post_video(c, clip).json()["id"])
        assert job["state"] == "failed"
        assert "48x32 = 1536 pixels per frame, limit is 1000" in job["error"]
        assert str(tmp_path) not in job["error"]  # no private paths in messages
        refused(c.get(f"/api/jobs/{job['id']}/result"), 409, "job_not_done")
        assert files_in(app) == []


@needs_video
def test_jobs_are_bounded_and_a_full_server_answers_429(tmp_path, clip, monkeypatch):
    import somcolor.video

    release = threading.Event()
    real = somcolor.video.colorize_video

    @functools.wraps(real)
    def held(*args, **kwargs):  # a job that runs until the test lets it go
        release.wait(10)
        return real(*args, **kwargs)

    monkeypatch.setattr(somcolor.video, "colorize_video", held)
    app = create_app(workdir=tmp_path, max_jobs=1)
    with local_client(app) as c:
        first = post_video(c, clip)
        assert first.status_code == 202
        msg = refused(post_video(c, clip), 429, "too_many_jobs")
        assert "1 video job" in msg
        assert post_photo(c, GRAY_PNG).status_code == 200  # photos still work
        refused(c.get(f"/api/jobs/{first.json()['id']}/result"), 409, "job_not_done")
        release.set()
        assert wait_for_job(c, first.json()["id"])["state"] == "done"
        refused(post_video(c, clip), 429, "too_many_jobs")  # its stored result counts
        assert c.delete(f"/api/jobs/{first.json()['id']}").status_code == 204
        assert files_in(app) == []
        second = post_video(c, clip)  # the slot is free again
        assert second.status_code == 202
        assert wait_for_job(c, second.json()["id"])["state"] == "done"


@needs_video
def test_results_are_deleted_after_the_ttl(tmp_path, clip):
    app = create_app(workdir=tmp_path, result_ttl_s=0.5)
    with local_client(app) as c:
        job = wait_for_job(c, post_video(c, clip).json()["id"])
        assert job["state"] == "done"
        assert c.get(job["result_url"]).status_code == 200
        assert len(files_in(app)) == 1
        time.sleep(0.6)
        msg = refused(c.get(f"/api/jobs/{job['id']}"), 410, "job_expired")
        assert "0.5 s" in msg
        refused(c.get(job["result_url"]), 410, "job_expired")
        assert files_in(app) == []


# ---------------------------------------------------------------------------- the CLI
def test_serve_command_runs_uvicorn_on_the_app(monkeypatch, capsys, tiny_model_path):
    import uvicorn

    from somcolor.cli import main

    calls = {}

    def fake_run(app, host, port, log_level, proxy_headers, http, ws):
        calls.update(app=app, host=host, port=port, proxy_headers=proxy_headers, http=http)
        with TestClient(app, base_url=f"http://{host}:{port}") as c:
            calls["config"] = c.get("/api/config").json()

    monkeypatch.setattr(uvicorn, "run", fake_run)
    argv = ["serve", "--port", "8123", "--model", str(tiny_model_path), "--max-jobs", "4"]
    argv += ["--max-hints", "7", "--max-hint-session-mb", "64", "--rate-burst", "9"]
    argv += ["--header-timeout", "3", "--max-connections-per-client", "5"]
    code = main(argv)
    assert code == 0
    assert calls["host"] == "127.0.0.1" and calls["port"] == 8123
    limits = calls["config"]["limits"]
    assert (limits["max_hints"], limits["max_hint_session_bytes"]) == (7, 64 << 20)
    assert limits["rate_burst"] == 9 and limits["rate_per_minute"] == 120
    assert (limits["header_timeout_s"], limits["max_connections_per_client"]) == (3, 5)
    assert limits["memory_budget_bytes"] == 1536 << 20  # serve's default budget
    assert calls["http"].func is GuardedH11Protocol  # deadlines and caps on connections
    assert calls["proxy_headers"] is False  # the rate limit trusts only the socket address
    assert calls["config"]["limits"]["max_jobs"] == 4
    assert calls["config"]["models"][0]["label"] == "tiny.npz"
    assert "serving http://127.0.0.1:8123/" in capsys.readouterr().out


@pytest.mark.parametrize(
    "argv",
    [
        ["serve", "--port", "0"],
        ["serve", "--max-jobs", "0"],
        ["serve", "--memory-budget", "0"],
        ["serve", "--header-timeout", "-1"],
        ["serve", "--public-origin", "photos.example.org"],
        ["serve", "--public-origin", "ftp://photos.example.org"],
    ],
)
def test_serve_refuses_bad_options(argv, capsys):
    from somcolor.cli import EXIT_USAGE, main

    with pytest.raises(SystemExit) as exc:
        main(argv)
    assert exc.value.code == EXIT_USAGE
    assert capsys.readouterr().err.startswith("somcolor: error:")


# ---------------------------------------------------------------------------- a real server
class LiveServer:
    """The app under uvicorn on a free loopback port, in a thread, as ``somcolor serve``
    runs it (:func:`somcolor.web.server_options`); stops itself."""

    def __init__(self, app, **options):
        """``options``: more of :class:`uvicorn.Config`'s (``timeout_keep_alive=1``)."""
        import socket

        import uvicorn

        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        self.app = app
        self.url = f"http://127.0.0.1:{self.port}"
        config = uvicorn.Config(
            app,
            host="127.0.0.1",
            port=self.port,
            log_level="warning",
            **server_options(app),
            **options,
        )
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self):
        self.thread.start()
        deadline = time.monotonic() + 30
        while not self.server.started:
            assert time.monotonic() < deadline, "uvicorn did not start"
            time.sleep(0.02)
        return self

    def __exit__(self, *exc):
        self.server.should_exit = True
        self.thread.join(30)

    def post(self, path: str, data: bytes, name: str = "photo.png", timeout: float = 120):
        import httpx

        files = {"file": (name, data, "application/octet-stream")}
        return httpx.post(self.url + path, files=files, timeout=timeout)

    def stalled_upload(self, path: str, sent: bytes = b"0123456789"):
        """A socket that announced a 100 kB multipart upload and sent only ``sent``."""
        import socket

        boundary = "stall"
        head = (
            f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1:{self.port}\r\n"
            f"Content-Type: multipart/form-data; boundary={boundary}\r\n"
            "Content-Length: 100000\r\n\r\n"
            f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="a.mp4"\r\n\r\n'
        ).encode()
        sock = socket.create_connection(("127.0.0.1", self.port))
        sock.sendall(head + sent)
        return sock


def wait_for_job_live(live: LiveServer, job_id: str, timeout: float = 60) -> dict:
    import httpx

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        job = httpx.get(f"{live.url}/api/jobs/{job_id}").json()
        if job["state"] in ("done", "failed"):
            return job
        time.sleep(0.05)
    raise AssertionError(f"job {job_id} did not finish in {timeout} s")


def status_line(sock, timeout: float) -> str:
    """The first line of the server's answer on ``sock`` ("" if it closed silently)."""
    sock.settimeout(timeout)
    try:
        data = sock.recv(4096)
    finally:
        sock.close()
    return data.split(b"\r\n", 1)[0].decode()


BIG_PHOTO = png_bytes(np.random.default_rng(0).integers(0, 255, (2000, 2000), np.uint8))


def slow_model(folder: Path) -> Path:
    """The bundled default predicting at full resolution: BIG_PHOTO takes it seconds."""
    from somcolor.pipeline import Colorizer

    return Colorizer.load(DEFAULT_MODEL).set_params(work_size=None).save(folder / "slow.npz")


def warm_workers(live: LiveServer, n: int) -> None:
    """Start ``n`` photo workers (each loads the models: seconds)."""
    threads = [
        threading.Thread(target=live.post, args=("/api/colorize", GRAY_PNG)) for _ in range(n)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()


def no_workers_within(server, seconds: float) -> bool:
    """Whether every photo worker has stopped within ``seconds``."""
    deadline = time.monotonic() + seconds
    while server.photos.pids() and time.monotonic() < deadline:
        time.sleep(0.05)
    return server.photos.pids() == []


# ---------------------------------------------------------------------------- responsiveness
def test_a_small_photo_is_not_held_behind_a_large_one(tmp_path):
    """Two workers: a small photo sent while a 2000x2000 one is colorized (seconds) is
    answered long before that ends (one lock for all photos made it wait it out)."""
    app = create_app(slow_model(tmp_path), workdir=tmp_path, image_workers=2)
    answers = {}

    def send(name, data):
        t0 = time.monotonic()
        r = live.post("/api/colorize", data)
        assert r.status_code == 200
        answers[name] = (time.monotonic() - t0, float(r.headers["x-somcolor-seconds"]))

    with LiveServer(app) as live:
        warm_workers(live, 2)
        big = threading.Thread(target=send, args=("big", BIG_PHOTO))
        big.start()
        time.sleep(0.5)  # the big one is in its worker
        send("small", GRAY_PNG)
        big.join()
    small_latency, big_colorizing = answers["small"][0], answers["big"][1]
    assert small_latency < big_colorizing / 2, answers


def test_a_photo_past_its_deadline_gets_503_and_its_worker_is_stopped(tmp_path):
    from dataclasses import replace

    app = create_app(slow_model(tmp_path), workdir=tmp_path, image_workers=1)
    server = app.state.server
    with LiveServer(app) as live:
        warm_workers(live, 1)
        [pid] = server.photos.pids()  # started when first needed
        server.limits = replace(server.limits, photo_timeout_s=0.5)
        t0 = time.monotonic()
        msg = refused(live.post("/api/colorize", BIG_PHOTO), 503, "timeout")
        assert "longer than the limit of 0.5 s" in msg
        assert time.monotonic() - t0 < 5  # not the ~10 s the photo takes
        assert no_workers_within(server, 5)  # killed, not left running
        server.limits = replace(server.limits, photo_timeout_s=120)
        assert live.post("/api/colorize", GRAY_PNG).status_code == 200  # a fresh worker
        assert server.photos.pids() != [pid]
        assert files_in(app) == []


def test_a_client_that_leaves_stops_its_photo(tmp_path):
    import socket

    app = create_app(slow_model(tmp_path), workdir=tmp_path, image_workers=1)
    server = app.state.server
    with LiveServer(app) as live:
        warm_workers(live, 1)
        boundary = "leave"
        body = (
            (
                f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="a.png"\r\n'
                "\r\n"
            ).encode()
            + BIG_PHOTO
            + f"\r\n--{boundary}--\r\n".encode()
        )
        head = (
            f"POST /api/colorize HTTP/1.1\r\nHost: 127.0.0.1:{live.port}\r\n"
            f"Content-Type: multipart/form-data; boundary={boundary}\r\n"
            f"Content-Length: {len(body)}\r\n\r\n"
        ).encode()
        with socket.create_connection(("127.0.0.1", live.port)) as sock:
            sock.sendall(head + body)
            time.sleep(1.0)  # received, and in its worker
        assert no_workers_within(server, 5)  # killed soon after the client left
        assert files_in(app) == []


# ---------------------------------------------------------------------------- slow uploads
@needs_video
def test_a_stalled_video_upload_holds_no_job_slot_and_is_cut_off(tmp_path, clip):
    app = create_app(workdir=tmp_path, max_jobs=1, max_uploads=2, upload_chunk_timeout_s=1.0)
    with LiveServer(app) as live:
        stalled = live.stalled_upload("/api/jobs")  # 10 bytes, then nothing
        time.sleep(0.2)
        r = live.post("/api/jobs", clip, name="clip.mp4")  # the only job slot is free
        assert r.status_code == 202, r.text
        t0 = time.monotonic()
        assert status_line(stalled, timeout=10) == "HTTP/1.1 408 Request Timeout"
        assert time.monotonic() - t0 < 5
        assert app.state.server._uploading == 0
        assert wait_for_job_live(live, r.json()["id"])["state"] == "done"


def test_stalled_photo_uploads_free_their_slots_at_the_read_deadline(tmp_path):
    app = create_app(workdir=tmp_path, max_uploads=2, upload_chunk_timeout_s=1.0)
    with LiveServer(app) as live:
        stalled = [live.stalled_upload("/api/colorize") for _ in range(2)]
        time.sleep(0.2)
        refused(live.post("/api/colorize", GRAY_PNG), 429, "busy")  # both slots held
        for sock in stalled:
            assert status_line(sock, timeout=10).startswith("HTTP/1.1 408")
        assert live.post("/api/colorize", GRAY_PNG).status_code == 200
        assert files_in(app) == []


def test_an_upload_slower_than_the_total_deadline_is_cut_off(tmp_path):
    app = create_app(workdir=tmp_path, upload_chunk_timeout_s=1.0, upload_timeout_s=1.0)
    with LiveServer(app) as live:
        sock = live.stalled_upload("/api/colorize")
        for _ in range(8):  # a byte every 0.2 s: never idle for the read deadline
            time.sleep(0.2)
            try:
                sock.sendall(b"x")
            except OSError:
                break
        assert status_line(sock, timeout=10).startswith("HTTP/1.1 408")
        assert live.post("/api/colorize", GRAY_PNG).status_code == 200


# ---------------------------------------------------------------------------- bounded jobs
@needs_video
def test_deleting_a_running_job_cancels_it_and_frees_its_slot(tmp_path, clip, monkeypatch):
    import somcolor.video

    real = somcolor.video.colorize_video
    started = threading.Event()

    @functools.wraps(real)
    def slow(*args, cancel, **kwargs):  # runs until cancelled (or 10 s)
        started.set()
        cancel.wait(10)
        return real(*args, cancel=cancel, **kwargs)

    monkeypatch.setattr(somcolor.video, "colorize_video", slow)
    app = create_app(workdir=tmp_path, max_jobs=1)
    with local_client(app) as c:
        job = post_video(c, clip).json()
        assert started.wait(10)
        t0 = time.monotonic()
        assert c.delete(f"/api/jobs/{job['id']}").status_code == 204
        refused(c.get(f"/api/jobs/{job['id']}"), 404, "unknown_job")
        refused(c.delete(f"/api/jobs/{job['id']}"), 404, "unknown_job")
        deadline = time.monotonic() + 10
        while (r := post_video(c, clip)).status_code == 429 and time.monotonic() < deadline:
            time.sleep(0.05)  # the slot frees once the job's thread has stopped
        assert r.status_code == 202 and time.monotonic() - t0 < 5
        second = r.json()["id"]
        assert c.delete(f"/api/jobs/{second}").status_code == 204
        while files_in(app) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert files_in(app) == []


@needs_video
@pytest.mark.parametrize(
    "limit, message",
    [
        (dict(max_video_frames=4), "10 frames, the limit is 4"),
        (dict(max_video_seconds=0.5), "the limit is 0.5 s"),
        (dict(max_result_bytes=1000), "limit of 1000 bytes"),
        (dict(job_timeout_s=1e-6), "longer than the limit of 1e-06 s"),
    ],
    ids=["frames", "duration", "result-bytes", "wall-time"],
)
def test_video_jobs_are_bounded_by_the_limits(tmp_path, clip, limit, message):
    app = create_app(workdir=tmp_path, **limit)
    with local_client(app) as c:
        assert c.get("/api/config").json()["limits"].items() >= limit.items()
        job = wait_for_job(c, post_video(c, clip).json()["id"])
        assert job["state"] == "failed"
        assert message in job["error"] and str(tmp_path) not in job["error"]
        assert files_in(app) == []


def raw_h264(parts: list[tuple[int, int, int]]) -> bytes:
    """A raw H.264 stream: ``(frames, height, width)`` parts one after the other."""
    import av

    data = b""
    for n, h, w in parts:
        buf = io.BytesIO()
        with av.open(buf, "w", format="h264") as out:
            stream = out.add_stream("libx264", rate=10, options={"preset": "ultrafast"})
            stream.width, stream.height, stream.pix_fmt = w, h, "yuv420p"
            for i in range(n):
                frame = np.full((h, w, 3), 10 * (i % 20), np.uint8)
                out.mux(stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")))
            out.mux(stream.encode(None))
        data += buf.getvalue()
    return data


@needs_video
def test_every_decoded_frame_is_checked_against_the_pixel_limit(tmp_path):
    """The header shows 64x64 (the first 30 frames); the last 3 frames are 320x320."""
    app = create_app(workdir=tmp_path, max_pixels=4096)
    with local_client(app) as c:
        switch = raw_h264([(30, 64, 64), (3, 320, 320)])
        job = wait_for_job(c, post_video(c, switch, name="switch.h264").json()["id"])
        assert job["state"] == "failed"
        assert "frame 31 is 320x320 = 102400 pixels, limit is 4096" in job["error"]
        ok = wait_for_job(c, post_video(c, raw_h264([(5, 64, 64)])).json()["id"])
        assert ok["state"] == "done" and ok["summary"]["frames"] == 5


@needs_video
def test_a_playlist_named_like_a_video_is_refused(client, app, clip, tmp_path):
    """An ffconcat file must not make the server read another file of its folder."""
    other = Path(app.state.server.folder) / "other.mp4"
    other.write_bytes(clip)
    playlist = b"ffconcat version 1.0\nfile other.mp4\n"
    refused(post_video(client, playlist, name="holiday.mp4"), 415, "unsupported_type")
    refused(post_photo(client, playlist, name="holiday.png"), 415, "unsupported_type")
    other.unlink()
    assert files_in(app) == []


@pytest.mark.parametrize("fmt", ["PPM", "TGA", "ICO"])
def test_photo_formats_outside_the_list_are_refused(client, fmt):
    refused(post_photo(client, png_bytes(image_array("rgb"), fmt)), 415, "unsupported_type")


# ---------------------------------------------------------------------------- origins
def test_a_host_the_server_does_not_answer_to_gets_400(app):
    with TestClient(app, base_url="http://evil.example") as c:
        refused(c.get("/api/health"), 400, "bad_host")
        refused(c.get("/"), 400, "bad_host")
        r = post_photo(c, GRAY_PNG)
        refused(r, 400, "bad_host")
        assert r.headers["x-frame-options"] == "DENY"  # security headers on refusals too
    for base in ("http://localhost:8000", "http://127.0.0.1", "http://[::1]:80"):
        with TestClient(app, base_url=base) as c:
            assert c.get("/api/health").status_code == 200


def test_allowed_hosts_and_the_bound_host_are_answered(tmp_path):
    app = create_app(workdir=tmp_path, host="192.168.1.5", allowed_hosts=["Photos.LAN"])
    for base in ("http://photos.lan:8000", "http://192.168.1.5:8000", "http://localhost"):
        with TestClient(app, base_url=base) as c:
            assert c.get("/api/health").status_code == 200
    with TestClient(app, base_url="http://other.lan") as c:
        refused(c.get("/api/health"), 400, "bad_host")
    anyone = create_app(workdir=tmp_path, allowed_hosts=["*"])
    with TestClient(anyone, base_url="http://other.lan") as c:
        assert c.get("/api/health").status_code == 200


def test_state_changing_requests_from_another_origin_get_403(client, app):
    def photo(**headers):
        files = {"file": ("a.png", GRAY_PNG, "image/png")}
        return client.post("/api/colorize", files=files, headers=headers)

    refused(photo(origin="http://evil.example"), 403, "cross_origin")
    refused(photo(origin="null"), 403, "cross_origin")
    refused(photo(origin="http://localhost:9999"), 403, "cross_origin")  # another port
    refused(photo(**{"sec-fetch-site": "cross-site"}), 403, "cross_origin")
    refused(
        client.delete("/api/jobs/x", headers={"origin": "http://evil.example"}), 403, "cross_origin"
    )
    assert photo(origin="http://localhost").status_code == 200  # the page itself
    assert photo(**{"sec-fetch-site": "same-origin"}).status_code == 200
    assert photo().status_code == 200  # curl, scripts: no Origin
    r = client.get("/api/config", headers={"origin": "http://evil.example"})
    assert r.status_code == 200  # reading is not changing (and CORS keeps the answer away)
    assert files_in(app) == []


@pytest.mark.parametrize(
    "origin",
    ["https://localhost", "HTTP://localhost", "Http://localhost", "http://LOCALHOST:80", ""],
)
def test_the_own_origin_is_compared_exactly(client, origin):
    """Not the same scheme, case or port as the page's own ``http://localhost``."""
    files = {"file": ("a.png", GRAY_PNG, "image/png")}
    r = client.post("/api/colorize", files=files, headers={"origin": origin})
    refused(r, 403, "cross_origin")


def test_two_origin_headers_are_refused_whichever_comes_last(client, app):
    files = {"file": ("a.png", GRAY_PNG, "image/png")}
    own, evil = ("origin", "http://localhost"), ("origin", "http://evil.example")
    for headers in ([evil, own], [own, evil], [own, own]):
        msg = refused(
            client.post("/api/colorize", files=files, headers=headers), 400, "duplicate_header"
        )
        assert msg == "the request has 2 Origin headers; expected at most one"
    twice = [("sec-fetch-site", "same-origin"), ("sec-fetch-site", "cross-site")]
    refused(client.delete("/api/jobs/x", headers=twice), 400, "duplicate_header")
    refused(client.get("/api/health", headers=[evil, own]), 400, "duplicate_header")
    assert files_in(app) == []


def test_a_request_needs_exactly_one_host_header(client):
    """Checked by the app (uvicorn's h11 refuses them first: tests/test_web_connections.py)."""
    for hosts in (["localhost", "localhost"], ["localhost", "evil.example"]):
        r = client.get("/api/health", headers=[("host", h) for h in hosts])
        assert refused(r, 400, "bad_host") == "the request has 2 Host headers; expected exactly one"
    assert client.get("/api/health", headers=[("host", "localhost")]).status_code == 200


def test_behind_a_tls_proxy_the_public_origin_is_the_own_one(tmp_path):
    app = create_app(workdir=tmp_path, public_origins=["https://Photos.Example.org:443/"])
    files = {"file": ("a.png", GRAY_PNG, "image/png")}
    with TestClient(app, base_url="http://photos.example.org") as c:  # the proxy's Host
        ok = c.post("/api/colorize", files=files, headers={"origin": "https://photos.example.org"})
        assert ok.status_code == 200
        for other in ("http://photos.example.org", "https://photos.example.org:8443"):
            refused(
                c.post("/api/colorize", files=files, headers={"origin": other}), 403, "cross_origin"
            )
    with pytest.raises(ValueError, match="expected http"):
        create_app(workdir=tmp_path, public_origins=["photos.example.org"])


# ---------------------------------------------------------------------------- smaller
def test_unknown_paths_and_wrong_methods_answer_json_with_a_code(client):
    refused(client.get("/nope"), 404, "not_found")
    refused(client.get("/static/nope.js"), 404, "not_found")
    r = client.put("/api/colorize")
    refused(r, 405, "method_not_allowed")
    assert "POST" in r.headers["allow"]


def test_models_folder_name_clashes_keep_both_models_with_a_warning(
    tmp_path, tiny_model_path, caplog
):
    models = tmp_path / "models"
    models.mkdir()
    for name in ("default.npz", "default-2.npz", "tiny.npz"):
        (models / name).write_bytes(tiny_model_path.read_bytes())
    with caplog.at_level("WARNING", logger="somcolor.web.server"):
        app = create_app(models_dir=models, workdir=tmp_path)
    with local_client(app) as c:
        models_offered = {m["name"]: m["label"] for m in c.get("/api/config").json()["models"]}
    assert models_offered["default-2"] == "default-2.npz"
    assert models_offered["default-3"] == "default.npz"
    assert models_offered["default"] == "bundled model"
    assert "default.npz is offered as 'default-3'" in caplog.text


def test_an_oversized_part_header_is_refused_at_once(client):
    """python-multipart >= 0.0.27 bounds part headers (0.0.26 parsed 32 MiB of one)."""
    body = (
        '--B\r\nContent-Disposition: form-data; name="file"; filename="a.png"\r\n'
        f"X-Pad: {'a' * (8 << 20)}\r\n\r\nxx\r\n--B--\r\n"
    ).encode()
    headers = {"content-type": "multipart/form-data; boundary=B"}
    refused(client.post("/api/colorize", content=body, headers=headers), 400, "bad_form")


def test_models_folder_skips_a_damaged_model_with_a_warning(tmp_path, tiny_model_path, caplog):
    import json

    models = tmp_path / "models"
    models.mkdir()
    (models / "tiny.npz").write_bytes(tiny_model_path.read_bytes())
    with np.load(tiny_model_path) as npz:
        arrays = {k: npz[k] for k in npz.files if k != "metadata"}
        meta = json.loads(str(npz["metadata"]))
    meta["mlp"]["n_layers"] = float("inf")
    np.savez(models / "infinite.npz", metadata=np.array(json.dumps(meta)), **arrays)
    (models / "folder.npz").mkdir()
    with caplog.at_level("WARNING", logger="somcolor.web.server"):
        app = create_app(models_dir=models, workdir=tmp_path)
    with local_client(app) as c:
        names = [m["name"] for m in c.get("/api/config").json()["models"]]
    assert names == ["default", "fast", "tiny"]
    assert "infinite.npz: damaged model file (metadata holds Infinity)" in caplog.text
    assert "folder.npz: is a directory" in caplog.text


@needs_video
def test_video_hints_on_a_server_take_no_file_names(client, clip):
    bad = json.dumps({"keyframes": [{"frame": 0, "scribbles": "/etc/passwd"}]})
    msg = refused(post_video(client, clip, hints=bad), 422, "bad_hints")
    assert "scribbles files are not taken here" in msg
    refused(post_video(client, clip, hints="[" * 20000), 422, "bad_hints")
