"""Load check of the web server: 50 concurrent photo uploads on loopback.

``python -m experiments.bench_web [--clients 50] [--rounds 3]`` starts ``somcolor
serve`` in a subprocess on a free 127.0.0.1 port, then, from this (second) process,
sends ``--clients`` uploads of the same gray photo at once, ``--rounds`` times. It
prints, per round, the answers' status codes, requests per second (answers / wall time
of the round) and latency percentiles, and the server's resident memory (``VmRSS``)
after each round and at its peak (``VmHWM``, Linux ``/proc``). It exits 1 unless every
upload got a colorized PNG and the peak stayed under ``--max-rss-mb``. The figures and
the resolved settings are written to ``experiments/results/bench_web.json``.

The photo is scikit-image's ``camera`` (512 x 512, gray), so nothing is downloaded.

``--mode hints`` times colour hints instead: for a 0.5 MP photo (scikit-image's
``camera`` enlarged to 866 x 577) and a 12 MP one (4000 x 3000), it opens a hint
session (``POST /api/sessions``), then adds ``--hint-updates`` hints one at a time,
each time sending all of them to ``POST /api/sessions/{id}/colorize`` and reading the
preview: the time from a change of hints to the new preview received, as the page
sees it (without the browser's decoding). It also times the full-size download
(``POST /api/colorize`` with the hints) and a suggestion (``POST /api/suggest``), and
writes ``experiments/results/bench_web_hints.json``. ``--mode all`` runs both.
"""

from __future__ import annotations

import argparse
import asyncio
import io
import json
import os
import platform
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from dataclasses import asdict, dataclass
from pathlib import Path

import httpx
import skimage.data
from PIL import Image

import somcolor
from somcolor.paths import RESULTS_DIR


@dataclass
class Config:
    clients: int = 50  #: uploads sent at once
    rounds: int = 3  #: times the burst is repeated
    max_rss_mb: float = 1500.0  #: the server's peak resident memory must stay below this
    timeout_s: float = 300.0  #: per request
    mode: str = "load"  #: load (the concurrent uploads), hints (hint timings), or all
    hint_updates: int = 10  #: hints added one at a time per photo (--mode hints)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def memory_mb(pid: int) -> dict[str, float]:
    """The process's resident memory now and at its peak, in MiB (Linux /proc)."""
    out = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            out[key] = int(value.split()[0]) / 1024
    return out


def in_process_seconds(repeats: int = 3) -> float:
    """Median time to colorize the photo in this process: the ceiling for the server."""
    model = somcolor.load()
    photo = skimage.data.camera()
    model.colorize(photo)  # warm-up
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        model.colorize(photo)
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def photo_png() -> bytes:
    buf = io.BytesIO()
    Image.fromarray(skimage.data.camera()).save(buf, format="PNG")
    return buf.getvalue()


async def burst(url: str, photo: bytes, cfg: Config) -> tuple[float, list, list]:
    """Send ``cfg.clients`` uploads at once.

    Returns the wall time, ``[(status, seconds, ok)]`` per upload, and the latencies of
    ``GET /api/health`` polled meanwhile (the event loop must stay free).
    """
    limits = httpx.Limits(max_connections=cfg.clients, max_keepalive_connections=cfg.clients)
    async with httpx.AsyncClient(base_url=url, timeout=cfg.timeout_s, limits=limits) as client:

        async def one(i: int):
            t0 = time.perf_counter()
            try:
                r = await client.post(
                    "/api/colorize", files={"file": (f"camera{i}.png", photo, "image/png")}
                )
            except httpx.HTTPError as exc:
                return f"error: {type(exc).__name__}", time.perf_counter() - t0, False
            ok = r.status_code == 200 and r.content[:8] == b"\x89PNG\r\n\x1a\n"
            return r.status_code, time.perf_counter() - t0, ok

        async def poll_health(done: asyncio.Event, out: list):
            async with httpx.AsyncClient(base_url=url, timeout=cfg.timeout_s) as probe:
                while not done.is_set():
                    t0 = time.perf_counter()
                    await probe.get("/api/health")
                    out.append(time.perf_counter() - t0)
                    await asyncio.sleep(0.25)

        done, health = asyncio.Event(), []
        poller = asyncio.create_task(poll_health(done, health))
        t0 = time.perf_counter()
        answers = await asyncio.gather(*(one(i) for i in range(cfg.clients)))
        wall = time.perf_counter() - t0
        done.set()
        await poller
        return wall, answers, health


def wait_until_up(url: str, proc: subprocess.Popen, timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"bench_web: the server exited with status {proc.returncode}")
        try:
            if httpx.get(f"{url}/api/health", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise SystemExit("bench_web: the server did not start")


def photo_of_size(width: int, height: int) -> bytes:
    """scikit-image's ``camera`` resized to ``width`` x ``height``, as PNG."""
    buf = io.BytesIO()
    im = Image.fromarray(skimage.data.camera()).resize((width, height), Image.BILINEAR)
    im.save(buf, format="PNG", compress_level=1)
    return buf.getvalue()


def time_hints(url: str, width: int, height: int, cfg: Config) -> dict:
    """Open a hint session on a ``width`` x ``height`` photo and time hint updates."""
    photo = photo_of_size(width, height)
    files = {"file": ("camera.png", photo, "image/png")}
    with httpx.Client(base_url=url, timeout=cfg.timeout_s) as client:
        t0 = time.perf_counter()
        r = client.post("/api/sessions", files=files)
        r.raise_for_status()
        opened = time.perf_counter() - t0
        info = r.json()
        sid = info["id"]
        first = client.post(f"/api/sessions/{sid}/colorize", json={"points": []})
        first.raise_for_status()
        points, updates, solves = [], [], []
        for i in range(cfg.hint_updates):
            x = int((0.1 + 0.8 * ((i * 0.37) % 1)) * width)
            y = int((0.1 + 0.8 * ((i * 0.61) % 1)) * height)
            points.append({"x": x, "y": y, "color": "#c83232" if i % 2 else "#2f6fb0"})
            t0 = time.perf_counter()
            r = client.post(f"/api/sessions/{sid}/colorize", json={"points": points})
            r.raise_for_status()
            updates.append(time.perf_counter() - t0)
            solves.append(float(r.headers["x-somcolor-seconds"]))
        t0 = time.perf_counter()
        r = client.post("/api/suggest", json={"session": sid, "x": width // 2, "y": height // 2})
        r.raise_for_status()
        suggest_s = time.perf_counter() - t0
        downloads = []
        for _ in range(2):  # the first may start a photo worker (seconds): the second counts
            t0 = time.perf_counter()
            r = client.post(
                "/api/colorize", files=files, data={"hints": json.dumps({"points": points})}
            )
            r.raise_for_status()
            downloads.append(time.perf_counter() - t0)
        download_s = downloads[-1]
        client.delete(f"/api/sessions/{sid}")
    row = {
        "photo": f"{width}x{height}",
        "megapixels": round(width * height / 1e6, 2),
        "preview": f"{info['preview_width']}x{info['preview_height']}",
        "open_session_s": round(opened, 3),
        "update_s": {
            "median": round(statistics.median(updates), 3),
            "max": round(max(updates), 3),
            "all": [round(u, 3) for u in updates],
        },
        "worker_render_s_median": round(statistics.median(solves), 3),
        "suggest_s": round(suggest_s, 3),
        "full_size_download_s": round(download_s, 3),
    }
    print(
        f"hints on {row['photo']} ({row['megapixels']} MP, preview {row['preview']}): open "
        f"{row['open_session_s']} s; a change of hints -> preview received: median "
        f"{row['update_s']['median']} s, max {row['update_s']['max']} s over "
        f"{cfg.hint_updates} (in the worker: {row['worker_render_s_median']} s); suggest "
        f"{row['suggest_s']} s; full-size PNG with the hints {row['full_size_download_s']} s"
    )
    return row


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    defaults = Config()
    for name, value in asdict(defaults).items():
        p.add_argument(f"--{name.replace('_', '-')}", type=type(value), default=value)
    cfg = Config(**vars(p.parse_args(argv)))
    if cfg.mode not in ("load", "hints", "all"):
        p.error(f"--mode: got {cfg.mode!r}, expected load, hints or all")
    status = 0
    if cfg.mode in ("hints", "all"):
        status |= main_hints(cfg)
    if cfg.mode in ("load", "all"):
        status |= main_load(cfg)
    return status


def start_server() -> tuple[str, subprocess.Popen, object]:
    port = free_port()
    log = tempfile.NamedTemporaryFile(prefix="bench_web-", suffix=".log", delete=False)
    cmd = [sys.executable, "-m", "somcolor", "serve", "--host", "127.0.0.1", "--port", str(port)]
    return (
        f"http://127.0.0.1:{port}",
        subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT),
        log,
    )


def main_hints(cfg: Config) -> int:
    load_before = os.getloadavg()[0]
    url, proc, log = start_server()
    rows = []
    try:
        wait_until_up(url, proc)
        time_hints(url, 64, 48, Config(hint_updates=1))  # warm-up: starts the hint worker
        for width, height in ((866, 577), (4000, 3000)):
            rows.append(time_hints(url, width, height, cfg))
    finally:
        proc.terminate()
        proc.wait(timeout=30)
        log.close()
        os.unlink(log.name)
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    out = RESULTS_DIR / "bench_web_hints.json"
    result = {
        "config": asdict(cfg),
        "photos": "skimage.data.camera() resized, gray PNG",
        "load_average_before": round(load_before, 2),
        "load_average_after": round(os.getloadavg()[0], 2),
        "rows": rows,
        "somcolor_version": somcolor.__version__,
        "python": platform.python_version(),
        "machine": f"{platform.machine()}, {os.cpu_count()} CPUs",
    }
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {out}")
    return 0


def main_load(cfg: Config) -> int:

    load_before = os.getloadavg()[0]
    ceiling = in_process_seconds()
    print(
        f"colorizing the photo in-process: {ceiling:.3f} s (at most {1 / ceiling:.2f} photos/s "
        f"one at a time); load average {load_before:.2f} on {os.cpu_count()} CPUs"
    )
    photo = photo_png()
    url, proc, log = start_server()
    rounds = []
    try:
        wait_until_up(url, proc)
        asyncio.run(burst(url, photo, Config(clients=2)))  # warm-up
        alone = statistics.median(
            asyncio.run(burst(url, photo, Config(clients=1)))[1][0][1] for _ in range(3)
        )
        base = memory_mb(proc.pid)
        print(
            f"server pid {proc.pid} on {url}; one upload alone: {alone:.3f} s (median of 3); "
            f"RSS after warm-up {base['VmRSS']:.0f} MiB"
        )
        for n in range(1, cfg.rounds + 1):
            wall, answers, health = asyncio.run(burst(url, photo, cfg))
            mem = memory_mb(proc.pid)
            latencies = sorted(s for _, s, _ in answers)
            row = {
                "round": n,
                "statuses": {str(k): v for k, v in Counter(a[0] for a in answers).items()},
                "ok": sum(a[2] for a in answers),
                "wall_s": round(wall, 3),
                "requests_per_s": round(len(answers) / wall, 2),
                "latency_s": {
                    "p50": round(statistics.median(latencies), 3),
                    "p95": round(latencies[int(0.95 * (len(latencies) - 1))], 3),
                    "max": round(latencies[-1], 3),
                },
                "health_max_s": round(max(health), 3),
                "rss_mb": round(mem["VmRSS"], 1),
                "peak_rss_mb": round(mem["VmHWM"], 1),
            }
            rounds.append(row)
            print(
                f"round {n}: {row['ok']}/{cfg.clients} colorized, statuses {row['statuses']}, "
                f"{row['requests_per_s']} requests/s ({wall:.2f} s), latency p50 "
                f"{row['latency_s']['p50']} s p95 {row['latency_s']['p95']} s max "
                f"{row['latency_s']['max']} s; /api/health meanwhile <= {row['health_max_s']} s; "
                f"server RSS {row['rss_mb']:.0f} MiB, "
                f"peak {row['peak_rss_mb']:.0f} MiB"
            )
    finally:
        proc.terminate()
        proc.wait(timeout=30)
        log.close()
        os.unlink(log.name)

    all_ok = all(r["ok"] == cfg.clients for r in rounds)
    peak = max(r["peak_rss_mb"] for r in rounds)
    bounded = peak < cfg.max_rss_mb
    rps = [r["requests_per_s"] for r in rounds]
    print(
        f"{'PASS' if all_ok and bounded else 'FAIL'}: {sum(r['ok'] for r in rounds)}/"
        f"{cfg.clients * cfg.rounds} answered with a PNG; median {statistics.median(rps)} "
        f"requests/s; server peak RSS {peak:.0f} MiB (limit {cfg.max_rss_mb:.0f})"
    )
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    out = RESULTS_DIR / "bench_web.json"
    result = {
        "config": asdict(cfg),
        "photo": "skimage.data.camera() 512x512 gray PNG",
        "in_process_colorize_s": round(ceiling, 3),
        "one_upload_alone_s": round(alone, 3),
        "load_average_before": round(load_before, 2),
        "load_average_after": round(os.getloadavg()[0], 2),
        "baseline_rss_mb": round(base["VmRSS"], 1),
        "rounds": rounds,
        "somcolor_version": somcolor.__version__,
        "python": platform.python_version(),
        "machine": f"{platform.machine()}, {os.cpu_count()} CPUs",
        "packages": {m: _version(m) for m in ("fastapi", "uvicorn", "numpy", "numba", "httpx")},
    }
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {out}")
    return 0 if all_ok and bounded else 1


def _version(module: str) -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(module)
    except PackageNotFoundError:
        return "not installed"


if __name__ == "__main__":
    sys.exit(main())
