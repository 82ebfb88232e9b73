"""Incoming Wyoming audio (audio-start, audio-chunk, audio-stop) as 16 kHz float32."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
from wyoming.event import Event

from voxwire.engine.audio import MODEL_RATE, StreamResampler, pcm16_to_float32
from voxwire.engine.errors import InvalidAudio, PayloadTooLarge

Float32Array = npt.NDArray[np.float32]

MIN_RATE = 4_000
MAX_RATE = 192_000


class UnsupportedAudioFormat(InvalidAudio, code="unsupported_audio_format"):
    """A rate, sample width or channel count this server does not take."""


def audio_format(event: Event) -> tuple[int, int, int]:
    """(rate, width, channels) of an audio-start or audio-chunk, checked: any rate from
    4 to 192 kHz, 16-bit samples, mono or stereo."""
    try:
        rate, width, channels = (int(event.data[k]) for k in ("rate", "width", "channels"))
    except (KeyError, TypeError, ValueError):
        raise InvalidAudio(f"{event.type} needs integer rate, width and channels") from None
    if not MIN_RATE <= rate <= MAX_RATE:
        raise UnsupportedAudioFormat(f"rate {rate} Hz is outside {MIN_RATE}-{MAX_RATE} Hz")
    if width != 2:
        raise UnsupportedAudioFormat(f"width {width}: only 16-bit samples (width 2) are taken")
    if channels not in (1, 2):
        raise UnsupportedAudioFormat(f"channels {channels}: only mono or stereo is taken")
    return rate, width, channels


class AudioInput:
    """One audio stream: checks each chunk against the stream's format, downmixes to
    mono and resamples to 16 kHz with one stateful resampler; bounded in duration."""

    def __init__(self, start: Event, max_seconds: float) -> None:
        self.rate, self.width, self.channels = audio_format(start)
        self._resampler = StreamResampler(self.rate, MODEL_RATE, any_rate=True)
        self._max_frames = int(max_seconds * self.rate)
        self.frames = 0
        """Input frames (samples per channel) taken so far."""

    @property
    def seconds(self) -> float:
        return self.frames / self.rate

    def chunk(self, event: Event) -> Float32Array:
        """A chunk's audio at 16 kHz (the resampler may hold back a few samples)."""
        if audio_format(event) != (self.rate, self.width, self.channels):
            raise UnsupportedAudioFormat(
                "audio-chunk format differs from audio-start "
                f"({self.rate} Hz, width {self.width}, {self.channels} channel(s))"
            )
        payload = event.payload or b""
        if len(payload) % (self.width * self.channels):
            raise InvalidAudio("audio-chunk payload is not a whole number of frames")
        samples = pcm16_to_float32(payload)
        if self.channels == 2:
            samples = samples.reshape(-1, 2).mean(axis=1, dtype=np.float32)
        self.frames += len(samples)
        if self.frames > self._max_frames:
            raise PayloadTooLarge(f"audio stream longer than {self._max_frames // self.rate} s")
        return self._resampler.process(samples)

    def finish(self) -> Float32Array:
        """What the resampler still holds at audio-stop."""
        return self._resampler.flush()
