"""Loopback servers for the web.screenshot tests, a PNG reader, and a process finder.

Every socket here listens on 127.0.0.1 only: the tests never send anything to another address.
"""

from __future__ import annotations

import http.server
import os
import socket
import struct
import threading
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Self


@dataclass
class Page:
    body: bytes = b""
    status: int = 200
    headers: dict[str, str] = field(default_factory=lambda: {"Content-Type": "text/html; charset=utf-8"})
    hang: bool = False  # send the headers and half the body, then nothing until the server stops


def colour_page(rgb: tuple[int, int, int], extra_html: str = "") -> Page:
    r, g, b = rgb
    html = (f"<!doctype html><html><head><title>colour</title></head>"
            f"<body style='margin:0;background:rgb({r},{g},{b})'>{extra_html}</body></html>")
    return Page(html.encode("utf-8"))


def redirect(location: str) -> Page:
    return Page(status=302, headers={"Location": location, "Content-Length": "0"})


class PageServer:
    """An HTTP server on 127.0.0.1 serving ``pages`` by path (404 otherwise).

    ``connections`` counts every TCP connection it accepted, HTTP or not; ``first_bytes`` keeps
    the first bytes each one sent (a TLS handshake starts with ``0x16``); ``requests`` the paths
    and ``hosts`` their ``Host`` headers.
    ``on_request`` is called with each path, before the answer.
    """

    def __init__(self, pages: dict[str, Page] | None = None) -> None:
        self.pages: dict[str, Page] = dict(pages or {})
        self.connections = 0
        self.first_bytes: list[bytes] = []
        self.requests: list[str] = []
        self.hosts: list[str] = []  # the Host header of each request
        self.on_request: Callable[[str], None] | None = None
        self.stopping = threading.Event()
        owner = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def setup(self) -> None:
                super().setup()
                with owner._lock:
                    owner.connections += 1
                self.request.settimeout(30)
                try:
                    owner.first_bytes.append(self.request.recv(8, socket.MSG_PEEK))
                except OSError:
                    owner.first_bytes.append(b"")

            def log_message(self, *args: object) -> None:
                return None

            def do_GET(self) -> None:
                path = self.path.split("?", 1)[0]
                owner.requests.append(path)
                owner.hosts.append(self.headers.get("Host", ""))
                if owner.on_request is not None:
                    owner.on_request(path)
                page = owner.pages.get(path) or Page(b"not found", status=404,
                                                     headers={"Content-Type": "text/plain"})
                self.send_response(page.status)
                for name, value in page.headers.items():
                    self.send_header(name, value)
                if page.hang:
                    self.send_header("Content-Length", str(len(page.body) * 2))
                    self.end_headers()
                    self.wfile.write(page.body)
                    self.wfile.flush()
                    owner.stopping.wait(120)
                    self.close_connection = True
                    return
                if "Content-Length" not in page.headers:
                    self.send_header("Content-Length", str(len(page.body)))
                self.end_headers()
                self.wfile.write(page.body)

        self._lock = threading.Lock()
        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.port = int(self.server.server_address[1])
        self._thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.1},
                                        daemon=True)

    @property
    def origin(self) -> str:
        return f"127.0.0.1:{self.port}"

    def url(self, path: str = "/") -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def __enter__(self) -> Self:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stopping.set()
        self.server.shutdown()
        self.server.server_close()


class Listener:
    """A TCP socket listening on 127.0.0.1 that must receive nothing: ``connections`` counts accepts."""

    def __init__(self) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.sock.settimeout(0.1)
        self.port = int(self.sock.getsockname()[1])
        self.connections = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._accept, daemon=True)

    def _accept(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except (TimeoutError, OSError):
                continue
            self.connections += 1
            conn.close()

    def url(self, path: str = "/", scheme: str = "http") -> str:
        return f"{scheme}://127.0.0.1:{self.port}{path}"

    def __enter__(self) -> Self:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(5)
        self.sock.close()


def read_png(data: bytes) -> tuple[int, int, list[list[tuple[int, ...]]]]:
    """``(width, height, rows of pixels)`` of an 8-bit RGB or RGBA, non-interlaced PNG."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    pos, idat, header = 8, b"", b""
    while pos < len(data):
        length, kind = struct.unpack(">I4s", data[pos:pos + 8])
        chunk = data[pos + 8:pos + 8 + length]
        if kind == b"IHDR":
            header = chunk
        elif kind == b"IDAT":
            idat += chunk
        pos += 12 + length
    width, height, depth, colour, _, _, interlace = struct.unpack(">IIBBBBB", header)
    assert depth == 8 and colour in (2, 6) and interlace == 0, (depth, colour, interlace)
    channels = 3 if colour == 2 else 4
    raw = zlib.decompress(idat)
    stride = width * channels
    rows: list[list[tuple[int, ...]]] = []
    previous = bytearray(stride)
    for y in range(height):
        kind = raw[y * (stride + 1)]
        line = bytearray(raw[y * (stride + 1) + 1:(y + 1) * (stride + 1)])
        for i in range(stride):
            a = line[i - channels] if i >= channels else 0
            b = previous[i]
            c = previous[i - channels] if i >= channels else 0
            if kind == 1:
                line[i] = (line[i] + a) & 0xFF
            elif kind == 2:
                line[i] = (line[i] + b) & 0xFF
            elif kind == 3:
                line[i] = (line[i] + (a + b) // 2) & 0xFF
            elif kind == 4:
                p = a + b - c
                pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                line[i] = (line[i] + (a if pa <= pb and pa <= pc else b if pb <= pc else c)) & 0xFF
        rows.append([tuple(line[x * channels:x * channels + 3]) for x in range(width)])
        previous = line
    return width, height, rows


def processes_mentioning(text: str) -> list[int]:
    """Ids of live processes whose command line contains ``text`` (e.g. a unique work directory)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode("utf-8", "replace")
            state = (entry / "stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        if text in cmdline and state != "Z":
            found.append(int(entry.name))
    return found
