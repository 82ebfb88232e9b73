"""Session job orchestration (speculative finals, stale results, failures), driven by hand.

The VAD is the scripted energy detector and results are handed back in a chosen
order, so each test sets up an exact interleaving of audio and decode results.
"""

from __future__ import annotations

import numpy as np
import pytest

from tests.engine.scripted import EnergyVad, quiet, tone
from voxwire.engine.errors import Overloaded
from voxwire.engine.events import (
    InputAudioCommitted,
    SpeechStopped,
    TranscriptionCompleted,
    TranscriptionDelta,
    TranscriptionFailed,
)
from voxwire.engine.session import DecodeJob, JobKind, Session, SessionOptions
from voxwire.engine.streaming_asr import StreamingOptions
from voxwire.models.interfaces import DecodeResult, Word

OPTIONS = SessionOptions(
    streaming=StreamingOptions(
        min_partial_audio_ms=300, partial_budget=None, commit_lag_words=1, min_commit_audio_ms=0
    )
)

STOPPED_WITH_FINAL_READY = [
    SpeechStopped,
    InputAudioCommitted,
    TranscriptionDelta,
    TranscriptionCompleted,
]
"""The events of an utterance's end when its speculative final is already in: no decode."""


def jobs_of(session: Session, kind: JobKind) -> list[DecodeJob]:
    return [j for j in session.take_jobs() if j.kind is kind]


def test_speculative_final_is_used_when_speech_really_stopped() -> None:
    s = Session(EnergyVad(), SessionOptions(partials=False))
    s.feed(quiet(0.3))
    s.feed(tone(1.0))
    s.feed(quiet(0.2))  # 160 ms into the silence: speculative final starts
    (spec,) = jobs_of(s, JobKind.SPECULATIVE)
    assert s.complete(spec, DecodeResult(text="hello world")) == []
    events = s.feed(quiet(0.5))
    assert [type(e) for e in events] == STOPPED_WITH_FINAL_READY
    assert s.take_jobs() == []  # no second final decode
    assert s.counters.speculative_hits == 1


def test_a_speculative_final_still_running_when_speech_stops_is_promoted_once() -> None:
    s = Session(EnergyVad(), SessionOptions(partials=False))
    s.feed(quiet(0.3))
    s.feed(tone(1.0))
    s.feed(quiet(0.2))
    (spec,) = jobs_of(s, JobKind.SPECULATIVE)
    assert s.take_promotions() == []  # speech may still resume: it stays speculative
    s.feed(quiet(0.5))  # speech stopped where the speculative decode ends
    (promoted,) = s.take_promotions()
    assert promoted is spec and s.take_promotions() == [] and s.take_jobs() == []
    events = s.complete(spec, DecodeResult(text="hello world"))
    assert [type(e) for e in events] == [TranscriptionDelta, TranscriptionCompleted]


def test_speculation_voided_when_speech_resumes() -> None:
    s = Session(EnergyVad(), SessionOptions(partials=False))
    s.feed(np.concatenate([quiet(0.3), tone(1.0), quiet(0.25)]))
    (spec,) = jobs_of(s, JobKind.SPECULATIVE)
    s.feed(tone(0.5))  # speech resumes
    assert s.complete(spec, DecodeResult(text="stale")) == []
    s.feed(quiet(0.25))
    (spec2,) = jobs_of(s, JobKind.SPECULATIVE)
    assert spec2.end > spec.end
    s.feed(quiet(0.5))
    events = s.complete(spec2, DecodeResult(text="whole utterance"))
    assert isinstance(events[-1], TranscriptionCompleted)
    assert events[-1].transcript == "Whole utterance"
    assert s.counters.speculative_misses == 1


def speak_until_first_partial() -> Session:
    """0.5 s of speech, its partial answered with "one two three"."""
    s = Session(EnergyVad(), OPTIONS)
    s.feed(quiet(0.3))
    s.feed(tone(0.5))
    (p1,) = jobs_of(s, JobKind.PARTIAL)
    s.complete(p1, DecodeResult(text="one two three"))
    return s


def speak_until_second_partial() -> tuple[Session, DecodeJob]:
    """0.9 s of speech; the first partial answered, the second still out."""
    s = speak_until_first_partial()
    s.feed(tone(0.4))
    (p2,) = jobs_of(s, JobKind.PARTIAL)
    return s, p2


def test_a_partial_landing_during_the_hangover_commits_nothing() -> None:
    s, p2 = speak_until_second_partial()  # p2 is still running when the silence begins
    s.feed(quiet(0.2))
    (spec,) = jobs_of(s, JobKind.SPECULATIVE)
    assert spec.request.prefix == ""
    # The speculative final covers all this audio: the late partial is not used.
    assert s.complete(p2, DecodeResult(text="one two three four")) == []
    s.complete(spec, DecodeResult(text="one two three four"))
    events = s.feed(quiet(0.5))
    assert [type(e) for e in events] == STOPPED_WITH_FINAL_READY
    assert s.counters.speculative_hits == 1


def test_resumed_speech_speculates_again_with_what_is_committed_now() -> None:
    s, p2 = speak_until_second_partial()
    s.complete(p2, DecodeResult(text="one two three four"))  # commits "one two"
    s.feed(quiet(0.2))
    jobs = s.take_jobs()
    (spec,) = [j for j in jobs if j.kind is JobKind.SPECULATIVE]
    assert spec.request.prefix == "One two"
    for late in (j for j in jobs if j.kind is JobKind.PARTIAL):
        assert s.complete(late, DecodeResult(text="ignored")) == []
    s.feed(tone(0.3))  # speech resumes: speculation void
    (p3,) = jobs_of(s, JobKind.PARTIAL)
    s.complete(p3, DecodeResult(text="one two three four five six"))  # commits more
    s.feed(quiet(0.2))
    (spec2,) = jobs_of(s, JobKind.SPECULATIVE)
    assert spec2.request.prefix == "One two three"
    s.complete(spec2, DecodeResult(text="one two three four five six"))
    events = s.feed(quiet(0.5))
    assert isinstance(events[-1], TranscriptionCompleted)
    assert events[-1].transcript == "One two three four five six"


def test_a_refused_final_becomes_a_failed_event_and_the_session_goes_on() -> None:
    s = Session(EnergyVad(), SessionOptions(partials=False, speculative_final=False))
    s.feed(np.concatenate([quiet(0.3), tone(1.0), quiet(0.7)]))
    (final,) = jobs_of(s, JobKind.FINAL)
    (failed,) = s.fail(final, Overloaded("queue full"))
    assert isinstance(failed, TranscriptionFailed)
    assert failed.error["code"] == "overloaded"
    assert "queue" not in failed.error["message"]  # internals stay inside
    s.feed(np.concatenate([tone(1.0), quiet(0.7)]))
    (final2,) = jobs_of(s, JobKind.FINAL)
    events = s.complete(final2, DecodeResult(text="second"))
    assert isinstance(events[-1], TranscriptionCompleted)
    assert s.counters.transcriptions_failed == 1


def test_partials_wait_while_a_speculative_final_runs() -> None:
    s = Session(EnergyVad(), OPTIONS)
    s.feed(np.concatenate([quiet(0.3), tone(1.0), quiet(0.2)]))
    s.take_jobs()
    s.feed(quiet(0.2))  # still in the hangover
    assert jobs_of(s, JobKind.PARTIAL) == []


def test_inconsistent_options_are_refused() -> None:
    with pytest.raises(ValueError, match="buffer_seconds"):
        SessionOptions(buffer_seconds=10.0)
    with pytest.raises(ValueError):
        SessionOptions(final_beam_size=0)


def timed_words(job: DecodeJob, *words: tuple[str, float]) -> DecodeResult:
    """A result whose words end at the given absolute times (seconds of the stream)."""
    start = job.start / 16_000
    timed = []
    previous = start
    for word, end in words:
        timed.append(Word(word, previous - start, end - start))
        previous = end
    return DecodeResult(text=" ".join(w for w, _ in words), words=tuple(timed))


@pytest.mark.parametrize("answered", ["before speech resumes", "after speech resumes"])
def test_a_missed_speculative_final_commits_the_words_before_the_pause(answered: str) -> None:
    """Speech pauses (a speculative final starts), then goes on: the speculative decode
    is a hypothesis whose words before the pause are whole, so the words the partial
    before it agreed on commit as soon as it lands, not a partial or two later."""
    s = speak_until_first_partial()
    s.feed(tone(0.5))
    for late in jobs_of(s, JobKind.PARTIAL):
        s.complete(late, DecodeResult(text="one two three"))
    s.feed(quiet(0.2))
    (spec,) = jobs_of(s, JobKind.SPECULATIVE)
    # Speech stopped at 1.3 s; a word decoded in the padding after it is not whole.
    result = timed_words(spec, ("one", 0.6), ("two", 0.9), ("three", 1.25), ("uh", 1.4))
    if answered == "before speech resumes":
        assert s.complete(spec, result) == []
        events = s.feed(tone(0.1))
    else:
        assert s.feed(tone(0.1)) == []
        events = s.complete(spec, result)
    # The partials committed "One two" (the last word of one is always held back);
    # "three" ends before the pause and commits with the speculative hypothesis.
    deltas = [e.delta for e in events if isinstance(e, TranscriptionDelta)]
    assert deltas == [" three"]
    assert s.counters.speculative_misses == 1


def test_no_speculation_while_the_workers_are_saturated() -> None:
    s = Session(EnergyVad(), SessionOptions(partials=False))
    s.load = 1.0  # every worker busy and as much again queued
    s.feed(np.concatenate([quiet(0.3), tone(1.0), quiet(0.2)]))
    assert jobs_of(s, JobKind.SPECULATIVE) == []
    s.feed(quiet(0.5))
    (final,) = jobs_of(s, JobKind.FINAL)  # the true final still comes
    events = s.complete(final, DecodeResult(text="hello"))
    assert isinstance(events[-1], TranscriptionCompleted)
