"""detect over a real socket: the wake word is heard in speech, not in other speech."""

from __future__ import annotations

import asyncio

import pytest
from wyoming.error import Error
from wyoming.event import Event
from wyoming.wake import Detect, Detection

from tests import speech
from tests.transports.wyoming.live import LiveWyoming, events_until, send_audio

pytestmark = pytest.mark.slow

JARVIS = "Hey Jarvis, what's the weather like?"


def detect(wyoming: LiveWyoming, audio: object, names: list[str] | None) -> list[Event]:
    async def run() -> list[Event]:
        async with wyoming.client() as client:
            await client.write_event(Detect(names=names).event())
            await send_audio(client, audio, 16_000, chunk_frames=1280)  # type: ignore[arg-type]
            return await events_until(client, "not-detected")

    return asyncio.run(run())


def test_hey_jarvis_is_detected_with_its_timestamp(wyoming: LiveWyoming) -> None:
    audio = speech.utterances([JARVIS], lead_s=0.5, tail_s=1.0)

    async def run() -> list[Event]:
        async with wyoming.client() as client:
            await client.write_event(Detect(names=["hey_jarvis"]).event())
            await send_audio(client, audio, 16_000, chunk_frames=1280, stop=False)
            return await events_until(client, "detection")

    events = asyncio.run(run())
    found = Detection.from_event(events[-1])
    assert found.name == "hey_jarvis"
    assert found.timestamp is not None and 500 < found.timestamp <= len(audio) * 1000 // 16_000


def test_other_speech_is_not_detected(wyoming: LiveWyoming) -> None:
    audio = speech.utterances(list(speech.SENTENCES), lead_s=0.3, tail_s=0.5)
    assert [e.type for e in detect(wyoming, audio, None)] == ["not-detected"]


def test_a_word_not_asked_for_is_not_reported(wyoming: LiveWyoming) -> None:
    audio = speech.utterances([JARVIS], lead_s=0.5, tail_s=1.0)
    assert [e.type for e in detect(wyoming, audio, ["alexa"])] == ["not-detected"]


def test_an_unknown_wake_word_gets_an_error(wyoming: LiveWyoming) -> None:
    events = detect(wyoming, speech.silence(0.5), ["ok_nabu"])
    error = Error.from_event(events[0])
    assert error.code == "invalid_value" and "hey_jarvis" in error.text
