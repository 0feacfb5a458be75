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
import os
import threading
import time
import warnings
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from somcolor.decode import DECODERS
from somcolor.web import create_app

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


def files_in(app) -> list[str]:
    return sorted(os.listdir(app.state.server.folder))


@pytest.fixture
def app(tmp_path):
    return create_app(workdir=tmp_path, result_ttl_s=60)


@pytest.fixture
def client(app):
    with TestClient(app) as c:
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
    with TestClient(app) as c:
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
    with TestClient(app) as c:
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

    with TestClient(app) as c:
        r = c.post(
            "/api/colorize",
            content=body(),
            headers={"content-type": f"multipart/form-data; boundary={boundary}"},
        )
        refused(r, 413, "upload_too_large")
        assert files_in(app) == []


def test_photo_over_the_pixel_limit_is_refused_with_413(tmp_path):
    app = create_app(workdir=tmp_path, max_pixels=1000)
    with TestClient(app) as c:
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
    with TestClient(app) as c:
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
    def broken(path, model):
        raise RuntimeError("a bug")

    with TestClient(app, raise_server_exceptions=False) as c:
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

    def spy(path, model):
        seen.append((Path(path), Path(path).stat().st_mode & 0o777))
        return real(path, model)

    app.state.server.colorize_photo = spy
    with TestClient(app) as c:
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
    with TestClient(app) as c:
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
def test_bad_smoothing_is_refused(client, clip):
    msg = refused(post_video(client, clip, smoothing="1.5"), 422, "bad_option")
    assert "smoothing" in msg


@needs_video
def test_video_over_the_pixel_limit_fails_with_the_reason(tmp_path, clip):
    app = create_app(workdir=tmp_path, max_pixels=1000)
    with TestClient(app) as c:
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
    with TestClient(app) as c:
        first = post_video(c, clip)
        assert first.status_code == 202
        msg = refused(post_video(c, clip), 429, "too_many_jobs")
        assert "1 video job" in msg
        assert post_photo(c, GRAY_PNG).status_code == 200  # photos still work
        refused(c.get(f"/api/jobs/{first.json()['id']}/result"), 409, "job_not_done")
        release.set()
        assert wait_for_job(c, first.json()["id"])["state"] == "done"
        second = post_video(c, clip)  # the slot is free again
        assert second.status_code == 202
        assert wait_for_job(c, second.json()["id"])["state"] == "done"


@needs_video
def test_results_are_deleted_after_the_ttl(tmp_path, clip):
    app = create_app(workdir=tmp_path, result_ttl_s=0.5)
    with TestClient(app) as c:
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

    def fake_run(app, host, port, log_level):
        calls.update(app=app, host=host, port=port)
        with TestClient(app) as c:
            calls["config"] = c.get("/api/config").json()

    monkeypatch.setattr(uvicorn, "run", fake_run)
    code = main(["serve", "--port", "8123", "--model", str(tiny_model_path), "--max-jobs", "4"])
    assert code == 0
    assert calls["host"] == "127.0.0.1" and calls["port"] == 8123
    assert calls["config"]["limits"]["max_jobs"] == 4
    assert calls["config"]["models"][0]["label"] == "tiny.npz"
    assert "serving http://127.0.0.1:8123/" in capsys.readouterr().out


@pytest.mark.parametrize("argv", [["serve", "--port", "0"], ["serve", "--max-jobs", "0"]])
def test_serve_refuses_bad_options(argv, capsys):
    from somcolor.cli import EXIT_USAGE, main

    with pytest.raises(SystemExit) as exc:
        main(argv)
    assert exc.value.code == EXIT_USAGE
    assert capsys.readouterr().err.startswith("somcolor: error:")
