"""Hard cases for streaming transcription, synthesised with the embedded Piper voice and
espeak-ng (tests/speech.py): text that trips a streaming policy, and audio without speech.

* ``repeated_clauses`` (Piper): clauses that start with the same words ("it was the
  ...") in one breath -- a policy that takes a repeated opening for Whisper starting
  over drops whole clauses.
* ``number_list`` (Piper) and ``number_list_espeak`` (espeak-ng): a list of numbers.
* ``repeated_words`` (Piper) and ``repeated_words_espeak``: "no, no, no" -- genuine
  repetition a deduplicating policy must keep.
* ``long_sentence`` (Piper, about 40 s): one sentence whose phrases are joined by only
  150-300 ms of silence, so the VAD (silence_duration_ms 500) never closes the
  utterance; longer than max_utterance_s (30 s), so the segmenter has to cut it.
* ``noise`` (white and brown noise) and ``silence`` (digital silence and a faint hiss):
  no speech, so the transcript must be empty (no invented text).
"""

from __future__ import annotations

import functools
from collections.abc import Callable

import numpy as np
import numpy.typing as npt

from tests import speech
from tests.corpus import Case

SAMPLE_RATE = speech.SAMPLE_RATE
Audio = npt.NDArray[np.float32]

REPEATED_CLAUSES = (
    "It was the best of times, it was the worst of times, it was the age of wisdom, "
    "it was the age of foolishness, it was the epoch of belief, it was the epoch of "
    "incredulity, it was the season of light, it was the season of darkness."
)
NUMBER_LIST = (
    "Seven, fourteen, twenty one, twenty eight, thirty five, forty two, forty nine, "
    "fifty six, sixty three, seventy."
)
NUMBER_LIST_ESPEAK = "Three, six, nine, twelve, fifteen, eighteen, twenty one, twenty four."
REPEATED_WORDS = "No, no, no, I said no. Not today, not tomorrow, no, no, never."
REPEATED_WORDS_ESPEAK = "Yes, yes, yes, I heard you the first time, yes."

LONG_SENTENCE_PHRASES = (
    "When the morning train finally pulled into the old station",
    "the passengers who had waited on the cold platform since dawn",
    "picked up their bags and their umbrellas and their sleeping children",
    "and climbed aboard without a word to one another",
    "because the announcement about the delay had come three times already",
    "and nobody believed that the timetable meant anything any more",
    "while the conductor walked slowly along the carriages",
    "checking every ticket twice and apologising to each traveller in turn",
    "as the rain kept drumming on the glass roof above the tracks",
    "and the small cafe at the end of the platform",
    "opened its shutters for the first customers of the day",
    "who wanted nothing more than a hot drink and a quiet seat by the window",
    "before the long journey north to the mountains began at last",
)
LONG_SENTENCE = " ".join(LONG_SENTENCE_PHRASES) + "."
LONG_PAUSE_RANGE_S = (0.15, 0.30)


def trim(audio: Audio, threshold: float = 0.01, keep_s: float = 0.02) -> Audio:
    """`audio` without its leading and trailing quiet (below `threshold`), keeping
    `keep_s` of it on each side so no word onset or ending is cut."""
    loud = np.flatnonzero(np.abs(audio) > threshold)
    if not len(loud):
        return audio[:0]
    keep = round(keep_s * SAMPLE_RATE)
    return audio[max(0, loud[0] - keep) : loud[-1] + 1 + keep]


def _padded(audio: Audio, lead_s: float = 0.5, tail_s: float = 1.0) -> Audio:
    return np.concatenate([speech.silence(lead_s), audio, speech.silence(tail_s)])


@functools.cache
def _long_sentence() -> bytes:
    rng = np.random.default_rng(12)
    parts: list[Audio] = []
    for i, phrase in enumerate(LONG_SENTENCE_PHRASES):
        if i:
            parts.append(speech.silence(float(rng.uniform(*LONG_PAUSE_RANGE_S))))
        parts.append(trim(speech.synthesize(phrase)))
    return _padded(np.concatenate(parts)).tobytes()


def long_sentence() -> Audio:
    """About 40 s of Piper phrases joined by 150-300 ms pauses (seeded)."""
    return np.frombuffer(_long_sentence(), dtype=np.float32).copy()


def noise(seconds: float = 6.0, seed: int = 3) -> Audio:
    """White noise (-32 dBFS RMS) then brown noise (a rumble), no speech."""
    rng = np.random.default_rng(seed)
    n = round(seconds * SAMPLE_RATE)
    white = rng.normal(0.0, 0.025, n // 2)
    brown = np.cumsum(rng.normal(0.0, 1.0, n - n // 2))
    brown -= np.linspace(brown[0], brown[-1], len(brown))  # no drift
    brown *= 0.05 / (np.abs(brown).max() or 1.0)
    return np.concatenate([white, brown]).astype(np.float32)


def silence(seconds: float = 6.0, seed: int = 4) -> Audio:
    """Digital silence, then a faint hiss (-66 dBFS RMS) as a quiet room's microphone
    gives."""
    rng = np.random.default_rng(seed)
    half = round(seconds * SAMPLE_RATE / 2)
    hiss = rng.normal(0.0, 0.0005, half).astype(np.float32)
    return np.concatenate([speech.silence(seconds / 2), hiss]).astype(np.float32)


def _say(voice: Callable[[str], Audio], text: str) -> Audio:
    return _padded(voice(text))


def _spoken(name: str, text: str, by: str = "Piper") -> Case:
    """The case `name`: `text` spoken by Piper or espeak-ng (`by`), with silence around it."""
    voice = speech.espeak if by == "espeak-ng" else speech.synthesize
    return Case(name, text, functools.partial(_say, voice, text), by)


SYNTH_CASES: tuple[Case, ...] = (
    _spoken("repeated_clauses", REPEATED_CLAUSES),
    _spoken("number_list", NUMBER_LIST),
    _spoken("number_list_espeak", NUMBER_LIST_ESPEAK, by="espeak-ng"),
    _spoken("repeated_words", REPEATED_WORDS),
    _spoken("repeated_words_espeak", REPEATED_WORDS_ESPEAK, by="espeak-ng"),
    Case("long_sentence", LONG_SENTENCE, long_sentence, "Piper phrases, 150-300 ms pauses"),
    Case("noise", "", noise, "white and brown noise"),
    Case("silence", "", silence, "digital silence and faint hiss"),
)
