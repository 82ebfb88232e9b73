"""The official `openai` SDK, unchanged, against a live voxwire server: OpenAI's audio
endpoints (transcriptions, translations, speech) and the model list, on the real models."""

from __future__ import annotations

import asyncio
import base64
import io
import itertools
import json
import socket
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import av
import httpx2
import numpy as np
import numpy.typing as npt
import openai
import pytest
from openai import OpenAI

from tests import speech
from tests.e2e.console import normalise, wer
from tests.live_server import LiveServer
from tests.speech import pcm16_wav_bytes
from voxwire.models.interfaces import TranscribeOptions
from voxwire.services import g711
from voxwire.services.media import decode_audio
from voxwire.services.runtime import OPENAI_ALIASES

THREE = " ".join(speech.SENTENCES)
SIX = (
    *speech.SENTENCES,
    "I would like to book a table for two people at seven o'clock tonight.",
    "The weather will be sunny with a light breeze in the afternoon.",
    "Remember to water the plants before you leave for the weekend.",
)
MAX_WER = 0.10


@pytest.fixture(scope="module")
def client(server: LiveServer) -> OpenAI:
    return OpenAI(base_url=server.http_url + "/v1", api_key="x", max_retries=0, timeout=60)


@pytest.fixture(scope="module")
def three_wav() -> bytes:
    """speech.SENTENCES, 1 s apart, as a 16 kHz WAV file."""
    return pcm16_wav_bytes(speech.utterances(speech.SENTENCES))


def transcribe(client: OpenAI, name: str, data: bytes, **kwargs: Any) -> Any:
    return client.audio.transcriptions.create(file=(name, data), model="whisper-1", **kwargs)


def with_timestamps(client: OpenAI, three_wav: bytes, *granularities: str) -> Any:
    """three.wav transcribed as verbose_json with these timestamp granularities."""
    return transcribe(
        client,
        "three.wav",
        three_wav,
        response_format="verbose_json",
        timestamp_granularities=list(granularities),
    )


def assert_server_answers(client: OpenAI) -> None:
    assert {m.id for m in client.models.list().data} >= {"whisper-tiny.en", "piper-joe"}


# -- transcriptions ------------------------------------------------------------------------


def test_transcription_json(client: OpenAI, three_wav: bytes) -> None:
    result = transcribe(client, "three.wav", three_wav, response_format="json")
    assert wer(THREE, result.text) <= MAX_WER
    assert result.usage.type == "duration"
    assert result.usage.seconds == pytest.approx(len(three_wav[44:]) / 2 / 16_000, abs=0.01)


def test_transcription_text(client: OpenAI, three_wav: bytes) -> None:
    text = transcribe(client, "three.wav", three_wav, response_format="text")
    assert isinstance(text, str) and text.endswith("\n")
    assert wer(THREE, text) <= MAX_WER


@pytest.mark.parametrize("fmt", ["srt", "vtt"])
def test_transcription_subtitles(client: OpenAI, three_wav: bytes, fmt: str) -> None:
    body = transcribe(client, "three.wav", three_wav, response_format=fmt)
    assert isinstance(body, str)
    blocks = [b for b in body.strip().split("\n\n") if b != "WEBVTT"]
    assert body.startswith("WEBVTT\n") == (fmt == "vtt")
    marker = "," if fmt == "srt" else "."
    cues = []
    for number, block in enumerate(blocks, start=1):
        index, times, text = block.split("\n")
        start, end = times.split(" --> ")
        assert index == str(number) and start[8] == marker and end[8] == marker
        cues.append((start, end, text))
    assert [c[0] for c in cues] == sorted(c[0] for c in cues)
    assert all(start <= end for start, end, _ in cues)
    assert wer(THREE, " ".join(c[2] for c in cues)) <= MAX_WER


def test_transcription_verbose_json_has_segments(client: OpenAI, three_wav: bytes) -> None:
    result = transcribe(client, "three.wav", three_wav, response_format="verbose_json")
    assert result.language == "english"
    assert result.duration == pytest.approx(10.4, abs=0.1)
    assert result.words is None, "words are computed only when asked for"
    assert result.segments and len(result.segments) >= 2
    starts = [s.start for s in result.segments]
    assert starts == sorted(starts) and all(
        s.end <= result.duration + 0.01 for s in result.segments
    )
    assert all(s.tokens for s in result.segments)
    assert wer(THREE, " ".join(s.text for s in result.segments)) <= MAX_WER
    assert wer(THREE, result.text) <= MAX_WER


def test_word_timestamps_increase(client: OpenAI, three_wav: bytes) -> None:
    result = with_timestamps(client, three_wav, "word")
    words = result.words
    assert words is not None and result.segments is None
    assert wer(THREE, " ".join(w.word for w in words)) <= MAX_WER
    for before, after in itertools.pairwise(words):
        assert before.start <= before.end <= after.start + 0.01
    assert words[-1].end <= result.duration + 0.01
    # The second sentence starts after the 1 s gap that follows the first.
    first_of_second = next(w for w in words if normalise(w.word) == "please")
    assert first_of_second.start > 3.0


def test_both_granularities(client: OpenAI, three_wav: bytes) -> None:
    result = with_timestamps(client, three_wav, "word", "segment")
    assert result.words and result.segments


def test_streaming_transcription(client: OpenAI, three_wav: bytes) -> None:
    events = list(transcribe(client, "three.wav", three_wav, stream=True))
    kinds = [e.type for e in events]
    assert kinds[-1] == "transcript.text.done" and kinds.count("transcript.text.done") == 1
    deltas = [e.delta for e in events if e.type == "transcript.text.delta"]
    assert len(deltas) >= 2, "one delta per segment"
    assert "".join(deltas) == events[-1].text
    assert wer(THREE, events[-1].text) <= MAX_WER


LONG_TEXT = [
    *speech.SENTENCES,
    "I would like to book a table for two people at seven o'clock tonight, please.",
    "The museum opens at nine and closes early on Sundays.",
    "Remember to water the plants before you leave for the airport.",
    "Our team finished the project two weeks ahead of schedule.",
    "Could you send me the report by the end of the day?",
    "The river flooded the lower fields after three days of heavy rain.",
    "She plays the violin in a small orchestra every Thursday evening.",
    "The new library has a quiet room for students on the second floor.",
    "Turn left at the bakery and the station is right in front of you.",
    "My grandfather built this wooden table more than fifty years ago.",
    "The weather forecast says it will be sunny and warm all weekend.",
    "Please switch off your phone before the concert begins.",
    "We planted tomatoes, beans and carrots in the garden this spring.",
    "The doctor will see you in about twenty minutes.",
    "A cup of hot tea is the best thing on a cold winter morning.",
]
"""Distinct sentences (repeated ones make Whisper's long-form pipeline skip text)."""


def test_streaming_sends_the_first_segment_before_the_rest_is_decoded(
    client: OpenAI, server: LiveServer
) -> None:
    """On a file of three 30 s windows, the first delta arrives when the recogniser's
    worker has spent well under all of its time on the file."""
    long_audio = speech.utterances(LONG_TEXT, gap_s=1.0)
    assert len(long_audio) > 65 * speech.SAMPLE_RATE  # three 30 s windows
    entry = server.runtime.resolve(None, "automatic-speech-recognition")
    assert entry.worker is not None
    busy_before = entry.worker.stats.busy_seconds
    busy_at_first: float | None = None
    deltas = []
    for event in transcribe(client, "long.wav", pcm16_wav_bytes(long_audio), stream=True):
        if event.type == "transcript.text.delta":
            if busy_at_first is None:
                busy_at_first = entry.worker.stats.busy_seconds - busy_before
            deltas.append(event.delta)
        else:
            done = event
    total = entry.worker.stats.busy_seconds - busy_before
    assert busy_at_first is not None
    assert busy_at_first < 0.6 * total, (busy_at_first, total)
    assert "".join(deltas) == done.text
    assert wer(" ".join(LONG_TEXT), done.text) <= MAX_WER


def test_prompt_and_language_are_accepted(client: OpenAI, three_wav: bytes) -> None:
    result = transcribe(
        client, "three.wav", three_wav, language="en", prompt="Kitchen lights.", temperature=0.0
    )
    assert wer(THREE, result.text) <= MAX_WER


# (container, codec, sample rate, file name)
CONTAINERS = {
    "wav": ("wav", "pcm_s16le", 44_100, "speech.wav"),
    "flac": ("flac", "flac", 44_100, "speech.flac"),
    "mp3": ("mp3", "libmp3lame", 44_100, "speech.mp3"),
    "ogg-opus": ("ogg", "libopus", 48_000, "speech.ogg"),
    "webm": ("webm", "libopus", 48_000, "speech.webm"),
    "m4a": ("ipod", "aac", 44_100, "speech.m4a"),
}


def encode_stereo(
    path: Path, audio: npt.NDArray[np.float32], rate: int, fmt: str, codec: str
) -> bytes:
    """Mono speech as a stereo file (right channel quieter) written by PyAV."""
    stereo = np.stack([audio, 0.5 * audio]).astype(np.float32)
    with av.open(str(path), "w", format=fmt) as out:
        stream = out.add_stream(codec, rate=rate, layout="stereo")
        assert isinstance(stream, av.AudioStream)
        frame = av.AudioFrame.from_ndarray(stereo, format="fltp", layout="stereo")
        frame.sample_rate = rate
        for packet in [*stream.encode(frame), *stream.encode(None)]:
            out.mux(packet)
    return path.read_bytes()


@pytest.mark.parametrize("kind", list(CONTAINERS))
def test_transcribes_every_container(client: OpenAI, tmp_path: Path, kind: str) -> None:
    fmt, codec, rate, name = CONTAINERS[kind]
    audio = speech.utterances(speech.SENTENCES[:2], rate=rate)
    data = encode_stereo(tmp_path / name, audio, rate, fmt, codec)
    result = transcribe(client, name, data)
    assert wer(" ".join(speech.SENTENCES[:2]), result.text) <= MAX_WER


# -- translations --------------------------------------------------------------------------


@pytest.mark.filterwarnings("ignore:deprecated:DeprecationWarning")
def test_translation_of_english_speech(client: OpenAI, three_wav: bytes) -> None:
    result = client.audio.translations.create(file=("three.wav", three_wav), model="whisper-1")
    assert wer(THREE, result.text) <= MAX_WER
    verbose = client.audio.translations.create(
        file=("three.wav", three_wav), model="whisper-1", response_format="verbose_json"
    )
    assert verbose.segments and wer(THREE, verbose.text) <= MAX_WER
    srt = client.audio.translations.create(
        file=("three.wav", three_wav), model="whisper-1", response_format="srt"
    )
    assert isinstance(srt, str) and srt.startswith("1\n00:00:")


@pytest.mark.filterwarnings("ignore:deprecated:DeprecationWarning")
def test_translation_from_another_language_needs_a_multilingual_model(
    client: OpenAI, three_wav: bytes
) -> None:
    with pytest.raises(openai.BadRequestError) as info:
        client.audio.translations.create(
            file=("three.wav", three_wav), model="whisper-1", extra_body={"language": "fr"}
        )
    message = info.value.body["message"]  # type: ignore[index]
    assert "English-only" in message and "multilingual" in message and "french" in message
    assert_server_answers(client)


# -- speech --------------------------------------------------------------------------------


def decode_speech(data: bytes, fmt: str) -> tuple[int, float]:
    """(decoded sample rate, seconds) of a speech response, as PyAV reads it."""
    kwargs: dict[str, Any] = {}
    if fmt == "pcm":
        kwargs = {"format": "s16le", "options": {"sample_rate": "24000", "ch_layout": "mono"}}
    with av.open(io.BytesIO(data), **kwargs) as container:
        stream = container.streams.audio[0]
        samples = sum(frame.samples for frame in container.decode(stream))
        rate = int(stream.codec_context.sample_rate)
    return rate, samples / rate


def tts_worker(server: LiveServer) -> Any:
    """The TTS model's worker, loading the model first if no test has used it yet."""
    entry = server.runtime.catalog["piper-joe"]
    server.call(server.runtime.ensure_loaded(entry), timeout=60)
    return entry.worker


def speech_tasks(server: LiveServer) -> list[str]:
    async def names() -> list[str]:
        return [t.get_name() for t in asyncio.all_tasks() if t.get_name().startswith("speech-")]

    return server.call(names())


def wait_for(condition: Callable[[], bool], timeout: float = 5.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.05)
    return condition()


@pytest.mark.parametrize("fmt", ["mp3", "opus", "aac", "flac", "wav", "pcm"])
def test_speech_in_every_format(client: OpenAI, fmt: Any) -> None:
    text = " ".join(speech.SENTENCES[1:])
    response = client.audio.speech.create(
        model="tts-1", voice="alloy", input=text, response_format=fmt
    )
    data = response.content
    rate, seconds = decode_speech(data, fmt)
    assert rate == (48_000 if fmt == "opus" else 24_000)
    assert 3.0 < seconds < 8.0
    upload = pcm16_wav_bytes(np.frombuffer(data, "<i2") / 32768.0, 24_000) if fmt == "pcm" else data
    heard = transcribe(client, f"speech.{fmt}", upload).text
    assert wer(text, heard) <= MAX_WER, heard


@pytest.mark.parametrize("fmt", ["pcmu", "pcma"])
def test_speech_in_g711_for_telephony(client: OpenAI, fmt: Any) -> None:
    text = speech.SENTENCES[1]
    response = client.audio.speech.create(
        model="tts-1", voice="alloy", input=text, response_format=fmt
    )
    assert response.response.headers["content-type"] == f"audio/{fmt.upper()}"
    pcm = np.frombuffer(g711.decode(response.content, f"audio/{fmt}"), "<i2") / 32768.0
    assert 1.0 < len(pcm) / 8000 < 5.0  # one byte per 8 kHz sample
    heard = transcribe(client, "speech.wav", pcm16_wav_bytes(pcm, 8000)).text
    assert wer(text, heard) <= MAX_WER, heard


def test_speech_default_is_mp3_and_voices_map(client: OpenAI, server: LiveServer) -> None:
    default = client.audio.speech.create(model="tts-1", voice="nova", input="Hello there.")
    assert default.response.headers["content-type"] == "audio/mpeg"
    assert decode_speech(default.content, "mp3")[1] > 0.3
    voices = server.runtime.catalog["piper-joe"].model.voices
    choices: list[Any] = ["alloy", "Shimmer", voices[0], {"id": "echo"}]
    for voice in choices:
        pcm = client.audio.speech.create(
            model="piper-joe", voice=voice, input="Hello there.", response_format="pcm"
        ).content
        assert len(pcm) > 24_000, voice  # more than half a second of PCM16 at 24 kHz


def test_speech_speed(client: OpenAI) -> None:
    def seconds(speed: float) -> float:
        pcm = client.audio.speech.create(
            model="tts-1", voice="alloy", input=SIX[0], response_format="pcm", speed=speed
        ).content
        return len(pcm) / 2 / 24_000

    assert seconds(2.0) < 0.7 * seconds(1.0)


def test_speech_streams_before_synthesis_finishes(server: LiveServer) -> None:
    """Six sentences: the first bytes arrive while later sentences are still being made."""
    worker = tts_worker(server)
    body = {"model": "tts-1", "voice": "alloy", "input": " ".join(SIX), "response_format": "pcm"}
    started = time.perf_counter()
    arrivals: list[float] = []
    done_at_first_byte = -1
    calls_before = worker.stats.completed
    with httpx2.stream("POST", f"{server.http_url}/v1/audio/speech", json=body, timeout=60) as r:
        assert r.status_code == 200 and r.headers["content-type"] == "audio/pcm"
        total = 0
        for chunk in r.iter_raw():
            if not arrivals:
                done_at_first_byte = worker.stats.completed - calls_before
            arrivals.append(time.perf_counter() - started)
            total += len(chunk)
    first, last = arrivals[0], arrivals[-1]
    # One call per sentence plus the encoder's flush; most were still to come.
    assert done_at_first_byte <= 3, done_at_first_byte
    assert first < 0.5 * last, (first, last)
    assert len({round(t, 2) for t in arrivals}) >= 4, "bytes should come in several bursts"
    assert total > 2 * 24_000 * 10  # more than 10 s of audio


def test_speech_sse(server: LiveServer) -> None:
    body = {
        "model": "tts-1",
        "voice": "alloy",
        "input": " ".join(speech.SENTENCES),
        "response_format": "pcm",
        "stream_format": "sse",
    }
    with httpx2.stream("POST", f"{server.http_url}/v1/audio/speech", json=body, timeout=60) as r:
        assert r.headers["content-type"].startswith("text/event-stream")
        events = [json.loads(line[6:]) for line in r.iter_lines() if line.startswith("data: ")]
    kinds = [e["type"] for e in events]
    assert kinds[-1] == "speech.audio.done" and set(kinds[:-1]) == {"speech.audio.delta"}
    assert len(kinds) >= 4, "one delta per sentence"
    pcm = b"".join(base64.b64decode(e["audio"]) for e in events[:-1])
    usage = events[-1]["usage"]
    assert usage["input_tokens"] == len(body["input"]) == usage["total_tokens"]
    assert len(pcm) / 2 / 24_000 == pytest.approx(events[-1]["voxwire.audio_seconds"], abs=0.01)
    heard = decode_audio(pcm16_wav_bytes(np.frombuffer(pcm, "<i2") / 32768.0, 24_000))
    text = server.runtime.asr.transcribe(heard, TranscribeOptions(language="en")).text
    assert wer(" ".join(speech.SENTENCES), text) <= MAX_WER


def test_client_disconnect_stops_synthesis(server: LiveServer) -> None:
    worker = tts_worker(server)
    sentences = 24
    body = {"voice": "alloy", "input": " ".join(SIX * 4), "response_format": "pcm"}
    before = worker.stats.submitted
    with httpx2.stream("POST", f"{server.http_url}/v1/audio/speech", json=body, timeout=60) as r:
        next(r.iter_raw())
    assert wait_for(lambda: not speech_tasks(server)), speech_tasks(server)
    assert wait_for(lambda: worker.queue_depth == 0 and worker.load == 0.0)
    time.sleep(0.3)
    assert worker.stats.submitted - before < sentences // 2


@pytest.mark.parametrize("stream_format", ["audio", "sse"])
def test_client_gone_before_the_first_byte_leaves_nothing(
    server: LiveServer, stream_format: str
) -> None:
    """The request is sent and the socket closed at once, while the first sentence is made."""
    worker = tts_worker(server)
    body = json.dumps({"input": " ".join(SIX * 4), "stream_format": stream_format}).encode()
    head = (
        f"POST /v1/audio/speech HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    ).encode()
    before = worker.stats.submitted
    with socket.create_connection(("127.0.0.1", server.port)) as sock:
        sock.sendall(head + body)
    assert wait_for(lambda: not speech_tasks(server)), speech_tasks(server)
    assert wait_for(lambda: worker.queue_depth == 0 and worker.load == 0.0)
    assert worker.stats.submitted - before < 12
    assert_server_answers(OpenAI(base_url=server.http_url + "/v1", api_key="x"))


# -- models --------------------------------------------------------------------------------


def test_models_list_and_retrieve(client: OpenAI, server: LiveServer) -> None:
    models = client.models.list().data
    catalogue = [e.spec.id for e in server.runtime.entries()]
    aliases = [a for task in OPENAI_ALIASES.values() for a in task]
    # The catalogue, the app's enrolled voices, then every OpenAI alias the endpoints take.
    assert [m.id for m in models] == [*catalogue, "speaker-id", *aliases]
    for model in models:
        extra = model.model_extra or {}
        assert model.object == "model" and model.owned_by == "voxwire" and model.created > 0
        assert {"task", "backend", "loaded", "description", "licence"} <= set(extra)
    asr = client.models.retrieve("whisper-tiny.en")
    assert (asr.model_extra or {})["task"] == "automatic-speech-recognition"
    assert (asr.model_extra or {})["loaded"] is True
    with pytest.raises(openai.NotFoundError):
        client.models.retrieve("no-such-model")
    # Every listed id answers, an alias as its task's default model.
    for model in models:
        assert client.models.retrieve(model.id) == model
    for task, names in OPENAI_ALIASES.items():
        for alias in names:
            assert (client.models.retrieve(alias).model_extra or {})["task"] == task
    assert (
        "whisper-tiny.en" in (client.models.retrieve("whisper-1").model_extra or {})["description"]
    )


# -- errors --------------------------------------------------------------------------------


GARBAGE = b"\x00garbage" * 512

# name: (fields replacing the defaults, SDK error, a fragment of the message)
TRANSCRIPTION_ERRORS: dict[str, tuple[dict[str, Any], type[openai.APIStatusError], str]] = {
    "corrupt file": ({"file": ("x.mp3", GARBAGE)}, openai.BadRequestError, "not a readable"),
    "empty file": ({"file": ("x.wav", b"")}, openai.BadRequestError, "empty"),
    "text file": ({"file": ("x.txt", b"hello\n" * 99)}, openai.BadRequestError, "audio"),
    "unknown model": ({"model": "nope"}, openai.NotFoundError, "unknown model 'nope'"),
    "tts model": ({"model": "piper-joe"}, openai.BadRequestError, "text-to-speech"),
    "bad format": ({"response_format": "xml"}, openai.BadRequestError, "response_format"),
    "words in json": (
        {"timestamp_granularities": ["word"]},
        openai.BadRequestError,
        "verbose_json",
    ),
    "bad granularity": (
        {"timestamp_granularities": ["line"], "response_format": "verbose_json"},
        openai.BadRequestError,
        "timestamp_granularities",
    ),
    "unknown language": ({"language": "xx"}, openai.BadRequestError, "ISO-639-1"),
    "french on tiny.en": ({"language": "fr"}, openai.BadRequestError, "multilingual"),
    "temperature": ({"temperature": 1.5}, openai.BadRequestError, "temperature"),
}

SPEECH_ERRORS: dict[str, tuple[dict[str, Any], type[openai.APIStatusError], str]] = {
    "unknown model": ({"model": "nope"}, openai.NotFoundError, "unknown model 'nope'"),
    "asr model": ({"model": "whisper-tiny.en"}, openai.BadRequestError, "text-to-speech"),
    "input too long": ({"input": "a" * 4097}, openai.BadRequestError, "4096"),
    "empty input": ({"input": ""}, openai.BadRequestError, "input"),
    "blank input": ({"input": "  \n "}, openai.BadRequestError, "no text"),
    "bad voice": ({"voice": "bob"}, openai.BadRequestError, "unknown voice 'bob'"),
    "bad format": ({"response_format": "ogg"}, openai.BadRequestError, "response_format"),
    "speed": ({"speed": 5.0}, openai.BadRequestError, "speed"),
    "stream format": ({"stream_format": "chunks"}, openai.BadRequestError, "stream_format"),
}


def check_error(client: OpenAI, call: Callable[[], Any], error: type[Exception], text: str) -> None:
    """The call fails with `error` and a clear message, and the server still answers."""
    with pytest.raises(error) as info:
        call()
    assert isinstance(info.value, openai.APIStatusError)
    body = info.value.body
    assert isinstance(body, dict) and body["type"] == "invalid_request_error"
    assert text in body["message"], body
    assert "Traceback" not in body["message"] and "/work" not in body["message"]
    assert_server_answers(client)


@pytest.mark.parametrize("name", list(TRANSCRIPTION_ERRORS))
def test_transcription_errors(client: OpenAI, three_wav: bytes, name: str) -> None:
    fields, error, text = TRANSCRIPTION_ERRORS[name]
    args = {"file": ("three.wav", three_wav), "model": "whisper-1", **fields}
    check_error(client, lambda: client.audio.transcriptions.create(**args), error, text)


@pytest.mark.parametrize("name", list(SPEECH_ERRORS))
def test_speech_errors(client: OpenAI, name: str) -> None:
    fields, error, text = SPEECH_ERRORS[name]
    args = {"model": "tts-1", "voice": "alloy", "input": "Hello.", **fields}
    check_error(client, lambda: client.audio.speech.create(**args), error, text)


def test_input_of_exactly_4096_characters_is_spoken(client: OpenAI) -> None:
    text = ("Hello there. " * 400)[:4096]
    response = client.audio.speech.with_streaming_response.create(
        model="tts-1", voice="alloy", input=text, response_format="pcm"
    )
    with response as r:
        first = next(r.iter_bytes())
    assert first


def test_not_multipart_is_415(server: LiveServer, client: OpenAI) -> None:
    r = httpx2.post(f"{server.http_url}/v1/audio/transcriptions", json={"model": "whisper-1"})
    assert r.status_code == 415
    assert "multipart/form-data" in r.json()["error"]["message"]
    missing = httpx2.post(
        f"{server.http_url}/v1/audio/transcriptions", files={"model": (None, "whisper-1")}
    )
    assert missing.status_code == 400 and missing.json()["error"]["param"] == "file"
    assert_server_answers(client)
