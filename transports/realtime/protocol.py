"""The OpenAI Realtime API (GA) on the wire: client events in, server events out.

Parsing turns a text frame into a typed client event or a :class:`ProtocolError`
that names the offending field; :class:`SessionConfig` holds a session's
settings as the API shows them and maps them onto engine options. Nothing here
touches a socket.
"""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass, field, replace
from typing import Annotated, Any, Literal

import jsonschema_rs
from pydantic import BaseModel, ConfigDict, Field, StrictBool, ValidationError

from voxwire.engine.audio import SUPPORTED_INPUT_RATES
from voxwire.engine.errors import PeerError
from voxwire.engine.segmenter import SegmenterOptions
from voxwire.engine.session import SessionOptions
from voxwire.engine.turns import Eagerness, SemanticTurnOptions
from voxwire.services import g711
from voxwire.services.g711 import G711_RATE
from voxwire.services.json_limits import JsonTooDeep, loads_bounded
from voxwire.services.tools import TOOL_NAME, FunctionTool
from voxwire.services.voices import OPENAI_VOICES

DEFAULT_INPUT_RATE = 24_000
"""OpenAI's input rate; voxwire also takes the other SUPPORTED_INPUT_RATES."""

DEFAULT_OUTPUT_RATE = 24_000
"""The rate of reply audio unless a session asks for another supported rate."""

OPENAI_TRANSCRIPTION_MODELS = frozenset(
    {
        "whisper-1",
        "gpt-transcribe",
        "gpt-live-transcribe",
        "gpt-4o-transcribe",
        "gpt-4o-mini-transcribe",
        "gpt-4o-mini-transcribe-2025-12-15",
        "gpt-4o-transcribe-diarize",
        "gpt-realtime-whisper",
    }
)
"""OpenAI's transcription model names: clients send them unchanged, and they
select the server's configured recogniser."""


MAX_NAME_CHARS = 256
"""Ids, model, voice, language and other names in client events."""
MAX_PROMPT_CHARS = 1024
"""The transcription `prompt` (Whisper reads at most 224 tokens of it)."""
MAX_TEXT_CHARS = 32_768
"""`instructions` and the text of a conversation item."""
MAX_LIST_ITEMS = 16
"""Entries of any list or map in a client event (classifiers, wake words, metadata)."""
MAX_PREFIX_PADDING_MS = 5_000
MAX_SILENCE_DURATION_MS = 10_000
MAX_IDLE_TIMEOUT_MS = 3_600_000
MAX_AUDIO_END_MS = 24 * 3_600_000
MAX_ITEM_AUDIO_CHARS = 8 * 1024 * 1024
"""Base64 audio of one conversation item (the frame limit bounds it too)."""
MAX_TOOLS = 64
"""Functions in `session.tools`."""

Name = Annotated[str, Field(max_length=MAX_NAME_CHARS)]


class ProtocolError(PeerError):
    """A client event the server cannot act on; the socket stays open."""

    def __init__(
        self, message: str, *, code: str = "invalid_request_error", param: str | None = None
    ) -> None:
        super().__init__(message, param=param)
        self.code = code


# -- client events ---------------------------------------------------------------------


class _Lenient(BaseModel):
    """Fields voxwire does not use (noise_reduction, tools...) are accepted and ignored.
    Types are strict: "16000" is not a rate and 1 is not a boolean."""

    model_config = ConfigDict(extra="ignore", strict=True)


AudioEncoding = Literal["audio/pcm", "audio/pcmu", "audio/pcma"]
"""PCM16 at `rate`, or 8 kHz G.711 mu-law / A-law (telephony)."""


class AudioFormat(_Lenient):
    type: AudioEncoding = "audio/pcm"
    rate: int = DEFAULT_INPUT_RATE
    """audio/pcm only; G.711 is always 8 kHz."""


class TranscriptionSettings(_Lenient):
    model: Name | None = None
    language: Name | None = None
    prompt: str | None = Field(default=None, max_length=MAX_PROMPT_CHARS)


class TurnDetection(_Lenient):
    type: Literal["server_vad", "semantic_vad"] = "server_vad"
    eagerness: Eagerness | None = None
    """semantic_vad only: how soon a pause may end the turn."""
    threshold: float | None = Field(default=None, ge=0.0, le=1.0)
    prefix_padding_ms: int | None = Field(default=None, ge=0, le=MAX_PREFIX_PADDING_MS)
    silence_duration_ms: int | None = Field(default=None, ge=0, le=MAX_SILENCE_DURATION_MS)
    create_response: bool | None = None
    interrupt_response: bool | None = None
    idle_timeout_ms: int | None = Field(default=None, ge=0, le=MAX_IDLE_TIMEOUT_MS)


class AudioInput(_Lenient):
    format: AudioFormat | None = None
    transcription: TranscriptionSettings | None = None
    turn_detection: TurnDetection | None = None


class AudioOutput(_Lenient):
    format: AudioFormat | None = None
    voice: Name | None = None
    speed: float | None = Field(default=None, ge=0.25, le=4.0)


class AudioSettings(_Lenient):
    input: AudioInput | None = None
    output: AudioOutput | None = None


class _Strict(BaseModel):
    """voxwire's own objects: a misspelt field is an error, not silently ignored."""

    model_config = ConfigDict(extra="forbid", strict=True)


class WakeWordSettings(_Strict):
    """`session["voxwire.wake_words"]`: when a wake word counts as detected."""

    threshold: float | None = Field(default=None, gt=0.0, le=1.0)
    refractory_ms: int | None = Field(default=None, ge=0, le=60_000)
    names: list[Name] | None = Field(default=None, max_length=MAX_LIST_ITEMS)


class SpeakerSettings(_Strict):
    """`session["voxwire.speakers"]`: how sure speaker identification must be."""

    threshold: float | None = Field(default=None, ge=-1.0, le=1.0)


class VoxwireSettings(_Strict):
    """`session["voxwire"]`: voxwire's own session options."""

    tentative_transcripts: StrictBool | None = None
    """Also send voxwire.transcription.tentative events (off by default)."""


Modality = Literal["text", "audio"]

ToolName = Annotated[str, Field(pattern=TOOL_NAME.pattern)]


class FunctionToolIn(_Strict):
    """One entry of `session.tools`: a function the model may call."""

    type: Literal["function"]
    name: ToolName
    description: str = Field(default="", max_length=MAX_TEXT_CHARS)
    parameters: dict[str, Any] = Field(default_factory=lambda: {"type": "object"})


class ToolChoiceFunction(_Strict):
    """`tool_choice` naming the one function the model must call."""

    type: Literal["function"]
    name: ToolName


class SessionSettings(_Lenient):
    type: Literal["transcription", "realtime"] | None = None
    audio: AudioSettings | None = None
    instructions: str | None = Field(default=None, max_length=MAX_TEXT_CHARS)
    output_modalities: list[Modality] | None = Field(default=None, min_length=1, max_length=1)
    tools: list[FunctionToolIn] | None = Field(default=None, max_length=MAX_TOOLS)
    tool_choice: Literal["auto", "none", "required"] | ToolChoiceFunction | None = None
    classifiers: list[Name] | None = Field(
        default=None, alias="voxwire.classifiers", max_length=MAX_LIST_ITEMS
    )
    wake_word_gate: StrictBool | None = Field(default=None, alias="voxwire.wake_word_gate")
    wake_words: WakeWordSettings | None = Field(default=None, alias="voxwire.wake_words")
    speakers: SpeakerSettings | None = Field(default=None, alias="voxwire.speakers")
    voxwire: VoxwireSettings | None = None


class _ClientEvent(_Lenient):
    """A client event: its `event_id` (optional) names it in the error that answers it."""

    event_id: Name | None = None


class SessionUpdate(_ClientEvent):
    type: Literal["session.update"]
    session: SessionSettings


class AudioAppend(_ClientEvent):
    type: Literal["input_audio_buffer.append"]
    audio: str


class AudioCommit(_ClientEvent):
    type: Literal["input_audio_buffer.commit"]


class AudioClear(_ClientEvent):
    type: Literal["input_audio_buffer.clear"]


class ResponseSettings(_Lenient):
    """The `response` of response.create: what this one reply may override."""

    instructions: str | None = Field(default=None, max_length=MAX_TEXT_CHARS)
    output_modalities: list[Modality] | None = Field(default=None, min_length=1, max_length=1)
    """["audio"] (spoken, with a transcript) or ["text"] (text only)."""
    conversation: Name | None = None
    """"auto" (the default) adds the reply to the conversation; "none" keeps it out."""
    metadata: dict[Name, Annotated[str, Field(max_length=512)]] | None = Field(
        default=None, max_length=MAX_LIST_ITEMS
    )
    tools: list[FunctionToolIn] | None = Field(default=None, max_length=MAX_TOOLS)
    """This response's tools instead of the session's."""
    tool_choice: Literal["auto", "none", "required"] | ToolChoiceFunction | None = None


class ResponseCreate(_ClientEvent):
    type: Literal["response.create"]
    response: ResponseSettings | None = None


class ResponseCancel(_ClientEvent):
    type: Literal["response.cancel"]
    response_id: Name | None = None


class ItemTruncate(_ClientEvent):
    type: Literal["conversation.item.truncate"]
    item_id: Name
    content_index: int = Field(ge=0, le=MAX_LIST_ITEMS)
    audio_end_ms: int = Field(ge=0, le=MAX_AUDIO_END_MS)


class ItemContent(_Lenient):
    type: Literal["input_text", "text", "output_text", "input_audio", "output_audio"]
    text: str | None = Field(default=None, max_length=MAX_TEXT_CHARS)
    transcript: str | None = Field(default=None, max_length=MAX_TEXT_CHARS)
    audio: str | None = Field(default=None, max_length=MAX_ITEM_AUDIO_CHARS)
    """input_audio: base64 audio in the session's input format."""


ItemId = Annotated[str, Field(max_length=64)]


class ItemIn(_Lenient):
    """A message item a client adds to the conversation."""

    id: ItemId | None = None
    type: Literal["message"]
    role: Literal["user", "assistant", "system"]
    content: list[ItemContent] = Field(min_length=1, max_length=MAX_LIST_ITEMS)

    def text(self) -> str:
        """The item's text (an audio part's given transcript counts as text)."""
        parts = [part.text or part.transcript or "" for part in self.content if not part.audio]
        return " ".join(p.strip() for p in parts if p.strip())

    def audio(self) -> list[str]:
        """The base64 audio of the item's input_audio parts (a user item's only)."""
        parts = []
        for index, part in enumerate(self.content):
            param = f"item.content.{index}"
            if part.type == "input_audio" and part.audio is None and not part.transcript:
                raise ProtocolError(
                    "an input_audio part needs its audio (base64)",
                    code="missing_required_parameter",
                    param=f"{param}.audio",
                )
            if part.audio is None:
                continue
            if part.type != "input_audio" or self.role != "user":
                raise ProtocolError(
                    "audio goes in a user item's input_audio parts",
                    code="invalid_value",
                    param=param,
                )
            if any(p.audio is None for p in self.content):
                raise ProtocolError(
                    "an item with audio holds audio parts only",
                    code="invalid_value",
                    param="item.content",
                )
            parts.append(part.audio)
        return parts


class FunctionCallIn(_Lenient):
    """A function call item (a client rebuilding a conversation adds its own)."""

    id: ItemId | None = None
    type: Literal["function_call"]
    call_id: Name
    name: ToolName
    arguments: str = Field(default="{}", max_length=MAX_TEXT_CHARS)


class FunctionCallOutputIn(_Lenient):
    """The result of a function call the model made, from the client that ran it."""

    id: ItemId | None = None
    type: Literal["function_call_output"]
    call_id: Name
    output: str = Field(max_length=MAX_TEXT_CHARS)


ConversationItemIn = Annotated[
    ItemIn | FunctionCallIn | FunctionCallOutputIn, Field(discriminator="type")
]


class ItemCreate(_ClientEvent):
    type: Literal["conversation.item.create"]
    previous_item_id: Name | None = None
    item: ConversationItemIn


class ItemDelete(_Lenient):
    type: Literal["conversation.item.delete"]
    event_id: Name | None = None
    item_id: Name


class OutputAudioClear(_ClientEvent):
    """WebRTC only: drop the reply audio the server has not played yet."""

    type: Literal["output_audio_buffer.clear"]


class StatsRequest(_ClientEvent):
    """voxwire's own: ask for the session's audio counters ('nothing lost', checkable)."""

    type: Literal["voxwire.session.stats"]


ClientEvent = (
    SessionUpdate
    | AudioAppend
    | AudioCommit
    | AudioClear
    | ResponseCreate
    | ResponseCancel
    | ItemTruncate
    | ItemCreate
    | ItemDelete
    | OutputAudioClear
    | StatsRequest
)

_CLIENT_EVENTS: dict[str, type[ClientEvent]] = {
    "session.update": SessionUpdate,
    "input_audio_buffer.append": AudioAppend,
    "input_audio_buffer.commit": AudioCommit,
    "input_audio_buffer.clear": AudioClear,
    "response.create": ResponseCreate,
    "response.cancel": ResponseCancel,
    "conversation.item.truncate": ItemTruncate,
    "conversation.item.create": ItemCreate,
    "conversation.item.delete": ItemDelete,
    "output_audio_buffer.clear": OutputAudioClear,
    "voxwire.session.stats": StatsRequest,
}


def parse_client_event(text: str) -> ClientEvent:
    """A text frame as a client event, or a ProtocolError saying what is wrong."""
    try:
        raw = loads_bounded(text)
    except json.JSONDecodeError as exc:
        raise ProtocolError(f"the event is not valid JSON: {exc.msg}", code="invalid_json") from exc
    except JsonTooDeep as exc:
        raise ProtocolError(exc.message, code=exc.code) from exc
    if not isinstance(raw, dict):
        raise ProtocolError("an event must be a JSON object", code="invalid_json")
    kind = raw.get("type")
    if not isinstance(kind, str):
        raise ProtocolError(
            "the event has no 'type'", code="missing_required_parameter", param="type"
        )
    model = _CLIENT_EVENTS.get(kind)
    if model is None:
        raise ProtocolError(
            f"unknown or unsupported event type {kind!r}", code="invalid_value", param="type"
        )
    try:
        return model.model_validate(raw)
    except ValidationError as exc:
        first = exc.errors()[0]
        param = ".".join(str(part) for part in first["loc"])
        raise ProtocolError(
            f"invalid {kind} event: {param}: {first['msg']}", code="invalid_value", param=param
        ) from exc


def client_event_id(text: str) -> str | None:
    """The event_id of a (possibly invalid) client event, for the error that answers it."""
    try:
        raw = loads_bounded(text)
    except (json.JSONDecodeError, JsonTooDeep):
        return None
    event_id = raw.get("event_id") if isinstance(raw, dict) else None
    return event_id if isinstance(event_id, str) else None


def decode_pcm16(data: bytes, *, param: str | None = "audio") -> bytes:
    """Check that raw bytes are whole PCM16 samples."""
    if len(data) % 2:
        raise ProtocolError(
            f"audio must be whole 16-bit samples: {len(data)} bytes is an odd count",
            code="invalid_audio",
            param=param,
        )
    return data


def decode_base64_bytes(text: str) -> bytes:
    """The bytes of an append event's base64 `audio`."""
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise ProtocolError(
            "audio is not valid base64", code="invalid_audio", param="audio"
        ) from exc


def input_pcm16(data: bytes, encoding: AudioEncoding, *, param: str | None = "audio") -> bytes:
    """Input audio in the session's format as PCM16 (G.711 decoded)."""
    if encoding == "audio/pcm":
        return decode_pcm16(data, param=param)
    return g711.decode(data, encoding)


def decode_base64_audio(text: str) -> bytes:
    """Base64 PCM16 LE mono from an append event."""
    return decode_pcm16(decode_base64_bytes(text))


def format_wire(encoding: AudioEncoding, rate: int) -> dict[str, Any]:
    """A `format` object as the API shows it (G.711 has no rate field)."""
    return {"type": encoding, "rate": rate} if encoding == "audio/pcm" else {"type": encoding}


# -- session configuration --------------------------------------------------------------


@dataclass(frozen=True)
class TurnDetectionConfig:
    type: Literal["server_vad", "semantic_vad"] = "server_vad"
    eagerness: Eagerness = "auto"
    threshold: float = 0.5
    prefix_padding_ms: int = 300
    silence_duration_ms: int = 500
    create_response: bool = True
    interrupt_response: bool = True
    idle_timeout_ms: int | None = None


CLASSIFIERS = ("wake_word", "speaker", "sentiment", "intent")
"""What `voxwire.classifiers` may name, in the order session.updated lists them."""


@dataclass(frozen=True)
class WakeWordConfig:
    """When a wake-word score counts as a detection."""

    threshold: float = 0.5
    refractory_ms: int = 2000
    """After a detection, the same wake word is not reported again for this long."""
    names: tuple[str, ...] | None = None
    """The wake words that count; None: every wake word of the model."""

    def to_wire(self) -> dict[str, Any]:
        return {
            "threshold": self.threshold,
            "refractory_ms": self.refractory_ms,
            "names": None if self.names is None else list(self.names),
        }


@dataclass(frozen=True)
class ClassificationConfig:
    """The live classification a session asked for (voxwire's own session fields)."""

    classifiers: tuple[str, ...] = ()
    wake_word_gate: bool = False
    wake_words: WakeWordConfig = field(default_factory=WakeWordConfig)
    speaker_threshold: float = 0.75
    """Cosine similarity under which a voice is "unknown"."""

    @property
    def detects_wake_words(self) -> bool:
        """Wake-word detection runs for the classifier and for the gate."""
        return self.wake_word_gate or "wake_word" in self.classifiers

    def to_wire(self) -> dict[str, Any]:
        """The `voxwire.*` fields of the session object."""
        return {
            "voxwire.classifiers": list(self.classifiers),
            "voxwire.wake_word_gate": self.wake_word_gate,
            "voxwire.wake_words": self.wake_words.to_wire(),
            "voxwire.speakers": {"threshold": self.speaker_threshold},
        }


@dataclass(frozen=True)
class OutputConfig:
    """How replies sound: the rate of their PCM16, the voice and the speaking rate."""

    rate: int = DEFAULT_OUTPUT_RATE
    encoding: AudioEncoding = "audio/pcm"
    voice: str = "alloy"
    """OpenAI's voice names select the TTS model's default voice; its own names pick one."""
    speed: float = 1.0

    def to_wire(self) -> dict[str, Any]:
        return {
            "format": format_wire(self.encoding, self.rate),
            "voice": self.voice,
            "speed": self.speed,
        }


@dataclass(frozen=True)
class SessionConfig:
    """A Realtime session's settings as the API shows them."""

    type: Literal["transcription", "realtime"]
    session_id: str
    model: str
    """The recogniser's name (transcription.model as shown to the client)."""
    realtime_model: str | None = None
    input_rate: int = DEFAULT_INPUT_RATE
    input_encoding: AudioEncoding = "audio/pcm"
    language: str | None = None
    prompt: str = ""
    turn_detection: TurnDetectionConfig | None = field(default_factory=TurnDetectionConfig)
    instructions: str = ""
    classification: ClassificationConfig = field(default_factory=ClassificationConfig)
    output: OutputConfig = field(default_factory=lambda: OutputConfig())
    output_modalities: tuple[Modality, ...] = ("audio",)
    tentative_transcripts: bool = False
    """voxwire.transcription.tentative events: the uncommitted hypothesis, opt-in."""
    tools: tuple[FunctionTool, ...] = ()
    tool_choice: str = "auto"
    """auto, none, required, or the name of the one function the model must call."""

    @property
    def responds(self) -> bool:
        """Whether committed turns get spoken replies (realtime sessions only)."""
        return self.type == "realtime"

    def session_options(self, base: SessionOptions | None = None) -> SessionOptions:
        """The engine options this configuration asks for."""
        base = base or SessionOptions()
        turn = self.turn_detection or TurnDetectionConfig()
        segmenter = replace(
            base.segmenter,
            threshold=turn.threshold,
            prefix_padding_ms=turn.prefix_padding_ms,
            silence_duration_ms=turn.silence_duration_ms,
        )
        semantic = None
        if self.turn_detection is not None and self.turn_detection.type == "semantic_vad":
            semantic = SemanticTurnOptions.for_eagerness(self.turn_detection.eagerness)
        return replace(
            base,
            input_rate=self.input_rate,
            server_vad=self.turn_detection is not None,
            segmenter=segmenter,
            semantic_turn=semantic,
            language=self.language,
            prompt=self.prompt,
            tentative=self.tentative_transcripts,
        )

    def to_wire(self) -> dict[str, Any]:
        """The `session` object of session.created and session.updated."""
        turn: dict[str, Any] | None = None
        td = self.turn_detection
        if td is not None and td.type == "semantic_vad":
            turn = {
                "type": "semantic_vad",
                "eagerness": td.eagerness,
                "create_response": td.create_response,
                "interrupt_response": td.interrupt_response,
            }
        elif td is not None:
            turn = {
                "type": "server_vad",
                "threshold": td.threshold,
                "prefix_padding_ms": td.prefix_padding_ms,
                "silence_duration_ms": td.silence_duration_ms,
                "create_response": td.create_response,
                "interrupt_response": td.interrupt_response,
                "idle_timeout_ms": td.idle_timeout_ms,
            }
        audio_input = {
            "format": format_wire(self.input_encoding, self.input_rate),
            "transcription": {
                "model": self.model,
                "language": self.language,
                "prompt": self.prompt,
            },
            "turn_detection": turn,
            "noise_reduction": None,
        }
        if self.type == "transcription":
            return {
                "type": "transcription",
                "object": "realtime.transcription_session",
                "id": self.session_id,
                "audio": {"input": audio_input},
                "include": None,
                **self.classification.to_wire(),
                "voxwire": self._voxwire_wire(),
            }
        return {
            "type": "realtime",
            "object": "realtime.session",
            "id": self.session_id,
            "model": self.realtime_model,
            "instructions": self.instructions,
            "output_modalities": list(self.output_modalities),
            "audio": {"input": audio_input, "output": self.output.to_wire()},
            "tools": [t.to_wire() for t in self.tools],
            "tool_choice": self.tool_choice
            if self.tool_choice in ("auto", "none", "required")
            else {"type": "function", "name": self.tool_choice},
            **self.classification.to_wire(),
            "voxwire": self._voxwire_wire(),
        }

    def _voxwire_wire(self) -> dict[str, Any]:
        return {"tentative_transcripts": self.tentative_transcripts}


@dataclass(frozen=True)
class ModelCatalogue:
    """What a session may ask for: the recogniser's name and whether it knows languages
    other than English."""

    asr_name: str
    multilingual: bool
    voices: tuple[str, ...] = ()
    """The TTS model's own voice names (OpenAI's names are always accepted)."""


def apply_update(
    config: SessionConfig, update: SessionSettings, catalogue: ModelCatalogue
) -> SessionConfig:
    """The configuration after a session.update: only fields present change, and an
    explicit null turn_detection switches server VAD off."""
    changes: dict[str, Any] = {}
    if update.type is not None and update.type != config.type:
        how = "?intent=transcription" if update.type == "transcription" else "?model=..."
        raise ProtocolError(
            f"a {config.type} session cannot become a {update.type} session; connect with {how}",
            code="invalid_value",
            param="session.type",
        )
    if update.instructions is not None:
        changes["instructions"] = update.instructions
    if update.output_modalities is not None:
        changes["output_modalities"] = tuple(update.output_modalities)
    audio_input = update.audio.input if update.audio is not None else None
    if audio_input is not None:
        fields = audio_input.model_fields_set
        if "format" in fields and audio_input.format is not None:
            changes["input_encoding"] = audio_input.format.type
            changes["input_rate"] = _format_rate(audio_input.format, "input")
        if "transcription" in fields and audio_input.transcription is not None:
            changes.update(_transcription_changes(audio_input.transcription, catalogue))
        if "turn_detection" in fields:
            changes["turn_detection"] = _turn_detection(
                audio_input.turn_detection, config.turn_detection
            )
    audio_output = update.audio.output if update.audio is not None else None
    if audio_output is not None:
        changes["output"] = _output(audio_output, config.output, catalogue)
    if update.voxwire is not None and update.voxwire.tentative_transcripts is not None:
        changes["tentative_transcripts"] = update.voxwire.tentative_transcripts
    classification = _classification(update, config.classification)
    if classification != config.classification:
        changes["classification"] = classification
    new = replace(config, **changes)
    tools, choice = tool_settings(update, new, "session")
    return replace(new, tools=tools, tool_choice=choice)


def tool_settings(
    settings: SessionSettings | ResponseSettings, config: SessionConfig, where: str
) -> tuple[tuple[FunctionTool, ...], str]:
    """The tools and tool_choice `settings` ask for (the session's where they are not
    given), checked; `where` ("session" or "response") prefixes the error's param."""
    fields = settings.model_fields_set
    tools = _tools(settings.tools or [], where) if "tools" in fields else config.tools
    choice: str = config.tool_choice
    if "tool_choice" in fields:
        given = settings.tool_choice or "auto"
        choice = given if isinstance(given, str) else given.name
    if choice not in ("auto", "none", "required") and choice not in {t.name for t in tools}:
        raise ProtocolError(
            f"tool_choice names the function {choice!r}, which is not in tools",
            code="invalid_value",
            param=f"{where}.tool_choice",
        )
    return tools, choice


def _tools(tools: list[FunctionToolIn], where: str) -> tuple[FunctionTool, ...]:
    """`tools` checked: unique names, parameters an object's JSON schema."""
    out: list[FunctionTool] = []
    for index, tool in enumerate(tools):
        param = f"{where}.tools.{index}"
        if any(t.name == tool.name for t in out):
            raise ProtocolError(
                f"two tools are named {tool.name!r}", code="invalid_value", param=f"{param}.name"
            )
        try:
            jsonschema_rs.meta.validate(tool.parameters)
        except (jsonschema_rs.ValidationError, jsonschema_rs.ReferencingError, ValueError) as exc:
            first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            raise ProtocolError(
                f"the parameters of tool {tool.name!r} are not a valid JSON schema: {first}",
                code="invalid_value",
                param=f"{param}.parameters",
            ) from exc
        if tool.parameters.get("type") != "object":
            raise ProtocolError(
                f"the parameters of tool {tool.name!r} must be an object's schema "
                '({"type": "object", "properties": {...}})',
                code="invalid_value",
                param=f"{param}.parameters",
            )
        out.append(FunctionTool(tool.name, tool.description, tool.parameters))
    return tuple(out)


def _format_rate(fmt: AudioFormat, direction: Literal["input", "output"]) -> int:
    """The rate a format stands for: G.711 is 8 kHz, PCM takes a supported rate."""
    if fmt.type == "audio/pcm":
        return _supported_rate(fmt.rate, direction)
    if "rate" in fmt.model_fields_set and fmt.rate != G711_RATE:
        raise ProtocolError(
            f"{fmt.type} is 8000 Hz G.711; leave out the rate",
            code="unsupported_sample_rate",
            param=f"session.audio.{direction}.format.rate",
        )
    return G711_RATE


def _supported_rate(rate: int, direction: Literal["input", "output"]) -> int:
    if rate not in SUPPORTED_INPUT_RATES:
        raise ProtocolError(
            f"unsupported {direction} rate {rate} Hz; voxwire takes "
            + ", ".join(str(r) for r in sorted(SUPPORTED_INPUT_RATES)),
            code="unsupported_sample_rate",
            param=f"session.audio.{direction}.format.rate",
        )
    return rate


def _output(update: AudioOutput, current: OutputConfig, catalogue: ModelCatalogue) -> OutputConfig:
    values: dict[str, Any] = {}
    if update.format is not None:
        values["encoding"] = update.format.type
        values["rate"] = _format_rate(update.format, "output")
    if update.voice is not None:
        voice = update.voice
        if voice.lower() not in OPENAI_VOICES and voice not in catalogue.voices:
            raise ProtocolError(
                f"unknown voice {voice!r}; use one of OpenAI's voices "
                f"({', '.join(sorted(OPENAI_VOICES))}) or one of the TTS model's: "
                + ", ".join(catalogue.voices),
                code="invalid_value",
                param="session.audio.output.voice",
            )
        values["voice"] = voice
    if update.speed is not None:
        values["speed"] = update.speed
    return replace(current, **values)


def _classification(update: SessionSettings, current: ClassificationConfig) -> ClassificationConfig:
    """The live classification after an update (only the fields present change; null
    resets a field to its default)."""
    fields = update.model_fields_set
    new = current
    if "classifiers" in fields:
        names = update.classifiers or []
        unknown = [n for n in names if n not in CLASSIFIERS]
        if unknown:
            raise ProtocolError(
                f"unknown classifier {unknown[0]!r}; voxwire.classifiers takes "
                + ", ".join(CLASSIFIERS),
                code="invalid_value",
                param="session.voxwire.classifiers",
            )
        new = replace(new, classifiers=tuple(c for c in CLASSIFIERS if c in names))
    if "wake_word_gate" in fields:
        new = replace(new, wake_word_gate=bool(update.wake_word_gate))
    if "wake_words" in fields:
        new = replace(new, wake_words=_wake_words(update.wake_words, current.wake_words))
    if "speakers" in fields:
        if update.speakers is None:
            new = replace(new, speaker_threshold=ClassificationConfig().speaker_threshold)
        elif update.speakers.threshold is not None:
            new = replace(new, speaker_threshold=update.speakers.threshold)
    return new


def _wake_words(update: WakeWordSettings | None, current: WakeWordConfig) -> WakeWordConfig:
    if update is None:
        return WakeWordConfig()
    values: dict[str, Any] = {
        name: getattr(update, name)
        for name in update.model_fields_set & {"threshold", "refractory_ms"}
        if getattr(update, name) is not None
    }
    if "names" in update.model_fields_set:
        names = update.names
        if names is not None and not names:
            raise ProtocolError(
                "voxwire.wake_words.names must name at least one wake word (or be null: all)",
                code="invalid_value",
                param="session.voxwire.wake_words.names",
            )
        values["names"] = None if names is None else tuple(dict.fromkeys(names))
    return replace(current, **values)


def check_wake_words(config: ClassificationConfig, available: tuple[str, ...]) -> None:
    """Raise a ProtocolError if `config` names a wake word the model does not know."""
    unknown = [n for n in config.wake_words.names or () if n not in available]
    if unknown:
        raise ProtocolError(
            f"unknown wake word {unknown[0]!r}; the wake-word model knows " + ", ".join(available),
            code="invalid_value",
            param="session.voxwire.wake_words.names",
        )


def _transcription_changes(
    settings: TranscriptionSettings, catalogue: ModelCatalogue
) -> dict[str, Any]:
    changes: dict[str, Any] = {}
    fields = settings.model_fields_set
    model = settings.model
    if (
        model is not None
        and model != catalogue.asr_name
        and model not in OPENAI_TRANSCRIPTION_MODELS
    ):
        raise ProtocolError(
            f"unknown transcription model {model!r}: this server runs {catalogue.asr_name!r} "
            "(OpenAI's model names select it too)",
            code="model_not_found",
            param="session.audio.input.transcription.model",
        )
    if "language" in fields:
        language = settings.language or None
        if language is not None and language != "en" and not catalogue.multilingual:
            raise ProtocolError(
                f"{catalogue.asr_name} knows only English; configure a multilingual "
                f"Whisper model to transcribe {language!r}",
                code="unsupported_language",
                param="session.audio.input.transcription.language",
            )
        changes["language"] = language
    if "prompt" in fields:
        changes["prompt"] = settings.prompt or ""
    return changes


def _turn_detection(
    update: TurnDetection | None, current: TurnDetectionConfig | None
) -> TurnDetectionConfig | None:
    if update is None:
        return None
    base = current or TurnDetectionConfig()
    kind = update.type if "type" in update.model_fields_set else base.type
    if update.eagerness is not None and kind != "semantic_vad":
        raise ProtocolError(
            "eagerness is a semantic_vad setting; server_vad takes threshold, "
            "prefix_padding_ms and silence_duration_ms",
            code="invalid_value",
            param="session.audio.input.turn_detection.eagerness",
        )
    if kind != base.type:  # a change of type starts from that type's defaults
        base = replace(TurnDetectionConfig(), type=kind)
    values = {
        name: value
        for name in update.model_fields_set
        if name != "type" and (value := getattr(update, name)) is not None
    }
    new = replace(base, **values)
    try:
        SegmenterOptions(
            threshold=new.threshold,
            prefix_padding_ms=new.prefix_padding_ms,
            silence_duration_ms=new.silence_duration_ms,
        )
    except ValueError as exc:
        raise ProtocolError(
            str(exc), code="invalid_value", param="session.audio.input.turn_detection"
        ) from exc
    return new
