"""Connections under ``somcolor serve`` (:mod:`somcolor.web.connections`), on raw sockets.

uvicorn on a loopback port with somcolor's protocol, as ``somcolor serve`` runs it:
a request line or headers that never finish are cut off at the header deadline
(408 in JSON if part of a request came, silently if nothing did), trickling bytes
does not extend it, a body the app did not read is not waited for, a client that
stops reading its answer is dropped, connections past the caps per address and in
total are closed at once, and what h11 refuses (no Host, two Hosts, headers too long,
a garbled request line) is answered in JSON. Deadlines here are short (0.5 s) and
the margins generous: these check behaviour, not speed.
"""

from __future__ import annotations

import json
import socket
import time

import pytest
from test_web import LiveServer  # noqa: E402

from somcolor.web import create_app
from somcolor.web.connections import ConnectionTable, client_key, h11_refusal

DEADLINE = 0.5
#: A connection cut off at a deadline must be closed within this (the deadline included).
MARGIN = 5.0


@pytest.fixture(scope="module")
def live(tmp_path_factory):
    app = create_app(
        workdir=tmp_path_factory.mktemp("web"),
        header_timeout_s=DEADLINE,
        send_timeout_s=DEADLINE,
        max_connections=40,
        max_connections_per_client=6,
        rate_burst=10_000,
    )
    with LiveServer(app, timeout_keep_alive=1) as server:
        yield server


def connect(live) -> socket.socket:
    return socket.create_connection(("127.0.0.1", live.port), timeout=MARGIN)


def read_all(sock: socket.socket, timeout: float = MARGIN) -> bytes:
    """Everything the server sends until it closes (or ``timeout`` passes)."""
    sock.settimeout(timeout)
    data = b""
    try:
        while chunk := sock.recv(65536):
            data += chunk
    except (TimeoutError, ConnectionResetError):
        pass
    return data


def closed_within(sock: socket.socket, seconds: float) -> tuple[bool, bytes, float]:
    """Whether the server closed ``sock`` within ``seconds``; what it sent; when."""
    t0 = time.monotonic()
    sock.settimeout(seconds)
    data, closed = b"", False
    try:
        while chunk := sock.recv(65536):
            data += chunk
        closed = True
    except ConnectionResetError:
        closed = True
    except TimeoutError:
        pass
    return closed, data, time.monotonic() - t0


def answer(data: bytes) -> tuple[int, dict]:
    """The status and JSON body of one HTTP answer."""
    head, _, body = data.partition(b"\r\n\r\n")
    status = int(head.split(b" ", 2)[1])
    assert b"content-type: application/json" in head.lower(), head
    return status, json.loads(body)


def read_answer(sock: socket.socket) -> bytes:
    """One whole answer (head and ``Content-Length`` body) from a kept-alive connection."""
    sock.settimeout(MARGIN)
    data = b""
    while b"\r\n\r\n" not in data:
        data += sock.recv(65536)
    head, _, body = data.partition(b"\r\n\r\n")
    length = next(
        int(line.split(b":")[1])
        for line in head.split(b"\r\n")
        if line.lower().startswith(b"content-length:")
    )
    while len(body) < length:
        body += sock.recv(65536)
    return head + b"\r\n\r\n" + body


def get(live, path: str = "/api/health") -> bytes:
    return f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{live.port}\r\n\r\n".encode()


# ---------------------------------------------------------------------------- the header deadline
def test_a_request_line_that_never_ends_gets_408_at_the_deadline(live):
    with connect(live) as sock:
        sock.sendall(b"GET /api/hea")
        closed, data, seconds = closed_within(sock, MARGIN)
    assert closed and DEADLINE * 0.8 <= seconds < MARGIN
    status, body = answer(data)
    assert (status, body["code"]) == (408, "header_timeout")
    assert body["detail"] == "the request line and headers took longer than the limit of 0.5 s"


def test_headers_trickled_byte_by_byte_do_not_extend_the_deadline(live):
    with connect(live) as sock:
        sock.sendall(
            f"GET /api/health HTTP/1.1\r\nHost: 127.0.0.1:{live.port}\r\nX-Slow: ".encode()
        )
        t0 = time.monotonic()
        try:
            for _ in range(int(MARGIN / 0.1)):  # a byte every 0.1 s: never idle for long
                sock.sendall(b"a")
                time.sleep(0.1)
        except OSError:  # closed by the server
            pass
        closed, data, _ = closed_within(sock, MARGIN)
        seconds = time.monotonic() - t0
    assert closed and seconds < MARGIN
    assert answer(data)[1]["code"] == "header_timeout"


def test_a_connection_that_sends_nothing_is_closed_without_an_answer(live):
    with connect(live) as sock:
        closed, data, seconds = closed_within(sock, MARGIN)
    assert closed and data == b"" and seconds < MARGIN


def test_the_deadline_starts_again_for_each_request_on_a_connection(live):
    with connect(live) as sock:
        for _ in range(3):  # answered one after the other, each well within the deadline
            sock.sendall(get(live))
            assert read_answer(sock).startswith(b"HTTP/1.1 200")
        sock.sendall(b"GET /api/health HTTP/1.1\r\n")  # then half of a fourth
        closed, data, seconds = closed_within(sock, MARGIN)
    assert closed and seconds < MARGIN
    assert answer(data)[1]["code"] == "header_timeout"


def test_many_slow_header_connections_are_all_closed(live):
    socks = []
    for _ in range(5):
        sock = connect(live)
        sock.sendall(b"POST /api/colorize HTTP/1.1\r\nHost: x\r\n")
        socks.append(sock)
    t0 = time.monotonic()
    for sock in socks:
        closed, _, _ = closed_within(sock, MARGIN)
        sock.close()
        assert closed
    assert time.monotonic() - t0 < MARGIN
    assert wait_for_open_connections(live, 0)


# ---------------------------------------------------------------------------- body and answer
def test_a_body_the_app_did_not_read_is_not_waited_for(live):
    """404 at once; then the connection is closed ``timeout_keep_alive`` (1 s) later,
    however the client goes on trickling its announced megabyte."""
    with connect(live) as sock:
        sock.sendall(
            f"POST /nope HTTP/1.1\r\nHost: 127.0.0.1:{live.port}\r\n"
            "Content-Length: 1000000\r\n\r\n0123456789".encode()
        )
        t0 = time.monotonic()
        assert read_answer(sock).startswith(b"HTTP/1.1 404")
        try:
            for _ in range(int(MARGIN / 0.1)):
                sock.sendall(b"x")
                time.sleep(0.1)
        except OSError:
            pass
        closed, _, _ = closed_within(sock, MARGIN)
    assert closed and time.monotonic() - t0 < MARGIN


def test_a_client_that_never_reads_its_answers_is_dropped(live):
    """Pipelined requests for the schema (tens of KiB each) that the client never reads
    fill the socket buffers; the server stops waiting at the send deadline."""
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)  # before connecting
    sock.connect(("127.0.0.1", live.port))
    schema = len(get_ok(live, "/openapi.json"))
    requests = get(live, "/openapi.json") * (16 * 2**20 // schema + 1)  # 16 MiB of answers
    sock.setblocking(False)
    sent = 0
    deadline = time.monotonic() + MARGIN
    while sent < len(requests) and time.monotonic() < deadline:
        try:
            sent += sock.send(requests[sent:])
        except BlockingIOError:
            time.sleep(0.01)
        except OSError:
            break
    assert wait_for_open_connections(live, 0, MARGIN), "the connection is still held"
    sock.close()
    assert get_ok(live).startswith(b'{"status":"ok"}')


def get_ok(live, path: str = "/api/health") -> bytes:
    import httpx

    r = httpx.get(live.url + path, timeout=MARGIN)
    assert r.status_code == 200
    return r.content


def wait_for_open_connections(live, n: int, seconds: float = MARGIN) -> bool:
    """Whether the server holds at most ``n`` connections within ``seconds``."""
    table = live.app.state.connections
    deadline = time.monotonic() + seconds
    while len(table) > n and time.monotonic() < deadline:
        time.sleep(0.02)
    return len(table) <= n


# ---------------------------------------------------------------------------- caps
def test_connections_past_the_cap_per_address_are_closed_at_once(live):
    assert wait_for_open_connections(live, 0)
    held = [connect(live) for _ in range(6)]  # the cap: 6 per address
    assert wait_for_open_connections(live, 6)
    extra = [connect(live) for _ in range(4)]
    for sock in extra:
        closed, data, seconds = closed_within(sock, MARGIN)
        assert closed and data == b"" and seconds < 1.0  # not at the header deadline
        sock.close()
    for sock in held:  # the first six are served
        sock.sendall(get(live))
        assert read_answer(sock).startswith(b"HTTP/1.1 200")
    for sock in held:
        sock.close()
    assert wait_for_open_connections(live, 0)
    with connect(live) as sock:  # room again
        sock.sendall(get(live))
        assert read_answer(sock).startswith(b"HTTP/1.1 200")


def test_connections_past_the_total_cap_are_closed_at_once(tmp_path):
    app = create_app(workdir=tmp_path, max_connections=3, max_connections_per_client=100)
    with LiveServer(app) as live:
        held = [connect(live) for _ in range(3)]
        assert wait_for_open_connections(live, 3)
        with connect(live) as sock:
            closed, data, _ = closed_within(sock, MARGIN)
        assert closed and data == b""
        assert app.state.connections.refused == 1
        for sock in held:
            sock.close()
        assert wait_for_open_connections(live, 0)
        assert get_ok(live)


def test_the_connection_table_counts_per_address_and_in_total():
    table = ConnectionTable(max_total=4, max_per_client=2)
    assert [table.open("a") for _ in range(3)] == [True, True, False]
    assert [table.open("b"), table.open("b"), table.open("c")] == [True, True, False]
    assert (len(table), table.count("a"), table.refused) == (4, 2, 2)
    table.close("a")
    assert table.open("c") and len(table) == 4 and table.count("a") == 1


@pytest.mark.parametrize(
    "host, key",
    [
        ("203.0.113.9", "203.0.113.9"),
        ("2001:db8::1", "2001:db8::/64"),
        ("2001:db8::ffff:1", "2001:db8::/64"),  # the same /64: one client
        ("::ffff:203.0.113.9", "203.0.113.9"),
        ("fe80::1%eth0", "fe80::/64"),
        (None, ""),
    ],
)
def test_clients_are_counted_by_address_and_ipv6_by_its_64(host, key):
    assert client_key(host) == key


# ---------------------------------------------------------------------------- JSON refusals
@pytest.mark.parametrize(
    "request_bytes, status, code, detail",
    [
        (
            b"GET /api/health HTTP/1.1\r\n\r\n",
            400,
            "bad_host",
            "the request has no Host header; expected exactly one",
        ),
        (
            b"GET /api/health HTTP/1.1\r\nHost: localhost\r\nHost: evil.example\r\n\r\n",
            400,
            "bad_host",
            "the request has more than one Host header; expected exactly one",
        ),
        (
            b"GET /api/health HTTP/1.0\r\n\r\n",  # HTTP/1.0 needs no Host: the app refuses
            400,
            "bad_host",
            "the request has no Host header; expected exactly one",
        ),
        (
            # unfinished: h11 bounds headers that have not ended (uvicorn: 16 KiB)
            b"GET /api/health HTTP/1.1\r\nHost: localhost\r\nX-Pad: " + b"a" * 20_000,
            431,
            "headers_too_large",
            "the request line and headers passed 16 KiB",
        ),
        (b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\r\n\r\n", 400, "bad_request", None),  # TLS
    ],
    ids=["no-host", "two-hosts", "http10-no-host", "huge-headers", "garbage"],
)
def test_what_the_http_layer_refuses_is_answered_in_json(live, request_bytes, status, code, detail):
    with connect(live) as sock:
        sock.sendall(request_bytes)
        got_status, body = answer(read_all(sock))
    assert (got_status, body["code"]) == (status, code)
    if detail is not None:
        assert body["detail"] == detail
    else:
        assert body["detail"] == "malformed HTTP request (illegal request line)"


def test_h11_errors_map_to_codes():
    import h11

    assert h11_refusal(None, 16384)[:2] == (400, "bad_request")
    too_long = h11.RemoteProtocolError("Receive buffer too long", error_status_hint=431)
    assert h11_refusal(too_long, 32768) == (
        431,
        "headers_too_large",
        "the request line and headers passed 32 KiB",
    )


def test_the_server_keeps_serving_after_all_of_this(live):
    assert get_ok(live)
    assert wait_for_open_connections(live, 0)
