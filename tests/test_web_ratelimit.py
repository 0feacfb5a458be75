"""The per-client request rate limit (:mod:`somcolor.web.ratelimit`) and its 429."""

from __future__ import annotations

import threading

import numpy as np
import pytest
from test_web import local_client, png_bytes, refused

from somcolor.web import create_app
from somcolor.web.ratelimit import RateLimiter

pytest.importorskip("fastapi")


class Clock:
    """A clock the test moves by hand."""

    def __init__(self):
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


# ---------------------------------------------------------------------------- the bucket
def test_a_full_bucket_lets_a_burst_through_then_says_how_long_to_wait():
    clock = Clock()
    limiter = RateLimiter(per_minute=30, burst=5, max_clients=10, clock=clock)
    assert [limiter.take("a") for _ in range(5)] == [0.0] * 5
    assert limiter.take("a") == pytest.approx(2.0)  # 30 a minute: one token every 2 s
    assert limiter.take("a") == pytest.approx(2.0)  # a refusal takes nothing


def test_the_bucket_refills_at_the_rate_and_no_further_than_the_burst():
    clock = Clock()
    limiter = RateLimiter(per_minute=30, burst=3, max_clients=10, clock=clock)
    for _ in range(3):
        limiter.take("a")
    clock.now += 1.0  # half a token back
    assert limiter.take("a") == pytest.approx(1.0)
    clock.now += 1.0
    assert limiter.take("a") == 0.0
    assert limiter.take("a") > 0
    clock.now += 3600.0  # an hour idle: the bucket is full, not 1800 tokens deep
    assert [limiter.take("a") for _ in range(4)][-1] > 0
    assert sum(limiter.take("b") == 0.0 for _ in range(10)) == 3


def test_one_client_emptying_its_bucket_leaves_others_alone():
    clock = Clock()
    limiter = RateLimiter(per_minute=1, burst=2, max_clients=10, clock=clock)
    for _ in range(5):
        limiter.take("10.0.0.1")
    assert limiter.take("10.0.0.1") > 0
    assert limiter.take("10.0.0.2") == 0.0


def test_the_tracked_clients_are_bounded_and_the_least_recent_is_forgotten():
    clock = Clock()
    limiter = RateLimiter(per_minute=1, burst=1, max_clients=3, clock=clock)
    limiter.take("old")
    for i in range(100):
        limiter.take(f"10.0.{i}.1")
        limiter.take("busy")  # seen again and again: kept
        assert len(limiter) <= 3
    assert len(limiter) == 3
    assert limiter.take("busy") > 0  # still remembered, still empty
    assert limiter.take("old") == 0.0  # forgotten: starts again with a full bucket


def test_threads_taking_at_once_get_exactly_the_burst():
    limiter = RateLimiter(per_minute=1e-6, burst=50, max_clients=10, clock=Clock())
    granted = []
    start = threading.Barrier(8)

    def hammer():
        start.wait()
        granted.extend(limiter.take("a") == 0.0 for _ in range(100))

    threads = [threading.Thread(target=hammer) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sum(granted) == 50 and len(granted) == 800


@pytest.mark.parametrize(
    "bad", [dict(per_minute=0), dict(burst=0), dict(max_clients=0), dict(per_minute=-1)]
)
def test_bad_settings_are_refused(bad):
    with pytest.raises(ValueError, match="expected positive numbers"):
        RateLimiter(**{"per_minute": 60, "burst": 1, "max_clients": 1, **bad})


@pytest.mark.parametrize(
    "bad", [dict(rate_per_minute=0), dict(rate_burst=0), dict(rate_clients=-1)]
)
def test_bad_rate_limits_are_refused_at_creation(tmp_path, bad):
    with pytest.raises(ValueError, match="expected a positive number"):
        create_app(workdir=tmp_path, **bad)


# ---------------------------------------------------------------------------- the app
PHOTO = png_bytes(np.tile(np.linspace(0, 255, 24, dtype=np.uint8), (16, 1)))


@pytest.fixture
def app(tmp_path):
    return create_app(workdir=tmp_path, rate_per_minute=1, rate_burst=3, rate_clients=4)


@pytest.fixture
def client(app):
    with local_client(app, client=("10.0.0.1", 5000)) as c:
        yield c


def empty_bucket(client) -> None:
    for _ in range(3):
        assert client.get("/api/health").status_code == 200


def test_over_the_limit_is_429_in_json_with_retry_after(client):
    empty_bucket(client)
    r = client.get("/api/config")
    assert "too many requests" in refused(r, 429, "rate_limited")
    assert r.headers["retry-after"] == "60"  # one a minute, the bucket just emptied
    assert r.headers["x-content-type-options"] == "nosniff"  # the usual headers too
    r = client.post("/api/colorize", files={"file": ("p.png", PHOTO)})
    refused(r, 429, "rate_limited")


def test_another_address_is_not_affected_and_the_server_keeps_serving(app, client):
    empty_bucket(client)
    refused(client.get("/api/health"), 429, "rate_limited")
    other = local_client(app, client=("10.0.0.2", 5000))
    r = other.post("/api/colorize", files={"file": ("p.png", PHOTO)})
    assert r.status_code == 200 and r.headers["content-type"] == "image/png"
    assert other.get("/api/health").json() == {"status": "ok"}


def test_forwarding_headers_do_not_buy_a_fresh_bucket(client):
    empty_bucket(client)
    r = client.get("/api/health", headers={"x-forwarded-for": "203.0.113.9"})
    refused(r, 429, "rate_limited")


def test_the_page_its_files_and_the_schema_are_not_limited(client):
    empty_bucket(client)
    for path in ("/", "/static/app.js", "/static/style.css", "/openapi.json") * 3:
        assert client.get(path).status_code == 200, path


def test_polling_a_job_is_not_counted(client):
    empty_bucket(client)
    for _ in range(10):  # a job's state: the page asks twice a second
        refused(client.get("/api/jobs/nosuchjob"), 404, "unknown_job")
    refused(client.get("/api/jobs/nosuchjob/result"), 429, "rate_limited")


def test_the_apps_table_of_clients_stays_bounded(app, client):
    for i in range(20):
        local_client(app, client=(f"192.0.2.{i}", 5000)).get("/api/health")
    assert len(app.state.rate_limiter) == 4


def test_config_and_schema_document_the_limit(client):
    limits = client.get("/api/config").json()["limits"]
    assert (limits["rate_per_minute"], limits["rate_burst"], limits["rate_clients"]) == (1, 3, 4)
    paths = client.get("/openapi.json").json()["paths"]
    for path, method in [
        ("/api/colorize", "post"),
        ("/api/suggest", "post"),
        ("/api/sessions", "post"),
        ("/api/sessions/{session_id}/colorize", "post"),
        ("/api/jobs/{job_id}/result", "get"),
    ]:
        answer = paths[path][method]["responses"]["429"]
        assert "Retry-After" in answer["headers"], path
    assert "429" not in paths["/api/jobs/{job_id}"]["get"]["responses"]
