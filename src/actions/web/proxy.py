"""A forwarding HTTP proxy on 127.0.0.1 that only reaches destinations the policy allows.

The browser of ``web.screenshot`` is started with this proxy as its only way out
(``--proxy-server``, with loopback not bypassed), so every request it makes — the page, each
redirect, every sub-resource, fetches and WebSockets — is a plain HTTP request or a ``CONNECT``
that arrives here. For each one the proxy resolves the host itself, refuses it (``403``, nothing
sent anywhere) when any of its addresses is forbidden by :class:`NetworkPolicy`, and otherwise
connects to a vetted address, never to the name again.

Standard library only: one thread per client connection, no keep-alive (every response ends
with ``Connection: close``), request bodies only with a ``Content-Length``.
"""

from __future__ import annotations

import contextlib
import http.client
import http.server
import logging
import select
import socket
import socketserver
import threading
from dataclasses import dataclass
from typing import Any, Self
from urllib.parse import urlsplit

from feaas.netpolicy import DestinationRefused, HostNotFound, NetworkPolicy

logger = logging.getLogger(__name__)

#: Seconds to wait for an upstream TCP connection or a byte from either side of a tunnel.
CONNECT_TIMEOUT_S = 10.0
IDLE_TIMEOUT_S = 60.0
_CHUNK = 64 * 1024
_MAX_REQUEST_BODY = 16 * 1024 * 1024
#: Request and response headers that describe one hop, not the message: never forwarded.
_HOP_BY_HOP = frozenset({"connection", "keep-alive", "proxy-connection", "proxy-authorization",
                         "proxy-authenticate", "te", "trailer", "transfer-encoding", "upgrade"})


@dataclass(frozen=True)
class Refusal:
    """One refused request: ``host:port`` as asked, the address and the reason (or ``"not found"``)."""

    host: str
    port: int
    ip: str
    why: str
    what: str  # "CONNECT" or the HTTP method and URL

    @property
    def message(self) -> str:
        return f"destination not allowed: {self.host} ({self.ip}, {self.why})"


class GuardedProxy:
    """Start with :meth:`start` (returns the port), stop with :meth:`close`; also a context manager.

    ``refusals`` lists what was refused, ``upstream`` every ``(ip, port)`` a connection was opened
    to — both for the action's log and for tests.
    """

    def __init__(self, policy: NetworkPolicy) -> None:
        self.policy = policy
        self.refusals: list[Refusal] = []
        self.upstream: list[tuple[str, int]] = []
        self._lock = threading.Lock()
        self._sockets: set[socket.socket] = set()
        self._closed = threading.Event()
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        self.port = 0

    # ---- lifecycle -------------------------------------------------------------------------

    def start(self) -> int:
        server = _Server(("127.0.0.1", 0), _Handler)
        server.proxy = self
        self._server = server
        self._thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.2},
                                        name="screenshot-proxy", daemon=True)
        self._thread.start()
        self.port = int(server.server_address[1])
        return self.port

    def close(self) -> None:
        """Stop accepting, close every open connection (tunnels end at once), join the server."""
        self._closed.set()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        with self._lock:
            open_sockets = list(self._sockets)
        for sock in open_sockets:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
            with contextlib.suppress(OSError):
                sock.close()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ---- used by the handler -----------------------------------------------------------------

    def track(self, sock: socket.socket) -> None:
        with self._lock:
            self._sockets.add(sock)

    def untrack(self, sock: socket.socket) -> None:
        with self._lock:
            self._sockets.discard(sock)

    def refused(self, refusal: Refusal) -> None:
        with self._lock:
            self.refusals.append(refusal)
        logger.debug("proxy_refused %s", refusal.message)

    @property
    def closing(self) -> bool:
        return self._closed.is_set()

    def connect(self, host: str, port: int, what: str) -> socket.socket | Refusal | None:
        """A connection to a vetted address of ``host:port``; the recorded :class:`Refusal` when
        the policy refuses it (nothing was sent anywhere); ``None`` when it cannot be reached."""
        try:
            addresses = self.policy.vet(host, port)
        except DestinationRefused as exc:
            refusal = Refusal(host, port, exc.ip, exc.why, what)
            self.refused(refusal)
            return refusal
        except HostNotFound:
            logger.debug("proxy_host_not_found %s", host)
            return None
        last: OSError | None = None
        for address in addresses:
            if self.closing:
                return None
            with self._lock:
                self.upstream.append((address, port))
            try:
                sock = socket.create_connection((address, port), timeout=CONNECT_TIMEOUT_S)
            except OSError as exc:
                last = exc
                continue
            sock.settimeout(IDLE_TIMEOUT_S)
            self.track(sock)
            return sock
        logger.debug("proxy_unreachable %s:%s %s", host, port, last)
        return None


class _Server(socketserver.ThreadingMixIn, http.server.HTTPServer):
    daemon_threads = True
    allow_reuse_address = False
    proxy: GuardedProxy

    def server_bind(self) -> None:  # skip HTTPServer's reverse DNS lookup of the address
        socketserver.TCPServer.server_bind(self)
        self.server_name, self.server_port = "127.0.0.1", int(self.server_address[1])


def _host_port(authority: str, default_port: int | None) -> tuple[str, int] | None:
    """``"example.com:443"`` / ``"[::1]:8080"`` / ``"example.com"`` → ``(host, port)``; ``None``
    when it is malformed or has no port and there is no ``default_port``."""
    try:
        parts = urlsplit("//" + authority)
        port = parts.port or default_port
    except ValueError:
        return None
    if port is None:
        return None
    host = parts.hostname or ""
    if not host or parts.username is not None:
        return None
    return host, port


class _Handler(http.server.BaseHTTPRequestHandler):
    server: _Server
    protocol_version = "HTTP/1.1"
    timeout = IDLE_TIMEOUT_S

    def log_message(self, format: str, *args: Any) -> None:
        return None  # the action logs refusals itself; request lines may carry user data

    def setup(self) -> None:
        super().setup()
        self.server.proxy.track(self.connection)

    def finish(self) -> None:
        with contextlib.suppress(OSError):
            super().finish()
        self.server.proxy.untrack(self.connection)

    def _answer(self, code: int, reason: str, text: str) -> None:
        body = (text + "\n").encode("utf-8")
        self.close_connection = True
        with contextlib.suppress(OSError):
            self.send_response(code, reason)
            self.send_header("Content-Type", "text/plain; charset=utf-8")
            self.send_header("Content-Length", str(len(body)))
            self.send_header("Connection", "close")
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(body)

    def _refuse_or_connect(self, host: str, port: int, what: str) -> socket.socket | None:
        """The upstream connection, or ``None`` after answering the client (403 when refused)."""
        upstream = self.server.proxy.connect(host, port, what)
        if isinstance(upstream, Refusal):
            self._answer(403, "Forbidden", upstream.message)
            return None
        if upstream is None:
            self._answer(502, "Bad Gateway", f"cannot reach {host}")
        return upstream

    # ---- CONNECT: HTTPS and WebSocket tunnels ------------------------------------------------

    def do_CONNECT(self) -> None:
        target = _host_port(self.path, None)
        if target is None:
            self._answer(400, "Bad Request", "CONNECT needs host:port")
            return
        upstream = self._refuse_or_connect(*target, what="CONNECT")
        if upstream is None:
            return
        self.close_connection = True
        try:
            self.send_response(200, "Connection Established")
            self.end_headers()
            self.wfile.flush()
            self._relay(self.connection, upstream)
        finally:
            self.server.proxy.untrack(upstream)
            upstream.close()

    def _relay(self, client: socket.socket, upstream: socket.socket) -> None:
        pair = {client: upstream, upstream: client}
        while not self.server.proxy.closing:
            try:
                ready, _, _ = select.select(list(pair), [], [], 0.5)
            except (OSError, ValueError):
                return
            for sock in ready:
                try:
                    data = sock.recv(_CHUNK)
                except OSError:
                    return
                if not data:
                    return
                try:
                    pair[sock].sendall(data)
                except OSError:
                    return

    # ---- plain HTTP: absolute-form requests ---------------------------------------------------

    def _forward(self) -> None:
        parts = urlsplit(self.path)
        if parts.scheme != "http" or not parts.netloc:
            self._answer(400, "Bad Request", "only absolute http:// URLs (and CONNECT) go through this proxy")
            return
        target = _host_port(parts.netloc, 80)
        if target is None:
            self._answer(400, "Bad Request", "bad host")
            return
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            self._answer(411, "Length Required", "request bodies need a Content-Length")
            return
        try:
            length = int(self.headers.get("Content-Length") or 0)
        except ValueError:
            length = -1
        if not 0 <= length <= _MAX_REQUEST_BODY:
            self._answer(413, "Content Too Large", "bad request body length")
            return
        upstream = self._refuse_or_connect(*target, what=f"{self.command} {parts.scheme}://{parts.netloc}")
        if upstream is None:
            return
        self.close_connection = True
        try:
            body = self.rfile.read(length) if length else b""
            path = parts.path or "/"
            if parts.query:
                path += "?" + parts.query
            lines = [f"{self.command} {path} HTTP/1.1"]
            lines += [f"{name}: {value}" for name, value in self.headers.items()
                      if name.lower() not in _HOP_BY_HOP and name.lower() != "content-length"]
            if length:
                lines.append(f"Content-Length: {length}")
            lines.append("Connection: close")
            upstream.sendall(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body)
            response = http.client.HTTPResponse(upstream, method=self.command)
            response.begin()
        except (OSError, http.client.HTTPException, UnicodeEncodeError):
            self.server.proxy.untrack(upstream)
            upstream.close()
            self._answer(502, "Bad Gateway", "the upstream server failed")
            return
        try:
            self._send_response(response)
        except (OSError, http.client.HTTPException):
            pass  # the answer has begun: the closed connection tells the browser it broke off
        finally:
            self.server.proxy.untrack(upstream)
            upstream.close()

    def _send_response(self, response: http.client.HTTPResponse) -> None:
        """The upstream response, re-framed: its body is sent until the end (close-delimited)."""
        self.send_response_only(response.status, response.reason)
        for name, value in response.getheaders():
            # A chunked body is passed on decoded and ends with the connection: no length then.
            chunked_length = response.chunked and name.lower() == "content-length"
            if name.lower() not in _HOP_BY_HOP and not chunked_length:
                self.send_header(name, value)
        self.send_header("Connection", "close")
        self.end_headers()
        while not self.server.proxy.closing:
            chunk = response.read1(_CHUNK)
            if not chunk:
                break
            self.wfile.write(chunk)
        self.wfile.flush()

    do_GET = do_HEAD = do_POST = do_PUT = do_DELETE = do_OPTIONS = do_PATCH = _forward
