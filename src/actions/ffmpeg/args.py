"""Reading the media actions' inputs: the common ``dest_key`` and ``timeout_s``, numbers, time limits.

The engine has already converted each input to its declared ptype (with defaults); what is left is
"not given" (``None``, ``""``, and 0 for most numbers) and ranges. Every failure is an
:class:`ActionFailed` naming the input.
"""

from __future__ import annotations

import math
import re
from typing import Any

from feaas.actions.base import ActionFailed, Param
from feaas.objects import ParameterType as PT


def option(name: str, ptype: int, default: Any, hint: str = "") -> Param:
    """An optional input: the engine passes ``default`` when it is not given."""
    return Param(name, ptype, optional=True, default=default, hint=hint)


#: Automatic ffmpeg timeout: a floor plus a multiple of the media duration.
MIN_TIMEOUT_S = 300.0
TIMEOUT_PER_MEDIA_SECOND = 20.0
#: Used when the duration is unknown (images, broken headers).
UNKNOWN_DURATION_TIMEOUT_S = 1800.0

#: Common optional inputs of every ffmpeg action.
DEST_KEY = option("dest_key", PT.KEY, "", "output key; default next to the input")
TIMEOUT = option("timeout_s", PT.INTEGER, 0, "ffmpeg time limit in seconds; 0 = automatic")


def auto_timeout_s(duration_s: float | None, passes: int = 1) -> float:
    """A generous default time limit for processing media of ``duration_s`` seconds."""
    if duration_s is None or not math.isfinite(duration_s) or duration_s <= 0:
        return UNKNOWN_DURATION_TIMEOUT_S * passes
    return max(MIN_TIMEOUT_S, TIMEOUT_PER_MEDIA_SECOND * duration_s) * passes


def timeout_for(inputs: dict[str, Any], duration_s: float | None, passes: int = 1) -> float:
    """The ``timeout_s`` input when positive, else :func:`auto_timeout_s`."""
    given = inputs.get("timeout_s") or 0
    try:
        value = float(given)
    except (TypeError, ValueError) as exc:
        raise ActionFailed(f"timeout_s must be a number, got {given!r}") from exc
    return value if value > 0 else auto_timeout_s(duration_s, passes)


def optional_number(inputs: dict[str, Any], name: str, *, zero_is_unset: bool = True) -> float | None:
    """An optional non-negative number input. ``None``/``""`` (and 0 when ``zero_is_unset``,
    the default of INTEGER/FLOAT inputs) mean "not given"."""
    value = inputs.get(name)
    if value is None or value == "":
        return None
    try:
        number = float(value)
    except (TypeError, ValueError) as exc:
        raise ActionFailed(f"{name} must be a number, got {value!r}") from exc
    if not math.isfinite(number) or number < 0:
        raise ActionFailed(f"{name} must be zero or a positive number, got {value!r}")
    if number == 0 and zero_is_unset:
        return None
    return number


def number_between(inputs: dict[str, Any], name: str, default: float, low: float, high: float) -> float:
    """A number input from ``low`` to ``high``; ``None``/``""`` mean ``default``."""
    value = inputs.get(name)
    try:
        number = default if value is None or value == "" else float(value)
    except (TypeError, ValueError) as exc:
        raise ActionFailed(f"{name} must be a number, got {value!r}") from exc
    if not low <= number <= high:
        raise ActionFailed(f"{name} must be between {low:g} and {high:g}, got {number:g}")
    return number


_CLOCK = re.compile(r"^(?:(\d+):)?(\d+):(\d+(?:\.\d*)?)$")
_SECONDS = re.compile(r"^(\d+(?:\.\d*)?|\.\d+)(s|ms|us)?$")
_UNIT = {None: 1.0, "s": 1.0, "ms": 1e3, "us": 1e6}


def time_text(name: str, value: Any) -> float | None:
    """A time written the way ffmpeg reads one (``"12.5"``, ``"90s"``, ``"500ms"``, ``"01:30"``,
    ``"00:01:30.5"``) in seconds; ``None`` when not given. Raises :class:`ActionFailed` naming the input."""
    text = "" if value is None else str(value).strip()
    if not text:
        return None
    clock = _CLOCK.match(text)
    if clock is not None:
        hours, minutes, seconds = clock.groups()
        return int(hours or 0) * 3600 + int(minutes) * 60 + float(seconds)
    plain = _SECONDS.match(text)
    if plain is None:
        raise ActionFailed(f"{name} must be a time such as 12.5, 01:30 or 00:01:30.5, got {text!r}")
    return float(plain.group(1)) / _UNIT[plain.group(2)]
