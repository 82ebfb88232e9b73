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
from typing import Any, Literal, TypeVar, cast

from voxwire.engine.driver import AsrWorker, EventSink, SessionDriver
from voxwire.engine.errors import ModelLoadError, ModelNotFound, PeerError
from voxwire.engine.scheduler import PRIORITY_FINAL, ModelWorker
from voxwire.engine.session import Session, SessionOptions
from voxwire.models.interfaces import AsrModel, SpeechProbability, TurnCompletion
from voxwire.models.registry import DEFAULT_ASR, EMBEDDED_MODELS, ModelSpec, Task
from voxwire.models.registry import load_vad as _load_vad

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
ModelState = Literal["ready", "loading", "failed", "idle"]
RuntimeStatus = Literal["ok", "loading", "degraded", "failed"]

LoadReport = Callable[[str, float, BaseException | None], None]
"""Hears of each background load: (model id, seconds, the error or None)."""

LOADING_RETRY_S = 5.0
"""The Retry-After of a 503 for a model that is still loading."""

DEFAULT_MODEL_WAIT_S = 30.0
"""How long a request that needs a model still loading waits before a 503."""

PARTIAL_BATCH = 2
"""Streaming partial decodes run at most this many to a batch: a final that arrives
while a batch runs waits for it, and two tiny.en clips take a fraction of eight."""


class ModelLoading(PeerError, code="model_loading", http_status=503, ws_close_code=1013):
    """The model is still loading (Hugging Face's 503 'currently loading')."""

    def __init__(self, message: str, *, estimated_seconds: float) -> None:
        super().__init__(message)
        self.estimated_seconds = estimated_seconds
        self.retry_after_s = estimated_seconds


class WrongTask(PeerError, code="model_wrong_task"):
    """A model exists but does another task than the endpoint needs."""


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
    error: BaseException | None = None
    """Why the last load failed (None: it did not fail)."""
    _loading: Future[None] | None = field(default=None, repr=False)

    @property
    def loaded(self) -> bool:
        return self.worker is not None

    @property
    def state(self) -> ModelState:
        """ready, loading, failed (the last load did; a request may try again) or idle."""
        if self.worker is not None:
            return "ready"
        if self._loading is not None:
            return "loading"
        return "failed" if self.error is not None else "idle"


class Runtime:
    """Models (loaded, or loading in the background) plus the workers that serve them."""

    def __init__(
        self,
        asr: AsrModel | None,
        vad_factory: Callable[[], SpeechProbability],
        *,
        max_queue: int = 64,
        specs: Iterable[ModelSpec] = EMBEDDED_MODELS,
        default_asr: str = DEFAULT_ASR,
        defaults: dict[str, str] | None = None,
        model_wait_s: float = DEFAULT_MODEL_WAIT_S,
    ) -> None:
        """`asr`: the loaded streaming recogniser, or None when :meth:`start_loading`
        loads it (the `default_asr` entry) in the background."""
        self.vad_factory = vad_factory
        self.max_queue = max_queue
        self.model_wait_s = model_wait_s
        """How long a request waits for a model that is still loading before a 503."""
        self._lock = threading.Lock()
        self._asr: AsrModel | None = None
        self._asr_worker: AsrWorker | None = None
        self._streaming: Future[None] = Future()
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
        self.asr_name = asr.name if asr is not None else default_asr
        """The streaming recogniser's name, known before it has loaded."""
        self._background: threading.Thread | None = None
        if asr is not None:
            self._use_streaming(asr, 0.0)
            self._streaming.set_result(None)

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
        load on first use. See :meth:`start` for `asr_spec` and `defaults`."""
        runtime = cls.start(asr_spec, vad_spec, specs=specs, defaults=defaults)
        try:
            runtime._load_streaming(vad_spec)
        except BaseException:
            runtime.close()
            raise
        return runtime

    @classmethod
    def start(
        cls,
        asr_spec: str | None = None,
        vad_spec: str | None = None,
        *,
        specs: Iterable[ModelSpec] = EMBEDDED_MODELS,
        defaults: dict[str, str] | None = None,
        model_wait_s: float = DEFAULT_MODEL_WAIT_S,
    ) -> Runtime:
        """A runtime whose models are not loaded yet: :meth:`start_loading` loads them.

        The recogniser is `asr_spec` (a catalogue id or any spec :func:`load_asr`
        takes), else the `defaults` ASR, else the embedded one. A spec that no backend
        can load raises :class:`ModelNotFound` here, before anything loads.
        """
        from voxwire.models.registry import asr_name

        catalogue = {spec.id: spec for spec in specs}
        defaults = dict(defaults or {})
        wanted = asr_spec or defaults.get(ASR) or DEFAULT_ASR
        spec = catalogue.get(wanted)
        if spec is None or spec.task != ASR:
            with _model_errors():
                name = asr_name(wanted)
            spec = catalogue.get(name) or ModelSpec(name, ASR, "faster-whisper", source=wanted)
            catalogue = {spec.id: spec, **catalogue}
        defaults[ASR] = spec.id
        runtime = cls(
            None,
            functools.partial(_load_vad, vad_spec),
            specs=list(catalogue.values()),
            default_asr=spec.id,
            defaults=defaults,
            model_wait_s=model_wait_s,
        )
        runtime._vad_spec = vad_spec
        return runtime

    _vad_spec: str | None = None
    _queued: frozenset[str] | set[str] = frozenset()

    def start_loading(
        self, model_ids: Sequence[str] = (), *, on_loaded: LoadReport | None = None
    ) -> None:
        """Load the streaming recogniser and the VAD, then `model_ids` one after the
        other, in a background thread; `on_loaded(model_id, seconds, error)` hears of
        each. A request that needs a later model loads it at once."""
        if self._background is not None:
            return

        def report(model_id: str, started: float, error: BaseException | None) -> None:
            if on_loaded is not None:
                on_loaded(model_id, time.perf_counter() - started, error)

        def load_all() -> None:
            started = time.perf_counter()
            try:
                self._load_streaming(self._vad_spec)
            except Exception as exc:  # reported; the other models still load
                report(self.asr_name, started, exc)
            else:
                report(self.asr_name, started, None)
            for model_id in model_ids:
                entry = self.catalog[model_id]
                if entry.loaded:
                    continue
                started = time.perf_counter()
                try:
                    self._begin_load(entry).result()
                except Exception as exc:
                    report(model_id, started, exc)
                else:
                    report(model_id, started, None)

        self._queued = {self.asr_name, *model_ids}
        self._background = threading.Thread(target=load_all, name="model-loader", daemon=True)
        self._background.start()

    def _load_streaming(self, vad_spec: str | None) -> None:
        """Load the recogniser (through its catalogue entry when it has one) and the VAD."""
        from voxwire.models.registry import load_asr, load_vad

        if self._streaming.done():
            self._streaming.result()
            return
        entry = self.catalog.get(self.asr_name)
        started = time.perf_counter()
        try:
            if entry is not None:
                self._begin_load(entry).result()
                asr = cast(AsrModel, entry.model)
            else:
                with _model_errors():
                    asr = load_asr(self.asr_name)
            with _model_errors():
                load_vad(vad_spec)  # load it now, so a broken VAD fails at start-up
        except BaseException as exc:
            with self._lock:
                if not self._streaming.done():
                    self._streaming.set_exception(exc)
            raise
        self._use_streaming(asr, time.perf_counter() - started)
        log.info("loaded ASR %s and VAD %s", asr.name, vad_spec or "silero")
        with self._lock:
            if not self._streaming.done():
                self._streaming.set_result(None)

    def _use_streaming(self, asr: AsrModel, seconds: float) -> None:
        self._asr = asr
        self._asr_worker = ModelWorker(
            asr.decode,
            name=f"asr:{asr.name}",
            max_queue=self.max_queue,
            max_batch_size=asr.max_batch_size if asr.supports_batching else 1,
            max_partial_batch=PARTIAL_BATCH,
            threads=asr.max_concurrency,
        )
        # The streaming recogniser is the default ASR entry.
        entry = self.catalog.get(self.asr_name)
        if entry is not None and not entry.loaded:
            self._start_worker(entry, asr, seconds)

    # -- readiness -----------------------------------------------------------------------

    @property
    def streaming_ready(self) -> bool:
        """Whether the recogniser and the VAD are loaded (sessions can start)."""
        return self._streaming.done() and self._streaming.exception() is None

    @property
    def streaming_error(self) -> BaseException | None:
        """Why the recogniser or the VAD failed to load, if it did."""
        return self._streaming.exception() if self._streaming.done() else None

    @property
    def asr(self) -> AsrModel:
        """The streaming recogniser; :class:`ModelLoading` while it loads."""
        self._check_streaming()
        assert self._asr is not None
        return self._asr

    @property
    def asr_worker(self) -> AsrWorker:
        """The streaming recogniser's worker; :class:`ModelLoading` while it loads."""
        self._check_streaming()
        assert self._asr_worker is not None
        return self._asr_worker

    def _check_streaming(self) -> None:
        if not self._streaming.done():
            raise self._still_loading(self.asr_name)
        self._streaming.result()

    def _still_loading(self, model_id: str) -> ModelLoading:
        return ModelLoading(
            f"model {model_id} is still loading; try again in a few seconds",
            estimated_seconds=LOADING_RETRY_S,
        )

    def model_states(self) -> dict[str, ModelState]:
        """Each catalogue model's state; one queued for the background loads is loading."""
        states: dict[str, ModelState] = {}
        for model_id, entry in self.catalog.items():
            state = entry.state
            if state == "idle" and model_id in self._queued:
                state = "loading"
            states[model_id] = state
        if self.asr_name in states or not self.streaming_ready:
            states[self.asr_name] = self.streaming_state
        return states

    def load_errors(self) -> dict[str, BaseException]:
        """Why each model that failed to load did (the streaming recogniser's or VAD's
        failure under the recogniser's id)."""
        errors = {i: e.error for i, e in self.catalog.items() if e.error is not None}
        if self.streaming_error is not None:
            errors[self.asr_name] = self.streaming_error
        return errors

    @property
    def streaming_state(self) -> ModelState:
        """The recogniser's and the VAD's state together."""
        if not self._streaming.done():
            return "loading" if self.asr_name in self._queued else "idle"
        return "ready" if self._streaming.exception() is None else "failed"

    def status(self) -> RuntimeStatus:
        """ok: all loaded that should be; loading: some still are; degraded: a
        catalogue model failed; failed: the streaming recogniser or the VAD did."""
        if self.streaming_state == "failed":
            return "failed"
        states = self.model_states().values()
        if "loading" in states:
            return "loading"
        return "degraded" if "failed" in states else "ok"

    async def wait_streaming(self, within_s: float | None = None) -> None:
        """Wait (at most `within_s`, default :attr:`model_wait_s`) until sessions can
        start; :class:`ModelLoading` when the wait runs out, the load's error when it
        failed."""
        if not self._streaming.done():
            wait_s = self.model_wait_s if within_s is None else within_s
            try:
                await asyncio.wait_for(asyncio.shield(asyncio.wrap_future(self._streaming)), wait_s)
            except TimeoutError:
                raise self._still_loading(self.asr_name) from None
        self._streaming.result()

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

    async def ensure_loaded(
        self, entry: CatalogEntry, *, wait: bool = True, within_s: float | None = None
    ) -> None:
        """Load the entry's model (in a thread) if it is not loaded yet.

        A caller waits at most `within_s` (default :attr:`model_wait_s`), then gets
        :class:`ModelLoading` (503 with Retry-After); with `wait=False` it gets that
        at once (Hugging Face's behaviour without `x-wait-for-model`). The load goes on.
        """
        if entry.loaded:
            return
        loading = self._begin_load(entry)
        if not wait and not loading.done():
            raise self._still_loading(entry.spec.id)
        # Shielded: a caller that gives up must not cancel the load others wait for
        # (wrap_future would cancel the shared future along with the awaiting task).
        wait_s = self.model_wait_s if within_s is None else within_s
        try:
            await asyncio.wait_for(asyncio.shield(asyncio.wrap_future(loading)), wait_s)
        except TimeoutError:
            raise self._still_loading(entry.spec.id) from None

    def _begin_load(self, entry: CatalogEntry) -> Future[None]:
        """The entry's load, started in a thread unless it is loading or loaded."""
        with self._lock:
            if entry.loaded:
                done: Future[None] = Future()
                done.set_result(None)
                return done
            loading = entry._loading
            if loading is None:
                loading = entry._loading = Future()
                threading.Thread(
                    target=self._load_entry,
                    args=(entry, loading),
                    name=f"load:{entry.spec.id}",
                    daemon=True,
                ).start()
            return loading

    def _load_entry(self, entry: CatalogEntry, done: Future[None]) -> None:
        from voxwire.models.registry import load_model

        started = time.perf_counter()
        try:
            with _model_errors():
                model = load_model(entry.spec)
        except BaseException as exc:
            with self._lock:
                entry._loading = None  # a later request may try again
                entry.error = exc
            done.set_exception(exc)
            return
        with self._lock:
            self._start_worker(entry, model, time.perf_counter() - started)
            entry.error = None
            entry._loading = None
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

    def close(self, *, loading_timeout: float = 30.0) -> None:
        """Stop the workers, after the background loads (at most `loading_timeout`):
        a process must not exit while a loader thread is inside native code."""
        if self._background is not None:
            self._background.join(loading_timeout)
        if self._asr_worker is not None:
            self._asr_worker.stop()
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
