"""Issue 12: the actions and parameters added so that upstream's interfaces run on one implementation
each, on real generated media (conftest.py), checked with ffprobe: resize by a factor or a preset,
resize_image, add_intro_outro (cut and cross-fade), edit_media, merge_audio, merge_audio_from_folder
(bounded, never its own output), mix_audio's replace/duck/loop modes and kept picture, normalize_audio's
peak and rms, trim_silence at one edge, a waveform on a background, a thumbnail never wider than the
video."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from feaas.actions.base import ActionFailed
from src.actions.ffmpeg import ACTIONS
from src.actions.ffmpeg.audio import MAX_FOLDER_FILES, folder_audio_keys
from tests.support.media import ffprobe, runner

pytestmark = pytest.mark.skipif(shutil.which("ffmpeg") is None,
                                reason="ffmpeg not installed; run test_scripts/ensure_ffmpeg.sh")

BY_ID = {a.id: a for a in ACTIONS}


run = runner(BY_ID.values())


def kinds(info: dict[str, Any]) -> list[str]:
    return [s["codec_type"] for s in info["streams"]]


def size(info: dict[str, Any]) -> tuple[int, int]:
    video = next(s for s in info["streams"] if s["codec_type"] == "video")
    return video["width"], video["height"]


def seconds(info: dict[str, Any]) -> float:
    return float(info["format"]["duration"])


def volume(path: Path) -> dict[str, float]:
    err = subprocess.run(["ffmpeg", "-hide_banner", "-nostdin", "-i", str(path), "-af", "volumedetect", "-f",
                          "null", "-"], capture_output=True, text=True, timeout=60, check=True).stderr
    found = re.findall(r"(mean_volume|max_volume): (-?[0-9.]+) dB", err)
    return {name: float(value) for name, value in found}


def pixels(path: Path) -> list[tuple[int, ...]]:
    raw = subprocess.run(["ffmpeg", "-v", "error", "-i", str(path), "-f", "rawvideo", "-pix_fmt", "rgba",
                          "-"], capture_output=True, check=True, timeout=60).stdout
    return [tuple(raw[i:i + 4]) for i in range(0, len(raw), 4)]


@pytest.fixture
def loud(media_dir: Path, put) -> str:  # type: ignore[no-untyped-def]
    """A 3 s tone at full sine level (the bed for mixing and ducking)."""
    path = media_dir / "loud.mp3"
    if not path.exists():
        subprocess.run(["ffmpeg", "-hide_banner", "-nostdin", "-loglevel", "error", "-y", "-f", "lavfi", "-i",
                        "sine=frequency=300:sample_rate=44100:duration=1.5", "-c:a", "libmp3lame", str(path)],
                       check=True, timeout=60)
    return put("loud.mp3")  # type: ignore[no-any-return]


def test_resize_by_a_factor_and_by_a_preset(make_ctx, put, fetch):
    clip = put("clip.mp4")
    out = run(make_ctx(), "vendor.ffmpeg.resize", key=clip, scale=0.25, width=999)  # scale wins
    assert size(ffprobe(fetch(out["dest_key"]))) == (320, 180)
    out = run(make_ctx(), "vendor.ffmpeg.resize", key=clip, preset="480P", dest_key=clip[:-4] + "_480.mp4")
    info = ffprobe(fetch(out["dest_key"]))
    assert size(info) == (854, 480) and kinds(info) == ["video", "audio"]


def test_resize_refuses_an_unknown_preset_before_any_work(make_ctx, put):
    with pytest.raises(ActionFailed, match="preset must be one of 480p, 720p, 1080p, 1440p, 2160p, got '4k'"):
        run(make_ctx(), "vendor.ffmpeg.resize", key=put("clip.mp4"), preset="4k")


def test_resize_image_scales_a_picture_into_another_format(make_ctx, put, fetch):
    out = run(make_ctx(), "vendor.ffmpeg.resize_image", key=put("logo.png"), scale=0.5, format="gif")
    assert out["dest_key"].endswith("media/logo_resized.gif")
    info = ffprobe(fetch(out["dest_key"]))
    assert size(info) == (100, 50) and info["streams"][0]["codec_name"] == "gif"


def test_add_intro_outro_joins_and_cross_fades(make_ctx, put, fetch):
    clip, short = put("clip.mp4"), put("short.mp4")  # 4 s 1280x720 with sound; 2 s 640x360 without
    out = run(make_ctx(), "vendor.ffmpeg.add_intro_outro", key=clip, intro_key=short, outro_key=short)
    info = ffprobe(fetch(out["dest_key"]))
    assert out["dest_key"].endswith("media/clip_with_intro_outro.mp4")
    assert size(info) == (1280, 720) and kinds(info) == ["video", "audio"] and abs(seconds(info) - 8) < 0.2
    faded = run(make_ctx(), "vendor.ffmpeg.add_intro_outro", key=clip, outro_key=short, crossfade_s=1.0,
                dest_key=clip[:-4] + "_faded.mp4")
    assert abs(seconds(ffprobe(fetch(faded["dest_key"]))) - 5) < 0.2  # 4 + 2 − 1


def test_add_intro_outro_of_audio_and_a_too_long_crossfade(make_ctx, put, fetch):
    out = run(make_ctx(), "vendor.ffmpeg.add_intro_outro", key=put("tone.wav"), intro_key=put("quiet.mp3"))
    info = ffprobe(fetch(out["dest_key"]))
    assert kinds(info) == ["audio"] and abs(seconds(info) - 5) < 0.1
    with pytest.raises(ActionFailed, match=r"crossfade_s \(2.5 s\) must be shorter than every clip"):
        run(make_ctx(), "vendor.ffmpeg.add_intro_outro", key=put("tone.wav"), intro_key=put("quiet.mp3"),
            crossfade_s=2.5)


@pytest.mark.parametrize("name, start, end, left", [
    ("clip.mp4", 1.0, 2.5, 2.5), ("tone.wav", 0.0, 1.0, 2.0), ("tone.wav", 2.0, 99.0, 2.0)])
def test_edit_media_removes_a_stretch(make_ctx, put, fetch, name, start, end, left):
    source = put(name)
    out = run(make_ctx(), "vendor.ffmpeg.edit_media", key=source, remove_start=start, remove_end=end)
    info = ffprobe(fetch(out["dest_key"]))
    assert abs(seconds(info) - left) < 0.1
    assert kinds(info) == (["video", "audio"] if name.endswith(".mp4") else ["audio"])


def test_edit_media_refuses_what_cannot_be_cut(make_ctx, put):
    tone = put("tone.wav")
    with pytest.raises(ActionFailed, match="must be after remove_start"):
        run(make_ctx(), "vendor.ffmpeg.edit_media", key=tone, remove_start=2.0, remove_end=1.0)
    with pytest.raises(ActionFailed, match="past the end of the media"):
        run(make_ctx(), "vendor.ffmpeg.edit_media", key=tone, remove_start=5.0, remove_end=6.0)
    with pytest.raises(ActionFailed, match="would remove all of the media"):
        run(make_ctx(), "vendor.ffmpeg.edit_media", key=tone, remove_start=0.0, remove_end=9.0)


def test_merge_audio_mixes_two_files_as_long_as_the_longer(make_ctx, put, fetch):
    out = run(make_ctx(), "vendor.ffmpeg.merge_audio", key=put("quiet.mp3"), other_key=put("tone.wav"))
    assert out["dest_key"].endswith("media/quiet_merged.mp3")
    info = ffprobe(fetch(out["dest_key"]))
    assert info["streams"][0]["codec_name"] == "mp3" and abs(seconds(info) - 3) < 0.1


def test_merge_audio_from_folder_takes_the_audio_files_and_never_its_output(make_ctx, put, fetch, storage,
                                                                             prefix):
    for name in ("tone.wav", "quiet.mp3", "padded.wav", "logo.png", "clip.mp4"):
        put(name, f"songs/{name}")
    out = run(make_ctx(), "vendor.ffmpeg.merge_audio_from_folder", prefix=f"{prefix}media/songs")
    assert out["dest_key"] == f"{prefix}media/songs/merged_output.mp3"
    first = storage.get_bytes(out["dest_key"])
    assert abs(seconds(ffprobe(fetch(out["dest_key"]))) - 4.5) < 0.1  # padded.wav, the longest
    again = run(make_ctx(), "vendor.ffmpeg.merge_audio_from_folder", prefix=f"{prefix}media/songs/")
    assert storage.get_bytes(again["dest_key"]) == first  # the same three files, not four


def test_merge_audio_from_folder_refusals(make_ctx, storage, prefix):
    with pytest.raises(ActionFailed, match=f"no audio files under {re.escape(prefix)}empty/"):
        run(make_ctx(), "vendor.ffmpeg.merge_audio_from_folder", prefix=f"{prefix}empty")
    with pytest.raises(ActionFailed, match="outside your namespace"):
        run(make_ctx(), "vendor.ffmpeg.merge_audio_from_folder", prefix="plus_example_com/bob@example.com/")


def test_folder_listing_is_bounded_and_skips_the_output():
    keys = [f"h/u/s/{n:03d}.MP3" for n in range(MAX_FOLDER_FILES)]
    keys += ["h/u/s/merged_output.mp3", "h/u/s/a.txt"]
    assert folder_audio_keys(keys, exclude="h/u/s/merged_output.mp3") == sorted(keys[:MAX_FOLDER_FILES])
    with pytest.raises(ActionFailed, match="the prefix holds 101 audio files; at most 100 can be merged"):
        folder_audio_keys([*keys, "h/u/s/x.wav"], exclude="h/u/s/merged_output.mp3")
    with pytest.raises(ActionFailed, match="more than 10000 objects"):
        folder_audio_keys((f"h/u/s/{n}.txt" for n in range(10_001)), exclude="")


def test_mix_audio_modes_loop_and_keep_the_picture(make_ctx, put, fetch, loud):
    clip = put("clip.mp4")  # 4 s, a 440 Hz tone
    levels = {}
    for mode in ("mix", "duck", "replace"):
        out = run(make_ctx(), "vendor.ffmpeg.mix_audio", keys=[clip, loud], mode=mode, loop=True,
                  dest_key=f"{clip[:-4]}_{mode}.mp4")
        local = fetch(out["dest_key"])
        info = ffprobe(local)
        # the picture kept; the bed looped to the first key's length
        assert kinds(info) == ["video", "audio"] and abs(seconds(info) - 4) < 0.15
        levels[mode] = volume(local)["mean_volume"]
    assert levels["duck"] < levels["mix"] - 1  # the bed is lowered while the clip sounds (upstream's failed)
    assert levels["replace"] != levels["mix"]


def test_normalize_audio_peak_and_rms(make_ctx, put, fetch):
    tone = put("tone.wav")
    peak = run(make_ctx(), "vendor.ffmpeg.normalize_audio", key=tone, method="peak", target_lufs=-3.0)
    assert abs(volume(fetch(peak["dest_key"]))["max_volume"] - -3.0) < 0.3
    rms = run(make_ctx(), "vendor.ffmpeg.normalize_audio", key=tone, method="rms", target_lufs=-20.0,
              dest_key=tone[:-4] + "_rms.wav")
    assert abs(volume(fetch(rms["dest_key"]))["mean_volume"] - -20.0) < 0.3
    with pytest.raises(ActionFailed, match="method must be one of loudnorm, peak, rms"):
        run(make_ctx(), "vendor.ffmpeg.normalize_audio", key=tone, method="replaygain")


@pytest.mark.parametrize("mode, left", [("start", 3.5), ("end", 3.0), ("edges", 2.0)])
def test_trim_silence_at_one_edge(make_ctx, put, fetch, mode, left):
    padded = put("padded.wav")  # 1 s silence, 2 s tone, 1.5 s silence
    out = run(make_ctx(), "vendor.ffmpeg.trim_silence", key=padded, mode=mode)
    assert abs(seconds(ffprobe(fetch(out["dest_key"]))) - left) < 0.15


def test_waveform_on_a_background_or_transparent(make_ctx, put, fetch):
    clip = put("clip.mp4")
    out = run(make_ctx(), "vendor.ffmpeg.waveform", key=clip, width=200, height=50, background="#ff0000",
              color="#0000ff")
    colours = set(pixels(fetch(out["dest_key"])))
    assert (255, 0, 0, 255) in colours and (0, 0, 255, 255) in colours and all(c[3] == 255 for c in colours)
    clear = run(make_ctx(), "vendor.ffmpeg.waveform", key=clip, width=200, height=50,
                dest_key=clip[:-4] + "_clear.png")
    assert any(c[3] == 0 for c in pixels(fetch(clear["dest_key"])))


def test_thumbnail_is_never_wider_than_the_video(make_ctx, put, fetch):
    out = run(make_ctx(), "vendor.ffmpeg.thumbnail", key=put("short.mp4"), time=1.0, width=4000)
    assert size(ffprobe(fetch(out["dest_key"]))) == (640, 360)
