"""The audio tracks of a WebRTC call: the caller's microphone in, reply audio out.

:class:`MicrophoneReader` drains the caller's (Opus-decoded) track into a bounded
backlog and feeds it to the Realtime session as mono float32 at the session's input
rate. RTP cannot be slowed down the way TCP can, so when the session falls more than
:data:`MAX_MIC_BACKLOG_S` behind, the oldest audio is dropped and counted.

:class:`ReplyTrack` is the outgoing track and an
:class:`~voxwire.transports.realtime.peer.AudioSink`: replies are queued as PCM16 (bounded;
``write`` waits while it is full) and ``recv`` hands aiortc one 20 ms frame at 48 kHz
at a time, paced against an absolute clock, with silence when nothing is queued.
"""

from __future__ import annotations

import asyncio
import contextlib
import fractions
import logging
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import av
import numpy as np
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack

from voxwire.engine.audio import Float32Array, StreamResampler

log = logging.getLogger(__name__)

WEBRTC_RATE = 48_000
"""WebRTC's audio clock (Opus); the reply track's rate."""
FRAME_MS = 20
FRAME_SAMPLES = WEBRTC_RATE * FRAME_MS // 1000
MAX_MIC_BACKLOG_S = 2.0
"""Microphone audio waiting for the session; older audio is dropped beyond this."""
MAX_REPLY_BUFFER_S = 2.0
"""Reply audio queued for playback; `ReplyTrack.write` waits beyond this."""
MAX_CLOCK_SLIP_S = 0.2
"""When the event loop falls this far behind the reply clock, the clock restarts
rather than sending a burst of late frames."""


@dataclass
class CallCounters:
    """What a call's tracks moved; logged when the call ends."""

    mic_frames: int = 0
    mic_samples: int = 0
    """Microphone samples received, at the track's rate."""
    mic_frames_dropped: int = 0
    """Frames dropped because the session was too far behind."""
    mic_frames_undecodable: int = 0
    reply_samples_written: int = 0
    reply_samples_sent: int = 0
    reply_samples_discarded: int = 0
    """Queued reply audio dropped by `discard` (barge-in) or after the track ended."""
    reply_frames: int = 0
    """Frames sent on the reply track, silence included."""


def frame_to_mono(frame: av.AudioFrame) -> Float32Array:
    """A decoded audio frame as mono float32 samples in [-1, 1]."""
    data = frame.to_ndarray()
    channels = len(frame.layout.channels)
    planar = frame.format.is_planar
    planes = data.reshape(channels, -1) if planar else data.reshape(-1, channels).T
    samples = planes.astype(np.float32)
    if planes.dtype == np.int16:
        samples /= 32768.0
    elif planes.dtype == np.int32:
        samples /= 2147483648.0
    elif not np.issubdtype(planes.dtype, np.floating):
        raise TypeError(f"unexpected sample format {frame.format.name}")
    mono = samples.mean(axis=0) if channels > 1 else samples[0]
    return np.ascontiguousarray(mono, dtype=np.float32)


FeedAudio = Callable[[Float32Array, int], Awaitable[None]]
"""`feed(samples, rate)`: hand mono float32 audio at `rate` to the session."""


class MicrophoneReader:
    """Reads the caller's audio track and feeds the session, in two tasks: a receiver
    that never blocks on the session (bounded backlog, oldest dropped) and a feeder."""

    def __init__(
        self,
        track: MediaStreamTrack,
        feed: FeedAudio,
        target_rate: Callable[[], int],
        counters: CallCounters,
        on_end: Callable[[str], None],
        *,
        name: str,
        media_timeout_s: float,
        first_frame_timeout_s: float,
        max_backlog_s: float = MAX_MIC_BACKLOG_S,
    ) -> None:
        """`target_rate()`: the session's input rate now (a session.update may change
        it). `on_end(reason)`: the track ended, sent nothing for `media_timeout_s`, or
        sent no first frame within `first_frame_timeout_s` (ICE and DTLS come first)."""
        self.track = track
        self._feed = feed
        self._target_rate = target_rate
        self.counters = counters
        self._on_end = on_end
        self._media_timeout_s = media_timeout_s
        self._first_frame_timeout_s = max(first_frame_timeout_s, media_timeout_s)
        self._max_backlog_s = max_backlog_s
        self._backlog: deque[tuple[int, Float32Array]] = deque()
        self._backlog_s = 0.0
        self._ready = asyncio.Event()
        self._resampler: StreamResampler | None = None
        loop = asyncio.get_running_loop()
        self._tasks = (
            loop.create_task(self._receive(), name=f"{name}:receive"),
            loop.create_task(self._drain(), name=f"{name}:feed"),
        )

    async def close(self) -> None:
        """Stop both tasks; whatever is still in the backlog is dropped (and counted)."""
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self.counters.mic_frames_dropped += len(self._backlog)
        self._backlog.clear()
        self.track.stop()

    async def _receive(self) -> None:
        while True:
            first = self.counters.mic_frames == 0
            timeout = self._first_frame_timeout_s if first else self._media_timeout_s
            try:
                frame = await asyncio.wait_for(self.track.recv(), timeout)
            except MediaStreamError:
                self._on_end("the caller's audio track ended")
                return
            except TimeoutError:
                self._on_end(f"no audio from the caller for {timeout:g} s")
                return
            if not isinstance(frame, av.AudioFrame):
                self.counters.mic_frames_undecodable += 1
                continue
            try:
                samples = frame_to_mono(frame)
            except (ValueError, TypeError):
                self.counters.mic_frames_undecodable += 1
                continue
            self.counters.mic_frames += 1
            self.counters.mic_samples += len(samples)
            rate = int(frame.sample_rate)
            self._backlog.append((rate, samples))
            self._backlog_s += len(samples) / rate
            while self._backlog_s > self._max_backlog_s and len(self._backlog) > 1:
                old_rate, old = self._backlog.popleft()
                self._backlog_s -= len(old) / old_rate
                self.counters.mic_frames_dropped += 1
                if self.counters.mic_frames_dropped % 50 == 1:
                    log.warning(
                        "%s: the session is %.1f s behind the caller; dropped %d frames so far",
                        self._tasks[0].get_name(),
                        self._backlog_s,
                        self.counters.mic_frames_dropped,
                    )
            self._ready.set()

    async def _drain(self) -> None:
        while True:
            await self._ready.wait()
            self._ready.clear()
            while self._backlog:
                rate, first = self._backlog.popleft()
                parts = [first]
                # Frames that queued up meanwhile go to the session in one call.
                while self._backlog and self._backlog[0][0] == rate:
                    parts.append(self._backlog.popleft()[1])
                audio = np.concatenate(parts) if len(parts) > 1 else first
                self._backlog_s = max(0.0, self._backlog_s - sum(len(p) for p in parts) / rate)
                target = self._target_rate()
                await self._feed(self._resample(audio, rate, target), target)

    def _resample(self, audio: Float32Array, rate: int, target: int) -> Float32Array:
        if rate == target:
            self._resampler = None
            return audio
        resampler = self._resampler
        if resampler is None or (resampler.input_rate, resampler.output_rate) != (rate, target):
            resampler = self._resampler = StreamResampler(rate, target)
        return resampler.process(audio)


class ReplyTrack(MediaStreamTrack):
    """The call's outgoing audio: queued PCM16 at 48 kHz, paced in 20 ms frames."""

    kind = "audio"

    def __init__(self, counters: CallCounters, *, max_buffer_s: float = MAX_REPLY_BUFFER_S):
        super().__init__()
        self.rate = WEBRTC_RATE
        self.counters = counters
        self._buffer = bytearray()
        self._max_bytes = int(max_buffer_s * WEBRTC_RATE) * 2
        self._space = asyncio.Event()
        self._space.set()
        self._empty = asyncio.Event()
        self._empty.set()
        self._start: float | None = None
        self._frame = 0
        """Frames since the clock (re)started."""
        self._pts = 0
        """Timestamp of the next frame; only ever grows, across clock restarts."""

    @property
    def queued_samples(self) -> int:
        return len(self._buffer) // 2

    async def write(self, pcm16: bytes) -> None:
        """Queue PCM16 mono 48 kHz audio; waits while the queue is full. Audio written
        after the track has ended is dropped (and counted)."""
        if len(pcm16) % 2:
            raise ValueError("PCM16 audio must have an even number of bytes")
        self.counters.reply_samples_written += len(pcm16) // 2
        data = memoryview(pcm16)
        while data:
            if self.readyState != "live":
                self.counters.reply_samples_discarded += len(data) // 2
                return
            room = self._max_bytes - len(self._buffer)
            if room <= 0:
                self._space.clear()
                await self._space.wait()
                continue
            take = min(room, len(data))
            take -= take % 2
            self._buffer += data[:take]
            self._empty.clear()
            data = data[take:]

    def discard(self) -> int:
        """Drop every queued sample at once; returns how many."""
        dropped = len(self._buffer) // 2
        self._buffer.clear()
        self.counters.reply_samples_discarded += dropped
        self._space.set()
        self._empty.set()
        return dropped

    async def played(self) -> None:
        """Return once the queue is empty: everything written has gone out."""
        await self._empty.wait()

    def stop(self) -> None:
        if self.readyState == "live":
            self.discard()
        super().stop()
        self._space.set()  # writers waiting for room see the track has ended
        self._empty.set()

    async def recv(self) -> av.AudioFrame:
        """The next 20 ms frame, due at start + n x 20 ms."""
        if self.readyState != "live":
            raise MediaStreamError
        now = asyncio.get_running_loop().time()
        if self._start is None or now - self._due(self._frame + 1) > MAX_CLOCK_SLIP_S:
            self._start, self._frame = now, 0
        else:
            self._frame += 1
            delay = self._due(self._frame) - now
            if delay > 0:
                await asyncio.sleep(delay)
        if self.readyState != "live":
            raise MediaStreamError
        wanted = FRAME_SAMPLES * 2
        chunk = bytes(self._buffer[:wanted])
        del self._buffer[:wanted]
        if chunk:
            self.counters.reply_samples_sent += len(chunk) // 2
            self._space.set()
            if not self._buffer:
                self._empty.set()
        if len(chunk) < wanted:
            chunk += bytes(wanted - len(chunk))
        frame = av.AudioFrame(format="s16", layout="mono", samples=FRAME_SAMPLES)
        frame.planes[0].update(chunk)
        frame.sample_rate = WEBRTC_RATE
        frame.pts = self._pts
        self._pts += FRAME_SAMPLES
        frame.time_base = fractions.Fraction(1, WEBRTC_RATE)
        self.counters.reply_frames += 1
        return frame

    def _due(self, frame: int) -> float:
        assert self._start is not None
        return self._start + frame * FRAME_MS / 1000
