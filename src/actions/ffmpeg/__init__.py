"""The ``vendor.ffmpeg.*`` media actions (issue 6). ``ACTIONS`` is what the registry wires in."""

from __future__ import annotations

from feaas.actions.base import Action
from src.actions.ffmpeg.audio import AdjustVolume, ExtractAudio, MixAudio, NormalizeAudio, TrimSilence
from src.actions.ffmpeg.edit import Concat, MergeAudioVideo, Overlay, Trim
from src.actions.ffmpeg.images import Thumbnail, Thumbnails, ToGif, Waveform
from src.actions.ffmpeg.probe import Probe
from src.actions.ffmpeg.transcode import Compress, Convert, Resize

ACTIONS: list[Action] = [
    Probe(),
    Convert(),
    ExtractAudio(),
    Trim(),
    Concat(),
    Resize(),
    Compress(),
    ToGif(),
    Overlay(),
    NormalizeAudio(),
    MixAudio(),
    AdjustVolume(),
    TrimSilence(),
    Thumbnail(),
    Thumbnails(),
    Waveform(),
    MergeAudioVideo(),
]

__all__ = ["ACTIONS"]
