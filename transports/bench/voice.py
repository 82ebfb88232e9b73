"""`voxwire bench voice`: voice-to-voice latency of spoken replies.

One realtime session speaks a question at real-time pace, then keeps sending
silence (as a microphone does) until the reply has arrived, `turns` times. For
each turn it records, on the client's clock, when the last speech sample was
sent and when `speech_stopped`, the completed transcript, `response.created` and
the first `response.output_audio.delta` arrived. Voice-to-voice latency is end of
speech to the first reply audio; the goal is p50 <= silence_duration_ms + 300 ms.
It also times Piper's first audio for the reply text in-process (TTS alone).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import statistics
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import numpy as np
import numpy.typing as npt
import soxr
from rich.console import Console
from rich.table import Table
from websockets.asyncio.client import ClientConnection, connect

from voxwire.engine.audio import MODEL_RATE
from voxwire.models.interfaces import SpeechSynthesizer
from voxwire.transports.bench.stream import (
    BenchError,
    machine_info,
    percentiles,
    server_under_test,
    to_pcm16,
)

CHUNK_S = 0.02
DEFAULT_QUESTION = "What time does the train leave tomorrow morning?"
TURN_TIMEOUT_S = 60.0


@dataclass(frozen=True)
class VoiceBenchOptions:
    turns: int = 5
    file: Path | None = None
    """Speech of one question; default: Piper speaking DEFAULT_QUESTION."""
    url: str | None = None
    model: str | None = None
    silence_duration_ms: int = 500
    output: Path = Path("bench-results/voice.json")


@dataclass
class TurnTimes:
    """Client-clock times (monotonic seconds) of one turn's milestones."""

    speech_end: float = 0.0
    speech_stopped: float | None = None
    transcript: float | None = None
    response_created: float | None = None
    first_audio: float | None = None
    done: float | None = None
    status: str | None = None
    reply: str = ""

    def ms(self, start: float | None, end: float | None) -> float | None:
        return None if start is None or end is None else (end - start) * 1000


@dataclass
class _Listener:
    """Reads the server's events and stamps the current turn's milestones."""

    ws: ClientConnection
    turn: TurnTimes = field(default_factory=TurnTimes)
    done: asyncio.Event = field(default_factory=asyncio.Event)
    errors: list[str] = field(default_factory=list)

    async def run(self) -> None:
        async for message in self.ws:
            event = json.loads(message)
            now = time.monotonic()
            kind = event.get("type")
            turn = self.turn
            if kind == "input_audio_buffer.speech_stopped" and turn.speech_stopped is None:
                turn.speech_stopped = now
            elif kind == "conversation.item.input_audio_transcription.completed":
                turn.transcript = turn.transcript or now
            elif kind == "response.created":
                turn.response_created = turn.response_created or now
            elif kind == "response.output_audio.delta" and turn.first_audio is None:
                turn.first_audio = now
            elif kind == "response.done":
                turn.done = now
                turn.status = event["response"]["status"]
                output = event["response"].get("output") or [{}]
                content = output[0].get("content") or [{}]
                turn.reply = content[0].get("transcript", "")
                self.done.set()
            elif kind == "error":
                self.errors.append(event["error"].get("message", "error"))


def _question(file: Path | None, tts: SpeechSynthesizer) -> npt.NDArray[np.float32]:
    if file is not None:
        from voxwire.services.media import decode_audio

        return decode_audio(file)
    audio = np.concatenate(list(tts.synthesize(DEFAULT_QUESTION)))
    return np.asarray(soxr.resample(audio, tts.sample_rate, MODEL_RATE), dtype=np.float32)


def tts_first_audio_ms(tts: SpeechSynthesizer, texts: Sequence[str], repeats: int = 3) -> float:
    """Median time for `tts` to yield its first audio chunk of each text."""
    next(iter(tts.synthesize("Warm up.")))
    times = []
    for _ in range(repeats):
        for text in texts:
            started = time.perf_counter()
            next(iter(tts.synthesize(text)))
            times.append((time.perf_counter() - started) * 1000)
    return round(statistics.median(times), 1)


async def _send_paced(ws: ClientConnection, pcm: bytes, clock: list[float]) -> None:
    """Send PCM16 at 16 kHz in 20 ms frames against an absolute clock."""
    step = int(MODEL_RATE * CHUNK_S) * 2
    for offset in range(0, len(pcm), step):
        await ws.send(pcm[offset : offset + step])
        clock[0] += CHUNK_S
        delay = clock[0] - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)


async def run_turns(
    url: str, speech: npt.NDArray[np.float32], options: VoiceBenchOptions
) -> list[TurnTimes]:
    """Speak the question `options.turns` times in one realtime session."""
    silence = to_pcm16(np.zeros(int(MODEL_RATE * CHUNK_S * 5), np.float32))
    spoken = to_pcm16(speech)
    turns: list[TurnTimes] = []
    async with connect(url, max_size=None) as ws:
        await ws.send(
            json.dumps(
                {
                    "type": "session.update",
                    "session": {
                        "type": "realtime",
                        "audio": {
                            "input": {
                                "format": {"type": "audio/pcm", "rate": MODEL_RATE},
                                "turn_detection": {
                                    "type": "server_vad",
                                    "silence_duration_ms": options.silence_duration_ms,
                                },
                            }
                        },
                    },
                }
            )
        )
        listener = _Listener(ws)
        reader = asyncio.create_task(listener.run())
        try:
            clock = [time.monotonic()]
            await _send_paced(ws, silence, clock)
            for _ in range(options.turns):
                listener.turn, listener.done = TurnTimes(), asyncio.Event()
                await _send_paced(ws, spoken, clock)
                listener.turn.speech_end = time.monotonic()
                deadline = time.monotonic() + TURN_TIMEOUT_S
                while not listener.done.is_set():
                    if time.monotonic() > deadline or reader.done():
                        raise BenchError(
                            "no reply within "
                            f"{TURN_TIMEOUT_S:.0f} s: {'; '.join(listener.errors) or 'no error'}"
                        )
                    await _send_paced(ws, silence, clock)
                turns.append(listener.turn)
                await _send_paced(ws, silence, clock)
        finally:
            reader.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await reader
    return turns


def realtime_session_url(url: str) -> str:
    """`url` as a realtime (answering) session: /v1/realtime?model=..."""
    parts = urlsplit(url)
    if parts.scheme not in ("ws", "wss"):
        raise BenchError(f"--url must be a ws:// or wss:// URL, not {url!r}")
    query = {k: v for k, v in parse_qsl(parts.query) if k != "intent"}
    query.setdefault("model", "voxwire")
    path = parts.path if parts.path not in ("", "/") else "/v1/realtime"
    return urlunsplit((parts.scheme, parts.netloc, path, urlencode(query), ""))


def figures(turns: Sequence[TurnTimes], options: VoiceBenchOptions) -> dict[str, Any]:
    def series(start: str, end: str) -> list[float]:
        values = [t.ms(getattr(t, start), getattr(t, end)) for t in turns]
        return [v for v in values if v is not None]

    voice = series("speech_end", "first_audio")
    goal = options.silence_duration_ms + 300
    p50 = percentiles(voice)["p50"]
    return {
        "turns": len(turns),
        "completed": sum(t.status == "completed" for t in turns),
        "silence_duration_ms": options.silence_duration_ms,
        "voice_to_voice_ms": percentiles(voice),
        "speech_end_to_speech_stopped_ms": percentiles(series("speech_end", "speech_stopped")),
        "speech_stopped_to_transcript_ms": percentiles(series("speech_stopped", "transcript")),
        "transcript_to_first_audio_ms": percentiles(series("transcript", "first_audio")),
        "goal_p50_ms": goal,
        "goal_met": p50 is not None and p50 <= goal,
        "reply": turns[-1].reply if turns else "",
    }


def run_voice_bench(options: VoiceBenchOptions, console: Console) -> dict[str, Any]:
    """Run the benchmark against `options.url` or a spawned server; print and save it."""
    from voxwire.models.piper_tts import PiperTts

    tts = PiperTts()  # the embedded voice: the question's speaker and the TTS timed
    speech = _question(options.file, tts)
    with contextlib.ExitStack() as stack:
        handle = server_under_test(stack, options.url, options.model, console)
        url = realtime_session_url(handle.url)
        with console.status(f"{options.turns} spoken turns..."):
            turns = asyncio.run(run_turns(url, speech, options))
    result = {
        "bench": "voice",
        "machine": machine_info(),
        "speech_seconds": round(len(speech) / MODEL_RATE, 2),
        **figures(turns, options),
        "tts_first_audio_ms": tts_first_audio_ms(tts, [DEFAULT_QUESTION, "Hello there."]),
    }
    options.output.parent.mkdir(parents=True, exist_ok=True)
    options.output.write_text(json.dumps(result, indent=2) + "\n")
    print_table(result, Console())
    return result


def print_table(result: dict[str, Any], console: Console) -> None:
    table = Table(title=f"voice to voice, {result['turns']} turns (ms)")
    table.add_column("span")
    for p in ("p50", "p95", "max"):
        table.add_column(p, justify="right")
    for key, label in [
        ("voice_to_voice_ms", "end of speech -> first reply audio"),
        ("speech_end_to_speech_stopped_ms", "end of speech -> speech_stopped"),
        ("speech_stopped_to_transcript_ms", "speech_stopped -> transcript"),
        ("transcript_to_first_audio_ms", "transcript -> first reply audio"),
    ]:
        row = result[key]
        table.add_row(
            label, *(f"{row[p]}" if row[p] is not None else "-" for p in ("p50", "p95", "max"))
        )
    console.print(table)
    met = "met" if result["goal_met"] else "missed"
    console.print(
        f"goal p50 <= {result['goal_p50_ms']} ms: {met}; "
        f"Piper first audio (in-process): {result['tts_first_audio_ms']} ms"
    )
