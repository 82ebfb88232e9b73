"""The ``/v1/speakers`` API on the speaker store (:mod:`voxwire.services.speakers`).

* ``POST /v1/speakers`` (multipart: ``name``, ``file``): enrol a new speaker (201) or
  add a sample to an existing one (200); an ``Idempotency-Key`` header makes it
  retryable (:mod:`voxwire.transports.http.idempotency`: the same key with the same
  name and file replays the first answer and adds no sample; with another, 422);
  names are 1-64 characters without control characters (``unknown`` is reserved);
  the audio must hold at least :data:`~voxwire.services.speakers.MIN_ENROL_SECONDS`
  of audio with speech in it (400 otherwise);
* ``GET /v1/speakers``: ``{"object": "list", "data": [{name, samples, created_at,
  updated_at}]}``, oldest first;
* ``DELETE /v1/speakers/{name}``: remove (404 for an unknown name);
* ``POST /v1/speakers/identify`` (multipart: ``file``, optional ``threshold``): the
  best match and the candidates' scores.

``speaker-id`` appears in ``GET /v1/models`` through :func:`speaker_id_card`.
"""

from __future__ import annotations

import hashlib
import json
import logging
import unicodedata
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from voxwire.engine.audio import MODEL_RATE
from voxwire.engine.errors import PeerError
from voxwire.models.interfaces import AudioArray
from voxwire.services.media import AudioLimits
from voxwire.services.runtime import Runtime
from voxwire.services.speakers import (
    DEFAULT_THRESHOLD,
    MAX_ENROL_SECONDS,
    MAX_NAME_CHARS,
    MIN_ENROL_SECONDS,
    SPEAKER_ID,
    SPEAKER_ID_BACKEND,
    AudioTooShort,
    Enrolment,
    Identification,
    SpeakerNotFound,
    SpeakerStore,
    check_name,
    embed,
    encoder_entry,
)
from voxwire.transports.http.form_fields import decimal
from voxwire.transports.http.idempotency import REPLAYED, idempotency_key, refuse_reused_keys
from voxwire.transports.http.openai import ModelCard, Upload, decode_upload, read_upload

log = logging.getLogger(__name__)


def speaker_id_card(runtime: Runtime, created: int) -> ModelCard:
    """``speaker-id`` as a ``GET /v1/models`` entry (always available: it loads on use)."""
    encoder = encoder_entry(runtime)
    return ModelCard(
        id=SPEAKER_ID,
        created=created,
        task="audio-classification",
        backend=SPEAKER_ID_BACKEND,
        loaded=True,
        description=(
            f"Identifies enrolled speakers (/v1/speakers) by the {encoder.spec.id} voice "
            "embedding's cosine similarity; 'unknown' when nobody matches"
        ),
        licence=encoder.spec.licence,
    )


def _multipart(required: list[str], properties: dict[str, Any]) -> dict[str, Any]:
    """The OpenAPI request body of a multipart form (the routes parse it themselves)."""
    schema = {"type": "object", "required": required, "properties": properties}
    return {
        "requestBody": {
            "required": True,
            "content": {"multipart/form-data": {"schema": schema}},
        }
    }


_AUDIO_FILE = {"type": "string", "format": "binary"}
_MULTIPART = _multipart(
    ["name", "file"],
    {"name": {"type": "string", "minLength": 1, "maxLength": MAX_NAME_CHARS}, "file": _AUDIO_FILE},
)
_MULTIPART_IDENTIFY = _multipart(
    ["file"],
    {"file": _AUDIO_FILE, "threshold": {"type": "number", "minimum": -1, "maximum": 1}},
)


class SpeakerService:
    """The routes' logic: decode, embed on the encoder's worker, store."""

    def __init__(
        self,
        runtime: Runtime,
        store: SpeakerStore,
        max_upload_bytes: int,
        audio_limits: AudioLimits | None = None,
    ) -> None:
        self.runtime = runtime
        self.store = store
        self.max_upload_bytes = max_upload_bytes
        self.audio_limits = audio_limits or AudioLimits()

    async def enrol(self, request: Request) -> Enrolment:
        upload = await read_upload(request)
        key = idempotency_key(request, upload_content(upload))
        name = check_name(_field(upload, "name"))
        entry = encoder_entry(self.runtime)
        audio = await self._speech(upload)
        vector = await embed(self.runtime, entry, audio)
        with refuse_reused_keys():
            done = await self.store.enrol(name, entry.spec.id, vector, key)
        what = "replayed" if done.replayed else "enrolled" if done.created else "extended"
        log.info("speaker %r %s (%d samples)", name, what, done.speaker.samples)
        return done

    async def identify(self, request: Request) -> Identification:
        upload = await read_upload(request)
        raw = upload.fields.get("threshold")
        try:
            threshold = DEFAULT_THRESHOLD if raw is None or raw == "" else decimal(str(raw))
        except ValueError as exc:
            raise PeerError(f"threshold {exc}", param="threshold") from None
        if not -1.0 <= threshold <= 1.0:
            raise PeerError("threshold must lie in [-1, 1]", param="threshold")
        entry = encoder_entry(self.runtime)
        audio = await self._speech(upload)
        vector = await embed(self.runtime, entry, audio)
        snapshot = await self.store.snapshot(entry.spec.id)
        return snapshot.identify(vector, threshold)

    async def _speech(self, upload: Upload) -> AudioArray:
        audio = await decode_upload(upload, self.max_upload_bytes, self.audio_limits)
        seconds = len(audio) / MODEL_RATE
        if seconds > MAX_ENROL_SECONDS:
            raise PeerError(
                f"the audio is {seconds:.1f} s long; send at most {MAX_ENROL_SECONDS:g} s",
                param="file",
            )
        if seconds < MIN_ENROL_SECONDS:
            raise AudioTooShort(
                f"the audio is {seconds:.2f} s long; a voice needs at least "
                f"{MIN_ENROL_SECONDS:g} s of speech",
                param="file",
            )
        return audio


def upload_content(upload: Upload) -> bytes:
    """What makes two multipart requests the same request: their fields and their file's
    bytes (the part boundaries differ from one send to the next)."""
    digest = hashlib.sha256(upload.data).hexdigest()
    return json.dumps({"fields": upload.fields, "file": digest}, sort_keys=True).encode()


def _field(upload: Upload, name: str) -> str:
    value = upload.fields.get(name)
    if not isinstance(value, str):
        raise PeerError(f"the {name!r} field is missing", param=name)
    return value


def router(
    runtime: Runtime,
    store: SpeakerStore,
    *,
    max_upload_bytes: int,
    audio_limits: AudioLimits | None = None,
) -> APIRouter:
    """The ``/v1/speakers`` routes on `store`."""
    service = SpeakerService(runtime, store, max_upload_bytes, audio_limits)
    api = APIRouter(prefix="/v1/speakers", tags=["speakers"])

    @api.post("", response_model=None, openapi_extra=_MULTIPART)
    async def enrol_speaker(request: Request) -> JSONResponse:
        """Enrol a speaker from a recording (201), or add one to a known speaker (200);
        an Idempotency-Key makes it retryable."""
        done = await service.enrol(request)
        return JSONResponse(
            done.speaker.to_json(),
            status_code=201 if done.created else 200,
            headers=REPLAYED if done.replayed else None,
        )

    @api.get("")
    async def list_speakers() -> dict[str, Any]:
        """Every enrolled speaker, oldest first."""
        speakers = await service.store.all()
        return {"object": "list", "data": [s.to_json() for s in speakers]}

    @api.post("/identify", response_model=None, openapi_extra=_MULTIPART_IDENTIFY)
    async def identify_speaker(request: Request) -> dict[str, Any]:
        """Who speaks in a recording: the best match (or "unknown") and every score."""
        found = await service.identify(request)
        return {
            "speaker": found.speaker,
            "score": found.score,
            "candidates": [{"name": n, "score": s} for n, s in found.candidates],
        }

    @api.delete("/{name:path}")
    async def delete_speaker(name: str) -> dict[str, Any]:
        """Forget a speaker (404 if unknown)."""
        name = unicodedata.normalize("NFC", name)
        if not await service.store.delete(name):
            raise SpeakerNotFound(f"no speaker named {name!r}", param="name")
        return {"name": name, "deleted": True}

    return api
