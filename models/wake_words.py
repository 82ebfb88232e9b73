"""openWakeWord 0.4.0 wake words through ONNX Runtime, on the models bundled in its wheel.

The pipeline is openWakeWord's own: 16 kHz PCM -> melspectrogram (ONNX) -> Google's
speech embedding (ONNX, one 96-d vector per 80 ms) -> one small ONNX classifier per
wake word over the last 16-34 embeddings. :class:`OpenWakeWord` holds the ONNX
sessions, shared by every stream; each :class:`OpenWakeWordStream` holds only its own
buffers (the last 480 samples, 76 mel frames and 34 embeddings), so many sessions can
listen at once on one model. The streaming arithmetic reproduces
``openwakeword.Model.predict`` fed 1280-sample frames, including its silent start
(the first five frames score 0).

As an :class:`~voxwire.models.interfaces.AudioClassifier` the labels are the wake words and
the logit of a label is ``logit(peak score over the clip)``: wake words are
independent (multi-label), so apply a **sigmoid**, which gives back the peak scores
(``function_to_apply=sigmoid`` on the Hugging Face endpoint); a softmax only ranks them.

The model files are CC BY-NC-SA 4.0 (non-commercial use), unlike the code.
"""

from __future__ import annotations

import importlib.util
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from voxwire.models.errors import ModelLoadFailed, ModelNotFoundError
from voxwire.models.interfaces import SAMPLE_RATE, AudioArray

FRAME_SAMPLES = 1280
"""80 ms at 16 kHz: openWakeWord's hop, one embedding per frame."""

WAKE_WORDS = ("alexa", "hey_jarvis", "hey_mycroft", "hey_marvin", "timer", "weather")
"""The pre-trained models bundled with openwakeword 0.4.0."""

_MEL_CONTEXT = 3 * 160
"""Samples of the previous frame the melspectrogram needs (three 10 ms hops)."""
_MEL_WINDOW = 76
"""Mel frames per embedding window."""
_MEL_BINS = 32
_EMBEDDING_DIM = 96
_WARMUP_FRAMES = 5
"""openWakeWord scores the first five frames of a stream as 0."""
_PAD_SECONDS = 1.0
"""Silence around a clip (as openWakeWord's predict_clip), so short clips fill the window."""
_EPS = 1e-6


def resources_dir() -> Path:
    """The ``resources/models`` directory of the installed openwakeword package."""
    spec = importlib.util.find_spec("openwakeword")
    if spec is None or not spec.submodule_search_locations:
        raise ModelNotFoundError("the openwakeword package is not installed")
    return Path(next(iter(spec.submodule_search_locations))) / "resources" / "models"


def _session(path: Path) -> Any:
    import onnxruntime as ort

    if not path.is_file():
        raise ModelNotFoundError(f"openWakeWord model file not found: {path}")
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    options.log_severity_level = 3
    try:
        return ort.InferenceSession(
            str(path), sess_options=options, providers=["CPUExecutionProvider"]
        )
    except Exception as exc:
        raise ModelLoadFailed(f"cannot load the ONNX model {path}: {exc}") from exc


@dataclass(frozen=True)
class _Detector:
    """One wake word's classifier: an ONNX session over the last `frames` embeddings."""

    word: str
    session: Any
    input_name: str
    frames: int
    multi_class: bool
    """Several outputs (the timer model: class 0 is "none"); the score is the best other."""

    def score(self, features: npt.NDArray[np.float32]) -> float:
        window = features[-self.frames :][None, :, :]
        out = np.asarray(self.session.run(None, {self.input_name: window})[0]).reshape(-1)
        return float(out[1:].max() if self.multi_class else out[0])


def parse_wake_words(source: str | None) -> tuple[str | Path, ...]:
    """The wake words a ModelSpec.source names: None (all six) or a comma-separated list of
    bundled names and/or paths of custom openWakeWord ``.onnx`` models."""
    if source is None or not source.strip():
        return WAKE_WORDS
    chosen: list[str | Path] = []
    for item in (part.strip() for part in source.split(",")):
        if not item:
            continue
        if item.endswith(".onnx"):
            path = Path(item).expanduser()
            if not path.is_file():
                raise ModelNotFoundError(f"no openWakeWord model file at {item!r}")
            chosen.append(path)
        elif item in WAKE_WORDS:
            chosen.append(item)
        else:
            raise ModelNotFoundError(
                f"unknown wake word {item!r}; bundled: {', '.join(WAKE_WORDS)} "
                "(or give the path of a custom .onnx model)"
            )
    if not chosen:
        raise ModelNotFoundError(f"no wake word named in {source!r}")
    return tuple(dict.fromkeys(chosen))


def _word_of(path: Path) -> str:
    stem = path.stem
    for suffix in ("_v0.1", "_v0.2"):
        stem = stem.removesuffix(suffix)
    return stem


class OpenWakeWord:
    """openWakeWord's wake words: a :class:`~voxwire.models.interfaces.WakeWordModel` (streaming)
    and an :class:`~voxwire.models.interfaces.AudioClassifier` (peak score over a clip)."""

    frame_samples = FRAME_SAMPLES
    multi_label = True
    """Scores are independent per wake word: read them with a sigmoid, not a softmax."""

    def __init__(
        self, wake_words: Sequence[str | Path] | None = None, *, name: str = "wake-words"
    ) -> None:
        root = resources_dir()
        chosen = tuple(wake_words) if wake_words else WAKE_WORDS
        self.name = name
        self._melspec = _session(root / "melspectrogram.onnx")
        self._embedding = _session(root / "embedding_model.onnx")
        detectors: list[_Detector] = []
        for item in chosen:
            path = item if isinstance(item, Path) else root / f"{item}_v0.1.onnx"
            if not isinstance(item, Path) and item not in WAKE_WORDS:
                raise ModelNotFoundError(f"unknown wake word {item!r}")
            detectors.append(self._detector(_word_of(path), path))
        words = [d.word for d in detectors]
        if len(set(words)) != len(words):
            raise ModelLoadFailed(f"wake words named twice: {', '.join(words)}")
        self._detectors = tuple(detectors)
        self.wake_words: tuple[str, ...] = tuple(words)
        self.labels: tuple[str, ...] = self.wake_words
        self._history = max(d.frames for d in detectors)
        # A stream starts from the embeddings of 10 s of silence, as openWakeWord does.
        self._initial_features = self._silence_features()

    def _detector(self, word: str, path: Path) -> _Detector:
        session = _session(path)
        inputs, outputs = session.get_inputs()[0], session.get_outputs()[0]
        shape = list(inputs.shape)
        if len(shape) != 3 or shape[2] != _EMBEDDING_DIM or not isinstance(shape[1], int):
            raise ModelLoadFailed(
                f"{path}: not an openWakeWord classifier (input shape {shape}, "
                f"expected [batch, frames, {_EMBEDDING_DIM}])"
            )
        width = outputs.shape[-1] if isinstance(outputs.shape[-1], int) else 1
        return _Detector(word, session, inputs.name, int(shape[1]), multi_class=width > 1)

    # -- the shared ONNX stages, used by every stream ------------------------------------

    def melspectrogram(self, pcm: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
        """Mel frames (n, 32) of int16-scaled samples, with openWakeWord's x/10 + 2."""
        out = self._melspec.run(None, {"input": pcm[None, :]})[0]
        spec = np.asarray(out, dtype=np.float32).reshape(-1, _MEL_BINS)
        return spec / 10.0 + 2.0

    def embed(self, windows: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
        """Speech embeddings (n, 96) of mel windows (n, 76, 32)."""
        out = self._embedding.run(None, {"input_1": windows[:, :, :, None]})[0]
        return np.asarray(out, dtype=np.float32).reshape(-1, _EMBEDDING_DIM)

    def score(self, features: npt.NDArray[np.float32]) -> dict[str, float]:
        """Each wake word's score on the latest embeddings (at least `_history` rows)."""
        return {d.word: d.score(features) for d in self._detectors}

    def _silence_features(self) -> npt.NDArray[np.float32]:
        spec = self.melspectrogram(np.zeros(10 * SAMPLE_RATE, dtype=np.float32))
        starts = range(0, spec.shape[0] - _MEL_WINDOW + 1, 8)
        windows = np.stack([spec[i : i + _MEL_WINDOW] for i in starts])
        return self.embed(windows)[-self._history :]

    # -- the two interfaces --------------------------------------------------------------

    def new_stream(self) -> OpenWakeWordStream:
        """Fresh buffers for one audio stream; the ONNX sessions are shared."""
        return OpenWakeWordStream(self)

    def peak_scores(self, audio: AudioArray) -> dict[str, float]:
        """The highest score of each wake word while `audio` streams through a new stream
        (padded with 1 s of silence on both sides and to whole frames)."""
        pad = np.zeros(int(_PAD_SECONDS * SAMPLE_RATE), dtype=np.float32)
        clip = np.concatenate([pad, np.asarray(audio, dtype=np.float32).reshape(-1), pad])
        clip = np.pad(clip, (0, -len(clip) % FRAME_SAMPLES))
        stream = self.new_stream()
        peaks = dict.fromkeys(self.wake_words, 0.0)
        for start in range(0, len(clip), FRAME_SAMPLES):
            for word, value in stream.process(clip[start : start + FRAME_SAMPLES]).items():
                peaks[word] = max(peaks[word], value)
        return peaks

    def logits(self, audio: AudioArray) -> npt.NDArray[np.float32]:
        """``logit(peak score)`` per wake word: a sigmoid gives back the peak scores."""
        peaks = self.peak_scores(audio)
        p = np.clip(np.array([peaks[w] for w in self.wake_words], dtype=np.float64), _EPS, 1 - _EPS)
        return np.log(p / (1.0 - p)).astype(np.float32)


class OpenWakeWordStream:
    """One stream's buffers; feed consecutive 1280-sample frames to :meth:`process`.

    Calls on one stream are serialised (frames must come in order); streams of the
    same model may run in parallel threads.
    """

    def __init__(self, model: OpenWakeWord) -> None:
        self._model = model
        self._lock = threading.Lock()
        self.reset()

    def reset(self) -> None:
        """Forget all state, as at the start of a new stream."""
        self._tail = np.zeros(0, dtype=np.float32)
        self._mel = np.ones((_MEL_WINDOW, _MEL_BINS), dtype=np.float32)
        self._features = self._model._initial_features.copy()
        self._frames = 0

    def process(self, frame: AudioArray) -> dict[str, float]:
        """Scores in [0, 1] per wake word after the next 1280-sample frame."""
        samples = np.asarray(frame, dtype=np.float32).reshape(-1)
        if samples.size != FRAME_SAMPLES:
            raise ValueError(
                f"a wake-word frame has exactly {FRAME_SAMPLES} samples, got {samples.size}"
            )
        # openWakeWord works on int16 PCM values (as float32).
        pcm = np.clip(samples, -1.0, 1.0) * 32767.0
        pcm = np.trunc(pcm).astype(np.float32)
        model = self._model
        with self._lock:
            audio = np.concatenate([self._tail, pcm])
            self._tail = audio[-_MEL_CONTEXT:]
            self._mel = np.concatenate([self._mel, model.melspectrogram(audio)])[-_MEL_WINDOW:]
            embedding = model.embed(self._mel[None, :, :])
            history = len(self._features)
            self._features = np.concatenate([self._features, embedding])[-history:]
            self._frames += 1
            if self._frames <= _WARMUP_FRAMES:
                return dict.fromkeys(model.wake_words, 0.0)
            return model.score(self._features)
