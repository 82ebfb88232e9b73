"""Workflows over real sockets on the real models: definitions, validation,
runs with per-input statuses, URL inputs, and persistence across restarts."""

from __future__ import annotations

import asyncio
import base64
import functools
import ipaddress
import json
import sqlite3
import threading
import urllib.error
import urllib.request
from collections.abc import Iterator
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from tests import speech
from tests.live_server import LiveServer, live_server
from tests.speech import pcm16_wav_bytes
from voxwire.services.runtime import Runtime
from voxwire.services.url_fetch import PUBLIC_ONLY, IPAddress, UrlFetcher
from voxwire.services.workflows import (
    WorkflowDefinition,
    WorkflowInput,
    WorkflowRunner,
    plan_workflow,
)
from voxwire.transports.http.settings import ServerSettings

POSITIVE = "I love this wonderful day, it makes me so happy."
NEGATIVE = "This is a terrible awful day and I hate it."
INPUT_LIMIT = 150_000
BODY_LIMIT = 400_000

ASR_SENTIMENT = {
    "id": "asr-sentiment",
    "nodes": [
        {"id": "asr", "model": "whisper-tiny.en"},
        {"id": "sentiment", "model": "vader", "input": "asr"},
    ],
}
SPEECH_ONLY = {"id": "speech-only", "nodes": [{"id": "speech", "model": "silero-speech"}]}


def call(
    base_url: str, method: str, path: str, body: dict[str, Any] | bytes | None = None
) -> tuple[int, Any]:
    """(status, JSON answer) of one request."""
    data = json.dumps(body).encode() if isinstance(body, dict) else body
    request = urllib.request.Request(
        base_url + path,
        data=data,
        method=method,
        headers={"Content-Type": "application/json"} if data is not None else {},
    )
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


def audio_input(wav: bytes, input_id: str | None = None) -> dict[str, Any]:
    item: dict[str, Any] = {"data": {"audio": {"base64": base64.b64encode(wav).decode()}}}
    if input_id is not None:
        item["id"] = input_id
    return item


def spoken(text: str) -> bytes:
    return pcm16_wav_bytes(speech.utterances([text], lead_s=0.3, tail_s=0.5))


def outputs_by_node(result: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {o["node_id"]: o for o in result["outputs"]}


def top_concept(output: dict[str, Any]) -> str:
    return str(output["data"]["concepts"][0]["name"])


@pytest.fixture(scope="module")
def wf_server(runtime: Runtime, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    settings = ServerSettings(
        data_dir=tmp_path_factory.mktemp("workflows"),
        max_workflow_input_bytes=INPUT_LIMIT,
        max_upload_bytes=BODY_LIMIT,
    )
    with live_server(runtime, settings) as live:
        for definition in (ASR_SENTIMENT, SPEECH_ONLY):
            status, answer = call(live.http_url, "POST", "/v1/workflows", definition)
            assert status == 201, answer
        yield live


def test_asr_then_sentiment_on_two_spoken_inputs(wf_server: LiveServer) -> None:
    inputs = [audio_input(spoken(POSITIVE), "happy"), audio_input(spoken(NEGATIVE), "sad")]
    status, answer = call(
        wf_server.http_url, "POST", "/v1/workflows/asr-sentiment/results", {"inputs": inputs}
    )
    assert status == 200, answer
    assert answer["status"]["code"] == 10000
    assert answer["workflow"]["id"] == "asr-sentiment"
    happy, sad = answer["results"]
    assert happy["input"]["id"] == "happy" and sad["input"]["id"] == "sad"
    for result, word, mood in ((happy, "love", "positive"), (sad, "hate", "negative")):
        assert result["status"]["code"] == 10000
        assert [o["node_id"] for o in result["outputs"]] == ["asr", "sentiment"]
        outputs = outputs_by_node(result)
        assert word in outputs["asr"]["data"]["text"]["raw"].lower()
        assert outputs["asr"]["model"] == {
            "id": "whisper-tiny.en",
            "task": "automatic-speech-recognition",
        }
        sentiment = outputs["sentiment"]
        assert sentiment["status"]["code"] == 10000
        assert top_concept(sentiment) == mood
        concepts = sentiment["data"]["concepts"]
        assert {c["name"] for c in concepts} == {"positive", "negative", "neutral"}
        assert sum(c["value"] for c in concepts) == pytest.approx(1.0)
        assert concepts[0]["value"] > 0.5


def test_create_get_list_delete(wf_server: LiveServer) -> None:
    url = wf_server.http_url
    definition = {
        "id": "crud_1",
        "nodes": [
            {"id": "speech", "model": "silero-speech"},
            {"id": "asr", "model": "whisper-tiny.en"},
        ],
    }
    status, created = call(url, "POST", "/v1/workflows", definition)
    assert status == 201, created
    workflow = created["workflow"]
    assert workflow["id"] == "crud_1" and workflow["input_type"] == "audio"
    assert workflow["nodes"] == [
        {"id": "speech", "model": "silero-speech", "input": None},
        {"id": "asr", "model": "whisper-tiny.en", "input": None},
    ]
    status, again = call(url, "POST", "/v1/workflows", definition)
    assert status == 409 and "exists already" in again["error"]["message"]
    status, got = call(url, "GET", "/v1/workflows/crud_1")
    assert status == 200 and got["workflow"] == workflow
    status, listed = call(url, "GET", "/v1/workflows")
    assert status == 200
    assert "crud_1" in [w["id"] for w in listed["workflows"]]
    assert call(url, "DELETE", "/v1/workflows/crud_1")[0] == 200
    assert call(url, "GET", "/v1/workflows/crud_1")[0] == 404
    status, gone = call(url, "DELETE", "/v1/workflows/crud_1")
    assert status == 404 and gone["error"]["code"] == "workflow_not_found"
    assert call(url, "POST", "/v1/workflows/crud_1/results", {"inputs": []})[0] == 404


def _nodes(*nodes: tuple[str, str, str | None]) -> list[dict[str, Any]]:
    return [{"id": i, "model": m, **({"input": s} if s else {})} for i, m, s in nodes]


@pytest.mark.parametrize(
    ("definition", "message"),
    [
        ({"id": "Bad ID", "nodes": _nodes(("a", "vader", None))}, "id"),
        ({"id": "x" * 65, "nodes": _nodes(("a", "vader", None))}, "id"),
        ({"id": "ok", "nodes": []}, "nodes"),
        ({"id": "ok", "nodes": _nodes(("A!", "vader", None))}, "nodes.0.id"),
        ({"id": "ok", "nodes": _nodes(("a", "vader", None), ("a", "vader", None))}, "used twice"),
        ({"id": "ok", "nodes": _nodes(("a", "nope", None))}, "unknown model 'nope'"),
        ({"id": "ok", "nodes": _nodes(("a", "piper-joe", None))}, "does text-to-speech"),
        ({"id": "ok", "nodes": _nodes(("a", "silero", None))}, "voice-activity-detection"),
        ({"id": "ok", "nodes": _nodes(("a", "vader", "a"))}, "its own output"),
        ({"id": "ok", "nodes": _nodes(("a", "vader", "b"))}, "not a node"),
        (
            {"id": "ok", "nodes": _nodes(("a", "vader", "b"), ("b", "vader", "a"))},
            "form a cycle",
        ),
        (
            {"id": "ok", "nodes": _nodes(("s", "silero-speech", None), ("t", "vader", "s"))},
            "node 's' gives concepts",
        ),
        (
            {
                "id": "ok",
                "nodes": _nodes(("asr", "whisper-tiny.en", None), ("s", "silero-speech", "asr")),
            },
            "audio models take the workflow input",
        ),
        (
            {"id": "ok", "nodes": _nodes(("asr", "whisper-tiny.en", None), ("t", "vader", None))},
            "all take audio or all take text",
        ),
        ({"id": "ok", "nodes": _nodes(("a", "vader", None)), "extra": 1}, "extra"),
    ],
)
def test_invalid_definitions(
    wf_server: LiveServer, definition: dict[str, Any], message: str
) -> None:
    status, answer = call(wf_server.http_url, "POST", "/v1/workflows", definition)
    assert status == 400, answer
    assert message in answer["error"]["message"]


def test_one_input_failing_does_not_fail_the_others(wf_server: LiveServer) -> None:
    good = pcm16_wav_bytes(speech.synthesize("Hello there."))
    too_big = pcm16_wav_bytes(speech.silence(INPUT_LIMIT / 2 / 16_000 + 0.5))
    inputs = [
        audio_input(good, "good"),
        audio_input(b"definitely not audio" * 20, "corrupt"),
        {"id": "text", "data": {"text": {"raw": "hello"}}},
        audio_input(too_big, "big"),
        {"id": "b64", "data": {"audio": {"base64": "%%%"}}},
    ]
    status, answer = call(
        wf_server.http_url, "POST", "/v1/workflows/speech-only/results", {"inputs": inputs}
    )
    assert status == 200, answer
    assert answer["status"]["code"] == 10010  # mixed
    results = {r["input"]["id"]: r for r in answer["results"]}
    assert results["good"]["status"]["code"] == 10000
    assert top_concept(results["good"]["outputs"][0]) == "speech"
    expected = {
        "corrupt": "not a readable audio",
        "text": "takes audio inputs",
        "big": f"limit of {INPUT_LIMIT} bytes",
        "b64": "not valid base64",
    }
    for input_id, message in expected.items():
        result = results[input_id]
        assert result["status"]["code"] == 10020 and result["outputs"] == []
        assert message in result["status"]["details"]


def test_request_limits(wf_server: LiveServer) -> None:
    url = wf_server.http_url + "/v1/workflows/speech-only/results"
    text = {"data": {"text": {"raw": "hi"}}}
    status, answer = call(url, "POST", "", {"inputs": [text] * 33})
    assert status == 400 and "at most 32" in answer["error"]["message"]
    status, answer = call(url, "POST", "", {"inputs": []})
    assert status == 400
    status, answer = call(url, "POST", "", {"inputs": [{"id": "a", **text}, {"id": "a", **text}]})
    assert status == 400 and "unique" in answer["error"]["message"]
    both = {"data": {"text": {"raw": "hi"}, "audio": {"base64": "AAAA"}}}
    status, answer = call(url, "POST", "", {"inputs": [both]})
    assert status == 400 and "exactly one" in answer["error"]["message"]
    status, _ = call(url, "POST", "", b"{" + b" " * BODY_LIMIT + b"}")
    assert status == 413


def test_url_inputs_are_refused_without_the_flag(wf_server: LiveServer) -> None:
    body = {"inputs": [{"data": {"audio": {"url": "https://example.com/a.wav"}}}]}
    status, answer = call(wf_server.http_url, "POST", "/v1/workflows/speech-only/results", body)
    assert status == 400
    assert "--allow-url-inputs" in answer["error"]["message"]
    assert answer["error"]["code"] == "url_inputs_disabled"


def test_with_the_flag_private_urls_fail_their_own_input(runtime: Runtime, tmp_path: Path) -> None:
    settings = ServerSettings(data_dir=tmp_path, allow_url_inputs=True, url_fetch_timeout_s=2.0)
    with live_server(runtime, settings) as live:
        assert call(live.http_url, "POST", "/v1/workflows", SPEECH_ONLY)[0] == 201
        inputs = [
            {"id": "local", "data": {"audio": {"url": f"http://127.0.0.1:{live.port}/health"}}},
            {"id": "meta", "data": {"audio": {"url": "http://169.254.169.254/latest/"}}},
            {"id": "ftp", "data": {"audio": {"url": "ftp://example.com/a.wav"}}},
            audio_input(pcm16_wav_bytes(speech.synthesize("Hello there.")), "good"),
        ]
        status, answer = call(
            live.http_url, "POST", "/v1/workflows/speech-only/results", {"inputs": inputs}
        )
    assert status == 200, answer
    results = {r["input"]["id"]: r for r in answer["results"]}
    assert results["good"]["status"]["code"] == 10000
    assert "loopback" in results["local"]["status"]["details"]
    assert "link-local" in results["meta"]["status"]["details"]
    assert "only http and https" in results["ftp"]["status"]["details"]


def test_text_workflows_take_text_inputs(wf_server: LiveServer) -> None:
    mood = {"id": "mood", "nodes": [{"id": "sentiment", "model": "vader"}]}
    assert call(wf_server.http_url, "POST", "/v1/workflows", mood)[0] == 201
    inputs = [{"data": {"text": {"raw": POSITIVE}}}, audio_input(spoken(POSITIVE))]
    status, answer = call(
        wf_server.http_url, "POST", "/v1/workflows/mood/results", {"inputs": inputs}
    )
    assert status == 200, answer
    text, audio = answer["results"]
    assert top_concept(text["outputs"][0]) == "positive"
    assert len(text["input"]["id"]) == 32  # generated
    assert "takes text inputs" in audio["status"]["details"]


def test_workflows_survive_a_restart(runtime: Runtime, tmp_path: Path) -> None:
    settings = ServerSettings(data_dir=tmp_path / "state")
    with live_server(runtime, settings) as first:
        assert call(first.http_url, "POST", "/v1/workflows", ASR_SENTIMENT)[0] == 201
    with sqlite3.connect(tmp_path / "state" / "voxwire.db") as db:
        assert db.execute("SELECT version FROM schema_version").fetchall() == [(2,)]
    with live_server(runtime, settings) as second:
        status, listed = call(second.http_url, "GET", "/v1/workflows")
        assert status == 200
        assert [w["id"] for w in listed["workflows"]] == ["asr-sentiment"]
        status, answer = call(
            second.http_url,
            "POST",
            "/v1/workflows/asr-sentiment/results",
            {"inputs": [audio_input(spoken(NEGATIVE))]},
        )
    assert status == 200, answer
    assert top_concept(outputs_by_node(answer["results"][0])["sentiment"]) == "negative"


class _QuietFiles(SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        pass


class _AllowLoopback:
    def refusal(self, address: IPAddress) -> str | None:
        if address == ipaddress.ip_address("127.0.0.1"):
            return None
        return PUBLIC_ONLY.refusal(address)


def test_a_fetched_url_input_runs_through_the_workflow(runtime: Runtime, tmp_path: Path) -> None:
    """With a policy that allows the local file server, URL audio is fetched and run."""
    (tmp_path / "happy.wav").write_bytes(spoken(POSITIVE))
    handler = functools.partial(_QuietFiles, directory=str(tmp_path))
    files = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=files.serve_forever, daemon=True).start()
    settings = ServerSettings(data_dir=tmp_path, allow_url_inputs=True)
    fetcher = UrlFetcher(max_bytes=1_000_000, timeout_s=5.0, policy=_AllowLoopback())
    runner = WorkflowRunner(runtime, settings, fetcher)
    plan = plan_workflow(WorkflowDefinition.model_validate(ASR_SENTIMENT), runtime)
    base = f"http://127.0.0.1:{files.server_port}"
    inputs = [
        WorkflowInput.model_validate({"id": "ok", "data": {"audio": {"url": base + "/happy.wav"}}}),
        WorkflowInput.model_validate({"id": "404", "data": {"audio": {"url": base + "/no.wav"}}}),
    ]
    try:
        found, missing = asyncio.run(runner.run(plan, inputs))
    finally:
        files.shutdown()
        files.server_close()
    assert found["status"]["code"] == 10000, found
    assert top_concept(outputs_by_node(found)["sentiment"]) == "positive"
    assert missing["status"]["code"] == 10020 and "HTTP 404" in missing["status"]["details"]


def test_a_wake_word_node_gives_peak_scores(wf_server: LiveServer) -> None:
    """Wake words are multi-label: their concepts are sigmoid peaks, as on the HF endpoint."""
    definition = {"id": "wake_1", "nodes": [{"id": "wake", "model": "wake-words"}]}
    status, answer = call(wf_server.http_url, "POST", "/v1/workflows", definition)
    assert status == 201, answer
    jarvis = audio_input(spoken("Hey Jarvis, what's the weather like?"))
    status, answer = call(
        wf_server.http_url, "POST", "/v1/workflows/wake_1/results", {"inputs": [jarvis]}
    )
    assert status == 200, answer
    concepts = outputs_by_node(answer["results"][0])["wake"]["data"]["concepts"]
    assert concepts[0]["name"] == "hey_jarvis" and concepts[0]["value"] >= 0.5
    assert sum(c["value"] for c in concepts) > 1.0  # independent scores, not a softmax
