"""Any Hugging Face audio- or text-classification model through transformers.

``TransformersAudioClassifier("/models/my-ast")`` (``AutoFeatureExtractor`` +
``AutoModelForAudioClassification``) and ``TransformersTextClassifier("owner/name")``
(``AutoTokenizer`` + ``AutoModelForSequenceClassification``). The source is a local
directory or a hub id; a hub id is read from the local Hugging Face cache only
(``local_files_only``), so nothing is downloaded at run time: a model that is not
there raises :class:`~voxwire.models.errors.ModelNotFoundError`. The labels are the model's
``config.id2label`` in id order and ``logits`` are the model's own. A model whose
config says ``problem_type = "multi_label_classification"`` has ``multi_label``
set: read its scores with a sigmoid.

Audio arrives as 16 kHz float32 numpy (no torchaudio, no ffmpeg); a feature
extractor that wants another rate gets the audio resampled with soxr.
torch and transformers are imported on construction.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from voxwire.models.errors import ModelLoadFailed, ModelNotFoundError
from voxwire.models.interfaces import SAMPLE_RATE, AudioArray


@contextlib.contextmanager
def quiet_loading() -> Iterator[None]:
    """No "Loading weights" progress bar on stderr while a model loads."""
    from transformers.utils import logging

    hf_logging: Any = logging
    enabled = hf_logging.is_progress_bar_enabled()
    if enabled:
        hf_logging.disable_progress_bar()
    try:
        yield
    finally:
        if enabled:
            hf_logging.enable_progress_bar()


def resolve_source(source: str | Path) -> str:
    """A local directory as an absolute path, or a hub id (owner/name) as given.

    Raises ModelNotFoundError for a path that does not exist and for text that is
    neither a directory nor a hub id.
    """
    text = str(source).strip()
    local = Path(text).expanduser()
    if local.is_dir():
        return str(local.resolve())
    looks_like_path = text.startswith((".", "/", "~")) or local.exists() or text.count("/") > 1
    if not text or looks_like_path or not all(text.split("/")):
        raise ModelNotFoundError(f"no model directory at {text!r}")
    return text


def _device(device: str) -> str:
    import torch

    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    return device


def _load_config(source: str) -> Any:
    from transformers import AutoConfig

    try:
        return AutoConfig.from_pretrained(source, local_files_only=True)
    except (OSError, ValueError) as exc:
        where = (
            f"directory {source!r}"
            if Path(source).is_dir()
            else f"model id {source!r} (not in the local Hugging Face cache; "
            "nothing is downloaded at run time: pass a local directory)"
        )
        raise ModelNotFoundError(f"cannot find a transformers model at {where}: {exc}") from exc


def _labels(config: Any, source: str) -> tuple[str, ...]:
    id2label = getattr(config, "id2label", None) or {}
    try:
        labels = tuple(str(id2label[i]) for i in range(len(id2label)))
    except KeyError:
        labels = tuple(str(v) for _, v in sorted((int(k), v) for k, v in id2label.items()))
    if not labels:
        raise ModelLoadFailed(f"{source!r}: the config names no labels (id2label)")
    return labels


def _load(loader: Any, source: str, what: str) -> Any:
    try:
        with quiet_loading():
            return loader.from_pretrained(source, local_files_only=True)
    except OSError as exc:
        raise ModelNotFoundError(f"incomplete {what} files for {source!r}: {exc}") from exc
    except Exception as exc:
        raise ModelLoadFailed(f"cannot load the {what} of {source!r}: {exc}") from exc


class _Classifier:
    """What both classifiers share: the source, device, config, labels and model."""

    def __init__(
        self, source: str | Path, model_loader: Any, device: str, name: str | None
    ) -> None:
        import torch

        self.source = resolve_source(source)
        self.name = name if name is not None else self.source
        self.device = _device(device)
        self._torch = torch
        self.config: Any = _load_config(self.source)
        self.labels: tuple[str, ...] = _labels(self.config, self.source)
        self.multi_label = (
            getattr(self.config, "problem_type", None) == "multi_label_classification"
        )
        self.model: Any = _load(model_loader, self.source, "model")
        self.model.to(self.device)
        self.model.eval()

    def _run(self, inputs: Any) -> npt.NDArray[np.float32]:
        with self._torch.inference_mode():
            logits = self.model(**inputs.to(self.device)).logits
        out = np.asarray(logits[0].float().cpu().numpy(), dtype=np.float32)
        if out.shape != (len(self.labels),):
            raise ModelLoadFailed(
                f"{self.source!r} gave {out.shape} logits for {len(self.labels)} labels"
            )
        return out


class TransformersAudioClassifier(_Classifier):
    """:class:`~voxwire.models.interfaces.AudioClassifier` on a transformers audio model."""

    def __init__(
        self, source: str | Path, *, device: str = "auto", name: str | None = None
    ) -> None:
        from transformers import AutoFeatureExtractor, AutoModelForAudioClassification

        super().__init__(source, AutoModelForAudioClassification, device, name)
        self.feature_extractor: Any = _load(AutoFeatureExtractor, self.source, "feature extractor")
        self.sampling_rate = int(getattr(self.feature_extractor, "sampling_rate", SAMPLE_RATE))

    def logits(self, audio: AudioArray) -> npt.NDArray[np.float32]:
        """The model's logits for the whole clip (its extractor may truncate long audio)."""
        samples = np.asarray(audio, dtype=np.float32).reshape(-1)
        if self.sampling_rate != SAMPLE_RATE:
            import soxr

            samples = soxr.resample(samples, SAMPLE_RATE, self.sampling_rate).astype(np.float32)
        inputs = self.feature_extractor(
            samples, sampling_rate=self.sampling_rate, return_tensors="pt"
        )
        return self._run(inputs)


class TransformersTextClassifier(_Classifier):
    """:class:`~voxwire.models.interfaces.TextClassifier` on a transformers sequence classifier."""

    def __init__(
        self, source: str | Path, *, device: str = "auto", name: str | None = None
    ) -> None:
        from transformers import AutoModelForSequenceClassification, AutoTokenizer

        super().__init__(source, AutoModelForSequenceClassification, device, name)
        self.tokenizer: Any = _load(AutoTokenizer, self.source, "tokenizer")
        limits = (
            getattr(self.config, "max_position_embeddings", None),
            getattr(self.tokenizer, "model_max_length", None),
        )
        usable = [int(n) for n in limits if isinstance(n, int) and 0 < n < 1_000_000]
        self.max_length: int | None = min(usable) if usable else None

    def logits(self, text: str) -> npt.NDArray[np.float32]:
        """The model's logits for `text` (truncated to the model's maximum length)."""
        inputs = self.tokenizer(
            text,
            truncation=self.max_length is not None,
            max_length=self.max_length,
            return_tensors="pt",
        )
        return self._run(inputs)
