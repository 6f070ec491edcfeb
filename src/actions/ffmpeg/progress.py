"""ffmpeg's ``-progress`` stream (``key=value`` lines on stdout) as a fraction of the work done."""

from __future__ import annotations

from dataclasses import dataclass


def parse_progress_line(line: str) -> tuple[str, str] | None:
    """Split one ``-progress`` line (``key=value``) into its parts."""
    line = line.strip()
    if "=" not in line:
        return None
    name, _, value = line.partition("=")
    return name.strip(), value.strip()


@dataclass
class ProgressParser:
    """Turns ffmpeg's ``-progress`` key=value stream into a 0..1 fraction of ``duration_s``.

    ``offset``/``scale`` map the fraction into a slice of the action's overall progress, for
    actions that run ffmpeg more than once (two-pass encodes).
    """

    duration_s: float | None
    offset: float = 0.0
    scale: float = 1.0
    fraction: float = 0.0
    done: bool = False

    def feed(self, line: str) -> float | None:
        """Feed one line; return the new overall fraction when it changed, else ``None``."""
        parsed = parse_progress_line(line)
        if parsed is None:
            return None
        name, value = parsed
        local: float | None = None
        if name in ("out_time_us", "out_time_ms"):  # ffmpeg prints microseconds under both names
            if self.duration_s and self.duration_s > 0 and value.lstrip("-").isdigit():
                local = int(value) / 1_000_000 / self.duration_s
        elif name == "progress" and value == "end":
            self.done = True
            local = 1.0
        if local is None:
            return None
        local = min(max(local, 0.0), 1.0)
        overall = self.offset + self.scale * local
        if overall <= self.fraction:
            return None
        self.fraction = overall
        return overall
