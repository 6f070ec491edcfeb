"""``vendor.ffmpeg.probe``: what a media file contains."""

from __future__ import annotations

from typing import Any

from feaas.actions.base import ActionContext, Param
from feaas.actions.legacy import LegacyInterface, LegacyOutput
from feaas.objects import ParameterType as PT
from src.actions.ffmpeg import demuxers
from src.actions.ffmpeg.probing import probe
from src.actions.ffmpeg.template import FfmpegAction
from src.actions.ffmpeg.upstream import VENDOR_FFMPEG, file_input
from src.actions.ffmpeg.workspace import workspace


class Probe(FfmpegAction):
    id = "vendor.ffmpeg.probe"
    description = (
        "Read a media file's properties with ffprobe. Input `key`. Outputs: `duration` (s), `width`, "
        "`height`, `codec` (video codec), `audio_codec`, `fps`, `bitrate` (bit/s), `format` "
        "(container); missing values are 0 or empty."
    )
    inputs = (Param("key", PT.KEY, label="Media file"),)
    outputs = (
        Param("duration", PT.FLOAT), Param("width", PT.INTEGER), Param("height", PT.INTEGER),
        Param("codec"), Param("audio_codec"), Param("fps", PT.FLOAT), Param("bitrate", PT.INTEGER),
        Param("format"),
    )
    legacy = LegacyInterface(
        VENDOR_FFMPEG + "probe.Probe",
        inputs=(file_input(),),
        outputs=tuple(LegacyOutput(p.name, p.ptype, p.name) for p in outputs),
        finish=lambda ctx, i, out: {"bitrate": out["bitrate"] // 1000},  # kbit/s upstream
    )

    def run(self, ctx: ActionContext, inputs: dict[str, Any]) -> dict[str, Any]:
        with workspace(ctx) as ws:
            key = ws.check_key(inputs.get("key", ""))
            info = probe(ws.fetch(key), demuxers.ANY_MEDIA, what=key)
        return {
            "duration": round(info.duration_s or 0.0, 3),
            "width": info.width or 0,
            "height": info.height or 0,
            "codec": info.video_codec,
            "audio_codec": info.audio_codec,
            "fps": info.fps or 0.0,
            "bitrate": info.bitrate or 0,
            "format": info.format_name,
        }
