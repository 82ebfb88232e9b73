"""The Runtime's model catalogue: names and aliases, lazy loading, work on workers."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Iterator

import numpy as np
import pytest

from voxwire.engine.errors import ModelLoadError, ModelNotFound
from voxwire.models.registry import EMBEDDED_MODELS, ModelSpec
from voxwire.services.runtime import ModelLoading, Runtime, WrongTask


@pytest.fixture
def fresh(runtime: Runtime) -> Iterator[Runtime]:
    """A new catalogue on the already loaded recogniser: nothing else loaded yet."""
    rt = Runtime(runtime.asr, runtime.vad_factory, specs=EMBEDDED_MODELS)
    yield rt
    rt.close()


def test_aliases_and_defaults(fresh: Runtime) -> None:
    assert fresh.resolve("whisper-1", "automatic-speech-recognition").spec.id == fresh.asr.name
    assert fresh.resolve(None, "text-to-speech").spec.id == "piper-joe"
    assert fresh.resolve("tts-1-hd", "text-to-speech").spec.id == "piper-joe"
    with pytest.raises(ModelNotFound, match="this server offers: piper-joe"):
        fresh.resolve("nope", "text-to-speech")
    with pytest.raises(WrongTask, match="does text-classification"):
        fresh.resolve("vader", "audio-classification")


def test_the_streaming_recogniser_is_loaded_and_others_load_on_first_use(fresh: Runtime) -> None:
    assert fresh.resolve(None, "automatic-speech-recognition").loaded
    vader = fresh.resolve("vader", "text-classification")
    assert not vader.loaded

    async def main() -> np.ndarray:
        return await fresh.call(vader, lambda model: model.logits("What a lovely day!"))

    logits = asyncio.run(main())
    assert vader.loaded and vader.load_seconds is not None
    assert int(np.argmax(logits)) == 0  # positive


def test_work_runs_on_the_model_worker_not_the_event_loop(fresh: Runtime) -> None:
    entry = fresh.resolve(None, "automatic-speech-recognition")

    async def main() -> tuple[str, str]:
        loop_thread = threading.current_thread().name
        worker_thread = await fresh.call(entry, lambda _m: threading.current_thread().name)
        return loop_thread, worker_thread

    loop_thread, worker_thread = asyncio.run(main())
    assert worker_thread != loop_thread


def test_without_waiting_a_loading_model_answers_503(
    fresh: Runtime, monkeypatch: pytest.MonkeyPatch
) -> None:
    from voxwire.models import registry

    real_load = registry.load_model

    def slow_load(spec: ModelSpec) -> object:
        time.sleep(0.5)  # a model that takes a while to load
        return real_load(spec)

    monkeypatch.setattr(registry, "load_model", slow_load)
    entry = fresh.resolve("silero-speech", "audio-classification")

    async def main() -> None:
        with pytest.raises(ModelLoading) as raised:
            await fresh.ensure_loaded(entry, wait=False)
        assert raised.value.http_status == 503
        await fresh.ensure_loaded(entry)  # waiting gets it
        await fresh.ensure_loaded(entry, wait=False)  # and now it is there

    asyncio.run(main())
    assert entry.loaded


def test_a_model_that_cannot_load_fails_cleanly_and_may_be_retried(runtime: Runtime) -> None:
    broken = ModelSpec("broken", "text-to-speech", "piper", source="/no/such/voice.onnx")
    rt = Runtime(runtime.asr, runtime.vad_factory, specs=[*EMBEDDED_MODELS, broken])
    entry = rt.resolve("broken", "text-to-speech")

    async def main() -> None:
        for _ in range(2):
            with pytest.raises((ModelNotFound, ModelLoadError)):
                await rt.call(entry, lambda model: model)

    try:
        asyncio.run(main())
    finally:
        rt.close()
    assert not entry.loaded


def test_a_caller_that_gives_up_does_not_cancel_the_load(
    fresh: Runtime, monkeypatch: pytest.MonkeyPatch
) -> None:
    from voxwire.models import registry

    real_load = registry.load_model

    def slow_load(spec: ModelSpec) -> object:
        time.sleep(0.5)
        return real_load(spec)

    monkeypatch.setattr(registry, "load_model", slow_load)
    entry = fresh.resolve("silero-speech", "audio-classification")

    async def main() -> None:
        impatient = asyncio.create_task(fresh.ensure_loaded(entry))
        await asyncio.sleep(0.1)
        impatient.cancel()  # e.g. a client that went away while the model loaded
        with pytest.raises(asyncio.CancelledError):
            await impatient
        await fresh.ensure_loaded(entry)  # the load went on and others still get it

    asyncio.run(main())
    assert entry.loaded
