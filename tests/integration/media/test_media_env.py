"""ffmpeg and ffprobe run with a minimal environment: no credentials, no credentials URI (issue 13 §5).

The worker's environment holds AWS keys (the local stack exports them, as Fargate exports the task
role's credentials URI). ``ffmpeg``/``ffprobe`` wrappers placed first on the worker's PATH record
the environment they were started with, then exec the real tools.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from feaas.actions.childenv import CHILD_PATH, child_env
from src.actions.ffmpeg import ACTIONS

pytestmark = pytest.mark.skipif(shutil.which("ffmpeg") is None,
                                reason="ffmpeg not installed; run test_scripts/ensure_ffmpeg.sh")

BY_ID = {a.id: a for a in ACTIONS}
CREDENTIALS = {
    "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI": "/v2/credentials/1234-secret-uri",
    "AWS_CONTAINER_CREDENTIALS_FULL_URI": "http://169.254.170.23/v1/credentials",
    "AWS_CONTAINER_AUTHORIZATION_TOKEN": "token-secret",
    "ECS_CONTAINER_METADATA_URI_V4": "http://169.254.170.2/v4/abc",
    "ECS_CONTAINER_METADATA_URI": "http://169.254.170.2/v3/abc",
    "ACCESS_KEY": "AKIAEXAMPLEWORKERKEY",
    "SECRET_KEY": "worker-secret-key-value",
}


def _forbidden(name: str) -> bool:
    return name.startswith(("AWS_", "ECS_")) or name in ("ACCESS_KEY", "SECRET_KEY")


def test_child_env_is_the_fixed_minimal_set(monkeypatch, tmp_path):
    for name, value in {**CREDENTIALS, "AWS_SECRET_ACCESS_KEY": "x", "AWS_ACCESS_KEY_ID": "y"}.items():
        monkeypatch.setenv(name, value)
    env = child_env(tmp_path)
    assert env == {"PATH": CHILD_PATH, "HOME": str(tmp_path), "TMPDIR": str(tmp_path), "LANG": "C.UTF-8",
                   "LC_ALL": "C.UTF-8"}


@pytest.fixture
def recording_tools(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """``ffmpeg``/``ffprobe`` wrappers first on the worker's PATH; each run appends its environment
    (NUL-separated, one file per run) under the returned folder."""
    dumps = tmp_path / "env-dumps"
    dumps.mkdir()
    bin_dir = tmp_path / "wrappers"
    bin_dir.mkdir()
    for tool in ("ffmpeg", "ffprobe"):
        real = shutil.which(tool)
        assert real is not None
        script = bin_dir / tool
        # The dump folder is written into the script: the environment cannot carry it.
        script.write_text(f'#!/bin/sh\nenv -0 > "{dumps}/{tool}-$$.env"\nexec "{real}" "$@"\n')
        script.chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    return dumps


def _read_env(path: Path) -> dict[str, str]:
    pairs = [item.split("=", 1) for item in path.read_text().split("\0") if item]
    return dict(pairs)


def test_ffmpeg_and_ffprobe_see_no_credentials(make_ctx, put, monkeypatch, recording_tools):
    # Given a worker whose environment holds keys and the task role's credentials URI
    assert os.environ.get("AWS_SECRET_ACCESS_KEY"), \
        "the local stack exports keys into the worker's environment"
    for name, value in CREDENTIALS.items():
        monkeypatch.setenv(name, value)
    ctx = make_ctx()

    # When an action probes and converts a file
    out = BY_ID["vendor.ffmpeg.convert"].run(ctx, {"key": put("tone.wav"), "format": "mp3", "dest_key": "",
                                                   "timeout_s": 0})

    # Then both tools ran with only the minimal environment, at home in the action's work directory
    assert out["dest_key"].endswith("tone_converted.mp3")
    dumps = sorted(recording_tools.iterdir())
    assert {p.name.split("-")[0] for p in dumps} == {"ffmpeg", "ffprobe"}
    secrets = [*CREDENTIALS.values(), os.environ["AWS_SECRET_ACCESS_KEY"], os.environ["AWS_ACCESS_KEY_ID"]]
    for dump in dumps:
        env = _read_env(dump)
        assert not [name for name in env if _forbidden(name)], (dump.name, sorted(env))
        assert not [s for s in secrets if s in dump.read_text()], dump.name
        assert env["PATH"] == CHILD_PATH and env["LC_ALL"] == "C.UTF-8"
        home = Path(env["HOME"])
        assert env["TMPDIR"] == env["HOME"] and home.parent == ctx.tmp_dir and home.name.startswith("ffmpeg-")
