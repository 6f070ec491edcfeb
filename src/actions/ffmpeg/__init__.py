"""The ``vendor.ffmpeg.*`` media actions (issues 6, 12). ``ACTIONS`` is what the registry wires in; each one
that upstream had also declares upstream's interface (``legacy``)."""

from __future__ import annotations

from feaas.actions.base import Action
from src.actions.ffmpeg.audio import (
    AdjustVolume,
    ExtractAudio,
    MergeAudio,
    MergeAudioFromFolder,
    MixAudio,
    NormalizeAudio,
    TrimSilence,
)
from src.actions.ffmpeg.edit import AddIntroOutro, Concat, EditMedia, MergeAudioVideo, Overlay, Trim
from src.actions.ffmpeg.images import Thumbnail, Thumbnails, ToGif, Waveform
from src.actions.ffmpeg.probe import Probe
from src.actions.ffmpeg.transcode import Compress, Convert, Resize, ResizeImage

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
    ResizeImage(),
    AddIntroOutro(),
    EditMedia(),
    MergeAudio(),
    MergeAudioFromFolder(),
]

__all__ = ["ACTIONS"]
