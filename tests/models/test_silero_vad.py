"""Silero VAD through ONNX Runtime on known Piper speech."""

from __future__ import annotations

import numpy as np
import pytest

from tests import speech
from voxwire.models.interfaces import SpeechProbability
from voxwire.models.silero_vad import FRAME_SAMPLES, SileroVad, load_session


def _frames(audio: np.ndarray) -> list[np.ndarray]:
    n = len(audio) // FRAME_SAMPLES
    return [audio[i * FRAME_SAMPLES : (i + 1) * FRAME_SAMPLES] for i in range(n)]


def _probabilities(vad: SileroVad, audio: np.ndarray) -> list[float]:
    return [vad.probability(f) for f in _frames(audio)]


def test_is_a_speech_probability() -> None:
    vad = SileroVad()
    assert isinstance(vad, SpeechProbability)
    assert vad.frame_samples == 512


def test_speech_is_detected() -> None:
    probs = _probabilities(SileroVad(), speech.synthesize(speech.SENTENCES[0]))
    assert max(probs) > 0.8
    assert float(np.mean(np.array(probs) > 0.5)) > 0.6


def test_silence_and_noise_are_not_speech() -> None:
    vad = SileroVad()
    assert max(_probabilities(vad, speech.silence(2.0))) < 0.2
    vad.reset()
    noise = (np.random.default_rng(1).standard_normal(16_000 * 2) * 0.02).astype(np.float32)
    assert max(_probabilities(vad, noise)) < 0.2


def test_reset_reproduces_identical_probabilities() -> None:
    audio = speech.utterances(speech.SENTENCES[:1], lead_s=0.3, tail_s=0.5)
    vad = SileroVad()
    first = _probabilities(vad, audio)
    vad.reset()
    second = _probabilities(vad, audio)
    assert first == second


def test_instances_sharing_a_session_keep_their_own_state() -> None:
    session = load_session()
    a = SileroVad(session)
    b = SileroVad(session)
    alone = _probabilities(SileroVad(session), speech.synthesize(speech.SENTENCES[1]))
    audio = speech.synthesize(speech.SENTENCES[1])
    noise = (np.random.default_rng(2).standard_normal(len(audio)) * 0.1).astype(np.float32)
    interleaved = []
    for fa, fb in zip(_frames(audio), _frames(noise), strict=True):
        interleaved.append(a.probability(fa))
        b.probability(fb)
    assert interleaved == alone
    assert load_session() is session


@pytest.mark.parametrize("size", [0, 256, 511, 513, 1024])
def test_wrong_frame_size_raises(size: int) -> None:
    with pytest.raises(ValueError, match="512"):
        SileroVad().probability(np.zeros(size, dtype=np.float32))
