"""Shared fixtures: known speech files made with the embedded Piper voice."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests import speech


@pytest.fixture(scope="session")
def speech_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("speech")


@pytest.fixture(scope="session")
def three_sentences_wav(speech_dir: Path) -> Path:
    """speech.SENTENCES separated by 1 s of silence, 16 kHz PCM16 WAV."""
    return speech.write_wav(speech_dir / "three.wav", speech.utterances(speech.SENTENCES))


@pytest.fixture(scope="session")
def one_sentence_wav(speech_dir: Path) -> Path:
    return speech.write_wav(
        speech_dir / "one.wav", speech.utterances(speech.SENTENCES[:1], lead_s=0.3, tail_s=0.7)
    )
