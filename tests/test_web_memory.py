"""The server's memory budget (:mod:`somcolor.web.memory`, ``Server.room``).

The measurement: a child process's memory shows in its parent's tree. The budget on
a hand-set measurement: what fits is admitted, a photo group counts only the photos
that run at once, a release gives the room back. Through the app, with real hint and
photo workers: a budget too small for anything answers ``503 memory_budget`` with
``Retry-After`` (a session, a photo, a video job), never a crash; opening sessions
past the budget closes the least recently used idle one (its id then gets 410),
never one serving a request; reservations end with their work.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time

import pytest
from conftest import image_array
from test_web import GRAY_PNG, files_in, local_client, needs_video, post_photo, post_video, refused

from somcolor.web import create_app
from somcolor.web.memory import (
    MIB,
    MemoryBudget,
    OverBudget,
    descendants,
    photo_bytes,
    process_bytes,
    session_bytes,
    tree_bytes,
    video_bytes,
)

#: Pixels of GRAY_PNG.
PIXELS = image_array("gray").size

pytestmark = pytest.mark.skipif(
    not os.path.exists("/proc/self/status"), reason="measuring memory needs Linux /proc"
)


# ---------------------------------------------------------------------------- measuring
def test_a_childs_memory_shows_in_the_tree():
    script = "import sys; block = b'x' * (64 << 20); print('ready', flush=True); sys.stdin.read()"
    child = subprocess.Popen(
        [sys.executable, "-c", script], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    try:
        assert child.stdout.readline() == "ready\n"
        assert child.pid in descendants(os.getpid())
        own = process_bytes(child.pid)
        assert own >= 60 * MIB  # its 64 MiB block, written, is resident
        assert tree_bytes() >= process_bytes(os.getpid()) + own - MIB
    finally:
        child.communicate("")
    assert process_bytes(child.pid) == 0  # gone


def test_without_smaps_rollup_the_resident_size_is_counted(monkeypatch):
    import somcolor.web.memory as memory

    real = memory._read
    monkeypatch.setattr(memory, "_read", lambda p: None if p.endswith("smaps_rollup") else real(p))
    rss = process_bytes(os.getpid())
    monkeypatch.undo()
    assert rss >= process_bytes(os.getpid()) > 0  # RSS counts shared pages in full


def test_estimates_grow_with_the_pixels_and_a_reference():
    assert photo_bytes(12_000_000) > photo_bytes(500_000) > photo_bytes(0) > 0
    assert session_bytes(500_000, reference_pixels=500_000) > session_bytes(500_000)
    assert video_bytes(1920 * 1080) > video_bytes(640 * 480)


# ---------------------------------------------------------------------------- the budget
class Meter:
    """A hand-set measurement."""

    def __init__(self, value: int):
        self.value = value
        self.reads = 0

    def __call__(self) -> int:
        self.reads += 1
        return self.value


def test_what_fits_is_admitted_and_a_release_gives_the_room_back():
    budget = MemoryBudget(1000, measure=Meter(500))
    first = budget.reserve(300)
    with pytest.raises(OverBudget) as exc:
        budget.reserve(201)
    assert (exc.value.need, exc.value.used, exc.value.budget) == (201, 800, 1000)
    second = budget.reserve(200)  # exactly full
    assert budget.used() == 1000
    first.release()
    first.release()  # twice is once
    second.release()
    assert budget.reserved() == 0 and budget.reserve(500).nbytes == 500


def test_only_the_photos_that_run_at_once_count():
    budget = MemoryBudget(1000, measure=Meter(0), groups={"photos": 2})
    held = [budget.reserve(n, "photos") for n in (100, 400, 300, 200)]
    assert budget.reserved() == 700  # the two largest
    assert budget.reserve(500, "photos").nbytes == 500  # 500 + 400 run at once: fits
    with pytest.raises(OverBudget):
        budget.reserve(700, "photos")  # 700 + 500
    budget.reserve(100)  # outside the group: counted in full
    held[1].release()
    assert budget.reserved() == 500 + 300 + 100


def test_no_budget_admits_everything_but_still_counts():
    budget = MemoryBudget(None, measure=Meter(10**12))
    assert budget.reserve(10**12).nbytes == 10**12
    assert budget.report() == {"budget": None, "measured": 10**12, "reserved": 10**12}


def test_a_measurement_is_reused_briefly_and_taken_again_after_a_release():
    meter, now = Meter(100), [0.0]
    budget = MemoryBudget(1000, measure=meter, max_age_s=1.0, clock=lambda: now[0])
    budget.measured(), budget.measured()
    assert meter.reads == 1
    budget.reserve(10).release()
    budget.measured()
    assert meter.reads == 2
    now[0] = 5.0
    budget.measured()
    assert meter.reads == 3


# ---------------------------------------------------------------------------- through the app
def open_session(client, data: bytes = GRAY_PNG):
    return client.post("/api/sessions", files={"file": ("photo.png", data, "image/png")})


def test_a_budget_too_small_for_anything_answers_503_with_retry_after(tmp_path):
    app = create_app(workdir=tmp_path, memory_budget_bytes=MIB)  # the tree holds far more
    with local_client(app) as c:
        for r in (open_session(c), post_photo(c, GRAY_PNG)):
            msg = refused(r, 503, "memory_budget")
            assert "of its budget of 1 MiB in use" in msg and "try again" in msg
            assert r.headers["retry-after"] == "10"
        assert c.get("/api/health").status_code == 200  # the server goes on
        assert app.state.server.memory.reserved() == 0
        assert files_in(app) == []


@pytest.fixture
def metered(tmp_path):
    """An app whose memory is measured as 100 MiB per hint session held (hand-set), with
    a budget of 250 MiB: two sessions fit beside a third one opening, not three."""
    app = create_app(workdir=tmp_path, memory_budget_bytes=250 * MIB, max_hint_sessions=8)
    server = app.state.server
    server.memory._measure = lambda: 100 * MIB * len(server.sessions)
    server.memory.measure_again()
    with local_client(app) as c:
        yield app, c


def test_opening_a_session_past_the_budget_closes_the_oldest_idle_one(metered):
    app, c = metered
    ids = [open_session(c).json()["id"] for _ in range(2)]
    assert len(app.state.server.sessions) == 2
    third = open_session(c)
    assert third.status_code == 201, third.text
    msg = refused(
        c.post(f"/api/sessions/{ids[0]}/colorize", json={"points": []}), 410, "session_expired"
    )
    assert msg == "this photo's hint session was closed to make room in the server's memory budget"
    preview = c.post(f"/api/sessions/{ids[1]}/colorize", json={"points": []})
    assert preview.status_code == 200  # the newer one is kept
    assert app.state.server.memory.reserved() == 0


def test_a_session_serving_a_request_is_not_closed_for_memory(metered):
    app, c = metered
    sessions = app.state.server.sessions
    ids = [open_session(c).json()["id"] for _ in range(2)]
    with sessions.using(ids[0]), sessions.using(ids[1]):  # both busy: nothing to close
        refused(open_session(c), 503, "memory_budget")
    with sessions.using(ids[0]):  # the older busy: the newer idle one goes
        assert open_session(c).status_code == 201
    refused(c.post(f"/api/sessions/{ids[1]}/colorize", json={"points": []}), 410, "session_expired")
    assert c.post(f"/api/sessions/{ids[0]}/colorize", json={"points": []}).status_code == 200


def test_a_photo_past_the_budget_closes_an_idle_session_first(metered):
    app, c = metered
    server = app.state.server
    ids = [open_session(c).json()["id"] for _ in range(2)]
    server.memory.budget = 200 * MIB + photo_bytes(PIXELS)  # room for the two and a photo
    assert post_photo(c, GRAY_PNG).status_code == 200
    assert len(server.sessions) == 2
    server.memory.budget = 200 * MIB  # no room for a photo beside both
    assert post_photo(c, GRAY_PNG).status_code == 200
    assert len(server.sessions) == 1 and server.sessions.oldest_idle().id == ids[1]
    assert server.memory.reserved() == 0


@needs_video
def test_a_video_job_past_the_budget_gets_503_and_holds_no_job_slot(tmp_path, clip_bytes):
    app = create_app(workdir=tmp_path, memory_budget_bytes=MIB, max_jobs=1)
    server = app.state.server
    with local_client(app) as c:
        r = post_video(c, clip_bytes)
        assert "a video job needs about" in refused(r, 503, "memory_budget")
        assert r.headers["retry-after"] == "10"
        assert files_in(app) == [] and server.jobs._held() == 0
        server.memory.budget = None
        job = c.post("/api/jobs", files={"file": ("clip.mp4", clip_bytes, "video/mp4")}).json()
        deadline = time.monotonic() + 60
        while c.get(f"/api/jobs/{job['id']}").json()["state"] not in ("done", "failed"):
            assert time.monotonic() < deadline
            time.sleep(0.05)
        assert c.get(f"/api/jobs/{job['id']}").json()["state"] == "done"
        assert server.memory.reserved() == 0  # released when the job ended


@pytest.fixture(scope="module")
def clip_bytes() -> bytes:
    from test_web import make_clip

    pytest.importorskip("av", reason="PyAV missing: install the 'video' extra")
    return make_clip()


def test_config_reports_the_budget(tmp_path):
    with local_client(create_app(workdir=tmp_path, memory_budget_bytes=512 * MIB)) as c:
        assert c.get("/api/config").json()["limits"]["memory_budget_bytes"] == 512 * MIB
    with local_client(create_app(workdir=tmp_path)) as c:
        assert c.get("/api/config").json()["limits"]["memory_budget_bytes"] is None
