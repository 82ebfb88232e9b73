"""The Session on real models: Silero VAD and the embedded Whisper, on Piper speech."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Sequence

import jiwer
import numpy as np
import pytest
import soxr
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from tests import speech
from voxwire.engine.driver import SessionDriver
from voxwire.engine.errors import IllegalTransition, InvalidAudio
from voxwire.engine.events import (
    Event,
    SpeechStarted,
    SpeechStopped,
    TranscriptionCompleted,
    TranscriptionDelta,
)
from voxwire.engine.scheduler import ModelWorker
from voxwire.engine.segmenter import SegmenterOptions
from voxwire.engine.session import Session, SessionOptions
from voxwire.engine.streaming_asr import StreamingOptions
from voxwire.models.faster_whisper_asr import FasterWhisperAsr
from voxwire.models.interfaces import DecodeRequest, DecodeResult
from voxwire.models.silero_vad import SileroVad

RATE = 16_000


def normalise(text: str) -> str:
    return jiwer.RemovePunctuation()(text.lower()).strip()


@pytest.fixture(scope="module")
def asr() -> FasterWhisperAsr:
    return FasterWhisperAsr()


@pytest.fixture(scope="module")
def audio() -> np.ndarray:
    return speech.utterances(speech.SENTENCES)


def run_inline(
    asr: FasterWhisperAsr, audio: np.ndarray, splits: Sequence[int] = (), **options: object
) -> list[Event]:
    """Run a session whose jobs decode the moment they are queued.

    The compute budget is off: it reacts to wall-clock decode times, and these
    tests compare event streams that must depend on the audio alone.
    """
    options.setdefault("streaming", StreamingOptions(partial_budget=None))
    options_ = SessionOptions(**options)  # type: ignore[arg-type]
    session = Session(SileroVad(), options_, session_id="s", inline_decoder=asr.decode)
    events: list[Event] = []
    for a, b in itertools.pairwise([0, *splits, len(audio)]):
        events.extend(session.feed(audio[a:b]))
    events.extend(session.end_of_stream())
    return events


def check_transcript_stream(events: Sequence[Event], texts: Sequence[str]) -> None:
    """One completed transcript per utterance; started before deltas; deltas add up."""
    items: dict[str, list[Event]] = {}
    for e in events:
        items.setdefault(e.item_id, []).append(e)
    assert len(items) == len(texts)
    for (item_id, evs), text in zip(items.items(), texts, strict=True):
        assert isinstance(evs[0], SpeechStarted), item_id
        completed = [e for e in evs if isinstance(e, TranscriptionCompleted)]
        assert len(completed) == 1
        stopped = [i for i, e in enumerate(evs) if isinstance(e, SpeechStopped)]
        assert len(stopped) == 1
        deltas = "".join(e.delta for e in evs if isinstance(e, TranscriptionDelta))
        assert deltas == completed[0].transcript
        assert evs[-1] is completed[0]
        assert jiwer.wer(normalise(text), normalise(completed[0].transcript)) <= 0.12
    times = [
        t
        for e in events
        for t in (
            [e.audio_start_ms]
            if isinstance(e, SpeechStarted)
            else [e.audio_end_ms]
            if isinstance(e, SpeechStopped)
            else []
        )
    ]
    assert times == sorted(times)


def test_three_sentences_stream_with_deltas(asr: FasterWhisperAsr, audio: np.ndarray) -> None:
    events = run_inline(asr, audio, range(320, len(audio), 320))
    check_transcript_stream(events, speech.SENTENCES)
    assert any(isinstance(e, TranscriptionDelta) for e in events[:5])


def test_resampled_input_gives_the_same_words(asr: FasterWhisperAsr, audio: np.ndarray) -> None:
    audio48 = soxr.resample(audio, RATE, 48_000).astype(np.float32)
    events = run_inline(asr, audio48, range(960, len(audio48), 960), input_rate=48_000)
    check_transcript_stream(events, speech.SENTENCES)


def test_counters_account_for_every_sample(asr: FasterWhisperAsr, audio: np.ndarray) -> None:
    session = Session(SileroVad(), inline_decoder=asr.decode)
    session.feed(audio)
    session.end_of_stream()
    c = session.counters
    assert c.samples_in == len(audio) == c.samples_resampled
    assert 0 < c.samples_segmented == c.samples_transcribed < len(audio)
    assert c.final_decodes == 3 and c.speculative_hits == 3
    assert c.evicted_samples == 0 and c.jobs_dropped == 0


def test_bad_input_is_refused_and_the_session_goes_on(
    asr: FasterWhisperAsr, audio: np.ndarray
) -> None:
    session = Session(SileroVad(), inline_decoder=asr.decode)
    with pytest.raises(InvalidAudio):
        session.feed_pcm16(b"\x01\x02\x03")
    with pytest.raises(InvalidAudio):
        session.feed(np.array([np.inf], dtype=np.float32))
    events = session.feed(audio) + session.end_of_stream()
    check_transcript_stream(events, speech.SENTENCES)
    with pytest.raises(IllegalTransition):
        session.feed(audio[:100])


@settings(
    max_examples=6,
    deadline=None,
    phases=[Phase.explicit, Phase.generate],  # shrinking would re-run the model for minutes
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(data=st.data())
def test_chunking_does_not_change_segments_or_transcripts(
    asr: FasterWhisperAsr, audio: np.ndarray, data: st.DataObject
) -> None:
    reference = run_inline(asr, audio)
    mode = data.draw(st.sampled_from(["10ms", "random"]))
    if mode == "10ms":
        splits: list[int] = list(range(160, len(audio), 160))
    else:
        sizes = data.draw(st.lists(st.integers(1, 16000), min_size=1, max_size=40))
        splits = [int(s) for s in np.cumsum(sizes) if s < len(audio)]
    assert run_inline(asr, audio, splits) == reference


def test_async_driver_with_worker(asr: FasterWhisperAsr, audio: np.ndarray) -> None:
    """The real path: a worker thread owns the model; events arrive through the sink."""
    worker: ModelWorker[DecodeRequest, DecodeResult] = ModelWorker(
        asr.decode, name="asr", max_batch_size=asr.max_batch_size
    )
    received: list[Event] = []

    async def main() -> None:
        session = Session(SileroVad())
        driver = SessionDriver(session, worker, lambda evs, _facts: received.extend(evs))
        for i in range(0, len(audio), 640):
            await driver.feed(audio[i : i + 640])
            await asyncio.sleep(0)
        await driver.finish()
        assert session.counters.samples_transcribed == session.counters.samples_segmented

    try:
        asyncio.run(main())
    finally:
        worker.stop()
    check_transcript_stream(received, speech.SENTENCES)


def test_many_sessions_share_one_worker(asr: FasterWhisperAsr) -> None:
    """Four concurrent sessions on one worker each get their own transcript."""
    worker: ModelWorker[DecodeRequest, DecodeResult] = ModelWorker(
        asr.decode, name="asr", max_batch_size=asr.max_batch_size
    )
    texts = (*speech.SENTENCES, "I would like a cup of coffee please.")
    results: dict[int, list[Event]] = {i: [] for i in range(len(texts))}

    async def one(i: int) -> None:
        clip = speech.utterances([texts[i]])
        session = Session(SileroVad())
        driver = SessionDriver(session, worker, lambda evs, _f: results[i].extend(evs))
        for k in range(0, len(clip), 1600):
            await driver.feed(clip[k : k + 1600])
            await asyncio.sleep(0.01)
        await driver.finish()

    async def main() -> None:
        await asyncio.gather(*(one(i) for i in range(len(texts))))

    try:
        asyncio.run(main())
    finally:
        worker.stop()
    for i, text in enumerate(texts):
        check_transcript_stream(results[i], [text])


def test_without_partials_only_the_final_is_decoded(
    asr: FasterWhisperAsr, audio: np.ndarray
) -> None:
    events = run_inline(asr, audio, partials=False)
    check_transcript_stream(events, speech.SENTENCES)
    deltas = [e for e in events if isinstance(e, TranscriptionDelta)]
    assert len(deltas) == 3  # one per utterance, carrying its whole transcript


def test_over_long_utterance_is_cut_and_both_parts_transcribed(asr: FasterWhisperAsr) -> None:
    text = "I would like to book a table for two people at seven o'clock tonight, please."
    clip = speech.utterances([text])
    events = run_inline(
        asr, clip, segmenter=SegmenterOptions(max_utterance_s=3.0, silence_duration_ms=800)
    )
    completed = [e for e in events if isinstance(e, TranscriptionCompleted)]
    assert len(completed) == 2
    first, second = (e.timings for e in completed)
    assert first.audio_end_ms == second.audio_start_ms
    assert first.audio_end_ms - first.audio_start_ms <= 3000
    joined = " ".join(e.transcript for e in completed)
    assert jiwer.wer(normalise(text), normalise(joined)) <= 0.25


def test_a_client_that_vanishes_mid_utterance_hurts_no_other(asr: FasterWhisperAsr) -> None:
    """One session is closed halfway through a sentence; the other still gets its text."""
    worker: ModelWorker[DecodeRequest, DecodeResult] = ModelWorker(
        asr.decode, name="asr", max_batch_size=asr.max_batch_size, threads=asr.max_concurrency
    )
    kept: list[Event] = []
    dropped: list[Event] = []
    clip = speech.utterances([speech.SENTENCES[1]])

    async def stays() -> None:
        driver = SessionDriver(Session(SileroVad()), worker, lambda evs, _f: kept.extend(evs))
        for k in range(0, len(clip), 1600):
            await driver.feed(clip[k : k + 1600])
            await asyncio.sleep(0.02)
        await driver.finish()

    async def vanishes() -> None:
        driver = SessionDriver(Session(SileroVad()), worker, lambda evs, _f: dropped.extend(evs))
        for k in range(0, len(clip) // 2, 1600):
            await driver.feed(clip[k : k + 1600])
            await asyncio.sleep(0.02)
        await driver.close()
        seen = len(dropped)
        await asyncio.sleep(0.5)
        assert len(dropped) == seen  # nothing delivered after close

    async def main() -> None:
        await asyncio.gather(stays(), vanishes())

    try:
        asyncio.run(main())
    finally:
        worker.stop()
    check_transcript_stream(kept, [speech.SENTENCES[1]])
    assert any(isinstance(e, SpeechStarted) for e in dropped)
    assert not any(isinstance(e, TranscriptionCompleted) for e in dropped)
    assert worker.stats.failed == 0
