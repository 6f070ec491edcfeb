"""Editing actions: ``vendor.ffmpeg.trim``, ``.concat``, ``.add_intro_outro``, ``.edit_media``,
``.overlay`` and ``.merge_audio_video``."""

from __future__ import annotations

import posixpath
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

from feaas.actions.base import ActionFailed, Param
from feaas.actions.legacy import LegacyInput, LegacyInterface, Values, ends_with
from feaas.objects import ParameterType as PT
from src.actions.ffmpeg import demuxers, formats
from src.actions.ffmpeg.args import option, optional_number, time_text
from src.actions.ffmpeg.probing import MediaInfo
from src.actions.ffmpeg.spec import (
    AUDIO_INPUT,
    SAME_AV_EXT,
    VIDEO_INPUT,
    ExtRule,
    KeyExt,
    MediaInput,
    Needs,
    OutputKey,
    SameExt,
)
from src.actions.ffmpeg.template import Media, MediaAction, MediaJob, opened
from src.actions.ffmpeg.upstream import (
    AUDIO_KEY_EXTS,
    AV_EXTS,
    VENDOR_FFMPEG,
    VIDEO_KEY_EXTS,
    choice,
    file_input,
    file_output,
    format_text,
    keyed,
)

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

    legacy = LegacyInterface(
        VENDOR_FFMPEG + "trim.Trim",
        inputs=(file_input(), LegacyInput("start_time", default="0"), LegacyInput("end_time"),
                LegacyInput("duration")),
        outputs=(file_output(),),
        adapt=lambda i: _upstream_trim(i),
        configure=keyed("trimmed", AV_EXTS),
    )

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


def _upstream_trim(inputs: Values) -> Values:
    """Upstream's times are text as ffmpeg reads it; ``duration`` wins over ``end_time``, which is
    an absolute time (upstream measured it from ``start_time``, LEGACY_ACTIONS.md §5)."""
    duration = time_text("duration", inputs.get("duration"))
    end = None if duration is not None else time_text("end_time", inputs.get("end_time"))
    return {"start": time_text("start_time", inputs.get("start_time")) or 0.0, "end": end or 0.0,
            "duration": duration or 0.0}


def concat_filter(infos: list[MediaInfo], width: int, height: int, fps: float,
                  crossfade_s: float = 0.0) -> tuple[str, list[str]]:
    """The ``-filter_complex`` graph joining ``infos`` in order, and the output ``-map`` labels.

    Video is scaled/padded to ``width``×``height`` at ``fps``; inputs without audio get silence of
    their own length when any input has audio. With ``crossfade_s``, each clip fades into the next
    for that long (``xfade``, ``acrossfade``) instead of a cut.
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
    if crossfade_s > 0 and len(infos) > 1:
        parts += _crossfades([i.duration_s or 0.0 for i in infos], crossfade_s, video=video, audio=audio)
    else:
        parts.append(f"{''.join(labels)}concat=n={len(infos)}:v={int(video)}:a={int(audio)}{''.join(outs)}")
    return ";".join(parts), outs


def _crossfades(durations: list[float], fade_s: float, *, video: bool, audio: bool) -> list[str]:
    """Chain ``[v0]``…/``[a0]``… into ``[v]``/``[a]``, each clip fading into the next over ``fade_s``."""
    if any(d <= fade_s for d in durations):
        raise ActionFailed(f"crossfade_s ({fade_s:g} s) must be shorter than every clip")
    parts: list[str] = []
    video_in, audio_in, offset = "[v0]", "[a0]", 0.0
    for n in range(1, len(durations)):
        offset += durations[n - 1] - fade_s  # where clip n starts on the joined timeline so far
        last = n == len(durations) - 1
        video_out, audio_out = ("[v]", "[a]") if last else (f"[vx{n}]", f"[ax{n}]")
        if video:
            fade = f"xfade=transition=fade:duration={fade_s:.6f}:offset={offset:.6f}"
            parts.append(f"{video_in}[v{n}]{fade}{video_out}")
        if audio:
            parts.append(f"{audio_in}[a{n}]acrossfade=d={fade_s:.6f}:c1=tri:c2=tri{audio_out}")
        video_in, audio_in = video_out, audio_out
    return parts


def join(job: MediaJob, clips: Sequence[Media], reference: MediaInfo, crossfade_s: float = 0.0) -> None:
    """Write ``clips`` one after the other into ``job.out``, at ``reference``'s picture size and
    frame rate (re-encoded; never ffmpeg's concat demuxer, which would read a list of paths)."""
    infos = [m.info for m in clips]
    width = (reference.width or 1280) // 2 * 2
    height = (reference.height or 720) // 2 * 2
    graph, outs = concat_filter(infos, width, height, reference.fps or 30.0, crossfade_s)
    if "[v]" in outs and not formats.is_video_ext(job.ext):
        raise ActionFailed(f"cannot write video into a {job.ext} file")
    total = sum(i.duration_s or 0 for i in infos) - crossfade_s * (len(infos) - 1)
    maps = [arg for label in outs for arg in ("-map", label)]
    args = [*opened(clips), "-filter_complex", graph, *maps,
            *formats.encode_args(job.ext, video="[v]" in outs, audio="[a]" in outs), str(job.out)]
    job.run(args, duration_s=total)


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

    legacy = LegacyInterface(
        VENDOR_FFMPEG + "concat.Concat",
        inputs=(LegacyInput("files", PT.LIST, "keys", required=True), LegacyInput("output_format")),
        outputs=(file_output(),),
        configure=lambda i: {  # upstream also joined a single file
            "sources": (replace(Concat.sources[0], count=(1, MAX_CONCAT_INPUTS)),),
            **keyed("concat", AV_EXTS, _concat_format)(i)},
    )

    def encode(self, job: MediaJob, options: None) -> None:
        join(job, job.media, job.media[0].info)


def _concat_format(inputs: Values) -> str:
    """Upstream's ``output_format``, else the first file's extension, else mp4."""
    given = format_text(inputs.get("output_format"))
    files = inputs.get("files") or [""]
    return given or posixpath.splitext(str(files[0]))[1].lstrip(".") or "mp4"


class AddIntroOutro(MediaAction):
    id = "vendor.ffmpeg.add_intro_outro"
    description = (
        "Put an intro before and/or an outro after a video or audio file. Inputs: `key` (the body), "
        "`intro_key` and `outro_key` (each optional), `crossfade_s` (seconds each clip fades into the next; "
        "default 0, a cut), optional `dest_key` (default `{base}_with_intro_outro{ext}`). The clips are "
        "scaled and padded to the body's size and frame rate and re-encoded; a clip without sound gets "
        "silence. Output: `dest_key`."
    )
    output = OutputKey("with_intro_outro", SAME_AV_EXT)
    sources = (MediaInput("key", demuxers.AUDIO_VIDEO),
               MediaInput("intro_key", demuxers.AUDIO_VIDEO, optional=True),
               MediaInput("outro_key", demuxers.AUDIO_VIDEO, optional=True))
    params = (option("crossfade_s", PT.FLOAT, 0.0),)

    legacy = LegacyInterface(
        VENDOR_FFMPEG + "add_intro_outro.AddIntroOutro",
        inputs=(file_input("body"), LegacyInput("intro", ours="intro_key"),
                LegacyInput("outro", ours="outro_key"),
                LegacyInput("crossfade_sec", PT.FLOAT, "crossfade_s", 0.0)),
        outputs=(file_output(),),
        configure=keyed("with_intro_outro", AV_EXTS),
    )

    def parse(self, inputs: dict[str, Any]) -> float:
        crossfade = optional_number(inputs, "crossfade_s") or 0.0
        if crossfade > MAX_CROSSFADE_S:
            raise ActionFailed(f"crossfade_s must be at most {MAX_CROSSFADE_S:g} s, got {crossfade:g}")
        return crossfade

    def encode(self, job: MediaJob, options: float) -> None:
        clips = [m for name in ("intro_key", "key", "outro_key") if (m := job.named(name)) is not None]
        join(job, clips, job.source.info, options)


MAX_CROSSFADE_S = 60.0
NOT_USED = "not used: the output stays in the job's namespace"


@dataclass(frozen=True)
class UpstreamEditKey:
    """EditMedia's upstream default key: ``{hostname}/{username}/ffmpeg/{uuid4}.{ext}`` in the job's
    namespace (the first two segments of the checked input key), ``ext`` the input's (mp3 if none)."""

    allowed: frozenset[str]

    @property
    def ext(self) -> ExtRule:
        return KeyExt(self.allowed)

    def key(self, src_key: str, ext: str) -> str:
        hostname, username = src_key.split("/")[:2]
        suffix = posixpath.splitext(src_key)[1].lstrip(".") or "mp3"
        return f"{hostname}/{username}/ffmpeg/{uuid.uuid4()}.{suffix}"


class EditMedia(MediaAction):
    id = "vendor.ffmpeg.edit_media"
    description = (
        "Cut a stretch out of an audio or video file and join what is left. Inputs: `key`, `remove_start` "
        "and `remove_end` (seconds: [start, end) is removed; an end past the media's end removes the rest), "
        "optional `dest_key` (default `{base}_edited{ext}`). Re-encoded. Output: `dest_key`."
    )
    output = OutputKey("edited", SAME_AV_EXT)
    sources = (MediaInput("key", demuxers.AUDIO_VIDEO),)
    params = (Param("remove_start", PT.FLOAT), Param("remove_end", PT.FLOAT))

    legacy = LegacyInterface(
        VENDOR_FFMPEG + "edit.EditMedia",
        inputs=(LegacyInput("hostname", PT.HOSTNAME, hint=NOT_USED),
                LegacyInput("username", PT.USERNAME, hint=NOT_USED),
                file_input("media_key", ptype=PT.KEY, validations=(ends_with(".mp3", ".wav"),)),
                LegacyInput("edit_remove_from", PT.INTEGER, required=True, hint="milliseconds"),
                LegacyInput("edit_remove_until", PT.INTEGER, required=True, hint="milliseconds"),
                LegacyInput("dest_key", PT.KEY, "dest_key", hint="default: a new key under ffmpeg/")),
        outputs=(file_output("dest_key", PT.KEY),),
        adapt=lambda i: {"remove_start": i["edit_remove_from"] / 1000,
                         "remove_end": i["edit_remove_until"] / 1000},
        configure=lambda i: {"output": UpstreamEditKey(AV_EXTS)},
    )

    def parse(self, inputs: dict[str, Any]) -> tuple[float, float]:
        start = optional_number(inputs, "remove_start", zero_is_unset=False)
        end = optional_number(inputs, "remove_end", zero_is_unset=False)
        if start is None or end is None:
            raise ActionFailed("give remove_start and remove_end (seconds)")
        if end <= start:
            raise ActionFailed(f"remove_end ({end:g} s) must be after remove_start ({start:g} s)")
        return start, end

    def encode(self, job: MediaJob, options: tuple[float, float]) -> None:
        start, end = options
        info, ext = job.source.info, job.ext
        length = info.duration_s or 0.0
        if start >= length:
            raise ActionFailed(f"remove_start {start:g} s is past the end of the media ({length:.2f} s)")
        kept = [(a, b) for a, b in ((0.0, start), (min(end, length), length)) if b - a > 0.001]
        if not kept:
            raise ActionFailed("that would remove all of the media")
        video = info.has_video and not info.is_image and formats.is_video_ext(ext)
        parts, labels = [], []
        for n, (a, b) in enumerate(kept):
            window = f"start={a:.6f}:end={b:.6f}"
            if video:
                parts.append(f"[0:v:0]trim={window},setpts=PTS-STARTPTS[v{n}]")
                labels.append(f"[v{n}]")
            if info.has_audio:
                parts.append(f"[0:a:0]atrim={window},asetpts=PTS-STARTPTS[a{n}]")
                labels.append(f"[a{n}]")
        outs = (["[v]"] if video else []) + (["[a]"] if info.has_audio else [])
        joined = f"concat=n={len(kept)}:v={int(video)}:a={int(info.has_audio)}"
        parts.append(f"{''.join(labels)}{joined}{''.join(outs)}")
        maps = [arg for label in outs for arg in ("-map", label)]
        args = [*job.source.open(), "-filter_complex", ";".join(parts), *maps,
                *formats.encode_args(ext, video=video, audio=info.has_audio), str(job.out)]
        job.run(args, duration_s=sum(b - a for a, b in kept))


#: Upstream's position words; ours pass through, anything else meant bottom right upstream.
UPSTREAM_POSITIONS = {"topleft": "top-left", "topright": "top-right", "bottomleft": "bottom-left",
                      "bottomright": "bottom-right", "center": "center", **{p: p for p in POSITIONS}}


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
        "fraction of the video width, e.g. 0.2; 0 = as is) or `overlay_scale` (a factor on the overlay's own "
        "size, default 1), `opacity` (0–1, default 1), optional "
        "`dest_key` (default `{base}_overlay{ext}`). Output: `dest_key`."
    )
    output = OutputKey("overlay", SameExt(formats.VIDEO_EXTS))
    sources = (
        MediaInput("key", demuxers.VIDEO, Needs.VIDEO, "key must be a video"),
        MediaInput("overlay_key", demuxers.VISUAL, Needs.PICTURE, "overlay_key must be an image or a video"),
    )
    params = (option("position", PT.STRING, "bottom-right"), option("margin", PT.INTEGER, 10),
              option("scale", PT.FLOAT, 0.0), option("opacity", PT.FLOAT, 1.0),
              option("overlay_scale", PT.FLOAT, 1.0, "factor on the overlay's own size"))

    legacy = LegacyInterface(
        VENDOR_FFMPEG + "overlay.Overlay",
        inputs=(file_input("video_file"), file_input("image_file", "overlay_key"),
                LegacyInput("position", default="bottomright"),
                LegacyInput("padding", PT.INTEGER, "margin", 10),
                LegacyInput("opacity", PT.FLOAT, "opacity", 1.0),
                LegacyInput("scale", PT.FLOAT, default=1.0)),
        outputs=(file_output(),),
        adapt=lambda i: {"position": choice(i, "position", UPSTREAM_POSITIONS, otherwise="bottom-right"),
                         "overlay_scale": i.get("scale") or 1.0},
        configure=keyed("watermarked", formats.VIDEO_EXTS),
    )

    def parse(self, inputs: dict[str, Any]) -> tuple[float | None, int, float, float]:
        scale = optional_number(inputs, "scale")
        if scale is not None and scale > 1:
            raise ActionFailed("scale is a fraction of the video width and must be at most 1")
        factor = optional_number(inputs, "overlay_scale") or 1.0
        if not 0.01 <= factor <= 16:
            raise ActionFailed(f"overlay_scale must be between 0.01 and 16, got {factor:g}")
        if scale is not None and factor != 1.0:
            raise ActionFailed("give either scale or overlay_scale, not both")
        margin = optional_number(inputs, "margin", zero_is_unset=False)
        opacity = optional_number(inputs, "opacity")
        return scale, int(margin if margin is not None else 10), 1.0 if opacity is None else opacity, factor

    def encode(self, job: MediaJob, options: tuple[float | None, int, float, float]) -> None:
        scale, margin, opacity, factor = options
        info, ext = job.source.info, job.ext
        width = max(2, round((info.width or 0) * scale)) if scale and info.width else None
        overlay = job.media[1].info
        if factor != 1.0 and overlay.width:
            width = max(2, round(overlay.width * factor))
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

    legacy = LegacyInterface(
        VENDOR_FFMPEG + "merge.MergeAudioVideo",
        inputs=(file_input("audio_key", "audio_key", PT.KEY, validations=(ends_with(*AUDIO_KEY_EXTS),)),
                file_input("video_key", "video_key", PT.KEY, validations=(ends_with(*VIDEO_KEY_EXTS),))),
        outputs=(file_output("dest_key", PT.KEY),),
        adapt=lambda i: {"shortest": False},  # upstream kept the longer of the two
        configure=keyed("merged", formats.VIDEO_EXTS, ".mp4"),
    )

    def encode(self, job: MediaJob, options: None) -> None:
        video, audio = job.media
        shortest = bool(job.inputs.get("shortest", True))
        durations = [d for d in (video.info.duration_s, audio.info.duration_s) if d]
        expected = (min(durations) if shortest else max(durations)) if durations else None
        args = [*opened(job.media), "-map", "0:v:0", "-map", "1:a:0", "-c:v", "copy",
                *formats.audio_args(job.ext), *(["-shortest"] if shortest else []),
                *formats.container_args(job.ext), str(job.out)]
        job.run(args, duration_s=expected)
