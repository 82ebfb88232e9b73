"""Semantic end of turn in the sans-I/O session: a pause ends the turn early when the
turn model says the speech is finished, and waits up to max_wait when it does not."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.engine.scripted import RATE, EnergyVad, pattern, quiet, tone
from voxwire.engine.events import SpeechStopped
from voxwire.engine.session import Session, SessionOptions
from voxwire.engine.turns import SemanticTurnOptions

FRAME_MS = 32
"""The energy VAD's frame: speech ends on a frame boundary."""


class PitchTurnModel:
    """Scripted 'turn model': the speech sounds finished when its last tone is high.

    It looks for the last loud sample in the window and answers 0.9 if the tone
    there is 440 Hz (a 'falling, finished' phrase in this script), else 0.1."""

    name = "scripted-turn"
    window_samples = 8 * RATE

    def __init__(self) -> None:
        self.calls: list[int] = []

    def probability(self, audio: npt.NDArray[np.float32]) -> float:
        self.calls.append(len(audio))
        loud = np.flatnonzero(np.abs(audio) > 0.05)
        if not len(loud):
            return 0.0
        tail = audio[max(0, loud[-1] - 1024) : loud[-1]]
        crossings = np.count_nonzero(np.diff(np.signbit(tail)))
        freq = crossings / 2 / (len(tail) / RATE)
        return 0.9 if freq > 330 else 0.1


def finished(seconds: float) -> npt.NDArray[np.float32]:
    return tone(seconds, freq=440.0)


def session(model: PitchTurnModel, eagerness: str = "auto") -> Session:
    options = SessionOptions(
        semantic_turn=SemanticTurnOptions.for_eagerness(eagerness),  # type: ignore[arg-type]
        partials=False,
    )
    return Session(EnergyVad(), options, turn_model=lambda: model)


def stops(events: list[object]) -> list[int]:
    return [e.audio_end_ms for e in events if isinstance(e, SpeechStopped)]


def feed_all(s: Session, audio: npt.NDArray[np.float32], step: int = 160) -> list[tuple[int, int]]:
    """(stream position in ms when speech_stopped came, its audio_end_ms)."""
    out = []
    for i in range(0, len(audio), step):
        for end_ms in stops(list(s.feed(audio[i : i + step]))):
            out.append(((i + step) * 1000 // RATE, end_ms))
    return out


def test_finished_speech_ends_after_the_short_pause() -> None:
    model = PitchTurnModel()
    audio = np.concatenate([quiet(0.5), tone(1.0), finished(0.5), quiet(1.0)])
    ended = feed_all(session(model), audio)
    assert len(ended) == 1
    at, end_ms = ended[0]
    speech_end_ms = 2000
    # Ended 100 ms into the pause, the end padding is what was heard of the pause.
    assert 100 <= end_ms - speech_end_ms <= 160 + FRAME_MS
    # 100 ms of pause (plus frames) rather than server_vad's 500 ms hangover.
    assert at - speech_end_ms <= 200
    assert model.calls, "the model was asked"


def test_unfinished_pause_waits_and_speech_continues_the_turn() -> None:
    model = PitchTurnModel()
    audio = np.concatenate(
        [quiet(0.5), tone(1.0), quiet(1.5), tone(0.5), finished(0.5), quiet(1.0)]
    )
    ended = feed_all(session(model), audio)
    # The 1.5 s pause after a 'not finished' phrase does not end the turn.
    assert len(ended) == 1
    assert 100 <= ended[0][1] - 4000 <= 160 + FRAME_MS
    # Asked once in each pause.
    assert len(model.calls) == 2


@pytest.mark.parametrize(("eagerness", "wait_ms"), [("high", 2000), ("auto", 4000)])
def test_unfinished_turn_ends_at_the_eagerness_max_wait(eagerness: str, wait_ms: int) -> None:
    model = PitchTurnModel()
    audio = np.concatenate([quiet(0.5), tone(1.0), quiet(wait_ms / 1000 + 0.5)])
    ended = feed_all(session(model, eagerness), audio)
    assert len(ended) == 1
    at, end_ms = ended[0]
    assert 0 <= end_ms - (1500 + 160) <= FRAME_MS
    assert wait_ms <= at - 1500 <= wait_ms + 100


def test_switching_semantic_off_restores_the_silence_hangover() -> None:
    model = PitchTurnModel()
    s = session(model)
    s.reconfigure(SessionOptions(partials=False))
    assert s.segmenter.judge is None
    audio = np.concatenate([quiet(0.5), finished(1.0), quiet(1.0)])
    (at, _), *_ = feed_all(s, audio)
    assert at - 1500 >= 500
    assert not model.calls


@settings(max_examples=15, deadline=None)
@given(st.lists(st.integers(min_value=1, max_value=4000), min_size=1, max_size=30))
def test_chunking_does_not_change_the_turn_ends(sizes: list[int]) -> None:
    audio = pattern(("q", 0.5), ("s", 1.0), ("q", 1.2), ("s", 0.5), ("q", 0.3))
    audio = np.concatenate([audio, finished(0.4), quiet(0.8)])
    whole = [stops(list(session(PitchTurnModel()).feed(audio)))]
    s = session(PitchTurnModel())
    got: list[int] = []
    i = 0
    for size in sizes * (len(audio) // max(1, sum(sizes)) + 1):
        if i >= len(audio):
            break
        got.extend(stops(list(s.feed(audio[i : i + size]))))
        i += size
    assert [got] == whole
