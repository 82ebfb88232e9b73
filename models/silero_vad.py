"""Silero VAD (v5/v6) through ONNX Runtime, on the ONNX file bundled in the wheel.

No torch is imported: the ``silero_vad`` package is used only as a data
container, located with :mod:`importlib.resources`.
"""

from __future__ import annotations

import functools
import importlib.util
import threading
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from voxwire.models.errors import ModelLoadFailed, ModelNotFoundError
from voxwire.models.interfaces import SAMPLE_RATE, AudioArray

FRAME_SAMPLES = 512
"""Samples per frame at 16 kHz (32 ms)."""

CONTEXT_SAMPLES = 64
"""Samples of the previous frame that Silero v5+ expects prepended to each frame."""

_STATE_SHAPE = (2, 1, 128)


def bundled_model_path() -> Path:
    """Path of ``silero_vad/data/silero_vad.onnx`` inside the installed wheel.

    Found without importing the package, whose ``__init__`` imports torch (over a
    second, on the path to the first session)."""
    spec = importlib.util.find_spec("silero_vad")
    if spec is None or not spec.submodule_search_locations:  # pragma: no cover - required
        raise ModelNotFoundError("the silero-vad package is not installed")
    path = Path(next(iter(spec.submodule_search_locations))) / "data" / "silero_vad.onnx"
    if not path.is_file():
        raise ModelNotFoundError(f"Silero VAD ONNX model not found at {path}")
    return path


_session_lock = threading.Lock()


@functools.cache
def _cached_session(path: str) -> Any:
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1
    opts.inter_op_num_threads = 1
    opts.log_severity_level = 3
    try:
        return ort.InferenceSession(path, sess_options=opts, providers=["CPUExecutionProvider"])
    except Exception as exc:
        raise ModelLoadFailed(f"cannot load Silero VAD from {path}: {exc}") from exc


def load_session(path: str | Path | None = None) -> Any:
    """A single-threaded ONNX Runtime session for the model, shared per path.

    ``InferenceSession.run`` is thread-safe, so one session serves any number of
    :class:`SileroVad` instances (each keeps its own recurrent state).
    """
    resolved = str(Path(path) if path is not None else bundled_model_path())
    with _session_lock:
        return _cached_session(resolved)


class SileroVad:
    """Streaming speech probability for consecutive 512-sample frames at 16 kHz.

    Each instance holds the state of one stream; use one instance per stream.
    Instances share the ONNX session. Deterministic: after :meth:`reset` the
    same frames give exactly the same probabilities.
    """

    frame_samples: int = FRAME_SAMPLES
    name: str = "silero"

    def __init__(self, session: Any | None = None, *, model_path: str | Path | None = None):
        self._session = session if session is not None else load_session(model_path)
        self._sr = np.array(SAMPLE_RATE, dtype=np.int64)
        self._input = np.zeros((1, CONTEXT_SAMPLES + FRAME_SAMPLES), dtype=np.float32)
        self._state: npt.NDArray[np.float32] = np.zeros(_STATE_SHAPE, dtype=np.float32)

    def reset(self) -> None:
        """Clear the recurrent state and the 64-sample context."""
        self._state = np.zeros(_STATE_SHAPE, dtype=np.float32)
        self._input[:] = 0.0

    def probability(self, frame: AudioArray) -> float:
        """Speech probability of the next frame of exactly 512 samples."""
        samples = np.asarray(frame, dtype=np.float32).reshape(-1)
        if samples.shape[0] != FRAME_SAMPLES or np.ndim(frame) > 2:
            raise ValueError(
                f"Silero VAD needs frames of exactly {FRAME_SAMPLES} samples at "
                f"{SAMPLE_RATE} Hz, got shape {np.shape(frame)}"
            )
        # The input buffer already holds the previous frame's last 64 samples at its start.
        self._input[0, CONTEXT_SAMPLES:] = samples
        out, state = self._session.run(
            None, {"input": self._input, "state": self._state, "sr": self._sr}
        )
        self._state = np.asarray(state, dtype=np.float32)
        self._input[0, :CONTEXT_SAMPLES] = samples[-CONTEXT_SAMPLES:]
        return float(np.asarray(out).reshape(-1)[0])
