"""Rendering transcriptions as text, json, verbose_json, srt and vtt."""

from __future__ import annotations

import json
import re

import pytest

from voxwire.models.interfaces import Segment, Transcription, Word
from voxwire.services.formats import (
    MEDIA_TYPES,
    ResponseFormat,
    format_timestamp,
    language_name,
    render,
    verbose_json,
)

SEGMENTS = (
    Segment(
        id=0,
        start=0.0,
        end=2.5,
        text=" Hello there.",
        words=(Word(" Hello", 0.0, 0.8, 0.9), Word(" there.", 0.9, 2.5, 0.8)),
        avg_logprob=-0.2,
        no_speech_prob=0.01,
        tokens=(50364, 2425, 456, 13),
        temperature=0.0,
        compression_ratio=0.8,
    ),
    Segment(id=1, start=2.5, end=2.5, text="   "),
    Segment(
        id=2,
        start=3661.0016,
        end=3662.9996,
        text="Second --> line\nsplit",
        words=(Word("Second", 3661.0, 3662.0),),
    ),
)
RESULT = Transcription(
    text=" Hello there. Second line split ", language="en", duration=3663.0, segments=SEGMENTS
)
EMPTY = Transcription(text="", language="en", duration=2.0)


@pytest.mark.parametrize(
    ("seconds", "srt", "vtt"),
    [
        (0.0, "00:00:00,000", "00:00:00.000"),
        (1.2345, "00:00:01,234", "00:00:01.234"),
        (1.2346, "00:00:01,235", "00:00:01.235"),
        (59.9996, "00:01:00,000", "00:01:00.000"),
        (3661.5, "01:01:01,500", "01:01:01.500"),
        (360000.0, "100:00:00,000", "100:00:00.000"),
        (-0.5, "00:00:00,000", "00:00:00.000"),
    ],
)
def test_format_timestamp(seconds: float, srt: str, vtt: str) -> None:
    assert format_timestamp(seconds) == srt
    assert format_timestamp(seconds, ".") == vtt


def test_text() -> None:
    assert render(RESULT, "text") == "Hello there. Second line split\n"
    assert render(EMPTY, ResponseFormat.TEXT) == ""


def test_json() -> None:
    assert json.loads(render(RESULT, "json")) == {"text": "Hello there. Second line split"}
    assert json.loads(render(EMPTY, "json")) == {"text": ""}


def test_verbose_json_shape() -> None:
    body = json.loads(render(RESULT, "verbose_json"))
    assert body["task"] == "transcribe"
    assert body["language"] == "english"
    assert body["duration"] == 3663.0
    assert body["text"] == "Hello there. Second line split"
    assert "words" not in body
    assert len(body["segments"]) == 3
    first = body["segments"][0]
    assert set(first) == {
        "id", "seek", "start", "end", "text", "tokens", "temperature",
        "avg_logprob", "compression_ratio", "no_speech_prob",
    }  # fmt: skip
    assert first["tokens"] == [50364, 2425, 456, 13]
    assert first["avg_logprob"] == -0.2
    assert first["seek"] == 0
    assert body["segments"][2]["seek"] == 366100
    assert body["segments"][2]["start"] == 3661.002


def test_verbose_json_words_and_task() -> None:
    body = verbose_json(RESULT, task="translate", word_timestamps=True)
    assert body["task"] == "translate"
    assert body["words"] == [
        {"word": "Hello", "start": 0.0, "end": 0.8},
        {"word": "there.", "start": 0.9, "end": 2.5},
        {"word": "Second", "start": 3661.0, "end": 3662.0},
    ]
    assert json.loads(render(EMPTY, "verbose_json", word_timestamps=True))["words"] == []


def test_language_name() -> None:
    assert language_name("en") == "english"
    assert language_name("DE") == "german"
    assert language_name("yue") == "cantonese"
    assert language_name("xx") == "xx"
    assert language_name("") == ""


def test_srt() -> None:
    assert render(RESULT, "srt") == (
        "1\n00:00:00,000 --> 00:00:02,500\nHello there.\n"
        "\n"
        "2\n01:01:01,002 --> 01:01:03,000\nSecond -> line split\n"
    )
    assert render(EMPTY, "srt") == ""


def test_vtt() -> None:
    assert render(RESULT, "vtt") == (
        "WEBVTT\n"
        "\n"
        "1\n00:00:00.000 --> 00:00:02.500\nHello there.\n"
        "\n"
        "2\n01:01:01.002 --> 01:01:03.000\nSecond -> line split\n"
    )
    assert render(EMPTY, "vtt") == "WEBVTT\n"


def test_cue_end_never_before_start() -> None:
    backwards = Transcription("x", "en", 5.0, (Segment(0, 3.0, 2.0, "x"),))
    assert "00:00:03,000 --> 00:00:03,000" in render(backwards, "srt")


SRT_CUE = re.compile(r"^\d+\n\d{2,}:\d{2}:\d{2},\d{3} --> \d{2,}:\d{2}:\d{2},\d{3}\n[^\n]+$")


def test_srt_blocks_parse() -> None:
    blocks = render(RESULT, "srt").strip("\n").split("\n\n")
    assert all(SRT_CUE.match(b) for b in blocks)
    assert [int(b.split("\n")[0]) for b in blocks] == [1, 2]


def test_unknown_format_is_rejected() -> None:
    with pytest.raises(ValueError):
        render(RESULT, "docx")


def test_every_format_has_a_media_type() -> None:
    assert set(MEDIA_TYPES) == set(ResponseFormat)
