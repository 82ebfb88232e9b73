"""Live classification in Realtime sessions, on the real models over real sockets:
wake words, the wake-word gate, sentiment, intent and speakers, and transcripts that
never wait for a classifier. The gate and the wake-word scorer are also tested alone."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

import httpx2 as httpx
import numpy as np
import numpy.typing as npt
import pytest

from tests import speech
from tests.live_server import LiveServer, live_server
from tests.realtime_client import RealtimeTestClient, pcm16, realtime
from tests.speech import pcm16_wav_bytes
from voxwire.engine.errors import IllegalTransition
from voxwire.engine.wake_gate import GateState, WakeWordGate
from voxwire.services.runtime import CatalogEntry, Runtime
from voxwire.transports.http.settings import ServerSettings
from voxwire.transports.realtime.classifiers import WakeWordScorer
from voxwire.transports.realtime.protocol import WakeWordConfig

T = TypeVar("T")

COMPLETED = "conversation.item.input_audio_transcription.completed"
DETECTED = "voxwire.wake_word.detected"
CLASSIFIED = "voxwire.classification"
IDENTIFIED = "voxwire.speaker.identified"

WAKE_COMMAND = "Hey Jarvis, what's the weather like?"
POSITIVE = "I love this wonderful day, it makes me so happy."
NEGATIVE = "This is a terrible awful day and I hate it."
WEATHER = "What's the weather tomorrow?"

NO_WAKE_WORDS = (
    "The quick brown fox jumps over the lazy dog.",
    "Please turn on the lights in the kitchen.",
    "What time does the train leave tomorrow morning?",
    "I would like a cup of coffee with milk and sugar.",
    "The meeting has been moved to Thursday afternoon.",
    "My favourite colour is blue, but I also like green.",
    "She sells sea shells by the sea shore.",
    "Can you tell me how to get to the library?",
    "We walked along the river until the sun went down.",
    "The children played football in the park all day.",
    "He forgot his keys at the office again.",
    "Let's order pizza for dinner tonight.",
    "The museum opens at nine o'clock on Sundays.",
    "Reading a good book is the best way to relax.",
    "Our flight was delayed by almost two hours.",
    "Please remember to water the plants while I'm away.",
    "The new phone has a much better camera.",
    "I need to buy eggs, bread and butter at the shop.",
    "The concert last night was absolutely fantastic.",
    "Turn left at the second traffic light.",
    "My brother is learning to play the violin.",
    "The report is due at the end of the month.",
)
"""About a minute of speech with no wake word (nor "weather", "timer", "Alexa") in it."""

ENROL_TEXT = "Good morning, this is my voice for the enrolment."
SPEAKER_SENTENCES = (
    "The library closes early on Saturday evenings.",
    "Could you please send me the report by Friday?",
    "Our train was cancelled because of the storm.",
)


@pytest.fixture(scope="module")
def cls_server(runtime: Runtime, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    """A server of its own, so that its enrolled speakers stay in a temp dir."""
    settings = ServerSettings(data_dir=tmp_path_factory.mktemp("live-classification"))
    with live_server(runtime, settings) as live:
        yield live


def run(coro: Any, timeout: float = 60.0) -> Any:
    async def bounded() -> Any:
        async with asyncio.timeout(timeout):
            return await coro

    return asyncio.run(bounded())


async def configure(
    client: RealtimeTestClient, rate: int = 16_000, **session: Any
) -> dict[str, Any]:
    """session.update of the input rate and voxwire.* fields; returns the session of
    session.updated."""
    body = {
        "type": "transcription",
        "audio": {"input": {"format": {"type": "audio/pcm", "rate": rate}}},
        **{f"voxwire.{k}": v for k, v in session.items()},
    }
    await client.send({"type": "session.update", "session": body})
    event = await client.next("session.updated", "error")
    assert event["type"] == "session.updated", event
    return event["session"]  # type: ignore[no-any-return]


def items_in_order(client: RealtimeTestClient) -> list[str]:
    """The ids of the completed items in the order they were spoken (ids count up)."""
    return sorted(e["item_id"] for e in client.received if e["type"] == COMPLETED)


def index_of(client: RealtimeTestClient, kind: str, item_id: str) -> int:
    (index,) = [
        i
        for i, e in enumerate(client.received)
        if e["type"] == kind and e.get("item_id") == item_id
    ]
    return index


def with_silence(parts: list[npt.NDArray[np.float32]], gap_s: float = 1.0) -> bytes:
    audio: list[npt.NDArray[np.float32]] = [speech.silence(0.5)]
    for part in parts:
        audio += [part, speech.silence(gap_s)]
    return pcm16(np.concatenate(audio))


# -- wake words -----------------------------------------------------------------------------


def test_hey_jarvis_is_detected_as_it_is_said(cls_server: LiveServer) -> None:
    audio = speech.utterances([WAKE_COMMAND], lead_s=0.5, tail_s=1.0, rate=24_000)
    pcm = (np.clip(audio, -1, 1) * 32767).astype("<i2").tobytes()

    async def main() -> None:
        async with realtime(cls_server.ws_url) as client:
            session = await configure(client, rate=24_000, classifiers=["wake_word"])
            assert session["voxwire.classifiers"] == ["wake_word"]
            assert session["voxwire.wake_words"] == {
                "threshold": 0.5,
                "refractory_ms": 2000,
                "names": None,
            }
            await client.stream(pcm, rate=24_000, speed=4)
            detected = await client.next(DETECTED, within=10)
            assert detected["name"] == "hey_jarvis"
            assert detected["score"] >= 0.5
            assert detected["event_id"].startswith("event_")
            # "Hey Jarvis" is said from 0.55 to 1.25 s: it fires once it has been heard.
            assert 1000 <= detected["audio_ms"] <= 2200, detected

    run(main())


def test_a_minute_of_speech_without_a_wake_word_fires_nothing(cls_server: LiveServer) -> None:
    audio = speech.utterances(list(NO_WAKE_WORDS), gap_s=0.6)
    assert len(audio) >= 60 * 16_000

    async def main() -> None:
        async with realtime(cls_server.ws_url) as client:
            # Manual commits: nothing is transcribed, so the stream is about wake words.
            await client.update(turn_detection=None)
            await configure(client, classifiers=["wake_word"])
            await client.stream(pcm16(audio), rate=16_000, speed=10)
            for _ in range(100):  # until the scorer has caught up with the audio
                await client.send({"type": "voxwire.session.stats"})
                stats = (await client.next("voxwire.session.stats"))["classifiers"]
                heard = stats["wake_word_samples"] + stats["wake_word_samples_dropped"]
                if heard >= len(audio) - 2 * 1280:
                    break
                await asyncio.sleep(0.05)
            # Nothing fires, and (almost) all of it was heard: a few frames may be dropped
            # if the worker stalls while the stream runs at 10 times real time.
            assert stats["wake_word_samples_dropped"] <= 0.02 * len(audio), stats
            assert stats["wake_word_samples"] >= 0.98 * len(audio) - 2 * 1280, stats
            assert stats["wake_word_detections"] == 0, stats
            assert not [e for e in client.received if e["type"] == DETECTED]

    run(main())


def test_the_gate_transcribes_only_after_a_wake_word(cls_server: LiveServer) -> None:
    before = speech.synthesize("Please turn on the lights in the kitchen.")
    command = speech.synthesize(WAKE_COMMAND)
    pcm = pcm16(
        np.concatenate(
            [speech.silence(0.5), before, speech.silence(2.0), command, speech.silence(1.5)]
        )
    )

    async def main() -> None:
        async with realtime(cls_server.ws_url) as client:
            session = await configure(client, wake_word_gate=True)
            assert session["voxwire.wake_word_gate"] is True
            assert session["voxwire.classifiers"] == []
            await client.stream(pcm, rate=16_000, speed=4)
            (transcript,) = await client.transcripts(1, within=15)
            assert "weather" in transcript.lower(), transcript
            assert "kitchen" not in transcript.lower(), transcript
            await asyncio.sleep(1.0)  # nothing else is transcribed
            await client.send({"type": "voxwire.session.stats"})
            stats = (await client.next("voxwire.session.stats"))["classifiers"]
            assert stats["gate"] == "listening"
            assert stats["gate_opened"] == 1
            kinds = [e["type"] for e in client.received]
            assert kinds.count(COMPLETED) == 1
            detected = [e for e in client.received if e["type"] == DETECTED]
            assert detected[0]["name"] == "hey_jarvis"
            assert kinds.index(DETECTED) < kinds.index("input_audio_buffer.speech_started")

    run(main())


# -- classifiers of finished items ----------------------------------------------------------


def test_sentiment_and_intent_follow_each_transcript(cls_server: LiveServer) -> None:
    async def main() -> None:
        async with realtime(cls_server.ws_url) as client:
            session = await configure(client, classifiers=["intent", "sentiment"])
            assert session["voxwire.classifiers"] == ["sentiment", "intent"]
            audio = speech.utterances([POSITIVE, NEGATIVE, WEATHER])
            await client.stream(pcm16(audio), rate=16_000)
            results: dict[tuple[str, str], dict[str, Any]] = {}
            while len(results) < 6:
                event = await client.next(CLASSIFIED, within=30)
                assert "error" not in event, event
                results[(event["item_id"], event["classifier"])] = event
            items = items_in_order(client)  # transcripts may complete out of order
            assert len(items) == 3
            for (item_id, _), event in results.items():
                assert index_of(client, COMPLETED, item_id) < client.received.index(event)
                assert event["source"] == "transcript"
                scores = [label["score"] for label in event["labels"]]
                assert scores == sorted(scores, reverse=True)
                assert sum(scores) == pytest.approx(1.0, abs=1e-3)

            def top(item_id: str, kind: str) -> str:
                return str(results[(item_id, kind)]["labels"][0]["label"])

            assert results[(items[0], "sentiment")]["model"] == "vader"
            assert top(items[0], "sentiment") == "positive"
            assert top(items[1], "sentiment") == "negative"
            assert results[(items[2], "intent")]["model"] == "intent"
            assert top(items[2], "intent") == "weather"

    run(main(), timeout=90)


def enrol(server: LiveServer, name: str, audio: npt.NDArray[np.float32]) -> dict[str, Any]:
    response = httpx.post(
        server.http_url + "/v1/speakers",
        data={"name": name},
        files={"file": ("voice.wav", pcm16_wav_bytes(audio), "audio/wav")},
        timeout=60,
    )
    assert response.status_code == 201, response.text
    return response.json()  # type: ignore[no-any-return]


def test_speakers_are_told_apart(cls_server: LiveServer) -> None:
    enrol(cls_server, "joe", speech.synthesize(ENROL_TEXT))
    enrol(cls_server, "robot", speech.espeak(ENROL_TEXT))
    parts: list[npt.NDArray[np.float32]] = []
    expected: list[str] = []
    for sentence in SPEAKER_SENTENCES:
        parts += [speech.synthesize(sentence), speech.espeak(sentence)]
        expected += ["joe", "robot"]

    async def main() -> None:
        async with realtime(cls_server.ws_url) as client:
            session = await configure(client, classifiers=["speaker"])
            assert session["voxwire.speakers"] == {"threshold": 0.75}
            await client.stream(with_silence(parts), rate=16_000)
            found = [await client.next(IDENTIFIED, within=30) for _ in expected]
            # One answer per item, in the order the transcripts completed.
            completed = [e["item_id"] for e in client.received if e["type"] == COMPLETED]
            assert [e["item_id"] for e in found] == completed
            speakers = {e["item_id"]: e["speaker"] for e in found}
            assert [speakers[item] for item in items_in_order(client)] == expected, found
            for event in found:
                assert event["score"] >= 0.75
                assert index_of(client, COMPLETED, event["item_id"]) < client.received.index(event)

    run(main(), timeout=90)


def test_transcripts_do_not_wait_for_a_slow_classifier(
    cls_server: LiveServer, runtime: Runtime, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Sentiment takes 2 s on its worker; the next transcript still comes at once."""
    original = runtime.call

    async def slow_vader(entry: CatalogEntry, work: Callable[[Any], T], **options: Any) -> T:
        if entry.spec.id != "vader":
            return await original(entry, work, **options)

        def slowly(model: Any) -> T:
            time.sleep(2.0)
            return work(model)

        return await original(entry, slowly, **options)

    monkeypatch.setattr(runtime, "call", slow_vader)
    first = pcm16(speech.utterances([POSITIVE], lead_s=0.3, tail_s=0.8))
    second = pcm16(speech.utterances([NEGATIVE], lead_s=0.3, tail_s=0.8))

    async def main() -> None:
        async with realtime(cls_server.ws_url) as client:
            await configure(client, classifiers=["sentiment"])
            await client.stream(first, rate=16_000)
            one = await client.next(COMPLETED)
            started = time.monotonic()
            await client.stream(second, rate=16_000)
            two = await client.next(COMPLETED, within=10)
            assert time.monotonic() - started < 1.8
            assert not [e for e in client.received if e["type"] == CLASSIFIED]
            late = await client.next(CLASSIFIED, within=10)
            assert late["item_id"] == one["item_id"]
            assert time.monotonic() - started >= 1.5
            assert late["labels"][0]["label"] == "positive"
            last = await client.next(CLASSIFIED, within=10)
            assert last["item_id"] == two["item_id"]
            assert last["labels"][0]["label"] == "negative"

    run(main())


# -- session.update --------------------------------------------------------------------------


def test_bad_classifier_settings_get_an_error_and_change_nothing(cls_server: LiveServer) -> None:
    async def main() -> None:
        async with realtime(cls_server.ws_url) as client:
            bad: list[tuple[dict[str, Any], str]] = [
                ({"voxwire.classifiers": ["sentiment", "mood"]}, "session.voxwire.classifiers"),
                ({"voxwire.classifiers": "sentiment"}, "session.voxwire.classifiers"),
                ({"voxwire.wake_word_gate": "yes"}, "session.voxwire.wake_word_gate"),
                (
                    {"voxwire.wake_words": {"names": ["hey_siri"]}, "voxwire.wake_word_gate": True},
                    "session.voxwire.wake_words.names",
                ),
                ({"voxwire.wake_words": {"threshold": 1.5}}, "session.voxwire.wake_words"),
                ({"voxwire.wake_words": {"treshold": 0.6}}, "session.voxwire.wake_words"),
            ]
            for fields, param in bad:
                await client.send(
                    {
                        "type": "session.update",
                        "event_id": "evt_bad",
                        "session": {"type": "transcription", **fields},
                    }
                )
                error = await client.error()
                assert error["param"].startswith(param), (fields, error)
                assert error["event_id"] == "evt_bad"
            session = await configure(
                client,
                wake_words={"names": ["hey_jarvis", "alexa"], "threshold": 0.6},
            )
            assert session["voxwire.classifiers"] == []
            assert session["voxwire.wake_word_gate"] is False
            assert session["voxwire.wake_words"] == {
                "threshold": 0.6,
                "refractory_ms": 2000,
                "names": ["hey_jarvis", "alexa"],
            }
            assert (await client.stats())["samples_in"] == 0

    run(main())


# -- the parts alone ---------------------------------------------------------------------------


def test_the_gate_holds_audio_and_releases_it_from_before_the_wake_word() -> None:
    gate = WakeWordGate(preroll_s=1.0, hold_s=3.0)
    chunk = np.ones(2400, dtype=np.float32)  # 100 ms at 24 kHz
    assert gate.feed(chunk, 24_000) is chunk  # no gate: everything passes
    gate.enable()
    for _ in range(50):  # 5 s: the gate keeps the last 3 s
        assert gate.feed(chunk, 24_000) is None
    assert gate.discarded == pytest.approx(2.0 * 16_000)
    with pytest.raises(IllegalTransition):
        gate.enable()
    wake_at = 16_000 * 5  # 5.1 s of input so far; the wake word ended at 5.0 s
    audio, start = gate.wake(wake_at, 24_000)
    assert gate.state is GateState.OPEN
    assert start == pytest.approx(wake_at - 16_000)
    assert len(audio) == round(1.1 * 24_000)  # 1 s before the wake word, and 0.1 s after
    assert gate.feed(chunk, 24_000) is chunk
    gate.close()
    assert gate.feed(chunk, 24_000) is None
    assert len(gate.disable(24_000)) == 2400
    assert gate.state.value == "off"


class _FakeStream:
    def __init__(self, scores: list[dict[str, float]]) -> None:
        self.scores = scores
        self.frames = 0

    def reset(self) -> None:
        self.frames = 0

    def process(self, frame: npt.NDArray[np.float32]) -> dict[str, float]:
        assert len(frame) == 1280
        self.frames += 1
        return self.scores[self.frames - 1] if self.frames <= len(self.scores) else {}


class _FakeModel:
    name = "fake"
    wake_words = ("alexa", "hey_jarvis")
    frame_samples = 1280

    def __init__(self, scores: list[dict[str, float]]) -> None:
        self.stream = _FakeStream(scores)

    def new_stream(self) -> _FakeStream:
        return self.stream


def test_the_scorer_applies_threshold_refractory_period_and_names() -> None:
    high = {"alexa": 0.9, "hey_jarvis": 0.7}
    scores = [{"alexa": 0.2}, high, high, high] + [{}] * 23 + [high]
    scorer = WakeWordScorer(_FakeModel(scores))  # type: ignore[arg-type]
    config = WakeWordConfig(threshold=0.5, refractory_ms=2000, names=("alexa",))
    audio = np.zeros(1280 * 28 + 100, dtype=np.float32)
    found, scored = scorer.process([(16_000, audio)], 0, config)
    assert scored == 1280 * 28
    # Frame 2 fires; frames 3-4 fall in the refractory period; frame 28 is 2.08 s later.
    assert [(d.name, d.position // 1280) for d in found] == [("alexa", 2), ("alexa", 28)]
    assert found[0].score == pytest.approx(0.9)
    # A gap moves the clock on: positions stay true to the input.
    found, _ = scorer.process([(16_000, np.zeros(1180, dtype=np.float32))], 16_000, config)
    assert found == []
    assert scorer.position == 1280 * 28 + 100 + 16_000


def test_item_results_wait_returns_what_came_and_lets_a_cancel_through() -> None:
    from voxwire.transports.realtime.classifiers import ItemResults

    async def main() -> None:
        results = ItemResults(limit=2)
        results.expect("item_1")
        results.add({"type": "voxwire.classification", "item_id": "item_1", "labels": []})
        # Within the time given: what came so far.
        assert len(await results.wait("item_1", within_s=0.05)) == 1
        # A waiter that is cancelled (barge-in cancels the reply) is cancelled.
        waiter = asyncio.create_task(results.wait("item_1", within_s=30))
        await asyncio.sleep(0.01)
        waiter.cancel()
        with pytest.raises(asyncio.CancelledError):
            await waiter
        # An item pushed out by newer ones answers its waiter at once.
        waiter = asyncio.create_task(results.wait("item_1", within_s=30))
        await asyncio.sleep(0.01)
        results.expect("item_2")
        results.expect("item_3")
        assert len(await asyncio.wait_for(waiter, 1)) == 1
        assert await results.wait("item_unknown", within_s=30) == []

    asyncio.run(main())
