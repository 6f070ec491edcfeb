"""Audio actions: ``vendor.ffmpeg.extract_audio``, ``.normalize_audio``, ``.mix_audio``, ``.merge_audio``,
``.merge_audio_from_folder``, ``.adjust_volume`` and ``.trim_silence``."""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterable
from dataclasses import dataclass, replace
from typing import Any, ClassVar

from feaas.actions.base import ActionContext, ActionFailed, Param
from feaas.actions.legacy import LegacyInput, LegacyInterface, ends_with
from feaas.errors import NamespaceViolation
from feaas.namespace import normalise_key
from feaas.objects import ParameterType as PT
from src.actions.ffmpeg import demuxers, formats
from src.actions.ffmpeg.args import DEST_KEY, TIMEOUT, number_between, option, optional_number
from src.actions.ffmpeg.naming import key_ext
from src.actions.ffmpeg.probing import MediaInfo
from src.actions.ffmpeg.spec import (
    AUDIO_INPUT,
    SAME_AV_EXT,
    FixedExt,
    FormatInput,
    MediaInput,
    Needs,
    OutputKey,
    SameExt,
)
from src.actions.ffmpeg.template import MediaAction, MediaJob
from src.actions.ffmpeg.upstream import (
    AUDIO_KEY_EXTS,
    AV_EXTS,
    VENDOR_FFMPEG,
    choice,
    file_input,
    file_output,
    format_text,
    keyed,
)

MAX_MIX_INPUTS = 32
MIX_DURATIONS = ("longest", "shortest", "first")
MIX_MODES = ("mix", "replace", "duck")
SILENCE_MODES = ("edges", "start", "end", "all")
NORMALIZE_METHODS = ("loudnorm", "peak", "rms")


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

    legacy = LegacyInterface(
        VENDOR_FFMPEG + "extract_audio.ExtractAudio",
        inputs=(file_input("video_file"), LegacyInput("format", ours="format", default="mp3")),
        outputs=(file_output("audio_file"),),
        configure=keyed("audio", formats.AUDIO_EXTS, lambda i: format_text(i.get("format"))),
    )

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


_VOLUME = re.compile(r"(mean_volume|max_volume):\s*(-?[0-9.]+|-inf) dB")


def parse_volumedetect(stderr: str) -> dict[str, float]:
    """``mean_volume`` and ``max_volume`` (dB) from a ``volumedetect`` pass."""
    found = {name: float(value) for name, value in _VOLUME.findall(stderr)}
    if set(found) != {"mean_volume", "max_volume"}:
        raise ActionFailed("volume measurement failed: ffmpeg printed no result")
    return found


#: volumedetect reports this (or -inf) for digital silence.
SILENT_DB = -90.0


class NormalizeAudio(MediaAction):
    id = "vendor.ffmpeg.normalize_audio"
    description = (
        "Normalize loudness. Inputs: `key` (audio or video), `method` (`loudnorm`, default: EBU R128, two "
        "passes; `peak`: the loudest sample at `target_lufs` dBFS; `rms`: the mean level at `target_lufs` "
        "dBFS), `target_lufs` (default -16), `true_peak` (dBTP, default -1.5) and `lra` (loudness range, "
        "default 11) for loudnorm, optional `dest_key` (default `{base}_normalized{ext}`). Video is "
        "copied. Output: `dest_key`."
    )
    output = OutputKey("normalized", SAME_AV_EXT)
    sources = (AUDIO_INPUT,)
    params = (option("target_lufs", PT.FLOAT, -16.0), option("true_peak", PT.FLOAT, -1.5),
              option("lra", PT.FLOAT, 11.0), option("method", PT.STRING, "loudnorm"))

    legacy = LegacyInterface(
        VENDOR_FFMPEG + "normalize_audio.NormalizeAudio",
        inputs=(file_input(), LegacyInput("target_level", PT.FLOAT, "target_lufs", -16.0),
                LegacyInput("method", default="loudnorm")),
        outputs=(file_output(),),
        adapt=lambda i: {"method": choice(i, "method", {"loudnorm": "loudnorm", "peak": "peak"},
                                          otherwise="rms")},
        configure=keyed("normalized", AV_EXTS),
    )

    def parse(self, inputs: dict[str, Any]) -> tuple[str, float, float, float]:
        method = str(inputs.get("method") or "loudnorm").strip().lower()
        if method not in NORMALIZE_METHODS:
            raise ActionFailed(f"method must be one of {', '.join(NORMALIZE_METHODS)}, got {method!r}")
        highest = -5.0 if method == "loudnorm" else 0.0
        return (method, number_between(inputs, "target_lufs", -16.0, -70.0, highest),
                number_between(inputs, "true_peak", -1.5, -9.0, 0.0),
                number_between(inputs, "lra", 11.0, 1.0, 20.0))

    def encode(self, job: MediaJob, options: tuple[str, float, float, float]) -> None:
        method, target, peak, lra = options
        info, ext = job.source.info, job.ext
        passes = job.passes(info.duration_s)
        if method == "loudnorm":
            measure_af = f"loudnorm=I={target:g}:TP={peak:g}:LRA={lra:g}:print_format=json"
            measure = job.run([*job.source.open(), "-map", "0:a:0", "-af", measure_af, "-f", "null", "-"],
                              duration_s=info.duration_s, passes=passes, loglevel="info")
            af = loudnorm_second_pass(target, peak, lra, parse_loudnorm(measure.stderr))
        else:
            measure = job.run([*job.source.open(), "-map", "0:a:0", "-af", "volumedetect", "-f", "null", "-"],
                              duration_s=info.duration_s, passes=passes, loglevel="info")
            level = parse_volumedetect(measure.stderr)["max_volume" if method == "peak" else "mean_volume"]
            if level <= SILENT_DB:
                raise ActionFailed("the input is silent: there is nothing to normalize")
            af = f"volume={target - level:.4f}dB"
        args = [*job.source.open(), *_keep_video(info, ext), "-map", "0:a:0", "-af", af, "-ar", "48000",
                *formats.audio_args(ext), *formats.container_args(ext), str(job.out)]
        job.run(args, duration_s=info.duration_s, passes=passes)


def mix_filter(count: int, volumes: list[float] | None, duration: str, mode: str = "mix") -> str:
    """The graph mixing ``count`` audio inputs into ``[a]``. ``mode``: ``mix`` all of them;
    ``replace`` the first one's sound by the others; ``duck`` the others under the first (a
    sidechain compressor keyed by the first lowers them while it sounds)."""
    if duration not in MIX_DURATIONS:
        raise ActionFailed(f"duration must be one of {', '.join(MIX_DURATIONS)}")
    if mode not in MIX_MODES:
        raise ActionFailed(f"mode must be one of {', '.join(MIX_MODES)}")
    if volumes is not None and len(volumes) != count:
        raise ActionFailed(f"volumes must have one entry per key ({count}), got {len(volumes)}")
    parts = []
    for n in range(count):
        chain = f"aresample=48000,{formats.STEREO_FLTP}"
        if volumes is not None:
            chain += f",volume={volumes[n]:g}"
        parts.append(f"[{n}:a:0]{chain}[a{n}]")
    if mode == "mix":
        labels = "".join(f"[a{n}]" for n in range(count))
        parts.append(f"{labels}amix=inputs={count}:duration={duration}:dropout_transition=0[a]")
        return ";".join(parts)
    others = "".join(f"[a{n}]" for n in range(1, count))
    bed = "[a]" if mode == "replace" else "[bed]"
    if count > 2:
        parts.append(f"{others}amix=inputs={count - 1}:duration=longest:dropout_transition=0{bed}")
    else:
        parts.append(f"{others}anull{bed}")
    if mode == "replace":
        parts.append("[a0]anullsink")  # the first input sets the length (and keeps its picture) only
    if mode == "duck":
        parts.append("[a0]asplit=2[main][key]")
        parts.append("[bed][key]sidechaincompress=threshold=0.02:ratio=8:attack=20:release=400[ducked]")
        parts.append(f"[main][ducked]amix=inputs=2:duration={duration}:dropout_transition=0[a]")
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


UPSTREAM_MIX_MODES = {"mix": "mix", "replace": "replace", "ducking": "duck"}


@dataclass(frozen=True)
class MixPlan:
    """What :meth:`MixAudio.encode` runs: the graph, how long the output is, whether the other inputs loop."""

    graph: str
    duration: str
    loop: bool = False


class MixAudio(MediaAction):
    id = "vendor.ffmpeg.mix_audio"
    description = (
        "Mix several audio tracks into one. Inputs: `keys` (list of 2–32 audio or video files), `volumes` "
        "(optional list of multipliers, one per key), `duration` (longest default, shortest, first), "
        "`mode` (`mix`, default; `replace`: the others replace the first one's sound; `duck`: the others "
        "are lowered while the first one sounds), `loop` (default false: when true the others repeat until "
        "the first ends, and the output is as long as the first), optional `dest_key` (default "
        "`{base}_mix{ext}` next to the first key; m4a when that is a video; a video dest_key keeps the "
        "first key's picture). Output: `dest_key`."
    )
    output = OutputKey("mix", SameExt(formats.AUDIO_EXTS, otherwise=".m4a", dest_picks=AV_EXTS))
    sources: tuple[MediaInput, ...] = (
        MediaInput("keys", demuxers.AUDIO_VIDEO, Needs.AUDIO, "{key} has no audio stream",
                   count=(2, MAX_MIX_INPUTS)),)
    params: ClassVar[tuple[Param, ...]] = (
        option("volumes", PT.LIST, []), option("duration", PT.STRING, "longest"),
        option("mode", PT.STRING, "mix"), option("loop", PT.BOOLEAN, False))

    legacy = LegacyInterface(
        VENDOR_FFMPEG + "mix_audio.MixAudio",
        inputs=(file_input(ours=None), file_input("audio_track", ours=None),
                LegacyInput("main_volume", PT.FLOAT, default=1.0),
                LegacyInput("mix_volume", PT.FLOAT, default=0.3),
                LegacyInput("loop_audio", PT.BOOLEAN, "loop", True), LegacyInput("mix_mode", default="mix")),
        outputs=(file_output(),),
        adapt=lambda i: {"keys": [i["file"], i["audio_track"]],
                         "volumes": [i["main_volume"], i["mix_volume"]],
                         "duration": "first", "mode": choice(i, "mix_mode", UPSTREAM_MIX_MODES)},
        configure=keyed("mixed", AV_EXTS),
    )

    def parse(self, inputs: dict[str, Any]) -> MixPlan:
        loop = bool(inputs.get("loop"))
        duration = "first" if loop else str(inputs.get("duration") or "longest").lower()
        mode = str(inputs.get("mode") or "mix").lower()
        return MixPlan(mix_filter(len(inputs["keys"]), _volumes(inputs.get("volumes")), duration, mode),
                       duration, loop)

    def encode(self, job: MediaJob, options: MixPlan) -> None:
        first, *others = job.media
        lengths = [m.info.duration_s or 0.0 for m in job.media]
        expected = {"longest": max(lengths), "shortest": min(lengths), "first": lengths[0]}[options.duration]
        looped = ["-stream_loop", "-1"] if options.loop else []
        inputs = [*first.open(), *(arg for m in others for arg in (*looped, *m.open()))]
        window = ["-t", f"{expected:.6f}"] if expected > 0 else []
        args = [*inputs, "-filter_complex", options.graph, *_keep_video(first.info, job.ext), "-map", "[a]",
                *formats.audio_args(job.ext), *formats.container_args(job.ext), *window, str(job.out)]
        job.run(args, duration_s=expected)



class MergeAudio(MixAudio):
    id = "vendor.ffmpeg.merge_audio"
    description = (
        "Mix two audio files into one, as long as the longer. Inputs: `key`, `other_key`, optional "
        "`dest_key` (default `{base}_merged.mp3` next to `key`; an audio dest_key picks its own format). "
        "Output: `dest_key`."
    )
    output = OutputKey("merged", FixedExt(".mp3", dest_picks=formats.AUDIO_EXTS))
    sources: tuple[MediaInput, ...] = (replace(AUDIO_INPUT, refusal="key has no audio stream"),
               replace(AUDIO_INPUT, name="other_key", refusal="other_key has no audio stream"))
    params = ()

    legacy = LegacyInterface(
        VENDOR_FFMPEG + "merge.MergeAudio",
        inputs=(file_input("audio_key1", ptype=PT.KEY, validations=(ends_with(*AUDIO_KEY_EXTS),)),
                file_input("audio_key2", "other_key", PT.KEY, validations=(ends_with(*AUDIO_KEY_EXTS),))),
        outputs=(file_output("dest_key", PT.KEY),),
        configure=keyed("merged", formats.AUDIO_EXTS, ".mp3"),
    )

    def parse(self, inputs: dict[str, Any]) -> MixPlan:
        return MixPlan(mix_filter(2, None, "longest"), "longest")


MAX_FOLDER_FILES = 100
#: Objects listed under a prefix before giving up (a prefix with millions of objects is refused).
MAX_FOLDER_LISTING = 10_000
#: The files merge_audio_from_folder picks, by extension (case-insensitive).
FOLDER_AUDIO_EXTS = formats.AUDIO_EXTS | {".wma", ".aif", ".aiff", ".mpa"}
FOLDER_OUTPUT = "merged_output.mp3"


def folder_audio_keys(keys: Iterable[str], exclude: str) -> list[str]:
    """The audio files among ``keys`` (by extension), without ``exclude`` (the output: a re-run must
    not mix in its own earlier result); at most :data:`MAX_FOLDER_FILES`, of :data:`MAX_FOLDER_LISTING`
    objects listed. Raises :class:`ActionFailed`."""
    found: list[str] = []
    for listed, key in enumerate(keys, start=1):
        if listed > MAX_FOLDER_LISTING:
            raise ActionFailed(f"the prefix holds more than {MAX_FOLDER_LISTING} objects; "
                               f"use a narrower prefix")
        if key != exclude and not key.endswith("/") and key_ext(key) in FOLDER_AUDIO_EXTS:
            found.append(key)
    if len(found) > MAX_FOLDER_FILES:
        raise ActionFailed(f"the prefix holds {len(found)} audio files; at most {MAX_FOLDER_FILES} "
                           f"can be merged")
    return sorted(found)


class MergeAudioFromFolder(MergeAudio):
    id = "vendor.ffmpeg.merge_audio_from_folder"
    description = (
        "Mix every audio file under a prefix into one, as long as the longest. Inputs: `prefix` (files "
        "at any depth below it, by extension: mp3, m4a, aac, wav, flac, ogg, opus, wma, aif, aiff, mpa; "
        "at most 100), optional `dest_key` (default `{prefix}merged_output.mp3`; never one of the inputs, "
        "so a re-run does not mix in its earlier output). Output: `dest_key`."
    )
    sources: tuple[MediaInput, ...] = (
        MediaInput("keys", demuxers.AUDIO, Needs.AUDIO, "{key} has no audio stream",
                   count=(1, MAX_FOLDER_FILES)),)
    inputs = (Param("prefix", PT.PREFIX), DEST_KEY, TIMEOUT)

    legacy = LegacyInterface(
        VENDOR_FFMPEG + "merge.MergeAudioFromFolder",
        inputs=(LegacyInput("src_prefix", PT.PREFIX, "prefix", required=True),),
        outputs=(file_output("dest_key", PT.KEY),),
    )

    def run(self, ctx: ActionContext, inputs: dict[str, Any]) -> dict[str, Any]:
        given = str(inputs.get("prefix") or "").strip()
        if not given:
            raise ActionFailed("missing input: prefix")
        try:
            prefix = normalise_key(given.rstrip("/") + "/", ctx.storage.namespace, prefix=True)
            dest = ctx.storage.check_key(str(inputs.get("dest_key") or "") or prefix + FOLDER_OUTPUT)
        except NamespaceViolation as exc:
            raise ActionFailed(str(exc)) from None
        keys = folder_audio_keys(ctx.storage.list_keys(prefix), exclude=dest)
        if not keys:
            raise ActionFailed(f"no audio files under {prefix}")
        return super().run(ctx, {**inputs, "keys": keys, "dest_key": dest})

    def parse(self, inputs: dict[str, Any]) -> MixPlan:
        return MixPlan(mix_filter(len(inputs["keys"]), None, "longest"), "longest")


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

    legacy = LegacyInterface(
        VENDOR_FFMPEG + "adjust_volume.AdjustVolume",
        inputs=(file_input(), LegacyInput("gain_db", PT.FLOAT, "gain_db", required=True)),
        outputs=(file_output(),),
        adapt=lambda i: {"volume": 0.0 if i["gain_db"] else 1.0},  # 0 dB: unchanged, as upstream
        configure=keyed(lambda i: f"vol{round(i['gain_db'])}db", AV_EXTS),  # round() is half to even
    )

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


def sound_window(silences: list[tuple[float, float | None]], duration_s: float, tolerance_s: float = 0.05,
                 *, start_edge: bool = True, end_edge: bool = True) -> tuple[float, float]:
    """(start, end) of the part between leading and trailing silence (either edge may be kept)."""
    start, end = 0.0, duration_s
    if start_edge and silences and silences[0][0] <= tolerance_s:
        first_end = silences[0][1]
        start = duration_s if first_end is None else first_end
    if end_edge and silences:
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
        "for video too; `start` or `end`: only that one; `all`: also remove pauses inside, audio files "
        "only), optional `dest_key` (default `{base}_nosilence{ext}`). Output: `dest_key`."
    )
    output = OutputKey("nosilence", SAME_AV_EXT)
    sources = (AUDIO_INPUT,)
    params = (option("threshold_db", PT.FLOAT, -50.0), option("min_silence_s", PT.FLOAT, 0.5),
              option("mode", PT.STRING, "edges"))

    legacy = LegacyInterface(
        VENDOR_FFMPEG + "trim_silence.TrimSilence",
        inputs=(file_input(), LegacyInput("threshold_db", PT.FLOAT, "threshold_db", -50.0),
                LegacyInput("min_silence_sec", PT.FLOAT, "min_silence_s", 0.5),
                LegacyInput("from_start", PT.BOOLEAN, default=True),
                LegacyInput("from_end", PT.BOOLEAN, default=True)),
        outputs=(file_output(),),
        adapt=lambda i: {"mode": _silence_edges(bool(i.get("from_start")), bool(i.get("from_end")))},
        configure=keyed("desilenced", AV_EXTS),
    )

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
        start, end = sound_window(parse_silences(detect.stderr), info.duration_s or 0.0,
                                  start_edge=mode != "end", end_edge=mode != "start")
        maps = (["-map", "0:v:0"] if video else []) + ["-map", "0:a:0"]
        args = ["-ss", f"{start:.6f}", *job.source.open(), "-t", f"{end - start:.6f}", *maps,
                *formats.encode_args(ext, video=video, audio=True), str(job.out)]
        job.run(args, duration_s=end - start, passes=passes)


def _silence_edges(from_start: bool, from_end: bool) -> str:
    """Upstream's two flags as our ``mode``."""
    if not (from_start or from_end):
        raise ActionFailed("At least one of from_start/from_end must be true")
    return "edges" if from_start and from_end else "start" if from_start else "end"
