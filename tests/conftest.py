"""Shared fixtures: known speech made with the embedded Piper voice, the loaded
models, and a live server."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests import speech
from tests.live_server import LiveServer, live_server
from voxwire.services.runtime import Runtime


@pytest.fixture(scope="session")
def speech_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("speech")


@pytest.fixture(scope="session")
def three_sentences_wav(speech_dir: Path) -> Path:
    """speech.SENTENCES separated by 1 s of silence, 16 kHz PCM16 WAV."""
    return speech.write_wav(speech_dir / "three.wav", speech.utterances(speech.SENTENCES))


@pytest.fixture(scope="session")
def one_sentence_wav(speech_dir: Path) -> Path:
    return speech.write_wav(
        speech_dir / "one.wav", speech.utterances(speech.SENTENCES[:1], lead_s=0.3, tail_s=0.7)
    )


@pytest.fixture(scope="session")
def runtime() -> Iterator[Runtime]:
    """The embedded default models with their workers, shared by the whole run."""
    rt = Runtime.load()
    yield rt
    rt.close()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item: pytest.Item) -> Iterator[None]:
    """After every passing test on a live server (before its fixtures are torn down):
    the server's finished sessions' counters balance."""
    result = yield
    for value in list(getattr(item, "funcargs", {}).values()):
        if isinstance(value, LiveServer):
            value.check_books()
    return result


@pytest.fixture(scope="session")
def server(runtime: Runtime) -> Iterator[LiveServer]:
    """A real voxwire server on a loopback port, shared by the whole run."""
    with live_server(runtime) as live:
        yield live
