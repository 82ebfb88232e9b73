"""Silero VAD as a two-label audio classifier: `speech` / `no_speech` for a whole clip."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from voxwire.models.interfaces import AudioArray
from voxwire.models.silero_vad import SileroVad

_EPS = 1e-6


class SpeechClassifier:
    """Scores a clip by how much of it Silero hears as speech.

    The speech probability of a clip is the mean of its two most confident
    seconds' frame probabilities (the 90th percentile of frames, so a short
    word in a long silence still counts); logits are log-probabilities, so a
    softmax gives back [p, 1 - p].
    """

    labels = ("speech", "no_speech")

    def __init__(self, name: str = "silero-speech") -> None:
        self.name = name

    def speech_probability(self, audio: AudioArray) -> float:
        vad = SileroVad()  # a fresh recurrent state per clip
        frame = vad.frame_samples
        n = len(audio) // frame
        if n == 0:
            return 0.0
        frames = np.asarray(audio[: n * frame], dtype=np.float32).reshape(n, frame)
        probabilities = np.array([vad.probability(f) for f in frames], dtype=np.float32)
        return float(np.percentile(probabilities, 90))

    def logits(self, audio: AudioArray) -> npt.NDArray[np.float32]:
        p = min(max(self.speech_probability(audio), _EPS), 1.0 - _EPS)
        return np.log(np.array([p, 1.0 - p], dtype=np.float32))
