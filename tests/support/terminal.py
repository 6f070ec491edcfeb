"""A real terminal for tests: a pty whose output is captured, and what a person would see on it."""

from __future__ import annotations

import os
import pty
import re
import threading
from dataclasses import dataclass
from typing import TextIO

BAR = re.compile(r"\[[#.]{30}\] +(?P<percent>\d+\.\d)% (?P<done>\d+)/(?P<total>\d+) failed (?P<failed>\d+) "
                 r"(?P<rate>[\d,.]+|--) items/s ETA (?P<eta>\d+:\d\d|--:--)")
BAR_FRAGMENT = re.compile(r"\[[#.]{3,}|items/s|ETA (\d|-)")
ERASE_LINE = "\x1b[2K"
_CONTROL = re.compile(r"\r|\n|\x1b\[[0-9;]*[A-Za-z]")


@dataclass
class Frame:
    percent: float
    done: int
    total: int
    failed: int
    rate: float | None
    eta: str


class Terminal:
    """A pty (``isatty()`` is true on the slave side) with a thread draining everything written to it.

    Hand ``slave`` to a child process, or open text streams on it with :meth:`open`; :meth:`close`
    closes every copy this object holds and returns all the output as text.
    """

    def __init__(self) -> None:
        self.master, self.slave = pty.openpty()
        self._chunks: list[bytes] = []
        self._streams: list[TextIO] = []
        self._reader = threading.Thread(target=self._drain, name="pty-reader", daemon=True)
        self._reader.start()

    def _drain(self) -> None:
        while True:
            try:
                data = os.read(self.master, 65536)
            except OSError:  # EIO: every copy of the slave side is closed
                return
            if not data:
                return
            self._chunks.append(data)

    def open(self) -> TextIO:
        """A text stream on the slave side (line-buffered, like a terminal's stdout)."""
        stream = os.fdopen(os.dup(self.slave), "w", encoding="utf-8", buffering=1)
        self._streams.append(stream)
        return stream

    def close_slave(self) -> None:
        """Close this process's copies of the slave side (a child keeps its own until it exits)."""
        for stream in self._streams:
            stream.close()
        self._streams.clear()
        if self.slave >= 0:
            os.close(self.slave)
            self.slave = -1

    def close(self, timeout_s: float = 30.0) -> str:
        """Close this side, wait until everything written was read (a child must have exited)."""
        self.close_slave()
        self._reader.join(timeout_s)
        if self.master >= 0:
            os.close(self.master)
            self.master = -1
        return b"".join(self._chunks).decode("utf-8", errors="replace")


def _write(line: list[str], col: int, text: str) -> int:
    """Put ``text`` on ``line`` from column ``col`` (overwriting); returns the new column."""
    if len(line) < col:
        line.extend(" " * (col - len(line)))
    line[col:col + len(text)] = text
    return col + len(text)


def screen_lines(raw: str) -> list[str]:
    """The lines a person sees once ``raw`` was written to a terminal (``\r``, ``\n``, erase-line)."""
    lines: list[str] = []
    line: list[str] = []
    col = pos = 0
    for match in _CONTROL.finditer(raw):
        col = _write(line, col, raw[pos:match.start()])
        pos = match.end()
        token = match.group()
        if token == "\r":
            col = 0
        elif token == "\n":  # down one row, same column (the pty itself turns "\n" into "\r\n")
            lines.append("".join(line).rstrip())
            line = []
        elif token == ERASE_LINE:
            line = [" "] * len(line)
    _write(line, col, raw[pos:])
    lines.append("".join(line).rstrip())
    return [text for text in lines if text]


def frames(raw: str) -> list[Frame]:
    """Every bar frame drawn, in order: the pieces between carriage returns that are a whole bar."""
    found = []
    for piece in raw.split("\r"):
        match = BAR.fullmatch(piece.removeprefix(ERASE_LINE).rstrip("\n"))
        if match:
            rate = match["rate"]
            found.append(Frame(float(match["percent"]), int(match["done"]), int(match["total"]),
                               int(match["failed"]), None if rate == "--" else float(rate.replace(",", "")),
                               match["eta"]))
    return found


def glued_lines(lines: list[str]) -> list[str]:
    """Screen lines holding a bar fragment together with anything else (a log line glued to the bar)."""
    return [line for line in lines if BAR_FRAGMENT.search(line) and not BAR.fullmatch(line.strip())]
