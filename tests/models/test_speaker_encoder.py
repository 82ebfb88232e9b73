"""Resemblyzer speaker embeddings on two synthetic voices: Piper's joe and espeak-ng."""

from __future__ import annotations

import numpy as np
import pytest

from tests import speech
from voxwire.models.interfaces import SpeakerEncoder
from voxwire.models.registry import EMBEDDED_MODELS, ModelSpec, load_model
from voxwire.models.speaker_encoder import ResemblyzerEncoder

TEXTS = (
    "The quick brown fox jumps over the lazy dog.",
    "Please turn on the lights in the kitchen.",
    "What time does the train leave tomorrow morning?",
)


@pytest.fixture(scope="module")
def encoder() -> ResemblyzerEncoder:
    model = load_model(next(s for s in EMBEDDED_MODELS if s.id == "resemblyzer"))
    assert isinstance(model, ResemblyzerEncoder)
    return model


def test_embedding_shape_and_norm(encoder: ResemblyzerEncoder) -> None:
    assert isinstance(encoder, SpeakerEncoder)
    assert encoder.dimension == 256 and encoder.name == "resemblyzer"
    vector = encoder.embed(speech.synthesize(TEXTS[0]))
    assert vector.dtype == np.float32 and vector.shape == (256,)
    assert abs(float(np.linalg.norm(vector)) - 1.0) < 1e-5


def test_same_voice_is_closer_than_another_voice(encoder: ResemblyzerEncoder) -> None:
    joe = np.stack([encoder.embed(speech.synthesize(t)) for t in TEXTS])
    robot = np.stack([encoder.embed(speech.espeak(t)) for t in TEXTS])
    within = [
        float(v @ w) for group in (joe, robot) for i, v in enumerate(group) for w in group[i + 1 :]
    ]
    across = [float(v @ w) for v in joe for w in robot]
    assert min(within) > max(across) + 0.1, (within, across)


def test_silent_or_short_audio_is_a_clear_error(encoder: ResemblyzerEncoder) -> None:
    with pytest.raises(ValueError, match="silent"):
        encoder.embed(speech.silence(2.0))
    with pytest.raises(ValueError, match="too short"):
        encoder.embed(speech.synthesize("Hi.")[:4000])
    clipped_word = np.concatenate([speech.silence(2.0), speech.synthesize("Hi.")[:6000]])
    with pytest.raises(ValueError, match="too little speech"):
        encoder.embed(clipped_word)
    with pytest.raises(ValueError, match="NaN"):
        encoder.embed(np.full(16_000, np.nan, dtype=np.float32))


def test_resemblyzer_takes_no_source() -> None:
    from voxwire.models.errors import ModelNotFoundError

    with pytest.raises(ModelNotFoundError, match="embedded encoder"):
        load_model(ModelSpec("x", "speaker-embedding", "resemblyzer", source="/some/model.pt"))
