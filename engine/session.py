"""A Session ties one audio stream's resampler, ring buffer, segmenter and
streaming-ASR policy together and emits typed events.

It is sans-I/O: ``feed()`` returns events and queues decode jobs;
the driver takes the jobs with ``take_jobs()``, runs them on a worker and
hands results back with ``complete()``. Nothing here blocks or spawns.
"""

from __future__ import annotations

import enum
import itertools
import logging
from collections import OrderedDict, deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from voxwire.engine.audio import MODEL_RATE, StreamResampler, as_mono_float32, pcm16_to_float32
from voxwire.engine.errors import AudioEvicted, EmptyCommit, IllegalTransition, Overloaded
from voxwire.engine.events import (
    Event,
    InputAudioCleared,
    InputAudioCommitted,
    SpeechStarted,
    SpeechStopped,
    TranscriptionCompleted,
    TranscriptionDelta,
    TranscriptionFailed,
    TranscriptionTentative,
    TranscriptionUsage,
    UtteranceTimings,
)
from voxwire.engine.ring_buffer import RingBuffer
from voxwire.engine.segmenter import (
    Segmenter,
    SegmenterOptions,
    SilenceBegan,
    SpeechResumed,
    UtteranceEnded,
    UtteranceStarted,
)
from voxwire.engine.streaming_asr import DecodeWindow, StreamingOptions, UtterancePolicy
from voxwire.engine.turns import SemanticTurn, SemanticTurnOptions
from voxwire.models.interfaces import (
    DecodeRequest,
    DecodeResult,
    SpeechProbability,
    TurnCompletion,
)

log = logging.getLogger(__name__)

_session_ids = itertools.count(1)

REMEMBERED_SPANS = 32
"""Committed items whose audio the session can still hand out (item_audio)."""
RECENT_TRANSCRIPTS = 2
"""Earlier transcripts passed as context to the next utterance's decodes (as Whisper
conditions on previous text): short utterances are heard much better with them."""
MAX_PROMPT_CHARS = 400


class JobKind(enum.Enum):
    PARTIAL = "partial"
    SPECULATIVE = "speculative"
    """A final decode started during the silence hangover, before speech_stopped."""
    FINAL = "final"


@dataclass(frozen=True)
class DecodeJob:
    """One decode the session wants run; `request.final` marks final priority."""

    job_id: int
    session_id: str
    item_id: str
    kind: JobKind
    start: int
    """Where the decoded clip begins (16 kHz samples)."""
    end: int
    request: DecodeRequest
    window: DecodeWindow
    retry: bool = False
    """A final decoded again without context (the first one re-read committed audio)."""

    @property
    def is_final(self) -> bool:
        return self.kind is not JobKind.PARTIAL


@dataclass(frozen=True)
class SessionOptions:
    """Everything that shapes one session's behaviour."""

    input_rate: int = MODEL_RATE
    server_vad: bool = True
    """Cut utterances with the VAD; False leaves commits to the client (turn_detection null)."""
    segmenter: SegmenterOptions = field(default_factory=SegmenterOptions)
    semantic_turn: SemanticTurnOptions | None = None
    """With server VAD: end a turn when a turn model finds it finished (semantic_vad)
    instead of after silence_duration_ms."""
    streaming: StreamingOptions = field(default_factory=StreamingOptions)
    partials: bool = True
    """Emit deltas while the person speaks; False decodes only finals."""
    tentative: bool = False
    """Also emit the uncommitted hypothesis (voxwire.transcription.tentative events)."""
    speculative_final: bool = True
    """Start the final decode during the silence hangover."""
    speculate_below_load: float = 1.0
    """Speculate only while the workers' load is below this: a saturated worker has no
    time for decodes that speech resuming may waste."""
    buffer_seconds: float = 60.0
    language: str | None = None
    prompt: str = ""
    """Text that guides the recogniser's vocabulary and style (OpenAI's `prompt`)."""
    final_beam_size: int = 1
    max_pending_jobs: int = 8
    min_commit_ms: int = 100
    """A client commit of less audio than this is refused as empty."""

    def __post_init__(self) -> None:
        if self.buffer_seconds < self.segmenter.max_utterance_s + 1.0:
            raise ValueError("buffer_seconds must exceed max_utterance_s by at least 1 s")
        if self.final_beam_size < 1 or self.max_pending_jobs < 1:
            raise ValueError("final_beam_size and max_pending_jobs must be at least 1")


@dataclass
class SessionCounters:
    """'Nothing lost', measurable: where every sample and job went."""

    samples_in: int = 0
    """Input samples at the input rate."""
    samples_resampled: int = 0
    """Samples at 16 kHz that entered the ring buffer."""
    samples_segmented: int = 0
    samples_transcribed: int = 0
    """16 kHz samples covered by final transcripts."""
    samples_decoded: int = 0
    """16 kHz samples handed to the recogniser, partials and finals together."""
    decode_seconds: float = 0.0
    """Compute time the recogniser spent on this session's decodes."""
    final_retries: int = 0
    """Finals decoded again without context because they re-read committed audio."""
    partial_decodes: int = 0
    final_decodes: int = 0
    speculative_hits: int = 0
    speculative_misses: int = 0
    jobs_dropped: int = 0
    transcriptions_failed: int = 0
    evicted_samples: int = 0
    """Samples the ring buffer let go of to make room: almost all of it audio already
    transcribed or silence between utterances; what a final still needed is samples_lost."""
    items_started: int = 0
    """Input items (utterances or commits) opened. Each ends in exactly one of
    items_completed, transcriptions_failed or items_cleared, or is still open
    (`Session.open_items`), or was open when the session ended (items_abandoned)."""
    items_completed: int = 0
    items_cleared: int = 0
    """Open items dropped by input_audio_buffer.clear."""
    items_abandoned: int = 0
    """Items still open when the session ended (the client left mid-utterance)."""
    samples_lost: int = 0
    """Samples a final decode needed that the ring buffer had already let go of."""


@dataclass
class _Item:
    item_id: str
    start: int
    policy: UtterancePolicy
    end: int | None = None
    speculative: DecodeJob | None = None
    speculative_result: DecodeResult | None = None
    resumed_speculative: DecodeJob | None = None
    """A speculative final still running when speech resumed: its result is a hypothesis."""
    final_job: DecodeJob | None = None
    tentative: str = ""
    """The tentative text last emitted."""


class Session:
    """One audio stream: feed samples, get events and decode jobs."""

    def __init__(
        self,
        vad: SpeechProbability,
        options: SessionOptions | None = None,
        session_id: str | None = None,
        inline_decoder: Callable[[Sequence[DecodeRequest]], list[DecodeResult]] | None = None,
        turn_model: Callable[[], TurnCompletion] | None = None,
    ) -> None:
        """`inline_decoder`, when given, runs each job the moment it is queued, so the
        events depend only on the audio (files, tests); otherwise a driver runs the jobs.
        `turn_model` gives the model that semantic_turn options need (asked for when
        they are first set)."""
        self.options = options or SessionOptions()
        self.session_id = session_id or f"sess_{next(_session_ids):06d}"
        self.resampler = StreamResampler(self.options.input_rate)
        self.buffer = RingBuffer(int(self.options.buffer_seconds * MODEL_RATE))
        self.segmenter = Segmenter(vad, self.options.segmenter)
        self._turn_model = turn_model
        self.turn_judge: SemanticTurn | None = None
        self._set_judge(self.options.semantic_turn)
        self.counters = SessionCounters()
        self._items: dict[str, _Item] = {}
        self._spans: OrderedDict[str, tuple[int, int]] = OrderedDict()
        """Where the recent committed items' audio lies (16 kHz), newest last."""
        self._open: _Item | None = None
        self._jobs: deque[DecodeJob] = deque()
        self._promoted: list[DecodeJob] = []
        """Speculative jobs handed out that became their item's final."""
        self._job_ids = itertools.count(1)
        self._item_ids = itertools.count(1)
        self._closed = False
        self._uncommitted_start = 0
        """Without server VAD: where the audio not yet committed begins (16 kHz)."""
        self._committed_samples = 0
        """Without server VAD: samples that went into client commits."""
        self._previous_item_id: str | None = None
        self._committed_until = 0
        """Where the last item's audio ends, committed words included (16 kHz)."""
        self._recent_text: deque[str] = deque(maxlen=RECENT_TRANSCRIPTS)
        """The last transcripts: context for the next utterance's decodes."""
        self._inline_decoder = inline_decoder
        self.load = 0.0
        """How busy the workers are, in [0, 1]; set by the driver, stretches the cadence."""

    # -- input ---------------------------------------------------------------------------

    def feed(self, samples: npt.ArrayLike) -> list[Event]:
        """Feed float32 (or int16) mono samples at the session's input rate."""
        if self._closed:
            raise IllegalTransition("session is closed: no more audio may be fed")
        audio = as_mono_float32(samples)
        self.counters.samples_in += len(audio)
        return self._feed_model_rate(self.resampler.process(audio))

    def feed_pcm16(self, data: bytes | bytearray | memoryview) -> list[Event]:
        """Feed little-endian PCM16 mono bytes at the session's input rate."""
        return self.feed(pcm16_to_float32(data))

    def end_of_stream(self) -> list[Event]:
        """No more audio: flush the resampler and close any open utterance."""
        if self._closed:
            return []
        events = self._feed_model_rate(self.resampler.flush())
        self._closed = True
        if self.options.server_vad:
            for seg_event in self.segmenter.flush():
                events.extend(self._on_segmenter_event(seg_event))
        elif self._uncommitted_samples >= self._min_commit:
            events.extend(self._commit_uncommitted())
        events.extend(self._run_inline())
        return events

    # -- client control (the Realtime API's input_audio_buffer.* and session.update) -----

    def commit(self) -> list[Event]:
        """The client commits the input audio: it becomes an item and is transcribed.

        With server VAD this ends the open utterance now; without, everything
        appended since the last commit becomes one item. Raises EmptyCommit when
        there is nothing (or under min_commit_ms) to commit.
        """
        self._check_open()
        if self.options.server_vad:
            events: list[Event] = []
            if self.segmenter.is_open:
                for seg_event in self.segmenter.flush():
                    events.extend(self._on_segmenter_event(seg_event))
            if not events:
                raise EmptyCommit("no speech in the input audio buffer to commit")
            return events + self._run_inline()
        # The resampler holds back a few samples; a commit is a boundary, so take them.
        events = self._feed_model_rate(self.resampler.flush())
        self.resampler = StreamResampler(self.options.input_rate)
        if self._uncommitted_samples < self._min_commit:
            if events:  # the flush filled an item to the limit: that was the commit
                return events
            got = self._uncommitted_samples * 1000 // MODEL_RATE
            raise EmptyCommit(
                f"buffer too small: expected at least {self.options.min_commit_ms} ms "
                f"of audio, got {got} ms"
            )
        return events + self._commit_uncommitted() + self._run_inline()

    def clear(self) -> list[Event]:
        """Discard the input audio not yet committed (and an utterance in progress)."""
        self._check_open()
        self.resampler = StreamResampler(self.options.input_rate)
        if self.options.server_vad:
            item = self._open
            if item is not None:
                self._open = None
                self._retire(item)
                self.counters.items_cleared += 1
                self._jobs = deque(job for job in self._jobs if job.item_id != item.item_id)
            self.segmenter.reset()
        else:
            self._uncommitted_start = self.buffer.end
        return [InputAudioCleared()]

    def reconfigure(self, options: SessionOptions) -> list[Event]:
        """Adopt new options mid-stream (a session.update).

        A new input rate applies to audio fed from now on; new VAD knobs apply
        from the next frame; switching server VAD off commits an open utterance,
        switching it on runs the VAD over the audio not yet committed.
        """
        self._check_open()
        if options.buffer_seconds != self.options.buffer_seconds:
            raise ValueError("buffer_seconds is fixed when the session is created")
        events: list[Event] = []
        if options.input_rate != self.options.input_rate:
            # What the old resampler holds back belongs to the old settings.
            events.extend(self._feed_model_rate(self.resampler.flush()))
            self.resampler = StreamResampler(options.input_rate)
        if options.semantic_turn != self.options.semantic_turn:
            self._set_judge(options.semantic_turn)
        old, self.options = self.options, options
        if options.segmenter != old.segmenter:
            self.segmenter.configure(options.segmenter)
        if old.server_vad and not options.server_vad:
            for seg_event in self.segmenter.flush():
                events.extend(self._on_segmenter_event(seg_event))
            self._uncommitted_start = self.buffer.end
        elif options.server_vad and not old.server_vad:
            start = max(self._uncommitted_start, self.buffer.start)
            self.segmenter.skip_to(start)
            events.extend(self._segment(self.buffer.read(start, self.buffer.end)))
        return events + self._run_inline()

    def _set_judge(self, options: SemanticTurnOptions | None) -> None:
        """Hand the segmenter a semantic turn judge, or take it away (None)."""
        if options is None:
            self.turn_judge = None
        else:
            if self._turn_model is None:
                raise ValueError("semantic turn detection needs a turn model")
            self.turn_judge = SemanticTurn(self._turn_model(), options, self.buffer.read)
        self.segmenter.judge = self.turn_judge

    def _check_open(self) -> None:
        if self._closed:
            raise IllegalTransition("session is closed")

    @property
    def _min_commit(self) -> int:
        return self.options.min_commit_ms * MODEL_RATE // 1000

    @property
    def _uncommitted_samples(self) -> int:
        return self.buffer.end - max(self._uncommitted_start, self.buffer.start)

    def _commit_uncommitted(self, end: int | None = None) -> list[Event]:
        start = max(self._uncommitted_start, self.buffer.start)
        end = self.buffer.end if end is None else end
        self._uncommitted_start = end
        self._committed_samples += end - start
        self.counters.samples_segmented = self.segmenter.samples_segmented + self._committed_samples
        item = self._new_item(start)
        item.end = end
        events: list[Event] = [self._committed(item)]
        events.extend(self._request_final(item))
        return events

    def _feed_model_rate(self, audio: npt.NDArray[np.float32]) -> list[Event]:
        self.buffer.append(audio)
        self.counters.samples_resampled += len(audio)
        self.counters.evicted_samples = self.buffer.evicted_samples
        if self.options.server_vad:
            return self._segment(audio)
        # Without VAD an item may not outgrow what the recogniser takes in one
        # window: the session commits it itself, so no audio is lost.
        max_samples = int(self.options.segmenter.max_utterance_s * MODEL_RATE)
        events: list[Event] = []
        while self._uncommitted_samples >= max_samples:
            log.info("%s: %d samples uncommitted, committing them", self.session_id, max_samples)
            events.extend(
                self._commit_uncommitted(self.buffer.end - self._uncommitted_samples + max_samples)
            )
        return events + self._run_inline()

    def _segment(self, audio: npt.NDArray[np.float32]) -> list[Event]:
        events: list[Event] = []
        # Feed pieces that end on frame boundaries of the stream, and decide on
        # partial decodes only there, so the events do not depend on how the
        # input was chunked.
        frame = self.segmenter.frame
        i = 0
        while i < len(audio):
            step = frame - self.segmenter.position % frame
            for seg_event in self.segmenter.feed(audio[i : i + step]):
                events.extend(self._on_segmenter_event(seg_event))
            i += step
            if self.segmenter.position % frame == 0:
                self._maybe_request_partial()
                events.extend(self._run_inline())
        return events

    def _run_inline(self) -> list[Event]:
        if self._inline_decoder is None:
            return []
        events: list[Event] = []
        while self._jobs:
            job = self._jobs.popleft()
            events.extend(self.complete(job, self._inline_decoder([job.request])[0]))
        return events

    # -- jobs ----------------------------------------------------------------------------

    def take_jobs(self) -> list[DecodeJob]:
        """Decode jobs to run, oldest first; each is handed out once."""
        jobs = list(self._jobs)
        self._jobs.clear()
        return jobs

    def take_promotions(self) -> list[DecodeJob]:
        """Speculative finals already handed out that became their item's final while
        they wait (speech stopped where they end): the driver runs them as finals."""
        promoted, self._promoted = self._promoted, []
        return promoted

    def complete(self, job: DecodeJob, result: DecodeResult) -> list[Event]:
        """Hand back the result of a job; returns the events it causes."""
        item = self._items.get(job.item_id)
        self.counters.decode_seconds += result.compute_seconds
        if item is None:  # finished items are forgotten
            return []
        if job.kind is JobKind.PARTIAL:
            self.counters.partial_decodes += 1
            if item.end is not None or item.speculative is not None:
                item.policy.dropped()
                return []  # a final (maybe speculative) already covers this audio
            return self._text_events(item, item.policy.on_partial(result, job.end, job.window))
        self.counters.final_decodes += 1
        if job.kind is JobKind.SPECULATIVE:
            if item.resumed_speculative is job and item.end is None:
                item.resumed_speculative = None
                return self._settled_hypothesis(item, job, result)
            if item.speculative is not job:
                return []
            if item.end is None:
                item.speculative_result = result
                return []
            if item.end != job.end:
                return []
        elif item.final_job is not job:
            return []
        return self._finish(item, job, result)

    def fail(self, job: DecodeJob, error: BaseException) -> list[Event]:
        """A job could not run; a partial is forgotten, a final becomes a failure event."""
        item = self._items.get(job.item_id)
        if item is None:  # finished items are forgotten
            return []
        if job.kind is JobKind.PARTIAL:
            item.policy.dropped()
            self.counters.jobs_dropped += 1
            return []
        if job.kind is JobKind.SPECULATIVE:
            if item.speculative is job:
                item.speculative = None
                if item.end is not None:
                    return self._request_final(item)
            return []
        if item.final_job is not job:
            return []
        self._retire(item)
        self.counters.transcriptions_failed += 1
        code = getattr(error, "code", "transcription_failed")
        return [
            TranscriptionFailed(
                item_id=item.item_id,
                error={"type": "server_error", "code": code, "message": "transcription failed"},
            )
        ]

    def dropped(self, job: DecodeJob) -> list[Event]:
        """A worker dropped a job (superseded or queue full)."""
        return self.fail(job, Overloaded("dropped"))

    # -- segmenter events ----------------------------------------------------------------

    def _on_segmenter_event(self, event: object) -> list[Event]:
        if isinstance(event, UtteranceStarted):
            # After a cut at max_utterance_s the previous item may have committed
            # words past the cut: their audio stays with it, so no word is heard twice.
            start = max(event.start, self._committed_until)
            new = self._new_item(start)
            self._open = new
            return [SpeechStarted(audio_start_ms=_ms(start), item_id=new.item_id)]
        item = self._open
        if item is None:
            return []
        if isinstance(event, SilenceBegan):
            if self.options.speculative_final and self.load < self.options.speculate_below_load:
                item.speculative = self._queue(item, JobKind.SPECULATIVE, event.end)
                item.speculative_result = None
            return []
        if isinstance(event, SpeechResumed):
            spec, result = item.speculative, item.speculative_result
            item.speculative = None
            item.speculative_result = None
            if spec is None:
                return []
            self.counters.speculative_misses += 1
            # The decode of the speech up to the pause is still worth having: its
            # words are whole, so it can commit them with the hypotheses around it.
            if result is None:
                item.resumed_speculative = spec
                return []
            return self._settled_hypothesis(item, spec, result)
        if isinstance(event, UtteranceEnded):
            self._open = None
            committed_end = item.policy.committed_end or 0
            item.end = max(event.end, min(committed_end, self.buffer.end))
            self._committed_until = item.end
            self.counters.samples_segmented = self.segmenter.samples_segmented
            events: list[Event] = [
                SpeechStopped(audio_end_ms=_ms(item.end), item_id=item.item_id),
                self._committed(item),
            ]
            spec = item.speculative
            # The speculative decode counts only if it covers exactly this audio (a
            # cut may end the utterance elsewhere). Its forced prefix is still what
            # is committed: nothing commits while it runs.
            if spec is not None and spec.end == item.end:
                self.counters.speculative_hits += 1
                if item.speculative_result is not None:
                    events.extend(self._finish(item, spec, item.speculative_result))
                elif all(job is not spec for job in self._jobs):
                    self._promoted.append(spec)
                return events
            if spec is not None:
                self.counters.speculative_misses += 1
                item.speculative = None
            events.extend(self._request_final(item))
            return events
        return []

    def _settled_hypothesis(self, item: _Item, job: DecodeJob, result: DecodeResult) -> list[Event]:
        """A speculative final of an utterance that went on, used as a hypothesis."""
        speech_end = job.end - self.segmenter.end_padding
        delta = item.policy.on_hypothesis(result, job.end, job.window, whole_until=speech_end)
        return self._text_events(item, delta)

    def _text_events(self, item: _Item, delta: str) -> list[Event]:
        """The delta (if any) and, when it changed and is wanted, the tentative text."""
        events: list[Event] = []
        if delta:
            events.append(TranscriptionDelta(item_id=item.item_id, delta=delta))
        tentative = item.policy.tentative_text
        if self.options.tentative and tentative != item.tentative:
            item.tentative = tentative
            events.append(TranscriptionTentative(item_id=item.item_id, text=tentative))
        return events

    def _new_item(self, start: int) -> _Item:
        item = _Item(
            item_id=f"item_{self.session_id}_{next(self._item_ids):04d}",
            start=start,
            policy=UtterancePolicy(start, self.options.streaming),
        )
        self._items[item.item_id] = item
        self.counters.items_started += 1
        return item

    def _committed(self, item: _Item) -> InputAudioCommitted:
        assert item.end is not None
        self._spans[item.item_id] = (item.start, item.end)
        while len(self._spans) > REMEMBERED_SPANS:
            self._spans.popitem(last=False)
        event = InputAudioCommitted(item_id=item.item_id, previous_item_id=self._previous_item_id)
        self._previous_item_id = item.item_id
        return event

    def _request_final(self, item: _Item) -> list[Event]:
        assert item.end is not None
        item.final_job = self._queue(item, JobKind.FINAL, item.end)
        return []

    def _maybe_request_partial(self) -> None:
        item = self._open
        if item is None or not self.options.partials or item.speculative is not None:
            return  # during a speculative final, a partial of the same audio is wasted
        end = self.segmenter.position
        if item.policy.partial_due(end, self.load):
            if len(self._jobs) >= self.options.max_pending_jobs:
                self.counters.jobs_dropped += 1
                return
            self._queue(item, JobKind.PARTIAL, end)
            item.policy.requested(end)

    def _queue(
        self, item: _Item, kind: JobKind, end: int, window: DecodeWindow | None = None
    ) -> DecodeJob:
        window = window or item.policy.window()
        start = min(window.start, end)
        try:
            audio = self.buffer.read(start, end)
        except AudioEvicted:
            audio = self.buffer.read(max(start, self.buffer.start), end)
            if kind is not JobKind.PARTIAL:
                self.counters.samples_lost += self.buffer.start - start
            log.warning(
                "%s: audio of %s partly evicted before decoding", self.session_id, item.item_id
            )
        self.counters.samples_decoded += len(audio)
        final = kind is not JobKind.PARTIAL
        context = (self.options.prompt.strip(), *self._recent_text, window.context)
        prompt = " ".join(p for p in context if p)[-MAX_PROMPT_CHARS:]
        job = DecodeJob(
            job_id=next(self._job_ids),
            session_id=self.session_id,
            item_id=item.item_id,
            kind=kind,
            start=start,
            end=end,
            request=DecodeRequest(
                audio=audio,
                prompt=prompt,
                prefix=window.prefix,
                final=final,
                beam_size=self.options.final_beam_size if final else 1,
                language=self.options.language,
                # Partials need word times to commit with, and so do speculative finals
                # (a hypothesis when speech resumes); finals to recognise a re-read.
                word_timestamps=kind is not JobKind.FINAL or window.committed_end is not None,
            ),
            window=window,
            retry=window.committed_end is None and bool(window.context) and final,
        )
        self._jobs.append(job)
        return job

    def _finish(self, item: _Item, job: DecodeJob, result: DecodeResult) -> list[Event]:
        assert item.end is not None
        if not job.retry and item.policy.final_rereads(result, job.window):
            # The decoder read the context's audio again instead of continuing after
            # it: decode the tail once more from the end of the committed words.
            log.info(
                "%s: final of %s re-read its context; decoding again", self.session_id, item.item_id
            )
            self.counters.final_retries += 1
            item.speculative = None
            item.final_job = self._queue(item, JobKind.FINAL, item.end, item.policy.fresh_window())
            return []
        committed = item.policy.committed_text
        delta = item.policy.on_final(result, job.window)
        transcript = item.policy.committed_text
        log.debug(
            "%s: final of %s [%d, %d): decoded %r on top of %r: transcript %r",
            self.session_id,
            item.item_id,
            item.start,
            item.end,
            result.text,
            committed,
            transcript,
        )
        self.counters.samples_transcribed += item.end - item.start
        if transcript:
            self._recent_text.append(transcript)
        events: list[Event] = []
        if delta:
            events.append(TranscriptionDelta(item_id=item.item_id, delta=delta))
        events.append(
            TranscriptionCompleted(
                item_id=item.item_id,
                transcript=transcript,
                usage=TranscriptionUsage(seconds=round((item.end - item.start) / MODEL_RATE, 3)),
                timings=UtteranceTimings(
                    audio_start_ms=_ms(item.start), audio_end_ms=_ms(item.end)
                ),
            )
        )
        self._retire(item)
        self.counters.items_completed += 1
        return events

    def item_audio(self, item_id: str) -> npt.NDArray[np.float32] | None:
        """The 16 kHz audio of a recently committed item, or None when it is not one of
        the last :data:`REMEMBERED_SPANS` or its audio has left the ring buffer."""
        span = self._spans.get(item_id)
        if span is None:
            return None
        try:
            return self.buffer.read(*span)
        except AudioEvicted:
            return None

    @property
    def open_items(self) -> int:
        """Items started and not yet completed, failed or cleared."""
        return len(self._items)

    def abandon(self) -> None:
        """The session is over: count the items still open as abandoned."""
        self.counters.items_abandoned += len(self._items)
        self._items.clear()

    def _retire(self, item: _Item) -> None:
        """Forget a finished item: a long session must not grow without bound."""
        self._items.pop(item.item_id, None)


def _ms(samples: int) -> int:
    return samples * 1000 // MODEL_RATE
