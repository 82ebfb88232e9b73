"""SentenceSplitter: streamed text to sentences, whatever the chunk boundaries."""

from __future__ import annotations

import itertools

import pytest
from hypothesis import given
from hypothesis import strategies as st

from voxwire.engine.sentences import SentenceSplitter

TEXT = (
    "Hello there! Dr. Smith paid 3.5 dollars, e.g. for tea. Is it ready? "
    'She said "yes." Then J. Doe left…\nNew line here'
)
EXPECTED = [
    "Hello there!",
    "Dr. Smith paid 3.5 dollars, e.g. for tea.",
    "Is it ready?",
    'She said "yes."',
    "Then J. Doe left…",
    "New line here",
]


def split(chunks: list[str], **options: int) -> list[str]:
    splitter = SentenceSplitter(**options)
    out: list[str] = []
    for chunk in chunks:
        out.extend(splitter.feed(chunk))
    return out + splitter.flush()


def test_sentences_end_at_punctuation_not_at_abbreviations_or_numbers() -> None:
    assert split([TEXT]) == EXPECTED


def test_a_sentence_is_released_as_soon_as_it_is_complete() -> None:
    splitter = SentenceSplitter()
    assert splitter.feed("Hello there!") == []  # more punctuation or a quote may follow
    assert splitter.feed(" How") == ["Hello there!"]
    assert splitter.feed(" are") == []
    assert splitter.flush() == ["How are"]
    assert splitter.flush() == []


@given(st.lists(st.integers(min_value=1, max_value=len(TEXT) - 1), max_size=12))
def test_chunk_boundaries_do_not_change_the_sentences(cuts: list[int]) -> None:
    points = [0, *sorted(set(cuts)), len(TEXT)]
    chunks = [TEXT[a:b] for a, b in itertools.pairwise(points)]
    assert split(chunks) == EXPECTED


def test_run_on_text_is_cut_at_a_comma_or_space() -> None:
    words = "one two three, four five six seven eight nine ten " * 3
    sentences = split([words], max_chars=40)
    assert all(len(s) <= 40 for s in sentences)
    assert " ".join(sentences).split() == words.split()


def test_options_are_checked() -> None:
    with pytest.raises(ValueError):
        SentenceSplitter(max_chars=5, min_chars=5)
