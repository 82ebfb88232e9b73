"""Spoken replies over a real WebSocket: barge-in, cancel, create, truncate, handler
failures and what a handler sees. The server runs `tests.assistants:scripted`, which
does what the session's instructions say."""

from __future__ import annotations

import asyncio
import base64
import time
from collections.abc import Iterator
from typing import Any

import httpx2 as httpx
import pytest

from tests import assistants, speech
from tests.live_server import LiveServer, live_server
from tests.realtime_client import RealtimeTestClient, pcm16, realtime
from voxwire.services.runtime import Runtime
from voxwire.transports.http.settings import ServerSettings

RATE = 16_000
QUESTION = "Please turn on the lights in the kitchen."
INTERRUPTION = "Stop, I want to ask something else."


@pytest.fixture(scope="module")
def reply_server(runtime: Runtime) -> Iterator[LiveServer]:
    settings = ServerSettings(assistant="tests.assistants:scripted")
    with live_server(runtime, settings) as live:
        yield live


async def configure(
    client: RealtimeTestClient, instructions: str, *, vad: bool = True, **extra: Any
) -> dict[str, Any]:
    turn: dict[str, Any] | None = (
        {"type": "server_vad", "silence_duration_ms": 500} if vad else None
    )
    await client.send(
        {
            "type": "session.update",
            "session": {
                "type": "realtime",
                "instructions": instructions,
                "audio": {
                    "input": {"format": {"type": "audio/pcm", "rate": RATE}, "turn_detection": turn}
                },
                **extra,
            },
        }
    )
    return await client.next("session.updated")


def speak(text: str, *, tail_s: float = 1.2) -> bytes:
    return pcm16(speech.utterances([text], lead_s=0.3, tail_s=tail_s))


async def reply_stats(client: RealtimeTestClient) -> dict[str, int]:
    await client.send({"type": "voxwire.session.stats"})
    return (await client.next("voxwire.session.stats"))["replies"]  # type: ignore[no-any-return]


def test_barge_in_cancels_the_reply_at_once(reply_server: LiveServer) -> None:
    async def main() -> None:
        async with realtime(reply_server.ws_url, "?model=voxwire") as client:
            await configure(client, "story")
            await client.stream(speak(QUESTION), rate=RATE, speed=2.0)
            first = await client.next("response.output_audio.delta", within=60)
            response_id = first["response_id"]
            # The person speaks while the long story plays.
            talking = asyncio.create_task(client.stream(speak(INTERRUPTION), rate=RATE, speed=1.0))
            started = await client.next("input_audio_buffer.speech_started", within=30)
            started_at = time.monotonic()
            done = await client.next("response.done", within=5)
            assert time.monotonic() - started_at <= 0.3
            assert done["response"]["id"] == response_id
            assert done["response"]["status"] == "cancelled"
            assert done["response"]["status_details"] == {
                "type": "cancelled",
                "reason": "turn_detected",
            }
            # Nothing of the cancelled reply came between speech_started and response.done.
            between = client.received[client.received.index(started) + 1 : -1]
            assert all(e.get("response_id") != response_id for e in between), between
            # The new turn is transcribed as usual and answered by a new response.
            await talking
            heard = await client.transcripts(1)
            created = await client.next("response.created", within=30)
            assert created["response"]["id"] != response_id
            after = client.received[client.received.index(done) + 1 :]
            assert not [e for e in after if e.get("response_id") == response_id]
            assert "ask something" in heard[0].lower()
            await client.send({"type": "response.cancel"})
            await client.next("response.done", within=5)
            stats = await reply_stats(client)
            assert stats["cancelled"] == 2 and stats["active"] == 0
            sent, cancelled = stats["samples_sent"], stats["samples_cancelled"]
            assert stats["samples_synthesized"] == sent + cancelled
            assert stats["samples_cancelled"] > 0

    asyncio.run(main())
    reply_server.wait_until_idle()
    # The finished session's reply counters reach /metrics, balanced.
    scrape = httpx.get(reply_server.http_url + "/metrics").text
    totals = {
        name: float(line.split()[-1])
        for line in scrape.splitlines()
        if line.startswith("voxwire_reply_")
        for name in [line.split()[0]]
    }
    assert totals["voxwire_reply_cancelled_total"] >= 2
    assert totals["voxwire_reply_samples_synthesized_total"] == (
        totals["voxwire_reply_samples_sent_total"] + totals["voxwire_reply_samples_cancelled_total"]
    )


def test_cancel_reaches_the_handler_stream(reply_server: LiveServer) -> None:
    async def main() -> str:
        async with realtime(reply_server.ws_url, "?model=voxwire") as client:
            updated = await configure(client, "slow", vad=False)
            session_id = updated["session"]["id"]
            await client.send({"type": "response.create"})
            await client.next("response.output_audio.delta", within=30)
            await client.send({"type": "response.cancel"})
            done = await client.next("response.done", within=5)
            assert done["response"]["status_details"]["reason"] == "client_cancelled"
            # Cancelling again: nothing is in progress.
            await client.send({"type": "response.cancel", "event_id": "again"})
            error = await client.error()
            assert error["code"] == "response_cancel_not_active"
            assert error["event_id"] == "again"
            return str(session_id)

    session_id = asyncio.run(main())
    reply_server.wait_until_idle()
    assert session_id in assistants.streams_closed


def test_manual_turn_response_create_and_truncate(reply_server: LiveServer) -> None:
    async def main() -> None:
        async with realtime(reply_server.ws_url, "?model=voxwire") as client:
            await configure(client, "words", vad=False)
            await client.stream(speak(QUESTION, tail_s=0.3), rate=RATE)
            await client.send({"type": "input_audio_buffer.commit"})
            await client.send(
                {
                    "type": "response.create",
                    "response": {"metadata": {"topic": "lights"}, "conversation": "none"},
                }
            )
            # A second create while the first is active is refused.
            await client.send({"type": "response.create"})
            error = await client.error()
            assert error["code"] == "conversation_already_has_active_response"
            done = await client.next("response.done", within=60)
            response = done["response"]
            assert response["status"] == "completed"
            assert response["metadata"] == {"topic": "lights"}
            assert response["conversation_id"] is None
            transcript = response["output"][0]["content"][0]["transcript"]
            assert transcript.startswith("You said") and "kitchen" in transcript.lower()
            item_id = response["output"][0]["id"]
            deltas = [e for e in client.received if e["type"] == "response.output_audio.delta"]
            audio_ms = sum(len(base64.b64decode(e["delta"])) for e in deltas) // 2 * 1000 // 24000

            await client.send(
                {
                    "type": "conversation.item.truncate",
                    "item_id": item_id,
                    "content_index": 0,
                    "audio_end_ms": 500,
                }
            )
            truncated = await client.next("conversation.item.truncated")
            assert truncated["audio_end_ms"] == 500 and truncated["item_id"] == item_id
            for bad, code in [
                ({"item_id": "item_nope"}, "item_not_found"),
                ({"audio_end_ms": audio_ms + 1000}, "invalid_value"),
                ({"content_index": 1}, "invalid_value"),
            ]:
                event = {
                    "type": "conversation.item.truncate",
                    "item_id": item_id,
                    "content_index": 0,
                    "audio_end_ms": 100,
                    **bad,
                }
                await client.send(event)
                assert (await client.error())["code"] == code

    asyncio.run(main())
    reply_server.wait_until_idle()


@pytest.mark.parametrize("instructions", ["fail", "not text"])
def test_a_failing_handler_is_an_error_and_the_session_lives_on(
    reply_server: LiveServer, instructions: str
) -> None:
    async def main() -> None:
        async with realtime(reply_server.ws_url, "?model=voxwire") as client:
            await configure(client, instructions, vad=False)
            await client.send({"type": "response.create"})
            error = await client.error(within=30)
            assert error["type"] == "server_error" and error["code"] == "assistant_failed"
            done = await client.next("response.done")
            assert done["response"]["status"] == "failed"
            assert done["response"]["status_details"]["error"]["code"] == "assistant_failed"
            # The session still answers.
            await configure(client, "echo", vad=False)
            await client.send({"type": "response.create"})
            done = await client.next("response.done", within=30)
            assert done["response"]["status"] == "completed"

    asyncio.run(main())
    reply_server.wait_until_idle()


def test_the_handler_sees_transcript_history_and_classifications(
    reply_server: LiveServer,
) -> None:
    async def main() -> None:
        async with realtime(reply_server.ws_url, "?model=voxwire") as client:
            await configure(client, "echo", **{"voxwire.classifiers": ["sentiment"]})
            await client.stream(speak("I love this wonderful sunny day."), rate=RATE, speed=2.0)
            await client.next("response.done", within=60)
            await client.stream(speak(QUESTION), rate=RATE, speed=2.0)
            await client.next("response.done", within=60)

    before = len(assistants.turns_seen)
    asyncio.run(main())
    reply_server.wait_until_idle()
    first, second = assistants.turns_seen[before:]
    assert "wonderful" in first.transcript.lower()
    labels = [c for c in first.classifications if c["type"] == "voxwire.classification"]
    assert labels and labels[0]["item_id"] == first.item_id
    assert labels[0]["labels"][0]["label"] == "positive"
    assert [m.role for m in second.history] == ["user", "assistant"]
    assert second.history[0].text == first.transcript
    assert "kitchen" in second.transcript.lower()


def test_replies_need_a_realtime_session(reply_server: LiveServer) -> None:
    async def main() -> None:
        async with realtime(reply_server.ws_url) as client:  # ?intent=transcription
            await client.send({"type": "response.create"})
            error = await client.error()
            assert "realtime session" in error["message"]
            await client.send({"type": "response.cancel"})
            assert (await client.error())["code"] == "response_cancel_not_active"
            await client.stats()  # still alive

    asyncio.run(main())


def test_output_format_and_voice_are_checked(reply_server: LiveServer) -> None:
    async def main() -> None:
        async with realtime(reply_server.ws_url, "?model=voxwire") as client:
            updated = await configure(
                client,
                "echo",
                vad=False,
                audio={"output": {"format": {"type": "audio/pcm", "rate": 16000}, "voice": "ash"}},
            )
            output = updated["session"]["audio"]["output"]
            assert output["format"]["rate"] == 16000 and output["voice"] == "ash"
            for bad in [{"format": {"type": "audio/pcm", "rate": 12345}}, {"voice": "nobody"}]:
                await client.send({"type": "session.update", "session": {"audio": {"output": bad}}})
                assert (await client.error())["param"].startswith("session.audio.output")

    asyncio.run(main())


def test_text_items_and_text_only_replies(reply_server: LiveServer) -> None:
    async def main() -> None:
        async with realtime(reply_server.ws_url, "?model=voxwire") as client:
            updated = await configure(client, "echo", vad=False, output_modalities=["text"])
            assert updated["session"]["output_modalities"] == ["text"]
            item = {
                "type": "message",
                "role": "user",
                "content": [{"type": "input_text", "text": "Typed, not spoken."}],
            }
            await client.send({"type": "conversation.item.create", "item": {**item, "id": "t1"}})
            added = await client.next("conversation.item.added")
            assert added["item"]["id"] == "t1" and added["item"]["role"] == "user"
            done_item = await client.next("conversation.item.done")
            assert done_item["item"]["content"][0]["text"] == "Typed, not spoken."
            await client.send({"type": "response.create"})
            done = await client.next("response.done", within=30)
            response = done["response"]
            assert response["output_modalities"] == ["text"]
            assert response["output"][0]["content"] == [
                {"type": "output_text", "text": "Typed, not spoken."}
            ]
            kinds = [e["type"] for e in client.received]
            assert "response.output_text.delta" in kinds
            assert "response.output_text.done" in kinds
            assert "response.output_audio.delta" not in kinds
            # One response may still ask for audio.
            await client.send(
                {"type": "response.create", "response": {"output_modalities": ["audio"]}}
            )
            done = await client.next("response.done", within=30)
            assert done["response"]["output"][0]["content"][0]["type"] == "output_audio"
            assert "response.output_audio.delta" in [e["type"] for e in client.received]
            # Bad items are refused and change nothing.
            for bad, code in [
                ({**item, "id": "t1"}, "item_already_exists"),
                ({**item, "content": [{"type": "input_audio", "audio": "AAAA"}]}, "invalid_audio"),
                ({**item, "content": [{"type": "input_audio"}]}, "missing_required_parameter"),
                (
                    {
                        **item,
                        "role": "assistant",
                        "content": [{"type": "input_audio", "audio": ""}],
                    },
                    "invalid_value",
                ),
                ({**item, "content": [{"type": "input_text", "text": " "}]}, "invalid_value"),
            ]:
                await client.send({"type": "conversation.item.create", "item": bad})
                assert (await client.error())["code"] == code
            await client.send(
                {"type": "conversation.item.create", "previous_item_id": "nope", "item": item}
            )
            assert (await client.error())["code"] == "item_not_found"
            # The track's buffer exists only on WebRTC calls.
            await client.send({"type": "output_audio_buffer.clear"})
            assert "WebRTC" in (await client.error())["message"]

    asyncio.run(main())
    reply_server.wait_until_idle()
    assert assistants.turns_seen[-1].transcript == "Typed, not spoken."


def test_a_cancel_also_stops_the_replies_waiting_their_turn(reply_server: LiveServer) -> None:
    """Without interrupt_response a new turn's reply waits for the one speaking; a
    response.cancel stops both, and the waiting one never starts."""

    async def main() -> None:
        async with realtime(reply_server.ws_url, "?model=voxwire") as client:
            await configure(client, "slow")
            await client.send(
                {
                    "type": "session.update",
                    "session": {
                        "audio": {"input": {"turn_detection": {"interrupt_response": False}}}
                    },
                }
            )
            await client.next("session.updated")
            await client.stream(speak(QUESTION), rate=RATE, speed=2.0)
            first = await client.next("response.created", within=60)
            await client.stream(speak(INTERRUPTION), rate=RATE, speed=2.0)
            completed = "conversation.item.input_audio_transcription.completed"
            while sum(e["type"] == completed for e in client.received) < 2:
                await client.next(completed, within=30)  # the second turn's reply waits
            await client.send({"type": "response.cancel"})
            done = await client.next("response.done", within=5)
            assert done["response"]["id"] == first["response"]["id"]
            await asyncio.sleep(2.0)
            stats = await reply_stats(client)
            assert stats["responses"] == 2 and stats["cancelled"] == 2
            assert stats["active"] == 0
            created = [e for e in client.received if e["type"] == "response.created"]
            assert [e["response"]["id"] for e in created] == [first["response"]["id"]]

    asyncio.run(main())
    reply_server.wait_until_idle()


def test_truncating_a_reply_in_progress_keeps_only_what_was_heard(
    reply_server: LiveServer,
) -> None:
    async def main() -> None:
        async with realtime(reply_server.ws_url, "?model=voxwire") as client:
            await configure(client, "slow", vad=False)
            item = {"type": "message", "role": "user", "content": [{"type": "input_text"}]}
            item["content"][0]["text"] = "Count for me."
            await client.send({"type": "conversation.item.create", "item": item})
            await client.send({"type": "response.create"})
            first = await client.next("response.output_audio_transcript.delta", within=30)
            await client.next("response.output_audio_transcript.delta", within=30)
            await client.send(
                {
                    "type": "conversation.item.truncate",
                    "item_id": first["item_id"],
                    "content_index": 0,
                    "audio_end_ms": 100,
                }
            )
            done = await client.next("response.done")
            assert done["response"]["status_details"]["reason"] == "client_cancelled"
            await client.next("conversation.item.truncated")
            await configure(client, "words", vad=False)
            await client.send({"type": "response.create"})
            await client.next("response.done", within=30)

    asyncio.run(main())
    reply_server.wait_until_idle()
    turn = assistants.turns_seen[-1]
    assert turn.transcript == "Count for me."  # the user's item is the turn answered
    # The truncated answer to it follows it: the new reply continues from there.
    assert [(m.role, m.text) for m in turn.since] == [("assistant", "This is sentence number 1.")]
