"""Native audio LLMs (Qwen2-Audio, Voxtral) through transformers, on tiny random models
built here: they load from a directory, hear the audio (its tokens are in the prompt),
stream exactly `max_tokens` tokens, stop when cancelled, and are picked by
`chat_model_spec` from their config. A hub id that is not cached is a clear error."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from tests.tiny_audio_llms import BUILDERS
from voxwire.models.errors import ModelLoadFailed, ModelNotFoundError
from voxwire.models.interfaces import ChatMessage, ChatModel, GenerateOptions
from voxwire.models.registry import chat_model_spec, load_model
from voxwire.models.transformers_audio_chat import TransformersAudioChat

pytestmark = pytest.mark.slow

SECOND = np.sin(np.linspace(0, 440 * 2 * np.pi, 16_000)).astype(np.float32) * 0.3


@pytest.fixture(scope="module", params=sorted(BUILDERS))
def tiny(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Path:
    build: Callable[[Path], Path] = BUILDERS[request.param]
    return build(tmp_path_factory.mktemp(request.param))


@pytest.fixture(scope="module")
def model(tiny: Path) -> TransformersAudioChat:
    spec = chat_model_spec(str(tiny))
    assert spec.task == "audio-text-to-text" and spec.id == tiny.name
    loaded = load_model(spec)
    assert isinstance(loaded, TransformersAudioChat) and isinstance(loaded, ChatModel)
    return loaded


def question(seconds: int = 1) -> list[ChatMessage]:
    audio = np.tile(SECOND, seconds)
    return [ChatMessage("user", "What did the speaker say?", (audio,))]


def test_the_audio_is_in_the_prompt_and_the_answer_has_max_tokens(
    model: TransformersAudioChat,
) -> None:
    assert model.accepts_audio
    text_only = model.count_tokens([ChatMessage("user", "What did the speaker say?")])
    with_audio = model.count_tokens(question())
    assert with_audio > text_only + 10  # the audio's own tokens
    generation = model.generate(question(), GenerateOptions(max_tokens=7))
    chunks = list(generation)
    assert generation.prompt_tokens == with_audio
    assert generation.completion_tokens == 7
    assert generation.finish_reason == "length"
    assert all(isinstance(c, str) for c in chunks)


def test_longer_audio_gives_more_audio_tokens_or_is_bounded(model: TransformersAudioChat) -> None:
    if model.max_audio_seconds is not None:  # Qwen2-Audio: one 30 s window per part
        assert model.max_audio_seconds == 30
        assert model.count_tokens(question(20)) > model.count_tokens(question(2))
    else:  # Voxtral: whole 30 s windows
        assert model.count_tokens(question(40)) > model.count_tokens(question(2))


def test_cancelling_stops_at_the_next_token(model: TransformersAudioChat) -> None:
    before = dict(model.stats.finished)
    generation = model.generate(question(), GenerateOptions(max_tokens=1000))
    iterator = iter(generation)
    next(iterator)
    generation.cancelled.set()
    list(iterator)
    assert generation.finish_reason == "cancelled"
    assert generation.completion_tokens < 1000
    assert model.stats.finished.get("cancelled", 0) == before.get("cancelled", 0) + 1


def test_a_hub_id_not_in_the_cache_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(ModelNotFoundError, match="not in the local Hugging Face cache"):
        chat_model_spec("voxwire-tests/no-such-audio-llm")


def test_a_text_model_is_not_loaded_as_an_audio_llm(tmp_path: Path) -> None:
    from transformers.models.gpt2 import GPT2Config

    GPT2Config(n_layer=1, n_embd=8, n_head=1).save_pretrained(tmp_path)
    assert chat_model_spec(str(tmp_path)).task == "text-generation"
    with pytest.raises(ModelLoadFailed, match="not a native audio LLM"):
        TransformersAudioChat(tmp_path)
