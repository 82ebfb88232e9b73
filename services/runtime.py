"""The composition root: loads the models once and builds sessions on them.

Transports and CLI commands share one :class:`Runtime`. It owns

* the streaming ASR worker (short decodes for live sessions) and a fresh VAD
  state per session;
* a catalogue of every model the server offers (the embedded defaults plus any
  a configuration file names), each loaded on first use or at start-up, with
  its own worker thread(s): request/response work runs there through
  :meth:`Runtime.call`, never on the event loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Any, TypeVar, cast

from voxwire.engine.driver import AsrWorker, EventSink, SessionDriver
from voxwire.engine.errors import ModelLoadError, ModelNotFound, PeerError
from voxwire.engine.scheduler import PRIORITY_FINAL, ModelWorker
from voxwire.engine.session import Session, SessionOptions
from voxwire.models.interfaces import AsrModel, SpeechProbability, TurnCompletion
from voxwire.models.registry import DEFAULT_ASR, EMBEDDED_MODELS, ModelSpec, Task

log = logging.getLogger(__name__)

T = TypeVar("T")

ASR: Task = "automatic-speech-recognition"

OPENAI_ALIASES: dict[str, tuple[str, ...]] = {
    "automatic-speech-recognition": (
        "whisper-1",
        "gpt-4o-transcribe",
        "gpt-4o-mini-transcribe",
        "gpt-4o-mini-transcribe-2025-12-15",
        "gpt-4o-transcribe-diarize",
        "gpt-transcribe",
        "gpt-live-transcribe",
        "gpt-realtime-whisper",
    ),
    "text-to-speech": ("tts-1", "tts-1-hd", "gpt-4o-mini-tts"),
}
"""OpenAI model names that select the default model of their task."""

Call = Callable[[], Any]


class ModelLoading(PeerError):
    """The model is still loading (Hugging Face's 503 'currently loading')."""

    code = "model_loading"
    http_status = 503
    ws_close_code = 1013

    def __init__(self, message: str, *, estimated_seconds: float) -> None:
        super().__init__(message)
        self.estimated_seconds = estimated_seconds


class WrongTask(PeerError):
    """A model exists but does another task than the endpoint needs."""

    code = "model_wrong_task"


def _run_calls(calls: Sequence[Call]) -> list[Any]:
    return [call() for call in calls]


@dataclass
class CatalogEntry:
    """One model of the catalogue: its spec, and once loaded, the model and its worker."""

    spec: ModelSpec
    threads: int = 1
    model: Any = None
    worker: ModelWorker[Call, Any] | None = None
    load_seconds: float | None = None
    _loading: Future[None] | None = field(default=None, repr=False)

    @property
    def loaded(self) -> bool:
        return self.worker is not None


class Runtime:
    """Loaded models plus the workers that serve them."""

    def __init__(
        self,
        asr: AsrModel,
        vad_factory: Callable[[], SpeechProbability],
        *,
        max_queue: int = 64,
        specs: Iterable[ModelSpec] = EMBEDDED_MODELS,
        default_asr: str = DEFAULT_ASR,
        defaults: dict[str, str] | None = None,
    ) -> None:
        self.asr = asr
        self.vad_factory = vad_factory
        self.max_queue = max_queue
        self.asr_worker: AsrWorker = ModelWorker(
            asr.decode,
            name=f"asr:{asr.name}",
            max_queue=max_queue,
            max_batch_size=asr.max_batch_size if asr.supports_batching else 1,
            threads=asr.max_concurrency,
        )
        self._lock = threading.Lock()
        self._turn_model: TurnCompletion | None = None
        self._turn_lock = threading.Lock()
        """Its own lock: a first load may fetch the model for a while."""
        self.catalog: dict[str, CatalogEntry] = {}
        for spec in specs:
            threads = 2 if spec.task == "automatic-speech-recognition" else 1
            self.catalog[spec.id] = CatalogEntry(spec, threads=threads)
        self.defaults: dict[str, str] = {"automatic-speech-recognition": default_asr}
        for spec in specs:
            self.defaults.setdefault(spec.task, spec.id)
        self.defaults.update(defaults or {})
        # The streaming recogniser is the default ASR entry, already loaded.
        entry = self.catalog.get(default_asr)
        if entry is not None and not entry.loaded:
            self._start_worker(entry, asr, 0.0)

    @classmethod
    def load(
        cls,
        asr_spec: str | None = None,
        vad_spec: str | None = None,
        *,
        specs: Iterable[ModelSpec] = EMBEDDED_MODELS,
        defaults: dict[str, str] | None = None,
    ) -> Runtime:
        """Load the streaming recogniser and check the VAD; the other models of `specs`
        load on first use.

        The recogniser is `asr_spec` (a catalogue id or any spec :func:`load_asr`
        takes), else the `defaults` ASR, else the embedded one. Model errors become
        engine errors here, so callers map them in one place.
        """
        from voxwire.models.registry import load_asr, load_model, load_vad

        catalogue = {spec.id: spec for spec in specs}
        defaults = dict(defaults or {})
        wanted = asr_spec or defaults.get(ASR) or DEFAULT_ASR
        with _model_errors():
            spec = catalogue.get(wanted)
            if spec is not None and spec.task == ASR:
                asr = cast(AsrModel, load_model(spec))
            else:
                asr = load_asr(wanted)
                spec = catalogue.get(asr.name) or ModelSpec(
                    asr.name, ASR, "faster-whisper", source=wanted
                )
                catalogue = {spec.id: spec, **catalogue}
            load_vad(vad_spec)  # load it now, so a broken VAD fails at start-up
        log.info("loaded ASR %s and VAD %s", asr.name, vad_spec or "silero")
        defaults[ASR] = spec.id
        return cls(
            asr,
            functools.partial(load_vad, vad_spec),
            specs=list(catalogue.values()),
            default_asr=spec.id,
            defaults=defaults,
        )

    # -- sessions ------------------------------------------------------------------------

    def new_session(
        self, options: SessionOptions | None = None, *, session_id: str | None = None
    ) -> Session:
        return Session(
            self.vad_factory(), options, session_id=session_id, turn_model=self.turn_model
        )

    def turn_model(self) -> TurnCompletion:
        """The semantic end-of-turn model (Smart Turn), loaded on first use and shared
        (ONNX Runtime sessions may run from several threads)."""
        with self._turn_lock:
            if self._turn_model is None:
                from voxwire.models.smart_turn import SmartTurn

                with _model_errors():
                    self._turn_model = SmartTurn()
                log.info("loaded turn model %s", self._turn_model.name)
            return self._turn_model

    def driver(self, session: Session, sink: EventSink) -> SessionDriver:
        return SessionDriver(session, self.asr_worker, sink)

    # -- the catalogue -------------------------------------------------------------------

    def resolve(self, model_id: str | None, task: Task) -> CatalogEntry:
        """The entry for `model_id` (None or an OpenAI alias: the task's default)."""
        if model_id is None or model_id in OPENAI_ALIASES.get(task, ()):
            model_id = self.defaults.get(task)
        entry = self.catalog.get(model_id or "")
        if entry is None:
            offered = ", ".join(e.spec.id for e in self.catalog.values() if e.spec.task == task)
            raise ModelNotFound(
                f"unknown model {model_id!r} for {task}; this server offers: {offered or 'none'}",
                param="model",
            )
        if entry.spec.task != task:
            raise WrongTask(
                f"model {entry.spec.id!r} does {entry.spec.task}, not {task}", param="model"
            )
        return entry

    def entries(self, task: Task | None = None) -> list[CatalogEntry]:
        return [e for e in self.catalog.values() if task is None or e.spec.task == task]

    async def ensure_loaded(self, entry: CatalogEntry, *, wait: bool = True) -> None:
        """Load the entry's model (in a thread) if it is not loaded yet.

        With `wait=False` a model that is not loaded yet starts loading and
        :class:`ModelLoading` is raised at once (Hugging Face's behaviour without
        `x-wait-for-model`).
        """
        if entry.loaded:
            return
        with self._lock:
            loading = entry._loading
            if loading is None:
                loading = entry._loading = Future()
                threading.Thread(
                    target=self._load_entry, args=(entry, loading), daemon=True
                ).start()
        if not wait and not loading.done():
            raise ModelLoading(f"model {entry.spec.id} is currently loading", estimated_seconds=5.0)
        # Shielded: a caller that gives up must not cancel the load others wait for
        # (wrap_future would cancel the shared future along with the awaiting task).
        await asyncio.shield(asyncio.wrap_future(loading))

    def _load_entry(self, entry: CatalogEntry, done: Future[None]) -> None:
        from voxwire.models.registry import load_model

        started = time.perf_counter()
        try:
            with _model_errors():
                model = load_model(entry.spec)
        except BaseException as exc:
            with self._lock:
                entry._loading = None  # a later request may try again
            done.set_exception(exc)
            return
        self._start_worker(entry, model, time.perf_counter() - started)
        log.info("loaded %s (%s) in %.2f s", entry.spec.id, entry.spec.task, entry.load_seconds)
        done.set_result(None)

    def _start_worker(self, entry: CatalogEntry, model: Any, seconds: float) -> None:
        entry.model = model
        entry.load_seconds = seconds
        entry.worker = ModelWorker(
            _run_calls,
            name=f"{entry.spec.task}:{entry.spec.id}",
            max_queue=self.max_queue,
            max_batch_size=1,
            threads=entry.threads,
        )

    async def call(
        self,
        entry: CatalogEntry,
        work: Callable[[Any], T],
        *,
        priority: int = PRIORITY_FINAL,
        wait_for_model: bool = True,
    ) -> T:
        """Run `work(model)` on the entry's worker; load the model first if needed."""
        await self.ensure_loaded(entry, wait=wait_for_model)
        assert entry.worker is not None
        model = entry.model
        result = await entry.worker.run(functools.partial(work, model), priority=priority)
        return result  # type: ignore[no-any-return]

    def close(self) -> None:
        self.asr_worker.stop()
        for entry in self.catalog.values():
            if entry.worker is not None:
                entry.worker.stop()


@contextlib.contextmanager
def _model_errors() -> Iterator[None]:
    """Map model-layer errors to engine errors."""
    from voxwire.models.errors import ModelError, ModelNotFoundError

    try:
        yield
    except ModelNotFoundError as exc:
        raise ModelNotFound(str(exc)) from exc
    except ModelError as exc:
        raise ModelLoadError(str(exc)) from exc
