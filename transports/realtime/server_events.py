"""The server events voxwire sends on the Realtime API (GA), one typed class each.

Every server event leaves through :meth:`ServerEvent.to_wire`: its fields in the
order declared, ``type`` and a fresh ``event_id`` first. A field that OpenAI sends
as null stays on the wire as null; the few fields that only some events of a type
carry (the ``error`` of a failed classification) are left out when they are None.
The events a Session emits (speech started, transcripts...) are already typed in
:mod:`voxwire.engine.events`; :class:`SessionEvent` gives one its event_id.
The objects inside events (items, content parts, responses, the session) are
built by :mod:`~voxwire.transports.realtime.reply_events` and
:class:`~voxwire.transports.realtime.protocol.SessionConfig`.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from voxwire.engine.errors import describe
from voxwire.engine.events import Event


def new_event_id() -> str:
    return f"event_{secrets.token_hex(10)}"


def _is_none(value: object) -> bool:
    return value is None


class ServerEvent(BaseModel):
    """One server event; subclasses fix `type` and add their fields."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    type: str
    event_id: str = Field(default_factory=new_event_id)

    def to_wire(self) -> dict[str, Any]:
        """The event as a JSON object."""
        return self.model_dump(by_alias=True)


SendEvent = Callable[[ServerEvent], None]
"""Where a connection's parts hand the events they send."""


class SessionEvent(ServerEvent):
    """An event of the engine's Session (typed in voxwire.engine.events), on the wire
    with its event_id; its null fields stay, as OpenAI sends them."""

    event: Event = Field(exclude=True)

    @classmethod
    def of(cls, event: Event) -> SessionEvent:
        return cls(type=event.type, event=event)

    def to_wire(self) -> dict[str, Any]:
        body = self.event.model_dump(by_alias=True)
        body.pop("type", None)
        return {"type": self.type, "event_id": self.event_id, **body}


# -- errors ----------------------------------------------------------------------------


class ErrorDetails(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    type: Literal["invalid_request_error", "server_error"] = "invalid_request_error"
    code: str
    message: str
    param: str | None = None
    event_id: str | None = None
    """The client event this error answers, when there is one."""


class ErrorEvent(ServerEvent):
    type: Literal["error"] = "error"
    error: ErrorDetails

    @classmethod
    def describing(cls, error: BaseException, *, event_id: str | None = None) -> ErrorEvent:
        """The error event for any exception (internals never reach the peer)."""
        desc = describe(error)
        return cls(
            error=ErrorDetails(
                type=error_type(error),
                code=desc.code,
                message=desc.message,
                param=desc.param,
                event_id=event_id,
            )
        )


def error_type(error: BaseException) -> Literal["invalid_request_error", "server_error"]:
    """OpenAI's error type: the peer's fault or the server's."""
    return "invalid_request_error" if describe(error).is_peer_error else "server_error"


# -- the session -----------------------------------------------------------------------


class _SessionState(ServerEvent):
    """The session's whole configuration, as the client would send it."""

    session: dict[str, Any]


class SessionCreated(_SessionState):
    type: Literal["session.created"] = "session.created"


class SessionUpdated(_SessionState):
    type: Literal["session.updated"] = "session.updated"


class SessionStats(ServerEvent):
    """voxwire's own: the answer to voxwire.session.stats."""

    type: Literal["voxwire.session.stats"] = "voxwire.session.stats"
    session_id: str
    counters: dict[str, int | float]
    open_items: int
    classifiers: dict[str, int | float | str]
    replies: dict[str, int | float]


# -- live classification (voxwire's own) -------------------------------------------------


class ClassificationFailure(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    code: str
    message: str


class SpeakerIdentified(ServerEvent):
    type: Literal["voxwire.speaker.identified"] = "voxwire.speaker.identified"
    item_id: str
    speaker: str | None
    score: float | None
    error: ClassificationFailure | None = Field(default=None, exclude_if=_is_none)


class Classification(ServerEvent):
    type: Literal["voxwire.classification"] = "voxwire.classification"
    item_id: str
    source: Literal["transcript"] = "transcript"
    classifier: str
    model: str | None
    labels: list[dict[str, str | float]]
    error: ClassificationFailure | None = Field(default=None, exclude_if=_is_none)


ItemClassification = SpeakerIdentified | Classification
"""What the classifiers said about an item (a reply's turn sees them)."""


class WakeWordDetected(ServerEvent):
    type: Literal["voxwire.wake_word.detected"] = "voxwire.wake_word.detected"
    name: str
    score: float
    audio_ms: int


# -- the conversation ------------------------------------------------------------------


class _ConversationItem(ServerEvent):
    """An item of the conversation and the one before it."""

    previous_item_id: str | None
    item: dict[str, Any]


class ConversationItemAdded(_ConversationItem):
    type: Literal["conversation.item.added"] = "conversation.item.added"


class ConversationItemDone(_ConversationItem):
    type: Literal["conversation.item.done"] = "conversation.item.done"


class ConversationItemTruncated(ServerEvent):
    type: Literal["conversation.item.truncated"] = "conversation.item.truncated"
    item_id: str
    content_index: int
    audio_end_ms: int


class ConversationItemDeleted(ServerEvent):
    type: Literal["conversation.item.deleted"] = "conversation.item.deleted"
    item_id: str


# -- responses -------------------------------------------------------------------------


class _ResponseState(ServerEvent):
    """A reply as a whole: its id, status, output and usage."""

    response: dict[str, Any]


class ResponseCreated(_ResponseState):
    type: Literal["response.created"] = "response.created"


class ResponseDone(_ResponseState):
    type: Literal["response.done"] = "response.done"


class _ReplyAudioBuffer(ServerEvent):
    """The WebRTC reply track's buffer (output_audio_buffer.*)."""

    response_id: str


class OutputAudioBufferStarted(_ReplyAudioBuffer):
    type: Literal["output_audio_buffer.started"] = "output_audio_buffer.started"


class OutputAudioBufferCleared(_ReplyAudioBuffer):
    type: Literal["output_audio_buffer.cleared"] = "output_audio_buffer.cleared"


class OutputAudioBufferStopped(_ReplyAudioBuffer):
    type: Literal["output_audio_buffer.stopped"] = "output_audio_buffer.stopped"


class _OutputItem(ServerEvent):
    response_id: str
    output_index: int = 0
    item: dict[str, Any]


class ResponseOutputItemAdded(_OutputItem):
    type: Literal["response.output_item.added"] = "response.output_item.added"


class ResponseOutputItemDone(_OutputItem):
    type: Literal["response.output_item.done"] = "response.output_item.done"


class _ContentEvent(ServerEvent):
    """An event about the one content part of a reply's item."""

    response_id: str
    item_id: str
    output_index: int = 0
    content_index: int = 0


class ResponseContentPartAdded(_ContentEvent):
    type: Literal["response.content_part.added"] = "response.content_part.added"
    part: dict[str, Any]


class ResponseContentPartDone(_ContentEvent):
    type: Literal["response.content_part.done"] = "response.content_part.done"
    part: dict[str, Any]


class ResponseOutputTextDelta(_ContentEvent):
    type: Literal["response.output_text.delta"] = "response.output_text.delta"
    delta: str


class ResponseOutputTextDone(_ContentEvent):
    type: Literal["response.output_text.done"] = "response.output_text.done"
    text: str


class ResponseOutputAudioTranscriptDelta(_ContentEvent):
    type: Literal["response.output_audio_transcript.delta"] = (
        "response.output_audio_transcript.delta"
    )
    delta: str


class ResponseOutputAudioTranscriptDone(_ContentEvent):
    type: Literal["response.output_audio_transcript.done"] = "response.output_audio_transcript.done"
    transcript: str


class ResponseOutputAudioDelta(_ContentEvent):
    type: Literal["response.output_audio.delta"] = "response.output_audio.delta"
    delta: str
    """Base64 PCM16 at the session's output rate."""


class ResponseOutputAudioDone(_ContentEvent):
    type: Literal["response.output_audio.done"] = "response.output_audio.done"


class _FunctionCallEvent(ServerEvent):
    """An event about a function call item of a reply."""

    response_id: str
    item_id: str
    output_index: int
    call_id: str


class ResponseFunctionCallArgumentsDelta(_FunctionCallEvent):
    type: Literal["response.function_call_arguments.delta"] = (
        "response.function_call_arguments.delta"
    )
    delta: str


class ResponseFunctionCallArgumentsDone(_FunctionCallEvent):
    type: Literal["response.function_call_arguments.done"] = "response.function_call_arguments.done"
    name: str
    arguments: str
