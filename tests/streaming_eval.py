"""Evaluation harness for streaming transcription: stream a recording through a real
Session, decode it offline, compare both with WER and check the transcript invariants.

Used by tests/engine/test_streaming_corpus.py and by hand::

    .venv/bin/python -m tests.streaming_eval            # every corpus case, a table
    .venv/bin/python -m tests.streaming_eval jfk librivox --chunking random

Calls::

    normalize(text) -> list[str]
    wer(reference, hypothesis) -> float
    stream(audio, asr, vad, *, chunking="10ms", session_options=None, seed=0) -> StreamOutcome
    offline(audio, asr, *, beam_size=1) -> str
    check_invariants(outcome, reference=None, *, offline_text=None) -> list[str]
    evaluate(case, asr, vad, ...) -> CaseResult
"""

from __future__ import annotations

import argparse
import dataclasses
import re
import time
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from typing import Any, Literal

import numpy as np
import numpy.typing as npt

import voxwire.engine.events as engine_events
from voxwire.engine.events import (
    Event,
    SpeechStarted,
    TranscriptionCompleted,
    TranscriptionDelta,
    TranscriptionFailed,
)
from voxwire.engine.session import Session, SessionOptions
from voxwire.models.interfaces import (
    AsrModel,
    DecodeRequest,
    DecodeResult,
    SpeechProbability,
    TranscribeOptions,
)

SAMPLE_RATE = 16_000
FRAME_10MS = SAMPLE_RATE // 100

Chunking = Literal["10ms", "random", "whole"]

# -- normalisation and WER ---------------------------------------------------------------

_ABBREVIATIONS = {
    "mr": "mister",
    "mrs": "missus",
    "dr": "doctor",
    "ok": "okay",
}
_ONES = [
    "zero",
    "one",
    "two",
    "three",
    "four",
    "five",
    "six",
    "seven",
    "eight",
    "nine",
    "ten",
    "eleven",
    "twelve",
    "thirteen",
    "fourteen",
    "fifteen",
    "sixteen",
    "seventeen",
    "eighteen",
    "nineteen",
]
_TENS = ["_", "_", "twenty", "thirty", "forty", "fifty", "sixty", "seventy", "eighty", "ninety"]
_SCALES = ((10**9, "billion"), (10**6, "million"), (1000, "thousand"))
_ORDINAL_SUFFIX = re.compile(r"^(\d+)(st|nd|rd|th)$")
_NUMBER = re.compile(r"^\d+$")


def number_words(n: int) -> list[str]:
    """A non-negative integer spelled out the way people say it: 21 -> twenty one,
    1905 -> one thousand nine hundred five (no "and")."""
    if n < 20:
        return [_ONES[n]]
    if n < 100:
        tens, ones = divmod(n, 10)
        return [_TENS[tens]] + ([_ONES[ones]] if ones else [])
    if n < 1000:
        hundreds, rest = divmod(n, 100)
        return [_ONES[hundreds], "hundred"] + (number_words(rest) if rest else [])
    for scale, word in _SCALES:
        if n >= scale:
            high, rest = divmod(n, scale)
            return [*number_words(high), word] + (number_words(rest) if rest else [])
    raise AssertionError("unreachable")  # pragma: no cover


def normalize(text: str) -> list[str]:
    """Words for WER: lower case; punctuation stripped (apostrophes inside words kept);
    hyphens and slashes split words; digits spelled out ("21" and "twenty-one" both give
    twenty one, "1,000" gives one thousand); a few abbreviations expanded (Mr., Mrs.,
    Dr., OK). The same rules apply to both sides, so they cannot favour either."""
    text = text.lower().replace("’", "'")
    text = re.sub(r"(?<=\d),(?=\d{3}\b)", "", text)  # 1,000 -> 1000
    text = re.sub(r"[-/–—]", " ", text)
    words: list[str] = []
    for part in re.split(r"[^\w']+", text):
        part = part.strip("'_")
        if not part:
            continue
        if _NUMBER.match(part) and len(part) <= 12:
            words.extend(number_words(int(part)))
        elif m := _ORDINAL_SUFFIX.match(part):
            words.extend(number_words(int(m.group(1))))
        else:
            words.append(_ABBREVIATIONS.get(part, part))
    return words


def wer(reference: str, hypothesis: str) -> float:
    """Word error rate of `hypothesis` against `reference` after :func:`normalize`
    (jiwer). An empty reference gives 0.0 for an empty hypothesis and otherwise the
    number of hypothesis words (every word is an insertion)."""
    import jiwer

    ref = normalize(reference)
    hyp = normalize(hypothesis)
    if not ref:
        return float(len(hyp))
    return float(jiwer.wer(" ".join(ref), " ".join(hyp)))


# -- streaming ---------------------------------------------------------------------------


@dataclasses.dataclass
class ItemOutcome:
    """What the session said about one item (utterance)."""

    item_id: str
    deltas: list[str] = dataclasses.field(default_factory=list)
    final: str | None = None
    """The completed transcript; None if the item never completed."""
    tentatives: list[str] = dataclasses.field(default_factory=list)
    """Texts of TranscriptionTentative events, in order (once the class exists)."""
    failed: bool = False
    audio_start_ms: int | None = None
    audio_end_ms: int | None = None

    @property
    def delta_text(self) -> str:
        return "".join(self.deltas)


@dataclasses.dataclass
class StreamOutcome:
    """Everything one streamed run produced."""

    items: list[ItemOutcome]
    """In order of first appearance."""
    events: list[Event]
    audio_seconds: float
    decode_seconds: float
    """Wall-clock seconds spent inside asr.decode (partials and finals)."""
    decoded_audio_seconds: float
    """Seconds of audio handed to asr.decode, summed over every request."""
    decode_calls: int
    counters: Any
    """The session's SessionCounters at the end."""

    @property
    def text(self) -> str:
        """The full streamed transcript: the non-empty finals joined by spaces."""
        return " ".join(f.strip() for f in self.finals.values() if f and f.strip())

    @property
    def finals(self) -> dict[str, str | None]:
        return {item.item_id: item.final for item in self.items}

    @property
    def deltas(self) -> dict[str, list[str]]:
        return {item.item_id: list(item.deltas) for item in self.items}

    @property
    def tentatives(self) -> dict[str, list[str]]:
        return {item.item_id: list(item.tentatives) for item in self.items}


def _tentative_class() -> type | None:
    return getattr(engine_events, "TranscriptionTentative", None)


def chunks(audio: npt.NDArray[np.float32], chunking: Chunking, seed: int = 0) -> Iterable[Any]:
    """`audio` split as a client might send it: 10 ms frames, random pieces of 1 sample
    to 0.25 s (seeded), or one buffer."""
    if chunking == "whole":
        yield audio
        return
    if chunking == "10ms":
        for i in range(0, len(audio), FRAME_10MS):
            yield audio[i : i + FRAME_10MS]
        return
    if chunking == "random":
        rng = np.random.default_rng(seed)
        i = 0
        while i < len(audio):
            n = int(rng.integers(1, SAMPLE_RATE // 4 + 1))
            yield audio[i : i + n]
            i += n
        return
    raise ValueError(f"unknown chunking {chunking!r}")


def deterministic_options(options: SessionOptions | None = None) -> SessionOptions:
    """`options` (default: the session defaults) with every knob that reacts to
    wall-clock decode time turned off, so a run depends on the audio alone and a
    failure reproduces. Today that is StreamingOptions.partial_budget."""
    options = options or SessionOptions()
    streaming = options.streaming
    names = {f.name for f in dataclasses.fields(streaming)}
    if "partial_budget" in names:
        streaming = dataclasses.replace(streaming, partial_budget=None)  # type: ignore[call-arg]
    return dataclasses.replace(options, streaming=streaming)


def _as_vad(vad: SpeechProbability | Callable[[], SpeechProbability]) -> SpeechProbability:
    if isinstance(vad, type) or not hasattr(vad, "probability"):
        vad = vad()  # a class or factory
    vad.reset()  # type: ignore[union-attr]
    return vad  # type: ignore[return-value]


def stream(
    audio: npt.NDArray[np.float32],
    asr: AsrModel,
    vad: SpeechProbability | Callable[[], SpeechProbability],
    *,
    chunking: Chunking = "10ms",
    session_options: SessionOptions | None = None,
    seed: int = 0,
) -> StreamOutcome:
    """Stream 16 kHz `audio` through a sans-I/O Session whose jobs are decoded inline
    by `asr.decode` (so the events depend on the audio, not on timing), then end the
    stream. `vad` is a VAD (reset first) or a factory of one. `session_options`
    defaults to the session defaults as they are (use :func:`deterministic_options`
    to switch off the compute budget)."""
    decode_seconds = 0.0
    decoded_audio = 0.0
    calls = 0

    def decoder(requests: Sequence[DecodeRequest]) -> list[DecodeResult]:
        nonlocal decode_seconds, decoded_audio, calls
        started = time.perf_counter()
        results = asr.decode(requests)
        decode_seconds += time.perf_counter() - started
        decoded_audio += sum(len(r.audio) for r in requests) / SAMPLE_RATE
        calls += 1
        return results

    session = Session(_as_vad(vad), session_options, inline_decoder=decoder)
    events: list[Event] = []
    for piece in chunks(audio, chunking, seed):
        events.extend(session.feed(piece))
    events.extend(session.end_of_stream())
    return StreamOutcome(
        items=collect_items(events),
        events=events,
        audio_seconds=len(audio) / SAMPLE_RATE,
        decode_seconds=decode_seconds,
        decoded_audio_seconds=decoded_audio,
        decode_calls=calls,
        counters=dataclasses.replace(session.counters),
    )


def collect_items(events: Iterable[object]) -> list[ItemOutcome]:
    """Per item: deltas, tentative texts and final, in order of first appearance."""
    tentative = _tentative_class()
    items: dict[str, ItemOutcome] = {}

    def item(item_id: str) -> ItemOutcome:
        return items.setdefault(item_id, ItemOutcome(item_id))

    for event in events:
        if isinstance(event, SpeechStarted):
            item(event.item_id)
        elif isinstance(event, TranscriptionDelta):
            item(event.item_id).deltas.append(event.delta)
        elif isinstance(event, TranscriptionCompleted):
            it = item(event.item_id)
            if it.final is not None:
                raise AssertionError(f"{event.item_id} completed twice")
            it.final = event.transcript
            it.audio_start_ms = event.timings.audio_start_ms
            it.audio_end_ms = event.timings.audio_end_ms
        elif isinstance(event, TranscriptionFailed):
            item(event.item_id).failed = True
        elif tentative is not None and isinstance(event, tentative):
            item(event.item_id).tentatives.append(event.text)  # type: ignore[attr-defined]
    return list(items.values())


# -- offline -----------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class OfflineOutcome:
    text: str
    seconds: float


def offline_pass(
    audio: npt.NDArray[np.float32], asr: AsrModel, *, beam_size: int = 1
) -> OfflineOutcome:
    """One offline pass (faster-whisper's long-form pipeline, 30 s windows, temperature
    fallback), timed. Greedy by default like the streaming path; note that
    /v1/audio/transcriptions and `voxwire transcribe` use beam 5 (TranscribeOptions'
    default)."""
    started = time.perf_counter()
    text = asr.transcribe(audio, TranscribeOptions(beam_size=beam_size)).text
    return OfflineOutcome(text=text, seconds=time.perf_counter() - started)


def offline(audio: npt.NDArray[np.float32], asr: AsrModel, *, beam_size: int = 1) -> str:
    """The offline transcript of `audio` (see :func:`offline_pass`)."""
    return offline_pass(audio, asr, beam_size=beam_size).text


# -- invariants --------------------------------------------------------------------------

DUPLICATE_MIN_WORDS = 4


def _ngrams(words: Sequence[str], n: int) -> Counter[tuple[str, ...]]:
    return Counter(tuple(words[i : i + n]) for i in range(len(words) - n + 1))


def _immediate_repeats(words: Sequence[str], n: int) -> list[tuple[str, ...]]:
    """Runs of `n` or more words followed straight away by themselves."""
    found: list[tuple[str, ...]] = []
    for size in range(n, len(words) // 2 + 1):
        for i in range(len(words) - 2 * size + 1):
            if words[i : i + size] == words[i + size : i + 2 * size]:
                found.append(tuple(words[i : i + size]))
    return found


def duplicated_spans(
    text: str, allowed: Iterable[str] = (), n: int = DUPLICATE_MIN_WORDS
) -> list[str]:
    """Runs of `n` normalized words that `text` holds more often than it should.

    With `allowed` texts (the reference, the offline transcript of the same audio): an
    n-gram is duplicated when it occurs at least twice in `text` and more often than in
    any allowed text, so genuine repetition ("it was the age of wisdom, it was the age
    of foolishness"; "no, no, no, no") is not flagged, and neither is a recognition
    error that the offline decode makes too. Without: only a run of n or more words
    repeated straight after itself ("ask what you can ask what you can") is flagged.
    """
    words = normalize(text)
    allowed = list(allowed)
    if not allowed:
        return sorted({" ".join(r) for r in _immediate_repeats(words, n)})
    counts = _ngrams(words, n)
    limits = [_ngrams(normalize(a), n) for a in allowed]
    return [
        f"{' '.join(gram)!r} x{count}"
        for gram, count in counts.items()
        if count >= 2 and count > max(limit[gram] for limit in limits)
    ]


def check_invariants(
    outcome: StreamOutcome, reference: str | None = None, *, offline_text: str | None = None
) -> list[str]:
    """What is wrong with a streamed outcome (empty list: nothing):

    * every item that started completed exactly once and did not fail;
    * each item's deltas concatenate exactly to its final transcript;
    * no duplicated span (:func:`duplicated_spans`) in any final or in the full
      streamed text, judged against the reference and the offline transcript of the
      same audio when given.
    """
    problems: list[str] = []
    allowed = [t for t in (reference, offline_text) if t is not None]
    for item in outcome.items:
        if item.failed:
            problems.append(f"{item.item_id}: transcription failed")
        if item.final is None:
            problems.append(f"{item.item_id}: no completed transcript")
            continue
        if item.delta_text != item.final:
            problems.append(
                f"{item.item_id}: deltas {item.deltas!r} concatenate to "
                f"{item.delta_text!r}, not to the final {item.final!r}"
            )
        for span in duplicated_spans(item.final, allowed):
            problems.append(f"{item.item_id}: duplicated span {span} in {item.final!r}")
    if len(outcome.items) > 1:
        for span in duplicated_spans(outcome.text, allowed):
            problems.append(f"duplicated span {span} across items")
    return problems


def assert_invariants(
    outcome: StreamOutcome, reference: str | None = None, *, offline_text: str | None = None
) -> None:
    problems = check_invariants(outcome, reference, offline_text=offline_text)
    assert not problems, "\n".join(problems)


# -- one case end to end -----------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class CaseResult:
    name: str
    audio_seconds: float
    reference: str
    streamed_text: str
    offline_text: str
    streamed_wer: float
    offline_wer: float
    problems: tuple[str, ...]
    decode_seconds: float
    offline_seconds: float
    items: int
    outcome: StreamOutcome

    @property
    def work_ratio(self) -> float:
        """Streaming decode seconds over one offline pass's seconds."""
        return self.decode_seconds / self.offline_seconds if self.offline_seconds else 0.0


def evaluate(
    case: Any,
    asr: AsrModel,
    vad: SpeechProbability | Callable[[], SpeechProbability],
    *,
    chunking: Chunking = "10ms",
    session_options: SessionOptions | None = None,
    audio: npt.NDArray[np.float32] | None = None,
    offline_result: OfflineOutcome | None = None,
) -> CaseResult:
    """Stream and decode offline one corpus case (tests.corpus.Case) and compare."""
    audio = case.audio() if audio is None else audio
    outcome = stream(audio, asr, vad, chunking=chunking, session_options=session_options)
    off = offline_result or offline_pass(audio, asr)
    reference = case.reference
    return CaseResult(
        name=case.name,
        audio_seconds=len(audio) / SAMPLE_RATE,
        reference=reference,
        streamed_text=outcome.text,
        offline_text=off.text,
        streamed_wer=wer(reference, outcome.text),
        offline_wer=wer(reference, off.text),
        problems=tuple(check_invariants(outcome, reference, offline_text=off.text)),
        decode_seconds=outcome.decode_seconds,
        offline_seconds=off.seconds,
        items=len(outcome.items),
        outcome=outcome,
    )


def format_table(results: Sequence[CaseResult]) -> str:
    rows = [
        ("case", "audio s", "items", "streamed WER", "offline WER", "diff", "work", "problems"),
        *(
            (
                r.name,
                f"{r.audio_seconds:.1f}",
                str(r.items),
                f"{r.streamed_wer:.3f}",
                f"{r.offline_wer:.3f}",
                f"{r.streamed_wer - r.offline_wer:+.3f}",
                f"{r.work_ratio:.1f}x",
                str(len(r.problems)),
            )
            for r in results
        ),
    ]
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = ["  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)) for row in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    """Stream corpus cases through the Session and print streamed vs offline WER."""
    from tests import corpus
    from voxwire.models.faster_whisper_asr import FasterWhisperAsr
    from voxwire.models.silero_vad import SileroVad

    parser = argparse.ArgumentParser(description=main.__doc__)
    parser.add_argument("cases", nargs="*", help="case names (default: all)")
    parser.add_argument("--chunking", default="10ms", choices=["10ms", "random", "whole"])
    parser.add_argument(
        "--budget", action="store_true", help="keep the wall-clock compute budget on"
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="print the texts")
    args = parser.parse_args(argv)
    cases = corpus.all_cases()
    if args.cases:
        unknown = set(args.cases) - {c.name for c in cases}
        if unknown:
            parser.error(f"unknown cases {sorted(unknown)}; known: {[c.name for c in cases]}")
        cases = tuple(c for c in cases if c.name in args.cases)
    asr = FasterWhisperAsr()
    options = None if args.budget else deterministic_options()
    results = []
    for case in cases:
        started = time.perf_counter()
        result = evaluate(case, asr, SileroVad, chunking=args.chunking, session_options=options)
        results.append(result)
        print(
            f"{case.name}: streamed {result.streamed_wer:.3f} offline {result.offline_wer:.3f} "
            f"({time.perf_counter() - started:.1f} s)",
            flush=True,
        )
        if args.verbose:
            print(f"  reference: {result.reference}")
            print(f"  offline:   {result.offline_text}")
            for item in result.outcome.items:
                print(
                    f"  {item.item_id} {item.audio_start_ms}-{item.audio_end_ms} ms: {item.final}"
                )
        for problem in result.problems:
            print(f"  ! {problem}")
    print()
    print(format_table(results))


__all__ = [
    "CaseResult",
    "ItemOutcome",
    "OfflineOutcome",
    "StreamOutcome",
    "assert_invariants",
    "check_invariants",
    "chunks",
    "collect_items",
    "deterministic_options",
    "duplicated_spans",
    "evaluate",
    "normalize",
    "number_words",
    "offline",
    "offline_pass",
    "stream",
    "wer",
]

if __name__ == "__main__":
    main()
