"""synthesize and streamed synthesis over a real socket: audio format and length, and
the words: the audio is transcribed back by the same server."""

from __future__ import annotations

import asyncio

import numpy as np
import pytest
from wyoming.asr import Transcribe, Transcript
from wyoming.audio import AudioChunk, AudioStart
from wyoming.error import Error
from wyoming.event import Event
from wyoming.tts import (
    Synthesize,
    SynthesizeChunk,
    SynthesizeStart,
    SynthesizeStop,
    SynthesizeVoice,
)

from tests.e2e.console import wer
from tests.transports.wyoming.live import LiveWyoming, events_until, send_audio

pytestmark = pytest.mark.slow

VOICE = "en_US-joe-medium"
MAX_WER = 0.3
"""Piper speaks with generator noise, so each synthesis differs a little and tiny.en may
mishear a word or two of a short sentence ("Please turn" as "The police turn", "lights"
as "whites")."""
TEXT = "Please turn on the lights in the kitchen. Then close the garage door."


def audio_of(events: list[Event]) -> tuple[int, np.ndarray]:
    """The rate and float samples of the audio-chunk events (checked: 16-bit mono)."""
    start = next(AudioStart.from_event(e) for e in events if e.type == "audio-start")
    assert (start.width, start.channels) == (2, 1)
    chunks = [AudioChunk.from_event(e) for e in events if e.type == "audio-chunk"]
    assert chunks and all((c.rate, c.width, c.channels) == (start.rate, 2, 1) for c in chunks)
    pcm = b"".join(c.audio for c in chunks)
    return start.rate, np.frombuffer(pcm, "<i2").astype(np.float32) / 32768.0


def transcribe_back(wyoming: LiveWyoming, audio: np.ndarray, rate: int) -> str:
    async def run() -> str:
        async with wyoming.client() as client:
            await client.write_event(Transcribe().event())
            await send_audio(client, audio, rate)
            events = await events_until(client, "transcript-stop")
            return next(Transcript.from_event(e).text for e in events if e.type == "transcript")

    return asyncio.run(run())


def test_synthesize_sends_audio_of_the_text(wyoming: LiveWyoming) -> None:
    async def run() -> list[Event]:
        async with wyoming.client() as client:
            await client.write_event(Synthesize(TEXT, voice=SynthesizeVoice(VOICE)).event())
            return await events_until(client, "audio-stop")

    events = asyncio.run(run())
    assert events[0].type == "audio-start" and events[-1].type == "audio-stop"
    rate, audio = audio_of(events)
    assert rate == 22_050
    assert 2.0 < len(audio) / rate < 10.0  # two short sentences
    assert float(np.abs(audio).max()) > 0.3
    heard = transcribe_back(wyoming, audio, rate)
    assert wer(TEXT, heard) <= MAX_WER


def test_streamed_synthesis_speaks_each_sentence_as_it_is_complete(wyoming: LiveWyoming) -> None:
    first, second = "Please turn on the lights in the kitchen.", " Then close the garage door."

    async def run() -> tuple[list[Event], list[Event]]:
        async with wyoming.client() as client:
            await client.write_event(SynthesizeStart(voice=SynthesizeVoice(VOICE)).event())
            for piece in ("Please turn on the li", "ghts in the kitchen.", " Then"):
                await client.write_event(SynthesizeChunk(piece).event())
            # The first sentence is complete: its audio comes before synthesize-stop.
            early = await events_until(client, "audio-stop")
            await client.write_event(SynthesizeChunk(" close the garage door.").event())
            await client.write_event(Synthesize(first + second).event())  # ignored: streaming
            await client.write_event(SynthesizeStop().event())
            return early, await events_until(client, "synthesize-stopped")

    early, late = asyncio.run(run())
    assert early[0].type == "audio-start"
    assert [e.type for e in late].count("audio-start") == 1  # the second sentence only
    assert late[-1].type == "synthesize-stopped"
    rate_1, audio_1 = audio_of(early)
    rate_2, audio_2 = audio_of(late)
    assert rate_1 == rate_2 == 22_050
    # Each sentence once, in order: the first alone before synthesize-stop, the second
    # after it; together they say the text.
    assert min(len(audio_1), len(audio_2)) > 0.5 * rate_1
    heard_1 = transcribe_back(wyoming, audio_1, rate_1)
    assert wer(first, heard_1) <= MAX_WER
    both = transcribe_back(
        wyoming, np.concatenate([audio_1, np.zeros(rate_1 // 2), audio_2]), rate_1
    )
    assert wer(first + second, both) <= MAX_WER


def test_unknown_voice_or_speaker_gets_an_error_event(wyoming: LiveWyoming) -> None:
    async def run() -> list[Error]:
        errors = []
        async with wyoming.client() as client:
            for voice in (SynthesizeVoice("no-such-voice"), SynthesizeVoice(VOICE, speaker="7")):
                await client.write_event(Synthesize("Hello.", voice=voice).event())
                events = await events_until(client, "audio-stop")
                errors.append(Error.from_event(events[-1]))
            # The connection still works.
            await client.write_event(Synthesize("Hello.").event())
            assert (await events_until(client, "audio-stop"))[-1].type == "audio-stop"
        return errors

    errors = asyncio.run(run())
    assert [e.code for e in errors] == ["model_not_found", "invalid_value"]
    assert "no-such-voice" in errors[0].text and VOICE in errors[0].text
