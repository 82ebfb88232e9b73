"""Stop a faster-whisper transcription between its model steps, inside a window.

faster-whisper's long-form pipeline decodes each 30 s window as a series of
CTranslate2 calls: encode the window, generate (once per temperature of the
fallback), align the words, detect the language. No such call can be interrupted
(CTranslate2's Whisper ``generate`` takes no per-token callback, unlike its
``Generator`` and ``Translator``), but the pipeline can stop between them:
:class:`StoppableWhisper` stands in for the CTranslate2 model during one
transcription and checks a :class:`StopFlag` before every call. A stop asked for
mid-window lets only the call in flight finish (for tiny.en on 2 idle CPU cores an
encode takes about 0.25 s, a beam-5 generate of a dense window 0.3-0.6 s) instead of
the rest of the window; the next call raises :class:`~voxwire.models.errors.Cancelled`.
The calls that do run are the pipeline's own, so the text is the same.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

from voxwire.models.errors import Cancelled


class StopFlag:
    """Asked to stop by one thread, checked by the thread that runs the model steps."""

    def __init__(self) -> None:
        self._event = threading.Event()
        self._asked_at = 0.0
        self._step: tuple[float, float] = (0.0, 0.0)
        """(start, end) on the monotonic clock of the last step that finished."""

    def stop(self) -> None:
        """Ask the work to stop at its next step (idempotent, from any thread)."""
        if not self._event.is_set():
            self._asked_at = time.monotonic()
            self._event.set()

    @property
    def stopped(self) -> bool:
        return self._event.is_set()

    def check(self) -> None:
        """Raise Cancelled if a stop was asked for; called before each step."""
        if not self._event.is_set():
            return
        now = time.monotonic()
        start, end = self._step
        in_flight = end - start if start <= self._asked_at <= end else 0.0
        raise Cancelled(
            "stopped: nobody waits for this work any more",
            step_seconds=in_flight,
            late_seconds=now - self._asked_at,
        )

    def run_step(self, call: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        """`call(*args, **kwargs)` unless a stop was asked for; its duration is kept."""
        self.check()
        started = time.monotonic()
        try:
            return call(*args, **kwargs)
        finally:
            self._step = (started, time.monotonic())


class StoppableWhisper:
    """A ``ctranslate2.models.Whisper`` whose compute calls first check a StopFlag;
    everything else (attributes, other methods) is the model's own."""

    def __init__(self, model: Any, flag: StopFlag) -> None:
        self._model = model
        self._flag = flag

    def __getattr__(self, name: str) -> Any:
        return getattr(self._model, name)

    def encode(self, *args: Any, **kwargs: Any) -> Any:
        return self._flag.run_step(self._model.encode, *args, **kwargs)

    def generate(self, *args: Any, **kwargs: Any) -> Any:
        return self._flag.run_step(self._model.generate, *args, **kwargs)

    def align(self, *args: Any, **kwargs: Any) -> Any:
        return self._flag.run_step(self._model.align, *args, **kwargs)

    def detect_language(self, *args: Any, **kwargs: Any) -> Any:
        return self._flag.run_step(self._model.detect_language, *args, **kwargs)
