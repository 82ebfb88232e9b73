"""OpenAI's audio API over HTTP, as the official `openai` SDK calls it.

* ``POST /v1/audio/transcriptions`` (multipart): ``file`` in anything PyAV
  decodes, ``model``, ``language``, ``prompt``, ``temperature``,
  ``response_format`` (json, text, srt, verbose_json, vtt),
  ``timestamp_granularities[]`` (word, segment; verbose_json only; words are
  aligned only when asked for) and ``stream`` (server-sent
  ``transcript.text.delta`` events, one per segment, then ``transcript.text.done``;
  they leave once the whole file is transcribed, since ``AsrModel.transcribe``
  returns a complete Transcription rather than segments as they are decoded).
* ``POST /v1/audio/translations``: the same without granularities or streaming;
  speech in any language becomes English text. Translating needs a multilingual
  Whisper model; an English-only one (the embedded ``whisper-tiny.en``)
  transcribes English speech, which is its own English translation, and cannot
  detect or translate anything else. Clients may send ``language`` (not in
  OpenAI's API) to name the source language: with an English-only model any
  language but ``en`` gets a 400 naming the multilingual model to configure.
* ``POST /v1/audio/speech`` (JSON): ``input`` (1 to 4096 characters), ``voice``
  (OpenAI's voice names select the model's default voice; the model's own voice
  names are accepted too), ``response_format`` (mp3, opus, aac, flac, wav, pcm;
  all 24 kHz mono; and voxwire's pcmu and pcma, raw 8 kHz G.711), ``speed`` (0.25
  to 4) and ``stream_format`` (``audio`` or
  ``sse``: ``speech.audio.delta`` events with base64 audio, then
  ``speech.audio.done``). The answer streams sentence by sentence: each sentence
  is synthesised by one call on the TTS model's worker and waits in a bounded
  queue, so a slow reader slows synthesis down and a client that goes away stops
  it. ``speech.audio.done`` reports ``usage`` with the input's characters as
  ``input_tokens`` (voxwire has no tokeniser; OpenAI bills TTS by character).
* ``GET /v1/models`` and ``GET /v1/models/{id}``: the model catalogue in
  OpenAI's list shape, with voxwire's ``task``, ``backend``, ``loaded``,
  ``description`` and ``licence``.

Inference runs on the models' workers through :meth:`Runtime.call`, decoding of
uploads in a thread, bounded by the server's :class:`AudioLimits`; errors are
voxwire errors that the app turns into OpenAI's error shape. A transcription runs
as a series of calls, one recogniser window (30 s) each, so a long file shares the
worker's queue with other requests window by window, and a request that is
cancelled (its client hung up) stops inside the window on the worker, at its next
model step (encode, generate, align), and its queued windows are never run.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import itertools
import json
import logging
import threading
import time
from collections.abc import AsyncGenerator, AsyncIterator, Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Annotated, Any, Final, Literal, TypeVar

from fastapi import APIRouter, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, StreamingResponse
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StrictFloat,
    StrictStr,
    ValidationError,
    field_validator,
)
from starlette.datastructures import UploadFile
from starlette.exceptions import HTTPException

from voxwire.engine.errors import (
    InvalidAudio,
    InvalidValue,
    LocalError,
    ModelNotFound,
    PeerError,
    UnsupportedMediaType,
    VoxwireError,
)
from voxwire.models.interfaces import (
    AudioArray,
    SpeechSynthesizer,
    TranscribeOptions,
    Transcription,
)
from voxwire.services.audio_encoding import MEDIA_TYPES as AUDIO_MEDIA_TYPES
from voxwire.services.audio_encoding import AudioFormat
from voxwire.services.formats import (
    LANGUAGE_NAMES,
    MEDIA_TYPES,
    ResponseFormat,
    render,
    verbose_json,
)
from voxwire.services.media import AudioLimits, decode_audio
from voxwire.services.runtime import OPENAI_ALIASES, CatalogEntry, Runtime
from voxwire.services.speech import SpeechJob
from voxwire.services.transcription import WindowedTranscription
from voxwire.services.voices import model_voice
from voxwire.transports.http.form_fields import FormBool, FormFloat

if TYPE_CHECKING:
    from voxwire.transports.http.settings import ServerSettings

log = logging.getLogger(__name__)

ASR: Final = "automatic-speech-recognition"
TTS: Final = "text-to-speech"

MAX_SPEECH_CHARS: Final = 4096
"""OpenAI's limit on the `input` of a speech request."""

MAX_PROMPT_CHARS: Final = 1024
"""The transcription `prompt` (Whisper reads at most 224 tokens of it)."""

MAX_NAME_CHARS: Final = 256
"""`model`, `language`, `voice` and other names."""

MAX_INSTRUCTIONS_CHARS: Final = 4096

SPEECH_QUEUE_CHUNKS: Final = 4
"""Encoded sentences that may wait for a slow client before synthesis pauses."""

MULTILINGUAL_HINT: Final = (
    "configure a multilingual Whisper model, e.g. a CTranslate2 conversion of "
    "openai/whisper-small (`voxwire serve --model DIR` or the configuration file)"
)

FormT = TypeVar("FormT", bound=BaseModel)


class ModelFailed(LocalError, code="model_error"):
    """A model raised something unexpected; the peer learns only that it failed."""


class UnsupportedLanguage(PeerError, code="unsupported_language"):
    """A language the code does not name, or that the model cannot handle."""


# -- request bodies ------------------------------------------------------------------------


class AudioForm(BaseModel):
    """The form fields shared by transcriptions and translations (numbers and booleans
    strictly typed: :mod:`voxwire.transports.http.form_fields`)."""

    model_config = ConfigDict(extra="ignore")

    model: str | None = Field(default=None, max_length=MAX_NAME_CHARS)
    language: str | None = Field(default=None, max_length=MAX_NAME_CHARS)
    prompt: str | None = Field(default=None, max_length=MAX_PROMPT_CHARS)
    response_format: ResponseFormat = ResponseFormat.JSON
    temperature: FormFloat = Field(default=0.0, ge=0.0, le=1.0)


class TranscriptionForm(AudioForm):
    """`POST /v1/audio/transcriptions` fields besides the file."""

    timestamp_granularities: list[Literal["word", "segment"]] = Field(default_factory=list)
    stream: FormBool = False


class TranslationForm(AudioForm):
    """`POST /v1/audio/translations` fields besides the file (`language` is voxwire's)."""


class VoiceRef(BaseModel):
    """A voice given as an object, as the SDK allows for custom voices."""

    id: str = Field(max_length=MAX_NAME_CHARS)


class SpeechRequest(BaseModel):
    """`POST /v1/audio/speech` body."""

    model_config = ConfigDict(extra="ignore")

    model: str | None = Field(default=None, max_length=MAX_NAME_CHARS)
    input: StrictStr = Field(min_length=1, max_length=MAX_SPEECH_CHARS)
    voice: Annotated[str, Field(max_length=MAX_NAME_CHARS)] | VoiceRef | None = None
    response_format: AudioFormat = AudioFormat.MP3
    speed: StrictFloat = Field(default=1.0, ge=0.25, le=4.0)
    stream_format: Literal["audio", "sse"] = "audio"
    instructions: str | None = Field(default=None, max_length=MAX_INSTRUCTIONS_CHARS)
    """Accepted and ignored, as by OpenAI's tts-1."""

    @field_validator("input")
    @classmethod
    def _speakable(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("input has no text to speak")
        return value


class ModelCard(BaseModel):
    """One model in OpenAI's shape plus what voxwire knows about it."""

    id: str
    object: Literal["model"] = "model"
    created: int
    owned_by: str = "voxwire"
    task: str
    backend: str
    loaded: bool
    description: str
    licence: str


class ModelList(BaseModel):
    """`GET /v1/models`."""

    object: Literal["list"] = "list"
    data: list[ModelCard]


# -- uploads -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Upload:
    """A multipart request: the file's bytes and the other fields."""

    data: bytes
    fields: dict[str, str | list[str]]


LIST_FIELDS: Final = frozenset({"timestamp_granularities", "include", "known_speaker_names"})


async def read_upload(request: Request) -> Upload:
    """The `file` part and the other fields of a multipart/form-data request."""
    content_type = request.headers.get("content-type", "")
    if not content_type.startswith("multipart/form-data"):
        raise UnsupportedMediaType(
            f"send multipart/form-data with the audio in a 'file' field, not {content_type!r}"
        )
    try:
        form = await request.form(max_files=4, max_fields=64)
    except HTTPException as exc:
        raise PeerError(f"malformed multipart body: {exc.detail}") from None
    try:
        file = form.get("file")
        if not isinstance(file, UploadFile):
            raise PeerError("the 'file' field with the audio is missing", param="file")
        data = await file.read()
        fields: dict[str, str | list[str]] = {}
        for key in form:
            name = key.removesuffix("[]")
            values = [v for v in form.getlist(key) if isinstance(v, str)]
            if name != "file" and values:
                fields[name] = values if name in LIST_FIELDS else values[-1]
        return Upload(data, fields)
    finally:
        await form.close()


def parse_form(model: type[FormT], fields: Mapping[str, str | list[str]]) -> FormT:
    """Validate form fields (empty ones count as absent) into `model`; 400 when invalid."""
    present = {k: v for k, v in fields.items() if v not in ("", [])}
    try:
        return model.model_validate(present)
    except ValidationError as exc:
        raise RequestValidationError(exc.errors()) from None


async def decode_upload(upload: Upload, max_bytes: int, limits: AudioLimits) -> AudioArray:
    """The upload as 16 kHz mono float32, decoded in a thread (never on the loop) within
    `limits`; cancelling the caller stops the thread at its next frame."""
    if not upload.data:
        raise InvalidAudio("the uploaded file is empty (0 bytes)", param="file")
    return await decode_in_thread(upload.data, max_bytes, limits, param="file")


async def decode_in_thread(
    data: bytes, max_bytes: int, limits: AudioLimits, *, param: str | None
) -> AudioArray:
    """decode_audio in a thread that stops when the awaiting task is cancelled."""
    cancelled = threading.Event()
    try:
        return await asyncio.to_thread(
            decode_audio, data, max_bytes=max_bytes, limits=limits, cancelled=cancelled
        )
    except PeerError as exc:  # InvalidAudio, PayloadTooLarge
        exc.param = exc.param or param
        raise
    finally:
        cancelled.set()  # nobody waits any more: the decode thread stops


# -- speech recognition --------------------------------------------------------------------


@contextlib.contextmanager
def model_failures(what: str) -> Iterator[None]:
    """Let voxwire errors through; log anything else a model raises as ModelFailed."""
    try:
        yield
    except VoxwireError:
        raise
    except Exception as exc:
        log.exception("%s failed", what)
        raise ModelFailed(f"{what} failed") from exc


def check_language(entry: CatalogEntry, language: str | None, action: str) -> str | None:
    """The request's language as a Whisper code, refused if the model cannot do it."""
    if language is None:
        return None
    code = language.strip().lower()
    if code not in LANGUAGE_NAMES:
        raise UnsupportedLanguage(
            f"unknown language {language!r}; give an ISO-639-1 code such as 'en'",
            param="language",
        )
    if code != "en" and not getattr(entry.model, "multilingual", True):
        raise UnsupportedLanguage(
            f"model {entry.spec.id} is English-only and cannot {action} "
            f"{LANGUAGE_NAMES[code]} speech; {MULTILINGUAL_HINT}",
            param="language",
        )
    return code


async def transcribe(
    runtime: Runtime, entry: CatalogEntry, audio: AudioArray, options: TranscribeOptions
) -> Transcription:
    """Run one offline transcription on the entry's worker, window by window, and log it
    (:class:`~voxwire.services.transcription.WindowedTranscription`: cancelling the
    caller leaves at most the running model step)."""
    started = time.perf_counter()
    with model_failures(f"{options.task} with {entry.spec.id}"):
        result = await WindowedTranscription(runtime, entry, audio, options).result()
    log.info(
        "%s with %s: %.1f s of audio, %d segments, in %.2f s",
        options.task,
        entry.spec.id,
        result.duration,
        len(result.segments),
        time.perf_counter() - started,
    )
    return result


def duration_usage(result: Transcription) -> dict[str, Any]:
    """OpenAI's duration usage of a transcription."""
    return {"type": "duration", "seconds": round(result.duration, 3)}


def transcript_response(
    result: Transcription,
    fmt: ResponseFormat,
    *,
    task: Literal["transcribe", "translate"],
    granularities: list[Literal["word", "segment"]] | None = None,
) -> Response:
    """The transcription in `fmt`; usage only where OpenAI's transcription has it."""
    if fmt is ResponseFormat.JSON:
        body: dict[str, Any] = {"text": result.text.strip()}
        if task == "transcribe":
            body["usage"] = duration_usage(result)
        return JSONResponse(body)
    if fmt is ResponseFormat.VERBOSE_JSON:
        granularities = granularities or []
        body = verbose_json(result, task=task, word_timestamps="word" in granularities)
        if granularities and "segment" not in granularities:
            del body["segments"]
        if task == "transcribe":
            body["usage"] = duration_usage(result)
        return JSONResponse(body)
    return Response(render(result, fmt), media_type=MEDIA_TYPES[fmt])


def sse(event: Mapping[str, Any]) -> bytes:
    """One server-sent event carrying `event` as JSON."""
    return f"data: {json.dumps(event, ensure_ascii=False)}\n\n".encode()


async def transcript_events(
    runtime: Runtime, entry: CatalogEntry, audio: AudioArray, options: TranscribeOptions
) -> AsyncIterator[bytes]:
    """`transcript.text.delta` per segment as the recogniser decodes it, then
    `transcript.text.done`; the deltas concatenate to the done event's text.

    Each window is decoded by its own call on the model's worker, so the first
    delta leaves while later windows are still to be decoded, and a client that
    goes away stops the decoding.
    """
    started = time.perf_counter()
    run = WindowedTranscription(runtime, entry, audio, options)
    text = ""
    count = 0
    with model_failures(f"streamed {options.task} with {entry.spec.id}"):
        async with contextlib.aclosing(run.segments()) as segments:
            async for segment in segments:
                count += 1
                if not segment.text:
                    continue
                delta = f" {segment.text}" if text else segment.text
                text += delta
                yield sse({"type": "transcript.text.delta", "delta": delta})
    yield sse({"type": "transcript.text.done", "text": text})
    log.info(
        "streamed %s with %s: %d segments in %.2f s",
        options.task,
        entry.spec.id,
        count,
        time.perf_counter() - started,
    )


# -- speech synthesis ----------------------------------------------------------------------


def pick_voice(model: SpeechSynthesizer, requested: str | VoiceRef | None) -> str | None:
    """The model's voice for a request: None (the default) for OpenAI's names."""
    return model_voice(requested.id if isinstance(requested, VoiceRef) else requested, model.voices)


@dataclass(frozen=True)
class _Failed:
    error: BaseException


_END: Final = None
_task_ids = itertools.count(1)


class SpeechStream:
    """Runs a SpeechJob on the model's worker, sentence by sentence, into a bounded
    queue; iterate :meth:`chunks` for the bytes and call :meth:`close` when done."""

    def __init__(self, runtime: Runtime, entry: CatalogEntry, job: SpeechJob) -> None:
        self.job = job
        self._runtime = runtime
        self._entry = entry
        self._queue: asyncio.Queue[bytes | _Failed | None] = asyncio.Queue(SPEECH_QUEUE_CHUNKS)
        self._task = asyncio.create_task(self._produce(), name=f"speech-{next(_task_ids)}")

    async def _produce(self) -> None:
        try:
            while (chunk := await self._runtime.call(self._entry, self.job.step)) is not None:
                if chunk:
                    await self._queue.put(chunk)
        except Exception as exc:  # handed to the reader, which raises it
            await self._queue.put(_Failed(exc))
        else:
            await self._queue.put(_END)

    async def chunks(self) -> AsyncIterator[bytes]:
        """The encoded bytes, sentence by sentence; raises what synthesis raised."""
        while (item := await self._queue.get()) is not _END:
            if isinstance(item, _Failed):
                raise item.error
            yield item

    def close(self) -> None:
        """Stop synthesis (a sentence already on the worker finishes, unread)."""
        self._task.cancel()


async def audio_body(stream: SpeechStream) -> AsyncGenerator[bytes, None]:
    """The audio bytes as they come; closing the body stops synthesis."""
    started = time.perf_counter()
    sent = 0
    try:
        async for chunk in stream.chunks():
            sent += len(chunk)
            yield chunk
    except Exception as exc:
        if sent:
            log.warning("speech synthesis failed mid-stream, cutting the response: %r", exc)
        raise
    finally:
        stream.close()
        _log_speech(stream.job, sent, started)


async def sse_body(stream: SpeechStream) -> AsyncGenerator[bytes, None]:
    """`speech.audio.delta` events with base64 audio, then `speech.audio.done`; a
    failure after the first event becomes an `error` event."""
    started = time.perf_counter()
    sent = 0
    try:
        async for chunk in stream.chunks():
            yield sse({"type": "speech.audio.delta", "audio": base64.b64encode(chunk).decode()})
            sent += len(chunk)
        chars = len(stream.job.text)
        usage = {"input_tokens": chars, "output_tokens": 0, "total_tokens": chars}
        done = {"type": "speech.audio.done", "usage": usage}
        yield sse({**done, "voxwire.audio_seconds": round(stream.job.audio_seconds, 3)})
    except Exception as exc:
        if not sent:
            raise
        log.warning("speech synthesis failed mid-stream: %r", exc)
        yield sse({"type": "error", "error": {"type": "server_error", "message": "server error"}})
    finally:
        stream.close()
        _log_speech(stream.job, sent, started)


def _log_speech(job: SpeechJob, sent: int, started: float) -> None:
    log.info(
        "speech: %d characters -> %d sentences, %.1f s of %s audio, %d bytes sent in %.2f s",
        len(job.text),
        job.sentences,
        job.audio_seconds,
        job.format,
        sent,
        time.perf_counter() - started,
    )


async def _prepend(first: bytes | None, rest: AsyncIterator[bytes]) -> AsyncIterator[bytes]:
    if first is not None:
        yield first
    async for chunk in rest:
        yield chunk


async def start_speech(
    runtime: Runtime, entry: CatalogEntry, job: SpeechJob, *, sse_events: bool
) -> Response:
    """Start synthesis and wait for the body's first bytes, so that a failure before
    any audio is an HTTP error; then stream the rest.

    The body is started here, so even a response that is never sent closes it
    (and stops synthesis) when it is dropped.
    """
    stream = SpeechStream(runtime, entry, job)
    body = sse_body(stream) if sse_events else audio_body(stream)
    try:
        with model_failures(f"speech with {entry.spec.id}"):
            first = await anext(body, None)
    except BaseException:
        await body.aclose()
        raise
    media_type = "text/event-stream" if sse_events else AUDIO_MEDIA_TYPES[job.format]
    return StreamingResponse(_prepend(first, body), media_type=media_type)


# -- the router ----------------------------------------------------------------------------


def model_card(entry: CatalogEntry, created: int) -> ModelCard:
    """One catalogue entry as OpenAI's model object."""
    spec = entry.spec
    return ModelCard(
        id=spec.id,
        created=created,
        task=spec.task,
        backend=spec.backend,
        loaded=entry.loaded,
        description=spec.description,
        licence=spec.licence,
    )


def router(
    runtime: Runtime,
    settings: ServerSettings,
    extra_models: Sequence[Callable[[int], ModelCard]] = (),
) -> APIRouter:
    """The OpenAI audio and model endpoints on `runtime`; `extra_models` make the cards
    (given the creation time) of models that are not catalogue entries, listed after it."""
    api = APIRouter(tags=["openai"])
    created = int(time.time())

    @api.post("/v1/audio/transcriptions", response_model=None)
    async def transcriptions(request: Request) -> Response:
        """Transcribe an audio file (OpenAI `audio.transcriptions.create`)."""
        upload = await read_upload(request)
        form = parse_form(TranscriptionForm, upload.fields)
        granularities = list(dict.fromkeys(form.timestamp_granularities))
        if granularities and form.response_format is not ResponseFormat.VERBOSE_JSON:
            raise InvalidValue(
                "timestamp_granularities needs response_format verbose_json",
                param="timestamp_granularities",
            )
        entry = runtime.resolve(form.model, ASR)
        await runtime.ensure_loaded(entry)
        options = TranscribeOptions(
            language=check_language(entry, form.language, "transcribe"),
            word_timestamps="word" in granularities,
            initial_prompt=form.prompt or None,
            temperature=form.temperature,
        )
        audio = await decode_upload(upload, settings.max_upload_bytes, settings.audio_limits)
        if form.stream:
            events = transcript_events(runtime, entry, audio, options)
            return StreamingResponse(events, media_type="text/event-stream")
        result = await transcribe(runtime, entry, audio, options)
        return transcript_response(
            result, form.response_format, task="transcribe", granularities=granularities
        )

    @api.post("/v1/audio/translations", response_model=None)
    async def translations(request: Request) -> Response:
        """Translate speech into English text (OpenAI `audio.translations.create`)."""
        upload = await read_upload(request)
        form = parse_form(TranslationForm, upload.fields)
        entry = runtime.resolve(form.model, ASR)
        await runtime.ensure_loaded(entry)
        language = check_language(entry, form.language, "translate")
        multilingual = bool(getattr(entry.model, "multilingual", True))
        options = TranscribeOptions(
            language=language if multilingual else "en",
            task="translate" if multilingual else "transcribe",
            initial_prompt=form.prompt or None,
            temperature=form.temperature,
        )
        audio = await decode_upload(upload, settings.max_upload_bytes, settings.audio_limits)
        result = await transcribe(runtime, entry, audio, options)
        return transcript_response(result, form.response_format, task="translate")

    @api.post("/v1/audio/speech", response_model=None)
    async def speech(body: SpeechRequest) -> Response:
        """Speak text (OpenAI `audio.speech.create`), streamed sentence by sentence."""
        entry = runtime.resolve(body.model, TTS)
        await runtime.ensure_loaded(entry)
        voice = pick_voice(entry.model, body.voice)
        job = SpeechJob(body.input, voice, body.speed, body.response_format)
        return await start_speech(runtime, entry, job, sse_events=body.stream_format == "sse")

    def alias_cards() -> list[ModelCard]:
        """A card for every OpenAI alias whose task has a default model here: that
        model's card under the alias."""
        cards = []
        for task, aliases in OPENAI_ALIASES.items():
            default = runtime.defaults.get(task)
            if default not in runtime.catalog:
                continue
            card = model_card(runtime.catalog[default], created)
            description = f"alias of {default}: {card.description}"
            cards += [
                card.model_copy(update={"id": a, "description": description}) for a in aliases
            ]
        return cards

    @api.get("/v1/models")
    async def list_models() -> ModelList:
        """Every model this server offers (OpenAI `models.list`), then every OpenAI alias
        (whisper-1, tts-1...) the endpoints take."""
        cards = [model_card(e, created) for e in runtime.entries()]
        extras = [make(created) for make in extra_models]
        return ModelList(data=[*cards, *extras, *alias_cards()])

    @api.get("/v1/models/{model_id:path}")
    async def get_model(model_id: str) -> ModelCard:
        """One model (OpenAI `models.retrieve`); an OpenAI alias answers with its task's
        default model under the alias; 404 for an unknown id."""
        entry = runtime.catalog.get(model_id)
        if entry is not None:
            return model_card(entry, created)
        for card in [*alias_cards(), *(make(created) for make in extra_models)]:
            if card.id == model_id:
                return card
        raise ModelNotFound(f"unknown model {model_id!r}", param="model")

    return api
