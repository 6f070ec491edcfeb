"""Editing actions: ``vendor.ffmpeg.trim``, ``.concat``, ``.overlay`` and ``.merge_audio_video``."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from feaas.actions.base import ActionFailed
from feaas.objects import ParameterType as PT
from src.actions.ffmpeg import demuxers, formats
from src.actions.ffmpeg.args import option, optional_number
from src.actions.ffmpeg.probing import MediaInfo
from src.actions.ffmpeg.spec import (
    AUDIO_INPUT,
    SAME_AV_EXT,
    VIDEO_INPUT,
    MediaInput,
    Needs,
    OutputKey,
    SameExt,
)
from src.actions.ffmpeg.template import MediaAction, MediaJob, opened

MAX_CONCAT_INPUTS = 100
POSITIONS = ("top-left", "top-right", "bottom-left", "bottom-right", "center")


def trim_window(start_s: float, end_s: float | None, length_s: float | None,
                media_s: float | None) -> tuple[float, float | None]:
    """(start, duration) of a trim; ``None`` duration means "to the end"."""
    if end_s is not None and length_s is not None:
        raise ActionFailed("give either end or duration, not both")
    if media_s is not None and start_s >= media_s:
        raise ActionFailed(f"start {start_s:g} s is past the end of the media ({media_s:.2f} s)")
    if end_s is not None:
        if end_s <= start_s:
            raise ActionFailed("end must be after start")
        length_s = end_s - start_s
    if length_s is not None and media_s is not None:
        length_s = min(length_s, media_s - start_s)
    return start_s, length_s


class Trim(MediaAction):
    id = "vendor.ffmpeg.trim"
    description = (
        "Cut a part of a video or audio file (frame-accurate, re-encoded). Inputs: `key`, `start` "
        "(seconds, default 0), `end` or `duration` (seconds; neither = to the end), optional `dest_key` "
        "(default `{base}_trimmed{ext}`). Output: `dest_key`."
    )
    output = OutputKey("trimmed", SAME_AV_EXT)
    sources = (MediaInput("key", demuxers.AUDIO_VIDEO),)
    params = (option("start", PT.FLOAT, 0.0), option("end", PT.FLOAT, 0.0), option("duration", PT.FLOAT, 0.0))

    def parse(self, inputs: dict[str, Any]) -> tuple[float, float | None, float | None]:
        return (optional_number(inputs, "start") or 0.0, optional_number(inputs, "end"),
                optional_number(inputs, "duration"))

    def encode(self, job: MediaJob, options: tuple[float, float | None, float | None]) -> None:
        info, ext = job.source.info, job.ext
        start, length = trim_window(*options, info.duration_s)
        video = info.has_video and formats.is_video_ext(ext)
        maps = (["-map", "0:v:0"] if video else []) + (["-map", "0:a:0"] if info.has_audio else [])
        window = ["-t", f"{length:.6f}"] if length is not None else []
        args = ["-ss", f"{start:.6f}", *job.source.open(), *window, *maps,
                *formats.encode_args(ext, video=video, audio=info.has_audio), str(job.out)]
        expected = length if length is not None else (info.duration_s or 0) - start
        job.run(args, duration_s=expected, timeout_s=job.timeout_s(info.duration_s))


def concat_filter(infos: list[MediaInfo], width: int, height: int, fps: float) -> tuple[str, list[str]]:
    """The ``-filter_complex`` graph joining ``infos`` in order, and the output ``-map`` labels.

    Video is scaled/padded to the first input's size and frame rate; inputs without audio get
    silence of their own length when any input has audio.
    """
    video = all(i.has_video and not i.is_image for i in infos)
    if not video and any(i.has_video and not i.is_image for i in infos):
        raise ActionFailed("cannot join video files with audio-only files")
    audio = any(i.has_audio for i in infos)
    if not video and not audio:
        raise ActionFailed("nothing to join: the inputs have no audio or video")
    parts: list[str] = []
    labels: list[str] = []
    for n, info in enumerate(infos):
        if video:
            parts.append(
                f"[{n}:v:0]scale={width}:{height}:force_original_aspect_ratio=decrease,"
                f"pad={width}:{height}:(ow-iw)/2:(oh-ih)/2,setsar=1,fps={fps:g},format=yuv420p[v{n}]"
            )
            labels.append(f"[v{n}]")
        if audio:
            if info.has_audio:
                parts.append(f"[{n}:a:0]aresample=48000,{formats.STEREO_FLTP}[a{n}]")
            else:
                parts.append(
                    f"anullsrc=r=48000:cl=stereo,atrim=duration={info.duration_s or 0:.6f},"
                    f"{formats.STEREO_FLTP}[a{n}]"
                )
            labels.append(f"[a{n}]")
    outs = (["[v]"] if video else []) + (["[a]"] if audio else [])
    parts.append(f"{''.join(labels)}concat=n={len(infos)}:v={int(video)}:a={int(audio)}{''.join(outs)}")
    return ";".join(parts), outs


class Concat(MediaAction):
    id = "vendor.ffmpeg.concat"
    description = (
        "Join videos (or audio files) end to end. Inputs: `keys` (list of 2–100 keys, in order), optional "
        "`dest_key` (default `{base}_concat{ext}` next to the first key). Videos are scaled and padded to "
        "the first one's size and frame rate and re-encoded; a video without sound gets silence. "
        "Output: `dest_key`."
    )
    output = OutputKey("concat", SAME_AV_EXT)
    sources = (MediaInput("keys", demuxers.AUDIO_VIDEO, count=(2, MAX_CONCAT_INPUTS)),)

    def encode(self, job: MediaJob, options: None) -> None:
        infos = [m.info for m in job.media]
        width = (infos[0].width or 1280) // 2 * 2
        height = (infos[0].height or 720) // 2 * 2
        graph, outs = concat_filter(infos, width, height, infos[0].fps or 30.0)
        if "[v]" in outs and not formats.is_video_ext(job.ext):
            raise ActionFailed(f"cannot write video into a {job.ext} file")
        total = sum(i.duration_s or 0 for i in infos)
        maps = [arg for label in outs for arg in ("-map", label)]
        args = [*opened(job.media), "-filter_complex", graph, *maps,
                *formats.encode_args(job.ext, video="[v]" in outs, audio="[a]" in outs), str(job.out)]
        job.run(args, duration_s=total)


def overlay_filter(position: str, margin: int, opacity: float, overlay_width: int | None) -> str:
    """The graph putting input 1 on top of input 0's video; its output is ``[v]``."""
    if position not in POSITIONS:
        raise ActionFailed(f"position must be one of {', '.join(POSITIONS)}")
    if not 0.0 < opacity <= 1.0:
        raise ActionFailed(f"opacity must be in (0, 1], got {opacity:g}")
    if not 0 <= margin <= 4096:
        raise ActionFailed(f"margin must be between 0 and 4096, got {margin}")
    x = {"left": f"{margin}", "right": f"W-w-{margin}"}
    y = {"top": f"{margin}", "bottom": f"H-h-{margin}"}
    if position == "center":
        xy = "x=(W-w)/2:y=(H-h)/2"
    else:
        vertical, horizontal = position.split("-")
        xy = f"x={x[horizontal]}:y={y[vertical]}"
    chain = ["format=rgba"]
    if overlay_width:
        chain.append(f"scale={overlay_width}:-1")
    if opacity < 1.0:
        chain.append(f"colorchannelmixer=aa={opacity:.3f}")
    return f"[1:v:0]{','.join(chain)}[ov];[0:v:0][ov]overlay={xy}:eof_action=repeat,format=yuv420p[v]"


class Overlay(MediaAction):
    id = "vendor.ffmpeg.overlay"
    description = (
        "Put an image (logo, watermark) or another video on top of a video. Inputs: `key` (the video), "
        "`overlay_key` (image or video), `position` (top-left, top-right, bottom-left, bottom-right, "
        "center; default bottom-right), `margin` (pixels, default 10), `scale` (overlay width as a "
        "fraction of the video width, e.g. 0.2; 0 = as is), `opacity` (0–1, default 1), optional "
        "`dest_key` (default `{base}_overlay{ext}`). Output: `dest_key`."
    )
    output = OutputKey("overlay", SameExt(formats.VIDEO_EXTS))
    sources = (
        MediaInput("key", demuxers.VIDEO, Needs.VIDEO, "key must be a video"),
        MediaInput("overlay_key", demuxers.VISUAL, Needs.PICTURE, "overlay_key must be an image or a video"),
    )
    params = (option("position", PT.STRING, "bottom-right"), option("margin", PT.INTEGER, 10),
              option("scale", PT.FLOAT, 0.0), option("opacity", PT.FLOAT, 1.0))

    def parse(self, inputs: dict[str, Any]) -> tuple[float | None, int, float]:
        scale = optional_number(inputs, "scale")
        if scale is not None and scale > 1:
            raise ActionFailed("scale is a fraction of the video width and must be at most 1")
        margin = optional_number(inputs, "margin", zero_is_unset=False)
        opacity = optional_number(inputs, "opacity")
        return scale, int(margin if margin is not None else 10), 1.0 if opacity is None else opacity

    def encode(self, job: MediaJob, options: tuple[float | None, int, float]) -> None:
        scale, margin, opacity = options
        info, ext = job.source.info, job.ext
        width = max(2, round((info.width or 0) * scale)) if scale and info.width else None
        position = str(job.inputs.get("position") or "bottom-right").lower()
        graph = overlay_filter(position, margin, opacity, width)
        audio = ["-map", "0:a:0", "-c:a", "copy"] if info.has_audio else ["-an"]
        window = ["-t", f"{info.duration_s:.6f}"] if info.duration_s else []
        args = [*opened(job.media), "-filter_complex", graph, "-map", "[v]", *audio,
                *formats.video_args(ext), *formats.container_args(ext), *window, str(job.out)]
        job.run(args, duration_s=info.duration_s)


class MergeAudioVideo(MediaAction):
    id = "vendor.ffmpeg.merge_audio_video"
    description = (
        "Put an audio track on a video, replacing its sound. Inputs: `video_key`, `audio_key`, `shortest` "
        "(default true: stop at the shorter of the two), optional `dest_key` (default "
        "`{base}_merged{ext}` next to the video). The video stream is copied, the audio encoded for the "
        "container. Output: `dest_key`."
    )
    output = OutputKey("merged", SameExt(formats.VIDEO_EXTS))
    sources = (
        replace(VIDEO_INPUT, name="video_key", refusal="video_key has no video stream"),
        replace(AUDIO_INPUT, name="audio_key", refusal="audio_key has no audio stream"),
    )
    params = (option("shortest", PT.BOOLEAN, True),)

    def encode(self, job: MediaJob, options: None) -> None:
        video, audio = job.media
        shortest = bool(job.inputs.get("shortest", True))
        durations = [d for d in (video.info.duration_s, audio.info.duration_s) if d]
        expected = (min(durations) if shortest else max(durations)) if durations else None
        args = [*opened(job.media), "-map", "0:v:0", "-map", "1:a:0", "-c:v", "copy",
                *formats.audio_args(job.ext), *(["-shortest"] if shortest else []),
                *formats.container_args(job.ext), str(job.out)]
        job.run(args, duration_s=expected)
