"""The CLI in-process with a scripted ASR model: exit codes, error lines, output layout."""

from __future__ import annotations

import io
import json
import logging
import sys
import types
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np
import pytest

from tests.speech import pcm16_wav_bytes
from voxwire.engine.errors import ModelNotFound
from voxwire.models.errors import ModelLoadFailed
from voxwire.models.interfaces import (
    AudioArray,
    DecodeRequest,
    DecodeResult,
    Segment,
    TranscribeOptions,
    Transcription,
)
from voxwire.transports.cli import main as cli


class ScriptedAsr:
    """Answers every file with a fixed sentence, or raises what it was given."""

    name = "scripted"
    supports_batching = False
    max_batch_size = 1
    max_concurrency = 1

    def __init__(self, error: BaseException | None = None) -> None:
        self.error = error
        self.calls: list[TranscribeOptions] = []

    def transcribe(self, audio: AudioArray, options: TranscribeOptions) -> Transcription:
        self.calls.append(options)
        if self.error is not None:
            raise self.error
        duration = audio.size / 16_000
        return Transcription(
            "Hello world.", "en", duration, (Segment(0, 0.0, duration, "Hello world."),)
        )

    def transcribe_segments(
        self, audio: AudioArray, options: TranscribeOptions
    ) -> Iterator[Segment]:
        yield from self.transcribe(audio, options).segments

    def decode(self, requests: Sequence[DecodeRequest]) -> list[DecodeResult]:
        return [DecodeResult("") for _ in requests]


@pytest.fixture(autouse=True)
def _clean_state() -> Iterator[None]:
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    yield
    cli.STATE.debug = False
    root.handlers[:], root.level = handlers, level


def install(monkeypatch: pytest.MonkeyPatch, loader: object) -> None:
    registry = types.ModuleType("voxwire.models.registry")
    registry.load_asr = loader  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "voxwire.models.registry", registry)


@pytest.fixture
def asr(monkeypatch: pytest.MonkeyPatch) -> ScriptedAsr:
    model = ScriptedAsr()
    install(monkeypatch, lambda spec=None: model)
    return model


@pytest.fixture
def tone(tmp_path: Path) -> Path:
    t = np.arange(16_000) / 16_000
    path = tmp_path / "tone.wav"
    path.write_bytes(pcm16_wav_bytes((0.3 * np.sin(2 * np.pi * 220 * t)).astype(np.float32)))
    return path


def run(*args: str | Path) -> int:
    with pytest.raises(SystemExit) as info:
        cli.main([str(a) for a in args])
    code = info.value.code
    return code if isinstance(code, int) else 1


def test_options_reach_the_model(
    asr: ScriptedAsr, tone: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = run(
        "transcribe", "--language", "EN", "--beam-size", "2", "--word-timestamps",
        "--task", "translate", tone,
    )  # fmt: skip
    assert code == 0
    assert capsys.readouterr().out == "Hello world.\n"
    assert asr.calls == [
        TranscribeOptions(language="en", task="translate", beam_size=2, word_timestamps=True)
    ]


def test_headers_only_for_several_text_results(
    asr: ScriptedAsr, tone: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run("transcribe", tone, tone) == 0
    assert capsys.readouterr().out == (
        f"==> {tone} <==\nHello world.\n\n==> {tone} <==\nHello world.\n"
    )
    assert run("transcribe", "-f", "json", tone, tone) == 0
    lines = capsys.readouterr().out.splitlines()
    assert [json.loads(line) for line in lines] == [{"text": "Hello world."}] * 2


def test_silence_skips_the_model(
    asr: ScriptedAsr, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    quiet = tmp_path / "quiet.wav"
    quiet.write_bytes(pcm16_wav_bytes(np.zeros(8000, np.float32)))
    assert run("transcribe", "-f", "json", quiet) == 0
    captured = capsys.readouterr()
    assert json.loads(captured.out) == {"text": ""}
    assert captured.err == f"voxwire: {quiet}: no speech found\n"
    assert asr.calls == []


def test_unexpected_error_is_one_line_and_exit_2(
    monkeypatch: pytest.MonkeyPatch, tone: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    install(monkeypatch, lambda spec=None: ScriptedAsr(RuntimeError("boom")))
    assert run("transcribe", tone) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "RuntimeError: boom" in err and "--debug" in err
    assert "Traceback" not in err


def test_debug_shows_the_traceback(
    monkeypatch: pytest.MonkeyPatch, tone: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    install(monkeypatch, lambda spec=None: ScriptedAsr(RuntimeError("boom")))
    assert run("--debug", "transcribe", tone) == 2
    err = capsys.readouterr().err
    assert "Traceback" in err
    assert err.splitlines()[-1] == "voxwire: error: unexpected RuntimeError: boom"


def test_model_error_on_one_file_does_not_stop_the_others(
    monkeypatch: pytest.MonkeyPatch, tone: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    model = ScriptedAsr(ModelLoadFailed("decoder fell over"))
    install(monkeypatch, lambda spec=None: model)
    assert run("transcribe", tone, tone) == 1
    err = capsys.readouterr().err.splitlines()
    assert err == [f"voxwire: error: {tone}: decoder fell over"] * 2
    assert len(model.calls) == 2


@pytest.mark.parametrize("error", [ModelNotFound("no such model"), ModelLoadFailed("bad")])
def test_model_that_cannot_load(
    monkeypatch: pytest.MonkeyPatch,
    tone: Path,
    capsys: pytest.CaptureFixture[str],
    error: Exception,
) -> None:
    def load(spec: str | None = None) -> ScriptedAsr:
        raise error

    install(monkeypatch, load)
    assert run("transcribe", "--model", "nope", tone) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("voxwire: error: cannot load model nope: ")


def test_model_is_not_loaded_when_every_file_is_bad(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    def load(spec: str | None = None) -> ScriptedAsr:
        raise AssertionError("the model must not be loaded")

    install(monkeypatch, load)
    for name in ("a.wav", "b.wav"):
        (tmp_path / name).write_bytes(b"RIFF not a wave file")
    assert run("transcribe", tmp_path / "a.wav", tmp_path / "b.wav") == 1
    assert len(capsys.readouterr().err.splitlines()) == 2
    # A file that is not there stops the command at once: one line naming it, exit 2.
    assert run("transcribe", tmp_path / "a.wav", tmp_path / "missing.wav") == 2
    assert (
        capsys.readouterr().err == f"voxwire: error: {tmp_path / 'missing.wav'}: file not found\n"
    )


def test_bad_log_level(capsys: pytest.CaptureFixture[str]) -> None:
    assert run("--log-level", "loud", "transcribe", "x.wav") == 2
    assert "Traceback" not in capsys.readouterr().err


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    assert run("--version") == 0
    assert capsys.readouterr().out.startswith("voxwire ")


def test_every_command_is_registered() -> None:
    commands = {c.name for c in cli.build_app().registered_commands}
    groups = {g.name for g in cli.build_app().registered_groups}
    assert commands == {
        "transcribe", "stream", "serve", "classify", "speak", "mic", "wyoming", "ask"
    } and groups == {"bench"}  # fmt: skip


def test_required_command_modules_may_not(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(cli, "_COMMAND_MODULES", ["voxwire.transports.cli.nowhere"])
    with pytest.raises(ModuleNotFoundError):
        cli.build_app()


def test_stdin(
    asr: ScriptedAsr,
    tone: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    stdin = types.SimpleNamespace(buffer=io.BytesIO(tone.read_bytes()))
    monkeypatch.setattr(sys, "stdin", stdin)
    assert run("transcribe", "-", tone) == 0
    assert capsys.readouterr().out.startswith("==> <stdin> <==\nHello world.\n")
