"""semantic_vad through the Realtime WebSocket on Piper speech with the real Smart Turn
model: a pause mid-sentence keeps the turn open, a finished question ends it after a
pause too short for server_vad's hangover."""

from __future__ import annotations

import asyncio
import re
from typing import Any

import numpy as np
import numpy.typing as npt
import pytest

from tests import speech
from tests.live_server import LiveServer
from tests.realtime_client import pcm16, realtime
from voxwire.models.interfaces import TranscribeOptions
from voxwire.services.runtime import Runtime

RATE = 16_000
SEMANTIC = {"type": "semantic_vad", "eagerness": "auto"}
SERVER_VAD = {"type": "server_vad", "silence_duration_ms": 500}
STOPPED = "input_audio_buffer.speech_stopped"
COMPLETED = "conversation.item.input_audio_transcription.completed"


def _split_after(runtime: Runtime, audio: npt.NDArray[np.float32], word: str) -> int:
    """Where the gap between `word` and the next word begins: the quietest 10 ms between
    the start of `word` and the end of the next by Whisper's (rough) word times, walked
    back to where the quiet begins."""
    words = runtime.asr.transcribe(audio, TranscribeOptions(word_timestamps=True)).words
    names = [re.sub(r"\W", "", w.word.lower()) for w in words]
    i = names.index(word)
    step = RATE // 100
    lo, hi = int(words[i].start * RATE) + step, int(words[i + 1].end * RATE) - step
    energy = {s: float(np.mean(audio[s : s + step] ** 2)) for s in range(lo, hi, step)}
    quietest = min(energy, key=energy.__getitem__)
    start = quietest
    while start - step in energy and energy[start - step] < 10 * energy[quietest] + 1e-7:
        start -= step
    return start + step // 2


@pytest.fixture(scope="module")
def paused_booking(runtime: Runtime) -> npt.NDArray[np.float32]:
    """'I want to book a table for [1 s pause] four people.', one sentence's prosody."""
    sentence = speech.synthesize("I want to book a table for four people.")
    cut = _split_after(runtime, sentence, "for")
    return np.concatenate(
        [speech.silence(0.5), sentence[:cut], speech.silence(1.0), sentence[cut:]]
    )


async def _session(
    server: LiveServer, turn_detection: dict[str, Any], audio: npt.NDArray[np.float32]
) -> tuple[list[str], list[dict[str, Any]]]:
    """Stream `audio` in a transcription session as fast as the server takes it; return
    the transcripts and every event up to the moment the server had handled all the
    audio (a stats round trip) and had finished the turns it ended."""
    async with realtime(server.ws_url) as client:
        updated = await client.update(
            format={"type": "audio/pcm", "rate": RATE}, turn_detection=turn_detection
        )
        wire = updated["session"]["audio"]["input"]["turn_detection"]
        assert wire["type"] == turn_detection["type"]
        await client.stream(pcm16(audio, RATE), rate=RATE)
        await client.stats()
        seen = list(client.received)
        stopped = sum(e["type"] == STOPPED for e in seen)
        texts = [e["transcript"] for e in seen if e["type"] == COMPLETED]
        texts += await client.transcripts(stopped - len(texts))
        return texts, seen


def test_pause_mid_sentence_does_not_end_a_semantic_turn(
    server: LiveServer, paused_booking: npt.NDArray[np.float32]
) -> None:
    audio = np.concatenate([paused_booking, speech.silence(4.5)])
    texts, _ = asyncio.run(_session(server, SEMANTIC, audio))
    assert len(texts) == 1, texts
    heard = re.sub(r"[^a-z ]", "", texts[0].lower())
    assert "table for" in heard and "people" in heard, heard
    # server_vad's 500 ms hangover cuts the same sentence in two at the pause.
    assert len(asyncio.run(_session(server, SERVER_VAD, audio))[0]) == 2


def test_finished_question_ends_before_server_vad_would(server: LiveServer) -> None:
    """350 ms of silence after a finished question: semantic_vad has ended the turn by
    the time the server has read it all, server_vad (500 ms hangover) has not."""
    audio = np.concatenate(
        [speech.silence(0.5), speech.synthesize(speech.SENTENCES[2]), speech.silence(0.35)]
    )
    texts, _ = asyncio.run(_session(server, SEMANTIC, audio))
    assert len(texts) == 1
    assert "train" in texts[0].lower()
    texts, events = asyncio.run(_session(server, SERVER_VAD, audio))
    assert texts == []
    assert "input_audio_buffer.speech_started" in [e["type"] for e in events]
