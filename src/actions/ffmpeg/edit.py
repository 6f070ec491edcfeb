"""Editing actions: ``vendor.ffmpeg.trim``, ``.concat``, ``.overlay`` and ``.merge_audio_video``."""

from __future__ import annotations

from typing import Any

from feaas.actions.base import Action, ActionContext, ActionFailed, Param
from feaas.objects import ParameterType as PT
from src.actions.ffmpeg import demuxers, formats
from src.actions.ffmpeg.args import DEST_KEY, TIMEOUT, optional_number, timeout_for
from src.actions.ffmpeg.naming import key_ext, legacy_aliases, output_key
from src.actions.ffmpeg.probing import MediaInfo, probe
from src.actions.ffmpeg.process import input_args, run_ffmpeg
from src.actions.ffmpeg.workspace import resolve_dest, workspace

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


class Trim(Action):
    id = "vendor.ffmpeg.trim"
    aliases = legacy_aliases("trim", "Trim")
    description = (
        "Cut a part of a video or audio file (frame-accurate, re-encoded). Inputs: `key`, `start` "
        "(seconds, default 0), `end` or `duration` (seconds; neither = to the end), optional `dest_key` "
        "(default `{base}_trimmed{ext}`). Output: `dest_key`."
    )
    inputs = (
        Param("key", PT.KEY),
        Param("start", PT.FLOAT, optional=True, default=0.0),
        Param("end", PT.FLOAT, optional=True, default=0.0),
        Param("duration", PT.FLOAT, optional=True, default=0.0),
        DEST_KEY, TIMEOUT,
    )
    outputs = (Param("dest_key", PT.KEY),)

    def run(self, ctx: ActionContext, inputs: dict[str, Any]) -> dict[str, Any]:
        start = optional_number(inputs, "start") or 0.0
        end = optional_number(inputs, "end")
        length = optional_number(inputs, "duration")
        with workspace(ctx) as ws:
            src = ws.check_key(inputs.get("key", ""))
            ext = formats.require_supported(key_ext(src), formats.VIDEO_EXTS | formats.AUDIO_EXTS)
            dest = resolve_dest(ws, inputs, output_key(src, "trimmed"))
            local = ws.fetch(src)
            info = probe(local, demuxers.AUDIO_VIDEO, what=src)
            start, length = trim_window(start, end, length, info.duration_s)
            out = ws.path("output" + ext)
            video = info.has_video and formats.is_video_ext(ext)
            maps = (["-map", "0:v:0"] if video else []) + (["-map", "0:a:0"] if info.has_audio else [])
            window = ["-t", f"{length:.6f}"] if length is not None else []
            args = ["-ss", f"{start:.6f}", *input_args(local, info), *window, *maps,
                    *formats.encode_args(ext, video=video, audio=info.has_audio), str(out)]
            expected = length if length is not None else (info.duration_s or 0) - start
            run_ffmpeg(ctx, args, work_dir=ws.dir, duration_s=expected,
                       timeout_s=timeout_for(inputs, info.duration_s))
            ws.publish(out, dest)
        ctx.report_progress(1.0)
        return {"dest_key": dest}


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
                parts.append(f"[{n}:a:0]aresample=48000,aformat=sample_fmts=fltp:channel_layouts=stereo[a{n}]")
            else:
                parts.append(
                    f"anullsrc=r=48000:cl=stereo,atrim=duration={info.duration_s or 0:.6f},"
                    f"aformat=sample_fmts=fltp:channel_layouts=stereo[a{n}]"
                )
            labels.append(f"[a{n}]")
    outs = (["[v]"] if video else []) + (["[a]"] if audio else [])
    parts.append(f"{''.join(labels)}concat=n={len(infos)}:v={int(video)}:a={int(audio)}{''.join(outs)}")
    return ";".join(parts), outs


class Concat(Action):
    id = "vendor.ffmpeg.concat"
    aliases = legacy_aliases("concat", "Concat")
    description = (
        "Join videos (or audio files) end to end. Inputs: `keys` (list of 2–100 keys, in order), optional "
        "`dest_key` (default `{base}_concat{ext}` next to the first key). Videos are scaled and padded to "
        "the first one's size and frame rate and re-encoded; a video without sound gets silence. "
        "Output: `dest_key`."
    )
    inputs = (Param("keys", PT.LIST), DEST_KEY, TIMEOUT)
    outputs = (Param("dest_key", PT.KEY),)

    def run(self, ctx: ActionContext, inputs: dict[str, Any]) -> dict[str, Any]:
        keys = [str(k) for k in (inputs.get("keys") or []) if str(k).strip()]
        if not 2 <= len(keys) <= MAX_CONCAT_INPUTS:
            raise ActionFailed(f"keys must list between 2 and {MAX_CONCAT_INPUTS} files, got {len(keys)}")
        with workspace(ctx) as ws:
            keys = [ws.check_key(k, "keys") for k in keys]
            ext = formats.require_supported(key_ext(keys[0]), formats.VIDEO_EXTS | formats.AUDIO_EXTS)
            dest = resolve_dest(ws, inputs, output_key(keys[0], "concat"))
            locals_ = [ws.fetch(k, "keys") for k in keys]
            infos = [probe(p, demuxers.AUDIO_VIDEO, what=k) for p, k in zip(locals_, keys)]
            first = infos[0]
            width = (first.width or 1280) // 2 * 2
            height = (first.height or 720) // 2 * 2
            graph, outs = concat_filter(infos, width, height, first.fps or 30.0)
            if "[v]" in outs and not formats.is_video_ext(ext):
                raise ActionFailed(f"cannot write video into a {ext} file")
            total = sum(i.duration_s or 0 for i in infos)
            out = ws.path("output" + ext)
            args: list[str] = []
            for path, info in zip(locals_, infos):
                args += input_args(path, info)
            args += ["-filter_complex", graph]
            for label in outs:
                args += ["-map", label]
            args += [*formats.encode_args(ext, video="[v]" in outs, audio="[a]" in outs), str(out)]
            run_ffmpeg(ctx, args, work_dir=ws.dir, duration_s=total, timeout_s=timeout_for(inputs, total))
            ws.publish(out, dest)
        ctx.report_progress(1.0)
        return {"dest_key": dest}


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


class Overlay(Action):
    id = "vendor.ffmpeg.overlay"
    aliases = legacy_aliases("overlay", "Overlay")
    description = (
        "Put an image (logo, watermark) or another video on top of a video. Inputs: `key` (the video), "
        "`overlay_key` (image or video), `position` (top-left, top-right, bottom-left, bottom-right, "
        "center; default bottom-right), `margin` (pixels, default 10), `scale` (overlay width as a "
        "fraction of the video width, e.g. 0.2; 0 = as is), `opacity` (0–1, default 1), optional "
        "`dest_key` (default `{base}_overlay{ext}`). Output: `dest_key`."
    )
    inputs = (
        Param("key", PT.KEY),
        Param("overlay_key", PT.KEY),
        Param("position", PT.STRING, optional=True, default="bottom-right"),
        Param("margin", PT.INTEGER, optional=True, default=10),
        Param("scale", PT.FLOAT, optional=True, default=0.0),
        Param("opacity", PT.FLOAT, optional=True, default=1.0),
        DEST_KEY, TIMEOUT,
    )
    outputs = (Param("dest_key", PT.KEY),)

    def run(self, ctx: ActionContext, inputs: dict[str, Any]) -> dict[str, Any]:
        scale = optional_number(inputs, "scale")
        if scale is not None and scale > 1:
            raise ActionFailed("scale is a fraction of the video width and must be at most 1")
        margin = optional_number(inputs, "margin", zero_is_unset=False)
        opacity = optional_number(inputs, "opacity")
        with workspace(ctx) as ws:
            src = ws.check_key(inputs.get("key", ""))
            ext = formats.require_supported(key_ext(src), formats.VIDEO_EXTS)
            dest = resolve_dest(ws, inputs, output_key(src, "overlay"))
            base = ws.fetch(src)
            top_key = ws.check_key(inputs.get("overlay_key", ""), "overlay_key")
            top = ws.fetch(top_key, "overlay_key")
            info = probe(base, demuxers.VIDEO, what=src)
            top_info = probe(top, demuxers.VISUAL, what=top_key)
            if not info.has_video or info.is_image:
                raise ActionFailed("key must be a video")
            if not top_info.has_video:
                raise ActionFailed("overlay_key must be an image or a video")
            width = max(2, round((info.width or 0) * scale)) if scale and info.width else None
            graph = overlay_filter(str(inputs.get("position") or "bottom-right").lower(),
                                   int(margin if margin is not None else 10),
                                   1.0 if opacity is None else opacity, width)
            audio = ["-map", "0:a:0", "-c:a", "copy"] if info.has_audio else ["-an"]
            out = ws.path("output" + ext)
            args = [*input_args(base, info), *input_args(top, top_info), "-filter_complex", graph,
                    "-map", "[v]", *audio,
                    *formats.video_args(ext), *formats.container_args(ext), str(out)]
            if info.duration_s:
                args[-1:-1] = ["-t", f"{info.duration_s:.6f}"]
            run_ffmpeg(ctx, args, work_dir=ws.dir, duration_s=info.duration_s,
                       timeout_s=timeout_for(inputs, info.duration_s))
            ws.publish(out, dest)
        ctx.report_progress(1.0)
        return {"dest_key": dest}


class MergeAudioVideo(Action):
    id = "vendor.ffmpeg.merge_audio_video"
    aliases = legacy_aliases("merge_audio_video", "MergeAudioVideo")
    description = (
        "Put an audio track on a video, replacing its sound. Inputs: `video_key`, `audio_key`, `shortest` "
        "(default true: stop at the shorter of the two), optional `dest_key` (default "
        "`{base}_merged{ext}` next to the video). The video stream is copied, the audio encoded for the "
        "container. Output: `dest_key`."
    )
    inputs = (
        Param("video_key", PT.KEY),
        Param("audio_key", PT.KEY),
        Param("shortest", PT.BOOLEAN, optional=True, default=True),
        DEST_KEY, TIMEOUT,
    )
    outputs = (Param("dest_key", PT.KEY),)

    def run(self, ctx: ActionContext, inputs: dict[str, Any]) -> dict[str, Any]:
        with workspace(ctx) as ws:
            video_key = ws.check_key(inputs.get("video_key", ""), "video_key")
            ext = formats.require_supported(key_ext(video_key), formats.VIDEO_EXTS)
            dest = resolve_dest(ws, inputs, output_key(video_key, "merged"))
            video = ws.fetch(video_key, "video_key")
            audio_key = ws.check_key(inputs.get("audio_key", ""), "audio_key")
            audio = ws.fetch(audio_key, "audio_key")
            vinfo = probe(video, demuxers.VIDEO, what=video_key)
            ainfo = probe(audio, demuxers.AUDIO_VIDEO, what=audio_key)
            if not vinfo.has_video or vinfo.is_image:
                raise ActionFailed("video_key has no video stream")
            if not ainfo.has_audio:
                raise ActionFailed("audio_key has no audio stream")
            shortest = bool(inputs.get("shortest", True))
            durations = [d for d in (vinfo.duration_s, ainfo.duration_s) if d]
            expected = (min(durations) if shortest else max(durations)) if durations else None
            out = ws.path("output" + ext)
            args = [*input_args(video, vinfo), *input_args(audio, ainfo),
                    "-map", "0:v:0", "-map", "1:a:0", "-c:v", "copy",
                    *formats.audio_args(ext), *(["-shortest"] if shortest else []),
                    *formats.container_args(ext), str(out)]
            run_ffmpeg(ctx, args, work_dir=ws.dir, duration_s=expected, timeout_s=timeout_for(inputs, expected))
            ws.publish(out, dest)
        ctx.report_progress(1.0)
        return {"dest_key": dest}
