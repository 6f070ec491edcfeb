"""The dataset actions' source file system: names, read-only, and seeks that stay with their thread."""

from __future__ import annotations

import io
import threading
from pathlib import Path

import pytest

from src.actions.dataset.files import SourceFiles, source_name

DATA = bytes(range(256)) * 64


class _Arrived:
    """A Prefetch whose bytes have all arrived (the waiting is tested against SeaweedFS)."""

    def size(self, index: int) -> int:
        return len(DATA)

    def read(self, index: int, offset: int, length: int) -> bytes:
        return DATA[offset:offset + max(0, length)]


def _files() -> SourceFiles:
    return SourceFiles(_Arrived(), [source_name(0, ".csv")])  # type: ignore[arg-type]


def test_only_the_query_sources_resolve_and_nothing_can_be_written():
    fs = _files()
    assert fs.info("plussource://0.csv")["size"] == len(DATA)
    with pytest.raises(FileNotFoundError):
        fs.info("plussource://1.csv")
    with pytest.raises(FileNotFoundError):
        fs.open("plussource://../0.csv", "rb")
    with pytest.raises(PermissionError):
        fs.open("plussource://0.csv", "wb")


def test_sequential_reads_seek_and_tell_behave_like_a_file():
    handle = _files().open("plussource://0.csv", "rb")
    assert handle.read(10) == DATA[:10] and handle.read(5) == DATA[10:15] and handle.tell() == 15
    assert handle.seek(-3, io.SEEK_END) == len(DATA) - 3 and handle.read() == DATA[-3:]
    assert handle.read(10) == b""
    handle.seek(0)
    assert handle.tell() == 0 and handle.read(4) == DATA[:4]
    buffer = bytearray(6)
    assert handle.readinto(buffer) == 6 and bytes(buffer) == DATA[4:10]


def test_a_seek_and_the_read_after_it_stay_together_when_another_thread_seeks_between():
    handle = _files().open("plussource://0.csv", "rb")
    sought = threading.Event()
    other: dict[str, bytes] = {}

    def intruder() -> None:
        handle.seek(5000)
        sought.set()
        other["data"] = handle.read(8)

    handle.seek(100)  # DuckDB's positional read: seek, then read, the GIL released in between
    thread = threading.Thread(target=intruder)
    thread.start()
    sought.wait(5)
    thread.join(5)
    assert handle.read(8) == DATA[100:108]
    assert other["data"] == DATA[5000:5008]


def test_the_query_child_starts_without_the_workers_storage_layer_or_other_actions() -> None:
    # Every query pays the child's start: it must not drag in boto3, the settings or the catalogue.
    import subprocess
    import sys

    probe = ("import sys, src.actions.dataset.child; "
             "print(sorted(m for m in ('boto3', 'feaas.dao', 'feaas.settings', 'src.actions.ffmpeg', "
             "'src.actions.dataset.query', 'feaas.actions.builtin') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-E", "-s", "-c", probe], capture_output=True, text=True,
                         check=True, cwd=Path(__file__).resolve().parents[2]).stdout.strip()
    assert out == "[]"
