"""Every HTTP error is in OpenAI's shape, the router's own 404 and 405 and FastAPI's
validation errors included, over a real socket."""

from __future__ import annotations

from typing import Any

import httpx2 as httpx
import pytest

from tests.live_server import LiveServer

FIELDS = {"message", "type", "param", "code"}


def _error(response: httpx.Response) -> dict[str, Any]:
    body = response.json()
    assert set(body) == {"error"}, body
    assert set(body["error"]) == FIELDS, body
    return body["error"]  # type: ignore[no-any-return]


def test_an_unknown_path_is_a_404_in_openai_shape(server: LiveServer) -> None:
    response = httpx.get(server.http_url + "/v1/no-such-thing", timeout=10)
    assert response.status_code == 404
    error = _error(response)
    assert error["code"] == "not_found" and error["type"] == "invalid_request_error"
    assert "/v1/no-such-thing" in error["message"]


def test_a_wrong_method_is_a_405_that_names_the_allowed_one(server: LiveServer) -> None:
    response = httpx.delete(server.http_url + "/v1/audio/speech", timeout=10)
    assert response.status_code == 405
    assert response.headers["allow"] == "POST"
    error = _error(response)
    assert error["code"] == "method_not_allowed"
    assert "DELETE /v1/audio/speech" in error["message"] and "POST" in error["message"]


@pytest.mark.parametrize(
    ("body", "param"),
    [({"input": "hi", "speed": 9}, "speed"), ({"voice": "alloy"}, "input")],
)
def test_validation_errors_name_the_field(
    server: LiveServer, body: dict[str, Any], param: str
) -> None:
    response = httpx.post(server.http_url + "/v1/audio/speech", json=body, timeout=10)
    assert response.status_code == 400
    error = _error(response)
    assert error["param"] == param and error["code"] == "invalid_value"
    assert error["message"].startswith(f"{param}: ")


def test_a_form_sent_to_the_speech_endpoint_is_told_to_send_json(server: LiveServer) -> None:
    response = httpx.post(
        server.http_url + "/v1/audio/speech", data={"input": "hello", "voice": "alloy"}, timeout=10
    )
    assert response.status_code == 415
    error = _error(response)
    assert error["code"] == "unsupported_media_type"
    assert "send JSON" in error["message"]
    assert "application/x-www-form-urlencoded" in error["message"]


def test_a_multipart_form_sent_to_the_speech_endpoint_is_told_to_send_json(
    server: LiveServer,
) -> None:
    response = httpx.post(
        server.http_url + "/v1/audio/speech",
        files={"input": (None, "hello")},
        timeout=10,
    )
    assert response.status_code == 415
    assert "send JSON" in _error(response)["message"]
