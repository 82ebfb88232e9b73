"""`POST /v1/realtime/calls` with real aiortc peers on both ends, on the real models.

The client is aiortc too (voxwire.transports.bench.webrtc.RealtimeCall): it posts its offer,
plays known speech on its microphone track, and reads the events on `oai-events` and
the audio on the reply track. A caller that hangs up, vanishes or is refused leaves no
session slot, task or track behind.
"""

from __future__ import annotations

import asyncio
import io
import json
import logging
import socket
import time
import wave
from collections.abc import Iterator
from typing import Any, cast

import numpy as np
import numpy.typing as npt
import pytest
from aioice import stun
from openai import OpenAI

from tests import speech
from tests.assistants import STORY
from tests.e2e.console import run, wer
from tests.live_server import LiveServer, live_server
from voxwire.services.runtime import Runtime
from voxwire.transports.bench.webrtc import CallError, RealtimeCall, multipart_body, post_offer
from voxwire.transports.cli.config import ConfigError, parse_config, resolve
from voxwire.transports.http.settings import ServerSettings
from voxwire.transports.realtime.websocket import RealtimeConnection, RealtimeLimits
from voxwire.transports.webrtc.audio import ReplyTrack
from voxwire.transports.webrtc.ice import IceServer, ice_servers_from

SENTENCE = speech.SENTENCES[1]
COMPLETED = "conversation.item.input_audio_transcription.completed"
RATE = 48_000


@pytest.fixture(scope="module")
def sentence() -> npt.NDArray[np.float32]:
    """One sentence with silence around it, 48 kHz (the microphone track's rate)."""
    return speech.utterances([SENTENCE], lead_s=0.3, tail_s=1.0, rate=RATE)


@pytest.fixture(scope="module")
def small_server(runtime: Runtime) -> Iterator[LiveServer]:
    """One session slot, and calls whose microphone is silent for 1 s are dropped."""
    settings = ServerSettings(realtime=RealtimeLimits(max_sessions=1), webrtc_media_timeout_s=1.0)
    with live_server(runtime, settings) as live:
        yield live


def media_tasks(live: LiveServer) -> list[str]:
    """The server loop's tasks that run aiortc or aioice code."""

    async def names() -> list[str]:
        found = []
        for task in asyncio.all_tasks():
            code = getattr(task.get_coro(), "cr_code", None)
            where = code.co_filename if code is not None else ""
            if "/aiortc/" in where or "/aioice/" in where:
                found.append(f"{task.get_name()} {code.co_name if code else ''}")
        return found

    return live.call(names())


def calls_in_progress(live: LiveServer) -> int:
    registry = getattr(live.server.config.app.state, "webrtc_calls", None)  # type: ignore[attr-defined]
    return 0 if registry is None else len(registry.calls)


def wait_until_released(live: LiveServer, timeout: float = 10.0) -> None:
    """No session, session task, call, or aiortc/aioice task is left in the server."""
    live.wait_until_idle(timeout)
    deadline = time.monotonic() + timeout
    while media_tasks(live) or calls_in_progress(live):
        if time.monotonic() > deadline:
            raise AssertionError(f"left behind: {media_tasks(live)}, {calls_in_progress(live)}")
        time.sleep(0.05)


def connection_of(live: LiveServer, session_id: str) -> RealtimeConnection:
    slots = live.server.config.app.state.realtime_slots  # type: ignore[attr-defined]
    connection: RealtimeConnection = slots.active[session_id]
    return connection


def transcribe_pcm(live: LiveServer, pcm: bytes, rate: int = RATE) -> str:
    """PCM16 mono transcribed by the server's own /v1/audio/transcriptions."""
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as f:
        f.setnchannels(1)
        f.setsampwidth(2)
        f.setframerate(rate)
        f.writeframes(pcm)
    client = OpenAI(api_key="unused", base_url=live.http_url + "/v1")
    result = client.audio.transcriptions.create(
        file=("reply.wav", buffer.getvalue()), model="whisper-1"
    )
    return str(result.text)


def rms(pcm: bytes) -> float:
    samples = np.frombuffer(pcm, dtype="<i2").astype(np.float64) / 32768.0
    return float(np.sqrt(np.mean(samples**2))) if samples.size else 0.0


# -- calls that work ---------------------------------------------------------------------------


def test_sdp_offer_gets_an_answer_transcripts_and_a_spoken_reply(
    server: LiveServer, sentence: npt.NDArray[np.float32]
) -> None:
    """application/sdp in, 201 + answer out; speech on the track becomes events on the
    channel, and the reply (the default echo handler says the transcript back) comes
    back as audio on the reply track."""

    async def main() -> tuple[list[dict[str, Any]], bytes]:
        async with RealtimeCall(server.http_url, query={"model": "gpt-realtime"}) as call:
            assert call.multipart is False
            assert call.answer_headers["content-type"].startswith("application/sdp")
            assert call.location == f"/v1/realtime/calls/{call.call_id}"
            assert call.call_id is not None and call.call_id.startswith("rtc_")
            created = await call.log.wait_for("session.created", 10)
            assert created["session"]["type"] == "realtime"
            assert created["session"]["model"] == "gpt-realtime"
            assert call.mic is not None
            call.mic.play(sentence)
            await call.log.wait_for(COMPLETED, 30)
            await call.log.wait_for("response.created", 30)
            # The reply is paced in real time: wait for its audio, then for the silence after.
            heard_at = None
            for _ in range(200):
                await asyncio.sleep(0.1)
                if heard_at is None and rms(call.reply[-RATE // 10 :]) > 0.01:
                    heard_at = len(call.reply)
                elif heard_at is not None and rms(call.reply[-RATE:]) < 0.001:
                    break
            assert heard_at is not None, "no reply audio on the track"
            await call.log.wait_for("output_audio_buffer.stopped", 10)
            return [e for _, e in call.log.events], bytes(call.reply)

    events, reply = asyncio.run(main())
    kinds = [e["type"] for e in events]
    user = [
        k for k in kinds if k.startswith("input_audio_buffer") or "input_audio_transcription" in k
    ]
    assert user[0] == "input_audio_buffer.speech_started"
    assert user.index("input_audio_buffer.speech_stopped") < user.index(COMPLETED)
    (completed,) = [e for e in events if e["type"] == COMPLETED]
    deltas = "".join(
        e["delta"]
        for e in events
        if e["type"] == "conversation.item.input_audio_transcription.delta"
    )
    assert deltas == completed["transcript"]
    assert wer(SENTENCE, completed["transcript"]) <= 0.15
    # Replies travel on the track, not as audio events; the buffer events tell when the
    # track starts and stops playing them, as OpenAI's WebRTC does.
    assert "response.output_audio.delta" not in kinds
    response_id = next(e for e in events if e["type"] == "response.done")["response"]["id"]
    started = kinds.index("output_audio_buffer.started")
    assert kinds.index("response.created") < started < kinds.index("response.done")
    assert kinds.index("response.done") < kinds.index("output_audio_buffer.stopped")
    assert events[started]["response_id"] == response_id
    assert wer(SENTENCE, transcribe_pcm(server, reply)) <= 0.15
    wait_until_released(server)


def test_session_options_and_session_update_on_the_data_channel(
    server: LiveServer, sentence: npt.NDArray[np.float32]
) -> None:
    """multipart/form-data with `session` (OpenAI's form); then session.update and a
    bad update over `oai-events`; classification events arrive there too."""
    session = {
        "type": "transcription",
        "audio": {"input": {"turn_detection": {"type": "server_vad", "silence_duration_ms": 600}}},
        "voxwire.classifiers": ["sentiment"],
    }

    async def main() -> None:
        async with RealtimeCall(server.http_url, session=session) as call:
            assert call.multipart is True
            created = await call.log.wait_for("session.created", 10)
            wire = created["session"]
            assert wire["type"] == "transcription"
            assert wire["voxwire.classifiers"] == ["sentiment"]
            assert wire["audio"]["input"]["turn_detection"]["silence_duration_ms"] == 600
            assert wire["audio"]["input"]["format"] == {"type": "audio/pcm", "rate": RATE}

            call.send(
                {
                    "type": "session.update",
                    "session": {
                        "type": "transcription",
                        "audio": {"input": {"turn_detection": {"silence_duration_ms": 400}}},
                    },
                }
            )
            updated = await call.log.wait_for("session.updated", 10)
            turn = updated["session"]["audio"]["input"]["turn_detection"]
            assert turn["silence_duration_ms"] == 400
            # A mistake gets an error event; the channel and the session carry on.
            call.send(
                {
                    "type": "session.update",
                    "event_id": "evt_bad",
                    "session": {"audio": {"input": {"format": {"rate": 12345}}}},
                }
            )
            error = (await call.log.wait_for("error", 10))["error"]
            assert error["code"] == "unsupported_sample_rate"
            assert error["event_id"] == "evt_bad"

            assert call.mic is not None
            call.mic.play(sentence)
            completed = await call.log.wait_for(COMPLETED, 30)
            assert wer(SENTENCE, completed["transcript"]) <= 0.15
            label = await call.log.wait_for("voxwire.classification", 30)
            assert label["item_id"] == completed["item_id"]
            assert label["classifier"] == "sentiment"
            await call.mic.drained()
            # Every sample played reaches the session (RTP and the channel are not
            # ordered with each other, so ask until the last frames are in).
            for _ in range(50):
                call.send({"type": "voxwire.session.stats"})
                seen = len(call.log.events)
                stats = await call.log.wait_for("voxwire.session.stats", 10, start=seen)
                counters = stats["counters"]
                if counters["samples_in"] >= len(sentence):
                    break
                await asyncio.sleep(0.1)
            assert counters["samples_in"] >= len(sentence)
            assert counters["samples_segmented"] == counters["samples_transcribed"] > 0
            assert not call.channel_closed

    asyncio.run(main())
    wait_until_released(server)


def test_audio_written_to_the_reply_track_reaches_the_caller(server: LiveServer) -> None:
    """The reply track is the session's AudioSink: a tone written to it arrives whole,
    as a tone, and discard() drops what is queued."""
    tone = 0.3 * np.sin(2 * np.pi * 440.0 * np.arange(RATE) / RATE)
    pcm = (tone * 32767).astype("<i2").tobytes()

    async def main() -> bytes:
        async with RealtimeCall(server.http_url, query={"intent": "transcription"}) as call:
            created = await call.log.wait_for("session.created", 10)
            sink = connection_of(server, created["session"]["id"]).audio_sink
            assert isinstance(sink, ReplyTrack) and sink.rate == RATE
            await asyncio.wrap_future(
                asyncio.run_coroutine_threadsafe(sink.write(pcm), server.loop)
            )
            await asyncio.sleep(2.0)
            received = bytes(call.reply)

            async def fill_and_discard() -> tuple[int, int]:
                await sink.write(pcm)
                return sink.discard(), sink.queued_samples

            dropped, left = server.call(fill_and_discard())
            assert dropped > 0 and left == 0
            return received

    received = asyncio.run(main())
    samples = np.frombuffer(received, dtype="<i2").astype(np.float32) / 32768.0
    frames = samples[: len(samples) // 960 * 960].reshape(-1, 960)
    loud = np.sqrt(np.mean(frames**2, axis=1)) > 0.05
    # About one second of tone (Opus may smear a frame at either end), nothing lost.
    assert 45 <= int(loud.sum()) <= 55
    heard = frames[loud].reshape(-1)
    spectrum = np.abs(np.fft.rfft(heard))
    peak = float(np.fft.rfftfreq(len(heard), 1 / RATE)[int(np.argmax(spectrum))])
    assert abs(peak - 440.0) < 5.0
    wait_until_released(server)


# -- calls that end -----------------------------------------------------------------------------


def test_caller_hanging_up_mid_utterance_leaves_nothing_behind(
    server: LiveServer, sentence: npt.NDArray[np.float32]
) -> None:
    audio = speech.utterances(list(speech.SENTENCES), lead_s=0.3, rate=RATE)

    async def main() -> ReplyTrack:
        async with RealtimeCall(server.http_url, query={"intent": "transcription"}) as other:
            call = RealtimeCall(server.http_url, query={"intent": "transcription"})
            await call.open()
            created = await call.log.wait_for("session.created", 10)
            sink = connection_of(server, created["session"]["id"]).audio_sink
            assert isinstance(sink, ReplyTrack)
            assert call.mic is not None and other.mic is not None
            call.mic.play(audio)
            await call.log.wait_for("conversation.item.input_audio_transcription.delta", 30)
            await call.pc.close()  # mid-utterance: the caller is gone
            # Another call is unaffected, while and after the first goes away.
            other.mic.play(sentence)
            completed = await other.log.wait_for(COMPLETED, 30)
            assert wer(SENTENCE, completed["transcript"]) <= 0.15
            await call.close()
            return sink

    sink = asyncio.run(main())
    wait_until_released(server)
    assert sink.readyState == "ended"
    slots = server.server.config.app.state.realtime_slots  # type: ignore[attr-defined]
    assert slots.in_use == 0 and not slots.active


def test_caller_that_vanishes_is_dropped_when_its_audio_stops(
    small_server: LiveServer, caplog: pytest.LogCaptureFixture
) -> None:
    """No goodbye at all (the caller's sockets just close): the server notices that the
    microphone track went silent and releases the call."""

    async def main() -> None:
        call = RealtimeCall(small_server.http_url, query={"intent": "transcription"})
        await call.open()
        await call.log.wait_for("session.created", 10)
        assert small_server.slots_in_use() == 1
        for _ in range(50):  # the microphone is flowing (silence)
            seen = len(call.log.events)
            call.send({"type": "voxwire.session.stats"})
            stats = await call.log.wait_for("voxwire.session.stats", 10, start=seen)
            if stats["counters"]["samples_in"] > 0:
                break
            await asyncio.sleep(0.05)
        ice = call.pc.getTransceivers()[0].sender.transport.transport
        await ice._connection.close()  # the network is gone: nothing more is sent
        for _ in range(100):
            if small_server.slots_in_use() == 0:
                break
            await asyncio.sleep(0.1)
        await call.close()

    with caplog.at_level(logging.INFO, logger="voxwire.transports.webrtc.calls"):
        asyncio.run(main())
        wait_until_released(small_server)
    assert any("no audio from the caller for 1 s" in r.getMessage() for r in caplog.records)


def test_session_limit_refuses_with_503_and_hangup_frees_the_slot(
    small_server: LiveServer,
) -> None:
    async def main() -> None:
        async with RealtimeCall(small_server.http_url) as first:
            await first.log.wait_for("session.created", 10)
            with pytest.raises(CallError) as refused:
                await RealtimeCall(small_server.http_url).open()
            assert refused.value.status == 503
            assert refused.value.headers.get("retry-after") == "1"
            assert json.loads(refused.value.body)["error"]["code"] == "too_many_sessions"
            assert first.location is not None
            status, _, _ = await asyncio.to_thread(
                post_offer, small_server.http_url + first.location + "/hangup", b"", "text/plain"
            )
            assert status == 200
            await first.wait_closed(10)
        wait_until_released(small_server)
        async with RealtimeCall(small_server.http_url) as again:
            await again.log.wait_for("session.created", 10)

    asyncio.run(main())
    wait_until_released(small_server)
    status, _, body = post_offer(
        small_server.http_url + "/v1/realtime/calls/rtc_nope/hangup", b"", "text/plain"
    )
    assert status == 404 and json.loads(body)["error"]["code"] == "call_not_found"


@pytest.mark.parametrize(
    ("body", "content_type", "status", "code"),
    [
        (b"v=0\r\n", "text/plain", 415, "unsupported_content_type"),
        (b"", "application/sdp", 400, "invalid_offer"),
        (b"this is not sdp\r\n", "application/sdp", 400, "invalid_offer"),
        (b"v=0\r\nm=audio 9 UDP/TLS/RTP/SAVPF 111\r\n", "application/sdp", 400, "invalid_offer"),
        ({"sdp": "v=0", "session": "{not json"}, None, 400, "invalid_json"),
        ({"sdp": "v=0", "session": '{"type": "bogus"}'}, None, 400, "invalid_value"),
        (
            {"sdp": "v=0", "session": '{"audio": {"input": {"format": {"rate": 12345}}}}'},
            None,
            400,
            "unsupported_sample_rate",
        ),
        (
            {"sdp": "v=0", "session": '{"voxwire.classifiers": ["nope"]}'},
            None,
            400,
            "invalid_value",
        ),
        ({"session": "{}"}, None, 400, "invalid_offer"),
    ],
)
def test_unusable_offers_are_refused_without_a_trace(
    server: LiveServer,
    body: bytes | dict[str, str],
    content_type: str | None,
    status: int,
    code: str,
) -> None:
    if isinstance(body, dict):
        body, content_type = multipart_body(body)
    assert content_type is not None
    got, _, text = post_offer(server.http_url + "/v1/realtime/calls", body, content_type)
    assert got == status, text
    error = json.loads(text)["error"]
    assert error["code"] == code
    assert error["message"]
    assert server.slots_in_use() == 0
    assert calls_in_progress(server) == 0


# -- the page, keys and routing ----------------------------------------------------------------


def test_page_is_public_calls_need_the_key_and_nothing_is_shadowed(runtime: Runtime) -> None:
    import urllib.error
    import urllib.request

    def get(url: str, key: str | None = None) -> tuple[int, str, str]:
        request = urllib.request.Request(url)
        if key:
            request.add_header("Authorization", f"Bearer {key}")
        try:
            with urllib.request.urlopen(request, timeout=10) as response:
                return response.status, response.headers["content-type"], response.read().decode()
        except urllib.error.HTTPError as exc:
            return exc.code, exc.headers["content-type"], exc.read().decode()

    with live_server(runtime, ServerSettings(api_keys=("sk-test",))) as live:
        status, kind, page = get(live.http_url + "/")
        assert status == 200 and kind.startswith("text/html") and "app.js" in page
        for name in ("app.js", "pcm-worklet.js", "style.css"):
            status, kind, _ = get(f"{live.http_url}/{name}")
            assert status == 200, name
        assert get(live.http_url + "/app.js")[1].startswith("text/javascript")
        assert get(live.http_url + "/health")[0] == 200
        assert get(live.http_url + "/v1/models")[0] == 401
        assert get(live.http_url + "/v1/models", "sk-test")[0] == 200
        status, _, body = get(live.http_url + "/no-such-page", "sk-test")
        assert status == 404 and json.loads(body)["error"]["code"] == "not_found"
        status, _, body = get(live.http_url + "/openapi.json", "sk-test")
        assert "/v1/realtime/calls" in json.loads(body)["paths"]

        async def calls() -> None:
            with pytest.raises(CallError) as refused:
                await RealtimeCall(live.http_url).open()
            assert refused.value.status == 401
            async with RealtimeCall(live.http_url, api_key="sk-test") as call:
                await call.log.wait_for("session.created", 10)

        asyncio.run(calls())
        wait_until_released(live)


# -- ICE ----------------------------------------------------------------------------------------


def test_ice_server_settings_are_checked() -> None:
    stun_server, turn_server = ice_servers_from(
        ["stun:stun.example.org:3478", "turn:turn.example.org:3478?transport=udp"], "u", "p"
    )
    assert stun_server == IceServer(("stun:stun.example.org:3478",))
    assert (turn_server.username, turn_server.credential) == ("u", "p")
    with pytest.raises(ValueError, match="not a STUN or TURN URL"):
        IceServer(("http://example.org",))
    with pytest.raises(ValueError, match="needs a username and a credential"):
        IceServer(("turn:turn.example.org",))
    config = parse_config(
        {
            "server": {
                "ice_servers": [
                    {"urls": "stun:stun.example.org"},
                    {
                        "urls": ["turns:t.example.org:443?transport=tcp"],
                        "username": "a",
                        "credential": "b",
                    },
                ],
                "webrtc_media_timeout": 5,
            }
        },
        "voxwire.toml",
    )
    settings = resolve(config).settings
    assert [s.urls for s in settings.ice_servers] == [
        ("stun:stun.example.org",),
        ("turns:t.example.org:443?transport=tcp",),
    ]
    assert settings.webrtc_media_timeout_s == 5
    with pytest.raises(ConfigError, match=r"server\.ice_servers\.0: 'stun' is not a STUN"):
        parse_config({"server": {"ice_servers": [{"urls": "stun"}]}}, "voxwire.toml")
    assert ServerSettings().ice_servers == ()


def test_serve_refuses_a_bad_ice_server_in_one_line() -> None:
    result = run("serve", "--ice-server", "http://example.org")
    assert result.returncode == 2
    assert "not a STUN or TURN URL" in result.stderr
    assert "Traceback" not in result.stderr


async def _close(transport: asyncio.BaseTransport) -> None:
    transport.close()


class _StunResponder(asyncio.DatagramProtocol):
    """Answers STUN binding requests with a made-up public address."""

    PUBLIC = "203.0.113.7"

    def __init__(self) -> None:
        self.requests = 0
        self.transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.DatagramTransport, transport)

    def datagram_received(self, data: bytes, addr: tuple[str | Any, int]) -> None:
        request = stun.parse_message(data)
        if request.message_method != stun.Method.BINDING:
            return
        self.requests += 1
        response = stun.Message(
            message_method=stun.Method.BINDING,
            message_class=stun.Class.RESPONSE,
            transaction_id=request.transaction_id,
        )
        response.attributes["XOR-MAPPED-ADDRESS"] = (self.PUBLIC, addr[1])
        assert self.transport is not None
        self.transport.sendto(bytes(response), addr)


def test_configured_stun_server_is_used_and_none_is_asked_by_default(
    runtime: Runtime, server: LiveServer
) -> None:
    async def answer_sdp(url: str) -> str:
        async with RealtimeCall(url) as call:
            await call.log.wait_for("session.created", 10)
            return str(call.pc.remoteDescription.sdp)

    default = asyncio.run(answer_sdp(server.http_url))
    kinds = {line.split(" typ ")[1].split()[0] for line in default.splitlines() if " typ " in line}
    assert kinds == {"host"}
    assert "127.0.0.1" in default  # a browser on this machine can connect without a LAN
    wait_until_released(server)

    responder = _StunResponder()
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    settings = ServerSettings(ice_servers=(IceServer((f"stun:127.0.0.1:{port}",)),))
    with live_server(runtime, settings) as live:
        transport, _ = live.call(live.loop.create_datagram_endpoint(lambda: responder, sock=sock))
        relayed = asyncio.run(answer_sdp(live.http_url))
        wait_until_released(live)
        live.call(_close(transport))
    assert responder.requests >= 1
    assert f"{_StunResponder.PUBLIC} " in relayed and "typ srflx" in relayed


def test_output_audio_buffer_clear_drops_the_reply_on_the_track(server: LiveServer) -> None:
    """output_audio_buffer.clear cancels the reply and empties the track at once."""

    async def main() -> list[dict[str, Any]]:
        async with RealtimeCall(server.http_url, query={"model": "gpt-realtime"}) as call:
            await call.log.wait_for("session.created", 10)
            call.send({"type": "session.update", "session": {"type": "realtime"}})
            await call.log.wait_for("session.updated", 10)
            call.send(
                {
                    "type": "conversation.item.create",
                    "item": {
                        "type": "message",
                        "role": "user",
                        "content": [{"type": "input_text", "text": STORY}],
                    },
                }
            )
            call.send({"type": "response.create"})
            await call.log.wait_for("output_audio_buffer.started", 30)
            call.send({"type": "output_audio_buffer.clear"})
            await call.log.wait_for("output_audio_buffer.cleared", 10)
            await call.log.wait_for("response.done", 10)
            return [e for _, e in call.log.events]

    events = asyncio.run(main())
    done = next(e for e in events if e["type"] == "response.done")
    assert done["response"]["status"] == "cancelled"
    assert done["response"]["status_details"]["reason"] == "client_cancelled"
    cleared = next(e for e in events if e["type"] == "output_audio_buffer.cleared")
    assert cleared["response_id"] == done["response"]["id"]
    wait_until_released(server)
