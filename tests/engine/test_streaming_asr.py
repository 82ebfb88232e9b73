"""The streaming-ASR policy on scripted hypotheses: LocalAgreement-2 commits, the bounded
decode window, re-read detection from timestamps, tentative text and the cadence."""

import pytest
from hypothesis import given
from hypothesis import strategies as st

from voxwire.engine.streaming_asr import DecodeWindow, StreamingOptions, UtterancePolicy
from voxwire.models.interfaces import DecodeResult, Word

RATE = 16_000


def options(**changes: object) -> StreamingOptions:
    """StreamingOptions for the commit rules alone: words may commit from the first
    hypotheses (min_commit_audio_ms has a test of its own)."""
    return StreamingOptions(**{"min_commit_audio_ms": 0, **changes})  # type: ignore[arg-type]


LAG1 = options(commit_lag_words=1)
"""The plain LocalAgreement-2 rule for untimed words: only the very last word is held back."""


def heard(first: str, second: str) -> UtterancePolicy:
    """A policy (LAG1) that has heard two partials, of 0.5 s and 0.75 s of audio."""
    policy = UtterancePolicy(0, LAG1)
    policy.on_partial(first, 8000)
    policy.on_partial(second, 12000)
    return policy


def timed(window: DecodeWindow, *words: tuple[str, float, float]) -> DecodeResult:
    """A result for `window` whose words (prefix included) carry times in seconds from
    the window's start, as a backend's word alignment gives them."""
    return DecodeResult(
        text=" ".join(w for w, _, _ in words),
        words=tuple(Word(w, s, e) for w, s, e in words),
    )


def test_commits_only_what_two_hypotheses_agree_on() -> None:
    policy = UtterancePolicy(0, LAG1)
    assert policy.on_partial("the quick brown", 8000) == ""
    assert policy.on_partial("The quick brown fox", 12000) == "The quick"
    assert policy.committed_text == "The quick"
    # The next hypothesis starts with the committed text (forced prefix).
    assert policy.on_partial("The quick brown fox jumps", 16000) == " brown"
    assert policy.on_partial("The quick brown fox jamps over", 20000) == " fox"
    assert policy.on_partial("The quick brown fox jumps over", 24000) == ""
    assert policy.on_partial("The quick brown fox jumps over the", 28000) == " jumps"


def test_agreement_three_needs_three_hypotheses_in_a_row() -> None:
    policy = UtterancePolicy(0, options(commit_lag_words=1, agreement=3))
    assert policy.on_partial("the quick brown", 8000) == ""
    assert policy.on_partial("The quick brown fox", 12000) == ""  # two agree: not enough
    assert policy.on_partial("The quick crown fox jumps", 16000) == "The quick"
    # "brown"/"crown": the three disagree, so "brown" waits for three that agree again.
    assert policy.on_partial("The quick brown fox jumps", 20000) == ""
    assert policy.on_partial("The quick brown fox jumps over", 24000) == ""
    # The shortest of the three ends with "jumps": as the last word it is held back.
    assert policy.on_partial("The quick brown fox jumps over", 28000) == " brown fox"
    assert policy.on_final("The quick brown fox jumps over the dog") == " jumps over the dog"
    assert policy.committed_text == "The quick brown fox jumps over the dog"


def test_agreement_below_two_is_refused() -> None:
    with pytest.raises(ValueError, match="agreement"):
        options(agreement=1)


def test_the_last_word_is_never_committed_early() -> None:
    policy = UtterancePolicy(0, LAG1)
    policy.on_partial("fox jump", 8000)
    assert policy.on_partial("fox jump", 12000) == "Fox"
    assert policy.committed_text == "Fox"
    assert policy.on_final("fox jumps") == " jumps"
    assert policy.committed_text == "Fox jumps"


def test_the_prefix_leaves_off_a_final_full_stop() -> None:
    policy = heard("Turn on the lights. Thanks", "Turn on the lights. Thanks a lot")
    assert policy.committed_text == "Turn on the lights."
    assert policy.window().prefix == "Turn on the lights"


def test_final_completes_the_deltas_exactly() -> None:
    policy = UtterancePolicy(0, LAG1)
    deltas = [
        policy.on_partial("Please turn", 8000),
        policy.on_partial("Please turn on", 12000),
    ]
    last = policy.on_final("Please turn on the lights.")
    assert policy.committed_text == "Please turn on the lights."
    assert "".join([*deltas, last]) == policy.committed_text


def test_a_clause_that_repeats_the_opening_words_is_kept() -> None:
    """What the old restart heuristic dropped: the final's words are never judged by text."""
    policy = heard("It was the best of times", "It was the best of times")
    assert policy.committed_text == "It was the best of"
    policy.on_final("It was the best of times, it was the worst of times.")
    assert policy.committed_text == "It was the best of times, it was the worst of times."


def test_hypothesis_that_drops_the_forced_prefix_is_ignored() -> None:
    policy = heard("one two three four", "one two three four")
    assert policy.committed_text == "One two three"
    assert policy.on_partial("won too", 16000) == ""
    assert policy.committed_text == "One two three"
    policy.on_final("one two three four five")
    assert policy.committed_text == "One two three four five"


def test_stale_result_is_ignored() -> None:
    policy = UtterancePolicy(0, LAG1)
    policy.on_partial("a b c", 16000)
    assert policy.on_partial("a b c", 8000) == ""
    assert policy.committed_text == ""


def test_timed_words_commit_once_they_have_right_context() -> None:
    """With word times the audio edge is judged in time: a word that ends commit_guard_ms
    before the edge commits, also the last word of a phrase followed by a pause."""
    policy = UtterancePolicy(0, options(commit_guard_ms=240))
    w = policy.window()
    assert w.start == 0 and w.prefix == ""
    policy.on_partial(timed(w, ("turn", 0.1, 0.3), ("on", 0.3, 0.45), ("the", 0.5, 0.6)), 9600)
    # 0.9 s: "the" ends 0.3 s before the edge, "on" 0.45 s: both have right context.
    delta = policy.on_partial(
        timed(w, ("turn", 0.1, 0.3), ("on", 0.3, 0.45), ("the", 0.5, 0.6), ("li", 0.7, 0.9)),
        14_400,
    )
    assert delta == "Turn on the"
    assert policy.tentative_text == "li"
    # The phrase ends at 1.1 s; a pause follows (shorter than the VAD's hangover).
    p = policy.window()
    for end in (25_600, 30_400):
        delta = policy.on_partial(
            timed(
                p, ("turn", 0.1, 0.3), ("on", 0.3, 0.45), ("the", 0.5, 0.6), ("lights.", 0.7, 1.1)
            ),
            end,
        )
    assert delta == " lights."
    assert policy.tentative_text == ""


def test_words_before_a_heard_pause_need_no_right_context() -> None:
    """A speculative final whose utterance went on is a hypothesis whose words up to the
    VAD's speech end are whole: matched with the hypothesis before or after it, they
    commit at once; a word decoded in the pause's padding still waits for right context."""
    policy = UtterancePolicy(0, options(commit_guard_ms=500))
    w = policy.window()
    before = timed(w, ("he", 0.1, 0.3), ("was", 0.3, 0.5), ("not", 0.5, 0.8))
    assert policy.on_partial(before, 13_600) == ""  # 0.85 s: every word within the guard
    # Speech stopped at 0.8 s; the speculative final decoded up to 0.96 s.
    paused = timed(w, ("he", 0.1, 0.3), ("was", 0.3, 0.5), ("not", 0.5, 0.8), ("no", 0.9, 0.95))
    assert policy.on_hypothesis(paused, 15_360, w, whole_until=12_800) == "He was not"
    assert policy.tentative_text == "no"
    # The next partial (speech resumed) agrees with the paused words, not with "no".
    policy2 = UtterancePolicy(0, options(commit_guard_ms=500))
    policy2.on_hypothesis(paused, 15_360, w, whole_until=12_800)
    after = timed(w, ("he", 0.1, 0.3), ("was", 0.3, 0.5), ("not", 0.5, 0.8), ("an", 1.0, 1.1))
    assert policy2.on_partial(after, 18_400) == "He was not"
    assert policy2.tentative_text == "an"


def test_the_window_starts_at_a_committed_word_with_a_short_left_context() -> None:
    policy = UtterancePolicy(16_000, options(left_context_ms=1000, commit_guard_ms=100))
    w = policy.window()
    words = [(f"w{i}", 0.5 * i, 0.5 * i + 0.4) for i in range(8)]  # 4 s of words
    policy.on_partial(timed(w, *words), 16_000 + 4 * RATE)
    policy.on_partial(timed(w, *words), 16_000 + int(4.2 * RATE))
    assert policy.committed == ["W0", "w1", "w2", "w3", "w4", "w5", "w6", "w7"]
    window = policy.window()
    # The last committed word ends at 3.9 s: the context reaches back to a word that
    # starts at or before 2.9 s (w5 at 2.5 s), cut in the gap before it.
    assert window.prefix == "w5 w6 w7"
    assert window.prefix_words == 3
    assert window.context == "W0 w1 w2 w3 w4"
    assert window.start == 16_000 + int(2.45 * RATE)
    assert window.committed_end == 16_000 + int(3.9 * RATE)
    # The next decode covers only that window; its new words get absolute times.
    tail = [("w5", 0.05, 0.45), ("w6", 0.55, 0.95), ("w7", 1.05, 1.45), ("w8", 1.55, 1.95)]
    end = window.start + 3 * RATE
    policy.on_partial(timed(window, *tail), end, window)
    assert policy.on_partial(timed(window, *tail), end + 1600, window) == " w8"
    assert policy.words[-1].start == window.start + int(1.55 * RATE)
    assert policy.window().start > window.start


def test_a_decode_that_rereads_committed_audio_is_not_used() -> None:
    policy = UtterancePolicy(0, options(commit_guard_ms=100, left_context_ms=500))
    w = policy.window()
    first = [("one", 0.0, 0.4), ("two", 0.5, 0.9), ("three", 1.0, 1.4), ("four", 1.5, 1.9)]
    policy.on_partial(timed(w, *first), 2 * RATE + 4000)
    policy.on_partial(timed(w, *first), 2 * RATE + 8000)
    assert policy.committed_text == "One two three four"
    window = policy.window()
    assert window.prefix == "three four"
    # The decoder starts the context over: its new words lie inside the committed audio.
    reread = timed(
        window,
        ("three", 0.0, 0.1),
        ("four", 0.1, 0.2),
        ("three", 0.2, 0.6),
        ("four", 0.7, 1.1),
        ("five", 1.2, 1.5),
    )
    assert policy.final_rereads(reread, window)
    assert policy.on_partial(reread, 3 * RATE, window) == ""
    assert policy.on_partial(reread, 3 * RATE + 1600, window) == ""
    assert policy.committed_text == "One two three four"
    fresh = policy.fresh_window()
    assert (fresh.prefix, fresh.prefix_words) == ("", 0)
    assert fresh.context == "One two three four"
    assert fresh.start == policy.words[-1].end
    assert policy.on_final(DecodeResult(text="five."), fresh) == " five."
    assert policy.committed_text == "One two three four five."


def test_words_waiting_too_long_for_agreement_are_committed() -> None:
    """Hypotheses that never agree must not let the window grow without bound."""
    policy = UtterancePolicy(0, options(max_tentative_s=4.0))
    w = policy.window()
    a = [(f"a{i}", 0.5 * i, 0.5 * i + 0.4) for i in range(12)]
    b = [(f"b{i}", 0.5 * i, 0.5 * i + 0.4) for i in range(12)]
    assert policy.on_partial(timed(w, *a), 6 * RATE) == ""
    # 6.5 s: the first word waited over 4 s: words ending 2 s before the edge commit.
    assert policy.on_partial(timed(w, *b), int(6.5 * RATE)) == "B0 b1 b2 b3 b4 b5 b6 b7 b8"


def test_nothing_commits_before_the_utterance_holds_min_commit_audio() -> None:
    policy = UtterancePolicy(0, StreamingOptions(min_commit_audio_ms=2500, commit_lag_words=1))
    for end in (16_000, 24_000, 32_000):
        assert policy.on_partial("turn on the lights in the kitchen", end) == ""
    assert policy.tentative_text == "turn on the lights in the kitchen"
    assert policy.on_partial("turn on the lights in the kitchen", 40_000) == (
        "Turn on the lights in the"
    )


def test_cadence_waits_for_audio_and_one_in_flight() -> None:
    opts = options(partial_interval_ms=300, min_partial_audio_ms=600)
    policy = UtterancePolicy(1000, opts)
    assert not policy.partial_due(1000 + int(0.5 * RATE))
    assert policy.partial_due(1000 + int(0.6 * RATE))
    policy.requested(1000 + int(0.6 * RATE))
    assert not policy.partial_due(1000 + int(2.0 * RATE))  # one in flight
    policy.on_partial("x", 1000 + int(0.6 * RATE))
    assert not policy.partial_due(1000 + int(0.8 * RATE))
    assert policy.partial_due(1000 + int(0.9 * RATE))


def test_load_stretches_the_cadence() -> None:
    opts = options(partial_interval_ms=300, min_partial_audio_ms=0, max_load_stretch=4)
    policy = UtterancePolicy(0, opts)
    policy.requested(0)
    policy.on_partial("", 0)
    at = int(0.6 * RATE)
    assert policy.partial_due(at, load=0.0)
    assert not policy.partial_due(at, load=1.0)
    assert policy.partial_due(int(1.2 * RATE), load=1.0)


def test_under_load_tentative_text_degrades_before_commits() -> None:
    opts = options(partial_interval_ms=300, min_partial_audio_ms=0, max_load_stretch=4)
    w = UtterancePolicy(0, opts).window()
    at = int(1.5 * RATE)
    # The last hypothesis holds a word that has right context by now: a decode could commit.
    committable = UtterancePolicy(0, opts)
    committable.requested(int(1.2 * RATE))
    committable.on_partial(timed(w, ("turn", 0.1, 0.4), ("on", 0.5, 0.7)), int(1.2 * RATE))
    # Only a word at the audio edge: a decode could just refresh the tentative text.
    tentative = UtterancePolicy(0, opts)
    tentative.requested(int(1.2 * RATE))
    tentative.on_partial(timed(w, ("turn", 1.0, 1.2)), int(1.2 * RATE))
    assert committable.partial_due(at, load=0.5)
    assert not tentative.partial_due(at, load=0.5)
    assert tentative.partial_due(int(1.2 * RATE) + int(0.75 * RATE), load=0.5)
    # At full load both wait four intervals.
    assert not committable.partial_due(int(2.3 * RATE), load=1.0)
    assert committable.partial_due(int(2.4 * RATE), load=1.0)


def test_compute_budget_spaces_out_expensive_partials() -> None:
    opts = options(
        partial_interval_ms=300, min_partial_audio_ms=0, partial_budget=0.1, commit_lag_words=1
    )
    policy = UtterancePolicy(0, opts)
    policy.requested(0)
    policy.on_partial(DecodeResult("a b", compute_seconds=0.05), 0)
    # Until the first words are committed the budget does not apply.
    assert policy.partial_due(int(0.3 * RATE))
    policy.requested(int(0.3 * RATE))
    assert policy.on_partial(DecodeResult("a b c", compute_seconds=0.05), int(0.3 * RATE)) == "A"
    # 50 ms per decode -> wait 500 ms of audio
    assert not policy.partial_due(int(0.75 * RATE))
    assert policy.partial_due(int(0.8 * RATE))
    unbounded = UtterancePolicy(0, options(min_partial_audio_ms=0, partial_budget=None))
    unbounded.requested(0)
    unbounded.on_partial(DecodeResult("a b", compute_seconds=0.05), 0)
    assert unbounded.partial_due(int(0.3 * RATE))


def test_untimed_words_hold_back_two_words_by_default() -> None:
    policy = UtterancePolicy(0, options())
    policy.on_partial("the quit brown fox", 8000)
    assert policy.on_partial("the quick brown fox jumps", 12000) == "The"
    assert policy.on_partial("the quick brown fox jumps over", 16000) == " quick brown"


SENTENCE = [
    "The",
    "quick",
    "brown",
    "fox",
    "jumps",
    "over",
    "the",
    "lazy",
    "dog",
    "and",
    "then",
    "the",
    "fox",
    "sleeps.",
]


@st.composite
def partial_hypotheses(draw: st.DrawFn) -> list[list[str]]:
    """Growing prefixes of SENTENCE, some lower-cased or with the last word cut."""
    hyps = []
    for n in draw(st.lists(st.integers(1, len(SENTENCE)), max_size=8)):
        words = list(SENTENCE[:n])
        if draw(st.booleans()):
            words[0] = words[0].lower()
        if draw(st.booleans()) and len(words[-1]) > 1:
            words[-1] = words[-1][:-1]
        hyps.append(words)
    return hyps


@given(partial_hypotheses(), st.integers(1, 3), st.booleans())
def test_deltas_always_add_up_to_the_whole_final(
    hyps: list[list[str]], lag: int, with_times: bool
) -> None:
    policy = UtterancePolicy(0, options(commit_lag_words=lag, left_context_ms=300))
    deltas = []
    for i, words in enumerate(hyps):
        end = 8000 + 4000 * i
        window = policy.window()
        # The decoder is forced to start with the window's prefix; the words are 0.25 s
        # apart from the utterance start.
        n_before = len(policy.words) - window.prefix_words
        text = " ".join(
            policy.committed[n_before:] + words[len(policy.words) :]
            if len(words) > len(policy.words)
            else policy.committed[n_before:]
        )
        if with_times:
            n = len(text.split())
            offsets = [(n_before + k) * 4000 - window.start for k in range(n)]
            result = DecodeResult(
                text=text,
                words=tuple(
                    Word(word, o / RATE, (o + 3000) / RATE)
                    for word, o in zip(text.split(), offsets, strict=True)
                ),
            )
        else:
            result = DecodeResult(text=text)
        deltas.append(policy.on_partial(result, end, window))
    committed = policy.committed_text
    window = policy.window()
    n_before = len(policy.words) - window.prefix_words
    final = " ".join(policy.committed[n_before:] + SENTENCE[len(policy.words) :])
    last = policy.on_final(final, window)
    assert policy.committed_text.startswith(committed)
    assert "".join([*deltas, last]) == policy.committed_text
    assert len(policy.committed_text.split()) == len(SENTENCE)


def test_the_first_committed_word_gets_a_capital() -> None:
    """Whisper writes short unfinished clips in lower case; the sentence starts with a capital,
    and later words are left as the recogniser wrote them."""
    policy = UtterancePolicy(0, LAG1)
    policy.on_partial("the quick brown", 8000)
    assert policy.on_partial("the quick brown fox", 12000) == "The quick"
    assert policy.window().prefix == "The quick"
    assert policy.on_partial("The quick brown fox jumps", 16000) == " brown"
    mixed = UtterancePolicy(0, LAG1)
    mixed.on_partial("iPhone sales rose", 8000)
    assert mixed.on_partial("iPhone sales rose again", 12000) == "iPhone sales"
