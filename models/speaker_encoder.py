"""Speaker embeddings with Resemblyzer's GE2E voice encoder (256-d, on the CPU).

Resemblyzer's weights ship in its wheel (``resemblyzer/pretrained.pt``). Audio is
prepared as Resemblyzer's ``preprocess_wav`` does (volume raised to -30 dBFS, long
silences cut with webrtcvad), but silent or too short input raises a clear
:class:`ValueError` instead of producing NaNs. resemblyzer imports webrtcvad, which
needs ``pkg_resources`` (setuptools < 81).
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
import numpy.typing as npt

from voxwire.models.errors import ModelLoadFailed, ModelNotFoundError
from voxwire.models.interfaces import SAMPLE_RATE, AudioArray

DIMENSION = 256
MIN_SPEECH_SECONDS = 0.5
"""Least speech left after trimming silences (Resemblyzer's partials are 1.6 s)."""
SILENCE_DBFS = -60.0
"""Audio whose RMS level stays below this is taken as silence."""
_TARGET_DBFS = -30.0


def _import_resemblyzer() -> Any:
    try:
        with warnings.catch_warnings():
            # scipy.ndimage.morphology and pkg_resources (webrtcvad) deprecation notices.
            warnings.simplefilter("ignore", DeprecationWarning)
            warnings.simplefilter("ignore", UserWarning)
            import resemblyzer
    except ImportError as exc:
        raise ModelNotFoundError(
            f"resemblyzer cannot be imported ({exc}); install resemblyzer and setuptools<81"
        ) from exc
    return resemblyzer


class ResemblyzerEncoder:
    """:class:`~voxwire.models.interfaces.SpeakerEncoder` on Resemblyzer's pretrained encoder."""

    dimension = DIMENSION

    def __init__(self, name: str = "resemblyzer", device: str = "cpu") -> None:
        resemblyzer = _import_resemblyzer()
        self.name = name
        self._audio: Any = resemblyzer.audio
        try:
            self._encoder: Any = resemblyzer.VoiceEncoder(
                device="cpu" if device == "auto" else device, verbose=False
            )
        except Exception as exc:
            raise ModelLoadFailed(f"cannot load the Resemblyzer voice encoder: {exc}") from exc
        self._encoder.eval()
        # librosa's first melspectrogram costs about a second (lazy imports, caches):
        # pay it at load time rather than on the first request.
        noise = np.random.default_rng(0).standard_normal(SAMPLE_RATE * 2).astype(np.float32)
        self._encoder.embed_utterance(noise * np.float32(0.01))

    def prepare(self, audio: AudioArray) -> npt.NDArray[np.float32]:
        """Volume-normalised 16 kHz speech with long silences removed.

        Raises ValueError for audio that is not finite, silent, or holds less than
        :data:`MIN_SPEECH_SECONDS` of speech.
        """
        wav = np.asarray(audio, dtype=np.float32).reshape(-1)
        if not np.all(np.isfinite(wav)):
            raise ValueError("audio holds NaN or infinite samples")
        if wav.size < MIN_SPEECH_SECONDS * SAMPLE_RATE:
            raise ValueError(
                f"audio too short for a speaker embedding: {wav.size / SAMPLE_RATE:.2f} s "
                f"(need at least {MIN_SPEECH_SECONDS} s of speech)"
            )
        rms = float(np.sqrt(np.mean(np.square(wav, dtype=np.float64))))
        level = 20 * np.log10(rms) if rms > 0 else -np.inf
        if level < SILENCE_DBFS:
            raise ValueError(f"audio is silent (level {level:.0f} dBFS): no voice to embed")
        if level < _TARGET_DBFS:
            wav = wav * np.float32(10 ** ((_TARGET_DBFS - level) / 20))
        wav = np.clip(wav, -1.0, 1.0)
        speech = np.asarray(self._audio.trim_long_silences(wav), dtype=np.float32)
        if speech.size < MIN_SPEECH_SECONDS * SAMPLE_RATE:
            raise ValueError(
                f"too little speech for a speaker embedding: {speech.size / SAMPLE_RATE:.2f} s "
                f"after removing silence (need at least {MIN_SPEECH_SECONDS} s)"
            )
        return speech

    def embed(self, audio: AudioArray) -> npt.NDArray[np.float32]:
        """An L2-normalised 256-d voice embedding of 16 kHz speech (ValueError: no speech)."""
        speech = self.prepare(audio)
        embedding = self._encoder.embed_utterance(speech)
        vector = np.asarray(embedding, dtype=np.float32).reshape(-1)
        norm = float(np.linalg.norm(vector))
        if not np.isfinite(norm) or norm == 0.0:
            raise ValueError("the voice encoder produced no embedding for this audio")
        return vector / np.float32(norm)
