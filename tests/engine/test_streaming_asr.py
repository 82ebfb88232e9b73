"""LocalAgreement-2 commit policy and decode cadence, on scripted hypotheses."""

from hypothesis import given
from hypothesis import strategies as st

from voxwire.engine.streaming_asr import StreamingOptions, UtterancePolicy

RATE = 16_000
LAG1 = StreamingOptions(commit_lag_words=1)
"""The plain LocalAgreement-2 rule: only the very last word is held back."""


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


def test_the_last_word_is_never_committed_early() -> None:
    policy = UtterancePolicy(0, LAG1)
    policy.on_partial("fox jump", 8000)
    assert policy.on_partial("fox jump", 12000) == "Fox"
    assert policy.committed_text == "Fox"
    _, transcript = policy.on_final("fox jumps")
    assert transcript == "Fox jumps"


def test_decode_prefix_leaves_off_a_final_full_stop() -> None:
    policy = UtterancePolicy(0, LAG1)
    policy.on_partial("Turn on the lights. Thanks", 8000)
    policy.on_partial("Turn on the lights. Thanks a lot", 12000)
    assert policy.committed_text == "Turn on the lights."
    assert policy.decode_prefix == "Turn on the lights"


def test_final_that_restarts_the_text_is_cut() -> None:
    policy = UtterancePolicy(0, LAG1)
    policy.on_partial("Please turn on the lights now", 8000)
    policy.on_partial("Please turn on the lights now", 12000)
    assert policy.committed_text == "Please turn on the lights"
    _, transcript = policy.on_final("Please turn on the lights now. Please turn on the")
    assert transcript == "Please turn on the lights now."


def test_final_completes_the_deltas_exactly() -> None:
    policy = UtterancePolicy(0, LAG1)
    deltas = [
        policy.on_partial("Please turn", 8000),
        policy.on_partial("Please turn on", 12000),
    ]
    last, transcript = policy.on_final("Please turn on the lights.")
    assert transcript == "Please turn on the lights."
    assert "".join([*deltas, last]) == transcript


def test_hypothesis_that_drops_the_forced_prefix_is_ignored() -> None:
    policy = UtterancePolicy(0, LAG1)
    policy.on_partial("one two three four", 8000)
    policy.on_partial("one two three four", 12000)
    assert policy.committed_text == "One two three"
    assert policy.on_partial("won too", 16000) == ""
    assert policy.committed_text == "One two three"
    _, transcript = policy.on_final("one two three four five")
    assert transcript == "One two three four five"


def test_stale_result_is_ignored() -> None:
    policy = UtterancePolicy(0, LAG1)
    policy.on_partial("a b c", 16000)
    assert policy.on_partial("a b c", 8000) == ""
    assert policy.committed_text == ""


def test_cadence_waits_for_audio_and_one_in_flight() -> None:
    opts = StreamingOptions(partial_interval_ms=300, min_partial_audio_ms=600)
    policy = UtterancePolicy(1000, opts)
    assert not policy.partial_due(1000 + int(0.5 * RATE))
    assert policy.partial_due(1000 + int(0.6 * RATE))
    policy.requested(1000 + int(0.6 * RATE))
    assert not policy.partial_due(1000 + int(2.0 * RATE))  # one in flight
    policy.on_partial("x", 1000 + int(0.6 * RATE))
    assert not policy.partial_due(1000 + int(0.8 * RATE))
    assert policy.partial_due(1000 + int(0.9 * RATE))


def test_load_stretches_the_cadence() -> None:
    opts = StreamingOptions(partial_interval_ms=300, min_partial_audio_ms=0, max_load_stretch=4)
    policy = UtterancePolicy(0, opts)
    policy.requested(0)
    policy.on_partial("", 0)
    at = int(0.6 * RATE)
    assert policy.partial_due(at, load=0.0)
    assert not policy.partial_due(at, load=1.0)
    assert policy.partial_due(int(1.2 * RATE), load=1.0)


def test_compute_budget_spaces_out_expensive_partials() -> None:
    opts = StreamingOptions(
        partial_interval_ms=300, min_partial_audio_ms=0, partial_budget=0.1, commit_lag_words=1
    )
    policy = UtterancePolicy(0, opts)
    policy.requested(0)
    policy.on_partial("a b", 0, compute_seconds=0.05)
    # Until the first words are committed the budget does not apply.
    assert policy.partial_due(int(0.3 * RATE))
    policy.requested(int(0.3 * RATE))
    assert policy.on_partial("a b c", int(0.3 * RATE), compute_seconds=0.05) == "A"
    # 50 ms per decode -> wait 500 ms of audio
    assert not policy.partial_due(int(0.75 * RATE))
    assert policy.partial_due(int(0.8 * RATE))
    unbounded = UtterancePolicy(0, StreamingOptions(min_partial_audio_ms=0, partial_budget=None))
    unbounded.requested(0)
    unbounded.on_partial("a b", 0, compute_seconds=0.05)
    assert unbounded.partial_due(int(0.3 * RATE))


def test_default_holds_back_two_words_for_right_context() -> None:
    policy = UtterancePolicy(0)
    policy.on_partial("the quit brown fox", 8000)
    assert policy.on_partial("the quick brown fox jumps", 12000) == "The"
    assert policy.on_partial("the quick brown fox jumps over", 16000) == " quick brown"


def test_final_that_starts_over_right_after_the_prefix_keeps_its_continuation() -> None:
    policy = UtterancePolicy(0, LAG1)
    policy.on_partial("the quick brown fox jumps over the", 8000)
    policy.on_partial("the quick brown fox jumps over the lazy", 12000)
    assert policy.committed_text == "The quick brown fox jumps over"
    _, transcript = policy.on_final(
        "the quick brown fox jumps over The quick brown fox jumps over the lazy dog."
    )
    assert transcript == "The quick brown fox jumps over the lazy dog."


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
def partial_hypotheses(draw: st.DrawFn) -> list[str]:
    """Growing prefixes of SENTENCE, some lower-cased or with the last word cut."""
    hyps = []
    for n in draw(st.lists(st.integers(1, len(SENTENCE)), max_size=8)):
        words = list(SENTENCE[:n])
        if draw(st.booleans()):
            words[0] = words[0].lower()
        if draw(st.booleans()) and len(words[-1]) > 1:
            words[-1] = words[-1][:-1]
        hyps.append(words)
    return [" ".join(h) for h in hyps]


@given(partial_hypotheses(), st.integers(1, 3))
def test_deltas_always_add_up_to_the_whole_final(hyps: list[str], lag: int) -> None:
    policy = UtterancePolicy(0, StreamingOptions(commit_lag_words=lag))
    deltas = []
    for i, hyp in enumerate(hyps):
        # The decoder is forced to start with the committed words.
        words = hyp.split()
        done = policy.committed
        forced = done + words[len(done) :] if len(words) > len(done) else list(done)
        deltas.append(policy.on_partial(" ".join(forced), 8000 + 4000 * i))
    committed = policy.committed_text
    final = " ".join(policy.committed + SENTENCE[len(policy.committed) :])
    last, transcript = policy.on_final(final)
    assert transcript.startswith(committed)
    assert "".join([*deltas, last]) == transcript
    assert len(transcript.split()) == len(SENTENCE)


def test_the_first_committed_word_gets_a_capital() -> None:
    """Whisper writes short unfinished clips in lower case; the sentence starts with a capital,
    and later words are left as the recogniser wrote them."""
    policy = UtterancePolicy(0, LAG1)
    policy.on_partial("the quick brown", 8000)
    assert policy.on_partial("the quick brown fox", 12000) == "The quick"
    assert policy.decode_prefix == "The quick"
    assert policy.on_partial("The quick brown fox jumps", 16000) == " brown"
    mixed = UtterancePolicy(0, LAG1)
    mixed.on_partial("iPhone sales rose", 8000)
    assert mixed.on_partial("iPhone sales rose again", 12000) == "iPhone sales"
