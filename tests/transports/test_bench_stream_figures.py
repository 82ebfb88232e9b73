"""The figures of `voxwire bench stream` computed without a server: phrase ends from the
audio's energy, each phrase's last word, word matching, WER and the latency arithmetic."""

from __future__ import annotations

import asyncio
import io
import json
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pytest
from rich.console import Console
from websockets.asyncio.server import Server, ServerConnection, serve

from voxwire.engine.audio import MODEL_RATE as RATE
from voxwire.transports.bench.stream import (
    COMPLETED,
    DELTA,
    STARTED,
    STATS,
    STOPPED,
    TENTATIVE,
    ItemTimes,
    Offline,
    PhraseTarget,
    QuietGap,
    StreamBenchOptions,
    StreamRecord,
    TextEvent,
    TimedWord,
    decode_figures,
    default_levels,
    first_holding_times,
    level_figures,
    matched_positions,
    normalise_words,
    offline_tokens,
    parse_levels,
    phrase_end_send_times,
    phrase_latencies,
    phrase_targets,
    print_table,
    quiet_gaps,
    read_reference,
    run_streams,
    stagger_seconds,
    summarise,
    target_checks,
    text_snapshots,
    transcription_update,
    word_error_rate,
)


def _tone(seconds: float, level: float = 0.3) -> npt.NDArray[np.float32]:
    t = np.arange(int(RATE * seconds)) / RATE
    return (level * np.sin(2 * np.pi * 220.0 * t)).astype(np.float32)


def _quiet(seconds: float, noise: float = 0.0, seed: int = 0) -> npt.NDArray[np.float32]:
    rng = np.random.default_rng(seed)
    return (noise * rng.standard_normal(int(RATE * seconds))).astype(np.float32)


def _speech(*parts: tuple[str, float], noise: float = 0.0) -> npt.NDArray[np.float32]:
    """("s", seconds) for a burst of "speech", ("q", seconds) for quiet, with background."""
    pieces = [_tone(d) if kind == "s" else np.zeros(int(RATE * d), np.float32) for kind, d in parts]
    audio = np.concatenate(pieces)
    return (audio + _quiet(len(audio) / RATE, noise)).astype(np.float32)


# -- phrase ends -------------------------------------------------------------------------


def test_phrase_ends_are_quiet_gaps_of_at_least_170_ms_after_speech() -> None:
    audio = _speech(
        ("q", 0.4),  # leading quiet: no phrase has ended yet
        ("s", 0.5),
        ("q", 0.3),  # a phrase end
        ("s", 0.5),
        ("q", 0.1),  # too short: the phrase goes on
        ("s", 0.5),
        ("q", 0.5),  # the last phrase end
    )
    gaps = quiet_gaps(audio)
    assert [(round(g.start, 2), round(g.end, 2)) for g in gaps] == [(0.9, 1.2), (2.3, 2.8)]


@pytest.mark.parametrize(("gap_s", "ends"), [(0.16, 1), (0.18, 2), (0.25, 2)])
def test_the_170_ms_boundary(gap_s: float, ends: int) -> None:
    audio = _speech(("s", 0.5), ("q", gap_s), ("s", 0.5), ("q", 0.4))
    assert len(quiet_gaps(audio)) == ends


def test_phrase_ends_in_a_noisy_recording() -> None:
    # Background noise 26 dB under the speech: quiet is judged against the noise floor.
    audio = _speech(("s", 0.6), ("q", 0.3), ("s", 0.6), ("q", 0.4), noise=0.01)
    gaps = quiet_gaps(audio)
    assert [round(g.start, 1) for g in gaps] == [0.6, 1.5]


def test_a_click_in_a_pause_ends_no_phrase() -> None:
    click = _tone(0.01, level=0.5)
    audio = np.concatenate(
        [_tone(0.5), np.zeros(int(RATE * 0.4), np.float32), click, np.zeros(RATE // 2, np.float32)]
    )
    assert len(quiet_gaps(audio)) == 1


def test_silence_alone_has_no_phrase_end() -> None:
    assert quiet_gaps(np.zeros(RATE * 2, np.float32)) == []
    assert quiet_gaps(np.zeros(0, np.float32)) == []


# -- the last word of each phrase ---------------------------------------------------------


def _words(*timed: tuple[str, float, float]) -> list[TimedWord]:
    return [TimedWord(w, s, e) for w, s, e in timed]


def test_each_phrase_gets_the_last_word_before_its_gap() -> None:
    words = _words(
        ("And", 0.3, 0.5),
        ("so,", 0.5, 0.7),
        ("my", 0.7, 0.9),
        ("fellow", 0.9, 1.3),
        ("Americans,", 1.3, 2.3),  # its end runs into the pause (2.13 - 3.28)
        ("ask", 2.9, 3.6),  # and this start is pulled back into it
        ("not.", 4.0, 4.3),
    )
    gaps = [QuietGap(2.13, 3.28), QuietGap(4.31, 5.0)]
    targets = phrase_targets(gaps, words)
    tokens, _ = offline_tokens(words)
    assert [t.word for t in targets] == ["Americans,", "not."]
    assert [tokens[t.token] for t in targets] == ["americans", "not"]
    assert [t.end_s for t in targets] == [2.13, 4.31]


def test_a_phrase_without_a_word_of_its_own_gets_no_target() -> None:
    words = _words(("Hello", 0.1, 0.5), ("—", 0.5, 0.6), ("world", 1.5, 1.9))
    # A breath between 0.7 and 0.9 makes a second gap before "world".
    gaps = [QuietGap(0.55, 0.7), QuietGap(0.9, 1.4), QuietGap(2.0, 2.5)]
    targets = phrase_targets(gaps, words)
    assert [t.word for t in targets] == ["Hello", "world"]


def test_offline_tokens_map_words_to_their_last_token() -> None:
    tokens, last = offline_tokens(_words(("well-known", 0, 1), ("—", 1, 2), ("Don't", 2, 3)))
    assert tokens == ["well", "known", "don't"]
    assert last == [1, None, 2]


# -- words and WER ------------------------------------------------------------------------


def test_normalise_words() -> None:
    assert normalise_words("And so, my fellow Americans: ask NOT!") == [
        "and",
        "so",
        "my",
        "fellow",
        "americans",
        "ask",
        "not",
    ]
    assert normalise_words("Don\u2019t 'quote' me") == ["don't", "quote", "me"]
    assert normalise_words("  ...  ") == []


def test_word_error_rate() -> None:
    assert word_error_rate("the cat sat", "The cat sat.") == 0.0
    assert word_error_rate("the cat sat", "the cat") == pytest.approx(1 / 3)
    assert word_error_rate("the cat sat", "a cat sat down") == pytest.approx(2 / 3)
    assert word_error_rate("the cat sat", "") == 1.0
    assert word_error_rate("", "anything") is None


# -- does the text hold the word? ----------------------------------------------------------


REFERENCE = normalise_words(
    "it was the best of times it was the worst of times it was the age of wisdom"
)


def test_matched_positions_follow_the_alignment() -> None:
    # A prefix holds its words and nothing after it.
    assert matched_positions(REFERENCE, normalise_words("It was the best of times")) == set(
        range(6)
    )
    # A misheard word is not matched; the words around it are.
    matched = matched_positions(REFERENCE, normalise_words("it was the best of dimes it was"))
    assert 5 not in matched and {0, 1, 2, 3, 4, 6, 7} <= matched
    # A repeated opening matches the repetition, not the first occurrence again.
    matched = matched_positions(
        REFERENCE, normalise_words("it was the best of times it was the worst of times")
    )
    assert matched == set(range(12))
    assert matched_positions(REFERENCE, []) == set()


def test_first_holding_times() -> None:
    timeline = [
        (1.0, "it was the best"),
        (2.0, "it was the best of dimes"),
        (3.0, "it was the best of times it was the worst"),
        (4.0, "it was the best of times it was the worst of times"),
    ]
    times_token = 5  # "times" that ends the first phrase
    worst_times = 11  # "times" that ends the second
    wisdom = 17
    assert first_holding_times(timeline, REFERENCE, [times_token, worst_times, wisdom]) == [
        3.0,
        4.0,
        None,
    ]


def test_text_snapshots_stable_and_any() -> None:
    events = [
        TextEvent(1.0, TENTATIVE, "a", "It was"),
        TextEvent(1.5, DELTA, "a", "It"),
        TextEvent(1.6, TENTATIVE, "a", "was the best"),
        TextEvent(2.0, DELTA, "a", " was the"),
        TextEvent(2.5, COMPLETED, "a", "It was the best of times."),
        TextEvent(3.0, TENTATIVE, "b", "it was"),
    ]
    snapshots = text_snapshots(events)
    stable = [s for _, s, _ in snapshots]
    shown = [" ".join(a.split()) for _, _, a in snapshots]
    assert stable[0] == "" and shown[0] == "It was"
    assert stable[2] == "It" and shown[2] == "It was the best"
    assert stable[3] == "It was the"
    assert stable[4] == "It was the best of times." == shown[4]  # the tentative is gone
    assert shown[5] == "It was the best of times. it was"
    assert stable[5].strip() == "It was the best of times."


def test_items_read_in_the_order_they_started_not_completed() -> None:
    events = [
        TextEvent(1.0, STARTED, "a", ""),
        TextEvent(2.0, STARTED, "b", ""),
        TextEvent(3.0, COMPLETED, "b", "ask not"),
        TextEvent(4.0, COMPLETED, "a", "and so my fellow Americans."),
    ]
    assert [s for _, s, _ in text_snapshots(events)] == [
        " ask not",
        "and so my fellow Americans. ask not",
    ]
    words = _words(("Americans.", 0.5, 1.0), ("ask", 1.5, 1.8), ("not", 1.9, 2.1))
    targets = phrase_targets([QuietGap(1.1, 1.4), QuietGap(2.2, 2.6)], words)
    result = phrase_latencies(events, targets, offline_tokens(words)[0], [1.5, 2.5])
    assert result.stable == [2.5, 0.5]


def test_phrase_latencies_from_sending_the_phrase_end() -> None:
    words = _words(("hello", 0.2, 0.6), ("there", 0.7, 1.0), ("friend", 1.5, 1.9))
    tokens, _ = offline_tokens(words)
    targets = phrase_targets([QuietGap(1.0, 1.4), QuietGap(1.9, 2.5)], words)
    assert [t.word for t in targets] == ["there", "friend"]
    events = [
        TextEvent(10.9, TENTATIVE, "a", "hello there"),  # before the phrase end was sent
        TextEvent(11.4, DELTA, "a", "hello there"),
        TextEvent(12.2, TENTATIVE, "b", "friend"),
    ]
    sent = [11.0, 12.0]
    result = phrase_latencies(events, targets, tokens, sent)
    assert result.stable[0] == pytest.approx(0.4)
    assert result.stable[1] is None  # "friend" was never committed: missing
    assert result.any[0] == 0.0  # shown before it was sent: counts as 0
    assert result.any[1] == pytest.approx(0.2)
    assert (result.early_stable, result.early_any) == (0, 1)


def test_phrase_end_send_times_pick_the_frame_with_the_last_sound() -> None:
    targets = [PhraseTarget(0.5, "a", 0), PhraseTarget(0.51, "b", 1), PhraseTarget(9.0, "c", 2)]
    send_times = [100.0 + k for k in range(40)]  # 20 ms frames: 0.8 s
    # 0.5 s = sample 8000: its last sound (sample 7999) is in frame 24; 0.51 s in frame 25.
    assert phrase_end_send_times(targets, send_times, chunk_ms=20) == [124.0, 125.0, None]


# -- options and figures -----------------------------------------------------------------


def test_the_session_update_opts_in_to_tentative_text() -> None:
    plain = transcription_update(RATE)
    assert "voxwire" not in plain["session"]
    update = transcription_update(RATE, tentative=True)
    assert update["type"] == "session.update"
    assert update["session"]["type"] == "transcription"
    assert update["session"]["voxwire"] == {"tentative_transcripts": True}
    assert update["session"]["audio"] == plain["session"]["audio"]


def test_stagger_seconds() -> None:
    options = StreamBenchOptions(file=Path("x.wav"), levels=(1,), output=Path("o.json"))
    assert stagger_seconds(options, 40.0, 4) == 0.0
    even = StreamBenchOptions(
        file=Path("x.wav"), levels=(1,), output=Path("o.json"), stagger=True, pace=2.0
    )
    assert stagger_seconds(even, 40.0, 4) == 5.0  # 20 s of sending over 4 clients
    assert stagger_seconds(even, 40.0, 1) == 0.0
    fixed = StreamBenchOptions(
        file=Path("x.wav"), levels=(1,), output=Path("o.json"), stagger=True, stagger_s=0.5
    )
    assert stagger_seconds(fixed, 40.0, 4) == 0.5


def test_read_reference(tmp_path: Path) -> None:
    path = tmp_path / "ref.txt"
    path.write_text("Hello world.\n")
    assert read_reference(str(path)) == "Hello world."
    assert read_reference("just some words") == "just some words"
    assert read_reference("  ") is None
    assert read_reference(None) is None


def test_decode_figures() -> None:
    offline = Offline(text="", words=(), wall_seconds=0.5, audio_seconds=10.0, reference=None)
    with_counter = [StreamRecord(i, counters={"decode_seconds": 1.0}) for i in range(2)]
    figures = decode_figures(with_counter, 10.0, offline)
    assert figures["per_audio_second"] == 0.1
    assert figures["offline_per_audio_second"] == 0.05
    assert figures["ratio_to_offline"] == 2.0
    without = [StreamRecord(0, counters={"samples_in": 1}), *with_counter[:1]]
    assert decode_figures(without, 10.0, offline)["per_audio_second"] is None


def test_default_levels_ladder() -> None:
    assert default_levels(1) == [1]
    assert default_levels(8) == [1, 2, 4, 8]
    assert default_levels(10) == [1, 2, 4, 8, 10]
    assert default_levels(16) == [1, 2, 4, 8, 16]
    assert parse_levels(None, 16) == [1, 2, 4, 8, 16]
    assert parse_levels("4, 1,2,2", 16) == [1, 2, 4]
    with pytest.raises(ValueError):
        parse_levels("1,x", 4)
    with pytest.raises(ValueError):
        parse_levels("0", 4)


# -- one client against a scripted server ---------------------------------------------------


async def _scripted_server(refuse_tentative: bool) -> tuple[Server, str]:
    """A Realtime look-alike: refuses (or takes) the tentative opt-in, answers the first
    audio frame with one item's events and stats requests with counters."""

    async def handler(ws: ServerConnection) -> None:
        await ws.send(json.dumps({"type": "session.created"}))
        talked = False
        async for message in ws:
            if isinstance(message, bytes):
                if not talked:
                    talked = True
                    for event in (
                        {"type": STARTED, "item_id": "i1"},
                        {"type": TENTATIVE, "item_id": "i1", "content_index": 0, "text": "hi"},
                        {"type": DELTA, "item_id": "i1", "content_index": 0, "delta": "Hi"},
                        {"type": STOPPED, "item_id": "i1"},
                        {"type": COMPLETED, "item_id": "i1", "transcript": "Hi there."},
                    ):
                        await ws.send(json.dumps(event))
                continue
            event = json.loads(message)
            if event["type"] == "session.update":
                if refuse_tentative and "voxwire" in event["session"]:
                    error = {"type": "invalid_request_error", "message": "unknown field"}
                    await ws.send(json.dumps({"type": "error", "error": error}))
                else:
                    await ws.send(json.dumps({"type": "session.updated"}))
            elif event["type"] == STATS:
                counters = {"samples_in": 320, "decode_seconds": 0.25}
                await ws.send(json.dumps({"type": STATS, "counters": counters}))

    server = await serve(handler, "127.0.0.1", 0)
    port = next(iter(server.sockets)).getsockname()[1]
    return server, f"ws://127.0.0.1:{port}/v1/realtime"


@pytest.mark.parametrize("refuse", [False, True])
def test_a_client_records_text_events_and_survives_a_refused_opt_in(refuse: bool) -> None:
    async def main() -> list[StreamRecord]:
        server, url = await _scripted_server(refuse)
        async with server:
            pcm = b"\0\0" * (RATE // 10)
            return await run_streams(url, pcm, 1, 20, pace=None)

    (record,) = asyncio.run(main())
    assert record.tentative_refused is refuse
    assert [e.kind for e in record.text_events] == [STARTED, TENTATIVE, DELTA, COMPLETED]
    assert [e.text for e in record.text_events] == ["", "hi", "Hi", "Hi there."]
    assert record.transcript == "Hi there."
    assert record.tentative_events == 1
    assert record.counters == {"samples_in": 320, "decode_seconds": 0.25}
    assert len(record.send_times) == 5  # 100 ms in 20 ms frames
    assert record.send_times == sorted(record.send_times)


def test_level_figures_and_the_table_without_a_server() -> None:
    words = _words(("hello", 0.2, 0.6), ("there", 0.7, 1.0), ("friend", 1.5, 1.9))
    targets = tuple(phrase_targets([QuietGap(1.0, 1.4), QuietGap(1.9, 2.5)], words))
    offline = Offline(
        text="hello there friend",
        words=tuple(words),
        wall_seconds=0.1,
        audio_seconds=2.5,
        reference="hello there my friend",
        targets=targets,
        phrases=2,
    )
    record = StreamRecord(0, send_times=[10.0 + 0.02 * k for k in range(125)])
    record.items["a"] = ItemTimes(started=10.3, first_delta=10.9, stopped=12.4, ended=12.6)
    record.items["a"].transcript = "hello there friend"
    record.text_events = [
        TextEvent(10.3, STARTED, "a", ""),
        TextEvent(11.2, DELTA, "a", "hello there"),
        TextEvent(12.6, COMPLETED, "a", "hello there friend"),
    ]
    record.counters = {"samples_segmented": 100, "samples_transcribed": 100}
    level = level_figures([record], 2.5, offline, chunk_ms=20)
    assert level["wer"] == {
        "against": "reference",
        "streamed_mean": 0.25,
        "streamed_max": 0.25,
        "streamed_per_stream": [0.25],
        "offline": 0.25,
    }
    phrases = level["phrases"]
    assert (phrases["measured"], phrases["missing_stable"], phrases["missing_any"]) == (2, 0, 0)
    # "there" ends the first phrase at 1.0 s: sent in the frame due at 10.98 s.
    assert [p["stable_ms"] for p in phrases["stream_0"]] == [220, 720]
    assert level["final_latency_ms"]["p50"] == 200.0
    assert level["decode"]["per_audio_second"] is None  # no decode_seconds counter
    assert level["audio_dropped_ms"] == 0

    result = {
        "file": "x.wav",
        "audio_seconds": 2.5,
        "pace": 1.0,
        "stagger": "in phase",
        "server": {"model": "tiny"},
        "offline": {"wall_seconds": 0.1, "seconds_per_audio_second": 0.04},
        "wer_against": "reference",
        "phrase_ends": {"min_gap_ms": 170, "found": 2, "with_word": 2},
        "levels": [level],
        "summary": {**summarise([level]), "targets": target_checks([level])},
    }
    buffer = io.StringIO()
    print_table(result, Console(file=buffer, width=200))
    text = buffer.getvalue()
    assert "0.25/0.25" in text and "470 / 695" in text and "n/a" in text
    assert "sent no voxwire.transcription.tentative events" in text
    # WER, stable and any text, final latency; no decode counter: no decode target.
    assert "issue 12 targets met: 4/4" in text
