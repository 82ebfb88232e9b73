"""Live classification of one Realtime session: wake words, speakers, sentiment, intent.

A session asks for it with ``session.update`` (see :mod:`voxwire.transports.realtime.protocol`):
``voxwire.classifiers`` (any of ``wake_word``, ``speaker``, ``sentiment``, ``intent``),
``voxwire.wake_word_gate`` (bool), ``voxwire.wake_words`` (``threshold`` 0.5,
``refractory_ms`` 2000, ``names``: null for all) and ``voxwire.speakers``
(``threshold`` 0.75). The models (catalogue ids ``wake-words``, ``vader``, ``intent``
and the default ``speaker-embedding`` model) are loaded before ``session.updated`` is
sent; one that cannot be had gets an ``error`` event and leaves the session unchanged.
All model work runs on the models' workers through :meth:`Runtime.call` (so a test can
slow one classifier by wrapping ``runtime.call`` for one entry), never on the event loop.

**Wake words.** Every audio chunk the client sends is also queued for the wake-word
model's worker (a backlog of at most :data:`MAX_BACKLOG_S`; when the worker falls behind,
the oldest chunks are dropped and counted in ``wake_word_samples_dropped``). One call at a
time per session, so frames stay in order: the worker resamples to 16 kHz, cuts
1280-sample frames and scores them on the session's own stream. A wake word is detected
on the first frame whose score reaches ``threshold``; that wake word is then ignored for
``refractory_ms``. ``voxwire.wake_word.detected`` ``{name, score, audio_ms}`` is sent at
once; ``audio_ms`` is the end of that frame, counted over all audio the client sent
(transcribed or not). Detection runs when ``wake_word`` is a classifier or the gate is
on, and sends its events in both cases.

**The gate** (``voxwire.wake_word_gate: true``, the state machine
:class:`~voxwire.engine.wake_gate.WakeWordGate`) makes the session a voice assistant:

1. *Listening*: audio does not reach the transcriber. The most recent
   :data:`PREROLL_S` + :data:`MAX_BACKLOG_S` seconds are held; older audio is discarded
   (``gate_samples_discarded``).
2. A wake word (one of ``names``) *opens* the gate: the held audio from
   :data:`PREROLL_S` (1.5 s) before the detection on, then everything that follows, is
   transcribed, so "Hey Jarvis, what's the weather like?" is transcribed whole, wake
   word included (speech that ended more than 1.5 s before the detection is not).
3. The gate *closes* (back to 1) once an utterance that ends at least
   :data:`COMMAND_MIN_MS` after the wake word is committed (with server VAD; without it,
   at the client's next commit). So speech held over from before the wake word, or a
   lone "Hey Jarvis" followed by a long pause, does not close it: the command after
   the pause is still heard. That utterance's transcript and classifications arrive as
   usual.

Turning the gate on commits an utterance in progress; turning it off transcribes the last
:data:`PREROLL_S` of held audio and what follows; ``input_audio_buffer.clear`` drops held
audio. While listening the transcriber's clock stands still: item timings
(``voxwire.timings``, ``audio_start_ms``) count transcribed audio only, whereas the
wake-word ``audio_ms`` counts all audio.

**Item classifiers.** When an item's transcript is completed (its completed event is
already queued for the client), the item's audio is copied from the session's ring
buffer by its timings (at most :data:`MAX_SPEAKER_AUDIO_S`, only when ``speaker`` is on)
and the item joins a bounded per-session queue (:data:`MAX_PENDING_ITEMS`). One task per
session takes items in order and runs the item's classifiers concurrently, each on its
model's worker, sending each result when it is ready: always after the completed event,
never holding a transcript back.

* ``speaker``: ``voxwire.speaker.identified`` ``{item_id, speaker, score}``, the enrolled
  speaker (``/v1/speakers``) of highest cosine similarity, ``unknown`` under the
  threshold (score: the best similarity, 0 with nobody enrolled);
* ``sentiment`` (vader) and ``intent``: ``voxwire.classification`` ``{item_id, source:
  "transcript", classifier, model, labels: [{label, score}]}`` with softmax scores, best
  first. Empty transcripts are not classified.

A classification that fails (model error, audio too short or already evicted, worker or
queue overloaded) is logged and still answered: the same event with ``error`` ``{code,
message}`` in place of the result (``speaker``/``score`` null, ``labels`` empty), so a
client never waits for a result that will not come. It is not an ``error`` event: the
session is fine. Everything is per session; one session's failures or slow models
never touch another's state.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import functools
import logging
from collections import OrderedDict, deque
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any, cast

import numpy as np
import numpy.typing as npt

from voxwire.engine.audio import MODEL_RATE, StreamResampler
from voxwire.engine.driver import SessionDriver
from voxwire.engine.errors import (
    AudioEvicted,
    EmptyCommit,
    Overloaded,
    PeerError,
    VoxwireError,
    describe,
)
from voxwire.engine.events import Event, InputAudioCommitted, SpeechStopped, TranscriptionCompleted
from voxwire.engine.session import Session
from voxwire.engine.wake_gate import MAX_BACKLOG_S, GateState, WakeWordGate
from voxwire.models.interfaces import WakeWordModel, WakeWordStream
from voxwire.services.classification import label_scores
from voxwire.services.inference import classify_text
from voxwire.services.runtime import CatalogEntry, Runtime
from voxwire.services.speakers import UNKNOWN, SpeakerStore, embed
from voxwire.transports.realtime.protocol import (
    ClassificationConfig,
    ProtocolError,
    WakeWordConfig,
    check_wake_words,
)
from voxwire.transports.realtime.server_events import (
    Classification,
    ClassificationFailure,
    ItemClassification,
    SendEvent,
    SpeakerIdentified,
    WakeWordDetected,
)

log = logging.getLogger(__name__)

Float32Array = npt.NDArray[np.float32]

WAKE_WORD_MODEL = "wake-words"
SENTIMENT_MODEL = "vader"
INTENT_MODEL = "intent"
COMMAND_MIN_MS = 500
"""An utterance must end this long after the wake word to close the gate."""
MAX_PENDING_ITEMS = 8
"""Items waiting for their classifications, per session."""
MAX_SPEAKER_AUDIO_S = 10.0
"""The first seconds of an item that speaker identification hears."""

ITEM_CLASSIFIERS = ("speaker", "sentiment", "intent")


@dataclass
class ClassifierCounters:
    """'Nothing lost', for classification: where the session's audio and items went."""

    wake_word_samples: int = 0
    """16 kHz samples scored for wake words."""
    wake_word_samples_dropped: int = 0
    """16 kHz samples never scored: the wake-word worker had fallen behind."""
    wake_word_detections: int = 0
    wake_word_failures: int = 0
    gate_opened: int = 0
    gate_samples_discarded: int = 0
    """16 kHz samples the gate held back and then let go untranscribed."""
    classifications: int = 0
    classification_failures: int = 0


# -- wake-word detection ---------------------------------------------------------------------


@dataclass(frozen=True)
class Detection:
    """A wake word heard: its name, the score that crossed the threshold, and where."""

    name: str
    score: float
    position: int
    """16 kHz samples from the start of the input to the end of the frame that fired."""


class WakeWordScorer:
    """One session's wake-word state. It lives on the model's worker and is called once
    at a time (the listener keeps one call in flight), so it needs no lock."""

    def __init__(self, model: WakeWordModel, position: int = 0) -> None:
        self.stream: WakeWordStream = model.new_stream()
        self.frame = int(model.frame_samples)
        self.position = position
        """16 kHz samples scored or skipped so far."""
        self._resampler: StreamResampler | None = None
        self._pending = np.zeros(0, dtype=np.float32)
        self._last: dict[str, int] = {}

    def process(
        self, chunks: Sequence[tuple[int, Float32Array]], skipped: int, config: WakeWordConfig
    ) -> tuple[list[Detection], int]:
        """Score input-rate `chunks` that follow a gap of `skipped` 16 kHz samples;
        returns the detections and how many samples were scored."""
        if skipped:
            self.position += len(self._pending) + skipped
            self._pending = np.zeros(0, dtype=np.float32)
            self._resampler = None  # the filter history belongs to audio before the gap
        parts = [self._pending]
        for rate, samples in chunks:
            if self._resampler is None or self._resampler.input_rate != rate:
                if self._resampler is not None:
                    parts.append(self._resampler.flush())
                self._resampler = StreamResampler(rate)
            parts.append(self._resampler.process(samples))
        audio = np.concatenate(parts)
        frames = len(audio) // self.frame
        refractory = config.refractory_ms * MODEL_RATE // 1000
        detections: list[Detection] = []
        for i in range(frames):
            scores = self.stream.process(audio[i * self.frame : (i + 1) * self.frame])
            self.position += self.frame
            for name, score in sorted(scores.items(), key=lambda item: -item[1]):
                if score < config.threshold or (
                    config.names is not None and name not in config.names
                ):
                    continue
                last = self._last.get(name)
                if last is not None and self.position - last < refractory:
                    continue
                self._last[name] = self.position
                detections.append(Detection(name, float(score), self.position))
        self._pending = audio[frames * self.frame :]
        return detections, frames * self.frame


class WakeWordListener:
    """Feeds one session's audio to the wake-word worker, in order, through a bounded
    backlog, and reports each detection."""

    def __init__(
        self,
        runtime: Runtime,
        entry: CatalogEntry,
        config: WakeWordConfig,
        counters: ClassifierCounters,
        on_detection: Callable[[Detection], Awaitable[None]],
        *,
        name: str,
        position: int = 0,
    ) -> None:
        """`position`: where the audio pushed next starts (16 kHz samples of the input)."""
        self.runtime = runtime
        self.entry = entry
        self.config = config
        self._position = position
        self.counters = counters
        self._on_detection = on_detection
        self._backlog: deque[tuple[int, Float32Array]] = deque()
        self._backlog_length = 0.0
        self._skipped = 0.0
        self._scorer: WakeWordScorer | None = None
        self._ready = asyncio.Event()
        self._task = asyncio.get_running_loop().create_task(self._run(), name=name)

    def push(self, samples: Float32Array, rate: int) -> None:
        """Queue a chunk of input audio (never waits; drops the oldest when full)."""
        self._backlog.append((rate, samples))
        self._backlog_length += len(samples) * MODEL_RATE / rate
        while self._backlog_length > MAX_BACKLOG_S * MODEL_RATE and len(self._backlog) > 1:
            old_rate, old = self._backlog.popleft()
            dropped = len(old) * MODEL_RATE / old_rate
            self._backlog_length -= dropped
            self._skipped += dropped
            self.counters.wake_word_samples_dropped += round(dropped)
        self._ready.set()

    async def close(self) -> None:
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task

    async def _run(self) -> None:
        while True:
            await self._ready.wait()
            self._ready.clear()
            if not self._backlog:
                continue
            chunks = list(self._backlog)
            length, skipped = self._backlog_length, round(self._skipped)
            self._backlog.clear()
            self._backlog_length = self._skipped = 0.0
            work = functools.partial(
                self._score, chunks=chunks, skipped=skipped, config=self.config
            )
            try:
                detections, scored = await self.runtime.call(self.entry, work)
            except Exception as exc:
                self.counters.wake_word_failures += 1
                self._skipped += length + skipped  # keep the clock right for the next call
                log.warning("%s: scoring failed: %r", self._task.get_name(), exc)
                continue
            self.counters.wake_word_samples += scored
            for detection in detections:
                self.counters.wake_word_detections += 1
                try:
                    await self._on_detection(detection)
                except Exception:
                    log.exception("%s: handling a detection failed", self._task.get_name())

    def _score(
        self,
        model: Any,
        *,
        chunks: Sequence[tuple[int, Float32Array]],
        skipped: int,
        config: WakeWordConfig,
    ) -> tuple[list[Detection], int]:
        if self._scorer is None:
            self._scorer = WakeWordScorer(cast(WakeWordModel, model), self._position)
        return self._scorer.process(chunks, skipped, config)


# -- classifiers of finished items -----------------------------------------------------------


@dataclass(frozen=True)
class ItemJob:
    """One completed item to classify."""

    item_id: str
    transcript: str
    audio: Float32Array | None
    """The item's audio when the speaker classifier is on and it could still be read."""
    classifiers: tuple[str, ...]
    entries: Mapping[str, CatalogEntry]
    speaker_threshold: float


class ItemResults:
    """The classification events of a session's recent items, so that the reply to a
    turn can see what the classifiers said about it."""

    def __init__(self, limit: int = 32) -> None:
        self.limit = limit
        self._items: OrderedDict[str, tuple[asyncio.Future[None], list[dict[str, Any]]]] = (
            OrderedDict()
        )

    def expect(self, item_id: str) -> None:
        self._items[item_id] = (asyncio.get_running_loop().create_future(), [])
        while len(self._items) > self.limit:
            self.finish(next(iter(self._items)))  # a waiter gets what came so far
            self._items.popitem(last=False)

    def add(self, event: dict[str, Any]) -> None:
        """A classification event, as it went out."""
        entry = self._items.get(str(event.get("item_id")))
        if entry is not None:
            entry[1].append(event)

    def finish(self, item_id: str) -> None:
        entry = self._items.get(item_id)
        if entry is not None and not entry[0].done():
            entry[0].set_result(None)

    async def wait(self, item_id: str, within_s: float) -> list[dict[str, Any]]:
        """The item's results once all are in (or what came within `within_s`)."""
        entry = self._items.get(item_id)
        if entry is None:
            return []
        with contextlib.suppress(TimeoutError):  # a cancel of the waiter propagates
            async with asyncio.timeout(within_s):
                await asyncio.shield(entry[0])
        return list(entry[1])


class ItemClassifiers:
    """A bounded queue of one session's completed items and the task that classifies
    them, in order, sending each result when it is ready."""

    def __init__(
        self,
        runtime: Runtime,
        send: SendEvent,
        speakers: SpeakerStore | None,
        counters: ClassifierCounters,
        *,
        name: str,
        results: ItemResults | None = None,
    ) -> None:
        self.runtime = runtime
        self.results = results or ItemResults()
        self.speakers = speakers
        self.counters = counters
        self._send = send
        self._queue: asyncio.Queue[ItemJob] = asyncio.Queue(MAX_PENDING_ITEMS)
        self._task = asyncio.get_running_loop().create_task(self._run(), name=name)

    def submit(self, job: ItemJob) -> None:
        """Queue an item; a full queue answers its classifiers with "overloaded" at once."""
        try:
            self._queue.put_nowait(job)
        except asyncio.QueueFull:
            error = Overloaded(f"{MAX_PENDING_ITEMS} items are already waiting for classification")
            for kind in job.classifiers:
                self._fail(kind, job, error)
            self.results.finish(job.item_id)

    def send(self, event: ItemClassification) -> None:
        self.results.add(event.to_wire())
        self._send(event)

    async def close(self) -> None:
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task

    async def _run(self) -> None:
        while True:
            job = await self._queue.get()
            await asyncio.gather(*(self._classify(kind, job) for kind in job.classifiers))
            self.results.finish(job.item_id)

    async def _classify(self, kind: str, job: ItemJob) -> None:
        event: ItemClassification
        try:
            if kind == "speaker":
                event = await self._speaker(job)
            else:
                event = await self._text(kind, job)
        except Exception as exc:
            self._fail(kind, job, exc)
            return
        self.counters.classifications += 1
        self.send(event)

    async def _speaker(self, job: ItemJob) -> SpeakerIdentified:
        if job.audio is None:
            raise AudioEvicted("the item's audio had left the session's buffer")
        entry = job.entries["speaker"]
        vector = await embed(self.runtime, entry, job.audio)
        if self.speakers is None:
            speaker, score = UNKNOWN, 0.0
        else:
            snapshot = await self.speakers.snapshot(entry.spec.id)
            found = snapshot.identify(vector, job.speaker_threshold)
            speaker, score = found.speaker, found.score
        return SpeakerIdentified(item_id=job.item_id, speaker=speaker, score=score)

    async def _text(self, kind: str, job: ItemJob) -> Classification:
        entry = job.entries[kind]
        labels, logits = await classify_text(self.runtime, entry, job.transcript)
        return Classification(
            item_id=job.item_id,
            classifier=kind,
            model=entry.spec.id,
            labels=label_scores(labels, logits, top_k=None),
        )

    def _fail(self, kind: str, job: ItemJob, error: BaseException) -> None:
        self.counters.classification_failures += 1
        desc = describe(error)
        code = desc.code if isinstance(error, VoxwireError) else "classification_failed"
        message = desc.message if desc.is_peer_error else f"{kind} classification failed"
        level = logging.INFO if isinstance(error, PeerError) else logging.WARNING
        log.log(level, "%s: %s of %s failed: %r", self._task.get_name(), kind, job.item_id, error)
        failure = ClassificationFailure(code=code, message=message)
        if kind == "speaker":
            self.send(
                SpeakerIdentified(item_id=job.item_id, speaker=None, score=None, error=failure)
            )
        else:
            entry = job.entries.get(kind)
            model = entry.spec.id if entry is not None else None
            self.send(
                Classification(
                    item_id=job.item_id, classifier=kind, model=model, labels=[], error=failure
                )
            )


# -- one session's pipeline ------------------------------------------------------------------


class LiveClassifiers:
    """What a Realtime connection drives: audio in through :meth:`feed` (it reaches the
    session's driver unless the gate holds it), engine events through :meth:`on_events`."""

    def __init__(
        self,
        runtime: Runtime,
        driver: SessionDriver,
        send: SendEvent,
        *,
        session_id: str,
        speakers: SpeakerStore | None = None,
    ) -> None:
        self.runtime = runtime
        self.driver = driver
        self.send = send
        self.session_id = session_id
        self.speakers = speakers
        self.config = ClassificationConfig()
        self.counters = ClassifierCounters()
        self.gate = WakeWordGate()
        self._entries: dict[str, CatalogEntry] = {}
        self._feed_lock = asyncio.Lock()
        self._listener: WakeWordListener | None = None
        self._items: ItemClassifiers | None = None
        self._rate = MODEL_RATE
        self._command_after: int | None = None
        """Session position an utterance must end after to close the open gate."""
        self._last_stopped: int | None = None
        self.results = ItemResults()
        """Each classified item's results, for the reply to its turn."""

    # -- configuration -------------------------------------------------------------------

    async def prepare(self, config: ClassificationConfig) -> dict[str, CatalogEntry]:
        """Load the models `config` needs and check it against them; raises a PeerError
        (unknown model or wake word) before anything changes."""
        wanted = [c for c in config.classifiers if c != "wake_word"]
        if config.detects_wake_words:
            wanted.insert(0, "wake_word")
        entries = {kind: self._resolve(kind) for kind in wanted}
        await asyncio.gather(*(self.runtime.ensure_loaded(e) for e in entries.values()))
        if "wake_word" in entries:
            model = entries["wake_word"].model
            if not isinstance(model, WakeWordModel):
                raise ProtocolError(
                    f"model {entries['wake_word'].spec.id!r} does not detect wake words",
                    code="invalid_value",
                    param="session.voxwire.classifiers",
                )
            check_wake_words(config, tuple(model.wake_words))
        return entries

    def _resolve(self, kind: str) -> CatalogEntry:
        try:
            if kind == "wake_word":
                return self.runtime.resolve(WAKE_WORD_MODEL, "audio-classification")
            if kind == "speaker":
                return self.runtime.resolve(None, "speaker-embedding")
            model = SENTIMENT_MODEL if kind == "sentiment" else INTENT_MODEL
            return self.runtime.resolve(model, "text-classification")
        except VoxwireError as exc:
            exc.param = "session.voxwire.classifiers"
            raise

    async def apply(self, config: ClassificationConfig, entries: dict[str, CatalogEntry]) -> None:
        """Switch to `config` (its models prepared by :meth:`prepare`)."""
        async with self._feed_lock:
            if config.detects_wake_words:
                if self._listener is None:
                    self._listener = WakeWordListener(
                        self.runtime,
                        entries["wake_word"],
                        config.wake_words,
                        self.counters,
                        self._on_detection,
                        name=f"{self.session_id}:wake-words",
                        position=round(self.gate.position),
                    )
                self._listener.config = config.wake_words
            elif self._listener is not None:
                await self._listener.close()
                self._listener = None
            if config.wake_word_gate and self.gate.state is GateState.OFF:
                await self.driver.run(_commit_open_utterance)
                self.gate.enable()
            elif not config.wake_word_gate and self.gate.state is not GateState.OFF:
                await self._pass(self.gate.disable(self._rate))
            if self._items is None and any(c in ITEM_CLASSIFIERS for c in config.classifiers):
                self._items = ItemClassifiers(
                    self.runtime,
                    self.send,
                    self.speakers,
                    self.counters,
                    name=f"{self.session_id}:classifiers",
                    results=self.results,
                )
            self.config = config
            self._entries = entries

    # -- audio in ------------------------------------------------------------------------

    async def feed(self, samples: Float32Array, rate: int) -> None:
        """Input-rate audio from the client: to the wake-word listener, and to the
        session unless the gate holds it back."""
        self._rate = rate
        if self._listener is not None:
            self._listener.push(samples, rate)
        async with self._feed_lock:
            passed = self.gate.feed(samples, rate)
            self.counters.gate_samples_discarded = round(self.gate.discarded)
            if passed is not None:
                await self._pass(passed)

    def clear(self) -> None:
        """input_audio_buffer.clear: held audio goes too."""
        self.gate.clear()

    async def _pass(self, audio: Float32Array) -> None:
        if audio.size:
            await self.driver.feed(audio)

    async def _on_detection(self, detection: Detection) -> None:
        self.send(
            WakeWordDetected(
                name=detection.name,
                score=round(detection.score, 4),
                audio_ms=detection.position * 1000 // MODEL_RATE,
            )
        )
        async with self._feed_lock:
            if self.gate.state is not GateState.LISTENING:
                return
            audio, start = self.gate.wake(detection.position, self._rate)
            self.counters.gate_opened += 1
            self.counters.gate_samples_discarded = round(self.gate.discarded)
            # Where the wake word ends on the session's clock, which the gate stopped.
            wake_end = self.driver.session.buffer.end + round(detection.position - start)
            self._command_after = wake_end + COMMAND_MIN_MS * MODEL_RATE // 1000
            self._last_stopped = None
            log.info(
                "%s: %r opened the gate at %d ms",
                self.session_id,
                detection.name,
                detection.position * 1000 // MODEL_RATE,
            )
            await self._pass(audio)

    # -- engine events out -----------------------------------------------------------------

    def on_events(self, events: Sequence[Event]) -> None:
        """Engine events that were just sent to the client (never raises)."""
        try:
            for event in events:
                if isinstance(event, SpeechStopped):
                    self._last_stopped = event.audio_end_ms * MODEL_RATE // 1000
                elif isinstance(event, InputAudioCommitted):
                    self._maybe_close_gate()
                elif isinstance(event, TranscriptionCompleted):
                    self._classify(event)
        except Exception:
            log.exception("%s: live classification failed on %s", self.session_id, events)

    def _maybe_close_gate(self) -> None:
        if self.gate.state is not GateState.OPEN:
            return
        command_after = self._command_after or 0
        manual = not self.driver.session.options.server_vad
        if manual or (self._last_stopped is not None and self._last_stopped >= command_after):
            self.gate.close()
            log.info("%s: command committed; the gate listens again", self.session_id)

    def _classify(self, event: TranscriptionCompleted) -> None:
        wanted = tuple(
            c
            for c in self.config.classifiers
            if c == "speaker" or (c in ITEM_CLASSIFIERS and event.transcript.strip())
        )
        if not wanted or self._items is None:
            return
        audio = self._item_audio(event) if "speaker" in wanted else None
        self.results.expect(event.item_id)
        self._items.submit(
            ItemJob(
                item_id=event.item_id,
                transcript=event.transcript,
                audio=audio,
                classifiers=wanted,
                entries=dict(self._entries),
                speaker_threshold=self.config.speaker_threshold,
            )
        )

    def _item_audio(self, event: TranscriptionCompleted) -> Float32Array | None:
        buffer = self.driver.session.buffer
        start = event.timings.audio_start_ms * MODEL_RATE // 1000
        end = min(event.timings.audio_end_ms * MODEL_RATE // 1000, buffer.end)
        end = min(end, start + int(MAX_SPEAKER_AUDIO_S * MODEL_RATE))
        try:
            return buffer.read(start, max(start, end))
        except AudioEvicted:
            return None

    # -- the rest ------------------------------------------------------------------------

    def stats(self) -> dict[str, Any]:
        """The counters plus the gate's state, for voxwire.session.stats."""
        return {**dataclasses.asdict(self.counters), "gate": self.gate.state.value}

    async def close(self) -> None:
        """The connection is gone: stop the tasks (queued model calls are cancelled)."""
        for part in (self._listener, self._items):
            if part is not None:
                await part.close()
        self._listener = self._items = None
        self.config = replace(self.config, classifiers=())


def _commit_open_utterance(session: Session) -> list[Event]:
    """Commit the utterance in progress, if any (the gate is about to close)."""
    if session.options.server_vad and session.segmenter.is_open:
        with contextlib.suppress(EmptyCommit):
            return session.commit()
    return []
