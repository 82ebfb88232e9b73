"""transcribe over a real socket with the `wyoming` package's clients: streamed
transcript chunks while audio still arrives, the final transcript, any rate, stereo."""

from __future__ import annotations

import asyncio

import pytest
from wyoming.asr import Transcribe, Transcript, TranscriptChunk
from wyoming.audio import AudioStop
from wyoming.client import AsyncUnixClient

from tests import corpus, speech
from tests.e2e.console import normalise, wer
from tests.transports.wyoming.live import LiveWyoming, events_until, next_event, send_audio

pytestmark = pytest.mark.slow

MAX_WER = 0.15
"""Whisper tiny.en on the Piper voice: these sentences come back (nearly) word for word."""


def test_transcript_chunks_arrive_while_audio_still_streams(wyoming: LiveWyoming) -> None:
    first, rest = speech.SENTENCES[0], speech.SENTENCES[1:]
    head = speech.utterances([first], lead_s=0.3, tail_s=1.5)
    tail = speech.utterances(list(rest), lead_s=0.2, tail_s=1.0)

    async def run() -> tuple[list[str], list[str], list[str]]:
        async with wyoming.client() as client:
            await client.write_event(Transcribe(language="en").event())
            await send_audio(client, head, 16_000, stop=False)
            # No audio-stop yet: the first sentence's words must come anyway.
            before = await events_until(client, "transcript-chunk")
            await send_audio(client, tail, 16_000, start=False, stop=False)
            await client.write_event(AudioStop().event())
            after = await events_until(client, "transcript-stop")
            types = [e.type for e in before + after]
            chunks = [
                TranscriptChunk.from_event(e).text
                for e in before + after
                if e.type == "transcript-chunk"
            ]
            final = [Transcript.from_event(e).text for e in after if e.type == "transcript"]
            return types, chunks, final

    types, chunks, final = asyncio.run(run())
    assert types[0] == "transcript-start" and types[1] == "transcript-chunk"
    assert types[-2:] == ["transcript", "transcript-stop"] and types.count("transcript") == 1
    assert len(final) == 1
    assert wer(" ".join(speech.SENTENCES), final[0]) <= MAX_WER
    # The chunks are the committed text: together they are the final transcript.
    assert normalise("".join(chunks)) == normalise(final[0])
    wyoming.wait_until_idle()


@pytest.mark.parametrize(("rate", "channels"), [(48_000, 2), (22_050, 1), (8_000, 1)])
def test_any_rate_mono_or_stereo(wyoming: LiveWyoming, rate: int, channels: int) -> None:
    text = speech.SENTENCES[1]
    audio = speech.utterances([text], lead_s=0.3, tail_s=0.5, rate=rate)

    async def run() -> str:
        async with wyoming.client() as client:
            await client.write_event(Transcribe().event())
            await send_audio(client, audio, rate, channels=channels)
            events = await events_until(client, "transcript-stop")
            assert events[-1].type == "transcript-stop", events[-1]
            return next(Transcript.from_event(e).text for e in events if e.type == "transcript")

    assert wer(text, asyncio.run(run())) <= MAX_WER
    wyoming.wait_until_idle()


def test_over_a_unix_socket_without_transcribe_first(wyoming: LiveWyoming) -> None:
    text = speech.SENTENCES[2]
    audio = speech.utterances([text], lead_s=0.3, tail_s=0.5)

    async def run() -> str:
        async with AsyncUnixClient(str(wyoming.socket_path)) as client:
            await send_audio(client, audio, 16_000)  # audio alone: transcribed with defaults
            events = await events_until(client, "transcript-stop")
            return next(Transcript.from_event(e).text for e in events if e.type == "transcript")

    assert wer(text, asyncio.run(run())) <= MAX_WER


def test_silence_gives_an_empty_transcript(wyoming: LiveWyoming) -> None:
    async def run() -> list[str]:
        async with wyoming.client() as client:
            await client.write_event(Transcribe().event())
            await send_audio(client, speech.silence(1.0), 16_000)
            events = await events_until(client, "transcript-stop")
            return [e.type for e in events]

    assert asyncio.run(run()) == ["transcript-start", "transcript", "transcript-stop"]


def test_sentiment_in_the_transcript_context(wyoming: LiveWyoming) -> None:
    text = "I love this wonderful sunny day."
    audio = speech.utterances([text], lead_s=0.3, tail_s=0.5)

    async def run() -> Transcript:
        async with wyoming.client() as client:
            context = {"room": "kitchen", "voxwire": {"classifiers": ["sentiment"]}}
            await client.write_event(Transcribe(context=context).event())
            await send_audio(client, audio, 16_000)
            events = await events_until(client, "transcript-stop")
            return next(Transcript.from_event(e) for e in events if e.type == "transcript")

    transcript = asyncio.run(run())
    assert transcript.context is not None and transcript.context["room"] == "kitchen"
    labels = transcript.context["voxwire"]["sentiment"]
    assert labels[0]["label"] == "positive", labels


def test_two_requests_on_one_connection(wyoming: LiveWyoming) -> None:
    texts = speech.SENTENCES[:2]

    async def run() -> list[str]:
        found = []
        async with wyoming.client() as client:
            for text in texts:
                await client.write_event(Transcribe().event())
                await send_audio(client, speech.utterances([text], lead_s=0.3, tail_s=0.5), 16_000)
                events = await events_until(client, "transcript-stop")
                found += [Transcript.from_event(e).text for e in events if e.type == "transcript"]
            assert await next_event_or_none(client) is None
        return found

    async def next_event_or_none(client: object) -> object:
        try:
            return await next_event(client, within=0.2)  # type: ignore[arg-type]
        except TimeoutError:
            return None

    for text, got in zip(texts, asyncio.run(run()), strict=True):
        assert wer(text, got) <= MAX_WER


@pytest.mark.parametrize(("name", "max_wer"), [("jfk", 0.1), ("librivox", 0.2)])
def test_real_speech_from_the_corpus(wyoming: LiveWyoming, name: str, max_wer: float) -> None:
    case = next(c for c in corpus.REAL_CASES if c.name == name)
    audio = case.audio()

    async def run() -> tuple[str, int]:
        async with wyoming.client() as client:
            await client.write_event(Transcribe(language="en").event())
            await send_audio(client, audio, 16_000)
            events = await events_until(client, "transcript-stop")
            chunks = sum(e.type == "transcript-chunk" for e in events)
            text = next(Transcript.from_event(e).text for e in events if e.type == "transcript")
            return text, chunks

    text, chunks = asyncio.run(run())
    assert wer(case.reference, text) <= max_wer
    assert chunks >= 1
