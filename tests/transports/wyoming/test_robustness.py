"""Bad input gets an error event, is counted, and does not hurt another client; limits
hold; a client that leaves mid-stream frees its slot."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from wyoming.asr import Transcribe, Transcript
from wyoming.audio import AudioChunk, AudioStart
from wyoming.client import AsyncTcpClient
from wyoming.error import Error
from wyoming.event import Event
from wyoming.info import Describe

from tests import speech
from tests.e2e.console import wer
from tests.transports.wyoming.live import (
    LiveWyoming,
    events_until,
    live_wyoming,
    next_event,
    send_audio,
)
from voxwire.services.runtime import Runtime
from voxwire.transports.wyoming.limits import WyomingLimits

pytestmark = pytest.mark.slow

TEXT = speech.SENTENCES[0]


async def raw_exchange(port: int, data: bytes) -> tuple[list[dict[str, object]], bool]:
    """Send raw bytes; the JSON headers that come back, and whether the server closed."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(data)
    await writer.drain()
    headers: list[dict[str, object]] = []
    closed = False
    try:
        async with asyncio.timeout(10):
            while True:
                line = await reader.readline()
                if not line:
                    closed = True
                    break
                header = json.loads(line)
                if header.get("data_length"):
                    header["data"] = json.loads(await reader.readexactly(header["data_length"]))
                headers.append(header)
    except TimeoutError:
        pass
    writer.close()
    return headers, closed


async def transcribe(client: AsyncTcpClient, text: str) -> str:
    await client.write_event(Transcribe().event())
    await send_audio(client, speech.utterances([text], lead_s=0.3, tail_s=0.5), 16_000)
    events = await events_until(client, "transcript-stop")
    return next(Transcript.from_event(e).text for e in events if e.type == "transcript")


@pytest.mark.parametrize(
    ("data", "code"),
    [
        (b"this is not json\n", "malformed_event"),
        (b'["a list"]\n', "malformed_event"),
        (b'{"data": {}}\n', "malformed_event"),
        (b'{"type": "audio-chunk", "payload_length": -3}\n', "malformed_event"),
        (b'{"type": "describe", "data_length": 5}\n{"a":', "malformed_event"),
        (b'{"type": "audio-chunk", "payload_length": 1073741824}\n', "payload_too_large"),
        (b'{"type": "describe", "data_length": 10000000}\n', "payload_too_large"),
        (b'{"type": "' + b"x" * 70_000 + b'"}\n', "payload_too_large"),
    ],
)
def test_broken_framing_gets_an_error_then_close(
    wyoming: LiveWyoming, data: bytes, code: str
) -> None:
    before = wyoming.service.stats.errors[code]
    headers, closed = asyncio.run(raw_exchange(wyoming.port, data))
    assert [h["type"] for h in headers] == ["error"] and closed
    assert headers[0]["data"]["code"] == code  # type: ignore[index]
    assert wyoming.service.stats.errors[code] == before + 1


@pytest.mark.parametrize(
    ("start", "code"),
    [
        (AudioStart(rate=16_000, width=4, channels=1), "unsupported_audio_format"),
        (AudioStart(rate=1_000, width=2, channels=1), "unsupported_audio_format"),
        (AudioStart(rate=16_000, width=2, channels=6), "unsupported_audio_format"),
        (Event("audio-start", {"rate": "fast", "width": 2, "channels": 1}), "invalid_audio"),
    ],
)
def test_wrong_audio_format_gets_an_error_and_the_connection_goes_on(
    wyoming: LiveWyoming, start: AudioStart | Event, code: str
) -> None:
    async def run() -> tuple[Error, str]:
        async with wyoming.client() as client:
            await client.write_event(Transcribe().event())
            await client.write_event(start.event() if isinstance(start, AudioStart) else start)
            error = Error.from_event(await next_event(client))  # type: ignore[arg-type]
            chunk = AudioChunk(rate=16_000, width=2, channels=1, audio=bytes(640))
            await client.write_event(chunk.event())  # the rest of the failed stream: dropped
            return error, await transcribe(client, TEXT)

    error, text = asyncio.run(run())
    assert error.code == code
    assert wer(TEXT, text) <= 0.15
    wyoming.wait_until_idle()


def test_events_out_of_place_get_errors(wyoming: LiveWyoming) -> None:
    async def run() -> list[str | None]:
        codes = []
        async with wyoming.client() as client:
            chunk = AudioChunk(rate=16_000, width=2, channels=1, audio=bytes(640))
            for event in (chunk.event(), Event("synthesize-chunk", {"text": "hi"})):
                await client.write_event(event)
                codes.append(Error.from_event(await next_event(client)).code)  # type: ignore[arg-type]
            await client.write_event(Event("synthesize", {}))  # no text
            codes.append(Error.from_event(await next_event(client)).code)  # type: ignore[arg-type]
            await client.write_event(Event("no-such-event", {}))  # ignored, as the protocol says
            await client.write_event(AudioStart(rate=16_000, width=2, channels=1).event())
            odd = AudioChunk(rate=16_000, width=2, channels=1, audio=bytes(641))
            await client.write_event(odd.event())
            codes.append(Error.from_event(await next_event(client)).code)  # type: ignore[arg-type]
        return codes

    codes = asyncio.run(run())
    assert codes == ["unexpected_event", "unexpected_event", "malformed_event", "invalid_audio"]
    assert wyoming.service.stats.events_received["unknown"] >= 1
    wyoming.wait_until_idle()


def test_a_bad_client_does_not_hurt_another(wyoming: LiveWyoming) -> None:
    texts = speech.SENTENCES[1:]

    async def good(text: str) -> str:
        async with wyoming.client() as client:
            return await transcribe(client, text)

    async def bad() -> None:
        for data in (b"garbage\n", b'{"type": "audio-chunk", "payload_length": 99999999}\n'):
            await raw_exchange(wyoming.port, data)
        async with wyoming.client() as client:  # starts a stream, then vanishes
            await send_audio(client, speech.synthesize(TEXT), 16_000, stop=False)

    async def run() -> list[str]:
        results = await asyncio.gather(good(texts[0]), bad(), good(texts[1]))
        return [results[0], results[2]]  # type: ignore[list-item]

    for text, got in zip(texts, asyncio.run(run()), strict=True):
        assert wer(text, got) <= 0.15
    wyoming.wait_until_idle()


def test_a_client_that_leaves_mid_stream_frees_its_slot(wyoming: LiveWyoming) -> None:
    async def run() -> None:
        async with wyoming.client() as client:
            await client.write_event(Transcribe().event())
            await send_audio(client, speech.utterances([TEXT]), 16_000, stop=False)
            await asyncio.to_thread(wyoming.wait_for, lambda: wyoming.slots.in_use == 1)

    asyncio.run(run())
    wyoming.wait_until_idle()


@pytest.fixture(scope="module")
def tight(runtime: Runtime, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveWyoming]:
    """A server with small limits: 2 connections, 1 audio stream, 1 s idle, 2 s audio."""
    limits = WyomingLimits(max_connections=2, idle_timeout_s=1.0, max_audio_s=2.0)
    tmp: Path = tmp_path_factory.mktemp("tight")
    with live_wyoming(runtime, tmp, limits, max_sessions=1) as live:
        yield live


def test_connection_and_session_limits(tight: LiveWyoming) -> None:
    async def run() -> tuple[str | None, str | None]:
        async with tight.client() as first, tight.client() as second:
            await first.write_event(Describe().event())
            assert (await next_event(first)) is not None  # both are connected now
            await second.write_event(Describe().event())
            assert (await next_event(second)) is not None
            async with tight.client() as third:
                refused = Error.from_event(await next_event(third))  # type: ignore[arg-type]
                assert await next_event(third) is None  # and closed
            await first.write_event(Transcribe().event())
            await send_audio(first, speech.silence(0.2), 16_000, stop=False)
            await second.write_event(Transcribe().event())
            await send_audio(second, speech.silence(0.2), 16_000, stop=False)
            busy = Error.from_event(await next_event(second))  # type: ignore[arg-type]
        return refused.code, busy.code

    assert asyncio.run(run()) == ("overloaded", "overloaded")
    assert tight.service.stats.connections_refused >= 1
    tight.wait_until_idle()


def test_audio_longer_than_the_limit_is_refused(tight: LiveWyoming) -> None:
    async def run() -> str | None:
        async with tight.client() as client:
            await client.write_event(Transcribe().event())
            await send_audio(client, speech.silence(3.0), 16_000, stop=False)
            return Error.from_event(await next_event(client)).code  # type: ignore[arg-type]

    assert asyncio.run(run()) == "payload_too_large"
    tight.wait_until_idle()


def test_an_idle_client_is_dropped(tight: LiveWyoming) -> None:
    async def run() -> Event | None:
        async with tight.client() as client:
            return await next_event(client, within=30)  # the server closes first

    assert asyncio.run(run()) is None
    assert tight.service.stats.errors["idle_timeout"] >= 1
    tight.wait_until_idle()
