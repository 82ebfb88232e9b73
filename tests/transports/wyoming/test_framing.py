"""The bounded event reader, sans sockets: what the `wyoming` package writes reads back
whatever the chunk boundaries; every length is checked before it is read."""

from __future__ import annotations

import asyncio
import io

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from wyoming.event import Event, write_event

from voxwire.engine.errors import PayloadTooLarge
from voxwire.transports.wyoming.framing import MalformedEvent, read_event
from voxwire.transports.wyoming.limits import WyomingLimits

LIMITS = WyomingLimits(max_header_bytes=512, max_data_bytes=256, max_payload_bytes=1024)


def encoded(*events: Event) -> bytes:
    buffer = io.BytesIO()
    for event in events:
        write_event(event, buffer)  # the package's own writer
    return buffer.getvalue()


def read_all(data: bytes, splits: list[int]) -> list[Event]:
    async def run() -> list[Event]:
        reader = asyncio.StreamReader()
        position = 0
        for cut in [*sorted(splits), len(data)]:
            reader.feed_data(data[position:cut])
            position = max(position, cut)
        reader.feed_eof()
        events = []
        while (event := await read_event(reader, LIMITS)) is not None:
            events.append(event)
        return events

    return asyncio.run(run())


EVENTS = [
    Event("describe"),
    Event("transcribe", {"language": "en", "context": {"room": "kitchen ✓"}}),
    Event("audio-chunk", {"rate": 16000, "width": 2, "channels": 1}, bytes(range(256)) * 3),
    Event("synthesize", {"text": "Hello."}),
]


@settings(max_examples=50, deadline=None)
@given(st.lists(st.integers(min_value=0, max_value=len(encoded(*EVENTS))), max_size=20))
def test_events_read_back_whatever_the_chunk_boundaries(splits: list[int]) -> None:
    assert read_all(encoded(*EVENTS), splits) == EVENTS


@pytest.mark.parametrize(
    ("data", "error"),
    [
        (b"{not json\n", MalformedEvent),
        (b'"text"\n', MalformedEvent),
        (b'{"type": 3}\n', MalformedEvent),
        (b'{"type": "x", "data": [1]}\n', MalformedEvent),
        (b'{"type": "x", "data_length": "5"}\n', MalformedEvent),
        (b'{"type": "x", "payload_length": true}\n', MalformedEvent),
        (b'{"type": "x", "data_length": 4}\n[1]\n', MalformedEvent),
        (b'{"type": "x", "payload_length": 10}\nabc', MalformedEvent),
        (b'{"type": "x"', MalformedEvent),
        (b'{"type": "x", "data_length": 257}\n', PayloadTooLarge),
        (b'{"type": "x", "payload_length": 1025}\n', PayloadTooLarge),
        (b'{"type": "' + b"x" * 600 + b'"}\n', PayloadTooLarge),
    ],
)
def test_broken_events_raise_before_reading_what_they_announce(
    data: bytes, error: type[Exception]
) -> None:
    with pytest.raises(error):
        read_all(data, [])


def test_a_clean_end_between_events_is_none() -> None:
    assert read_all(b"", []) == []
    assert read_all(b"\n \n", []) == []
