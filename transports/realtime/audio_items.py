"""Audio a client adds as a conversation item (`conversation.item.create` with
`input_audio` content): decoded from the session's input format and transcribed
whole, like a committed turn, on the recogniser's worker."""

from __future__ import annotations

import numpy as np

from voxwire.engine.audio import MODEL_RATE, Float32Array, StreamResampler, pcm16_to_float32
from voxwire.engine.errors import describe
from voxwire.engine.events import (
    TranscriptionCompleted,
    TranscriptionFailed,
    TranscriptionUsage,
    UtteranceTimings,
)
from voxwire.models.interfaces import TranscribeOptions
from voxwire.services.runtime import ASR, Runtime
from voxwire.services.transcription import WindowedTranscription
from voxwire.transports.realtime.protocol import (
    AudioEncoding,
    ProtocolError,
    decode_base64_bytes,
    input_pcm16,
)


def item_audio(parts: list[str], encoding: AudioEncoding, rate: int) -> Float32Array:
    """The parts' audio, one after the other, at the recogniser's rate."""
    pcm = b"".join(
        input_pcm16(decode_base64_bytes(part), encoding, param=f"item.content.{index}.audio")
        for index, part in enumerate(parts)
    )
    if not pcm:
        raise ProtocolError("the item's audio is empty", code="invalid_value", param="item.content")
    resampler = StreamResampler(rate, MODEL_RATE, any_rate=True)
    audio = pcm16_to_float32(pcm)
    return np.concatenate([resampler.process(audio), resampler.flush()]).astype(np.float32)


async def transcribe_item(
    runtime: Runtime, item_id: str, audio: Float32Array, options: TranscribeOptions
) -> TranscriptionCompleted | TranscriptionFailed:
    """The item's transcript as the event a committed turn's would be."""
    try:
        entry = runtime.resolve(None, ASR)
        result = await WindowedTranscription(runtime, entry, audio, options).result()
    except Exception as exc:
        desc = describe(exc)
        error = {"type": "server_error", "code": desc.code, "message": desc.message}
        return TranscriptionFailed(item_id=item_id, error=error)
    seconds = len(audio) / MODEL_RATE
    return TranscriptionCompleted(
        item_id=item_id,
        transcript=result.text.strip(),
        usage=TranscriptionUsage(seconds=round(seconds, 3)),
        timings=UtteranceTimings(audio_start_ms=0, audio_end_ms=int(seconds * 1000)),
    )
