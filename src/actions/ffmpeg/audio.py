"""Audio actions: ``vendor.ffmpeg.extract_audio``, ``.normalize_audio``, ``.mix_audio``,
``.adjust_volume`` and ``.trim_silence``."""

from __future__ import annotations

import json
import math
import re
import time
from pathlib import Path
from typing import Any

from feaas.actions.base import Action, ActionContext, ActionFailed, Param
from feaas.objects import ParameterType as PT
from src.actions.ffmpeg import demuxers, formats
from src.actions.ffmpeg.args import DEST_KEY, TIMEOUT, optional_number, timeout_for
from src.actions.ffmpeg.naming import format_ext, key_ext, legacy_aliases, output_key
from src.actions.ffmpeg.probing import MediaInfo, probe
from src.actions.ffmpeg.process import input_args, run_ffmpeg
from src.actions.ffmpeg.progress import ProgressParser
from src.actions.ffmpeg.workspace import Workspace, resolve_dest, workspace

MAX_MIX_INPUTS = 32
MIX_DURATIONS = ("longest", "shortest", "first")
SILENCE_MODES = ("edges", "all")


def _audio_source(ws: Workspace, inputs: dict[str, Any], suffix: str) -> tuple[str, str, Path, MediaInfo]:
    """Fetch ``key`` (audio, or video with sound); return (dest key, ext, local path, info)."""
    src = ws.check_key(inputs.get("key", ""))
    ext = formats.require_supported(key_ext(src), formats.VIDEO_EXTS | formats.AUDIO_EXTS)
    dest = resolve_dest(ws, inputs, output_key(src, suffix))
    local = ws.fetch(src)
    info = probe(local, demuxers.AUDIO_VIDEO, what=src)
    if not info.has_audio:
        raise ActionFailed("the input has no audio stream")
    return dest, ext, local, info


def _keep_video(info: MediaInfo, ext: str) -> list[str]:
    """Map/copy the video stream of a video file whose audio is being changed."""
    if info.has_video and not info.is_image and formats.is_video_ext(ext):
        return ["-map", "0:v:0", "-c:v", "copy"]
    return ["-vn"]


class ExtractAudio(Action):
    id = "vendor.ffmpeg.extract_audio"
    aliases = legacy_aliases("extract_audio", "ExtractAudio")
    description = (
        "Save a video's sound as an audio file. Inputs: `key`, `format` (m4a default, mp3, wav, flac, ogg, "
        "opus, aac), optional `dest_key` (default `{base}_audio.{format}`). Output: `dest_key`."
    )
    inputs = (Param("key", PT.KEY), Param("format", PT.STRING, optional=True, default="m4a"), DEST_KEY, TIMEOUT)
    outputs = (Param("dest_key", PT.KEY),)

    def run(self, ctx: ActionContext, inputs: dict[str, Any]) -> dict[str, Any]:
        ext = formats.require_supported(format_ext(str(inputs.get("format") or "m4a")), formats.AUDIO_EXTS)
        with workspace(ctx) as ws:
            src = ws.check_key(inputs.get("key", ""))
            dest = resolve_dest(ws, inputs, output_key(src, "audio", ext))
            local = ws.fetch(src)
            info = probe(local, demuxers.AUDIO_VIDEO, what=src)
            if not info.has_audio:
                raise ActionFailed("the input has no audio stream")
            out = ws.path("output" + ext)
            args = [*input_args(local, info), "-map", "0:a:0",
                    *formats.encode_args(ext, video=False, audio=True), str(out)]
            run_ffmpeg(ctx, args, work_dir=ws.dir, duration_s=info.duration_s,
                       timeout_s=timeout_for(inputs, info.duration_s))
            ws.publish(out, dest)
        ctx.report_progress(1.0)
        return {"dest_key": dest}


def parse_loudnorm(stderr: str) -> dict[str, str]:
    """The JSON block loudnorm prints at the end of a measuring pass."""
    start = stderr.rfind("{")
    end = stderr.rfind("}")
    if start < 0 or end < start:
        raise ActionFailed("loudness measurement failed: ffmpeg printed no result")
    try:
        data = json.loads(stderr[start : end + 1])
    except json.JSONDecodeError as exc:
        raise ActionFailed("loudness measurement failed: unreadable result") from exc
    needed = ("input_i", "input_tp", "input_lra", "input_thresh", "target_offset")
    if not all(k in data for k in needed):
        raise ActionFailed("loudness measurement failed: incomplete result")
    return {k: str(data[k]) for k in needed}


def loudnorm_second_pass(target_i: float, true_peak: float, lra: float, measured: dict[str, str]) -> str:
    """The loudnorm filter for the second pass, fed with the first pass's measurements."""
    values = {}
    for name in ("input_i", "input_tp", "input_lra", "input_thresh", "target_offset"):
        try:
            number = float(measured[name])
        except ValueError:
            number = -math.inf
        if not math.isfinite(number):
            raise ActionFailed("the input is silent: there is nothing to normalize")
        values[name] = number
    return (
        f"loudnorm=I={target_i:g}:TP={true_peak:g}:LRA={lra:g}"
        f":measured_I={values['input_i']:.2f}:measured_TP={values['input_tp']:.2f}"
        f":measured_LRA={values['input_lra']:.2f}:measured_thresh={values['input_thresh']:.2f}"
        f":offset={values['target_offset']:.2f}:linear=true:print_format=none"
    )


def _number_in(inputs: dict[str, Any], name: str, default: float, low: float, high: float) -> float:
    value = inputs.get(name)
    try:
        number = default if value is None or value == "" else float(value)
    except (TypeError, ValueError) as exc:
        raise ActionFailed(f"{name} must be a number, got {value!r}") from exc
    if not low <= number <= high:
        raise ActionFailed(f"{name} must be between {low:g} and {high:g}, got {number:g}")
    return number


class NormalizeAudio(Action):
    id = "vendor.ffmpeg.normalize_audio"
    aliases = legacy_aliases("normalize_audio", "NormalizeAudio")
    description = (
        "Normalize loudness (EBU R128, two-pass loudnorm). Inputs: `key` (audio or video), `target_lufs` "
        "(default -16), `true_peak` (dBTP, default -1.5), `lra` (loudness range, default 11), optional "
        "`dest_key` (default `{base}_normalized{ext}`). Video is copied. Output: `dest_key`."
    )
    inputs = (
        Param("key", PT.KEY),
        Param("target_lufs", PT.FLOAT, optional=True, default=-16.0),
        Param("true_peak", PT.FLOAT, optional=True, default=-1.5),
        Param("lra", PT.FLOAT, optional=True, default=11.0),
        DEST_KEY, TIMEOUT,
    )
    outputs = (Param("dest_key", PT.KEY),)

    def run(self, ctx: ActionContext, inputs: dict[str, Any]) -> dict[str, Any]:
        target = _number_in(inputs, "target_lufs", -16.0, -70.0, -5.0)
        peak = _number_in(inputs, "true_peak", -1.5, -9.0, 0.0)
        lra = _number_in(inputs, "lra", 11.0, 1.0, 20.0)
        with workspace(ctx) as ws:
            dest, ext, local, info = _audio_source(ws, inputs, "normalized")
            budget_s = timeout_for(inputs, info.duration_s, passes=2)
            started = time.monotonic()
            measure = run_ffmpeg(
                ctx, [*input_args(local, info), "-map", "0:a:0", "-af",
                      f"loudnorm=I={target:g}:TP={peak:g}:LRA={lra:g}:print_format=json", "-f", "null", "-"],
                work_dir=ws.dir, duration_s=info.duration_s, timeout_s=budget_s, loglevel="info",
                progress=ProgressParser(info.duration_s, offset=0.0, scale=0.5),
            )
            second = loudnorm_second_pass(target, peak, lra, parse_loudnorm(measure.stderr))
            out = ws.path("output" + ext)
            args = [*input_args(local, info), *_keep_video(info, ext), "-map", "0:a:0", "-af", second,
                    "-ar", "48000",
                    *formats.audio_args(ext), *formats.container_args(ext), str(out)]
            run_ffmpeg(ctx, args, work_dir=ws.dir, duration_s=info.duration_s,
                       timeout_s=max(1.0, budget_s - (time.monotonic() - started)),
                       progress=ProgressParser(info.duration_s, offset=0.5, scale=0.5))
            ws.publish(out, dest)
        ctx.report_progress(1.0)
        return {"dest_key": dest}


def mix_filter(count: int, volumes: list[float] | None, duration: str) -> str:
    """The graph mixing ``count`` audio inputs into ``[a]``."""
    if duration not in MIX_DURATIONS:
        raise ActionFailed(f"duration must be one of {', '.join(MIX_DURATIONS)}")
    if volumes is not None and len(volumes) != count:
        raise ActionFailed(f"volumes must have one entry per key ({count}), got {len(volumes)}")
    parts = []
    for n in range(count):
        chain = "aresample=48000,aformat=sample_fmts=fltp:channel_layouts=stereo"
        if volumes is not None:
            chain += f",volume={volumes[n]:g}"
        parts.append(f"[{n}:a:0]{chain}[a{n}]")
    labels = "".join(f"[a{n}]" for n in range(count))
    parts.append(f"{labels}amix=inputs={count}:duration={duration}:dropout_transition=0[a]")
    return ";".join(parts)


def _volumes(raw: Any) -> list[float] | None:
    if raw is None or raw == "" or raw == []:
        return None
    items = raw if isinstance(raw, list) else str(raw).split(",")
    out = []
    for item in items:
        try:
            value = float(item)
        except (TypeError, ValueError) as exc:
            raise ActionFailed(f"volumes must be numbers, got {item!r}") from exc
        if not 0 <= value <= 100 or not math.isfinite(value):
            raise ActionFailed(f"each volume must be between 0 and 100, got {item!r}")
        out.append(value)
    return out


class MixAudio(Action):
    id = "vendor.ffmpeg.mix_audio"
    aliases = legacy_aliases("mix_audio", "MixAudio")
    description = (
        "Mix several audio tracks into one. Inputs: `keys` (list of 2–32 audio or video files), `volumes` "
        "(optional list of multipliers, one per key), `duration` (longest default, shortest, first), "
        "optional `dest_key` (default `{base}_mix{ext}` next to the first key; m4a when that is a "
        "video). Output: `dest_key`."
    )
    inputs = (
        Param("keys", PT.LIST),
        Param("volumes", PT.LIST, optional=True, default=[]),
        Param("duration", PT.STRING, optional=True, default="longest"),
        DEST_KEY, TIMEOUT,
    )
    outputs = (Param("dest_key", PT.KEY),)

    def run(self, ctx: ActionContext, inputs: dict[str, Any]) -> dict[str, Any]:
        keys = [str(k) for k in (inputs.get("keys") or []) if str(k).strip()]
        if not 2 <= len(keys) <= MAX_MIX_INPUTS:
            raise ActionFailed(f"keys must list between 2 and {MAX_MIX_INPUTS} files, got {len(keys)}")
        duration = str(inputs.get("duration") or "longest").lower()
        graph = mix_filter(len(keys), _volumes(inputs.get("volumes")), duration)
        with workspace(ctx) as ws:
            keys = [ws.check_key(k, "keys") for k in keys]
            ext = key_ext(keys[0]) if formats.is_audio_ext(key_ext(keys[0])) else ".m4a"
            dest = resolve_dest(ws, inputs, output_key(keys[0], "mix", ext))
            locals_ = [ws.fetch(k, "keys") for k in keys]
            infos = [probe(p, demuxers.AUDIO_VIDEO, what=k) for p, k in zip(locals_, keys)]
            for key, info in zip(keys, infos):
                if not info.has_audio:
                    raise ActionFailed(f"{key} has no audio stream")
            lengths = [i.duration_s or 0.0 for i in infos]
            expected = {"longest": max(lengths), "shortest": min(lengths), "first": lengths[0]}[duration]
            out = ws.path("output" + ext)
            args: list[str] = []
            for path, info in zip(locals_, infos):
                args += input_args(path, info)
            args += ["-filter_complex", graph, "-map", "[a]", *formats.encode_args(ext, video=False, audio=True),
                     str(out)]
            run_ffmpeg(ctx, args, work_dir=ws.dir, duration_s=expected, timeout_s=timeout_for(inputs, expected))
            ws.publish(out, dest)
        ctx.report_progress(1.0)
        return {"dest_key": dest}


def volume_filter(gain_db: float | None, volume: float | None) -> str:
    """``volume=…`` from either a gain in dB or a multiplier (exactly one)."""
    if (gain_db is None) == (volume is None):
        raise ActionFailed("give either gain_db or volume (a multiplier), not both and not neither")
    if gain_db is not None:
        if not -60 <= gain_db <= 60:
            raise ActionFailed(f"gain_db must be between -60 and 60, got {gain_db:g}")
        return f"volume={gain_db:g}dB"
    assert volume is not None
    if not 0 < volume <= 100:
        raise ActionFailed(f"volume must be above 0 and at most 100, got {volume:g}")
    return f"volume={volume:g}"


class AdjustVolume(Action):
    id = "vendor.ffmpeg.adjust_volume"
    aliases = legacy_aliases("adjust_volume", "AdjustVolume")
    description = (
        "Make audio louder or quieter. Inputs: `key` (audio or video), either `gain_db` (e.g. -6 or 3) or "
        "`volume` (multiplier, e.g. 0.5), optional `dest_key` (default `{base}_volume{ext}`). Video is "
        "copied. Output: `dest_key`."
    )
    inputs = (
        Param("key", PT.KEY),
        Param("gain_db", PT.FLOAT, optional=True, default=0.0),
        Param("volume", PT.FLOAT, optional=True, default=0.0),
        DEST_KEY, TIMEOUT,
    )
    outputs = (Param("dest_key", PT.KEY),)

    def run(self, ctx: ActionContext, inputs: dict[str, Any]) -> dict[str, Any]:
        gain = inputs.get("gain_db")
        gain_db = float(gain) if gain not in (None, "", 0, 0.0) else None
        af = volume_filter(gain_db, optional_number(inputs, "volume"))
        with workspace(ctx) as ws:
            dest, ext, local, info = _audio_source(ws, inputs, "volume")
            out = ws.path("output" + ext)
            args = [*input_args(local, info), *_keep_video(info, ext), "-map", "0:a:0", "-af", af,
                    *formats.audio_args(ext), *formats.container_args(ext), str(out)]
            run_ffmpeg(ctx, args, work_dir=ws.dir, duration_s=info.duration_s,
                       timeout_s=timeout_for(inputs, info.duration_s))
            ws.publish(out, dest)
        ctx.report_progress(1.0)
        return {"dest_key": dest}


_SILENCE_START = re.compile(r"silence_start:\s*(-?[0-9.]+)")
_SILENCE_END = re.compile(r"silence_end:\s*(-?[0-9.]+)")


def parse_silences(stderr: str) -> list[tuple[float, float | None]]:
    """(start, end) of each silence silencedetect reported; ``end`` is ``None`` when it runs to EOF."""
    silences: list[tuple[float, float | None]] = []
    for line in stderr.splitlines():
        if (m := _SILENCE_START.search(line)) is not None:
            silences.append((max(0.0, float(m.group(1))), None))
        elif (m := _SILENCE_END.search(line)) is not None and silences and silences[-1][1] is None:
            silences[-1] = (silences[-1][0], float(m.group(1)))
    return silences


def sound_window(silences: list[tuple[float, float | None]], duration_s: float,
                 tolerance_s: float = 0.05) -> tuple[float, float]:
    """(start, end) of the part between leading and trailing silence."""
    start, end = 0.0, duration_s
    if silences and silences[0][0] <= tolerance_s:
        first_end = silences[0][1]
        start = duration_s if first_end is None else first_end
    if silences:
        last_start, last_end = silences[-1]
        if (last_end is None or last_end >= duration_s - tolerance_s) and last_start > start:
            end = last_start
    if end - start <= 0.01:
        raise ActionFailed("the input is all silence at this threshold")
    return start, end


class TrimSilence(Action):
    id = "vendor.ffmpeg.trim_silence"
    aliases = legacy_aliases("trim_silence", "TrimSilence")
    description = (
        "Remove silence. Inputs: `key`, `threshold_db` (default -50; quieter counts as silence), "
        "`min_silence_s` (default 0.5), `mode` (`edges`, default: cut leading and trailing silence, works "
        "for video too; `all`: also remove pauses inside, audio files only), optional `dest_key` "
        "(default `{base}_nosilence{ext}`). Output: `dest_key`."
    )
    inputs = (
        Param("key", PT.KEY),
        Param("threshold_db", PT.FLOAT, optional=True, default=-50.0),
        Param("min_silence_s", PT.FLOAT, optional=True, default=0.5),
        Param("mode", PT.STRING, optional=True, default="edges"),
        DEST_KEY, TIMEOUT,
    )
    outputs = (Param("dest_key", PT.KEY),)

    def run(self, ctx: ActionContext, inputs: dict[str, Any]) -> dict[str, Any]:
        threshold = _number_in(inputs, "threshold_db", -50.0, -120.0, 0.0)
        min_silence = _number_in(inputs, "min_silence_s", 0.5, 0.01, 3600.0)
        mode = str(inputs.get("mode") or "edges").lower()
        if mode not in SILENCE_MODES:
            raise ActionFailed(f"mode must be one of {', '.join(SILENCE_MODES)}")
        with workspace(ctx) as ws:
            dest, ext, local, info = _audio_source(ws, inputs, "nosilence")
            video = info.has_video and not info.is_image and formats.is_video_ext(ext)
            out = ws.path("output" + ext)
            budget_s = timeout_for(inputs, info.duration_s, passes=2)
            if mode == "all":
                if video:
                    raise ActionFailed("mode 'all' works on audio files only; use 'edges' for video")
                af = (f"silenceremove=start_periods=1:start_threshold={threshold:g}dB:start_silence=0"
                      f":stop_periods=-1:stop_duration={min_silence:g}:stop_threshold={threshold:g}dB")
                args = [*input_args(local, info), "-map", "0:a:0", "-af", af,
                        *formats.encode_args(ext, video=False, audio=True), str(out)]
                run_ffmpeg(ctx, args, work_dir=ws.dir, duration_s=info.duration_s, timeout_s=budget_s)
            else:
                started = time.monotonic()
                detect = run_ffmpeg(
                    ctx, [*input_args(local, info), "-map", "0:a:0", "-af",
                          f"silencedetect=noise={threshold:g}dB:duration={min_silence:g}", "-f", "null", "-"],
                    work_dir=ws.dir, duration_s=info.duration_s, timeout_s=budget_s, loglevel="info",
                    progress=ProgressParser(info.duration_s, offset=0.0, scale=0.5),
                )
                start, end = sound_window(parse_silences(detect.stderr), info.duration_s or 0.0)
                maps = (["-map", "0:v:0"] if video else []) + ["-map", "0:a:0"]
                args = ["-ss", f"{start:.6f}", *input_args(local, info), "-t", f"{end - start:.6f}", *maps,
                        *formats.encode_args(ext, video=video, audio=True), str(out)]
                run_ffmpeg(ctx, args, work_dir=ws.dir, duration_s=end - start,
                           timeout_s=max(1.0, budget_s - (time.monotonic() - started)),
                           progress=ProgressParser(end - start, offset=0.5, scale=0.5))
            ws.publish(out, dest)
        ctx.report_progress(1.0)
        return {"dest_key": dest}
