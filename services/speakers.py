"""Known speakers: enrolment, a SQLite store and identification (the ``/v1/speakers`` API
is :mod:`voxwire.transports.http.speakers`).

A speaker is a name and a voice embedding from the catalogue's speaker encoder
(task ``speaker-embedding``, Resemblyzer by default). Each enrolment of a name adds
one embedding; the stored voice is the normalised mean of all of them (the sum is
kept, so extending is exact) and ``samples`` counts them. Identification picks the
enrolled voice with the highest cosine similarity and answers ``unknown`` below a
threshold (:data:`DEFAULT_THRESHOLD`, 0.75: on Piper's joe voice against an
espeak-ng voice, utterances of one voice score 0.82-0.91 against each other and
0.45-0.57 across voices). Embeddings of different encoders are never compared: a
speaker belongs to the encoder that enrolled it.

Speakers persist in ``<data_dir>/speakers.db`` (a file of its own, with a
``schema_version`` table as the workflows' database has); every call runs in a
thread, on a connection of its own. An enrolment may carry an idempotency key
(:mod:`voxwire.services.idempotency`): the key and the first answer are stored in the
enrolment's transaction, so a retry after a lost answer adds no second sample.

The same identification is a classifier under the reserved model id ``speaker-id``
(:data:`SPEAKER_ID`): ``POST /models/speaker-id`` (the Hugging Face endpoint; never
cached, ``function_to_apply`` defaults to ``none``), workflow nodes, and
``GET /v1/models``. Its labels are every enrolled speaker, scored by cosine similarity,
plus ``unknown`` scored ``min(1, 2 * threshold - best)``: the best cosine mirrored about
:data:`DEFAULT_THRESHOLD`, so ``unknown`` ranks first exactly when ``/identify`` would
answer ``unknown`` (1.0 when nobody is enrolled), and the gap between it and the best
speaker is twice the margin by which the match clears (or misses) the threshold.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import unicodedata
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, NamedTuple, cast

import numpy as np
import numpy.typing as npt

from voxwire.engine.errors import (
    Conflict,
    InvalidAudio,
    InvalidValue,
    LocalError,
    NotFound,
)
from voxwire.models.interfaces import AudioArray, SpeakerEncoder
from voxwire.services.idempotency import KEYS_TABLE, IdempotencyKey, remember, replay
from voxwire.services.inference import Logits, ReservedClassifier
from voxwire.services.runtime import CatalogEntry, Runtime
from voxwire.services.sqlite_file import SqliteFile

log = logging.getLogger(__name__)

DEFAULT_THRESHOLD = 0.75
"""Cosine similarity under which a voice is "unknown" (see the module docstring)."""
UNKNOWN = "unknown"
"""The answer for a voice that matches no enrolled speaker; not a valid name."""
SPEAKER_ID = "speaker-id"
"""The reserved model id of speaker identification as an audio classifier."""
SPEAKER_ID_BACKEND = "resemblyzer+speakers"
MAX_NAME_CHARS = 64
MAX_SPEAKERS = 1000
MIN_ENROL_SECONDS = 1.0
MAX_ENROL_SECONDS = 120.0
DATABASE_NAME = "speakers.db"

MIGRATIONS: dict[int, tuple[str, ...]] = {
    1: (
        """CREATE TABLE speakers (
            name TEXT PRIMARY KEY,
            model TEXT NOT NULL,
            dimension INTEGER NOT NULL,
            embedding_sum BLOB NOT NULL,
            samples INTEGER NOT NULL,
            created_at TEXT NOT NULL,
            updated_at TEXT NOT NULL
        )""",
        "CREATE TABLE generation (value INTEGER NOT NULL)",
        "INSERT INTO generation (value) VALUES (0)",
    ),
    2: (KEYS_TABLE,),
}
"""The statements that take the schema from version n - 1 to n. `generation` counts
writes, so a cached snapshot knows when it is stale."""

Vector = npt.NDArray[np.float32]


# -- errors ---------------------------------------------------------------------------------


class SpeakerStoreError(LocalError, code="speaker_store_error"):
    """The speakers' database cannot be opened, read or written."""


class SpeakerNotFound(NotFound, code="speaker_not_found"):
    """No speaker of that name."""


class InvalidSpeakerName(InvalidValue):
    """A name that is empty, too long, reserved or holds control characters."""


class SpeakerConflict(Conflict, code="speaker_conflict"):
    """The store is full, or the name was enrolled with another encoder."""


class AudioTooShort(InvalidAudio, code="audio_too_short"):
    """Too little audio (or speech) to learn a voice from."""


# -- names and matching -------------------------------------------------------------------


def check_name(name: str) -> str:
    """The name in NFC form, or InvalidSpeakerName saying what is wrong with it."""
    name = unicodedata.normalize("NFC", name)
    if not 1 <= len(name) <= MAX_NAME_CHARS:
        raise InvalidSpeakerName(
            f"a speaker name has 1 to {MAX_NAME_CHARS} characters, not {len(name)}", param="name"
        )
    if any(unicodedata.category(c) in ("Cc", "Cs") for c in name):
        raise InvalidSpeakerName("a speaker name may not hold control characters", param="name")
    if not name.strip():
        raise InvalidSpeakerName("a speaker name may not be blank", param="name")
    if name.casefold() == UNKNOWN:
        raise InvalidSpeakerName(
            f"{UNKNOWN!r} is reserved for voices nobody enrolled", param="name"
        )
    return name


@dataclass(frozen=True)
class Identification:
    """The best match for a voice: a speaker's name (or ``unknown``) and its score."""

    speaker: str
    score: float
    candidates: tuple[tuple[str, float], ...]
    """Every enrolled speaker with its cosine similarity, best first."""


@dataclass(frozen=True)
class SpeakerSnapshot:
    """The enrolled voices of one encoder: names and unit-length mean embeddings (rows)."""

    model: str
    names: tuple[str, ...]
    voices: Vector

    def identify(self, embedding: npt.ArrayLike, threshold: float) -> Identification:
        """The speaker whose voice is closest to `embedding`; ``unknown`` under threshold."""
        vector = _unit(np.asarray(embedding, dtype=np.float32).reshape(-1))
        if not self.names:
            return Identification(UNKNOWN, 0.0, ())
        if vector.shape[0] != self.voices.shape[1]:
            raise ValueError(
                f"a {vector.shape[0]}-d embedding against {self.voices.shape[1]}-d voices"
            )
        scores = self.voices @ vector
        order = np.argsort(-scores, kind="stable")
        candidates = tuple((self.names[i], round(float(scores[i]), 4)) for i in order)
        name, score = candidates[0]
        return Identification(name if score >= threshold else UNKNOWN, score, candidates)


def _unit(vector: npt.NDArray[Any]) -> Vector:
    norm = float(np.linalg.norm(vector))
    if not np.isfinite(norm) or norm == 0.0:
        raise ValueError("an embedding of zero length or with NaNs")
    return (vector / norm).astype(np.float32)


# -- the store -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Speaker:
    """One stored speaker as the API lists it (`to_json` plus the encoder's id)."""

    name: str
    model: str
    samples: int
    created_at: str
    updated_at: str

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "samples": self.samples,
            "created_at": self.created_at,
            "updated_at": self.updated_at,
        }


class Enrolment(NamedTuple):
    """What an enrolment did: the speaker after it, whether it was new, and whether this
    is the first answer given again for a retried idempotency key (nothing was stored)."""

    speaker: Speaker
    created: bool
    replayed: bool = False


class SpeakerStore:
    """Speakers in one SQLite file, at most `max_speakers` of them."""

    def __init__(self, path: Path, *, max_speakers: int = MAX_SPEAKERS) -> None:
        self.path = path
        self.max_speakers = max_speakers
        self._file = SqliteFile(path, MIGRATIONS, SpeakerStoreError)
        self._snapshots: dict[str, tuple[int, SpeakerSnapshot]] = {}

    # -- the async API (each call in a worker thread) -------------------------------------

    async def enrol(
        self, name: str, model: str, embedding: Vector, key: IdempotencyKey | None = None
    ) -> Enrolment:
        """Add one embedding to `name` (made if new). With a `key` already stored for the
        same request nothing is added and the first answer is replayed (KeyReused for
        another request)."""
        return await asyncio.to_thread(self.enrol_sync, name, model, embedding, key)

    async def all(self) -> list[Speaker]:
        """Every speaker, oldest first."""
        return await asyncio.to_thread(self.all_sync)

    async def delete(self, name: str) -> bool:
        """Remove a speaker; False if there was none of that name."""
        return await asyncio.to_thread(self.delete_sync, name)

    async def snapshot(self, model: str) -> SpeakerSnapshot:
        """The voices enrolled with encoder `model` (cached until the next write)."""
        return await asyncio.to_thread(self.snapshot_sync, model)

    # -- the same, blocking --------------------------------------------------------------

    def enrol_sync(
        self, name: str, model: str, embedding: Vector, key: IdempotencyKey | None = None
    ) -> Enrolment:
        vector = np.asarray(embedding, dtype=np.float64).reshape(-1)
        now = _now()
        with self._file.connection() as db:
            db.execute("BEGIN IMMEDIATE")
            try:
                earlier = None if key is None else replay(db, key)
                if earlier is not None:
                    db.execute("ROLLBACK")
                    return Enrolment(Speaker(**earlier["speaker"]), earlier["created"], True)
                row = db.execute(
                    "SELECT model, dimension, embedding_sum, samples, created_at "
                    "FROM speakers WHERE name = ?",
                    (name,),
                ).fetchone()
                if row is None:
                    (count,) = db.execute("SELECT COUNT(*) FROM speakers").fetchone()
                    if count >= self.max_speakers:
                        raise SpeakerConflict(
                            f"the server holds its limit of {self.max_speakers} speakers"
                        )
                    samples, created_at, total = 1, now, vector
                    db.execute(
                        "INSERT INTO speakers VALUES (?, ?, ?, ?, ?, ?, ?)",
                        (name, model, len(vector), total.tobytes(), 1, now, now),
                    )
                else:
                    stored_model, dimension, blob, samples, created_at = row
                    if stored_model != model or dimension != len(vector):
                        raise SpeakerConflict(
                            f"speaker {name!r} was enrolled with the encoder {stored_model!r}, "
                            f"not {model!r}; delete it and enrol it again"
                        )
                    total = np.frombuffer(blob, dtype=np.float64) + vector
                    samples += 1
                    db.execute(
                        "UPDATE speakers SET embedding_sum = ?, samples = ?, updated_at = ? "
                        "WHERE name = ?",
                        (total.tobytes(), samples, now, name),
                    )
                speaker = Speaker(name, model, samples, created_at, now)
                if key is not None:
                    remember(db, key, {"speaker": asdict(speaker), "created": row is None})
                db.execute("UPDATE generation SET value = value + 1")
            except BaseException:
                if db.in_transaction:
                    db.execute("ROLLBACK")
                raise
            db.execute("COMMIT")
        return Enrolment(speaker, row is None)

    def all_sync(self) -> list[Speaker]:
        with self._file.connection() as db:
            rows = db.execute(
                "SELECT name, model, samples, created_at, updated_at FROM speakers "
                "ORDER BY created_at, name"
            ).fetchall()
        return [Speaker(*row) for row in rows]

    def delete_sync(self, name: str) -> bool:
        with self._file.connection() as db:
            db.execute("BEGIN IMMEDIATE")
            deleted = db.execute("DELETE FROM speakers WHERE name = ?", (name,)).rowcount > 0
            if deleted:
                db.execute("UPDATE generation SET value = value + 1")
            db.execute("COMMIT")
        return deleted

    def snapshot_sync(self, model: str) -> SpeakerSnapshot:
        with self._file.connection() as db:
            (generation,) = db.execute("SELECT value FROM generation").fetchone()
            cached = self._snapshots.get(model)
            if cached is not None and cached[0] == generation:
                return cached[1]
            rows = db.execute(
                "SELECT name, dimension, embedding_sum FROM speakers WHERE model = ? "
                "ORDER BY created_at, name",
                (model,),
            ).fetchall()
        names = tuple(row[0] for row in rows)
        dimension = rows[0][1] if rows else 0
        voices = np.zeros((len(rows), dimension), dtype=np.float32)
        for i, (_, _, blob) in enumerate(rows):
            voices[i] = _unit(np.frombuffer(blob, dtype=np.float64))
        snapshot = SpeakerSnapshot(model, names, voices)
        self._snapshots[model] = (generation, snapshot)
        return snapshot


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


_stores: dict[Path, SpeakerStore] = {}
_stores_lock = threading.Lock()


def store_for(data_dir: Path) -> SpeakerStore:
    """The process's one store of ``<data_dir>/speakers.db`` (shared by the HTTP routes
    and the Realtime sessions of every app on that directory)."""
    path = (data_dir / DATABASE_NAME).resolve()
    with _stores_lock:
        store = _stores.get(path)
        if store is None:
            store = _stores[path] = SpeakerStore(path)
        return store


# -- embeddings on the encoder's worker ------------------------------------------------------


def has_encoder(runtime: Runtime) -> bool:
    """Whether the catalogue has a default speaker encoder (``speaker-id`` needs one)."""
    return runtime.defaults.get("speaker-embedding", "") in runtime.catalog


def encoder_entry(runtime: Runtime) -> CatalogEntry:
    """The catalogue's default speaker encoder."""
    return runtime.resolve(None, "speaker-embedding")


async def embed(
    runtime: Runtime, entry: CatalogEntry, audio: AudioArray, *, wait_for_model: bool = True
) -> Vector:
    """A unit-length voice embedding of `audio`, computed on the encoder's worker.

    Raises AudioTooShort when the encoder finds too little speech in it (and
    ModelLoading, with `wait_for_model` False, while the encoder is loading).
    """

    def work(model: Any) -> Vector | str:
        try:
            vector = cast(SpeakerEncoder, model).embed(audio)
        except ValueError as exc:  # the encoder's "no usable speech" answer
            return str(exc)  # raised on the caller's side: not a worker failure to log
        return _unit(np.asarray(vector, dtype=np.float32).reshape(-1))

    result = await runtime.call(entry, work, wait_for_model=wait_for_model)
    if isinstance(result, str):
        raise AudioTooShort(result, param="file")
    return result


# -- speaker identification as a classifier ---------------------------------------------------


def unknown_score(best: float | None, threshold: float = DEFAULT_THRESHOLD) -> float:
    """The ``unknown`` label's score: the best cosine mirrored about the threshold
    (capped at 1), or 1.0 when nobody is enrolled (`best` None)."""
    if best is None:
        return 1.0
    return round(min(1.0, 2.0 * threshold - best), 4)


def speaker_logits(found: Identification, threshold: float = DEFAULT_THRESHOLD) -> Logits:
    """(labels, scores): every candidate's cosine, then ``unknown`` (see :func:`unknown_score`).

    ``unknown`` comes last, so a best match exactly at the threshold wins the tie.
    """
    names = tuple(name for name, _ in found.candidates)
    scores = [score for _, score in found.candidates]
    best = scores[0] if scores else None
    return (*names, UNKNOWN), [*scores, unknown_score(best, threshold)]


class SpeakerClassifier:
    """The ``speaker-id`` classifier: the encoder's embedding against a speaker store."""

    def __init__(self, runtime: Runtime, store: SpeakerStore) -> None:
        self.runtime = runtime
        self.store = store

    async def logits(self, audio: AudioArray, wait_for_model: bool = True) -> Logits:
        """(labels, scores) for `audio`: enrolled speakers by cosine, and ``unknown``."""
        entry = encoder_entry(self.runtime)
        vector = await embed(self.runtime, entry, audio, wait_for_model=wait_for_model)
        snapshot = await self.store.snapshot(entry.spec.id)
        return speaker_logits(snapshot.identify(vector, DEFAULT_THRESHOLD))

    def reserved(self) -> ReservedClassifier:
        """This classifier for the Hugging Face endpoint (scores are cosines: no function)."""
        return ReservedClassifier(self.logits, default_function="none")


def speaker_classifier(runtime: Runtime, data_dir: Path) -> SpeakerClassifier:
    """The ``speaker-id`` classifier on the store of `data_dir` (the routes' store)."""
    return SpeakerClassifier(runtime, store_for(data_dir))
