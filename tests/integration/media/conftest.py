"""Fixtures for the media and dataset action tests (issue 6).

Media is generated with ffmpeg's lavfi sources once per session; no binary fixtures are committed.

Storage is the real namespace-scoped storage over the local SeaweedFS S3 server
(``user_storage``/``action_ctx`` from ``tests/conftest.py``); each test works in its own folder.
"""

from __future__ import annotations

import posixpath
import subprocess
import threading
import uuid
from pathlib import Path

import pytest

from feaas.actions.base import ActionContext

NAMESPACE = "plus_example_com/alice@example.com/"


@pytest.fixture
def storage(user_storage):  # type: ignore[no-untyped-def]
    """The real namespace-scoped storage over the local SeaweedFS (tests/conftest.py)."""
    return user_storage


@pytest.fixture
def prefix() -> str:
    """A fresh folder inside the namespace, so tests sharing the bucket never see each other's keys."""
    return f"{NAMESPACE}t-{uuid.uuid4().hex[:10]}/"


@pytest.fixture
def make_ctx(action_ctx):  # type: ignore[no-untyped-def]
    """An ActionContext over the real storage; ``ctx.extra["progress"]`` collects reported fractions."""

    def build(memory_limit_mb: int | None = None, cancel: threading.Event | None = None) -> ActionContext:
        ctx = action_ctx(cancel=cancel, memory_limit_mb=memory_limit_mb)
        progress: list[float] = []
        ctx.report_progress = progress.append
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
def put(storage, media_dir: Path, prefix: str):  # type: ignore[no-untyped-def]
    """Upload a generated media file under the namespace; return its key."""

    def upload(name: str, key_name: str | None = None) -> str:
        key = f"{prefix}media/{key_name or name}"
        storage.upload(media_dir / name, key)
        return key

    return upload


@pytest.fixture
def fetch(storage, tmp_path: Path):  # type: ignore[no-untyped-def]  # type: ignore[no-untyped-def]
    """Download a key to a local file for inspection."""

    def get(key: str) -> Path:
        local = tmp_path / "fetched" / posixpath.basename(key)
        local.parent.mkdir(exist_ok=True)
        storage.download(key, local)
        return local

    return get
