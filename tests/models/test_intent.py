"""Zero-shot intents with all-MiniLM-L6-v2: the default intents and intents files."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from voxwire.models.errors import ModelLoadFailed, ModelNotFoundError
from voxwire.models.intent import DEFAULT_INTENTS, ZeroShotIntent
from voxwire.models.interfaces import TextClassifier
from voxwire.models.registry import EMBEDDED_MODELS, ModelSpec, load_model


@pytest.fixture(scope="module")
def intent() -> ZeroShotIntent:
    model = load_model(next(s for s in EMBEDDED_MODELS if s.id == "intent"))
    assert isinstance(model, ZeroShotIntent)
    return model


def softmax(logits: np.ndarray) -> np.ndarray:
    e = np.exp(logits - logits.max())
    return e / e.sum()


@pytest.mark.parametrize(
    ("text", "label"),
    [
        ("what's the weather tomorrow", "weather"),
        ("is it going to snow this weekend", "weather"),
        ("what time is it in Tokyo", "time"),
        ("what's today's date", "time"),
        ("set a timer for twenty minutes", "timer"),
        ("stop the countdown", "timer"),
        ("play something by the Beatles", "music"),
        ("next song please", "music"),
        ("turn off the living room lights", "lights"),
        ("switch on the lamp in the hall", "lights"),
        ("good afternoon", "greeting"),
        ("hi, nice to see you", "greeting"),
    ],
)
def test_phrases_map_to_their_intent(intent: ZeroShotIntent, text: str, label: str) -> None:
    logits = intent.logits(text)
    assert logits.dtype == np.float32 and logits.shape == (len(intent.labels),)
    assert intent.labels[int(np.argmax(logits))] == label
    assert softmax(logits).max() > 0.5


def test_labels_and_empty_text(intent: ZeroShotIntent) -> None:
    assert isinstance(intent, TextClassifier)
    assert (
        intent.labels
        == tuple(DEFAULT_INTENTS)
        == (
            "weather",
            "time",
            "timer",
            "music",
            "lights",
            "greeting",
        )
    )
    assert not intent.logits("   ").any()  # nothing said: a uniform softmax
    # The similarity of an example phrase with itself is 1.
    assert intent.similarities("what time is it")[1] == pytest.approx(1.0, abs=1e-4)


def test_a_custom_intents_file(tmp_path: Path) -> None:
    toml = tmp_path / "intents.toml"
    toml.write_text(
        'shopping = ["add milk to the shopping list", "we need more eggs"]\n'
        'call = ["call mum", "phone the office"]\n'
    )
    model = load_model(ModelSpec("home", "text-classification", "minilm-intent", str(toml)))
    assert isinstance(model, ZeroShotIntent)
    assert model.name == "home" and model.labels == ("shopping", "call")
    assert model.labels[int(np.argmax(model.logits("put bread on the list")))] == "shopping"
    assert model.labels[int(np.argmax(model.logits("ring my brother")))] == "call"
    as_json = tmp_path / "intents.json"
    as_json.write_text(json.dumps(model.intents))
    again = load_model(ModelSpec("j", "text-classification", "minilm-intent", str(as_json)))
    assert isinstance(again, ZeroShotIntent) and again.intents == model.intents


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("bad.toml", "weather = [", "not valid TOML"),
        ("bad.json", "{", "not valid JSON"),
        ("list.json", '["a", "b"]', "expected a table of intents"),
        ("empty.json", "{}", "expected a table of intents"),
        ("str.json", '{"weather": "rain"}', "intent 'weather': expected a list"),
        ("none.json", '{"weather": []}', "non-empty list of phrases"),
        ("num.toml", "weather = [1, 2]", "non-empty list of phrases"),
        ("intents.yaml", "weather: [rain]", "is .toml or .json"),
    ],
)
def test_a_bad_intents_file_is_a_clear_error(
    tmp_path: Path, name: str, content: str, message: str
) -> None:
    path = tmp_path / name
    path.write_text(content)
    with pytest.raises(ModelLoadFailed, match=message) as raised:
        load_model(ModelSpec("x", "text-classification", "minilm-intent", str(path)))
    assert str(path) in str(raised.value)


def test_a_missing_intents_file() -> None:
    with pytest.raises(ModelNotFoundError, match="intents file not found"):
        load_model(ModelSpec("x", "text-classification", "minilm-intent", "/nowhere/i.toml"))
