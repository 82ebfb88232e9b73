"""Native audio LLMs behind the same routes as the cascade, on tiny random Qwen2-Audio and
Voxtral models built here (their text means nothing: the tests check shapes, token
counts, `max_tokens`, the chunk sequence and errors, not meaning):

* `POST /v1/chat/completions` through the official `openai` SDK, streaming and not;
* Hugging Face's `POST /models/{id}` for audio-text-to-text, and its refusal of a text
  model; a workflow whose audio-text-to-text node's answer feeds a text classifier;
* a client that hangs up mid-stream stops the generation (the server's counters show
  it cancelled early) and the next request is answered at once.
"""

from __future__ import annotations

import base64
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx2
import pytest
from openai import OpenAI

from tests.live_server import LiveServer, live_server
from tests.tiny_audio_llms import BUILDERS
from voxwire.models.registry import DEFAULT_CHAT, EMBEDDED_MODELS, chat_model_spec
from voxwire.models.transformers_chat import GenerationStats
from voxwire.services.runtime import Runtime
from voxwire.transports.http.settings import ServerSettings

pytestmark = pytest.mark.slow

MODELS = sorted(BUILDERS)


@pytest.fixture(scope="module")
def native_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    root = tmp_path_factory.mktemp("tiny-audio-llms")
    specs = [chat_model_spec(str(build(root / name))) for name, build in BUILDERS.items()]
    runtime = Runtime.load(specs=[*EMBEDDED_MODELS, *specs])
    settings = ServerSettings(data_dir=root / "data")
    try:
        with live_server(runtime, settings) as live:
            yield live
    finally:
        runtime.close()


@pytest.fixture(scope="module")
def client(native_server: LiveServer) -> OpenAI:
    return OpenAI(base_url=native_server.http_url + "/v1", api_key="x", max_retries=0, timeout=300)


@pytest.fixture(scope="module")
def wav(one_sentence_wav: Path) -> str:
    return base64.b64encode(one_sentence_wav.read_bytes()).decode()


def ask(wav: str) -> Any:
    return [
        {
            "role": "user",
            "content": [
                {"type": "text", "text": "What did the speaker say?"},
                {"type": "input_audio", "input_audio": {"data": wav, "format": "wav"}},
            ],
        }
    ]


def stats(server: LiveServer, model: str) -> GenerationStats:
    model_object = server.runtime.catalog[model].model
    assert isinstance(model_object.stats, GenerationStats)
    return model_object.stats


@pytest.mark.parametrize("model", MODELS)
def test_an_answer_has_max_tokens_and_usage(client: OpenAI, wav: str, model: str) -> None:
    completion = client.chat.completions.create(model=model, messages=ask(wav), max_tokens=5)
    assert completion.model == model and completion.object == "chat.completion"
    choice = completion.choices[0]
    assert choice.finish_reason == "length" and choice.message.content is not None
    assert len(choice.message.content.split()) == 5  # a word per token (tiny_audio_llms)
    usage = completion.usage
    assert usage is not None and usage.completion_tokens == 5
    assert usage.prompt_tokens > 50  # the audio's tokens are in the prompt
    assert usage.total_tokens == usage.prompt_tokens + usage.completion_tokens


@pytest.mark.parametrize("model", MODELS)
def test_a_streamed_answer_is_a_chunk_sequence(client: OpenAI, wav: str, model: str) -> None:
    stream = client.chat.completions.create(
        model=model,
        messages=ask(wav),
        max_tokens=6,
        stream=True,
        stream_options={"include_usage": True},
    )
    chunks = list(stream)
    assert chunks[0].choices[0].delta.role == "assistant"
    texts = [c.choices[0].delta.content for c in chunks[1:] if c.choices]
    finishes = [c.choices[0].finish_reason for c in chunks if c.choices]
    assert finishes[-1] == "length" and not any(finishes[:-1])
    assert sum(1 for t in texts if t) > 1  # streamed, not one block
    assert len("".join(t or "" for t in texts).split()) == 6  # a word per token (tiny_audio_llms)
    assert chunks[-1].choices == [] and chunks[-1].usage is not None
    assert chunks[-1].usage.completion_tokens == 6 and chunks[-1].usage.prompt_tokens > 50


@pytest.mark.parametrize("model", MODELS)
def test_hugging_face_audio_text_to_text(native_server: LiveServer, wav: str, model: str) -> None:
    body = {"inputs": wav, "parameters": {"prompt": "Describe the audio.", "max_new_tokens": 4}}
    answer = httpx2.post(f"{native_server.http_url}/models/{model}", json=body, timeout=120)
    assert answer.status_code == 200, answer.text
    (result,) = answer.json()
    assert isinstance(result["generated_text"], str)
    before = stats(native_server, model).tokens
    again = httpx2.post(
        f"{native_server.http_url}/models/{model}", json=body, headers={"x-use-cache": "false"}
    )
    assert again.json() == answer.json()  # greedy: the same answer
    assert stats(native_server, model).tokens == before + 4


def test_hugging_face_refuses_audio_for_a_text_model_and_urls_when_off(
    native_server: LiveServer, wav: str
) -> None:
    body = {"inputs": wav, "parameters": {"prompt": "What is this?"}}
    answer = httpx2.post(f"{native_server.http_url}/models/{DEFAULT_CHAT}", json=body)
    assert answer.status_code == 400 and "cannot take audio" in answer.json()["error"]
    body = {"inputs": "http://127.0.0.1:9/a.wav", "parameters": {"max_new_tokens": 2}}
    answer = httpx2.post(f"{native_server.http_url}/models/{MODELS[0]}", json=body)
    assert answer.status_code == 400 and "URL inputs are disabled" in answer.json()["error"]
    body = {"inputs": wav, "parameters": {"max_new_tokens": 100_000}}
    answer = httpx2.post(f"{native_server.http_url}/models/{MODELS[0]}", json=body)
    assert answer.status_code == 400 and "max_new_tokens" in answer.json()["error"]


def test_a_workflow_node_answers_and_feeds_a_text_classifier(
    native_server: LiveServer, wav: str
) -> None:
    model = MODELS[-1]
    definition = {
        "id": "audio-notes",
        "nodes": [
            {"id": "answer", "model": model, "prompt": "Action items?", "max_new_tokens": 4},
            {"id": "mood", "model": "vader", "input": "answer"},
        ],
    }
    url = native_server.http_url + "/v1/workflows"
    created = httpx2.post(url, json=definition)
    assert created.status_code == 201, created.text
    inputs = {"inputs": [{"id": "a", "data": {"audio": {"base64": wav}}}]}
    answer = httpx2.post(f"{url}/audio-notes/results", json=inputs, timeout=120)
    assert answer.status_code == 200, answer.text
    (result,) = answer.json()["results"]
    assert result["status"]["code"] == 10000, result
    outputs = {o["node_id"]: o for o in result["outputs"]}
    assert len(outputs["answer"]["data"]["text"]["raw"].split()) == 4
    assert outputs["mood"]["data"]["concepts"]
    text_model = {"id": "wrong", "nodes": [{"id": "a", "model": DEFAULT_CHAT}]}
    refused = httpx2.post(url, json=text_model)
    assert refused.status_code == 400 and "text-generation" in refused.text


def test_a_client_that_hangs_up_stops_the_generation(native_server: LiveServer, wav: str) -> None:
    model = MODELS[0]
    counts = stats(native_server, model)
    cancelled, tokens = counts.finished.get("cancelled", 0), counts.tokens
    body = {"model": model, "messages": ask(wav), "max_tokens": 1024, "stream": True}
    with (
        httpx2.Client(timeout=120) as http,
        http.stream("POST", native_server.http_url + "/v1/chat/completions", json=body) as answer,
    ):
        lines = answer.iter_lines()
        assert next(line for line in lines if line.startswith("data:"))  # the role chunk
        assert next(line for line in lines if '"content"' in line)  # a token: it is running
    # The client is gone: the generation stops at its next token.
    deadline = time.monotonic() + 60
    while counts.finished.get("cancelled", 0) == cancelled and time.monotonic() < deadline:
        time.sleep(0.05)
    assert counts.finished.get("cancelled", 0) == cancelled + 1
    assert 0 < counts.tokens - tokens < 1024
    metrics = httpx2.get(native_server.http_url + "/metrics").text
    assert f'voxwire_chat_generations_total{{finish_reason="cancelled",model="{model}"}}' in metrics
    answer = httpx2.post(
        native_server.http_url + "/v1/chat/completions",
        json={"model": model, "messages": ask(wav), "max_tokens": 3},
        timeout=120,
    )
    assert answer.status_code == 200 and answer.json()["usage"]["completion_tokens"] == 3
