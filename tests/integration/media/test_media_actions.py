"""Each vendor.ffmpeg action on real generated media, checked with ffprobe (issue 6)."""

from __future__ import annotations

import shutil
import subprocess
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from feaas.actions.base import ActionCancelled, ActionFailed
from src.actions.ffmpeg import ACTIONS
from src.actions.ffmpeg.audio import parse_loudnorm
from tests.support.media import ffprobe, runner

NAMESPACE = "plus_example_com/alice@example.com/"
pytestmark = pytest.mark.skipif(shutil.which("ffmpeg") is None,
                                reason="ffmpeg not installed; run test_scripts/ensure_ffmpeg.sh")

BY_ID = {a.id: a for a in ACTIONS}


run = runner(BY_ID.values())


def streams(info: dict[str, Any], kind: str) -> list[dict[str, Any]]:
    return [s for s in info["streams"] if s["codec_type"] == kind]


def duration(info: dict[str, Any]) -> float:
    return float(info["format"]["duration"])


def loudness(path: Path) -> float:
    proc = subprocess.run(
        ["ffmpeg", "-hide_banner", "-nostdin", "-i", str(path), "-af", "loudnorm=print_format=json",
         "-f", "null", "-"], check=False, capture_output=True, text=True, timeout=60,
    )
    return float(parse_loudnorm(proc.stderr)["input_i"])


def test_probe_reports_the_clip(make_ctx, put):
    out = run(make_ctx(), "vendor.ffmpeg.probe", key=put("clip.mp4"))
    assert out["width"] == 1280 and out["height"] == 720
    assert out["codec"] == "h264" and out["audio_codec"] == "aac"
    assert out["fps"] == 25.0
    assert 3.9 <= out["duration"] <= 4.2
    assert out["bitrate"] > 0 and "mp4" in out["format"]


def test_convert_to_webm_uses_vp9_and_opus(make_ctx, put, fetch, prefix):
    ctx = make_ctx()
    out = run(ctx, "vendor.ffmpeg.convert", key=put("clip.mp4"), format="webm")
    assert out["dest_key"] == f"{prefix}media/clip_converted.webm"
    info = ffprobe(fetch(out["dest_key"]))
    assert streams(info, "video")[0]["codec_name"] == "vp9"
    assert streams(info, "audio")[0]["codec_name"] == "opus"
    assert abs(duration(info) - 4.0) < 0.2
    progress = ctx.extra["progress"]
    assert progress and progress[-1] == 1.0 and progress == sorted(progress)


def test_convert_honours_dest_key(make_ctx, put, fetch, prefix):
    dest = f"{prefix}out/tone.mp3"
    out = run(make_ctx(), "vendor.ffmpeg.convert", key=put("tone.wav"), format="mp3", dest_key=dest)
    assert out["dest_key"] == dest
    assert streams(ffprobe(fetch(dest)), "audio")[0]["codec_name"] == "mp3"


def test_extract_audio(make_ctx, put, fetch):
    out = run(make_ctx(), "vendor.ffmpeg.extract_audio", key=put("clip.mp4"), format="mp3")
    assert out["dest_key"].endswith("media/clip_audio.mp3")
    info = ffprobe(fetch(out["dest_key"]))
    assert not streams(info, "video") and streams(info, "audio")[0]["codec_name"] == "mp3"
    assert abs(duration(info) - 4.0) < 0.2


def test_trim_cuts_the_window(make_ctx, put, fetch):
    out = run(make_ctx(), "vendor.ffmpeg.trim", key=put("clip.mp4"), start=1.0, end=2.5)
    assert out["dest_key"].endswith("media/clip_trimmed.mp4")
    info = ffprobe(fetch(out["dest_key"]))
    assert abs(duration(info) - 1.5) < 0.15
    assert len(streams(info, "video")) == 1 and len(streams(info, "audio")) == 1


def test_concat_scales_and_fills_silence(make_ctx, put, fetch):
    out = run(make_ctx(), "vendor.ffmpeg.concat", keys=[put("clip.mp4"), put("short.mp4")])
    assert out["dest_key"].endswith("media/clip_concat.mp4")
    info = ffprobe(fetch(out["dest_key"]))
    video = streams(info, "video")[0]
    assert (video["width"], video["height"]) == (1280, 720)
    assert len(streams(info, "audio")) == 1
    assert abs(duration(info) - 6.0) < 0.25


def test_resize_video_and_image(make_ctx, put, fetch):
    ctx = make_ctx()
    out = run(ctx, "vendor.ffmpeg.resize", key=put("clip.mp4"), width=641)
    video = streams(ffprobe(fetch(out["dest_key"])), "video")[0]
    assert (video["width"], video["height"]) == (640, 360)
    out = run(ctx, "vendor.ffmpeg.resize", key=put("logo.png"), width=50, height=50)
    image = streams(ffprobe(fetch(out["dest_key"])), "video")[0]
    assert out["dest_key"].endswith("media/logo_resized.png")
    assert (image["width"], image["height"]) == (50, 25)


def test_compress_crf_and_target_size(make_ctx, put, fetch, media_dir, prefix):
    ctx = make_ctx()
    key = put("clip.mp4")
    out = run(ctx, "vendor.ffmpeg.compress", key=key, crf=35)
    small = fetch(out["dest_key"])
    assert small.stat().st_size < (media_dir / "clip.mp4").stat().st_size
    target_mb = 0.25
    out = run(ctx, "vendor.ffmpeg.compress", key=key, target_size_mb=target_mb,
              dest_key=f"{prefix}media/target.mp4")
    size = fetch(out["dest_key"]).stat().st_size
    assert 0.5 * target_mb * 1e6 < size <= 1.1 * target_mb * 1e6


def test_to_gif(make_ctx, put, fetch):
    out = run(make_ctx(), "vendor.ffmpeg.to_gif", key=put("clip.mp4"), duration=2.0, fps=10, width=320)
    assert out["dest_key"].endswith("media/clip_animated.gif")
    video = streams(ffprobe(fetch(out["dest_key"])), "video")[0]
    assert video["codec_name"] == "gif" and video["width"] == 320
    assert int(video["nb_frames"]) == 20 or abs(float(video.get("duration", 2)) - 2.0) < 0.2


def test_overlay_keeps_duration_and_audio(make_ctx, put, fetch):
    out = run(make_ctx(), "vendor.ffmpeg.overlay", key=put("clip.mp4"), overlay_key=put("logo.png"),
              position="top-left", scale=0.25, opacity=0.5)
    info = ffprobe(fetch(out["dest_key"]))
    assert abs(duration(info) - 4.0) < 0.2
    assert streams(info, "video")[0]["width"] == 1280 and len(streams(info, "audio")) == 1


def test_normalize_audio_hits_target(make_ctx, put, fetch):
    out = run(make_ctx(), "vendor.ffmpeg.normalize_audio", key=put("tone.wav"), target_lufs=-16.0)
    assert out["dest_key"].endswith("media/tone_normalized.wav")
    assert abs(loudness(fetch(out["dest_key"])) - (-16.0)) < 1.0


def test_normalize_audio_refuses_silence(make_ctx, put):
    with pytest.raises(ActionFailed, match="silent"):
        run(make_ctx(), "vendor.ffmpeg.normalize_audio", key=put("silence.wav"))


def test_mix_audio(make_ctx, put, fetch):
    out = run(make_ctx(), "vendor.ffmpeg.mix_audio", keys=[put("tone.wav"), put("quiet.mp3")],
              volumes=["1", "0.5"])
    info = ffprobe(fetch(out["dest_key"]))
    assert out["dest_key"].endswith("media/tone_mix.wav")
    assert len(streams(info, "audio")) == 1 and abs(duration(info) - 3.0) < 0.1


def test_adjust_volume(make_ctx, put, fetch, media_dir):
    out = run(make_ctx(), "vendor.ffmpeg.adjust_volume", key=put("tone.wav"), gain_db=6.0)
    assert abs(loudness(fetch(out["dest_key"])) - loudness(media_dir / "tone.wav") - 6.0) < 0.5


def test_trim_silence_edges_and_all(make_ctx, put, fetch, prefix):
    ctx = make_ctx()
    out = run(ctx, "vendor.ffmpeg.trim_silence", key=put("padded.wav"))
    assert out["dest_key"].endswith("media/padded_nosilence.wav")
    assert abs(duration(ffprobe(fetch(out["dest_key"]))) - 2.0) < 0.1
    out = run(ctx, "vendor.ffmpeg.trim_silence", key=put("padded.wav"), mode="all",
              dest_key=f"{prefix}media/all.wav")
    assert duration(ffprobe(fetch(out["dest_key"]))) < 3.0


def test_thumbnail(make_ctx, put, fetch):
    out = run(make_ctx(), "vendor.ffmpeg.thumbnail", key=put("clip.mp4"), time=1.0, width=320)
    assert out["dest_key"].endswith("media/clip_thumb.jpg")
    image = streams(ffprobe(fetch(out["dest_key"])), "video")[0]
    assert image["codec_name"] == "mjpeg" and (image["width"], image["height"]) == (320, 180)


def test_thumbnails_to_prefix(make_ctx, put, storage, prefix):
    out = run(make_ctx(), "vendor.ffmpeg.thumbnails", key=put("clip.mp4"), count=4, format="png")
    assert out["dest_prefix"] == f"{prefix}media/clip_thumbs/"
    assert out["keys"] == [f"{prefix}media/clip_thumbs/frame_000{i}.png" for i in range(1, 5)]
    assert list(storage.list_keys(out["dest_prefix"])) == out["keys"]


def test_waveform(make_ctx, put, fetch):
    out = run(make_ctx(), "vendor.ffmpeg.waveform", key=put("tone.wav"), width=800, height=200, color="red")
    image = streams(ffprobe(fetch(out["dest_key"])), "video")[0]
    assert out["dest_key"].endswith("media/tone_waveform.png")
    assert (image["codec_name"], image["width"], image["height"]) == ("png", 800, 200)


def test_merge_audio_video(make_ctx, put, fetch):
    out = run(make_ctx(), "vendor.ffmpeg.merge_audio_video", video_key=put("short.mp4"),
              audio_key=put("tone.wav"))
    info = ffprobe(fetch(out["dest_key"]))
    assert out["dest_key"].endswith("media/short_merged.mp4")
    assert streams(info, "video")[0]["codec_name"] == "h264"
    assert streams(info, "audio")[0]["codec_name"] == "aac"
    assert abs(duration(info) - 2.0) < 0.15


# --- failures a user can act on ------------------------------------------------------------------


def test_missing_input_key(make_ctx):
    with pytest.raises(ActionFailed, match="input not found"):
        run(make_ctx(), "vendor.ffmpeg.probe", key=f"{NAMESPACE}nope.mp4")


def test_not_a_media_file(make_ctx, put):
    with pytest.raises(ActionFailed, match="not a media file"):
        run(make_ctx(), "vendor.ffmpeg.convert", key=put("notmedia.mp4"), format="webm")


def test_unsupported_format(make_ctx, put):
    with pytest.raises(ActionFailed, match="unsupported output format"):
        run(make_ctx(), "vendor.ffmpeg.convert", key=put("clip.mp4"), format="xyz")


@pytest.mark.parametrize("field", ["key", "dest_key"])
def test_keys_outside_namespace_are_refused(make_ctx, put, storage, field, prefix):
    clip = put("clip.mp4")
    inputs = {"key": clip, "format": "mkv", "dest_key": ""}
    inputs[field] = "plus_example_com/alice@example.com/../mallory@example.com/x.mkv"
    with pytest.raises(ActionFailed, match="outside your namespace"):
        run(make_ctx(), "vendor.ffmpeg.convert", **inputs)
    assert list(storage.list_keys(prefix)) == [clip]


def test_timeout_is_a_clear_failure(make_ctx, put, storage, prefix):
    key = put("clip.mp4")
    ctx = make_ctx()
    started = time.monotonic()
    with pytest.raises(ActionFailed, match="timed out after 1 s"):
        run(ctx, "vendor.ffmpeg.compress", key=key, preset="veryslow", crf=10, timeout_s=1)
    assert time.monotonic() - started < 5
    assert not storage.exists(f"{prefix}media/clip_compressed.mp4")
    assert list(ctx.tmp_dir.iterdir()) == []


def test_disk_full_is_explained(make_ctx, put, monkeypatch):
    import errno as errno_mod

    from src.actions.ffmpeg import process

    def full(*_a: Any, **_k: Any) -> None:
        raise OSError(errno_mod.ENOSPC, "No space left on device")

    ctx = make_ctx()
    monkeypatch.setattr(ctx.storage, "download", full)
    with pytest.raises(ActionFailed, match="disk full"):
        run(ctx, "vendor.ffmpeg.probe", key=put("clip.mp4"))
    message = process.explain_failure("av_interleaved_write_frame(): No space left on device", 1)
    assert message.startswith("disk full")


# --- cancellation ----------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def long_clip(media_dir: Path) -> Path:
    path = media_dir / "long.mkv"
    subprocess.run(
        ["ffmpeg", "-hide_banner", "-nostdin", "-loglevel", "error", "-y", "-f", "lavfi",
         "-i", "testsrc2=size=1280x720:rate=30:duration=60", "-c:v", "libx264", "-preset", "ultrafast",
         str(path)], check=True, timeout=300,
    )
    return path


def test_cancel_mid_encode_stops_fast_and_leaves_nothing(make_ctx, storage, long_clip, prefix):
    key = f"{prefix}media/long.mkv"
    storage.upload(long_clip, key)
    cancel = threading.Event()
    ctx = make_ctx(cancel=cancel)
    seen_progress = threading.Event()
    reported = ctx.report_progress

    def progress(fraction: float) -> None:
        reported(fraction)
        seen_progress.set()

    ctx.report_progress = progress
    outcome: dict[str, Any] = {}

    def work() -> None:
        try:
            run(ctx, "vendor.ffmpeg.compress", key=key, preset="medium")
        except BaseException as exc:  # noqa: BLE001 - handed to the test thread
            outcome["error"] = exc

    thread = threading.Thread(target=work)
    thread.start()
    assert seen_progress.wait(60), "ffmpeg never reported progress"
    cancelled_at = time.monotonic()
    cancel.set()
    thread.join(10)
    stopped_after = time.monotonic() - cancelled_at
    assert not thread.is_alive()
    assert stopped_after < 2.0, stopped_after
    assert isinstance(outcome.get("error"), ActionCancelled)
    assert 0 < ctx.extra["progress"][-1] < 1
    assert not storage.exists(f"{prefix}media/long_compressed.mkv")
    assert list(storage.list_keys(prefix)) == [key]
    assert list(ctx.tmp_dir.iterdir()) == []
    assert subprocess.run(["pgrep", "-f", str(ctx.tmp_dir)], check=False, capture_output=True).returncode == 1
