"""The model registry: names, specs, caching and errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from voxwire.models import registry
from voxwire.models.errors import ModelError, ModelNotFoundError
from voxwire.models.faster_whisper_asr import FasterWhisperAsr, embedded_model_path
from voxwire.models.interfaces import AsrModel, SpeechProbability
from voxwire.models.silero_vad import SileroVad


def test_unknown_asr_lists_known_names() -> None:
    with pytest.raises(ModelNotFoundError, match=r"whisper-tiny\.en") as info:
        registry.load_asr("no-such-model")
    assert isinstance(info.value, ModelError)


def test_unknown_vad_lists_known_names() -> None:
    with pytest.raises(ModelNotFoundError, match="silero"):
        registry.load_vad("no-such-vad")


def test_directory_without_model_files(tmp_path: Path) -> None:
    with pytest.raises(ModelNotFoundError, match=r"model\.bin.*config\.json"):
        registry.load_asr(str(tmp_path))


def test_empty_transformers_spec() -> None:
    with pytest.raises(ModelNotFoundError, match="transformers:"):
        registry.load_asr("transformers:")


def test_default_asr_is_loaded_once() -> None:
    default = registry.load_asr()
    assert isinstance(default, FasterWhisperAsr)
    assert isinstance(default, AsrModel)
    assert default.name == "whisper-tiny.en"
    assert registry.load_asr("whisper-tiny.en") is default
    assert registry.load_asr(None) is default
    assert registry.load_asr(cache=False) is not default


def test_ctranslate2_directory_loads_faster_whisper() -> None:
    model = registry.load_asr(str(embedded_model_path()), cache=False)
    assert isinstance(model, FasterWhisperAsr)


def test_vad_is_new_per_stream() -> None:
    a = registry.load_vad()
    b = registry.load_vad("silero")
    assert isinstance(a, SileroVad) and isinstance(a, SpeechProbability)
    assert a is not b


def test_available_models() -> None:
    listed = {m.id: m for m in registry.available_models()}
    assert listed["whisper-tiny.en"].kind == "asr"
    assert listed["whisper-tiny.en"].backend == "faster-whisper"
    assert listed["silero"].kind == "vad"
    assert all(m.licence and m.description for m in listed.values())


def test_register_custom_asr() -> None:
    default = registry.load_asr()
    registry.register_asr(
        "custom-test-asr",
        lambda device: default,
        backend="test",
        description="the default under another name",
        licence="MIT",
    )
    assert registry.load_asr("custom-test-asr") is default
    assert "custom-test-asr" in {m.id for m in registry.available_models()}
