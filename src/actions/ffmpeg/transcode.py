"""Re-encoding actions: ``vendor.ffmpeg.convert``, ``.resize``, ``.resize_image`` and ``.compress``."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

from feaas.actions.base import ActionContext, ActionFailed, Param
from feaas.actions.legacy import LegacyInput, LegacyInterface, LegacyOutput, Values
from feaas.objects import ParameterType as PT
from src.actions.ffmpeg import demuxers, formats
from src.actions.ffmpeg.args import option, optional_number
from src.actions.ffmpeg.spec import FormatInput, FormatOrSame, MediaInput, Needs, OutputKey, SameExt
from src.actions.ffmpeg.template import MediaAction, MediaJob
from src.actions.ffmpeg.upstream import VENDOR_FFMPEG, file_input, file_output, format_text, keyed

X264_PRESETS = ("ultrafast", "superfast", "veryfast", "faster", "fast", "medium", "slow", "slower",
                "veryslow")
#: MP4-like containers compress keeps; anything else becomes .mp4.
_COMPRESS_EXTS = frozenset({".mp4", ".m4v", ".mov", ".mkv"})


def _format_key(suffix: str, allowed: frozenset[str], name: str = "format") -> Any:
    """Upstream's ``{base}_{suffix}.{format}`` (the format lower-cased)."""
    return keyed(suffix, allowed, lambda i: format_text(i.get(name)))


class Convert(MediaAction):
    id = "vendor.ffmpeg.convert"
    description = (
        "Convert a media file to another format. Inputs: `key`, `format` (mp4, mov, mkv, webm, avi, mp3, "
        "m4a, aac, wav, flac, ogg, opus, png, jpg, webp, bmp), optional `dest_key` (default "
        "`{base}_converted.{format}`). Video goes to H.264 (VP9 in webm), audio to the format's usual "
        "codec; an image format takes the first frame. Output: `dest_key`."
    )
    output = OutputKey("converted", FormatInput())
    sources = (MediaInput("key", demuxers.ANY_MEDIA),)
    params = (Param("format", PT.STRING, hint="target format, e.g. webm"),)

    legacy = LegacyInterface(
        VENDOR_FFMPEG + "convert.Convert",
        inputs=(file_input(), LegacyInput("format", ours="format", required=True)),
        outputs=(file_output(),),
        configure=_format_key("converted", frozenset(formats.SUPPORTED)),
    )

    def encode(self, job: MediaJob, options: None) -> None:
        info = job.source.info
        args = convert_args(job.source.open(), job.out, job.ext, has_video=info.has_video,
                            has_audio=info.has_audio)
        job.run(args, duration_s=info.duration_s)


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
        if value is not None and not 1 <= value <= MAX_SIDE:
            raise ActionFailed(f"{name} must be between 1 and {MAX_SIDE}, got {value}")
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


MAX_SIDE = 8192
MAX_SCALE = 16.0
#: Resize presets: the height, the width following the aspect ratio.
PRESETS = {"480p": 480, "720p": 720, "1080p": 1080, "1440p": 1440, "2160p": 2160}


@dataclass(frozen=True)
class Size:
    """What a resize asks for: a factor on both sides, or sides in pixels (``None`` = follow)."""

    scale: float | None = None
    width: int | None = None
    height: int | None = None


def scaled_sides(width: int | None, height: int | None, scale: float) -> tuple[int, int]:
    """Both sides times ``scale``, rounded down to even numbers (at least 2)."""
    if not width or not height:
        raise ActionFailed("the input's picture size is unknown, so it cannot be scaled by a factor")
    sides = tuple(max(2, int(side * scale) // 2 * 2) for side in (width, height))
    if max(sides) > MAX_SIDE:
        raise ActionFailed(f"scale {scale:g} would make a {sides[0]}x{sides[1]} picture; at most {MAX_SIDE} "
                           f"pixels a side")
    return sides[0], sides[1]


def parse_scale(inputs: dict[str, Any]) -> float | None:
    """The ``scale`` input: a factor above 0, at most :data:`MAX_SCALE`; ``None`` when not given."""
    scale = optional_number(inputs, "scale")
    if scale is not None and scale > MAX_SCALE:
        raise ActionFailed(f"scale must be above 0 and at most {MAX_SCALE:g}, got {scale:g}")
    return scale


def _resize_source(inputs: Values) -> str:
    """Upstream's ``file``, or the undeclared ``src_key`` it also took (not both)."""
    given = [name for name in ("file", "src_key") if str(inputs.get(name) or "").strip()]
    if not given:
        raise ActionFailed("missing input: file (or src_key)")
    if len(given) == 2:
        raise ActionFailed("give either file or src_key, not both")
    return str(inputs[given[0]])


def _scalar(inputs: Values, *, required: bool) -> float:
    """Upstream's ``scalar``, which must be above 0 when given (0.0 = not given, for ``scale``)."""
    scalar = inputs.get("scalar")
    if scalar is None and not required:
        return 0.0
    if scalar is None or not scalar > 0:
        raise ActionFailed(f"scalar must be > 0, got {scalar}")
    return float(scalar)


def _resize_tag(inputs: Values) -> str:
    """Upstream's key tag: ``r{scalar}`` (Python's float text: r0.5, r2.0), else the preset, else
    ``{width or auto}x{height or auto}``; the precedence the action itself applies."""
    if inputs.get("scalar"):
        return f"r{float(inputs['scalar'])}"
    if str(inputs.get("preset") or "").strip():
        return str(inputs["preset"]).strip()
    return f"{inputs.get('width') or 'auto'}x{inputs.get('height') or 'auto'}"


class Resize(MediaAction):
    id = "vendor.ffmpeg.resize"
    description = (
        "Resize a video or an image. Inputs: `key`; then `scale` (a factor on both sides, e.g. 0.5), else "
        "`preset` (480p, 720p, 1080p, 1440p, 2160p: that height), else `width` and/or `height` (pixels; "
        "one alone keeps the aspect ratio) with `keep_aspect` (default true: fit inside width×height); "
        "optional `dest_key` (default `{base}_resized{ext}`). Video sides are rounded down to even "
        "numbers; audio is copied. Output: `dest_key`."
    )
    output = OutputKey("resized", SameExt(formats.VIDEO_EXTS | formats.IMAGE_EXTS))
    sources = (MediaInput("key", demuxers.VISUAL, Needs.PICTURE, "the input has no video or image stream"),)
    params: ClassVar[tuple[Param, ...]] = (
        option("width", PT.INTEGER, 0), option("height", PT.INTEGER, 0),
        option("keep_aspect", PT.BOOLEAN, True), option("scale", PT.FLOAT, 0.0),
        option("preset", PT.STRING, ""))

    def parse(self, inputs: dict[str, Any]) -> Size:
        scale = parse_scale(inputs)
        if scale is not None:
            return Size(scale=scale)
        preset = str(inputs.get("preset") or "").strip().lower()
        if preset:
            if preset not in PRESETS:
                raise ActionFailed(f"preset must be one of {', '.join(PRESETS)}, got {preset!r}")
            return Size(height=PRESETS[preset])
        width = optional_number(inputs, "width")
        height = optional_number(inputs, "height")
        if not width and not height:
            raise ActionFailed("give width, height, scale or preset")
        return Size(width=int(width) if width else None, height=int(height) if height else None)

    def encode(self, job: MediaJob, options: Size) -> None:
        info, ext = job.source.info, job.ext
        image = info.is_image or ext in formats.STILL_EXTS
        if options.scale is not None:
            vf = "scale={}:{},setsar=1".format(*scaled_sides(info.width, info.height, options.scale))
        else:
            keep_aspect = bool(job.inputs.get("keep_aspect", True))
            vf = scale_filter(options.width, options.height, keep_aspect=keep_aspect, even=not image)
        if image:
            args = [*job.source.open(), "-map", "0:v:0", "-vf", vf,
                    *formats.encode_args(ext, video=True, audio=False)]
        else:
            maps = ["-map", "0:v:0"] + (["-map", "0:a:0", "-c:a", "copy"] if info.has_audio else ["-an"])
            args = [*job.source.open(), *maps, "-vf", vf, *formats.video_args(ext),
                    *formats.container_args(ext)]
        job.run([*args, str(job.out)], duration_s=info.duration_s)

    legacy = LegacyInterface(
        VENDOR_FFMPEG + "resize.Resize",
        inputs=(LegacyInput("file", ours="key"), LegacyInput("scalar", PT.FLOAT, "scale"),
                LegacyInput("preset", ours="preset"), LegacyInput("width", PT.INTEGER, "width"),
                LegacyInput("height", PT.INTEGER, "height"), LegacyInput("out_format"),
                LegacyInput("src_key", published=False)),
        outputs=(file_output(),),
        adapt=lambda i: {"key": _resize_source(i), "scale": _scalar(i, required=False), "keep_aspect": False},
        configure=keyed(_resize_tag, formats.VIDEO_EXTS | formats.STILL_EXTS,
                        lambda i: format_text(i.get("out_format"))),
    )


class ResizeImage(Resize):
    id = "vendor.ffmpeg.resize_image"
    description = (
        "Scale a picture by a factor. Inputs: `key` (an image; of a video, its first frame), `scale` (a "
        "factor above 0, at most 16), `format` (png, jpg, jpeg, gif, webp, bmp; default the input's), "
        "optional `dest_key` (default `{base}_resized.{format}`). Sides are rounded down to even numbers. "
        "Output: `dest_key`."
    )
    output = OutputKey("resized", FormatOrSame(formats.STILL_EXTS))
    params = (Param("scale", PT.FLOAT, hint="factor on both sides, e.g. 0.5"),
              option("format", PT.STRING, ""))

    def parse(self, inputs: dict[str, Any]) -> Size:
        scale = parse_scale(inputs)
        if scale is None:
            raise ActionFailed("scale must be above 0")
        return Size(scale=scale)

    legacy = LegacyInterface(
        VENDOR_FFMPEG + "resize.ResizeImage",
        inputs=(file_input("src_key", ptype=PT.KEY), LegacyInput("scalar", PT.FLOAT, "scale", required=True),
                LegacyInput("out_format", PT.FIXED_LIST_SINGLE_SELECT, "format", required=True,
                            choices=("png", "gif", "jpg", "jpeg"))),
        outputs=(file_output("dest_key", PT.KEY),),
        adapt=lambda i: {"scale": _scalar(i, required=True)},
        configure=keyed(_resize_tag, frozenset({".png", ".gif", ".jpg", ".jpeg"}),
                        lambda i: format_text(i.get("out_format"))),
    )


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


class Compress(MediaAction):
    id = "vendor.ffmpeg.compress"
    description = (
        "Make a video smaller with H.264. Inputs: `key`; either `crf` (quality 0–51, default 28; higher "
        "is smaller) or `target_size_mb` (two-pass encode aiming at that size in MB of 10^6 bytes); "
        "`preset` (x264 speed, default veryfast); optional `dest_key` (default `{base}_compressed{ext}`, "
        "mp4 unless the input is mov/mkv/m4v). Output: `dest_key`."
    )
    output = OutputKey("compressed", SameExt(_COMPRESS_EXTS, otherwise=".mp4"))
    sources = (MediaInput("key", demuxers.VIDEO, Needs.VIDEO,
                          "compress needs a video; use convert for audio files"),)
    params = (option("crf", PT.INTEGER, 0), option("target_size_mb", PT.FLOAT, 0.0),
              option("preset", PT.STRING, "veryfast"))

    legacy = LegacyInterface(
        VENDOR_FFMPEG + "compress.Compress",
        inputs=(file_input(), LegacyInput("quality", default="medium"),
                LegacyInput("target_size_mb", PT.FLOAT, hint="target size in MiB (2^20 bytes)")),
        outputs=(file_output(), LegacyOutput("size_reduction", PT.FLOAT)),
        adapt=lambda i: _compress_settings(i),
        configure=keyed("compressed", _COMPRESS_EXTS | {".avi"}),
        finish=lambda ctx, i, out: {"size_reduction": _size_reduction(ctx, str(i["file"]), out["dest_key"])},
    )

    def parse(self, inputs: dict[str, Any]) -> tuple[float | None, float | None, str]:
        crf = optional_number(inputs, "crf", zero_is_unset=False) if inputs.get("crf") else None
        target_mb = optional_number(inputs, "target_size_mb")
        if crf is not None and target_mb is not None:
            raise ActionFailed("give either crf or target_size_mb, not both")
        if crf is not None and not 0 <= crf <= 51:
            raise ActionFailed(f"crf must be between 0 and 51, got {crf:g}")
        preset = str(inputs.get("preset") or "veryfast").lower()
        if preset not in X264_PRESETS:
            raise ActionFailed(f"preset must be one of {', '.join(X264_PRESETS)}")
        return crf, target_mb, preset

    def encode(self, job: MediaJob, options: tuple[float | None, float | None, str]) -> None:
        crf, target_mb, preset = options
        info, ext = job.source.info, job.ext
        maps = ["-map", "0:v:0"] + (["-map", "0:a:0"] if info.has_audio else [])
        common = ["-c:v", "libx264", "-preset", preset, "-pix_fmt", "yuv420p"]
        if target_mb is None:
            audio = ["-c:a", "aac", "-b:a", "128k"] if info.has_audio else ["-an"]
            job.run([*job.source.open(), *maps, *common, "-crf", str(int(crf or 28)), *audio,
                     *formats.container_args(ext), str(job.out)], duration_s=info.duration_s)
            return
        video_kbps, audio_kbps = target_bitrates_kbps(target_mb, info.duration_s or 0.0, info.has_audio)
        rate = ["-b:v", f"{video_kbps}k", "-passlogfile", str(job.work_dir / "x264pass")]
        passes = job.passes(info.duration_s)
        job.run([*job.source.open(), "-map", "0:v:0", *common, *rate, "-pass", "1", "-an", "-f", "null", "-"],
                duration_s=info.duration_s, passes=passes)
        audio = ["-c:a", "aac", "-b:a", f"{audio_kbps}k"] if info.has_audio else ["-an"]
        job.run([*job.source.open(), *maps, *common, *rate, "-pass", "2", *audio,
                 *formats.container_args(ext), str(job.out)], duration_s=info.duration_s, passes=passes)


#: Upstream's quality words and the CRF each meant (any other word meant medium).
QUALITY_CRF = {"low": 32, "medium": 26, "high": 20}
MIB = 1024 * 1024


def _compress_settings(inputs: Values) -> Values:
    """Upstream's target size was in MiB; without one, its quality word picks the CRF. x264's
    ``medium`` preset, as upstream."""
    target = inputs.get("target_size_mb")
    if target:
        return {"target_size_mb": float(target) * MIB / 1e6, "crf": 0, "preset": "medium"}
    quality = str(inputs.get("quality") or "").strip().lower()
    return {"crf": QUALITY_CRF.get(quality, QUALITY_CRF["medium"]), "preset": "medium"}


def _size_reduction(ctx: ActionContext, src_key: str, dest_key: str) -> float:
    """Per cent of the input's size saved (negative when the output is larger), one decimal."""
    before = ctx.storage.size(ctx.storage.check_key(src_key))
    after = ctx.storage.size(dest_key)
    return round((1 - after / before) * 100, 1) if before else 0.0
