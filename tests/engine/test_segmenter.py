"""The VAD segmenter state machine, on scripted energy 'speech' and on real Silero."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests import speech
from tests.engine.scripted import FRAME, RATE, EnergyVad, pattern
from voxwire.engine.errors import IllegalTransition
from voxwire.engine.segmenter import (
    Segmenter,
    SegmenterOptions,
    SilenceBegan,
    SpeechResumed,
    UtteranceEnded,
    UtteranceStarted,
    VadState,
)
from voxwire.models.silero_vad import SileroVad


def run(seg: Segmenter, audio: np.ndarray, splits: list[int] | None = None) -> list[object]:
    events: list[object] = []
    cuts = [0, *(splits or []), len(audio)]
    for a, b in itertools.pairwise(cuts):
        events.extend(seg.feed(audio[a:b]))
    events.extend(seg.flush())
    return events


def ends(events: list[object]) -> list[tuple[int, int]]:
    return [(e.start, e.end) for e in events if isinstance(e, UtteranceEnded)]


def test_one_utterance_with_padding_and_knobs() -> None:
    audio = pattern(("q", 1.0), ("s", 1.0), ("q", 1.5))
    events = run(Segmenter(EnergyVad()), audio)
    kinds = [type(e) for e in events]
    assert kinds == [UtteranceStarted, SilenceBegan, UtteranceEnded]
    started, _, ended = events
    assert isinstance(started, UtteranceStarted) and isinstance(ended, UtteranceEnded)
    # Speech starts at 1.0 s (frame 31 covers 0.992-1.024 s); 300 ms of prefix padding.
    assert started.start == 31 * FRAME - int(0.3 * RATE)
    # Ends 160 ms of end padding after the last speech frame.
    last_speech_end = 63 * FRAME
    assert ended.end == last_speech_end + int(0.16 * RATE)
    assert ended.reason == "silence"


def test_short_pause_does_not_end_the_utterance() -> None:
    audio = pattern(("q", 0.5), ("s", 1.0), ("q", 0.3), ("s", 1.0), ("q", 1.0))
    events = run(Segmenter(EnergyVad()), audio)
    assert [type(e) for e in events] == [
        UtteranceStarted,
        SilenceBegan,
        SpeechResumed,
        SilenceBegan,
        UtteranceEnded,
    ]


def test_blip_shorter_than_min_speech_is_ignored() -> None:
    audio = pattern(("q", 0.5), ("s", 0.1), ("q", 1.0))
    assert run(Segmenter(EnergyVad(), SegmenterOptions(min_speech_ms=200)), audio) == []


def test_silence_duration_knob_sets_when_speech_stops() -> None:
    audio = pattern(("q", 0.5), ("s", 1.0), ("q", 0.7), ("s", 1.0), ("q", 1.0))
    short = ends(run(Segmenter(EnergyVad(), SegmenterOptions(silence_duration_ms=300)), audio))
    long = ends(run(Segmenter(EnergyVad(), SegmenterOptions(silence_duration_ms=900)), audio))
    assert len(short) == 2
    assert len(long) == 1


def test_prefix_padding_never_reaches_into_the_previous_utterance() -> None:
    audio = pattern(("q", 0.2), ("s", 1.0), ("q", 0.6), ("s", 1.0), ("q", 1.0))
    segments = ends(run(Segmenter(EnergyVad(), SegmenterOptions(silence_duration_ms=400)), audio))
    assert len(segments) == 2
    assert segments[1][0] >= segments[0][1]


def test_over_long_utterance_is_cut_at_its_quietest_point() -> None:
    # 6 s of 'speech' with one quieter (still speech) dip at 4.0-4.1 s; max 5 s.
    audio = pattern(("q", 0.5), ("s", 6.0), ("q", 1.0))
    dip = slice(int(4.5 * RATE), int(4.6 * RATE))
    audio[dip] *= 0.1
    opts = SegmenterOptions(max_utterance_s=5.0)
    events = run(Segmenter(EnergyVad(), opts), audio)
    segments = ends(events)
    assert len(segments) == 2
    cut = segments[0][1]
    assert int(4.5 * RATE) <= cut <= int(4.6 * RATE) + FRAME
    assert segments[1][0] == cut
    assert segments[0][1] - segments[0][0] <= 5 * RATE
    assert [e.reason for e in events if isinstance(e, UtteranceEnded)] == [
        "max_utterance",
        "silence",
    ]


def test_end_of_stream_closes_an_open_utterance() -> None:
    audio = pattern(("q", 0.5), ("s", 1.0))
    events = run(Segmenter(EnergyVad()), audio)
    assert isinstance(events[-1], UtteranceEnded)
    assert events[-1].reason == "end_of_stream"
    assert events[-1].end == len(audio)


def test_illegal_transition_is_named() -> None:
    seg = Segmenter(EnergyVad())
    with pytest.raises(IllegalTransition, match="silence to hangover"):
        seg._go(VadState.HANGOVER)


def test_bad_options_are_refused() -> None:
    with pytest.raises(ValueError):
        SegmenterOptions(threshold=1.5)
    with pytest.raises(ValueError):
        SegmenterOptions(max_utterance_s=45)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.integers(1, 5000), max_size=40))
def test_chunking_does_not_change_events_scripted(sizes: list[int]) -> None:
    audio = pattern(("q", 0.4), ("s", 0.8), ("q", 0.3), ("s", 0.5), ("q", 0.9), ("s", 0.4))
    reference = run(Segmenter(EnergyVad()), audio)
    splits = list(np.cumsum(sizes))
    splits = [s for s in splits if s < len(audio)]
    assert run(Segmenter(EnergyVad()), audio, splits) == reference


# -- real Silero on real (synthesised) speech ------------------------------------------


@pytest.fixture(scope="module")
def three_sentences() -> np.ndarray:
    return speech.utterances(speech.SENTENCES)


def test_silero_finds_each_sentence(three_sentences: np.ndarray) -> None:
    segments = ends(run(Segmenter(SileroVad()), three_sentences))
    assert len(segments) == 3
    # Each utterance lies around its sentence: lead 0.5 s, 1 s gaps.
    cursor = int(0.5 * RATE)
    for (start, end), text in zip(segments, speech.SENTENCES, strict=True):
        length = len(speech.synthesize(text))
        assert cursor - int(0.45 * RATE) <= start <= cursor + int(0.3 * RATE)
        assert cursor + length - int(0.4 * RATE) <= end <= cursor + length + int(0.5 * RATE)
        cursor += length + RATE
    starts = [s for s, _ in segments]
    assert starts == sorted(starts)


def test_silero_no_speech_gives_no_utterance() -> None:
    rng = np.random.default_rng(0)
    noise = (rng.standard_normal(3 * RATE) * 0.003).astype(np.float32)
    assert run(Segmenter(SileroVad()), noise) == []


@settings(
    max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(data=st.data())
def test_chunking_does_not_change_events_silero(
    three_sentences: np.ndarray, data: st.DataObject
) -> None:
    reference = run(Segmenter(SileroVad()), three_sentences)
    mode = data.draw(st.sampled_from(["one", "10ms", "random"]))
    if mode == "one":
        splits: list[int] = []
    elif mode == "10ms":
        splits = list(range(160, len(three_sentences), 160))
    else:
        sizes = data.draw(st.lists(st.integers(1, 8000), min_size=1, max_size=60))
        splits = [int(s) for s in np.cumsum(sizes) if s < len(three_sentences)]
    assert run(Segmenter(SileroVad()), three_sentences, splits) == reference


def test_max_length_reached_in_a_pause_ends_without_opening_a_silent_utterance() -> None:
    # Speech 0.5-3.0 s, then a pause; the 3 s limit (from 0.2 s) falls inside the pause.
    audio = pattern(("q", 0.5), ("s", 2.5), ("q", 1.5))
    opts = SegmenterOptions(max_utterance_s=3.0, silence_duration_ms=800)
    events = run(Segmenter(EnergyVad(), opts), audio)
    assert [type(e) for e in events] == [UtteranceStarted, SilenceBegan, UtteranceEnded]
    ended = events[-1]
    assert isinstance(ended, UtteranceEnded) and ended.reason == "max_utterance"
    assert ended.end - ended.start <= 3 * RATE


def test_short_silence_duration_shortens_the_end_padding() -> None:
    audio = pattern(("q", 0.5), ("s", 1.0), ("q", 1.0))
    opts = SegmenterOptions(silence_duration_ms=64)
    (ended,) = [
        e for e in run(Segmenter(EnergyVad(), opts), audio) if isinstance(e, UtteranceEnded)
    ]
    assert ended.end == 47 * FRAME + int(0.064 * RATE)
