"""The sound side of `voxwire mic`: capturing, playing and pacing PCM16 audio.

The microphone (:func:`microphone`) hands PCM16 mono blocks to the client; an input
file (:func:`load_input_file`) stands in for it and is sent at real-time pace
(:func:`stream_pcm`). Reply audio goes to a :class:`Playback`: a sound device
(:class:`DevicePlayback`, fed from a bounded :class:`PcmBuffer`) or, with
`--no-playback`, a clock that only keeps time (:class:`ClockPlayback`). Half duplex
by default: from a reply's first audio until that audio has played
(:class:`DuplexGate`), microphone blocks are dropped (a file pauses instead, so none
of it is lost), or the speaker would talk to itself. sounddevice is imported only
when a device is used, so files and `--no-playback` work without PortAudio.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import threading
import time
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any, Final, Protocol

import numpy as np

from voxwire.demos.mic_options import BLOCK_MS, MicError, MicOptions
from voxwire.engine.errors import VoxwireError
from voxwire.services.sound_devices import import_sounddevice

PLAYBACK_MAX_SECONDS: Final = 120.0
"""Reply audio waiting to be played; beyond that new audio is dropped (and counted)."""
PLAYBACK_TAIL_S: Final = 0.15
"""After the last sample left for the device, the room still hears it for a moment."""

Clock = Callable[[], float]


# -- playback -----------------------------------------------------------------------------


class Playback(Protocol):
    """Where reply audio goes: a sound device, or a clock that stands in for one."""

    rate: int

    def write(self, pcm: bytes) -> None:
        """Queue PCM16 mono audio at `rate`."""

    def clear(self) -> None:
        """Drop all queued audio at once (barge-in)."""

    def busy(self) -> bool:
        """True while queued audio is still being heard."""

    @property
    def dropped_samples(self) -> int:
        """Samples that did not fit the bounded buffer."""

    async def drain(self) -> None:
        """Return once everything queued has been heard."""

    def close(self) -> None:
        """Stop at once and release the device."""


class ClockPlayback:
    """A speaker that only keeps time: queued audio 'plays' in real time on `clock`.

    Used with `--no-playback`, so that half duplex still pauses for as long as the
    reply would have taken to hear.
    """

    def __init__(self, rate: int, clock: Clock = time.monotonic) -> None:
        self.rate = rate
        self._clock = clock
        self._ends_at = 0.0
        self.samples_written = 0

    def write(self, pcm: bytes) -> None:
        samples = len(pcm) // 2
        self.samples_written += samples
        self._ends_at = max(self._ends_at, self._clock()) + samples / self.rate

    def clear(self) -> None:
        self._ends_at = min(self._ends_at, self._clock())

    def busy(self) -> bool:
        return self._clock() < self._ends_at

    @property
    def pending_seconds(self) -> float:
        """Seconds of queued audio not yet 'heard'."""
        return max(0.0, self._ends_at - self._clock())

    @property
    def dropped_samples(self) -> int:
        return 0

    async def drain(self) -> None:
        return None

    def close(self) -> None:
        self.clear()


class PcmBuffer:
    """A bounded FIFO of PCM16 bytes: the event loop writes, the audio thread reads.

    Audio beyond `max_bytes` is dropped and counted rather than queued without end.
    """

    def __init__(self, max_bytes: int, clock: Clock = time.monotonic) -> None:
        self.max_bytes = max_bytes - max_bytes % 2
        self._data = bytearray()
        self._lock = threading.Lock()
        self._clock = clock
        self.dropped_bytes = 0
        self.read_bytes = 0
        self.drained_at = -math.inf
        """When the last queued byte was handed to the device."""

    @property
    def queued_bytes(self) -> int:
        with self._lock:
            return len(self._data)

    def write(self, pcm: bytes) -> int:
        """Queue `pcm`; returns the bytes accepted (the rest is dropped)."""
        with self._lock:
            room = self.max_bytes - len(self._data)
            accepted = max(0, min(room, len(pcm)))
            accepted -= accepted % 2
            self._data += pcm[:accepted]
            self.dropped_bytes += len(pcm) - accepted
            return accepted

    def read_into(self, out: Any) -> int:
        """Fill the writable buffer `out` with queued audio and silence after it; returns
        the bytes of audio copied. Runs on the audio thread."""
        size = len(out)
        with self._lock:
            n = min(size, len(self._data))
            out[:n] = self._data[:n]
            del self._data[:n]
            if n and not self._data:
                self.drained_at = self._clock()
            self.read_bytes += n
        if n < size:
            out[n:size] = bytes(size - n)
        return n

    def clear(self) -> int:
        """Drop everything queued; returns the bytes dropped."""
        with self._lock:
            dropped = len(self._data)
            self._data.clear()
            if dropped:
                self.drained_at = self._clock()
            return dropped


class DevicePlayback:
    """Reply audio played on a sound device by a sounddevice callback stream."""

    def __init__(
        self,
        rate: int,
        device: int | str | None = None,
        *,
        max_seconds: float = PLAYBACK_MAX_SECONDS,
        block_ms: int = BLOCK_MS,
    ) -> None:
        sd = import_sounddevice("pass --no-playback to run without a speaker")
        self.rate = rate
        self.buffer = PcmBuffer(int(rate * max_seconds) * 2)
        try:
            self._stream = sd.RawOutputStream(
                samplerate=rate,
                channels=1,
                dtype="int16",
                device=device,
                blocksize=rate * block_ms // 1000,
                callback=self._callback,
            )
            self._stream.start()
        except (sd.PortAudioError, ValueError) as exc:
            raise MicError(
                f"cannot play audio: no usable sound output device ({exc}); "
                "pass --no-playback to run without a speaker"
            ) from None
        self._latency = float(self._stream.latency)

    def _callback(self, outdata: Any, _frames: int, _time: Any, _status: Any) -> None:
        self.buffer.read_into(outdata)

    def write(self, pcm: bytes) -> None:
        self.buffer.write(pcm)

    def clear(self) -> None:
        self.buffer.clear()

    def busy(self) -> bool:
        if self.buffer.queued_bytes:
            return True
        return time.monotonic() < self.buffer.drained_at + self._latency + PLAYBACK_TAIL_S

    @property
    def dropped_samples(self) -> int:
        return self.buffer.dropped_bytes // 2

    async def drain(self) -> None:
        limit = time.monotonic() + self.buffer.queued_bytes / 2 / self.rate + 2.0
        while time.monotonic() < limit:
            if not self.busy():
                return
            await asyncio.sleep(0.05)

    def close(self) -> None:
        self.buffer.clear()
        with contextlib.suppress(Exception):
            self._stream.stop()
        with contextlib.suppress(Exception):
            self._stream.close()


# -- half duplex --------------------------------------------------------------------------


class DuplexGate:
    """Whether microphone audio may go to the server now.

    Half duplex: closed from a reply's first audio delta until that reply's audio
    is complete (`response.output_audio.done` or `response.done`) and has been
    heard (`playback.busy()` is false). Full duplex: always open.
    """

    def __init__(self, playback: Playback, *, full_duplex: bool = False) -> None:
        self.playback = playback
        self.full_duplex = full_duplex
        self._streaming: set[str] = set()

    def reply_audio(self, response_id: str) -> None:
        """A reply's audio is arriving."""
        self._streaming.add(response_id)

    def reply_audio_done(self, response_id: str) -> None:
        """No more audio will arrive for this reply."""
        self._streaming.discard(response_id)

    @property
    def replying(self) -> bool:
        """A reply is arriving or still being heard."""
        return bool(self._streaming) or self.playback.busy()

    @property
    def open(self) -> bool:
        return self.full_duplex or not self.replying


# -- audio sources --------------------------------------------------------------------------


def load_input_file(path: Path, rate: int) -> bytes:
    """Decode any audio file (PyAV) to PCM16 LE mono at `rate` (soxr)."""
    import soxr

    from voxwire.engine.audio import MODEL_RATE, float32_to_pcm16
    from voxwire.services.media import decode_audio

    try:
        audio = decode_audio(path)
    except VoxwireError as exc:
        raise MicError(f"{path}: {exc.message}") from None
    if rate != MODEL_RATE:
        audio = soxr.resample(audio, MODEL_RATE, rate).astype(np.float32)
    return float32_to_pcm16(audio)


async def stream_pcm(
    pcm: bytes,
    send: Callable[[bytes], Awaitable[None]],
    gate: DuplexGate,
    *,
    rate: int,
    block_ms: int = BLOCK_MS,
    speed: float = 1.0,
    poll_s: float = 0.02,
    on_wait: Callable[[], None] | None = None,
) -> float:
    """Send `pcm` in blocks at `speed` times real time against an absolute clock.

    While the gate is closed nothing is sent and the clock is held, so no audio is
    lost and none is sent in a burst afterwards. Returns the seconds spent paused.
    `on_wait` is called on every poll while paused (a stall check may raise there).
    """
    step = max(2, rate * block_ms // 1000 * 2)
    started = time.monotonic()
    sent_s = 0.0
    paused_s = 0.0
    for offset in range(0, len(pcm), step):
        if speed > 0:
            delay = started + sent_s / speed - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
        if not gate.open:
            paused_at = time.monotonic()
            while not gate.open:
                if on_wait is not None:
                    on_wait()
                await asyncio.sleep(poll_s)
            waited = time.monotonic() - paused_at
            started += waited
            paused_s += waited
        block = pcm[offset : offset + step]
        await send(block)
        sent_s += len(block) / 2 / rate
    return paused_s


def level_dbfs(block: bytes) -> float:
    """The RMS level of a PCM16 block in dB full scale (-120 for silence)."""
    samples = np.frombuffer(block, dtype="<i2").astype(np.float32) / 32768.0
    if samples.size == 0:
        return -120.0
    rms = float(np.sqrt(np.mean(samples * samples)))
    return max(-120.0, 20.0 * math.log10(rms)) if rms > 0 else -120.0


@contextlib.contextmanager
def microphone(
    rate: int, block_ms: int, device: int | str | None, push: Callable[[bytes], None]
) -> Iterator[None]:
    """Capture PCM16 mono blocks and hand each to `push` (on the event loop's thread)."""
    sd = import_sounddevice("pass --input-file FILE to stream a file instead")
    loop = asyncio.get_running_loop()

    def callback(indata: Any, _frames: int, _time: Any, _status: Any) -> None:
        with contextlib.suppress(RuntimeError):  # the loop is closing
            loop.call_soon_threadsafe(push, bytes(indata))

    try:
        stream = sd.RawInputStream(
            samplerate=rate,
            channels=1,
            dtype="int16",
            blocksize=rate * block_ms // 1000,
            device=device,
            callback=callback,
        )
        stream.start()
    except (sd.PortAudioError, ValueError) as exc:
        raise MicError(
            f"cannot open a microphone ({exc}); pass --input-file FILE to stream a file instead"
        ) from None
    try:
        yield
    finally:
        with contextlib.suppress(Exception):
            stream.stop()
        stream.close()


def check_devices(options: MicOptions) -> None:
    """Fail before connecting when a needed sound device is missing."""
    need_input = options.input_file is None
    if not (need_input or options.playback):
        return
    hints = []
    if need_input:
        hints.append("--input-file FILE to stream a file")
    if options.playback:
        hints.append("--no-playback to run without a speaker")
    hint = "pass " + " and ".join(hints)
    sd = import_sounddevice(hint)
    kinds = (["input"] if need_input else []) + (["output"] if options.playback else [])
    for kind in kinds:
        try:
            sd.query_devices(options.device, kind=kind)
        except (sd.PortAudioError, ValueError) as exc:
            what = "microphone" if kind == "input" else "sound output device"
            raise MicError(f"no {what} ({exc}); {hint}") from None
