"""TransformersAsr loading and decoding code, on tiny random models built locally.

Real weights cannot be had offline, so these check structure, bounds and the
loading paths, not text quality (random weights produce garbage text).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

import voxwire.models.transformers_asr as tasr
from voxwire.models import registry
from voxwire.models.errors import ModelNotFoundError
from voxwire.models.faster_whisper_asr import embedded_model_path
from voxwire.models.interfaces import AsrModel, DecodeRequest, DecodeResult, TranscribeOptions
from voxwire.models.transformers_asr import TransformersAsr


@pytest.fixture(scope="module")
def whisper_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    import torch
    from transformers import (
        WhisperConfig,
        WhisperFeatureExtractor,
        WhisperForConditionalGeneration,
        WhisperProcessor,
        WhisperTokenizerFast,
    )

    out = tmp_path_factory.mktemp("tiny-whisper")
    tok = WhisperTokenizerFast(tokenizer_file=str(embedded_model_path() / "tokenizer.json"))
    sot = tok.convert_tokens_to_ids("<|startoftranscript|>")
    eot = tok.convert_tokens_to_ids("<|endoftext|>")
    config = WhisperConfig(
        vocab_size=len(tok),
        d_model=64,
        encoder_layers=2,
        decoder_layers=2,
        encoder_attention_heads=2,
        decoder_attention_heads=2,
        encoder_ffn_dim=128,
        decoder_ffn_dim=128,
        num_mel_bins=80,
        max_source_positions=1500,
        max_target_positions=448,
        decoder_start_token_id=sot,
        eos_token_id=eot,
        pad_token_id=eot,
        bos_token_id=eot,
    )
    torch.manual_seed(0)
    WhisperForConditionalGeneration(config).save_pretrained(out)
    WhisperProcessor(feature_extractor=WhisperFeatureExtractor(), tokenizer=tok).save_pretrained(
        out
    )
    return out


@pytest.fixture(scope="module")
def ctc_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    import torch
    from transformers import (
        Wav2Vec2Config,
        Wav2Vec2CTCTokenizer,
        Wav2Vec2FeatureExtractor,
        Wav2Vec2ForCTC,
        Wav2Vec2Processor,
    )

    out = tmp_path_factory.mktemp("tiny-ctc")
    vocab = {"<pad>": 0, "<s>": 1, "</s>": 2, "<unk>": 3, "|": 4, "'": 5}
    for i, ch in enumerate("abcdefghijklmnopqrstuvwxyz"):
        vocab[ch] = 6 + i
    vocab_file = out / "vocab.json"
    vocab_file.write_text(json.dumps(vocab))
    tok = Wav2Vec2CTCTokenizer(
        str(vocab_file), unk_token="<unk>", pad_token="<pad>", word_delimiter_token="|"
    )
    fe = Wav2Vec2FeatureExtractor(
        feature_size=1, sampling_rate=16_000, padding_value=0.0, do_normalize=True
    )
    config = Wav2Vec2Config(
        vocab_size=len(vocab),
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        conv_dim=(32, 32, 32, 32, 32, 32, 32),
        num_conv_pos_embeddings=16,
        num_conv_pos_embedding_groups=2,
        pad_token_id=0,
    )
    torch.manual_seed(0)
    Wav2Vec2ForCTC(config).save_pretrained(out)
    Wav2Vec2Processor(feature_extractor=fe, tokenizer=tok).save_pretrained(out)
    return out


@pytest.fixture(autouse=True)
def small_token_budget(monkeypatch: pytest.MonkeyPatch) -> None:
    """Random Whisper weights never emit end-of-text; keep generation short."""
    monkeypatch.setattr(tasr, "MAX_TOKENS_PER_SECOND", 1.0)
    monkeypatch.setattr(tasr, "MAX_TOKENS_SLACK", 4)


def _noise(seconds: float, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return (rng.standard_normal(int(seconds * 16_000)) * 0.1).astype(np.float32)


def test_whisper_from_local_dir(whisper_dir: Path) -> None:
    asr = TransformersAsr(whisper_dir)
    assert isinstance(asr, AsrModel)
    assert asr.kind == "whisper" and not asr.multilingual
    requests = [
        DecodeRequest(audio=_noise(1.0)),
        DecodeRequest(audio=_noise(2.0, 1), prefix="hello world"),
        DecodeRequest(audio=_noise(0.5, 2), prompt="earlier words", word_timestamps=True),
        DecodeRequest(audio=_noise(1.5, 3)),
    ]
    results = asr.decode(requests)
    assert len(results) == len(requests)
    for req, res in zip(requests, results, strict=True):
        assert isinstance(res, DecodeResult) and isinstance(res.text, str)
        seconds = len(req.audio) / 16_000
        assert res.audio_seconds == pytest.approx(seconds)
        assert res.compute_seconds > 0
        budget = int(np.ceil(seconds)) + 4
        assert len(asr.tokenizer.encode(res.text, add_special_tokens=False)) <= budget + 8
    assert results[1].text.startswith("hello world")
    assert asr.decode([]) == []


def test_whisper_transcribe_chunks_long_audio(whisper_dir: Path) -> None:
    asr = TransformersAsr(whisper_dir)
    audio = _noise(31.0)
    result = asr.transcribe(audio, TranscribeOptions(beam_size=1, initial_prompt="hi"))
    assert result.duration == pytest.approx(31.0)
    assert result.language == "en"
    assert 1 <= len(result.segments) <= 2
    assert [s.id for s in result.segments] == list(range(len(result.segments)))
    for seg in result.segments:
        assert 0.0 <= seg.start < seg.end <= 31.0
        assert seg.start in (0.0, 30.0)
    with pytest.raises(ValueError, match="30"):
        asr.decode([DecodeRequest(audio=audio)])


def test_whisper_through_registry(whisper_dir: Path) -> None:
    registry.clear_cache()
    model = registry.load_asr(str(whisper_dir))
    assert isinstance(model, TransformersAsr)
    assert registry.load_asr(str(whisper_dir)) is model
    assert registry.load_asr(f"transformers:{whisper_dir}") is model
    registry.clear_cache()


def test_ctc_from_local_dir(ctc_dir: Path) -> None:
    asr = TransformersAsr(ctc_dir)
    assert asr.kind == "ctc"
    requests = [
        DecodeRequest(audio=_noise(1.0)),
        DecodeRequest(audio=_noise(2.5, 1), word_timestamps=True),
    ]
    results = asr.decode(requests)
    assert len(results) == 2
    assert results[0].words == ()
    for w in results[1].words:
        assert 0.0 <= w.start <= w.end <= 2.5
    for res, req in zip(results, requests, strict=True):
        assert res.audio_seconds == pytest.approx(len(req.audio) / 16_000)
        assert set(res.text) <= set("abcdefghijklmnopqrstuvwxyz' ")
    result = asr.transcribe(_noise(31.0), TranscribeOptions(word_timestamps=True))
    assert result.duration == pytest.approx(31.0)
    for seg in result.segments:
        assert 0.0 <= seg.start < seg.end <= 31.0
        for w in seg.words:
            assert seg.start <= w.start <= w.end <= seg.end + 1e-6
    model = registry.load_asr(f"transformers:{ctc_dir}", cache=False)
    assert isinstance(model, TransformersAsr) and model.kind == "ctc"


def test_missing_model_raises_not_found(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(ModelNotFoundError, match="no-such-owner/no-such-model"):
        TransformersAsr("no-such-owner/no-such-model")
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(ModelNotFoundError):
        TransformersAsr(empty)
