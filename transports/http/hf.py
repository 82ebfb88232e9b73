"""Hugging Face Inference API style predictions: ``POST /models/{model_id}``.

Serves the catalogue's audio-classification, automatic-speech-recognition,
text-classification and audio-text-to-text models the way the Hugging Face serverless
API does:

* body: the raw audio bytes (any format PyAV decodes), or JSON
  ``{"inputs": <base64 audio | text>, "parameters": {...}, "options": {...}}``;
  a text model also takes the text itself as the body;
* answer: ``[{"label", "score"}]`` best first (``top_k``, default 5, and
  ``function_to_apply`` softmax | sigmoid | none), or ``{"text"}`` for speech
  recognition (``return_timestamps`` adds ``chunks``);
* audio-text-to-text (a native audio LLM: Qwen2-Audio, Voxtral): ``inputs`` is base64
  audio or an http(s) URL (fetched by the SSRF-safe fetcher, only when the server allows
  URL inputs), ``parameters`` ``{prompt, max_new_tokens, temperature}``; the answer is
  ``[{"generated_text"}]``. A text chat model cannot take audio: 400;
* ``x-wait-for-model: true`` waits for a model that is still loading, otherwise
  503 ``{"error": "Model X is currently loading", "estimated_time": s}``;
* ``x-use-cache`` (default true) answers a request seen before from a bounded
  LRU cache keyed by (model, sha256 of the input, parameters);
* errors are ``{"error": message}`` with the right status, never internals.

Reserved model ids (:class:`ReservedClassifier`, given to :func:`router`) are audio
classifiers that are not catalogue entries, such as ``speaker-id`` (the enrolled
speakers, :mod:`voxwire.services.speakers`): they take the same bodies and parameters, are
looked up before the catalogue, and are never answered from the cache (their answers
depend on state that changes between requests).
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import hashlib
import logging
import math
import time
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictInt, ValidationError

from voxwire.engine.errors import (
    InvalidRequest,
    ModelNotFound,
    PayloadTooLarge,
    VoxwireError,
    describe,
)
from voxwire.models.interfaces import AudioArray, ChatMessage, GenerateOptions
from voxwire.services import chat
from voxwire.services.classification import (
    DEFAULT_TOP_K,
    FunctionToApply,
    default_function,
    label_scores,
)
from voxwire.services.inference import (
    ReservedClassifier,
    classify_audio,
    classify_text,
    transcribe,
)
from voxwire.services.json_limits import JsonTooDeep, loads_bounded
from voxwire.services.media import decode_audio
from voxwire.services.runtime import CatalogEntry, ModelLoading, Runtime
from voxwire.services.url_fetch import UrlFetcher, UrlInputsDisabled

if TYPE_CHECKING:
    from voxwire.transports.http.settings import ServerSettings

log = logging.getLogger(__name__)

SERVED_TASKS = (
    "audio-classification",
    "automatic-speech-recognition",
    "text-classification",
    "audio-text-to-text",
)
AUDIO_TEXT = "audio-text-to-text"
DEFAULT_PROMPT = "What is in this audio?"
MAX_TEXT_CHARS = 100_000
MAX_URL_CHARS = 2048

CacheKey = tuple[str, str, str]
Answer = list[dict[str, Any]] | dict[str, Any]


class HfInvalidRequest(InvalidRequest):
    """A body, header or parameter the endpoint cannot use."""


class ClassificationParameters(BaseModel):
    """Parameters of audio- and text-classification requests."""

    model_config = ConfigDict(extra="forbid")

    top_k: StrictInt | None = Field(default=None, ge=1, le=1000)
    function_to_apply: FunctionToApply | None = None
    """None: sigmoid for a multi-label model (wake words), else softmax, as HF pipelines."""


class AsrParameters(BaseModel):
    """Parameters of speech-recognition requests."""

    model_config = ConfigDict(extra="forbid")

    return_timestamps: StrictBool = False


class AudioTextParameters(BaseModel):
    """Parameters of audio-text-to-text requests."""

    model_config = ConfigDict(extra="forbid")

    prompt: str = Field(default=DEFAULT_PROMPT, max_length=MAX_TEXT_CHARS)
    max_new_tokens: StrictInt | None = Field(default=None, ge=1)
    temperature: float = Field(default=0.0, ge=0.0, le=2.0)


Parameters = ClassificationParameters | AsrParameters | AudioTextParameters


class HfOptions(BaseModel):
    """The legacy ``options`` object (the headers take precedence)."""

    use_cache: StrictBool | None = None
    wait_for_model: StrictBool | None = None


class HfJsonBody(BaseModel):
    """A JSON request: base64 audio or text in ``inputs``."""

    inputs: str
    parameters: dict[str, Any] | None = None
    options: HfOptions | None = None


class ResultCache:
    """A bounded least-recently-used map of answers (used on the event loop only)."""

    def __init__(self, max_entries: int) -> None:
        self.max_entries = max(0, max_entries)
        self._entries: OrderedDict[CacheKey, Answer] = OrderedDict()

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, key: CacheKey) -> Answer | None:
        answer = self._entries.get(key)
        if answer is not None:
            self._entries.move_to_end(key)
        return answer

    def put(self, key: CacheKey, answer: Answer) -> None:
        if self.max_entries == 0:
            return
        self._entries[key] = answer
        self._entries.move_to_end(key)
        while len(self._entries) > self.max_entries:
            self._entries.popitem(last=False)


async def read_body(request: Request, limit: int) -> bytes:
    """The request body, refused with PayloadTooLarge as soon as it passes `limit`."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise PayloadTooLarge(
            f"the request body is {declared} bytes, more than the limit of {limit} bytes"
        )
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > limit:
            raise PayloadTooLarge(f"the request body is more than the limit of {limit} bytes")
    return bytes(body)


def validation_message(error: ValidationError, prefix: str = "") -> str:
    """One line naming the first invalid field, for a 400 answer."""
    first = error.errors()[0]
    where = ".".join(str(p) for p in (prefix, *first.get("loc", ())) if p != "")
    return f"{where or 'body'}: {first.get('msg', 'invalid value')}"


def _flag(request: Request, header: str, fallback: bool | None, default: bool) -> bool:
    value = request.headers.get(header)
    if value is None:
        return default if fallback is None else fallback
    lowered = value.strip().lower()
    if lowered in ("true", "1", "yes"):
        return True
    if lowered in ("false", "0", "no"):
        return False
    raise HfInvalidRequest(f"header {header} must be true or false, not {value[:20]!r}")


def _looks_like_json_request(task: str, body: bytes) -> bool:
    """A JSON request sent without a JSON content type (``curl -d '{"inputs": ...}'``)."""
    if body.lstrip()[:1] != b"{":
        return False
    if task != "text-classification":
        return True  # no audio format starts with "{"
    try:
        payload = loads_bounded(body)
    except JsonTooDeep:
        return True  # JSON after all: its parser answers 400
    except ValueError:
        return False
    return isinstance(payload, dict) and "inputs" in payload


def _error_response(error: BaseException, model_id: str) -> JSONResponse:
    if isinstance(error, ModelLoading):
        return JSONResponse(
            {
                "error": f"Model {model_id} is currently loading",
                "estimated_time": error.estimated_seconds,
            },
            status_code=503,
            headers={"Retry-After": str(max(1, math.ceil(error.estimated_seconds)))},
        )
    desc = describe(error)
    if not desc.is_peer_error:
        log.warning("prediction with %s failed: %r", model_id, error)
    return JSONResponse({"error": desc.message}, status_code=desc.http_status)


@dataclass(frozen=True)
class _Prepared:
    """One request made ready to run: the input, its digest and the parameters."""

    audio: bytes | None
    text: str | None
    digest: str
    parameters: Parameters
    use_cache: bool
    wait_for_model: bool
    url: str | None = None
    """audio-text-to-text: the audio's URL, fetched when the request runs."""


class HfPredictor:
    """Answers ``POST /models/{model_id}`` on the runtime's catalogue (and reserved ids)."""

    def __init__(
        self,
        runtime: Runtime,
        settings: ServerSettings,
        reserved: Mapping[str, ReservedClassifier] | None = None,
    ) -> None:
        self.runtime = runtime
        self.settings = settings
        self.cache = ResultCache(settings.result_cache_entries)
        self.reserved = dict(reserved or {})
        self.fetcher = UrlFetcher(settings.max_upload_bytes, settings.url_fetch_timeout_s)

    async def answer(self, model_id: str, request: Request) -> Response:
        """The HTTP answer (never raises: every error becomes ``{"error": ...}``)."""
        try:
            return await self._answer(model_id, request)
        except VoxwireError as exc:
            return _error_response(exc, model_id)
        except Exception as exc:  # an unexpected bug must not leak a traceback
            log.exception("prediction with %s failed", model_id)
            return _error_response(exc, model_id)

    def entry(self, model_id: str) -> CatalogEntry:
        """The catalogue entry of `model_id`, if this endpoint serves its task."""
        entry = self.runtime.catalog.get(model_id)
        if entry is None:
            raise ModelNotFound(f"Model {model_id} does not exist")
        if entry.spec.task == chat.CHAT:
            raise HfInvalidRequest(
                f"model {model_id} is a text chat model and cannot take audio; "
                f"{AUDIO_TEXT} needs a native audio LLM (Qwen2-Audio, Voxtral)"
            )
        if entry.spec.task not in SERVED_TASKS:
            raise HfInvalidRequest(
                f"model {model_id} does {entry.spec.task}; this endpoint serves "
                f"{', '.join(SERVED_TASKS)} models"
            )
        return entry

    async def _answer(self, model_id: str, request: Request) -> Response:
        reserved = self.reserved.get(model_id)
        if reserved is not None:
            return await self._answer_reserved(reserved, request)
        entry = self.entry(model_id)
        body = await read_body(request, self.settings.max_upload_bytes)
        prepared = self._prepare(entry.spec.task, request, body)
        key: CacheKey = (entry.spec.id, prepared.digest, prepared.parameters.model_dump_json())
        headers = {"x-compute-type": "cpu"}
        if prepared.use_cache:
            cached = self.cache.get(key)
            if cached is not None:
                return JSONResponse(cached, headers={**headers, "x-cache": "hit"})
        await self.runtime.ensure_loaded(entry, wait=prepared.wait_for_model)
        started = time.perf_counter()
        result = await self._run(entry, prepared)
        headers["x-compute-time"] = f"{time.perf_counter() - started:.3f}"
        self.cache.put(key, result)
        return JSONResponse(result, headers={**headers, "x-cache": "miss"})

    async def _answer_reserved(self, reserved: ReservedClassifier, request: Request) -> Response:
        """A reserved audio classifier's answer, computed afresh (never cached)."""
        body = await read_body(request, self.settings.max_upload_bytes)
        prepared = self._prepare("audio-classification", request, body)
        parameters = prepared.parameters
        assert isinstance(parameters, ClassificationParameters) and prepared.audio is not None
        audio = await self._decode(prepared.audio)
        started = time.perf_counter()
        labels, scores = await reserved.logits(audio, prepared.wait_for_model)
        result = label_scores(
            labels,
            scores,
            top_k=parameters.top_k or DEFAULT_TOP_K,
            function_to_apply=parameters.function_to_apply or reserved.default_function,
        )
        headers = {
            "x-compute-type": "cpu",
            "x-compute-time": f"{time.perf_counter() - started:.3f}",
            "x-cache": "miss",
        }
        return JSONResponse(result, headers=headers)

    def _prepare(self, task: str, request: Request, body: bytes) -> _Prepared:
        content_type = request.headers.get("content-type", "").lower()
        is_json = "json" in content_type or _looks_like_json_request(task, body)
        options = HfOptions()
        raw_parameters: dict[str, Any] = {}
        audio: bytes | None = None
        text: str | None = None
        url: str | None = None
        if is_json:
            try:
                payload = HfJsonBody.model_validate_json(body)
            except ValidationError as exc:
                raise HfInvalidRequest(validation_message(exc)) from None
            options = payload.options or options
            raw_parameters = payload.parameters or {}
            if task == "text-classification":
                text = payload.inputs
            elif task == AUDIO_TEXT and payload.inputs.startswith(("http://", "https://")):
                url = self._allowed_url(payload.inputs)
            else:
                try:
                    audio = base64.b64decode(payload.inputs, validate=True)
                except (binascii.Error, ValueError):
                    raise HfInvalidRequest(
                        "inputs must be base64-encoded audio (or send the audio bytes as the body)"
                    ) from None
        elif task == "text-classification":
            try:
                text = body.decode("utf-8")
            except UnicodeDecodeError:
                raise HfInvalidRequest("the text is not valid UTF-8") from None
        else:
            audio = body
        if text is not None and len(text) > MAX_TEXT_CHARS:
            raise HfInvalidRequest(f"inputs is longer than {MAX_TEXT_CHARS} characters")
        if audio is not None and not audio and url is None:
            raise HfInvalidRequest("no audio: send the audio bytes as the body")
        parameters = self._parameters(task, raw_parameters)
        digested = audio if audio is not None else (url or text or "").encode()
        digest = hashlib.sha256(digested).hexdigest()
        return _Prepared(
            audio=audio,
            text=text,
            digest=digest,
            parameters=parameters,
            use_cache=_flag(request, "x-use-cache", options.use_cache, True),
            wait_for_model=_flag(request, "x-wait-for-model", options.wait_for_model, False),
            url=url,
        )

    def _allowed_url(self, url: str) -> str:
        if not self.settings.allow_url_inputs:
            raise UrlInputsDisabled(
                "URL inputs are disabled on this server (start it with --allow-url-inputs); "
                "send the audio as base64 in inputs"
            )
        if len(url) > MAX_URL_CHARS:
            raise HfInvalidRequest(f"inputs: a URL is at most {MAX_URL_CHARS} characters")
        return url

    @staticmethod
    def _parameters(task: str, raw: dict[str, Any]) -> Parameters:
        try:
            if task == "automatic-speech-recognition":
                return AsrParameters.model_validate(raw)
            if task == AUDIO_TEXT:
                return AudioTextParameters.model_validate(raw)
            return ClassificationParameters.model_validate(raw)
        except ValidationError as exc:
            raise HfInvalidRequest(validation_message(exc, "parameters")) from None

    async def _decode(self, audio: bytes) -> AudioArray:
        return await asyncio.to_thread(
            decode_audio,
            audio,
            max_bytes=self.settings.max_upload_bytes,
            limits=self.settings.audio_limits,
        )

    async def _run(self, entry: CatalogEntry, prepared: _Prepared) -> Answer:
        parameters = prepared.parameters
        if isinstance(parameters, AudioTextParameters):
            return await self._generate(entry, prepared, parameters)
        if isinstance(parameters, AsrParameters):
            assert prepared.audio is not None
            audio = await self._decode(prepared.audio)
            return await transcribe(
                self.runtime, entry, audio, timestamps=parameters.return_timestamps
            )
        if entry.spec.task == "text-classification":
            assert prepared.text is not None
            labels, logits = await classify_text(self.runtime, entry, prepared.text)
        else:
            assert prepared.audio is not None
            audio = await self._decode(prepared.audio)
            labels, logits = await classify_audio(self.runtime, entry, audio)
        return label_scores(
            labels,
            logits,
            top_k=parameters.top_k or DEFAULT_TOP_K,
            function_to_apply=parameters.function_to_apply or default_function(entry.model),
        )

    async def _generate(
        self, entry: CatalogEntry, prepared: _Prepared, parameters: AudioTextParameters
    ) -> Answer:
        """audio-text-to-text: the model hears the audio and answers the prompt."""
        data = prepared.audio
        if prepared.url is not None:
            data = await self.fetcher.fetch(prepared.url)
        assert data is not None
        limits = self.settings.chat_limits
        wanted = parameters.max_new_tokens or limits.default_max_tokens
        if wanted > limits.max_tokens:
            raise HfInvalidRequest(
                f"parameters.max_new_tokens: at most {limits.max_tokens} on this server"
            )
        audio = await self._decode(data)
        text = await chat.generate_text(
            self.runtime,
            entry,
            [ChatMessage("user", parameters.prompt, (audio,))],
            GenerateOptions(max_tokens=wanted, temperature=parameters.temperature),
        )
        return [{"generated_text": text}]


def router(
    runtime: Runtime,
    settings: ServerSettings,
    reserved: Mapping[str, ReservedClassifier] | None = None,
) -> APIRouter:
    """The ``POST /models/{model_id}`` route on `runtime`'s catalogue and `reserved` ids."""
    api = APIRouter(tags=["huggingface"])
    predictor = HfPredictor(runtime, settings, reserved)

    @api.post("/models/{model_id:path}", response_model=None)
    async def predict(model_id: str, request: Request) -> Response:
        """Classify or transcribe the body with `model_id` (Hugging Face's API)."""
        return await predictor.answer(model_id, request)

    return api
