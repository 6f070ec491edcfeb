"""Hostile "media" files: playlists and manifests that name other files or addresses (issue 13 §5).

Every ``vendor.ffmpeg.*`` action that reads a user's file is given, in each of its media inputs, a
file uploaded under a media key whose content is an HLS playlist, a DASH manifest, an ffconcat
list or an SDP description pointing at a secret file outside the work directory (absolute path
and ``file://``) or at a loopback listener. Each must be refused with a clear message, no object
may appear in the bucket, the secret's content may appear in none, and nothing may connect.

``test_the_attack_files_are_real`` shows that plain ffprobe (what the worker ran before issue 13)
does follow them, so these tests fail when the guard is gone.
"""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import threading
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from feaas.actions.base import ActionFailed
from src.actions.ffmpeg import ACTIONS
from tests.reliability.conftest import REPORT

pytestmark = pytest.mark.skipif(shutil.which("ffmpeg") is None,
                                reason="ffmpeg not installed; run test_scripts/ensure_ffmpeg.sh")

BY_ID = {a.id: a for a in ACTIONS}
REFUSED = r"unsupported input format '(hls|dash|concat|sdp)' for .*: playlists and manifests are not accepted"


@dataclass
class Secret:
    """A local media file outside any work directory whose bytes carry ``marker``."""

    path: Path
    marker: bytes


@pytest.fixture(scope="module")
def secret(tmp_path_factory: pytest.TempPathFactory) -> Secret:
    """A .mov with PCM audio whose samples are the marker text: a leak through ``convert`` to wav
    copies those bytes verbatim into the output, so it is visible in the bucket."""
    marker = f"SECRET-{uuid.uuid4().hex}:".encode()
    folder = tmp_path_factory.mktemp("outside")
    raw = folder / "samples.raw"
    raw.write_bytes(marker * 2000)
    path = folder / "secret.mov"
    subprocess.run(["ffmpeg", "-hide_banner", "-nostdin", "-loglevel", "error", "-y", "-f", "s16le",
                    "-ar", "8000", "-ac", "1", "-i", str(raw), "-c:a", "pcm_s16le", str(path)],
                   check=True, timeout=60)
    raw.unlink()
    assert marker in path.read_bytes()
    return Secret(path, marker)


class Listener:
    """A loopback TCP server that records every connection it accepts."""

    def __init__(self) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.sock.settimeout(0.2)
        self.port = int(self.sock.getsockname()[1])
        self.connections: list[bytes] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except OSError:
                continue
            with conn:
                conn.settimeout(1.0)
                try:
                    self.connections.append(conn.recv(4096))
                except OSError:
                    self.connections.append(b"")

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        self.sock.close()


@pytest.fixture(scope="module")
def listener() -> Iterator[Listener]:
    server = Listener()
    yield server
    server.close()


def _hls(target: str) -> bytes:
    return f"#EXTM3U\n#EXT-X-TARGETDURATION:10\n#EXTINF:2.0,\n{target}\n#EXT-X-ENDLIST\n".encode()


def _dash(target: str) -> bytes:
    return f"""<?xml version="1.0" encoding="UTF-8"?>
<MPD xmlns="urn:mpeg:dash:schema:mpd:2011" type="static" mediaPresentationDuration="PT2S" minBufferTime="PT1S"
     profiles="urn:mpeg:dash:profile:isoff-on-demand:2011">
 <Period duration="PT2S">
  <AdaptationSet mimeType="audio/mp4" contentType="audio">
   <Representation id="1" bandwidth="128000" codecs="pcm">
    <BaseURL>{target}</BaseURL>
   </Representation>
  </AdaptationSet>
 </Period>
</MPD>
""".encode()


def _sdp(port: int) -> bytes:
    return (f"v=0\r\no=- 0 0 IN IP4 127.0.0.1\r\ns=clip\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n"
            f"m=audio {port} RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\n").encode()


#: name → content builder (secret, listener).
ATTACKS: dict[str, Callable[[Secret, Listener], bytes]] = {
    "hls-file-url": lambda s, _: _hls(f"file://{s.path}"),
    "hls-abs-path": lambda s, _: _hls(str(s.path)),
    "hls-http-loopback": lambda _, n: _hls(f"http://127.0.0.1:{n.port}/x.ts"),
    "dash-file-url": lambda s, _: _dash(f"file://{s.path}"),
    "dash-http-loopback": lambda _, n: _dash(f"http://127.0.0.1:{n.port}/x.mp4"),
    "ffconcat": lambda s, _: f"ffconcat version 1.0\nfile {s.path}\nfile file:{s.path}\n".encode(),
    "sdp": lambda _, n: _sdp(n.port),
}

#: (action, the input that gets the hostile file, the other inputs; ``"clip"``/``"tone"`` name good
#: media uploaded next to it). Every media input of every action is covered.
CASES: list[tuple[str, str, dict[str, Any]]] = [
    ("vendor.ffmpeg.probe", "key", {}),
    ("vendor.ffmpeg.convert", "key", {"format": "wav"}),
    ("vendor.ffmpeg.convert", "key", {"format": "mkv"}),
    ("vendor.ffmpeg.extract_audio", "key", {"format": "wav"}),
    ("vendor.ffmpeg.trim", "key", {"end": 1.0}),
    ("vendor.ffmpeg.concat", "keys", {"keys": ["clip", "ATTACK"]}),
    ("vendor.ffmpeg.resize", "key", {"width": 100}),
    ("vendor.ffmpeg.compress", "key", {}),
    ("vendor.ffmpeg.to_gif", "key", {}),
    ("vendor.ffmpeg.overlay", "key", {"overlay_key": "clip"}),
    ("vendor.ffmpeg.overlay", "overlay_key", {"key": "clip"}),
    ("vendor.ffmpeg.normalize_audio", "key", {}),
    ("vendor.ffmpeg.mix_audio", "keys", {"keys": ["tone", "ATTACK"]}),
    ("vendor.ffmpeg.adjust_volume", "key", {"gain_db": 3.0}),
    ("vendor.ffmpeg.trim_silence", "key", {}),
    ("vendor.ffmpeg.thumbnail", "key", {"time": 0.5}),
    ("vendor.ffmpeg.thumbnails", "key", {"count": 2}),
    ("vendor.ffmpeg.waveform", "key", {}),
    ("vendor.ffmpeg.merge_audio_video", "video_key", {"audio_key": "tone"}),
    ("vendor.ffmpeg.merge_audio_video", "audio_key", {"video_key": "clip"}),
    ("vendor.ffmpeg.resize_image", "key", {"scale": 0.5, "format": "png"}),
    ("vendor.ffmpeg.add_intro_outro", "key", {"outro_key": "clip"}),
    ("vendor.ffmpeg.add_intro_outro", "intro_key", {"key": "clip"}),
    ("vendor.ffmpeg.add_intro_outro", "outro_key", {"key": "clip"}),
    ("vendor.ffmpeg.edit_media", "key", {"remove_start": 0.5, "remove_end": 1.0}),
    ("vendor.ffmpeg.merge_audio", "key", {"other_key": "tone"}),
    ("vendor.ffmpeg.merge_audio", "other_key", {"key": "tone"}),
    ("vendor.ffmpeg.merge_audio_from_folder", "prefix", {}),  # the hostile file is listed under the prefix
]
MEDIA_INPUTS = ("key", "keys", "overlay_key", "video_key", "audio_key", "intro_key", "outro_key", "other_key",
                "prefix")


def test_every_media_input_of_every_action_is_covered():
    covered = {(action, field) for action, field, _ in CASES}
    for action in ACTIONS:
        for param in action.inputs:
            if param.name in MEDIA_INPUTS:
                assert (action.id, param.name) in covered, (action.id, param.name)


def _assert_nothing_leaked(storage: Any, prefix: str, uploaded: set[str], marker: bytes) -> None:
    keys = set(storage.list_keys(prefix))
    assert keys == uploaded, f"unexpected objects: {sorted(keys - uploaded)}"
    for key in keys:
        assert marker not in storage.get_bytes(key), key


@pytest.mark.parametrize("attack", sorted(ATTACKS))
@pytest.mark.parametrize("action_id, field, given", CASES,
                         ids=[f"{a.rsplit('.', 1)[1]}-{f}" for a, f, _ in CASES])
def test_playlists_and_manifests_are_refused(make_ctx, put, storage, prefix, secret, listener, attack,
                                             action_id, field, given):
    audio = action_id.endswith(("mix_audio", "merge_audio", "from_folder")) or field == "audio_key"
    ext = ".wav" if audio else ".mp4"
    hostile = f"{prefix}media/upload{ext}"
    storage.put_bytes(hostile, ATTACKS[attack](secret, listener))
    good = {"clip": "clip.mp4", "tone": "tone.wav"}
    inputs = {p.name: p.default for p in BY_ID[action_id].inputs if p.optional}
    for name, value in given.items():
        if isinstance(value, list):
            inputs[name] = [hostile if v == "ATTACK" else put(good[v]) for v in value]
        else:
            inputs[name] = put(good[value]) if value in good else value
    if field == "prefix":
        inputs[field] = hostile.rpartition("/")[0] + "/"
    elif field != "keys":
        inputs[field] = hostile
    uploaded = set(storage.list_keys(prefix))
    before = len(listener.connections)
    REPORT.add(playlist_attacks=1)

    with pytest.raises(ActionFailed, match=REFUSED) as refused:
        BY_ID[action_id].run(make_ctx(), inputs)

    assert hostile in str(refused.value)
    _assert_nothing_leaked(storage, prefix, uploaded, secret.marker)
    assert len(listener.connections) == before == 0, listener.connections
    REPORT.add(playlist_refused=1)  # counted in the reliability report only once every check held


@pytest.mark.parametrize("attack", ["hls-file-url", "hls-abs-path", "dash-file-url"])
def test_the_attack_files_are_real(tmp_path, secret, listener, attack):
    """Without the allow-list, ffprobe opens the secret through the playlist: the guard is needed."""
    path = tmp_path / "input1.mp4"
    path.write_bytes(ATTACKS[attack](secret, listener))
    proc = subprocess.run(["ffprobe", "-v", "error", "-print_format", "json", "-show_format", "-show_streams",
                           str(path)], capture_output=True, timeout=60, check=True)
    data = json.loads(proc.stdout)
    assert data["format"]["format_name"] in ("hls", "dash")
    assert [s["codec_name"] for s in data["streams"]][:1] == ["pcm_s16le"]  # the secret's stream


def test_ordinary_media_is_still_read_with_the_forced_demuxer(make_ctx, put, fetch):
    """The allow-lists keep ordinary media working: wav (``wav``), png (``png_pipe``), jpg (``image2``,
    read literally), mkv (``matroska``)."""
    ctx = make_ctx()
    flac = BY_ID["vendor.ffmpeg.convert"].run(ctx, {"key": put("tone.wav"), "format": "flac", "dest_key": ""})
    assert fetch(flac["dest_key"]).stat().st_size > 0
    jpg = BY_ID["vendor.ffmpeg.convert"].run(ctx, {"key": put("logo.png"), "format": "jpg", "dest_key": ""})
    small = BY_ID["vendor.ffmpeg.resize"].run(ctx, {"key": jpg["dest_key"], "width": 50, "height": 0,
                                                    "keep_aspect": True, "dest_key": ""})
    assert small["dest_key"].endswith("logo_converted_resized.jpg")
    assert fetch(small["dest_key"]).stat().st_size > 0
    mkv = BY_ID["vendor.ffmpeg.convert"].run(ctx, {"key": put("clip.mp4"), "format": "mkv", "dest_key": ""})
    probed = BY_ID["vendor.ffmpeg.probe"].run(ctx, {"key": mkv["dest_key"]})
    assert probed["format"] == "matroska,webm" and probed["codec"] == "h264"


def test_a_media_file_of_the_wrong_kind_names_what_the_action_reads(make_ctx, put):
    inputs = {"key": put("tone.wav"), "crf": 0, "target_size_mb": 0.0, "preset": "veryfast", "dest_key": "",
              "timeout_s": 0}
    with pytest.raises(ActionFailed,
                       match=r"unsupported input format 'wav' for .*tone.wav: this action reads video"):
        BY_ID["vendor.ffmpeg.compress"].run(make_ctx(), inputs)
