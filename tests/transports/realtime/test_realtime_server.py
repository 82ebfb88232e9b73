"""The Realtime WebSocket endpoint over real sockets, on the real models.

Every error path gets an `error` event and the same session goes on to
transcribe; limits close with the documented codes; a client that vanishes
leaves nothing behind.
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import socket
import time
import urllib.request
from collections.abc import Iterator
from typing import Any

import jiwer
import numpy as np
import numpy.typing as npt
import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from tests import speech
from tests.e2e.console import normalise
from tests.live_server import LiveServer, live_server
from tests.realtime_client import RealtimeTestClient, pcm16, realtime
from voxwire.services.runtime import Runtime
from voxwire.transports.http.settings import ServerSettings
from voxwire.transports.realtime.websocket import RealtimeLimits

SENTENCE = speech.SENTENCES[0]
TRANSCRIBED = "conversation.item.input_audio_transcription.completed"


@pytest.fixture(scope="module")
def sentence() -> npt.NDArray[np.float32]:
    """One sentence with silence around it, 16 kHz."""
    return speech.utterances([SENTENCE], lead_s=0.3, tail_s=1.0)


PASSAGE = (speech.SENTENCES[0], speech.SENTENCES[2])
"""Two sentences with a pause shorter than the VAD's hangover: one utterance of about
6 s, long enough for words to be committed while it is spoken (a clip commits nothing
before min_commit_audio_ms)."""


@pytest.fixture(scope="module")
def passage() -> npt.NDArray[np.float32]:
    return speech.utterances(list(PASSAGE), gap_s=0.25, lead_s=0.3, tail_s=1.0)


def wer(reference: str, hypothesis: str) -> float:
    return float(jiwer.wer(normalise(reference), normalise(hypothesis)))


async def say_sentence(
    client: RealtimeTestClient, audio: npt.NDArray[np.float32], rate: int = 16_000
) -> str:
    """Stream the sentence (binary frames, as fast as the server reads) and return
    its transcript."""
    await client.stream(pcm16(audio, rate), rate=rate)
    (text,) = await client.transcripts(1)
    return text


def test_health(server: LiveServer) -> None:
    with urllib.request.urlopen(server.http_url + "/health", timeout=10) as response:
        assert response.status == 200
        body = json.loads(response.read())
    assert body["status"] == "ok"
    assert body["models"]["asr"] == server.runtime.asr.name


def test_session_created_says_the_session_type(server: LiveServer) -> None:
    async def main() -> None:
        async with connect(server.ws_url + "?model=gpt-realtime") as ws:
            created = json.loads(await ws.recv())
            assert created["type"] == "session.created"
            assert created["event_id"].startswith("event_")
            assert created["session"]["type"] == "realtime"
            assert created["session"]["audio"]["input"]["format"] == {
                "type": "audio/pcm",
                "rate": 24000,
            }
        async with realtime(server.ws_url) as client:
            updated = await client.update(turn_detection=None)
            assert updated["session"]["type"] == "transcription"
            assert updated["session"]["audio"]["input"]["turn_detection"] is None

    asyncio.run(main())


def test_server_vad_events_in_order(server: LiveServer, passage: npt.NDArray[np.float32]) -> None:
    async def main() -> list[dict[str, Any]]:
        async with realtime(server.ws_url) as client:
            await client.update(format={"type": "audio/pcm", "rate": 16000})
            # Real-time pace (x3) so that deltas come while the passage is spoken.
            await client.stream(pcm16(passage), rate=16000, speed=3.0)
            await client.transcripts(1)
            return client.received

    events = asyncio.run(main())
    kinds = [e["type"] for e in events]
    started = kinds.index("input_audio_buffer.speech_started")
    stopped = kinds.index("input_audio_buffer.speech_stopped")
    committed = kinds.index("input_audio_buffer.committed")
    completed = kinds.index(TRANSCRIBED)
    assert started < stopped < committed < completed
    item_id = events[started]["item_id"]
    assert all(e.get("item_id", item_id) == item_id for e in events)
    deltas = [e for e in events if e["type"].endswith("transcription.delta")]
    assert kinds.index("conversation.item.input_audio_transcription.delta") < stopped
    done = events[completed]
    assert "".join(d["delta"] for d in deltas) == done["transcript"]
    assert wer(" ".join(PASSAGE), done["transcript"]) <= 0.1
    assert done["usage"]["type"] == "duration"
    assert 5.0 < done["usage"]["seconds"] < 9.0
    assert events[committed]["previous_item_id"] is None

    assert len({e["event_id"] for e in events}) == len(events)
    assert "voxwire.transcription.tentative" not in kinds  # opt-in only


def test_tentative_text_for_sessions_that_opt_in(
    server: LiveServer, sentence: npt.NDArray[np.float32]
) -> None:
    async def main() -> tuple[dict[str, Any], list[dict[str, Any]]]:
        async with realtime(server.ws_url) as client:
            await client.send(
                {
                    "type": "session.update",
                    "session": {
                        "type": "transcription",
                        "audio": {"input": {"format": {"type": "audio/pcm", "rate": 16000}}},
                        "voxwire": {"tentative_transcripts": True},
                    },
                }
            )
            updated = await client.next("session.updated")
            await client.stream(pcm16(sentence), rate=16000, speed=3.0)
            await client.transcripts(1)
            return updated, client.received

    updated, events = asyncio.run(main())
    assert updated["session"]["voxwire"] == {"tentative_transcripts": True}
    kinds = [e["type"] for e in events]
    tentative = [e for e in events if e["type"] == "voxwire.transcription.tentative"]
    assert tentative, kinds
    # Tentative text shows while the person speaks, before any of it is committed.
    assert kinds.index("voxwire.transcription.tentative") < kinds.index(
        "input_audio_buffer.speech_stopped"
    )
    started = next(e for e in events if e["type"] == "input_audio_buffer.speech_started")
    assert all(e["item_id"] == started["item_id"] for e in tentative)
    assert all(e["content_index"] == 0 and isinstance(e["text"], str) for e in tentative)
    # The committed deltas are unchanged by it: they still make up the transcript.
    deltas = [e["delta"] for e in events if e["type"].endswith("transcription.delta")]
    done = next(e for e in events if e["type"] == TRANSCRIBED)
    assert "".join(deltas) == done["transcript"]
    assert wer(SENTENCE, done["transcript"]) <= 0.1


def test_tentative_transcripts_takes_a_boolean(server: LiveServer) -> None:
    async def main() -> dict[str, Any]:
        async with realtime(server.ws_url) as client:
            await client.send(
                {
                    "type": "session.update",
                    "session": {"type": "transcription", "voxwire": {"tentative_transcripts": 1}},
                }
            )
            return await client.error()

    error = asyncio.run(main())
    assert error["type"] == "invalid_request_error"


@pytest.mark.parametrize("rate", [8000, 16000, 24000, 44100, 48000])
def test_every_input_rate(server: LiveServer, sentence: npt.NDArray[np.float32], rate: int) -> None:
    async def main() -> str:
        async with realtime(server.ws_url) as client:
            if rate != 24000:  # 24 kHz is the default
                await client.update(format={"type": "audio/pcm", "rate": rate})
            return await say_sentence(client, sentence, rate)

    assert wer(SENTENCE, asyncio.run(main())) <= 0.1


def test_base64_appends(server: LiveServer, sentence: npt.NDArray[np.float32]) -> None:
    async def main() -> str:
        async with realtime(server.ws_url) as client:
            await client.stream(pcm16(sentence, 24000), rate=24000, binary=False)
            (text,) = await client.transcripts(1)
            return text

    assert wer(SENTENCE, asyncio.run(main())) <= 0.1


def test_manual_commit_without_turn_detection(
    server: LiveServer, sentence: npt.NDArray[np.float32]
) -> None:
    async def main() -> None:
        async with realtime(server.ws_url) as client:
            await client.update(turn_detection=None, format={"type": "audio/pcm", "rate": 16000})
            await client.send({"type": "input_audio_buffer.commit", "event_id": "c0"})
            error = await client.error()
            assert error["code"] == "input_audio_buffer_commit_empty"
            assert error["event_id"] == "c0"
            await client.stream(pcm16(sentence), rate=16000)
            await client.send({"type": "input_audio_buffer.commit"})
            committed = await client.next("input_audio_buffer.committed")
            (text,) = await client.transcripts(1)
            assert wer(SENTENCE, text) <= 0.1
            kinds = [e["type"] for e in client.received]
            assert "input_audio_buffer.speech_started" not in kinds
            assert committed["item_id"]
            # clear drops what was appended: the next commit has nothing
            await client.stream(pcm16(sentence), rate=16000)
            await client.send({"type": "input_audio_buffer.clear"})
            await client.next("input_audio_buffer.cleared")
            await client.send({"type": "input_audio_buffer.commit"})
            assert (await client.error())["code"] == "input_audio_buffer_commit_empty"

    asyncio.run(main())


def test_client_commit_ends_the_utterance(
    server: LiveServer, sentence: npt.NDArray[np.float32]
) -> None:
    speech_only = sentence[: int(len(sentence) * 0.7)]

    async def main() -> None:
        async with realtime(server.ws_url) as client:
            await client.update(format={"type": "audio/pcm", "rate": 16000})
            await client.stream(pcm16(speech_only), rate=16000)
            await client.next("input_audio_buffer.speech_started")
            await client.send({"type": "input_audio_buffer.commit"})
            await client.next("input_audio_buffer.speech_stopped")
            await client.next("input_audio_buffer.committed")
            (text,) = await client.transcripts(1)
            assert normalise(text).startswith("the quick brown")

    asyncio.run(main())


BAD_EVENTS: list[tuple[str, str | bytes, str, str | None]] = [
    ("malformed JSON", '{"type": "input_audio_buffer.append", ', "invalid_json", None),
    ("not an object", "[1, 2]", "invalid_json", None),
    (
        "unknown type",
        '{"type": "input_audio_buffer.explode", "event_id": "e1"}',
        "invalid_value",
        "type",
    ),
    ("no type", '{"event_id": "e1"}', "missing_required_parameter", "type"),
    (
        "missing audio",
        '{"type": "input_audio_buffer.append", "event_id": "e1"}',
        "invalid_value",
        "audio",
    ),
    (
        "bad base64",
        '{"type": "input_audio_buffer.append", "audio": "@@no", "event_id": "e1"}',
        "invalid_audio",
        "audio",
    ),
    (
        "odd byte count (base64)",
        json.dumps(
            {
                "type": "input_audio_buffer.append",
                "event_id": "e1",
                "audio": base64.b64encode(b"\x01\x02\x03").decode(),
            }
        ),
        "invalid_audio",
        "audio",
    ),
    ("odd byte count (binary)", b"\x01\x02\x03", "invalid_audio", None),
    (
        "unsupported rate",
        json.dumps(
            {
                "type": "session.update",
                "event_id": "e1",
                "session": {
                    "type": "transcription",
                    "audio": {"input": {"format": {"type": "audio/pcm", "rate": 22050}}},
                },
            }
        ),
        "unsupported_sample_rate",
        "session.audio.input.format.rate",
    ),
    (
        "unsupported format",
        json.dumps(
            {
                "type": "session.update",
                "event_id": "e1",
                "session": {"audio": {"input": {"format": {"type": "audio/g729"}}}},
            }
        ),
        "invalid_value",
        "session.audio.input.format.type",
    ),
    (
        "eagerness on server_vad",
        json.dumps(
            {
                "type": "session.update",
                "event_id": "e1",
                "session": {
                    "audio": {
                        "input": {"turn_detection": {"type": "server_vad", "eagerness": "low"}}
                    }
                },
            }
        ),
        "invalid_value",
        "session.audio.input.turn_detection.eagerness",
    ),
    (
        "bad threshold",
        json.dumps(
            {
                "type": "session.update",
                "event_id": "e1",
                "session": {
                    "audio": {"input": {"turn_detection": {"type": "server_vad", "threshold": 1.5}}}
                },
            }
        ),
        "invalid_value",
        "session.audio.input.turn_detection.threshold",
    ),
    (
        "unknown model",
        json.dumps(
            {
                "type": "session.update",
                "event_id": "e1",
                "session": {"audio": {"input": {"transcription": {"model": "no-such-model"}}}},
            }
        ),
        "model_not_found",
        "session.audio.input.transcription.model",
    ),
    (
        "language the model lacks",
        json.dumps(
            {
                "type": "session.update",
                "event_id": "e1",
                "session": {"audio": {"input": {"transcription": {"language": "de"}}}},
            }
        ),
        "unsupported_language",
        "session.audio.input.transcription.language",
    ),
    (
        "session type change",
        json.dumps({"type": "session.update", "event_id": "e1", "session": {"type": "realtime"}}),
        "invalid_value",
        "session.type",
    ),
]


@pytest.mark.parametrize(
    ("message", "code", "param"),
    [pytest.param(m, c, p, id=name) for name, m, c, p in BAD_EVENTS],
)
def test_bad_input_gets_an_error_and_the_session_lives_on(
    server: LiveServer,
    sentence: npt.NDArray[np.float32],
    message: str | bytes,
    code: str,
    param: str | None,
) -> None:
    async def main() -> None:
        async with realtime(server.ws_url) as client:
            await client.update(format={"type": "audio/pcm", "rate": 16000})
            if isinstance(message, bytes):
                await client.ws.send(message)
            else:
                await client.send_text(message)
            error = await client.error()
            assert error["type"] == "invalid_request_error"
            assert error["code"] == code
            assert error["param"] == param
            assert error["message"]
            if isinstance(message, str) and '"event_id": "e1"' in message:
                assert error["event_id"] == "e1"
            # The session kept its settings (16 kHz, server VAD) and still transcribes.
            assert wer(SENTENCE, await say_sentence(client, sentence)) <= 0.1

    asyncio.run(main())


@pytest.fixture(scope="module")
def small_server(runtime: Runtime) -> Iterator[LiveServer]:
    """A server with two session slots and 64 KiB messages."""
    limits = RealtimeLimits(max_sessions=2, max_message_bytes=64 * 1024)
    with live_server(runtime, ServerSettings(realtime=limits)) as live:
        yield live


def test_session_limit_refuses_with_1013(
    small_server: LiveServer, sentence: npt.NDArray[np.float32]
) -> None:
    async def main() -> None:
        async with realtime(small_server.ws_url), realtime(small_server.ws_url):
            assert small_server.slots_in_use() == 2
            async with connect(small_server.ws_url) as ws:
                with pytest.raises(ConnectionClosed) as closed:
                    await ws.recv()
            assert closed.value.rcvd is not None
            assert closed.value.rcvd.code == 1013
        small_server.wait_until_idle()
        async with realtime(small_server.ws_url) as client:
            await client.update(format={"type": "audio/pcm", "rate": 16000})
            assert wer(SENTENCE, await say_sentence(client, sentence)) <= 0.1

    asyncio.run(main())


def test_oversized_message_closes_with_1009(
    small_server: LiveServer, sentence: npt.NDArray[np.float32]
) -> None:
    async def main() -> None:
        async with realtime(small_server.ws_url) as big, realtime(small_server.ws_url) as other:
            await other.update(format={"type": "audio/pcm", "rate": 16000})
            await big.ws.send(b"\x00" * (128 * 1024))
            with pytest.raises(ConnectionClosed) as closed:
                await big.next("never")
            assert closed.value.rcvd is not None
            assert closed.value.rcvd.code == 1009
            assert wer(SENTENCE, await say_sentence(other, sentence)) <= 0.1

    asyncio.run(main())


def test_vanishing_client_leaves_nothing_behind(
    server: LiveServer, sentence: npt.NDArray[np.float32]
) -> None:
    audio = speech.utterances(list(speech.SENTENCES), lead_s=0.3)

    async def main() -> None:
        async with realtime(server.ws_url) as other:
            await other.update(format={"type": "audio/pcm", "rate": 16000})
            async with realtime(server.ws_url) as client:
                await client.update(format={"type": "audio/pcm", "rate": 16000})
                # Mid-utterance: after the first sentence's speech has started.
                cut = int(len(audio) * 0.45)
                await client.stream(pcm16(audio[:cut]), rate=16000)
                await client.next("input_audio_buffer.speech_started")
                client.ws.transport.abort()
            # Another session is unaffected while, and after, the first goes away.
            assert wer(SENTENCE, await say_sentence(other, sentence)) <= 0.1

    asyncio.run(main())
    server.wait_until_idle()


def test_sessions_do_not_share_state(server: LiveServer) -> None:
    """Four sessions at once, at different rates, each hears only its own sentence."""
    texts = [*speech.SENTENCES, speech.SENTENCES[0]]
    rates = [8000, 16000, 24000, 48000]

    async def one(text: str, rate: int) -> str:
        async with realtime(server.ws_url) as client:
            await client.update(format={"type": "audio/pcm", "rate": rate})
            audio = speech.utterances([text], lead_s=0.3, tail_s=1.0)
            await client.stream(pcm16(audio, rate), rate=rate, speed=4.0)
            (transcript,) = await client.transcripts(1)
            return transcript

    async def main() -> list[str]:
        return await asyncio.gather(*(one(t, r) for t, r in zip(texts, rates, strict=True)))

    for text, transcript in zip(texts, asyncio.run(main()), strict=True):
        assert wer(text, transcript) <= 0.1
    server.wait_until_idle()


def test_stats_balance_after_a_session(
    server: LiveServer, sentence: npt.NDArray[np.float32]
) -> None:
    async def main() -> dict[str, int]:
        async with realtime(server.ws_url) as client:
            await client.update(format={"type": "audio/pcm", "rate": 16000})
            await say_sentence(client, sentence)
            return await client.stats()

    counters = asyncio.run(main())
    assert counters["samples_in"] == len(sentence)
    assert counters["samples_segmented"] == counters["samples_transcribed"] > 0
    assert counters["evicted_samples"] == counters["transcriptions_failed"] == 0
    assert counters["items_started"] == counters["items_completed"] == 1


def test_a_peer_that_stops_answering_pings_is_dropped(runtime: Runtime) -> None:
    """A half-open connection (the peer's machine is gone) is found by keepalive pings."""
    settings = ServerSettings(ping_interval_s=0.3, ping_timeout_s=0.3)
    with (
        live_server(runtime, settings) as live,
        socket.create_connection(("127.0.0.1", live.port)) as raw,
    ):
        key = base64.b64encode(os.urandom(16)).decode()
        raw.sendall(
            (
                "GET /v1/realtime?intent=transcription HTTP/1.1\r\n"
                f"Host: 127.0.0.1:{live.port}\r\nUpgrade: websocket\r\n"
                f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
                "Sec-WebSocket-Version: 13\r\n\r\n"
            ).encode()
        )
        assert raw.recv(4096).startswith(b"HTTP/1.1 101")
        assert live.slots_in_use() == 1
        # Read frames (session.created, pings) but never answer a ping.
        raw.settimeout(1)
        dropped_after: float | None = None
        started = time.monotonic()
        while time.monotonic() - started < 5:
            try:
                data = raw.recv(4096)
            except TimeoutError:
                continue
            except ConnectionResetError:
                data = b""
            if not data:  # the server closed the connection
                dropped_after = time.monotonic() - started
                break
        assert dropped_after is not None, "the server kept a peer that answers no pings"
        live.wait_until_idle(timeout=5)
