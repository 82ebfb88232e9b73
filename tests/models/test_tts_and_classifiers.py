"""The embedded Piper voice, the Silero speech classifier and VADER sentiment."""

from __future__ import annotations

import jiwer
import numpy as np
import pytest
import soxr

from tests import speech
from tests.e2e.console import normalise
from voxwire.models.faster_whisper_asr import FasterWhisperAsr
from voxwire.models.interfaces import (
    AudioClassifier,
    SpeechSynthesizer,
    TextClassifier,
    TranscribeOptions,
)
from voxwire.models.piper_tts import PiperTts
from voxwire.models.registry import EMBEDDED_MODELS, ModelSpec, load_model
from voxwire.models.speech_classifier import SpeechClassifier
from voxwire.models.vader_sentiment import VaderSentiment


@pytest.fixture(scope="module")
def tts() -> PiperTts:
    return PiperTts()


def softmax(logits: np.ndarray) -> np.ndarray:
    e = np.exp(logits - logits.max())
    return e / e.sum()


def test_piper_yields_one_chunk_per_sentence_and_is_understood(tts: PiperTts) -> None:
    assert isinstance(tts, SpeechSynthesizer)
    text = "The kettle is boiling. Please bring two cups! Is the milk in the fridge?"
    chunks = list(tts.synthesize(text))
    assert len(chunks) == 3
    assert all(c.dtype == np.float32 and 0.5 * tts.sample_rate < len(c) for c in chunks)
    audio = soxr.resample(np.concatenate(chunks), tts.sample_rate, 16_000).astype(np.float32)
    heard = FasterWhisperAsr().transcribe(audio, TranscribeOptions(beam_size=1)).text
    assert jiwer.wer(normalise(text), normalise(heard)) <= 0.1


def test_piper_speed_and_voice(tts: PiperTts) -> None:
    text = "Speed changes the length of speech."
    normal = sum(len(c) for c in tts.synthesize(text))
    fast = sum(len(c) for c in tts.synthesize(text, speed=2.0))
    slow = sum(len(c) for c in tts.synthesize(text, speed=0.5))
    assert 0.45 < fast / normal < 0.7  # phonemes shrink; edges of silence less so
    assert 1.4 < slow / normal < 2.1
    assert list(tts.synthesize(text, voice=tts.voices[0]))
    with pytest.raises(ValueError, match="unknown voice"):
        list(tts.synthesize(text, voice="nobody"))
    with pytest.raises(ValueError, match="speed"):
        list(tts.synthesize(text, speed=10.0))


def test_piper_generator_is_lazy(tts: PiperTts) -> None:
    generator = tts.synthesize("One. Two. Three.")
    first = next(generator)
    assert len(first) > 0
    generator.close()  # a client that went away: nothing else is synthesised


def test_speech_classifier_tells_speech_from_silence() -> None:
    classifier = SpeechClassifier()
    assert isinstance(classifier, AudioClassifier)
    talk = speech.utterances([speech.SENTENCES[0]], lead_s=0.5, tail_s=0.5)
    quiet = speech.silence(3.0)
    noise = (np.random.default_rng(0).standard_normal(48_000) * 0.01).astype(np.float32)
    assert softmax(classifier.logits(talk))[0] > 0.9
    assert softmax(classifier.logits(quiet))[1] > 0.9
    assert softmax(classifier.logits(noise))[1] > 0.5
    assert softmax(classifier.logits(np.zeros(10, dtype=np.float32)))[1] > 0.9  # too short


@pytest.mark.parametrize(
    ("text", "label"),
    [
        ("I love this wonderful day, it makes me so happy.", "positive"),
        ("This is a terrible awful day and I hate it.", "negative"),
        ("The train leaves at seven from platform two.", "neutral"),
    ],
)
def test_vader_labels(text: str, label: str) -> None:
    vader = VaderSentiment()
    assert isinstance(vader, TextClassifier)
    probabilities = softmax(vader.logits(text))
    assert vader.labels[int(np.argmax(probabilities))] == label
    assert probabilities.sum() == pytest.approx(1.0)


def test_every_embedded_model_loads() -> None:
    for spec in EMBEDDED_MODELS:
        assert load_model(spec) is not None, spec.id


def test_a_backend_that_does_not_do_the_task_is_refused() -> None:
    from voxwire.models.errors import ModelNotFoundError

    with pytest.raises(ModelNotFoundError, match="does not do"):
        load_model(ModelSpec("x", "text-to-speech", "vader"))


def test_piper_speaks_text_with_control_characters(tts: PiperTts) -> None:
    """espeak-ng refuses NUL; such characters are spoken as spaces, not a crash."""
    chunks = list(tts.synthesize("Hello\x00there. The bell\x07 rings."))
    assert len(chunks) == 2
