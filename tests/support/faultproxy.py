"""A loopback HTTP proxy that injects faults in front of a local server (reliability tests).

Each request is, with the configured probabilities, answered with DynamoDB's throttling error
(HTTP 400 ``ThrottlingException``), answered with HTTP 500, cut by a TCP reset before it reaches
the server, or forwarded and then cut by a reset *after* the server handled it (the reply is lost:
the client must not double-apply its retry), or forwarded and its reply cut by a reset half-way
through the body (a download that breaks mid-stream). Otherwise it is forwarded unchanged. One request per
connection (``Connection: close``), which every HTTP client handles.

``lose_first_reply_of`` targets one kind of request: the first time a request whose body it accepts
is seen, the request is forwarded and its reply cut (the client's retry, the same body, goes
through), e.g. the final writes of a job (see tests/reliability/test_known_gaps.py).

``outage_from`` makes the server go down at one chosen request, deterministically: from the first
request whose body it accepts on, every request is either held unanswered until the proxy closes
(``outage="blackhole"``: a server that stopped answering) or cut by a reset (``outage="reset"``:
a stopped server). With ``outage_after_server`` that first request still reaches the server (it is
applied; its reply is lost). :attr:`outage_started` is set when the outage begins, so a test can act
at exactly that point (kill the worker between two of its writes, send SIGTERM during one).

``latency`` delays every request by that many seconds before it is answered or forwarded, as a
remote region would (the benchmarks' I/O items, tests/bench/bench_items.py).
"""

from __future__ import annotations

import random
import socket
import struct
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

THROTTLE_BODY = b'{"__type":"com.amazonaws.dynamodb.v20120810#ThrottlingException","message":"Rate exceeded"}'
ERROR_BODY = b'{"__type":"com.amazonaws.dynamodb.v20120810#InternalServerError","message":"injected"}'


@dataclass
class FaultCounts:
    requests: int = 0
    throttled: int = 0
    errors: int = 0
    resets_before: int = 0
    resets_after: int = 0
    cut_bodies: int = 0
    lost_replies: int = 0  # of requests matching lose_first_reply_of
    in_outage: int = 0  # requests held or cut once outage_from matched
    connections: int = 0  # client connections accepted
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    @property
    def injected(self) -> int:
        return self.throttled + self.errors + self.resets_before + self.resets_after + self.cut_bodies


class FaultProxy:
    def __init__(self, upstream_port: int, *, throttle: float = 0.0, error: float = 0.0,
                 reset_before: float = 0.0,
                 reset_after: float = 0.0, cut_body: float = 0.0, seed: int = 0,
                 lose_first_reply_of: Callable[[bytes], bool] | None = None,
                 outage_from: Callable[[bytes], bool] | None = None, outage: str = "blackhole",
                 outage_after_server: bool = False, latency: float = 0.0, keep_alive: bool = False) -> None:
        if outage not in ("blackhole", "reset"):
            raise ValueError(f"outage must be 'blackhole' or 'reset', not {outage!r}")
        self.upstream_port = upstream_port
        self.latency = latency
        self.keep_alive = keep_alive
        self.lose_first_reply_of = lose_first_reply_of
        self.outage_from = outage_from
        self.outage = outage
        self.outage_after_server = outage_after_server
        #: set when the outage begins; requests seen from then on are counted in ``counts.in_outage``
        self.outage_started = threading.Event()
        self._down = False
        self._seen_bodies: set[bytes] = set()
        self.rates = (throttle, error, reset_before, reset_after, cut_body)
        self.random = random.Random(seed)
        self.counts = FaultCounts()
        self.server = socket.create_server(("127.0.0.1", 0))
        self.port = self.server.getsockname()[1]
        self._stopped = threading.Event()
        self._thread = threading.Thread(target=self._accept, name="fault-proxy", daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def __enter__(self) -> FaultProxy:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stopped.set()
        self.server.close()

    def _accept(self) -> None:
        while not self._stopped.is_set():
            try:
                conn, _ = self.server.accept()
            except OSError:
                return
            with self.counts.lock:
                self.counts.connections += 1
            threading.Thread(target=self._handle, args=(conn,), daemon=True).start()

    def _choose(self) -> str:
        with self.counts.lock:
            self.counts.requests += 1
            roll = self.random.random()
        names = ("throttled", "errors", "resets_before", "resets_after", "cut_bodies")
        for name, rate in zip(names, self.rates, strict=True):
            if roll < rate:
                with self.counts.lock:
                    setattr(self.counts, name, getattr(self.counts, name) + 1)
                return name
            roll -= rate
        return "forward"

    def _handle(self, conn: socket.socket) -> None:
        upstream = _Upstream(self.upstream_port) if self.keep_alive else None
        with conn:
            conn.settimeout(30)
            try:
                while self._answer(conn, upstream):
                    pass
            except OSError:  # the client went away, or stayed idle past the timeout
                pass
            finally:
                if upstream is not None:
                    upstream.close()

    def _answer(self, conn: socket.socket, upstream: _Upstream | None) -> bool:
        """Answer one request on ``conn``; whether the connection stays open for another."""
        request = _read_message(conn, answer_expect=True)
        if request is None:
            return False
        request = _without_header(request, b"expect")  # answered here; the server gets the whole body
        if self._in_outage(request):
            if self.outage == "blackhole":
                self._stopped.wait()  # never answered: held until the proxy closes
            _reset(conn)
            return False
        if self.latency:
            time.sleep(self.latency)
        if self._first_of_target(request):
            self._forward(request)
            with self.counts.lock:
                self.counts.lost_replies += 1
            _reset(conn)
            return False
        fault = self._choose()
        if fault == "throttled":
            conn.sendall(_response(400, "Bad Request", THROTTLE_BODY))
        elif fault == "errors":
            conn.sendall(_response(500, "Internal Server Error", ERROR_BODY))
        elif fault == "resets_before":
            _reset(conn)
        else:
            reply = self._forward(request) if upstream is None else upstream.exchange(request)
            if fault == "resets_after" or reply is None:
                _reset(conn)
            elif fault == "cut_bodies":
                head, _, body = reply.partition(b"\r\n\r\n")
                conn.sendall(head + b"\r\n\r\n" + body[: len(body) // 2])
                _reset(conn)
            else:
                conn.sendall(reply)
                return upstream is not None and fault == "forward" and not _closes(reply)
        return False

    def _in_outage(self, request: bytes) -> bool:
        """Whether ``request`` falls in the outage (forwarding it first when it starts the outage
        and ``outage_after_server``)."""
        if self.outage_from is None:
            return False
        with self.counts.lock:
            starts = not self._down and self.outage_from(request.partition(b"\r\n\r\n")[2])
            if starts:
                self._down = True  # every later request is in the outage
            elif not self._down:
                return False
            self.counts.in_outage += 1
        if starts:
            if self.outage_after_server:
                self._forward(request)
            self.outage_started.set()  # after the server applied it, when it does
        return True

    def _first_of_target(self, request: bytes) -> bool:
        """Whether ``request`` is the first sending of a body ``lose_first_reply_of`` accepts."""
        if self.lose_first_reply_of is None:
            return False
        body = request.partition(b"\r\n\r\n")[2]
        if not self.lose_first_reply_of(body):
            return False
        with self.counts.lock:
            first = body not in self._seen_bodies
            self._seen_bodies.add(body)
        return first

    def _forward(self, request: bytes) -> bytes | None:
        head, _, body = request.partition(b"\r\n\r\n")
        lines = [line for line in head.split(b"\r\n") if not line.lower().startswith(b"connection:")]
        request = b"\r\n".join([*lines, b"Connection: close"]) + b"\r\n\r\n" + body
        try:
            with socket.create_connection(("127.0.0.1", self.upstream_port), timeout=30) as upstream:
                upstream.sendall(request)
                reply = _read_message(upstream)
        except OSError:
            return None
        if reply is None:
            return None
        head, _, body = reply.partition(b"\r\n\r\n")
        lines = [line for line in head.split(b"\r\n") if not line.lower().startswith(b"connection:")]
        return b"\r\n".join([*lines, b"Connection: close"]) + b"\r\n\r\n" + body


class _Upstream:
    """One kept-alive connection to the server, opened when first needed (and again after the
    server closed it)."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.sock: socket.socket | None = None

    def exchange(self, request: bytes) -> bytes | None:
        try:
            if self.sock is None:
                self.sock = socket.create_connection(("127.0.0.1", self.port), timeout=30)
            self.sock.sendall(request)
            reply = _read_message(self.sock, no_body=request.startswith(b"HEAD "))
        except OSError:
            reply = None
        if reply is None or _closes(reply):
            self.close()
        return reply

    def close(self) -> None:
        if self.sock is not None:
            self.sock.close()
            self.sock = None


def _closes(message: bytes) -> bool:
    """Whether an HTTP message says its connection closes after it."""
    head = message.partition(b"\r\n\r\n")[0].lower()
    return b"\r\nconnection: close" in head


def _read_rest(sock: socket.socket, data: bytes, no_body: bool) -> bytes | None:
    """The message that follows an interim reply whose bytes ``data`` already hold its start."""
    pending = _Pending(sock, data)
    return _read_message(pending, no_body=no_body)  # type: ignore[arg-type]


class _Pending:
    """A socket with some bytes already received in front of it (for :func:`_read_rest`)."""

    def __init__(self, sock: socket.socket, data: bytes) -> None:
        self.sock, self.data = sock, data

    def recv(self, size: int) -> bytes:
        if self.data:
            out, self.data = self.data[:size], self.data[size:]
            return out
        return self.sock.recv(size)

    def sendall(self, data: bytes) -> None:
        self.sock.sendall(data)


def _without_header(message: bytes, name: bytes) -> bytes:
    head, sep, body = message.partition(b"\r\n\r\n")
    lines = [line for line in head.split(b"\r\n") if not line.lower().startswith(name + b":")]
    return b"\r\n".join(lines) + sep + body


def _reset(conn: socket.socket) -> None:
    conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))


def _response(code: int, reason: str, body: bytes) -> bytes:
    return (f"HTTP/1.1 {code} {reason}\r\nContent-Type: application/x-amz-json-1.0\r\n"
            f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n").encode() + body


def _read_message(sock: socket.socket, *, no_body: bool = False, answer_expect: bool = False) -> bytes | None:
    """One HTTP message with a Content-Length body (or chunked, for completeness); ``no_body``
    for the reply to a HEAD request (its Content-Length describes a body it does not carry);
    ``answer_expect``: a request that waits for ``100 Continue`` (boto3's uploads) gets it. An
    interim ``100 Continue`` reply is skipped."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        if not chunk:
            return data or None
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    if head.startswith(b"HTTP/1.1 100"):  # an interim reply: the real one follows
        return _read_message(sock, no_body=no_body) if not body else _read_rest(sock, body, no_body)
    if no_body:
        return head + b"\r\n\r\n"
    headers = {k.strip().lower(): v.strip() for k, _, v in
               (line.partition(b":") for line in head.split(b"\r\n")[1:])}
    if answer_expect and headers.get(b"expect", b"").lower() == b"100-continue" and not body:
        sock.sendall(b"HTTP/1.1 100 Continue\r\n\r\n")
    if headers.get(b"transfer-encoding", b"").lower() == b"chunked":
        while not body.endswith(b"0\r\n\r\n"):
            chunk = sock.recv(65536)
            if not chunk:
                break
            body += chunk
        return head + b"\r\n\r\n" + body
    length = int(headers.get(b"content-length", b"0") or 0)
    while len(body) < length:
        chunk = sock.recv(65536)
        if not chunk:
            break
        body += chunk
    return head + b"\r\n\r\n" + body
