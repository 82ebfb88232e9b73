"""Client control of a Session: commit, clear, manual turns, reconfigure, end of stream.

Driven by hand on the scripted energy VAD (every frame's verdict is known), with
decode results handed back by the test or by an inline decoder, so each test can
assert the exact events, their order and the audio every decode job covers.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

import numpy as np
import numpy.typing as npt
import pytest

from tests.engine.scripted import FRAME, RATE, EnergyVad, pattern, quiet, tone
from voxwire.engine.audio import StreamResampler
from voxwire.engine.errors import EmptyCommit, IllegalTransition
from voxwire.engine.events import (
    Event,
    InputAudioCleared,
    InputAudioCommitted,
    SpeechStarted,
    SpeechStopped,
    TranscriptionCompleted,
    TranscriptionDelta,
    TranscriptionUsage,
    UtteranceTimings,
)
from voxwire.engine.segmenter import Segmenter, SegmenterOptions, UtteranceStarted, VadState
from voxwire.engine.session import DecodeJob, JobKind, Session, SessionOptions
from voxwire.engine.streaming_asr import StreamingOptions
from voxwire.models.interfaces import DecodeRequest, DecodeResult

MANUAL = SessionOptions(server_vad=False)
QUIET_VAD = SessionOptions(partials=False, speculative_final=False)
"""Server VAD with no partial and no speculative decodes: only finals are queued."""
SHORT = SegmenterOptions(max_utterance_s=2.0)
"""Utterances (and manual items) of at most 2 s, so a cut needs little audio."""
END_PAD = 160 * RATE // 1000


def kinds(events: Sequence[object]) -> tuple[type[object], ...]:
    return tuple(type(e) for e in events)


def state(seg: Segmenter) -> VadState:
    """The state read afresh (mypy keeps an attribute narrowed across method calls)."""
    return seg.state


def one_final(session: Session) -> DecodeJob:
    jobs = session.take_jobs()
    assert [j.kind for j in jobs] == [JobKind.FINAL]
    return jobs[0]


def tone48(seconds: float, amplitude: float = 0.3, freq: float = 220.0) -> npt.NDArray[np.float32]:
    t = np.arange(round(seconds * 48_000)) / 48_000
    return (amplitude * np.sin(2 * np.pi * freq * t)).astype(np.float32)


def echo_length(requests: Sequence[DecodeRequest]) -> list[DecodeResult]:
    """An inline decoder whose transcript says how many samples it heard."""
    return [DecodeResult(text=f"heard {len(r.audio)}") for r in requests]


def completed(events: Sequence[Event]) -> list[TranscriptionCompleted]:
    return [e for e in events if isinstance(e, TranscriptionCompleted)]


# -- manual turns (server_vad=False, turn_detection null) ------------------------------------


def test_manual_turns_feed_nothing_until_the_client_commits() -> None:
    s = Session(EnergyVad(), MANUAL, session_id="m")
    audio = pattern(("q", 0.3), ("s", 1.0), ("q", 0.2))
    assert s.feed(audio[:10_000]) == []
    assert s.feed(audio[10_000:]) == []
    assert s.take_jobs() == []
    assert s.segmenter.position == 0  # the VAD never looked at the audio

    events = s.commit()
    assert events == [InputAudioCommitted(item_id="item_m_0001", previous_item_id=None)]
    job = one_final(s)
    assert job.item_id == "item_m_0001"
    assert (job.start, job.end) == (0, len(audio))
    assert job.request.final
    assert np.array_equal(job.request.audio, audio)

    events = s.complete(job, DecodeResult(text="hello there"))
    assert events == [
        TranscriptionDelta(item_id="item_m_0001", delta="Hello there"),
        TranscriptionCompleted(
            item_id="item_m_0001",
            transcript="Hello there",
            usage=TranscriptionUsage(seconds=1.5),
            timings=UtteranceTimings(audio_start_ms=0, audio_end_ms=1500),
        ),
    ]
    assert s.counters.samples_transcribed == len(audio)
    assert s.counters.samples_segmented == len(audio)

    second = tone(0.5)
    assert s.feed(second) == []
    assert s.commit() == [
        InputAudioCommitted(item_id="item_m_0002", previous_item_id="item_m_0001")
    ]
    job2 = one_final(s)
    assert (job2.start, job2.end) == (len(audio), len(audio) + len(second))
    assert np.array_equal(job2.request.audio, second)
    (done,) = completed(s.complete(job2, DecodeResult(text="again")))
    assert done.usage.seconds == 0.5
    assert done.timings == UtteranceTimings(audio_start_ms=1500, audio_end_ms=2000)
    assert s.take_jobs() == []


def test_manual_commit_with_an_inline_decoder_transcribes_at_once() -> None:
    s = Session(EnergyVad(), MANUAL, session_id="i", inline_decoder=echo_length)
    assert s.feed(tone(0.75)) == []
    events = s.commit()
    assert kinds(events) == (InputAudioCommitted, TranscriptionDelta, TranscriptionCompleted)
    assert events[1] == TranscriptionDelta(item_id="item_i_0001", delta="Heard 12000")
    assert completed(events)[0].usage.seconds == 0.75
    assert s.take_jobs() == []


def test_a_commit_under_min_commit_ms_is_refused_and_the_audio_kept() -> None:
    s = Session(EnergyVad(), MANUAL, session_id="e")
    with pytest.raises(EmptyCommit) as nothing:
        s.commit()
    assert nothing.value.code == "input_audio_buffer_commit_empty"

    short = tone(0.05)  # 50 ms < the default min_commit_ms of 100
    s.feed(short)
    with pytest.raises(EmptyCommit, match="got 50 ms") as refused:
        s.commit()
    assert refused.value.code == "input_audio_buffer_commit_empty"
    assert s.take_jobs() == []

    more = tone(0.2, freq=330.0)
    assert s.feed(more) == []
    assert s.commit() == [InputAudioCommitted(item_id="item_e_0001", previous_item_id=None)]
    job = one_final(s)
    assert (job.start, job.end) == (0, len(short) + len(more))  # the refused audio too
    assert np.array_equal(job.request.audio, np.concatenate([short, more]))


def test_min_commit_ms_is_the_exact_limit() -> None:
    s = Session(EnergyVad(), replace(MANUAL, min_commit_ms=250))
    s.feed(tone(0.25)[:-1])
    with pytest.raises(EmptyCommit):
        s.commit()
    s.feed(tone(0.25)[-1:])
    assert kinds(s.commit()) == (InputAudioCommitted,)
    assert one_final(s).end == 4000


def test_manual_clear_discards_the_uncommitted_audio() -> None:
    s = Session(EnergyVad(), MANUAL, session_id="c")
    s.feed(tone(1.0))
    assert s.clear() == [InputAudioCleared()]
    assert s.take_jobs() == []
    with pytest.raises(EmptyCommit):
        s.commit()  # nothing left to commit

    after = tone(0.5, freq=440.0)
    s.feed(after)
    assert s.commit() == [InputAudioCommitted(item_id="item_c_0001", previous_item_id=None)]
    job = one_final(s)
    assert (job.start, job.end) == (RATE, RATE + len(after))
    assert np.array_equal(job.request.audio, after)
    (done,) = completed(s.complete(job, DecodeResult(text="after")))
    assert done.usage.seconds == 0.5


def test_manual_items_commit_themselves_at_max_utterance_s() -> None:
    s = Session(EnergyVad(), replace(MANUAL, segmenter=SHORT, buffer_seconds=5.0), session_id="a")
    chunk = RATE // 10
    audio = np.tile(tone(0.1), 25)
    for i in range(19):
        assert s.feed(audio[i * chunk : (i + 1) * chunk]) == []
    assert s.take_jobs() == []
    # The 20th chunk brings the uncommitted audio to 2 s: the session commits it itself.
    events = s.feed(audio[19 * chunk : 20 * chunk])
    assert events == [InputAudioCommitted(item_id="item_a_0001", previous_item_id=None)]
    job = one_final(s)
    assert (job.start, job.end) == (0, 2 * RATE)
    assert np.array_equal(job.request.audio, audio[: 2 * RATE])

    for i in range(20, 25):
        assert s.feed(audio[i * chunk : (i + 1) * chunk]) == []
    assert s.commit() == [
        InputAudioCommitted(item_id="item_a_0002", previous_item_id="item_a_0001")
    ]
    job2 = one_final(s)
    assert (job2.start, job2.end) == (2 * RATE, len(audio))  # nothing lost in between


def test_manual_end_of_stream_commits_what_is_left() -> None:
    s = Session(EnergyVad(), MANUAL, session_id="x")
    s.feed(tone(0.4))
    assert s.end_of_stream() == [InputAudioCommitted(item_id="item_x_0001", previous_item_id=None)]
    job = one_final(s)
    assert (job.start, job.end) == (0, 6400)
    assert s.end_of_stream() == []  # closing twice is harmless
    with pytest.raises(IllegalTransition):
        s.feed(tone(0.1))
    with pytest.raises(IllegalTransition):
        s.commit()
    with pytest.raises(IllegalTransition):
        s.clear()


def test_manual_end_of_stream_after_a_commit_and_with_too_little_audio() -> None:
    s = Session(EnergyVad(), MANUAL, session_id="y", inline_decoder=echo_length)
    s.feed(tone(0.3))
    assert kinds(s.commit()) == (InputAudioCommitted, TranscriptionDelta, TranscriptionCompleted)
    s.feed(tone(0.05))  # under min_commit_ms: not worth an item
    assert s.end_of_stream() == []
    assert s.take_jobs() == []

    t = Session(EnergyVad(), MANUAL, session_id="z", inline_decoder=echo_length)
    t.feed(tone(0.3))
    events = t.end_of_stream()
    assert kinds(events) == (InputAudioCommitted, TranscriptionDelta, TranscriptionCompleted)
    assert completed(events)[0].transcript == "Heard 4800"


# -- client commit and clear with server VAD -----------------------------------------------


def test_server_vad_speech_stopped_is_followed_by_committed() -> None:
    s = Session(EnergyVad(), QUIET_VAD, session_id="v")
    events = s.feed(pattern(("q", 0.3), ("s", 1.0), ("q", 1.0)))
    assert events == [
        SpeechStarted(audio_start_ms=0, item_id="item_v_0001"),
        SpeechStopped(audio_end_ms=1312 + 160, item_id="item_v_0001"),
        InputAudioCommitted(item_id="item_v_0001", previous_item_id=None),
    ]
    job = one_final(s)
    assert (job.item_id, job.start, job.end) == ("item_v_0001", 0, 41 * FRAME + END_PAD)


def test_server_vad_committed_events_chain_previous_item_ids() -> None:
    s = Session(EnergyVad(), QUIET_VAD, session_id="w")
    events = s.feed(pattern(("q", 0.3), ("s", 1.0), ("q", 1.0), ("s", 1.0), ("q", 1.0)))
    committed = [e for e in events if isinstance(e, InputAudioCommitted)]
    assert committed == [
        InputAudioCommitted(item_id="item_w_0001", previous_item_id=None),
        InputAudioCommitted(item_id="item_w_0002", previous_item_id="item_w_0001"),
    ]
    stopped = [i for i, e in enumerate(events) if isinstance(e, SpeechStopped)]
    assert [type(events[i + 1]) for i in stopped] == [InputAudioCommitted, InputAudioCommitted]


def test_server_vad_commit_ends_the_open_utterance_at_once() -> None:
    s = Session(EnergyVad(), QUIET_VAD, session_id="o")
    audio = pattern(("q", 0.3), ("s", 1.0))
    assert s.feed(audio) == [SpeechStarted(audio_start_ms=0, item_id="item_o_0001")]
    assert s.take_jobs() == []
    events = s.commit()
    assert events == [
        SpeechStopped(audio_end_ms=1300, item_id="item_o_0001"),
        InputAudioCommitted(item_id="item_o_0001", previous_item_id=None),
    ]
    job = one_final(s)
    assert (job.item_id, job.start, job.end) == ("item_o_0001", 0, len(audio))
    assert np.array_equal(job.request.audio, audio)
    (done,) = completed(s.complete(job, DecodeResult(text="cut short")))
    assert done.usage.seconds == 1.3
    # The rest of the speech opens a new utterance that chains on the committed one.
    events = s.feed(pattern(("s", 0.5), ("q", 1.0)))
    assert kinds(events) == (SpeechStarted, SpeechStopped, InputAudioCommitted)
    assert events[0] == SpeechStarted(audio_start_ms=1300, item_id="item_o_0002")
    assert events[2] == InputAudioCommitted(item_id="item_o_0002", previous_item_id="item_o_0001")


def test_server_vad_commit_during_the_hangover_uses_the_speculative_decode() -> None:
    s = Session(EnergyVad(), SessionOptions(partials=False), session_id="h")
    s.feed(pattern(("q", 0.3), ("s", 1.0), ("q", 0.3)))  # in the hangover
    (spec,) = s.take_jobs()
    assert spec.kind is JobKind.SPECULATIVE
    events = s.commit()
    assert events == [
        SpeechStopped(audio_end_ms=spec.end * 1000 // RATE, item_id="item_h_0001"),
        InputAudioCommitted(item_id="item_h_0001", previous_item_id=None),
    ]
    assert s.take_jobs() == []  # the speculative decode covers exactly this audio
    assert kinds(s.complete(spec, DecodeResult(text="hi"))) == (
        TranscriptionDelta,
        TranscriptionCompleted,
    )
    assert s.counters.speculative_hits == 1


def test_server_vad_commit_without_an_open_utterance_is_empty() -> None:
    s = Session(EnergyVad(), QUIET_VAD)
    s.feed(quiet(1.0))
    with pytest.raises(EmptyCommit) as refused:
        s.commit()
    assert refused.value.code == "input_audio_buffer_commit_empty"
    s.feed(pattern(("s", 1.0), ("q", 1.0)))  # an utterance, already committed by the VAD
    s.take_jobs()
    with pytest.raises(EmptyCommit):
        s.commit()
    assert s.take_jobs() == []


def test_a_refused_server_vad_commit_leaves_a_speech_onset_alone() -> None:
    s = Session(EnergyVad(), QUIET_VAD, session_id="g")
    assert s.feed(pattern(("q", 0.3), ("s", 0.1))) == []  # heard, not yet 200 ms of it
    with pytest.raises(EmptyCommit):
        s.commit()
    # The onset still counts: the utterance starts where the speech did (less padding).
    assert s.feed(tone(0.4)) == [SpeechStarted(audio_start_ms=0, item_id="item_g_0001")]


CLEAR_OPTIONS = SessionOptions(
    streaming=StreamingOptions(min_partial_audio_ms=300, partial_budget=None, min_commit_audio_ms=0)
)


def second_utterance_in_its_hangover() -> tuple[Session, DecodeJob, DecodeJob]:
    """Item 1 finished (its speculative final handed out, not answered); item 2 open,
    its partial handed out and its speculative final queued."""
    s = Session(EnergyVad(), CLEAR_OPTIONS, session_id="k")
    s.feed(pattern(("q", 0.3), ("s", 1.0), ("q", 1.0)))
    (spec1,) = [j for j in s.take_jobs() if j.kind is JobKind.SPECULATIVE]
    assert kinds(s.feed(tone(0.5))) == (SpeechStarted,)
    (partial2,) = s.take_jobs()
    assert (partial2.kind, partial2.item_id) == (JobKind.PARTIAL, "item_k_0002")
    assert s.feed(quiet(0.2)) == []
    return s, spec1, partial2


def test_server_vad_clear_drops_the_open_utterance_and_its_jobs() -> None:
    twin, _, _ = second_utterance_in_its_hangover()
    assert [(j.kind, j.item_id) for j in twin.take_jobs()] == [(JobKind.SPECULATIVE, "item_k_0002")]

    s, spec1, partial2 = second_utterance_in_its_hangover()
    cleared_at = s.buffer.end
    assert s.clear() == [InputAudioCleared()]
    assert s.take_jobs() == []  # the queued speculative final of item 2 is gone
    assert s.segmenter.state is VadState.SILENCE
    assert not s.segmenter.is_open
    assert s.complete(partial2, DecodeResult(text="one two three")) == []
    # The finished item is not touched by the clear.
    events = s.complete(spec1, DecodeResult(text="first"))
    assert kinds(events) == (TranscriptionDelta, TranscriptionCompleted)
    assert completed(events)[0].item_id == "item_k_0001"

    assert s.feed(quiet(1.0)) == []  # no speech_stopped for the cleared item
    events = s.feed(pattern(("s", 1.0), ("q", 1.0)))
    assert kinds(events) == (SpeechStarted, SpeechStopped, InputAudioCommitted)
    started = events[0]
    assert isinstance(started, SpeechStarted)
    assert started.item_id == "item_k_0003"
    assert started.audio_start_ms >= cleared_at * 1000 // RATE
    # The cleared item was never committed: the chain goes back to item 1.
    assert events[2] == InputAudioCommitted(item_id="item_k_0003", previous_item_id="item_k_0001")
    jobs = s.take_jobs()
    assert {j.item_id for j in jobs} == {"item_k_0003"}
    (spec3,) = [j for j in jobs if j.kind is JobKind.SPECULATIVE]
    assert spec3.start >= cleared_at
    (done,) = completed(s.complete(spec3, DecodeResult(text="fresh start")))
    assert (done.item_id, done.transcript) == ("item_k_0003", "Fresh start")


def test_server_vad_clear_ignores_late_results_for_the_cleared_item() -> None:
    options = SessionOptions(
        speculative_final=False,
        streaming=StreamingOptions(
            min_partial_audio_ms=300, partial_budget=None, commit_lag_words=1, min_commit_audio_ms=0
        ),
    )
    s = Session(EnergyVad(), options, session_id="l")
    s.feed(pattern(("q", 0.3), ("s", 0.5)))
    (p1,) = s.take_jobs()
    assert s.complete(p1, DecodeResult(text="one two three")) == []
    s.feed(tone(0.3))
    (p2,) = s.take_jobs()  # running when the clear comes
    assert s.clear() == [InputAudioCleared()]
    # Had the item lived on, this hypothesis would agree on "one two" with the first.
    assert s.complete(p2, DecodeResult(text="one two three four")) == []
    assert s.feed(quiet(1.0)) == []
    assert s.take_jobs() == []


def test_server_vad_clear_between_utterances_keeps_finished_items() -> None:
    s = Session(EnergyVad(), QUIET_VAD, session_id="b")
    s.feed(pattern(("q", 0.3), ("s", 1.0), ("q", 1.0)))
    job = one_final(s)
    assert s.clear() == [InputAudioCleared()]
    (done,) = completed(s.complete(job, DecodeResult(text="kept")))
    assert done.item_id == "item_b_0001"


# -- reconfigure (session.update) -------------------------------------------------------------


def test_reconfigure_input_rate_mid_stream() -> None:
    options = SessionOptions(partials=False, speculative_final=False)
    s = Session(EnergyVad(), options, session_id="r")
    s.feed(quiet(0.5))
    assert s.counters.samples_resampled == 8000
    assert s.reconfigure(replace(options, input_rate=48_000)) == []

    audio48 = np.concatenate([tone48(1.0), np.zeros(48_000, dtype=np.float32)])
    events = s.feed(audio48)
    assert s.counters.samples_in == 8000 + len(audio48)
    grown = s.counters.samples_resampled - 8000
    assert len(audio48) // 3 - 200 <= grown <= len(audio48) // 3  # less the filter delay
    assert s.buffer.end == s.counters.samples_resampled
    # The 48 kHz speech lands at its 16 kHz place: 0.5 s to 1.5 s.
    assert kinds(events) == (SpeechStarted, SpeechStopped, InputAudioCommitted)
    started, stopped = events[0], events[1]
    assert isinstance(started, SpeechStarted) and isinstance(stopped, SpeechStopped)
    assert 200 - 40 <= started.audio_start_ms <= 200 + 40  # 300 ms of prefix padding
    assert 1500 + 160 - 40 <= stopped.audio_end_ms <= 1500 + 160 + 40
    s.end_of_stream()
    assert abs(s.counters.samples_resampled - (8000 + len(audio48) // 3)) <= 2


def test_reconfigure_server_vad_off_ends_the_open_utterance() -> None:
    s = Session(EnergyVad(), QUIET_VAD, session_id="f")
    head = pattern(("q", 0.3), ("s", 1.0))
    assert kinds(s.feed(head)) == (SpeechStarted,)
    events = s.reconfigure(replace(QUIET_VAD, server_vad=False))
    assert events == [
        SpeechStopped(audio_end_ms=1300, item_id="item_f_0001"),
        InputAudioCommitted(item_id="item_f_0001", previous_item_id=None),
    ]
    job = one_final(s)
    assert (job.start, job.end) == (0, len(head))

    # From now on the client commits: more speech and silence cut nothing.
    assert s.feed(pattern(("s", 0.5), ("q", 1.0))) == []
    assert s.commit() == [
        InputAudioCommitted(item_id="item_f_0002", previous_item_id="item_f_0001")
    ]
    job2 = one_final(s)
    assert (job2.start, job2.end) == (len(head), len(head) + 24_000)


def test_reconfigure_server_vad_on_runs_the_vad_over_the_uncommitted_audio() -> None:
    s = Session(EnergyVad(), replace(QUIET_VAD, server_vad=False), session_id="n")
    assert s.feed(pattern(("q", 0.3), ("s", 1.0))) == []
    events = s.reconfigure(QUIET_VAD)
    assert events == [SpeechStarted(audio_start_ms=0, item_id="item_n_0001")]
    events = s.feed(quiet(1.0))
    assert events == [
        SpeechStopped(audio_end_ms=1312 + 160, item_id="item_n_0001"),
        InputAudioCommitted(item_id="item_n_0001", previous_item_id=None),
    ]
    job = one_final(s)
    assert (job.start, job.end) == (0, 41 * FRAME + END_PAD)


def test_reconfigure_server_vad_on_starts_after_the_committed_audio() -> None:
    s = Session(EnergyVad(), replace(QUIET_VAD, server_vad=False), session_id="p")
    s.feed(tone(0.5))
    s.commit()
    one_final(s)
    s.feed(pattern(("q", 0.5), ("s", 1.0)))
    events = s.reconfigure(QUIET_VAD)
    assert kinds(events) == (SpeechStarted,)
    started = events[0]
    assert isinstance(started, SpeechStarted)
    assert started.item_id == "item_p_0002"
    # Frames now start at the commit (8000); speech begins in the frame at 15680,
    # and the 300 ms of prefix padding stays clear of the committed audio.
    assert started.audio_start_ms == (15_680 - 4800) * 1000 // RATE
    events = s.feed(quiet(1.0))
    assert events[-1] == InputAudioCommitted(item_id="item_p_0002", previous_item_id="item_p_0001")
    assert one_final(s).start == 15_680 - 4800


def test_reconfigure_server_vad_on_with_only_silence_uncommitted() -> None:
    s = Session(EnergyVad(), replace(QUIET_VAD, server_vad=False))
    s.feed(quiet(2.0))
    assert s.reconfigure(QUIET_VAD) == []
    assert s.segmenter.position == s.buffer.end
    events = s.feed(pattern(("s", 1.0), ("q", 1.0)))
    assert kinds(events) == (SpeechStarted, SpeechStopped, InputAudioCommitted)


@pytest.mark.parametrize(("silence_ms", "stops"), [(200, True), (500, False)])
def test_reconfigure_silence_duration_changes_when_speech_stops(
    silence_ms: int, stops: bool
) -> None:
    slow = replace(QUIET_VAD, segmenter=SegmenterOptions(silence_duration_ms=800))
    s = Session(EnergyVad(), slow)
    assert kinds(s.feed(pattern(("q", 0.3), ("s", 1.0)))) == (SpeechStarted,)
    faster = replace(slow, segmenter=SegmenterOptions(silence_duration_ms=silence_ms))
    assert s.reconfigure(faster) == []  # applies from the next frame, mid-utterance
    # Speech ends at 1312 ms; 300 ms later 288 ms of silence is complete, 600 ms later 576.
    events = s.feed(quiet(0.3))
    if stops:
        assert kinds(events) == (SpeechStopped, InputAudioCommitted)
    else:
        assert events == []
        events = s.feed(quiet(0.3))  # 800 ms, the old setting, would not stop yet
        assert kinds(events) == (SpeechStopped, InputAudioCommitted)
    committed = events[1]
    assert isinstance(committed, InputAudioCommitted)
    assert events[0] == SpeechStopped(audio_end_ms=1312 + 160, item_id=committed.item_id)


def test_reconfigure_with_the_same_options_changes_nothing() -> None:
    s = Session(EnergyVad(), QUIET_VAD)
    s.feed(pattern(("q", 0.3), ("s", 1.0)))
    assert s.reconfigure(replace(QUIET_VAD)) == []
    assert s.segmenter.is_open
    assert s.take_jobs() == []


# -- segmenter: skip_to and reset ---------------------------------------------------------------


def test_skip_to_is_refused_with_an_utterance_open_or_backwards() -> None:
    seg = Segmenter(EnergyVad())
    seg.feed(pattern(("q", 0.3), ("s", 0.5)))
    assert seg.is_open
    position = seg.position
    with pytest.raises(IllegalTransition):
        seg.skip_to(position + 1000)
    assert (seg.state, seg.position) == (VadState.SPEECH, position)

    seg = Segmenter(EnergyVad())
    seg.feed(quiet(1.0))
    with pytest.raises(IllegalTransition):
        seg.skip_to(RATE - 1)
    assert seg.position == RATE
    seg.skip_to(RATE)  # standing still is allowed


def test_skip_to_moves_forward_and_padding_stays_after_the_skip() -> None:
    seg = Segmenter(EnergyVad())
    seg.feed(tone(0.1))  # an onset, not yet an utterance
    assert seg.state is VadState.ONSET
    seg.skip_to(20_000)
    assert (seg.state, seg.position) == (VadState.SILENCE, 20_000)
    events = seg.feed(tone(0.5))
    assert events == [UtteranceStarted(20_000)]  # no prefix padding before the skip point


def test_reset_mid_utterance_listens_afresh_from_the_current_position() -> None:
    vad = EnergyVad()
    seg = Segmenter(vad)
    seg.feed(pattern(("q", 0.3), ("s", 0.5)))
    assert seg.state is VadState.SPEECH
    reset_at = seg.position
    seg.reset()
    assert state(seg) is VadState.SILENCE
    assert not seg.is_open
    assert vad.frames_seen == 0
    assert seg.flush() == []  # nothing left to close
    events = seg.feed(pattern(("q", 0.5), ("s", 0.5)))
    (started,) = events
    assert isinstance(started, UtteranceStarted)
    assert started.start >= reset_at


def test_reset_with_speech_going_on_starts_no_earlier_than_the_reset() -> None:
    seg = Segmenter(EnergyVad())
    seg.feed(pattern(("q", 0.3), ("s", 0.55)))
    reset_at = seg.position  # not on a frame boundary
    assert reset_at % FRAME != 0
    seg.reset()
    (started,) = seg.feed(tone(0.5))
    assert isinstance(started, UtteranceStarted)
    assert started.start == reset_at


def test_reset_during_an_onset_forgets_it() -> None:
    seg = Segmenter(EnergyVad())
    seg.feed(pattern(("q", 0.3), ("s", 0.1)))
    assert seg.state is VadState.ONSET
    seg.reset()
    assert state(seg) is VadState.SILENCE
    assert seg.feed(quiet(1.0)) == []


# -- bugs found by these tests, now fixed ------------------------------------------------


def test_rate_and_server_vad_on_together_do_not_fail() -> None:
    s = Session(EnergyVad(), replace(QUIET_VAD, server_vad=False, input_rate=48_000))
    s.feed(np.concatenate([np.zeros(24_000, dtype=np.float32), tone48(1.0)]))
    events = s.reconfigure(QUIET_VAD)  # server VAD on and 16 kHz in one session.update
    assert kinds(events) == (SpeechStarted,)


def test_rate_and_server_vad_off_together_commit_nothing_old() -> None:
    options = replace(QUIET_VAD, segmenter=SHORT, buffer_seconds=10.0)
    s = Session(EnergyVad(), options)
    s.feed(pattern(("q", 0.3), ("s", 1.0), ("q", 1.5)))  # one utterance, finished
    one_final(s)
    events = s.reconfigure(replace(options, server_vad=False, input_rate=48_000))
    assert events == []
    assert s.take_jobs() == []  # nothing re-transcribed


def test_manual_items_never_exceed_max_utterance_s() -> None:
    s = Session(EnergyVad(), replace(MANUAL, segmenter=SHORT, buffer_seconds=5.0))
    s.feed(tone(3.0))  # one big chunk, e.g. a file fed at once
    s.end_of_stream()
    lengths = [len(j.request.audio) for j in s.take_jobs()]
    assert sum(lengths) == 3 * RATE
    assert max(lengths) <= 2 * RATE


def test_a_commit_whose_flush_auto_commits_reports_the_item() -> None:
    options = replace(MANUAL, input_rate=48_000, segmenter=SHORT, buffer_seconds=5.0)
    limit = 2 * RATE
    audio = np.tile(tone48(1.0), 3)
    # Find how much 48 kHz audio leaves the 16 kHz buffer just under the limit
    # until the resampler's flush tops it up.
    for n in range(3 * limit - 300, 3 * limit + 300):
        probe = StreamResampler(48_000)
        held = len(probe.process(audio[:n]))
        if held < limit <= held + len(probe.flush()):
            break
    else:
        pytest.fail("no such length")
    s = Session(EnergyVad(), options, session_id="d")
    assert s.feed(audio[:n]) == []
    try:
        events = s.commit()
    except EmptyCommit:
        events = []
    jobs = s.take_jobs()
    assert [j.item_id for j in jobs] == ["item_d_0001"]
    assert events == [InputAudioCommitted(item_id="item_d_0001", previous_item_id=None)]


def test_reconfigure_cannot_change_the_buffer_size() -> None:
    """The ring buffer is sized once; a reconfigure that would outgrow it is refused."""
    s = Session(EnergyVad(), replace(QUIET_VAD, segmenter=SHORT, buffer_seconds=3.5))
    with pytest.raises(ValueError, match="buffer_seconds"):
        s.reconfigure(QUIET_VAD)  # max_utterance_s 30 s would need buffer_seconds 60 s
