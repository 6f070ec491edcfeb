"""Fixtures for the media and dataset action tests (issue 6).

Media is generated with ffmpeg's lavfi sources once per session; no binary fixtures are committed.

Storage: until the lead's ``user_storage``/``action_ctx`` fixtures land in ``tests/conftest.py``,
``LocalStorage`` below stands in for the real namespace-scoped storage (keys → files under a
directory, same namespace check). When they exist, the fixtures here defer to them.
"""

from __future__ import annotations

import logging
import posixpath
import shutil
import subprocess
import threading
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest

from feaas.actions.base import ActionContext
from feaas.errors import NamespaceViolation

NAMESPACE = "plus_example_com/alice@example.com/"

pytestmark = pytest.mark.skipif(shutil.which("ffmpeg") is None, reason="ffmpeg not installed")


class LocalStorage:
    """A stand-in for the namespace-scoped bucket storage: keys are files under ``root``."""

    def __init__(self, root: Path, namespace: str = NAMESPACE) -> None:
        self.root = root
        self.namespace = namespace

    def check_key(self, key: str) -> str:
        normal = posixpath.normpath("/" + key.lstrip("/"))[1:]
        if not normal.startswith(self.namespace) or normal == self.namespace.rstrip("/"):
            raise NamespaceViolation(f"{key!r} is outside your namespace")
        return normal

    def _path(self, key: str) -> Path:
        return self.root / self.check_key(key)

    def get_bytes(self, key: str) -> bytes:
        return self._path(key).read_bytes()

    def put_bytes(self, key: str, data: bytes, content_type: str | None = None) -> None:
        path = self._path(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)

    def download(self, key: str, path: Path) -> None:
        shutil.copyfile(self._path(key), path)

    def upload(self, path: Path, key: str, content_type: str | None = None) -> None:
        target = self._path(key)
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(path, target)

    def copy(self, src_key: str, dest_key: str) -> None:
        self.upload(self._path(src_key), dest_key)

    def exists(self, key: str) -> bool:
        return self._path(key).is_file()

    def size(self, key: str) -> int:
        return self._path(key).stat().st_size

    def delete(self, key: str) -> None:
        self._path(key).unlink(missing_ok=True)

    def list_keys(self, prefix: str) -> Iterator[str]:
        base = self.root / self.namespace
        for path in sorted(base.rglob("*")):
            key = path.relative_to(self.root).as_posix()
            if path.is_file() and key.startswith(prefix):
                yield key

    def get_document(self, object_id: str) -> dict[str, Any] | None:
        return None

    def update_document(self, object_id: str, values: Mapping[str, Any]) -> None:
        raise NotImplementedError


@pytest.fixture
def storage(tmp_path: Path) -> LocalStorage:
    root = tmp_path / "bucket"
    root.mkdir()
    return LocalStorage(root)


@pytest.fixture
def make_ctx(storage: LocalStorage, tmp_path: Path):  # type: ignore[no-untyped-def]
    """Build an ActionContext over ``storage``; ``progress`` collects reported fractions."""

    def build(memory_limit_mb: int | None = None, cancel: threading.Event | None = None) -> ActionContext:
        tmp = tmp_path / "action-tmp"
        tmp.mkdir(exist_ok=True)
        progress: list[float] = []
        ctx = ActionContext(
            storage=storage, tmp_dir=tmp, cancel=cancel or threading.Event(),
            log=logging.getLogger("test.media"), report_progress=progress.append,
            memory_limit_mb=memory_limit_mb,
        )
        ctx.extra["progress"] = progress
        return ctx

    return build


def _lavfi(out: Path, *args: str) -> Path:
    cmd = ["ffmpeg", "-hide_banner", "-nostdin", "-loglevel", "error", "-y", *args, str(out)]
    subprocess.run(cmd, check=True, timeout=300, stdin=subprocess.DEVNULL)
    return out


@pytest.fixture(scope="session")
def media_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Generated media: a 4 s 720p clip with a 440 Hz tone, a silent-edged tone, an image, …"""
    d = tmp_path_factory.mktemp("media")
    _lavfi(d / "clip.mp4", "-f", "lavfi", "-i", "testsrc2=size=1280x720:rate=25:duration=4",
           "-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000:duration=4",
           "-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p", "-c:a", "aac", "-shortest")
    _lavfi(d / "short.mp4", "-f", "lavfi", "-i", "testsrc2=size=640x360:rate=30:duration=2",
           "-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p")
    _lavfi(d / "tone.wav", "-f", "lavfi", "-i", "sine=frequency=880:sample_rate=48000:duration=3",
           "-af", "volume=-20dB")
    _lavfi(d / "quiet.mp3", "-f", "lavfi", "-i", "sine=frequency=330:sample_rate=44100:duration=2",
           "-af", "volume=-30dB", "-c:a", "libmp3lame")
    # 1 s silence, 2 s tone, 1.5 s silence
    _lavfi(d / "padded.wav", "-f", "lavfi", "-i", "anullsrc=r=48000:cl=mono:d=1",
           "-f", "lavfi", "-i", "sine=frequency=500:sample_rate=48000:duration=2",
           "-f", "lavfi", "-i", "anullsrc=r=48000:cl=mono:d=1.5",
           "-filter_complex", "[0:a][1:a][2:a]concat=n=3:v=0:a=1[a]", "-map", "[a]")
    _lavfi(d / "silence.wav", "-f", "lavfi", "-i", "anullsrc=r=48000:cl=stereo:d=2")
    _lavfi(d / "logo.png", "-f", "lavfi", "-i", "testsrc=size=200x100:rate=1", "-frames:v", "1")
    (d / "notmedia.mp4").write_bytes(b"this is plain text, not a video\n" * 100)
    return d


@pytest.fixture
def put(storage: LocalStorage, media_dir: Path):  # type: ignore[no-untyped-def]
    """Upload a generated media file under the namespace; return its key."""

    def upload(name: str, key_name: str | None = None) -> str:
        key = f"{NAMESPACE}media/{key_name or name}"
        storage.upload(media_dir / name, key)
        return key

    return upload


@pytest.fixture
def fetch(storage: LocalStorage, tmp_path: Path):  # type: ignore[no-untyped-def]
    """Download a key to a local file for inspection."""

    def get(key: str) -> Path:
        local = tmp_path / "fetched" / posixpath.basename(key)
        local.parent.mkdir(exist_ok=True)
        storage.download(key, local)
        return local

    return get
