"""`voxwire bench webrtc`, run as the installed console script against a live server."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from tests import speech
from tests.e2e.console import bench, is_number, wer
from tests.live_server import LiveServer
from voxwire.transports.bench.webrtc import speech_end


@pytest.mark.slow
def test_bench_webrtc_beside_the_websocket(
    server: LiveServer, one_sentence_wav: Path, tmp_path: Path
) -> None:
    out = tmp_path / "webrtc.json"
    stdout, data = bench(
        "webrtc",
        "--file",
        one_sentence_wav,
        "--url",
        server.http_url,
        "--repeats",
        "1",
        output=out,
    )
    assert "voxwire bench webrtc" in stdout
    assert "end of speech -> final p50 / p95 ms" in stdout
    assert f"wrote {out}" in stdout

    assert data["server"] == {
        "url": data["server"]["url"],
        "spawned": False,
        "model": "whisper-tiny.en",
    }
    assert data["machine"]["cpu_count"] >= 1
    for transport in ("websocket", "webrtc"):
        figures = data["transports"][transport]
        assert figures["utterances_per_pass"] == [1], figures
        for key in ("end_of_speech_to_final_ms", "speech_stopped_to_final_ms"):
            assert is_number(figures[key]["p50"]) and is_number(figures[key]["p95"])
        # The final cannot come before the turn detector's silence has passed.
        assert figures["end_of_speech_to_final_ms"]["p50"] >= 300
        assert wer(speech.SENTENCES[0], figures["transcript"]) <= 0.15
    assert is_number(data["webrtc_minus_websocket_p50_ms"])
    server.wait_until_idle()


def test_speech_end_is_found_in_the_file() -> None:
    rate = 16_000
    spoken = speech.synthesize(speech.SENTENCES[0], rate)
    audio = np.concatenate([speech.silence(0.5, rate), spoken, speech.silence(1.0, rate)])
    last_loud = 0.5 * rate + np.flatnonzero(np.abs(spoken) > 0.02)[-1]
    # The server reports the utterance's end a little after the speech (end padding).
    found = speech_end(audio, int(last_loud + 0.25 * rate))
    assert abs(found - last_loud) < 0.05 * rate
