"""Connections under ``somcolor serve``: a deadline for every phase, caps on how many.

uvicorn bounds the body only through the app (:mod:`.uploads`' read deadlines) and the
time between requests (``timeout_keep_alive``); a client that sends half a request
line, or headers one byte every few seconds, or that stops reading the answer, holds
its connection -- a file descriptor and a task -- for as long as it likes. This module
is the HTTP/1.1 protocol ``somcolor serve`` runs instead of uvicorn's own: uvicorn's
h11 protocol (:class:`uvicorn.protocols.http.h11_impl.H11Protocol`), with

* **the request line and headers** within ``header_timeout_s``, counted from the moment
  the server waits for them (the connection opened, or the last answer was sent).
  Past it the connection is closed: silently if nothing of a request came (an idle
  connection), with ``408 {"code": "header_timeout"}`` if part of one did;
* **the body** within the app's read deadlines, as before; a body the app did not
  read (the answer came first: a refusal, an unknown path) is given
  ``timeout_keep_alive`` seconds after the answer, then the connection is closed,
  however slowly the client goes on sending;
* **the answer** sent within ``send_timeout_s`` of the client not reading: when the
  send buffer stays full that long, or the last bytes of a finished answer stay
  unsent that long, the connection is dropped (the app's ``send`` returns at once);
* **at most ``max_connections`` connections** open, and ``max_connections_per_client``
  from one client address (an IPv6 address counts by its /64 network: one host holds
  many). One more is closed as soon as it is accepted, before anything is read;
* **refusals in JSON**: a request h11 refuses (no ``Host`` or two of them in HTTP/1.1,
  a malformed request line, headers longer than uvicorn's 16 KiB) gets the app's
  ``{"detail", "code"}`` body rather than uvicorn's plain text.

:func:`server_options` gives the keyword arguments for :func:`uvicorn.run` (or
:class:`uvicorn.Config`) that install it for an app. Under another ASGI server (or
FastAPI's test client) none of these bounds hold; the app's own (uploads, origins,
rate limit, memory budget) do.
"""

from __future__ import annotations

import functools
import ipaddress
import json
import logging
import threading
import time
from http import HTTPStatus

import h11
from uvicorn.protocols.http.h11_impl import H11Protocol

log = logging.getLogger(__name__)

#: Seconds between two warnings about refused connections (the rest are counted).
WARN_EVERY_S = 60.0


def client_key(host: str | None) -> str:
    """What connections are counted by: the IPv4 address, or an IPv6 address's /64.

    >>> client_key("192.0.2.7"), client_key("2001:db8:1:2:aa:bb:cc:dd")
    ('192.0.2.7', '2001:db8:1:2::/64')
    >>> client_key("::ffff:192.0.2.7"), client_key(None)
    ('192.0.2.7', '')
    """
    if not host:
        return ""
    try:
        address = ipaddress.ip_address(host.split("%", 1)[0])
    except ValueError:
        return host
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            return str(address.ipv4_mapped)
        return str(ipaddress.ip_network(f"{address}/64", strict=False))
    return str(address)


class ConnectionTable:
    """Open connections, in total and per client key; thread-safe.

    >>> table = ConnectionTable(max_total=3, max_per_client=2)
    >>> [table.open("a"), table.open("a"), table.open("a"), table.open("b")]
    [True, True, False, True]
    >>> table.open("c")  # three are open
    False
    >>> table.close("a"); table.open("c"), len(table)
    (True, 3)
    """

    def __init__(self, max_total: int, max_per_client: int):
        self.max_total = int(max_total)
        self.max_per_client = int(max_per_client)
        self._open: dict[str, int] = {}
        self._total = 0
        self._lock = threading.Lock()
        self.refused = 0  #: connections closed at once since the start
        self._warned = (float("-inf"), 0)  # (clock, refused then)

    def open(self, key: str) -> bool:
        """Count a new connection in; False (nothing counted) when a cap is reached."""
        with self._lock:
            if self._total >= self.max_total or self._open.get(key, 0) >= self.max_per_client:
                self.refused += 1
                self._warn(key)
                return False
            self._open[key] = self._open.get(key, 0) + 1
            self._total += 1
            return True

    def close(self, key: str) -> None:
        with self._lock:
            left = self._open.get(key, 0) - 1
            if left > 0:
                self._open[key] = left
            else:
                self._open.pop(key, None)
            self._total = max(0, self._total - 1)

    def count(self, key: str) -> int:
        with self._lock:
            return self._open.get(key, 0)

    def __len__(self) -> int:
        with self._lock:
            return self._total

    def _warn(self, key: str) -> None:  # lock held
        now = time.monotonic()
        last, refused_then = self._warned
        if now - last >= WARN_EVERY_S:
            log.warning(
                "connection from %s closed at once: %d open (at most %d), %d from it (at most "
                "%d); %d refused since the last warning",
                key or "(unknown)",
                self._total,
                self.max_total,
                self._open.get(key, 0),
                self.max_per_client,
                self.refused - refused_then,
            )
            self._warned = (now, self.refused)


def json_response(status: int, code: str, message: str) -> list:
    """The h11 events of a closing JSON refusal ``{"detail", "code"}``."""
    body = json.dumps({"detail": message, "code": code}).encode()
    headers = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(body)).encode()),
        (b"x-content-type-options", b"nosniff"),
        (b"connection", b"close"),
    ]
    try:
        reason = HTTPStatus(status).phrase.encode()
    except ValueError:
        reason = b""
    response = h11.Response(status_code=status, headers=headers, reason=reason)
    return [response, h11.Data(data=body), h11.EndOfMessage()]


def h11_refusal(error: h11.RemoteProtocolError | None, max_header_bytes: int) -> tuple:
    """``(status, code, message)`` for a request h11 could not parse.

    >>> h11_refusal(h11.RemoteProtocolError("Found multiple Host: headers"), 16384)
    (400, 'bad_host', 'the request has more than one Host header; expected exactly one')
    >>> h11_refusal(h11.RemoteProtocolError("illegal request line: bytearray(b'x')"), 16384)
    (400, 'bad_request', 'malformed HTTP request (illegal request line)')
    """
    # h11 quotes the offending bytes ("illegal request line: bytearray(b'...')"): not echoed
    text = str(error).split(": bytearray(", 1)[0] if error is not None else ""
    hint = getattr(error, "error_status_hint", 400)
    if text == "Missing mandatory Host: header":
        return 400, "bad_host", "the request has no Host header; expected exactly one"
    if text == "Found multiple Host: headers":
        return 400, "bad_host", "the request has more than one Host header; expected exactly one"
    if hint == 431:
        kib = max_header_bytes // 1024
        return 431, "headers_too_large", f"the request line and headers passed {kib} KiB"
    return hint, "bad_request", f"malformed HTTP request ({text[:120] or 'unreadable'})"


class _Connection(h11.Connection):
    """h11's connection, keeping the last error it raised on what the client sent."""

    error: h11.RemoteProtocolError | None = None

    def next_event(self):
        try:
            return super().next_event()
        except h11.RemoteProtocolError as exc:
            self.error = exc
            raise


class GuardedH11Protocol(H11Protocol):
    """uvicorn's h11 protocol with the deadlines and caps of this module's docstring.

    ``limits`` is the app's :class:`~somcolor.web.settings.Limits` (``header_timeout_s``,
    ``send_timeout_s``), ``table`` the :class:`ConnectionTable` the server's
    connections share.
    """

    def __init__(self, config, server_state, app_state, _loop=None, *, limits, table):
        super().__init__(config, server_state, app_state, _loop)
        self.max_header_bytes = getattr(self.conn, "_max_incomplete_event_size", 16 * 1024)
        self.conn = _Connection(h11.SERVER, self.max_header_bytes)
        self.limits = limits
        self.table = table
        self.key: str | None = None  # the client key, once counted in
        self.refused = False
        self._timers: dict[str, object] = {}
        self._got_bytes = False  # of the request being waited for
        self._draining = None  # the request whose unread body is given a moment

    # -- timers
    def _arm(self, name: str, delay: float, callback) -> None:
        self._cancel(name)
        self._timers[name] = self.loop.call_later(delay, callback)

    def _cancel(self, name: str) -> None:
        timer = self._timers.pop(name, None)
        if timer is not None:
            timer.cancel()

    def _wait_for_headers(self) -> None:
        self._got_bytes = False
        self._arm("headers", self.limits.header_timeout_s, self._headers_late)

    # -- asyncio.Protocol
    def connection_made(self, transport) -> None:
        host = (transport.get_extra_info("peername") or (None,))[0]
        key = client_key(host if isinstance(host, str) else None)
        if not self.table.open(key):
            self.refused = True
            self.transport = transport
            transport.close()
            return
        self.key = key
        super().connection_made(transport)
        self._wait_for_headers()

    def connection_lost(self, exc) -> None:
        for name in list(self._timers):
            self._cancel(name)
        if self.refused:
            return
        if self.key is not None:
            self.table.close(self.key)
            self.key = None
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        if self.refused:
            return
        if data:
            self._got_bytes = True
        super().data_received(data)
        state = self.conn.their_state
        if "drain" in self._timers and (
            self.cycle is not self._draining or state is not h11.SEND_BODY
        ):
            self._cancel("drain")  # the unread body ended: the connection goes on
            if state is h11.IDLE:
                self._wait_for_headers()
        if "headers" in self._timers and state is not h11.IDLE:
            self._cancel("headers")  # a request's headers are in (or it was refused)
            self._cancel("flushed")  # and the previous answer was read, or is the new one's

    def pause_writing(self) -> None:
        super().pause_writing()
        self._arm("send", self.limits.send_timeout_s, self._send_late)

    def resume_writing(self) -> None:
        self._cancel("send")
        super().resume_writing()

    # -- uvicorn's hooks
    def on_response_complete(self) -> None:
        unread_body = self.conn.their_state is h11.SEND_BODY
        if self.transport.get_write_buffer_size():
            self._arm("flushed", self.limits.send_timeout_s, self._flush_late)
        super().on_response_complete()
        if self.transport.is_closing():
            return
        if unread_body:  # the app answered without reading the body: give it a moment
            self._draining = self.cycle
            self._arm("drain", self.timeout_keep_alive, self.transport.close)
        elif self.conn.their_state is h11.IDLE:  # waiting for the next request
            self._wait_for_headers()

    def send_400_response(self, msg: str) -> None:
        status, code, message = h11_refusal(self.conn.error, self.max_header_bytes)
        self._refuse(status, code, message)

    # -- closing
    def _refuse(self, status: int, code: str, message: str) -> None:
        """Answer with a JSON refusal if no answer has started, then close."""
        if self.conn.our_state in (h11.IDLE, h11.SEND_RESPONSE):
            try:
                for event in json_response(status, code, message):
                    self.transport.write(self.conn.send(event))
            except h11.LocalProtocolError:  # pragma: no cover - h11 refused our answer
                pass
        self.transport.close()

    def _headers_late(self) -> None:
        self._timers.pop("headers", None)
        if self.transport.is_closing() or self.conn.their_state is not h11.IDLE:
            return
        if self._got_bytes:
            limit = self.limits.header_timeout_s
            message = f"the request line and headers took longer than the limit of {limit:g} s"
            self._refuse(408, "header_timeout", message)
        else:  # an idle connection: nothing to answer
            self.transport.close()

    def _send_late(self) -> None:
        self._timers.pop("send", None)
        log.info("connection from %s dropped: not reading its answer", self.key)
        self.transport.abort()

    def _flush_late(self) -> None:
        self._timers.pop("flushed", None)
        if self.transport.get_write_buffer_size():
            log.info("connection from %s dropped: not reading its answer", self.key)
            self.transport.abort()


def server_options(app) -> dict:
    """Keyword arguments for :func:`uvicorn.run` / :class:`uvicorn.Config` that serve
    ``app`` (made by :func:`~somcolor.web.app.create_app`) with the bounds of this
    module, and without trusting forwarding headers (``proxy_headers=False``: the rate
    limit and the connection caps count the socket's peer address)."""
    limits = app.state.server.limits
    table = ConnectionTable(limits.max_connections, limits.max_connections_per_client)
    app.state.connections = table
    protocol = functools.partial(GuardedH11Protocol, limits=limits, table=table)
    return {"http": protocol, "ws": "none", "proxy_headers": False}
