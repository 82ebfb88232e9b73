"""The small interfaces every model backend implements, and their result types.

Audio crossing these interfaces is always mono float32 in [-1, 1] at 16 kHz.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Literal, Protocol, runtime_checkable

import numpy as np
import numpy.typing as npt

SAMPLE_RATE = 16_000
"""The rate every model in voxwire consumes."""

AudioArray = npt.NDArray[np.float32]


def flat_float32(audio: npt.ArrayLike) -> AudioArray:
    """`audio` as one row of float32 samples, whatever its shape (a view when it can be)."""
    return np.asarray(audio, dtype=np.float32).reshape(-1)


@dataclass(frozen=True)
class Word:
    """One word with its times in seconds from the start of the decoded audio."""

    word: str
    start: float
    end: float
    probability: float = 1.0


@dataclass(frozen=True)
class Segment:
    """One transcribed segment of an offline transcription."""

    id: int
    start: float
    end: float
    text: str
    words: tuple[Word, ...] = ()
    avg_logprob: float = 0.0
    no_speech_prob: float = 0.0
    tokens: tuple[int, ...] = ()
    temperature: float = 0.0
    compression_ratio: float = 0.0


@dataclass(frozen=True)
class Transcription:
    """The result of transcribing a whole file or buffer."""

    text: str
    language: str
    duration: float
    segments: tuple[Segment, ...] = ()

    @property
    def words(self) -> tuple[Word, ...]:
        return tuple(w for s in self.segments for w in s.words)


@dataclass(frozen=True)
class TranscribeOptions:
    """Options for an offline transcription."""

    language: str | None = None
    task: Literal["transcribe", "translate"] = "transcribe"
    beam_size: int = 5
    word_timestamps: bool = False
    initial_prompt: str | None = None
    temperature: float = 0.0


@dataclass(frozen=True)
class DecodeRequest:
    """One short clip (at most 30 s) to decode for the streaming path.

    `prompt` is earlier context (previous utterances); `prefix` is text the
    decoder is forced to start with (already committed words of this utterance).
    """

    audio: AudioArray
    prompt: str = ""
    prefix: str = ""
    final: bool = False
    """A final decode: worth a retry on the full window if the fitted one loops."""
    beam_size: int = 1
    language: str | None = None
    word_timestamps: bool = False
    """Return timed words (costs an alignment pass)."""


@dataclass(frozen=True)
class DecodeResult:
    """The hypothesis for one :class:`DecodeRequest`; `text` includes the prefix."""

    text: str
    words: tuple[Word, ...] = field(default_factory=tuple)
    compute_seconds: float = 0.0
    audio_seconds: float = 0.0


@runtime_checkable
class AsrModel(Protocol):
    """Speech recognition: offline transcription plus short-clip decoding."""

    name: str
    supports_batching: bool
    max_batch_size: int
    max_concurrency: int
    """How many threads may call :meth:`decode` at the same time."""

    def transcribe(self, audio: AudioArray, options: TranscribeOptions) -> Transcription:
        """Transcribe audio of any length."""
        ...

    def transcribe_segments(
        self, audio: AudioArray, options: TranscribeOptions
    ) -> Iterator[Segment]:
        """The segments of :meth:`transcribe`, each decoded only when asked for (a lazy
        generator), so a caller can send the first before the last is decoded."""
        ...

    def decode(self, requests: Sequence[DecodeRequest]) -> list[DecodeResult]:
        """Decode a batch of short clips (each at most 30 s), one result per request."""
        ...


@runtime_checkable
class SpeechProbability(Protocol):
    """A streaming VAD: speech probability of consecutive fixed-size frames."""

    frame_samples: int
    """Samples per frame at 16 kHz (512 for Silero)."""

    def reset(self) -> None:
        """Forget all state, as at the start of a new stream."""
        ...

    def probability(self, frame: AudioArray) -> float:
        """Speech probability of the next frame of exactly `frame_samples` samples."""
        ...


@dataclass(frozen=True)
class LabelScore:
    """One label of a classification with its score (after any normalisation)."""

    label: str
    score: float


@runtime_checkable
class AudioClassifier(Protocol):
    """Classifies a whole clip of 16 kHz audio into a fixed set of labels."""

    name: str
    labels: tuple[str, ...]

    def logits(self, audio: AudioArray) -> npt.NDArray[np.float32]:
        """One raw score per label, in `labels` order; softmax of them gives
        probabilities (as a Hugging Face model's logits)."""
        ...


@runtime_checkable
class TextClassifier(Protocol):
    """Classifies a text (a transcript) into a fixed set of labels."""

    name: str
    labels: tuple[str, ...]

    def logits(self, text: str) -> npt.NDArray[np.float32]:
        """One raw score per label, in `labels` order; softmax gives probabilities."""
        ...


@runtime_checkable
class SpeechSynthesizer(Protocol):
    """Text to speech, streamed sentence by sentence."""

    name: str
    sample_rate: int
    voices: tuple[str, ...]
    """Voice names; the first is the default."""

    def synthesize(
        self, text: str, *, voice: str | None = None, speed: float = 1.0
    ) -> Iterator[AudioArray]:
        """Mono float32 audio at `sample_rate`, one chunk per sentence, each yielded as
        soon as it is synthesised (a generator: nothing runs before the first next())."""
        ...


@runtime_checkable
class WakeWordStream(Protocol):
    """The state of wake-word detection on one audio stream."""

    def reset(self) -> None:
        """Forget all state, as at the start of a new stream."""
        ...

    def process(self, frame: AudioArray) -> dict[str, float]:
        """Scores in [0, 1] per wake word for the next frame of exactly `frame_samples`."""
        ...


@runtime_checkable
class WakeWordModel(Protocol):
    """Streaming wake-word detection on 16 kHz audio."""

    name: str
    wake_words: tuple[str, ...]
    frame_samples: int
    """Samples per frame at 16 kHz (1280, 80 ms, for openWakeWord)."""

    def new_stream(self) -> WakeWordStream:
        """Fresh per-stream state; the model's sessions are shared."""
        ...


@runtime_checkable
class SpeakerEncoder(Protocol):
    """A voice embedding: utterances of one speaker lie close together."""

    name: str
    dimension: int

    def embed(self, audio: AudioArray) -> npt.NDArray[np.float32]:
        """An L2-normalised embedding of 16 kHz speech (at least about 1 s)."""
        ...


@dataclass(frozen=True)
class ChatMessage:
    """One message of a chat: its role, its text, and any audio it carries (16 kHz)."""

    role: Literal["system", "user", "assistant"]
    text: str
    audio: tuple[AudioArray, ...] = ()


@dataclass(frozen=True)
class GenerateOptions:
    """How much to generate and how: `temperature` 0 decodes greedily."""

    max_tokens: int = 256
    temperature: float = 0.0


@dataclass
class Generation:
    """Text chunks of one generation as they are produced, plus its token counts.

    Iterating yields the chunks (decoded text, concatenating to the answer); the
    counts and `finish_reason` are final once the iteration ends. Setting
    `cancelled` (or closing the iterator) stops the model at its next token.
    """

    chunks: Iterator[str]
    prompt_tokens: int
    cancelled: threading.Event
    completion_tokens: int = 0
    finish_reason: Literal["stop", "length", "cancelled"] = "stop"

    def __iter__(self) -> Iterator[str]:
        return self.chunks


@runtime_checkable
class ChatModel(Protocol):
    """A chat model: messages in (with audio if it `accepts_audio`), text streamed out."""

    name: str
    accepts_audio: bool
    """Whether messages may carry audio (a native audio LLM); a text model refuses it."""
    max_prompt_tokens: int
    """Longest prompt (messages and audio, as tokens) it is given."""

    def count_tokens(self, messages: Sequence[ChatMessage]) -> int:
        """The prompt's length in tokens, chat template included."""
        ...

    def generate(self, messages: Sequence[ChatMessage], options: GenerateOptions) -> Generation:
        """Start a generation; nothing runs before the first chunk is asked for."""
        ...


@runtime_checkable
class TurnCompletion(Protocol):
    """Semantic end of turn: has the speaker finished, judging by how the speech ends?"""

    name: str
    window_samples: int
    """How much of the latest audio the model reads (16 kHz samples); earlier is ignored."""

    def probability(self, audio: AudioArray) -> float:
        """P(the turn is complete) for 16 kHz speech that ends now (its pause included)."""
        ...
