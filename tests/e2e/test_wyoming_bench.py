"""A third-party Wyoming client against `voxwire wyoming`: wyoming-bench (PyPI
2026.10.0) runs its tts and stt benchmarks, non-streaming and streaming, and every
request succeeds with the words right. Timings are printed, never asserted."""

from __future__ import annotations

import re
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e.console import VOXWIRE
from voxwire.transports.bench.stream import free_port

pytestmark = pytest.mark.slow

BENCH = Path(sys.executable).parent / "wyoming-bench"
TEXTS = (
    "Please turn on the lights in the kitchen.",
    "What time does the train leave tomorrow morning? I would like to be there early.",
)


@pytest.fixture(scope="module")
def server() -> Iterator[str]:
    port = free_port()
    process = subprocess.Popen(
        [str(VOXWIRE), "wyoming", "--uri", f"tcp://127.0.0.1:{port}"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + 120
    while True:
        assert process.poll() is None, process.communicate()[1]
        assert time.monotonic() < deadline, "voxwire wyoming did not start listening"
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            break
        except OSError:
            time.sleep(0.3)
    try:
        yield f"127.0.0.1:{port}"
    finally:
        process.terminate()
        _, err = process.communicate(timeout=30)
        assert "Traceback" not in err


def bench(*args: str | Path) -> str:
    result = subprocess.run(
        [str(BENCH), *map(str, args)], capture_output=True, text=True, timeout=600
    )
    print(result.stdout)
    assert result.returncode == 0, result.stderr
    return result.stdout


def test_info_and_tts_in_both_modes(server: str) -> None:
    info = bench("info", server)
    assert "voxwire-asr (transcript streaming)" in info
    assert "voxwire-tts (synthesize streaming)" in info
    out = bench("tts", server, "--rounds", "1", "--warmup", "0", "--texts", *TEXTS)
    assert re.findall(r"\[(\w+)\] ok=(\d+) fail=(\d+)", out) == [
        ("non_streaming", "2", "0"),
        ("streaming", "2", "0"),
    ]


def test_stt_in_both_modes_on_a_corpus_it_made(server: str, tmp_path: Path) -> None:
    corpus = tmp_path / "corpus"
    bench("generate-corpus", server, "--out", corpus, "--texts", *TEXTS)
    out = bench(
        "stt", server, "--corpus", corpus, "--rounds", "1", "--warmup", "0",
        "--chunk-delay", "0.046",  # streaming mode at the pace of speech (1024 samples, 22 kHz)
    )  # fmt: skip
    assert re.findall(r"\[(\w+)\] ok=(\d+) fail=(\d+)", out) == [
        ("non_streaming", "2", "0"),
        ("streaming", "2", "0"),
    ]
    wers = [float(w) for w in re.findall(r"Accuracy\s+WER=([\d.]+)%", out)]
    # The corpus is spoken by voxwire's Piper voice with its generator noise, so a word of
    # the 22 may be misheard now and then.
    assert len(wers) == 2 and max(wers) <= 20.0, wers
