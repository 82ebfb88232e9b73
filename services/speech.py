"""Speech synthesis, one way for every caller: :func:`speech_chunks` drives a speech model
(the requested voice mapped by :func:`~voxwire.services.voices.model_voice`); the speech
endpoint and ``voxwire speak -o`` encode its chunks through a :class:`SpeechJob`,
``voxwire speak`` plays them, and spoken replies take one sentence at a time with
:func:`synthesize_sentence`. All of it runs on the model's worker (or the command's
thread), never on the event loop."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np

from voxwire.models.interfaces import AudioArray, SpeechSynthesizer
from voxwire.services.audio_encoding import AudioFormat, StreamingEncoder
from voxwire.services.voices import model_voice


def speech_chunks(
    model: SpeechSynthesizer, text: str, *, voice: str | None, speed: float
) -> Iterator[AudioArray]:
    """`text` spoken by `model`, a chunk (a sentence) at a time, at ``model.sample_rate``."""
    return iter(model.synthesize(text, voice=model_voice(voice, model.voices), speed=speed))


def synthesize_sentence(
    model: SpeechSynthesizer, *, sentence: str, voice: str | None, speed: float
) -> tuple[AudioArray, int]:
    """One sentence's audio, whole, and its rate."""
    chunks = list(speech_chunks(model, sentence, voice=voice, speed=speed))
    audio = np.concatenate(chunks) if chunks else np.zeros(0, np.float32)
    return audio.astype(np.float32, copy=False), model.sample_rate


class SpeechJob:
    """One speech request's state, advanced one sentence per call on the TTS worker."""

    def __init__(self, text: str, voice: str | None, speed: float, fmt: AudioFormat) -> None:
        self.text = text
        self.voice = voice
        self.speed = speed
        self.format = fmt
        self.sentences = 0
        self.audio_seconds = 0.0
        self._chunks: Iterator[AudioArray] = iter(())
        self._encoder: StreamingEncoder | None = None
        self._done = False

    def step(self, model: SpeechSynthesizer) -> bytes | None:
        """Synthesise and encode the next sentence; the file's tail after the last;
        None once everything was returned. Runs on the worker thread."""
        if self._done:
            return None
        if self._encoder is None:
            self._encoder = StreamingEncoder(self.format, input_rate=model.sample_rate)
            self._chunks = speech_chunks(model, self.text, voice=self.voice, speed=self.speed)
        chunk = next(self._chunks, None)
        if chunk is None:
            self._done = True
            return self._encoder.finish()
        self.sentences += 1
        self.audio_seconds += len(chunk) / model.sample_rate
        return self._encoder.feed(chunk)
