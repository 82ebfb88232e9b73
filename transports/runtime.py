"""The composition root: loads the models once and builds sessions on them.

Transports and CLI commands share one :class:`Runtime`; it owns the ASR worker
(one thread that owns the model) and makes a fresh VAD state per session.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable

from engine.driver import AsrWorker, EventSink, SessionDriver
from engine.errors import ModelLoadError, ModelNotFound
from engine.scheduler import ModelWorker
from engine.session import Session, SessionOptions
from models.interfaces import AsrModel, SpeechProbability

log = logging.getLogger(__name__)


class Runtime:
    """Loaded models plus the workers that serve them."""

    def __init__(
        self,
        asr: AsrModel,
        vad_factory: Callable[[], SpeechProbability],
        *,
        max_queue: int = 64,
    ) -> None:
        self.asr = asr
        self.vad_factory = vad_factory
        self.asr_worker: AsrWorker = ModelWorker(
            asr.decode,
            name=f"asr:{asr.name}",
            max_queue=max_queue,
            max_batch_size=asr.max_batch_size if asr.supports_batching else 1,
            threads=asr.max_concurrency,
        )

    @classmethod
    def load(cls, asr_spec: str | None = None, vad_spec: str | None = None) -> Runtime:
        """Load the configured (by default the embedded) models.

        Model errors become engine errors here, so callers map them in one place.
        """
        from models.errors import ModelError, ModelNotFoundError
        from models.registry import load_asr, load_vad

        try:
            asr = load_asr(asr_spec)
            load_vad(vad_spec)  # load it now, so a broken VAD fails at start-up
        except ModelNotFoundError as exc:
            raise ModelNotFound(str(exc)) from exc
        except ModelError as exc:
            raise ModelLoadError(str(exc)) from exc
        log.info("loaded ASR %s and VAD %s", asr.name, vad_spec or "silero")
        return cls(asr, functools.partial(load_vad, vad_spec))

    def new_session(
        self, options: SessionOptions | None = None, *, session_id: str | None = None
    ) -> Session:
        return Session(self.vad_factory(), options, session_id=session_id)

    def driver(self, session: Session, sink: EventSink) -> SessionDriver:
        return SessionDriver(session, self.asr_worker, sink)

    def close(self) -> None:
        self.asr_worker.stop()
