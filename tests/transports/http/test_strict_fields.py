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
