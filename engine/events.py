"""Typed events a Session emits, named as in the OpenAI Realtime API (GA).

Fields and events that only voxwire has are prefixed ``voxwire.``.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter


class _Event(BaseModel):
    model_config = ConfigDict(frozen=True, populate_by_name=True)

    def to_json_dict(self) -> dict[str, Any]:
        """The wire form: aliases as keys, no unset optional fields."""
        return self.model_dump(by_alias=True, exclude_none=True)


class UtteranceTimings(BaseModel):
    """Where an utterance lies in the session's audio, in milliseconds."""

    model_config = ConfigDict(frozen=True)

    audio_start_ms: int
    audio_end_ms: int


class TranscriptionUsage(BaseModel):
    """What a transcript cost, billed as OpenAI bills ASR models: by audio duration."""

    model_config = ConfigDict(frozen=True)

    type: Literal["duration"] = "duration"
    seconds: float


class SpeechStarted(_Event):
    type: Literal["input_audio_buffer.speech_started"] = "input_audio_buffer.speech_started"
    audio_start_ms: int
    item_id: str


class SpeechStopped(_Event):
    type: Literal["input_audio_buffer.speech_stopped"] = "input_audio_buffer.speech_stopped"
    audio_end_ms: int
    item_id: str


class TranscriptionDelta(_Event):
    """Newly committed text of an utterance; deltas concatenate to its final transcript."""

    type: Literal["conversation.item.input_audio_transcription.delta"] = (
        "conversation.item.input_audio_transcription.delta"
    )
    item_id: str
    content_index: int = 0
    delta: str


class TranscriptionTentative(_Event):
    """voxwire's own: the current uncommitted hypothesis after the committed deltas.

    Each one replaces the previous one of its item; it never changes the deltas,
    which still concatenate exactly to the final transcript. Opt-in per session.
    """

    type: Literal["voxwire.transcription.tentative"] = "voxwire.transcription.tentative"
    item_id: str
    content_index: int = 0
    text: str


class TranscriptionCompleted(_Event):
    type: Literal["conversation.item.input_audio_transcription.completed"] = (
        "conversation.item.input_audio_transcription.completed"
    )
    item_id: str
    content_index: int = 0
    transcript: str
    usage: TranscriptionUsage
    timings: UtteranceTimings = Field(alias="voxwire.timings")


class InputAudioCommitted(_Event):
    """A stretch of input audio became a user item (by the client or by server VAD)."""

    type: Literal["input_audio_buffer.committed"] = "input_audio_buffer.committed"
    item_id: str
    previous_item_id: str | None = None


class InputAudioCleared(_Event):
    """The uncommitted input audio was discarded."""

    type: Literal["input_audio_buffer.cleared"] = "input_audio_buffer.cleared"


class TranscriptionFailed(_Event):
    type: Literal["conversation.item.input_audio_transcription.failed"] = (
        "conversation.item.input_audio_transcription.failed"
    )
    item_id: str
    content_index: int = 0
    error: dict[str, str]


Event = Annotated[
    SpeechStarted
    | SpeechStopped
    | InputAudioCommitted
    | InputAudioCleared
    | TranscriptionDelta
    | TranscriptionTentative
    | TranscriptionCompleted
    | TranscriptionFailed,
    Field(discriminator="type"),
]
"""Any event a Session emits."""

EVENT_ADAPTER: TypeAdapter[Event] = TypeAdapter(Event)
