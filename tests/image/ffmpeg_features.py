"""Does this ffmpeg/ffprobe have everything the ``vendor.ffmpeg.*`` actions use? (issue 14)

The evidence for choosing an ffmpeg build, and a check the image tier runs inside the image
(``python - < tests/image/ffmpeg_features.py`` in /app, so ``src`` is the image's own code). It
lists the encoders, muxers, demuxers and filters the actions name, then encodes one short clip to
every output format the actions support, with the actions' own encoder arguments
(``src/actions/ffmpeg/formats.py``), and reads each back with ffprobe.

Prints one line per check and ``N passed, N failed``; exits 1 when anything is missing.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from src.actions.ffmpeg import demuxers, formats

#: Filters the actions build graphs from (src/actions/ffmpeg/*.py), plus the lavfi sources used here.
FILTERS = ("loudnorm", "silenceremove", "silencedetect", "volume", "amix", "aformat", "aresample", "atrim",
           "anullsrc", "areverse", "palettegen", "paletteuse", "scale", "setsar", "pad", "fps", "format",
           "overlay", "colorchannelmixer", "color", "showwavespic", "concat", "split", "thumbnail",
           "volumedetect", "sidechaincompress", "asplit", "anull", "anullsink", "xfade", "acrossfade", "trim",
           "setpts", "asetpts", "testsrc2", "sine")
#: Encoders named outside formats.py (to_gif, the lossless audio paths).
EXTRA_ENCODERS = ("gif", "pcm_s16le", "mjpeg", "png")


def _names(tool: str, what: str) -> set[str]:
    out = subprocess.run([tool, "-hide_banner", f"-{what}"], capture_output=True, text=True,
                         check=True).stdout
    names: set[str] = set()
    for line in out.splitlines():
        # " V....D libx264   ..." (codecs), " D  mov,mp4,... " (formats), " ... scale  V->V ..." (filters)
        match = re.match(r"^\s*[A-Z.|]+\s+(\S+)", line)
        if match:
            names.update(match.group(1).split(","))
    return names


def _encoders_in_args(args: list[str]) -> list[str]:
    return [args[i + 1] for i, a in enumerate(args[:-1]) if a in ("-c:v", "-c:a")]


def main() -> int:
    ffmpeg, ffprobe = shutil.which("ffmpeg"), shutil.which("ffprobe")
    if not ffmpeg or not ffprobe:
        print(f"ffmpeg={ffmpeg} ffprobe={ffprobe}: both are needed")
        print("0 passed, 1 failed")
        return 1
    version = subprocess.run([ffmpeg, "-hide_banner", "-version"], capture_output=True, text=True,
                             check=False).stdout
    print(f"# {ffmpeg}: {version.splitlines()[0]}")
    results: list[tuple[str, bool, str]] = []
    encoders = _names(ffmpeg, "encoders")
    wanted = set(EXTRA_ENCODERS)
    for ext in formats.SUPPORTED:
        args = formats.video_args(ext) + formats.audio_args(ext) + formats.image_args(ext)
        wanted.update(_encoders_in_args(args))
    results.extend((f"encoder {name}", name in encoders, "") for name in sorted(wanted))
    probe_demuxers = _names(ffprobe, "demuxers")
    ffmpeg_demuxers = _names(ffmpeg, "demuxers") | _names(ffmpeg, "devices")  # lavfi moved to devices in 7.x
    for name in sorted(demuxers.ANY_MEDIA | {"lavfi"}):
        tool_ok = name in ffmpeg_demuxers and (name == "lavfi" or name in probe_demuxers)
        results.append((f"demuxer {name}", tool_ok, ""))
    filters = _names(ffmpeg, "filters")
    results.extend((f"filter {name}", name in filters, "") for name in FILTERS)
    with tempfile.TemporaryDirectory() as tmp:
        for ext in formats.SUPPORTED:
            out = Path(tmp) / f"clip{ext}"
            video = ext in formats.VIDEO_EXTS or ext in formats.IMAGE_EXTS
            audio = ext in formats.VIDEO_EXTS or ext in formats.AUDIO_EXTS
            args = [ffmpeg, "-nostdin", "-hide_banner", "-loglevel", "error", "-y",
                    "-f", "lavfi", "-i", "testsrc2=size=160x120:rate=10:duration=1",
                    "-f", "lavfi", "-i", "sine=frequency=440:duration=1",
                    *formats.encode_args(ext, video=video, audio=audio), str(out)]
            run = subprocess.run(args, capture_output=True, text=True, timeout=120, check=False)
            probe = subprocess.run([ffprobe, "-v", "error", "-show_entries", "format=format_name",
                                    "-of", "csv=p=0", str(out)], capture_output=True, text=True, timeout=60,
                                   check=False)
            ok = run.returncode == 0 and probe.returncode == 0 and bool(probe.stdout.strip())
            detail = [probe.stdout.strip()] if ok else (run.stderr or probe.stderr).strip().splitlines()[-1:]
            results.append((f"encode {ext}", ok, detail[0] if detail else ""))
        gif = Path(tmp) / "clip.gif"
        run = subprocess.run([ffmpeg, "-nostdin", "-loglevel", "error", "-y", "-f", "lavfi", "-i",
                              "testsrc2=size=160x120:rate=10:duration=1", "-filter_complex",
                              "[0:v]fps=5,scale=80:-1,split[a][b];[a]palettegen[p];[b][p]paletteuse",
                              str(gif)],
                             capture_output=True, text=True, timeout=60, check=False)
        results.append(("encode .gif (palettegen/paletteuse)", run.returncode == 0,
                        run.stderr.strip()[-200:]))
    failed = [r for r in results if not r[1]]
    for name, ok, detail in results:
        print(f"{'ok  ' if ok else 'MISSING'} {name}{'  ' + detail if detail else ''}")
    print(f"{len(results) - len(failed)} passed, {len(failed)} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
