"""HTTP fields are typed strictly and free text is capped: a boolean is not a number, a
number in a string is not a number, and a 1 MB prompt is refused (400, OpenAI's shape),
not taken and echoed."""

from __future__ import annotations

from typing import Any

import httpx2 as httpx
import pytest

from tests import speech
from tests.live_server import LiveServer
from voxwire.transports.http.openai import MAX_PROMPT_CHARS


def check_400(response: httpx.Response, param: str) -> None:
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert error["type"] == "invalid_request_error"
    assert error["param"] == param, error


def test_a_prompt_over_the_cap_is_refused(server: LiveServer) -> None:
    wav = speech.pcm16_wav_bytes(speech.utterances(speech.SENTENCES[:1]))
    with httpx.Client(base_url=server.http_url, timeout=30) as client:
        refused = client.post(
            "/v1/audio/transcriptions",
            files={"file": ("a.wav", wav)},
            data={"model": "whisper-1", "prompt": "x" * 1_000_000},
        )
        taken = client.post(
            "/v1/audio/transcriptions",
            files={"file": ("a.wav", wav)},
            data={"model": "whisper-1", "prompt": "y" * MAX_PROMPT_CHARS},
        )
    check_400(refused, "prompt")
    assert f"at most {MAX_PROMPT_CHARS} characters" in refused.json()["error"]["message"]
    assert taken.status_code == 200, taken.text


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({"inputs": "good day", "parameters": {"top_k": True}}, "parameters.top_k"),
        ({"inputs": "good day", "parameters": {"top_k": "2"}}, "parameters.top_k"),
        ({"inputs": "good day", "options": {"use_cache": 1}}, "options.use_cache"),
    ],
)
def test_hugging_face_parameters_are_strict(
    server: LiveServer, body: dict[str, Any], param: str
) -> None:
    response = httpx.post(server.http_url + "/models/vader", json=body, timeout=30)
    assert response.status_code == 400, response.text
    assert param.split(".")[-1] in response.text


def test_speech_speed_is_a_number_not_a_string(server: LiveServer) -> None:
    response = httpx.post(
        server.http_url + "/v1/audio/speech",
        json={"input": "Hello.", "voice": "alloy", "speed": "1.5"},
        timeout=30,
    )
    check_400(response, "speed")


@pytest.mark.parametrize(
    ("path", "fields", "param", "says"),
    [
        ("/v1/audio/transcriptions", {"stream": "yes"}, "stream", "true or false"),
        ("/v1/audio/transcriptions", {"stream": "1"}, "stream", "true or false"),
        ("/v1/audio/transcriptions", {"stream": "on"}, "stream", "true or false"),
        ("/v1/audio/transcriptions", {"temperature": "abc"}, "temperature", "a number"),
        ("/v1/audio/transcriptions", {"temperature": "nan"}, "temperature", "a number"),
        ("/v1/audio/transcriptions", {"temperature": "0_5"}, "temperature", "a number"),
        ("/v1/audio/transcriptions", {"temperature": "true"}, "temperature", "a number"),
        ("/v1/audio/transcriptions", {"temperature": "2"}, "temperature", "less than"),
        (
            "/v1/audio/transcriptions",
            {"timestamp_granularities[]": "sentence"},
            "timestamp_granularities.0",
            "'word' or 'segment'",
        ),
        ("/v1/audio/translations", {"temperature": "0.2.1"}, "temperature", "a number"),
    ],
)
def test_form_numbers_and_booleans_are_strict(
    server: LiveServer, path: str, fields: dict[str, str], param: str, says: str
) -> None:
    """Form fields arrive as text; only what the official clients send is taken."""
    wav = speech.pcm16_wav_bytes(speech.utterances(speech.SENTENCES[:1]))
    with httpx.Client(base_url=server.http_url, timeout=30) as client:
        response = client.post(
            path, files={"file": ("a.wav", wav)}, data={"model": "whisper-1", **fields}
        )
    check_400(response, param)
    assert says in response.json()["error"]["message"], response.json()


def test_form_values_the_sdk_sends_are_taken(server: LiveServer) -> None:
    """The openai SDK writes booleans as true/false and numbers with str()."""
    wav = speech.pcm16_wav_bytes(speech.utterances(speech.SENTENCES[:1]))
    sends = [
        ("/v1/audio/transcriptions", {"stream": "false", "temperature": "0"}),
        ("/v1/audio/transcriptions", {"stream": "True", "temperature": "1e-05"}),
        ("/v1/audio/translations", {"temperature": "0.0"}),
    ]
    with httpx.Client(base_url=server.http_url, timeout=60) as client:
        plain, streamed, translated = (
            client.post(path, files={"file": ("a.wav", wav)}, data={"model": "whisper-1", **f})
            for path, f in sends
        )
    assert plain.status_code == 200, plain.text
    assert "fox" in plain.json()["text"].lower()
    assert streamed.status_code == 200, streamed.text
    assert streamed.headers["content-type"].startswith("text/event-stream")
    assert '"transcript.text.done"' in streamed.text
    assert translated.status_code == 200, translated.text
    assert "fox" in translated.json()["text"].lower()


def test_speaker_threshold_is_a_strict_number(server: LiveServer) -> None:
    wav = speech.pcm16_wav_bytes(speech.utterances(speech.SENTENCES[:1]))
    for raw in ("nan", "1_0", "0x1", "high"):
        response = httpx.post(
            server.http_url + "/v1/speakers/identify",
            files={"file": ("a.wav", wav)},
            data={"threshold": raw},
            timeout=30,
        )
        check_400(response, "threshold")
        assert "a number" in response.json()["error"]["message"]
