"""Hugging Face style `POST /models/{model_id}` over real sockets, on the real models."""

from __future__ import annotations

import base64
import json
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jiwer
import numpy as np
import pytest

from tests import speech
from tests.e2e.console import normalise
from tests.live_server import LiveServer, live_server
from tests.speech import pcm16_wav_bytes
from voxwire.models.registry import EMBEDDED_MODELS
from voxwire.models.speech_classifier import SpeechClassifier
from voxwire.services.media import decode_audio
from voxwire.services.runtime import Runtime
from voxwire.transports.http.settings import ServerSettings


def post(
    base_url: str,
    model: str,
    body: bytes | dict[str, Any] | str,
    headers: dict[str, str] | None = None,
    *,
    wait: bool = True,
) -> tuple[int, dict[str, str], Any]:
    """(status, lower-cased headers, JSON answer) of one request; by default it
    waits for a model that is still loading (x-wait-for-model)."""
    all_headers = {"x-wait-for-model": "true"} if wait else {}
    all_headers.update(headers or {})
    if isinstance(body, dict):
        data = json.dumps(body).encode()
        all_headers.setdefault("Content-Type", "application/json")
    elif isinstance(body, str):
        data = body.encode()
        all_headers.setdefault("Content-Type", "text/plain; charset=utf-8")
    else:
        data = body
        all_headers.setdefault("Content-Type", "application/octet-stream")
    request = urllib.request.Request(
        f"{base_url}/models/{model}", data=data, headers=all_headers, method="POST"
    )
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            status, answer_headers, raw = response.status, response.headers, response.read()
    except urllib.error.HTTPError as error:
        status, answer_headers, raw = error.code, error.headers, error.read()
    return status, {k.lower(): v for k, v in answer_headers.items()}, json.loads(raw)


NO_CACHE = {"x-use-cache": "false"}


@pytest.fixture(scope="module")
def speech_wav(one_sentence_wav: Path) -> bytes:
    return one_sentence_wav.read_bytes()


@pytest.fixture(scope="module")
def silence_wav() -> bytes:
    return pcm16_wav_bytes(np.zeros(32_000, np.float32))


def test_raw_and_base64_bodies_give_the_same_answer(server: LiveServer, speech_wav: bytes) -> None:
    status, headers, raw = post(server.http_url, "silero-speech", speech_wav, NO_CACHE)
    assert status == 200, raw
    assert headers["x-compute-type"] == "cpu"
    encoded = {"inputs": base64.b64encode(speech_wav).decode()}
    status, _, b64 = post(server.http_url, "silero-speech", encoded, NO_CACHE)
    assert status == 200, b64
    assert raw == b64
    assert [r["label"] for r in raw] == ["speech", "no_speech"]  # default top_k 5, 2 labels
    assert raw[0]["score"] > 0.9


def test_silence_is_no_speech(server: LiveServer, silence_wav: bytes) -> None:
    status, _, answer = post(server.http_url, "silero-speech", silence_wav)
    assert status == 200, answer
    assert answer[0]["label"] == "no_speech"


def test_top_k(server: LiveServer, speech_wav: bytes) -> None:
    body = {"inputs": base64.b64encode(speech_wav).decode(), "parameters": {"top_k": 1}}
    status, _, answer = post(server.http_url, "silero-speech", body)
    assert status == 200, answer
    assert [r["label"] for r in answer] == ["speech"]
    body["parameters"] = {"top_k": 50}
    _, _, answer = post(server.http_url, "silero-speech", body)
    assert len(answer) == 2


def test_function_to_apply(server: LiveServer, speech_wav: bytes) -> None:
    logits = SpeechClassifier().logits(decode_audio(speech_wav)).astype(np.float64)
    answers: dict[str, dict[str, float]] = {}
    for function in ("softmax", "sigmoid", "none"):
        body = {
            "inputs": base64.b64encode(speech_wav).decode(),
            "parameters": {"function_to_apply": function},
        }
        status, _, answer = post(server.http_url, "silero-speech", body)
        assert status == 200, answer
        assert [a["score"] for a in answer] == sorted((a["score"] for a in answer), reverse=True)
        answers[function] = {a["label"]: a["score"] for a in answer}
    labels = ("speech", "no_speech")
    softmax = np.exp(logits - logits.max()) / np.exp(logits - logits.max()).sum()
    sigmoid = 1 / (1 + np.exp(-logits))
    for i, label in enumerate(labels):
        assert answers["none"][label] == pytest.approx(logits[i], rel=1e-5, abs=1e-6)
        assert answers["softmax"][label] == pytest.approx(softmax[i], rel=1e-5, abs=1e-6)
        assert answers["sigmoid"][label] == pytest.approx(sigmoid[i], rel=1e-5, abs=1e-6)
    assert sum(answers["softmax"].values()) == pytest.approx(1.0)
    assert sum(answers["sigmoid"].values()) != pytest.approx(1.0)
    assert answers["none"]["no_speech"] < 0  # raw log-probabilities


def test_speech_recognition(server: LiveServer, speech_wav: bytes) -> None:
    status, _, answer = post(server.http_url, "whisper-tiny.en", speech_wav, NO_CACHE)
    assert status == 200, answer
    assert set(answer) == {"text"}
    assert jiwer.wer(normalise(speech.SENTENCES[0]), normalise(answer["text"])) <= 0.1
    body = {
        "inputs": base64.b64encode(speech_wav).decode(),
        "parameters": {"return_timestamps": True},
    }
    status, _, timed = post(server.http_url, "whisper-tiny.en", body)
    assert status == 200, timed
    assert timed["text"] == answer["text"]
    assert timed["chunks"] and timed["chunks"][0]["timestamp"][0] >= 0.0


def test_text_classification(server: LiveServer) -> None:
    status, _, answer = post(server.http_url, "vader", {"inputs": "I love this wonderful day!"})
    assert status == 200, answer
    assert answer[0]["label"] == "positive"
    assert {a["label"] for a in answer} == {"positive", "negative", "neutral"}
    status, _, raw = post(server.http_url, "vader", "This is a terrible, awful day.")
    assert status == 200, raw
    assert raw[0]["label"] == "negative"
    # JSON sent as a form (curl -d) is still understood as JSON.
    form = {"Content-Type": "application/x-www-form-urlencoded"}
    body = json.dumps({"inputs": "What a terrible mess.", "parameters": {"top_k": 1}}).encode()
    status, _, sniffed = post(server.http_url, "vader", body, form)
    assert status == 200, sniffed
    assert [s["label"] for s in sniffed] == ["negative"]


def test_the_result_cache(server: LiveServer) -> None:
    audio = pcm16_wav_bytes(speech.synthesize("Cache me if you can."))
    first = post(server.http_url, "silero-speech", audio)
    second = post(server.http_url, "silero-speech", audio)
    assert first[1]["x-cache"] == "miss" and second[1]["x-cache"] == "hit"
    assert first[2] == second[2]
    bypass = post(server.http_url, "silero-speech", audio, NO_CACHE)
    assert bypass[1]["x-cache"] == "miss" and bypass[2] == first[2]
    # The key includes the parameters, and the legacy JSON options work too.
    encoded = base64.b64encode(audio).decode()
    other = post(server.http_url, "silero-speech", {"inputs": encoded, "parameters": {"top_k": 1}})
    assert other[1]["x-cache"] == "miss" and len(other[2]) == 1
    legacy = {"inputs": encoded, "options": {"use_cache": False}}
    assert post(server.http_url, "silero-speech", legacy)[1]["x-cache"] == "miss"
    assert post(server.http_url, "silero-speech", {"inputs": encoded})[1]["x-cache"] == "hit"


@pytest.fixture
def fresh_server(runtime: Runtime) -> Iterator[LiveServer]:
    """A server on a new catalogue: only the recogniser is loaded."""
    rt = Runtime(runtime.asr, runtime.vad_factory, specs=EMBEDDED_MODELS)
    try:
        with live_server(rt) as live:
            yield live
    finally:
        rt.close()


@pytest.fixture(scope="module")
def small_server(runtime: Runtime) -> Iterator[LiveServer]:
    """A server that takes bodies of at most 200 000 bytes."""
    with live_server(runtime, ServerSettings(max_upload_bytes=200_000)) as live:
        yield live


def test_wait_for_model(fresh_server: LiveServer, silence_wav: bytes) -> None:
    catalog = fresh_server.runtime.catalog
    assert not catalog["vader"].loaded and not catalog["silero-speech"].loaded
    status, _, answer = post(fresh_server.http_url, "vader", {"inputs": "Nice."}, wait=False)
    assert status == 503
    assert answer["error"] == "Model vader is currently loading"
    assert answer["estimated_time"] > 0
    status, _, answer = post(fresh_server.http_url, "silero-speech", silence_wav, wait=True)
    assert status == 200, answer
    assert answer[0]["label"] == "no_speech"
    deadline = time.monotonic() + 20  # vader went on loading after the 503
    while (
        status := post(fresh_server.http_url, "vader", {"inputs": "Nice."}, wait=False)[0]
    ) == 503:
        assert time.monotonic() < deadline
        time.sleep(0.05)
    assert status == 200


@pytest.mark.parametrize(
    ("model", "body", "headers", "status", "message"),
    [
        ("no-such-model", b"x", {}, 404, "Model no-such-model does not exist"),
        ("org/no-such-model", b"x", {}, 404, "does not exist"),
        ("piper-joe", {"inputs": "hi"}, {}, 400, "serves audio-classification"),
        ("silero", b"RIFF", {}, 400, "does voice-activity-detection"),
        ("silero-speech", b"this is not audio at all" * 10, {}, 400, "not a readable audio"),
        ("silero-speech", b"", {}, 400, "no audio"),
        ("silero-speech", {"inputs": "not base64!"}, {}, 400, "base64"),
        ("silero-speech", {"inputs": 3}, {}, 400, "inputs"),
        ("silero-speech", {"parameters": {}}, {}, 400, "inputs"),
        ("silero-speech", {"inputs": "AAAA", "parameters": {"top_k": 0}}, {}, 400, "top_k"),
        ("silero-speech", {"inputs": "AAAA", "parameters": {"top_k": "x"}}, {}, 400, "top_k"),
        (
            "silero-speech",
            {"inputs": "AAAA", "parameters": {"function_to_apply": "tanh"}},
            {},
            400,
            "function_to_apply",
        ),
        ("silero-speech", {"inputs": "AAAA", "parameters": {"top_p": 1}}, {}, 400, "top_p"),
        ("whisper-tiny.en", {"inputs": "AAAA", "parameters": {"top_k": 1}}, {}, 400, "top_k"),
        ("silero-speech", b"{not json", {"Content-Type": "application/json"}, 400, "JSON"),
        ("vader", b"\xff\xfe", {"Content-Type": "text/plain"}, 400, "UTF-8"),
        ("vader", {"inputs": ["a", "b"]}, {}, 400, "inputs"),
        ("silero-speech", b"x", {"x-use-cache": "maybe"}, 400, "x-use-cache"),
        ("silero-speech", b"x" * 300_000, {}, 413, ""),
    ],
)
def test_errors(
    small_server: LiveServer,
    model: str,
    body: bytes | dict[str, Any],
    headers: dict[str, str],
    status: int,
    message: str,
) -> None:
    got, _, answer = post(small_server.http_url, model, body, headers)
    assert got == status, answer
    assert "error" in answer
    if message:
        assert isinstance(answer["error"], str) and message in answer["error"]
