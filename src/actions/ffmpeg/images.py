"""Picture actions: ``vendor.ffmpeg.thumbnail``, ``.thumbnails``, ``.to_gif`` and ``.waveform``."""

from __future__ import annotations

import contextlib
import re
from pathlib import Path
from typing import Any

from feaas.actions.base import ActionCancelled, ActionContext, ActionFailed, Param
from feaas.actions.legacy import LegacyInput, LegacyInterface, LegacyOutput
from feaas.objects import ParameterType as PT
from src.actions.ffmpeg import demuxers, formats
from src.actions.ffmpeg.args import TIMEOUT, option, optional_number, time_text, timeout_for
from src.actions.ffmpeg.naming import split_key
from src.actions.ffmpeg.probing import probe
from src.actions.ffmpeg.process import run_ffmpeg
from src.actions.ffmpeg.spec import (
    AUDIO_INPUT,
    VIDEO_INPUT,
    FixedExt,
    FormatInput,
    MediaInput,
    Needs,
    OutputKey,
)
from src.actions.ffmpeg.template import FfmpegAction, Media, MediaAction, MediaJob
from src.actions.ffmpeg.upstream import VENDOR_FFMPEG, file_input, file_output, format_text, keyed
from src.actions.ffmpeg.workspace import Workspace, workspace

MAX_THUMBNAILS = 1000
MAX_GIF_SECONDS = 300.0
_COLOR = re.compile(r"^(?:(?:#|0x)[0-9a-fA-F]{6}|[a-zA-Z]{3,20})$")


#: Still-image outputs: the ``format`` input, jpg by default.
IMAGE_FORMAT = FormatInput(allowed=formats.IMAGE_EXTS, default="jpg")


def _width(inputs: dict[str, Any], name: str = "width") -> int | None:
    value = optional_number(inputs, name)
    if value is not None and not 16 <= value <= 8192:
        raise ActionFailed(f"{name} must be between 16 and 8192, got {value:g}")
    return int(value) if value is not None else None


class Thumbnail(MediaAction):
    id = "vendor.ffmpeg.thumbnail"
    description = (
        "Save one frame of a video as an image. Inputs: `key`, `time` (seconds; default 10% into the "
        "video), `width` (optional, at most the video's own, keeps the aspect ratio), `format` (jpg default, "
        "png, webp), optional `dest_key` (default `{base}_thumb.{format}`). Output: `dest_key`."
    )
    output = OutputKey("thumb", IMAGE_FORMAT)
    sources = (MediaInput("key", demuxers.VISUAL, Needs.PICTURE, "the input has no video stream"),)
    params = (option("time", PT.FLOAT, -1.0), option("width", PT.INTEGER, 0),
              option("format", PT.STRING, "jpg"))

    legacy = LegacyInterface(
        VENDOR_FFMPEG + "thumbnail.Thumbnail",
        inputs=(file_input(), LegacyInput("at_sec", PT.FLOAT, "time", 0.0),
                LegacyInput("format", ours="format", default="jpg"),
                LegacyInput("max_width_px", PT.INTEGER, "width", 0, hint="0 = the video's own width")),
        outputs=(file_output(),),
        adapt=lambda i: {"time": max(0.0, i["at_sec"])},
        configure=keyed(lambda i: f"thumb_{round(max(0.0, i['at_sec']))}s",  # round() is half to even
                        frozenset({".jpg", ".jpeg", ".png", ".webp"}),
                        lambda i: format_text(i.get("format"))),
    )

    def parse(self, inputs: dict[str, Any]) -> int | None:
        return _width(inputs)

    def encode(self, job: MediaJob, options: int | None) -> None:
        raw_time = job.inputs.get("time")
        duration = job.source.info.duration_s or 0.0
        at = float(raw_time) if raw_time not in (None, "") and float(raw_time) >= 0 else duration * 0.1
        if duration and at >= duration:
            raise ActionFailed(f"time {at:g} s is past the end of the video ({duration:.2f} s)")
        scale = ["-vf", f"scale='min({options},iw)':-2"] if options else []  # never wider than the video
        args = ["-ss", f"{at:.6f}", *job.source.open(), "-map", "0:v:0", *scale,
                *formats.encode_args(job.ext, video=True, audio=False), str(job.out)]
        job.run(args, duration_s=None, timeout_s=job.timeout_s(60.0))


def thumbnails_interval(duration_s: float | None, count: int | None,
                        interval_s: float | None) -> tuple[float, int]:
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


class Thumbnails(FfmpegAction):
    id = "vendor.ffmpeg.thumbnails"
    description = (
        "Save evenly spaced frames of a video as images under a prefix. Inputs: `key`, `count` (default "
        "10) or `interval` (seconds between frames), `width` (optional), `format` (jpg default, png, "
        "webp), optional `dest_prefix` (default `{base}_thumbs/`). Outputs: `dest_prefix`, `keys` (the "
        "images, `frame_0001.jpg`, …, in time order)."
    )
    source = VIDEO_INPUT
    inputs = (source.param, option("count", PT.INTEGER, 0), option("interval", PT.FLOAT, 0.0),
              option("width", PT.INTEGER, 0), option("format", PT.STRING, "jpg"),
              option("dest_prefix", PT.PREFIX, ""), TIMEOUT)
    outputs = (Param("dest_prefix", PT.PREFIX), Param("keys", PT.LIST))
    #: The images' names under the prefix, an ffmpeg image2 pattern (an instance attribute: the
    #: upstream interface names them ``thumb_00001.jpg``).
    frame_pattern = "frame_%04d"

    legacy = LegacyInterface(
        VENDOR_FFMPEG + "thumbnails.Thumbnails",
        inputs=(LegacyInput("username", PT.USERNAME, hint="not used (upstream filled it in)"),
                file_input("src_key", ptype=PT.KEY),
                LegacyInput("thumbnail_prefix", PT.PREFIX, "dest_prefix", required=True),
                LegacyInput("thumbnail_ext", PT.FIXED_LIST_SINGLE_SELECT, "format", required=True,
                            choices=(".png", ".jpg")),
                LegacyInput("thumbnails_per_second", PT.INTEGER, default=1, hint="below 1 means 1")),
        outputs=(LegacyOutput("thumbnails_created", PT.INTEGER),
                 LegacyOutput("dest_prefix", PT.PREFIX, "dest_prefix")),
        adapt=lambda i: {"interval": 1 / max(1, i.get("thumbnails_per_second") or 1)},
        configure=lambda i: {"frame_pattern": "thumb_%05d"},
        finish=lambda ctx, i, out: {"thumbnails_created": len(out["keys"])},
    )

    def run(self, ctx: ActionContext, inputs: dict[str, Any]) -> dict[str, Any]:
        ext = IMAGE_FORMAT.given(inputs)
        width = _width(inputs)
        count = optional_number(inputs, "count")
        interval = optional_number(inputs, "interval")
        with workspace(ctx) as ws:
            src = ws.check_key(inputs.get("key", ""))
            prefix = str(inputs.get("dest_prefix") or f"{split_key(src)[0]}_thumbs/")
            prefix = prefix.rstrip("/") + "/"
            ws.check_key(prefix + "frame", "dest_prefix")
            local = ws.fetch(src)
            video = Media(src, local, probe(local, self.source.accept, what=src))
            self.source.require(src, video.info)
            step, frames = thumbnails_interval(video.info.duration_s, int(count) if count else None, interval)
            frames_dir = ws.path("frames")
            frames_dir.mkdir()
            vf = f"fps=1/{step:.6f}" + (f",scale={width}:-1" if width else "")
            args = [*video.open(), "-map", "0:v:0", "-vf", vf, "-frames:v", str(frames),
                    *formats.image_args(ext), str(frames_dir / f"{self.frame_pattern}{ext}")]
            run_ffmpeg(ctx, args, work_dir=ws.dir, duration_s=video.info.duration_s,
                       timeout_s=timeout_for(inputs, video.info.duration_s))
            files = sorted(frames_dir.glob(f"*{ext}"))
            if not files:
                raise ActionFailed("ffmpeg produced no images")
            keys = _publish_all(ctx, ws, files, prefix)
        ctx.report_progress(1.0)
        return {"dest_prefix": prefix, "keys": keys}


def _publish_all(ctx: ActionContext, ws: Workspace, files: list[Path], prefix: str) -> list[str]:
    """Upload ``files`` under ``prefix``; on cancellation take back what was uploaded (a half-uploaded
    set is a partial output)."""
    keys: list[str] = []
    try:
        for path in files:
            # one by one: a cancel must see the keys already published (they are deleted below)
            keys.append(ws.publish(path, ws.check_key(prefix + path.name, "dest_prefix")))  # noqa: PERF401
    except ActionCancelled:
        for key in keys:
            with contextlib.suppress(Exception):
                ctx.storage.delete(key)
        raise
    return keys


def gif_filter(fps: int, width: int) -> str:
    """Palette-based GIF conversion in one pass (palettegen + paletteuse)."""
    if not 1 <= fps <= 50:
        raise ActionFailed(f"fps must be between 1 and 50, got {fps}")
    if not 16 <= width <= 1920:
        raise ActionFailed(f"width must be between 16 and 1920, got {width}")
    return (f"[0:v:0]fps={fps},scale={width}:-1:flags=lanczos,split[a][b];"
            f"[a]palettegen=stats_mode=diff[p];[b][p]paletteuse=dither=bayer:bayer_scale=5[v]")


class ToGif(MediaAction):
    id = "vendor.ffmpeg.to_gif"
    description = (
        "Turn (part of) a video into an animated GIF. Inputs: `key`, `start` (seconds, default 0), "
        "`duration` (seconds, default to the end, at most 300), `fps` (default 10), `width` (default 480), "
        "optional `dest_key` (default `{base}_animated.gif`). Output: `dest_key`."
    )
    output = OutputKey("animated", FixedExt(".gif"))
    sources = (VIDEO_INPUT,)
    params = (option("start", PT.FLOAT, 0.0), option("duration", PT.FLOAT, 0.0),
              option("fps", PT.INTEGER, 10), option("width", PT.INTEGER, 480))

    legacy = LegacyInterface(
        VENDOR_FFMPEG + "to_gif.ToGif",
        inputs=(file_input("video_file"), LegacyInput("start_time", default="0"),
                LegacyInput("duration", PT.FLOAT, "duration", 5.0), LegacyInput("fps", PT.INTEGER, "fps", 10),
                LegacyInput("width", PT.INTEGER, "width", 480)),
        outputs=(file_output("gif_file"),),
        adapt=lambda i: {"start": time_text("start_time", i.get("start_time")) or 0.0},
        configure=keyed("gif", frozenset({".gif"}), ".gif"),
    )

    def parse(self, inputs: dict[str, Any]) -> tuple[str, float, float | None]:
        fps = int(optional_number(inputs, "fps") or 10)
        graph = gif_filter(fps, int(optional_number(inputs, "width") or 480))
        return graph, optional_number(inputs, "start") or 0.0, optional_number(inputs, "duration")

    def encode(self, job: MediaJob, options: tuple[str, float, float | None]) -> None:
        graph, start, length = options
        media = job.source.info.duration_s or 0.0
        if media and start >= media:
            raise ActionFailed(f"start {start:g} s is past the end of the video ({media:.2f} s)")
        span = min(length or (media - start), media - start) if media else (length or MAX_GIF_SECONDS)
        if span > MAX_GIF_SECONDS:
            raise ActionFailed(f"a GIF can be at most {MAX_GIF_SECONDS:g} s long; set start and duration")
        args = ["-ss", f"{start:.6f}", "-t", f"{span:.6f}", *job.source.open(), "-filter_complex", graph,
                "-map", "[v]", "-loop", "0", str(job.out)]
        job.run(args, duration_s=span)


def waveform_filter(width: int, height: int, color: str, background: str = "") -> str:
    """A still picture of the audio's waveform (mono mix), on ``background`` (``""``: transparent)."""
    if not 16 <= width <= 8192 or not 16 <= height <= 4096:
        raise ActionFailed("width must be 16–8192 and height 16–4096 pixels")
    color = _ffmpeg_color("color", color)
    wave = f"[0:a:0]aformat=channel_layouts=mono,showwavespic=s={width}x{height}:colors={color}"
    if not background:
        return wave + "[v]"
    fill = _ffmpeg_color("background", background)
    return (f"{wave}[wave];color=c={fill}:s={width}x{height}:d=1[bg];"
            f"[bg][wave]overlay=format=auto:shortest=1,format=rgb24[v]")


def _ffmpeg_color(name: str, value: str) -> str:
    if not _COLOR.match(value):
        raise ActionFailed(f"{name} must be a name like 'white' or a hex value like '#3b82f6', got {value!r}")
    return "0x" + value[1:] if value.startswith("#") else value


#: Background values meaning "none": the picture keeps its alpha channel.
TRANSPARENT = ("", "none", "transparent")


class Waveform(MediaAction):
    id = "vendor.ffmpeg.waveform"
    description = (
        "Draw the waveform of a file's audio as an image. Inputs: `key` (audio or video), `width` (default "
        "1280), `height` (default 240), `color` (name or #rrggbb, default #3b82f6), `background` (name or "
        "#rrggbb; default transparent), optional `dest_key` (default `{base}_waveform.png`; a .jpg/.webp "
        "dest_key picks that format). Output: `dest_key`."
    )
    output = OutputKey("waveform", FixedExt(".png", dest_picks=formats.IMAGE_EXTS))
    sources = (AUDIO_INPUT,)
    params = (option("width", PT.INTEGER, 1280), option("height", PT.INTEGER, 240),
              option("color", PT.STRING, "#3b82f6"), option("background", PT.STRING, "transparent"))

    legacy = LegacyInterface(
        VENDOR_FFMPEG + "waveform.Waveform",
        inputs=(file_input(), LegacyInput("width_px", PT.INTEGER, "width", 1200),
                LegacyInput("height_px", PT.INTEGER, "height", 200),
                LegacyInput("color", ours="color", default="#3da9fc"),
                LegacyInput("bg_color", ours="background", default="#ffffff")),
        outputs=(file_output(),),
        adapt=lambda i: {"width": i["width_px"] or 1200, "height": i["height_px"] or 200},
        configure=keyed(lambda i: f"waveform_{i['width_px'] or 1200}x{i['height_px'] or 200}",
                        frozenset({".png"}), ".png"),
    )

    def parse(self, inputs: dict[str, Any]) -> str:
        background = str(inputs.get("background") or "").strip()
        return waveform_filter(int(optional_number(inputs, "width") or 1280),
                               int(optional_number(inputs, "height") or 240),
                               str(inputs.get("color") or "#3b82f6"),
                               "" if background.lower() in TRANSPARENT else background)

    def encode(self, job: MediaJob, options: str) -> None:
        args = [*job.source.open(), "-filter_complex", options, "-map", "[v]",
                *formats.encode_args(job.ext, video=True, audio=False), str(job.out)]
        job.run(args, duration_s=job.source.info.duration_s)
