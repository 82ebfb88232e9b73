"""Which voice of a speech model a request means: the one mapping of OpenAI's voice
names, for the speech endpoint, spoken replies and ``voxwire speak``."""

from __future__ import annotations

from collections.abc import Sequence

from voxwire.engine.errors import InvalidValue

OPENAI_VOICES = frozenset(
    {
        "alloy", "ash", "ballad", "cedar", "coral", "echo", "fable",
        "marin", "nova", "onyx", "sage", "shimmer", "verse",
    }
)  # fmt: skip
"""OpenAI's built-in voice names; each selects the TTS model's default voice."""


class UnknownVoice(InvalidValue):
    """A voice that is neither OpenAI's nor the model's."""


def model_voice(requested: str | None, voices: Sequence[str]) -> str | None:
    """The model's voice for `requested`: None (the model's default) for no name or one
    of OpenAI's; the name itself when the model has it (`voices`); else UnknownVoice."""
    if requested is None or requested.lower() in OPENAI_VOICES:
        return None
    if requested in voices:
        return requested
    raise UnknownVoice(
        f"unknown voice {requested!r}; use one of OpenAI's voices "
        f"({', '.join(sorted(OPENAI_VOICES))}) or one of this model's: {', '.join(voices)}",
        param="voice",
    )
