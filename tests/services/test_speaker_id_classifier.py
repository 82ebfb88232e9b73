"""The reserved ``speaker-id`` classifier over real sockets on the real encoder: the Hugging
Face endpoint (ranking, nobody enrolled, no stale cached answers, parameters), workflow
nodes next to speech recognition, and its ``GET /v1/models`` card."""

from __future__ import annotations

import base64
from pathlib import Path
from typing import Any

import httpx2 as httpx
import pytest

from tests import speech
from tests.live_server import live_server
from tests.services.test_speakers import JOE_1, JOE_2, JOE_3, enrol, wav
from tests.services.test_workflows import audio_input, call, outputs_by_node
from voxwire.services.runtime import Runtime
from voxwire.services.speakers import SPEAKER_ID, UNKNOWN, Identification, speaker_logits
from voxwire.transports.http.settings import ServerSettings

ANN = "Ann-Marie"


def predict(base_url: str, data: bytes, **parameters: Any) -> list[dict[str, Any]]:
    """The answer of ``POST /models/speaker-id`` (raw body, or JSON with parameters)."""
    url = f"{base_url}/models/{SPEAKER_ID}"
    wait = {"x-wait-for-model": "true"}  # the encoder may still be loading
    if parameters:
        body = {"inputs": base64.b64encode(data).decode(), "parameters": parameters}
        response = httpx.post(url, json=body, headers=wait, timeout=60)
    else:
        response = httpx.post(url, content=data, headers=wait, timeout=60)
    assert response.status_code == 200, response.text
    assert response.headers["x-cache"] == "miss"
    return response.json()  # type: ignore[no-any-return]


def enrol_two(base_url: str) -> None:
    assert enrol(base_url, "joe", wav(speech.synthesize(JOE_1))).status_code == 201
    assert enrol(base_url, "joe", wav(speech.synthesize(JOE_2))).status_code == 200
    assert enrol(base_url, ANN, wav(speech.espeak(JOE_1))).status_code == 201


def test_hf_endpoint_ranks_enrolled_speakers(runtime: Runtime, tmp_path: Path) -> None:
    joe_3 = wav(speech.synthesize(JOE_3))
    with live_server(runtime, ServerSettings(data_dir=tmp_path)) as live:
        url = live.http_url
        assert predict(url, joe_3) == [{"label": UNKNOWN, "score": 1.0}]  # nobody enrolled
        assert predict(url, joe_3) == [{"label": UNKNOWN, "score": 1.0}]  # (a cacheable repeat)

        enrol_two(url)
        joe = predict(url, joe_3)  # the same bytes: not the stale answer from before
        assert [a["label"] for a in joe] == ["joe", UNKNOWN, ANN]
        assert joe[0]["score"] >= 0.75 and joe[2]["score"] < 0.75
        assert joe[1]["score"] == pytest.approx(1.5 - joe[0]["score"], abs=1e-3)
        ann = predict(url, wav(speech.espeak(JOE_3)))
        assert ann[0]["label"] == ANN and ann[0]["score"] >= 0.75
        assert [a["score"] for a in ann] == sorted((a["score"] for a in ann), reverse=True)

        top = predict(url, joe_3, top_k=1, function_to_apply="softmax")
        assert len(top) == 1 and top[0]["label"] == "joe" and 0 < top[0]["score"] < 1
        softmax = predict(url, joe_3, function_to_apply="softmax")
        assert sum(a["score"] for a in softmax) == pytest.approx(1.0)

        assert httpx.delete(f"{url}/v1/speakers/joe", timeout=10).status_code == 200
        assert predict(url, joe_3)[0]["label"] == UNKNOWN  # a deletion shows at once too

        bad = httpx.post(f"{url}/models/{SPEAKER_ID}", json={"inputs": "***"}, timeout=10)
        assert bad.status_code == 400 and "base64" in bad.json()["error"]
        missing = httpx.post(f"{url}/models/speaker-idx", content=joe_3, timeout=10)
        assert missing.status_code == 404 and "error" in missing.json()

        models = httpx.get(f"{url}/v1/models", timeout=10).json()["data"]
        (card,) = [m for m in models if m["id"] == SPEAKER_ID]
        assert card["task"] == "audio-classification"
        assert card["backend"] == "resemblyzer+speakers" and card["loaded"] is True
        one = httpx.get(f"{url}/v1/models/{SPEAKER_ID}", timeout=10)
        assert one.status_code == 200 and one.json() == card


def test_workflow_transcribes_and_names_the_speaker(runtime: Runtime, tmp_path: Path) -> None:
    definition = {
        "id": "who-said",
        "nodes": [
            {"id": "asr", "model": "whisper-tiny.en"},
            {"id": "who", "model": SPEAKER_ID},
        ],
    }
    with live_server(runtime, ServerSettings(data_dir=tmp_path)) as live:
        url = live.http_url
        enrol_two(url)
        status, created = call(url, "POST", "/v1/workflows", definition)
        assert status == 201, created
        assert created["workflow"]["input_type"] == "audio"
        inputs = [
            audio_input(wav(speech.synthesize(JOE_3)), "joe"),
            audio_input(wav(speech.espeak(JOE_3)), "ann"),
        ]
        status, answer = call(url, "POST", "/v1/workflows/who-said/results", {"inputs": inputs})
        assert status == 200, answer
        joe, ann = (outputs_by_node(r) for r in answer["results"])
        assert "thursday" in joe["asr"]["data"]["text"]["raw"].lower()
        for output, name in ((joe["who"], "joe"), (ann["who"], ANN)):
            assert output["model"] == {"id": SPEAKER_ID, "task": "audio-classification"}
            concepts = output["data"]["concepts"]
            assert concepts[0]["name"] == name and concepts[0]["value"] >= 0.75  # a cosine
            assert {c["name"] for c in concepts} == {"joe", ANN, UNKNOWN}

        fed_text = [
            {"id": "asr", "model": "whisper-tiny.en"},
            {"id": "who", "model": SPEAKER_ID, "input": "asr"},
        ]
        fed = {"id": "bad", "nodes": fed_text}
        status, refused = call(url, "POST", "/v1/workflows", fed)
        assert status == 400 and "audio models take the workflow input" in str(refused)


def test_unknown_mirrors_the_best_score_about_the_threshold() -> None:
    found = Identification("joe", 0.9, (("joe", 0.9), ("ann", 0.5)))
    assert speaker_logits(found) == (("joe", "ann", UNKNOWN), [0.9, 0.5, 0.6])
    weak = Identification(UNKNOWN, 0.4, (("joe", 0.4),))
    assert speaker_logits(weak) == (("joe", UNKNOWN), [0.4, 1.0])  # capped at 1
    assert speaker_logits(Identification(UNKNOWN, 0.0, ())) == ((UNKNOWN,), [1.0])
