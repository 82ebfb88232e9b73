"""`POST /v1/chat/completions` with audio, through the official `openai` SDK, against a
live server running the embedded cascade (Whisper transcribes, SmolLM2 answers), on a
real recording: President Kennedy's "ask not what your country can do for you"."""

from __future__ import annotations

import base64
from typing import Any

import httpx2
import openai
import pytest
from openai import OpenAI

from tests import corpus
from tests.live_server import LiveServer

pytestmark = pytest.mark.slow

QUESTION = "What did the speaker say?"
SAID = ("ask not what your country can do for you", "what you can do for your country")


@pytest.fixture(scope="module")
def client(server: LiveServer) -> OpenAI:
    return OpenAI(base_url=server.http_url + "/v1", api_key="x", max_retries=0, timeout=300)


@pytest.fixture(scope="module")
def jfk_wav() -> str:
    return base64.b64encode(corpus.ensure(corpus.JFK_SOURCES)["jfk.wav"].read_bytes()).decode()


def ask(jfk_wav: str, question: str = QUESTION) -> list[Any]:
    return [
        {
            "role": "user",
            "content": [
                {"type": "text", "text": question},
                {"type": "input_audio", "input_audio": {"data": jfk_wav, "format": "wav"}},
            ],
        }
    ]


def quotes_the_speech(answer: str) -> bool:
    said = answer.lower().replace(",", "")
    return any(words in said for words in SAID)


def test_the_answer_quotes_what_was_said(client: OpenAI, jfk_wav: str) -> None:
    completion = client.chat.completions.create(
        model="gpt-4o-audio-preview", messages=ask(jfk_wav), max_tokens=48
    )
    answer = completion.choices[0].message.content or ""
    assert quotes_the_speech(answer), answer
    assert completion.object == "chat.completion"
    assert completion.choices[0].finish_reason in ("stop", "length")
    usage = completion.usage
    assert usage is not None and usage.prompt_tokens > 30
    assert 0 < usage.completion_tokens <= 48
    assert usage.total_tokens == usage.prompt_tokens + usage.completion_tokens


def test_streamed_chunks_end_with_usage_and_done(client: OpenAI, jfk_wav: str) -> None:
    stream = client.chat.completions.create(
        model="smollm2-135m-instruct",
        messages=ask(jfk_wav),
        max_tokens=48,
        stream=True,
        stream_options={"include_usage": True},
    )
    chunks = list(stream)
    texts = [c.choices[0].delta.content or "" for c in chunks if c.choices]
    assert sum(1 for t in texts if t) > 2  # token by token, not one block
    assert quotes_the_speech("".join(texts)), "".join(texts)
    finishes = [c.choices[0].finish_reason for c in chunks if c.choices]
    assert finishes[-1] in ("stop", "length") and not any(finishes[:-1])
    assert chunks[-1].usage is not None and chunks[-1].usage.completion_tokens > 0


@pytest.mark.parametrize(
    ("part", "param", "message"),
    [
        ({"data": "not base64!!", "format": "wav"}, "input_audio.data", "not valid base64"),
        ({"data": "AAAA", "format": "midi"}, "input_audio.format", "unknown audio format"),
        ({"data": base64.b64encode(b"not audio at all").decode(), "format": "wav"}, "data", ""),
    ],
)
def test_bad_audio_parts_are_openai_errors(
    client: OpenAI, part: dict[str, str], param: str, message: str
) -> None:
    messages: Any = [{"role": "user", "content": [{"type": "input_audio", "input_audio": part}]}]
    with pytest.raises(openai.BadRequestError) as raised:
        client.chat.completions.create(model="gpt-audio", messages=messages)
    error = raised.value.body
    assert isinstance(error, dict)
    assert error["param"].endswith(param) and message in error["message"]
    assert error["type"] == "invalid_request_error"


def test_url_parts_are_off_and_models_that_do_not_chat_are_refused(server: LiveServer) -> None:
    url_part = {"type": "audio_url", "audio_url": {"url": "http://127.0.0.1:9/a.wav"}}
    body = {"model": "gpt-audio", "messages": [{"role": "user", "content": [url_part]}]}
    answer = httpx2.post(server.http_url + "/v1/chat/completions", json=body, timeout=30)
    assert answer.status_code == 400
    assert answer.json()["error"]["code"] == "url_inputs_disabled"
    body = {"model": "whisper-tiny.en", "messages": [{"role": "user", "content": "hi"}]}
    answer = httpx2.post(server.http_url + "/v1/chat/completions", json=body, timeout=30)
    assert answer.status_code == 400
    assert answer.json()["error"]["code"] == "model_wrong_task"
    body = {"messages": [{"role": "user", "content": "hi"}], "max_tokens": 100_000}
    answer = httpx2.post(server.http_url + "/v1/chat/completions", json=body, timeout=30)
    assert answer.status_code == 400 and answer.json()["error"]["param"] == "max_tokens"
