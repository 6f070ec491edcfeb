"""Audio actions: ``vendor.ffmpeg.extract_audio``, ``.normalize_audio``, ``.mix_audio``,
``.adjust_volume`` and ``.trim_silence``."""

from __future__ import annotations

import json
import math
import re
from typing import Any

from feaas.actions.base import ActionFailed
from feaas.objects import ParameterType as PT
from src.actions.ffmpeg import demuxers, formats
from src.actions.ffmpeg.args import number_between, option, optional_number
from src.actions.ffmpeg.probing import MediaInfo
from src.actions.ffmpeg.spec import (
    AUDIO_INPUT,
    SAME_AV_EXT,
    FormatInput,
    MediaInput,
    Needs,
    OutputKey,
    SameExt,
)
from src.actions.ffmpeg.template import MediaAction, MediaJob, opened

MAX_MIX_INPUTS = 32
MIX_DURATIONS = ("longest", "shortest", "first")
SILENCE_MODES = ("edges", "all")


def _has_moving_video(info: MediaInfo, ext: str) -> bool:
    return info.has_video and not info.is_image and formats.is_video_ext(ext)


def _keep_video(info: MediaInfo, ext: str) -> list[str]:
    """Map/copy the video stream of a video file whose audio is being changed."""
    if _has_moving_video(info, ext):
        return ["-map", "0:v:0", "-c:v", "copy"]
    return ["-vn"]


class ExtractAudio(MediaAction):
    id = "vendor.ffmpeg.extract_audio"
    description = (
        "Save a video's sound as an audio file. Inputs: `key`, `format` (m4a default, mp3, wav, flac, ogg, "
        "opus, aac), optional `dest_key` (default `{base}_audio.{format}`). Output: `dest_key`."
    )
    output = OutputKey("audio", FormatInput(allowed=formats.AUDIO_EXTS, default="m4a"))
    sources = (AUDIO_INPUT,)
    params = (option("format", PT.STRING, "m4a"),)

    def encode(self, job: MediaJob, options: None) -> None:
        args = [*job.source.open(), "-map", "0:a:0", *formats.encode_args(job.ext, video=False, audio=True),
                str(job.out)]
        job.run(args, duration_s=job.source.info.duration_s)


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


class NormalizeAudio(MediaAction):
    id = "vendor.ffmpeg.normalize_audio"
    description = (
        "Normalize loudness (EBU R128, two-pass loudnorm). Inputs: `key` (audio or video), `target_lufs` "
        "(default -16), `true_peak` (dBTP, default -1.5), `lra` (loudness range, default 11), optional "
        "`dest_key` (default `{base}_normalized{ext}`). Video is copied. Output: `dest_key`."
    )
    output = OutputKey("normalized", SAME_AV_EXT)
    sources = (AUDIO_INPUT,)
    params = (option("target_lufs", PT.FLOAT, -16.0), option("true_peak", PT.FLOAT, -1.5),
              option("lra", PT.FLOAT, 11.0))

    def parse(self, inputs: dict[str, Any]) -> tuple[float, float, float]:
        return (number_between(inputs, "target_lufs", -16.0, -70.0, -5.0),
                number_between(inputs, "true_peak", -1.5, -9.0, 0.0),
                number_between(inputs, "lra", 11.0, 1.0, 20.0))

    def encode(self, job: MediaJob, options: tuple[float, float, float]) -> None:
        target, peak, lra = options
        info, ext = job.source.info, job.ext
        passes = job.passes(info.duration_s)
        measure_af = f"loudnorm=I={target:g}:TP={peak:g}:LRA={lra:g}:print_format=json"
        measure = job.run([*job.source.open(), "-map", "0:a:0", "-af", measure_af, "-f", "null", "-"],
                          duration_s=info.duration_s, passes=passes, loglevel="info")
        second = loudnorm_second_pass(target, peak, lra, parse_loudnorm(measure.stderr))
        args = [*job.source.open(), *_keep_video(info, ext), "-map", "0:a:0", "-af", second, "-ar", "48000",
                *formats.audio_args(ext), *formats.container_args(ext), str(job.out)]
        job.run(args, duration_s=info.duration_s, passes=passes)


def mix_filter(count: int, volumes: list[float] | None, duration: str) -> str:
    """The graph mixing ``count`` audio inputs into ``[a]``."""
    if duration not in MIX_DURATIONS:
        raise ActionFailed(f"duration must be one of {', '.join(MIX_DURATIONS)}")
    if volumes is not None and len(volumes) != count:
        raise ActionFailed(f"volumes must have one entry per key ({count}), got {len(volumes)}")
    parts = []
    for n in range(count):
        chain = f"aresample=48000,{formats.STEREO_FLTP}"
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


class MixAudio(MediaAction):
    id = "vendor.ffmpeg.mix_audio"
    description = (
        "Mix several audio tracks into one. Inputs: `keys` (list of 2–32 audio or video files), `volumes` "
        "(optional list of multipliers, one per key), `duration` (longest default, shortest, first), "
        "optional `dest_key` (default `{base}_mix{ext}` next to the first key; m4a when that is a "
        "video). Output: `dest_key`."
    )
    output = OutputKey("mix", SameExt(formats.AUDIO_EXTS, otherwise=".m4a"))
    sources = (MediaInput("keys", demuxers.AUDIO_VIDEO, Needs.AUDIO, "{key} has no audio stream",
                          count=(2, MAX_MIX_INPUTS)),)
    params = (option("volumes", PT.LIST, []), option("duration", PT.STRING, "longest"))

    def parse(self, inputs: dict[str, Any]) -> tuple[str, str]:
        duration = str(inputs.get("duration") or "longest").lower()
        return duration, mix_filter(len(inputs["keys"]), _volumes(inputs.get("volumes")), duration)

    def encode(self, job: MediaJob, options: tuple[str, str]) -> None:
        duration, graph = options
        lengths = [m.info.duration_s or 0.0 for m in job.media]
        expected = {"longest": max(lengths), "shortest": min(lengths), "first": lengths[0]}[duration]
        args = [*opened(job.media), "-filter_complex", graph, "-map", "[a]",
                *formats.encode_args(job.ext, video=False, audio=True), str(job.out)]
        job.run(args, duration_s=expected)


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


class AdjustVolume(MediaAction):
    id = "vendor.ffmpeg.adjust_volume"
    description = (
        "Make audio louder or quieter. Inputs: `key` (audio or video), either `gain_db` (e.g. -6 or 3) or "
        "`volume` (multiplier, e.g. 0.5), optional `dest_key` (default `{base}_volume{ext}`). Video is "
        "copied. Output: `dest_key`."
    )
    output = OutputKey("volume", SAME_AV_EXT)
    sources = (AUDIO_INPUT,)
    params = (option("gain_db", PT.FLOAT, 0.0), option("volume", PT.FLOAT, 0.0))

    def parse(self, inputs: dict[str, Any]) -> str:
        gain = inputs.get("gain_db")
        gain_db = float(gain) if gain not in (None, "", 0, 0.0) else None
        return volume_filter(gain_db, optional_number(inputs, "volume"))

    def encode(self, job: MediaJob, options: str) -> None:
        info, ext = job.source.info, job.ext
        args = [*job.source.open(), *_keep_video(info, ext), "-map", "0:a:0", "-af", options,
                *formats.audio_args(ext), *formats.container_args(ext), str(job.out)]
        job.run(args, duration_s=info.duration_s)


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


class TrimSilence(MediaAction):
    id = "vendor.ffmpeg.trim_silence"
    description = (
        "Remove silence. Inputs: `key`, `threshold_db` (default -50; quieter counts as silence), "
        "`min_silence_s` (default 0.5), `mode` (`edges`, default: cut leading and trailing silence, works "
        "for video too; `all`: also remove pauses inside, audio files only), optional `dest_key` "
        "(default `{base}_nosilence{ext}`). Output: `dest_key`."
    )
    output = OutputKey("nosilence", SAME_AV_EXT)
    sources = (AUDIO_INPUT,)
    params = (option("threshold_db", PT.FLOAT, -50.0), option("min_silence_s", PT.FLOAT, 0.5),
              option("mode", PT.STRING, "edges"))

    def parse(self, inputs: dict[str, Any]) -> tuple[float, float, str]:
        threshold = number_between(inputs, "threshold_db", -50.0, -120.0, 0.0)
        min_silence = number_between(inputs, "min_silence_s", 0.5, 0.01, 3600.0)
        mode = str(inputs.get("mode") or "edges").lower()
        if mode not in SILENCE_MODES:
            raise ActionFailed(f"mode must be one of {', '.join(SILENCE_MODES)}")
        return threshold, min_silence, mode

    def encode(self, job: MediaJob, options: tuple[float, float, str]) -> None:
        threshold, min_silence, mode = options
        info, ext = job.source.info, job.ext
        video = _has_moving_video(info, ext)
        if mode == "all":
            if video:
                raise ActionFailed("mode 'all' works on audio files only; use 'edges' for video")
            af = (f"silenceremove=start_periods=1:start_threshold={threshold:g}dB:start_silence=0"
                  f":stop_periods=-1:stop_duration={min_silence:g}:stop_threshold={threshold:g}dB")
            args = [*job.source.open(), "-map", "0:a:0", "-af", af,
                    *formats.encode_args(ext, video=False, audio=True), str(job.out)]
            job.run(args, duration_s=info.duration_s, timeout_s=job.timeout_s(info.duration_s, passes=2))
            return
        passes = job.passes(info.duration_s)
        detect = job.run([*job.source.open(), "-map", "0:a:0", "-af",
                          f"silencedetect=noise={threshold:g}dB:duration={min_silence:g}", "-f", "null", "-"],
                         duration_s=info.duration_s, passes=passes, loglevel="info")
        start, end = sound_window(parse_silences(detect.stderr), info.duration_s or 0.0)
        maps = (["-map", "0:v:0"] if video else []) + ["-map", "0:a:0"]
        args = ["-ss", f"{start:.6f}", *job.source.open(), "-t", f"{end - start:.6f}", *maps,
                *formats.encode_args(ext, video=video, audio=True), str(job.out)]
        job.run(args, duration_s=end - start, passes=passes)
