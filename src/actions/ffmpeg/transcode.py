"""Re-encoding actions: ``vendor.ffmpeg.convert``, ``.resize`` and ``.compress``."""

from __future__ import annotations

from typing import Any

from feaas.actions.base import ActionFailed, Param
from feaas.objects import ParameterType as PT
from src.actions.ffmpeg import demuxers, formats
from src.actions.ffmpeg.args import option, optional_number
from src.actions.ffmpeg.spec import FormatInput, MediaInput, Needs, OutputKey, SameExt
from src.actions.ffmpeg.template import MediaAction, MediaJob

X264_PRESETS = ("ultrafast", "superfast", "veryfast", "faster", "fast", "medium", "slow", "slower",
                "veryslow")
#: MP4-like containers compress keeps; anything else becomes .mp4.
_COMPRESS_EXTS = frozenset({".mp4", ".m4v", ".mov", ".mkv"})


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


class Resize(MediaAction):
    id = "vendor.ffmpeg.resize"
    description = (
        "Resize a video or an image. Inputs: `key`, `width` and/or `height` (pixels; one alone keeps the "
        "aspect ratio), `keep_aspect` (default true: fit inside width×height), optional `dest_key` "
        "(default `{base}_resized{ext}`). Video sides are rounded down to even numbers; audio is copied. "
        "Output: `dest_key`."
    )
    output = OutputKey("resized", SameExt(formats.VIDEO_EXTS | formats.IMAGE_EXTS))
    sources = (MediaInput("key", demuxers.VISUAL, Needs.PICTURE, "the input has no video or image stream"),)
    params = (option("width", PT.INTEGER, 0), option("height", PT.INTEGER, 0),
              option("keep_aspect", PT.BOOLEAN, True))

    def parse(self, inputs: dict[str, Any]) -> tuple[int | None, int | None]:
        width = optional_number(inputs, "width")
        height = optional_number(inputs, "height")
        return int(width) if width else None, int(height) if height else None

    def encode(self, job: MediaJob, options: tuple[int | None, int | None]) -> None:
        info, ext = job.source.info, job.ext
        image = info.is_image or formats.is_image_ext(ext)
        vf = scale_filter(*options, keep_aspect=bool(job.inputs.get("keep_aspect", True)), even=not image)
        if image:
            args = [*job.source.open(), "-map", "0:v:0", "-vf", vf,
                    *formats.encode_args(ext, video=True, audio=False)]
        else:
            maps = ["-map", "0:v:0"] + (["-map", "0:a:0", "-c:a", "copy"] if info.has_audio else ["-an"])
            args = [*job.source.open(), *maps, "-vf", vf, *formats.video_args(ext),
                    *formats.container_args(ext)]
        job.run([*args, str(job.out)], duration_s=info.duration_s)


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
