"""Re-encoding actions: ``vendor.ffmpeg.convert``, ``.resize`` and ``.compress``."""

from __future__ import annotations

import time
from typing import Any

from feaas.actions.base import Action, ActionContext, ActionFailed, Param
from feaas.objects import ParameterType as PT
from src.actions.ffmpeg import demuxers, formats
from src.actions.ffmpeg.args import DEST_KEY, TIMEOUT, optional_number, timeout_for
from src.actions.ffmpeg.naming import format_ext, key_ext, legacy_aliases, output_key
from src.actions.ffmpeg.probing import probe
from src.actions.ffmpeg.process import input_args, run_ffmpeg
from src.actions.ffmpeg.progress import ProgressParser
from src.actions.ffmpeg.workspace import resolve_dest, workspace

X264_PRESETS = ("ultrafast", "superfast", "veryfast", "faster", "fast", "medium", "slow", "slower", "veryslow")
#: MP4-like containers compress keeps; anything else becomes .mp4.
_COMPRESS_EXTS = frozenset({".mp4", ".m4v", ".mov", ".mkv"})


class Convert(Action):
    id = "vendor.ffmpeg.convert"
    aliases = legacy_aliases("convert", "Convert")
    description = (
        "Convert a media file to another format. Inputs: `key`, `format` (mp4, mov, mkv, webm, avi, mp3, "
        "m4a, aac, wav, flac, ogg, opus, png, jpg, webp, bmp), optional `dest_key` (default "
        "`{base}_converted.{format}`). Video goes to H.264 (VP9 in webm), audio to the format's usual "
        "codec; an image format takes the first frame. Output: `dest_key`."
    )
    inputs = (Param("key", PT.KEY), Param("format", PT.STRING, hint="target format, e.g. webm"), DEST_KEY, TIMEOUT)
    outputs = (Param("dest_key", PT.KEY),)

    def run(self, ctx: ActionContext, inputs: dict[str, Any]) -> dict[str, Any]:
        ext = formats.require_supported(format_ext(str(inputs.get("format") or "")))
        with workspace(ctx) as ws:
            src = ws.check_key(inputs.get("key", ""))
            dest = resolve_dest(ws, inputs, output_key(src, "converted", ext))
            local = ws.fetch(src)
            info = probe(local, demuxers.ANY_MEDIA, what=src)
            out = ws.path("output" + ext)
            args = convert_args(input_args(local, info), out, ext, has_video=info.has_video,
                                has_audio=info.has_audio)
            run_ffmpeg(ctx, args, work_dir=ws.dir, duration_s=info.duration_s,
                       timeout_s=timeout_for(inputs, info.duration_s))
            ws.publish(out, dest)
        ctx.report_progress(1.0)
        return {"dest_key": dest}


def convert_args(source: list[str], out: Any, ext: str, *, has_video: bool, has_audio: bool) -> list[str]:
    """ffmpeg arguments that re-encode the input opened by ``source`` (:func:`input_args`) into
    ``out`` (a file of type ``ext``)."""
    if formats.is_image_ext(ext):
        if not has_video:
            raise ActionFailed("the input has no video or image stream to convert to an image")
        return [*source, "-map", "0:v:0", *formats.encode_args(ext, video=True, audio=False), str(out)]
    if formats.is_audio_ext(ext):
        if not has_audio:
            raise ActionFailed("the input has no audio stream")
        return [*source, "-map", "0:a:0", *formats.encode_args(ext, video=False, audio=True), str(out)]
    if not has_video:
        raise ActionFailed("the input has no video stream; convert it to an audio format instead")
    maps = ["-map", "0:v:0"] + (["-map", "0:a:0"] if has_audio else [])
    return [*source, *maps, *formats.encode_args(ext, video=True, audio=has_audio), str(out)]


def scale_filter(width: int | None, height: int | None, *, keep_aspect: bool, even: bool) -> str:
    """The ``scale`` filter for a resize. ``even`` keeps both sides even (needed by yuv420p video)."""
    if not width and not height:
        raise ActionFailed("give width, height or both")
    for name, value in (("width", width), ("height", height)):
        if value is not None and not 1 <= value <= 8192:
            raise ActionFailed(f"{name} must be between 1 and 8192, got {value}")
    auto = "-2" if even else "-1"
    if even:
        width = width - width % 2 if width else width
        height = height - height % 2 if height else height
        if width == 0 or height == 0:
            raise ActionFailed("video width and height must be at least 2")
    if width and not height:
        return f"scale={width}:{auto}"
    if height and not width:
        return f"scale={auto}:{height}"
    if keep_aspect:
        extra = ":force_divisible_by=2" if even else ""
        return f"scale={width}:{height}:force_original_aspect_ratio=decrease{extra}"
    return f"scale={width}:{height},setsar=1"


class Resize(Action):
    id = "vendor.ffmpeg.resize"
    aliases = legacy_aliases("resize", "Resize")
    description = (
        "Resize a video or an image. Inputs: `key`, `width` and/or `height` (pixels; one alone keeps the "
        "aspect ratio), `keep_aspect` (default true: fit inside width×height), optional `dest_key` "
        "(default `{base}_resized{ext}`). Video sides are rounded down to even numbers; audio is copied. "
        "Output: `dest_key`."
    )
    inputs = (
        Param("key", PT.KEY),
        Param("width", PT.INTEGER, optional=True, default=0),
        Param("height", PT.INTEGER, optional=True, default=0),
        Param("keep_aspect", PT.BOOLEAN, optional=True, default=True),
        DEST_KEY, TIMEOUT,
    )
    outputs = (Param("dest_key", PT.KEY),)

    def run(self, ctx: ActionContext, inputs: dict[str, Any]) -> dict[str, Any]:
        width = optional_number(inputs, "width")
        height = optional_number(inputs, "height")
        with workspace(ctx) as ws:
            src = ws.check_key(inputs.get("key", ""))
            ext = formats.require_supported(key_ext(src), formats.VIDEO_EXTS | formats.IMAGE_EXTS)
            dest = resolve_dest(ws, inputs, output_key(src, "resized"))
            local = ws.fetch(src)
            info = probe(local, demuxers.VISUAL, what=src)
            if not info.has_video:
                raise ActionFailed("the input has no video or image stream")
            image = info.is_image or formats.is_image_ext(ext)
            vf = scale_filter(int(width) if width else None, int(height) if height else None,
                              keep_aspect=bool(inputs.get("keep_aspect", True)), even=not image)
            out = ws.path("output" + ext)
            if image:
                args = [*input_args(local, info), "-map", "0:v:0", "-vf", vf,
                        *formats.encode_args(ext, video=True, audio=False)]
            else:
                maps = ["-map", "0:v:0"] + (["-map", "0:a:0", "-c:a", "copy"] if info.has_audio else ["-an"])
                args = [*input_args(local, info), *maps, "-vf", vf, *formats.video_args(ext),
                        *formats.container_args(ext)]
            run_ffmpeg(ctx, [*args, str(out)], work_dir=ws.dir, duration_s=info.duration_s,
                       timeout_s=timeout_for(inputs, info.duration_s))
            ws.publish(out, dest)
        ctx.report_progress(1.0)
        return {"dest_key": dest}


def target_bitrates_kbps(target_mb: float, duration_s: float, has_audio: bool) -> tuple[int, int]:
    """(video, audio) bitrates in kbit/s so that ``duration_s`` of media fits in ``target_mb`` MB
    (10^6 bytes), keeping about 3 % for the container."""
    if duration_s <= 0:
        raise ActionFailed("cannot aim for a size: the input's duration is unknown")
    total_kbps = target_mb * 8_000 / duration_s * 0.97
    audio_kbps = 0
    if has_audio:
        audio_kbps = 128 if total_kbps >= 600 else 64 if total_kbps >= 200 else 32
    video_kbps = int(total_kbps - audio_kbps)
    if video_kbps < 20:
        raise ActionFailed(f"target size {target_mb:g} MB is too small for {duration_s:.1f} s of video")
    return video_kbps, audio_kbps


class Compress(Action):
    id = "vendor.ffmpeg.compress"
    aliases = legacy_aliases("compress", "Compress")
    description = (
        "Make a video smaller with H.264. Inputs: `key`; either `crf` (quality 0–51, default 28; higher "
        "is smaller) or `target_size_mb` (two-pass encode aiming at that size in MB of 10^6 bytes); "
        "`preset` (x264 speed, default veryfast); optional `dest_key` (default `{base}_compressed{ext}`, "
        "mp4 unless the input is mov/mkv/m4v). Output: `dest_key`."
    )
    inputs = (
        Param("key", PT.KEY),
        Param("crf", PT.INTEGER, optional=True, default=0),
        Param("target_size_mb", PT.FLOAT, optional=True, default=0.0),
        Param("preset", PT.STRING, optional=True, default="veryfast"),
        DEST_KEY, TIMEOUT,
    )
    outputs = (Param("dest_key", PT.KEY),)

    def run(self, ctx: ActionContext, inputs: dict[str, Any]) -> dict[str, Any]:
        crf = optional_number(inputs, "crf", zero_is_unset=False) if inputs.get("crf") else None
        target_mb = optional_number(inputs, "target_size_mb")
        if crf is not None and target_mb is not None:
            raise ActionFailed("give either crf or target_size_mb, not both")
        if crf is not None and not 0 <= crf <= 51:
            raise ActionFailed(f"crf must be between 0 and 51, got {crf:g}")
        preset = str(inputs.get("preset") or "veryfast").lower()
        if preset not in X264_PRESETS:
            raise ActionFailed(f"preset must be one of {', '.join(X264_PRESETS)}")
        with workspace(ctx) as ws:
            src = ws.check_key(inputs.get("key", ""))
            ext = key_ext(src) if key_ext(src) in _COMPRESS_EXTS else ".mp4"
            dest = resolve_dest(ws, inputs, output_key(src, "compressed", ext))
            local = ws.fetch(src)
            info = probe(local, demuxers.VIDEO, what=src)
            if not info.has_video or info.is_image:
                raise ActionFailed("compress needs a video; use convert for audio files")
            out = ws.path("output" + ext)
            maps = ["-map", "0:v:0"] + (["-map", "0:a:0"] if info.has_audio else [])
            common = ["-c:v", "libx264", "-preset", preset, "-pix_fmt", "yuv420p"]
            if target_mb is None:
                audio = ["-c:a", "aac", "-b:a", "128k"] if info.has_audio else ["-an"]
                args = [*input_args(local, info), *maps, *common, "-crf", str(int(crf or 28)), *audio,
                        *formats.container_args(ext), str(out)]
                run_ffmpeg(ctx, args, work_dir=ws.dir, duration_s=info.duration_s,
                           timeout_s=timeout_for(inputs, info.duration_s))
            else:
                self._two_pass(ctx, inputs, ws.dir, local, out, info, common, maps, target_mb, ext)
            ws.publish(out, dest)
        ctx.report_progress(1.0)
        return {"dest_key": dest}

    @staticmethod
    def _two_pass(ctx: ActionContext, inputs: dict[str, Any], work_dir: Any, local: Any, out: Any,
                  info: Any, common: list[str], maps: list[str], target_mb: float, ext: str) -> None:
        video_kbps, audio_kbps = target_bitrates_kbps(target_mb, info.duration_s or 0.0, info.has_audio)
        passlog = str(work_dir / "x264pass")
        rate = ["-b:v", f"{video_kbps}k", "-passlogfile", passlog]
        budget_s = timeout_for(inputs, info.duration_s, passes=2)
        started = time.monotonic()
        run_ffmpeg(ctx, [*input_args(local, info), "-map", "0:v:0", *common, *rate, "-pass", "1", "-an",
                         "-f", "null", "-"],
                   work_dir=work_dir, duration_s=info.duration_s, timeout_s=budget_s,
                   progress=ProgressParser(info.duration_s, offset=0.0, scale=0.5))
        audio = ["-c:a", "aac", "-b:a", f"{audio_kbps}k"] if info.has_audio else ["-an"]
        run_ffmpeg(ctx, [*input_args(local, info), *maps, *common, *rate, "-pass", "2", *audio,
                         *formats.container_args(ext), str(out)],
                   work_dir=work_dir, duration_s=info.duration_s,
                   timeout_s=max(1.0, budget_s - (time.monotonic() - started)),
                   progress=ProgressParser(info.duration_s, offset=0.5, scale=0.5))
