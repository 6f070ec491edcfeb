"""Short texts for messages: a value shown in an error, a message cut to a size a person reads."""

from __future__ import annotations

from typing import Any

#: An error message on the job document or a receipt is cut to this many characters.
MAX_MESSAGE_CHARS = 2000


def bounded(message: str, limit: int = MAX_MESSAGE_CHARS) -> str:
    """``message`` short enough for the job document and a person reading it."""
    if len(message) <= limit:
        return message
    return message[:limit] + f"… ({len(message) - limit} more characters)"


def describe(value: Any, limit: int = 60) -> str:
    """A short printable form of a value for error messages."""
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."
