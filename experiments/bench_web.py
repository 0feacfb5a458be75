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
writes ``experiments/results/bench_web_hints.json``.

``--mode memory`` measures the server on a network's terms, with its default limits and
memory budget (``--memory-budget-mb``, ``somcolor serve``'s default): the process
tree's memory -- proportional set size (PSS, what the budget counts) and the sum of
resident sizes (RSS), from ``/proc`` -- after warm-up, idle with ``--sessions`` hint
sessions open (0.5 MP photos), at its peak during a load test (``--photos`` photo
uploads, ``--concurrency`` at a time, sampled every 0.2 s) and after it, with how
many sessions the budget kept; then ``--slow-connections`` connections from one
address that each send half a request line: how many were closed at once (the
per-address cap), how many at the header deadline, how long the last took, and the
server's open file descriptors before and after. Prints the CPU (``/proc/cpuinfo``)
beside the figures, exits 1 if the tree's PSS ever passed the budget, a photo was not
colorized, or a slow connection was still open after the deadline and a margin, and
writes ``experiments/results/bench_web_memory.json``. ``--mode all`` runs all three.
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
import threading
import time
from collections import Counter
from dataclasses import asdict, dataclass
from pathlib import Path

import httpx
import skimage.data
from PIL import Image

import somcolor
from somcolor.paths import RESULTS_DIR
from somcolor.web.memory import MIB, descendants, process_bytes
from somcolor.web.settings import SERVE_MEMORY_BUDGET_MIB, Limits


@dataclass
class Config:
    clients: int = 50  #: uploads sent at once
    rounds: int = 3  #: times the burst is repeated
    max_rss_mb: float = 1500.0  #: the server's peak resident memory must stay below this
    timeout_s: float = 300.0  #: per request
    mode: str = "load"  #: load (the concurrent uploads), hints, memory, or all
    hint_updates: int = 10  #: hints added one at a time per photo (--mode hints)
    photos: int = 200  #: photo uploads in the load test (--mode memory)
    concurrency: int = 8  #: of them at a time (--mode memory)
    sessions: int = 8  #: hint sessions opened before the load test (--mode memory)
    memory_budget_mb: int = SERVE_MEMORY_BUDGET_MIB  #: the server's --memory-budget
    slow_connections: int = 200  #: connections sending half a request line (--mode memory)


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
    if cfg.mode not in ("load", "hints", "memory", "all"):
        p.error(f"--mode: got {cfg.mode!r}, expected load, hints, memory or all")
    status = 0
    if cfg.mode in ("hints", "all"):
        status |= main_hints(cfg)
    if cfg.mode in ("load", "all"):
        status |= main_load(cfg)
    if cfg.mode in ("memory", "all"):
        status |= main_memory(cfg)
    return status


def start_server(*options: str) -> tuple[str, subprocess.Popen, object]:
    port = free_port()
    log = tempfile.NamedTemporaryFile(prefix="bench_web-", suffix=".log", delete=False)
    cmd = [sys.executable, "-m", "somcolor", "serve", "--host", "127.0.0.1", "--port", str(port)]
    cmd += list(options)
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
    # All clients come from 127.0.0.1: raise the per-address caps above --clients.
    url, proc, log = start_server(
        "--max-connections-per-client", str(cfg.clients + 8), "--rate-burst", "100000"
    )
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


# ---------------------------------------------------------------------------- --mode memory
def cpu_model() -> str:
    """The CPU's model name (``/proc/cpuinfo``), and how many CPUs this process sees."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return f"{line.split(':', 1)[1].strip()}, {os.cpu_count()} CPUs"
    except OSError:
        pass
    return f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPUs"


def tree_memory(pid: int) -> dict:
    """The server's tree now: PSS and RSS summed, in MiB, and per process."""
    rows = []
    for p in descendants(pid):
        try:
            status = Path(f"/proc/{p}/status").read_text()
            name = Path(f"/proc/{p}/cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        rss = next(int(x.split()[1]) for x in status.splitlines() if x.startswith("VmRSS"))
        kind = (
            "server"
            if p == pid
            else "resource tracker"
            if b"resource_tracker" in b" ".join(name)
            else "worker"
        )
        rows.append(
            {
                "pid": p,
                "kind": kind,
                "pss_mb": round(process_bytes(p) / MIB, 1),
                "rss_mb": round(rss / 1024, 1),
            }
        )
    return {
        "pss_mb": round(sum(r["pss_mb"] for r in rows), 1),
        "rss_mb": round(sum(r["rss_mb"] for r in rows), 1),
        "processes": rows,
    }


class Sampler:
    """The tree's memory every ``period`` seconds, in a thread; the peaks."""

    def __init__(self, pid: int, period: float = 0.2):
        self.pid, self.period = pid, period
        self.peak_pss = self.peak_rss = 0.0
        self.samples = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self):
        while not self._stop.is_set():
            now = tree_memory(self.pid)
            self.peak_pss = max(self.peak_pss, now["pss_mb"])
            self.peak_rss = max(self.peak_rss, now["rss_mb"])
            self.samples += 1
            self._stop.wait(self.period)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()


def open_fds(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/fd"))


def alive_sessions(url: str, ids: list[str]) -> int:
    """How many of the sessions still answer a preview (the budget may have closed some)."""
    with httpx.Client(base_url=url, timeout=120) as client:
        codes = [
            client.post(f"/api/sessions/{i}/colorize", json={"points": []}).status_code for i in ids
        ]
    return sum(c == 200 for c in codes)


async def photo_load(url: str, photo: bytes, cfg: Config) -> tuple[float, Counter, list]:
    """``cfg.photos`` uploads, ``cfg.concurrency`` at a time: wall time, statuses, latencies."""
    gate = asyncio.Semaphore(cfg.concurrency)
    limits = httpx.Limits(max_connections=cfg.concurrency)
    async with httpx.AsyncClient(base_url=url, timeout=cfg.timeout_s, limits=limits) as client:

        async def one(i: int):
            async with gate:
                t0 = time.perf_counter()
                try:
                    r = await client.post("/api/colorize", files={"file": (f"p{i}.png", photo)})
                except httpx.HTTPError as exc:
                    return f"error: {type(exc).__name__}", time.perf_counter() - t0
                ok = r.status_code == 200 and r.content[:8] == b"\x89PNG\r\n\x1a\n"
                return (
                    r.status_code if ok or r.status_code != 200 else "bad png"
                ), time.perf_counter() - t0

        t0 = time.perf_counter()
        answers = await asyncio.gather(*(one(i) for i in range(cfg.photos)))
        return time.perf_counter() - t0, Counter(a[0] for a in answers), [a[1] for a in answers]


def slow_headers(port: int, n: int, deadline_s: float) -> dict:
    """``n`` connections that send half a request line and nothing more: when each closed."""
    socks, t0 = [], time.monotonic()
    for _ in range(n):
        s = socket.create_connection(("127.0.0.1", port))
        try:
            s.sendall(b"GET /api/health HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ")
        except OSError:  # closed at once: a reset may come first
            pass
        s.setblocking(False)
        socks.append(s)
    closed_at: dict[int, float] = {}
    give_up = t0 + deadline_s + 20
    while len(closed_at) < n and time.monotonic() < give_up:
        for i, s in enumerate(socks):
            if i in closed_at:
                continue
            try:
                data = s.recv(65536)
            except BlockingIOError:
                continue
            except OSError:
                data = b""
            if data == b"" or data.startswith(b"HTTP/1.1 408"):
                closed_at[i] = time.monotonic() - t0
        time.sleep(0.02)
    for s in socks:
        s.close()
    times = sorted(closed_at.values())
    return {
        "connections": n,
        "closed_within_1s": sum(t < 1.0 for t in times),
        "closed_at_the_deadline": sum(t >= 1.0 for t in times),
        "still_open": n - len(times),
        "last_closed_s": round(times[-1], 2) if times else None,
    }


def main_memory(cfg: Config) -> int:
    cpu = cpu_model()
    load_before = os.getloadavg()[0]
    budget = cfg.memory_budget_mb
    defaults = Limits()
    print(f"CPU: {cpu}; load average {load_before:.2f}; memory budget {budget} MiB")
    # Photos and sessions all come from 127.0.0.1: the rate limit (a per-address bound,
    # not memory) is raised so that it refuses none of them; every other limit is the default.
    url, proc, log = start_server(
        "--memory-budget", str(budget), "--rate-burst", "100000", "--rate-per-minute", "100000"
    )
    port = int(url.rsplit(":", 1)[1])
    result: dict = {"config": asdict(cfg), "cpu": cpu, "load_average_before": round(load_before, 2)}
    try:
        wait_until_up(url, proc)
        photo = photo_png()
        asyncio.run(photo_load(url, photo, Config(photos=4, concurrency=2)))  # both photo workers
        time.sleep(1.0)
        result["after_warm_up"] = tree_memory(proc.pid)
        session_photo = photo_of_size(866, 577)
        ids = []
        with httpx.Client(base_url=url, timeout=cfg.timeout_s) as client:
            for _ in range(cfg.sessions):
                r = client.post("/api/sessions", files={"file": ("s.png", session_photo)})
                r.raise_for_status()
                ids.append(r.json()["id"])
        time.sleep(1.0)
        result["idle_with_sessions"] = {
            **tree_memory(proc.pid),
            "sessions_opened": len(ids),
            "sessions_open": alive_sessions(url, ids),
        }
        with Sampler(proc.pid) as sampler:
            wall, statuses, latencies = asyncio.run(photo_load(url, photo, cfg))
        latencies.sort()
        result["load"] = {
            "photos": cfg.photos,
            "concurrency": cfg.concurrency,
            "statuses": {str(k): v for k, v in statuses.items()},
            "wall_s": round(wall, 1),
            "photos_per_s": round(cfg.photos / wall, 2),
            "latency_s": {
                "p50": round(statistics.median(latencies), 2),
                "max": round(latencies[-1], 2),
            },
            "peak_pss_mb": round(sampler.peak_pss, 1),
            "peak_rss_mb": round(sampler.peak_rss, 1),
            "samples": sampler.samples,
        }
        time.sleep(1.0)
        result["after_load"] = {**tree_memory(proc.pid), "sessions_open": alive_sessions(url, ids)}
        fds_before = open_fds(proc.pid)
        slow = slow_headers(port, cfg.slow_connections, defaults.header_timeout_s)
        time.sleep(0.5)
        result["slow_headers"] = {
            **slow,
            "header_timeout_s": defaults.header_timeout_s,
            "max_connections_per_client": defaults.max_connections_per_client,
            "server_fds_before": fds_before,
            "server_fds_after": open_fds(proc.pid),
        }
    finally:
        proc.terminate()
        proc.wait(timeout=30)
        log.close()
        os.unlink(log.name)

    load, idle, after = result["load"], result["idle_with_sessions"], result["after_load"]
    slow = result["slow_headers"]
    peak = max(load["peak_pss_mb"], idle["pss_mb"], after["pss_mb"])
    within = peak <= budget
    all_ok = load["statuses"] == {"200": cfg.photos}
    closed = slow["still_open"] == 0
    warm = result["after_warm_up"]
    print(f"after warm-up: PSS {warm['pss_mb']:.0f} MiB, RSS sum {warm['rss_mb']:.0f} MiB")
    print(
        f"idle with {idle['sessions_opened']} hint sessions opened ({idle['sessions_open']} kept): "
        f"PSS {idle['pss_mb']:.0f} MiB, RSS sum {idle['rss_mb']:.0f} MiB (budget {budget} MiB)"
    )
    print(
        f"load: {cfg.photos} photos, {cfg.concurrency} at a time: statuses {load['statuses']}, "
        f"{load['photos_per_s']} photos/s, latency p50 {load['latency_s']['p50']} s max "
        f"{load['latency_s']['max']} s; peak PSS {load['peak_pss_mb']:.0f} MiB, peak RSS sum "
        f"{load['peak_rss_mb']:.0f} MiB ({load['samples']} samples)"
    )
    print(
        f"after the load: PSS {after['pss_mb']:.0f} MiB, RSS sum {after['rss_mb']:.0f} MiB, "
        f"{after['sessions_open']} of {idle['sessions_opened']} sessions open"
    )
    print(
        f"slow headers: {slow['connections']} connections: {slow['closed_within_1s']} closed "
        f"within 1 s (per-address cap {slow['max_connections_per_client']}), "
        f"{slow['closed_at_the_deadline']} at the {slow['header_timeout_s']:g} s deadline, "
        f"last after {slow['last_closed_s']} s, {slow['still_open']} still open; server fds "
        f"{slow['server_fds_before']} -> {slow['server_fds_after']}"
    )
    print(
        f"{'PASS' if within and all_ok and closed else 'FAIL'}: peak PSS {peak:.0f} MiB "
        f"{'within' if within else 'OVER'} the budget of {budget} MiB; CPU {cpu}"
    )
    result.update(
        load_average_after=round(os.getloadavg()[0], 2),
        somcolor_version=somcolor.__version__,
        python=platform.python_version(),
        packages={m: _version(m) for m in ("fastapi", "uvicorn", "h11", "numpy", "numba")},
    )
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    out = RESULTS_DIR / "bench_web_memory.json"
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {out}")
    return 0 if within and all_ok and closed else 1


def _version(module: str) -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(module)
    except PackageNotFoundError:
        return "not installed"


if __name__ == "__main__":
    sys.exit(main())
