"""Picture actions: ``vendor.ffmpeg.thumbnail``, ``.thumbnails``, ``.to_gif`` and ``.waveform``."""

from __future__ import annotations

import contextlib
import re
from typing import Any

from feaas.actions.base import Action, ActionCancelled, ActionContext, ActionFailed, Param
from feaas.objects import ParameterType as PT
from src.actions.ffmpeg import demuxers, formats
from src.actions.ffmpeg.args import DEST_KEY, TIMEOUT, optional_number, timeout_for
from src.actions.ffmpeg.naming import format_ext, key_ext, legacy_aliases, output_key, split_key
from src.actions.ffmpeg.probing import probe
from src.actions.ffmpeg.process import input_args, run_ffmpeg
from src.actions.ffmpeg.workspace import resolve_dest, workspace

MAX_THUMBNAILS = 1000
MAX_GIF_SECONDS = 300.0
_COLOR = re.compile(r"^(?:(?:#|0x)[0-9a-fA-F]{6}|[a-zA-Z]{3,20})$")


def _image_ext(fmt: Any, default: str = "jpg") -> str:
    return formats.require_supported(format_ext(str(fmt or default)), formats.IMAGE_EXTS)


def _width(inputs: dict[str, Any], name: str = "width") -> int | None:
    value = optional_number(inputs, name)
    if value is not None and not 16 <= value <= 8192:
        raise ActionFailed(f"{name} must be between 16 and 8192, got {value:g}")
    return int(value) if value is not None else None


class Thumbnail(Action):
    id = "vendor.ffmpeg.thumbnail"
    aliases = legacy_aliases("thumbnail", "Thumbnail")
    description = (
        "Save one frame of a video as an image. Inputs: `key`, `time` (seconds; default 10% into the "
        "video), `width` (optional, keeps the aspect ratio), `format` (jpg default, png, webp), optional "
        "`dest_key` (default `{base}_thumb.{format}`). Output: `dest_key`."
    )
    inputs = (
        Param("key", PT.KEY),
        Param("time", PT.FLOAT, optional=True, default=-1.0),
        Param("width", PT.INTEGER, optional=True, default=0),
        Param("format", PT.STRING, optional=True, default="jpg"),
        DEST_KEY, TIMEOUT,
    )
    outputs = (Param("dest_key", PT.KEY),)

    def run(self, ctx: ActionContext, inputs: dict[str, Any]) -> dict[str, Any]:
        ext = _image_ext(inputs.get("format"))
        width = _width(inputs)
        raw_time = inputs.get("time")
        with workspace(ctx) as ws:
            src = ws.check_key(inputs.get("key", ""))
            dest = resolve_dest(ws, inputs, output_key(src, "thumb", ext))
            local = ws.fetch(src)
            info = probe(local, demuxers.VISUAL, what=src)
            if not info.has_video:
                raise ActionFailed("the input has no video stream")
            duration = info.duration_s or 0.0
            at = float(raw_time) if raw_time not in (None, "") and float(raw_time) >= 0 else duration * 0.1
            if duration and at >= duration:
                raise ActionFailed(f"time {at:g} s is past the end of the video ({duration:.2f} s)")
            out = ws.path("output" + ext)
            scale = ["-vf", f"scale={width}:-1"] if width else []
            args = ["-ss", f"{at:.6f}", *input_args(local, info), "-map", "0:v:0", *scale,
                    *formats.encode_args(ext, video=True, audio=False), str(out)]
            run_ffmpeg(ctx, args, work_dir=ws.dir, duration_s=None, timeout_s=timeout_for(inputs, 60.0))
            ws.publish(out, dest)
        ctx.report_progress(1.0)
        return {"dest_key": dest}


def thumbnails_interval(duration_s: float | None, count: int | None, interval_s: float | None) -> tuple[float, int]:
    """(seconds between frames, number of frames) for a contact sheet of a video."""
    if not duration_s:
        raise ActionFailed("the video's duration is unknown")
    if interval_s:
        frames = int(duration_s // interval_s) + 1
        if count:
            frames = min(frames, count)
    else:
        frames = count or 10
        interval_s = duration_s / frames
    if not 1 <= frames <= MAX_THUMBNAILS:
        raise ActionFailed(f"that would make {frames} images; at most {MAX_THUMBNAILS} are allowed")
    return interval_s, frames


class Thumbnails(Action):
    id = "vendor.ffmpeg.thumbnails"
    aliases = legacy_aliases("thumbnails", "Thumbnails")
    description = (
        "Save evenly spaced frames of a video as images under a prefix. Inputs: `key`, `count` (default "
        "10) or `interval` (seconds between frames), `width` (optional), `format` (jpg default, png, "
        "webp), optional `dest_prefix` (default `{base}_thumbs/`). Outputs: `dest_prefix`, `keys` (the "
        "images, `frame_0001.jpg`, …, in time order)."
    )
    inputs = (
        Param("key", PT.KEY),
        Param("count", PT.INTEGER, optional=True, default=0),
        Param("interval", PT.FLOAT, optional=True, default=0.0),
        Param("width", PT.INTEGER, optional=True, default=0),
        Param("format", PT.STRING, optional=True, default="jpg"),
        Param("dest_prefix", PT.PREFIX, optional=True, default=""),
        TIMEOUT,
    )
    outputs = (Param("dest_prefix", PT.PREFIX), Param("keys", PT.LIST))

    def run(self, ctx: ActionContext, inputs: dict[str, Any]) -> dict[str, Any]:
        ext = _image_ext(inputs.get("format"))
        width = _width(inputs)
        count = optional_number(inputs, "count")
        interval = optional_number(inputs, "interval")
        with workspace(ctx) as ws:
            src = ws.check_key(inputs.get("key", ""))
            prefix = str(inputs.get("dest_prefix") or f"{split_key(src)[0]}_thumbs/")
            prefix = prefix.rstrip("/") + "/"
            ws.check_key(prefix + "frame", "dest_prefix")
            local = ws.fetch(src)
            info = probe(local, demuxers.VIDEO, what=src)
            if not info.has_video or info.is_image:
                raise ActionFailed("the input is not a video")
            step, frames = thumbnails_interval(info.duration_s, int(count) if count else None, interval)
            frames_dir = ws.path("frames")
            frames_dir.mkdir()
            vf = f"fps=1/{step:.6f}" + (f",scale={width}:-1" if width else "")
            args = [*input_args(local, info), "-map", "0:v:0", "-vf", vf, "-frames:v", str(frames),
                    *formats.image_args(ext),
                    str(frames_dir / f"frame_%04d{ext}")]
            run_ffmpeg(ctx, args, work_dir=ws.dir, duration_s=info.duration_s,
                       timeout_s=timeout_for(inputs, info.duration_s))
            files = sorted(frames_dir.glob(f"frame_*{ext}"))
            if not files:
                raise ActionFailed("ffmpeg produced no images")
            keys: list[str] = []
            try:
                for path in files:
                    keys.append(ws.publish(path, ws.check_key(prefix + path.name, "dest_prefix")))
            except ActionCancelled:
                # A half-uploaded set is a partial output: take back what was uploaded.
                for key in keys:
                    with contextlib.suppress(Exception):
                        ctx.storage.delete(key)
                raise
        ctx.report_progress(1.0)
        return {"dest_prefix": prefix, "keys": keys}


def gif_filter(fps: int, width: int) -> str:
    """Palette-based GIF conversion in one pass (palettegen + paletteuse)."""
    if not 1 <= fps <= 50:
        raise ActionFailed(f"fps must be between 1 and 50, got {fps}")
    if not 16 <= width <= 1920:
        raise ActionFailed(f"width must be between 16 and 1920, got {width}")
    return (f"[0:v:0]fps={fps},scale={width}:-1:flags=lanczos,split[a][b];"
            f"[a]palettegen=stats_mode=diff[p];[b][p]paletteuse=dither=bayer:bayer_scale=5[v]")


class ToGif(Action):
    id = "vendor.ffmpeg.to_gif"
    aliases = legacy_aliases("to_gif", "ToGif")
    description = (
        "Turn (part of) a video into an animated GIF. Inputs: `key`, `start` (seconds, default 0), "
        "`duration` (seconds, default to the end, at most 300), `fps` (default 10), `width` (default 480), "
        "optional `dest_key` (default `{base}_animated.gif`). Output: `dest_key`."
    )
    inputs = (
        Param("key", PT.KEY),
        Param("start", PT.FLOAT, optional=True, default=0.0),
        Param("duration", PT.FLOAT, optional=True, default=0.0),
        Param("fps", PT.INTEGER, optional=True, default=10),
        Param("width", PT.INTEGER, optional=True, default=480),
        DEST_KEY, TIMEOUT,
    )
    outputs = (Param("dest_key", PT.KEY),)

    def run(self, ctx: ActionContext, inputs: dict[str, Any]) -> dict[str, Any]:
        graph = gif_filter(int(optional_number(inputs, "fps") or 10), int(optional_number(inputs, "width") or 480))
        start = optional_number(inputs, "start") or 0.0
        length = optional_number(inputs, "duration")
        with workspace(ctx) as ws:
            src = ws.check_key(inputs.get("key", ""))
            dest = resolve_dest(ws, inputs, output_key(src, "animated", ".gif"))
            local = ws.fetch(src)
            info = probe(local, demuxers.VIDEO, what=src)
            if not info.has_video or info.is_image:
                raise ActionFailed("the input is not a video")
            media = info.duration_s or 0.0
            if media and start >= media:
                raise ActionFailed(f"start {start:g} s is past the end of the video ({media:.2f} s)")
            span = min(length or (media - start), media - start) if media else (length or MAX_GIF_SECONDS)
            if span > MAX_GIF_SECONDS:
                raise ActionFailed(f"a GIF can be at most {MAX_GIF_SECONDS:g} s long; set start and duration")
            out = ws.path("output.gif")
            args = ["-ss", f"{start:.6f}", "-t", f"{span:.6f}", *input_args(local, info),
                    "-filter_complex", graph,
                    "-map", "[v]", "-loop", "0", str(out)]
            run_ffmpeg(ctx, args, work_dir=ws.dir, duration_s=span, timeout_s=timeout_for(inputs, span))
            ws.publish(out, dest)
        ctx.report_progress(1.0)
        return {"dest_key": dest}


def waveform_filter(width: int, height: int, color: str) -> str:
    """A still picture of the audio's waveform (mono mix)."""
    if not 16 <= width <= 8192 or not 16 <= height <= 4096:
        raise ActionFailed("width must be 16–8192 and height 16–4096 pixels")
    if not _COLOR.match(color):
        raise ActionFailed(f"color must be a name like 'white' or a hex value like '#3b82f6', got {color!r}")
    color = "0x" + color[1:] if color.startswith("#") else color
    return f"[0:a:0]aformat=channel_layouts=mono,showwavespic=s={width}x{height}:colors={color}[v]"


class Waveform(Action):
    id = "vendor.ffmpeg.waveform"
    aliases = legacy_aliases("waveform", "Waveform")
    description = (
        "Draw the waveform of a file's audio as an image. Inputs: `key` (audio or video), `width` (default "
        "1280), `height` (default 240), `color` (name or #rrggbb, default #3b82f6), optional `dest_key` "
        "(default `{base}_waveform.png`; a .jpg/.webp dest_key picks that format). Output: `dest_key`."
    )
    inputs = (
        Param("key", PT.KEY),
        Param("width", PT.INTEGER, optional=True, default=1280),
        Param("height", PT.INTEGER, optional=True, default=240),
        Param("color", PT.STRING, optional=True, default="#3b82f6"),
        DEST_KEY, TIMEOUT,
    )
    outputs = (Param("dest_key", PT.KEY),)

    def run(self, ctx: ActionContext, inputs: dict[str, Any]) -> dict[str, Any]:
        graph = waveform_filter(int(optional_number(inputs, "width") or 1280),
                                int(optional_number(inputs, "height") or 240),
                                str(inputs.get("color") or "#3b82f6"))
        with workspace(ctx) as ws:
            src = ws.check_key(inputs.get("key", ""))
            dest = resolve_dest(ws, inputs, output_key(src, "waveform", ".png"))
            ext = key_ext(dest) if formats.is_image_ext(key_ext(dest)) else ".png"
            local = ws.fetch(src)
            info = probe(local, demuxers.AUDIO_VIDEO, what=src)
            if not info.has_audio:
                raise ActionFailed("the input has no audio stream")
            out = ws.path("output" + ext)
            args = [*input_args(local, info), "-filter_complex", graph, "-map", "[v]",
                    *formats.encode_args(ext, video=True, audio=False), str(out)]
            run_ffmpeg(ctx, args, work_dir=ws.dir, duration_s=info.duration_s,
                       timeout_s=timeout_for(inputs, info.duration_s))
            ws.publish(out, dest)
        ctx.report_progress(1.0)
        return {"dest_key": dest}
