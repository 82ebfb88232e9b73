"""`voxwire classify`, run as the installed console script."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests import speech
from tests.e2e.console import run


@pytest.fixture(scope="module")
def jarvis_wav(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("classify") / "jarvis.wav"
    audio = speech.utterances(["Hey Jarvis, what's the weather like?"], lead_s=0.3, tail_s=0.5)
    return speech.write_wav(path, audio)


def test_wake_words_on_a_file_as_json(jarvis_wav: Path) -> None:
    result = run("classify", jarvis_wav, "--model", "wake-words", "--format", "json", timeout=120)
    assert result.returncode == 0, result.stderr
    answer = json.loads(result.stdout)
    assert answer["model"] == "wake-words" and answer["task"] == "audio-classification"
    assert answer["function_to_apply"] == "sigmoid"  # wake words are multi-label
    labels = answer["labels"]
    assert len(labels) == 6 and labels[0]["label"] == "hey_jarvis"
    assert labels[0]["score"] >= 0.5
    assert [x["score"] for x in labels] == sorted((x["score"] for x in labels), reverse=True)


def test_intent_of_a_text_and_the_default_audio_classifier(one_sentence_wav: Path) -> None:
    result = run("classify", "--model", "intent", "--text", "what's the weather tomorrow")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert len(lines) == 6 and lines[0].split()[0] == "weather"
    assert 0.5 < float(lines[0].split()[1]) <= 1.0
    result = run("classify", one_sentence_wav, "--top-k", "1")  # silero-speech by default
    assert result.returncode == 0, result.stderr
    assert len(result.stdout.splitlines()) == 1 and result.stdout.split()[0] == "speech"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("{corrupt}", "-m", "wake-words"), "corrupt.wav: "),
        (("{wav}", "-m", "intent"), "classifies text: give --text"),
        (("--text", "hello", "-m", "wake-words"), "classifies audio: give an audio FILE"),
        (("--text", "hello", "-m", "resemblyzer"), "does speaker-embedding, not classification"),
        (("--text", "hello", "-m", "nope"), "unknown model 'nope'; classifiers on offer: "),
        (("--text", "  ", "-m", "vader"), "--text is empty"),
        (("{wav}", "--text", "hello"), "not both"),
        ((), "give an audio FILE"),
    ],
)
def test_bad_input_is_one_error_line(
    tmp_path: Path, jarvis_wav: Path, args: tuple[str, ...], message: str
) -> None:
    corrupt = tmp_path / "corrupt.wav"
    corrupt.write_bytes(b"RIFF....WAVEfmt nonsense" * 10)
    values = [a.format(corrupt=corrupt, wav=jarvis_wav) for a in args]
    result = run("classify", *values, timeout=60)
    assert result.returncode == 1, (result.stdout, result.stderr)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("voxwire: error: "), result.stderr
    assert message in lines[0]
    assert not result.stdout
