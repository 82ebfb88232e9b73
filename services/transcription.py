"""An offline transcription on a model worker, window by window, that stops when nobody
waits for it (shared by the OpenAI, Hugging Face and workflow APIs; no web framework).

Each window is its own call on the recogniser's worker (the first call sets up the
recogniser's lazy segments, each later one decodes the next window or hands over a
segment already decoded), so a long file shares the worker's queue with other requests
window by window. When the caller is cancelled (its client hung up) or stops reading,
the segments are cancelled: a window running on the worker stops at its next model step
(:mod:`voxwire.models.stoppable_whisper`, for backends that can) and no later window
runs.
"""

from __future__ import annotations

import contextlib
import functools
from collections.abc import AsyncGenerator, Iterator

from voxwire.models.interfaces import (
    SAMPLE_RATE,
    AsrModel,
    AudioArray,
    Segment,
    TranscribeOptions,
    Transcription,
)
from voxwire.services.runtime import CatalogEntry, Runtime


class WindowedTranscription:
    """One transcription of `audio` on `entry`'s worker: iterate :meth:`segments` (in an
    ``aclosing`` block) or await :meth:`result`."""

    def __init__(
        self, runtime: Runtime, entry: CatalogEntry, audio: AudioArray, options: TranscribeOptions
    ) -> None:
        self.runtime = runtime
        self.entry = entry
        self.audio = audio
        self.options = options
        self.language: str | None = options.language
        """The language given, or the one the recogniser detected once it has started."""

    async def segments(self) -> AsyncGenerator[Segment, None]:
        """The segments as their windows are decoded; leaving early stops the decoding."""
        segments = await self.runtime.call(
            self.entry, functools.partial(_segments_on, audio=self.audio, options=self.options)
        )
        self.language = getattr(segments, "language", None) or self.language
        try:
            while True:
                segment = await self.runtime.call(
                    self.entry, functools.partial(_next_segment, segments)
                )
                if segment is None:
                    return
                yield segment
        finally:
            stop_segments(segments)

    async def result(self) -> Transcription:
        """The whole transcription."""
        async with contextlib.aclosing(self.segments()) as stream:
            collected = tuple([segment async for segment in stream])
        return Transcription(
            text=" ".join(s.text for s in collected if s.text),
            language=str(self.language or "en"),
            duration=len(self.audio) / SAMPLE_RATE,
            segments=collected,
        )


def stop_segments(segments: Iterator[Segment]) -> None:
    """Stop the decoding: a window running on the worker stops at its next model step
    (when the backend can cancel), then the segments are closed."""
    cancel = getattr(segments, "cancel", None)
    if cancel is not None:
        cancel()
    close = getattr(segments, "close", None)
    if close is not None:
        with contextlib.suppress(ValueError):  # still running on the worker: it ends there
            close()


def _segments_on(
    model: AsrModel, audio: AudioArray, options: TranscribeOptions
) -> Iterator[Segment]:
    return model.transcribe_segments(audio, options)


def _next_segment(segments: Iterator[Segment], _model: object) -> Segment | None:
    return next(segments, None)
