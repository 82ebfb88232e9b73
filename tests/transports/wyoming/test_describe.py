"""describe -> info: the programs, models, voices and wake words this server offers."""

from __future__ import annotations

import asyncio

from wyoming.info import Describe, Info

from tests.transports.wyoming.live import LiveWyoming, next_event
from voxwire.models.wake_words import WAKE_WORDS


def test_info_lists_asr_tts_and_wake(wyoming: LiveWyoming) -> None:
    async def run() -> Info:
        async with wyoming.client() as client:
            await client.write_event(Describe().event())
            event = await next_event(client)
            assert event is not None and Info.is_type(event.type)
            return Info.from_event(event)

    info = asyncio.run(run())
    (asr,) = info.asr
    assert asr.supports_transcript_streaming and asr.installed
    assert asr.models[0].name == wyoming.service.runtime.defaults["automatic-speech-recognition"]
    assert asr.models[0].languages == ["en"] and asr.models[0].version
    (tts,) = info.tts
    assert tts.supports_synthesize_streaming
    assert [v.name for v in tts.voices] == ["en_US-joe-medium"]
    assert tts.voices[0].languages == ["en_US"] and "Piper" in tts.voices[0].attribution.name
    (wake,) = info.wake
    assert [m.name for m in wake.models] == list(WAKE_WORDS)
    assert wake.models[1].phrase == "hey jarvis" and wake.models[1].version == "0.4.0"
    assert all(p.attribution.name and p.attribution.url for p in (asr, tts, wake))
