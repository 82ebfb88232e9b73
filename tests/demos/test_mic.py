"""The pure parts of `voxwire mic` (demos/mic.py, demos/mic_audio.py, demos/mic_display.py):
half duplex, pausing a file without losing any of it, barge-in, bookkeeping, bounded
buffers."""

from __future__ import annotations

import asyncio
import base64
import io
import itertools
import time
from typing import Any, cast

import pytest

from voxwire.demos.mic import (
    SESSION_UPDATE_ID,
    MicClient,
    TurnTracker,
    describe_close,
    expects_replies,
    output_rate,
    session_update,
)
from voxwire.demos.mic_audio import ClockPlayback, DuplexGate, PcmBuffer, level_dbfs, stream_pcm
from voxwire.demos.mic_display import MicView, labels_line, meter, reply_line, transcript_line
from voxwire.demos.mic_options import MicError, MicOptions

RATE = 16_000


class FakeClock:
    """A clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def pcm_of(seconds: float, rate: int = RATE) -> bytes:
    return bytes(int(seconds * rate) * 2)


# -- playback on a clock and the half-duplex gate ------------------------------------------


def test_clock_playback_plays_queued_audio_in_real_time() -> None:
    clock = FakeClock()
    playback = ClockPlayback(RATE, clock)
    assert not playback.busy()
    playback.write(pcm_of(1.0))
    playback.write(pcm_of(0.5))  # queued behind the first second
    assert playback.busy()
    assert playback.pending_seconds == pytest.approx(1.5)
    clock.now += 1.4
    assert playback.busy()
    clock.now += 0.2
    assert not playback.busy()
    # After a gap, new audio starts now, not where the last audio ended.
    clock.now += 10
    playback.write(pcm_of(0.25))
    assert playback.pending_seconds == pytest.approx(0.25)


def test_clock_playback_clear_stops_at_once() -> None:
    clock = FakeClock()
    playback = ClockPlayback(RATE, clock)
    playback.write(pcm_of(3.0))
    clock.now += 1.0
    playback.clear()
    assert not playback.busy()
    assert playback.samples_written == 3 * RATE


def test_half_duplex_gate_closes_from_first_audio_until_it_has_been_heard() -> None:
    clock = FakeClock()
    playback = ClockPlayback(RATE, clock)
    gate = DuplexGate(playback)
    assert gate.open
    gate.reply_audio("resp_1")
    assert not gate.open  # closed before any audio is queued: the reply has begun
    playback.write(pcm_of(2.0))
    clock.now += 1.0
    gate.reply_audio_done("resp_1")
    assert not gate.open  # all audio arrived, one second of it is still playing
    assert gate.replying
    clock.now += 1.01
    assert gate.open
    assert not gate.replying


def test_half_duplex_gate_stays_closed_while_a_slow_reply_streams() -> None:
    """The playback may run dry between two deltas of one reply: still closed."""
    clock = FakeClock()
    playback = ClockPlayback(RATE, clock)
    gate = DuplexGate(playback)
    gate.reply_audio("resp_1")
    playback.write(pcm_of(0.1))
    clock.now += 0.5
    assert not playback.busy()
    assert not gate.open
    gate.reply_audio_done("resp_1")
    assert gate.open


def test_full_duplex_gate_is_always_open() -> None:
    clock = FakeClock()
    playback = ClockPlayback(RATE, clock)
    gate = DuplexGate(playback, full_duplex=True)
    gate.reply_audio("resp_1")
    playback.write(pcm_of(2.0))
    assert gate.open
    assert gate.replying


# -- pausing an input file -----------------------------------------------------------------


def test_a_file_pauses_while_a_reply_plays_and_nothing_is_lost() -> None:
    """The half-duplex gate closes mid-file: sending stops until the reply has been
    heard (on the clock), then resumes where it stopped; every byte goes out once."""
    playback = ClockPlayback(RATE)
    gate = DuplexGate(playback)
    audio = bytes(range(256)) * 250  # 64000 bytes = 2 s at 16 kHz, recognisable bytes
    sent: list[bytes] = []
    sent_while_closed = 0
    reply_s = 0.3

    async def send(block: bytes) -> None:
        nonlocal sent_while_closed
        if not gate.open:
            sent_while_closed += 1
        sent.append(block)
        if len(sent) == 10:  # a reply starts after 200 ms of the file
            gate.reply_audio("resp_1")
            playback.write(pcm_of(reply_s))
            gate.reply_audio_done("resp_1")

    started = time.monotonic()
    paused = asyncio.run(stream_pcm(audio, send, gate, rate=RATE, speed=0.0, poll_s=0.005))
    elapsed = time.monotonic() - started
    assert b"".join(sent) == audio
    assert sent_while_closed == 0
    assert all(len(block) == 640 for block in sent)  # 20 ms blocks
    assert paused == pytest.approx(reply_s, abs=0.1)
    assert elapsed >= reply_s


def test_a_paused_file_keeps_real_time_pace_after_resuming() -> None:
    """The pacing clock is held while paused: no burst afterwards, so the whole file
    takes its own duration plus the pause."""
    playback = ClockPlayback(RATE)
    gate = DuplexGate(playback)
    audio = pcm_of(0.6)
    times: list[float] = []

    async def send(block: bytes) -> None:
        times.append(time.monotonic())
        if len(times) == 5:
            gate.reply_audio("resp_1")
            playback.write(pcm_of(0.3))
            gate.reply_audio_done("resp_1")

    paused = asyncio.run(stream_pcm(audio, send, gate, rate=RATE, speed=1.0, poll_s=0.005))
    assert len(times) == 30
    assert paused == pytest.approx(0.3, abs=0.1)
    total = times[-1] - times[0]
    assert total == pytest.approx(0.58 + paused, abs=0.1)
    # After the pause, blocks are again 20 ms apart (paced), not sent in a burst.
    gaps = sorted(b - a for a, b in itertools.pairwise(times[6:]))
    assert gaps[len(gaps) // 2] > 0.015


def test_a_stall_check_can_stop_a_paused_file() -> None:
    playback = ClockPlayback(RATE)
    gate = DuplexGate(playback)
    gate.reply_audio("resp_never_done")

    def stalled() -> None:
        raise MicError("the server has not answered")

    async def send(_block: bytes) -> None:
        return None

    with pytest.raises(MicError):
        asyncio.run(stream_pcm(pcm_of(0.1), send, gate, rate=RATE, speed=0.0, on_wait=stalled))


# -- the playback buffer -------------------------------------------------------------------


def test_pcm_buffer_is_bounded_and_counts_what_it_drops() -> None:
    buffer = PcmBuffer(max_bytes=10)
    assert buffer.write(b"\x01\x00" * 4) == 8
    assert buffer.write(b"\x02\x00" * 4) == 2  # only whole samples, up to the bound
    assert buffer.dropped_bytes == 6
    assert buffer.queued_bytes == 10


def test_pcm_buffer_reads_then_pads_with_silence_and_notes_when_it_drained() -> None:
    clock = FakeClock()
    buffer = PcmBuffer(max_bytes=1000, clock=clock)
    buffer.write(b"\x01\x02\x03\x04")
    out = bytearray(b"\xff" * 6)
    assert buffer.read_into(memoryview(out)) == 4
    assert bytes(out) == b"\x01\x02\x03\x04\x00\x00"
    assert buffer.queued_bytes == 0
    assert buffer.drained_at == clock.now
    buffer.write(b"\x05\x06" * 3)
    assert buffer.clear() == 6
    assert buffer.read_into(memoryview(out)) == 0
    assert bytes(out) == bytes(6)


# -- turns and replies ---------------------------------------------------------------------


def test_tracker_transcription_session_finishes_when_every_commit_is_transcribed() -> None:
    tracker = TurnTracker(expect_replies=False)
    assert tracker.finished
    tracker.speech_started("item_1")
    assert not tracker.finished  # speech in progress will be committed
    tracker.commit("item_1")
    assert tracker.pending_transcripts == ["item_1"]
    tracker.transcribed("item_1", "hello")
    assert tracker.finished


def test_tracker_realtime_session_waits_for_a_reply_to_every_spoken_turn() -> None:
    tracker = TurnTracker(expect_replies=True)
    for item in ("item_1", "item_2", "item_3"):
        tracker.speech_started(item)
        tracker.commit(item)
    tracker.transcribed("item_1", "hello")
    tracker.transcribed("item_2", None)  # failed: counts as done, asks no reply
    tracker.transcribed("item_3", "  ")  # nothing said: no reply owed
    assert not tracker.in_flight
    assert tracker.missing_replies == 1
    assert not tracker.finished
    tracker.response_created("resp_1")
    assert tracker.in_flight
    tracker.response_done("resp_1")
    assert tracker.finished


def _client(playback: ClockPlayback, options: MicOptions | None = None) -> MicClient:
    session = {"type": "realtime", "audio": {"input": {"turn_detection": {"type": "server_vad"}}}}
    view = MicView(live=False, out=io.StringIO(), err=io.StringIO())
    # No socket: handle() only reads events; sending is not exercised here.
    return MicClient(cast(Any, None), options or MicOptions(), view, playback, session)


def _audio_delta(response_id: str, seconds: float) -> dict[str, Any]:
    pcm = pcm_of(seconds, 24_000)
    return {
        "type": "response.output_audio.delta",
        "response_id": response_id,
        "item_id": "item_a",
        "output_index": 0,
        "content_index": 0,
        "delta": base64.b64encode(pcm).decode(),
    }


def test_barge_in_stops_playback_and_ignores_the_cancelled_replys_stragglers() -> None:
    clock = FakeClock()
    playback = ClockPlayback(24_000, clock)
    client = _client(playback, MicOptions(full_duplex=True))
    client.handle({"type": "response.created", "response": {"id": "resp_1"}})
    client.handle(_audio_delta("resp_1", 2.0))
    assert playback.busy()
    client.handle(
        {
            "type": "response.done",
            "response": {
                "id": "resp_1",
                "status": "cancelled",
                "status_details": {"type": "cancelled", "reason": "turn_detected"},
            },
        }
    )
    assert not playback.busy()  # queued audio dropped at once
    client.handle(_audio_delta("resp_1", 1.0))  # a straggler of the cancelled reply
    assert not playback.busy()
    assert client.gate.open
    assert client.tracker.responses_done == 1
    out = cast(io.StringIO, client.view._out_console.file)
    assert out.getvalue() == "voxwire: [interrupted: turn_detected]\n"


def test_client_prints_turns_classifications_and_replies_as_lines() -> None:
    playback = ClockPlayback(24_000, FakeClock())
    client = _client(playback)
    events: list[dict[str, Any]] = [
        {"type": "input_audio_buffer.speech_started", "item_id": "item_1"},
        {
            "type": "conversation.item.input_audio_transcription.delta",
            "item_id": "item_1",
            "delta": "Turn on",
        },
        {"type": "input_audio_buffer.committed", "item_id": "item_1"},
        {
            "type": "conversation.item.input_audio_transcription.completed",
            "item_id": "item_1",
            "transcript": "Turn on the lights.",
        },
        {
            "type": "voxwire.classification",
            "item_id": "item_1",
            "source": "transcript",
            "classifier": "intent",
            "model": "intent",
            "labels": [{"label": "lights", "score": 0.97}, {"label": "music", "score": 0.02}],
        },
        {"type": "voxwire.speaker.identified", "item_id": "item_1", "speaker": "ann", "score": 0.9},
        {"type": "response.created", "response": {"id": "resp_1"}},
        {"type": "response.output_audio_transcript.delta", "response_id": "resp_1", "delta": "Ok"},
        {
            "type": "response.output_audio_transcript.done",
            "response_id": "resp_1",
            "transcript": "Okay, lights on.",
        },
        {"type": "response.done", "response": {"id": "resp_1", "status": "completed"}},
    ]
    for event in events:
        client.handle(event)
    out = cast(io.StringIO, client.view._out_console.file).getvalue()
    assert out.splitlines() == [
        "you: Turn on the lights.",
        "  intent: lights 0.97, music 0.02",
        "  speaker: ann 0.90",
        "voxwire: Okay, lights on.",
    ]
    assert client.tracker.finished
    assert client.summary.turns == 1
    assert client.summary.replies == 1


def test_a_refused_session_update_is_fatal_other_errors_are_notices() -> None:
    client = _client(ClockPlayback(24_000, FakeClock()))
    client.handle({"type": "error", "error": {"message": "slow down", "event_id": None}})
    err = cast(io.StringIO, client.view._err_console.file).getvalue()
    assert err == "voxwire: server error: slow down\n"
    with pytest.raises(MicError, match="unknown classifier"):
        client.handle(
            {
                "type": "error",
                "error": {"message": "unknown classifier 'x'", "event_id": SESSION_UPDATE_ID},
            }
        )


# -- session settings and small helpers ----------------------------------------------------


def test_session_update_asks_for_the_rate_server_vad_and_classifiers() -> None:
    update = session_update("realtime", MicOptions(rate=16_000, classifiers=("sentiment",)))
    assert update["event_id"] == SESSION_UPDATE_ID
    session = update["session"]
    assert session["type"] == "realtime"
    assert session["audio"]["input"]["format"] == {"type": "audio/pcm", "rate": 16_000}
    assert session["audio"]["input"]["turn_detection"] == {"type": "server_vad"}
    assert session["audio"]["output"]["format"]["rate"] == 24_000
    assert session["voxwire.classifiers"] == ["sentiment"]
    plain = session_update("transcription", MicOptions())["session"]
    assert "output" not in plain["audio"]
    assert "voxwire.classifiers" not in plain


def test_replies_are_expected_only_from_realtime_sessions_that_create_them() -> None:
    vad: dict[str, Any] = {"type": "server_vad", "create_response": True}
    assert expects_replies({"type": "realtime", "audio": {"input": {"turn_detection": vad}}})
    assert not expects_replies(
        {"type": "transcription", "audio": {"input": {"turn_detection": vad}}}
    )
    off = {**vad, "create_response": False}
    assert not expects_replies({"type": "realtime", "audio": {"input": {"turn_detection": off}}})
    assert not expects_replies({"type": "realtime", "audio": {"input": {"turn_detection": None}}})


def test_output_rate_comes_from_the_session_or_defaults_to_24k() -> None:
    session = {"audio": {"output": {"format": {"type": "audio/pcm", "rate": 16_000}}}}
    assert output_rate(session) == 16_000
    assert output_rate({"type": "transcription"}) == 24_000


def test_close_reasons_read_as_one_line() -> None:
    assert describe_close(1013, "server is at its limit of 1 sessions") == (
        "the server closed the connection (code 1013: server is at its limit of 1 sessions)"
    )
    assert describe_close(None, None) == "the connection to the server was lost"
    assert describe_close(1006, "") == "the connection to the server was lost"


def test_levels_and_lines() -> None:
    assert level_dbfs(b"") == -120.0
    assert level_dbfs(bytes(640)) == -120.0
    full = (b"\xff\x7f\x01\x80") * 160  # +/- full scale square wave
    assert level_dbfs(full) == pytest.approx(0.0, abs=0.01)
    assert meter(0.0) == "█" * 24
    assert meter(-120.0) == "·" * 24
    assert transcript_line(" Hello. ") == "you: Hello."
    assert reply_line("Hi.") == "voxwire: Hi."
    assert reply_line("Hi.", "cancelled") == "voxwire: Hi. [interrupted]"
    assert reply_line("", "failed", "the model failed") == "voxwire: [failed: the model failed]"
    labels = [("positive", 0.9), ("neutral", 0.08), ("negative", 0.02), ("other", 0.0)]
    assert labels_line("sentiment", labels) == (
        "  sentiment: positive 0.90, neutral 0.08, negative 0.02"
    )
    assert labels_line("sentiment", []) == "  sentiment: (no labels)"
