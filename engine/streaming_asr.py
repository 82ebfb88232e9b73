"""The streaming-ASR policy for one utterance: when to re-decode, what to commit.

While an utterance is open it is re-decoded at a cadence (every
``partial_interval_ms`` of new audio, stretched when the workers are busy). The
prefix on which two consecutive hypotheses agree is committed
(LocalAgreement-2) and only newly committed text is emitted as a delta. Decodes
are forced to start with the committed text, so the final transcript always
begins with what the deltas already said.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

RATE = 16_000

_STRIP = re.compile(r"[^\w']+")
_TRAILING_PUNCTUATION = ".?!,;:…"


def _norm(word: str) -> str:
    return _STRIP.sub("", word.lower())


def split_words(text: str) -> list[str]:
    """Whitespace-separated words of a hypothesis, surface forms kept."""
    return text.split()


@dataclass(frozen=True)
class StreamingOptions:
    """Cadence of partial decodes."""

    partial_interval_ms: int = 300
    min_partial_audio_ms: int = 600
    """No partial decode before the utterance holds this much audio."""
    max_load_stretch: float = 4.0
    """At full load the interval grows up to this factor."""
    commit_lag_words: int = 2
    """Words at the end of a hypothesis that are never committed by a partial:
    the audio edge cuts words ("jump|s") and the encoder needs right context."""
    partial_budget: float | None = 0.12
    """Partials of one stream may use at most this fraction of real time: after a
    decode that took c seconds the next waits for c / budget seconds of new
    audio. None turns it off (the cadence then depends only on the audio)."""

    def __post_init__(self) -> None:
        if self.partial_interval_ms <= 0:
            raise ValueError("partial_interval_ms must be positive")
        if self.commit_lag_words < 1:
            raise ValueError("commit_lag_words must be at least 1")
        if self.partial_budget is not None and not 0.0 < self.partial_budget <= 1.0:
            raise ValueError("partial_budget must be in (0, 1]")
        if self.max_load_stretch < 1.0:
            raise ValueError("max_load_stretch must be at least 1")


class UtterancePolicy:
    """Decides partial decodes and commits agreed words for one utterance."""

    def __init__(self, start: int, options: StreamingOptions | None = None) -> None:
        self.options = options or StreamingOptions()
        self.start = start
        self.committed: list[str] = []
        self._previous: list[str] | None = None
        self._last_request_end = start
        self._last_result_end = start
        self._last_cost = 0.0
        self.in_flight = False

    @property
    def committed_text(self) -> str:
        return " ".join(self.committed)

    @property
    def decode_prefix(self) -> str:
        """The committed text to force the decoder to start with.

        Trailing sentence punctuation is left off: after a forced full stop
        Whisper tends to start the sentence over instead of ending the text.
        """
        return self.committed_text.rstrip(_TRAILING_PUNCTUATION)

    def partial_due(self, audio_end: int, load: float = 0.0) -> bool:
        """Whether a partial decode of ``[start, audio_end)`` should be requested now.

        `load` in [0, 1] is how busy the workers are; it stretches the cadence.
        At most one partial is in flight per utterance.
        """
        if self.in_flight:
            return False
        opts = self.options
        if audio_end - self.start < opts.min_partial_audio_ms * RATE // 1000:
            return False
        stretch = 1.0 + (opts.max_load_stretch - 1.0) * min(max(load, 0.0), 1.0)
        interval = opts.partial_interval_ms * stretch / 1000
        if opts.partial_budget is not None and self.committed:
            # The budget applies once the first words are out: until then the
            # person waits for any text at all, and decodes of short audio are cheap.
            interval = max(interval, self._last_cost / opts.partial_budget)
        return audio_end - self._last_request_end >= int(interval * RATE)

    def requested(self, audio_end: int) -> None:
        """A partial decode up to `audio_end` was handed to a worker."""
        self.in_flight = True
        self._last_request_end = audio_end

    def dropped(self) -> None:
        """The in-flight partial was dropped (queue full or superseded)."""
        self.in_flight = False

    def on_partial(self, text: str, audio_end: int, compute_seconds: float = 0.0) -> str:
        """Apply LocalAgreement-2 to a new hypothesis; return the delta to emit ('' if none).

        `text` is the whole hypothesis (it begins with the committed text);
        `compute_seconds` is what the decode cost, for the compute budget.
        """
        self.in_flight = False
        self._last_cost = compute_seconds
        if audio_end < self._last_result_end:
            return ""  # an older result overtaken by a newer one
        self._last_result_end = audio_end
        words = split_words(text)
        n_done = len(self.committed)
        if [_norm(w) for w in words[:n_done]] != [_norm(w) for w in self.committed]:
            # The decoder did not keep the forced prefix; do not trust this hypothesis.
            self._previous = None
            return ""
        tail = words[n_done:]
        previous = self._previous
        self._previous = tail
        if previous is None:
            return ""
        agreed: list[str] = []
        # Only words followed by commit_lag_words more words in both hypotheses
        # can be agreed: the last ones may be cut off at the audio edge.
        lag = self.options.commit_lag_words
        for old, new in zip(previous[:-lag], tail[:-lag], strict=False):
            if _norm(old) != _norm(new) or not _norm(new):
                break
            agreed.append(new)
        if not agreed:
            return ""
        self._previous = tail[len(agreed) :]
        return self._commit(agreed)

    def on_final(self, text: str) -> tuple[str, str]:
        """Take the final hypothesis; return (last delta, full transcript).

        The transcript always starts with the committed text, so the deltas of an
        utterance concatenate to exactly its final transcript.
        """
        words = split_words(text)
        n_done = len(self.committed)
        rest = _drop_restart(words[n_done:], self.committed)
        delta = self._commit(rest) if rest else ""
        return delta, self.committed_text

    def _commit(self, words: list[str]) -> str:
        lead = " " if self.committed else ""
        if not self.committed and words and words[0].islower():
            # Whisper writes the first word of a short, unfinished clip in lower case
            # ("the quick brown"), though the finished sentence starts with a capital.
            words = [words[0][0].upper() + words[0][1:], *words[1:]]
        self.committed.extend(words)
        return lead + " ".join(words)


def _drop_restart(tail: list[str], committed: list[str]) -> list[str]:
    """The real continuation of a final whose tail starts the committed text over.

    After a forced prefix Whisper sometimes transcribes the whole utterance
    again ("... jumps over the quick brown fox jumps over the lazy dog"). Words
    before the restart are kept; a restart straight after the prefix is read as
    a fresh transcript, whose words beyond the committed ones continue it.
    """
    n = 3  # fewer words ("the") recur in ordinary sentences
    if len(committed) < n:
        return tail
    head = [_norm(w) for w in committed[:n]]
    normed = [_norm(w) for w in tail]
    for i in range(len(tail) - n + 1):
        if normed[i : i + n] == head:
            if i > 0:
                return tail[:i]
            restart = _drop_restart(tail[len(committed) :], committed)
            return restart if normed[: len(committed)] == [_norm(w) for w in committed] else []
    return tail
