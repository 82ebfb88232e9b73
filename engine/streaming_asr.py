"""The streaming-ASR policy for one utterance: what to decode, when, and what to commit.

While an utterance is open it is re-decoded at a cadence (every
``partial_interval_ms`` of new audio, stretched when the workers are busy). The
prefix on which two consecutive hypotheses agree is committed
(LocalAgreement-2) and only newly committed text is emitted as a delta.

Work per decode is bounded. Committed words keep the times the recogniser
aligned them to, and each decode covers only the uncommitted tail plus a short
left context: the clip starts at a committed word boundary about
``left_context_ms`` before the end of the committed text, the committed words
inside the clip are the forced prefix (the decoder continues after them rather
than transcribing them again), and the committed words before the clip are the
prompt. A final decodes the same kind of window up to the end of the utterance,
so the deltas of an utterance always concatenate to its final transcript.

Words without times (a backend that aligns nothing) are committed all the same;
the window then cannot start after them, which is correct but costs more.

No word is ever dropped because of what it says. A decode that re-reads
committed audio instead of continuing it is recognised from its timestamps
(its new words start well inside the committed audio) and is not used to
commit; a final of that kind is decoded again without the context.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from voxwire.engine.audio import MODEL_RATE
from voxwire.models.interfaces import DecodeResult

_STRIP = re.compile(r"[^\w']+")
_TRAILING_PUNCTUATION = ".?!,;:…"


def _norm(word: str) -> str:
    return _STRIP.sub("", word.lower())


def split_words(text: str) -> list[str]:
    """Whitespace-separated words of a hypothesis, surface forms kept."""
    return text.split()


@dataclass(frozen=True)
class StreamingOptions:
    """Cadence of partial decodes, commit rules and the decode window."""

    partial_interval_ms: int = 300
    min_partial_audio_ms: int = 500
    """No partial decode before the utterance holds this much audio."""
    max_load_stretch: float = 4.0
    """At full load the interval grows up to this factor."""
    agreement: int = 2
    """Consecutive hypotheses that must agree on a word before it is committed
    (LocalAgreement-n)."""
    commit_lag_words: int = 2
    """For words without times: words at the end of a hypothesis that a partial
    never commits (the audio edge cuts words, "jump|s")."""
    commit_guard_ms: int = 500
    """For timed words: a partial commits only words that end at least this long
    before the audio edge."""
    min_commit_audio_ms: int = 2500
    """No word of an utterance is committed before it holds this much audio: Whisper
    hears the first second of a clip without context poorly, and two poor hypotheses
    agree all too often. Their text is still tentative text. (Once words are
    committed, later clips begin with them as context.)"""
    partial_budget: float | None = 0.12
    """Partials of one stream may use at most this fraction of real time: after a
    decode that took c seconds the next waits for c / budget seconds of new
    audio. None turns it off (the cadence then depends only on the audio)."""
    left_context_ms: int = 2000
    """Committed audio decoded again before the uncommitted tail, as context."""
    max_tentative_s: float = 10.0
    """Uncommitted audio older than this is committed from the latest hypothesis
    without waiting for agreement, so the window stays bounded."""
    restart_tolerance_ms: int = 400
    """New words starting this far inside the committed audio mark a re-read."""

    def __post_init__(self) -> None:
        if self.partial_interval_ms <= 0:
            raise ValueError("partial_interval_ms must be positive")
        if self.commit_lag_words < 1:
            raise ValueError("commit_lag_words must be at least 1")
        if self.agreement < 2:
            raise ValueError("agreement must be at least 2")
        if self.partial_budget is not None and not 0.0 < self.partial_budget <= 1.0:
            raise ValueError("partial_budget must be in (0, 1]")
        if self.max_load_stretch < 1.0:
            raise ValueError("max_load_stretch must be at least 1")
        durations = (
            self.commit_guard_ms,
            self.left_context_ms,
            self.restart_tolerance_ms,
            self.min_commit_audio_ms,
        )
        if min(durations) < 0:
            raise ValueError("durations must not be negative")
        if not 2.0 <= self.max_tentative_s <= 25.0:
            raise ValueError("max_tentative_s must be between 2 and 25")


@dataclass(frozen=True)
class TimedWord:
    """A word with its place in the session's audio (16 kHz samples), when known."""

    text: str
    start: int | None = None
    end: int | None = None

    @property
    def timed(self) -> bool:
        return self.start is not None and self.end is not None


@dataclass(frozen=True)
class DecodeWindow:
    """What one decode covers: audio from `start`, the committed words inside it as
    the forced `prefix`, and the committed text before it as `context`."""

    start: int
    prefix: str
    prefix_words: int
    context: str
    committed_end: int | None
    """Where the committed words end (absolute), when their times are known."""


class UtterancePolicy:
    """Decides partial decodes and commits agreed words for one utterance."""

    def __init__(self, start: int, options: StreamingOptions | None = None) -> None:
        self.options = options or StreamingOptions()
        self.start = start
        self.words: list[TimedWord] = []
        """The committed words."""
        self._history: list[tuple[list[TimedWord], int | None]] = []
        """The last hypotheses after the committed words, newest last, each with the
        time by which its words were heard whole (see :meth:`on_hypothesis`)."""
        self._tentative: list[TimedWord] = []
        self._last_request_end = start
        self._last_result_end = start
        self._last_cost = 0.0
        self.in_flight = False

    # -- reading --------------------------------------------------------------------------

    @property
    def committed(self) -> list[str]:
        """The committed words' surface forms."""
        return [w.text for w in self.words]

    @property
    def committed_text(self) -> str:
        return " ".join(w.text for w in self.words)

    @property
    def committed_end(self) -> int | None:
        """Where the last committed word ends in the audio, when its time is known."""
        return self.words[-1].end if self.words else None

    @property
    def tentative_text(self) -> str:
        """The latest hypothesis after the committed words (may still change)."""
        return " ".join(w.text for w in self._tentative)

    def window(self) -> DecodeWindow:
        """The window the next decode should cover (up to whatever audio end)."""
        words = self.words
        cut = 0
        if words and words[-1].timed:
            end = words[-1].end
            assert end is not None
            horizon = end - self.options.left_context_ms * MODEL_RATE // 1000
            # Walk back over timed words until the context is long enough; never
            # past a word without times (its place in the audio is unknown).
            cut = len(words) - 1
            while cut > 0:
                word = words[cut]
                assert word.start is not None
                if word.start <= horizon or not words[cut - 1].timed:
                    break
                cut -= 1
        if cut == 0:
            return DecodeWindow(
                start=self.start,
                prefix=_prefix_text(words),
                prefix_words=len(words),
                context="",
                committed_end=words[-1].end if words else None,
            )
        first, before = words[cut], words[cut - 1]
        assert first.start is not None
        # Cut in the gap between the two words (their alignments may overlap a little).
        gap_start = before.end if before.end is not None else first.start - MODEL_RATE // 10
        start = max(self.start, min(first.start, (gap_start + first.start) // 2))
        inside = words[cut:]
        return DecodeWindow(
            start=start,
            prefix=_prefix_text(inside),
            prefix_words=len(inside),
            context=" ".join(w.text for w in words[:cut]),
            committed_end=words[-1].end,
        )

    # -- cadence --------------------------------------------------------------------------

    def partial_due(self, audio_end: int, load: float = 0.0) -> bool:
        """Whether a partial decode up to ``audio_end`` should be requested now.

        `load` in [0, 1] is how busy the workers are; it stretches the cadence, and
        tentative text degrades first: a decode that could only refresh the tentative
        text stretches from the first sign of load, one that could commit words (the
        last hypothesis holds a word with enough right context by now) only past half
        load. At most one partial is in flight per utterance.
        """
        if self.in_flight:
            return False
        opts = self.options
        if audio_end - self.start < opts.min_partial_audio_ms * MODEL_RATE // 1000:
            return False
        load = min(max(load, 0.0), 1.0)
        if self._could_commit(audio_end):
            load = max(0.0, 2.0 * load - 1.0)
        stretch = 1.0 + (opts.max_load_stretch - 1.0) * load
        interval = opts.partial_interval_ms * stretch / 1000
        if opts.partial_budget is not None and self.words:
            # The budget applies once the first words are out: until then the
            # person waits for any text at all, and decodes of short audio are cheap.
            interval = max(interval, self._last_cost / opts.partial_budget)
        return audio_end - self._last_request_end >= int(interval * MODEL_RATE)

    def _could_commit(self, audio_end: int) -> bool:
        """Whether a decode now could commit: the last hypothesis has a word that
        would pass the commit rules if the next one agrees."""
        previous = self._history[-1][0] if self._history else None
        if not previous:
            return False
        if not self.words and audio_end - self.start < self._min_commit_samples:
            return False
        first = previous[0]
        if first.end is not None:
            return first.end <= audio_end - self.options.commit_guard_ms * MODEL_RATE // 1000
        return len(previous) > self.options.commit_lag_words

    def requested(self, audio_end: int) -> None:
        """A partial decode up to `audio_end` was handed to a worker."""
        self.in_flight = True
        self._last_request_end = audio_end

    def dropped(self) -> None:
        """The in-flight partial was dropped (queue full or superseded)."""
        self.in_flight = False

    # -- results --------------------------------------------------------------------------

    def on_partial(
        self,
        result: DecodeResult | str,
        audio_end: int,
        window: DecodeWindow | None = None,
        compute_seconds: float | None = None,
    ) -> str:
        """Apply LocalAgreement-2 to a new hypothesis; return the delta to emit ('' if none).

        `result` is the decode of `window` (by default the whole utterance with every
        committed word as prefix) up to `audio_end`; its text begins with the prefix.
        """
        if isinstance(result, str):
            result = DecodeResult(text=result)
        self.in_flight = False
        self._last_cost = result.compute_seconds if compute_seconds is None else compute_seconds
        return self.on_hypothesis(result, audio_end, window)

    def on_hypothesis(
        self,
        result: DecodeResult,
        audio_end: int,
        window: DecodeWindow | None = None,
        *,
        whole_until: int | None = None,
    ) -> str:
        """Apply LocalAgreement-2 to a hypothesis from any decode (not the partial cadence's).

        `whole_until`: the VAD heard speech stop there (a speculative final whose
        utterance went on), so the words that end by then are whole: they need no
        right context, in this hypothesis or, matched, in the next one.
        """
        if audio_end < self._last_result_end:
            return ""  # an older result overtaken by a newer one
        self._last_result_end = audio_end
        window = window or self._whole_window()
        if window.prefix_words > len(self.words) or not self._matches_committed(window):
            return ""  # the words committed since this decode was asked for changed its prefix
        tail = _tail(result, window)
        if tail is None or self._rereads(tail, window):
            # The decoder dropped the forced prefix or read committed audio again.
            self._history.clear()
            return ""
        history = [*self._history, (tail, whole_until)][-self.options.agreement :]
        self._history = history
        self._tentative = tail
        agreed: list[TimedWord] = []
        heard_enough = bool(self.words) or audio_end - window.start >= self._min_commit_samples
        if len(history) == self.options.agreement and heard_enough:
            lag = self.options.commit_lag_words
            guard = audio_end - self.options.commit_guard_ms * MODEL_RATE // 1000
            shortest = min(len(h) for h, _ in history)
            for i, new in enumerate(tail[:shortest]):
                if not _norm(new.text) or any(
                    _norm(h[i].text) != _norm(new.text) for h, _ in history
                ):
                    break
                # Only words with right context can be agreed: the last ones may be
                # cut off at the audio edge, unless a pause followed them.
                if not any(_ends_by(h[i], whole) for h, whole in history):
                    if new.end is not None:
                        if new.end > guard:
                            break
                    elif i >= shortest - lag:
                        break
                agreed.append(new)
            overdue = self._overdue(tail[len(agreed) :], audio_end)
            agreed.extend(overdue)
            # The words agreed on are the first of every hypothesis kept; words
            # committed because they were overdue are only the newest one's.
            kept = [(tail, whole_until)] if overdue else history
            self._history = [(h[len(agreed) :], whole) for h, whole in kept]
        if not agreed:
            return ""
        self._tentative = tail[len(agreed) :]
        return self._commit(agreed)

    def on_final(self, result: DecodeResult | str, window: DecodeWindow | None = None) -> str:
        """Take the final hypothesis of `window` up to the utterance end; return the last delta.

        The transcript (:attr:`committed_text` afterwards) always starts with the words
        committed before, so the deltas of an utterance concatenate to exactly it.
        """
        if isinstance(result, str):
            result = DecodeResult(text=result)
        window = window or self._whole_window()
        words = split_words(result.text)
        # A forced prefix is always kept; should a backend not keep it, the words
        # after as many words as the prefix has are still the new ones.
        # Punctuation alone ("." decoded from trailing silence) carries no word.
        rest = [w for w in words[window.prefix_words :] if _norm(w)]
        self._tentative = []
        self._history.clear()
        return self._commit([TimedWord(w) for w in rest]) if rest else ""

    def fresh_window(self) -> DecodeWindow:
        """A window from the end of the committed words with no forced prefix: for a
        final whose context made the decoder re-read committed audio."""
        end = self.words[-1].end if self.words else None
        if end is None:
            return self._whole_window()
        return DecodeWindow(
            start=max(self.start, end),
            prefix="",
            prefix_words=0,
            context=self.committed_text,
            committed_end=None,
        )

    def final_rereads(self, result: DecodeResult, window: DecodeWindow) -> bool:
        """Whether a final's new words re-read committed audio (judged from their times)."""
        tail = _tail(result, window)
        return tail is not None and self._rereads(tail, window)

    # -- internals ------------------------------------------------------------------------

    @property
    def _min_commit_samples(self) -> int:
        return self.options.min_commit_audio_ms * MODEL_RATE // 1000

    def _whole_window(self) -> DecodeWindow:
        return DecodeWindow(
            start=self.start,
            prefix=_prefix_text(self.words),
            prefix_words=len(self.words),
            context="",
            committed_end=self.words[-1].end if self.words else None,
        )

    def _matches_committed(self, window: DecodeWindow) -> bool:
        """The window's prefix still consists of the last committed words."""
        if window.prefix_words == 0:
            return True
        expected = _prefix_text(self.words[len(self.words) - window.prefix_words :])
        context = " ".join(w.text for w in self.words[: len(self.words) - window.prefix_words])
        return expected == window.prefix and context == window.context

    def _rereads(self, tail: list[TimedWord], window: DecodeWindow) -> bool:
        """Whether the new words lie in audio that is already committed: their first
        word starts well inside it, or most of them end by its end (the alignment
        squeezes a repeat of the context into the context's audio)."""
        end = window.committed_end
        if end is None or not tail or tail[0].start is None:
            return False
        tolerance = self.options.restart_tolerance_ms * MODEL_RATE // 1000
        if tail[0].start < end - tolerance:
            return True
        inside = sum(1 for w in tail if w.end is not None and w.end <= end + MODEL_RATE // 10)
        return inside >= 2 and 2 * inside >= len(tail)

    def _overdue(self, pending: list[TimedWord], audio_end: int) -> list[TimedWord]:
        """Words that waited too long for agreement: keep the window bounded."""
        limit = audio_end - int(self.options.max_tentative_s * MODEL_RATE)
        if not pending or pending[0].end is None or pending[0].end > limit:
            return []
        guard = audio_end - 2 * MODEL_RATE
        out: list[TimedWord] = []
        for word in pending:
            if word.end is None or word.end > guard:
                break
            out.append(word)
        return out

    def _commit(self, words: list[TimedWord]) -> str:
        lead = " " if self.words else ""
        if not self.words and words and words[0].text.islower():
            # Whisper writes the first word of a short, unfinished clip in lower case
            # ("the quick brown"), though the finished sentence starts with a capital.
            first = words[0]
            words = [
                TimedWord(first.text[0].upper() + first.text[1:], first.start, first.end),
                *words[1:],
            ]
        self.words.extend(words)
        return lead + " ".join(w.text for w in words)


def _ends_by(word: TimedWord, limit: int | None) -> bool:
    """Whether a timed word ends by `limit` (never, without a limit or a time)."""
    return limit is not None and word.end is not None and word.end <= limit


def _prefix_text(words: list[TimedWord]) -> str:
    """Committed words as a forced prefix.

    Trailing sentence punctuation is left off: after a forced full stop Whisper
    tends to start the sentence over instead of ending the text.
    """
    return " ".join(w.text for w in words).rstrip(_TRAILING_PUNCTUATION)


def _tail(result: DecodeResult, window: DecodeWindow) -> list[TimedWord] | None:
    """The hypothesis' words after the prefix, with absolute times where the result
    has them; None when the hypothesis does not start with the prefix."""
    words = split_words(result.text)
    n = window.prefix_words
    if [_norm(w) for w in words[:n]] != [_norm(w) for w in split_words(window.prefix)]:
        return None
    times = _word_times(words, result)
    return [
        TimedWord(w, None, None)
        if t is None
        else TimedWord(
            w, window.start + round(t[0] * MODEL_RATE), window.start + round(t[1] * MODEL_RATE)
        )
        for w, t in zip(words[n:], times[n:], strict=True)
    ]


def _word_times(words: list[str], result: DecodeResult) -> list[tuple[float, float] | None]:
    """(start, end) in seconds for each whitespace word of the text, from the result's
    aligned words; an aligner may split a word ("ill", "-disposed"), so consecutive
    aligned words are joined until they spell the text's word. Words after the first
    that cannot be matched get None."""
    out: list[tuple[float, float] | None] = []
    aligned = result.words
    j = 0
    for word in words:
        target = _norm(word)
        if not target:  # punctuation alone: it sits where the previous word ends
            last = out[-1][1] if out and out[-1] is not None else 0.0
            out.append((last, last))
            continue
        spelled = ""
        k = j
        while k < len(aligned) and len(spelled) < len(target):
            spelled += _norm(aligned[k].word)
            k += 1
        if spelled != target:
            break
        out.append((aligned[j].start, aligned[k - 1].end))
        j = k
    return out + [None] * (len(words) - len(out))
