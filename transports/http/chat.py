"""``POST /v1/chat/completions``: OpenAI's chat completions with audio input.

User messages hold text, ``input_audio`` parts (``{"data": base64, "format": "wav"}``,
any format PyAV decodes) and ``audio_url`` parts (``{"url": ...}``, fetched through the
SSRF-safe fetcher, only when the server allows URL inputs). The answer comes from
:mod:`voxwire.services.chat` (a text model hears the audio through its transcript), as
one ``chat.completion`` or, with ``stream: true``, ``chat.completion.chunk`` server-sent
events ending with ``data: [DONE]``. A client that goes away stops the generation.
"""

from __future__ import annotations

import base64
import binascii
import time
import uuid
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Annotated, Any, Final, Literal

from fastapi import APIRouter, Response
from fastapi.responses import JSONResponse, StreamingResponse
from pydantic import BaseModel, ConfigDict, Field

from voxwire.engine.errors import InvalidValue
from voxwire.models.interfaces import AudioArray, ChatMessage, GenerateOptions
from voxwire.services import chat
from voxwire.services.media import AudioLimits
from voxwire.services.runtime import Runtime
from voxwire.services.url_fetch import UrlFetcher, UrlInputsDisabled
from voxwire.transports.http.openai import decode_in_thread, sse

if TYPE_CHECKING:
    from voxwire.transports.http.settings import ServerSettings

AUDIO_FORMATS: Final = ("wav", "mp3", "flac", "ogg", "opus", "webm", "m4a", "aac", "mp4")
MAX_TEXT_CHARS: Final = 32_768
CHAT_ALIASES: Final = ("gpt-4o-audio-preview", "gpt-4o-mini-audio-preview", "gpt-audio")
"""OpenAI model names that select the default chat model."""


class InvalidAudioPart(InvalidValue):
    """An audio part that cannot be read (bad base64, unknown format)."""


class InputAudio(BaseModel):
    data: str = Field(min_length=1)
    format: str = Field(max_length=16)


class TextPart(BaseModel):
    type: Literal["text"]
    text: str = Field(max_length=MAX_TEXT_CHARS)


class AudioPart(BaseModel):
    type: Literal["input_audio"]
    input_audio: InputAudio


class AudioUrl(BaseModel):
    url: str = Field(max_length=2048)


class AudioUrlPart(BaseModel):
    type: Literal["audio_url"]
    audio_url: AudioUrl


Part = Annotated[TextPart | AudioPart | AudioUrlPart, Field(discriminator="type")]


class Message(BaseModel):
    model_config = ConfigDict(extra="ignore")

    role: Literal["system", "developer", "user", "assistant"]
    content: str | list[Part] | None = None


class StreamOptions(BaseModel):
    include_usage: bool = False


class ChatRequest(BaseModel):
    """The request body (fields OpenAI has that voxwire does not use are ignored)."""

    model_config = ConfigDict(extra="ignore")

    model: str | None = Field(default=None, max_length=256)
    messages: list[Message] = Field(min_length=1, max_length=64)
    stream: bool = False
    stream_options: StreamOptions | None = None
    max_tokens: int | None = Field(default=None, ge=1)
    max_completion_tokens: int | None = Field(default=None, ge=1)
    temperature: float = Field(default=0.0, ge=0.0, le=2.0)
    n: int = Field(default=1, ge=1, le=1)
    modalities: list[Literal["text"]] | None = None


class ChatRoute:
    """Turns a request into model messages and the reply into OpenAI's shapes."""

    def __init__(self, runtime: Runtime, settings: ServerSettings, limits: chat.ChatLimits):
        self.runtime = runtime
        self.settings = settings
        self.limits = limits
        self.audio_limits = AudioLimits(
            max_seconds=min(limits.max_audio_seconds, settings.audio_limits.max_seconds),
            max_decode_seconds=settings.audio_limits.max_decode_seconds,
        )
        self.fetcher = UrlFetcher(settings.max_upload_bytes, settings.url_fetch_timeout_s)

    async def messages(self, body: ChatRequest) -> list[ChatMessage]:
        out: list[ChatMessage] = []
        parts_seen = 0
        for i, message in enumerate(body.messages):
            role = "system" if message.role == "developer" else message.role
            texts: list[str] = []
            audio: list[AudioArray] = []
            parts = message.content if isinstance(message.content, list) else []
            if isinstance(message.content, str):
                texts.append(message.content)
            for j, part in enumerate(parts):
                where = f"messages.{i}.content.{j}"
                if isinstance(part, TextPart):
                    texts.append(part.text)
                    continue
                if role != "user":
                    raise InvalidAudioPart("only user messages may carry audio", param=where)
                parts_seen += 1
                if parts_seen > self.limits.max_audio_parts:
                    raise InvalidAudioPart(
                        f"at most {self.limits.max_audio_parts} audio parts per request",
                        param=where,
                    )
                audio.append(await self._audio(part, where))
            out.append(ChatMessage(role, "\n".join(texts), tuple(audio)))
        return out

    async def _audio(self, part: AudioPart | AudioUrlPart, where: str) -> AudioArray:
        if isinstance(part, AudioUrlPart):
            if not self.settings.allow_url_inputs:
                raise UrlInputsDisabled(
                    "URL inputs are disabled on this server (start it with --allow-url-inputs); "
                    "send the audio as an input_audio part",
                    param=f"{where}.audio_url.url",
                )
            data = await self.fetcher.fetch(part.audio_url.url)
            return await self._decode(data, f"{where}.audio_url.url")
        fmt = part.input_audio.format.lower()
        if fmt not in AUDIO_FORMATS:
            raise InvalidAudioPart(
                f"unknown audio format {part.input_audio.format!r}; use one of "
                f"{', '.join(AUDIO_FORMATS)}",
                param=f"{where}.input_audio.format",
            )
        try:
            data = base64.b64decode(part.input_audio.data, validate=True)
        except (binascii.Error, ValueError):
            raise InvalidAudioPart(
                "input_audio.data is not valid base64", param=f"{where}.input_audio.data"
            ) from None
        return await self._decode(data, f"{where}.input_audio.data")

    async def _decode(self, data: bytes, where: str) -> AudioArray:
        return await decode_in_thread(
            data, self.settings.max_upload_bytes, self.audio_limits, param=where
        )

    def options(self, body: ChatRequest) -> GenerateOptions:
        wanted = body.max_completion_tokens or body.max_tokens or self.limits.default_max_tokens
        if wanted > self.limits.max_tokens:
            raise InvalidAudioPart(
                f"max_tokens is at most {self.limits.max_tokens} on this server",
                param="max_tokens",
            )
        return GenerateOptions(max_tokens=wanted, temperature=body.temperature)

    async def answer(self, body: ChatRequest) -> Response:
        model_id = None if body.model in CHAT_ALIASES else body.model
        entry = chat.resolve_chat(self.runtime, model_id)
        options = self.options(body)
        messages = await self.messages(body)
        reply = await chat.answer(self.runtime, entry, messages, options)
        completion_id = f"chatcmpl-{uuid.uuid4().hex}"
        created = int(time.time())
        if body.stream:
            usage = body.stream_options is not None and body.stream_options.include_usage
            events = _events(reply, completion_id, created, include_usage=usage)
            return StreamingResponse(events, media_type="text/event-stream")
        text = "".join([chunk async for chunk in reply.text()])
        return JSONResponse(
            {
                "id": completion_id,
                "object": "chat.completion",
                "created": created,
                "model": reply.model,
                "choices": [
                    {
                        "index": 0,
                        "message": {"role": "assistant", "content": text, "refusal": None},
                        "finish_reason": _finish(reply.finish_reason),
                        "logprobs": None,
                    }
                ],
                "usage": _usage(reply),
            }
        )


def _finish(reason: str) -> str:
    return "length" if reason == "length" else "stop"


def _usage(reply: chat.ChatReply) -> dict[str, int]:
    return {
        "prompt_tokens": reply.prompt_tokens,
        "completion_tokens": reply.completion_tokens,
        "total_tokens": reply.prompt_tokens + reply.completion_tokens,
    }


async def _events(
    reply: chat.ChatReply, completion_id: str, created: int, *, include_usage: bool
) -> AsyncIterator[bytes]:
    """`chat.completion.chunk` events, then (if asked) the usage chunk, then [DONE]."""
    base: dict[str, Any] = {
        "id": completion_id,
        "object": "chat.completion.chunk",
        "created": created,
        "model": reply.model,
    }

    def chunk(delta: dict[str, Any], finish: str | None = None) -> bytes:
        choice = {"index": 0, "delta": delta, "finish_reason": finish, "logprobs": None}
        return sse({**base, "choices": [choice]})

    yield chunk({"role": "assistant", "content": ""})
    async for text in reply.text():
        yield chunk({"content": text})
    yield chunk({}, _finish(reply.finish_reason))
    if include_usage:
        yield sse({**base, "choices": [], "usage": _usage(reply)})
    yield b"data: [DONE]\n\n"


def router(
    runtime: Runtime, settings: ServerSettings, limits: chat.ChatLimits | None = None
) -> APIRouter:
    """The chat completions route on `runtime`'s chat models."""
    api = APIRouter(tags=["openai"])
    route = ChatRoute(runtime, settings, limits or chat.ChatLimits())

    @api.post("/v1/chat/completions", response_model=None)
    async def chat_completions(body: ChatRequest) -> Response:
        """Answer a chat whose user messages may carry audio (OpenAI `chat.completions`)."""
        return await route.answer(body)

    return api
