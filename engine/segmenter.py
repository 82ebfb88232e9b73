"""Voice-activity segmentation as an explicit state machine.

The segmenter consumes 16 kHz samples, asks a :class:`SpeechProbability` model
for the speech probability of each fixed-size frame, and turns those into
utterances with the OpenAI Realtime ``server_vad`` knobs. Everything is in
absolute sample positions, and decisions are taken per frame, so the events do
not depend on how the input was split into chunks.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np
import numpy.typing as npt

from voxwire.engine.audio import MODEL_RATE
from voxwire.engine.errors import IllegalTransition
from voxwire.models.interfaces import SpeechProbability


class VadState(enum.Enum):
    """Where the segmenter is between and within utterances."""

    SILENCE = "silence"
    """No utterance open."""
    ONSET = "onset"
    """Speech heard, but not yet for min_speech_ms: nothing announced yet."""
    SPEECH = "speech"
    """An utterance is open and speech is going on."""
    HANGOVER = "hangover"
    """An utterance is open, silence has begun but not lasted silence_duration_ms."""


_TRANSITIONS: dict[VadState, frozenset[VadState]] = {
    VadState.SILENCE: frozenset({VadState.ONSET}),
    VadState.ONSET: frozenset({VadState.SILENCE, VadState.SPEECH}),
    VadState.SPEECH: frozenset({VadState.HANGOVER, VadState.SILENCE}),
    VadState.HANGOVER: frozenset({VadState.SPEECH, VadState.SILENCE}),
}


@dataclass(frozen=True)
class SegmenterOptions:
    """Turn-detection knobs (names and defaults as in OpenAI's server_vad)."""

    threshold: float = 0.5
    prefix_padding_ms: int = 300
    silence_duration_ms: int = 500
    min_speech_ms: int = 200
    max_utterance_s: float = 30.0
    end_padding_ms: int = 160
    """Silence kept after the last speech frame, so the recogniser hears the word end
    (never more than silence_duration_ms)."""
    hysteresis: float = 0.15
    """Speech continues while the probability stays above threshold - hysteresis."""

    def __post_init__(self) -> None:
        if not 0.0 < self.threshold < 1.0:
            raise ValueError("threshold must be between 0 and 1")
        if min(self.prefix_padding_ms, self.silence_duration_ms, self.min_speech_ms) < 0:
            raise ValueError("durations must not be negative")
        if not 1.0 <= self.max_utterance_s <= 30.0:
            raise ValueError("max_utterance_s must be between 1 and 30")


@dataclass(frozen=True)
class UtteranceStarted:
    """Speech confirmed; the utterance's audio begins at `start` (prefix padding included)."""

    start: int


@dataclass(frozen=True)
class SilenceBegan:
    """Speech may be over: if it is, the utterance will end at `end`.

    Emitted end_padding_ms into the silence, so a speculative final decode of
    ``[start, end)`` can run during the rest of the hangover.
    """

    start: int
    end: int


@dataclass(frozen=True)
class SpeechResumed:
    """Speech came back during the hangover; a speculative end is void."""

    start: int


@dataclass(frozen=True)
class UtteranceEnded:
    """The utterance ``[start, end)`` is finished (silence, a cut, or end of stream)."""

    start: int
    end: int
    reason: str = "silence"


SegmenterEvent = UtteranceStarted | SilenceBegan | SpeechResumed | UtteranceEnded


class TurnJudge(Protocol):
    """Decides in a pause whether the open utterance is a finished turn (semantic_vad)."""

    max_wait: int
    """Silence (samples) that ends the utterance whatever the judge says."""

    def due(self, silent: int, asked: int) -> bool:
        """Whether to ask now, `silent` samples into a pause, having asked `asked` times."""
        ...

    def complete(self, start: int, now: int) -> bool:
        """Whether the utterance that began at `start` is finished at `now`."""
        ...


@dataclass
class _OpenUtterance:
    start: int
    last_speech_end: int
    frame_starts: list[int] = field(default_factory=list)
    frame_scores: list[float] = field(default_factory=list)
    silence_announced: bool = False
    judge_asked: int = 0
    """Times the turn judge was asked in the current pause."""


class Segmenter:
    """Sans-I/O VAD segmenter: ``feed(samples) -> list[SegmenterEvent]``."""

    def __init__(self, vad: SpeechProbability, options: SegmenterOptions | None = None) -> None:
        self.vad = vad
        self.frame = vad.frame_samples
        self.judge: TurnJudge | None = None
        """With a judge, a pause ends the utterance when the judge says the turn is
        complete, or after the judge's max_wait (not silence_duration_ms)."""
        self.configure(options or SegmenterOptions())
        self.state = VadState.SILENCE
        self._pending = np.zeros(0, dtype=np.float32)
        self._position = 0  # absolute sample position of the start of _pending
        self._onset_start = 0
        self._previous_end = 0
        self._utterance: _OpenUtterance | None = None
        self.samples_segmented = 0
        """Samples that ended up inside a finished utterance."""

    def configure(self, options: SegmenterOptions) -> None:
        """Adopt new knobs; they apply from the next frame on, even mid-utterance."""
        self.options = options
        self._prefix = options.prefix_padding_ms * MODEL_RATE // 1000
        self._silence = options.silence_duration_ms * MODEL_RATE // 1000
        self._min_speech = options.min_speech_ms * MODEL_RATE // 1000
        self._end_pad = (
            min(options.end_padding_ms, options.silence_duration_ms) * MODEL_RATE // 1000
        )
        self._max_len = int(options.max_utterance_s * MODEL_RATE)
        self._off_threshold = max(0.01, options.threshold - options.hysteresis)

    @property
    def is_open(self) -> bool:
        """Whether an utterance has started and not yet ended."""
        return self._utterance is not None

    def reset(self) -> None:
        """Forget any onset or open utterance (its audio was discarded) and start
        listening afresh from the current position."""
        if self.state is not VadState.SILENCE:
            self._go(VadState.SILENCE)
        self._utterance = None
        self._position = self.position  # the held-back part of a frame is discarded too
        self._pending = np.zeros(0, dtype=np.float32)
        self._previous_end = self._position
        self.vad.reset()

    def skip_to(self, position: int) -> None:
        """Jump forward to `position` without looking at the audio in between
        (it was never meant for the VAD); only allowed with no utterance open."""
        if self._utterance is not None or position < self.position:
            raise IllegalTransition("the segmenter can only skip forward between utterances")
        if self.state is VadState.ONSET:
            self._go(VadState.SILENCE)
        self._position = position
        self._pending = np.zeros(0, dtype=np.float32)
        self._previous_end = position
        self.vad.reset()

    @property
    def end_padding(self) -> int:
        """Samples of silence kept after the last speech (an utterance's end pad)."""
        return self._end_pad

    @property
    def position(self) -> int:
        """Samples consumed so far (including a not yet complete frame)."""
        return self._position + len(self._pending)

    def _go(self, new: VadState) -> None:
        if new not in _TRANSITIONS[self.state]:
            raise IllegalTransition(
                f"VAD segmenter cannot go from {self.state.value} to {new.value}"
            )
        self.state = new

    def feed(self, samples: npt.NDArray[np.float32]) -> list[SegmenterEvent]:
        """Consume 16 kHz samples; return the events of every completed frame."""
        data = np.concatenate([self._pending, samples]) if len(self._pending) else samples
        events: list[SegmenterEvent] = []
        n_frames = len(data) // self.frame
        for i in range(n_frames):
            frame = data[i * self.frame : (i + 1) * self.frame]
            start = self._position
            self._position += self.frame
            events.extend(self._on_frame(frame, start, self._position))
        self._pending = np.array(data[n_frames * self.frame :], dtype=np.float32)
        return events

    def flush(self) -> list[SegmenterEvent]:
        """Close an open utterance at the last sample (end of stream, or a commit).

        Feeding may go on afterwards; a partial frame held back is dropped."""
        end = self.position
        self._position = end
        self._pending = np.zeros(0, dtype=np.float32)
        if self.state is VadState.ONSET:
            self._go(VadState.SILENCE)
        if self._utterance is None:
            return []
        utt = self._utterance
        if self.state is VadState.HANGOVER:
            end = min(end, utt.last_speech_end + self._end_pad)
        return [self._end(end, "end_of_stream")]

    def _on_frame(
        self, frame: npt.NDArray[np.float32], start: int, end: int
    ) -> list[SegmenterEvent]:
        p = float(self.vad.probability(frame))
        is_speech = p >= self.options.threshold
        is_silence = p < self._off_threshold
        events: list[SegmenterEvent] = []
        utt = self._utterance
        if utt is not None:
            utt.frame_starts.append(start)
            # Cut points prefer low speech probability, then low energy.
            utt.frame_scores.append(p + float(np.sqrt(np.mean(frame * frame))))

        if self.state is VadState.SILENCE:
            if is_speech:
                self._go(VadState.ONSET)
                self._onset_start = start
        elif self.state is VadState.ONSET:
            if is_silence:
                self._go(VadState.SILENCE)
            elif end - self._onset_start >= self._min_speech:
                begin = max(self._onset_start - self._prefix, self._previous_end, 0)
                self._go(VadState.SPEECH)
                self._utterance = _OpenUtterance(start=begin, last_speech_end=end)
                events.append(UtteranceStarted(begin))
        elif self.state is VadState.SPEECH:
            assert utt is not None
            if is_silence:
                self._go(VadState.HANGOVER)
            else:
                utt.last_speech_end = end
        elif self.state is VadState.HANGOVER:
            assert utt is not None
            if is_speech:
                self._go(VadState.SPEECH)
                utt.last_speech_end = end
                utt.judge_asked = 0
                if utt.silence_announced:
                    utt.silence_announced = False
                    events.append(SpeechResumed(utt.start))
            else:
                silent_for = end - utt.last_speech_end
                if not utt.silence_announced and silent_for >= self._end_pad:
                    utt.silence_announced = True
                    events.append(SilenceBegan(utt.start, utt.last_speech_end + self._end_pad))
                events.extend(self._on_pause(utt, silent_for, end))

        utt = self._utterance
        if utt is not None and end - utt.start >= self._max_len:
            if self.state is VadState.HANGOVER:
                # Speech has already paused: end here rather than open an utterance
                # of trailing silence.
                stop = min(end, utt.last_speech_end + self._end_pad)
                events.append(self._end(stop, "max_utterance"))
            else:
                events.extend(self._cut(utt, end))
        return events

    def _on_pause(self, utt: _OpenUtterance, silent_for: int, now: int) -> list[SegmenterEvent]:
        """End the utterance if the pause is long enough, or the judge finds it finished."""
        judge = self.judge
        stop = min(now, utt.last_speech_end + self._end_pad)  # a judge may end it sooner
        if silent_for >= (self._silence if judge is None else judge.max_wait):
            return [self._end(stop, "silence")]
        if judge is not None and judge.due(silent_for, utt.judge_asked):
            utt.judge_asked += 1
            if judge.complete(utt.start, now):
                return [self._end(stop, "turn_complete")]
        return []

    def _end(self, end: int, reason: str) -> UtteranceEnded:
        utt = self._utterance
        assert utt is not None
        self._go(VadState.SILENCE)
        self._utterance = None
        self._previous_end = end
        self.samples_segmented += end - utt.start
        return UtteranceEnded(utt.start, end, reason)

    def _cut(self, utt: _OpenUtterance, now: int) -> list[SegmenterEvent]:
        """Split an over-long utterance at the quietest frame of its second half."""
        half = utt.start + self._max_len // 2
        candidates = [
            (score, s)
            for s, score in zip(utt.frame_starts, utt.frame_scores, strict=True)
            if s >= half
        ]
        cut = min(candidates)[1] + self.frame if candidates else now
        cut = min(cut, now)
        ended = UtteranceEnded(utt.start, cut, "max_utterance")
        self.samples_segmented += cut - utt.start
        self._previous_end = cut
        rest = _OpenUtterance(start=cut, last_speech_end=max(utt.last_speech_end, cut))
        keep = [i for i, s in enumerate(utt.frame_starts) if s >= cut]
        rest.frame_starts = [utt.frame_starts[i] for i in keep]
        rest.frame_scores = [utt.frame_scores[i] for i in keep]
        self._utterance = rest
        return [ended, UtteranceStarted(cut)]
