"""Every client event is bounded: nesting depth, numeric fields, strict types and text
lengths answer an `error` event (never a 1011 close), and fuzzed events and frames
(Hypothesis) leave the session open and answering."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from websockets.exceptions import ConnectionClosed

from tests.live_server import LiveServer
from tests.realtime_client import RealtimeTestClient, realtime
from voxwire.transports.realtime.protocol import MAX_PROMPT_CHARS


def turn(**fields: Any) -> dict[str, Any]:
    detection = {"type": "server_vad", **fields}
    return {
        "type": "session.update",
        "session": {"audio": {"input": {"turn_detection": detection}}},
    }


def nested(depth: int) -> str:
    return '{"type": "session.update", "session": ' + "[" * depth + "]" * depth + "}"


BAD_EVENTS: list[tuple[str, str, str, str | None]] = [
    ("nested 100 000 deep", nested(100_000), "json_too_deep", None),
    ("nested 40 deep", nested(40), "json_too_deep", None),
    (
        "silence_duration_ms of 1e9",
        json.dumps(turn(silence_duration_ms=1_000_000_000)),
        "invalid_value",
        "session.audio.input.turn_detection.silence_duration_ms",
    ),
    (
        "prefix_padding_ms of 1e9",
        json.dumps(turn(prefix_padding_ms=1_000_000_000)),
        "invalid_value",
        "session.audio.input.turn_detection.prefix_padding_ms",
    ),
    (
        "threshold above 1",
        json.dumps(turn(threshold=7.5)),
        "invalid_value",
        "session.audio.input.turn_detection.threshold",
    ),
    (
        "rate as a string",
        json.dumps(
            {
                "type": "session.update",
                "session": {"audio": {"input": {"format": {"type": "audio/pcm", "rate": "16000"}}}},
            }
        ),
        "invalid_value",
        "session.audio.input.format.rate",
    ),
    (
        "a boolean as a number",
        json.dumps({"type": "session.update", "session": {"voxwire.wake_word_gate": 1}}),
        "invalid_value",
        "session.voxwire.wake_word_gate",
    ),
    (
        "a 1 MB prompt",
        json.dumps(
            {
                "type": "session.update",
                "session": {"audio": {"input": {"transcription": {"prompt": "x" * 1_000_000}}}},
            }
        ),
        "invalid_value",
        "session.audio.input.transcription.prompt",
    ),
]


async def still_answers(client: RealtimeTestClient) -> None:
    """The session answers a stats request, and nothing it sent was a server error."""
    await client.send({"type": "voxwire.session.stats"})
    await client.next("voxwire.session.stats", within=20)
    server_errors = [
        e
        for e in client.received
        if e["type"] == "error" and e["error"]["type"] != "invalid_request_error"
    ]
    assert not server_errors


@pytest.mark.parametrize(
    ("message", "code", "param"),
    [pytest.param(m, c, p, id=name) for name, m, c, p in BAD_EVENTS],
)
def test_an_out_of_bounds_event_is_an_error_event(
    server: LiveServer, message: str, code: str, param: str | None
) -> None:
    async def main() -> None:
        async with realtime(server.ws_url) as client:
            await client.send_text(message)
            error = await client.error()
            assert error["type"] == "invalid_request_error"
            assert (error["code"], error["param"]) == (code, param), error
            if code == "invalid_value" and "prompt" in (param or ""):
                assert str(MAX_PROMPT_CHARS) in error["message"]
            await still_answers(client)

    asyncio.run(main())


# -- fuzzing -------------------------------------------------------------------------------

EVENT_TYPES = [
    "session.update",
    "input_audio_buffer.append",
    "input_audio_buffer.commit",
    "input_audio_buffer.clear",
    "response.create",
    "response.cancel",
    "conversation.item.truncate",
    "conversation.item.create",
    "output_audio_buffer.clear",
    "voxwire.session.stats",
]
FIELDS = [
    "session",
    "audio",
    "input",
    "output",
    "format",
    "rate",
    "type",
    "turn_detection",
    "transcription",
    "prompt",
    "silence_duration_ms",
    "prefix_padding_ms",
    "threshold",
    "item",
    "item_id",
    "content",
    "content_index",
    "audio_end_ms",
    "response",
    "voxwire.wake_word_gate",
    "voxwire.classifiers",
    "event_id",
]

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**63), 2**63)
    | st.floats(allow_nan=False)
    | st.text(max_size=40)
    | st.sampled_from(["audio/pcm", "server_vad", "realtime", "transcription", "message"]),
    lambda inner: (
        st.lists(inner, max_size=4)
        | st.dictionaries(st.sampled_from(FIELDS) | st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=12,
)
events = st.builds(
    lambda kind, body: json.dumps({**body, "type": kind}),
    st.sampled_from(EVENT_TYPES) | st.text(max_size=20),
    st.dictionaries(st.sampled_from(FIELDS), json_values, max_size=4),
)
frames = st.binary(max_size=2048)
garbage = st.text(max_size=200)
messages = st.lists(st.one_of(events, frames, garbage), min_size=1, max_size=6)


@settings(
    max_examples=40,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(batch=messages)
def test_fuzzed_events_and_frames_never_break_the_session(
    server: LiveServer, batch: list[str | bytes]
) -> None:
    async def main() -> None:
        async with realtime(server.ws_url, "?model=voxwire") as client:
            for message in batch:
                await client.ws.send(message)
            try:
                await still_answers(client)
            except ConnectionClosed as closed:
                pytest.fail(f"the server closed the session ({closed}) after {batch!r}")

    asyncio.run(main())
